/**
 * Trains the synthetic world's latent diffusion model (lib/diffusion/pca-latent.ts): renders
 * categorised stimuli (faces, bodies, places, words, food), fits the PCA latent once (kept in the
 * checkpoint), then trains the residual-MLP denoiser (v-prediction, AdamW, EMA of the weights).
 * Resumable: every --every steps it checkpoints (lib/diffusion/trainer.ts); batches and noise derive
 * from (seed, step). Exports the EMA weights plus the PCA to --export. Uses initBackend(), so a GPU
 * backend is used when present.
 *
 *   npx tsx data-prep/braindive/train-latent-diffusion.ts --steps 6000 --export models/synthetic-diffusion-64
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, tf } from 'brainnet';
import { Rng, fitPca } from 'brainnet/core';
import { acquireFolderLock, writeFileAtomicSync } from 'brainnet/io';
import { renderCategorisedSet } from 'brainnet/synthetic';
import {
  countParams, DEFAULT_LATENT_CONFIG, PIXEL_SCHEDULE, initLatentParams, latentDiffusionLoss, encodeLatent, makeBetas,
  alphasCumprod, freshTrainState, trainLoop, saveTrainState, loadTrainState, loadParams, saveParams, type PcaLatent,
} from 'brainnet/diffusion';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  const steps = Number(arg('steps', '6000'));
  const batch = Number(arg('batch', '256'));
  const lr = Number(arg('lr', '1e-3'));
  const seed = Number(arg('seed', '0'));
  const nImages = Number(arg('images', '10000'));
  const emaDecay = Number(arg('ema', '0.999'));
  const every = Number(arg('every', '250'));
  const ckpt = arg('ckpt', 'data/braindive/latent-ckpt');
  const exportDir = arg('export', 'models/synthetic-diffusion-64');
  const cfg = { ...DEFAULT_LATENT_CONFIG, k: Number(arg('k', String(DEFAULT_LATENT_CONFIG.k))), width: Number(arg('width', String(DEFAULT_LATENT_CONFIG.width))), blocks: Number(arg('blocks', String(DEFAULT_LATENT_CONFIG.blocks))) };
  const schedule = { ...PIXEL_SCHEDULE, predictionType: 'v_prediction' as const };
  const choice = await initBackend();
  console.log(`backend: ${choice.name}`);
  // the checkpoint and export folders stay locked until this process exits: a second run into them fails at once, naming this one
  await acquireFolderLock(ckpt, { command: 'train-latent-diffusion (checkpoints)' });
  await acquireFolderLock(exportDir, { command: 'train-latent-diffusion (export)' });
  const S = cfg.size, D = S * S * 3, K = cfg.k;

  // data and the PCA latent (fitted once, then read from the checkpoint)
  let t0 = Date.now();
  const data = renderCategorisedSet(nImages, S, seed + 1);
  const X = new Float32Array(data.pixels.length);
  for (let i = 0; i < X.length; i++) X[i] = data.pixels[i]! / 127.5 - 1;
  console.log(`data: ${nImages} categorised images at ${S}^2 (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const pcaFile = path.join(ckpt, 'pca.safetensors');
  let pca: PcaLatent;
  if (fs.existsSync(pcaFile)) {
    const p = await loadParams(pcaFile);
    pca = { mean: p['pca.mean'] as tf.Tensor1D, basis: p['pca.basis'] as tf.Tensor2D };
  } else {
    t0 = Date.now();
    const nFit = Math.min(nImages, Number(arg('pca-images', '4000')));
    const fit = fitPca({ data: X.subarray(0, nFit * D), shape: [nFit, D] }, K, { seed });
    const basis = new Float32Array(K * D);
    for (let c = 0; c < K; c++) {
      const sd = Math.sqrt(fit.variances[c]!);
      for (let j = 0; j < D; j++) basis[c * D + j] = fit.components[c * D + j]! * sd;
    }
    pca = { mean: tf.tensor1d(Float32Array.from(fit.mean)), basis: tf.tensor2d(basis, [K, D]) };
    await saveParams(pcaFile, { 'pca.mean': pca.mean, 'pca.basis': pca.basis });
    console.log(`PCA: ${K} components of ${D} pixels from ${nFit} images (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const Z = new Float32Array(nImages * K);
  for (let i = 0; i < nImages; i += 500) {
    const n = Math.min(500, nImages - i);
    const z = tf.tidy(() => encodeLatent(pca, tf.tensor4d(X.subarray(i * D, (i + n) * D), [n, S, S, 3])));
    Z.set(z.dataSync(), i * K);
    z.dispose();
  }

  const meta = { unet: cfg, prediction: schedule.predictionType, seed, batch, images: nImages };
  const st = (await loadTrainState(ckpt, meta)) ?? freshTrainState(initLatentParams(cfg, seed));
  if (st.step > 0) console.log(`resumed at step ${st.step}`);
  console.log(`denoiser parameters: ${countParams(st.params)}`);
  const ab = alphasCumprod(makeBetas(schedule as Parameters<typeof makeBetas>[0]));
  const T = ab.length;

  const save = async () => {
    await saveTrainState(ckpt, st, meta);
    fs.mkdirSync(exportDir, { recursive: true });
    await saveParams(path.join(exportDir, 'model.safetensors'), { ...st.ema, 'pca.mean': pca.mean, 'pca.basis': pca.basis }, { format: 'brainnet-pca-latent-diffusion' });
    const training = { steps: st.step, batch, lr, emaDecay, images: nImages, seed, backend: choice.name, data: `renderCategorisedSet(${nImages}, ${S}, ${seed + 1})` };
    writeFileAtomicSync(path.join(exportDir, 'config.json'), JSON.stringify({ kind: 'pca-latent', latent: cfg, schedule, training, losses: st.losses }, null, 1));
  };

  const z0 = new Float32Array(batch * K);
  const noise = new Float32Array(batch * K);
  await trainLoop(st, {
    steps, every, label: 'train latent diffusion', adamw: { lr, emaDecay }, save,
    lossOf: (p, step) => {
      const rng = new Rng(seed * 1000003 + step);
      const ts: number[] = [];
      for (let b = 0; b < batch; b++) {
        const i = rng.int(0, nImages);
        z0.set(Z.subarray(i * K, (i + 1) * K), b * K);
        ts.push(rng.int(0, T));
      }
      for (let i = 0; i < noise.length; i++) noise[i] = rng.normal();
      return latentDiffusionLoss(p, tf.tensor2d(z0, [batch, K]), tf.tensor2d(noise, [batch, K]), ts, ab, cfg, 'v_prediction');
    },
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
