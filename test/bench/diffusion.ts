/**
 * `npm run bench -- diffusion [--sizes 8,64] [--steps 3] [--backend cpu|wasm] [--model DIR]`:
 * seconds per brain-guided step, the share of it taken by the guidance gradient, and peak memory.
 *
 * By default it runs the tiny random SD model of the tests (test/fixtures/diffusion/tiny-sd: the same
 * block types as SD, far fewer channels) at latent sides 8 (64^2 images) and 64 (512^2 images, the
 * SD-2.1-base size). Point --model at a real SD-2.1-base export to time the real thing. The score is a
 * small fixed random conv net on the 224^2 CLIP-normalised image (a stand-in for the brain encoder).
 * Forward passes run through onnxruntime-node; the gradient through the differentiable executor on tfjs.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from 'brainnet';
import { StableDiffusionOnnx, sampleGuided, makeScheduler, type ScoreFn } from 'brainnet/diffusion';

function arg(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

/** A fixed random conv "brain encoder": [B,3,224,224] -> ROI mean [B]. */
function toyScore(): { score: ScoreFn; dispose(): void } {
  const w1 = tf.randomNormal([8, 8, 3, 16], 0, 0.1, 'float32', 1) as tf.Tensor4D; // 8x8 patches, stride 8
  const w2 = tf.randomNormal([16, 32], 0, 0.3, 'float32', 2) as tf.Tensor2D;
  const score: ScoreFn = (img) =>
    tf.tidy(() => {
      const x = tf.transpose(img, [0, 2, 3, 1]) as tf.Tensor4D;
      const h = tf.relu(tf.conv2d(x, w1, 8, 'valid')); // [B,28,28,16]
      const v = tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, w2); // [B,32] "voxels"
      return tf.mean(v, 1);
    });
  return { score, dispose: () => tf.dispose([w1, w2]) };
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const modelDir = arg(args, 'model', path.join(__dirname, '../fixtures/diffusion/tiny-sd'));
  const sizes = arg(args, 'sizes', '8,64').split(',').map(Number);
  const steps = Number(arg(args, 'steps', '3'));
  const forced = arg(args, 'backend', '');
  const choice = forced ? (await tf.setBackend(forced), { name: forced }) : await initBackend({ log: null });
  await tf.ready();
  const sd = await StableDiffusionOnnx.load(modelDir);
  const cond = await sd.encodePrompt(['']);
  const toy = toyScore();
  const results: Record<string, unknown>[] = [];
  for (const side of sizes) {
    const load0 = performance.now();
    const { unet, decode, unetGraph, vaeGraph } = await sd.differentiable({ batch: 1, height: side, width: side });
    const loadS = (performance.now() - load0) / 1000;
    const common = {
      unet, decode,
      unetForward: (x: tf.Tensor4D, t: number, c: tf.Tensor3D | null) => sd.unet(x, t, c!),
      decodeForward: (z: tf.Tensor4D) => sd.decode(z),
      scheduler: makeScheduler('dpmpp2m', sd.layout.scheduler), latentShape: [sd.latentChannels, side, side] as [number, number, number],
      seed: 1, cond, progress: false as const, vaeScalingFactor: sd.layout.vaeScalingFactor,
    };
    const row: Record<string, unknown> = { latentSide: side, imageSide: side * 8, executorLoadSeconds: +loadS.toFixed(2) };
    let peakTfBytes = 0;
    for (const mode of ['none', 'x0', 'full'] as const) {
      // one warm-up step, then `steps` timed steps (per-step times from the callback)
      const times: number[] = [];
      let last = performance.now();
      const r = await sampleGuided({
        ...common, steps: steps + 1,
        ...(mode === 'none' ? {} : { score: toy.score, guidanceScale: 100, gradient: mode }),
        callback: () => {
          const now = performance.now();
          times.push((now - last) / 1000);
          peakTfBytes = Math.max(peakTfBytes, tf.memory().numBytes);
          last = performance.now();
        },
      });
      tf.dispose([r.images, r.latents]);
      const timed = times.slice(1);
      row[`secondsPerStep_${mode}`] = +(timed.reduce((a, b) => a + b, 0) / timed.length).toFixed(3);
    }
    const none = row['secondsPerStep_none'] as number;
    row['gradientShare_x0'] = +(1 - none / (row['secondsPerStep_x0'] as number)).toFixed(3);
    row['gradientShare_full'] = +(1 - none / (row['secondsPerStep_full'] as number)).toFixed(3);
    row['peakTfBytesBetweenSteps'] = peakTfBytes;
    row['maxRssMB'] = Math.round(process.resourceUsage().maxRSS / 1024);
    unetGraph.dispose();
    vaeGraph.dispose();
    results.push(row);
  }
  toy.dispose();
  cond.dispose();
  await sd.dispose();
  return {
    model: modelDir,
    tfBackend: tf.getBackend(),
    chosen: choice.name,
    note: 'secondsPerStep_none: onnxruntime UNet forward + scheduler; _x0: + decoder and score forward/backward through the executor (eps constant); _full: + UNet forward/backward through the executor. gradientShare = 1 - none/guided. maxRssMB is the process peak so far (cumulative).',
    results,
  };
}
