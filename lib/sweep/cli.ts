#!/usr/bin/env node
/**
 * `npm run sweep`: a notebook over a grid of parameters, on this machine or on a SLURM cluster (lib/sweep/sweep.ts).
 *
 *   npm run sweep -- notebooks/fit_backbone.ipynb --grid backbone=mobilenetv2,inceptionv3 --grid dataPath=data/subjects/s1,data/subjects/s2 \
 *     --out outputs/sweeps/NAME [--executor local|slurm] [--jobs N] [--dry-run] [--force]
 *
 * Exit code 0 when every point is done, 1 when a point failed (the others still ran), 2 on bad input (nothing ran).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadSweep, writeResults } from './collect.js';
import { SweepError, mergeGrids, parseGridArgs, parseParamArgs, readGridFile, type ParamValue } from './grid.js';
import { runSweep, type SweepOptions } from './sweep.js';

export const USAGE = `usage: npm run sweep -- <notebook.ipynb> --out DIR [--grid name=v1,v2 ...] [--grid-file grid.yaml|grid.json] [--param name=value ...]
         [--executor local|slurm] [--jobs N] [--force] [--dry-run] [--collect] [--kernel NAME] [--timeout SECONDS]
  SLURM: [--partition P] [--time HH:MM:SS] [--mem 16G] [--cpus-per-task N] [--gpus N] [--account A] [--sbatch-arg=--qos=high ...]
         [--template script.sbatch] [--retries N (default 1)] [--poll SECONDS (default 10)]
  Values may use {point} (the point's folder), {key} and {sweep}. --collect re-collects an existing sweep folder's results.`;

/** Parses the command line into sweep options (or `collect`: re-collect the folder only). */
export function parseSweepArgs(argv: string[]): SweepOptions & { collect: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      grid: { type: 'string', short: 'g', multiple: true },
      'grid-file': { type: 'string' },
      param: { type: 'string', short: 'p', multiple: true },
      executor: { type: 'string', short: 'e' },
      jobs: { type: 'string', short: 'j' },
      force: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      collect: { type: 'boolean' },
      kernel: { type: 'string' },
      timeout: { type: 'string' },
      partition: { type: 'string' },
      time: { type: 'string' },
      mem: { type: 'string' },
      'cpus-per-task': { type: 'string' },
      gpus: { type: 'string' },
      account: { type: 'string' },
      'sbatch-arg': { type: 'string', multiple: true },
      template: { type: 'string' },
      retries: { type: 'string' },
      poll: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) throw new SweepError(USAGE);
  if (!values.out) throw new SweepError(`expected --out DIR (the sweep's folder)\n${USAGE}`);
  const collect = !!values.collect;
  if (!collect && positionals.length !== 1) throw new SweepError(`expected one notebook, found ${positionals.length ? positionals.join(' ') : 'none'}\n${USAGE}`);
  const int = (name: string, v: string | undefined, min = 1) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new SweepError(`--${name}: expected an integer >= ${min}, found "${v}"`);
    return n;
  };
  const pos = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(n > 0)) throw new SweepError(`--${name}: expected a positive number of seconds, found "${v}"`);
    return n;
  };
  const file = values['grid-file'] ? readGridFile(values['grid-file']) : { grid: {}, params: {} as Record<string, ParamValue> };
  const grid = mergeGrids(file.grid, parseGridArgs(values.grid ?? []));
  const params = { ...file.params, ...parseParamArgs(values.param ?? []) };
  let template: string | undefined;
  if (values.template) {
    try {
      template = fs.readFileSync(values.template, 'utf8');
    } catch (e) {
      throw new SweepError(`--template ${values.template}: expected an sbatch script template with {{sbatch}} and {{run}}, found ${(e as Error).message}`);
    }
  }
  const executor = (values.executor ?? 'local') as 'local' | 'slurm';
  if (executor !== 'local' && executor !== 'slurm') throw new SweepError(`--executor: expected local or slurm, found "${values.executor}"`);
  return {
    collect, notebook: positionals[0] ?? '', grid: grid.length === 1 ? grid[0]! : grid, params, out: values.out, executor,
    jobs: int('jobs', values.jobs), force: !!values.force, dryRun: !!values['dry-run'], kernelName: values.kernel, cellTimeoutS: pos('timeout', values.timeout),
    slurm: {
      partition: values.partition, time: values.time, mem: values.mem, cpusPerTask: int('cpus-per-task', values['cpus-per-task']), gpus: values.gpus,
      account: values.account, sbatchArgs: values['sbatch-arg'], template, retries: int('retries', values.retries, 0), pollSeconds: pos('poll', values.poll),
    },
  };
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let opts: ReturnType<typeof parseSweepArgs>;
  try {
    opts = parseSweepArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (opts.collect) {
    try {
      const s = loadSweep(opts.out);
      const r = writeResults(s);
      console.log(`collected ${s.points.length} points: ${s.points.filter((p) => p.state === 'done').length} done; wrote ${r.json}, ${r.csv}${r.tables.length ? `, ${r.tables.length} table(s) under tables/` : ''}`);
      return 0;
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      return 2;
    }
  }
  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) process.exit(130);
    console.error('\nstopping the sweep (Ctrl-C again to quit at once): the points in flight are lost, the finished ones are kept');
    stop.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint); // kill PID: the same, so that the detached workers and their kernels end too
  try {
    const r = await runSweep({ ...opts, signal: stop.signal });
    if (opts.dryRun) return 0;
    return r.counts.failed || r.counts.other ? 1 : 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof SweepError ? 2 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
