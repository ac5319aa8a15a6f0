/**
 * A small Jupyter client for the conformance tests that parses every message strictly (protocol-schema.ts):
 * it starts a kernel from its kernel.json over ipc, connects shell and stdin with one identity (as front ends do,
 * so input requests reach it), iopub, control and heartbeat, and records every message it receives and every
 * problem found in one. Requests are read back as a strict client does: the next message on the socket must be
 * the reply, with the request as its parent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { liveKernels } from 'brainnet/runner';
import { validateMessage } from './protocol-schema.js';

const DELIM = '<IDS|MSG>';

export interface Message {
  header: { msg_id: string; msg_type: string; [k: string]: unknown };
  parent_header: { msg_id?: string; [k: string]: unknown };
  metadata: Record<string, unknown>;
  content: Record<string, any>;
}

type Sock = zmq.Dealer | zmq.Subscriber;

/**
 * The runner's record of live kernels (lib/runner/jupyter-client.ts; liveKernels() creates it with its exit hook).
 * A StrictClient's kernel is entered there too, so the suite's root hooks (test/root-hooks.ts) stop it when a test
 * that started it times out or fails, and the process's exit kills it.
 */
function liveRecord(): Set<unknown> {
  liveKernels();
  return (globalThis as Record<symbol, Set<unknown>>)[Symbol.for('brainnet.runner.liveKernels')];
}

/** A kernel under test with its five channels. */
export class StrictClient {
  /** Problems found in received messages, with the channel and message type. */
  readonly violations: string[] = [];
  /** Every message received, in order, per channel. */
  readonly received: Record<'shell' | 'control' | 'iopub' | 'stdin', Message[]> = { shell: [], control: [], iopub: [], stdin: [] };
  readonly stderr: string[] = [];
  private readonly session = crypto.randomUUID();
  private readonly queues = new Map<Sock, { items: Message[]; waiters: Array<(m: Message) => void> }>();

  private constructor(
    readonly proc: ChildProcess,
    private readonly key: string,
    readonly shell: zmq.Dealer,
    readonly stdin: zmq.Dealer,
    readonly control: zmq.Dealer,
    readonly iopub: zmq.Subscriber,
    readonly hb: zmq.Request,
    private readonly dir: string,
  ) {}

  /** Starts the kernel of `specFile` (kernel.json) in `cwd`. */
  static async start(specFile: string, cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<StrictClient> {
    const spec = JSON.parse(fs.readFileSync(specFile, 'utf8')) as { argv: string[] };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-strict-'));
    const ip = path.join(dir, 'k');
    const key = crypto.randomBytes(16).toString('hex');
    const conn = { transport: 'ipc', ip, shell_port: 1, iopub_port: 2, stdin_port: 3, control_port: 4, hb_port: 5, key, signature_scheme: 'hmac-sha256', kernel_name: 'brainnet-ts' };
    const file = path.join(dir, 'connection.json');
    fs.writeFileSync(file, JSON.stringify(conn));
    const argv = spec.argv.map((a) => a.replace('{connection_file}', file));
    const proc = spawn(argv[0], argv.slice(1), { cwd, env: { ...env, JPY_PARENT_PID: String(process.pid) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const routingId = `strict-${crypto.randomBytes(4).toString('hex')}`;
    const ep = (p: number) => `ipc://${ip}-${p}`;
    const c = new StrictClient(
      proc,
      key,
      new zmq.Dealer({ linger: 0, routingId }),
      new zmq.Dealer({ linger: 0, routingId }),
      new zmq.Dealer({ linger: 0 }),
      new zmq.Subscriber({ linger: 0 }),
      new zmq.Request({ linger: 0, receiveTimeout: 10_000 }),
      dir,
    );
    liveRecord().add(c);
    proc.stderr!.on('data', (d) => c.stderr.push(String(d)));
    proc.stdout!.on('data', () => {});
    c.shell.connect(ep(1));
    c.iopub.connect(ep(2));
    c.iopub.subscribe();
    c.stdin.connect(ep(3));
    c.control.connect(ep(4));
    c.hb.connect(ep(5));
    c.pump(c.shell, 'shell');
    c.pump(c.control, 'control');
    c.pump(c.iopub, 'iopub');
    c.pump(c.stdin, 'stdin');
    // The first kernel_info_reply says the kernel is up; wait until iopub carries its status too.
    // Requests sent before the kernel binds are delivered when it does, so any of them may be answered first.
    // No deadline of its own: the test's timeout bounds the wait, however loaded the machine is.
    const sent = new Set<string>();
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`kernel exited while starting: ${c.stderr.join('')}`);
      sent.add(await c.send(c.shell, 'kernel_info_request', {}));
      const reply = await c.next(c.shell, 2000).catch(() => null);
      if (!reply) continue;
      const seen = await c.waitFor(c.iopub, (m) => sent.has(m.parent_header.msg_id ?? ''), 1000).catch(() => null);
      if (seen) break;
    }
    // Let the replies to the other start-up requests arrive, then forget them: the tests read requests in order.
    await new Promise((r) => setTimeout(r, 300));
    c.drain(c.shell);
    c.drain(c.iopub);
    return c;
  }

  private sign(parts: Buffer[]): string {
    const h = crypto.createHmac('sha256', this.key);
    for (const p of parts) h.update(p);
    return h.digest('hex');
  }

  private queue(sock: Sock) {
    let q = this.queues.get(sock);
    if (!q) this.queues.set(sock, (q = { items: [], waiters: [] }));
    return q;
  }

  private pump(sock: Sock, channel: keyof StrictClient['received']): void {
    void (async () => {
      for await (const frames of sock) {
        const i = frames.findIndex((f) => f.toString() === DELIM);
        const [sig, ...parts] = frames.slice(i + 1, i + 6) as Buffer[];
        if (sig.toString() !== this.sign(parts)) {
          this.violations.push(`${channel}: a message with a bad signature`);
          continue;
        }
        const [header, parent, metadata, content] = parts.map((p) => JSON.parse(p.toString()));
        for (const p of validateMessage(header, parent, content)) this.violations.push(`${channel} ${header?.msg_type}: ${p}`);
        const m: Message = { header, parent_header: parent, metadata, content };
        this.received[channel].push(m);
        const q = this.queue(sock);
        const w = q.waiters.shift();
        if (w) w(m);
        else q.items.push(m);
      }
    })().catch(() => {});
  }

  /** Sends a request; returns its msg_id. */
  async send(sock: zmq.Dealer, msgType: string, content: Record<string, unknown>, parent: object = {}): Promise<string> {
    const header = { msg_id: crypto.randomUUID(), msg_type: msgType, session: this.session, username: 'strict', date: new Date().toISOString(), version: '5.3' };
    const parts = [header, parent, {}, content].map((x) => Buffer.from(JSON.stringify(x)));
    await sock.send([DELIM, this.sign(parts), ...parts]);
    return header.msg_id;
  }

  /**
   * The next message on a socket. Without `ms` it waits as long as it takes (the test's own timeout bounds it: a
   * reply on a loaded machine is late, not lost); with `ms` it rejects after that long (to probe, not to fail).
   */
  next(sock: Sock, ms?: number): Promise<Message> {
    const q = this.queue(sock);
    const m = q.items.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const waiter = (x: Message) => {
        if (t) clearTimeout(t);
        resolve(x);
      };
      const t =
        ms === undefined
          ? undefined
          : setTimeout(() => {
              q.waiters.splice(q.waiters.indexOf(waiter), 1);
              reject(new Error(`no message within ${ms} ms`));
            }, ms);
      q.waiters.push(waiter);
    });
  }

  /** Skips messages until one matches (within `ms`, when given). */
  async waitFor(sock: Sock, match: (m: Message) => boolean, ms?: number): Promise<Message> {
    const end = ms === undefined ? Infinity : Date.now() + ms;
    for (;;) {
      const m = await this.next(sock, end === Infinity ? undefined : Math.max(1, end - Date.now()));
      if (match(m)) return m;
    }
  }

  /** Drops what is queued on a socket. */
  drain(sock: Sock): void {
    this.queue(sock).items.length = 0;
  }

  /** The iopub messages of one request, up to and including its idle status. */
  async iopubOf(msgId: string): Promise<Message[]> {
    const out: Message[] = [];
    for (;;) {
      const m = await this.next(this.iopub);
      if (m.parent_header.msg_id !== msgId) continue;
      out.push(m);
      if (m.header.msg_type === 'status' && m.content.execution_state === 'idle') return out;
    }
  }

  /** A shell request and its reply (the next shell message, which must answer it). */
  async request(msgType: string, content: Record<string, unknown>, sock: zmq.Dealer = this.shell): Promise<{ id: string; reply: Message; iopub: Message[] }> {
    const id = await this.send(sock, msgType, content);
    const iopub = sock === this.shell ? await this.iopubOf(id) : [];
    const reply = await this.next(sock);
    return { id, reply, iopub };
  }

  /** Executes code; `onInput` answers input requests on stdin. */
  async execute(code: string, opts: { allowStdin?: boolean; onInput?: (m: Message) => string | null } = {}): Promise<{ id: string; reply: Message; iopub: Message[]; inputRequests: Message[] }> {
    const content = { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: !!opts.allowStdin, stop_on_error: true };
    const id = await this.send(this.shell, 'execute_request', content);
    const inputRequests: Message[] = [];
    let done = false;
    const answering = (async () => {
      while (!done && opts.onInput) {
        const m = await this.next(this.stdin, 200).catch(() => null);
        if (!m) continue;
        inputRequests.push(m);
        const value = opts.onInput(m);
        if (value !== null) await this.send(this.stdin, 'input_reply', { status: 'ok', value }, m.header);
      }
    })();
    const iopub = await this.iopubOf(id);
    done = true;
    await answering;
    const reply = await this.next(this.shell);
    return { id, reply, iopub, inputRequests };
  }

  /** One heartbeat round trip. */
  async heartbeat(): Promise<boolean> {
    await this.hb.send('ping');
    const [echo] = await this.hb.receive();
    return echo.toString() === 'ping';
  }

  /** True while the kernel process runs. */
  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Waits up to `ms` for the kernel to exit. */
  async exited(ms: number): Promise<boolean> {
    if (!this.alive) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.proc.once('exit', () => (clearTimeout(t), resolve(true)));
    });
  }

  /** The kernel's process id (for the root hooks' messages). */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Same as {@link close} (the root hooks call it). */
  kill(): Promise<void> {
    return this.close();
  }

  /** Synchronous kill, run by the runner's exit hook when the test process exits with this kernel still recorded. */
  killNow(): void {
    liveRecord().delete(this);
    if (this.alive) this.proc.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Kills the kernel (if still running), closes the sockets and removes the connection folder. */
  async close(): Promise<void> {
    liveRecord().delete(this);
    if (this.alive) {
      this.proc.kill('SIGKILL');
      await this.exited(5000);
    }
    for (const s of [this.shell, this.stdin, this.control, this.iopub, this.hb]) if (!s.closed) s.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
