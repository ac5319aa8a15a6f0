/**
 * What the kernel's two threads say to each other (channels.ts on the main thread, channels-worker.ts on the
 * second thread): the messages, the slots of the shared Int32Array, and the outcome of an input request.
 */
import type { MessagePort } from 'node:worker_threads';

/** Slots of the Int32Array over the SharedArrayBuffer both threads hold. */
export const SLOT = {
  /** 0 while the main thread waits for a synchronous prompt() answer; the worker stores 1 and notifies. */
  PROMPT: 0,
  /** 1 while the main thread handles an execute_request (so an interrupt has something to stop). */
  BUSY: 1,
  /** interrupt_requests the worker has received. */
  INTERRUPTS: 2,
  /** interrupt_requests the main thread has dealt with (the cell stopped, or ended on its own). */
  HANDLED: 3,
  /** SIGINTs the worker has sent to the process. */
  SIGNALS_SENT: 4,
  /** Of those, how many the main thread has accounted for (a SIGINT beyond them came from outside). */
  SIGNALS_SEEN: 5,
} as const;
export const SLOT_COUNT = 6;

/** workerData of the channels worker. */
export interface ChannelsInit {
  endpoints: { hb: string; control: string; iopub: string; stdin: string };
  key: string;
  signatureScheme: string;
  /** The ipc socket files the kernel binds (removed when it exits because its parent died); empty over TCP. */
  ipcFiles: string[];
  shared: SharedArrayBuffer;
  /** Where synchronous prompt() answers arrive (read with receiveMessageOnPort). */
  syncPort: MessagePort;
  /** JPY_PARENT_PID, as Jupyter clients set it (0 when unset). */
  parentPid: number;
}

/** Main thread -> worker. */
export type ToChannels =
  | { type: 'publish'; frames: Buffer[] }
  | { type: 'control'; frames: Buffer[] }
  | { type: 'input'; id: number; msgId: string; frames: Buffer[]; sync: boolean }
  | { type: 'cancel-input'; id: number }
  | { type: 'flush'; id: number }
  | { type: 'close' };

/** How an input_request ended: the front end's answer, an error it sent, or an interrupt. */
export type InputOutcome = { value: string } | { error: string } | { interrupted: true };

/** Worker -> main thread. */
export type FromChannels =
  | { type: 'ready' }
  | { type: 'error'; message: string }
  | { type: 'control'; frames: Uint8Array[] }
  | { type: 'input'; id: number; outcome: InputOutcome }
  | { type: 'flushed'; id: number }
  | { type: 'orphaned'; reason: string }
  | { type: 'closed' };
