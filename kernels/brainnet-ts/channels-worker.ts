/**
 * The kernel's second thread. It owns the sockets that must work while a cell keeps the main thread busy:
 * - heartbeat (echo) and control (relayed to the main thread; `interrupt_request` also acts here at once);
 * - iopub: the main thread hands it finished frames, so outputs leave in order even while the main thread is
 *   blocked in a synchronous `prompt()`;
 * - stdin: sends `input_request`s and takes the front end's `input_reply` (a reply to an earlier request is dropped);
 * - the parent poller: when the process that started the kernel dies, the kernel exits (as ipykernel's
 *   ParentPollerUnix does), so a killed runner or test leaves no orphan behind.
 * Started by channels.ts through a small eval stub that loads tsx first.
 */
import { rmSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import * as zmq from 'zeromq';
import { SLOT, type ChannelsInit, type FromChannels, type InputOutcome, type ToChannels } from './channels-protocol.js';
import { decodeFrames, Signer } from './wire.js';

const init = workerData as ChannelsInit;
const shared = new Int32Array(init.shared);
const signer = new Signer(init.key, init.signatureScheme);
const port = parentPort!;
const hb = new zmq.Reply({ linger: 0 });
const control = new zmq.Router({ linger: 0 });
const iopub = new zmq.Publisher({ linger: 1000 });
const stdin = new zmq.Router({ linger: 0 });

/** Writes to the process's stderr at once (console output of a worker waits for the main thread's loop). */
function log(text: string): void {
  try {
    writeSync(2, `[brainnet-ts] ${text}\n`);
  } catch {
    /* stderr closed */
  }
}

const post = (m: FromChannels) => port.postMessage(m);

/** One send queue per socket: a zeromq 6 socket rejects a send while another is in flight. */
class SendQueue {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly sock: zmq.Writable) {}
  push(frames: Buffer[]): void {
    this.chain = this.chain.then(() => this.sock.send(frames)).catch((e) => log(`send failed: ${(e as Error).message}`));
  }
  /** Resolves once everything pushed so far has been sent. */
  flushed(): Promise<void> {
    return this.chain;
  }
}
const controlQ = new SendQueue(control);
const iopubQ = new SendQueue(iopub);
const stdinQ = new SendQueue(stdin);

// ---- stdin: one input_request at a time (a cell waits for its answer before it can ask again)

let pendingInput: { id: number; msgId: string; sync: boolean } | null = null;

function answerInput(outcome: InputOutcome): void {
  const p = pendingInput;
  if (!p) return;
  pendingInput = null;
  if (p.sync) {
    init.syncPort.postMessage(outcome);
    Atomics.store(shared, SLOT.PROMPT, 1);
    Atomics.notify(shared, SLOT.PROMPT);
  } else {
    post({ type: 'input', id: p.id, outcome });
  }
}

async function readStdin(): Promise<void> {
  for await (const frames of stdin) {
    const d = decodeFrames(frames as Buffer[], signer);
    if ('error' in d) {
      log(`stdin: ${d.error}; message dropped`);
      continue;
    }
    const { header, parent_header: parent, content } = d.msg;
    // jupyter_client's input() sends no parent header: take any reply while one request waits, as ipykernel
    // does; a reply whose parent names another (earlier, interrupted) request is stale.
    if (header.msg_type !== 'input_reply' || !pendingInput || (parent?.msg_id && parent.msg_id !== pendingInput.msgId)) {
      log(`stdin: dropped ${header.msg_type} (it answers no pending input_request)`);
      continue;
    }
    if (content.status === 'error') answerInput({ error: String(content.evalue ?? content.ename ?? 'the front end answered the input_request with an error') });
    else answerInput({ value: String(content.value ?? '') });
  }
}

// ---- control: relay everything; act on interrupt_request and shutdown_request here, at once

/** Sends SIGINT to the process until the main thread has dealt with interrupt number `n` (or is idle again). */
function interruptMain(n: number): void {
  let tries = 0;
  const kick = () => {
    if (Atomics.load(shared, SLOT.HANDLED) >= n || !Atomics.load(shared, SLOT.BUSY) || tries++ >= 40) return;
    // A SIGINT that lands before the cell's script started (compiling, or on a loaded machine) is queued for the
    // main thread's event loop, which a synchronous cell never reaches: send it again until the cell stops.
    Atomics.add(shared, SLOT.SIGNALS_SENT, 1);
    process.kill(process.pid, 'SIGINT');
    setTimeout(kick, 250);
  };
  kick();
}

async function readControl(): Promise<void> {
  for await (const frames of control) {
    const d = decodeFrames(frames as Buffer[], signer);
    const type = 'msg' in d ? d.msg.header.msg_type : '';
    if (type === 'interrupt_request') {
      const n = Atomics.add(shared, SLOT.INTERRUPTS, 1) + 1;
      // A cell waiting for input is interrupted by answering its request; any other running cell by SIGINT.
      if (pendingInput) answerInput({ interrupted: true });
      else interruptMain(n);
    } else if (type === 'shutdown_request') {
      answerInput({ interrupted: true }); // a prompt must not keep the main thread from shutting down
    }
    post({ type: 'control', frames: frames as Buffer[] });
  }
}

// ---- the parent poller

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function pollParent(): void {
  const original = process.ppid;
  const jpy = init.parentPid;
  const timer = setInterval(() => {
    let reason: string | null = null;
    if (original > 1 && process.ppid !== original) reason = `the process that started it (pid ${original}) has exited`;
    else if (jpy > 1 && jpy !== original && !alive(jpy)) reason = `JPY_PARENT_PID ${jpy} has exited`;
    if (!reason) return;
    clearInterval(timer);
    log(`${reason}: shutting down (no orphan kernels)`);
    for (const f of init.ipcFiles) rmSync(f, { force: true });
    post({ type: 'orphaned', reason });
    // The main thread exits cleanly when it is free; a busy cell cannot stop it.
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 1500).unref();
  }, 500);
}

// ---- messages from the main thread

let closing = false;
port.on('message', (m: ToChannels) => {
  switch (m.type) {
    case 'publish':
      iopubQ.push(m.frames.map((f) => Buffer.from(f)));
      break;
    case 'control':
      controlQ.push(m.frames.map((f) => Buffer.from(f)));
      break;
    case 'input':
      if (pendingInput) answerInput({ error: 'another input_request is already waiting for an answer' });
      pendingInput = { id: m.id, msgId: m.msgId, sync: m.sync };
      stdinQ.push(m.frames.map((f) => Buffer.from(f)));
      break;
    case 'cancel-input':
      if (pendingInput?.id === m.id) pendingInput = null;
      break;
    case 'flush':
      void Promise.all([iopubQ.flushed(), controlQ.flushed()]).then(() => post({ type: 'flushed', id: m.id }));
      break;
    case 'close':
      if (closing) return;
      closing = true;
      void Promise.all([iopubQ.flushed(), controlQ.flushed(), stdinQ.flushed()]).finally(() => {
        for (const s of [hb, control, iopub, stdin]) s.close();
        post({ type: 'closed' });
      });
      break;
  }
});

(async () => {
  await hb.bind(init.endpoints.hb);
  await control.bind(init.endpoints.control);
  await iopub.bind(init.endpoints.iopub);
  await stdin.bind(init.endpoints.stdin);
  post({ type: 'ready' });
  pollParent();
  void (async () => {
    for await (const frames of hb) await hb.send(frames);
  })().catch(() => {});
  void readStdin().catch((e) => !closing && log(`stdin channel failed: ${(e as Error).message}`));
  await readControl();
})().catch((e) => {
  if (!closing) post({ type: 'error', message: String((e as Error)?.stack ?? e) });
});
