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
      '--no-first-run', '--disable-dev-shm-usage', '--disable-breakpad', '--disable-crash-reporter', `--user-data-dir=${profileDir}`,
      '--remote-debugging-pipe', '--window-size=1200,900', ...extraArgs, 'about:blank'],
    // its own process group, so that stopProcess ends its helper processes too (they write into the profile folder)
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true },
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

/** Sends a signal to the process group a child leads (Chromium: spawned detached), else to the child alone. */
function signal(proc: ChildProcess, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-proc.pid!, sig);
    return true;
  } catch {
    if (sig !== 0 && proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    return false;
  }
}

/**
 * Ends a Chromium (or any) child process that this test started, with the helper processes of its group, and waits
 * until they have exited (so that a profile folder can be removed): SIGTERM, then SIGKILL after 5 s.
 */
export async function stopProcess(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.pid === undefined) return;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    signal(proc, 'SIGTERM');
    const kill = setTimeout(() => signal(proc, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(kill);
  }
  // helpers of the group may outlive the main process by a moment
  for (let t = Date.now(); signal(proc, 0) && Date.now() - t < 5000; ) await sleep(100);
  if (signal(proc, 0)) signal(proc, 'SIGKILL');
}

/** Removes a test folder that a browser may still be writing into as it exits (retries on ENOTEMPTY / EBUSY). */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}
