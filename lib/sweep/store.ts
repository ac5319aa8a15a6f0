/**
 * A sweep's folder, the one place that knows its layout:
 *
 *   OUT/sweep.json                 the sweep: notebook, grid, fixed parameters, its points (index, key, parameters)
 *   OUT/points/<key>/point.json    what the point runs: notebook, parameters (as the runner's --param text), kernel, limits
 *   OUT/points/<key>/status.json   written by the point: running | done | failed, attempt, times, host, SLURM ids, the error
 *   OUT/points/<key>/timings.json  seconds in total and per code cell
 *   OUT/points/<key>/records.json  what the notebook recorded (record(name, value)), read from the executed notebook
 *   OUT/points/<key>/<nb>.ipynb, <nb>.html, log.txt   the executed notebook, its HTML, and the point's log
 *   OUT/results.json, results.csv, tables/<name>.csv  the collected results (collect.ts)
 *   OUT/slurm/                     the sbatch scripts, SLURM's own output per array task, the submissions
 *
 * Every file is written to a temporary file and renamed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../io/atomic.js';
import type { RecordKind, RecordValue } from '../notebook/record.js';
import { SweepError, type Grid, type ParamValue } from './grid.js';

/** One point as the sweep lists it. */
export interface SweepPoint {
  /** Position in the sweep's point list (the SLURM array index). */
  index: number;
  /** Folder name under points/ (grid.ts `pointKey`). */
  key: string;
  /** The grid's values at this point (typed). */
  values: Record<string, ParamValue>;
}

/** OUT/sweep.json. */
export interface SweepSpec {
  version: 1;
  /** The notebook (absolute path). */
  notebook: string;
  /** Folder the points run in (relative paths in parameters start here). */
  cwd: string;
  grid: Grid;
  /** Parameters fixed for every point (before placeholder substitution). */
  params: Record<string, ParamValue>;
  /** Names that vary over the grid, in grid order. */
  gridNames: string[];
  points: SweepPoint[];
  created: string;
  updated: string;
}

/** OUT/points/<key>/point.json: everything a point needs to run, so that a worker reads only its own folder. */
export interface PointSpec {
  key: string;
  index: number;
  notebook: string;
  cwd: string;
  /** All parameters (fixed and grid, placeholders substituted), as the runner's --param text. */
  params: Record<string, string>;
  values: Record<string, ParamValue>;
  kernelName?: string;
  cellTimeoutMs?: number;
}

/** The state of a point. */
export type PointState = 'pending' | 'running' | 'done' | 'failed';

/** Why a point failed: the notebook's cell and error, or what happened to its process (SLURM state, signal, exit code). */
export interface PointError {
  message: string;
  /** 1-based code cell number and the cell's index in the notebook, when a cell failed. */
  cell?: number;
  cellIndex?: number;
  line?: number;
  lineText?: string;
  ename?: string;
  evalue?: string;
  /** SLURM's final state of the array task (FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...), when known. */
  slurmState?: string;
  exitCode?: string;
}

/** OUT/points/<key>/status.json. */
export interface PointStatus {
  state: Exclude<PointState, 'pending'>;
  /** Runs of this point so far (1 on the first). */
  attempt: number;
  started: string;
  finished?: string;
  seconds?: number;
  host: string;
  pid: number;
  executor: 'local' | 'slurm' | string;
  slurm?: { jobId?: string; arrayJobId?: string; taskId?: string };
  error?: PointError;
}

/** A point's recorded values (records.json). */
export type PointRecords = Record<string, { kind: RecordKind; value: RecordValue; cell: number }>;

export const sweepFile = (dir: string) => path.join(dir, 'sweep.json');
export const pointsDir = (dir: string) => path.join(dir, 'points');
export const pointDir = (dir: string, key: string) => path.join(dir, 'points', key);
export const slurmDir = (dir: string) => path.join(dir, 'slurm');

/** Writes JSON atomically (parent folders created). */
export function writeJson(file: string, value: unknown): void {
  writeFileAtomicSync(file, JSON.stringify(value, null, 1) + '\n');
}

/** Reads JSON, or undefined when the file is missing; a file that does not parse is an error naming it. */
export function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new SweepError(`${file}: expected JSON, found text that does not parse (${(e as Error).message}); delete the file to let the sweep write it again`);
  }
}

/** Reads OUT/sweep.json; a folder without one is an error that says so. */
export function readSweepSpec(dir: string): SweepSpec {
  const spec = readJson<SweepSpec>(sweepFile(dir));
  if (!spec) throw new SweepError(`${dir}: expected a sweep folder (with sweep.json), found ${fs.existsSync(dir) ? 'a folder without sweep.json' : 'no such folder'}; run npm run sweep -- <notebook> --grid ... --out ${dir} first`);
  if (spec.version !== 1) throw new SweepError(`${sweepFile(dir)}: expected version 1, found ${JSON.stringify(spec.version)}`);
  return spec;
}

export const readPointSpec = (pdir: string) => readJson<PointSpec>(path.join(pdir, 'point.json'));
export const readStatus = (pdir: string) => readJson<PointStatus>(path.join(pdir, 'status.json'));
export const writeStatus = (pdir: string, s: PointStatus) => writeJson(path.join(pdir, 'status.json'), s);

/** The state of a point from its folder: pending when it has no status yet. */
export function pointState(pdir: string): PointState {
  return readStatus(pdir)?.state ?? 'pending';
}

/** Marks a point failed from outside it (its process died, SLURM ended it), unless it already finished; returns the status written. */
export function markFailed(pdir: string, error: PointError, extra: Partial<PointStatus> = {}): PointStatus {
  const prev = readStatus(pdir);
  if (prev && prev.state !== 'running') return prev;
  const now = new Date().toISOString();
  const s: PointStatus = {
    state: 'failed', attempt: prev?.attempt ?? 1, started: prev?.started ?? now, finished: now,
    seconds: prev ? (Date.parse(now) - Date.parse(prev.started)) / 1000 : 0, host: prev?.host ?? os.hostname(), pid: prev?.pid ?? 0,
    executor: prev?.executor ?? 'unknown', slurm: prev?.slurm, ...extra, error,
  };
  writeStatus(pdir, s);
  return s;
}
