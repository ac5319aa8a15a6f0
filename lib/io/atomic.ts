/**
 * Atomic writes: data goes to a temporary file beside the target, which is renamed
 * over the target only once it is complete. A crash leaves the old file intact.
 *
 * Temporary files carry the writer's pid: `.<name>.tmp-<pid>-<random>`. A process killed with SIGKILL
 * cannot remove its own, so the next writer of the folder calls {@link removeStaleTemps} (the folder
 * lock, lock.ts, does it when it is taken): files of dead writers go, those of live processes stay.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A temporary path in the same folder as `target` (so that rename is atomic): `.<name>.tmp-<pid>-<random>`. */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/**
 * The writer's pid when `name` (a file name, no folder) is a temporary file of {@link tempPathFor}
 * (`.<name>.tmp-<pid>-<random>`) or of the token cache before version 2 (`<name>.npy.tmp-<pid>`); else null. Pure.
 */
export function tempFileWriter(name: string): number | null {
  const m = /^\..+\.tmp-(\d+)-[a-z0-9]+$/.exec(name) ?? /^.+\.npy\.tmp-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Whether process `pid` is running on this machine (signal 0: ESRCH means gone; EPERM means it runs under
 * another user). Our own pid is alive.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What {@link removeStaleTemps} did: files removed (dead writers) with their bytes, and files kept (live writers). */
export interface StaleTempReport {
  removed: string[];
  bytes: number;
  /** Writers' pids of the removed files. */
  pids: number[];
  kept: string[];
}

/**
 * Removes the temporary files (and folders) under `dir` whose writer is no longer running, leaving those
 * of live processes alone; recursive by default (symbolic links are not followed). A missing `dir` is empty.
 */
export function removeStaleTemps(dir: string, opts: { recursive?: boolean } = {}): StaleTempReport {
  const out: StaleTempReport = { removed: [], bytes: 0, pids: [], kept: [] };
  const visit = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      const pid = tempFileWriter(e.name);
      if (pid === null) {
        if (e.isDirectory() && (opts.recursive ?? true)) visit(p);
        continue;
      }
      if (processAlive(pid)) {
        out.kept.push(p);
        continue;
      }
      out.bytes += sizeOf(p);
      fs.rmSync(p, { recursive: true, force: true });
      out.removed.push(p);
      if (!out.pids.includes(pid)) out.pids.push(pid);
    }
  };
  visit(dir);
  return out;
}

/** Bytes of a file, or of everything under a folder (links not followed). */
function sizeOf(p: string): number {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((s, n) => s + sizeOf(path.join(p, n)), 0);
}

/** One line for a log: how many leftovers of dead writers were removed from `dir`, their size and pids; null when none. */
export function describeStaleTemps(dir: string, r: StaleTempReport): string | null {
  if (!r.removed.length) return null;
  const mb = r.bytes / 1e6;
  return `${dir}: removed ${r.removed.length} temporary file${r.removed.length === 1 ? '' : 's'} (${mb < 0.1 ? `${r.bytes} bytes` : `${mb.toFixed(1)} MB`}) left by killed writer${r.pids.length === 1 ? '' : 's'} (pid ${r.pids.join(', ')})`;
}

/** Writes `data` to `target` atomically, creating the parent folder if needed. */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await withAtomicFile(target, (tmp) => fs.promises.writeFile(tmp, data));
}

/** Synchronous form of {@link writeFileAtomic}. */
export function writeFileAtomicSync(target: string, data: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
  const tmp = tempPathFor(target);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Calls `write(tmpPath)` to produce the file, then renames it to `target`.
 * If `write` throws, the temporary file is removed and `target` is untouched.
 */
export async function withAtomicFile<T>(target: string, write: (tmpPath: string) => Promise<T> | T): Promise<T> {
  await fs.promises.mkdir(path.dirname(path.resolve(target)), { recursive: true });
  const tmp = tempPathFor(target);
  try {
    const result = await write(tmp);
    await fs.promises.rename(tmp, target);
    return result;
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}
