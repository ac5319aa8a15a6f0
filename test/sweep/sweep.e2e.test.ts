/**
 * Sweeps end to end with the real brainnet-ts kernel, on two tiny synthetic subjects (test/fixtures/notebooks/
 * sweep_point.ipynb: ridge from image colour features, its R² recorded per ROI):
 * - local executor: a 4-point grid (subject x alpha) in worker processes, results collected from the records, a second
 *   run skipping everything, a failing point marked failed with its cell and error while the others finish, the CLI's
 *   bad input (an unknown grid name lists the defined ones, before anything runs), and the CLI stopped with SIGTERM
 *   losing only the point in flight;
 * - SLURM executor on a real one-node cluster (munged, slurmctld, slurmd started by test/sweep/slurm-cluster.ts, as root):
 *   sbatch's refusal shown as sbatch says it, the same 4-point grid as one job array whose collected results equal the
 *   local run's, one array task killed with scancel and only that point re-run by the next sweep, and a failing task
 *   resubmitted up to --retries. Without root (or without slurm-wlm and munge) this part says why and is skipped.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeAlgonautsSubject } from 'brainnet/synthetic';
import { loadSweep, runSweep, type SweepSummary, type PointResult, type Submission } from 'brainnet/sweep';
import { installTestKernel, REPO } from '../notebook/kernel-env';
import { startLocalCluster, type LocalCluster } from './slurm-cluster';

const POINT_NB = path.join(REPO, 'test', 'fixtures', 'notebooks', 'sweep_point.ipynb');
const SWEEP_CLI = path.join(REPO, 'dist', 'lib', 'sweep', 'cli.js');

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
const byValues = (ps: PointResult[]) => new Map(ps.map((p) => [JSON.stringify(p.values), p]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes whose command line holds `text` (Linux /proc; none elsewhere). */
function processesWith(text: string): number[] {
  const out: number[] = [];
  for (const e of fs.existsSync('/proc') ? fs.readdirSync('/proc') : []) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text)) out.push(Number(e));
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

/** Waits up to `ms` until no process's command line holds `text`; returns those left. */
async function waitGone(text: string, ms = 15000): Promise<number[]> {
  let left = processesWith(text);
  for (let t = 0; t < ms && left.length; t += 250) {
    await sleep(250);
    left = processesWith(text);
  }
  return left;
}

describe('sweeps end to end (brainnet-ts kernel, tiny synthetic subjects)', function () {
  this.timeout(900_000);
  let env: ReturnType<typeof installTestKernel>;
  let tmp: string;
  let subjects: string[];
  let savedJupyterPath: string | undefined;
  let local: SweepSummary;
  const grid = () => ({ dataPath: subjects, alpha: [1, 1000] });

  before(async () => {
    assert.ok(fs.existsSync(SWEEP_CLI), `${SWEEP_CLI} is missing: run npm run build first`);
    env = installTestKernel();
    savedJupyterPath = process.env.JUPYTER_PATH;
    process.env.JUPYTER_PATH = env.jupyterPath; // the workers (and SLURM's tasks) inherit it
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-sweep-e2e-'));
    subjects = [];
    for (const seed of [1, 2]) {
      const out = path.join(tmp, `subjects/s${seed}`);
      await makeAlgonautsSubject({ size: 'tiny', seed, out, train: 48, test: 4, world: 'v2' });
      subjects.push(out);
    }
    local = await runSweep({ notebook: POINT_NB, grid: grid(), params: { saveDir: '{point}/save' }, out: path.join(tmp, 'local'), jobs: 2, log: null, progress: false });
  });
  after(() => {
    if (savedJupyterPath === undefined) delete process.env.JUPYTER_PATH;
    else process.env.JUPYTER_PATH = savedJupyterPath;
    env?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('local executor', () => {
    it('runs each point into its own folder: executed notebook, HTML, log, status and timings', () => {
      assert.deepEqual(local.counts, { done: 4, failed: 0, ran: 4, skipped: 0, other: 0 });
      for (const p of local.points) {
        for (const f of ['sweep_point.ipynb', 'sweep_point.html', 'log.txt', 'status.json', 'timings.json', 'records.json', 'point.json', 'save/r2.npy']) {
          assert.ok(fs.existsSync(path.join(p.dir, f)), `${p.key}: no ${f}`);
        }
        const st = readJson(path.join(p.dir, 'status.json'));
        assert.equal(st.state, 'done');
        assert.equal(st.executor, 'local');
        const t = readJson(path.join(p.dir, 'timings.json'));
        assert.equal(t.cellSeconds.length, 5, 'four code cells and the injected parameters');
        assert.match(fs.readFileSync(path.join(p.dir, 'log.txt'), 'utf8'), /cell 5\/5 ok in \d+\.\d s/);
        // the parameters reached the notebook: its injected cell and what it recorded
        const nb = readJson(path.join(p.dir, 'sweep_point.ipynb'));
        const injected = nb.cells.find((c: { metadata: { tags?: string[] } }) => c.metadata.tags?.includes('injected-parameters'));
        assert.match(injected.source.join(''), new RegExp(`const alpha = ${p.values.alpha};`));
        assert.equal(p.records.alphaUsed, p.values.alpha);
        assert.equal(p.records.nImages, 48);
      }
    });

    it('collects the records into results.json and a tidy results.csv, one row per point and name', () => {
      const json = readJson(local.results!.json);
      assert.equal(json.points.length, 4);
      const csv = fs.readFileSync(local.results!.csv, 'utf8').trim().split('\n');
      assert.equal(csv[0], 'point,dataPath,alpha,status,name,value');
      assert.equal(csv.length, 1 + 4 * 5, 'five records per point');
      for (const p of local.points) {
        assert.ok(typeof p.records.meanR2 === 'number' && Number.isFinite(p.records.meanR2));
        assert.ok(csv.includes(`${p.key},${p.values.dataPath},${p.values.alpha},done,meanR2,${p.records.meanR2}`), `no meanR2 row for ${p.key}`);
        const roi = p.records.roiR2 as { roi: string; n: number; r2: number }[];
        assert.ok(roi.length >= 10 && roi.some((r) => r.roi === 'V1'));
      }
      // different penalties give different fits, the same penalty on different subjects too
      const m = local.points.map((p) => p.records.meanR2 as number);
      assert.equal(new Set(m).size, 4);
      const table = fs.readFileSync(path.join(local.dir, 'tables', 'roiR2.csv'), 'utf8').trim().split('\n');
      assert.equal(table[0], 'point,dataPath,alpha,roi,n,r2');
    });

    it('skips finished points on a second run (nothing is started)', async () => {
      const before = local.points.map((p) => fs.readFileSync(path.join(p.dir, 'status.json'), 'utf8'));
      const again = await runSweep({ notebook: POINT_NB, grid: grid(), params: { saveDir: '{point}/save' }, out: local.dir, log: null, progress: false });
      assert.deepEqual(again.counts, { done: 4, failed: 0, ran: 0, skipped: 4, other: 0 });
      assert.deepEqual(local.points.map((p) => fs.readFileSync(path.join(p.dir, 'status.json'), 'utf8')), before);
    });

    it('marks a failing point failed with its cell and error, and finishes the others', async () => {
      const lines: string[] = [];
      const r = await runSweep({ notebook: POINT_NB, grid: { failAt: ['fit', ''] }, params: { dataPath: subjects[0]!, alpha: 10 }, out: path.join(tmp, 'failing'), jobs: 2, log: (l) => lines.push(l), progress: false });
      assert.deepEqual([r.counts.done, r.counts.failed], [1, 1]);
      const bad = r.points.find((p) => p.values.failAt === 'fit')!;
      assert.equal(bad.state, 'failed');
      assert.equal(bad.error!.cell, 4, 'code cell 4 (counting the injected parameters cell) throws');
      assert.equal(bad.error!.evalue, "failAt = 'fit': this point fails on purpose (alpha 10)");
      assert.match(bad.error!.message, /code cell 4 of 5 \(cell index 4\) failed at line \d+: if \(failAt === 'fit'\)/);
      assert.equal(bad.records.nImages, 48, 'records made before the failure are kept');
      assert.ok(lines.some((l) => l.startsWith(`point ${bad.key} failed at code cell 4: Error: failAt = 'fit'`)), lines.join('\n'));
      const good = r.points.find((p) => p.values.failAt === '')!;
      assert.equal(good.state, 'done');
      assert.equal(typeof good.records.meanR2, 'number');
      const csv = fs.readFileSync(r.results!.csv, 'utf8');
      assert.match(csv, new RegExp(`${bad.key},fit,failed,nImages,48`));
    });

    it('the CLI: an unknown grid name exits 2 listing the defined names, before anything runs; --dry-run lists the points', () => {
      const out = path.join(tmp, 'cli');
      const bad = spawnSync(process.execPath, [SWEEP_CLI, POINT_NB, '--grid', 'lambda=1,2', '--out', out], { encoding: 'utf8' });
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /the parameters cell does not define 'lambda'; it defines: dataPath, alpha, failAt, saveDir/);
      assert.equal(fs.existsSync(out), false);
      const dry = spawnSync(process.execPath, [SWEEP_CLI, POINT_NB, '--grid', `dataPath=${subjects.join(',')}`, '--grid', 'alpha=1,1000', '--param', 'saveDir={point}/save', '--out', local.dir, '--dry-run'], { encoding: 'utf8' });
      assert.equal(dry.status, 0, dry.stderr);
      assert.match(dry.stdout, /4 points of .*sweep_point\.ipynb in .*: 0 to run, 4 done/);
      for (const p of local.points) assert.ok(dry.stdout.includes(`[${p.index}] ${p.key}  dataPath=${p.values.dataPath} alpha=${p.values.alpha}  (done, skip)`), dry.stdout);
    });
    it('stopping the CLI (SIGTERM) loses only the point in flight: its worker and kernel end, the next run redoes it and the rest', async () => {
      const out = path.join(tmp, 'stopped');
      const child = spawn(process.execPath, [SWEEP_CLI, POINT_NB, '--grid', 'alpha=1,10,100', '--param', `dataPath=${subjects[0]}`, '--out', out, '--jobs', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      // wait until point 0 is done and point 1 runs, then stop the sweep
      let ready = false;
      for (let i = 0; i < 1200 && !ready; i++) {
        await sleep(250);
        if (!fs.existsSync(path.join(out, 'sweep.json'))) continue;
        const st = loadSweep(out).points.map((p) => p.state);
        ready = st[0] === 'done' && st[1] === 'running';
        assert.notEqual(st[1], 'done', 'point 1 finished before it could be stopped');
      }
      assert.ok(ready, `point 1 never ran\n${output}`);
      const worker = readJson(path.join(loadSweep(out).points[1]!.dir, 'status.json')).pid as number;
      child.kill('SIGTERM');
      assert.equal(await exited, 1, output);
      const after = loadSweep(out).points;
      assert.deepEqual(after.map((p) => p.state), ['done', 'failed', 'pending'], output);
      assert.match(after[1]!.error!.message, /interrupted by SIGTERM/);
      assert.deepEqual(await waitGone(`brainnet-kernel-${worker}-`), [], `the kernel of the stopped point (worker ${worker}) still runs`);
      assert.deepEqual(await waitGone(path.join(after[1]!.dir)), [], `the worker ${worker} of the stopped point still runs`);
      const started0 = readJson(path.join(after[0]!.dir, 'status.json')).started;
      const again = await runSweep({ notebook: POINT_NB, grid: { alpha: [1, 10, 100] }, params: { dataPath: subjects[0]! }, out, jobs: 2, log: null, progress: false });
      assert.deepEqual(again.plan.toRun.map((p) => p.index), [1, 2]);
      assert.deepEqual(again.counts, { done: 3, failed: 0, ran: 2, skipped: 1, other: 0 });
      assert.equal(readJson(path.join(after[0]!.dir, 'status.json')).started, started0, 'the finished point was not re-run');
    });
  });

  describe('SLURM executor on a one-node cluster (munged, slurmctld, slurmd)', function () {
    let cluster: LocalCluster | undefined;
    before(async function () {
      const c = await startLocalCluster();
      if ('skip' in c) {
        console.log(`      SLURM tests skipped: ${c.skip}`);
        this.skip();
      }
      cluster = c as LocalCluster;
    });
    after(async () => cluster?.stop());

    it("shows sbatch's own message when SLURM refuses the array, and runs nothing", async () => {
      const out = path.join(tmp, 'refused');
      await assert.rejects(
        runSweep({ notebook: POINT_NB, grid: { alpha: [1] }, params: { dataPath: subjects[0]! }, out, executor: 'slurm', slurm: { partition: 'nosuch' }, log: null, progress: false }),
        /sbatch refused the job array: sbatch: error: invalid partition specified: nosuch/,
      );
      assert.equal(fs.existsSync(path.join(out, 'points', loadSweep(out).points[0]!.key, 'status.json')), false);
    });

    it('runs the grid as one job array; the collected results equal the local run; a killed task is the only point re-run', async () => {
      const out = path.join(tmp, 'slurm');
      const opts = { notebook: POINT_NB, grid: grid(), params: { saveDir: '{point}/save' }, out, executor: 'slurm' as const, slurm: { retries: 0, pollSeconds: 1, mem: '1G' }, log: null, progress: false };
      // 1. submit, wait for task 1 to run, then kill it with scancel
      const running = runSweep(opts);
      const subs = path.join(out, 'slurm', 'submissions.json');
      let victim: PointResult | undefined;
      for (let i = 0; i < 1200 && !victim; i++) {
        await sleep(250);
        if (!fs.existsSync(subs)) continue;
        const s = loadSweep(out);
        if (s.points[1]?.state === 'running') victim = s.points[1];
        else if (s.points[1]?.state === 'done') break;
      }
      assert.ok(victim, 'array task 1 never ran');
      const victimPid = readJson(path.join(victim.dir, 'status.json')).pid as number;
      const jobId = (readJson(subs) as Submission[])[0]!.jobId;
      const cancel = spawnSync('scancel', [`${jobId}_1`], { encoding: 'utf8' });
      assert.equal(cancel.status, 0, cancel.stderr);
      const first = await running;
      assert.deepEqual([first.counts.done, first.counts.failed], [3, 1], cluster!.logs());
      const killed = first.points[1]!;
      assert.equal(killed.state, 'failed');
      assert.equal(killed.error!.slurmState, 'CANCELLED', JSON.stringify(killed.error));
      assert.match(killed.error!.message, /interrupted by SIGTERM/);
      assert.deepEqual(await waitGone(`brainnet-kernel-${victimPid}-`), [], `the kernel of the cancelled task (worker ${victimPid}) still runs`);
      const script = fs.readFileSync(path.join(out, 'slurm', 'sweep-1.sbatch'), 'utf8');
      assert.match(script, /#SBATCH --array=0-3\n/);
      const started = first.points.map((p) => readJson(path.join(p.dir, 'status.json')).started);
      // 2. the same sweep again: only the killed point is submitted
      const second = await runSweep(opts);
      assert.deepEqual(second.plan.toRun.map((p) => p.index), [1]);
      assert.deepEqual(second.counts, { done: 4, failed: 0, ran: 1, skipped: 3, other: 0 });
      const all = readJson(subs) as Submission[];
      assert.deepEqual(all.map((s) => s.array), [[0, 1, 2, 3], [1]]);
      second.points.forEach((p, i) => {
        const st = readJson(path.join(p.dir, 'status.json'));
        if (i === 1) assert.deepEqual([st.attempt, st.executor, st.slurm.arrayJobId, st.slurm.taskId], [2, 'slurm', all[1]!.jobId, '1']);
        else assert.equal(st.started, started[i], `point ${i} was not re-run`);
      });
      // 3. the records equal the local run's, point for point
      const mine = byValues(second.points);
      for (const p of local.points) assert.deepEqual(mine.get(JSON.stringify(p.values))!.records, p.records, `records differ at ${p.key}`);
      assert.equal(fs.readFileSync(second.results!.csv, 'utf8'), fs.readFileSync(local.results!.csv, 'utf8').replaceAll(local.dir, out));
    });

    it('resubmits a failing array task up to --retries, then marks it failed with its cell and error', async () => {
      const out = path.join(tmp, 'retries');
      const r = await runSweep({ notebook: POINT_NB, grid: { failAt: ['fit'] }, params: { dataPath: subjects[0]!, alpha: 10 }, out, executor: 'slurm', slurm: { retries: 1, pollSeconds: 1 }, log: null, progress: false });
      assert.deepEqual([r.counts.done, r.counts.failed], [0, 1]);
      const p = r.points[0]!;
      assert.equal(p.attempt, 2);
      assert.equal(p.error!.cell, 4);
      assert.equal(p.error!.slurmState, 'FAILED');
      assert.equal((readJson(path.join(out, 'slurm', 'submissions.json')) as Submission[]).length, 2);
    });
  });
});
