/**
 * How a bad input is judged (issue 24): every damaged file or subject is read, and the outcome is
 * - `silent`: the call returned data (wrong data, no error);
 * - `unclear`: it threw, but the message does not name the file (or folder) at fault, or does not say what
 *   was expected and what was found;
 * - `clear`: it threw an error whose message names the file and says "expected ..." and "found ...",
 *   as `FileFormatError(file, expected, found, fix)` writes it.
 */

/** The verdict on one bad input. */
export type Verdict = 'silent' | 'unclear' | 'clear';

/** One bad input read once: where it is, what was done to it, and what the call did. */
export interface Outcome {
  /** `<reader or loader>/<case>` */
  id: string;
  /** The file or folder at fault: a clear error names it. */
  file: string;
  damage: string;
  verdict: Verdict;
  /** The error's message (first 400 characters), or what came back. */
  said: string;
}

/** Runs `call` and judges what happened against the file or folder `file` that a clear error must name. */
export async function judge(c: { id: string; file: string; damage: string }, call: () => Promise<unknown>): Promise<Outcome> {
  try {
    const got = await call();
    return { ...c, verdict: 'silent', said: `returned ${describe(got)}` };
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const names = msg.includes(c.file);
    const says = /\bexpected\b/.test(msg) && /\bfound\b/.test(msg);
    return { ...c, verdict: names && says ? 'clear' : 'unclear', said: msg.length > 400 ? `${msg.slice(0, 400)}...` : msg };
  }
}

/** Counts of each verdict. */
export function tally(outcomes: Outcome[]): Record<Verdict, number> & { total: number } {
  const t = { silent: 0, unclear: 0, clear: 0, total: outcomes.length };
  for (const o of outcomes) t[o.verdict]++;
  return t;
}

function describe(v: unknown): string {
  if (v === undefined || v === null) return String(v);
  if (typeof v !== 'object') return typeof v;
  const o = v as Record<string, unknown>;
  if ('shape' in o && Array.isArray(o.shape)) return `an array of shape [${(o.shape as number[]).join(', ')}]`;
  if (ArrayBuffer.isView(v)) return `a typed array of ${(v as unknown as { length: number }).length}`;
  return `an object with ${Object.keys(o).slice(0, 6).join(', ')}`;
}
