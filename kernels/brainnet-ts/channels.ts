/**
 * The main thread's side of the channels worker (channels-worker.ts): starts it, hands it iopub and control
 * frames, asks it for input (asynchronously for `input()`, blocking for `prompt()`), and keeps the shared
 * slots that let an interrupt find the running cell.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import path from 'node:path';
import { SLOT, SLOT_COUNT, type ChannelsInit, type FromChannels, type InputOutcome, type ToChannels } from './channels-protocol.js';
import type { ConnectionInfo } from './wire.js';

/** The zeromq endpoint of one of the connection file's ports. */
export function endpoint(c: ConnectionInfo, port: number): string {
  return c.transport === 'ipc' ? `ipc://${c.ip}-${port}` : `${c.transport}://${c.ip}:${port}`;
}

/** The eval stub that lets the worker load its TypeScript source (tsx's CommonJS hook first). */
const STUB = `
try { require(require('node:worker_threads').workerData.tsxCjs); } catch {}
require(require('node:worker_threads').workerData.file);
`;

/** Heartbeat, control, iopub and stdin, served by a second thread. */
export class Channels {
  /** The slots both threads see (SLOT in channels-protocol.ts). */
  readonly shared = new Int32Array(new SharedArrayBuffer(SLOT_COUNT * 4));
  private worker!: Worker;
  private syncPort!: MessagePort;
  private nextId = 1;
  private readonly inputs = new Map<number, (o: InputOutcome) => void>();
  private readonly flushes = new Map<number, () => void>();

  constructor(
    private readonly onControl: (frames: Buffer[]) => void,
    private readonly onOrphaned: (reason: string) => void,
  ) {}

  /** Starts the worker and resolves once its four sockets are bound. */
  async start(conn: ConnectionInfo): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    this.syncPort = port1;
    const ports = [conn.hb_port, conn.control_port, conn.iopub_port, conn.stdin_port, conn.shell_port];
    const init: ChannelsInit & { tsxCjs: string | null; file: string } = {
      endpoints: { hb: endpoint(conn, conn.hb_port), control: endpoint(conn, conn.control_port), iopub: endpoint(conn, conn.iopub_port), stdin: endpoint(conn, conn.stdin_port) },
      key: conn.key,
      signatureScheme: conn.signature_scheme || 'hmac-sha256',
      ipcFiles: conn.transport === 'ipc' ? ports.map((p) => `${conn.ip}-${p}`) : [],
      shared: this.shared.buffer as SharedArrayBuffer,
      syncPort: port2,
      parentPid: Number(process.env.JPY_PARENT_PID) || 0,
      tsxCjs: safeResolve('tsx/cjs'),
      file: path.join(__dirname, 'channels-worker.ts'),
    };
    this.worker = new Worker(STUB, { eval: true, execArgv: [], workerData: init, transferList: [port2] });
    this.worker.unref();
    await new Promise<void>((resolve, reject) => {
      this.worker.on('message', (m: FromChannels) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'error') reject(new Error(`control/iopub/stdin worker failed: ${m.message}`));
        else this.onMessage(m);
      });
      this.worker.on('error', reject);
    });
  }

  private onMessage(m: FromChannels): void {
    if (m.type === 'control') this.onControl(m.frames.map((f) => Buffer.from(f)));
    else if (m.type === 'input') {
      this.inputs.get(m.id)?.(m.outcome);
      this.inputs.delete(m.id);
    } else if (m.type === 'flushed') {
      this.flushes.get(m.id)?.();
      this.flushes.delete(m.id);
    } else if (m.type === 'orphaned') this.onOrphaned(m.reason);
  }

  private post(m: ToChannels): void {
    this.worker.postMessage(m);
  }

  /** Sends frames on iopub (in order with everything published before). */
  publish(frames: Buffer[]): void {
    this.post({ type: 'publish', frames });
  }

  /** Sends frames on control. */
  sendControl(frames: Buffer[]): void {
    this.post({ type: 'control', frames });
  }

  /** Resolves once every frame handed over so far has left. */
  flushed(): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.flushes.set(id, resolve);
      this.post({ type: 'flush', id });
    });
  }

  /** Sends an input_request and resolves with its outcome; `cancel` forgets it (the cell was interrupted). */
  requestInput(frames: Buffer[], msgId: string): { outcome: Promise<InputOutcome>; cancel: () => void } {
    const id = this.nextId++;
    const outcome = new Promise<InputOutcome>((resolve) => this.inputs.set(id, resolve));
    this.post({ type: 'input', id, msgId, frames, sync: false });
    return {
      outcome,
      cancel: () => {
        this.inputs.get(id)?.({ interrupted: true });
        this.inputs.delete(id);
        this.post({ type: 'cancel-input', id });
      },
    };
  }

  /** Sends an input_request and blocks the main thread until the front end answers or an interrupt_request comes. */
  requestInputSync(frames: Buffer[], msgId: string): InputOutcome {
    Atomics.store(this.shared, SLOT.PROMPT, 0);
    this.post({ type: 'input', id: this.nextId++, msgId, frames, sync: true });
    while (Atomics.load(this.shared, SLOT.PROMPT) === 0) Atomics.wait(this.shared, SLOT.PROMPT, 0);
    const got = receiveMessageOnPort(this.syncPort);
    return (got?.message as InputOutcome | undefined) ?? { error: 'the input channel answered nothing' };
  }

  /** Marks the main thread busy with an execute_request (an interrupt then has a cell to stop) or idle. */
  setBusy(busy: boolean): void {
    Atomics.store(this.shared, SLOT.BUSY, busy ? 1 : 0);
    if (!busy) this.interruptsHandled();
  }

  /** Every interrupt_request received so far has been dealt with (the worker stops re-sending SIGINT). */
  interruptsHandled(): void {
    Atomics.store(this.shared, SLOT.HANDLED, Atomics.load(this.shared, SLOT.INTERRUPTS));
    Atomics.store(this.shared, SLOT.SIGNALS_SEEN, Atomics.load(this.shared, SLOT.SIGNALS_SENT));
  }

  /**
   * Called by the main thread's SIGINT listener: true when the running cell should stop. A SIGINT the worker sent
   * for an interrupt_request that is already dealt with (it can arrive late, after its cell ended) is not.
   */
  sigintWanted(): boolean {
    const sent = Atomics.load(this.shared, SLOT.SIGNALS_SENT);
    if (Atomics.load(this.shared, SLOT.SIGNALS_SEEN) >= sent) return true; // from outside (Ctrl-C, kill -INT)
    Atomics.add(this.shared, SLOT.SIGNALS_SEEN, 1);
    return Atomics.load(this.shared, SLOT.HANDLED) < Atomics.load(this.shared, SLOT.INTERRUPTS);
  }

  /** Sends what is queued, closes the worker's sockets and ends it. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      this.worker.on('message', (m: FromChannels) => m.type === 'closed' && (clearTimeout(t), resolve()));
      this.post({ type: 'close' });
    });
    this.syncPort.close();
    await this.worker.terminate();
  }
}

/** require.resolve that gives null instead of throwing. */
export function safeResolve(spec: string): string | null {
  try {
    return require.resolve(spec);
  } catch {
    return null;
  }
}
