/**
 * Headless Chromium for the browser tests, driven over the Chrome DevTools Protocol through
 * `--remote-debugging-pipe` (fd 3 in, fd 4 out; NUL-separated JSON), so no npm package is needed.
 * The flags keep Chromium off the network (this machine has none): no background networking,
 * component updates or sync.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

/** The Chromium binary (Debian `chromium`); BRAINNET_CHROMIUM overrides it. */
export const CHROMIUM = process.env.BRAINNET_CHROMIUM ?? '/usr/bin/chromium';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A DevTools Protocol connection over Chromium's pipe; events are kept in `events`. */
export class Cdp {
  private nextId = 1;
  private buf = '';
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  readonly events: { method: string; params: any }[] = [];
  constructor(private readonly proc: ChildProcess) {
    (proc.stdio[4] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      let i: number;
      while ((i = this.buf.indexOf('\0')) >= 0) {
        const msg = JSON.parse(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
        if (msg.method) { this.events.push(msg); continue; }
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        if (msg.error) p.reject(new Error(`CDP: ${msg.error.message}`));
        else p.resolve(msg.result);
      }
    });
  }
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    const id = this.nextId++;
    (this.proc.stdio[3] as NodeJS.WritableStream).write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }
}

/** Starts headless Chromium with a fresh profile folder; `extraArgs` go before the start page. */
export function launchChromium(profileDir: string, extraArgs: string[] = []): { proc: ChildProcess; cdp: Cdp } {
  const proc = spawn(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profileDir}`, '--remote-debugging-pipe', '--window-size=1200,900',
      ...extraArgs, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
  );
  return { proc, cdp: new Cdp(proc) };
}

/** A page session: `evaluate` runs an expression in it, `waitFor` polls one until it is truthy. */
export interface Page {
  session: string;
  evaluate(expression: string): Promise<any>;
  waitFor(what: string, expression: string, ms?: number): Promise<any>;
}

/** Opens `url` in a new target and attaches to it. */
export async function openPage(cdp: Cdp, url: string): Promise<Page> {
  const { targetId } = await cdp.send('Target.createTarget', { url });
  const { sessionId: session } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  const evaluate = async (expression: string): Promise<any> => {
    const r = await cdp.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, session);
    if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  };
  const waitFor = async (what: string, expression: string, ms = 30000): Promise<any> => {
    const end = Date.now() + ms;
    let last: unknown;
    while (Date.now() < end) {
      try {
        last = await evaluate(expression);
        if (last) return last;
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(200);
    }
    throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
  };
  return { session, evaluate, waitFor };
}

/**
 * Ends a Chromium (or any) child process and waits until it has exited (so that its profile folder can be removed):
 * SIGTERM, then SIGKILL if it is still running after 5 s.
 */
export async function stopProcess(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(kill);
}

/** Removes a test folder that a browser may still be writing into as it exits (retries on ENOTEMPTY / EBUSY). */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}
