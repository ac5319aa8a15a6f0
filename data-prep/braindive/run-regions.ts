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
 */
import { loadSyntheticPipeline, loadSdPipeline, progress } from 'brainnet';
import { runRegions } from 'brainnet/braindive';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const given = (name: string) => process.argv.includes(`--${name}`);

(async () => {
  const regions = arg('regions', 'FFA,PPA,EBA,VWFA,food').split(',');
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
  console.error(e instanceof Error && e.name === 'FolderLockedError' ? e.message : e);
  process.exit(1);
});
