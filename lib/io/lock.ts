/**
 * Advisory locks on output folders (and files), so that two writers never mix their outputs.
 *
 * A lock is a small JSON file, `<dir>/.brainnet.lock` (for a file `f`: `.f.brainnet.lock` beside it), naming its
 * holder: pid, host, the command, its arguments and when it started. It is created atomically (a complete temporary
 * file hard-linked into place, which fails when the lock exists), so a second writer sees either no lock or a whole one.
 *
 * - A second writer fails at once with {@link FolderLockedError} naming the holder's pid and command, or, with
 *   `wait`, waits (saying so once) until the holder is done.
 * - A lock whose holder is no longer running on this machine (killed with SIGKILL, or the machine rebooted) is
 *   stale: the next writer takes it over and says so. On Linux the holder's process start time is recorded too,
 *   so a pid reused by another program is recognised. A lock from another host is never taken over.
 * - When the lock is taken, the temporary files that killed writers left in the folder are removed (atomic.ts).
 * - The lock is released when the work ends, when the process exits, and on SIGINT/SIGTERM/SIGHUP when no one
 *   else handles those signals.
 *
 * Locks are advisory: they keep out writers that take them (every command of this project that writes a
 * folder), not a program that ignores them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describeStaleTemps, processAlive, removeStaleTemps, tempPathFor } from './atomic.js';

/** The name of the lock file inside a locked folder. */
export const LOCK_FILE = '.brainnet.lock';

/** Who holds a lock: what the lock file says. */
export interface LockHolder {
  pid: number;
  host: string;
  /** What the holder is doing, as it said (e.g. 'make-subject'). */
  command: string;
  /** The holder's command line (node and script, then its arguments), shortened. */
  argv: string;
  /** ISO time the lock was taken. */
  started: string;
  /** Linux: the process's start time in clock ticks after boot (/proc/PID/stat field 22), to recognise a reused pid. */
  procStart: number | null;
  /** Random token of this acquisition (so a release never removes someone else's lock). */
  token: string;
}

/** Options of {@link acquireFolderLock}, {@link withFolderLock} and {@link withFileLock}. */
export interface LockOptions {
  /** What this writer does, shown to a second writer (e.g. 'make-subject', 'zscore', 'token cache'). */
  command: string;
  /** Wait for a live holder instead of failing: true (as long as it takes) or at most this many ms. Default false. */
  wait?: boolean | number;
  /** Where notes go (waiting, stale lock taken over, leftovers removed); default console.error; null for silence. */
  log?: ((line: string) => void) | null;
  /** Remove the temporary files of killed writers inside the folder once locked (default true; folders only). */
  sweep?: boolean;
  /** Poll interval while waiting, ms (default 500). */
  pollMs?: number;
}

/** A lock this process holds. */
export interface HeldLock {
  /** The locked folder (or file). */
  target: string;
  /** The lock file. */
  file: string;
  holder: LockHolder;
  /** Removes the lock file (when it is still ours). Idempotent. */
  release(): void;
}

/** Thrown when another live writer holds the lock: names the folder, the holder and how to proceed. */
export class FolderLockedError extends Error {
  override name = 'FolderLockedError';
  constructor(
    readonly target: string,
    readonly lockFile: string,
    readonly holder: LockHolder,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Linux start time (clock ticks after boot) of process `pid`, or null where /proc does not say. */
export function processStartTicks(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** Whether the holder of a lock is still running: same host, pid alive and (where known) the same process start. */
export function holderAlive(h: LockHolder): boolean {
  if (h.host !== os.hostname()) return true; // cannot tell: assume it runs
  if (h.pid === process.pid) return held.has(h.token); // ours, or a dead process's that had our pid
  if (!processAlive(h.pid)) return false;
  if (h.procStart !== null) {
    const now = processStartTicks(h.pid);
    if (now !== null && now !== h.procStart) return false; // the pid now belongs to another process
  }
  return true;
}

/** The lock file of folder `dir`. */
export function folderLockFile(dir: string): string {
  return path.join(path.resolve(dir), LOCK_FILE);
}

/** The lock file of a single output file `file`: `.<name>.brainnet.lock` beside it. */
export function fileLockFile(file: string): string {
  const abs = path.resolve(file);
  return path.join(path.dirname(abs), `.${path.basename(abs)}${LOCK_FILE}`);
}

/** Reads a lock file: its holder, null when there is no lock, or 'unreadable' when it is not a lock this code wrote. */
export function readLockFile(file: string): LockHolder | null | 'unreadable' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return 'unreadable';
  }
  try {
    const h = JSON.parse(text) as LockHolder;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string' || typeof h.token !== 'string') return 'unreadable';
    return { ...h, command: String(h.command ?? ''), argv: String(h.argv ?? ''), started: String(h.started ?? ''), procStart: typeof h.procStart === 'number' ? h.procStart : null };
  } catch {
    return 'unreadable';
  }
}

/** The state of the lock of folder `dir` (or of a file, with `file: true`): none, held by a live writer, or stale. */
export function lockStatus(target: string, opts: { file?: boolean } = {}): { state: 'none' } | { state: 'live' | 'stale'; holder: LockHolder; lockFile: string } {
  const lockFile = opts.file ? fileLockFile(target) : folderLockFile(target);
  const h = readLockFile(lockFile);
  if (h === null || h === 'unreadable') return { state: 'none' };
  return { state: holderAlive(h) ? 'live' : 'stale', holder: h, lockFile };
}

/** One phrase naming a holder: `pid 123 (make-subject: tsx make-subject.ts --seed 2) on host h since 2026-12-07T10:00:00Z`. */
export function describeHolder(h: LockHolder): string {
  const self = h.pid === process.pid && h.host === os.hostname() ? ', this process' : '';
  const argv = h.argv && h.argv !== h.command ? `: ${h.argv}` : '';
  return `pid ${h.pid}${self} (${h.command}${argv}) on host ${h.host} since ${h.started}`;
}

// tokens of the locks this process holds -> their lock files (one registry per process, even if this module is loaded twice)
const REGISTRY = Symbol.for('brainnet.io.locks');
const held: Map<string, string> = ((globalThis as Record<symbol, unknown>)[REGISTRY] as Map<string, string> | undefined)
  ?? ((globalThis as Record<symbol, unknown>)[REGISTRY] = new Map<string, string>());
let exitHooked = false;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function releaseAllSync(): void {
  for (const [token, file] of held) {
    const h = readLockFile(file);
    if (h && h !== 'unreadable' && h.token === token) fs.rmSync(file, { force: true });
  }
  held.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  // only when no one else listens: release our locks, then die of the signal as we would have
  const others = process.listeners(sig).filter((l) => l !== signalHandlers[sig]);
  if (others.length) return;
  releaseAllSync();
  for (const s of SIGNALS) process.removeListener(s, signalHandlers[s]!);
  process.kill(process.pid, sig);
}
const signalHandlers: Partial<Record<NodeJS.Signals, () => void>> = Object.fromEntries(SIGNALS.map((s) => [s, () => onSignal(s)]));

function hookExit(): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', releaseAllSync);
  }
  for (const s of SIGNALS) if (!process.listeners(s).includes(signalHandlers[s]!)) process.on(s, signalHandlers[s]!);
}

function unhookSignalsIfIdle(): void {
  if (held.size) return;
  for (const s of SIGNALS) process.removeListener(s, signalHandlers[s]!);
}

/** Creates `file` holding `text` only if it does not exist, atomically (hard link of a complete temporary file). */
function createExclusive(file: string, text: string): boolean {
  const tmp = tempPathFor(file);
  fs.writeFileSync(tmp, text);
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

const shortArgv = (): string => {
  const parts = process.argv.slice(1).map((a, i) => (i === 0 ? path.relative(process.cwd(), a) || a : a));
  const s = parts.join(' ');
  return s.length > 300 ? `${s.slice(0, 297)}...` : s;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes over a stale lock: under a short-lived guard file, checks that the lock is still the stale one and removes
 * it. Returns false when another process is doing the same right now (the caller retries).
 */
function takeOverStale(lockFile: string, stale: LockHolder): boolean {
  const guard = `${lockFile}.takeover`;
  const me = JSON.stringify({ pid: process.pid, host: os.hostname(), token: randomBytes(8).toString('hex') });
  if (!createExclusive(guard, me)) {
    const g = readLockFile(guard);
    // a guard of a dead process (killed within the last few microseconds of a takeover) is removed
    if (g === 'unreadable' || (g && !holderAlive({ ...g, procStart: null }))) fs.rmSync(guard, { force: true });
    // (the guard lives for a few synchronous calls, so a guard of a dead process is one killed inside them)
    return false;
  }
  try {
    const now = readLockFile(lockFile);
    if (now && now !== 'unreadable' && now.token === stale.token) fs.rmSync(lockFile, { force: true });
    return true;
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

async function acquire(target: string, lockFile: string, kind: 'folder' | 'file', opts: LockOptions): Promise<HeldLock> {
  const log = opts.log === undefined ? (s: string) => console.error(s) : opts.log;
  const deadline = opts.wait === true ? Infinity : typeof opts.wait === 'number' ? Date.now() + opts.wait : -Infinity;
  const holder: LockHolder = {
    pid: process.pid, host: os.hostname(), command: opts.command, argv: shortArgv(), started: new Date().toISOString(),
    procStart: processStartTicks(process.pid), token: randomBytes(8).toString('hex'),
  };
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  const t0 = Date.now();
  let waited = false;
  for (;;) {
    // 1. try to create the lock
    if (createExclusive(lockFile, JSON.stringify(holder, null, 1) + '\n')) break;
    // 2. it exists: stale (take it over), unreadable (refuse), or live (fail or wait)
    const h = readLockFile(lockFile);
    if (h === null) continue; // released in the meantime
    if (h === 'unreadable') {
      throw new FolderLockedError(target, lockFile, { pid: 0, host: '?', command: '?', argv: '', started: '?', procStart: null, token: '' },
        `${lockFile}: expected a brainnet lock file (JSON naming the writer of ${target}), but found something unreadable. If no other command is writing ${target}, delete ${lockFile} and run again.`);
    }
    if (!holderAlive(h)) {
      if (takeOverStale(lockFile, h)) {
        log?.(`${target}: taking over the lock of ${describeHolder(h)}, which is no longer running; its outputs may be incomplete and are redone as needed.`);
      } else await sleep(50);
      continue;
    }
    if (Date.now() >= deadline) {
      const self = h.pid === process.pid && h.host === os.hostname();
      const fix = self
        ? 'This same process is already writing it (two calls at once); let the first finish, or give each its own folder.'
        : h.host !== os.hostname()
          ? `Wait for it to finish, or use another ${kind === 'folder' ? 'folder' : 'output file'}. The lock is from another machine; if that process is gone, delete ${lockFile}.`
          : `Wait for it to finish (or stop it), or use another ${kind === 'folder' ? 'folder' : 'output file'}.`;
      throw new FolderLockedError(target, lockFile, h,
        `${target}: expected no other writer of this ${kind}, but found ${describeHolder(h)} holding ${lockFile}${waited ? ` (waited ${Math.round((Date.now() - t0) / 1000)} s)` : ''}. ${fix}`);
    }
    if (!waited) {
      waited = true;
      log?.(`${target}: waiting for ${describeHolder(h)} to finish writing it...`);
    }
    await sleep(opts.pollMs ?? 500);
  }
  held.set(holder.token, lockFile);
  hookExit();
  if (waited) log?.(`${target}: the other writer is done; going on.`);
  // 3. remove what killed writers left behind
  if (kind === 'folder' && (opts.sweep ?? true)) {
    const line = describeStaleTemps(target, removeStaleTemps(target));
    if (line) log?.(line);
  }
  let released = false;
  return {
    target, file: lockFile, holder,
    release() {
      if (released) return;
      released = true;
      const now = readLockFile(lockFile);
      if (now && now !== 'unreadable' && now.token === holder.token) fs.rmSync(lockFile, { force: true });
      held.delete(holder.token);
      unhookSignalsIfIdle();
    },
  };
}

/** Takes the lock of folder `dir` (created if missing); see the file comment. Release it with `release()`. */
export function acquireFolderLock(dir: string, opts: LockOptions): Promise<HeldLock> {
  const abs = path.resolve(dir);
  fs.mkdirSync(abs, { recursive: true });
  return acquire(abs, folderLockFile(abs), 'folder', opts);
}

/** Runs `work` holding the lock of folder `dir`, and releases it afterwards (also when `work` throws). */
export async function withFolderLock<T>(dir: string, opts: LockOptions, work: (lock: HeldLock) => Promise<T> | T): Promise<T> {
  const lock = await acquireFolderLock(dir, opts);
  try {
    return await work(lock);
  } finally {
    lock.release();
  }
}

/** Runs `work` holding the lock of the output file `file` (`.<name>.brainnet.lock` beside it), and releases it afterwards. */
export async function withFileLock<T>(file: string, opts: LockOptions, work: (lock: HeldLock) => Promise<T> | T): Promise<T> {
  const abs = path.resolve(file);
  const lock = await acquire(abs, fileLockFile(abs), 'file', { ...opts, sweep: false });
  try {
    return await work(lock);
  } finally {
    lock.release();
  }
}
