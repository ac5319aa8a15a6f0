/**
 * A latent diffusion model of the synthetic stimulus world that trains on a 2-core laptop: the latent is
 * the whitened top-k PCA coefficients of the 64 x 64 RGB stimuli (a linear autoencoder: encode = project,
 * decode = mean + z @ basis), and the denoiser is a residual MLP over the k-vector with a sinusoidal
 * timestep embedding. Decoding is differentiable, so brain guidance reaches the latent exactly as it does
 * through Stable Diffusion's VAE.
 *
 * Why not pixels: the pixel UNet (pixel-diffusion.ts) needs far more samples than 2 CPU cores see in an
 * hour; 128 PCA components keep 82 % of the pixel variance and the 5-way classifier still labels 91 % of
 * their reconstructions correctly (92 % on the originals).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import { makeScheduler, modelX0AndEps, type PredictionType, type SchedulerConfig } from './schedulers/index.js';
import { guidanceInput } from './guidance.js';
import { dense, timestepEmbedding, PIXEL_SCHEDULE, type Params } from './pixel-unet.js';
import { readModelWeights } from './model-folder.js';

/** Architecture of the latent model. */
export interface LatentDiffusionConfig {
  /** Image side in pixels (64). */
  size: number;
  /** Latent size: PCA components kept. */
  k: number;
  /** MLP width. */
  width: number;
  /** Residual blocks. */
  blocks: number;
  /** Timestep embedding width. */
  embDim: number;
}

/** Default configuration (128 components, width 512, 4 blocks: about 2.4M denoiser parameters). */
export const DEFAULT_LATENT_CONFIG: LatentDiffusionConfig = { size: 64, k: 128, width: 512, blocks: 4, embDim: 128 };

/** The PCA latent: mean [D] and basis [k, D] (components times their standard deviations), D = size*size*3 (HWC, pixels in [-1, 1]). */
export interface PcaLatent {
  mean: tf.Tensor1D;
  basis: tf.Tensor2D;
}

/** Shapes of the denoiser's parameters, by name (dense [In, Out]). */
export function latentParamShapes(cfg: LatentDiffusionConfig = DEFAULT_LATENT_CONFIG): Record<string, number[]> {
  const { k, width: W, embDim: E } = cfg;
  const s: Record<string, number[]> = { 'temb.w1': [E, E], 'temb.b1': [E], 'temb.w2': [E, E], 'temb.b2': [E], 'in.w': [k, W], 'in.b': [W] };
  for (let i = 0; i < cfg.blocks; i++) {
    const n = `b${i}`;
    Object.assign(s, { [`${n}.ln.g`]: [W], [`${n}.ln.b`]: [W], [`${n}.fc1.w`]: [W, W], [`${n}.fc1.b`]: [W], [`${n}.temb.w`]: [E, W], [`${n}.temb.b`]: [W], [`${n}.fc2.w`]: [W, W], [`${n}.fc2.b`]: [W] });
  }
  Object.assign(s, { 'out.ln.g': [W], 'out.ln.b': [W], 'out.w': [W, k], 'out.b': [k] });
  return s;
}

/** Fresh denoiser parameters: He-normal weights (each block's fc2 and the output at zero), unit LayerNorm gains, zero biases; seeded. */
export function initLatentParams(cfg: LatentDiffusionConfig = DEFAULT_LATENT_CONFIG, seed = 0): Params {
  const rng = new Rng(seed);
  const out: Params = {};
  for (const [name, shape] of Object.entries(latentParamShapes(cfg))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (name.endsWith('.g')) v.fill(1);
    else if (/\.w\d?$/.test(name) && !name.endsWith('fc2.w') && name !== 'out.w') {
      const std = Math.sqrt(2 / shape[0]!);
      for (let i = 0; i < n; i++) v[i] = rng.normal() * std;
    }
    out[name] = tf.tensor(v, shape, 'float32');
  }
  return out;
}

function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, 1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b) as tf.Tensor2D;
}

const silu = <T extends tf.Tensor>(x: T): T => tf.mul(x, tf.sigmoid(x)) as T;
const lin = (x: tf.Tensor2D, p: Params, n: string) => dense(x, p[`${n}.w`] as tf.Tensor2D, p[`${n}.b`] as tf.Tensor1D);

/** Denoiser output (epsilon or v, as trained), z [B, k] and timesteps [B] -> [B, k]; differentiable in z and the parameters. */
export function latentDenoiser(p: Params, z: tf.Tensor2D, ts: ArrayLike<number>, cfg: LatentDiffusionConfig = DEFAULT_LATENT_CONFIG): tf.Tensor2D {
  return tf.tidy(() => {
    let emb = silu(dense(timestepEmbedding(ts, cfg.embDim), p['temb.w1'] as tf.Tensor2D, p['temb.b1'] as tf.Tensor1D));
    emb = silu(dense(emb, p['temb.w2'] as tf.Tensor2D, p['temb.b2'] as tf.Tensor1D));
    let h = lin(z, p, 'in');
    for (let i = 0; i < cfg.blocks; i++) {
      const n = `b${i}`;
      let a = lin(silu(layerNorm(h, p[`${n}.ln.g`]!, p[`${n}.ln.b`]!)), p, `${n}.fc1`);
      a = silu(tf.add(a, lin(emb, p, `${n}.temb`)) as tf.Tensor2D);
      h = tf.add(h, lin(a, p, `${n}.fc2`)) as tf.Tensor2D;
    }
    return lin(silu(layerNorm(h, p['out.ln.g']!, p['out.ln.b']!)), p, 'out');
  });
}

/** Images x [B, H, W, 3] (HWC, in [-1, 1]) -> whitened latents [B, k]. */
export function encodeLatent(pca: PcaLatent, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const flat = tf.sub(tf.reshape(x, [x.shape[0], -1]), pca.mean);
    // basis rows are components * sd, so z = (x - mean) . component / sd = (x - mean) . row / sd^2
    const sq = tf.sum(tf.square(pca.basis), 1);
    return tf.div(tf.matMul(flat, pca.basis, false, true), sq) as tf.Tensor2D;
  });
}

/** Latents [B, k] -> images [B, 3, H, W] (NCHW, in [-1, 1] before clipping); differentiable. */
export function decodeLatent(pca: PcaLatent, z: tf.Tensor2D, size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const flat = tf.add(tf.matMul(z, pca.basis), pca.mean);
    return tf.transpose(tf.reshape(flat, [z.shape[0], size, size, 3]), [0, 3, 1, 2]) as tf.Tensor4D;
  });
}

/** Projects images onto the PCA latent and back: uint8 HWC [n, side, side, 3] -> the same, as the latent model can draw them. */
export function reconstructThroughLatent(pca: PcaLatent, pixels: Uint8Array, n: number, side: number, batch = 64): Uint8Array {
  const per = side * side * 3;
  if (pixels.length !== n * per) throw new RangeError(`reconstructThroughLatent: expected ${n} x ${side} x ${side} x 3 = ${n * per} bytes, got ${pixels.length}`);
  if (pca.mean.shape[0] !== per) throw new RangeError(`reconstructThroughLatent: the PCA latent is for ${pca.mean.shape[0]} values per image, the images have ${per}`);
  const out = new Uint8Array(pixels.length);
  for (let b = 0; b < n; b += batch) {
    const m = Math.min(batch, n - b);
    const rec = tf.tidy(() => {
      const x = tf.sub(tf.div(tf.tensor4d(pixels.subarray(b * per, (b + m) * per), [m, side, side, 3], 'float32'), 127.5), 1) as tf.Tensor4D;
      const y = tf.transpose(decodeLatent(pca, encodeLatent(pca, x), side), [0, 2, 3, 1]);
      return tf.clipByValue(tf.round(tf.mul(tf.add(y, 1), 127.5)), 0, 255).dataSync();
    });
    out.set(Uint8Array.from(rec), b * per);
  }
  return out;
}

/**
 * The images that BrainDiVE's guidance scores while this model samples, made from real images: for each image
 * [n, side, side, 3] (uint8 HWC) a timestep t (uniform in [tMin, tMax], seeded), z_t = sqrt(a) z0 + sqrt(1-a) noise,
 * the denoiser's x0 estimate, and decode(x0hat sqrt(1-a) + z_t (1 - sqrt(1-a))) as in sampleGuided -> uint8 HWC, and t [n].
 * An encoder fitted on these (with the responses to the original images) has a gradient that points at category
 * content at every sampling step, not only at the last ones.
 */
export function guidanceViews(model: LatentDiffusionModel, pixels: Uint8Array, n: number, side: number, opts: { seed: number; tMin?: number; tMax?: number; batch?: number }): { pixels: Uint8Array; t: Int32Array } {
  const per = side * side * 3;
  if (pixels.length !== n * per) throw new RangeError(`guidanceViews: expected ${n} x ${side} x ${side} x 3 = ${n * per} bytes, got ${pixels.length}`);
  if (side !== model.config.size) throw new RangeError(`guidanceViews: the model draws ${model.config.size}^2 images, the images are ${side}^2`);
  const ab = makeScheduler('ddim', model.schedule).alphasCumprod;
  const tMin = opts.tMin ?? 0, tMax = opts.tMax ?? ab.length - 1;
  if (!(tMin >= 0 && tMax < ab.length && tMin <= tMax)) throw new RangeError(`guidanceViews: need 0 <= tMin <= tMax < ${ab.length}, got ${tMin}, ${tMax}`);
  const prediction = model.schedule.predictionType ?? 'epsilon';
  const rng = new Rng(opts.seed);
  const ts = Int32Array.from({ length: n }, () => rng.int(tMin, tMax + 1));
  const K = model.config.k;
  const out = new Uint8Array(pixels.length);
  const batch = opts.batch ?? 64;
  for (let b = 0; b < n; b += batch) {
    const m = Math.min(batch, n - b);
    const noise = Float32Array.from({ length: m * K }, () => rng.normal());
    const img = tf.tidy(() => {
      const x = tf.sub(tf.div(tf.tensor4d(pixels.subarray(b * per, (b + m) * per), [m, side, side, 3], 'float32'), 127.5), 1) as tf.Tensor4D;
      const z0 = encodeLatent(model.pca, x);
      const a = Array.from(ts.subarray(b, b + m), (t) => ab[t]!);
      const sa = tf.tensor2d(a.map(Math.sqrt), [m, 1]);
      const sb = tf.tensor2d(a.map((v) => Math.sqrt(1 - v)), [m, 1]);
      const zt = tf.add(tf.mul(z0, sa), tf.mul(tf.tensor2d(noise, [m, K]), sb)) as tf.Tensor2D;
      const sample = guidanceInput(zt, latentDenoiser(model.params, zt, ts.subarray(b, b + m), model.config), sa, sb, prediction);
      const y = tf.transpose(decodeLatent(model.pca, sample, side), [0, 2, 3, 1]);
      return tf.clipByValue(tf.round(tf.mul(tf.add(y, 1), 127.5)), 0, 255).dataSync();
    });
    out.set(Uint8Array.from(img), b * per);
  }
  return { pixels: out, t: ts };
}

/** Training loss for one batch: clean latents z0 [B, k], noise [B, k], timesteps [B]; MSE of the prediction (epsilon or v). */
export function latentDiffusionLoss(p: Params, z0: tf.Tensor2D, noise: tf.Tensor2D, ts: number[], alphaBar: Float64Array, cfg: LatentDiffusionConfig, prediction: PredictionType = 'v_prediction'): tf.Scalar {
  const B = ts.length;
  const sa = tf.tensor2d(ts.map((t) => Math.sqrt(alphaBar[t]!)), [B, 1]);
  const sb = tf.tensor2d(ts.map((t) => Math.sqrt(1 - alphaBar[t]!)), [B, 1]);
  const zt = tf.add(tf.mul(z0, sa), tf.mul(noise, sb)) as tf.Tensor2D;
  const out = latentDenoiser(p, zt, ts, cfg);
  const target = prediction === 'v_prediction' ? tf.sub(tf.mul(noise, sa), tf.mul(z0, sb)) : noise;
  return tf.mean(tf.square(tf.sub(out, target))) as tf.Scalar;
}

/** A loaded latent diffusion model: config, denoiser parameters, the PCA latent and its schedule. */
export interface LatentDiffusionModel {
  kind: 'pca-latent';
  config: LatentDiffusionConfig;
  params: Params;
  pca: PcaLatent;
  schedule: Partial<SchedulerConfig>;
  dir?: string;
  meta: Record<string, unknown>;
}

/** The latent model as guidance.ts's UNetFn: latents [B, k, 1, 1] -> eps [B, k, 1, 1], whatever the denoiser predicts. */
export function latentUNetFn(model: LatentDiffusionModel): (latents: tf.Tensor4D, t: number) => tf.Tensor4D {
  const ab = makeScheduler('ddim', model.schedule).alphasCumprod;
  const prediction = model.schedule.predictionType ?? 'epsilon';
  return (latents, t) =>
    tf.tidy(() => {
      const B = latents.shape[0];
      const z = tf.reshape(latents, [B, model.config.k]) as tf.Tensor2D;
      const out = latentDenoiser(model.params, z, new Array<number>(B).fill(t), model.config);
      return tf.reshape(modelX0AndEps(out, z, ab[Math.round(t)]!, prediction)[1], latents.shape) as tf.Tensor4D;
    });
}

/** Loads a latent model folder (config.json with kind 'pca-latent', model.safetensors with the denoiser and pca.mean / pca.basis). */
export async function loadLatentDiffusion(dir: string, json: Record<string, unknown>): Promise<LatentDiffusionModel> {
  const config = { ...DEFAULT_LATENT_CONFIG, ...(json.latent as Partial<LatentDiffusionConfig>) };
  const schedule = { ...PIXEL_SCHEDULE, ...(json.schedule as Partial<SchedulerConfig>) };
  const D = config.size * config.size * 3;
  const got = await readModelWeights(dir, { ...latentParamShapes(config), 'pca.mean': [D], 'pca.basis': [config.k, D] }, 'retrain with data-prep/braindive/train-latent-diffusion.ts');
  const pca = { mean: got['pca.mean'] as tf.Tensor1D, basis: got['pca.basis'] as tf.Tensor2D };
  delete got['pca.mean'];
  delete got['pca.basis'];
  return { kind: 'pca-latent', config, params: got, pca, schedule, dir, meta: json };
}
