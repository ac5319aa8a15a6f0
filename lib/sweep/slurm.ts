/**
 * The SLURM executor: the sweep's points as one sbatch job array. It writes the script (OUT/slurm/sweep-N.sbatch: the
 * #SBATCH options, then a line that picks the point of $SLURM_ARRAY_TASK_ID and runs it), submits it with
 * `sbatch --parsable`, follows it with `squeue` until no task is left, asks `sacct` for each task's final state,
 * resubmits the tasks whose point did not finish (up to `retries` times), and leaves the collection to the sweep.
 *
 * Final states: `sacct -j JOB` needs the cluster's accounting storage (slurmdbd). A cluster without it (a one-node test
 * cluster with AccountingStorageType=accounting_storage/none) can still keep a job completion log
 * (JobCompType=jobcomp/filetxt), which `sacct --completion` reads; it names tasks by their raw job ids, which the
 * executor learns from squeue and from the points' status files. Without either, the points' own status files decide,
 * and the executor says so once. A point's status file is the truth for done; SLURM's state explains a point that
 * ended without one (CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SweepError } from './grid.js';
import type { ExecutorContext } from './local.js';
import { markFailed, pointDir, readJson, readStatus, slurmDir, writeJson, type SweepPoint } from './store.js';

/** What the array's tasks ask SLURM for, passed through to #SBATCH lines. */
export interface SlurmOptions {
  /** --partition */
  partition?: string;
  /** --time, e.g. '02:00:00' */
  time?: string;
  /** --mem, e.g. '16G' */
  mem?: string;
  /** --cpus-per-task */
  cpusPerTask?: number;
  /** --gpus (per task) */
  gpus?: number | string;
  /** --account */
  account?: string;
  /** More sbatch options, each as on the command line (`--qos=high`, `--constraint=a100`). */
  sbatchArgs?: string[];
  /** A script template with the placeholders {{sbatch}} (the #SBATCH lines) and {{run}} (the lines that run the point); e.g. to `module load` node first. */
  template?: string;
  /** Resubmissions of an array task whose point did not finish (default 1). */
  retries?: number;
  /** Seconds between squeue polls (default 10). */
  pollSeconds?: number;
  /** Job name (default brainnet-<sweep folder name>). */
  jobName?: string;
}

/** The default script template: the shebang, the #SBATCH lines, the run lines. */
export const DEFAULT_TEMPLATE = '#!/bin/bash\n{{sbatch}}\n\n{{run}}\n';

/** A string as one single-quoted shell word. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Array indices as sbatch's --array list: `0-3,7,9-10`. */
export function arraySpec(indices: readonly number[]): string {
  const s = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(j > i ? `${s[i]}-${s[j]}` : `${s[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Parses an array task list as sacct and squeue print it (`3`, `[0-2,5]`, `0-3%2`) into indices. */
export function parseArrayList(text: string): number[] {
  const body = text.replace(/^\[|\]$/g, '').replace(/%\d+$/, '');
  const out: number[] = [];
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]), b = m[2] !== undefined ? Number(m[2]) : a, step = m[3] !== undefined ? Number(m[3]) : 1;
    for (let k = a; k <= b; k += step) out.push(k);
  }
  return out;
}

/** The sbatch script of one submission: every point's key by index, and the array of the indices to run. */
export function sbatchScript(o: {
  dir: string; cwd: string; keys: string[]; array: number[]; node: string; pointScript: string; slurm?: SlurmOptions; throttle?: number;
}): string {
  const s = o.slurm ?? {};
  const dir = path.resolve(o.dir);
  const name = s.jobName ?? `brainnet-${path.basename(dir)}`.replace(/[^\w.-]+/g, '_');
  const lines = [
    `#SBATCH --job-name=${name}`,
    `#SBATCH --array=${arraySpec(o.array)}${o.throttle ? `%${o.throttle}` : ''}`,
    `#SBATCH --output=${path.join(slurmDir(dir), '%A_%a.out')}`,
    `#SBATCH --chdir=${path.resolve(o.cwd)}`,
    ...(s.partition ? [`#SBATCH --partition=${s.partition}`] : []),
    ...(s.account ? [`#SBATCH --account=${s.account}`] : []),
    ...(s.time ? [`#SBATCH --time=${s.time}`] : []),
    ...(s.mem ? [`#SBATCH --mem=${s.mem}`] : []),
    ...(s.cpusPerTask ? [`#SBATCH --cpus-per-task=${s.cpusPerTask}`] : []),
    ...(s.gpus ? [`#SBATCH --gpus=${s.gpus}`] : []),
    ...(s.sbatchArgs ?? []).map((a) => `#SBATCH ${a}`),
  ];
  for (const k of o.keys) if (!/^[\w.-]+$/.test(k)) throw new SweepError(`point key '${k}': expected letters, digits, '.', '_' or '-'`);
  const run = [
    '# The points of the sweep, by array index (sweep.json lists the same); this task runs the one of $SLURM_ARRAY_TASK_ID.',
    `KEYS=(${o.keys.join(' ')})`,
    'KEY="${KEYS[$SLURM_ARRAY_TASK_ID]}"',
    `POINT=${shellQuote(path.join(dir, 'points'))}/"$KEY"`,
    'export BRAINNET_SWEEP_EXECUTOR=slurm',
    `exec ${shellQuote(o.node)} ${shellQuote(o.pointScript)} "$POINT" >> "$POINT/log.txt" 2>&1`,
  ];
  const template = s.template ?? DEFAULT_TEMPLATE;
  const missing = ['{{sbatch}}', '{{run}}'].filter((p) => !template.includes(p));
  if (missing.length) throw new SweepError(`the SLURM script template: expected the placeholders {{sbatch}} and {{run}}, found no ${missing.join(' and ')}; e.g. "#!/bin/bash\\n{{sbatch}}\\nmodule load nodejs\\n{{run}}"`);
  return template.replace('{{sbatch}}', lines.join('\n')).replace('{{run}}', run.join('\n'));
}

/** Output of a command: its exit code, stdout and stderr (a missing command is code 127 with a message). */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a SLURM command (sbatch, squeue, sacct, scancel) without a shell. */
export function slurmCommand(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        resolve({ code: 127, stdout: '', stderr: `${cmd}: command not found; is SLURM installed here (apt-get install slurm-client, or module load slurm)?` });
        return;
      }
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Submits a script with `sbatch --parsable`; resolves to the job id; throws with sbatch's own message when SLURM refuses it. */
export async function submitScript(file: string, cwd: string): Promise<string> {
  const r = await slurmCommand('sbatch', ['--parsable', file], { cwd });
  const id = /^(\d+)/.exec(r.stdout.trim())?.[1];
  if (r.code !== 0 || !id) {
    const msg = (r.stderr || r.stdout).trim() || `exit code ${r.code}`;
    throw new SweepError(`sbatch refused the job array: ${msg}\n  (the script: ${file}; fix the option SLURM names, e.g. --partition, --time, --mem, --gpus, or the template, and run the sweep again)`);
  }
  return id;
}

/** One array task as squeue lists it. */
export interface QueuedTask {
  task: number;
  /** The task's own job id once it runs (SLURM_JOB_ID). */
  rawId: string;
  state: string;
  reason: string;
}

/** The array's tasks still in the queue (`squeue -h -r -j JOB`): pending, running, completing. A job SLURM has forgotten gives none. */
export async function queuedTasks(jobId: string): Promise<QueuedTask[]> {
  const r = await slurmCommand('squeue', ['-h', '-r', '-j', jobId, '-o', '%K|%A|%T|%r']);
  if (r.code !== 0) {
    if (/invalid job id/i.test(r.stderr)) return [];
    throw new SweepError(`squeue -j ${jobId} failed: ${(r.stderr || r.stdout).trim()}`);
  }
  const out: QueuedTask[] = [];
  for (const line of r.stdout.split('\n')) {
    const [task, rawId, state, reason] = line.trim().split('|');
    if (!task || !state) continue;
    for (const t of parseArrayList(task)) out.push({ task: t, rawId: rawId ?? '', state, reason: reason ?? '' });
  }
  return out;
}

/** A task's final state as SLURM's accounting or completion log has it. */
export interface FinalState {
  state: string;
  exitCode: string;
}

/** Where final states came from. */
export type FinalSource = 'sacct' | 'completion' | 'none';

/**
 * Final states of an array's tasks: `sacct -j JOB -X -P` (accounting storage); without accounting, `sacct --completion`
 * (the job completion log), mapped to tasks through their raw job ids (`rawToTask`); else none (`note` says why).
 */
export async function finalStates(jobId: string, rawToTask: Map<string, number>): Promise<{ states: Map<number, FinalState>; source: FinalSource; note?: string }> {
  const states = new Map<number, FinalState>();
  const r = await slurmCommand('sacct', ['-j', jobId, '-X', '-P', '-n', '-o', 'JobID,JobIDRaw,State,ExitCode']);
  if (r.code === 0) {
    for (const line of r.stdout.split('\n')) {
      const [jobid, , state, exitCode] = line.trim().split('|');
      const m = /^(\d+)_(.+)$/.exec(jobid ?? '');
      if (!m || m[1] !== jobId || !state) continue;
      for (const t of parseArrayList(m[2]!)) states.set(t, { state: state.split(' ')[0]!, exitCode: exitCode ?? '' });
    }
    return { states, source: 'sacct' };
  }
  const why = (r.stderr || r.stdout).trim();
  const c = await slurmCommand('sacct', ['--completion', '-P', '-n', '-o', 'JobIDRaw,State,ExitCode']);
  if (c.code === 0 && c.stdout.trim()) {
    for (const line of c.stdout.split('\n')) {
      const [raw, state, exitCode] = line.trim().split('|');
      const task = raw !== undefined ? rawToTask.get(raw) : undefined;
      if (task !== undefined && state) states.set(task, { state: state.split(' ')[0]!, exitCode: exitCode ?? '' });
    }
    return { states, source: 'completion', note: `sacct: ${why || `exit code ${r.code}`}; final states come from the job completion log instead (sacct --completion; JobCompType=jobcomp/filetxt)` };
  }
  return {
    states, source: 'none',
    note: `sacct: ${why || `exit code ${r.code}`}; sacct --completion: ${(c.stderr || c.stdout).trim() || 'no records'}. Final SLURM states are unknown on this cluster (set up slurmdbd, or JobCompType=jobcomp/filetxt); the points' own status files decide`,
  };
}

/** One sbatch submission of the sweep (OUT/slurm/submissions.json). */
export interface Submission {
  jobId: string;
  array: number[];
  /** Every point's key by array index, as the script lists them. */
  keys: string[];
  script: string;
  submitted: string;
}

const submissionsFile = (dir: string) => path.join(slurmDir(dir), 'submissions.json');

/** Writes the script of a submission (OUT/slurm/sweep-N.sbatch) and returns its path and text. */
export function writeScript(dir: string, text: string): string {
  const n = (readJson<Submission[]>(submissionsFile(dir)) ?? []).length + 1;
  const file = path.join(slurmDir(dir), `sweep-${n}.sbatch`);
  fs.mkdirSync(slurmDir(dir), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o755 });
  return file;
}

/** Options of {@link runSlurm}: SLURM's and the throttle (at most `jobs` tasks at once). */
export interface RunSlurmOptions extends SlurmOptions {
  jobs?: number;
  /** All points of the sweep, by index (the script's key list). */
  allKeys: string[];
}

/**
 * Runs the points as a job array (see the file header); re-attaches to tasks of an earlier submission that are still
 * queued or running instead of submitting them again.
 */
export async function runSlurm(ctx: ExecutorContext, o: RunSlurmOptions): Promise<void> {
  const retries = o.retries ?? 1;
  const pollMs = (o.pollSeconds ?? 10) * 1000;
  const byIndex = new Map(ctx.points.map((p) => [p.index, p]));
  const tries = new Map<number, number>();
  const reported = new Set<string>();
  /** Raw job ids seen in squeue, per array job: raw id -> task (for `sacct --completion`). */
  const rawIds = new Map<string, Map<string, number>>();
  /** Final-state notes already printed. */
  const notes = new Set<string>();
  let todo = ctx.points.map((p) => p.index);
  // 1. tasks of earlier submissions that SLURM still runs: follow them, do not submit them again
  const follow: { jobId: string; tasks: number[] }[] = [];
  for (const s of readJson<Submission[]>(submissionsFile(ctx.dir)) ?? []) {
    const q = (await queuedTasks(s.jobId)).map((t) => t.task);
    if (!q.length) continue;
    if (s.keys?.join(' ') !== o.allKeys.join(' ')) {
      ctx.log(`warning: SLURM job ${s.jobId}, submitted for another grid of this folder, still has tasks ${arraySpec(q)} queued or running; they are not followed (scancel ${s.jobId} to stop them)`);
      continue;
    }
    const mine = q.filter((t) => todo.includes(t));
    if (mine.length) {
      ctx.log(`re-attaching to SLURM job ${s.jobId}: array tasks ${arraySpec(mine)} are still queued or running`);
      follow.push({ jobId: s.jobId, tasks: mine });
      todo = todo.filter((t) => !mine.includes(t));
    }
  }
  for (let round = 0; ; round++) {
    // 2. submit what is left to run
    if (todo.length) {
      if (ctx.signal?.aborted) return;
      const script = writeScript(ctx.dir, sbatchScript({ dir: ctx.dir, cwd: ctx.cwd, keys: o.allKeys, array: todo, node: ctx.node, pointScript: ctx.pointScript, slurm: o, throttle: o.jobs }));
      const jobId = await submitScript(script, ctx.cwd);
      const subs = readJson<Submission[]>(submissionsFile(ctx.dir)) ?? [];
      writeJson(submissionsFile(ctx.dir), [...subs, { jobId, array: todo, keys: o.allKeys, script, submitted: new Date().toISOString() }]);
      ctx.log(`submitted SLURM job array ${jobId} (tasks ${arraySpec(todo)}; script ${script})`);
      for (const t of todo) tries.set(t, (tries.get(t) ?? 0) + 1);
      follow.push({ jobId, tasks: todo });
    }
    // 3. follow every job until its tasks have left the queue, reporting points as they end
    await followJobs(ctx, follow, byIndex, reported, rawIds, pollMs);
    if (ctx.signal?.aborted) {
      ctx.log(`stopped following: the SLURM job array keeps running; run the same sweep again to re-attach and collect (scancel ${follow.map((f) => f.jobId).join(' ')} stops it)`);
      return;
    }
    // 4. final states for the tasks whose point did not finish, and the resubmission of those with tries left
    const failed: number[] = [];
    for (const { jobId, tasks } of follow) {
      const unfinished = tasks.filter((t) => readStatus(pointDir(ctx.dir, byIndex.get(t)!.key))?.state !== 'done');
      if (!unfinished.length) continue;
      const rawToTask = new Map<string, number>();
      for (const t of tasks) {
        const raw = readStatus(pointDir(ctx.dir, byIndex.get(t)!.key))?.slurm?.jobId;
        if (raw) rawToTask.set(raw, t);
      }
      for (const [raw, t] of rawIds.get(jobId) ?? []) rawToTask.set(raw, t);
      const fin = await finalStates(jobId, rawToTask);
      if (fin.note && !notes.has(fin.source)) (notes.add(fin.source), ctx.log(fin.note));
      for (const t of unfinished) {
        const p = byIndex.get(t)!;
        const f = fin.states.get(t);
        const slurmState = f?.state ?? 'unknown';
        const s = markFailed(pointDir(ctx.dir, p.key), {
          message: `SLURM array task ${jobId}_${t} ended (${slurmState}${f?.exitCode ? `, exit code ${f.exitCode}` : ''}) before the point finished; SLURM's output: ${path.join(slurmDir(ctx.dir), `${jobId}_${t}.out`)}`,
          slurmState, exitCode: f?.exitCode,
        }, { executor: 'slurm' });
        if (s.error && !s.error.slurmState && f) writeJson(path.join(pointDir(ctx.dir, p.key), 'status.json'), { ...s, error: { ...s.error, slurmState: f.state, exitCode: f.exitCode } });
        if (!reported.has(p.key)) (reported.add(p.key), ctx.onPointEnd(p, 'failed'));
        failed.push(t);
      }
    }
    follow.length = 0;
    todo = failed.filter((t) => (tries.get(t) ?? 0) <= retries);
    if (!todo.length) return;
    ctx.log(`resubmitting ${todo.length} array task${todo.length > 1 ? 's' : ''} whose point did not finish (${arraySpec(todo)}; retry ${round + 1} of at most ${retries})`);
    for (const t of todo) ctx.onPointEnd(byIndex.get(t)!, 'pending'), reported.delete(byIndex.get(t)!.key);
  }
}

/** Polls squeue until none of the followed tasks is queued; reports each point whose status is final as it ends. */
async function followJobs(ctx: ExecutorContext, follow: { jobId: string; tasks: number[] }[], byIndex: Map<number, SweepPoint>, reported: Set<string>,
  rawIds: Map<string, Map<string, number>>, pollMs: number): Promise<void> {
  for (;;) {
    let running = 0, pending = 0;
    const queued = new Set<string>();
    for (const { jobId, tasks } of follow) {
      const seen = rawIds.get(jobId) ?? new Map<string, number>();
      rawIds.set(jobId, seen);
      for (const q of await queuedTasks(jobId)) {
        if (!tasks.includes(q.task)) continue;
        queued.add(`${jobId}_${q.task}`);
        if (q.state === 'PENDING' || q.state === 'CONFIGURING' || q.state === 'REQUEUED') pending++;
        else {
          running++;
          if (q.rawId && q.rawId !== jobId) seen.set(q.rawId, q.task);
        }
      }
      for (const t of tasks) {
        if (queued.has(`${jobId}_${t}`)) continue;
        const p = byIndex.get(t)!;
        const s = readStatus(pointDir(ctx.dir, p.key));
        if (s && s.state !== 'running' && !reported.has(p.key)) (reported.add(p.key), ctx.onPointEnd(p, s.state));
      }
    }
    ctx.onActive(running, pending);
    if (!queued.size || ctx.signal?.aborted) return;
    await sleep(pollMs, ctx.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => (clearTimeout(t), resolve());
    const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
