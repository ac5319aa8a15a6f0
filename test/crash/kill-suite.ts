/**
 * The kill-and-rerun suite, shared by kill-rerun.test.ts (one seeded kill point per job) and kill-rerun.slow.ts
 * (more): every long job is run once uninterrupted (the reference), then killed with SIGKILL at seeded points of
 * its working time and run again; the rerun must exit as the reference did, hold exactly its bytes, leave no
 * temporary file, partial file or lock, and say so when it took over the lock of the killed run.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killAndRerun, killFractions, runJob, snapshot, leftovers } from './harness';
import { longJobs, makeJobInputs, type JobInputs } from './long-jobs';

/** The long jobs, in the order of their seeds (job j's kill points come from seed + j). */
export const LONG_JOBS = ['make-subject (algonauts)', 'make-subject (nsd)', 'zscore', 'token cache', 'training with checkpoints', 'run-regions'] as const;

/** Kills each job of `names` `kills` times (seed `seed`) and checks the reruns; shared with the slow suite. */
export function describeKillRerun(kills: number, seed: number, names: readonly (typeof LONG_JOBS)[number][] = LONG_JOBS): void {
  let dir: string;
  let inputs: JobInputs;
  before(async function () {
    this.timeout(300000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-kill-'));
    inputs = await makeJobInputs(path.join(dir, 'inputs'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [j, name] of LONG_JOBS.entries()) {
    if (!names.includes(name)) continue;
    it(`${name}: killed at ${kills} seeded point${kills > 1 ? 's' : ''}, the rerun equals an uninterrupted run byte for byte and leaves nothing behind`, async function () {
      this.timeout(600000 * kills);
      const job = longJobs(inputs).find((x) => x.name === name)!;
      const refRoot = path.join(dir, `ref-${j}`);
      const ref = await runJob(job, refRoot);
      assert.ok(ref.code === 0 || (ref.code === 1 && name.startsWith('make-subject')), `${name} failed:\n${ref.out.slice(-2000)}`);
      assert.deepEqual(leftovers(refRoot, job.outputs).files, [], 'an uninterrupted run leaves nothing behind');
      const reference = snapshot(refRoot, job.outputs);
      const workMs = ref.ms - (ref.firstOutputMs ?? 0);
      const trials = await killAndRerun(job, { reference, workMs, fractions: killFractions(seed + j, kills), root: (k) => path.join(dir, `kill-${j}-${k}`) });
      for (const t of trials) {
        const where = `killed ${t.killAfterMs} ms into ${workMs} ms of work (${(100 * t.fraction).toFixed(0)}%)${t.killed ? '' : ', after it had finished'}`;
        console.log(`      ${name}: ${where}; left ${t.leftAfterKill.files.length} temporary/partial/lock files (${t.leftAfterKill.bytes} bytes); after the rerun ${t.leftAfterRerun.files.length}`);
        assert.equal(t.rerunCode, ref.code, `${where}: the rerun failed:\n${t.rerunOut.slice(-2000)}`);
        assert.deepEqual(t.leftAfterRerun.files, [], `${where}: left behind after the rerun`);
        assert.deepEqual(t.diffs, [], `${where}: the rerun differs from an uninterrupted run`);
        if (name === 'token cache' && t.probeAfterKill > 0) {
          // the killed build had finished some batches: the rerun resumes after them instead of starting over
          const computed = /computed (\d+) of (\d+) images/.exec(t.rerunOut);
          assert.ok(computed, t.rerunOut.slice(-2000));
          assert.match(t.rerunOut, new RegExp(`resuming the build in .* at image ${t.probeAfterKill} of ${computed[2]}`));
          assert.equal(Number(computed[1]), Number(computed[2]) - t.probeAfterKill, `${where}: the rerun computed again what the killed build had finished`);
          console.log(`      ${name}: the killed build had finished ${t.probeAfterKill} images; the rerun ${computed[0]}`);
        }
        if (name === 'training with checkpoints' && t.filesAfterKill.includes(path.join('ckpt', 'encoder.safetensors'))) {
          // an epoch's checkpoint was written before the kill: training resumes from it
          const resumed = /encoder: resuming from .*encoder\.safetensors at step [1-9]\d* \(epoch [1-9]\d*\)/.exec(t.rerunOut);
          assert.ok(resumed, `${where}: the rerun did not resume from the checkpoint:\n${t.rerunOut.slice(-2000)}`);
          console.log(`      ${name}: the rerun said "${resumed[0].replace(/from .*encoder/, 'from ckpt/encoder')}"`);
        }
        if (t.leftAfterKill.files.some((f) => f.endsWith('.brainnet.lock'))) {
          assert.match(t.rerunOut, new RegExp(`taking over the lock of pid ${t.killedPid} \\(.*which is no longer running`), `${where}: the rerun took over the stale lock without a note`);
        }
      }
    });
  }
}
