/**
 * `runSweep`: a notebook over a grid of parameters, one headless run per point (the runner, with the point's parameters
 * injected after the `parameters` cell), on this machine or as a SLURM job array; then the results collected.
 *
 *   await runSweep({ notebook: 'notebooks/fit_backbone.ipynb', grid: { backbone: ['mobilenetv2', 'inceptionv3'] }, out: 'outputs/sweeps/b' });
 *
 * It (1) checks every grid and fixed name against the notebook's parameters cell and expands the grid into points with
 * stable keys, (2) plans which points to run (not done; all with `force`), (3) writes sweep.json and each point's
 * point.json, (4) runs them with the chosen executor, showing points done, failed and running with an ETA, and (5)
 * collects results.json, results.csv and tables/*.csv. A second call skips finished points and re-runs failed ones.
 * Parameter values may use the placeholders {point} (the point's folder), {key} and {sweep} (the sweep's folder).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withFolderLock } from '../io/lock.js';
import { progress as progressBar } from '../notebook/progress.js';
import { loadSweep, writeResults, type PointResult } from './collect.js';
import { SweepError, checkParameterNames, expandGrid, pointKey, valueText, type Grid, type ParamValue, type ProductGrid } from './grid.js';
import { defaultJobs, runLocal, type ExecutorContext } from './local.js';
import { arraySpec, runSlurm, sbatchScript, type SlurmOptions } from './slurm.js';
import { pointDir, readJson, readStatus, sweepFile, writeJson, type PointSpec, type PointState, type SweepPoint, type SweepSpec } from './store.js';

/** Options of {@link runSweep}. */
export interface SweepOptions {
  /** The notebook to run at every point. */
  notebook: string;
  /** Names and their values (a product), or a list of such grids (their union). */
  grid: Grid;
  /** Parameters fixed for every point. */
  params?: Record<string, ParamValue>;
  /** The sweep's folder. */
  out: string;
  /** 'local' (default) or 'slurm'. */
  executor?: 'local' | 'slurm';
  /** Local: worker processes (default: the machine's cores). SLURM: array tasks running at once (default: no limit). */
  jobs?: number;
  /** Re-run finished points too. */
  force?: boolean;
  /** Plan only: list the points (and, for SLURM, the script) without running anything or writing files. */
  dryRun?: boolean;
  /** Kernel (default: the notebook's). */
  kernelName?: string;
  /** Time limit per cell in seconds. */
  cellTimeoutS?: number;
  /** Folder the points run in (default: the current folder). */
  cwd?: string;
  /** SLURM options (executor 'slurm'). */
  slurm?: SlurmOptions;
  /** Stops the sweep: local workers are ended (their points are marked failed); SLURM keeps running and a later call re-attaches. */
  signal?: AbortSignal;
  /** Where messages go (default console.log); null for silence. */
  log?: ((line: string) => void) | null;
  /** The progress line (default true). */
  progress?: boolean;
  /** The node binary the workers run with (default: this one). */
  node?: string;
}

/** What a sweep plans before it runs. */
export interface SweepPlan {
  dir: string;
  spec: SweepSpec;
  /** Points to run now, and points skipped because they are done. */
  toRun: SweepPoint[];
  skipped: SweepPoint[];
  /** Each point's parameters as the runner gets them (placeholders substituted), by key. */
  params: Record<string, Record<string, string>>;
  /** The sbatch script of the submission (executor 'slurm'). */
  script?: string;
}

/** What {@link runSweep} returns. */
export interface SweepSummary {
  dir: string;
  plan: SweepPlan;
  /** Every point of the sweep after the run, in order. */
  points: PointResult[];
  counts: { done: number; failed: number; ran: number; skipped: number; other: number };
  results?: { json: string; csv: string; tables: string[] };
}

/** The worker script (dist/lib/sweep/point.js) next to this file. */
export function pointScriptPath(): string {
  const js = path.join(__dirname, 'point.js');
  if (!fs.existsSync(js)) throw new SweepError(`${js}: expected the compiled worker script, found no such file; run npm run build (the sweep runs dist/lib/sweep/point.js)`);
  return js;
}

/** Substitutes {point}, {key} and {sweep} in string values. */
function substitute(v: ParamValue, at: { point: string; key: string; sweep: string }): ParamValue {
  if (typeof v === 'string') return v.replace(/\{point\}/g, at.point).replace(/\{key\}/g, at.key).replace(/\{sweep\}/g, at.sweep);
  if (Array.isArray(v)) return v.map((x) => substitute(x, at));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, at)]));
  return v;
}

/** Checks the names, expands the grid and decides which points run; writes nothing. */
export function planSweep(o: SweepOptions): SweepPlan {
  // 1. names: every grid and fixed name is a parameter of the notebook; none is both
  const notebook = path.resolve(o.notebook);
  const grids: ProductGrid[] = Array.isArray(o.grid) ? o.grid : [o.grid];
  const fixed = o.params ?? {};
  const gridNames = [...new Set(grids.flatMap((g) => Object.keys(g)))];
  const both = gridNames.filter((n) => n in fixed);
  if (both.length) throw new SweepError(`${both.join(', ')}: given both as a grid and as a fixed parameter; keep one`);
  checkParameterNames(notebook, [...gridNames, ...Object.keys(fixed)]);
  if (o.executor && o.executor !== 'local' && o.executor !== 'slurm') throw new SweepError(`--executor: expected local or slurm, found '${o.executor}'`);
  // 2. points with stable keys
  const dir = path.resolve(o.out);
  const values = expandGrid(grids);
  if (!values.length) throw new SweepError('the grid has no points; give each name at least one value');
  const points: SweepPoint[] = values.map((v, index) => ({ index, key: pointKey(v, { ...fixed, ...v }), values: v }));
  const now = new Date().toISOString();
  const prev = readJson<SweepSpec>(sweepFile(dir));
  const spec: SweepSpec = { version: 1, notebook, cwd: path.resolve(o.cwd ?? process.cwd()), grid: o.grid, params: fixed, gridNames, points, created: prev?.created ?? now, updated: now };
  // 3. what runs: every point not done (all with force)
  const toRun = points.filter((p) => o.force || readStatus(pointDir(dir, p.key))?.state !== 'done');
  const skipped = points.filter((p) => !toRun.includes(p));
  const params = Object.fromEntries(points.map((p) => {
    const at = { point: pointDir(dir, p.key), key: p.key, sweep: dir };
    const all = { ...fixed, ...p.values };
    return [p.key, Object.fromEntries(Object.entries(all).map(([k, v]) => [k, valueText(substitute(v, at))]))];
  }));
  const plan: SweepPlan = { dir, spec, toRun, skipped, params };
  if (o.executor === 'slurm' && toRun.length) {
    plan.script = sbatchScript({ dir, cwd: spec.cwd, keys: points.map((p) => p.key), array: toRun.map((p) => p.index), node: o.node ?? process.execPath, pointScript: path.join(__dirname, 'point.js'), slurm: o.slurm, throttle: o.jobs });
  }
  return plan;
}

/** A plan as lines for people: one per point with its state and parameters. */
export function formatPlan(plan: SweepPlan): string[] {
  const { spec } = plan;
  const lines = [`${spec.points.length} point${spec.points.length === 1 ? '' : 's'} of ${path.relative(process.cwd(), spec.notebook) || spec.notebook} in ${plan.dir}: ${plan.toRun.length} to run, ${plan.skipped.length} done`];
  for (const p of spec.points) {
    const state = plan.skipped.includes(p) ? 'done, skip' : (readStatus(pointDir(plan.dir, p.key))?.state ?? 'new');
    lines.push(`  [${p.index}] ${p.key}  ${spec.gridNames.map((n) => `${n}=${valueText(p.values[n] ?? null)}`).join(' ')}  (${state === 'running' ? 'interrupted' : state})`);
  }
  return lines;
}

/** Runs a sweep (see the file header); resolves with every point's state and records once the run has ended. */
export async function runSweep(o: SweepOptions): Promise<SweepSummary> {
  const log = o.log === null ? () => {} : (o.log ?? ((s: string) => console.log(s)));
  // 1-2. check, expand and plan
  const plan = planSweep(o);
  const { dir, spec, toRun } = plan;
  if (o.dryRun) {
    formatPlan(plan).forEach((l) => log(l));
    if (plan.script) log(`\nthe sbatch script (array ${arraySpec(toRun.map((p) => p.index))}):\n${plan.script}`);
    return { dir, plan, points: [], counts: { done: 0, failed: 0, ran: 0, skipped: plan.skipped.length, other: 0 } };
  }
  // the sweep folder is locked from here to the end of the collection: a second sweep into it fails at once, naming
  // this one (a lock left by a killed sweep is taken over with a note)
  fs.mkdirSync(dir, { recursive: true });
  return withFolderLock(dir, { command: `sweep (${path.basename(spec.notebook)}, ${toRun.length} of ${spec.points.length} points)`, log: o.log === null ? null : log }, async () => {
    // 3. the sweep's and the points' files
    writeJson(sweepFile(dir), spec);
    for (const p of toRun) {
      const pdir = pointDir(dir, p.key);
      const ps: PointSpec = { key: p.key, index: p.index, notebook: spec.notebook, cwd: spec.cwd, params: plan.params[p.key]!, values: p.values, kernelName: o.kernelName, cellTimeoutMs: o.cellTimeoutS ? o.cellTimeoutS * 1000 : undefined };
      writeJson(path.join(pdir, 'point.json'), ps);
      const status = path.join(pdir, 'status.json');
      if (fs.existsSync(status)) fs.renameSync(status, path.join(pdir, 'previous-status.json'));
    }
    log(`sweep: ${toRun.length} point${toRun.length === 1 ? '' : 's'} to run${plan.skipped.length ? `, ${plan.skipped.length} done (skipped)` : ''}, executor ${o.executor ?? 'local'}; folder ${dir}`);
    // 4. run, with a progress line: points done, failed, running (and queued), ETA
    const states = new Map<string, PointState>();
    let running = 0, pending = 0;
    const bar = toRun.length && o.progress !== false ? progressBar({ label: 'sweep', total: toRun.length }) : undefined;
    const redraw = () => {
      const n = (s: PointState) => [...states.values()].filter((x) => x === s).length;
      bar?.update(n('done') + n('failed'), `done ${n('done')}, failed ${n('failed')}, running ${running}${pending ? `, queued ${pending}` : ''}`);
    };
    const ctx: ExecutorContext = {
      dir, cwd: spec.cwd, points: toRun, pointScript: pointScriptPath(), node: o.node ?? process.execPath, signal: o.signal, log,
      onPointEnd: (p, state) => {
        states.set(p.key, state);
        if (state === 'failed') {
          const e = readStatus(pointDir(dir, p.key))?.error;
          log(`point ${p.key} failed${e?.cell ? ` at code cell ${e.cell}` : ''}: ${(e?.ename && e.evalue !== undefined ? `${e.ename}: ${e.evalue}` : e?.message ?? '').split('\n')[0]}${e?.slurmState ? ` [SLURM: ${e.slurmState}]` : ''}`);
        }
        redraw();
      },
      onActive: (r, q) => ((running = r), (pending = q), redraw()),
    };
    if (toRun.length) {
      if ((o.executor ?? 'local') === 'slurm') await runSlurm(ctx, { ...o.slurm, jobs: o.jobs, allKeys: spec.points.map((p) => p.key) });
      else await runLocal(ctx, o.jobs ?? Math.min(defaultJobs(), toRun.length));
    }
    bar?.done();
    // 5. collect
    const sweep = loadSweep(dir);
    const results = writeResults(sweep);
    const count = (s: PointState) => sweep.points.filter((p) => p.state === s).length;
    const counts = { done: count('done'), failed: count('failed'), ran: toRun.length, skipped: plan.skipped.length, other: count('pending') + count('running') };
    log(`sweep: ${counts.done} done, ${counts.failed} failed${counts.other ? `, ${counts.other} not finished` : ''} of ${sweep.points.length}; wrote ${results.json} and ${results.csv}`);
    for (const p of sweep.points.filter((x) => x.state === 'failed')) {
      log(`  failed: ${p.key}: ${p.error?.message.split('\n').slice(0, 2).join(' / ') ?? 'no error recorded'}${p.error?.slurmState ? ` [SLURM: ${p.error.slurmState}]` : ''} (log: ${path.join(p.dir, 'log.txt')})`);
    }
    return { dir, plan, points: sweep.points, counts, results };
  });
}
