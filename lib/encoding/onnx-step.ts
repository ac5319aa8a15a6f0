/**
 * The encoder's training step on the host, written out by hand: the matmuls and the per-vertex
 * weightings run in onnxruntime's CPU provider (onnx-graphs.ts: native SIMD on every core, where
 * tfjs-wasm runs one thread), the O(N) rest in JavaScript (onnx-readout.ts), AdamW on host arrays
 * (optimizer.ts). Same model and loss as `model.forward` + `encoderLoss`; the test suite checks both
 * against the PyTorch fixture. Four graph runs a step:
 *
 *   1. `selectors forward`: the three MLPs on the position encoding -> xy = tanh, p = softmax, s = sigmoid;
 *   2. `forward`: bottlenecks, then per bilinear cell (head.ts groups vertices by the cell their (x, y)
 *      falls in) one matmul with the cell's K = B * 5 * L token rows, weighted by the read-out weights
 *      A (corner or scale weight times layer weight) -> pred [B, N] (+ bias);
 *   3. loss: smooth L1 (beta 0.1) + lambda max(0, 1 - step / decay) (negative entropy + (s - 0.5)^2),
 *      its gradient through the read-out weights to p, s and xy, then to the selectors' logits;
 *   4. `head backward`: the vertex weights' and the bottlenecks' gradients;
 *   5. `selectors backward`: the MLPs' gradients; then AdamW.
 *
 * The engine keeps a host copy of every parameter (read again when a variable was assigned elsewhere:
 * checkpoints, setParams), so a step reads back only the tokens and the targets. One call at a time:
 * work buffers are reused from call to call.
 */
import * as tf from '@tensorflow/tfjs';
import type * as ortTypes from 'onnxruntime-node';
import { activeBackend } from '../compute/device.js';
import { loadOnnxRuntime } from '../compute/onnx.js';
import type { FactorizedEncoder, TokenBatch } from './model.js';
import { regWeight } from './model.js';
import type { AdamW } from './optimizer.js';
import { HEAD_J, cellCorners, planBilinear, rowsInCellOrder, type BilinearPlan } from './head.js';
import {
  SELECTORS, forwardGraph, headBackwardGraph, selectorChunks, selectorOutputs, selectorsBackwardGraph, selectorsForwardGraph, type GraphDims,
} from './onnx-graphs.js';
import {
  activateSelectors, addRegulariserGrads, blocksFromGrad, predFromBlocks, readoutWeightGrads, readoutWeights, regulariser, selectorLogitGrads, smoothL1Grad,
} from './onnx-readout.js';

type Ort = typeof ortTypes;
type Session = ortTypes.InferenceSession;
type Feeds = Record<string, ortTypes.Tensor>;

/** Selector outputs of every vertex, and the pre-activations the backward pass needs. */
interface SelectorState {
  /** [N, 2] tanh. */
  xy: Float32Array;
  /** [N, L] softmax. */
  p: Float32Array;
  /** [N] sigmoid. */
  s: Float32Array;
  /** Pre-activations of the MLPs' two hidden layers, 3 x [N, H] each (space, layer, scale). */
  z1: Float32Array[];
  z2: Float32Array[];
}

/** What the forward pass leaves for the backward pass. */
interface ForwardState {
  B: number;
  plan: BilinearPlan;
  /** [N sorted, D] vertex weights in cell order. */
  Ws: Float32Array;
  /** Read-out weights, cell-blocked [5 L, r_c] (onnx-readout.ts). */
  A: Float32Array;
  /** [L B (P + 1) + 1, D] the token table. */
  TG: Float32Array;
  /** Host tokens x_l [B, C_l, P], g_l [B, C_l]. */
  x: Float32Array[];
  g: Float32Array[];
  /** [B, N] prediction with the bias. */
  pred: Float32Array;
}

/** Loss of a step and the gradient of every parameter, in `model.namedParams()` order (the engine's buffers: valid until its next call). */
export interface HostGradients {
  loss: number;
  dataLoss: number;
  grads: Float32Array[];
}

/** Options of the loss: the step (the regulariser's decay), its weight and decay length. */
export interface HostLossOptions {
  step: number;
  regLambda?: number;
  regDecaySteps?: number;
}

const engines = new WeakMap<FactorizedEncoder, Promise<OnnxEncoderEngine>>();

/** The host engine of `model` (sessions made on first use, released with the model). */
export function onnxEngine(model: FactorizedEncoder): Promise<OnnxEncoderEngine> {
  let e = engines.get(model);
  if (!e) {
    const made = OnnxEncoderEngine.create(model);
    e = made;
    engines.set(model, made);
    model.onDispose(() => {
      engines.delete(model);
      made.then((x) => x.release(), () => {});
    });
  }
  return e;
}

/**
 * Session options of the host step: every core (onnxruntime's default), or `BRAINNET_ONNX_THREADS`
 * threads. The same machine and thread count give the same numbers; another thread count can move the
 * last bits (onnx-graphs.ts), and `BRAINNET_ONNX_PROFILE=prefix` writes onnxruntime's per-op profiles.
 */
function sessionOptions(): ortTypes.InferenceSession.SessionOptions {
  const threads = Number(process.env['BRAINNET_ONNX_THREADS'] ?? 0);
  const prof = process.env['BRAINNET_ONNX_PROFILE'];
  return {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all', interOpNumThreads: 1, ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
    ...(prof ? { enableProfiling: true, profileFilePrefix: prof } : {}),
  };
}

/** Sessions, constant inputs and host parameters of one model; see the file comment. */
export class OnnxEncoderEngine {
  private readonly vars: tf.Variable[];
  private readonly mirror = new Map<tf.Variable, { dataId: object; data: Float32Array }>();
  /** The other buffer of each parameter's host copy (see {@link apply}). */
  private readonly spare = new Map<tf.Variable, Float32Array>();
  private readonly pe: Float32Array;
  private readonly peDim: number;
  private readonly ones: Float32Array;
  private readonly onesCells: Float32Array;
  /** Row chunks of the selector graphs (onnx-graphs.ts). */
  private readonly rowChunks: number[];
  private readonly rowsCache = new Map<number, BigInt64Array[]>();
  /** Work buffers by name, reused from call to call (they save GC work, not arithmetic). */
  private readonly scratch = new Map<string, Float32Array>();
  private selectorCache: { key: object[]; state: SelectorState } | null = null;
  /** When set, the wall and CPU seconds (every thread of the process) of each phase of the steps are added here (the benchmark's breakdown). */
  profile: Record<string, { wall: number; cpu: number }> | null = null;

  private constructor(
    private readonly model: FactorizedEncoder,
    private readonly ort: Ort,
    private readonly sessions: { selectors: Session; forward: Session; headGrad: Session; selectorsGrad: Session },
  ) {
    this.vars = model.namedParams().map(([, v]) => v);
    this.pe = Float32Array.from(model.pe.dataSync() as Float32Array);
    this.peDim = model.pe.shape[1];
    this.ones = new Float32Array(model.nVertices).fill(1);
    this.onesCells = new Float32Array((model.grid + 1) ** 2).fill(1);
    this.rowChunks = graphDims(model).chunks;
  }

  /** Builds the four graphs for the model's sizes and opens their sessions. */
  static async create(model: FactorizedEncoder): Promise<OnnxEncoderEngine> {
    const ort = loadOnnxRuntime();
    if (!ort) throw new Error('the encoder\'s host step needs onnxruntime-node, which did not load; reinstall it (npm ci) or set the model\'s head to \'fused\'.');
    const d = graphDims(model);
    const opts = sessionOptions();
    const open = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, opts);
    const [selectors, forward, headGrad, selectorsGrad] = await Promise.all([
      open(selectorsForwardGraph(d)), open(forwardGraph(d)), open(headBackwardGraph(d)), open(selectorsBackwardGraph(d)),
    ]);
    return new OnnxEncoderEngine(model, ort, { selectors, forward, headGrad, selectorsGrad });
  }

  /** Frees the sessions. */
  async release(): Promise<void> {
    await Promise.all(Object.values(this.sessions).map((s) => s.release()));
  }

  /** Host copy of a parameter, read again when the variable was assigned since. */
  private host(v: tf.Variable): Float32Array {
    const m = this.mirror.get(v);
    if (m && m.dataId === v.dataId) return m.data;
    const data = Float32Array.from(v.dataSync() as Float32Array);
    this.mirror.set(v, { dataId: v.dataId, data });
    return data;
  }

  /** A work buffer of `n` floats named `name` (contents undefined), reused across calls. */
  private buf(name: string, n: number): Float32Array {
    let a = this.scratch.get(name);
    if (!a || a.length !== n) {
      a = new Float32Array(n);
      this.scratch.set(name, a);
    }
    return a;
  }

  private t(data: Float32Array, dims: number[]): ortTypes.Tensor {
    return new this.ort.Tensor('float32', data, dims);
  }

  private i64(values: number[] | BigInt64Array): ortTypes.Tensor {
    const a = values instanceof BigInt64Array ? values : BigInt64Array.from(values, (v) => BigInt(v));
    return new this.ort.Tensor('int64', a, [a.length]);
  }

  /** Calls `f(chunk, firstRow, endRow)` for each row chunk of the selector graphs. */
  private chunks(f: (c: number, r0: number, r1: number) => void): void {
    let r0 = 0;
    this.rowChunks.forEach((n, c) => {
      f(c, r0, r0 + n);
      r0 += n;
    });
  }

  /** Selector outputs and pre-activations of every vertex (cached while the selector weights are unchanged). */
  async selectors(): Promise<SelectorState> {
    const m = this.model;
    const mlps = [m.space, m.layer, m.scale];
    const key = mlps.flatMap((x) => [x.w1, x.b1, x.w2, x.b2, x.w3].map((v) => v.dataId));
    const c = this.selectorCache;
    if (c && c.key.every((k, i) => k === key[i])) return c.state;
    const N = m.nVertices;
    const H = m.hidden;
    const outs = selectorOutputs(m.layerWidths.length);
    const feeds: Feeds = {};
    const fetches: Record<string, ortTypes.Tensor> = {};
    SELECTORS.forEach((s, k) => {
      feeds[`w1_${s}`] = this.t(this.host(mlps[k]!.w1), [this.peDim, H]);
      feeds[`b1_${s}`] = this.t(this.host(mlps[k]!.b1), [H]);
      feeds[`w2_${s}`] = this.t(this.host(mlps[k]!.w2), [H, H]);
      feeds[`b2_${s}`] = this.t(this.host(mlps[k]!.b2), [H]);
      feeds[`w3_${s}`] = this.t(this.host(mlps[k]!.w3), [H, outs[k]!]);
    });
    const z1 = SELECTORS.map((s) => this.buf(`z1_${s}`, N * H));
    const z2 = SELECTORS.map((s) => this.buf(`z2_${s}`, N * H));
    const o = SELECTORS.map((s, k) => this.buf(`o_${s}`, N * outs[k]!));
    this.chunks((c, r0, r1) => {
      feeds[`pe_${c}`] = this.t(this.pe.subarray(r0 * this.peDim, r1 * this.peDim), [r1 - r0, this.peDim]);
      SELECTORS.forEach((s, k) => {
        fetches[`z1_${s}_${c}`] = this.t(z1[k]!.subarray(r0 * H, r1 * H), [r1 - r0, H]);
        fetches[`z2_${s}_${c}`] = this.t(z2[k]!.subarray(r0 * H, r1 * H), [r1 - r0, H]);
        fetches[`o_${s}_${c}`] = this.t(o[k]!.subarray(r0 * outs[k]!, r1 * outs[k]!), [r1 - r0, outs[k]!]);
      });
    });
    await this.sessions.selectors.run(feeds, fetches);
    const state: SelectorState = { ...activateSelectors(o[0]!, o[1]!, o[2]!, N, outs[1]), z1, z2 };
    this.selectorCache = { key, state };
    return state;
  }

  /** The batch's host tokens x_l [B, C_l, P] (resized to g x g when needed) and g_l [B, C_l]. */
  private hostTokens(tokens: TokenBatch): { x: Float32Array[]; g: Float32Array[]; B: number } {
    const m = this.model;
    const B = m.checkTokens(tokens);
    const gs = m.grid;
    const x = tokens.local.map((t) => {
      if (t.shape[2] === gs && t.shape[3] === gs) return t.dataSync() as Float32Array;
      return tf.tidy(() => tf.transpose(tf.image.resizeBilinear(tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D, [gs, gs], false, true), [0, 3, 1, 2])).dataSync() as Float32Array;
    });
    return { x, g: tokens.global.map((t) => t.dataSync() as Float32Array), B };
  }

  /** Which rows of the token table TG the K columns (b, j, l) of each cell read, per batch size. */
  private cellRows(B: number): BigInt64Array[] {
    const hit = this.rowsCache.get(B);
    if (hit) return hit;
    const m = this.model;
    const L = m.layerWidths.length;
    const P = m.grid * m.grid;
    const zero = L * B * (P + 1);
    const out: BigInt64Array[] = [];
    for (let c = 0; c < (m.grid + 1) ** 2; c++) {
      const cc = cellCorners(c, m.grid);
      const idx = new BigInt64Array(B * HEAD_J * L);
      for (let b = 0; b < B; b++) for (let j = 0; j < HEAD_J; j++) for (let l = 0; l < L; l++) {
        const pos = j < 4 ? cc[j]! : -2;
        const row = pos === -2 ? L * B * P + l * B + b : pos === -1 ? zero : (l * B + b) * P + pos;
        idx[(b * HEAD_J + j) * L + l] = BigInt(row);
      }
      out.push(idx);
    }
    this.rowsCache.set(B, out);
    return out;
  }

  /** Feeds of the forward and head-backward graphs: tokens and each cell's inputs (onnx-graphs.ts `cellInputs`). */
  private cellFeeds(f: Pick<ForwardState, 'B' | 'plan' | 'Ws' | 'A' | 'x' | 'g'>): Feeds {
    const m = this.model;
    const { B, plan, Ws, A } = f;
    const D = m.dim;
    const JL = HEAD_J * m.layerWidths.length;
    const P = m.grid * m.grid;
    const feeds: Feeds = {};
    m.layerWidths.forEach((c, l) => {
      feeds[`x${l}`] = this.t(f.x[l]!, [B, c, P]);
      feeds[`g${l}`] = this.t(f.g[l]!, [B, c]);
    });
    const rows = this.cellRows(B);
    for (let c = 0; c < rows.length; c++) {
      const r0 = plan.cellStart[c]!;
      const rc = plan.cellStart[c + 1]! - r0;
      feeds[`w${c}`] = this.t(Ws.subarray(r0 * D, (r0 + rc) * D), [rc, D]);
      feeds[`a${c}`] = this.t(A.subarray(JL * r0, JL * (r0 + rc)), [JL, rc]);
      feeds[`idx${c}`] = this.i64(rows[c]!);
      feeds[`shape3_${c}`] = this.i64([B, JL, rc]);
      feeds[`shape2_${c}`] = this.i64([B * JL, rc]);
    }
    return feeds;
  }

  /** Bottlenecks and read-out: the prediction [B, N] with the bias, and what the backward pass needs. */
  private async forward(sel: SelectorState, tokens: TokenBatch, pred: Float32Array | null): Promise<ForwardState> {
    const m = this.model;
    const N = m.nVertices;
    const D = m.dim;
    const L = m.layerWidths.length;
    const { x, g, B } = this.hostTokens(tokens);
    const plan = planBilinear(sel.xy, m.grid);
    const Ws = rowsInCellOrder(this.host(m.weight), D, plan.order, this.buf('Ws', N * D));
    const A = readoutWeights(plan, sel.s, sel.p, L, D, this.buf('A', N * HEAD_J * L));
    const feeds = this.cellFeeds({ B, plan, Ws, A, x, g });
    m.layerWidths.forEach((c, l) => {
      feeds[`wl${l}`] = this.t(this.host(m.localBottleneck[l]!), [c, D]);
      feeds[`wg${l}`] = this.t(this.host(m.globalBottleneck[l]!), [c, D]);
    });
    const rowsTG = L * B * (m.grid * m.grid + 1) + 1;
    const blocks = this.buf('predBlocks', B * N);
    const fetches: Record<string, ortTypes.Tensor> = { tg: this.t(this.buf('TG', rowsTG * D), [rowsTG, D]) };
    for (let c = 0; c < plan.cellStart.length - 1; c++) {
      const r0 = plan.cellStart[c]!;
      const r1 = plan.cellStart[c + 1]!;
      fetches[`pred${c}`] = this.t(blocks.subarray(B * r0, B * r1), [B, r1 - r0]);
    }
    await this.sessions.forward.run(feeds, fetches);
    const out = predFromBlocks(blocks, plan, this.host(m.bias), B, pred ?? new Float32Array(B * N));
    return { B, plan, Ws, A, TG: fetches['tg']!.data as Float32Array, x, g, pred: out };
  }

  /** Predictions [B, N] (with the bias) for a token batch; no gradient state is kept. */
  async predict(tokens: TokenBatch): Promise<Float32Array> {
    return (await this.forward(await this.selectors(), tokens, null)).pred;
  }

  /** Loss and the gradient of every parameter on a batch (tokens, target [B, N]). */
  async lossAndGrads(tokens: TokenBatch, target: tf.Tensor2D, o: HostLossOptions): Promise<HostGradients> {
    const m = this.model;
    const N = m.nVertices;
    const L = m.layerWidths.length;
    const clock = this.clock();
    // 1-2. forward
    const sel = await this.selectors();
    clock('selectors forward (onnx)');
    const f = await this.forward(sel, tokens, this.buf('pred', m.checkTokens(tokens) * N));
    const B = f.B;
    clock('bottlenecks and read-out forward (onnx)');
    // 3. loss
    const y = target.dataSync() as Float32Array;
    if (y.length !== B * N) throw new Error(`encoder step: the targets have ${y.length} values, expected [${B}, ${N}] (batch x vertices).`);
    const dPred = this.buf('dPred', B * N);
    const dataLoss = smoothL1Grad(f.pred, y, dPred);
    const w = regWeight(o.step, o.regLambda ?? 0.1, o.regDecaySteps ?? 2000);
    const loss = w === 0 ? dataLoss : dataLoss + w * regulariser(sel.p, sel.s, N, L);
    const dBias = this.buf('dBias', N).fill(0);
    for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) dBias[n]! += dPred[b * N + n]!;
    clock('loss (js)');
    // 4. the read-out's and the bottlenecks' gradients
    const byVar = await this.headBackward(f, dPred);
    clock('read-out and bottlenecks backward (onnx)');
    // 5. through the read-out weights to the selectors, then the MLPs
    const g = { dp: this.buf('dp', N * L), ds: this.buf('ds', N), dxy: this.buf('dxy', 2 * N) };
    readoutWeightGrads(this.buf('dA', N * HEAD_J * L), f.plan, sel.s, sel.p, { L, D: m.dim, grid: m.grid }, g);
    if (w !== 0) addRegulariserGrads(g.dp, g.ds, sel.p, sel.s, N, L, w);
    const outs = selectorOutputs(L);
    const dLogits = { space: this.buf('dSpace', N * outs[0]), layer: this.buf('dLayer', N * outs[1]), scale: this.buf('dScale', N * outs[2]) };
    selectorLogitGrads(sel, g, N, L, dLogits);
    clock('read-out weights backward (js)');
    await this.selectorsBackward(sel, dLogits, byVar);
    byVar.set(m.bias, dBias);
    clock('selectors backward (onnx)');
    return { loss, dataLoss, grads: this.vars.map((v) => byVar.get(v)!) };
  }

  /** Gradients of the vertex weights and the bottlenecks from dPred [B, N]; the read-out weights' gradient goes to buffer `dA`. */
  private async headBackward(f: ForwardState, dPred: Float32Array): Promise<Map<tf.Variable, Float32Array>> {
    const m = this.model;
    const { B, plan } = f;
    const N = m.nVertices;
    const D = m.dim;
    const JL = HEAD_J * m.layerWidths.length;
    const feeds = this.cellFeeds(f);
    feeds['tg'] = this.t(f.TG, [f.TG.length / D, D]);
    feeds['ones_cells'] = this.t(this.onesCells, [1, this.onesCells.length]);
    const dy = blocksFromGrad(dPred, plan, B, N, this.buf('dyBlocks', B * N));
    const dA = this.buf('dA', N * JL);
    const dWs = this.buf('dWs', N * D);
    const fetches: Record<string, ortTypes.Tensor> = {};
    for (let c = 0; c < plan.cellStart.length - 1; c++) {
      const r0 = plan.cellStart[c]!;
      const rc = plan.cellStart[c + 1]! - r0;
      feeds[`dy${c}`] = this.t(dy.subarray(B * r0, B * (r0 + rc)), [B, 1, rc]);
      fetches[`da${c}`] = this.t(dA.subarray(JL * r0, JL * (r0 + rc)), [JL, rc]);
      fetches[`dwc${c}`] = this.t(dWs.subarray(r0 * D, (r0 + rc) * D), [rc, D]);
    }
    m.layerWidths.forEach((c, l) => {
      fetches[`dwl${l}`] = this.t(this.buf(`dwl${l}`, c * D), [c, D]);
      fetches[`dwg${l}`] = this.t(this.buf(`dwg${l}`, c * D), [c, D]);
    });
    await this.sessions.headGrad.run(feeds, fetches);
    const out = new Map<tf.Variable, Float32Array>();
    m.layerWidths.forEach((_, l) => {
      out.set(m.localBottleneck[l]!, fetches[`dwl${l}`]!.data as Float32Array).set(m.globalBottleneck[l]!, fetches[`dwg${l}`]!.data as Float32Array);
    });
    const dW = this.buf('dW', N * D);
    for (let r = 0; r < N; r++) dW.set(dWs.subarray(r * D, (r + 1) * D), plan.order[r]! * D);
    out.set(m.weight, dW);
    return out;
  }

  /** The selector MLPs' gradients from their logits' gradients, added to `out` by variable. */
  private async selectorsBackward(sel: SelectorState, dLogits: { space: Float32Array; layer: Float32Array; scale: Float32Array }, out: Map<tf.Variable, Float32Array>): Promise<void> {
    const m = this.model;
    const H = m.hidden;
    const peDim = this.peDim;
    const mlps = [m.space, m.layer, m.scale];
    const outs = selectorOutputs(m.layerWidths.length);
    const feeds: Feeds = {};
    this.chunks((c, r0, r1) => {
      feeds[`pe_${c}`] = this.t(this.pe.subarray(r0 * peDim, r1 * peDim), [r1 - r0, peDim]);
      feeds[`ones_${c}`] = this.t(this.ones.subarray(r0, r1), [1, r1 - r0]);
      SELECTORS.forEach((s, k) => {
        feeds[`z1_${s}_${c}`] = this.t(sel.z1[k]!.subarray(r0 * H, r1 * H), [r1 - r0, H]);
        feeds[`z2_${s}_${c}`] = this.t(sel.z2[k]!.subarray(r0 * H, r1 * H), [r1 - r0, H]);
        feeds[`do_${s}_${c}`] = this.t(dLogits[s].subarray(r0 * outs[k]!, r1 * outs[k]!), [r1 - r0, outs[k]!]);
      });
    });
    const fetches: Record<string, ortTypes.Tensor> = {};
    const shapes = (o: number): Record<string, number[]> => ({ dw1: [peDim, H], db1: [1, H], dw2: [H, H], db2: [1, H], dw3: [H, o] });
    SELECTORS.forEach((s, k) => {
      feeds[`w2_${s}`] = this.t(this.host(mlps[k]!.w2), [H, H]);
      feeds[`w3_${s}`] = this.t(this.host(mlps[k]!.w3), [H, outs[k]!]);
      for (const [name, dims] of Object.entries(shapes(outs[k]!))) fetches[`${name}_${s}`] = this.t(this.buf(`${name}_${s}`, dims[0]! * dims[1]!), dims);
    });
    await this.sessions.selectorsGrad.run(feeds, fetches);
    SELECTORS.forEach((s, k) => {
      for (const name of ['w1', 'b1', 'w2', 'b2', 'w3'] as const) out.set(mlps[k]![name], fetches[`d${name}_${s}`]!.data as Float32Array);
    });
  }

  /**
   * One AdamW update of every parameter from `grads` (namedParams order) on the host copies; the
   * variables get the new values. The host copies alternate between two buffers per parameter (the
   * tfjs cpu backend keeps a reference to what it is given, so it gets a copy).
   */
  apply(optimizer: AdamW, grads: Float32Array[]): void {
    const clock = this.clock();
    const params = this.vars.map((v) => this.host(v));
    const out = this.vars.map((v, i) => {
      const spare = this.spare.get(v);
      return spare && spare !== params[i] && spare.length === params[i]!.length ? spare : new Float32Array(params[i]!.length);
    });
    const aliases = activeBackend() === 'cpu';
    const next = optimizer.applyHost(this.vars, params, grads, out, (p, shape) => tf.tensor(aliases ? p.slice() : p, shape));
    this.vars.forEach((v, i) => {
      this.spare.set(v, params[i]!);
      this.mirror.set(v, { dataId: v.dataId, data: next[i]! });
    });
    clock('AdamW and variable upload (js)');
  }

  /** A lap timer adding to `profile` (a no-op without it). */
  private clock(): (phase: string) => void {
    const prof = this.profile;
    if (!prof) return () => {};
    let t = performance.now();
    let c = process.cpuUsage();
    return (phase) => {
      const now = performance.now();
      const cpu = process.cpuUsage(c);
      const e = (prof[phase] ??= { wall: 0, cpu: 0 });
      e.wall += (now - t) / 1000;
      e.cpu += (cpu.user + cpu.system) / 1e6;
      t = now;
      c = process.cpuUsage();
    };
  }
}

/** The graphs' sizes for a model. */
function graphDims(m: FactorizedEncoder): GraphDims {
  return {
    peDim: m.pe.shape[1], hidden: m.hidden, layers: m.layerWidths.length, widths: m.layerWidths.slice(), dim: m.dim,
    cells: (m.grid + 1) ** 2, chunks: selectorChunks(m.nVertices),
  };
}
