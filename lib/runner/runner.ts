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
import { renderNotebookHtml } from './html.js';
import { KernelClient, stripAnsi, type NotebookOutput } from './jupyter-client.js';
import { injectParameters, readNotebook, sourceText, type Notebook } from './nbformat.js';

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
  const t0 = Date.now();
  const warnings: string[] = [];
  const warn = (w: string) => {
    warnings.push(w);
    opts.onWarning?.(w);
  };
  const reruns: RerunEvent[] = [];
  const live = opts.rerunFrom !== undefined || !!opts.watch;

  // 1. Read the notebook and inject the parameters (with rerunFrom: after the first run, see step 4).
  const original = readNotebook(inPath);
  let nb = original;
  let injectedIndex: number | undefined;
  const hasParams = !!opts.params && Object.keys(opts.params).length > 0;
  const inject = (from: Notebook) => {
    const r = injectParameters(from, opts.params!);
    r.warnings.forEach(warn);
    injectedIndex = r.index;
    return r.notebook;
  };
  if (hasParams && opts.rerunFrom === undefined) nb = inject(nb);
  const reactive = opts.reactive ?? (live || (nb.metadata.brainnet as { reactive?: boolean } | undefined)?.reactive === true);
  const kernelName = opts.kernelName ?? nb.metadata.kernelspec?.name ?? 'brainnet-ts';
  const name = path.basename(inPath).replace(/\.ipynb$/i, '');
  const ipynbPath = path.resolve(opts.outDir, `${name}.ipynb`);
  const htmlPath = path.resolve(opts.outDir, `${name}.html`);
  const codeIndicesOf = (n: Notebook) => n.cells.map((c, i) => (c.cell_type === 'code' ? i : -1)).filter((i) => i >= 0);
  for (const i of codeIndicesOf(nb)) {
    nb.cells[i].outputs = [];
    nb.cells[i].execution_count = null;
  }

  const write = async () => {
    nb.metadata.brainnet = { ...((original.metadata.brainnet as object) ?? {}), parameters: opts.params ?? {}, kernel: kernelName, executed: new Date(t0).toISOString(), seconds: (Date.now() - t0) / 1000 };
    await writeFileAtomic(ipynbPath, JSON.stringify(nb, null, 1) + '\n');
    await writeFileAtomic(htmlPath, await renderNotebookHtml(nb, { title: name }));
  };

  // A --rerun-from that names no cell fails before anything runs.
  const fromIndex = opts.rerunFrom !== undefined ? selectCell(nb, opts.rerunFrom) : undefined;

  // 2. Start the kernel in the notebook's folder (reactive: the brainnet-ts kernel reads BRAINNET_REACTIVE).
  const kernel = await KernelClient.start({
    kernel: kernelName,
    cwd: path.dirname(path.resolve(inPath)),
    startupTimeoutMs: opts.startupTimeoutMs,
    env: reactive ? { BRAINNET_REACTIVE: '1' } : undefined,
  });
  const cellSeconds: number[] = [];
  // Executes one code cell of `nb` (with its key for the kernel's graph when reactive); returns its failure, if any,
  // and what the brainnet-ts kernel's dependency graph did after it (execute_reply metadata.brainnet).
  const execCell = async (index: number, key: string = cellKey(nb, index)) => {
    const cell = nb.cells[index];
    const source = sourceText(cell.source);
    let failure: { ename: string; evalue: string; traceback: string[] } | undefined;
    let graph: ReactiveReplyMetadata | undefined;
    try {
      const r = await kernel.execute(reactive ? `${source}\n//% cell ${key}` : source, {
        timeoutMs: opts.cellTimeoutMs,
        onOutput: (outs) => (cell.outputs = outs),
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
  };
  const fail = async (index: number, number: number, total: number, source: string, failure: { ename: string; evalue: string; traceback: string[] }) => {
    await write();
    const m = cellErrorMessage({ notebook: inPath, number, total, index, source, ...failure, executionCount: nb.cells[index].execution_count });
    return new NotebookCellError(m.message, number, index, m.line, m.lineText, failure.ename, failure.evalue, ipynbPath, htmlPath);
  };
  // Executes changed cells; the kernel re-runs their dependents. Reports which code cells re-ran.
  const rerun = async (changed: Array<{ index: number; key?: string }>): Promise<RerunEvent> => {
    const codeIdx = codeIndicesOf(nb);
    const number = (i: number) => codeIdx.indexOf(i) + 1;
    const byCount = (count: number) => codeIdx.find((i) => i !== undefined && nb.cells[i].execution_count === count && !changed.some((c) => c.index === i));
    const reran: number[] = [];
    let stoppedAt: number | undefined;
    for (const c of changed) {
      const { failure, source, graph } = await execCell(c.index, c.key);
      // The kernel names re-run cells by their execution count, which finds them in the notebook.
      for (const { count } of graph?.reran ?? []) {
        const i = count === null ? undefined : byCount(count);
        if (i !== undefined && !reran.includes(number(i))) reran.push(number(i));
      }
      const stopCount = graph?.stopped?.count;
      if (stopCount != null) stoppedAt = number(byCount(stopCount) ?? -1) || undefined;
      if (failure) throw await fail(c.index, number(c.index), codeIdx.length, source, failure);
    }
    const list = (ns: number[]) => (ns.length ? `${ns.length > 1 ? 'cells' : 'cell'} ${ns.join(', ')}` : 'none');
    const ev: RerunEvent = {
      changed: changed.map((c) => number(c.index)),
      reran,
      stoppedAt,
      message: `changed: ${list(changed.map((c) => number(c.index)))}; re-ran: ${list(reran)}${stoppedAt ? `; stopped at cell ${stoppedAt} (it failed; later dependents are stale)` : ''}`,
    };
    reruns.push(ev);
    opts.onRerun?.(ev);
    return ev;
  };
  try {
    // 3. Execute every code cell in order.
    const codeIndices = codeIndicesOf(nb);
    for (let k = 0; k < codeIndices.length; k++) {
      const index = codeIndices[k];
      const ev = { number: k + 1, total: codeIndices.length, index };
      if (!sourceText(nb.cells[index].source).trim()) {
        cellSeconds.push(0);
        continue;
      }
      opts.onCell?.({ phase: 'start', ...ev });
      const c0 = Date.now();
      // An injected parameters cell stands for the parameters cell in the kernel's graph (no redefinition message).
      const { failure, source } = await execCell(index, index === injectedIndex && index > 0 ? cellKey(nb, index - 1) : undefined);
      if (nb.cells[index].execution_count === null && !failure) nb.cells[index].execution_count = k + 1;
      const seconds = (Date.now() - c0) / 1000;
      cellSeconds.push(seconds);
      opts.onCell?.({ phase: 'end', ...ev, seconds, status: failure ? 'error' : 'ok' });
      // 4. On failure, still write both files up to this cell, then reject.
      if (failure) throw await fail(index, ev.number, ev.total, source, failure);
    }
    // 5. rerunFrom: inject the parameters now and execute the named cell again; the kernel re-runs its dependents.
    if (opts.rerunFrom !== undefined) {
      const from = fromIndex!;
      if (hasParams) {
        const before = nb;
        nb = inject(before);
        // Keep the executed outputs (the same objects, so update_display_data still reaches them).
        before.cells.forEach((c, i) => {
          const j = i >= injectedIndex! ? i + 1 : i;
          nb.cells[j].outputs = c.outputs;
          nb.cells[j].execution_count = c.execution_count;
        });
        // The injected cell stands for the parameters cell in the kernel's graph (no redefinition).
        const fromNew = from >= injectedIndex! ? from + 1 : from;
        const target = injectedIndex === fromNew + 1 ? { index: injectedIndex!, key: cellKey(nb, fromNew) } : { index: fromNew };
        if (injectedIndex !== fromNew + 1) warn(`--rerun-from ${opts.rerunFrom}: the parameters were injected after another cell; re-running cell ${codeIndicesOf(nb).indexOf(fromNew) + 1} as is`);
        await rerun([target]);
      } else {
        await rerun([{ index: from }]);
      }
    }
    await write();
    // 6. Watch: re-run changed cells whenever the file changes.
    if (opts.watch) await watchLoop();
  } finally {
    await kernel.shutdown();
  }
  return { ipynbPath, htmlPath, notebook: nb, kernelName, cellSeconds, seconds: (Date.now() - t0) / 1000, warnings, reruns };

  async function watchLoop(): Promise<void> {
    const interval = opts.watchIntervalMs ?? 300;
    let last = fs.statSync(inPath).mtimeMs;
    let seen = new Map(codeIndicesOf(original).map((i) => [cellKey(original, i), sourceText(original.cells[i].source)]));
    while (!opts.signal?.aborted) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, interval);
        opts.signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
      if (opts.signal?.aborted) break;
      let mtime: number;
      try {
        mtime = fs.statSync(inPath).mtimeMs;
      } catch {
        continue; // being replaced
      }
      if (mtime === last) continue;
      last = mtime;
      let edited: Notebook;
      try {
        edited = readNotebook(inPath);
      } catch (e) {
        warn(`watch: ${(e as Error).message} (waiting for the next save)`);
        continue;
      }
      // The new notebook keeps the live outputs of cells whose source did not change.
      const isInjected = (c: Notebook['cells'][number]) => ((c.metadata?.tags as string[] | undefined) ?? []).includes('injected-parameters');
      const live = new Map(codeIndicesOf(nb).filter((i) => !isInjected(nb.cells[i])).map((i) => [cellKey(nb, i), nb.cells[i]]));
      const liveInjected = nb.cells.find(isInjected);
      const changed: Array<{ index: number; key?: string }> = [];
      const editedSources = new Map(codeIndicesOf(edited).map((i) => [cellKey(edited, i), sourceText(edited.cells[i].source)]));
      // --param values stay injected after the parameters cell (and are re-applied when that cell changes).
      if (hasParams) edited = inject(edited);
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
      seen = editedSources;
      if (!changed.length) continue;
      nb = edited;
      try {
        await rerun(changed);
      } catch (e) {
        if (!(e instanceof NotebookCellError)) throw e;
        warn(e.message); // watch mode goes on after a failing cell
      }
      await write();
    }
  }
}
