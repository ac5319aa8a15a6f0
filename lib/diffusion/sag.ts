/**
 * Self-attention guidance (SAG; Hong, Lee, Jang & Kim, "Improving Sample Quality of Diffusion Models Using
 * Self-Attention Guidance", ICCV 2023, arXiv 2210.00939, eqs. 22-25), in the form of diffusers'
 * StableDiffusionSAGPipeline, which BrainDiVE's pipeline (brain_guide_pipeline.py, `mypipelineSAG`) copies.
 * One step, at timestep t with a = alpha_bar(t), the VP-scaled latents x_t [B,C,h,w] and the model's output at x_t
 * (with classifier-free guidance: the unconditional output, its attention map and the empty prompt):
 *
 *   A       = the UNet's mid-block self-attention probabilities at x_t, [B, heads, N, N] (each row, a query, sums
 *             to 1), on the mid block's grid h' x w' = N (h' = ceil(h / 2^k) for the UNet's k downsamplings)
 *   m[j]    = 1 if sum_i mean_heads A[i, j] > 1, else 0    (key j receives more than the average attention, 1)
 *   M       = m on the grid h' x w', upsampled to h x w by nearest neighbour (torch's F.interpolate default),
 *             the same for every channel
 *   x0      = (x_t - sqrt(1-a) eps) / sqrt(a)               (v-prediction: sqrt(a) x_t - sqrt(1-a) v)
 *   eps_x   = eps                                           (v-prediction: sqrt(a) v + sqrt(1-a) x_t)
 *   x0~     = M * G(x0) + (1 - M) * x0                      G: Gaussian blur, 9 x 9 kernel, sigma 1, reflect padding
 *   x~_t    = sqrt(a) x0~ + sqrt(1-a) eps_x                 (re-noised to step t with the model's own noise)
 *   eps'    = UNet(x~_t, t, context)                         (a second UNet pass)
 *   out_sag = out + s (eps_ref - eps')                       s = sagScale; out = the (CFG-combined) model output,
 *                                                            eps_ref = the output the mask came from
 *
 * The outputs are in the model's own parametrisation (eps, or v for v-prediction), as in diffusers. x_t here is the
 * model input (`scaleModelInput`), so for Euler the re-noising happens in VP space, which is the scheduler's
 * add_noise followed by its input scaling. No gradient flows through SAG (the original runs it under no_grad).
 * sampling.ts composes SAG with brain guidance (its header gives the order).
 */
import * as tf from '@tensorflow/tfjs';
import { GuidanceError } from './guidance.js';
import type { PredictionType } from './schedulers/index.js';

/** A UNet forward that also returns its mid-block self-attention probabilities: latents [B,C,h,w], t, context [B,L,D] -> eps [B,C,h,w] and attention [B,heads,N,N] (or diffusers' [B*heads,N,N]). */
export type AttentionUNetFn = (latents: tf.Tensor4D, t: number, context: tf.Tensor3D | null) => { eps: tf.Tensor4D; attention: tf.Tensor } | Promise<{ eps: tf.Tensor4D; attention: tf.Tensor }>;

/** The SAG scale of BrainDiVE's scripts and of diffusers' SAG pipeline. */
export const PAPER_SAG_SCALE = 0.75;
/** Above this, checkSagScale warns: SAG is used at 0-1 and samples fall apart well before. */
export const SAG_SCALE_WARN = 5;
/** Gaussian blur of SAG: kernel side and sigma (as the paper's code). */
export const SAG_BLUR = { kernel: 9, sigma: 1.0 } as const;

/** Scales already warned about by the default warner (as Python's warnings 'once': a run of 100 images warns once). */
const warnedScales = new Set<number>();
const warnOnce = (s: number) => (line: string) => {
  if (!warnedScales.has(s)) console.warn(line);
  warnedScales.add(s);
};

/** Checks a SAG scale: a finite number >= 0 (else a GuidanceError); above SAG_SCALE_WARN, one warning line through `warn` (default: console.warn, once per scale). */
export function checkSagScale(s: number, warn: (line: string) => void = warnOnce(s)): void {
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) {
    throw new GuidanceError(`sagScale must be a finite number >= 0 (0 turns self-attention guidance off; BrainDiVE uses ${PAPER_SAG_SCALE}), got ${String(s)}`);
  }
  if (s > SAG_SCALE_WARN) warn(`sagScale ${s} is far above the usual range (0-1; BrainDiVE uses ${PAPER_SAG_SCALE}): above about ${SAG_SCALE_WARN} the blurred pass dominates and samples fall apart`);
}

/** The mid block's grid [h', w'] for N attention positions over latents h x w: the h/2^k x w/2^k (rounded up) with h' w' = N; null when none fits. */
export function attentionGrid(N: number, h: number, w: number): [number, number] | null {
  for (let f = 1; f <= Math.max(h, w); f *= 2) {
    const gh = Math.ceil(h / f), gw = Math.ceil(w / f);
    if (gh * gw === N) return [gh, gw];
  }
  return null;
}

/** Attention [B,heads,N,N] or [B*heads,N,N] for latents [B,C,h,w] -> the same as [B,heads,N,N], with its grid; a wrong shape names both shapes. */
function attentionAsBHNN(attention: tf.Tensor, latentShape: number[]): { a: tf.Tensor4D; grid: [number, number] } {
  const [B, , h, w] = latentShape as [number, number, number, number];
  const s = attention.shape;
  const N = s[s.length - 1]!;
  const grid = attentionGrid(N, h, w);
  const okRank = s.length === 4 ? s[0] === B : s.length === 3 ? s[0]! % B === 0 && s[0]! > 0 : false;
  if (!okRank || s[s.length - 2] !== N || !grid) {
    const Ns = [1, 2, 4, 8].map((f) => Math.ceil(h / f) * Math.ceil(w / f)).join(', ');
    throw new GuidanceError(`the UNet's mid-block attention has shape [${s.join(', ')}], but latents [${latentShape.join(', ')}] need [${B}, heads, N, N] (or [${B}·heads, N, N]) with N = h'·w' the mid block's grid, ${h}x${w} halved k times (N = ${Ns}, ...). Export the probabilities of the mid block's first self-attention (attn1) with data-prep/add-sag-output.py`);
  }
  const a = (s.length === 4 ? attention : attention.reshape([B, s[0]! / B, N, N])) as tf.Tensor4D;
  return { a, grid };
}

/** SAG's mask: attention [B,heads,N,N] (or [B*heads,N,N]) -> [B,1,h,w] of 0/1, 1 where a key position of the mid block is attended more than average (sum over queries of the head-mean > 1), upsampled to the latents' h x w by nearest neighbour. */
export function sagMask(attention: tf.Tensor, latentShape: [number, number, number, number]): tf.Tensor4D {
  const [B, , h, w] = latentShape;
  return tf.tidy(() => {
    const { a, grid } = attentionAsBHNN(attention, latentShape);
    const [gh, gw] = grid;
    const received = tf.sum(tf.mean(a, 1), 1); // [B,N]: over heads, then over queries
    const m = tf.cast(tf.greater(received, 1.0), 'float32').reshape([B, 1, gh, gw]);
    // nearest neighbour as torch: source index floor(dst * in / out)
    const rows = Int32Array.from({ length: h }, (_, i) => Math.min(Math.floor((i * gh) / h), gh - 1));
    const cols = Int32Array.from({ length: w }, (_, j) => Math.min(Math.floor((j * gw) / w), gw - 1));
    return tf.gather(tf.gather(m, rows, 2), cols, 3) as tf.Tensor4D;
  });
}

/** The normalised 1-D Gaussian of SAG's blur: exp(-x^2 / 2 sigma^2) over x = -(k-1)/2 .. (k-1)/2, summing to 1. */
export function gaussianKernel1d(kernel = SAG_BLUR.kernel, sigma = SAG_BLUR.sigma): Float32Array {
  const half = (kernel - 1) / 2;
  const pdf = Float32Array.from({ length: kernel }, (_, i) => Math.exp(-0.5 * ((i - half) / sigma) ** 2));
  let sum = 0;
  for (const v of pdf) sum += v;
  return pdf.map((v) => v / sum);
}

/** Gaussian blur of images [B,C,h,w], each channel alone: a k x k kernel (outer product of gaussianKernel1d), reflect padding (k-1)/2; needs h, w > (k-1)/2. */
export function gaussianBlur2d(x: tf.Tensor4D, kernel = SAG_BLUR.kernel, sigma = SAG_BLUR.sigma): tf.Tensor4D {
  const [, C, h, w] = x.shape;
  const p = Math.floor(kernel / 2);
  if (h <= p || w <= p) throw new GuidanceError(`SAG's ${kernel}x${kernel} blur pads by reflection and needs latents larger than ${p} on each side; got [${x.shape.join(', ')}]. Use larger images or sagScale 0`);
  const k1 = gaussianKernel1d(kernel, sigma);
  return tf.tidy(() => {
    const k2 = tf.outerProduct(tf.tensor1d(k1), tf.tensor1d(k1)); // [k,k]
    const filt = tf.tile(k2.reshape([kernel, kernel, 1, 1]), [1, 1, C, 1]) as tf.Tensor4D; // depthwise [k,k,C,1]
    const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
    const padded = tf.mirrorPad(nhwc, [[0, 0], [p, p], [p, p], [0, 0]], 'reflect') as tf.Tensor4D;
    return tf.transpose(tf.depthwiseConv2d(padded, filt, 1, 'valid'), [0, 3, 1, 2]) as tf.Tensor4D;
  });
}

/** Inputs of {@link sagDegrade}. */
export interface SagDegradeInputs {
  /** VP-scaled latents x_t (the model input) [B,C,h,w]. */
  x: tf.Tensor4D;
  /** The model's output at x_t that the attention came from (eps, or v) [B,C,h,w]. */
  out: tf.Tensor4D;
  /** Mid-block self-attention probabilities [B,heads,N,N] (or [B*heads,N,N]). */
  attention: tf.Tensor;
  alphaBar: number;
  predictionType?: PredictionType;
}

/** SAG's degraded input: x0 from (x_t, out), blurred where the mask is 1, re-noised to step t with the model's eps: [B,C,h,w] (and the mask [B,1,h,w], x0). */
export function sagDegrade(p: SagDegradeInputs): { degraded: tf.Tensor4D; mask: tf.Tensor4D; x0: tf.Tensor4D } {
  const mask = sagMask(p.attention, p.x.shape);
  const sa = Math.sqrt(p.alphaBar), sb = Math.sqrt(1 - p.alphaBar);
  const [x0, degraded] = tf.tidy(() => {
    const v = p.predictionType === 'v_prediction';
    const x0 = (v ? tf.sub(tf.mul(p.x, sa), tf.mul(p.out, sb)) : tf.div(tf.sub(p.x, tf.mul(p.out, sb)), sa)) as tf.Tensor4D;
    const eps = v ? tf.add(tf.mul(p.out, sa), tf.mul(p.x, sb)) : p.out;
    const blurred = gaussianBlur2d(x0);
    const mixed = tf.add(tf.mul(blurred, mask), tf.mul(x0, tf.sub(1, mask)));
    return [x0, tf.add(tf.mul(mixed, sa), tf.mul(eps, sb)) as tf.Tensor4D];
  });
  return { degraded, mask, x0 };
}

/** Inputs of {@link sagStep}. */
export interface SagStepInputs extends SagDegradeInputs {
  /** The model output the step would use without SAG (the CFG combination with classifier-free guidance) [B,C,h,w]. */
  guided: tf.Tensor4D;
  /** SAG scale s (> 0). */
  scale: number;
  t: number;
  /** The second UNet pass on the degraded latents (the unconditional context with CFG); forward only. */
  unet: (latents: tf.Tensor4D, t: number) => tf.Tensor4D | Promise<tf.Tensor4D>;
}

/** One SAG step: guided + s (out - UNet(degraded)) [B,C,h,w], with the degraded latents and the second pass's output (the caller disposes all three). */
export async function sagStep(p: SagStepInputs): Promise<{ out: tf.Tensor4D; degraded: tf.Tensor4D; degradedOut: tf.Tensor4D }> {
  const { degraded, mask, x0 } = sagDegrade(p);
  tf.dispose([mask, x0]);
  let degradedOut: tf.Tensor4D;
  try {
    degradedOut = await p.unet(degraded, p.t);
  } catch (e) {
    degraded.dispose();
    throw e;
  }
  if (degradedOut.shape.join() !== p.out.shape.join()) {
    tf.dispose([degraded, degradedOut]);
    throw new GuidanceError(`SAG's second UNet pass returned shape [${degradedOut.shape.join(', ')}] for latents [${p.x.shape.join(', ')}]`);
  }
  const out = tf.tidy(() => tf.add(p.guided, tf.mul(tf.sub(p.out, degradedOut), p.scale)) as tf.Tensor4D);
  return { out, degraded, degradedOut };
}
