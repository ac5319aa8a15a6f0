/**
 * The headless notebook runner: injects parameters (papermill's convention), executes every
 * code cell with a Jupyter kernel, and writes the executed .ipynb and a self-contained .html.
 * With `rerunFrom` or `watch` it keeps the kernel alive and lets the brainnet-ts kernel's dependency graph
 * re-run only the cells downstream of what changed (kernels/README.md, "Reactive execution"); which cells re-ran,
 * and where a failing re-run stopped, it reads from the kernel's execute_reply metadata (ReactiveReplyMetadata).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { ReactiveReplyMetadata } from '../notebook/kernel-hook.js';
import { progressFromMetadata, type ProgressState } from '../notebook/progress.js';
import { renderNotebookHtml } from './html.js';
import { KernelClient, KernelError, stripAnsi, type InputRequest, type NotebookOutput } from './jupyter-client.js';
import { injectParameters, parseNotebook, sourceText, type Notebook } from './nbformat.js';
import { SaveDetector } from './saves.js';

/** Options for {@link runNotebook}. */
export interface RunOptions {
  /** Folder for `<name>.ipynb` and `<name>.html` (created if missing). */
  outDir: string;
  /** Parameters as strings; values are typed by parsing (number, boolean, JSON, else string). */
  params?: Record<string, string>;
  /** Kernel spec name (default: the notebook's metadata.kernelspec.name, else 'brainnet-ts'). */
  kernelName?: string;
  /** Time limit per cell in ms (default: none). */
  cellTimeoutMs?: number;
  /** Time limit for the kernel to start in ms (default 60 000). */
  startupTimeoutMs?: number;
  /** Called before and after each code cell (for progress output). */
  onCell?: (event: CellEvent) => void;
  /** Called with each warning (default: ignored; they are also in the result). */
  onWarning?: (message: string) => void;
  /**
   * Re-run from a cell (its tag, e.g. 'parameters', its cell id, or its 1-based code cell number): the notebook is first
   * run as saved, then `params` are injected and that cell is executed again in the same live kernel, whose dependency
   * graph re-runs only the cells downstream of it. The result's `reruns` says which cells re-ran.
   */
  rerunFrom?: string;
  /** Keep the kernel alive and, whenever the .ipynb changes on disk, execute the changed code cells (the kernel re-runs their dependents) until `signal` aborts. */
  watch?: boolean;
  /** Ends watch mode (the kernel is shut down and the promise resolves). */
  signal?: AbortSignal;
  /** How often watch mode looks at the file, in ms (default 300). */
  watchIntervalMs?: number;
  /** Reactive kernel mode (default: notebook metadata `brainnet.reactive`, and on with `rerunFrom` or `watch`). */
  reactive?: boolean;
  /** Called after each reactive re-run (rerunFrom, and each change in watch mode). */
  onRerun?: (event: RerunEvent) => void;
  /**
   * Answers to the cells' input requests (`await input('Subject: ')`, `prompt(...)`), by name: the prompt without
   * surrounding blanks and a trailing `:`/`?`/`>` (`Subject`), or the exact prompt. Without any, cells run with
   * `allow_stdin: false` and a cell that asks gets the kernel's error; a prompt no entry answers fails its cell.
   */
  inputs?: Record<string, string>;
  /** Called with each update of a progress bar the running cell displays (to mirror it in a terminal: LiveProgress). */
  onProgress?: (event: ProgressEvent) => void;
}

/** A progress display of the running cell, as the runner saw it. */
export interface ProgressEvent {
  /** 1-based number of the running code cell, and the count of code cells. */
  cell: number;
  total: number;
  /** The display's id (one bar). */
  displayId?: string;
  state: ProgressState;
}

/** The name an input request is answered by: its prompt without blanks around it and a trailing `:`, `?` or `>`. */
export function promptName(prompt: string): string {
  return prompt.trim().replace(/\s*[:?>]+$/, '').trim();
}

/** The answer `inputs` gives a request (by {@link promptName}, else the exact prompt); throws naming what was given. */
export function answerInput(inputs: Record<string, string>, request: InputRequest): string {
  const name = promptName(request.prompt);
  if (Object.hasOwn(inputs, name)) return inputs[name];
  if (Object.hasOwn(inputs, request.prompt)) return inputs[request.prompt];
  const given = Object.keys(inputs);
  throw new Error(`no --input answers the prompt ${JSON.stringify(request.prompt)}: expected --input '${name}=<value>', found ${given.length ? `only ${given.map((g) => `'${g}'`).join(', ')}` : 'none'}`);
}

/** One reactive re-run: the code cells executed because they changed, and the cells the kernel re-ran downstream. */
export interface RerunEvent {
  /** 1-based code cell numbers executed because they changed (or were named by rerunFrom). */
  changed: number[];
  /** 1-based code cell numbers the kernel re-ran because they depend on a changed cell, in run order. */
  reran: number[];
  /** The code cell number where a failing re-run stopped the cascade, if one did. */
  stoppedAt?: number;
  /** One line for people: `changed: cell 2; re-ran: cells 3, 5`. */
  message: string;
}

/** Progress of one code cell. */
export interface CellEvent {
  phase: 'start' | 'end';
  /** 1-based number among code cells. */
  number: number;
  /** Count of code cells. */
  total: number;
  /** Index in the notebook's cell list. */
  index: number;
  /** Seconds the cell took (phase 'end'). */
  seconds?: number;
  status?: 'ok' | 'error';
}

/** What {@link runNotebook} returns. */
export interface RunResult {
  ipynbPath: string;
  htmlPath: string;
  /** The executed notebook. */
  notebook: Notebook;
  kernelName: string;
  /** Seconds per code cell, in order. */
  cellSeconds: number[];
  seconds: number;
  warnings: string[];
  /** Reactive re-runs (rerunFrom, watch mode), in order. */
  reruns: RerunEvent[];
}

/** A cell failed: names the cell (1-based among code cells, and its index), the source line and the message. */
export class NotebookCellError extends Error {
  constructor(
    message: string,
    readonly cellNumber: number,
    readonly cellIndex: number,
    readonly line: number | undefined,
    readonly lineText: string | undefined,
    readonly ename: string,
    readonly evalue: string,
    readonly ipynbPath: string,
    readonly htmlPath: string,
  ) {
    super(message);
    this.name = 'NotebookCellError';
  }
}

/** Finds the 1-based line of `source` that an error's traceback points at, if it can. */
export function locateErrorLine(source: string, traceback: string[], evalue = '', executionCount?: number | null): number | undefined {
  const tb = stripAnsi([...traceback, evalue].join('\n'));
  const nLines = source.split('\n').length;
  const patterns = [
    // `Cell In[7], line 3` (IPython and the brainnet-ts kernel): this cell's frame first.
    ...(executionCount != null ? [new RegExp(`Cell In ?\\[\\s*${executionCount}\\s*\\], line (\\d+)`)] : []),
    /Cell In ?\[[^\]]*\], line (\d+)/,
    /<cell>:(\d+)(?::\d+)?/i,
    /\bcell[\w\-.[\]]*:(\d+)(?::\d+)?/i, // cell-3.ts:2:5, cell[3]:2
    /\[\d+\]:(\d+)(?::\d+)?/,
    /\bline (\d+)/i,
  ];
  for (const re of patterns) {
    const m = re.exec(tb);
    if (m) {
      const line = Number(m[1]);
      if (line >= 1 && line <= nLines) return line;
    }
  }
  return undefined;
}

/** One-paragraph description of a failed cell. */
export function cellErrorMessage(args: { notebook: string; number: number; total: number; index: number; source: string; ename: string; evalue: string; traceback: string[]; executionCount?: number | null }): { message: string; line?: number; lineText?: string } {
  const line = locateErrorLine(args.source, args.traceback, args.evalue, args.executionCount);
  const lineText = line !== undefined ? args.source.split('\n')[line - 1] : undefined;
  const where = line !== undefined ? `line ${line}: ${lineText!.trim()}` : `(line unknown; the cell starts: ${args.source.split('\n').find((l) => l.trim())?.trim() ?? ''})`;
  const err = `${args.ename || 'Error'}: ${args.evalue}`.trim();
  return { message: `${args.notebook}: code cell ${args.number} of ${args.total} (cell index ${args.index}) failed at ${where}\n${err}`, line, lineText };
}

/** A code cell's key in the kernel's dependency graph: its nbformat id, else its position. */
function cellKey(nb: Notebook, index: number): string {
  return nb.cells[index].id ?? `cell-${index}`;
}

/** Finds the code cell that `selector` names: a tag, a cell id, or a 1-based code cell number. */
export function selectCell(nb: Notebook, selector: string): number {
  const code = nb.cells.map((c, i) => (c.cell_type === 'code' ? i : -1)).filter((i) => i >= 0);
  if (/^\d+$/.test(selector) && Number(selector) >= 1 && Number(selector) <= code.length) return code[Number(selector) - 1];
  const byTag = code.find((i) => ((nb.cells[i].metadata?.tags as string[] | undefined) ?? []).includes(selector));
  if (byTag !== undefined) return byTag;
  const byId = code.find((i) => nb.cells[i].id === selector);
  if (byId !== undefined) return byId;
  throw new Error(`--rerun-from ${selector}: no code cell has that tag or id, and it is not a code cell number 1..${code.length}`);
}

/** Executes a notebook headless and writes `<outDir>/<name>.ipynb` and `<outDir>/<name>.html`; rejects with {@link NotebookCellError} when a cell fails (after writing both files). */
export async function runNotebook(inPath: string, opts: RunOptions): Promise<RunResult> {
  // 1. Read the notebook and inject the parameters (with rerunFrom: after the first run, see step 4).
  const run = new NotebookRun(inPath, opts);
  // A --rerun-from that names no cell fails before anything runs.
  const fromIndex = opts.rerunFrom !== undefined ? selectCell(run.nb, opts.rerunFrom) : undefined;
  // 2. Start the kernel in the notebook's folder (reactive: the brainnet-ts kernel reads BRAINNET_REACTIVE).
  await run.startKernel();
  try {
    // 3. Execute every code cell in order; on failure, still write both files up to that cell, then reject.
    await run.executeAll();
    // 4. rerunFrom: inject the parameters now and execute the named cell again; the kernel re-runs its dependents.
    if (fromIndex !== undefined) await run.rerunFrom(fromIndex);
    await run.write();
    // 5. Watch: re-run changed cells whenever the file changes.
    if (opts.watch) await run.watch();
  } finally {
    await run.shutdown();
  }
  return run.result();
}

/** A cell's error as the kernel reports it. */
type CellFailure = { ename: string; evalue: string; traceback: string[] };
/** A code cell to execute in a reactive re-run, with the key it stands for in the kernel's graph (default: its own). */
type ChangedCell = { index: number; key?: string };

const codeIndicesOf = (n: Notebook) => n.cells.map((c, i) => (c.cell_type === 'code' ? i : -1)).filter((i) => i >= 0);
const isInjected = (c: Notebook['cells'][number]) => ((c.metadata?.tags as string[] | undefined) ?? []).includes('injected-parameters');

/**
 * The state of one {@link runNotebook} call: the notebook as it is being executed (`nb`, replaced by the injected
 * or edited notebook in the reactive steps), the live kernel, and what the result reports.
 */
class NotebookRun {
  private readonly t0 = Date.now();
  private readonly warnings: string[] = [];
  private readonly reruns: RerunEvent[] = [];
  private readonly cellSeconds: number[] = [];
  /** The notebook as read from disk (its metadata.brainnet is kept in the written notebook). */
  private readonly original: Notebook;
  /** The notebook being executed and written (runNotebook reads it to select the rerunFrom cell). */
  nb: Notebook;
  /** Index of the injected parameters cell in `nb`, once injected. */
  private injectedIndex: number | undefined;
  private readonly hasParams: boolean;
  private readonly reactive: boolean;
  private readonly kernelName: string;
  private readonly name: string;
  private readonly ipynbPath: string;
  private readonly htmlPath: string;
  private kernel!: KernelClient;
  /** Watch mode's view of the file: the baseline is this first read, so no save after it is missed. */
  private readonly saves: SaveDetector;
  /** The code cell running now (for progress events). */
  private running: { number: number; total: number } | null = null;

  /** Reads the notebook, injects the parameters (unless rerunFrom injects them later) and clears the code cells' outputs. */
  constructor(private readonly inPath: string, private readonly opts: RunOptions) {
    this.saves = new SaveDetector(inPath);
    this.original = parseNotebook(this.saves.read(), inPath);
    this.nb = this.original;
    this.hasParams = !!opts.params && Object.keys(opts.params).length > 0;
    if (this.hasParams && opts.rerunFrom === undefined) this.nb = this.inject(this.nb);
    const live = opts.rerunFrom !== undefined || !!opts.watch;
    this.reactive = opts.reactive ?? (live || (this.nb.metadata.brainnet as { reactive?: boolean } | undefined)?.reactive === true);
    this.kernelName = opts.kernelName ?? this.nb.metadata.kernelspec?.name ?? 'brainnet-ts';
    this.name = path.basename(inPath).replace(/\.ipynb$/i, '');
    this.ipynbPath = path.resolve(opts.outDir, `${this.name}.ipynb`);
    this.htmlPath = path.resolve(opts.outDir, `${this.name}.html`);
    for (const i of codeIndicesOf(this.nb)) {
      this.nb.cells[i].outputs = [];
      this.nb.cells[i].execution_count = null;
    }
  }

  private warn(w: string): void {
    this.warnings.push(w);
    this.opts.onWarning?.(w);
  }

  /** `from` with the --param values injected after its parameters cell (remembers where they went). */
  private inject(from: Notebook): Notebook {
    const r = injectParameters(from, this.opts.params!);
    r.warnings.forEach((w) => this.warn(w));
    this.injectedIndex = r.index;
    return r.notebook;
  }

  async startKernel(): Promise<void> {
    this.kernel = await KernelClient.start({
      kernel: this.kernelName,
      cwd: path.dirname(path.resolve(this.inPath)),
      startupTimeoutMs: this.opts.startupTimeoutMs,
      env: this.reactive ? { BRAINNET_REACTIVE: '1' } : undefined,
    });
  }

  async shutdown(): Promise<void> {
    await this.kernel.shutdown();
  }

  /** Writes the executed notebook and its HTML, with the run's parameters, kernel and timing in metadata.brainnet. */
  async write(): Promise<void> {
    const { nb, original, opts, t0 } = this;
    nb.metadata.brainnet = { ...((original.metadata.brainnet as object) ?? {}), parameters: opts.params ?? {}, kernel: this.kernelName, executed: new Date(t0).toISOString(), seconds: (Date.now() - t0) / 1000 };
    await writeFileAtomic(this.ipynbPath, JSON.stringify(nb, null, 1) + '\n');
    await writeFileAtomic(this.htmlPath, await renderNotebookHtml(nb, { title: this.name }));
  }

  result(): RunResult {
    const { ipynbPath, htmlPath, nb, kernelName, cellSeconds, t0, warnings, reruns } = this;
    return { ipynbPath, htmlPath, notebook: nb, kernelName, cellSeconds, seconds: (Date.now() - t0) / 1000, warnings, reruns };
  }

  /** Executes every code cell of `nb` in order, reporting progress; throws {@link NotebookCellError} at the first failure. */
  async executeAll(): Promise<void> {
    const { nb, opts } = this;
    const codeIndices = codeIndicesOf(nb);
    for (let k = 0; k < codeIndices.length; k++) {
      const index = codeIndices[k];
      const ev = { number: k + 1, total: codeIndices.length, index };
      if (!sourceText(nb.cells[index].source).trim()) {
        this.cellSeconds.push(0);
        continue;
      }
      opts.onCell?.({ phase: 'start', ...ev });
      this.running = { number: ev.number, total: ev.total };
      const c0 = Date.now();
      // An injected parameters cell stands for the parameters cell in the kernel's graph (no redefinition message).
      const { failure, source } = await this.execCell(index, index === this.injectedIndex && index > 0 ? cellKey(nb, index - 1) : undefined);
      if (nb.cells[index].execution_count === null && !failure) nb.cells[index].execution_count = k + 1;
      this.running = null;
      const seconds = (Date.now() - c0) / 1000;
      this.cellSeconds.push(seconds);
      opts.onCell?.({ phase: 'end', ...ev, seconds, status: failure ? 'error' : 'ok' });
      if (failure) throw await this.fail(index, ev.number, ev.total, source, failure);
    }
  }

  /**
   * Executes one code cell of `nb` (with its key for the kernel's graph when reactive); returns its failure, if any,
   * and what the brainnet-ts kernel's dependency graph did after it (execute_reply metadata.brainnet).
   */
  private async execCell(index: number, key: string = cellKey(this.nb, index)) {
    const cell = this.nb.cells[index];
    const source = sourceText(cell.source);
    let failure: CellFailure | undefined;
    let graph: ReactiveReplyMetadata | undefined;
    const { inputs, onProgress } = this.opts;
    try {
      const r = await this.kernel.execute(this.reactive ? `${source}\n//% cell ${key}` : source, {
        timeoutMs: this.opts.cellTimeoutMs,
        onOutput: (outs) => (cell.outputs = outs),
        onInput: inputs && Object.keys(inputs).length ? (req) => answerInput(inputs, req) : undefined,
        onDisplay: (d) => {
          const state = progressFromMetadata(d.metadata);
          if (state && onProgress && this.running) onProgress({ cell: this.running.number, total: this.running.total, displayId: d.displayId, state });
        },
      });
      cell.outputs = r.outputs;
      cell.execution_count = r.executionCount ?? null;
      graph = r.metadata.brainnet as ReactiveReplyMetadata | undefined;
      if (r.status !== 'ok') failure = r.error ?? { ename: r.status, evalue: `the kernel answered status "${r.status}"`, traceback: [] };
    } catch (e) {
      // Kernel death or time-out: record it as the cell's error output.
      const err: NotebookOutput = { output_type: 'error', ename: (e as Error).name || 'KernelError', evalue: (e as Error).message, traceback: [] };
      cell.outputs = [...(cell.outputs ?? []), err];
      failure = { ename: err.ename, evalue: err.evalue, traceback: [] };
    }
    return { failure, source, graph };
  }

  /** Writes both files as they stand, then gives the error that names the failed cell. */
  private async fail(index: number, number: number, total: number, source: string, failure: CellFailure): Promise<NotebookCellError> {
    await this.write();
    const m = cellErrorMessage({ notebook: this.inPath, number, total, index, source, ...failure, executionCount: this.nb.cells[index].execution_count });
    return new NotebookCellError(m.message, number, index, m.line, m.lineText, failure.ename, failure.evalue, this.ipynbPath, this.htmlPath);
  }

  /** rerunFrom, after the first run: injects the parameters and executes the cell at `from` again in the live kernel. */
  async rerunFrom(from: number): Promise<void> {
    if (!this.hasParams) {
      await this.rerun([{ index: from }]);
      return;
    }
    const before = this.nb;
    const nb = (this.nb = this.inject(before));
    const injectedIndex = this.injectedIndex!;
    // Keep the executed outputs (the same objects, so update_display_data still reaches them).
    before.cells.forEach((c, i) => {
      const j = i >= injectedIndex ? i + 1 : i;
      nb.cells[j].outputs = c.outputs;
      nb.cells[j].execution_count = c.execution_count;
    });
    // The injected cell stands for the parameters cell in the kernel's graph (no redefinition).
    const fromNew = from >= injectedIndex ? from + 1 : from;
    const target = injectedIndex === fromNew + 1 ? { index: injectedIndex, key: cellKey(nb, fromNew) } : { index: fromNew };
    if (injectedIndex !== fromNew + 1) this.warn(`--rerun-from ${this.opts.rerunFrom}: the parameters were injected after another cell; re-running cell ${codeIndicesOf(nb).indexOf(fromNew) + 1} as is`);
    await this.rerun([target]);
  }

  /** Executes changed cells; the kernel re-runs their dependents. Reports which code cells re-ran. */
  private async rerun(changed: ChangedCell[]): Promise<void> {
    const { nb } = this;
    const codeIdx = codeIndicesOf(nb);
    const number = (i: number) => codeIdx.indexOf(i) + 1;
    const byCount = (count: number) => codeIdx.find((i) => i !== undefined && nb.cells[i].execution_count === count && !changed.some((c) => c.index === i));
    const reran: number[] = [];
    let stoppedAt: number | undefined;
    for (const c of changed) {
      this.running = { number: number(c.index), total: codeIdx.length };
      const { failure, source, graph } = await this.execCell(c.index, c.key);
      // The kernel names re-run cells by their execution count, which finds them in the notebook.
      for (const { count } of graph?.reran ?? []) {
        const i = count === null ? undefined : byCount(count);
        if (i !== undefined && !reran.includes(number(i))) reran.push(number(i));
      }
      const stopCount = graph?.stopped?.count;
      if (stopCount != null) stoppedAt = number(byCount(stopCount) ?? -1) || undefined;
      if (failure) throw await this.fail(c.index, number(c.index), codeIdx.length, source, failure);
    }
    const ev = rerunEvent(changed.map((c) => number(c.index)), reran, stoppedAt);
    this.reruns.push(ev);
    this.opts.onRerun?.(ev);
  }

  /** Watch mode: until the signal aborts, executes the code cells changed by each save (a failing cell is only a warning). */
  async watch(): Promise<void> {
    const { opts } = this;
    const interval = opts.watchIntervalMs ?? 300;
    // What was executed last, by cell key; the first run executed the notebook as read (the detector's baseline).
    let sources = codeSources(this.original);
    while (!opts.signal?.aborted) {
      await abortableSleep(interval, opts.signal);
      if (opts.signal?.aborted) break;
      if (this.kernel.dead) throw new KernelError(`watch: the kernel died; ${this.inPath} is no longer watched (run the runner again)`);
      const read = this.readNewSave();
      if (!read) continue;
      const editedSources = codeSources(read);
      // --param values stay injected after the parameters cell (and are re-applied when that cell changes).
      const edited = this.hasParams ? this.inject(read) : read;
      const changed = this.carryLiveOutputs(edited, sources);
      sources = editedSources;
      if (!changed.length) continue;
      this.nb = edited;
      try {
        await this.rerun(changed);
      } catch (e) {
        if (!(e instanceof NotebookCellError)) throw e;
        this.warn(e.message); // watch mode goes on after a failing cell
      }
      await this.write();
    }
  }

  /** The notebook as saved, when its content changed since it was last read (saves.ts says how); undefined otherwise. */
  private readNewSave(): Notebook | undefined {
    const text = this.saves.poll();
    if (text === undefined) return undefined;
    try {
      return parseNotebook(text, this.inPath);
    } catch (e) {
      this.warn(`watch: ${(e as Error).message} (waiting for the next save)`);
      return undefined;
    }
  }

  /**
   * Gives the cells of `edited` whose source did not change (against `seen`) the live outputs of `nb`, and clears
   * the others; returns the changed code cells to execute (an injected parameters cell right after a changed
   * parameters cell stands for it).
   */
  private carryLiveOutputs(edited: Notebook, seen: Map<string, string>): ChangedCell[] {
    const { nb } = this;
    const live = new Map(codeIndicesOf(nb).filter((i) => !isInjected(nb.cells[i])).map((i) => [cellKey(nb, i), nb.cells[i]]));
    const liveInjected = nb.cells.find(isInjected);
    const changed: ChangedCell[] = [];
    for (const i of codeIndicesOf(edited)) {
      if (isInjected(edited.cells[i])) {
        const prev = changed.at(-1);
        if (prev && prev.index === i - 1) changed.push({ index: i, key: cellKey(edited, i - 1) });
        else if (liveInjected) (edited.cells[i].outputs = liveInjected.outputs), (edited.cells[i].execution_count = liveInjected.execution_count);
        continue;
      }
      const key = cellKey(edited, i);
      const src = sourceText(edited.cells[i].source);
      const old = live.get(key);
      if (seen.get(key) === src && old) {
        edited.cells[i].outputs = old.outputs;
        edited.cells[i].execution_count = old.execution_count;
      } else {
        edited.cells[i].outputs = [];
        edited.cells[i].execution_count = null;
        if (src.trim()) changed.push({ index: i });
      }
    }
    return changed;
  }
}

/** The source of each code cell, by its key in the kernel's graph. */
function codeSources(nb: Notebook): Map<string, string> {
  return new Map(codeIndicesOf(nb).map((i) => [cellKey(nb, i), sourceText(nb.cells[i].source)]));
}

/** One re-run's event, with its line for people: `changed: cell 2; re-ran: cells 3, 5`. */
function rerunEvent(changed: number[], reran: number[], stoppedAt: number | undefined): RerunEvent {
  const list = (ns: number[]) => (ns.length ? `${ns.length > 1 ? 'cells' : 'cell'} ${ns.join(', ')}` : 'none');
  return {
    changed,
    reran,
    stoppedAt,
    message: `changed: ${list(changed)}; re-ran: ${list(reran)}${stoppedAt ? `; stopped at cell ${stoppedAt} (it failed; later dependents are stale)` : ''}`,
  };
}

/** Resolves after `ms`, or as soon as `signal` aborts; leaves no timer or listener behind either way. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
