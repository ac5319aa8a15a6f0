/**
 * The brainnet-ts Jupyter kernel: messaging protocol 5.3 over zeromq.
 * Main thread: shell, stdin and iopub sockets, and the user's cells (so a synchronous cell can be stopped
 * by SIGINT through vm's breakOnSigint). A worker thread owns heartbeat and control, so both answer
 * while a cell is busy; on interrupt_request it signals SIGINT to the process.
 */
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as zmq from 'zeromq';
import ts from 'typescript';
import { decodeFrames, encodeFrames, newHeader, Signer, PROTOCOL_VERSION, type ConnectionInfo, type JupyterMessage, type Header } from './wire.js';
import { Executor, type MimeBundle } from './execute.js';
import { HELP_REQUEST, isComplete, type Completion } from './language.js';
import { analyzeCell, DependencyGraph } from './reactive.js';
// The contract with the library (the display hook, the execute_reply metadata) is declared once, in lib.
import type { KernelHook, ReactiveReplyMetadata } from '../../lib/notebook/kernel-hook.js';

type Channel = 'shell' | 'control';
/** The cell whose code is running: its graph id, its run number, the display ids it has sent, and (re-runs) those of its last visible run. */
type RunningCell = { cell: string; seq: number; ids: string[]; rerun: boolean; old: string[] };
type HistoryEntry = { line: number; input: string; output: string | null };

const SESSION_NUMBER = 1;
/** Queued requests are aborted only this long after a failed cell (a bound for clients with skewed clocks). */

function endpoint(c: ConnectionInfo, port: number): string {
  return c.transport === 'ipc' ? `ipc://${c.ip}-${port}` : `${c.transport}://${c.ip}:${port}`;
}

/** Serialises sends on one zeromq socket (a zeromq 6 socket rejects a send while another is in flight). */
class SendQueue {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly send: (frames: Buffer[]) => Promise<void>) {}
  push(frames: Buffer[]): Promise<void> {
    this.chain = this.chain.then(() => this.send(frames)).catch((e) => log(`send failed: ${(e as Error).message}`));
    return this.chain;
  }
  flushed(): Promise<void> {
    return this.chain;
  }
}

const originalStderrWrite = process.stderr.write.bind(process.stderr);
function log(text: string): void {
  originalStderrWrite(`[brainnet-ts] ${text}\n`);
}

/** Worker source: heartbeat echo and the control socket, relaying control messages to the main thread. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHmac } = require('node:crypto');
const zmq = require(workerData.zeromq);
const hb = new zmq.Reply();
const control = new zmq.Router();
let chain = Promise.resolve();
parentPort.on('message', (m) => {
  if (m.type === 'send') chain = chain.then(() => control.send(m.frames.map((f) => Buffer.from(f)))).catch(() => {});
  if (m.type === 'close') chain.then(async () => { hb.close(); control.close(); parentPort.postMessage({ type: 'closed' }); });
});
function validInterrupt(frames) {
  const i = frames.findIndex((f) => f.toString() === '<IDS|MSG>');
  if (i < 0 || frames.length < i + 6) return false;
  const parts = frames.slice(i + 2, i + 6);
  if (workerData.key) {
    const h = createHmac(workerData.algorithm, workerData.key);
    for (const p of parts) h.update(p);
    if (h.digest('hex') !== frames[i + 1].toString()) return false;
  }
  try { return JSON.parse(parts[0].toString()).msg_type === 'interrupt_request'; } catch { return false; }
}
(async () => {
  await hb.bind(workerData.hb);
  await control.bind(workerData.control);
  parentPort.postMessage({ type: 'ready' });
  (async () => { for await (const frames of hb) await hb.send(frames); })().catch(() => {});
  for await (const frames of control) {
    if (validInterrupt(frames)) process.kill(process.pid, 'SIGINT');
    parentPort.postMessage({ type: 'control', frames });
  }
})().catch((e) => parentPort.postMessage({ type: 'error', message: String(e && e.stack || e) }));
`;

/** The kernel process. */
export class Kernel {
  private readonly signer: Signer;
  private readonly session = crypto.randomUUID();
  private readonly shell = new zmq.Router();
  private readonly stdin = new zmq.Router();
  private readonly iopub = new zmq.Publisher();
  private readonly shellQ = new SendQueue((f) => this.shell.send(f));
  private readonly iopubQ = new SendQueue((f) => this.iopub.send(f));
  private worker!: Worker;
  private executionCount = 0;
  private parent: JupyterMessage | null = null;
  private readonly executor = new Executor();
  private readonly language = new LanguageClient();
  private readonly history: HistoryEntry[] = [];
  private streams: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  private streamTimer: NodeJS.Timeout | null = null;
  private shuttingDown = false;
  private aborting = false;
  private errorSentAt = 0;
  /** Reactive execution: the cells run so far, the mode, and the display ids each cell's outputs carry. */
  private readonly graph = new DependencyGraph();
  private reactive = /^(1|true|on)$/i.test(process.env.BRAINNET_REACTIVE ?? '');
  private readonly cellDisplays = new Map<string, string[]>();
  private current: RunningCell | null = null;
  private hook!: KernelHook;
  private runSeq = 0;

  constructor(private readonly conn: ConnectionInfo) {
    this.signer = new Signer(conn.key, conn.signature_scheme);
  }

  /** Reads a connection file and starts a kernel on it. */
  static async fromConnectionFile(file: string): Promise<Kernel> {
    const conn = JSON.parse(readFileSync(file, 'utf8')) as ConnectionInfo;
    const k = new Kernel(conn);
    await k.start();
    return k;
  }

  async start(): Promise<void> {
    const c = this.conn;
    await Promise.all([this.shell.bind(endpoint(c, c.shell_port)), this.stdin.bind(endpoint(c, c.stdin_port)), this.iopub.bind(endpoint(c, c.iopub_port))]);
    const algorithm = (c.signature_scheme || 'hmac-sha256').replace(/^hmac-/, '');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { zeromq: require.resolve('zeromq'), hb: endpoint(c, c.hb_port), control: endpoint(c, c.control_port), key: c.key, algorithm },
    });
    this.worker.unref();
    await new Promise<void>((resolve, reject) => {
      this.worker.on('message', (m: { type: string; frames?: Uint8Array[]; message?: string }) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'error') reject(new Error(`control/heartbeat worker failed: ${m.message}`));
        else if (m.type === 'control' && m.frames) void this.onFrames('control', m.frames.map((f) => Buffer.from(f)));
      });
      this.worker.on('error', reject);
    });
    this.installHooks();
    // Errors from a cell's leftover async work must not kill the kernel: report them on stderr.
    process.on('unhandledRejection', (reason) => this.reportBackground('Unhandled promise rejection', reason));
    process.on('uncaughtException', (err) => this.reportBackground('Uncaught exception', err));
    process.on('SIGINT', () => {
      if (this.executor.running) this.executor.interrupt();
    });
    void this.shellLoop();
    void (async () => {
      for await (const _ of this.stdin) {
        // input_request is not supported; stdin replies are ignored.
      }
    })().catch(() => {});
    this.language.start();
    log(`ready in ${(process.uptime()).toFixed(2)} s (pid ${process.pid}, cwd ${process.cwd()}, TypeScript ${ts.version})`);
  }

  private async shellLoop(): Promise<void> {
    for await (const frames of this.shell) {
      await this.onFrames('shell', frames);
      if (this.shuttingDown) break;
    }
  }

  private async onFrames(channel: Channel, frames: Buffer[]): Promise<void> {
    const decoded = decodeFrames(frames, this.signer);
    if ('error' in decoded) {
      log(`${channel}: ${decoded.error}; message dropped`);
      return;
    }
    try {
      await this.dispatch(channel, decoded.msg);
    } catch (e) {
      log(`${channel} ${decoded.msg.header.msg_type} failed: ${(e as Error).stack ?? e}`);
    }
  }

  private send(channel: Channel, parent: JupyterMessage, msgType: string, content: unknown, metadata: Record<string, unknown> = {}): Promise<void> {
    const frames = encodeFrames(this.signer, parent.identities, newHeader(msgType, this.session), parent.header, metadata, content);
    if (channel === 'shell') return this.shellQ.push(frames);
    this.worker.postMessage({ type: 'send', frames });
    return Promise.resolve();
  }

  private publish(msgType: string, content: unknown, parent: Partial<Header> | null = this.parent?.header ?? null, metadata: Record<string, unknown> = {}): Promise<void> {
    const topic = Buffer.from(`kernel.${this.session}.${msgType}`);
    return this.iopubQ.push(encodeFrames(this.signer, [topic], newHeader(msgType, this.session), parent ?? {}, metadata, content));
  }

  private status(state: 'busy' | 'idle', parent: JupyterMessage): Promise<void> {
    return this.publish('status', { execution_state: state }, parent.header);
  }

  private async dispatch(channel: Channel, msg: JupyterMessage): Promise<void> {
    const type = msg.header.msg_type;
    await this.status('busy', msg);
    try {
      switch (type) {
        case 'execute_request':
          await this.execute(channel, msg);
          break;
        case 'kernel_info_request':
          await this.send(channel, msg, 'kernel_info_reply', this.kernelInfo());
          break;
        case 'is_complete_request':
          await this.send(channel, msg, 'is_complete_reply', isComplete(String(msg.content.code ?? '')));
          break;
        case 'complete_request':
          await this.complete(channel, msg);
          break;
        case 'inspect_request':
          await this.inspect(channel, msg);
          break;
        case 'history_request':
          await this.send(channel, msg, 'history_reply', { status: 'ok', history: this.historyReply(msg.content) });
          break;
        case 'comm_info_request':
          await this.send(channel, msg, 'comm_info_reply', { status: 'ok', comms: {} });
          break;
        case 'comm_open':
          // No comm targets: close the comm, as the spec asks.
          await this.publish('comm_close', { comm_id: msg.content.comm_id, data: {} }, msg.header);
          break;
        case 'comm_msg':
        case 'comm_close':
          break;
        case 'interrupt_request':
          // The worker has already sent SIGINT; reply once the main thread is free again.
          await this.send(channel, msg, 'interrupt_reply', { status: 'ok' });
          break;
        case 'shutdown_request':
          await this.send(channel, msg, 'shutdown_reply', { status: 'ok', restart: !!msg.content.restart });
          await this.status('idle', msg);
          await this.shutdown();
          return;
        case 'connect_request':
          await this.send(channel, msg, 'connect_reply', {
            status: 'ok',
            shell_port: this.conn.shell_port,
            iopub_port: this.conn.iopub_port,
            stdin_port: this.conn.stdin_port,
            hb_port: this.conn.hb_port,
            control_port: this.conn.control_port,
          });
          break;
        default:
          if (type.endsWith('_request')) {
            await this.send(channel, msg, type.replace(/_request$/, '_reply'), {
              status: 'error',
              ename: 'NotImplemented',
              evalue: `${type} is not supported by brainnet-ts`,
              traceback: [],
            });
          }
          log(`unsupported message ${type} on ${channel}`);
      }
    } finally {
      await this.status('idle', msg);
    }
  }

  private kernelInfo(): Record<string, unknown> {
    let version = '0.0.0';
    try {
      version = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
    } catch {
      /* keep default */
    }
    return {
      status: 'ok',
      protocol_version: PROTOCOL_VERSION,
      implementation: 'brainnet-ts',
      implementation_version: version,
      language_info: {
        name: 'typescript',
        version: ts.version,
        mimetype: 'text/typescript',
        file_extension: '.ts',
        codemirror_mode: { name: 'javascript', typescript: true },
        pygments_lexer: 'typescript',
      },
      banner: `brainnet-ts: TypeScript ${ts.version} on Node.js ${process.version}`,
      debugger: false,
      help_links: [{ text: 'brainnet-ts kernel', url: 'https://www.typescriptlang.org/docs/' }],
    };
  }

  private async execute(channel: Channel, msg: JupyterMessage): Promise<void> {
    const sentAt = Date.parse(String(msg.header.date ?? ''));
    // After a failed cell with stop_on_error, the execute requests queued behind it (sent before its reply
    // was, as "Run all" does) are answered 'aborted' instead of run, as ipykernel does. The first request
    // sent after the error ends this. Judging by the request's own send time (not by how long the kernel
    // took to reach it) keeps a loaded machine from running a queued request; it assumes the client's
    // clock is not behind the kernel's, which holds for kernels on the same machine.
    if (this.aborting && !(sentAt < this.errorSentAt)) this.aborting = false;
    if (this.aborting && channel === 'shell') {
      await this.send(channel, msg, 'execute_reply', { status: 'aborted', execution_count: null }, { status: 'aborted' });
      return;
    }
    const code = String(msg.content.code ?? '');
    const silent = !!msg.content.silent;
    const store = msg.content.store_history === undefined ? !silent : !!msg.content.store_history && !silent;
    if (store) this.executionCount++;
    const count = this.executionCount;
    this.parent = msg;
    if (!silent) await this.publish('execute_input', { code, execution_count: count }, msg.header);
    const help = HELP_REQUEST.exec(code);
    if (help) {
      // `name?`: the language service's hover docs, shown in the front end's pager.
      const data = (await this.language.inspect(help[1], help[1].length)) ?? { 'text/plain': `No documentation found for ${help[1]}` };
      await this.send(channel, msg, 'execute_reply', { status: 'ok', execution_count: count, payload: [{ source: 'page', data, start: 0 }], user_expressions: {} });
      if (store) this.history.push({ line: count, input: code, output: null });
      return;
    }
    // Reactive bookkeeping: which cell this is (front-end id, `//% cell`, else matched by the names it defines).
    const analysis = analyzeCell(code);
    const meta = msg.metadata ?? {};
    const brainnetMeta = (meta.brainnet ?? {}) as { reactive?: unknown };
    if (typeof brainnetMeta.reactive === 'boolean') this.reactive = brainnetMeta.reactive;
    if (analysis.reactive !== undefined) this.reactive = analysis.reactive;
    for (const gone of Array.isArray(meta.deletedCells) ? meta.deletedCells : []) this.graph.remove(String(gone));
    const frontId = meta.cellId ?? meta.cell_id ?? analysis.cellId;
    const cellId = !silent && code.trim() ? (frontId ? String(frontId) : this.graph.matchCell(code, analysis)) : null;
    this.current = cellId ? { cell: cellId, seq: ++this.runSeq, ids: [], rerun: false, old: [] } : null;
    const outcome = await this.executor.run(code, store ? count : null);
    this.flushStreams();
    let output: string | null = null;
    let reactiveInfo: ReactiveReplyMetadata | undefined;
    if (outcome.status === 'ok') {
      if (outcome.value && !silent) {
        output = String(outcome.value.data['text/plain'] ?? '');
        // In reactive mode the value is a display with an id, so a re-run can update it in place.
        if (this.reactive && this.current) this.emitDisplay({ data: outcome.value.data, metadata: outcome.value.metadata });
        else await this.publish('execute_result', { execution_count: count, data: outcome.value.data, metadata: outcome.value.metadata }, msg.header);
      }
      if (!/^\s*$/.test(code)) this.language.addCell(code);
      if (cellId) reactiveInfo = await this.afterCell(cellId, code, analysis, count, !!frontId, true);
      await this.send(channel, msg, 'execute_reply', { status: 'ok', execution_count: count, payload: [], user_expressions: {} }, reactiveInfo ? { brainnet: reactiveInfo } : {});
    } else {
      if (cellId && outcome.ename !== 'SyntaxError') reactiveInfo = await this.afterCell(cellId, code, analysis, count, !!frontId, false);
      if (outcome.ename !== 'SyntaxError') this.language.addCell(code);
      const { ename, evalue, traceback } = outcome;
      await this.publish('error', { ename, evalue, traceback }, msg.header);
      if (msg.content.stop_on_error !== false) {
        this.aborting = true;
        this.errorSentAt = Date.now(); // before the reply goes out: a request sent after seeing it is later
      }
      await this.send(channel, msg, 'execute_reply', { status: 'error', execution_count: count, ename, evalue, traceback }, { status: 'error', ...(reactiveInfo ? { brainnet: reactiveInfo } : {}) });
    }
    this.current = null;
    if (store) this.history.push({ line: count, input: code, output });
  }

  /** Writes a line to the current cell's output (stdout or stderr), after what is pending. */
  private note(name: 'stdout' | 'stderr', text: string): void {
    this.flushStreams();
    void this.publish('stream', { name, text: text.endsWith('\n') ? text : `${text}\n` });
  }

  /**
   * After a cell ran: records it in the graph, reports redefinitions and cycles, and re-runs its dependents
   * (reactive mode, cell succeeded) or marks them stale. Returns the `brainnet` field of execute_reply metadata.
   */
  private async afterCell(cellId: string, code: string, analysis: ReturnType<typeof analyzeCell>, count: number, hasFrontEndId: boolean, ok: boolean): Promise<ReactiveReplyMetadata> {
    const g = this.graph;
    g.upsert(cellId, code, analysis, count, hasFrontEndId);
    this.cellDisplays.set(cellId, this.current?.ids ?? []);
    const redefinitions = g.redefinitions(cellId).map((r) => ({ name: r.name, cells: r.others.map((o) => o.id) }));
    for (const r of g.redefinitions(cellId)) {
      this.note('stderr', `redefinition: ${r.name} is also defined by ${r.others.map((o) => g.describe(o.id)).join(', ')}; the last run wins, and cells that use ${r.name} depend on all of them (define each name in one cell)`);
    }
    const plan = g.plan(cellId);
    const cycles = plan.cycles.map((c) => c.slice());
    for (const c of plan.cycles) this.note('stderr', g.describeCycle(c));
    if (plan.cycleThroughChanged) this.note('stderr', `cycle: ${g.describe(cellId)} reads a name defined by one of its own dependents; it is not re-run again (the cascade stops at it)`);
    const reran: ReactiveReplyMetadata['reran'] = [];
    let stopped: ReactiveReplyMetadata['stopped'] = null;
    if (this.reactive && ok) {
      for (let i = 0; i < plan.order.length; i++) {
        const id = plan.order[i];
        const node = g.get(id)!;
        const old = this.cellDisplays.get(id) ?? [];
        this.current = { cell: id, seq: ++this.runSeq, ids: [], rerun: true, old };
        this.note('stdout', `[reactive] re-running ${g.describe(id)}`);
        const out = await this.executor.run(node.source, node.count);
        this.flushStreams();
        if (out.status === 'ok') {
          if (out.value) this.emitDisplay({ data: out.value.data, metadata: out.value.metadata });
          // Displays the cell no longer makes are blanked, so no stale picture stays on screen.
          for (const gone of old.slice(this.current.ids.length)) void this.publish('update_display_data', { data: { 'text/plain': '' }, metadata: {}, transient: { display_id: gone } });
          this.cellDisplays.set(id, old.length >= this.current.ids.length ? old : this.current.ids);
          node.stale = false;
          reran.push({ cell: id, count: node.count, status: 'ok' });
        } else {
          reran.push({ cell: id, count: node.count, status: 'error' });
          const rest = plan.order.slice(i);
          for (const r of rest) g.get(r)!.stale = true;
          stopped = { cell: id, count: node.count, ename: out.ename, evalue: out.evalue, notRun: plan.order.slice(i + 1) };
          this.note(
            'stderr',
            `reactive re-run stopped at ${g.describe(id)}: ${out.ename}: ${out.evalue}\n${out.traceback.slice(1).join('\n')}\n` +
              (rest.length > 1 ? `not re-run (stale): ${rest.slice(1).map((r) => g.describe(r)).join(', ')}` : 'no cells were left to re-run'),
          );
          break;
        }
      }
      for (const c of plan.cycles.flat()) g.get(c)!.stale = true;
      if (reran.length && !stopped) this.note('stdout', `[reactive] re-ran ${reran.length} cell${reran.length > 1 ? 's' : ''}: ${reran.map((r) => g.describe(r.cell)).join('; ')}`);
    } else if (plan.order.length || plan.cycles.length) {
      const stale = g.markStale(cellId);
      const why = ok ? 'reactive mode is off: turn it on with //% reactive on' : 'this cell failed';
      this.note('stderr', stale.map((n) => `stale: ${g.describe(n.id)} (it uses names this cell defines; ${why})`).join('\n'));
    }
    this.current = null;
    const staleNow = g.cells().filter((n) => n.stale).map((n) => ({ cell: n.id, count: n.count, description: g.describe(n.id) }));
    return { cell: cellId, reactive: this.reactive, defines: analysis.defines, references: analysis.references, reran, stale: staleNow, stopped, cycles, redefinitions };
  }

  /** Sends a display from the running cell with an automatic display id; a reactive re-run updates its earlier ones in place. */
  private emitDisplay(bundle: { data: Record<string, unknown>; metadata?: Record<string, unknown> }): void {
    const cur = this.current!;
    const n = cur.ids.length;
    const reuse = cur.rerun && n < cur.old.length;
    const id = reuse ? cur.old[n] : `bn-${cur.cell}-${cur.seq}-${n}`;
    cur.ids.push(id);
    this.hook.display({ ...bundle, transient: { display_id: id } }, reuse);
  }

  private async complete(channel: Channel, msg: JupyterMessage): Promise<void> {
    const code = String(msg.content.code ?? '');
    const cursor = toJsOffset(code, msg.content.cursor_pos ?? code.length);
    const c = await this.language.complete(code, cursor);
    await this.send(channel, msg, 'complete_reply', {
      status: 'ok',
      matches: c.matches,
      cursor_start: toCodePointOffset(code, c.cursor_start),
      cursor_end: toCodePointOffset(code, c.cursor_end),
      metadata: { _jupyter_types_experimental: c.types.map((t) => ({ ...t, start: toCodePointOffset(code, t.start), end: toCodePointOffset(code, t.end) })) },
    });
  }

  private async inspect(channel: Channel, msg: JupyterMessage): Promise<void> {
    const code = String(msg.content.code ?? '');
    const cursor = toJsOffset(code, msg.content.cursor_pos ?? code.length);
    const data = await this.language.inspect(code, cursor);
    await this.send(channel, msg, 'inspect_reply', { status: 'ok', found: !!data, data: data ?? {}, metadata: {} });
  }

  /** history_request: tail, range and search (glob pattern, as IPython) over this session's inputs. */
  private historyReply(req: Record<string, any>): unknown[] {
    const fmt = (h: HistoryEntry) => [SESSION_NUMBER, h.line, req.output ? [h.input, h.output] : h.input];
    let entries = this.history;
    if (req.hist_access_type === 'tail') {
      entries = entries.slice(-Math.max(0, Number(req.n ?? 10)));
    } else if (req.hist_access_type === 'range') {
      const session = Number(req.session ?? 0);
      if (session !== 0 && session !== SESSION_NUMBER) return [];
      const start = Number(req.start ?? 0);
      const stop = req.stop === undefined || req.stop === null ? Infinity : Number(req.stop);
      entries = entries.filter((h) => h.line >= start && h.line < stop);
    } else if (req.hist_access_type === 'search') {
      const re = new RegExp(`^${String(req.pattern ?? '*').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '.')}$`);
      entries = entries.filter((h) => re.test(h.input));
      if (req.unique) {
        const seen = new Set<string>();
        entries = entries.slice().reverse().filter((h) => !seen.has(h.input) && seen.add(h.input)).reverse();
      }
      if (req.n) entries = entries.slice(-Number(req.n));
    } else {
      return [];
    }
    return entries.map(fmt);
  }

  /** Routes process.stdout/stderr to iopub streams and installs the display hook and tslab's display API. */
  private installHooks(): void {
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = process[name];
      stream.write = ((chunk: unknown, encoding?: unknown, cb?: unknown) => {
        const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString(typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
        this.streams[name] += text;
        if (!this.streamTimer) this.streamTimer = setTimeout(() => this.flushStreams(), 30);
        const done = typeof encoding === 'function' ? encoding : cb;
        if (typeof done === 'function') process.nextTick(done as () => void);
        return true;
      }) as typeof stream.write;
    }
    const kernel = this;
    const hook: KernelHook = {
      display(bundle, update = false) {
        // A display without an id from a running cell gets one, so that a reactive re-run can update it in place.
        if (kernel.current && !update && !bundle.transient?.display_id) return kernel.emitDisplay(bundle);
        kernel.flushStreams();
        // Binary payloads (image/png as bytes) go out base64-encoded, as the protocol expects.
        const data: Record<string, unknown> = {};
        for (const [mime, value] of Object.entries(bundle.data)) data[mime] = value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
        const content: Record<string, unknown> = { data, metadata: bundle.metadata ?? {}, transient: bundle.transient ?? {} };
        void kernel.publish(update ? 'update_display_data' : 'display_data', content);
      },
      clearOutput(wait = false) {
        kernel.flushStreams();
        void kernel.publish('clear_output', { wait });
      },
      get executionCount() {
        return kernel.executionCount;
      },
      language: 'typescript',
    };
    this.hook = hook;
    Object.defineProperty(globalThis, '__brainnetKernel', { value: hook, configurable: true, enumerable: false, writable: true });
    // tslab notebooks: `tslab.display.*` writes through tslab's module-level hook.
    try {
      const tslabJupyter = require(require.resolve('tslab/dist/jupyter', { paths: [process.cwd(), __dirname] }));
      tslabJupyter.lastWriteDisplayData = (data: MimeBundle & { transient?: { display_id?: string } }, update: boolean) => {
        const transient = data.transient?.display_id ? data.transient : undefined;
        hook.display({ data: data.data, metadata: data.metadata, transient }, update);
      };
    } catch {
      /* tslab not installed: nothing to bridge */
    }
  }

  private reportBackground(what: string, e: unknown): void {
    const { ename, evalue, traceback } = this.executor.errorContent(e);
    process.stderr.write(`${what} (from code that kept running after its cell): ${ename}: ${evalue}\n${traceback.slice(1).join('\n')}\n`);
  }

  private flushStreams(): void {
    if (this.streamTimer) {
      clearTimeout(this.streamTimer);
      this.streamTimer = null;
    }
    for (const name of ['stdout', 'stderr'] as const) {
      const text = this.streams[name];
      if (!text) continue;
      this.streams[name] = '';
      void this.publish('stream', { name, text });
    }
  }

  /** Sends what is queued, closes every socket and exits. */
  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.flushStreams();
    await Promise.all([this.shellQ.flushed(), this.iopubQ.flushed()]);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 500);
      this.worker.once('message', (m: { type: string }) => m.type === 'closed' && (clearTimeout(t), resolve()));
      this.worker.postMessage({ type: 'close' });
    });
    await new Promise((r) => setTimeout(r, 50));
    for (const s of [this.shell, this.stdin, this.iopub]) s.close();
    await Promise.all([this.worker.terminate(), this.language.close()]);
    log('shut down');
    process.exit(0);
  }
}

/** Source of the language-service worker (the TypeScript language service loads its libs off the main thread). */
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
class LanguageClient {
  private worker: Worker | null = null;
  private nextId = 0;
  private readonly pending = new Map<number, (r: { result: unknown; error: string | null }) => void>();

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
      log(`language service worker failed: ${e.message}`);
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

  addCell(code: string): void {
    this.w.postMessage({ op: 'add', code });
  }

  private request<T>(op: string, code: string, cursor: number): Promise<T | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, (r) => {
        if (r.error) log(`language service ${op} failed: ${r.error}`);
        resolve((r.result as T) ?? null);
      });
      this.w.postMessage({ id, op, code, cursor });
    });
  }

  async complete(code: string, cursor: number): Promise<Completion> {
    return (await this.request<Completion>('complete', code, cursor)) ?? { matches: [], cursor_start: cursor, cursor_end: cursor, types: [] };
  }

  inspect(code: string, cursor: number): Promise<Record<string, string> | null> {
    return this.request('inspect', code, cursor);
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}

function safeResolve(spec: string): string | null {
  try {
    return require.resolve(spec);
  } catch {
    return null;
  }
}

/** Jupyter cursor positions count Unicode code points; JavaScript strings count UTF-16 units. */
function toJsOffset(code: string, codePoints: number): number {
  let units = 0;
  let n = 0;
  for (const ch of code) {
    if (n >= codePoints) break;
    units += ch.length;
    n++;
  }
  return units;
}

function toCodePointOffset(code: string, units: number): number {
  return [...code.slice(0, units)].length;
}
