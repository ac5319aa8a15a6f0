/**
 * Progress bars that update in place: an HTML bar in a notebook (one display_id, throttled),
 * one redrawn line in a TTY terminal, and a line every ~10% or ~10 s in logs (CI).
 */
import { kernelHook, newDisplayId } from './kernel-hook.js';

/** Options for {@link progress}. */
export interface ProgressOptions {
  /** Number of steps, when known (enables percent and ETA). */
  total?: number;
  /** Text shown before the bar. */
  label?: string;
  /** Where to draw; default: 'notebook' inside the kernel, 'tty' when stdout is a TTY, else 'log'. */
  mode?: ProgressMode;
  /** Time source in milliseconds (default Date.now); inject a fake clock in tests. */
  now?: () => number;
  /** Writer for 'tty' and 'log' modes (default process.stdout.write). */
  write?: (s: string) => void;
  /** Minimum time between redraws in ms (default 250 in a notebook, 100 in a TTY). */
  minIntervalMs?: number;
  /** 'log' mode: also print when this long has passed since the last line (default 10 000 ms). */
  logIntervalMs?: number;
}

/** Where a progress bar draws. */
export type ProgressMode = 'notebook' | 'tty' | 'log';

/** A running progress bar. */
export interface ProgressBar {
  /** Advances by `n` steps (default 1), optionally with a short status text. */
  tick(n?: number, info?: string): void;
  /** Sets the number of steps done. */
  update(done: number, info?: string): void;
  /** Marks the bar finished and draws its final state. */
  done(info?: string): void;
}

/** What a bar shows at one moment. */
export interface ProgressState {
  label?: string;
  done: number;
  total?: number;
  /** Milliseconds since the bar started. */
  elapsedMs: number;
  info?: string;
  finished?: boolean;
}

/** Derived numbers: fraction in [0,1] (if total known), rate in steps/s, ETA in seconds. */
export interface ProgressStats {
  fraction?: number;
  rate?: number;
  etaSeconds?: number;
  elapsedSeconds: number;
}

/** Fraction done, rate (steps per second over the whole run) and ETA (remaining / rate). */
export function progressStats(done: number, total: number | undefined, elapsedMs: number): ProgressStats {
  const elapsedSeconds = Math.max(0, elapsedMs) / 1000;
  const fraction = total !== undefined && total > 0 ? Math.min(1, Math.max(0, done / total)) : total === 0 ? 1 : undefined;
  const rate = elapsedSeconds > 0 && done > 0 ? done / elapsedSeconds : undefined;
  const etaSeconds = total !== undefined && rate !== undefined ? Math.max(0, total - done) / rate : undefined;
  return { fraction, rate, etaSeconds, elapsedSeconds };
}

/** Formats seconds as `m:ss` or `h:mm:ss` (`--:--` when unknown). */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (x: number) => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

/** Formats a rate as `12.3 it/s`, or `4.5 s/it` when slower than one step per second. */
export function formatRate(rate: number | undefined): string {
  if (rate === undefined || !Number.isFinite(rate) || rate <= 0) return '? it/s';
  if (rate >= 1) return `${rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)} it/s`;
  return `${(1 / rate).toFixed(1)} s/it`;
}

/** A text bar of `width` cells for a fraction in [0,1]. */
export function textBar(fraction: number, width = 20): string {
  const full = Math.floor(fraction * width);
  const partial = fraction * width - full;
  const eighths = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
  const mid = full < width ? eighths[Math.floor(partial * 8)] : '';
  return '█'.repeat(full) + mid + ' '.repeat(Math.max(0, width - full - (mid ? 1 : 0)));
}

/** One line: `label  45/100  45% |█████    | 12.3 it/s  0:03<0:05  info`. */
export function formatProgressLine(state: ProgressState, barWidth = 20): string {
  const st = progressStats(state.done, state.total, state.elapsedMs);
  const parts: string[] = [];
  if (state.label) parts.push(state.label);
  if (state.total !== undefined) {
    parts.push(`${state.done}/${state.total}`);
    parts.push(`${String(Math.round((st.fraction ?? 0) * 100)).padStart(3)}% |${textBar(st.fraction ?? 0, barWidth)}|`);
  } else {
    parts.push(`${state.done}`);
  }
  parts.push(formatRate(st.rate));
  const eta = state.finished ? '' : state.total !== undefined ? `<${formatDuration(st.etaSeconds)}` : '';
  parts.push(`${formatDuration(st.elapsedSeconds)}${eta}`);
  if (state.info) parts.push(state.info);
  return parts.join('  ');
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The notebook form: an HTML bar with count, percent, rate and ETA. */
export function progressHtml(state: ProgressState): string {
  const st = progressStats(state.done, state.total, state.elapsedMs);
  const pct = st.fraction !== undefined ? st.fraction * 100 : undefined;
  const count = state.total !== undefined ? `${state.done}/${state.total}` : `${state.done}`;
  const timing = state.finished
    ? `${formatDuration(st.elapsedSeconds)}`
    : `${formatDuration(st.elapsedSeconds)} elapsed${state.total !== undefined ? `, ETA ${formatDuration(st.etaSeconds)}` : ''}`;
  const color = state.finished ? '#4caf50' : '#2196f3';
  const bar =
    pct !== undefined
      ? `<div style="flex:0 0 240px;height:12px;background:#e0e0e0;border-radius:3px;overflow:hidden">` +
        `<div style="width:${pct.toFixed(1)}%;height:100%;background:${color}"></div></div>`
      : '';
  const text = [
    state.label ? `<b>${escapeHtml(state.label)}</b>` : '',
    bar,
    `<span>${count}${pct !== undefined ? ` (${Math.round(pct)}%)` : ''}</span>`,
    `<span>${formatRate(st.rate)}</span>`,
    `<span>${timing}</span>`,
    state.info ? `<span>${escapeHtml(state.info)}</span>` : '',
  ]
    .filter(Boolean)
    .join('');
  return `<div class="brainnet-progress" style="display:flex;gap:10px;align-items:center;font-family:monospace;font-size:12px">${text}</div>`;
}

/** The bar's state carried by a notebook progress display's metadata (`metadata.brainnet.progress`), or undefined. */
export function progressFromMetadata(metadata: Record<string, unknown> | undefined): ProgressState | undefined {
  const p = (metadata?.brainnet as { progress?: Partial<ProgressState> } | undefined)?.progress;
  if (!p || typeof p !== 'object' || typeof p.done !== 'number' || typeof p.elapsedMs !== 'number') return undefined;
  return {
    label: typeof p.label === 'string' ? p.label : undefined,
    done: p.done,
    total: typeof p.total === 'number' ? p.total : undefined,
    elapsedMs: p.elapsedMs,
    info: typeof p.info === 'string' ? p.info : undefined,
    finished: p.finished === true,
  };
}

function defaultMode(): ProgressMode {
  if (kernelHook()) return 'notebook';
  return process.stdout.isTTY ? 'tty' : 'log';
}

/** Starts a progress bar (`tick`, `update`, `done`) drawn for where the code runs. */
export function progress(opts: ProgressOptions = {}): ProgressBar {
  const now = opts.now ?? Date.now;
  const mode = opts.mode ?? defaultMode();
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  const minInterval = opts.minIntervalMs ?? (mode === 'notebook' ? 250 : 100);
  const logInterval = opts.logIntervalMs ?? 10_000;
  const start = now();
  const displayId = newDisplayId('progress');
  let doneCount = 0;
  let info: string | undefined;
  let finished = false;
  let lastDraw = -Infinity;
  let shown = false;
  let lastLogBucket = -1;
  let lastLogTime = start;

  const state = (): ProgressState => ({ label: opts.label, done: doneCount, total: opts.total, elapsedMs: now() - start, info, finished });

  const draw = (force: boolean): void => {
    const t = now();
    if (mode === 'notebook') {
      if (!force && t - lastDraw < minInterval) return;
      const hook = kernelHook();
      const html = progressHtml(state());
      // The state rides along in metadata, so the headless runner can mirror the bar in its terminal.
      const bundle = { data: { 'text/html': html, 'text/plain': formatProgressLine(state()) }, metadata: { brainnet: { progress: state() } }, transient: { display_id: displayId } };
      if (hook) hook.display(bundle, shown);
      else write(formatProgressLine(state()) + '\n');
      shown = true;
      lastDraw = t;
    } else if (mode === 'tty') {
      if (!force && t - lastDraw < minInterval) return;
      write(`\r${formatProgressLine(state())}\x1b[K${finished ? '\n' : ''}`);
      lastDraw = t;
    } else {
      const st = progressStats(doneCount, opts.total, t - start);
      const bucket = st.fraction !== undefined ? Math.floor(st.fraction * 10) : -1;
      const due = force || (bucket > lastLogBucket && bucket >= 0) || t - lastLogTime >= logInterval;
      if (!due) return;
      write(formatProgressLine(state()) + '\n');
      lastLogBucket = Math.max(lastLogBucket, bucket);
      lastLogTime = t;
    }
  };

  // The bar shows up at once (a log bar prints its 0% line).
  draw(true);

  const bar: ProgressBar = {
    tick(n = 1, newInfo?: string) {
      if (finished) return;
      doneCount += n;
      if (newInfo !== undefined) info = newInfo;
      draw(false);
    },
    update(done: number, newInfo?: string) {
      if (finished) return;
      doneCount = done;
      if (newInfo !== undefined) info = newInfo;
      draw(false);
    },
    done(newInfo?: string) {
      if (finished) return;
      if (newInfo !== undefined) info = newInfo;
      finished = true;
      draw(true);
    },
  };
  return bar;
}

function knownLength(x: unknown): number | undefined {
  if (Array.isArray(x) || ArrayBuffer.isView(x)) return (x as { length: number }).length;
  if (x instanceof Map || x instanceof Set) return x.size;
  return undefined;
}

/** Iterates `iterable`, ticking a progress bar per item (total taken from arrays, sets and maps). */
export function withProgress<T>(iterable: Iterable<T>, opts?: ProgressOptions): Generator<T, void, undefined>;
/** Async form: iterates an async iterable, ticking a progress bar per item. */
export function withProgress<T>(iterable: AsyncIterable<T>, opts?: ProgressOptions): AsyncGenerator<T, void, undefined>;
export function withProgress<T>(iterable: Iterable<T> | AsyncIterable<T>, opts: ProgressOptions = {}): Generator<T, void, undefined> | AsyncGenerator<T, void, undefined> {
  const o = { ...opts, total: opts.total ?? knownLength(iterable) };
  if (Symbol.asyncIterator in Object(iterable)) {
    return (async function* () {
      const bar = progress(o);
      for await (const item of iterable as AsyncIterable<T>) {
        yield item;
        bar.tick();
      }
      bar.done();
    })();
  }
  return (function* () {
    const bar = progress(o);
    for (const item of iterable as Iterable<T>) {
      yield item;
      bar.tick();
    }
    bar.done();
  })();
}
