/**
 * One training step of the factorized encoding model: forward, smooth L1 plus the decaying
 * regulariser, backward, and AdamW (skipped when the loss is not finite, so that the caller can stop
 * and name the batch). The model's read-out picks the path:
 *
 * - 'onnx' (onnx-step.ts): the whole forward and backward written out on the host, matmuls on
 *   onnxruntime's CPU provider (every core), AdamW on the host moments and host parameter copies;
 * - 'fused' (head.ts): gradients through the JavaScript read-out, AdamW on the host moments;
 * - 'device' (head-gpu.ts): forward, backward and AdamW all in tfjs ops on the device moments, so the
 *   only readback of the step is the pair (loss, data loss), 8 bytes, read asynchronously (webgpu in
 *   Node cannot read back synchronously). An allocation failure becomes a DeviceOutOfMemoryError
 *   naming the tensor sizes; no tensor of the failed step is left behind and no parameter changes.
 *   WebGPU does not throw on allocation failure: the step reads Dawn's out-of-memory error scope.
 */
import * as tf from '@tensorflow/tfjs';
import { DeviceOutOfMemoryError, activeBackend, isOutOfMemoryError, webgpuDevice } from '../compute/device.js';
import { encoderLoss, type FactorizedEncoder, type TokenBatch } from './model.js';
import type { AdamW } from './optimizer.js';
import { onnxEngine } from './onnx-step.js';

/** What one training step needs. */
export interface TrainStepOptions {
  model: FactorizedEncoder;
  optimizer: AdamW;
  /** Tokens of the batch: local [B, C_l, h, w] and global [B, C_l] per layer. */
  tokens: TokenBatch;
  /** Responses [B, N]. */
  target: tf.Tensor2D;
  /** Updates done before this one (drives the regulariser's decay). */
  step: number;
  /** Regulariser weight (default 0.1). */
  regLambda?: number;
  /** Steps over which the regulariser decays to 0 (default 2000). */
  regDecaySteps?: number;
}

/** Losses of one step: total (data + weighted regulariser) and the smooth L1 part. */
export interface StepLoss {
  loss: number;
  dataLoss: number;
}

/** One training step on a batch (see the file comment); updates the model and the optimizer in place. */
export async function trainStep(o: TrainStepOptions): Promise<StepLoss> {
  const kind = o.model.headKind();
  return kind === 'device' ? deviceStep(o) : kind === 'onnx' ? onnxStep(o) : fusedStep(o);
}

/** The host step (onnx-step.ts): forward and backward on onnxruntime and in JavaScript, AdamW on host copies. */
async function onnxStep(o: TrainStepOptions): Promise<StepLoss> {
  const engine = await onnxEngine(o.model);
  const r = await engine.lossAndGrads(o.tokens, o.target, { step: o.step, regLambda: o.regLambda, regDecaySteps: o.regDecaySteps });
  if (Number.isFinite(r.loss)) engine.apply(o.optimizer, r.grads);
  return { loss: r.loss, dataLoss: r.dataLoss };
}

/** The total and data losses of the model on the batch, inside a gradient tape. */
function losses(o: TrainStepOptions): { total: tf.Scalar; data: tf.Scalar } {
  const { pred, reg } = o.model.forward(o.tokens);
  const total = encoderLoss(pred, o.target, reg, o.step, o.regLambda ?? 0.1, o.regDecaySteps ?? 2000);
  return { total, data: encoderLoss(pred, o.target, reg, o.step, 0) };
}

/** The fused read-out's step: host AdamW, readbacks as the read-out needs them. */
function fusedStep(o: TrainStepOptions): StepLoss {
  const vars = o.model.namedParams().map(([, v]) => v);
  let dataLossT: tf.Scalar | null = null;
  const { value, grads } = tf.variableGrads(() => {
    const { total, data } = losses(o);
    dataLossT = tf.keep(data);
    return total;
  }, vars);
  const loss = value.dataSync()[0]!;
  const dataLoss = (dataLossT as tf.Scalar | null)?.dataSync()[0] ?? loss;
  if (Number.isFinite(loss)) o.optimizer.apply(vars, vars.map((v) => grads[v.name]!));
  tf.dispose([value, ...Object.values(grads)]);
  if (dataLossT) tf.dispose(dataLossT);
  return { loss, dataLoss };
}

/** The device read-out's step: one async readback of (loss, data loss), AdamW on the device moments. */
async function deviceStep(o: TrainStepOptions): Promise<StepLoss> {
  const dev = webgpuDevice();
  dev?.pushErrorScope('out-of-memory');
  let scoped = !!dev;
  const popScope = async (): Promise<{ message: string } | null> => {
    if (!scoped) return null;
    scoped = false;
    return dev!.popErrorScope();
  };
  let r: DeviceTensors;
  try {
    r = forwardBackward(o);
  } catch (e) {
    await popScope();
    throw e;
  }
  try {
    const [loss, dataLoss] = (await r.pair.data()) as Float32Array; // the one readback of the step
    const oom = await popScope();
    if (oom) throw new DeviceOutOfMemoryError('encoder training step', stepSizes(o), activeBackend(), new Error(`GPUOutOfMemoryError: ${oom.message}`));
    try {
      if (Number.isFinite(loss)) o.optimizer.applyOnDevice(r.vars, r.vars.map((v) => r.grads[v.name]!));
    } catch (e) {
      throw wrapOom(e, o);
    }
    return { loss: loss!, dataLoss: dataLoss! };
  } finally {
    await popScope();
    tf.dispose(r.pair);
    tf.dispose(Object.values(r.grads));
  }
}

interface DeviceTensors {
  pair: tf.Tensor1D;
  grads: tf.NamedTensorMap;
  vars: tf.Variable[];
}

/** Forward and backward on the device; the pair (loss, data loss) and the gradients stay there. */
function forwardBackward(o: TrainStepOptions): DeviceTensors {
  const vars = o.model.namedParams().map(([, v]) => v);
  try {
    const out = tf.tidy(() => {
      let dataT: tf.Scalar | null = null;
      const r = tf.variableGrads(() => {
        const { total, data } = losses(o);
        dataT = tf.keep(data);
        return total;
      }, vars);
      const d = dataT as tf.Scalar | null;
      const pair = tf.stack([r.value, d ?? r.value]) as tf.Tensor1D;
      if (d) d.dispose();
      return { pair, grads: r.grads };
    });
    return { ...out, vars };
  } catch (e) {
    releaseTape();
    throw wrapOom(e, o);
  }
}

/**
 * After a gradient computation threw, frees the tensors its tape saved for the backward pass (tfjs
 * does this only when the backward pass completes), exactly as tfjs's own clean-up does.
 */
function releaseTape(): void {
  const st = (tf.engine() as unknown as { state: { gradientDepth: number; activeTape: { saved?: tf.Tensor[] }[] | null } }).state;
  if (st.gradientDepth !== 0 || !st.activeTape) return;
  for (const node of st.activeTape) for (const t of node.saved ?? []) if (!t.isDisposed) t.dispose();
  st.activeTape = null;
}

/** Sizes named in an out-of-memory error of a training step. */
function stepSizes({ model, tokens }: TrainStepOptions): Record<string, number[]> {
  const B = tokens.local[0]?.shape[0] ?? 0;
  const L = model.layerWidths.length;
  const P = model.grid * model.grid;
  const N = model.nVertices;
  const D = model.dim;
  const chunk = Math.min(N, model.headChunk ?? N);
  const out: Record<string, number[]> = {};
  tokens.local.forEach((t, l) => { if (l < 2 || l === L - 1) out[`tokens.local[${l}]`] = t.shape; });
  out['read-out tokens TG'] = [L * (P + 1), B * D];
  out['sampling x layer matrix A (per chunk)'] = [chunk, L * (P + 1)];
  out['V (per chunk)'] = [chunk, B * D];
  out['prediction'] = [B, N];
  out['vertex weights'] = [N, D];
  return out;
}

function wrapOom(e: unknown, o: TrainStepOptions): unknown {
  return isOutOfMemoryError(e) ? new DeviceOutOfMemoryError('encoder training step', stepSizes(o), activeBackend(), e) : e;
}
