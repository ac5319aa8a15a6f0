/**
 * The long jobs the kill tests kill, at tiny sizes, and the inputs they read (made once per test run):
 * make-subject (both layouts), zscore, the token cache, training with checkpoints (fitEncoder) and run-regions.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writePng } from 'brainnet/io';
import { makeAlgonautsSubject, makeNsdSubject } from 'brainnet/synthetic';
import { REPO, tsxArgv, type KillJob } from './harness';

/** Where the inputs are. */
export interface JobInputs {
  /** A synthetic NSD release (3 sessions, 16-pixel brick) for zscore. */
  nsdRoot: string;
  /** 40 PNGs for the token cache. */
  images: string;
  /** An Algonauts-layout subject (24 training images) for the fit. */
  subject: string;
}

/** Makes the inputs under `dir` (quietly): all, or only those named in `parts`. */
export async function makeJobInputs(dir: string, parts: (keyof JobInputs)[] = ['nsdRoot', 'images', 'subject']): Promise<JobInputs> {
  const inputs = { nsdRoot: path.join(dir, 'nsd'), images: path.join(dir, 'images'), subject: path.join(dir, 'subject') };
  if (parts.includes('nsdRoot')) await makeNsdSubject({ size: 'tiny', seed: 11, out: inputs.nsdRoot, sessions: 3, imageSize: 16, world: 'v2', log: null });
  if (parts.includes('subject')) await makeAlgonautsSubject({ size: 'tiny', seed: 12, out: inputs.subject, train: 24, test: 2, world: 'v2', log: null });
  if (!parts.includes('images')) return inputs;
  fs.mkdirSync(inputs.images, { recursive: true });
  let s = 12345;
  for (let i = 0; i < 40; i++) {
    const data = new Uint8Array(32 * 32 * 3);
    for (let k = 0; k < data.length; k++) { s = (s * 1103515245 + 12345) >>> 0; data[k] = s >>> 24; }
    await writePng(path.join(inputs.images, `im${String(i).padStart(3, '0')}.png`), { width: 32, height: 32, data });
  }
  return inputs;
}

/** The jobs, as commands of the repository at `repo` (default this one; the measurement also runs an older checkout). */
export function longJobs(inputs: JobInputs, repo = REPO): KillJob[] {
  const tsx = (script: string, args: string[]) => tsxArgv(script, args, repo);
  return [
    makeSubjectJob(3, repo),
    {
      name: 'make-subject (nsd)', outputs: ['subj'], cwd: repo,
      argv: (r) => tsx('data-prep/make-subject.ts', ['--layout', 'nsd', '--size', 'tiny', '--seed', '3', '--sessions', '1', '--image-size', '16', '--world', 'v2', '--out', path.join(r, 'subj')]),
    },
    {
      name: 'zscore', outputs: ['z'], cwd: repo,
      argv: (r) => tsx('data-prep/nsd/zscore.ts', ['--root', inputs.nsdRoot, '--out', path.join(r, 'z')]),
    },
    {
      name: 'token cache', outputs: ['cache'], cwd: repo, probeAfterKill: (r) => buildStateDone(path.join(r, 'cache')),
      argv: (r) => tsx('test/crash/jobs.ts', ['token-cache', '--images', inputs.images, '--out', path.join(r, 'cache')]),
    },
    {
      // the kills aim at the epochs after the first checkpoint (the token cache job covers the cache build)
      name: 'training with checkpoints', outputs: ['cache', 'ckpt'], cwd: repo, killFrom: /epoch 1\/3:/,
      argv: (r) => tsx('test/crash/jobs.ts', ['fit', '--subject', inputs.subject, '--cache', path.join(r, 'cache'), '--ckpt', path.join(r, 'ckpt')]),
    },
    {
      name: 'run-regions', outputs: ['runs'], cwd: repo,
      argv: (r) => tsx('data-prep/braindive/run-regions.ts', ['--out', path.join(r, 'runs'), '--regions', 'PPA', '--n', '4', '--steps', '3', '--batch', '2']),
    },
  ];
}

/** make-subject (Algonauts layout, tiny, 16 training images, world v2: the folder's handling is tested, not the world) with seed `seed` into `<root>/subj`. */
export function makeSubjectJob(seed: number, repo = REPO): KillJob {
  return {
    name: 'make-subject (algonauts)', outputs: ['subj'], cwd: repo,
    argv: (r) => tsxArgv('data-prep/make-subject.ts', ['--layout', 'algonauts', '--size', 'tiny', '--seed', String(seed), '--train', '16', '--test', '2', '--world', 'v2', '--out', path.join(r, 'subj')], repo),
  };
}

/** How many images a killed token cache build in `dir` had finished (its build-state.json; 0 without one). */
export function buildStateDone(dir: string): number {
  const f = path.join(dir, 'build-state.json');
  return fs.existsSync(f) ? Number((JSON.parse(fs.readFileSync(f, 'utf8')) as { done: number }).done) : 0;
}
