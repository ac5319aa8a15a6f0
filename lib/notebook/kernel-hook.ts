/**
 * The contract between the library and the project's Jupyter kernel (kernels/brainnet-ts), declared
 * once here and imported (types only) by the kernel: the display hook it sets on
 * `globalThis.__brainnetKernel` (unset outside a kernel: plain node, a terminal), and the `brainnet`
 * field of the metadata of its execute_reply, which the headless runner reads.
 */

/** A Jupyter MIME bundle as the kernel's display hook takes it. */
export interface MimeBundle {
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  transient?: { display_id?: string };
}

/** The display hook the brainnet-ts kernel installs on `globalThis.__brainnetKernel`. */
export interface KernelHook {
  /** Sends a display (update: replaces the display with the same `transient.display_id`). */
  display(bundle: MimeBundle, update?: boolean): void;
  clearOutput(wait?: boolean): void;
  /** The running cell's execution count. */
  readonly executionCount: number;
  readonly language: 'typescript';
}

/** A cell of a reactive re-run: its key in the kernel's dependency graph and the execution count it shows. */
export interface ReactiveCellRef {
  /** The cell's key: the front end's cell id, the runner's `//% cell <key>`, or one the kernel made up. */
  cell: string;
  /** Execution count of the cell's last run (`In[count]`), null if it has none. */
  count: number | null;
}

/**
 * The `brainnet` field of the metadata of every execute_reply the brainnet-ts kernel sends for a tracked
 * (non-empty, non-silent) cell: what the dependency graph did after the cell ran (kernels/README.md).
 */
export interface ReactiveReplyMetadata {
  /** The cell that ran. */
  cell: string;
  /** Whether reactive mode was on. */
  reactive: boolean;
  /** Top-level names the cell defines, and free names it reads. */
  defines: string[];
  references: string[];
  /** Dependent cells re-run after it, in run order (reactive mode, cell succeeded); a failing one is last. */
  reran: Array<ReactiveCellRef & { status: 'ok' | 'error' }>;
  /** Every cell now marked stale (an upstream cell changed since it ran). */
  stale: Array<ReactiveCellRef & { description: string }>;
  /** The re-run that failed and stopped the cascade, and the cell keys it left stale; null when none did. */
  stopped: (ReactiveCellRef & { ename: string; evalue: string; notRun: string[] }) | null;
  /** Dependent cells in a cycle (not re-run), one list of keys per cycle. */
  cycles: string[][];
  /** Names this cell defines that other cells define too. */
  redefinitions: Array<{ name: string; cells: string[] }>;
}

/** The kernel's display hook, or undefined when not running inside the brainnet-ts kernel. */
export function kernelHook(): KernelHook | undefined {
  const hook = (globalThis as { __brainnetKernel?: KernelHook }).__brainnetKernel;
  return hook && typeof hook.display === 'function' ? hook : undefined;
}

/** True inside the brainnet-ts kernel (so displays become notebook outputs). */
export function inNotebook(): boolean {
  return kernelHook() !== undefined;
}

/** A fresh display id, unique within the process. */
export function newDisplayId(prefix = 'brainnet'): string {
  return `${prefix}-${process.pid.toString(36)}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}
