/**
 * The main thread's client of the language-service worker: the TypeScript language service (language.ts) loads
 * its libraries and answers completion and hover requests off the main thread, warmed up at start.
 */
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { safeResolve } from './channels.js';
import type { Completion } from './language.js';

/** Source of the language-service worker. */
const LANGUAGE_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
try { require(workerData.tsxCjs); } catch {}
const { CellLanguageService } = require(workerData.module);
const svc = new CellLanguageService(workerData.cwd);
parentPort.on('message', (m) => {
  let result = null, error = null;
  try {
    if (m.op === 'add') svc.addCell(m.code);
    else if (m.op === 'complete') result = svc.complete(m.code, m.cursor);
    else if (m.op === 'inspect') result = svc.inspect(m.code, m.cursor);
  } catch (e) { error = String(e && e.stack || e); }
  if (m.id !== undefined) parentPort.postMessage({ id: m.id, result, error });
});
// Warm up: load lib.d.ts, @types/node and the package's own types before the first request.
try { svc.complete('', 0); } catch {}
`;

/** Talks to the language-service worker; requests are answered in order. */
export class LanguageClient {
  private worker: Worker | null = null;
  private nextId = 0;
  private readonly pending = new Map<number, (r: { result: unknown; error: string | null }) => void>();

  constructor(private readonly log: (text: string) => void) {}

  private get w(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(LANGUAGE_WORKER_SOURCE, {
      eval: true,
      workerData: { tsxCjs: safeResolve('tsx/cjs'), module: path.join(__dirname, 'language.ts'), cwd: process.cwd() },
      stdout: true,
      stderr: true,
    });
    w.unref();
    w.on('message', (m: { id: number; result: unknown; error: string | null }) => {
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    });
    w.on('error', (e) => {
      this.log(`language service worker failed: ${e.message}`);
      for (const done of this.pending.values()) done({ result: null, error: e.message });
      this.pending.clear();
      this.worker = null;
    });
    this.worker = w;
    return w;
  }

  /** Starts the worker (and its warm-up) now. */
  start(): void {
    void this.w;
  }

  /** Adds a cell that ran to the history the service sees. */
  addCell(code: string): void {
    this.w.postMessage({ op: 'add', code });
  }

  private request<T>(op: string, code: string, cursor: number): Promise<T | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, (r) => {
        if (r.error) this.log(`language service ${op} failed: ${r.error}`);
        resolve((r.result as T) ?? null);
      });
      this.w.postMessage({ id, op, code, cursor });
    });
  }

  /** Completions at `cursor` (a JavaScript string offset). */
  async complete(code: string, cursor: number): Promise<Completion> {
    return (await this.request<Completion>('complete', code, cursor)) ?? { matches: [], cursor_start: cursor, cursor_end: cursor, types: [] };
  }

  /** Hover documentation at `cursor`, or null. */
  inspect(code: string, cursor: number): Promise<Record<string, string> | null> {
    return this.request('inspect', code, cursor);
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}
