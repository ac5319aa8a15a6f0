/**
 * Locked writers (issue 24), with the project's real commands as child processes: a second make-subject or
 * zscore into a folder that another one is writing fails at once, naming the first one's pid and command; a
 * second token cache build of the same folder waits for the first, says so, and reuses its cache; a lock left
 * by a writer killed with SIGKILL is taken over with a note. The first writer is paused (SIGSTOP) while it holds
 * its lock, so the second always meets a live holder, however busy the machine.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { folderLockFile, lockStatus, readLockFile } from 'brainnet/io';
import { compareSnapshots, leftovers, runJob, snapshot, startJob, type KillJob, type StartedJob } from './harness';
import { longJobs, makeJobInputs, makeSubjectJob, type JobInputs } from './long-jobs';

/** Resolves once `job` holds the lock of `dir` (its pid in the lock file); rejects when it exits first. */
async function holdsLock(job: StartedJob, dir: string): Promise<void> {
  let exited = false;
  void job.done.then(() => { exited = true; });
  for (;;) {
    const h = fs.existsSync(folderLockFile(dir)) ? readLockFile(folderLockFile(dir)) : null;
    if (h && h !== 'unreadable' && h.pid === job.pid) return;
    if (exited) throw new Error(`the first writer exited before it was seen holding the lock of ${dir}:\n${job.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('locked writers: two commands into one folder', function () {
  this.timeout(300000);
  let dir: string;
  let inputs: JobInputs;
  let jobs: KillJob[];
  const started: StartedJob[] = [];
  const job = (name: string) => jobs.find((j) => j.name === name)!;
  const start = (j: KillJob, root: string) => {
    const s = startJob(j, root);
    started.push(s);
    return s;
  };
  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-locks-'));
    inputs = await makeJobInputs(path.join(dir, 'inputs'), ['nsdRoot', 'images']);
    jobs = longJobs(inputs);
  });
  afterEach(async () => {
    for (const s of started.splice(0)) {
      s.kill('SIGKILL'); // also ends a paused one
      await s.done;
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('make-subject: a second run fails at once naming the first (pid and command); afterwards other settings are refused and the subject is untouched', async () => {
    const root = path.join(dir, 'make-subject');
    const out = path.join(root, 'subj');
    const first = start(makeSubjectJob(3), root);
    await holdsLock(first, out);
    first.kill('SIGSTOP');
    const second = await runJob(makeSubjectJob(4), root);
    assert.notEqual(second.code, 0, `the second writer succeeded:\n${second.out}`);
    assert.match(second.out, new RegExp(`${out}: expected no other writer of this folder, but found pid ${first.pid} \\(make-subject \\(layout algonauts, size tiny, seed 3, train 16, test 2, world v2\\)`));
    assert.doesNotMatch(second.out, /waiting/, 'fails at once, without waiting');
    first.kill('SIGCONT');
    const done = await first.done;
    assert.ok(done.code === 0 || done.code === 1, `the first writer failed:\n${done.out.slice(-2000)}`);
    const made = snapshot(root, ['subj']);
    assert.ok([...made.keys()].some((f) => f.endsWith('.npy')), 'the first writer wrote its subject');
    const third = await runJob(makeSubjectJob(4), root);
    assert.equal(third.code, 2, third.out);
    assert.match(third.out, new RegExp(`${out}: expected an empty folder or a subject made with the same settings \\(layout algonauts, size tiny, seed 4, train 16, test 2, world v2\\), but found a subject made with layout algonauts, size tiny, seed 3, train 16, test 2, world v2\\. .*--overwrite`));
    assert.deepEqual(compareSnapshots(made, snapshot(root, ['subj'])), [], 'the refused runs changed nothing');
    assert.equal(lockStatus(out).state, 'none');
  });

  it('zscore: a second run fails at once naming the first; the lock of a run killed with SIGKILL is taken over with a note', async () => {
    const root = path.join(dir, 'zscore');
    const out = path.join(root, 'z');
    const first = start(job('zscore'), root);
    await holdsLock(first, out);
    first.kill('SIGSTOP');
    const second = await runJob(job('zscore'), root);
    assert.notEqual(second.code, 0, `the second writer succeeded:\n${second.out}`);
    assert.match(second.out, new RegExp(`${out}: expected no other writer of this folder, but found pid ${first.pid} \\(zscore \\(subject 1, 3 sessions\\)`));
    first.kill('SIGKILL');
    await first.done;
    assert.equal(lockStatus(out).state, 'stale');
    const third = await runJob(job('zscore'), root);
    assert.equal(third.code, 0, third.out.slice(-2000));
    assert.match(third.out, new RegExp(`${out}: taking over the lock of pid ${first.pid} \\(zscore \\(subject 1, 3 sessions\\).*which is no longer running`));
    assert.deepEqual(leftovers(root, ['z']).files, []);
  });

  it('token cache: a second build of the same folder waits for the first, says so, then reuses its cache', async () => {
    const root = path.join(dir, 'token-cache');
    const out = path.join(root, 'cache');
    const first = start(job('token cache'), root);
    await holdsLock(first, out);
    first.kill('SIGSTOP');
    const second = start(job('token cache'), root);
    await second.waitFor(new RegExp(`${out}: waiting for pid ${first.pid} \\(token cache \\(tiny-conv-crash, 40 images\\)`));
    first.kill('SIGCONT');
    const [a, b] = [await first.done, await second.done];
    assert.equal(a.code, 0, a.out.slice(-2000));
    assert.equal(b.code, 0, b.out.slice(-2000));
    assert.match(a.out, /computed 40 of 40 images/);
    assert.match(b.out, /the other writer is done; going on[\s\S]*token cache: reusing[\s\S]*computed 0 of 40 images/);
    assert.deepEqual(leftovers(root, ['cache']).files, []);
  });
});
