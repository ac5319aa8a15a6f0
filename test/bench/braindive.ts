/**
 * Benchmark: seconds per guided (and unguided) image in the synthetic world (64^2 PCA-latent diffusion,
 * MobileNetV2 voxel encoder, guidance through the denoiser at scale 10), on the backend initBackend picks.
 * Reports the process's peak resident memory too.
 *   npm run bench -- braindive [--steps 10] [--n 2]
 */
import { initBackend, loadSyntheticBrainDiVE, generatePixel } from 'brainnet';

/** Runs the benchmark and returns its JSON summary. */
export async function run(args: string[] = []): Promise<Record<string, unknown>> {
  const get = (k: string, d: number) => {
    const i = args.indexOf(`--${k}`);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const steps = get('steps', 10), n = get('n', 2);
  const backend = await initBackend();
  const setup = await loadSyntheticBrainDiVE();
  const seeds = Array.from({ length: n }, (_, i) => i);
  let t = Date.now();
  (await generatePixel({ ...setup, region: 'FFA', scale: 0, seeds, steps })).images.dispose();
  const unguided = (Date.now() - t) / 1000 / n;
  t = Date.now();
  (await generatePixel({ ...setup, region: 'FFA', scale: 10, seeds, steps })).images.dispose();
  const guided = (Date.now() - t) / 1000 / n;
  const out = { bench: 'braindive', backend: backend.name, model: setup.model.kind, size: 64, steps, images: n, secondsPerGuidedImage: +guided.toFixed(2), secondsPerUnguidedImage: +unguided.toFixed(2), secondsPerGuidedStep: +(guided / steps).toFixed(3), peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) };
  console.log(JSON.stringify(out));
  return out;
}

if (require.main === module) void run(process.argv.slice(2));
