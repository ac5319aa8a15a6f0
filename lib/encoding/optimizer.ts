/**
 * AdamW, the one optimizer of the project, with torch.optim.AdamW's semantics (decoupled weight
 * decay, bias-corrected moments). At update number t (from 1), for a parameter p with gradient g:
 *
 *   m <- b1 m + (1 - b1) g            v <- b2 v + (1 - b2) g^2
 *   p <- p (1 - lr wd) - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * `adamwUpdate` is this update in tfjs ops on one tensor; the diffusion trainer calls it on its own
 * state. The `AdamW` class holds the state of a set of tf.Variables (keyed by variable name) in two
 * declared places:
 * - host moments (float32 arrays), updated by `apply` in JavaScript: deterministic on every backend,
 *   used with the encoder's fused read-out;
 * - device moments (tf.Variables), updated by `applyOnDevice` with `adamwUpdate`: no readback, used
 *   with the device read-out and by the voxel encoder. They start from the host moments (a resumed
 *   run), and `state()` / `flush()` copy them back to the host (checkpoints).
 */
import * as tf from '@tensorflow/tfjs';
import { assertSyncReadback } from '../compute/device.js';

/** AdamW settings; defaults are torch.optim.AdamW's (the paper uses lr 1e-3). */
export interface AdamWConfig {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** The optimizer state a checkpoint stores: updates done, and the moments by variable name. */
export interface AdamWState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/**
 * One AdamW update in tfjs ops: parameter p, gradient g and moments m, v (all of one shape) at
 * update number `step` (from 1) -> the new p, m, v. Call inside tf.tidy.
 */
export function adamwUpdate(
  p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor,
  o: Required<AdamWConfig> & { step: number },
): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  const decay = 1 - o.lr * o.weightDecay;
  const stepSize = o.lr / (1 - Math.pow(o.beta1, o.step));
  const sqrtBc2 = Math.sqrt(1 - Math.pow(o.beta2, o.step));
  const m1 = tf.add(tf.mul(m, o.beta1), tf.mul(g, 1 - o.beta1));
  const v1 = tf.add(tf.mul(v, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
  const upd = tf.div(tf.mul(m1, stepSize), tf.add(tf.div(tf.sqrt(v1), sqrtBc2), o.eps));
  return { p: tf.sub(tf.mul(p, decay), upd), m: m1, v: v1 };
}

/** The AdamW update on host arrays: m, v in place, the new parameters into `p` (float64 arithmetic, float32 storage). */
function adamwHost(
  p0: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, p: Float32Array,
  k: { b1: number; b2: number; decay: number; stepSize: number; sqrtBc2: number; eps: number },
): void {
  const { b1, b2, decay, stepSize, sqrtBc2, eps } = k;
  const n = p.length;
  for (let j = 0; j < n; j++) {
    const gj = g[j]!;
    const mj = (m[j] = b1 * m[j]! + (1 - b1) * gj);
    const vj = (v[j] = b2 * v[j]! + (1 - b2) * gj * gj);
    p[j] = p0[j]! * decay - (stepSize * mj) / (Math.sqrt(vj) / sqrtBc2 + eps);
  }
}

/** AdamW over tf.Variables, with host moments (`apply`) and device moments (`applyOnDevice`); see the file comment. */
export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of updates done. */
  step = 0;
  /** Host moments by variable name. */
  private m = new Map<string, Float32Array>();
  private v = new Map<string, Float32Array>();
  /** Device moments by variable name, made on the first device update of each variable. */
  private readonly device = new Map<string, { m: tf.Variable; v: tf.Variable }>();
  /** True when the device moments changed since they were last copied to the host moments. */
  private deviceAhead = false;

  constructor(cfg: AdamWConfig = {}) {
    this.lr = cfg.lr ?? 1e-3;
    this.beta1 = cfg.beta1 ?? 0.9;
    this.beta2 = cfg.beta2 ?? 0.999;
    this.eps = cfg.eps ?? 1e-8;
    this.weightDecay = cfg.weightDecay ?? 0.01;
  }

  /** The settings, every default filled in. */
  get config(): Required<AdamWConfig> {
    return { lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay };
  }

  /** One update of every variable from its gradient (same order as `vars`), in float32 JavaScript arrays (host moments). */
  apply(vars: tf.Variable[], grads: tf.Tensor[]): void {
    this.applyHost(vars, vars.map((v) => v.dataSync() as Float32Array), grads.map((g) => g.dataSync() as Float32Array));
  }

  /**
   * One update from host values: parameters `params` and gradients `grads` (same order as `vars`), host
   * moments. Returns the new values (in `out` when given, else fresh arrays; `params` are not changed)
   * and assigns copies of them to `vars` (`upload` makes the tensor; default tf.tensor).
   */
  applyHost(vars: tf.Variable[], params: Float32Array[], grads: Float32Array[], out?: Float32Array[], upload: (p: Float32Array, shape: number[]) => tf.Tensor = (p, shape) => tf.tensor(p, shape)): Float32Array[] {
    this.step++;
    const t = this.step;
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    const { lr, beta1: b1, beta2: b2, eps } = this;
    const decay = 1 - lr * this.weightDecay;
    const k = { b1, b2, decay, stepSize: lr / bc1, sqrtBc2: Math.sqrt(bc2), eps };
    return vars.map((variable, i) => {
      const g = grads[i]!;
      const p0 = params[i]!;
      if (g.length !== p0.length) throw new Error(`AdamW: the gradient of ${variable.name} has ${g.length} values, the parameter ${p0.length}.`);
      let m = this.m.get(variable.name);
      let v = this.v.get(variable.name);
      if (!m || !v) {
        m = new Float32Array(p0.length);
        v = new Float32Array(p0.length);
        this.m.set(variable.name, m);
        this.v.set(variable.name, v);
      }
      const p = out?.[i] ?? new Float32Array(p0.length);
      adamwHost(p0, g, m, v, p, k);
      const next = upload(p, variable.shape);
      variable.assign(next);
      next.dispose();
      return p;
    });
  }

  /** One update of every variable from its gradient (same order as `vars`), in tfjs ops with device moments: no readback. */
  applyOnDevice(vars: tf.Variable[], grads: tf.Tensor[]): void {
    this.deviceAhead = true;
    this.step++;
    const o = { ...this.config, step: this.step };
    vars.forEach((variable, i) => {
      const { m, v } = this.deviceMoments(variable);
      tf.tidy(() => {
        const r = adamwUpdate(variable, grads[i]!, m, v, o);
        m.assign(r.m);
        v.assign(r.v);
        variable.assign(r.p);
      });
    });
  }

  /** The device moments of `variable`, made from its host moments (a resumed run) or zeros. */
  private deviceMoments(variable: tf.Variable): { m: tf.Variable; v: tf.Variable } {
    let mv = this.device.get(variable.name);
    if (mv) return mv;
    const hm = this.m.get(variable.name);
    const hv = this.v.get(variable.name);
    const m0 = hm ? tf.tensor(hm, variable.shape) : tf.zerosLike(variable);
    const v0 = hv ? tf.tensor(hv, variable.shape) : tf.zerosLike(variable);
    mv = { m: tf.variable(m0, false), v: tf.variable(v0, false) };
    tf.dispose([m0, v0]);
    this.device.set(variable.name, mv);
    return mv;
  }

  /**
   * The state for checkpoints (the live host moments). Device moments that changed are copied to the
   * host first with synchronous readbacks; on webgpu in Node, `await flush()` first.
   */
  state(): AdamWState {
    if (this.deviceAhead) {
      assertSyncReadback('AdamW.state()', 'await opt.flush() before opt.state()');
      for (const [name, { m, v }] of this.device) {
        this.m.set(name, Float32Array.from(m.dataSync() as Float32Array));
        this.v.set(name, Float32Array.from(v.dataSync() as Float32Array));
      }
      this.deviceAhead = false;
    }
    return { step: this.step, m: this.m, v: this.v };
  }

  /** Copies device moments that changed to the host moments with async readbacks (works on every backend). */
  async flush(): Promise<void> {
    if (!this.deviceAhead) return;
    for (const [name, { m, v }] of this.device) {
      this.m.set(name, Float32Array.from((await m.data()) as Float32Array));
      this.v.set(name, Float32Array.from((await v.data()) as Float32Array));
    }
    this.deviceAhead = false;
  }

  /** Restores a state returned by `state()`; device moments are dropped and made again from it on the next device update. */
  setState(s: AdamWState): void {
    this.freeDevice();
    this.step = s.step;
    this.m = new Map(s.m);
    this.v = new Map(s.v);
  }

  /** Frees the device moments; the optimizer is not used afterwards. */
  dispose(): void {
    this.freeDevice();
  }

  private freeDevice(): void {
    for (const { m, v } of this.device.values()) tf.dispose([m, v]);
    this.device.clear();
    this.deviceAhead = false;
  }
}
