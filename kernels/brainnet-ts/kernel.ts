/**
 * The brainnet-ts Jupyter kernel: messaging protocol 5.3 over zeromq.
 * Main thread: the shell socket and the user's cells (so a synchronous cell can be stopped by SIGINT through
 * vm's breakOnSigint). The channels worker (channels-worker.ts) owns heartbeat, control, iopub and stdin, so
 * they answer while a cell is busy, and polls the parent process. Other parts: output.ts (streams, display
 * hook), stdin.ts (input, prompt), replies.ts (reply contents), language-client.ts (completion, hover),
 * execute.ts (running cells), modules.ts (imports from any folder), reactive.ts (the dependency graph).
 */
import { readFileSync } from 'node:fs';
import * as zmq from 'zeromq';
import ts from 'typescript';
import { decodeFrames, encodeFrames, newHeader, Signer, type ConnectionInfo, type JupyterMessage, type Header } from './wire.js';
import { Channels, endpoint } from './channels.js';
import { Executor } from './execute.js';
import { HELP_REQUEST, isComplete } from './language.js';
import { LanguageClient } from './language-client.js';
import { installDisplayHook, makeDisplayHook, Streams } from './output.js';
import { connectReply, historyReply, kernelInfo, toCodePointOffset, toJsOffset, type HistoryEntry } from './replies.js';
import { analyzeCell, DependencyGraph } from './reactive.js';
import { installStdinGlobals } from './stdin.js';
// The contract with the library (the display hook, the execute_reply metadata) is declared once, in lib.
import type { KernelHook, ReactiveReplyMetadata } from '../../lib/notebook/kernel-hook.js';

type Channel = 'shell' | 'control';
/** The cell whose code is running: its graph id, its run number, the display ids it has sent, and (re-runs) those of its last visible run. */
type RunningCell = { cell: string; seq: number; ids: string[]; rerun: boolean; old: string[] };

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

/** The kernel process. */
export class Kernel {
  private readonly signer: Signer;
  private readonly session = crypto.randomUUID();
  private readonly shell = new zmq.Router();
  private readonly shellQ = new SendQueue((f) => this.shell.send(f));
  private readonly channels = new Channels(
    (frames) => void this.onFrames('control', frames),
    () => void this.shutdown(),
  );
  private executionCount = 0;
  private parent: JupyterMessage | null = null;
  private readonly executor = new Executor();
  private readonly language = new LanguageClient(log);
  private readonly history: HistoryEntry[] = [];
  private readonly streams = new Streams((type, content) => void this.publish(type, content));
  private shuttingDown = false;
  private aborting = false;
  private errorSentAt = 0;
  /** Cancels the input() a cell waits for (when the cell is interrupted). */
  private cancelInput: (() => void) | null = null;
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
    await this.shell.bind(endpoint(c, c.shell_port));
    await this.channels.start(c);
    this.installHooks();
    // Errors from a cell's leftover async work must not kill the kernel: report them on stderr.
    process.on('unhandledRejection', (reason) => this.reportBackground('Unhandled promise rejection', reason));
    process.on('uncaughtException', (err) => this.reportBackground('Uncaught exception', err));
    process.on('SIGINT', () => {
      if (!this.channels.sigintWanted() || !this.executor.running) return;
      this.channels.interruptsHandled();
      this.cancelInput?.();
      this.executor.interrupt();
    });
    void this.shellLoop();
    this.language.start();
    log(`ready in ${process.uptime().toFixed(2)} s (pid ${process.pid}, cwd ${process.cwd()}, TypeScript ${ts.version})`);
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
    this.channels.sendControl(frames);
    return Promise.resolve();
  }

  /** Sends on iopub (through the channels worker, in order) with the running cell's parent header by default. */
  private publish(msgType: string, content: unknown, parent: Partial<Header> | null = this.parent?.header ?? null, metadata: Record<string, unknown> = {}): Promise<void> {
    const topic = Buffer.from(`kernel.${this.session}.${msgType}`);
    this.channels.publish(encodeFrames(this.signer, [topic], newHeader(msgType, this.session), parent ?? {}, metadata, content));
    return Promise.resolve();
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
          await this.send(channel, msg, 'kernel_info_reply', kernelInfo());
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
          await this.send(channel, msg, 'history_reply', { status: 'ok', history: historyReply(this.history, msg.content) });
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
          // The channels worker has already interrupted the cell; reply once the main thread is free again.
          await this.send(channel, msg, 'interrupt_reply', { status: 'ok' });
          break;
        case 'shutdown_request':
          await this.send(channel, msg, 'shutdown_reply', { status: 'ok', restart: !!msg.content.restart });
          await this.status('idle', msg);
          await this.shutdown();
          return;
        case 'connect_request':
          await this.send(channel, msg, 'connect_reply', connectReply(this.conn));
          break;
        default:
          if (type.endsWith('_request')) {
            await this.send(channel, msg, type.replace(/_request$/, '_reply'), { status: 'error', ename: 'NotImplemented', evalue: `${type} is not supported by brainnet-ts`, traceback: [] });
          }
          log(`unsupported message ${type} on ${channel}`);
      }
    } finally {
      await this.status('idle', msg);
    }
  }

  private async execute(channel: Channel, msg: JupyterMessage): Promise<void> {
    this.channels.setBusy(true);
    try {
      await this.executeRequest(channel, msg);
    } finally {
      this.channels.setBusy(false);
    }
  }

  /** Runs one execute_request: aborted behind a failed cell, `name?` help, or the cell with its reactive bookkeeping. */
  private async executeRequest(channel: Channel, msg: JupyterMessage): Promise<void> {
    const sentAt = Date.parse(String(msg.header.date ?? ''));
    // After a failed cell with stop_on_error, the execute requests queued behind it (sent before its reply
    // was, as "Run all" does) are answered 'aborted' instead of run, as ipykernel does. The first request
    // sent after the error ends this. Judging by the request's own send time (not by how long the kernel
    // took to reach it) keeps a loaded machine from running a queued request; it assumes the client's
    // clock is not behind the kernel's, which holds for kernels on the same machine.
    if (this.aborting && !(sentAt < this.errorSentAt)) this.aborting = false;
    if (this.aborting && channel === 'shell') {
      await this.send(channel, msg, 'execute_reply', { status: 'aborted', execution_count: this.executionCount }, { status: 'aborted' });
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
    this.streams.flush();
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
      this.streams.note('stderr', `redefinition: ${r.name} is also defined by ${r.others.map((o) => g.describe(o.id)).join(', ')}; the last run wins, and cells that use ${r.name} depend on all of them (define each name in one cell)`);
    }
    const plan = g.plan(cellId);
    const cycles = plan.cycles.map((c) => c.slice());
    for (const c of plan.cycles) this.streams.note('stderr', g.describeCycle(c));
    if (plan.cycleThroughChanged) this.streams.note('stderr', `cycle: ${g.describe(cellId)} reads a name defined by one of its own dependents; it is not re-run again (the cascade stops at it)`);
    const reran: ReactiveReplyMetadata['reran'] = [];
    let stopped: ReactiveReplyMetadata['stopped'] = null;
    if (this.reactive && ok) {
      for (let i = 0; i < plan.order.length; i++) {
        const id = plan.order[i];
        const node = g.get(id)!;
        const old = this.cellDisplays.get(id) ?? [];
        this.current = { cell: id, seq: ++this.runSeq, ids: [], rerun: true, old };
        this.streams.note('stdout', `[reactive] re-running ${g.describe(id)}`);
        const out = await this.executor.run(node.source, node.count);
        this.streams.flush();
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
          this.streams.note(
            'stderr',
            `reactive re-run stopped at ${g.describe(id)}: ${out.ename}: ${out.evalue}\n${out.traceback.slice(1).join('\n')}\n` +
              (rest.length > 1 ? `not re-run (stale): ${rest.slice(1).map((r) => g.describe(r)).join(', ')}` : 'no cells were left to re-run'),
          );
          break;
        }
      }
      for (const c of plan.cycles.flat()) g.get(c)!.stale = true;
      if (reran.length && !stopped) this.streams.note('stdout', `[reactive] re-ran ${reran.length} cell${reran.length > 1 ? 's' : ''}: ${reran.map((r) => g.describe(r.cell)).join('; ')}`);
    } else if (plan.order.length || plan.cycles.length) {
      const stale = g.markStale(cellId);
      const why = ok ? 'reactive mode is off: turn it on with //% reactive on' : 'this cell failed';
      this.streams.note('stderr', stale.map((n) => `stale: ${g.describe(n.id)} (it uses names this cell defines; ${why})`).join('\n'));
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

  /** Routes output to iopub and installs the display hook, tslab's display API and the stdin globals. */
  private installHooks(): void {
    this.streams.capture();
    this.hook = makeDisplayHook({
      streams: this.streams,
      publish: (type, content) => void this.publish(type, content),
      executionCount: () => this.executionCount,
      // A display without an id from a running cell gets one, so that a reactive re-run can update it in place.
      autoId: (bundle) => {
        if (!this.current) return false;
        this.emitDisplay(bundle);
        return true;
      },
    });
    installDisplayHook(this.hook, () => this.executor.modules.resolve('tslab/dist/jupyter'));
    installStdinGlobals({
      channels: this.channels,
      parent: () => this.parent,
      inputRequest: (parent, content) => {
        const header = newHeader('input_request', this.session);
        return { frames: encodeFrames(this.signer, parent.identities, header, parent.header, {}, content), msgId: header.msg_id };
      },
      flushStreams: () => this.streams.flush(),
      onPending: (cancel) => (this.cancelInput = cancel),
    });
  }

  private reportBackground(what: string, e: unknown): void {
    const { ename, evalue, traceback } = this.executor.errorContent(e);
    process.stderr.write(`${what} (from code that kept running after its cell): ${ename}: ${evalue}\n${traceback.slice(1).join('\n')}\n`);
  }

  /** Sends what is queued, closes every socket and exits. */
  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.streams.flush();
    await Promise.all([this.shellQ.flushed(), this.channels.flushed()]);
    await new Promise((r) => setTimeout(r, 50));
    this.shell.close();
    await Promise.all([this.channels.close(), this.language.close()]);
    log('shut down');
    process.exit(0);
  }
}
