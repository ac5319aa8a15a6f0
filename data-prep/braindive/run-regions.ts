/**
 * The paper's runs: for each region, N images written to OUT/<region>/NNNN.png with NNNN.json (seed, scale, steps,
 * sagScale, predicted activation, category probabilities). Resumable: images already written are skipped, so an
 * interrupted run continues where it stopped.
 *
 * The synthetic world (default):
 *   npx tsx data-prep/braindive/run-regions.ts --out outputs/braindive-runs --regions FFA,PPA,EBA,VWFA,food --n 20 --scale 10 --steps 20 [--batch 8] [--unguided]
 * The paper's setting on Stable Diffusion ONNX weights, with self-attention guidance at BrainDiVE's 0.75 (--sag 0 turns it off):
 *   npx tsx data-prep/braindive/run-regions.ts --sd-dir data/models/sd21-onnx --clip-encoder clip_vision.onnx --encoder enc.safetensors
 *     [--clip-model clip-onnx] [--clip-input-size 224] [--size 512] [--steps 50] [--scale 130] [--sag 0.75] --regions FFA --n 100
 * The synthetic world's denoiser has no self-attention: there --sag is answered with one line and ignored.
 *
 * As a sweep over region x subject x seed block (notebooks/braindive_regions.ipynb at each point, one worker process or
 * SLURM array task each; resumable point by point), with the 5-way table collected from what the points recorded:
 *
 *   npx tsx data-prep/braindive/run-regions.ts --sweep --out outputs/sweeps/braindive --regions FFA,PPA,EBA,VWFA,food --n 24 --batch 8
 *     [--subjects synthetic,models/other-encoder.safetensors] [--scale 10] [--steps 20] [--executor local|slurm] [--jobs N]
 *     [--partition P --time T --mem M --gpus G --retries R]   (SLURM)
 *
 * It prints the table (guided share of each category, unguided in brackets) and writes OUT/five_way.json and five_way.md.
 */
import * as path from 'node:path';
import { loadSyntheticPipeline, loadSdPipeline, progress } from 'brainnet';
import { fiveWayTable, formatFiveWay, runRegions, type CountsRow } from 'brainnet/braindive';
import { writeFileAtomicSync } from 'brainnet/io';
import { loadSweep, recordRows, runSweep } from 'brainnet/sweep';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const given = (name: string) => process.argv.includes(`--${name}`);
const opt = (name: string) => (process.argv.includes(`--${name}`) ? arg(name, '') || undefined : undefined);

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`run-regions: --${name} must be a positive integer, got '${v}'`);
  return n;
}

/** The runs as a sweep over region x subject x seed block, then the 5-way table from the recorded counts. */
async function sweepRegions(regions: string[]): Promise<void> {
  const n = positiveInt('n', arg('n', '24'));
  const block = positiveInt('batch', arg('batch', '8'));
  const blocks = Math.ceil(n / block);
  const out = path.resolve(arg('out', 'outputs/sweeps/braindive'));
  const subjects = arg('subjects', 'synthetic').split(',');
  const executor = arg('executor', 'local') as 'local' | 'slurm';
  const jobs = opt('jobs') ? positiveInt('jobs', opt('jobs')!) : undefined;
  console.log(`run-regions --sweep: ${regions.length} region(s) x ${subjects.length} subject(s) x ${blocks} block(s) of ${block} seeds (${blocks * block} images per region), executor ${executor}`);
  const r = await runSweep({
    notebook: path.join(__dirname, '..', '..', 'notebooks', 'braindive_regions.ipynb'), out, executor, jobs, force: process.argv.includes('--force'),
    grid: { region: regions, subject: subjects, seedBlock: Array.from({ length: blocks }, (_, b) => b) },
    params: { blockSize: block, scale: Number(arg('scale', '10')), steps: Number(arg('steps', '20')), outDir: '{point}/images' },
    slurm: { partition: opt('partition'), time: opt('time'), mem: opt('mem'), gpus: opt('gpus'), retries: opt('retries') !== undefined ? Number(opt('retries')) : undefined },
  });
  const rows = recordRows(loadSweep(out), 'counts') as unknown as CountsRow[];
  const table = fiveWayTable(rows);
  const md = formatFiveWay(table);
  writeFileAtomicSync(path.join(out, 'five_way.json'), JSON.stringify({ regions, subjects, imagesPerRegion: blocks * block, blocksDone: r.counts.done, blocks: r.points.length, table }, null, 1));
  writeFileAtomicSync(path.join(out, 'five_way.md'), md + '\n');
  console.log(`\n${md}\n\nguided share of each category (unguided, same seeds, in brackets); wrote ${path.join(out, 'five_way.json')} and five_way.md`);
  if (r.counts.failed || r.counts.other) process.exitCode = 1;
}

(async () => {
  const regions = arg('regions', 'FFA,PPA,EBA,VWFA,food').split(',');
  if (process.argv.includes('--sweep')) return sweepRegions(regions);
  const n = Number(arg('n', '20'));
  const unguided = given('unguided');
  const sd = given('sd-dir');
  const sagScale = given('sag') ? Number(arg('sag', '')) : undefined;
  const pipeline = sd
    ? await loadSdPipeline({ sdDir: arg('sd-dir', ''), clipEncoder: arg('clip-encoder', ''), clipInputSize: Number(arg('clip-input-size', '224')), encoderFile: arg('encoder', ''),
        clipModel: arg('clip-model', ''), size: Number(arg('size', '512')), steps: Number(arg('steps', '50')), sagScale })
    : await loadSyntheticPipeline();
  console.log(pipeline.describe());
  console.log(`run-regions: ${n} images per region (${regions.join(', ')}${unguided ? ', unguided' : ''}) -> ${arg('out', 'outputs/braindive-runs')}`);
  const bar = progress({ label: 'braindive runs', total: n * (regions.length + (unguided ? 1 : 0)) });
  const r = await runRegions({ pipeline, outDir: arg('out', 'outputs/braindive-runs'), regions, n, scale: Number(arg('scale', sd ? '130' : '10')), steps: Number(arg('steps', sd ? '50' : '20')),
    seed0: Number(arg('seed', '0')), batch: Number(arg('batch', sd ? '1' : '8')), unguided, sagScale, onImage: (reg, i, skipped) => bar.tick(1, `${reg} ${i}${skipped ? ' (skipped)' : ''}`) });
  bar.done();
  console.log(JSON.stringify(r));
  await pipeline.dispose();
})().catch((e) => {
  console.error(e instanceof Error && (e.name === 'FolderLockedError' || e.name === 'SweepError') ? e.message : e);
  process.exit(e && (e as Error).name === 'SweepError' ? 2 : 1);
});
