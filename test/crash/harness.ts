/**
 * Kill-and-rerun harness: runs a long job as a child process once to the end (the reference), then, for each
 * seeded kill point, starts it into a fresh folder, SIGKILLs it part-way, notes what it left, reruns it to the end
 * and compares every file's bytes with the reference. Used by kill-rerun.test.ts (a few kill points),
 * kill-rerun.slow.ts (more kill points) and locked-writers.test.ts (two writers at once).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** A job: its command line for an output root, and the folders (under that root) whose bytes are compared. */
export interface KillJob {
  name: string;
  /** Arguments after `node` (e.g. tsx's cli and a script), given the output root of this run. */
  argv(root: string): string[];
  /** Output folders, relative to the root. */
  outputs: string[];
  /** Working directory (default the repository root). */
  cwd?: string;
  /** The output that starts the part of the run the kills aim at (default: its first printed line). */
  killFrom?: RegExp;
  /** What a killed run left that the rerun should resume from (e.g. how many images a build had finished). */
  probeAfterKill?(root: string): number;
}

/** What a run printed and how it ended. */
export interface RunResult {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  /** ms from start to exit. */
  ms: number;
  /** ms from start to the first line the job printed (or to `killFrom`): where the kill clock starts. */
  firstOutputMs: number | null;
}

/** A job started as a child process: its pid, what it has printed so far, and its end. */
export interface StartedJob {
  pid: number;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves when the output matches `re` (rejects if the job exits first). */
  waitFor(re: RegExp): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  done: Promise<RunResult>;
}

/** Starts `job` for output root `root`, killing it with SIGKILL `killAfterMs` after its first printed line (or `killFrom`), if given. */
export function startJob(job: KillJob, root: string, opts: { killAfterMs?: number; timeoutMs?: number } = {}): StartedJob {
  const t0 = Date.now();
  const child = spawn(process.execPath, job.argv(root), { cwd: job.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
  let out = '';
  let first: number | null = null;
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300000);
  const onData = (b: Buffer) => {
    out += b.toString();
    if (first === null && (!job.killFrom || job.killFrom.test(out))) {
      first = Date.now() - t0;
      if (opts.killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
    }
    for (const w of waiters.splice(0)) if (w.re.test(out)) w.resolve(); else waiters.push(w);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const done = new Promise<RunResult>((resolve) => child.on('exit', (code, signal) => {
    clearTimeout(timer);
    resolve({ pid: child.pid!, code, signal, out, ms: Date.now() - t0, firstOutputMs: first });
  }));
  return {
    pid: child.pid!,
    output: () => out,
    waitFor: (re) => (re.test(out) ? Promise.resolve() : Promise.race([
      new Promise<void>((resolve) => waiters.push({ re, resolve })),
      done.then((r) => { if (!re.test(r.out)) throw new Error(`${job.name} exited (${r.signal ?? r.code}) before printing ${re}:\n${r.out.slice(-2000)}`); }),
    ])),
    kill: (signal) => { child.kill(signal); },
    done,
  };
}

/** Runs `job` to its end (or kills it with SIGKILL `killAfterMs` after its first printed line). */
export function runJob(job: KillJob, root: string, opts: { killAfterMs?: number; timeoutMs?: number } = {}): Promise<RunResult> {
  return startJob(job, root, opts).done;
}

export const REPO = path.resolve(__dirname, '..', '..');

/** Every file under `dirs` (relative to `root`) -> SHA-256 of its bytes. */
export function snapshot(root: string, dirs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = path.join(root, rel);
    if (!fs.existsSync(abs)) return;
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else out.set(r, createHash('sha256').update(fs.readFileSync(path.join(root, r))).digest('hex'));
    }
  };
  for (const d of dirs) walk(d);
  return out;
}

/** Files a writer leaves only while it runs: temporary files (any pid), partial token-cache files and build state, locks. */
export function leftovers(root: string, dirs: string[]): { files: string[]; bytes: number } {
  const files: string[] = [];
  let bytes = 0;
  for (const [rel] of snapshot(root, dirs)) {
    const name = path.basename(rel);
    if (/\.tmp-\d+(-[a-z0-9]+)?$/.test(name) || /\.partial$/.test(name) || name === 'build-state.json' || /\.brainnet\.lock$/.test(name)) {
      files.push(rel);
      bytes += fs.statSync(path.join(root, rel)).size;
    }
  }
  return { files, bytes };
}

/** Differences between two snapshots: files only in one, or with other bytes. */
export function compareSnapshots(want: Map<string, string>, got: Map<string, string>): string[] {
  const diffs: string[] = [];
  for (const [f, h] of want) if (!got.has(f)) diffs.push(`missing ${f}`); else if (got.get(f) !== h) diffs.push(`other bytes in ${f}`);
  for (const f of got.keys()) if (!want.has(f)) diffs.push(`extra ${f}`);
  return diffs;
}

/**
 * Seeded kill points (mulberry32), so they are the same on every run of the tests: one in each of `n` equal parts
 * of [lo, hi), so that a few points still spread over the whole run.
 */
export function killFractions(seed: number, n: number, lo = 0.05, hi = 0.95): number[] {
  let t = seed >>> 0;
  const next = () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: n }, (_, i) => lo + ((hi - lo) * (i + next())) / n);
}

/** One kill trial: where it was killed, what the kill left, whether the rerun finished, equals the reference and left nothing. */
export interface KillTrial {
  fraction: number;
  killAfterMs: number;
  /** false when the job finished before the kill (the trial then only checks a rerun over a finished folder). */
  killed: boolean;
  /** pid of the killed run. */
  killedPid: number;
  leftAfterKill: { files: string[]; bytes: number };
  /** Every output file present after the kill. */
  filesAfterKill: string[];
  /** The job's probeAfterKill after the kill (0 without one). */
  probeAfterKill: number;
  rerunCode: number | null;
  rerunOut: string;
  leftAfterRerun: { files: string[]; bytes: number };
  diffs: string[];
}

/**
 * Kills `job` at each fraction of the reference run's working time (after its first printed line), reruns it, and
 * compares with `reference` (a snapshot of the outputs of an uninterrupted run).
 */
export async function killAndRerun(job: KillJob, o: { reference: Map<string, string>; workMs: number; fractions: number[]; root: (k: number) => string }): Promise<KillTrial[]> {
  const trials: KillTrial[] = [];
  for (const [k, fraction] of o.fractions.entries()) {
    const root = o.root(k);
    fs.rmSync(root, { recursive: true, force: true });
    fs.mkdirSync(root, { recursive: true });
    const killAfterMs = Math.round(fraction * o.workMs);
    const first = await runJob(job, root, { killAfterMs });
    const leftAfterKill = leftovers(root, job.outputs);
    const filesAfterKill = [...snapshot(root, job.outputs).keys()];
    const probeAfterKill = job.probeAfterKill?.(root) ?? 0;
    const rerun = await runJob(job, root);
    trials.push({
      fraction, killAfterMs, killed: first.signal === 'SIGKILL', killedPid: first.pid, leftAfterKill, filesAfterKill, probeAfterKill, rerunCode: rerun.code, rerunOut: rerun.out,
      leftAfterRerun: leftovers(root, job.outputs), diffs: compareSnapshots(o.reference, snapshot(root, job.outputs)),
    });
  }
  return trials;
}

/**
 * The node command line that runs a TypeScript script of this repository (or of `repo`) through tsx's loader, in
 * this one process: the `tsx` command would run it in a child process, and a SIGKILL of `tsx` leaves that child
 * running on, so the kill would not kill the job.
 */
export function tsxArgv(script: string, args: string[], repo = REPO): string[] {
  return ['--import', pathToFileURL(path.join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href, path.join(repo, script), ...args];
}
