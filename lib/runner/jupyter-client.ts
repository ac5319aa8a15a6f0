/**
 * A small Jupyter client over zeromq 6: finds a kernel spec, starts the kernel with a fresh
 * connection file, executes code and collects its outputs as nbformat 4 output objects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as ZMQ from 'zeromq';

// ---------------------------------------------------------------------------------------------
// Kernel specs

/** A kernel spec (kernel.json) plus the folder it was found in. */
export interface KernelSpec {
  name: string;
  /** Folder holding kernel.json (the `{resource_dir}`). */
  resourceDir: string;
  argv: string[];
  display_name: string;
  language: string;
  env?: Record<string, string>;
  interrupt_mode?: 'signal' | 'message';
}

/** Jupyter data folders in search order: $JUPYTER_PATH, $JUPYTER_DATA_DIR (or $XDG_DATA_HOME/jupyter, ~/.local/share/jupyter), /usr/local/share/jupyter, /usr/share/jupyter. */
export function jupyterDataDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  for (const d of (env.JUPYTER_PATH ?? '').split(path.delimiter)) if (d) dirs.push(d);
  dirs.push(env.JUPYTER_DATA_DIR || path.join(env.XDG_DATA_HOME || path.join(env.HOME || os.homedir(), '.local', 'share'), 'jupyter'));
  dirs.push('/usr/local/share/jupyter', '/usr/share/jupyter');
  return [...new Set(dirs.map((d) => path.resolve(d)))];
}

function readSpec(name: string, dir: string): KernelSpec | undefined {
  const file = path.join(dir, 'kernel.json');
  if (!fs.existsSync(file)) return undefined;
  let json: Partial<KernelSpec>;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: expected a JSON kernel spec, found unparsable text (${(e as Error).message}); fix or reinstall the kernel`);
  }
  if (!Array.isArray(json.argv) || json.argv.length === 0) {
    throw new Error(`${file}: expected "argv": [program, ...args] in the kernel spec, found ${JSON.stringify(json.argv)}; reinstall the kernel`);
  }
  return { name, resourceDir: dir, argv: json.argv, display_name: json.display_name ?? name, language: json.language ?? '', env: json.env, interrupt_mode: json.interrupt_mode };
}

/** All kernel specs visible in the Jupyter data folders (the first folder that has a name wins). */
export function listKernelSpecs(env: NodeJS.ProcessEnv = process.env): Record<string, KernelSpec> {
  const out: Record<string, KernelSpec> = {};
  for (const d of jupyterDataDirs(env)) {
    const kdir = path.join(d, 'kernels');
    let names: string[];
    try {
      names = fs.readdirSync(kdir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (out[n.toLowerCase()]) continue;
      try {
        const spec = readSpec(n, path.join(kdir, n));
        if (spec) out[n.toLowerCase()] = spec;
      } catch {
        // a broken spec of another name must not hide the others
      }
    }
  }
  return out;
}

/** Finds the kernel spec called `name` (case-insensitive), or throws naming the folders searched and the kernels found. */
export function findKernelSpec(name: string, env: NodeJS.ProcessEnv = process.env): KernelSpec {
  for (const d of jupyterDataDirs(env)) {
    const dir = path.join(d, 'kernels', name.toLowerCase());
    const spec = readSpec(name.toLowerCase(), dir);
    if (spec) return spec;
  }
  const found = Object.keys(listKernelSpecs(env));
  const hint = name === 'brainnet-ts' ? 'install it with `npx tsx kernels/install.ts`' : `install the kernel, or pass another with --kernel (found: ${found.join(', ') || 'none'})`;
  throw new Error(
    `Jupyter kernel "${name}" not found: expected ${name}/kernel.json under a kernels/ folder of ${jupyterDataDirs(env).join(', ')}; found ${found.length ? `only ${found.join(', ')}` : 'no kernels'}; ${hint}`,
  );
}

// ---------------------------------------------------------------------------------------------
// nbformat output objects

/** One nbformat 4 output. */
export type NotebookOutput =
  | { output_type: 'stream'; name: 'stdout' | 'stderr'; text: string }
  | { output_type: 'display_data'; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: 'execute_result'; execution_count: number | null; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] };

/** The outcome of one execute_request. */
export interface ExecuteResult {
  status: 'ok' | 'error' | 'aborted';
  executionCount: number | null;
  outputs: NotebookOutput[];
  /** The error output (or the execute_reply's error fields) when status is 'error'. */
  error?: { ename: string; evalue: string; traceback: string[] };
  /** The execute_reply's metadata (the brainnet-ts kernel puts its `brainnet` field there: ReactiveReplyMetadata). */
  metadata: Record<string, unknown>;
}

/** Options for {@link KernelClient.start}. */
export interface StartOptions {
  /** Kernel spec name (default 'brainnet-ts'), or a spec object. */
  kernel?: string | KernelSpec;
  /** Working folder of the kernel process (the notebook's folder). */
  cwd?: string;
  /** How long to wait for kernel_info_reply (default 60 s). */
  startupTimeoutMs?: number;
  /** Extra environment for the kernel process. */
  env?: Record<string, string>;
}

/** An input_request from the kernel (the cell called input() or prompt()). */
export interface InputRequest {
  prompt: string;
  password: boolean;
}

/** A display_data or update_display_data message as it arrives (before it is merged into the outputs). */
export interface DisplayMessage {
  type: 'display_data' | 'update_display_data';
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  displayId?: string;
}

/** Options for {@link KernelClient.execute}. */
export interface ExecuteOptions {
  /** Time limit in ms (default: none). On time-out the kernel is interrupted and the call rejects. */
  timeoutMs?: number;
  /** Called after each output change (new output, merged stream, update, clear). */
  onOutput?: (outputs: NotebookOutput[]) => void;
  /**
   * Answers the cell's input requests (the value, or a thrown error the kernel raises in the cell). With it the
   * request says `allow_stdin: true`; without it `false`, and a cell that asks for input gets the kernel's error.
   */
  onInput?: (request: InputRequest) => string | Promise<string>;
  /** Called with every display_data and update_display_data of the cell as it arrives (progress bars, ...). */
  onDisplay?: (message: DisplayMessage) => void;
}

/** Raised when the kernel dies, times out or cannot start. */
export class KernelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelError';
  }
}

interface JupyterMessage {
  header: { msg_id: string; msg_type: string; session: string; username: string; date: string; version: string };
  parent_header: { msg_id?: string; msg_type?: string };
  metadata: Record<string, unknown>;
  content: Record<string, unknown>;
}

const DELIM = '<IDS|MSG>';

/** Finds `n` free TCP ports on 127.0.0.1 (bound then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((res, rej) => {
        srv.once('error', rej);
        srv.listen(0, '127.0.0.1', () => res());
      });
      ports.push((srv.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
  }
}

/** Strips ANSI escape sequences (kernel tracebacks are coloured). */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b\][^\x07]*\x07/g, '');
}

interface Pending {
  msgId: string;
  outputs: NotebookOutput[];
  clearPending: boolean;
  gotIdle: boolean;
  reply?: Record<string, unknown>;
  replyMetadata?: Record<string, unknown>;
  onOutput?: (outputs: NotebookOutput[]) => void;
  onInput?: ExecuteOptions['onInput'];
  onDisplay?: ExecuteOptions['onDisplay'];
  resolve: (r: ExecuteResult) => void;
  reject: (e: Error) => void;
}

// ---------------------------------------------------------------------------------------------
// No kernel left behind: every kernel this process starts is recorded until it is shut down or killed; when the
// process exits (normally, by process.exit, or on an uncaught exception) the ones left are killed and their
// connection files removed. A runner killed with SIGKILL cannot do this: the kernel then exits on its own (its parent
// poller), and the next runner removes the files whose owner is dead (removeStaleKernelFiles).

/** The live kernels, on globalThis so that test hooks find them without importing this module. */
const LIVE_KEY = Symbol.for('brainnet.runner.liveKernels');
function liveSet(): Set<KernelClient> {
  const g = globalThis as { [LIVE_KEY]?: Set<KernelClient> };
  if (!g[LIVE_KEY]) {
    g[LIVE_KEY] = new Set();
    process.on('exit', () => {
      for (const k of g[LIVE_KEY]!) k.killNow();
    });
  }
  return g[LIVE_KEY]!;
}

/** Kernels started by this process and not yet stopped. */
export function liveKernels(): KernelClient[] {
  return [...liveSet()];
}

/**
 * Makes SIGINT, SIGTERM and SIGHUP end the process with 128 + the signal's number after a note on stderr, so that
 * the exit hook stops the kernels and removes their files (a signal's default action skips exit handlers).
 * For programs that run notebooks (data-prep/example.ts); the runner's CLI has its own (watch mode ends on Ctrl-C).
 * Returns a function that removes the handlers.
 */
export function exitOnSignals(what = process.argv[1] ?? 'node'): () => void {
  const codes: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  const handler = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: ${path.basename(what)} stops its kernels and exits\n`);
    process.exit(codes[signal]);
  };
  for (const s of Object.keys(codes) as NodeJS.Signals[]) process.on(s, handler);
  return () => {
    for (const s of Object.keys(codes) as NodeJS.Signals[]) process.off(s, handler);
  };
}

const CONNECTION_FILE = /^brainnet-kernel-(\d+)-[0-9a-f]+\.json$/;
const IPC_DIR = /^brainnet-ipc-(\d+)-/;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes connection files and ipc folders in `dir` left by runners that died (their pid is in the name); returns them. */
export function removeStaleKernelFiles(dir: string = os.tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = CONNECTION_FILE.exec(name) ?? IPC_DIR.exec(name);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    try {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed.push(path.join(dir, name));
    } catch {
      /* another user's, or already gone */
    }
  }
  return removed;
}

/** A running kernel: `await KernelClient.start({ kernel: 'brainnet-ts', cwd })`, then `execute(code)`, then `shutdown()`. */
export class KernelClient {
  readonly spec: KernelSpec;
  /** Captured tail of the kernel's stderr (for error messages). */
  stderrTail = '';
  private readonly key: Buffer;
  private readonly session = crypto.randomUUID();
  private readonly zmq: typeof ZMQ;
  private readonly shell: ZMQ.Dealer;
  private readonly control: ZMQ.Dealer;
  private readonly iopub: ZMQ.Subscriber;
  private readonly stdin: ZMQ.Dealer;
  /** When the kernel was started (Date.now()). */
  readonly startedAt = Date.now();
  private readonly proc: ChildProcess;
  private readonly connectionFile: string;
  private exited?: { code: number | null; signal: NodeJS.Signals | null };
  private pending?: Pending;
  private shellWaiters = new Map<string, (m: JupyterMessage) => void>();
  private iopubSeen = false;
  private closed = false;
  /** The private folder holding the ipc sockets, removed at shutdown (null over TCP). */
  private ipcDir: string | null = null;
  /** display_id -> outputs showing it (across executions), for update_display_data. */
  private displays = new Map<string, Array<{ data: Record<string, unknown>; metadata: Record<string, unknown> }>>();
  private deathListeners = new Set<(e: KernelError) => void>();

  private constructor(spec: KernelSpec, zmq: typeof ZMQ, key: Buffer, connectionFile: string, proc: ChildProcess, sockets: { shell: ZMQ.Dealer; control: ZMQ.Dealer; iopub: ZMQ.Subscriber; stdin: ZMQ.Dealer }) {
    this.spec = spec;
    this.zmq = zmq;
    this.key = key;
    this.connectionFile = connectionFile;
    this.proc = proc;
    this.shell = sockets.shell;
    this.control = sockets.control;
    this.iopub = sockets.iopub;
    this.stdin = sockets.stdin;
  }

  /** Starts a kernel and waits until it answers kernel_info_request and its IOPub channel is live. */
  static async start(opts: StartOptions = {}): Promise<KernelClient> {
    const spec = typeof opts.kernel === 'object' ? opts.kernel : findKernelSpec(opts.kernel ?? 'brainnet-ts');
    const zmq = await import('zeromq');
    // Unix sockets where the OS has them: a TCP port chosen free can be taken by another process before
    // the kernel binds it (kernels started side by side), an ipc path in a private folder cannot.
    const ipc = process.platform !== 'win32';
    removeStaleKernelFiles();
    const [shellPort, iopubPort, stdinPort, controlPort, hbPort] = ipc ? [1, 2, 3, 4, 5] : await freePorts(5);
    // Both names carry this process's pid, so a later runner can tell leftovers of a dead one from live ones.
    const ip = ipc ? path.join(fs.mkdtempSync(path.join(os.tmpdir(), `brainnet-ipc-${process.pid}-`)), 'kernel') : '127.0.0.1';
    const endpoint = (port: number) => (ipc ? `ipc://${ip}-${port}` : `tcp://${ip}:${port}`);
    const key = crypto.randomBytes(32).toString('hex');
    const conn = {
      shell_port: shellPort, iopub_port: iopubPort, stdin_port: stdinPort, control_port: controlPort, hb_port: hbPort,
      ip, key, transport: ipc ? 'ipc' : 'tcp', signature_scheme: 'hmac-sha256', kernel_name: spec.name,
    };
    const connectionFile = path.join(os.tmpdir(), `brainnet-kernel-${process.pid}-${crypto.randomBytes(6).toString('hex')}.json`);
    fs.writeFileSync(connectionFile, JSON.stringify(conn, null, 1), { mode: 0o600 });

    const argv = spec.argv.map((a) => a.replace(/\{connection_file\}/g, connectionFile).replace(/\{resource_dir\}/g, spec.resourceDir));
    const cwd = opts.cwd ?? process.cwd();
    const proc = spawn(argv[0], argv.slice(1), {
      cwd,
      env: { ...process.env, ...(spec.env ?? {}), ...(opts.env ?? {}), JPY_PARENT_PID: String(process.pid) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // shell and stdin share one identity: the kernel sends a cell's input_request to the identity that sent the cell.
    const routingId = `brainnet-${crypto.randomBytes(4).toString('hex')}`;
    const shell = new zmq.Dealer({ linger: 0, routingId });
    const stdin = new zmq.Dealer({ linger: 0, routingId });
    const control = new zmq.Dealer({ linger: 0 });
    const iopub = new zmq.Subscriber({ linger: 0 });
    const client = new KernelClient(spec, zmq, Buffer.from(key), connectionFile, proc, { shell, control, iopub, stdin });
    client.ipcDir = ipc ? path.dirname(ip) : null;
    liveSet().add(client);
    client.watchProcess();
    shell.connect(endpoint(shellPort));
    stdin.connect(endpoint(stdinPort));
    control.connect(endpoint(controlPort));
    iopub.connect(endpoint(iopubPort));
    iopub.subscribe();
    void client.readLoop(shell, (m) => client.onShell(m));
    void client.readLoop(control, (m) => client.onShell(m));
    void client.readLoop(iopub, (m) => client.onIopub(m));
    void client.readLoop(stdin, (m) => client.onStdin(m));
    try {
      await client.waitReady(opts.startupTimeoutMs ?? 60_000, cwd);
    } catch (e) {
      await client.kill();
      throw e;
    }
    return client;
  }

  /** The kernel's process id. */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** True once the kernel process has exited. */
  get dead(): boolean {
    return this.exited !== undefined;
  }

  private describeExit(): string {
    const e = this.exited;
    const how = e ? (e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`) : 'still running';
    const tail = this.stderrTail.trim() ? `; its last stderr:\n${this.stderrTail.trim().split('\n').slice(-15).join('\n')}` : '';
    return `${how}${tail}`;
  }

  private watchProcess(): void {
    const keep = (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-8000);
    };
    this.proc.stderr?.on('data', keep);
    this.proc.stdout?.on('data', keep);
    this.proc.on('error', (err) => {
      this.exited = { code: null, signal: null };
      this.stderrTail += `\n${err.message}`;
      this.fail(new KernelError(`kernel "${this.spec.name}" could not start \`${this.spec.argv[0]}\`: ${err.message}; check argv in ${path.join(this.spec.resourceDir, 'kernel.json')}`));
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = { code, signal };
      if (!this.closed) this.fail(new KernelError(`kernel "${this.spec.name}" died (${this.describeExit()})`));
    });
  }

  private fail(err: KernelError): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
    for (const l of this.deathListeners) l(err);
  }

  private async readLoop(sock: ZMQ.Dealer | ZMQ.Subscriber, handle: (m: JupyterMessage) => void): Promise<void> {
    try {
      for await (const frames of sock) {
        const msg = this.decode(frames as Buffer[]);
        if (msg) handle(msg);
      }
    } catch {
      // socket closed
    }
  }

  private sign(parts: Buffer[]): string {
    const h = crypto.createHmac('sha256', this.key);
    for (const p of parts) h.update(p);
    return h.digest('hex');
  }

  private decode(frames: Buffer[]): JupyterMessage | undefined {
    const i = frames.findIndex((f) => f.length === DELIM.length && f.toString() === DELIM);
    if (i < 0 || frames.length < i + 6) return undefined;
    const [sig, header, parent, metadata, content] = frames.slice(i + 1, i + 6);
    const expect = this.sign([header, parent, metadata, content]);
    if (sig.toString() !== expect) return undefined; // not ours, or tampered
    return { header: JSON.parse(header.toString()), parent_header: JSON.parse(parent.toString()), metadata: JSON.parse(metadata.toString()), content: JSON.parse(content.toString()) };
  }

  private async send(sock: ZMQ.Dealer, msgType: string, content: Record<string, unknown>, msgId: string = crypto.randomUUID(), parent: object = {}): Promise<string> {
    const header = { msg_id: msgId, msg_type: msgType, session: this.session, username: 'brainnet', date: new Date().toISOString(), version: '5.3' };
    const parts = [header, parent, {}, content].map((x) => Buffer.from(JSON.stringify(x)));
    await sock.send([DELIM, this.sign(parts), ...parts]);
    return header.msg_id;
  }

  private request(sock: ZMQ.Dealer, msgType: string, content: Record<string, unknown>, timeoutMs: number): Promise<JupyterMessage | undefined> {
    return new Promise((resolve, reject) => {
      const id = crypto.randomUUID();
      const timer = setTimeout(() => {
        this.shellWaiters.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.shellWaiters.set(id, (m) => {
        clearTimeout(timer);
        this.shellWaiters.delete(id);
        resolve(m);
      });
      this.send(sock, msgType, content, id).catch((e) => {
        clearTimeout(timer);
        this.shellWaiters.delete(id);
        reject(e);
      });
    });
  }

  private async waitReady(timeoutMs: number, cwd: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let death: KernelError | undefined;
    const onDeath = (e: KernelError) => (death = e);
    this.deathListeners.add(onDeath);
    try {
      while (Date.now() < deadline) {
        if (death || this.exited) throw new KernelError(`kernel "${this.spec.name}" exited while starting (${this.describeExit()}); command: ${this.spec.argv.join(' ')} (cwd ${cwd})`);
        const reply = await this.request(this.shell, 'kernel_info_request', {}, Math.min(2000, Math.max(1, deadline - Date.now())));
        if (!reply) continue;
        // IOPub is a PUB/SUB channel that drops messages until the subscription lands: wait
        // until it has carried something (the status messages around kernel_info) before running code.
        const until = Date.now() + 500;
        while (!this.iopubSeen && Date.now() < until && !this.exited) await new Promise((r) => setTimeout(r, 20));
        if (this.iopubSeen) return;
      }
      throw new KernelError(`kernel "${this.spec.name}" did not answer kernel_info_request within ${Math.round(timeoutMs / 1000)} s (${this.describeExit()}); command: ${this.spec.argv.join(' ')}`);
    } finally {
      this.deathListeners.delete(onDeath);
    }
  }

  private onShell(m: JupyterMessage): void {
    const parent = m.parent_header.msg_id;
    if (!parent) return;
    const waiter = this.shellWaiters.get(parent);
    if (waiter) waiter(m);
    const p = this.pending;
    if (p && parent === p.msgId && m.header.msg_type === 'execute_reply') {
      p.reply = m.content;
      p.replyMetadata = m.metadata ?? {};
      this.maybeFinish();
    }
  }

  /** An input_request: answered by the running execute's onInput, or with an error the kernel raises in the cell. */
  private onStdin(m: JupyterMessage): void {
    if (m.header.msg_type !== 'input_request') return;
    const p = this.pending;
    const request: InputRequest = { prompt: String(m.content.prompt ?? ''), password: !!m.content.password };
    const answer = async () => {
      if (!p?.onInput) throw new Error('this client has no answer for input requests (no onInput for the running cell)');
      return String(await p.onInput(request));
    };
    answer().then(
      (value) => this.send(this.stdin, 'input_reply', { status: 'ok', value }, undefined, m.header),
      (e) => this.send(this.stdin, 'input_reply', { status: 'error', value: '', ename: 'InputError', evalue: (e as Error).message, traceback: [] }, undefined, m.header),
    ).catch(() => {
      /* the kernel is gone */
    });
  }

  private onIopub(m: JupyterMessage): void {
    this.iopubSeen = true;
    const p = this.pending;
    const type = m.header.msg_type;
    const c = m.content;
    if ((type === 'display_data' || type === 'update_display_data') && p?.onDisplay && (type === 'update_display_data' || m.parent_header.msg_id === p.msgId)) {
      p.onDisplay({ type, data: (c.data as Record<string, unknown>) ?? {}, metadata: (c.metadata as Record<string, unknown>) ?? {}, displayId: (c.transient as { display_id?: string } | undefined)?.display_id });
    }
    if (type === 'update_display_data') {
      // Updates may target outputs of earlier cells too.
      const id = (c.transient as { display_id?: string } | undefined)?.display_id;
      if (id) {
        for (const o of this.displays.get(id) ?? []) {
          o.data = (c.data as Record<string, unknown>) ?? {};
          o.metadata = (c.metadata as Record<string, unknown>) ?? {};
        }
        if (p) p.onOutput?.(p.outputs);
      }
      return;
    }
    if (!p || m.parent_header.msg_id !== p.msgId) return;
    switch (type) {
      case 'status':
        if (c.execution_state === 'idle') {
          p.gotIdle = true;
          this.maybeFinish();
        }
        return;
      case 'stream': {
        const name = c.name === 'stderr' ? 'stderr' : 'stdout';
        this.flushClear(p);
        const last = p.outputs[p.outputs.length - 1];
        if (last && last.output_type === 'stream' && last.name === name) last.text += String(c.text ?? '');
        else p.outputs.push({ output_type: 'stream', name, text: String(c.text ?? '') });
        break;
      }
      case 'display_data':
      case 'execute_result': {
        this.flushClear(p);
        const out =
          type === 'display_data'
            ? { output_type: 'display_data' as const, data: (c.data as Record<string, unknown>) ?? {}, metadata: (c.metadata as Record<string, unknown>) ?? {} }
            : { output_type: 'execute_result' as const, execution_count: (c.execution_count as number) ?? null, data: (c.data as Record<string, unknown>) ?? {}, metadata: (c.metadata as Record<string, unknown>) ?? {} };
        p.outputs.push(out);
        const id = (c.transient as { display_id?: string } | undefined)?.display_id;
        if (id) {
          const list = this.displays.get(id) ?? [];
          list.push(out);
          this.displays.set(id, list);
        }
        break;
      }
      case 'error':
        this.flushClear(p);
        p.outputs.push({ output_type: 'error', ename: String(c.ename ?? ''), evalue: String(c.evalue ?? ''), traceback: (c.traceback as string[]) ?? [] });
        break;
      case 'clear_output':
        if (c.wait) p.clearPending = true;
        else p.outputs.length = 0;
        break;
      default:
        return;
    }
    p.onOutput?.(p.outputs);
  }

  private flushClear(p: Pending): void {
    if (p.clearPending) {
      p.outputs.length = 0;
      p.clearPending = false;
    }
  }

  private maybeFinish(): void {
    const p = this.pending;
    if (!p || !p.gotIdle || !p.reply) return;
    this.pending = undefined;
    const r = p.reply;
    const status = r.status === 'error' ? 'error' : r.status === 'aborted' ? 'aborted' : 'ok';
    const errOut = p.outputs.find((o) => o.output_type === 'error') as Extract<NotebookOutput, { output_type: 'error' }> | undefined;
    const error =
      status === 'error'
        ? errOut
          ? { ename: errOut.ename, evalue: errOut.evalue, traceback: errOut.traceback }
          : { ename: String(r.ename ?? ''), evalue: String(r.evalue ?? ''), traceback: (r.traceback as string[]) ?? [] }
        : undefined;
    const count = typeof r.execution_count === 'number' ? r.execution_count : null;
    for (const o of p.outputs) if (o.output_type === 'execute_result' && o.execution_count === null) o.execution_count = count;
    p.resolve({ status, executionCount: count, outputs: p.outputs, error, metadata: p.replyMetadata ?? {} });
  }

  /** Runs `code` and resolves once the kernel is idle again, with the outputs, execution count and any error. */
  execute(code: string, opts: ExecuteOptions = {}): Promise<ExecuteResult> {
    if (this.exited) return Promise.reject(new KernelError(`kernel "${this.spec.name}" is dead (${this.describeExit()})`));
    if (this.pending) return Promise.reject(new KernelError('execute() called while another execution is running; await the previous call first'));
    return new Promise<ExecuteResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (f: () => void) => {
        if (timer) clearTimeout(timer);
        f();
      };
      const p: Pending = {
        msgId: crypto.randomUUID(), outputs: [], clearPending: false, gotIdle: false, onOutput: opts.onOutput, onInput: opts.onInput, onDisplay: opts.onDisplay,
        resolve: (r) => done(() => resolve(r)),
        reject: (e) => done(() => reject(e)),
      };
      this.pending = p;
      const content = { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: !!opts.onInput, stop_on_error: true };
      this.send(this.shell, 'execute_request', content, p.msgId).catch((e) => p.reject(new KernelError(`could not send execute_request: ${(e as Error).message}`)));
      if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
        timer = setTimeout(() => {
          if (this.pending !== p) return;
          this.pending = undefined;
          void this.interrupt();
          reject(new KernelError(`cell timed out after ${(opts.timeoutMs! / 1000).toFixed(1)} s (raise the limit with --timeout <seconds>)`));
        }, opts.timeoutMs);
      }
    });
  }

  /** Interrupts the running code (SIGINT, or interrupt_request when the spec says interrupt_mode "message"). */
  async interrupt(): Promise<void> {
    if (this.exited) return;
    if (this.spec.interrupt_mode === 'message') await this.request(this.control, 'interrupt_request', {}, 2000);
    else this.proc.kill('SIGINT');
  }

  /** Asks the kernel to shut down (shutdown_request on control), then kills it if it has not exited within `graceMs`. */
  async shutdown(graceMs = 3000): Promise<void> {
    if (this.closed) return;
    if (!this.exited) {
      this.closed = true;
      const exited = this.exitWithin(graceMs);
      await this.request(this.control, 'shutdown_request', { restart: false }, Math.min(graceMs, 2000)).catch(() => undefined);
      await exited;
    }
    await this.kill();
  }

  /** Kills the kernel process and closes the sockets at once. */
  async kill(): Promise<void> {
    this.closed = true;
    if (this.running()) {
      const exited = this.exitWithin(2000);
      this.proc.kill('SIGKILL');
      await exited;
    }
    this.killNow();
  }

  private running(): boolean {
    return !this.exited && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves when the process exits, or after `ms`; leaves no timer or listener behind. */
  private exitWithin(ms: number): Promise<void> {
    if (!this.running()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.proc.off('exit', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.proc.once('exit', done);
    });
  }

  /** Synchronous part of {@link kill} (also run for every live kernel when the process exits): SIGKILL, sockets, files. */
  killNow(): void {
    this.closed = true;
    liveSet().delete(this);
    if (this.running()) this.proc.kill('SIGKILL');
    for (const s of [this.shell, this.control, this.iopub, this.stdin]) if (!s.closed) s.close();
    fs.rmSync(this.connectionFile, { force: true });
    if (this.ipcDir) fs.rmSync(this.ipcDir, { recursive: true, force: true });
  }
}
