/**
 * Brain guidance (BrainDiVE, Luo et al., NeurIPS 2023): what one step's guidance computes, with the update of the
 * paper's public code (a CLIP-guided Stable Diffusion pipeline with a brain encoder as the loss):
 *
 *   at step t, with a = alpha_bar(t) and x_t the (VP-scaled) latent:
 *     x0hat  = (x_t - sqrt(1-a) eps) / sqrt(a)
 *     sample = x0hat * sqrt(1-a) + x_t * (1 - sqrt(1-a))
 *     images = normalise_CLIP(resize_224(clamp(decode(sample / vaeScale) / 2 + 0.5, 0, 1)))
 *     loss   = -scale * sum_b score(images)[b]          (score = the ROI's mean predicted activation)
 *     g      = -d loss / d x_t                          (= scale * d score / d x_t)
 *     eps'   = eps - sqrt(1-a) * g
 *   then the scheduler steps with eps' (sampling.ts runs that loop).
 *
 * Sign: the code computes `grads = -torch.autograd.grad(loss, latents)` and `eps - sqrt(beta) * grads`,
 * which moves x0hat up the score's gradient (raises the ROI). Summing over the batch keeps each
 * image's gradient independent of the batch size (the same as the code's mean at batch size 1).
 *
 * `gradient: 'full'` re-runs the UNet inside the gradient (as the public code does, with the
 * conditional embedding only); `'x0'` treats eps as a constant (one UNet call per step, no UNet
 * backward). For Euler, guidance is computed on the VP-scaled latent `scaleModelInput(x_t)`, whose
 * x0hat is the same as Euler's.
 */
import * as tf from '@tensorflow/tfjs';
import { resizeBilinearNCHW } from '../backbones/resize.js';
import { CLIP_MEAN, CLIP_STD } from '../io/image.js';
import type { PredictionType } from './schedulers/index.js';

/** Noise model: (scaled latents [B,4,h,w], timestep, text context [B,L,D] or null) -> eps (or v) [B,4,h,w]; must be tf-differentiable for 'full' gradients. */
export type UNetFn = (latents: tf.Tensor4D, t: number, context: tf.Tensor3D | null) => tf.Tensor4D;
/** VAE decoder: latents [B,4,h,w] (already divided by the VAE scaling factor) -> images [B,3,H,W] in about [-1,1]; differentiable. */
export type DecodeFn = (latents: tf.Tensor4D) => tf.Tensor4D;
/** Brain score: CLIP-normalised images [B,3,224,224] -> predicted ROI mean activation [B]; differentiable. */
export type ScoreFn = (images: tf.Tensor4D) => tf.Tensor;
/** How the guidance gradient is taken: through the UNet ('full') or with eps held constant ('x0'). */
export type GuidanceGradient = 'full' | 'x0';

/** Thrown when sampling stops on bad values (NaN latents, a score of the wrong shape, a bad option). */
export class GuidanceError extends Error {
  override name = 'GuidanceError';
}

/** Images [B,3,H,W] in [-1,1] -> [0,1] clamped, resized to size x size (bilinear, antialiased), CLIP-normalised [B,3,size,size]. */
export function toClipInput(images: tf.Tensor4D, size = 224): tf.Tensor4D {
  return tf.tidy(() => {
    let x = tf.clipByValue(tf.add(tf.mul(images, 0.5), 0.5), 0, 1) as tf.Tensor4D;
    if (x.shape[2] !== size || x.shape[3] !== size) x = resizeBilinearNCHW(x, size, size);
    const mean = tf.tensor4d([...CLIP_MEAN], [1, 3, 1, 1]);
    const std = tf.tensor4d([...CLIP_STD], [1, 3, 1, 1]);
    return tf.div(tf.sub(x, mean), std) as tf.Tensor4D;
  });
}

/** Inputs of one guidance evaluation. */
export interface GuidanceInputs {
  unet: UNetFn;
  decode: DecodeFn;
  score: ScoreFn;
  /** Scaled (VP) latents x_t [B,C,h,w]. */
  x: tf.Tensor4D;
  /** Model output at x_t (the eps used by the x0-only gradient). */
  eps: tf.Tensor4D;
  t: number;
  alphaBar: number;
  guidanceScale: number;
  gradient: GuidanceGradient;
  context: tf.Tensor3D | null;
  vaeScalingFactor: number;
  scoreSize: number;
  predictionType?: PredictionType;
}

/**
 * What BrainDiVE's guidance decodes and scores at a step: x0hat·sqrt(1-a) + x_t·(1-sqrt(1-a)), from x_t and the model's
 * output (eps, or v for 'v_prediction'); sa = sqrt(a) and sb = sqrt(1-a) are numbers, or tensors that broadcast against
 * x_t (one timestep per row). Same shape as x_t.
 */
export function guidanceInput<T extends tf.Tensor>(x: T, out: tf.Tensor, sa: number | tf.Tensor, sb: number | tf.Tensor, predictionType?: PredictionType): T {
  const eps = predictionType === 'v_prediction' ? tf.add(tf.mul(out, sa), tf.mul(x, sb)) : out;
  const x0 = tf.div(tf.sub(x, tf.mul(eps, sb)), sa);
  return tf.add(tf.mul(x0, sb), tf.mul(x, typeof sb === 'number' ? 1 - sb : tf.sub(1, sb))) as T;
}

/** BrainDiVE's guidance at one step: g = -d loss/d x_t with loss = -scale * sum(score) (shapes of x); returns g and the mean score. */
export function brainGuidance(p: GuidanceInputs): { g: tf.Tensor4D; score: number } {
  const B = p.x.shape[0];
  const sa = Math.sqrt(p.alphaBar);
  const sb = Math.sqrt(1 - p.alphaBar);
  let scoreSum = 0;
  let badShape: number[] | null = null;
  const lossOf = (xt: tf.Tensor): tf.Scalar => {
    const x = xt as tf.Tensor4D;
    const sample = guidanceInput(x, p.gradient === 'full' ? p.unet(x, p.t, p.context) : p.eps, sa, sb, p.predictionType);
    const images = p.decode(tf.div(sample, p.vaeScalingFactor) as tf.Tensor4D);
    const s = p.score(toClipInput(images, p.scoreSize));
    // a throw inside tf.grad leaves tfjs's tape open, so note a bad shape and throw after it
    if (s.rank !== 1 || s.shape[0] !== B) {
      badShape = s.shape;
      return tf.mul(tf.sum(s), 0) as tf.Scalar;
    }
    const total = tf.sum(s);
    scoreSum = (total.dataSync() as Float32Array)[0]!;
    return tf.mul(total, -p.guidanceScale) as tf.Scalar;
  };
  const g = tf.tidy(() => tf.neg(tf.grad(lossOf)(p.x)) as tf.Tensor4D);
  if (badShape) {
    g.dispose();
    throw new GuidanceError(`the guidance score must return one value per image, shape [${B}]; it returned shape [${(badShape as number[]).join(', ')}]. Reduce the ROI's voxels to their mean per image.`);
  }
  return { g, score: scoreSum / B };
}
