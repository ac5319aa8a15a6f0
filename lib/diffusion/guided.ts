/**
 * Brain-guided diffusion sampling (BrainDiVE, Luo et al., NeurIPS 2023), with the update of the
 * paper's public code (a CLIP-guided Stable Diffusion pipeline with a brain encoder as the loss):
 *
 *   at step t, with a = alpha_bar(t) and x_t the (VP-scaled) latent:
 *     x0hat  = (x_t - sqrt(1-a) eps) / sqrt(a)
 *     sample = x0hat * sqrt(1-a) + x_t * (1 - sqrt(1-a))
 *     images = normalise_CLIP(resize_224(clamp(decode(sample / vaeScale) / 2 + 0.5, 0, 1)))
 *     loss   = -scale * sum_b score(images)[b]          (score = the ROI's mean predicted activation)
 *     g      = -d loss / d x_t                          (= scale * d score / d x_t)
 *     eps'   = eps - sqrt(1-a) * g
 *   then the scheduler steps with eps'.
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
import { CLIP_MEAN, CLIP_STD } from '../io/image.js';
import { progress, type ProgressOptions } from '../notebook/progress.js';
import { resizeBilinearNCHW } from '../backbones/resize.js';
import { NoiseGenerator, disposeSchedulerState, type Scheduler, type SchedulerState } from './schedulers.js';

/** Noise model: (scaled latents [B,4,h,w], timestep, text context [B,L,D] or null) -> eps (or v) [B,4,h,w]; must be tf-differentiable for 'full' gradients. */
export type UNetFn = (latents: tf.Tensor4D, t: number, context: tf.Tensor3D | null) => tf.Tensor4D;
/** VAE decoder: latents [B,4,h,w] (already divided by the VAE scaling factor) -> images [B,3,H,W] in about [-1,1]; differentiable. */
export type DecodeFn = (latents: tf.Tensor4D) => tf.Tensor4D;
/** Brain score: CLIP-normalised images [B,3,224,224] -> predicted ROI mean activation [B]; differentiable. */
export type ScoreFn = (images: tf.Tensor4D) => tf.Tensor;


/** Thrown when sampling stops on bad values (NaN latents, a score of the wrong shape, a bad option). */
export class GuidanceError extends Error {
  override name = 'GuidanceError';
}

/** What the per-step callback sees; tensors are valid only during the call. */
export interface StepInfo {
  /** Step number, 0-based. */
  step: number;
  /** Scheduler timestep. */
  t: number;
  /** Latents after this step [B,4,h,w]. */
  latents: tf.Tensor4D;
  /** The scheduler's x0 estimate at this step [B,4,h,w]. */
  predOriginalSample: tf.Tensor4D;
  /** Decodes the x0 estimate to images [B,3,H,W] in [0,1] (the caller disposes the result). */
  decodePreview(): Promise<tf.Tensor4D>;
  /** Norm of the guidance g at this step (0 without guidance). */
  gradNorm: number;
  /** Mean brain score of the guided sample at this step (undefined without guidance). */
  score?: number;
}

/** Options for {@link sampleGuided}. */
export interface GuidedOptions {
  /** Differentiable UNet (tfjs); used for the full gradient, and for eps unless unetForward is given. */
  unet: UNetFn;
  /** Differentiable decoder (tfjs); used for the gradient, and for images unless decodeForward is given. */
  decode: DecodeFn;
  /** Optional fast forward UNet (e.g. onnxruntime) for eps; same contract, may be async. */
  unetForward?: (latents: tf.Tensor4D, t: number, context: tf.Tensor3D | null) => tf.Tensor4D | Promise<tf.Tensor4D>;
  /** Optional fast forward decoder for previews and the final images; may be async. */
  decodeForward?: (latents: tf.Tensor4D) => tf.Tensor4D | Promise<tf.Tensor4D>;
  scheduler: Scheduler;
  /** Inference steps (default 50). */
  steps?: number;
  /** Latent shape of one image [C, h, w] (default [4, 64, 64], SD at 512^2). */
  latentShape?: [number, number, number];
  /** Images per batch (default 1). */
  batch?: number;
  /** Seed of the generator for the initial noise (and DDIM eta noise); default 0. */
  seed?: number;
  /** Or a generator to draw from. */
  generator?: NoiseGenerator;
  /** Initial latents [B,C,h,w], unscaled (they are multiplied by the scheduler's init noise sigma). */
  latents?: tf.Tensor4D;
  /** Brain score; no guidance when absent or when guidanceScale is 0. */
  score?: ScoreFn;
  /** Brain guidance scale (BrainDiVE: about 100 to 150). Default 0. */
  guidanceScale?: number;
  /** 'full' (through the UNet, default) or 'x0' (eps treated as a constant). */
  gradient?: 'full' | 'x0';
  /** Text context for the prompt [1 or B, L, D] (e.g. CLIP text encoder's last_hidden_state). */
  cond?: tf.Tensor3D | null;
  /** Unconditional (empty prompt) context [1 or B, L, D]: enables classifier-free guidance with cfgScale. */
  uncond?: tf.Tensor3D | null;
  /** Classifier-free guidance scale (default 7.5 when uncond is given). */
  cfgScale?: number;
  /** VAE latent scaling factor (SD: 0.18215). */
  vaeScalingFactor?: number;
  /** Side of the images the score sees (default 224). */
  scoreSize?: number;
  /** Called after every step (may be async). */
  callback?: (info: StepInfo) => void | Promise<void>;
  /** Progress bar: true (default), false, or options for `progress`. */
  progress?: boolean | ProgressOptions;
}

/** Result of sampling. */
export interface GuidedResult {
  /** Final images [B,3,H,W] in [0,1]. */
  images: tf.Tensor4D;
  /** Final latents [B,C,h,w]. */
  latents: tf.Tensor4D;
  /** Timesteps used. */
  timesteps: number[];
  /** Guidance norm per step. */
  gradNorms: number[];
  /** Mean brain score of the guided sample per step (NaN where unguided). */
  scores: number[];
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
  gradient: 'full' | 'x0';
  context: tf.Tensor3D | null;
  vaeScalingFactor: number;
  scoreSize: number;
  predictionType?: 'epsilon' | 'v_prediction';
}

/**
 * What BrainDiVE's guidance decodes and scores at a step: x0hat·sqrt(1-a) + x_t·(1-sqrt(1-a)), from x_t and the model's
 * output (eps, or v for 'v_prediction'); sa = sqrt(a) and sb = sqrt(1-a) are numbers, or tensors that broadcast against
 * x_t (one timestep per row). Same shape as x_t.
 */
export function guidanceInput<T extends tf.Tensor>(x: T, out: tf.Tensor, sa: number | tf.Tensor, sb: number | tf.Tensor, predictionType?: 'epsilon' | 'v_prediction'): T {
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

/** True when every value is finite. */
function allFinite(x: tf.Tensor): boolean {
  const v = x.dataSync();
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return false;
  return true;
}

/** Repeats a context [1,L,D] to [B,L,D] (or checks it is [B,L,D]). */
function batchContext(c: tf.Tensor3D, B: number, what: string): tf.Tensor3D {
  if (c.shape[0] === B) return c.clone();
  if (c.shape[0] === 1) return tf.tile(c, [B, 1, 1]);
  throw new GuidanceError(`${what} has batch ${c.shape[0]}, expected 1 or ${B} (shape [B, L, D])`);
}

/** Brain-guided sampling: latents [B,C,h,w] from noise through `steps` scheduler steps, each guided by the score's gradient; returns images [B,3,H,W] in [0,1]. */
export async function sampleGuided(o: GuidedOptions): Promise<GuidedResult> {
  const steps = o.steps ?? 50;
  const B = o.batch ?? o.latents?.shape[0] ?? 1;
  const shape = o.latentShape ?? (o.latents ? (o.latents.shape.slice(1) as [number, number, number]) : [4, 64, 64]);
  const scale = o.guidanceScale ?? 0;
  const gradient = o.gradient ?? 'full';
  const sf = o.vaeScalingFactor ?? 0.18215;
  const scoreSize = o.scoreSize ?? 224;
  if (!Number.isFinite(scale)) throw new GuidanceError(`guidanceScale must be a finite number, got ${scale}`);
  if (o.cfgScale !== undefined && !Number.isFinite(o.cfgScale)) throw new GuidanceError(`cfgScale must be a finite number, got ${o.cfgScale}`);
  if (gradient !== 'full' && gradient !== 'x0') throw new GuidanceError(`gradient must be 'full' or 'x0', got ${String(gradient)}`);
  if (!Number.isFinite(sf) || sf <= 0) throw new GuidanceError(`vaeScalingFactor must be > 0, got ${sf}`);
  if (o.latents && (o.latents.shape[0] !== B || o.latents.shape.slice(1).join() !== shape.join()))
    throw new GuidanceError(`initial latents have shape [${o.latents.shape.join(', ')}], expected [${[B, ...shape].join(', ')}]`);
  if (o.uncond && !o.cond) throw new GuidanceError('classifier-free guidance needs both cond and uncond contexts');
  const guided = !!o.score && scale !== 0;
  const sched = o.scheduler;
  const cfg = o.uncond ? (o.cfgScale ?? 7.5) : undefined;
  const gen = o.generator ?? new NoiseGenerator(o.seed ?? 0);

  const cond = o.cond ? batchContext(o.cond, B, 'cond') : null;
  const uncond = o.uncond ? batchContext(o.uncond, B, 'uncond') : null;
  const both = cond && uncond ? tf.concat([uncond, cond], 0) : null;
  let state: SchedulerState = sched.setTimesteps(steps);
  const init0 = o.latents ?? (gen.randn([B, ...shape]) as tf.Tensor4D);
  let x = tf.tidy(() => tf.mul(init0, sched.initNoiseSigma(state))) as tf.Tensor4D;
  if (!o.latents) init0.dispose();

  /** eps at scaled latents (with classifier-free guidance when uncond is given); forward only. */
  const modelEps = async (xin: tf.Tensor4D, t: number): Promise<tf.Tensor4D> => {
    const fwd = o.unetForward ?? ((a: tf.Tensor4D, tt: number, c: tf.Tensor3D | null) => tf.tidy(() => o.unet(a, tt, c)));
    if (both && cfg !== undefined) {
      const doubled = tf.concat([xin, xin], 0) as tf.Tensor4D;
      const out = await fwd(doubled, t, both);
      doubled.dispose();
      const e = tf.tidy(() => {
        const [u, c] = tf.split(out, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
        return tf.add(u, tf.mul(tf.sub(c, u), cfg)) as tf.Tensor4D;
      });
      out.dispose();
      return e;
    }
    return fwd(xin, t, cond);
  };
  /** Latents [B,C,h,w] -> images [B,3,H,W] in [0,1], forward only. */
  const toImages = async (z: tf.Tensor4D): Promise<tf.Tensor4D> => {
    const scaled = tf.div(z, sf) as tf.Tensor4D;
    const raw = o.decodeForward ? await o.decodeForward(scaled) : tf.tidy(() => o.decode(scaled));
    scaled.dispose();
    const img = tf.tidy(() => tf.clipByValue(tf.add(tf.mul(raw, 0.5), 0.5), 0, 1) as tf.Tensor4D);
    raw.dispose();
    return img;
  };
  const bar = o.progress === false ? null : progress({ total: steps, label: guided ? 'brain-guided sampling' : 'sampling', ...(typeof o.progress === 'object' ? o.progress : {}) });
  const gradNorms: number[] = [];
  const scores: number[] = [];
  const timesteps = state.timesteps.slice();
  try {
    for (let i = 0; i < timesteps.length; i++) {
      const t = timesteps[i]!;
      let gradNorm = 0;
      let score = NaN;
      let next: SchedulerState | null = null;
      let x0Kept: tf.Tensor4D | null = null;
      const xin = sched.scaleModelInput(state, x, t) as tf.Tensor4D;
      let eps0: tf.Tensor4D;
      try {
        eps0 = await modelEps(xin, t);
      } catch (e) {
        if (xin !== x) xin.dispose();
        throw e;
      }
      let prev: tf.Tensor4D;
      try {
        prev = tf.tidy(() => {
          let eps = eps0;
          if (eps.shape.join() !== xin.shape.join()) throw new GuidanceError(`the UNet returned shape [${eps.shape.join(', ')}] for latents [${xin.shape.join(', ')}] at step ${i + 1} (t=${t})`);
          if (guided) {
            const a = sched.alphaBar(t);
            const r = brainGuidance({ unet: o.unet, decode: o.decode, score: o.score!, x: xin, eps, t, alphaBar: a, guidanceScale: scale, gradient, context: cond, vaeScalingFactor: sf, scoreSize, predictionType: sched.config.predictionType });
            if (!allFinite(r.g)) throw new GuidanceError(`the guidance gradient is not finite at step ${i + 1} of ${timesteps.length} (t=${t}); lower guidanceScale or check the score`);
            gradNorm = (tf.norm(r.g).dataSync() as Float32Array)[0]!;
            score = r.score;
            const sb = Math.sqrt(1 - a);
            if (sched.config.predictionType === 'v_prediction') {
              // v' = v - (sqrt(1-a)/sqrt(a)) g: the same shift of x0hat (and of eps = sqrt(a) v + sqrt(1-a) x) as eps' = eps - sqrt(1-a) g
              eps = tf.sub(eps, tf.mul(r.g, sb / Math.sqrt(a))) as tf.Tensor4D;
            } else eps = tf.sub(eps, tf.mul(r.g, sb)) as tf.Tensor4D;
          }
          const st = sched.step(state, eps, t, x, { generator: gen });
          if (st.state.prevModelOutput) tf.keep(st.state.prevModelOutput);
          next = st.state;
          x0Kept = tf.keep(st.predOriginalSample as tf.Tensor4D);
          return st.prevSample as tf.Tensor4D;
        });
      } finally {
        eps0.dispose();
        if (xin !== x) xin.dispose();
      }
      const res = { prev, x0: x0Kept as unknown as tf.Tensor4D, next: next as unknown as SchedulerState };
      if (!allFinite(res.prev)) {
        tf.dispose([res.prev, res.x0]);
        disposeSchedulerState(res.next);
        throw new GuidanceError(`latents became NaN or infinite at step ${i + 1} of ${timesteps.length} (t=${t}); lower guidanceScale or cfgScale, or check the UNet`);
      }
      disposeSchedulerState(state);
      state = res.next;
      x.dispose();
      x = res.prev;
      gradNorms.push(gradNorm);
      scores.push(score);
      if (o.callback) {
        const decodePreview = () => toImages(res.x0);
        try {
          await o.callback({ step: i, t, latents: x, predOriginalSample: res.x0, decodePreview, gradNorm, score: guided ? score : undefined });
        } finally {
          res.x0.dispose();
        }
      } else res.x0.dispose();
      bar?.tick(1, guided ? `score ${score.toPrecision(4)}` : undefined);
    }
    bar?.done();
    const images = await toImages(x);
    return { images, latents: x, timesteps, gradNorms, scores };
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    disposeSchedulerState(state);
    tf.dispose([cond, uncond, both].filter((c): c is tf.Tensor3D => c !== null));
  }
}
