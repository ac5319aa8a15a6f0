/**
 * Training of the factorized encoding model: AdamW (decoupled weight decay, as torch.optim.AdamW),
 * smooth L1 plus the decaying regulariser, seeded shuffling, and validation R² / Pearson r per
 * vertex at the end of each epoch. A NaN loss stops training and names the batch.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import { FactorizedEncoder, encoderLoss, type TokenBatch } from './model.js';
import { pearsonPerVertex, r2PerVertex } from './metrics.js';
import { trainStepDevice } from './train-gpu.js';

/** AdamW settings; defaults are torch.optim.AdamW's (the paper uses lr 1e-3). */
export interface AdamWConfig {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** AdamW over tf.Variables, updated in float32 JavaScript arrays (deterministic on every backend). */
export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of updates done. */
  step = 0;
  private m = new Map<string, Float32Array>();
  private v = new Map<string, Float32Array>();

  constructor(cfg: AdamWConfig = {}) {
    this.lr = cfg.lr ?? 1e-3;
    this.beta1 = cfg.beta1 ?? 0.9;
    this.beta2 = cfg.beta2 ?? 0.999;
    this.eps = cfg.eps ?? 1e-8;
    this.weightDecay = cfg.weightDecay ?? 0.01;
  }

  /** One update of every variable from its gradient (same order as `vars`). */
  apply(vars: tf.Variable[], grads: tf.Tensor[]): void {
    this.step++;
    const t = this.step;
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    const { lr, beta1: b1, beta2: b2, eps } = this;
    const decay = 1 - lr * this.weightDecay;
    vars.forEach((variable, i) => {
      const g = grads[i]!.dataSync() as Float32Array;
      const p = Float32Array.from(variable.dataSync() as Float32Array);
      let m = this.m.get(variable.name);
      let v = this.v.get(variable.name);
      if (!m || !v) {
        m = new Float32Array(p.length);
        v = new Float32Array(p.length);
        this.m.set(variable.name, m);
        this.v.set(variable.name, v);
      }
      const stepSize = lr / bc1;
      const sqrtBc2 = Math.sqrt(bc2);
      for (let j = 0; j < p.length; j++) {
        const gj = g[j]!;
        const mj = (m[j] = b1 * m[j]! + (1 - b1) * gj);
        const vj = (v[j] = b2 * v[j]! + (1 - b2) * gj * gj);
        p[j] = p[j]! * decay - (stepSize * mj) / (Math.sqrt(vj) / sqrtBc2 + eps);
      }
      const next = tf.tensor(p, variable.shape);
      variable.assign(next);
      next.dispose();
    });
  }

  /** The optimizer state (moments by variable name, and the step) for checkpoints. */
  state(): { step: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> } {
    return { step: this.step, m: this.m, v: this.v };
  }

  /** Restores a state returned by `state()`. */
  setState(s: { step: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> }): void {
    this.step = s.step;
    this.m = new Map(s.m);
    this.v = new Map(s.v);
  }
}

/** Where the training data come from: tokens and responses of the images at the given indices. */
export interface EncoderData {
  /** Number of images. */
  size: number;
  /** Tokens (local [b, C_l, h, w], global [b, C_l] per layer) and responses [b, N] of images `idx`. */
  batch(idx: number[]): { tokens: TokenBatch; target: tf.Tensor2D };
}

/** What the progress callback receives after each step. */
export interface TrainProgress {
  epoch: number;
  step: number;
  /** Steps in the whole run. */
  totalSteps: number;
  /** Total loss (data + weighted regulariser) of this step. */
  loss: number;
  /** Smooth L1 part. */
  dataLoss: number;
}

/** Validation scores at the end of an epoch. */
export interface EpochReport {
  epoch: number;
  step: number;
  /** Mean training loss over the epoch. */
  trainLoss: number;
  /** Per-vertex R² and Pearson r on the validation images ([N]; empty without validation data). */
  r2: Float64Array;
  pearson: Float64Array;
  /** Means over vertices (NaN-free). */
  meanR2: number;
  meanPearson: number;
}

export interface TrainOptions {
  epochs?: number;
  /** Batch size (default 8). */
  batchSize?: number;
  /** Seed of the shuffling (default 0). */
  seed?: number;
  /** Optimizer settings (default lr 1e-3). */
  optimizer?: AdamWConfig;
  /** Regulariser weight (0.1) and the steps over which it decays to 0 (2000). */
  regLambda?: number;
  regDecaySteps?: number;
  /** Validation data; scored at the end of each epoch. */
  validation?: EncoderData;
  /** Called after each step (the notebook's progress bar). */
  onStep?: (p: TrainProgress) => void;
  /** Called after each epoch with the validation scores. */
  onEpoch?: (r: EpochReport) => void;
  /** Continue from this optimizer (exact resume with its state). */
  resumeFrom?: AdamW;
}

/** Thrown when the loss becomes NaN or infinite; says which epoch, step and batch. */
export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
  constructor(readonly epoch: number, readonly step: number, readonly batchIndices: number[], readonly loss: number) {
    super(
      `training stopped: the loss is ${loss} at epoch ${epoch}, step ${step}, batch of images [${batchIndices.slice(0, 16).join(', ')}${batchIndices.length > 16 ? ', ...' : ''}]. ` +
        'Check those images\' tokens and responses for NaN or huge values, or lower the learning rate.',
    );
  }
}

/** Seeded permutation of 0..n-1 for one epoch. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/** Predictions [size, N] of the model for every image of `data`, in batches. */
export function predictAll(model: FactorizedEncoder, data: EncoderData, batchSize = 8): { pred: Float32Array; truth: Float32Array } {
  const N = model.nVertices;
  const pred = new Float32Array(data.size * N);
  const truth = new Float32Array(data.size * N);
  for (let s = 0; s < data.size; s += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, data.size - s) }, (_, i) => s + i);
    const { tokens, target } = data.batch(idx);
    const p = model.predict(tokens);
    pred.set(p.dataSync() as Float32Array, s * N);
    truth.set(target.dataSync() as Float32Array, s * N);
    tf.dispose([p, target, ...tokens.local, ...tokens.global]);
  }
  return { pred, truth };
}

/** One training step on a batch: returns the total and data losses; updates the model in place. */
export function trainStep(
  model: FactorizedEncoder,
  opt: AdamW,
  tokens: TokenBatch,
  target: tf.Tensor2D,
  step: number,
  regLambda = 0.1,
  regDecaySteps = 2000,
): { loss: number; dataLoss: number } {
  // GPU backends (or model.head = 'device'): everything stays on the device, one readback per step.
  if (model.headKind() === 'device') return trainStepDevice(model, opt, tokens, target, step, regLambda, regDecaySteps);
  const vars = model.namedParams().map(([, v]) => v);
  let dataLossT: tf.Scalar | null = null;
  const { value, grads } = tf.variableGrads(() => {
    const { pred, reg } = model.forward(tokens);
    const total = encoderLoss(pred, target, reg, step, regLambda, regDecaySteps);
    dataLossT = tf.keep(encoderLoss(pred, target, reg, step, 0));
    return total;
  }, vars);
  const loss = value.dataSync()[0]!;
  const dataLoss = (dataLossT as tf.Scalar | null)?.dataSync()[0] ?? loss;
  if (Number.isFinite(loss)) opt.apply(vars, vars.map((v) => grads[v.name]!));
  tf.dispose([value, ...Object.values(grads)]);
  if (dataLossT) tf.dispose(dataLossT);
  return { loss, dataLoss };
}

/** Trains the model; returns the per-epoch reports and the optimizer (for resuming). */
export function trainEncoder(model: FactorizedEncoder, train: EncoderData, opts: TrainOptions = {}): { epochs: EpochReport[]; optimizer: AdamW; steps: number } {
  const epochs = opts.epochs ?? 1;
  const bs = opts.batchSize ?? 8;
  const seed = opts.seed ?? 0;
  const opt = opts.resumeFrom ?? new AdamW(opts.optimizer);
  const perEpoch = Math.ceil(train.size / bs);
  const totalSteps = epochs * perEpoch;
  const reports: EpochReport[] = [];
  let step = opt.step;
  const firstEpoch = Math.floor(step / perEpoch);
  for (let epoch = firstEpoch; epoch < epochs; epoch++) {
    const order = epochOrder(train.size, seed, epoch);
    let sum = 0;
    let count = 0;
    for (let k = step - epoch * perEpoch; k < perEpoch; k++) {
      const idx = order.slice(k * bs, (k + 1) * bs);
      const { tokens, target } = train.batch(idx);
      const { loss, dataLoss } = trainStep(model, opt, tokens, target, step, opts.regLambda, opts.regDecaySteps);
      tf.dispose([target, ...tokens.local, ...tokens.global]);
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(epoch, step, idx, loss);
      step++;
      sum += loss;
      count++;
      opts.onStep?.({ epoch, step, totalSteps, loss, dataLoss });
    }
    let r2: Float64Array = new Float64Array(0);
    let pearson: Float64Array = new Float64Array(0);
    if (opts.validation) {
      const { pred, truth } = predictAll(model, opts.validation, bs);
      r2 = r2PerVertex(pred, truth, model.nVertices);
      pearson = pearsonPerVertex(pred, truth, model.nVertices);
    }
    const mean = (a: Float64Array) => {
      let s = 0;
      let c = 0;
      for (const x of a) if (Number.isFinite(x)) (s += x), c++;
      return c ? s / c : NaN;
    };
    const report: EpochReport = { epoch, step, trainLoss: count ? sum / count : NaN, r2, pearson, meanR2: mean(r2), meanPearson: mean(pearson) };
    reports.push(report);
    opts.onEpoch?.(report);
  }
  return { epochs: reports, optimizer: opt, steps: step };
}
