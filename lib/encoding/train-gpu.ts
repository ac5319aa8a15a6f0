/**
 * The training step for models whose read-out runs on the device (head-gpu.ts): forward, backward
 * and AdamW all in tfjs ops, so the only readback per step is the pair (loss, data loss), 8 bytes,
 * for progress and the NaN check. The AdamW moments live on the device as tf.Variables next to the
 * host optimizer (train.ts `AdamW`); `opt.state()` copies them to the host when asked (checkpoints),
 * and `opt.setState()` drops them so that the next step uploads the restored ones.
 *
 * On the webgpu backend in Node a synchronous readback (`dataSync`) is impossible: tfjs reads
 * synchronously through an OffscreenCanvas, which Node lacks. Use `trainStepAsync` there (and
 * `flushDeviceOptimizer` before a checkpoint); the synchronous step says so instead of crashing.
 */
import * as tf from '@tensorflow/tfjs';
import { encoderLoss, type FactorizedEncoder, type TokenBatch } from './model.js';
import { DeviceOutOfMemoryError, isOutOfMemoryError } from './head-gpu.js';
import type { AdamW } from './train.js';

type Moments = Map<string, { m: tf.Variable; v: tf.Variable }>;
const deviceMoments = new WeakMap<AdamW, Moments>();
/** Optimizers whose device moments changed since they were last copied to the host. */
const dirty = new WeakSet<AdamW>();

/** True when the active backend cannot read tensors back synchronously (webgpu in Node). */
export function syncReadbackUnsupported(backend: string = tf.getBackend()): boolean {
  return backend === 'webgpu' && typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined';
}

function noSyncReadback(what: string): Error {
  return new Error(
    `${what}: the ${tf.getBackend()} backend cannot read tensors back synchronously in Node (tfjs reads through an OffscreenCanvas, which Node lacks). ` +
      'Use the async form (trainStepAsync, or await flushDeviceOptimizer(opt) before opt.state()), or force another backend with BRAINNET_BACKEND=wasm.',
  );
}

/** Device moments of `opt`, created on first use; patches opt.state/setState to stay in sync. */
function momentsOf(opt: AdamW): Moments {
  let mom = deviceMoments.get(opt);
  if (mom) return mom;
  mom = new Map();
  deviceMoments.set(opt, mom);
  const state = opt.state.bind(opt);
  const setState = opt.setState.bind(opt);
  opt.state = () => {
    const st = state();
    const cur = deviceMoments.get(opt);
    if (cur && dirty.has(opt)) {
      if (syncReadbackUnsupported()) throw noSyncReadback('AdamW.state()');
      dirty.delete(opt);
      for (const [name, { m, v }] of cur) {
        st.m.set(name, Float32Array.from(m.dataSync() as Float32Array));
        st.v.set(name, Float32Array.from(v.dataSync() as Float32Array));
      }
    }
    return st;
  };
  opt.setState = (s) => {
    const cur = deviceMoments.get(opt);
    if (cur) for (const { m, v } of cur.values()) tf.dispose([m, v]);
    cur?.clear();
    setState(s);
  };
  return mom;
}

/** Copies the device moments of `opt` to its host state with async readbacks (before a checkpoint on webgpu). */
export async function flushDeviceOptimizer(opt: AdamW): Promise<void> {
  const mom = deviceMoments.get(opt);
  if (!mom || !dirty.has(opt)) return;
  const st = (Object.getPrototypeOf(opt) as AdamW).state.call(opt);
  for (const [name, { m, v }] of mom) {
    st.m.set(name, Float32Array.from((await m.data()) as Float32Array));
    st.v.set(name, Float32Array.from((await v.data()) as Float32Array));
  }
  dirty.delete(opt);
}

/** Frees the device moments of `opt` (after copying them to its host state). */
export function releaseDeviceMoments(opt: AdamW): void {
  const mom = deviceMoments.get(opt);
  if (!mom) return;
  opt.state();
  for (const { m, v } of mom.values()) tf.dispose([m, v]);
  mom.clear();
}

/** One AdamW update (torch.optim.AdamW semantics) of every variable, in tfjs ops on the device. */
export function adamwDevice(opt: AdamW, vars: tf.Variable[], grads: tf.Tensor[]): void {
  const mom = momentsOf(opt);
  dirty.add(opt);
  opt.step++;
  const t = opt.step;
  vars.forEach((variable, i) => {
    let mv = mom.get(variable.name);
    if (!mv) {
      // Resume: start from the host moments when there are some (setState / checkpoint).
      const hs = (Object.getPrototypeOf(opt) as AdamW).state.call(opt);
      const hm = hs.m.get(variable.name);
      const hv = hs.v.get(variable.name);
      const m0 = hm ? tf.tensor(hm, variable.shape) : tf.zerosLike(variable);
      const v0 = hv ? tf.tensor(hv, variable.shape) : tf.zerosLike(variable);
      mv = { m: tf.variable(m0, false), v: tf.variable(v0, false) };
      tf.dispose([m0, v0]);
      mom.set(variable.name, mv);
    }
    const { m, v } = mv;
    tf.tidy(() => {
      const r = adamwUpdate(variable, grads[i]!, m, v, { step: t, lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weightDecay });
      m.assign(r.m);
      v.assign(r.v);
      variable.assign(r.p);
    });
  });
}

/** One AdamW update in tfjs ops (torch.optim.AdamW semantics): parameter p, gradient g and moments m, v of one shape at update number `step` (from 1) -> the new p, m, v. Call inside tf.tidy. */
export function adamwUpdate(
  p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor,
  o: { step: number; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number },
): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  const decay = 1 - o.lr * o.weightDecay;
  const stepSize = o.lr / (1 - Math.pow(o.beta1, o.step));
  const sqrtBc2 = Math.sqrt(1 - Math.pow(o.beta2, o.step));
  const m1 = tf.add(tf.mul(m, o.beta1), tf.mul(g, 1 - o.beta1));
  const v1 = tf.add(tf.mul(v, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
  const upd = tf.div(tf.mul(m1, stepSize), tf.add(tf.div(tf.sqrt(v1), sqrtBc2), o.eps));
  return { p: tf.sub(tf.mul(p, decay), upd), m: m1, v: v1 };
}

/** Sizes named in an out-of-memory error of a training step. */
function stepSizes(model: FactorizedEncoder, tokens: TokenBatch): Record<string, number[]> {
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

/**
 * One training step with everything on the device: returns { loss, dataLoss } read back together
 * (one readback of 2 floats). An allocation failure becomes a DeviceOutOfMemoryError naming the
 * tensor sizes; no tensor of the failed step is left behind and no parameter is changed.
 * Synchronous: not on webgpu in Node (see trainStepAsync).
 */
export function trainStepDevice(
  model: FactorizedEncoder,
  opt: AdamW,
  tokens: TokenBatch,
  target: tf.Tensor2D,
  step: number,
  regLambda = 0.1,
  regDecaySteps = 2000,
): { loss: number; dataLoss: number } {
  if (syncReadbackUnsupported()) throw noSyncReadback('trainStep');
  const r = stepCore(model, tokens, target, step, regLambda, regDecaySteps);
  try {
    const [loss, dataLoss] = r.pair.dataSync() as Float32Array; // the one readback of the step
    return finish(model, opt, r, loss!, dataLoss!);
  } finally {
    release(r);
  }
}

/**
 * One training step on any backend, reading the loss back asynchronously: the device path
 * (model.headKind() 'device') with one readback of 2 floats, else the synchronous fused step.
 * Use it on webgpu, where a synchronous readback is impossible.
 */
export async function trainStepAsync(
  model: FactorizedEncoder,
  opt: AdamW,
  tokens: TokenBatch,
  target: tf.Tensor2D,
  step: number,
  regLambda = 0.1,
  regDecaySteps = 2000,
): Promise<{ loss: number; dataLoss: number }> {
  if (model.headKind() !== 'device') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { trainStep } = require('./train.js') as typeof import('./train.js');
    return trainStep(model, opt, tokens, target, step, regLambda, regDecaySteps);
  }
  // WebGPU does not throw on allocation failure: Dawn reports it to an error scope (else only to the
  // console) and the step goes on with invalid buffers. Catch it there, before AdamW changes anything.
  const dev = webgpuDevice();
  dev?.pushErrorScope('out-of-memory');
  let scoped = !!dev;
  const popScope = async (): Promise<{ message: string } | null> => {
    if (!scoped) return null;
    scoped = false;
    return dev!.popErrorScope();
  };
  let r: StepTensors;
  try {
    r = stepCore(model, tokens, target, step, regLambda, regDecaySteps);
  } catch (e) {
    await popScope();
    throw e;
  }
  try {
    const [loss, dataLoss] = (await r.pair.data()) as Float32Array; // the one readback of the step
    const oom = await popScope();
    if (oom) throw new DeviceOutOfMemoryError('encoder training step', stepSizes(model, tokens), tf.getBackend(), new Error(`GPUOutOfMemoryError: ${oom.message}`));
    return finish(model, opt, r, loss!, dataLoss!);
  } finally {
    await popScope();
    release(r);
  }
}

interface ErrorScopeDevice {
  pushErrorScope(filter: 'out-of-memory' | 'validation' | 'internal'): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

/** The GPUDevice of the tfjs webgpu backend when it is active, else null. */
export function webgpuDevice(): ErrorScopeDevice | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const d = (tf.backend() as unknown as { device?: ErrorScopeDevice }).device;
  return d && typeof d.pushErrorScope === 'function' ? d : null;
}

interface StepTensors {
  pair: tf.Tensor1D;
  grads: tf.NamedTensorMap;
  vars: tf.Variable[];
  tokens: TokenBatch;
}

/** Forward and backward on the device; the pair (loss, data loss) and the gradients stay there. */
function stepCore(model: FactorizedEncoder, tokens: TokenBatch, target: tf.Tensor2D, step: number, regLambda: number, regDecaySteps: number): StepTensors {
  const vars = model.namedParams().map(([, v]) => v);
  try {
    const out = tf.tidy(() => {
      let dataT: tf.Scalar | null = null;
      const r = tf.variableGrads(() => {
        const { pred, reg } = model.forward(tokens);
        const total = encoderLoss(pred, target, reg, step, regLambda, regDecaySteps);
        dataT = tf.keep(encoderLoss(pred, target, reg, step, 0));
        return total;
      }, vars);
      const d = dataT as tf.Scalar | null;
      const pair = tf.stack([r.value, d ?? r.value]) as tf.Tensor1D;
      if (d) d.dispose();
      return { pair, grads: r.grads };
    });
    return { ...out, vars, tokens };
  } catch (e) {
    releaseTape();
    throw wrapOom(e, model, tokens);
  }
}

function finish(model: FactorizedEncoder, opt: AdamW, r: StepTensors, loss: number, dataLoss: number): { loss: number; dataLoss: number } {
  try {
    if (Number.isFinite(loss)) adamwDevice(opt, r.vars, r.vars.map((v) => r.grads[v.name]!));
  } catch (e) {
    throw wrapOom(e, model, r.tokens);
  }
  return { loss, dataLoss };
}

function release(r: StepTensors): void {
  tf.dispose(r.pair);
  tf.dispose(Object.values(r.grads));
}

function wrapOom(e: unknown, model: FactorizedEncoder, tokens: TokenBatch): unknown {
  return isOutOfMemoryError(e) ? new DeviceOutOfMemoryError('encoder training step', stepSizes(model, tokens), tf.getBackend(), e) : e;
}
