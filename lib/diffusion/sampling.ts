/**
 * Brain-guided sampling, the loop (diffusers' pipeline shape): noise -> `steps` scheduler steps -> images.
 * Each step, with a = alpha_bar(t):
 *   1. the model input x_in = scaleModelInput(x_t) (VP-scaled; the identity except for Euler);
 *   2. eps from the UNet at x_in (classifier-free guidance: u + cfgScale (c - u) with the empty prompt u);
 *   3. with sagScale s > 0, self-attention guidance (sag.ts writes out its formulas): the first UNet pass also gives
 *      its mid-block self-attention A; x0hat from (x_in, eps_ref) is blurred where A's mask is 1, re-noised to t,
 *      and a second UNet pass gives eps'; then
 *        eps_sag = eps + s (eps_ref - eps')
 *      with eps_ref = eps (no CFG; context: the prompt) or u (CFG: A, x0hat and eps' from the unconditional half,
 *      eps' with the empty prompt);
 *   4. with a score: g from brainGuidance (guidance.ts, which writes out the rule and its sign), and
 *        eps'' = eps_sag - sqrt(1-a) g   (v-prediction: v'' = v_sag - sqrt(1-a)/sqrt(a) g, the same shift of x0hat);
 *      g does not see SAG: the 'full' gradient re-runs the UNet at x_in, the 'x0' gradient holds eps (step 2) constant;
 *   5. the scheduler steps with eps'' from x_t; a non-finite sample stops with a GuidanceError;
 *   6. the callback sees the new latents and the x0 estimate.
 * Then the final latents are decoded to images in [0,1].
 *
 * The order of 3 and 4 is BrainDiVE's (brain_guide_pipeline.py, `mypipelineSAG.__call__`, run with sag_scale=0.75):
 * the UNet and CFG, then SAG adds sag_scale (eps_ref - eps') to noise_pred, then `cond_fn` recomputes the UNet at
 * x_t with a gradient, and returns noise_pred - sqrt(1-a) grads; the scheduler steps with that. Both corrections are
 * additive and g does not depend on eps_sag, so one step's output is eps + s (eps_ref - eps') - sqrt(1-a) g.
 * With sagScale 0 (the default) step 3 is skipped and the loop is exactly what it is without SAG.
 */
import * as tf from '@tensorflow/tfjs';
import { progress, type ProgressOptions } from '../notebook/progress.js';
import { NoiseGenerator, disposeSchedulerState, type Scheduler, type SchedulerState } from './schedulers/index.js';
import { brainGuidance, GuidanceError, type DecodeFn, type GuidanceGradient, type ScoreFn, type UNetFn } from './guidance.js';
import { checkSagScale, sagStep, type AttentionUNetFn } from './sag.js';

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
  gradient?: GuidanceGradient;
  /** Text context for the prompt [1 or B, L, D] (e.g. CLIP text encoder's last_hidden_state). */
  cond?: tf.Tensor3D | null;
  /** Unconditional (empty prompt) context [1 or B, L, D]: enables classifier-free guidance with cfgScale. */
  uncond?: tf.Tensor3D | null;
  /** Classifier-free guidance scale (default 7.5 when uncond is given). */
  cfgScale?: number;
  /** Self-attention guidance scale s (Hong et al. 2022; BrainDiVE: 0.75); default 0 = off. Needs unetWithAttention. */
  sagScale?: number;
  /** A forward UNet that also returns its mid-block self-attention; with sagScale > 0 it runs each step's first UNet pass. */
  unetWithAttention?: AttentionUNetFn;
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
  const sagScale = o.sagScale ?? 0;
  if (o.sagScale !== undefined) checkSagScale(o.sagScale);
  if (sagScale > 0 && !o.unetWithAttention) throw new GuidanceError(`sagScale ${sagScale} needs unetWithAttention, a UNet that also returns its mid-block self-attention (StableDiffusionOnnx with the attention output); set sagScale 0 to sample without self-attention guidance`);
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

  const fwd = o.unetForward ?? ((a: tf.Tensor4D, tt: number, c: tf.Tensor3D | null) => tf.tidy(() => o.unet(a, tt, c)));
  /** eps at scaled latents (with classifier-free guidance when uncond is given); forward only. */
  const modelEps = async (xin: tf.Tensor4D, t: number): Promise<tf.Tensor4D> => {
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
  /** Step 2 and 3 with SAG: eps (CFG-combined) as modelEps gives it, and eps_sag = eps + s (eps_ref - eps'); forward only. */
  const sagEps = async (xin: tf.Tensor4D, t: number, step: number): Promise<{ eps: tf.Tensor4D; sag: tf.Tensor4D }> => {
    const cfgOn = !!both && cfg !== undefined;
    const input = cfgOn ? (tf.concat([xin, xin], 0) as tf.Tensor4D) : xin;
    let r: { eps: tf.Tensor4D; attention: tf.Tensor };
    try {
      r = await o.unetWithAttention!(input, t, cfgOn ? both : cond);
    } finally {
      if (input !== xin) input.dispose();
    }
    if (r.eps.shape.join() !== input.shape.join()) {
      tf.dispose([r.eps, r.attention]);
      throw new GuidanceError(`the UNet returned shape [${r.eps.shape.join(', ')}] for latents [${input.shape.join(', ')}] at step ${step + 1} (t=${t})`);
    }
    const n = r.attention.shape[0]!;
    if (cfgOn && n % 2 !== 0) {
      tf.dispose([r.eps, r.attention]);
      throw new GuidanceError(`the UNet's attention output has shape [${r.attention.shape.join(', ')}] for a classifier-free batch of ${2 * B} latents: its first dimension must be ${2 * B} or ${2 * B}·heads`);
    }
    // with CFG: the unconditional half (the first) gives the mask, x0hat and eps_ref, and eps' runs with the empty prompt
    const [eps, ref, attention] = cfgOn
      ? tf.tidy(() => {
          const [u, c] = tf.split(r.eps, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
          return [tf.add(u, tf.mul(tf.sub(c, u), cfg!)) as tf.Tensor4D, u, r.attention.slice(0, n / 2)];
        })
      : [r.eps, r.eps, r.attention];
    try {
      const s = await sagStep({ x: xin, out: ref, attention, alphaBar: sched.alphaBar(t), predictionType: sched.config.predictionType, guided: eps, scale: sagScale, t, unet: (z, tt) => fwd(z, tt, cfgOn ? uncond : cond) });
      tf.dispose([s.degraded, s.degradedOut]);
      return { eps, sag: s.out };
    } catch (e) {
      eps.dispose();
      throw e;
    } finally {
      tf.dispose([...new Set([r.eps, r.attention, ref, attention])].filter((x) => x !== eps));
    }
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
      let withSag: tf.Tensor4D | null = null;
      try {
        if (sagScale > 0) ({ eps: eps0, sag: withSag } = await sagEps(xin, t, i));
        else eps0 = await modelEps(xin, t);
      } catch (e) {
        if (xin !== x) xin.dispose();
        throw e;
      }
      let prev: tf.Tensor4D;
      try {
        prev = tf.tidy(() => {
          let eps = withSag ?? eps0;
          if (eps0.shape.join() !== xin.shape.join()) throw new GuidanceError(`the UNet returned shape [${eps0.shape.join(', ')}] for latents [${xin.shape.join(', ')}] at step ${i + 1} (t=${t})`);
          if (guided) {
            const a = sched.alphaBar(t);
            const r = brainGuidance({ unet: o.unet, decode: o.decode, score: o.score!, x: xin, eps: eps0, t, alphaBar: a, guidanceScale: scale, gradient, context: cond, vaeScalingFactor: sf, scoreSize, predictionType: sched.config.predictionType });
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
        withSag?.dispose();
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
