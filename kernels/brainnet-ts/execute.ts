/**
 * Runs compiled cells in the kernel's own global scope (one persistent context), turns values into MIME
 * bundles and errors into Jupyter error contents whose traceback points at cell lines.
 */
import vm from 'node:vm';
import path from 'node:path';
import { inspect } from 'node:util';
import { compileCell, HELPER, type CompiledCell } from './compile.js';
import { ModuleLoader } from './modules.js';

/** A Jupyter MIME bundle. */
export interface MimeBundle {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/** Jupyter error content. */
export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** The outcome of running one cell. */
export type CellOutcome = { status: 'ok'; value?: MimeBundle } | ({ status: 'error' } & ErrorContent);

interface CellRecord {
  count: number | null;
  source: string;
  compiled: CompiledCell;
}

/** Thrown into a pending cell when the user interrupts it. */
export class InterruptedError extends Error {
  constructor(message = 'cell execution was interrupted while awaiting (work it started may still run)') {
    super(message);
    this.name = 'InterruptedError';
  }
}

const CELL_FILE = /__bn_cell_(\d+)__\.ts:(\d+):(\d+)/;

/** Executes cells one at a time; cells share the global scope of the kernel's main thread. */
export class Executor {
  private readonly cells = new Map<number, CellRecord>();
  private nextId = 1;
  private interruptCurrent: ((e: Error) => void) | null = null;
  /** True while a cell's promise is pending (so SIGINT abandons it). */
  running = false;

  /** Resolves cells' imports: the notebook folder first, then the kernel's checkout. */
  readonly modules: ModuleLoader;

  constructor(private readonly cwd: string = process.cwd()) {
    this.modules = new ModuleLoader(cwd);
    Object.defineProperty(globalThis, HELPER, {
      value: {
        import: (spec: string, cellImport: () => Promise<unknown>) => this.modules.load(spec, cellImport),
        importDynamic: (cellImport: (s: string, o?: unknown) => Promise<unknown>, spec: string, options?: unknown) => this.modules.importDynamic(cellImport, spec, options),
      },
      enumerable: false,
      configurable: true,
      writable: false,
    });
  }

  /** Abandons the pending cell (called on SIGINT while a cell awaits). */
  interrupt(): void {
    this.interruptCurrent?.(new InterruptedError());
  }

  /** Runs one cell; `count` labels it in tracebacks (`Cell In[count]`). */
  async run(source: string, count: number | null): Promise<CellOutcome> {
    const id = this.nextId++;
    const compiled = compileCell(source, `cell${id}.ts`);
    if ('error' in compiled) {
      const { message, line, column } = compiled.error;
      const tb = [`SyntaxError: ${message}`, `${label(count)}, line ${line}, column ${column}`, ...context(source, line, column)];
      return { status: 'error', ename: 'SyntaxError', evalue: `${message} (line ${line}, column ${column})`, traceback: tb };
    }
    this.cells.set(id, { count, source, compiled: compiled.ok });
    const filename = path.join(this.cwd, `__bn_cell_${id}__.ts`);
    this.running = true;
    try {
      const script = new vm.Script(compiled.ok.script, {
        filename,
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER as never,
      });
      const pending = script.runInThisContext({ breakOnSigint: true, displayErrors: false }) as Promise<[unknown] | undefined>;
      pending.catch(() => {}); // an abandoned (interrupted) cell may still reject later
      const interrupted = new Promise<never>((_, reject) => (this.interruptCurrent = reject));
      const result = await Promise.race([pending, interrupted]);
      if (Array.isArray(result) && compiled.ok.hasValue && result[0] !== undefined) return { status: 'ok', value: toMimeBundle(result[0]) };
      return { status: 'ok' };
    } catch (e) {
      return { status: 'error', ...this.errorContent(e) };
    } finally {
      this.running = false;
      this.interruptCurrent = null;
    }
  }

  /** Jupyter error content for a thrown value: class name, message, traceback with cell lines. */
  errorContent(e: unknown): ErrorContent {
    if ((e as { code?: string })?.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
      const evalue = 'cell execution was interrupted';
      return { ename: 'InterruptedError', evalue, traceback: [`InterruptedError: ${evalue} (SIGINT)`] };
    }
    if (e instanceof InterruptedError) return { ename: 'InterruptedError', evalue: e.message, traceback: [`InterruptedError: ${e.message}`] };
    if (!(e instanceof Error) && !(e && typeof e === 'object' && 'stack' in e)) {
      const evalue = typeof e === 'string' ? e : inspect(e);
      return { ename: 'Error', evalue, traceback: [`Uncaught ${evalue}`] };
    }
    const err = e as Error;
    const ename = (err.constructor && err.constructor !== Object ? err.constructor.name : '') || err.name || 'Error';
    const evalue = String(err.message ?? '');
    const traceback = [`${ename}: ${evalue}`];
    const stack = String(err.stack ?? '').split('\n');
    let shownContext = false;
    for (const line of stack) {
      if (!/^\s+at /.test(line)) continue;
      const m = CELL_FILE.exec(line);
      if (m) {
        const rec = this.cells.get(Number(m[1]));
        const cellLine = rec?.compiled.cellLine(Number(m[2]), Number(m[3]));
        if (!rec || !cellLine) continue;
        const fn = /^\s+at (?:async )?([^\s(]+) \(/.exec(line)?.[1];
        const where = fn && fn !== '<anonymous>' ? ` in ${fn}` : '';
        traceback.push(`${label(rec.count)}, line ${cellLine}${where}`);
        if (!shownContext) {
          traceback.push(...context(rec.source, cellLine));
          shownContext = true;
        }
      } else if (!/\(node:(internal|vm)|kernels[\\/]brainnet-ts[\\/]|node_modules[\\/]tsx[\\/]/.test(line)) {
        traceback.push(line);
      }
    }
    return { ename, evalue, traceback };
  }
}

function label(count: number | null): string {
  return `Cell In[${count ?? ' '}]`;
}

/** IPython-style source context: two lines before, an arrow at the line, one after, and a caret at the column. */
function context(source: string, line: number, column?: number): string[] {
  const lines = source.split('\n');
  const out: string[] = [];
  for (let i = Math.max(1, line - 2); i <= Math.min(lines.length, line + 1); i++) {
    const num = String(i);
    out.push(`${i === line ? '---->' : '     '} ${num.padStart(2)} ${lines[i - 1]}`);
    if (i === line && column) out.push(`${' '.repeat(6 + Math.max(2, num.length) + 1 + column - 1)}^`);
  }
  return out;
}

/** A value's MIME bundle: its own `[Symbol.for('brainnet.display')]()` or `_repr_mimebundle_()`, else util.inspect text. */
export function toMimeBundle(value: unknown): MimeBundle {
  const v = value as Record<string | symbol, unknown> | null;
  for (const key of [Symbol.for('brainnet.display'), '_repr_mimebundle_'] as const) {
    const fn = v && (typeof v === 'object' || typeof v === 'function') ? v[key] : undefined;
    if (typeof fn !== 'function') continue;
    try {
      const b = fn.call(v) as Record<string, unknown> | undefined;
      if (!b || typeof b !== 'object') continue;
      const withData = 'data' in b && b.data && typeof b.data === 'object';
      const data = { ...((withData ? b.data : b) as Record<string, unknown>) };
      const metadata = (withData && b.metadata && typeof b.metadata === 'object' ? b.metadata : {}) as Record<string, unknown>;
      if (!('text/plain' in data)) data['text/plain'] = safeInspect(value);
      return { data, metadata };
    } catch {
      break;
    }
  }
  return { data: { 'text/plain': safeInspect(value) }, metadata: {} };
}

function safeInspect(value: unknown): string {
  try {
    return inspect(value, { depth: 4, maxArrayLength: 100, maxStringLength: 10000, breakLength: 100 });
  } catch (e) {
    return `<value that cannot be shown: ${(e as Error).message}>`;
  }
}
