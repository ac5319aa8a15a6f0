/**
 * Resumable training state for the synthetic-world diffusion models: parameters, their EMA and the AdamW
 * moments, one pure-ish AdamW + EMA update, and checkpoints (one safetensors file holding all of it, written atomically).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FileFormatError } from '../io/errors.js';
import type { NDArray } from '../io/ndarray.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { progress } from '../notebook/progress.js';
import { adamwUpdate } from '../encoding/optimizer.js';
import { loadParams, type Params } from './pixel-unet.js';

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
const STATE_FILE = 'state.safetensors';
const STATE_FORMAT = 'brainnet-diffusion-train-state';

/**
 * Writes the state to `dir` as one file, `state.safetensors`: tensors `params/<name>`, `ema/<name>`, `m/<name>`,
 * `v/<name>`, and metadata with the step, the losses and `meta`. One file renamed into place, so a kill leaves
 * either the previous checkpoint or this one, never a mix of steps.
 */
export async function saveTrainState(dir: string, st: TrainState, meta: Record<string, unknown>): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, NDArray> = {};
  for (const f of FILES) {
    for (const [k, t] of Object.entries(st[f])) tensors[`${f}/${k}`] = { dtype: 'float32', shape: t.shape.slice(), data: Float32Array.from(t.dataSync() as Float32Array) };
  }
  await writeSafetensors(path.join(dir, STATE_FILE), tensors, { format: STATE_FORMAT, meta: JSON.stringify(meta), step: String(st.step), losses: JSON.stringify(st.losses) });
  // the layout before one file (four safetensors and state.json) is superseded
  for (const old of [...FILES.map((f) => `${f}.safetensors`), 'state.json']) fs.rmSync(path.join(dir, old), { force: true });
}

/**
 * Reads a state written by saveTrainState (or the older four-file layout), or null when `dir` has none; `meta` must
 * match what was saved (else an error naming both).
 */
export async function loadTrainState(dir: string, meta: Record<string, unknown>): Promise<TrainState | null> {
  const one = path.join(dir, STATE_FILE);
  const old = path.join(dir, 'state.json');
  if (!fs.existsSync(one) && !fs.existsSync(old)) return null;
  let saved: Record<string, unknown>, step: number, losses: number[], parts: Record<(typeof FILES)[number], Params>;
  if (fs.existsSync(one)) {
    const { tensors, metadata } = await readSafetensors(one);
    if (metadata.format !== STATE_FORMAT) throw new FileFormatError(one, `a diffusion training state (metadata format "${STATE_FORMAT}")`, `format "${metadata.format ?? 'none'}"`, 'Pass a checkpoint folder written by saveTrainState, or a new folder.');
    saved = JSON.parse(metadata.meta ?? '{}') as Record<string, unknown>;
    step = Number(metadata.step);
    losses = JSON.parse(metadata.losses ?? '[]') as number[];
    parts = { params: {}, ema: {}, m: {}, v: {} };
    for (const [name, t] of Object.entries(tensors)) {
      const [f, ...rest] = name.split('/');
      if (!(FILES as readonly string[]).includes(f!)) continue;
      parts[f as (typeof FILES)[number]][rest.join('/')] = tf.tensor(Float32Array.from(t.data as ArrayLike<number>), t.shape, 'float32');
    }
  } else {
    const j = JSON.parse(fs.readFileSync(old, 'utf8')) as Record<string, unknown> & { step: number; losses: number[] };
    saved = j;
    step = j.step;
    losses = j.losses;
    const [params, ema, m, v] = await Promise.all(FILES.map((f) => loadParams(path.join(dir, `${f}.safetensors`))));
    parts = { params: params!, ema: ema!, m: m!, v: v! };
  }
  for (const [k, want] of Object.entries(meta)) {
    if (JSON.stringify(saved[k]) !== JSON.stringify(want)) {
      for (const p of Object.values(parts)) Object.values(p).forEach((t) => t.dispose());
      throw new Error(`checkpoint ${dir} was trained with ${k} = ${JSON.stringify(saved[k])}, but this run asks for ${JSON.stringify(want)}; pass the same settings or a new checkpoint folder`);
    }
  }
  return { ...parts, step, losses };
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
