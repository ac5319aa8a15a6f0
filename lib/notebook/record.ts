/**
 * `record(name, value)`: a notebook's result, kept in the executed notebook for whoever runs it (scrapbook's
 * `glue`). Inside the brainnet-ts kernel it becomes a display output with its own MIME type, RECORD_MIME, whose data
 * is `{ name, kind, value }`; the runner reads it back from the executed .ipynb (lib/runner/records.ts), so a sweep
 * collects results without scraping text. Outside a kernel it prints one line, `record name = value`.
 *
 *   record('meanR2', 0.31);                        // a number (or a string, a boolean)
 *   record('r2ByLayer', [0.1, 0.2, 0.25]);         // a small array of numbers or strings
 *   record('roiSummary', [{ roi: 'V1', r2: 0.4 }]); // a table: rows of scalar cells
 */
import { kernelHook } from './kernel-hook.js';

/** The MIME type of a recorded value (its data: {@link RecordPayload}). */
export const RECORD_MIME = 'application/vnd.brainnet.record+json';

/** A table cell, an array element or a recorded scalar (NaN and ±Infinity are recorded as null: JSON has no NaN). */
export type RecordScalar = number | string | boolean | null;
/** What {@link record} keeps: a scalar, an array of scalars, a table (rows of scalars), or a small object of scalars. */
export type RecordValue = RecordScalar | RecordScalar[] | Record<string, RecordScalar>[] | Record<string, RecordScalar>;
/** The kind of a recorded value. */
export type RecordKind = 'scalar' | 'array' | 'table' | 'object';

/** The data of a RECORD_MIME output. */
export interface RecordPayload {
  name: string;
  kind: RecordKind;
  value: RecordValue;
}

/** The most JSON text one record may take (a record is a result, not a data set: save arrays to files). */
export const RECORD_MAX_BYTES = 1_000_000;

/** A value that {@link record} refuses: names the record, what was expected, what was found and what to do. */
export class RecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordError';
  }
}

const NAME = /^[A-Za-z_][\w.-]*$/;

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'function') return 'a function';
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'object'} object`;
  return `a ${typeof v}`;
}

function scalar(v: unknown, where: string): RecordScalar {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
  throw new RecordError(`${where}: expected a number, string, boolean or null, found ${describe(v)}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Checks and normalises a value for {@link record}: typed arrays become arrays, non-finite numbers null; throws {@link RecordError}. */
export function recordPayload(name: string, value: unknown): RecordPayload {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new RecordError(`record(name, value): expected a name of letters, digits, '_', '.' or '-' starting with a letter or '_', found ${JSON.stringify(name)}; it becomes a column of results.csv`);
  }
  const where = `record('${name}')`;
  let payload: RecordPayload;
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const arr = Array.from(value as ArrayLike<unknown>);
    if (arr.length && arr.every(isPlainObject)) {
      payload = { name, kind: 'table', value: arr.map((row, i) => Object.fromEntries(Object.entries(row as Record<string, unknown>).map(([k, v]) => [k, scalar(v, `${where}, row ${i}, column '${k}'`)]))) };
    } else {
      payload = { name, kind: 'array', value: arr.map((v, i) => scalar(v, `${where}[${i}]`)) };
    }
  } else if (isPlainObject(value)) {
    payload = { name, kind: 'object', value: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scalar(v, `${where}.${k}`)])) };
  } else {
    try {
      payload = { name, kind: 'scalar', value: scalar(value, where) };
    } catch {
      throw new RecordError(`${where}: expected a number, string, boolean, null, an array of them, a table (an array of plain objects) or a plain object of them, found ${describe(value)}`);
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(payload.value));
  if (bytes > RECORD_MAX_BYTES) {
    throw new RecordError(`${where}: expected at most ${RECORD_MAX_BYTES} bytes of JSON, found ${bytes}; record a summary and save the full array to a file (e.g. io.writeNpy) in the run's folder`);
  }
  return payload;
}

/** One line for people: `name = 0.31`, `name = [3 values]`, `name = table of 5 rows (roi, r2)`. */
export function recordSummary(p: RecordPayload): string {
  switch (p.kind) {
    case 'scalar':
      return `${p.name} = ${JSON.stringify(p.value)}`;
    case 'array': {
      const a = p.value as RecordScalar[];
      return `${p.name} = ${a.length <= 8 ? JSON.stringify(a) : `[${a.length} values]`}`;
    }
    case 'table': {
      const rows = p.value as Record<string, RecordScalar>[];
      const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
      return `${p.name} = table of ${rows.length} row${rows.length === 1 ? '' : 's'} (${cols.join(', ')})`;
    }
    default:
      return `${p.name} = ${JSON.stringify(p.value)}`;
  }
}

/**
 * Records a result under `name` (scrapbook's glue): a number, string or boolean, a small array of them, a table (an array
 * of plain objects) or a plain object of scalars. In the brainnet-ts kernel it is a display output (RECORD_MIME) that the
 * runner and `npm run sweep` read back; elsewhere it prints `record name = value`. Recording a name again replaces it.
 */
export function record(name: string, value: unknown): void {
  const p = recordPayload(name, value);
  const line = `record ${recordSummary(p)}`;
  const hook = kernelHook();
  if (hook) hook.display({ data: { [RECORD_MIME]: p, 'text/plain': line }, metadata: { brainnet: { record: p.name } } }, false);
  else console.log(line);
}
