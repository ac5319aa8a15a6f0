/**
 * A small pixel-space diffusion model for the synthetic stimulus world (64 x 64 RGB, epsilon
 * prediction), written as plain tfjs ops over a flat parameter dictionary so that it trains on
 * every tfjs backend (the wasm backend has no Conv2DBackpropFilter, so the 3x3 convolution has a
 * hand-written filter gradient: im2col by nine shifted slices, an explicit transpose, one matmul).
 *
 * Architecture: 4x4 patchify (64^2x3 -> 16^2x48), a UNet over 16/8/4 with one ResNet block per
 * level (GroupNorm + SiLU + 3x3 conv, the timestep embedding added in between), a middle block,
 * skip connections, mean-pool downsampling and nearest upsampling, then unpatchify.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { readModelFolder, readModelWeights } from './model-folder.js';
import { makeScheduler, modelX0AndEps, type PredictionType, type SchedulerConfig } from './schedulers/index.js';

/** Architecture of the pixel UNet. */
export interface PixelUNetConfig {
  /** Image side in pixels (default 64). */
  size: number;
  /** Channels at the three UNet levels (default [48, 64, 96]). */
  channels: [number, number, number];
  /** Patchify factor (default 4). */
  patch: number;
  /** Timestep embedding width (default 128). */
  embDim: number;
  /** GroupNorm groups (default 8). */
  groups: number;
}

/** Default configuration (about 1.9M parameters; the first level is wider than a 4x4x3 patch so that it can carry the input through). */
export const DEFAULT_PIXEL_UNET: PixelUNetConfig = { size: 64, channels: [64, 96, 128], patch: 4, embDim: 128, groups: 8 };

/**
 * Noise schedule of the pixel model (DDPM linear betas, 1000 steps) and what the network predicts. New models
 * predict v = sqrt(a) eps - sqrt(1-a) x0: an error in v moves the x0 estimate by at most as much, whereas an
 * epsilon error is amplified by sqrt(1-a)/sqrt(a) (about 160 at t = 999), which turned early samples into noise.
 */
export const PIXEL_SCHEDULE: Partial<SchedulerConfig> = {
  numTrainTimesteps: 1000,
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: 'linear',
  predictionType: 'v_prediction',
  timestepSpacing: 'leading',
  stepsOffset: 0,
  setAlphaToOne: true,
};

/** Parameters by name. */
export type Params = Record<string, tf.Tensor>;

/** Shapes of every parameter of a pixel UNet, by name (filters [3,3,Cin,Cout], dense [In,Out]). */
export function paramShapes(cfg: PixelUNetConfig = DEFAULT_PIXEL_UNET): Record<string, number[]> {
  const [c0, c1, c2] = cfg.channels;
  const pc = 3 * cfg.patch * cfg.patch;
  const E = cfg.embDim;
  const s: Record<string, number[]> = {};
  s['temb.w1'] = [E, E];
  s['temb.b1'] = [E];
  s['temb.w2'] = [E, E];
  s['temb.b2'] = [E];
  s['in.w'] = [3, 3, pc, c0];
  s['in.b'] = [c0];
  const res = (n: string, ci: number, co: number) => {
    s[`${n}.gn1.g`] = [ci];
    s[`${n}.gn1.b`] = [ci];
    s[`${n}.conv1.w`] = [3, 3, ci, co];
    s[`${n}.conv1.b`] = [co];
    s[`${n}.temb.w`] = [E, co];
    s[`${n}.temb.b`] = [co];
    s[`${n}.gn2.g`] = [co];
    s[`${n}.gn2.b`] = [co];
    s[`${n}.conv2.w`] = [3, 3, co, co];
    s[`${n}.conv2.b`] = [co];
    if (ci !== co) {
      s[`${n}.skip.w`] = [ci, co];
      s[`${n}.skip.b`] = [co];
    }
  };
  res('d0', c0, c0);
  res('d1', c0, c1);
  res('d2', c1, c2);
  res('mid', c2, c2);
  res('u2', c2 + c2, c2);
  res('u1', c2 + c1, c1);
  res('u0', c1 + c0, c0);
  s['out.gn.g'] = [c0];
  s['out.gn.b'] = [c0];
  s['out.w'] = [3, 3, c0, pc];
  s['out.b'] = [pc];
  return s;
}

/** Fresh parameters: He-normal filters (the second conv of each block and the output conv at zero), unit GroupNorm gains, zero biases; seeded. */
export function initParams(cfg: PixelUNetConfig = DEFAULT_PIXEL_UNET, seed = 0): Params {
  const rng = new Rng(seed);
  const out: Params = {};
  for (const [name, shape] of Object.entries(paramShapes(cfg))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (name.endsWith('.g')) v.fill(1);
    else if ((name.endsWith('.w') || /w\d$/.test(name)) && !name.endsWith('conv2.w') && name !== 'out.w') {
      const fanIn = shape.length === 4 ? shape[0]! * shape[1]! * shape[2]! : shape[0]!;
      const std = Math.sqrt(2 / fanIn);
      for (let i = 0; i < n; i++) v[i] = rng.normal() * std;
    }
    out[name] = tf.tensor(v, shape, 'float32');
  }
  return out;
}

/** Number of scalars in a parameter set. */
export function countParams(p: Params): number {
  return Object.values(p).reduce((a, t) => a + t.size, 0);
}

/** 3x3 'same' convolution, x [B,H,W,Ci], w [3,3,Ci,Co] -> [B,H,W,Co], with a filter gradient that works on wasm. */
export const conv3x3: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D = tf.customGrad(((x: tf.Tensor4D, w: tf.Tensor4D, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.conv2d(x, w, 1, 'same'),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const d = dy as tf.Tensor4D;
      const xs = saved[0] as tf.Tensor4D;
      const ws = saved[1] as tf.Tensor4D;
      const [B, H, W, Ci] = xs.shape;
      const Co = ws.shape[3];
      const dx = tf.conv2dTranspose(d, ws, [B, H, W, Ci], 1, 'same');
      const xp = tf.pad(xs, [[0, 0], [1, 1], [1, 1], [0, 0]]);
      const cols: tf.Tensor[] = [];
      for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) cols.push(tf.slice(xp, [0, kh, kw, 0], [B, H, W, Ci]));
      const col = tf.reshape(tf.concat(cols, 3), [B * H * W, 9 * Ci]);
      const dw = tf.reshape(tf.matMul(tf.transpose(col), tf.reshape(d, [B * H * W, Co])), [3, 3, Ci, Co]);
      return [dx, dw];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;

/** y = x @ w + b, x [M,K], w [K,N] -> [M,N], gradients with explicit transposes (fast on wasm). */
export const dense: (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D = tf.customGrad(((x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.add(tf.matMul(x, w), b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const d = dy as tf.Tensor2D;
      return [tf.matMul(d, tf.transpose(saved[1] as tf.Tensor2D)), tf.matMul(tf.transpose(saved[0] as tf.Tensor2D), d), tf.sum(d, 0)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

function groupNorm(x: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor, groups: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const xr = tf.reshape(x, [B, H * W, groups, C / groups]);
  const { mean, variance } = tf.moments(xr, [1, 3], true);
  const xn = tf.reshape(tf.div(tf.sub(xr, mean), tf.sqrt(tf.add(variance, 1e-5))), [B, H, W, C]);
  return tf.add(tf.mul(xn, g), b);
}

const silu = <T extends tf.Tensor>(x: T): T => tf.mul(x, tf.sigmoid(x)) as T;

/** Sinusoidal timestep embedding, t [B] -> [B, dim] (sin half, cos half, periods up to 10000). */
export function timestepEmbedding(ts: ArrayLike<number>, dim: number): tf.Tensor2D {
  const half = dim / 2;
  const out = new Float32Array(ts.length * dim);
  for (let b = 0; b < ts.length; b++) {
    for (let k = 0; k < half; k++) {
      const a = ts[b]! * Math.exp((-Math.log(10000) * k) / half);
      out[b * dim + k] = Math.sin(a);
      out[b * dim + half + k] = Math.cos(a);
    }
  }
  return tf.tensor2d(out, [ts.length, dim]);
}

function conv(x: tf.Tensor4D, p: Params, n: string): tf.Tensor4D {
  return tf.add(conv3x3(x, p[`${n}.w`] as tf.Tensor4D), p[`${n}.b`]!) as tf.Tensor4D;
}

function resBlock(x: tf.Tensor4D, emb: tf.Tensor2D, p: Params, n: string, groups: number): tf.Tensor4D {
  const [B, H, W, Ci] = x.shape;
  let h = conv(silu(groupNorm(x, p[`${n}.gn1.g`]!, p[`${n}.gn1.b`]!, groups)), p, `${n}.conv1`);
  const Co = h.shape[3];
  const e = dense(silu(emb), p[`${n}.temb.w`] as tf.Tensor2D, p[`${n}.temb.b`] as tf.Tensor1D);
  h = tf.add(h, tf.reshape(e, [B, 1, 1, Co]));
  h = conv(silu(groupNorm(h, p[`${n}.gn2.g`]!, p[`${n}.gn2.b`]!, groups)), p, `${n}.conv2`);
  const skip = p[`${n}.skip.w`]
    ? tf.reshape(dense(tf.reshape(x, [B * H * W, Ci]), p[`${n}.skip.w`] as tf.Tensor2D, p[`${n}.skip.b`] as tf.Tensor1D), [B, H, W, Co])
    : x;
  return tf.add(h, skip);
}

function down(x: tf.Tensor4D): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  return tf.mean(tf.reshape(x, [B, H / 2, 2, W / 2, 2, C]), [2, 4]) as tf.Tensor4D;
}

function up(x: tf.Tensor4D): tf.Tensor4D {
  const [, H, W] = x.shape;
  return tf.image.resizeNearestNeighbor(x, [H * 2, W * 2]);
}

/** Noise prediction, x [B,H,W,3] (NHWC, in [-1,1] scaled as the scheduler's sample) and timesteps [B] -> eps [B,H,W,3]; differentiable in x and the parameters. */
export function pixelUNetNHWC(p: Params, x: tf.Tensor4D, ts: ArrayLike<number>, cfg: PixelUNetConfig = DEFAULT_PIXEL_UNET): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, S] = x.shape;
    const P = cfg.patch;
    const s = S / P;
    const G = cfg.groups;
    let h = tf.reshape(tf.transpose(tf.reshape(x, [B, s, P, s, P, 3]), [0, 1, 3, 2, 4, 5]), [B, s, s, P * P * 3]) as tf.Tensor4D;
    let emb = silu(dense(timestepEmbedding(ts, cfg.embDim), p['temb.w1'] as tf.Tensor2D, p['temb.b1'] as tf.Tensor1D));
    emb = dense(emb, p['temb.w2'] as tf.Tensor2D, p['temb.b2'] as tf.Tensor1D);
    h = conv(h, p, 'in');
    const d0 = resBlock(h, emb, p, 'd0', G);
    const d1 = resBlock(down(d0), emb, p, 'd1', G);
    const d2 = resBlock(down(d1), emb, p, 'd2', G);
    const m = resBlock(d2, emb, p, 'mid', G);
    const u2 = resBlock(tf.concat([m, d2], 3), emb, p, 'u2', G);
    const u1 = resBlock(tf.concat([up(u2), d1], 3), emb, p, 'u1', G);
    const u0 = resBlock(tf.concat([up(u1), d0], 3), emb, p, 'u0', G);
    const o = conv(silu(groupNorm(u0, p['out.gn.g']!, p['out.gn.b']!, G)), p, 'out');
    return tf.reshape(tf.transpose(tf.reshape(o, [B, s, s, P, P, 3]), [0, 1, 3, 2, 4, 5]), [B, S, S, 3]) as tf.Tensor4D;
  });
}

/** A loaded pixel diffusion model: config, parameters and its scheduler settings. */
export interface PixelDiffusionModel {
  kind: 'pixel-unet';
  config: PixelUNetConfig;
  params: Params;
  schedule: Partial<SchedulerConfig>;
  /** Where it was loaded from, if from disk. */
  dir?: string;
  /** Training metadata (steps, data) from config.json. */
  meta: Record<string, unknown>;
}

/**
 * The model as guidance.ts's UNetFn: latents [B,3,H,W] (NCHW) -> eps [B,3,H,W], whatever the network predicts
 * (epsilon or v). With `clip` (default, as diffusers' clip_sample for pixel models), eps is recomputed from
 * the x0 estimate clipped to [-1, 1].
 */
export function pixelUNetFn(model: PixelDiffusionModel, clip = true): (latents: tf.Tensor4D, t: number) => tf.Tensor4D {
  const ab = makeScheduler('ddim', model.schedule).alphasCumprod;
  const prediction = model.schedule.predictionType ?? 'epsilon';
  return (latents, t) =>
    tf.tidy(() => {
      const x = tf.transpose(latents, [0, 2, 3, 1]) as tf.Tensor4D;
      const ts = new Array<number>(latents.shape[0]).fill(t);
      const out = tf.transpose(pixelUNetNHWC(model.params, x, ts, model.config), [0, 3, 1, 2]) as tf.Tensor4D;
      const a = ab[Math.round(t)]!;
      const [x0, eps] = modelX0AndEps(out, latents, a, prediction);
      if (!clip) return eps as tf.Tensor4D;
      return tf.div(tf.sub(latents, tf.mul(tf.clipByValue(x0, -1, 1), Math.sqrt(a))), Math.sqrt(1 - a)) as tf.Tensor4D;
    });
}

/** Loads a pixel diffusion model folder (config.json + model.safetensors); names the missing file when incomplete. */
export async function loadPixelDiffusion(dir: string, json: Record<string, unknown> = readModelFolder(dir)): Promise<PixelDiffusionModel> {
  const config = { ...DEFAULT_PIXEL_UNET, ...(json.unet as Partial<PixelUNetConfig>) };
  const schedule = { ...PIXEL_SCHEDULE, ...(json.schedule as Partial<SchedulerConfig>) };
  const params = await readModelWeights(dir, paramShapes(config), 'retrain');
  return { kind: 'pixel-unet', config, params, schedule, dir, meta: json };
}

/** Writes parameters as float32 safetensors. */
export async function saveParams(file: string, p: Params, metadata?: Record<string, string>): Promise<void> {
  const out: Record<string, { dtype: 'float32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, t] of Object.entries(p)) out[k] = { dtype: 'float32', shape: t.shape, data: t.dataSync() as Float32Array };
  await writeSafetensors(file, out, metadata);
}

/** Reads float32 safetensors into parameters. */
export async function loadParams(file: string): Promise<Params> {
  const { tensors } = await readSafetensors(file);
  const out: Params = {};
  for (const [k, t] of Object.entries(tensors)) out[k] = tf.tensor(Float32Array.from(t.data as ArrayLike<number>), t.shape, 'float32');
  return out;
}

/** Training loss for one batch: x0 [B,H,W,3] in [-1,1], noise [B,H,W,3], timesteps [B]; MSE of the prediction (epsilon, or v = sqrt(a) eps - sqrt(1-a) x0). */
export function diffusionLoss(p: Params, x0: tf.Tensor4D, noise: tf.Tensor4D, ts: number[], alphaBar: Float64Array, cfg: PixelUNetConfig, prediction: PredictionType = 'epsilon'): tf.Scalar {
  const B = ts.length;
  const sa = tf.tensor4d(ts.map((t) => Math.sqrt(alphaBar[t]!)), [B, 1, 1, 1]);
  const sb = tf.tensor4d(ts.map((t) => Math.sqrt(1 - alphaBar[t]!)), [B, 1, 1, 1]);
  const xt = tf.add(tf.mul(x0, sa), tf.mul(noise, sb)) as tf.Tensor4D;
  const out = pixelUNetNHWC(p, xt, ts, cfg);
  const target = prediction === 'v_prediction' ? tf.sub(tf.mul(noise, sa), tf.mul(x0, sb)) : noise;
  return tf.mean(tf.square(tf.sub(out, target))) as tf.Scalar;
}
