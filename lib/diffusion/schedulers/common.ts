/**
 * What every diffusion scheduler shares, with diffusers' shape: a scheduler is
 * `setTimesteps(n) -> state`, `scaleModelInput(state, x, t)`, `step(state, eps, t, x) ->
 * { prevSample, predOriginalSample, state }` and `addNoise(x0, noise, t)` (ddim.ts, dpmpp2m.ts, euler.ts).
 *
 * Coefficients are computed in float64 from the published formulas; the arrays are tfjs
 * tensors (any shape, usually latents [B, 4, h, w]). State is passed explicitly: `step` never
 * mutates its input state, and the state it returns carries the step index and (DPM-Solver++)
 * the model-output history, whose tensors the caller owns (`disposeSchedulerState`).
 *
 * Here: the configuration, beta schedules and alpha_bar, timestep spacing, the x0/eps conversion of
 * a model output, the seeded noise source, and the bookkeeping of a step (`checkStep`, `advance`).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng.js';

/** Beta schedules as diffusers names them. */
export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
/** How inference timesteps are spread over the training steps. */
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
/** What the model predicts. */
export type PredictionType = 'epsilon' | 'v_prediction';
/** The scheduler names {@link makeScheduler} knows, for validating a string. */
export const SCHEDULER_KINDS = ['ddim', 'dpmpp2m', 'euler'] as const;
/** Scheduler kinds: DDIM, DPM-Solver++ 2M, Euler. */
export type SchedulerKind = (typeof SCHEDULER_KINDS)[number];

/** Scheduler configuration (diffusers' scheduler_config.json keys, camel-cased); defaults are SD-2.1-base's. */
export interface SchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
  predictionType: PredictionType;
  /** DDIM: alpha_bar used after the last step is 1 (true) or alpha_bar[0] (false, SD-2.1). */
  setAlphaToOne: boolean;
}

/** SD-2.1-base's scheduler settings: scaled_linear 0.00085..0.012, 1000 steps, leading spacing with offset 1, epsilon. */
export const SD21_SCHEDULER_CONFIG: SchedulerConfig = {
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  timestepSpacing: 'leading',
  stepsOffset: 1,
  predictionType: 'epsilon',
  setAlphaToOne: false,
};

/** Reads a diffusers scheduler_config.json object (snake_case keys) into a SchedulerConfig over the SD-2.1 defaults. */
export function schedulerConfigFromJson(json: Record<string, unknown>): SchedulerConfig {
  const c = { ...SD21_SCHEDULER_CONFIG };
  const num = (k: string) => (typeof json[k] === 'number' ? (json[k] as number) : undefined);
  const str = (k: string) => (typeof json[k] === 'string' ? (json[k] as string) : undefined);
  c.numTrainTimesteps = num('num_train_timesteps') ?? c.numTrainTimesteps;
  c.betaStart = num('beta_start') ?? c.betaStart;
  c.betaEnd = num('beta_end') ?? c.betaEnd;
  c.betaSchedule = (str('beta_schedule') as BetaSchedule | undefined) ?? c.betaSchedule;
  c.timestepSpacing = (str('timestep_spacing') as TimestepSpacing | undefined) ?? c.timestepSpacing;
  c.stepsOffset = num('steps_offset') ?? c.stepsOffset;
  c.predictionType = (str('prediction_type') as PredictionType | undefined) ?? c.predictionType;
  if (typeof json['set_alpha_to_one'] === 'boolean') c.setAlphaToOne = json['set_alpha_to_one'] as boolean;
  if (!['linear', 'scaled_linear', 'squaredcos_cap_v2'].includes(c.betaSchedule)) throw new Error(`scheduler config: beta_schedule "${c.betaSchedule}" is not supported; expected linear, scaled_linear or squaredcos_cap_v2`);
  if (!['leading', 'trailing', 'linspace'].includes(c.timestepSpacing)) throw new Error(`scheduler config: timestep_spacing "${c.timestepSpacing}" is not supported; expected leading, trailing or linspace`);
  if (!['epsilon', 'v_prediction'].includes(c.predictionType)) throw new Error(`scheduler config: prediction_type "${c.predictionType}" is not supported; expected epsilon or v_prediction`);
  return c;
}

/** Betas [T] (float64) for a schedule. */
export function makeBetas(cfg: Pick<SchedulerConfig, 'numTrainTimesteps' | 'betaStart' | 'betaEnd' | 'betaSchedule'>): Float64Array {
  const T = cfg.numTrainTimesteps;
  const b = new Float64Array(T);
  const lin = (a: number, z: number, i: number) => (T === 1 ? a : a + ((z - a) * i) / (T - 1));
  if (cfg.betaSchedule === 'linear') for (let i = 0; i < T; i++) b[i] = lin(cfg.betaStart, cfg.betaEnd, i);
  else if (cfg.betaSchedule === 'scaled_linear') for (let i = 0; i < T; i++) b[i] = lin(Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd), i) ** 2;
  else if (cfg.betaSchedule === 'squaredcos_cap_v2') {
    const ab = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI * 0.5) ** 2;
    for (let i = 0; i < T; i++) b[i] = Math.min(1 - ab((i + 1) / T) / ab(i / T), 0.999);
  } else throw new Error(`unknown beta schedule "${String(cfg.betaSchedule)}"`);
  return b;
}

/** Cumulative products alpha_bar[t] = prod_{s<=t} (1 - beta_s), [T] float64. */
export function alphasCumprod(betas: Float64Array): Float64Array {
  const a = new Float64Array(betas.length);
  let p = 1;
  for (let i = 0; i < betas.length; i++) a[i] = p *= 1 - betas[i]!;
  return a;
}

/** Inference timesteps, descending, for n steps (DPM-Solver++ spreads n+1 points and drops the last, as diffusers does). */
export function spacedTimesteps(cfg: SchedulerConfig, n: number, kind: SchedulerKind): number[] {
  const T = cfg.numTrainTimesteps;
  if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`setTimesteps: number of steps must be an integer in 1..${T}, got ${n}`);
  const out: number[] = [];
  if (cfg.timestepSpacing === 'linspace') {
    // numpy.linspace(0, T-1, k): i * ((T-1)/(k-1)), last point exactly T-1; numpy rounds half to even
    const linspace = (k: number, i: number) => (k === 1 ? 0 : i === k - 1 ? T - 1 : i * ((T - 1) / (k - 1)));
    if (kind === 'dpmpp2m') {
      // linspace(0, T-1, n+1).round()[::-1][:-1]
      for (let i = n; i >= 1; i--) out.push(roundHalfEven(linspace(n + 1, i)));
    } else if (kind === 'euler') {
      for (let i = n - 1; i >= 0; i--) out.push(linspace(n, i)); // float timesteps
    } else {
      for (let i = n - 1; i >= 0; i--) out.push(roundHalfEven(linspace(n, i)));
    }
  } else if (cfg.timestepSpacing === 'leading') {
    if (kind === 'dpmpp2m') {
      const ratio = Math.floor(T / (n + 1));
      for (let i = n; i >= 1; i--) out.push(i * ratio + cfg.stepsOffset);
    } else {
      const ratio = Math.floor(T / n);
      for (let i = n - 1; i >= 0; i--) out.push(i * ratio + cfg.stepsOffset);
    }
  } else {
    // trailing: round(arange(T, 0, -T/n)) - 1
    const ratio = T / n;
    for (let i = 0; i < n; i++) out.push(roundHalfEven(T - i * ratio) - 1);
  }
  return out;
}

/** numpy's round (half to even). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** alpha_bar and sigma of one configuration: the table, and lookups at (possibly fractional) timesteps. */
export interface NoiseTables {
  /** alpha_bar[t] for t = 0..T-1 (float64). */
  alphasCumprod: Float64Array;
  /** alpha_bar at timestep t, linearly interpolated for fractional t; throws outside 0..T-1. */
  alphaBar(t: number): number;
  /** sigma = sqrt((1 - alpha_bar) / alpha_bar) at timestep t, linearly interpolated in sigma (as diffusers) for fractional t. */
  sigmaAt(t: number): number;
}

/** The noise tables of a configuration (betas -> alpha_bar -> sigma). */
export function noiseTables(config: SchedulerConfig): NoiseTables {
  const ac = alphasCumprod(makeBetas(config));
  const T = config.numTrainTimesteps;
  return {
    alphasCumprod: ac,
    alphaBar(t: number): number {
      if (!(t >= 0 && t <= T - 1)) throw new Error(`timestep ${t} is outside 0..${T - 1}`);
      const lo = Math.floor(t);
      const f = t - lo;
      return f === 0 ? ac[lo]! : ac[lo]! * (1 - f) + ac[Math.min(lo + 1, T - 1)]! * f;
    },
    sigmaAt(t: number): number {
      // diffusers interpolates sigma (not alpha_bar) for fractional timesteps
      const lo = Math.floor(t);
      const f = t - lo;
      const s = (i: number) => Math.sqrt((1 - ac[i]!) / ac[i]!);
      return f === 0 ? s(lo) : s(lo) * (1 - f) + s(Math.min(lo + 1, T - 1)) * f;
    },
  };
}

/** Explicit scheduler state: timesteps, sigmas (Euler, DPM), step index and DPM-Solver++'s history. */
export interface SchedulerState {
  kind: SchedulerKind;
  timesteps: number[];
  /** sigma_i = sqrt((1 - abar)/abar) at each timestep, plus a final 0 (Euler, DPM-Solver++). */
  sigmas: number[];
  /** Index of the next step. */
  stepIndex: number;
  /** DPM-Solver++: the previous step's converted model output (x0 prediction), owned by the caller. */
  prevModelOutput: tf.Tensor | null;
  /** DPM-Solver++: how many lower-order steps were taken (warm-up). */
  lowerOrderNums: number;
}

/** A fresh state at step 0 over these timesteps (and sigmas). */
export function initialState(kind: SchedulerKind, timesteps: number[], sigmas: number[]): SchedulerState {
  return { kind, timesteps, sigmas, stepIndex: 0, prevModelOutput: null, lowerOrderNums: 0 };
}

/** Checks that `state` belongs to a `kind` scheduler and expects timestep t next; returns the step index. */
export function checkStep(kind: SchedulerKind, state: SchedulerState, t: number): number {
  const i = state.stepIndex;
  if (state.kind !== kind) throw new Error(`scheduler step: state is for ${state.kind}, scheduler is ${kind}`);
  if (i >= state.timesteps.length) throw new Error(`scheduler step: all ${state.timesteps.length} steps are done`);
  if (Math.abs(state.timesteps[i]! - t) > 1e-6) throw new Error(`scheduler step ${i}: expected timestep ${state.timesteps[i]}, got ${t}`);
  return i;
}

/** The state after one step: the next step index, with `patch` applied (the input state is not changed). */
export function advance(state: SchedulerState, patch: Partial<SchedulerState> = {}): SchedulerState {
  return { ...state, stepIndex: state.stepIndex + 1, ...patch };
}

/** Result of one scheduler step. */
export interface StepResult {
  /** x_{t-1}, same shape as the sample. */
  prevSample: tf.Tensor;
  /** The model's x0 estimate at this step. */
  predOriginalSample: tf.Tensor;
  /** The state for the next step (the input state is not changed). */
  state: SchedulerState;
}

/** Options for one step. */
export interface StepOptions {
  /** DDIM with eta > 0: the noise to add (same shape as the sample); otherwise drawn from `generator`. */
  noise?: tf.Tensor;
  /** Seeded noise source for DDIM eta > 0. */
  generator?: NoiseGenerator;
}

/** A seeded Gaussian noise source. */
export class NoiseGenerator {
  private rng: Rng;
  constructor(readonly seed: number) {
    this.rng = new Rng(seed);
  }
  /** Standard normal noise of the given shape (float32). */
  randn(shape: number[]): tf.Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = this.rng.normal();
    return tf.tensor(v, shape, 'float32');
  }
}

/** A scheduler: pure functions over explicit state. */
export interface Scheduler {
  readonly kind: SchedulerKind;
  readonly config: SchedulerConfig;
  /** alpha_bar[t] for t = 0..T-1 (float64). */
  readonly alphasCumprod: Float64Array;
  /** Fresh state for n inference steps. */
  setTimesteps(n: number): SchedulerState;
  /** Standard deviation of the initial noise (1 for DDIM and DPM-Solver++; sigma_max-based for Euler). */
  initNoiseSigma(state: SchedulerState): number;
  /** Model input for latents x at timestep t (identity except Euler: x / sqrt(sigma^2 + 1)). */
  scaleModelInput(state: SchedulerState, x: tf.Tensor, t: number): tf.Tensor;
  /** One denoising step from the model output at timestep t and sample x. */
  step(state: SchedulerState, modelOutput: tf.Tensor, t: number, x: tf.Tensor, opts?: StepOptions): StepResult;
  /** Forward diffusion: x0 noised to timestep t (integer), in this scheduler's sample space. */
  addNoise(x0: tf.Tensor, noise: tf.Tensor, t: number): tf.Tensor;
  /** alpha_bar at timestep t (linear interpolation for non-integer t). */
  alphaBar(t: number): number;
}

/** Forward diffusion in VP space (DDIM, DPM-Solver++): sqrt(a) x0 + sqrt(1-a) noise with a = alpha_bar(t), shapes of x0. */
export function addNoiseVP(tables: NoiseTables, x0: tf.Tensor, noise: tf.Tensor, t: number): tf.Tensor {
  return tf.tidy(() => {
    const a = tables.alphaBar(t);
    return tf.add(tf.mul(x0, Math.sqrt(a)), tf.mul(noise, Math.sqrt(1 - a)));
  });
}

/** x0 and eps [same shape as x] from a model's output (epsilon or v) at alpha_bar `a` and the VP sample x. */
export function modelX0AndEps(out: tf.Tensor, x: tf.Tensor, a: number, predictionType: PredictionType): [tf.Tensor, tf.Tensor] {
  const sa = Math.sqrt(a);
  const sb = Math.sqrt(1 - a);
  if (predictionType === 'epsilon') return [tf.div(tf.sub(x, tf.mul(out, sb)), sa), out];
  return [tf.sub(tf.mul(x, sa), tf.mul(out, sb)), tf.add(tf.mul(out, sa), tf.mul(x, sb))];
}

/** Disposes the tensors a scheduler state holds (DPM-Solver++'s history). */
export function disposeSchedulerState(state: SchedulerState): void {
  state.prevModelOutput?.dispose();
}
