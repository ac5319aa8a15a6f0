/**
 * What a long cell is doing, in the runner's terminal: the progress bars a cell displays in the notebook
 * (lib/notebook/progress.ts, whose displays carry their state in `metadata.brainnet.progress`) mirrored as one
 * line with count, rate and ETA. In a TTY the line is redrawn in place (with the cell's running time while it
 * has no bar); in a log (stdout not a TTY) at most one line is printed per `intervalMs` (10 s), the first one
 * `intervalMs` after the cell started, so short cells stay quiet.
 */
import { formatDuration, formatProgressLine, type ProgressState } from '../notebook/progress.js';
import type { CellEvent, ProgressEvent } from './runner.js';

/** Options for {@link LiveProgress}. */
export interface LiveProgressOptions {
  /** Where lines go (default process.stdout.write). */
  write?: (s: string) => void;
  /** Redraw one line in place (default: process.stdout.isTTY). */
  tty?: boolean;
  /** Clock in ms (default Date.now); tests inject one. */
  now?: () => number;
  /** Log mode: at most one line per this many ms (default 10 000). */
  intervalMs?: number;
  /** TTY mode: redraw at most this often, and tick the running time (default 250 ms). */
  redrawMs?: number;
  /** Prefix of each line (default two spaces). */
  indent?: string;
}

/** Mirrors the running cell's progress displays in a terminal; feed it cell and progress events. */
export class LiveProgress {
  private readonly write: (s: string) => void;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly redrawMs: number;
  private readonly indent: string;
  private cell: { number: number; total: number; startedAt: number } | null = null;
  private latest: { state: ProgressState; at: number } | null = null;
  private lastLineAt = 0;
  private lastDrawAt = -Infinity;
  private shownLine = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: LiveProgressOptions = {}) {
    this.write = opts.write ?? ((s) => void process.stdout.write(s));
    this.tty = opts.tty ?? !!process.stdout.isTTY;
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.redrawMs = opts.redrawMs ?? 250;
    this.indent = opts.indent ?? '  ';
  }

  /** A cell starts or ends (the runner's onCell). */
  onCell(ev: CellEvent): void {
    if (ev.phase === 'start') {
      this.cell = { number: ev.number, total: ev.total, startedAt: this.now() };
      this.latest = null;
      this.lastLineAt = this.cell.startedAt;
      if (this.tty && !this.timer) {
        this.timer = setInterval(() => this.draw(true), this.redrawMs);
        this.timer.unref();
      }
    } else {
      this.stop();
    }
  }

  /** A progress display of the running cell (the runner's onProgress). */
  onProgress(ev: ProgressEvent): void {
    if (!this.cell || ev.cell !== this.cell.number) this.cell = { number: ev.cell, total: ev.total, startedAt: this.now() - ev.state.elapsedMs };
    this.latest = { state: ev.state, at: this.now() };
    if (this.tty) this.draw(!!ev.state.finished);
    else if (this.now() - this.lastLineAt >= this.intervalMs) {
      this.write(`${this.line()}\n`);
      this.lastLineAt = this.now();
    }
  }

  /** Clears the redrawn line (before the caller prints a line of its own); the next update draws it again. */
  clear(): void {
    if (this.tty && this.shownLine) {
      this.write('\r\x1b[K');
      this.shownLine = false;
    }
  }

  /** Ends the cell: the TTY line is cleared and the timer stopped (nothing is left running). */
  stop(): void {
    this.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.cell = null;
    this.latest = null;
  }

  /** The line for now: `cell 5/12  tokens  340/1000  34% |███   | 12.3 it/s  0:28<0:54`, or the cell's running time. */
  line(): string {
    const c = this.cell!;
    const head = `${this.indent}cell ${c.number}/${c.total}`;
    if (!this.latest) return `${head} running ${formatDuration((this.now() - c.startedAt) / 1000)}`;
    // The elapsed time goes on between updates, so the rate and ETA stay current on a redraw.
    const s = this.latest.state;
    const elapsedMs = s.finished ? s.elapsedMs : s.elapsedMs + (this.now() - this.latest.at);
    return `${head}  ${formatProgressLine({ ...s, elapsedMs })}`;
  }

  private draw(force: boolean): void {
    if (!this.cell || (!force && this.now() - this.lastDrawAt < this.redrawMs)) return;
    this.write(`\r${this.line()}\x1b[K`);
    this.shownLine = true;
    this.lastDrawAt = this.now();
  }
}
