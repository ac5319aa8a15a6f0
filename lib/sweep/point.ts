#!/usr/bin/env node
/**
 * One point of a sweep, run by a worker process (the local executor's child, or a SLURM array task):
 *
 *   node dist/lib/sweep/point.js OUT/points/<key>
 *
 * It reads point.json, writes status.json (running), runs the notebook headless with the point's parameters
 * (runNotebook, into the point's folder), reads what the notebook recorded from the executed .ipynb, and writes
 * records.json, timings.json and the final status.json (done, or failed with the cell and the error). Its exit code
 * is 0 when the point is done and 1 when it failed, so that SLURM marks the array task accordingly. SIGTERM or SIGINT
 * (scancel, a time limit, Ctrl-C) marks the point failed with that reason before the process ends.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNotebook } from '../runner/nbformat.js';
import { readRecords } from '../runner/records.js';
import { NotebookCellError, runNotebook } from '../runner/runner.js';
import { SweepError } from './grid.js';
import { markFailed, readJson, readPointSpec, readStatus, writeJson, writeStatus, type PointRecords, type PointStatus } from './store.js';

/** SLURM's ids of this process's array task, from its environment (undefined outside SLURM). */
function slurmIds(env: NodeJS.ProcessEnv): PointStatus['slurm'] {
  if (!env.SLURM_JOB_ID) return undefined;
  return { jobId: env.SLURM_JOB_ID, arrayJobId: env.SLURM_ARRAY_JOB_ID, taskId: env.SLURM_ARRAY_TASK_ID };
}

/** Runs the point in `pdir` (see the file header); resolves to its final status. `log` gets one line per cell. */
export async function runPoint(pdir: string, opts: { log?: (line: string) => void; executor?: string } = {}): Promise<PointStatus> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const spec = readPointSpec(pdir);
  if (!spec) throw new SweepError(`${pdir}: expected point.json (written by the sweep), found none; run the sweep, not this script, to create points`);
  // 1. status: running (attempt counts every run of this point)
  const prev = readStatus(pdir) ?? readJson<PointStatus>(path.join(pdir, 'previous-status.json'));
  const started = new Date();
  const status: PointStatus = {
    state: 'running', attempt: (prev?.attempt ?? 0) + 1, started: started.toISOString(), host: os.hostname(), pid: process.pid,
    executor: opts.executor ?? process.env.BRAINNET_SWEEP_EXECUTOR ?? 'local', slurm: slurmIds(process.env),
  };
  writeStatus(pdir, status);
  log(`[point ${spec.key}] attempt ${status.attempt} on ${status.host}${status.slurm ? ` (SLURM job ${status.slurm.jobId}, array ${status.slurm.arrayJobId}_${status.slurm.taskId})` : ''}: ${spec.notebook}`);
  log(`[point ${spec.key}] parameters: ${Object.entries(spec.params).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  // 2. run the notebook into the point's folder
  let ipynb: string | undefined;
  let cellSeconds: number[] = [];
  let error: PointStatus['error'];
  try {
    const r = await runNotebook(spec.notebook, {
      outDir: pdir, params: spec.params, kernelName: spec.kernelName, cellTimeoutMs: spec.cellTimeoutMs,
      onCell: (ev) => ev.phase === 'end' && log(`cell ${ev.number}/${ev.total} ${ev.status === 'ok' ? 'ok' : 'FAILED'} in ${ev.seconds!.toFixed(1)} s`),
      onWarning: (w) => log(`warning: ${w}`),
    });
    ipynb = r.ipynbPath;
    cellSeconds = r.cellSeconds;
  } catch (e) {
    if (e instanceof NotebookCellError) {
      ipynb = e.ipynbPath;
      error = { message: e.message, cell: e.cellNumber, cellIndex: e.cellIndex, line: e.line, lineText: e.lineText, ename: e.ename, evalue: e.evalue };
    } else {
      error = { message: (e as Error).message, ename: (e as Error).name };
    }
    log(`error: ${error.message}`);
  }
  // 3. what the notebook recorded (up to a failure, too)
  let records: PointRecords = {};
  if (ipynb) {
    try {
      const nb = readNotebook(ipynb);
      records = Object.fromEntries(Object.values(readRecords(nb, ipynb)).map((r) => [r.name, { kind: r.kind, value: r.value, cell: r.cell }]));
      if (!cellSeconds.length) cellSeconds = nb.cells.filter((c) => c.cell_type === 'code').map(() => NaN);
    } catch (e) {
      error ??= { message: `reading the records of ${ipynb}: ${(e as Error).message}` };
    }
  }
  writeJson(path.join(pdir, 'records.json'), records);
  // 4. timings and the final status
  const finished = new Date();
  const seconds = (finished.getTime() - started.getTime()) / 1000;
  writeJson(path.join(pdir, 'timings.json'), { seconds, cellSeconds: cellSeconds.map((s) => (Number.isFinite(s) ? s : null)), started: status.started, finished: finished.toISOString() });
  const final: PointStatus = { ...status, state: error ? 'failed' : 'done', finished: finished.toISOString(), seconds, ...(error ? { error } : {}) };
  writeStatus(pdir, final);
  log(`[point ${spec.key}] ${final.state} in ${seconds.toFixed(1)} s${Object.keys(records).length ? `; recorded ${Object.keys(records).join(', ')}` : ''}`);
  return final;
}

/**
 * Passes a stopping signal on to this worker's own child processes (the notebook's kernel). A signal to the worker's
 * process group reaches the kernel anyway, but one to the worker alone does not (a `kill PID`; SLURM, whose
 * proctrack/linuxproc finds a task's processes by their parents, can miss a kernel whose parent has just exited), and a
 * kernel whose runner is gone would run on. Linux only (/proc); elsewhere nothing is sent.
 */
function endChildren(sig: NodeJS.Signals): void {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so split after the last ')'
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) process.kill(Number(e), sig);
    } catch {
      // the process ended meanwhile, or is not ours to signal
    }
  }
}

/** The worker's command line: `node point.js <point folder>`; exit 0 done, 1 failed, 2 bad arguments. */
export async function main(argv: string[]): Promise<number> {
  if (argv.length !== 1) {
    console.error('usage: node dist/lib/sweep/point.js <sweep>/points/<key>   (one point of a sweep; npm run sweep starts these)');
    return 2;
  }
  const pdir = path.resolve(argv[0]!);
  const onSignal = (sig: NodeJS.Signals) => {
    try {
      markFailed(pdir, { message: `interrupted by ${sig} (scancel, a SLURM time limit, or the sweep was stopped) before the notebook finished` });
      endChildren(sig);
    } finally {
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const s = await runPoint(pdir);
    return s.state === 'done' ? 0 : 1;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
