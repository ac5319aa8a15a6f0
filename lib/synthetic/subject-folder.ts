/**
 * The output folder of make-subject: locked while a subject is written (lib/io/lock.ts), and marked with the
 * settings that made it (`.make-subject.json`), so that a second run into the same folder either redoes the same
 * subject (a rerun after a crash, byte for byte the same) or is refused: two seeds never mix in one folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicSync, tempFileWriter } from '../io/atomic.js';
import { LOCK_FILE, withFolderLock } from '../io/lock.js';

/** The file that records how a subject folder was made. */
export const SUBJECT_MARKER = '.make-subject.json';

/** The settings that decide a subject's bytes (layout, size, seed, and any overrides). */
export type SubjectSettings = Record<string, string | number | null>;

/** Options of {@link withSubjectFolder}. */
export interface SubjectFolderOptions {
  /** Replace a subject made with other settings (only a folder that holds a synthetic subject is cleared). */
  overwrite?: boolean;
  /** Where notes go (stale lock taken over, leftovers removed, subject replaced); default console.error. */
  log?: ((line: string) => void) | null;
}

const describe = (s: SubjectSettings) => Object.entries(s).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v}`).join(', ');
const same = (a: SubjectSettings, b: SubjectSettings) => JSON.stringify(a, Object.keys(a).sort()) === JSON.stringify(b, Object.keys(b).sort());

/** The settings recorded in `dir`, null without a marker, or 'unreadable'. */
export function readSubjectMarker(dir: string): SubjectSettings | null | 'unreadable' {
  const file = path.join(dir, SUBJECT_MARKER);
  if (!fs.existsSync(file)) return null;
  try {
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { settings?: SubjectSettings };
    return m.settings && typeof m.settings === 'object' ? m.settings : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

/** Whether `dir` holds what make-subject writes (ground truth of either layout), so that overwrite may clear it. */
function looksLikeSubject(dir: string): boolean {
  return ['vertices.json', 'truth.json'].some((f) => fs.existsSync(path.join(dir, 'ground_truth', f))) || fs.existsSync(path.join(dir, SUBJECT_MARKER));
}

/**
 * Checks the folder before a subject is written into it (the caller holds its lock): empty, or made with the same
 * settings, go on; made with other settings, refused unless `overwrite` (then cleared); anything else, refused.
 */
function prepare(dir: string, settings: SubjectSettings, o: SubjectFolderOptions): void {
  const entries = fs.readdirSync(dir).filter((n) => n !== LOCK_FILE && tempFileWriter(n) === null);
  const marker = readSubjectMarker(dir);
  const want = describe(settings);
  const clear = () => {
    for (const n of entries) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  };
  if (entries.length && !(marker && marker !== 'unreadable' && same(marker, settings))) {
    const subject = looksLikeSubject(dir);
    const found = marker === 'unreadable' ? `an unreadable ${SUBJECT_MARKER}`
      : marker ? `a subject made with ${describe(marker)}`
        : subject ? `a subject that does not say how it was made (no ${SUBJECT_MARKER}: written by an older make-subject)`
          : `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} that make-subject did not write (${entries.slice(0, 4).join(', ')}${entries.length > 4 ? ', ...' : ''})`;
    if (!subject) {
      throw new Error(`${dir}: expected an empty folder or a synthetic subject, but found ${found}. Choose a new or empty --out folder.`);
    }
    if (!o.overwrite) {
      throw new Error(`${dir}: expected an empty folder or a subject made with the same settings (${want}), but found ${found}. Use another --out, delete ${dir}, or pass --overwrite (overwrite: true) to replace it.`);
    }
    o.log?.(`${dir}: replacing ${found} by one made with ${want} (overwrite).`);
    clear();
  }
  writeFileAtomicSync(path.join(dir, SUBJECT_MARKER), JSON.stringify({ tool: 'make-subject', settings }, null, 1) + '\n');
}

/**
 * Runs `write(dir)` holding the lock of the subject folder `out`, after checking that it is empty or holds a
 * subject made with the same `settings` (then everything is written again: the same bytes).
 */
export async function withSubjectFolder<T>(out: string, settings: SubjectSettings, o: SubjectFolderOptions, write: (dir: string) => Promise<T>): Promise<T> {
  const dir = path.resolve(out);
  const log = o.log === undefined ? (s: string) => console.error(s) : o.log;
  return withFolderLock(dir, { command: `make-subject (${describe(settings)})`, log }, async () => {
    prepare(dir, settings, { ...o, log });
    return write(dir);
  });
}
