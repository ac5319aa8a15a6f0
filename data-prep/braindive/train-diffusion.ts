/**
 * Trains the small pixel diffusion model of the synthetic world (lib/diffusion/pixel-unet.ts)
 * on categorised synthetic stimuli (faces, bodies, places, words, food), epsilon prediction, AdamW,
 * with an EMA of the weights. Resumable: every --every steps it writes a checkpoint (params, EMA,
 * AdamW moments, the step and the loss history in one safetensors file, state.safetensors; the data order and
 * noise are derived from (seed, step), so the step is the RNG position; lib/diffusion/trainer.ts). Uses initBackend(), so it
 * runs on a GPU backend when one is available and on wasm otherwise.
 *
 *   npx tsx data-prep/braindive/train-diffusion.ts --steps 2000 --batch 16 \
 *       --ckpt data/braindive/diffusion-ckpt --export models/synthetic-diffusion-64
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, tf } from 'brainnet';
import { Rng } from 'brainnet/core';
import { acquireFolderLock, writeFileAtomicSync } from 'brainnet/io';
import { renderCategorisedSet } from 'brainnet/synthetic';
import {
  initParams, countParams, diffusionLoss, saveParams, DEFAULT_PIXEL_UNET, PIXEL_SCHEDULE, makeBetas, alphasCumprod,
  freshTrainState, trainLoop, saveTrainState, loadTrainState, type PredictionType,
} from 'brainnet/diffusion';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  const steps = Number(arg('steps', '2000'));
  const batch = Number(arg('batch', '16'));
  const lr = Number(arg('lr', '5e-4'));
  const seed = Number(arg('seed', '0'));
  const nImages = Number(arg('images', '3000'));
  const emaDecay = Number(arg('ema', '0.995'));
  const every = Number(arg('every', '25'));
  const ckpt = arg('ckpt', 'data/braindive/diffusion-ckpt');
  const exportDir = arg('export', 'models/synthetic-diffusion-64');
  const channels = arg('channels', DEFAULT_PIXEL_UNET.channels.join(',')).split(',').map(Number) as [number, number, number];
  const cfg = { ...DEFAULT_PIXEL_UNET, channels };
  const prediction = arg('prediction', String(PIXEL_SCHEDULE.predictionType)) as PredictionType;
  if (prediction !== 'epsilon' && prediction !== 'v_prediction') throw new Error(`--prediction must be epsilon or v_prediction, got ${prediction}`);
  const schedule = { ...PIXEL_SCHEDULE, predictionType: prediction };
  const choice = await initBackend();
  console.log(`backend: ${choice.name}`);
  // the checkpoint and export folders stay locked until this process exits: a second run into them fails at once, naming this one
  await acquireFolderLock(ckpt, { command: 'train-diffusion (checkpoints)' });
  await acquireFolderLock(exportDir, { command: 'train-diffusion (export)' });

  const data = renderCategorisedSet(nImages, cfg.size, seed + 1);
  const S = cfg.size;
  const px = new Float32Array(data.pixels.length);
  for (let i = 0; i < px.length; i++) px[i] = data.pixels[i]! / 127.5 - 1;
  console.log(`data: ${nImages} categorised images at ${S}^2`);

  const meta = { unet: cfg, prediction, seed, batch, images: nImages };
  const st = (await loadTrainState(ckpt, meta)) ?? freshTrainState(initParams(cfg, seed));
  if (st.step > 0) console.log(`resumed at step ${st.step}`);
  console.log(`parameters: ${countParams(st.params)}`);
  const ab = alphasCumprod(makeBetas(schedule as Parameters<typeof makeBetas>[0]));
  const T = ab.length;

  const save = async () => {
    await saveTrainState(ckpt, st, meta);
    fs.mkdirSync(exportDir, { recursive: true });
    await saveParams(path.join(exportDir, 'model.safetensors'), st.ema, { format: 'brainnet-pixel-diffusion' });
    writeFileAtomicSync(
      path.join(exportDir, 'config.json'),
      JSON.stringify({ kind: 'pixel-unet', unet: cfg, schedule, training: { steps: st.step, batch, lr, emaDecay, images: nImages, seed, backend: choice.name }, losses: st.losses }, null, 1),
    );
  };

  const x0 = new Float32Array(batch * S * S * 3);
  const noise = new Float32Array(batch * S * S * 3);
  await trainLoop(st, {
    steps, every, label: 'train diffusion', adamw: { lr, emaDecay }, save,
    lossOf: (p, step) => {
      const rng = new Rng(seed * 1000003 + step);
      const ts: number[] = [];
      for (let b = 0; b < batch; b++) {
        const i = rng.int(0, nImages);
        x0.set(px.subarray(i * S * S * 3, (i + 1) * S * S * 3), b * S * S * 3);
        ts.push(rng.int(0, T));
      }
      for (let i = 0; i < noise.length; i++) noise[i] = rng.normal();
      return diffusionLoss(p, tf.tensor4d(x0, [batch, S, S, 3]), tf.tensor4d(noise, [batch, S, S, 3]), ts, ab, cfg, prediction);
    },
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
