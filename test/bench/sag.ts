/**
 * `npm run bench -- sag [--sizes 8,64] [--steps 2] [--model DIR] [--modes none,sag,x0,x0+sag,full,full+sag] [--threads 2]`:
 * the cost of self-attention guidance in a brain-guided step. Seconds per step of sampleGuided without and with SAG
 * (0.75), unguided and with brain guidance ('x0' and 'full' gradients), their ratio (sagCost = with / without), and
 * the same step in PyTorch CPU in the same run (test/bench/sag_reference.py: the tiny SD networks the fixture was
 * exported from, 2 threads), as ratio = brainnet seconds / PyTorch seconds.
 *
 * By default on the tiny random SD model of the tests (test/fixtures/diffusion/tiny-sd: SD's block types, a UNet with
 * its mid-block attention output) at latent sides 8 (64^2 images) and 64 (512^2, the SD-2.1-base size). --model
 * points at a real SD export whose UNet carries mid_attention_probs (data-prep/add-sag-output.py); then the PyTorch
 * reference, which only knows the tiny networks, is skipped. Forward passes (both SAG passes) run through
 * onnxruntime-node, the guidance gradient through the differentiable executor on the tfjs backend. The synthetic
 * world has no self-attention, so SAG does not apply there (`npm run bench -- braindive --sag` says so).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from 'brainnet';
import { StableDiffusionOnnx, sampleGuided, makeScheduler, type ScoreFn } from 'brainnet/diffusion';

function arg(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

/** The toy "brain encoder" of the diffusion bench: 8x8 stride-8 conv, 16 channels, ReLU, mean, 32 "voxels", mean. */
function toyScore(): { score: ScoreFn; dispose(): void } {
  const w1 = tf.randomNormal([8, 8, 3, 16], 0, 0.1, 'float32', 1) as tf.Tensor4D;
  const w2 = tf.randomNormal([16, 32], 0, 0.3, 'float32', 2) as tf.Tensor2D;
  const score: ScoreFn = (img) => tf.tidy(() => tf.mean(tf.matMul(tf.mean(tf.relu(tf.conv2d(tf.transpose(img, [0, 2, 3, 1]) as tf.Tensor4D, w1, 8, 'valid')), [1, 2]) as tf.Tensor2D, w2), 1));
  return { score, dispose: () => tf.dispose([w1, w2]) };
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const fixture = path.join(__dirname, '../fixtures/diffusion/tiny-sd');
  const modelDir = arg(args, 'model', fixture);
  const sizes = arg(args, 'sizes', '8,64').split(',').map(Number);
  const steps = Number(arg(args, 'steps', '2'));
  const modes = arg(args, 'modes', 'none,sag,x0,x0+sag,full,full+sag').split(',');
  const threads = arg(args, 'threads', '2'); // PyTorch's; on a loaded machine its OpenMP threads spin, and 1 is the fairer choice
  const choice = await initBackend({ log: null });
  const sd = await StableDiffusionOnnx.load(modelDir);
  sd.requireAttention();
  const cond = await sd.encodePrompt(['']);
  const toy = toyScore();
  const results: Record<string, number>[] = [];
  for (const side of sizes) {
    const { unet, decode, unetGraph, vaeGraph } = await sd.differentiable({ batch: 1, height: side, width: side });
    const row: Record<string, number> = { latentSide: side, imageSide: side * 8 };
    for (const mode of modes) {
      const gradient = mode.startsWith('full') ? 'full' : mode.startsWith('x0') ? 'x0' : null;
      const times: number[] = [];
      let last = performance.now();
      const r = await sampleGuided({
        unet, decode, unetForward: (x, t, c) => sd.unet(x, t, c!), decodeForward: (z) => sd.decode(z),
        unetWithAttention: (x, t, c) => sd.unetWithAttention(x, t, c!), sagScale: mode.endsWith('sag') ? 0.75 : 0,
        scheduler: makeScheduler('dpmpp2m', sd.layout.scheduler), steps: steps + 1, latentShape: [sd.latentChannels, side, side], seed: 1, cond, progress: false,
        vaeScalingFactor: sd.layout.vaeScalingFactor, ...(gradient ? { score: toy.score, guidanceScale: 100, gradient } : {}),
        callback: () => {
          const now = performance.now();
          times.push((now - last) / 1000);
          last = performance.now();
        },
      });
      tf.dispose([r.images, r.latents]);
      const timed = times.slice(1); // the first step warms up
      row[`secondsPerStep_${mode}`] = +(timed.reduce((a, b) => a + b, 0) / timed.length).toFixed(4);
    }
    for (const base of ['none', 'x0', 'full']) {
      const a = row[`secondsPerStep_${base}`], b = row[`secondsPerStep_${base === 'none' ? 'sag' : `${base}+sag`}`];
      if (a && b) row[`sagCost_${base}`] = +(b / a).toFixed(2);
    }
    unetGraph.dispose();
    vaeGraph.dispose();
    results.push(row);
  }
  toy.dispose();
  cond.dispose();
  await sd.dispose();
  // the same steps in PyTorch CPU, on the networks the tiny fixture was exported from
  let pytorchCpu: Record<string, unknown> | null = null;
  if (modelDir === fixture) {
    const ref = spawnSync('/usr/bin/python3', [path.join(__dirname, 'sag_reference.py'), '--sizes', sizes.join(','), '--steps', String(steps), '--modes', modes.join(','), '--threads', threads], { encoding: 'utf8' });
    pytorchCpu = ref.status === 0 ? JSON.parse(ref.stdout.trim().split('\n').pop()!) : { error: `python3 with torch failed (${ref.status ?? ref.error?.message}): ${(ref.stderr || '').split('\n').slice(-3).join(' ')}; install Debian python3-torch` };
    const rows = (pytorchCpu as { results?: Record<string, number>[] }).results;
    if (rows) {
      for (const [i, row] of results.entries()) {
        for (const mode of modes) {
          const theirs = rows[i]?.[`secondsPerStep_${mode}`];
          if (theirs) row[`ratio_${mode}`] = +(row[`secondsPerStep_${mode}`]! / theirs).toFixed(2);
        }
        for (const base of ['none', 'x0', 'full']) {
          const a = rows[i]?.[`secondsPerStep_${base}`], b = rows[i]?.[`secondsPerStep_${base === 'none' ? 'sag' : `${base}+sag`}`];
          if (a && b) rows[i]![`sagCost_${base}`] = +(b / a).toFixed(2);
        }
      }
    }
  }
  return {
    model: modelDir,
    tfBackend: tf.getBackend(),
    chosen: choice.name,
    sagScale: 0.75,
    note: 'secondsPerStep_<mode>: none = onnxruntime UNet forward + scheduler; sag = + SAG (blur in tfjs, a second onnxruntime UNet forward); x0 / full = + brain guidance (decoder and score, and for full the UNet, forward and backward through the executor); sagCost_<m> = seconds with SAG / without; ratio_<mode> = brainnet / PyTorch CPU seconds. The first of steps+1 steps is not timed.',
    results,
    pytorchCpu,
  };
}
