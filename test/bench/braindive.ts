/**
 * Benchmark: seconds per guided (and unguided) image in the synthetic world (64^2 PCA-latent diffusion,
 * MobileNetV2 voxel encoder, guidance through the denoiser at scale 10), on the backend initBackend picks,
 * sampled one at a time and in batches of 8. Reports the process's peak resident memory too. In the same run, the
 * same loop in PyTorch CPU (test/bench/braindive_reference.py, Debian python3-torch, 2 threads) gives
 * ratio = brainnet seconds / PyTorch seconds per guided image (lower is better); without torch the ratio is null.
 *   npm run bench -- braindive [--steps 20] [--n 8] [--sag 0.75]
 * The synthetic world's denoiser has no self-attention: asked for SAG (--sag), it says so in one line and samples
 * without it (`npm run bench -- sag` times SAG on the tiny SD model).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { initBackend, loadSyntheticPipeline } from 'brainnet';
import { SYNTHETIC_NO_SAG } from 'brainnet/braindive';

/** Runs the benchmark and returns its JSON summary. */
export async function run(args: string[] = []): Promise<Record<string, unknown>> {
  const get = (k: string, d: number) => {
    const i = args.indexOf(`--${k}`);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const steps = get('steps', 20), n = get('n', 8);
  const sagArg = args[args.indexOf('--sag') + 1];
  const sagScale = args.includes('--sag') ? (sagArg && !sagArg.startsWith('--') ? Number(sagArg) : 0.75) : undefined;
  const backend = await initBackend();
  const pipeline = await loadSyntheticPipeline();
  const seeds = Array.from({ length: n }, (_, i) => i);
  const time = async (scale: number, batch: number) => {
    const t = Date.now();
    (await pipeline.generate({ region: 'FFA', scale, seeds, steps, batch, sagScale })).images.dispose();
    return (Date.now() - t) / 1000 / n;
  };
  const unguided = await time(0, 8);
  const guided1 = await time(10, 1);
  const guided8 = await time(10, 8);
  const ref = spawnSync('/usr/bin/python3', [path.join(__dirname, 'braindive_reference.py'), '--steps', String(steps), '--n', String(n), '--size', String(pipeline.fx.inputSize)], { encoding: 'utf8' });
  const torch = ref.status === 0 ? JSON.parse(ref.stdout.trim().split('\n').pop()!) : { error: `python3 with torch failed (${ref.status ?? ref.error?.message}): ${(ref.stderr || '').split('\n').slice(-3).join(' ')}; install Debian python3-torch` };
  const tb = (torch as { secondsPerGuidedImage?: { batch1: number; batch8: number } }).secondsPerGuidedImage;
  const out = {
    bench: 'braindive', backend: backend.name, model: pipeline.model.kind, size: 64, features: pipeline.fx.name, scoreSize: pipeline.fx.inputSize, steps, images: n,
    secondsPerGuidedImage: { batch1: +guided1.toFixed(2), batch8: +guided8.toFixed(2) }, secondsPerGuidedStep: +(guided8 / steps).toFixed(3),
    secondsPerUnguidedImage: +unguided.toFixed(2), peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    pytorchCpu: torch,
    ...(sagScale !== undefined ? { sag: SYNTHETIC_NO_SAG } : {}),
    ratio: tb ? { batch1: +(guided1 / tb.batch1).toFixed(2), batch8: +(guided8 / tb.batch8).toFixed(2) } : null,
  };
  console.log(JSON.stringify(out));
  return out;
}

if (require.main === module) void run(process.argv.slice(2));
