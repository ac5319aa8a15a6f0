/**
 * What a cell prints and displays: process.stdout/stderr (console.* included) become `stream` messages, batched
 * for 30 ms and flushed before any display so outputs keep their order; the display hook
 * (`globalThis.__brainnetKernel`, typed by lib/notebook/kernel-hook.ts) and tslab's display API become
 * `display_data`, `update_display_data` and `clear_output`.
 */
import type { KernelHook, MimeBundle as HookBundle } from '../../lib/notebook/kernel-hook.js';
import type { MimeBundle } from './execute.js';

type StreamName = 'stdout' | 'stderr';

/** Sends one iopub message with the running cell's parent header. */
export type Publish = (msgType: string, content: Record<string, unknown>) => void;

/** Buffers stdout and stderr and sends them as stream messages. */
export class Streams {
  private pending: Record<StreamName, string> = { stdout: '', stderr: '' };
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly publish: Publish) {}

  /** Routes process.stdout/stderr writes here. */
  capture(): void {
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = process[name];
      stream.write = ((chunk: unknown, encoding?: unknown, cb?: unknown) => {
        const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString(typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
        this.pending[name] += text;
        if (!this.timer) this.timer = setTimeout(() => this.flush(), 30);
        const done = typeof encoding === 'function' ? encoding : cb;
        if (typeof done === 'function') process.nextTick(done as () => void);
        return true;
      }) as typeof stream.write;
    }
  }

  /** Sends what is buffered now. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    for (const name of ['stdout', 'stderr'] as const) {
      const text = this.pending[name];
      if (!text) continue;
      this.pending[name] = '';
      this.publish('stream', { name, text });
    }
  }

  /** Writes a line to the current cell's output after what is pending. */
  note(name: StreamName, text: string): void {
    this.flush();
    this.publish('stream', { name, text: text.endsWith('\n') ? text : `${text}\n` });
  }
}

/** The display hook: `autoId` gives a display from a running cell its id (reactive re-runs update it in place). */
export function makeDisplayHook(opts: {
  streams: Streams;
  publish: Publish;
  executionCount: () => number;
  /** Called for a display without an id while a tracked cell runs; returns false when no cell is running. */
  autoId: (bundle: HookBundle) => boolean;
}): KernelHook {
  const { streams, publish } = opts;
  return {
    display(bundle, update = false) {
      if (!update && !bundle.transient?.display_id && opts.autoId(bundle)) return;
      streams.flush();
      // Binary payloads (image/png as bytes) go out base64-encoded, as the protocol expects.
      const data: Record<string, unknown> = {};
      for (const [mime, value] of Object.entries(bundle.data)) data[mime] = value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
      publish(update ? 'update_display_data' : 'display_data', { data, metadata: bundle.metadata ?? {}, transient: bundle.transient ?? {} });
    },
    clearOutput(wait = false) {
      streams.flush();
      publish('clear_output', { wait });
    },
    get executionCount() {
      return opts.executionCount();
    },
    language: 'typescript',
  };
}

/** Sets the hook on globalThis (non-enumerable) and bridges tslab's `tslab.display.*` to it. */
export function installDisplayHook(hook: KernelHook, resolveTslab: () => string | null): void {
  Object.defineProperty(globalThis, '__brainnetKernel', { value: hook, configurable: true, enumerable: false, writable: true });
  const file = resolveTslab();
  if (!file) return; // tslab not installed: nothing to bridge
  const tslabJupyter = require(file) as { lastWriteDisplayData?: unknown };
  tslabJupyter.lastWriteDisplayData = (data: MimeBundle & { transient?: { display_id?: string } }, update: boolean) => {
    const transient = data.transient?.display_id ? data.transient : undefined;
    hook.display({ data: data.data, metadata: data.metadata, transient }, update);
  };
}
