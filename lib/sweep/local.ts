/**
 * The local executor: N worker processes on this machine (N = the number of cores by default), each running one point
 * (`node point.js <point folder>`, its output appended to the point's log.txt). Each worker is started in its own
 * process group, so that stopping the sweep (abort, Ctrl-C) ends the worker and its kernel together; the points in
 * flight are then marked failed and re-run by the next sweep.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { markFailed, pointDir, readStatus, type PointState, type SweepPoint } from './store.js';

/** What an executor is given: the sweep's folder, the points to run and where to report. */
export interface ExecutorContext {
  dir: string;
  /** The folder the points run in. */
  cwd: string;
  points: SweepPoint[];
  /** The worker script (dist/lib/sweep/point.js) and the node binary that runs it. */
  pointScript: string;
  node: string;
  signal?: AbortSignal;
  /** A point ended (its status is written). */
  onPointEnd: (point: SweepPoint, state: PointState) => void;
  /** Points running now (and, under SLURM, waiting in the queue). */
  onActive: (running: number, pending: number) => void;
  log: (line: string) => void;
}

/** The default number of local workers: the machine's cores. */
export function defaultJobs(): number {
  return Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
}

/** Runs the points with at most `jobs` worker processes; resolves when all have ended (or the signal aborted and the workers were stopped). */
export async function runLocal(ctx: ExecutorContext, jobs = defaultJobs()): Promise<void> {
  if (!(Number.isInteger(jobs) && jobs >= 1)) throw new RangeError(`--jobs: expected a positive integer, found ${jobs}`);
  const queue = [...ctx.points];
  const running = new Map<ChildProcess, SweepPoint>();
  const stopAll = () => {
    for (const child of running.keys()) killGroup(child, 'SIGTERM');
  };
  ctx.signal?.addEventListener('abort', stopAll, { once: true });
  try {
    await new Promise<void>((resolve) => {
      const next = () => {
        while (running.size < jobs && queue.length && !ctx.signal?.aborted) {
          const p = queue.shift()!;
          const child: ChildProcess = start(ctx, p, (code, sig) => {
            running.delete(child);
            ended(ctx, p, code, sig);
            next();
          });
          running.set(child, p);
        }
        ctx.onActive(running.size, ctx.signal?.aborted ? 0 : queue.length);
        if (!running.size && (!queue.length || ctx.signal?.aborted)) resolve();
      };
      next();
    });
  } finally {
    ctx.signal?.removeEventListener('abort', stopAll);
  }
}

/** Starts one worker for `p` with its output appended to the point's log.txt. */
function start(ctx: ExecutorContext, p: SweepPoint, onExit: (code: number | null, sig: NodeJS.Signals | null) => void): ChildProcess {
  const pdir = pointDir(ctx.dir, p.key);
  fs.mkdirSync(pdir, { recursive: true });
  const fd = fs.openSync(path.join(pdir, 'log.txt'), 'a');
  const child = spawn(ctx.node, [ctx.pointScript, pdir], {
    cwd: ctx.cwd, detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, BRAINNET_SWEEP_EXECUTOR: 'local' },
  });
  fs.closeSync(fd);
  child.on('error', (e) => {
    fs.appendFileSync(path.join(pdir, 'log.txt'), `could not start ${ctx.node} ${ctx.pointScript}: ${e.message}\n`);
  });
  child.on('close', (code, sig) => onExit(code, sig));
  return child;
}

/** After a worker ends: a point whose status is not final died with its process; say how. */
function ended(ctx: ExecutorContext, p: SweepPoint, code: number | null, sig: NodeJS.Signals | null): void {
  const pdir = pointDir(ctx.dir, p.key);
  let s = readStatus(pdir);
  if (!s || s.state === 'running') {
    const how = sig ? `killed by ${sig}` : `exited with code ${code}`;
    s = markFailed(pdir, { message: `the worker process ${how} before the point finished; its log: ${path.join(pdir, 'log.txt')}`, exitCode: String(code ?? sig) }, { executor: 'local' });
  }
  ctx.onPointEnd(p, s.state);
}

/** Signals a worker's whole process group (the worker and its kernel). */
function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, sig);
  } catch {
    child.kill(sig);
  }
}
