/**
 * The training loop of the factorized encoding model: seeded shuffling per epoch, one `trainStep`
 * per batch (AdamW, smooth L1 plus the decaying regulariser), validation R² / Pearson r per vertex at
 * the end of each epoch, early stopping on the validation mean R² (the best epoch's parameters kept),
 * exact resume from an optimizer's step (checkpoint.ts), and a stop with a NonFiniteLossError naming
 * the batch when the loss becomes NaN or infinite. Batches may come synchronously or asynchronously (a
 * token cache on disk).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import type { FactorizedEncoder, TokenBatch } from './model.js';
import { meanFinite, pearsonPerVertex, r2PerVertex } from './metrics.js';
import { AdamW, type AdamWConfig } from './optimizer.js';
import { trainStep } from './train-step.js';
import { onnxEngine } from './onnx-step.js';

/** Tokens (local [b, C_l, h, w], global [b, C_l] per layer) and responses [b, N] of a batch of images. */
export interface EncoderBatch {
  tokens: TokenBatch;
  target: tf.Tensor2D;
}

/** Where the training data come from: the batch of the images at the given indices (0..size-1), now or later. */
export interface EncoderData {
  /** Number of images. */
  size: number;
  /** The batch of images `idx`; the loop disposes its tensors. */
  batch(idx: number[]): EncoderBatch | Promise<EncoderBatch>;
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

/**
 * Early stopping on the validation mean R² (needs `validation`): training stops once `patience` epochs in
 * a row did not raise the best validation mean R² by more than `minDelta`, or at `epochs`; either way
 * the parameters of the best epoch are put back ("converged": the validation R² reached its plateau).
 */
export interface EarlyStopping {
  /** Epochs without an improvement before training stops. */
  patience: number;
  /** Smallest rise of the validation mean R² that counts as an improvement (default 1e-4). */
  minDelta?: number;
  /** The best epoch so far of a resumed run: its index, validation mean R², and its parameters (`model.namedParams()` order) when known. */
  best?: BestEpoch;
}

/** The best epoch of a run with early stopping. */
export interface BestEpoch {
  epoch: number;
  meanR2: number;
  /** Parameters at the end of that epoch (`model.namedParams()` order). */
  params?: Float32Array[];
}

/** Options of {@link trainEncoder}. */
export interface TrainOptions {
  /** Epochs (the most, with early stopping; default 1). */
  epochs?: number;
  /** Stop when the validation mean R² stops rising (see {@link EarlyStopping}). */
  earlyStopping?: EarlyStopping;
  /** Awaited when an epoch is the best so far (early stopping only), before `onEpoch` (e.g. to keep its checkpoint). */
  onBest?: (r: EpochReport, optimizer: AdamW) => void | Promise<void>;
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
  /** Awaited after each epoch with the validation scores and the optimizer (e.g. to write a checkpoint). */
  onEpoch?: (r: EpochReport, optimizer: AdamW) => void | Promise<void>;
  /** Continue from this optimizer (exact resume with its state). */
  resumeFrom?: AdamW;
  /** Stop after this many optimizer steps in total (mid-epoch allowed; for tests and time budgets). */
  stopAtStep?: number;
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

/** Predictions [size, N] and responses [size, N] of every image of `data`, in batches. */
export async function predictAll(model: FactorizedEncoder, data: EncoderData, batchSize = 8): Promise<{ pred: Float32Array; truth: Float32Array }> {
  const N = model.nVertices;
  const pred = new Float32Array(data.size * N);
  const truth = new Float32Array(data.size * N);
  for (let s = 0; s < data.size; s += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, data.size - s) }, (_, i) => s + i);
    const { tokens, target } = await data.batch(idx);
    if (model.headKind() === 'onnx') {
      pred.set(await (await onnxEngine(model)).predict(tokens), s * N);
    } else {
      const p = model.predict(tokens);
      pred.set((await p.data()) as Float32Array, s * N);
      p.dispose();
    }
    truth.set((await target.data()) as Float32Array, s * N);
    tf.dispose([target, ...tokens.local, ...tokens.global]);
  }
  return { pred, truth };
}

/** What {@link trainEncoder} returns. */
export interface TrainResult {
  /** Reports of the epochs this call finished. */
  epochs: EpochReport[];
  /** The optimizer (for resuming). */
  optimizer: AdamW;
  /** Optimizer steps reached. */
  steps: number;
  /** With early stopping: the best epoch (its parameters are the model's now), whether patience ran out, and whether parameters were put back. */
  best?: { epoch: number; meanR2: number };
  stoppedEarly: boolean;
  restored: boolean;
}

/** Copies of the model's parameters (`namedParams()` order), read asynchronously (any backend). */
async function snapshot(model: FactorizedEncoder): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const [, v] of model.namedParams()) out.push(Float32Array.from((await v.data()) as Float32Array));
  return out;
}

/** Trains the model (see the file comment); returns the reports of the epochs it finished, the optimizer (for resuming), the step reached and, with early stopping, the best epoch. */
export async function trainEncoder(model: FactorizedEncoder, train: EncoderData, opts: TrainOptions = {}): Promise<TrainResult> {
  const epochs = opts.epochs ?? 1;
  const bs = opts.batchSize ?? 8;
  const seed = opts.seed ?? 0;
  const optimizer = opts.resumeFrom ?? new AdamW(opts.optimizer);
  const perEpoch = Math.ceil(train.size / bs);
  const totalSteps = epochs * perEpoch;
  const stopAt = Math.min(opts.stopAtStep ?? Infinity, totalSteps);
  const reports: EpochReport[] = [];
  let step = optimizer.step;
  const es = opts.earlyStopping;
  if (es && !opts.validation) throw new Error('trainEncoder: early stopping needs validation data; pass `validation` or drop `earlyStopping`.');
  let best: BestEpoch | null = es?.best ? { ...es.best } : null;
  let stoppedEarly = false;
  const patienceOut = (lastEpoch: number) => !!es && !!best && lastEpoch - best.epoch >= es.patience;
  for (let epoch = Math.floor(step / perEpoch); epoch < epochs && step < stopAt; epoch++) {
    if (patienceOut(epoch - 1)) {
      stoppedEarly = true; // a resumed run whose patience had already run out
      break;
    }
    // 1. the epoch's batches, from where the optimizer stands
    const order = epochOrder(train.size, seed, epoch);
    let sum = 0;
    let count = 0;
    for (let k = step - epoch * perEpoch; k < perEpoch && step < stopAt; k++) {
      const idx = order.slice(k * bs, (k + 1) * bs);
      const { tokens, target } = await train.batch(idx);
      let r: { loss: number; dataLoss: number };
      try {
        r = await trainStep({ model, optimizer, tokens, target, step, regLambda: opts.regLambda, regDecaySteps: opts.regDecaySteps });
      } finally {
        tf.dispose([target, ...tokens.local, ...tokens.global]);
      }
      if (!Number.isFinite(r.loss)) throw new NonFiniteLossError(epoch, step, idx, r.loss);
      step++;
      sum += r.loss;
      count++;
      opts.onStep?.({ epoch, step, totalSteps, loss: r.loss, dataLoss: r.dataLoss });
    }
    if (step % perEpoch !== 0 && step < totalSteps) break; // stopped mid-epoch: no epoch report
    // 2. validation scores
    let r2: Float64Array = new Float64Array(0);
    let pearson: Float64Array = new Float64Array(0);
    if (opts.validation) {
      const { pred, truth } = await predictAll(model, opts.validation, bs);
      r2 = r2PerVertex(pred, truth, model.nVertices);
      pearson = pearsonPerVertex(pred, truth, model.nVertices);
    }
    const report: EpochReport = { epoch, step, trainLoss: count ? sum / count : NaN, r2, pearson, meanR2: meanFinite(r2), meanPearson: meanFinite(pearson) };
    reports.push(report);
    if (es && (!best || report.meanR2 > best.meanR2 + (es.minDelta ?? 1e-4))) {
      best = { epoch, meanR2: report.meanR2, params: await snapshot(model) };
      await opts.onBest?.(report, optimizer);
    }
    await opts.onEpoch?.(report, optimizer);
    if (patienceOut(epoch)) {
      stoppedEarly = true;
      break;
    }
  }
  // 3. with early stopping, the best epoch's parameters (not after a stop mid-epoch: that run goes on later)
  const lastEpoch = Math.ceil(step / perEpoch) - 1;
  const finished = stoppedEarly || step % perEpoch === 0 || step >= totalSteps;
  let restored = false;
  if (finished && best?.params && best.epoch !== lastEpoch) {
    const names = model.namedParams().map(([name]) => name);
    model.setParams(Object.fromEntries(names.map((n, i) => [n, best!.params![i]!])));
    restored = true;
  }
  return { epochs: reports, optimizer, steps: step, best: best ? { epoch: best.epoch, meanR2: best.meanR2 } : undefined, stoppedEarly, restored };
}
