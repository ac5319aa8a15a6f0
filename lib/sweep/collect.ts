/**
 * Collecting a sweep: each point's state and what its notebook recorded, from the point folders, into
 * OUT/results.json (one entry per point), a tidy OUT/results.csv (one row per point and recorded name) and, for each
 * recorded table, OUT/tables/<name>.csv (one row per point and table row, with the point's grid values in front).
 * `loadSweep` reads the same for a notebook (paper_figures.ipynb) without writing anything.
 */
import * as path from 'node:path';
import { writeFileAtomicSync } from '../io/atomic.js';
import type { RecordScalar, RecordValue } from '../notebook/record.js';
import { valueText, type ParamValue } from './grid.js';
import { pointDir, readJson, readStatus, readSweepSpec, writeJson, type PointError, type PointRecords, type PointState, type SweepSpec } from './store.js';

/** One point with its state and records. */
export interface PointResult {
  index: number;
  key: string;
  /** The point's folder (executed notebook, HTML, log, status, timings, records, and whatever the notebook saved there). */
  dir: string;
  /** Its grid values. */
  values: Record<string, ParamValue>;
  state: PointState;
  attempt?: number;
  seconds?: number;
  error?: PointError;
  /** Recorded values by name. */
  records: Record<string, RecordValue>;
}

/** A read sweep: its spec and its points in order. */
export interface LoadedSweep {
  dir: string;
  spec: SweepSpec;
  points: PointResult[];
}

/** Reads a sweep folder: every point of sweep.json with its status and records (nothing is written). */
export function loadSweep(dir: string): LoadedSweep {
  const spec = readSweepSpec(dir);
  const points = spec.points.map((p): PointResult => {
    const pdir = pointDir(dir, p.key);
    const s = readStatus(pdir);
    const recs = readJson<PointRecords>(path.join(pdir, 'records.json')) ?? {};
    return {
      index: p.index, key: p.key, dir: pdir, values: p.values, state: s?.state ?? 'pending', attempt: s?.attempt, seconds: s?.seconds,
      ...(s?.error && s.state !== 'done' ? { error: s.error } : {}),
      records: Object.fromEntries(Object.entries(recs).map(([k, r]) => [k, r.value])),
    };
  });
  return { dir: path.resolve(dir), spec, points };
}

/** One CSV field (RFC 4180: quoted when it holds a comma, quote or line break). */
export function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV text from a header and rows. */
export function toCsv(header: string[], rows: unknown[][]): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}

const gridCell = (v: ParamValue | undefined) => (v === undefined ? '' : typeof v === 'string' ? v : valueText(v));

/** The rows of one recorded name over the points: a table's rows (each with the point's key and grid values in front), or one row per point for other kinds. */
export function recordRows(sweep: LoadedSweep, name: string, opts: { onlyDone?: boolean } = {}): Record<string, RecordScalar | ParamValue>[] {
  const rows: Record<string, RecordScalar | ParamValue>[] = [];
  for (const p of sweep.points) {
    if (opts.onlyDone !== false && p.state !== 'done') continue;
    const v = p.records[name];
    if (v === undefined) continue;
    const front = { point: p.key, ...p.values };
    if (Array.isArray(v) && v.length && typeof v[0] === 'object' && v[0] !== null) for (const r of v as Record<string, RecordScalar>[]) rows.push({ ...front, ...r });
    else rows.push({ ...front, [name]: v as RecordScalar });
  }
  return rows;
}

/** Writes results.json, results.csv and tables/<name>.csv; returns their paths. */
export function writeResults(sweep: LoadedSweep): { json: string; csv: string; tables: string[] } {
  const { dir, spec, points } = sweep;
  const json = path.join(dir, 'results.json');
  writeJson(json, {
    notebook: spec.notebook, grid: spec.grid, params: spec.params, collected: new Date().toISOString(),
    counts: { done: points.filter((p) => p.state === 'done').length, failed: points.filter((p) => p.state === 'failed').length, other: points.filter((p) => p.state !== 'done' && p.state !== 'failed').length },
    points: points.map((p) => ({ index: p.index, key: p.key, values: p.values, state: p.state, attempt: p.attempt, seconds: p.seconds, error: p.error, records: p.records })),
  });
  // tidy: one row per point and name (a point without records still has one row, with an empty name)
  const header = ['point', ...spec.gridNames, 'status', 'name', 'value'];
  const rows: unknown[][] = [];
  for (const p of points) {
    const front = [p.key, ...spec.gridNames.map((n) => gridCell(p.values[n])), p.state];
    const names = Object.keys(p.records);
    if (!names.length) rows.push([...front, '', '']);
    for (const n of names) rows.push([...front, n, p.records[n]]);
  }
  const csv = path.join(dir, 'results.csv');
  writeFileAtomicSync(csv, toCsv(header, rows));
  // each recorded table, long form
  const tables: string[] = [];
  const tableNames = [...new Set(points.flatMap((p) => Object.entries(p.records).filter(([, v]) => Array.isArray(v) && v.length && typeof v[0] === 'object' && v[0] !== null).map(([k]) => k)))];
  for (const name of tableNames) {
    const trows = recordRows(sweep, name, { onlyDone: false });
    const cols = [...new Set(trows.flatMap((r) => Object.keys(r)))].filter((c) => c !== 'point' && !spec.gridNames.includes(c));
    const file = path.join(dir, 'tables', `${name}.csv`);
    writeFileAtomicSync(file, toCsv(['point', ...spec.gridNames, ...cols], trows.map((r) => [r.point, ...spec.gridNames.map((n) => gridCell(r[n] as ParamValue)), ...cols.map((c) => r[c])])));
    tables.push(file);
  }
  return { json, csv, tables };
}
