/**
 * How the runner's watch mode notices that a notebook was saved, without losing a save.
 *
 * It polls the file. A save is a change of its content, judged by a hash of the bytes; the stat (modification and
 * change times, size, inode) only decides whether the file needs reading at all. File times have a granularity
 * (a few milliseconds on Linux, 1-2 s on some file systems), so a second save within one tick of the first can leave
 * the stat unchanged: as git does with "racily clean" index entries, a file whose modification time is within
 * {@link RACY_MS} of the moment it was last looked at is read again and its hash compared. The baseline is taken when
 * the notebook is first read, before anything runs, so a save made while the first run is still going is seen too.
 * A save caught half-written is returned as it is (the caller's parse fails and it waits); when the rest lands, the
 * content differs again and is returned again.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

/** Modification times this close to the last look (ms) may hide a later write in the same tick: re-read. */
export const RACY_MS = 2000;

interface StatSig {
  mtimeMs: number;
  ctimeMs: number;
  size: number;
  ino: number;
}

function sig(st: fs.Stats): StatSig {
  return { mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, size: st.size, ino: st.ino };
}

function sameSig(a: StatSig, b: StatSig): boolean {
  return a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.size === b.size && a.ino === b.ino;
}

const hash = (text: string) => createHash('sha256').update(text).digest('hex');

/** Detects saves of one file by polling (see the file comment). */
export class SaveDetector {
  private last: { sig: StatSig; at: number } | null = null;
  /** Hash of the content last returned by read() or poll(). */
  private seenHash = '';
  /** Files read (for tests: a quiet file is not read on every poll). */
  reads = 0;

  constructor(readonly file: string, private readonly now: () => number = Date.now) {}

  /** Reads the file now and makes it the baseline; throws naming the file when it cannot be read. */
  read(): string {
    try {
      return this.readText();
    } catch (e) {
      const found = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      throw new Error(`${this.file}: expected a notebook file, found ${found}; check the path`);
    }
  }

  private readText(): string {
    const at = this.now();
    // Stat before reading: a write after the read changes the stat, or falls in the racy window.
    const st = fs.statSync(this.file);
    const text = fs.readFileSync(this.file, 'utf8');
    this.reads++;
    this.last = { sig: sig(st), at };
    this.seenHash = hash(text);
    return text;
  }

  /** The file's new content when it differs from the content seen last, else undefined. */
  poll(): string | undefined {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      return undefined;
    }
    const prev = this.last;
    if (prev && sameSig(prev.sig, sig(st)) && prev.sig.mtimeMs < prev.at - RACY_MS) return undefined;
    const before = this.seenHash;
    let text: string;
    try {
      text = this.readText();
    } catch {
      return undefined; // being replaced (rename-save), or gone: the next poll looks again
    }
    return this.seenHash !== before ? text : undefined;
  }
}
