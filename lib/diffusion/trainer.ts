/**
 * Resumable training state for the synthetic-world diffusion models: parameters, their EMA and the AdamW
 * moments, one pure-ish AdamW + EMA update, and checkpoints (safetensors + state.json, written atomically).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomicSync } from '../io/atomic.js';
import { progress } from '../notebook/progress.js';
import { adamwUpdate } from '../encoding/optimizer.js';
import { loadParams, saveParams, type Params } from './pixel-unet.js';

/** Everything a resumed run needs; `step` counts finished updates and `losses` holds one value per step. */
export interface TrainState {
  params: Params;
  ema: Params;
  m: Params;
  v: Params;
  step: number;
  losses: number[];
}

/** AdamW settings; weight decay applies to weights (names ending in .w or .wN), not to biases or norm gains. */
export interface AdamWOptions {
  lr: number;
  emaDecay: number;
  /** Linear learning-rate warm-up, in steps (default 100). */
  warmup?: number;
  b1?: number;
  b2?: number;
  eps?: number;
  weightDecay?: number;
}

/** A fresh state from initial parameters (EMA = params, zero moments). */
export function freshTrainState(params: Params): TrainState {
  const copy = (f: (t: tf.Tensor) => tf.Tensor) => Object.fromEntries(Object.entries(params).map(([k, t]) => [k, f(t)]));
  return { params, ema: copy((t) => t.clone()), m: copy((t) => tf.zerosLike(t)), v: copy((t) => tf.zerosLike(t)), step: 0, losses: [] };
}

/** One AdamW step on `grads` (same names as the parameters; the one AdamW update, encoding/optimizer.ts), then the EMA update; replaces and disposes the old tensors. */
export function adamwEmaStep(st: TrainState, grads: Record<string, tf.Tensor>, o: AdamWOptions): void {
  const t = st.step + 1;
  const lr = o.lr * Math.min(1, t / (o.warmup ?? 100));
  for (const [n, g] of Object.entries(grads)) {
    const next = tf.tidy(() => {
      const weightDecay = /\.w\d?$/.test(n) ? (o.weightDecay ?? 0.01) : 0;
      const r = adamwUpdate(st.params[n]!, g, st.m[n]!, st.v[n]!, { step: t, lr, beta1: o.b1 ?? 0.9, beta2: o.b2 ?? 0.999, eps: o.eps ?? 1e-8, weightDecay });
      const ema = tf.add(tf.mul(st.ema[n]!, o.emaDecay), tf.mul(r.p, 1 - o.emaDecay));
      return { m: r.m, v: r.v, params: r.p, ema };
    });
    for (const key of ['m', 'v', 'params', 'ema'] as const) {
      st[key][n]!.dispose();
      st[key][n] = next[key];
    }
  }
  st.step = t;
}

const FILES = ['params', 'ema', 'm', 'v'] as const;

/** Writes the state to `dir` (four safetensors and state.json with the step, the losses and `meta`). */
export async function saveTrainState(dir: string, st: TrainState, meta: Record<string, unknown>): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of FILES) await saveParams(path.join(dir, `${f}.safetensors`), st[f]);
  writeFileAtomicSync(path.join(dir, 'state.json'), JSON.stringify({ ...meta, step: st.step, losses: st.losses }));
}

/** Reads a state written by saveTrainState, or null when `dir` has none; `meta` must match what was saved (else an error naming both). */
export async function loadTrainState(dir: string, meta: Record<string, unknown>): Promise<TrainState | null> {
  const file = path.join(dir, 'state.json');
  if (!fs.existsSync(file)) return null;
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown> & { step: number; losses: number[] };
  for (const [k, want] of Object.entries(meta)) {
    if (JSON.stringify(saved[k]) !== JSON.stringify(want)) throw new Error(`checkpoint ${dir} was trained with ${k} = ${JSON.stringify(saved[k])}, but this run asks for ${JSON.stringify(want)}; pass the same settings or a new checkpoint folder`);
  }
  const [params, ema, m, v] = await Promise.all(FILES.map((f) => loadParams(path.join(dir, `${f}.safetensors`))));
  return { params: params!, ema: ema!, m: m!, v: v!, step: saved.step, losses: saved.losses };
}

/** Options of {@link trainLoop}. */
export interface TrainLoopOptions {
  /** Train until st.step reaches this. */
  steps: number;
  /** Checkpoint every this many steps (and at the end). */
  every: number;
  label: string;
  adamw: AdamWOptions;
  /** The batch loss at `step` (data and noise derived from the step, so a resumed run continues the same sequence). */
  lossOf: (params: Params, step: number) => tf.Scalar;
  save: () => Promise<void>;
}

/** Runs AdamW + EMA steps on `lossOf` from st.step to o.steps, with a progress bar (100-step mean loss) and checkpoints. */
export async function trainLoop(st: TrainState, o: TrainLoopOptions): Promise<void> {
  const names = Object.keys(st.params);
  const bar = progress({ total: o.steps, label: o.label });
  bar.update(st.step);
  const t0 = Date.now();
  while (st.step < o.steps) {
    const { value, grads } = tf.tidy(() => {
      const f = (...ps: tf.Tensor[]) => o.lossOf(Object.fromEntries(names.map((n, k) => [n, ps[k]!])), st.step);
      const r = tf.valueAndGrads(f)(names.map((n) => st.params[n]!));
      return { value: r.value, grads: Object.fromEntries(names.map((n, k) => [n, r.grads[k]!])) };
    });
    adamwEmaStep(st, grads, o.adamw);
    st.losses.push(value.dataSync()[0]!);
    value.dispose();
    Object.values(grads).forEach((g) => g.dispose());
    const recent = st.losses.slice(-100);
    bar.update(st.step, `loss ${(recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
    if (st.step % o.every === 0 || st.step === o.steps) await o.save();
  }
  bar.done();
}
