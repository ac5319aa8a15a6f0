/**
 * Input from the front end (the stdin channel): `await input('Subject: ')`, `await input('Token: ', { password: true })`
 * and the browser's synchronous `prompt('Subject: ', 'default')`, as globals of the kernel. Each sends an
 * `input_request` to the front end that sent the running execute_request and returns its `input_reply`.
 * A request with `allow_stdin: false` (the headless runner without --input) gets StdinNotAllowedError; an
 * unanswered request ends with InterruptedError on interrupt_request (and on SIGINT for `input()`).
 */
import type { Channels } from './channels.js';
import type { InputOutcome } from './channels-protocol.js';
import { InterruptedError } from './execute.js';
import type { JupyterMessage } from './wire.js';

/** Raised when a cell asks for input but its front end did not allow stdin. */
export class StdinNotAllowedError extends Error {
  constructor(call: string) {
    super(
      `${call} needs an answer from the front end, but this execute_request came with allow_stdin: false, so nobody can ` +
        'answer it. Run the cell from a front end that allows input (JupyterLab, Notebook), or give the answer to the ' +
        "headless runner: npm run notebook -- nb.ipynb --out DIR --input 'Name=value' (Name: the prompt without its trailing colon).",
    );
    this.name = 'StdinNotAllowedError';
  }
}

/** Raised when the front end answers an input_request with an error (the runner has no --input for the prompt). */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** What the kernel gives the stdin globals. */
export interface StdinContext {
  channels: Channels;
  /** The execute_request being run (null between cells). */
  parent(): JupyterMessage | null;
  /** Signed input_request frames addressed to the parent's sender, and the request's msg_id. */
  inputRequest(parent: JupyterMessage, content: { prompt: string; password: boolean }): { frames: Buffer[]; msgId: string };
  /** Sends pending stdout/stderr first, so the prompt follows what the cell printed. */
  flushStreams(): void;
  /** Registers the cancel of a pending input(), called when the cell is interrupted. */
  onPending(cancel: (() => void) | null): void;
}

function describeCall(name: string, prompt: string): string {
  return `${name}(${JSON.stringify(prompt)})`;
}

/** The request for a prompt, or the error when the running request does not allow stdin. */
function prepare(ctx: StdinContext, name: string, prompt: string, password: boolean): { frames: Buffer[]; msgId: string } {
  const parent = ctx.parent();
  if (!parent || parent.header.msg_type !== 'execute_request') throw new InputError(`${describeCall(name, prompt)} was called outside a running cell (from work left running after its cell ended); ask for input inside the cell`);
  if (parent.content.allow_stdin !== true) throw new StdinNotAllowedError(describeCall(name, prompt));
  ctx.flushStreams();
  return ctx.inputRequest(parent, { prompt, password });
}

function settle(outcome: InputOutcome, call: string): string {
  if ('value' in outcome) return outcome.value;
  if ('interrupted' in outcome) throw new InterruptedError(`${call} was interrupted before the front end answered`);
  throw new InputError(`${call}: ${outcome.error}`);
}

/** `input(prompt, { password })`: asks the front end and resolves with the line it answers. */
export function makeInput(ctx: StdinContext): (prompt?: unknown, options?: { password?: boolean }) => Promise<string> {
  return async function input(prompt: unknown = '', options: { password?: boolean } = {}): Promise<string> {
    const text = String(prompt);
    const call = describeCall('input', text);
    const req = prepare(ctx, 'input', text, !!options?.password);
    const pending = ctx.channels.requestInput(req.frames, req.msgId);
    ctx.onPending(pending.cancel);
    try {
      return settle(await pending.outcome, call);
    } finally {
      ctx.onPending(null);
    }
  };
}

/** `prompt(message, default)`: as the browser's, synchronous; the answer, or `default` when the answer is empty. */
export function makePrompt(ctx: StdinContext): (message?: unknown, defaultValue?: unknown) => string {
  return function prompt(message: unknown = '', defaultValue?: unknown): string {
    const text = String(message);
    const req = prepare(ctx, 'prompt', text, false);
    const value = settle(ctx.channels.requestInputSync(req.frames, req.msgId), describeCall('prompt', text));
    return value === '' && defaultValue !== undefined && defaultValue !== null ? String(defaultValue) : value;
  };
}

/** Defines the globals `input` and `prompt` (writable: a cell may define its own). */
export function installStdinGlobals(ctx: StdinContext): void {
  for (const [name, value] of [['input', makeInput(ctx)], ['prompt', makePrompt(ctx)]] as const) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }
}
