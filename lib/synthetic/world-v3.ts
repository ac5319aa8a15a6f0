/**
 * World v3: every response is a function of pixels alone. `trueResponse(images [B,3,H,W] on [0,1]) -> [B, N]` is
 * deterministic and noiseless and works on any image, generated ones included.
 *
 * - Early areas (V1–V3, and half of hV4): the second-order contrast model of soc.ts (oriented filter energy, divisive
 *   normalisation, a pRF with a suppressive surround, a compressive exponent; 20 % of the vertices mix two pRFs).
 * - Mid-level and category areas (hV4's other half, the category patches, the unlabelled vertices): features of a built-in
 *   network that is NOT the one a fit uses (`network`: InceptionV3 when the example fits MobileNetV2, MobileNetV2 when it
 *   fits InceptionV3), at a reduced input size (WORLD_NETWORKS). Each vertex has a true layer (one tap, or two adjacent
 *   taps mixed 0.65/0.35), a pRF on that layer's grid or the global token, and a readout: 16 random channels of the
 *   standardised features, mixed with the category directions of that layer weighted by the vertex's tuning.
 * - Category directions: per tap, a ridge-regression classifier (one direction per category, the world's six) fitted on
 *   the global tokens of a labelled calibration set of the world's own scenes (`calibrationCount` images drawn from the
 *   world seed); recorded in ground_truth/world.safetensors.
 * - Each part is standardised over the calibration set (per channel for the features; per vertex for the SOC and network
 *   responses and for their mix), so responses are about zero-mean and unit-variance over natural-ish scenes.
 * The depth truth of a vertex is its tap's position among the taps ((t + 1) / T, 0 for the SOC model), weighted by the
 * shares; its scale truth is 'global' when it reads the global token, 'local' otherwise.
 */
import * as tf from '@tensorflow/tfjs';
import { loadBuiltinBackbone } from '../backbones/builtin.js';
import type { Backbone } from '../backbones/contract.js';
import type { BuiltinBackboneName } from '../backbones/nsfwjs.js';
import { resizeBilinearNCHW } from '../backbones/resize.js';
import { Rng, subSeed } from '../core/rng.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { CATEGORIES, type HemisphereTruth } from './cortex.js';
import { socModel, type SocModel, type SocParams } from './soc.js';

/** The world network at each of its settings: input side (pixels) and tapped layers, early to late. */
export const WORLD_NETWORKS: Record<BuiltinBackboneName, { inputSize: number; taps: string[] }> = {
  inceptionv3: { inputSize: 139, taps: ['max_pooling2d_2', 'mixed1', 'mixed3', 'mixed5', 'mixed7', 'mixed9'] },
  mobilenetv2: { inputSize: 128, taps: ['block_2_add', 'block_5_add', 'block_9_add', 'block_12_add', 'block_15_add', 'out_relu'] },
};

/** The network a world should use so that it is not the fitted one. */
export function worldNetworkFor(fitted: string): BuiltinBackboneName {
  return /inception/i.test(fitted) ? 'mobilenetv2' : 'inceptionv3';
}

/** Channels each network vertex reads at random (besides its category directions). */
export const READOUT_CHANNELS = 16;

/** The parameters of every vertex (lh then rh, N = nLh + nRh); columnar, as saved. */
export interface WorldVertices {
  nLh: number;
  /** [N] weight of the SOC model (1 early areas, 0.5 hV4, 0 elsewhere); the network part has 1 - socShare. */
  socShare: Float32Array;
  /** [N] SOC parameters (unused where socShare is 0). */
  soc: SocParams[];
  /** [N, 2] tap indices (-1: none) and their weights. */
  tap: Int32Array;
  tapWeight: Float32Array;
  /** [N, 3] network pRF x, y, sigma in image units; NaN for vertices reading the global token. */
  prf: Float32Array;
  /** [N, 2, K] channels and weights of the random readout per tap (weights scaled to unit variance at calibration). */
  channels: Int32Array;
  channelWeights: Float32Array;
  /** [N] share of the category directions in the readout; [N, 6] category tuning (CATEGORIES order). */
  categoryShare: Float32Array;
  tuning: Float32Array;
  /** [N] true depth (0 SOC, else the taps' positions (t + 1) / T) and scale. */
  depth: Float32Array;
  scale: ('local' | 'global')[];
  /** [N] the name of the vertex's main layer ('soc' for the SOC model alone). */
  layer: string[];
}

/** What calibration fixes: per tap the channel mean and sd and the category directions; per vertex the standardisation of each part. */
export interface WorldCalibration {
  /** Per tap: channel mean and sd over images and positions [C], category directions [6, C] (unit variance on the calibration set). */
  taps: { mean: Float32Array; sd: Float32Array; directions: Float32Array; auc: number[] }[];
  /** [N, 6]: SOC mean and sd, network mean and sd, mix mean and sd. */
  stats: Float32Array;
  images: number;
}

/** A world v3: the truth as a function of pixels. */
export interface SyntheticWorld {
  version: 3;
  network: BuiltinBackboneName;
  inputSize: number;
  taps: string[];
  vertices: WorldVertices;
  calibration: WorldCalibration;
  /** Noiseless response of every vertex (lh then rh) to images [B,3,H,W] on [0,1] -> [B, N]. */
  trueResponse(images: tf.Tensor4D): Promise<Float32Array>;
  /** Mean true response of the vertices `indices` (e.g. a region) -> [B]. */
  regionResponse(images: tf.Tensor4D, indices: ArrayLike<number>): Promise<Float32Array>;
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------------
// 1. vertex parameters from the cortex's truth

const EARLY = new Set(['V1v', 'V1d', 'V2v', 'V2d', 'V3v', 'V3d']);
const MID_PATCHES = new Set(['OFA', 'EBA', 'OPA', 'OWFA']);

/** Draws every vertex's parameters of a world with `nTaps` taps from the cortex's truth (ROI, pRF, tuning). Pure. */
export function drawWorldVertices(hemis: HemisphereTruth[], nTaps: number, seed: number, channelsPerTap: number[]): WorldVertices {
  const N = hemis.reduce((a, h) => a + h.roi.length, 0);
  const K = READOUT_CHANNELS;
  const out: WorldVertices = {
    nLh: hemis[0]!.roi.length, socShare: new Float32Array(N), soc: [], tap: new Int32Array(N * 2).fill(-1), tapWeight: new Float32Array(N * 2),
    prf: new Float32Array(N * 3).fill(NaN), channels: new Int32Array(N * 2 * K), channelWeights: new Float32Array(N * 2 * K),
    categoryShare: new Float32Array(N), tuning: new Float32Array(N * 6), depth: new Float32Array(N), scale: [], layer: [],
  };
  let v = 0;
  for (const h of hemis) {
    const rng = new Rng(subSeed(seed, `world-v3-${h.hemi}`));
    for (let k = 0; k < h.roi.length; k++, v++) {
      const roi = h.roi[k]!;
      const early = EARLY.has(roi), v4 = roi === 'hV4';
      out.tuning.set(h.tuning.subarray(k * 6, k * 6 + 6), v * 6);
      // the SOC part (early areas, half of hV4)
      const area = roi.slice(0, 2);
      const n = area === 'V1' ? rng.uniform(0.45, 0.55) : area === 'V2' ? rng.uniform(0.35, 0.45) : area === 'V3' ? rng.uniform(0.3, 0.4) : rng.uniform(0.2, 0.3);
      const x = h.prfX[k]!, y = h.prfY[k]!, s = h.prfSigma[k]!;
      const two = (early || v4) && rng.next() < 0.2;
      out.soc.push({
        x: Number.isFinite(x) ? x : 0, y: Number.isFinite(y) ? y : 0, sigma: Number.isFinite(s) ? s : 0.3,
        surround: rng.uniform(0.1, 0.4), c: area === 'V1' ? rng.uniform(0.9, 0.95) : rng.uniform(0.93, 0.99), n,
        x2: two ? clamp(x + rng.normal() * 0.35) : 0, y2: two ? clamp(y + rng.normal() * 0.35) : 0, sigma2: two ? s * rng.uniform(1, 2) : 0.1, mix: two ? rng.uniform(0.25, 0.45) : 0,
      });
      out.socShare[v] = early ? 1 : v4 ? 0.5 : 0;
      if (early) {
        out.depth[v] = 0;
        out.scale.push('local');
        out.layer.push('soc');
        continue;
      }
      // the network part: taps by kind of area
      const late = h.scale[k] === 'global';
      const [lo, hi] = v4 ? [0, 1] : MID_PATCHES.has(roi) ? [2, 3] : roi === 'other' ? (late ? [3, nTaps - 1] : [1, 3]) : [nTaps - 2, nTaps - 1];
      const t0 = rng.int(lo, hi + 1);
      const mixTwo = !v4 && rng.next() < 0.3;
      const t1 = mixTwo ? (t0 + 1 < nTaps && (t0 === lo || rng.next() < 0.5) ? t0 + 1 : t0 - 1) : -1;
      out.tap[v * 2] = t0;
      out.tapWeight[v * 2] = mixTwo ? 0.65 : 1;
      if (t1 >= 0) { out.tap[v * 2 + 1] = t1; out.tapWeight[v * 2 + 1] = 0.35; }
      for (let j = 0; j < 2; j++) {
        const t = out.tap[v * 2 + j]!;
        if (t < 0) continue;
        for (let q = 0; q < K; q++) {
          out.channels[(v * 2 + j) * K + q] = rng.int(0, channelsPerTap[t]!);
          out.channelWeights[(v * 2 + j) * K + q] = rng.normal();
        }
      }
      if (!late) {
        out.prf[v * 3] = Number.isFinite(x) ? x : rng.uniform(-0.6, 0.6);
        out.prf[v * 3 + 1] = Number.isFinite(y) ? y : rng.uniform(-0.6, 0.6);
        out.prf[v * 3 + 2] = Math.max(Number.isFinite(s) ? s : 0.3, 0.15);
      }
      out.categoryShare[v] = roi === 'other' ? 0.3 : v4 ? 0.2 : MID_PATCHES.has(roi) ? 0.8 : 0.85;
      const netDepth = ((t0 + 1) / nTaps) * out.tapWeight[v * 2]! + (t1 >= 0 ? ((t1 + 1) / nTaps) * out.tapWeight[v * 2 + 1]! : 0);
      out.depth[v] = (1 - out.socShare[v]!) * netDepth;
      out.scale.push(late ? 'global' : 'local');
      out.layer.push(String(t0));
    }
  }
  return out;
}

const clamp = (v: number) => Math.max(-1, Math.min(1, v));

// ---------------------------------------------------------------------------------------------------------------------
// 2. the network readout

/** Gaussian pRF weights (sum 1, truncated at 3 sigma, at least half a cell wide) on an h x w grid over [-1, 1]², row 0 at the top. [h*w] */
function gridPrf(x: number, y: number, sigma: number, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w);
  if (!Number.isFinite(x)) return out.fill(1 / (h * w)); // the global token: the mean over positions
  const s = Math.max(sigma, 1 / Math.max(h, w));
  let sum = 0;
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) {
    const cx = ((c + 0.5) * 2) / w - 1, cy = 1 - ((r + 0.5) * 2) / h;
    const d2 = ((cx - x) ** 2 + (cy - y) ** 2) / (s * s);
    if (d2 <= 9) sum += out[r * w + c] = Math.exp(-0.5 * d2);
  }
  if (sum === 0) {
    const c = Math.min(w - 1, Math.max(0, Math.floor(((x + 1) * w) / 2))), r = Math.min(h - 1, Math.max(0, Math.floor(((1 - y) * h) / 2)));
    out[r * w + c] = 1;
    return out;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

/** The SOC model of the vertices with a SOC part, and which vertices they are. */
interface SocPart { model: SocModel; vertices: Int32Array }

function socPart(vx: WorldVertices): SocPart {
  const vertices = Int32Array.from(Array.from(vx.socShare.keys()).filter((v) => vx.socShare[v]! > 0));
  return { model: socModel(Array.from(vertices, (v) => vx.soc[v]!)), vertices };
}

/** Raw SOC responses [B, N] (0 for vertices without a SOC part). */
function socRawOf(part: SocPart, images: tf.Tensor4D, N: number): Float32Array {
  const B = images.shape[0], V = part.vertices.length;
  const out = new Float32Array(B * N);
  if (!V) return out;
  const r = part.model.respond(images);
  const d = r.dataSync();
  r.dispose();
  for (let b = 0; b < B; b++) for (let i = 0; i < V; i++) out[b * N + part.vertices[i]!] = d[b * V + i]!;
  return out;
}

/** Per tap: the vertices that read it, their dense readout [C, V_t] and pRF [h*w, V_t] as tensors, and their tap weight. */
interface TapReadout { vertices: Int32Array; weight: Float32Array; W: tf.Tensor2D; P: tf.Tensor2D; mean: tf.Tensor1D; sd: tf.Tensor1D }

function tapReadouts(vx: WorldVertices, cal: Pick<WorldCalibration, 'taps'>, grids: [number, number][], channels: number[]): TapReadout[] {
  const N = vx.socShare.length, K = READOUT_CHANNELS;
  return grids.map(([h, w], t) => {
    const C = channels[t]!;
    const rows: { v: number; j: number }[] = [];
    for (let v = 0; v < N; v++) for (let j = 0; j < 2; j++) if (vx.tap[v * 2 + j] === t) rows.push({ v, j });
    const V = rows.length;
    const W = new Float32Array(C * V), P = new Float32Array(h * w * V);
    const dir = cal.taps[t]!.directions;
    rows.forEach(({ v, j }, col) => {
      const share = vx.categoryShare[v]!;
      let tsum = 0;
      for (let c = 0; c < 6; c++) tsum += vx.tuning[v * 6 + c]!;
      for (let c = 0; c < 6; c++) {
        const a = (share * vx.tuning[v * 6 + c]!) / (tsum || 1);
        if (a) for (let ch = 0; ch < C; ch++) W[ch * V + col]! += a * dir[c * C + ch]!;
      }
      for (let q = 0; q < K; q++) W[vx.channels[(v * 2 + j) * K + q]! * V + col]! += (1 - share) * vx.channelWeights[(v * 2 + j) * K + q]!;
      const p = gridPrf(vx.prf[v * 3]!, vx.prf[v * 3 + 1]!, vx.prf[v * 3 + 2]!, h, w);
      for (let i = 0; i < h * w; i++) P[i * V + col] = p[i]!;
    });
    return {
      vertices: Int32Array.from(rows, (r) => r.v), weight: Float32Array.from(rows, (r) => vx.tapWeight[r.v * 2 + r.j]!),
      W: tf.tensor2d(W, [C, V]), P: tf.tensor2d(P, [h * w, V]), mean: tf.tensor1d(cal.taps[t]!.mean), sd: tf.tensor1d(cal.taps[t]!.sd),
    };
  });
}

/** Raw network responses [B, N] (0 for vertices without a network part) from tapped local maps [B,C,h,w] per tap. */
function networkRaw(readouts: TapReadout[], maps: tf.Tensor4D[], N: number): Float32Array {
  const B = maps[0]!.shape[0];
  const out = new Float32Array(B * N);
  readouts.forEach((r, t) => {
    if (r.vertices.length === 0) return;
    const vals = tf.tidy(() => {
      const [, C, h, w] = maps[t]!.shape;
      const f = tf.div(tf.sub(tf.transpose(tf.reshape(maps[t]!, [B, C, h * w]), [0, 2, 1]), r.mean), r.sd); // [B, hw, C]
      const proj = tf.reshape(tf.matMul(tf.reshape(f, [B * h * w, C]), r.W), [B, h * w, r.vertices.length]);
      return tf.sum(tf.mul(proj, r.P), 1).dataSync() as Float32Array; // [B, V_t]
    });
    const V = r.vertices.length;
    for (let b = 0; b < B; b++) for (let i = 0; i < V; i++) out[b * N + r.vertices[i]!]! += r.weight[i]! * vals[b * V + i]!;
  });
  return out;
}

/** The tapped local maps [B,C,h,w] of images [B,3,H,W] on [0,1], resized to the network's input. */
async function tapMaps(backbone: Backbone, images: tf.Tensor4D): Promise<tf.Tensor4D[]> {
  const [H, W] = backbone.inputSize;
  const x = images.shape[2] === H && images.shape[3] === W ? images : tf.tidy(() => resizeBilinearNCHW(images, H, W));
  const tok = await backbone.getTokens(x);
  if (x !== images) x.dispose();
  tf.dispose(Object.values(tok.global));
  return backbone.layers.map((l) => tok.local[l]!);
}

// ---------------------------------------------------------------------------------------------------------------------
// 3. calibration: channel statistics, category directions, per-vertex standardisation

/** Ridge-regression classifier in kernel form: X [n, C] (standardised), Y [n, k] in {0,1} -> directions [k, C] (unit variance of X·d), and the in-sample AUC per category. */
export function categoryDirections(X: Float32Array, n: number, C: number, Y: Uint8Array, k: number, lambda = 1): { directions: Float32Array; auc: number[] } {
  // K = X Xᵀ / C + λ I;  alpha = K⁻¹ (Y - mean);  d = Xᵀ alpha
  const G = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += X[i * C + c]! * X[j * C + c]!;
    G[i * n + j] = G[j * n + i] = s / C + (i === j ? lambda : 0);
  }
  const L = cholesky(G, n);
  const directions = new Float32Array(k * C);
  const auc: number[] = [];
  for (let c = 0; c < k; c++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += Y[i * k + c]!;
    m /= n;
    const a = cholSolve(L, n, Float64Array.from({ length: n }, (_, i) => Y[i * k + c]! - m));
    const d = new Float64Array(C);
    for (let i = 0; i < n; i++) for (let ch = 0; ch < C; ch++) d[ch]! += X[i * C + ch]! * a[i]!;
    const score = Float64Array.from({ length: n }, (_, i) => { let s = 0; for (let ch = 0; ch < C; ch++) s += X[i * C + ch]! * d[ch]!; return s; });
    const sd = Math.sqrt(variance(score)) || 1;
    for (let ch = 0; ch < C; ch++) directions[c * C + ch] = d[ch]! / sd;
    auc.push(aucOf(score, Array.from({ length: n }, (_, i) => Y[i * k + c]!)));
  }
  return { directions, auc };
}

function cholesky(A: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) {
    let s = A[i * n + j]!;
    for (let q = 0; q < j; q++) s -= L[i * n + q]! * L[j * n + q]!;
    L[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / L[j * n + j]!;
  }
  return L;
}

function cholSolve(L: Float64Array, n: number, b: Float64Array): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) { let s = b[i]!; for (let q = 0; q < i; q++) s -= L[i * n + q]! * y[q]!; y[i] = s / L[i * n + i]!; }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) { let s = y[i]!; for (let q = i + 1; q < n; q++) s -= L[q * n + i]! * x[q]!; x[i] = s / L[i * n + i]!; }
  return x;
}

function variance(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i]!;
  m /= x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i]! - m) ** 2;
  return v / Math.max(1, x.length);
}

/** Area under the ROC curve of `score` for the positives `y` (0.5 when one class is empty). */
export function aucOf(score: ArrayLike<number>, y: ArrayLike<number>): number {
  const idx = Array.from({ length: score.length }, (_, i) => i).sort((a, b) => score[a]! - score[b]!);
  let pos = 0, neg = 0, rankSum = 0;
  idx.forEach((i, r) => { if (y[i]) { pos++; rankSum += r + 1; } else neg++; });
  return pos && neg ? (rankSum - (pos * (pos + 1)) / 2) / (pos * neg) : 0.5;
}

/** Options of {@link buildWorld}. */
export interface BuildWorldOptions {
  hemis: HemisphereTruth[];
  network: BuiltinBackboneName;
  seed: number;
  /** Calibration images [n, side, side, 3] uint8 HWC with their labels [n, 6] (CATEGORIES order). */
  calibration: { pixels: Uint8Array; n: number; side: number; labels: Uint8Array };
  batch?: number;
}

/** Builds a world v3: draws the vertices, runs the network over the calibration images, fits the category directions and the standardisations. */
export async function buildWorld(o: BuildWorldOptions): Promise<SyntheticWorld> {
  const spec = WORLD_NETWORKS[o.network];
  const backbone = await loadBuiltinBackbone(o.network, { layers: spec.taps, inputSize: spec.inputSize });
  const vx = drawWorldVertices(o.hemis, spec.taps.length, o.seed, backbone.channels);
  const { n, side } = o.calibration;
  const batch = o.batch ?? 16;
  // 1. the calibration images' tapped maps (kept), and their SOC responses
  const soc = socPart(vx);
  const maps: tf.Tensor4D[][] = [];
  const socRaw = new Float32Array(n * vx.socShare.length);
  for (let s = 0; s < n; s += batch) {
    const x = pixelsToImages(o.calibration.pixels, s, Math.min(n, s + batch), side);
    maps.push(await tapMaps(backbone, x));
    socRaw.set(socRawOf(soc, x, vx.socShare.length), s * vx.socShare.length);
    x.dispose();
  }
  // 2. per tap: channel mean and sd over images and positions; standardised global tokens -> category directions
  const taps = backbone.layers.map((_, t) => {
    const all = tf.concat(maps.map((m) => m[t]!), 0); // [n, C, h, w]
    const [, C] = all.shape;
    const { mean, sd, g } = tf.tidy(() => {
      const mom = tf.moments(all, [0, 2, 3]);
      const sdv = tf.sqrt(tf.add(mom.variance, 1e-6));
      const gl = tf.div(tf.sub(tf.mean(all, [2, 3]), mom.mean), sdv);
      return { mean: mom.mean.dataSync() as Float32Array, sd: sdv.dataSync() as Float32Array, g: gl.dataSync() as Float32Array };
    });
    all.dispose();
    const { directions, auc } = categoryDirections(g, n, C, o.calibration.labels, 6);
    return { mean, sd, directions, auc, g };
  });
  // 3. random readouts scaled to unit variance of their global projection on the calibration set
  const K = READOUT_CHANNELS;
  for (let v = 0; v < vx.socShare.length; v++) for (let j = 0; j < 2; j++) {
    const t = vx.tap[v * 2 + j]!;
    if (t < 0) continue;
    const C = backbone.channels[t]!, g = taps[t]!.g;
    const proj = Float64Array.from({ length: n }, (_, i) => { let s = 0; for (let q = 0; q < K; q++) s += g[i * C + vx.channels[(v * 2 + j) * K + q]!]! * vx.channelWeights[(v * 2 + j) * K + q]!; return s; });
    const sd = Math.sqrt(variance(proj)) || 1;
    for (let q = 0; q < K; q++) vx.channelWeights[(v * 2 + j) * K + q]! /= sd;
  }
  const cal: WorldCalibration = { taps: taps.map(({ mean, sd, directions, auc }) => ({ mean, sd, directions, auc })), stats: new Float32Array(vx.socShare.length * 6), images: n };
  // 4. per vertex: standardise the SOC part, the network part and their mix over the calibration set
  const readouts = tapReadouts(vx, cal, backbone.grids, backbone.channels);
  const N = vx.socShare.length;
  const netRaw = new Float32Array(n * N);
  let row = 0;
  for (const m of maps) {
    const r = networkRaw(readouts, m, N);
    netRaw.set(r, row * N);
    row += m[0]!.shape[0];
    tf.dispose(m);
  }
  const world = assembleWorld({ network: o.network, vertices: vx, calibration: cal, backbone, soc, readouts });
  setStats(cal.stats, vx, socRaw, netRaw, n);
  return world;
}

/** Per vertex mean and sd of the SOC part, the network part and the mix, over n images (written into stats [N, 6]). */
function setStats(stats: Float32Array, vx: WorldVertices, socRaw: Float32Array, netRaw: Float32Array, n: number): void {
  const N = vx.socShare.length;
  const ms = (a: Float32Array, v: number, f: (x: number) => number = (x) => x) => {
    let m = 0, q = 0;
    for (let i = 0; i < n; i++) { const x = f(a[i * N + v]!); m += x; q += x * x; }
    m /= n;
    return [m, Math.sqrt(Math.max(q / n - m * m, 1e-12))] as const;
  };
  for (let v = 0; v < N; v++) {
    const [m0, s0] = ms(socRaw, v), [m1, s1] = ms(netRaw, v);
    stats.set([m0, s0, m1, s1], v * 6);
    const sh = vx.socShare[v]!;
    const mix = (i: number) => (sh > 0 ? (sh * (socRaw[i * N + v]! - m0)) / s0 : 0) + (sh < 1 ? ((1 - sh) * (netRaw[i * N + v]! - m1)) / s1 : 0);
    let m = 0, q = 0;
    for (let i = 0; i < n; i++) { const x = mix(i); m += x; q += x * x; }
    m /= n;
    stats[v * 6 + 4] = m;
    stats[v * 6 + 5] = Math.sqrt(Math.max(q / n - m * m, 1e-12));
  }
}

/** Images [B,3,side,side] on [0,1] from rows s..e of uint8 HWC pixels. */
export function pixelsToImages(pixels: Uint8Array, s: number, e: number, side: number): tf.Tensor4D {
  const per = side * side * 3;
  return tf.tidy(() => tf.div(tf.transpose(tf.tensor4d(pixels.subarray(s * per, e * per), [e - s, side, side, 3], 'float32'), [0, 3, 1, 2]), 255) as tf.Tensor4D);
}

function assembleWorld(p: { network: BuiltinBackboneName; vertices: WorldVertices; calibration: WorldCalibration; backbone: Backbone; soc: SocPart; readouts: TapReadout[] }): SyntheticWorld {
  const { vertices: vx, calibration: cal, backbone, soc, readouts } = p;
  const N = vx.socShare.length;
  const spec = WORLD_NETWORKS[p.network];
  const world: SyntheticWorld = {
    version: 3, network: p.network, inputSize: spec.inputSize, taps: [...spec.taps], vertices: vx, calibration: cal,
    async trueResponse(images) {
      const B = images.shape[0];
      const maps = await tapMaps(backbone, images);
      const net = networkRaw(readouts, maps, N);
      tf.dispose(maps);
      const socR = socRawOf(soc, images, N);
      const out = new Float32Array(B * N);
      const st = cal.stats;
      for (let b = 0; b < B; b++) for (let v = 0; v < N; v++) {
        const sh = vx.socShare[v]!;
        const x = (sh > 0 ? (sh * (socR[b * N + v]! - st[v * 6]!)) / st[v * 6 + 1]! : 0) + (sh < 1 ? ((1 - sh) * (net[b * N + v]! - st[v * 6 + 2]!)) / st[v * 6 + 3]! : 0);
        out[b * N + v] = (x - st[v * 6 + 4]!) / st[v * 6 + 5]!;
      }
      return out;
    },
    async regionResponse(images, indices) {
      const r = await world.trueResponse(images);
      const B = images.shape[0];
      return Float32Array.from({ length: B }, (_, b) => { let s = 0; for (let i = 0; i < indices.length; i++) s += r[b * N + indices[i]!]!; return s / indices.length; });
    },
    async dispose() {
      soc.model.dispose();
      for (const r of readouts) tf.dispose([r.W, r.P, r.mean, r.sd]);
      await backbone.dispose();
    },
  };
  return world;
}

// ---------------------------------------------------------------------------------------------------------------------
// 4. save and load (ground_truth/world.safetensors)

/** Writes a world's parameters and calibration (everything trueResponse needs besides the network's weights). */
export async function saveWorld(file: string, w: SyntheticWorld, meta: Record<string, string> = {}): Promise<void> {
  const vx = w.vertices, N = vx.socShare.length;
  const f32 = (data: Float32Array, shape: number[]) => ({ dtype: 'float32' as const, shape, data });
  const socArr = new Float32Array(N * 10);
  vx.soc.forEach((s, v) => socArr.set([s.x, s.y, s.sigma, s.surround, s.c, s.n, s.x2, s.y2, s.sigma2, s.mix], v * 10));
  const t: Record<string, { dtype: 'float32' | 'int32'; shape: number[]; data: Float32Array | Int32Array }> = {
    soc_share: f32(vx.socShare, [N]), soc: f32(socArr, [N, 10]), tap: { dtype: 'int32', shape: [N, 2], data: vx.tap }, tap_weight: f32(vx.tapWeight, [N, 2]),
    prf: f32(vx.prf, [N, 3]), channels: { dtype: 'int32', shape: [N, 2, READOUT_CHANNELS], data: vx.channels }, channel_weights: f32(vx.channelWeights, [N, 2, READOUT_CHANNELS]),
    category_share: f32(vx.categoryShare, [N]), tuning: f32(vx.tuning, [N, 6]), depth: f32(vx.depth, [N]), stats: f32(w.calibration.stats, [N, 6]),
  };
  w.calibration.taps.forEach((tp, i) => {
    t[`tap${i}.mean`] = f32(tp.mean, [tp.mean.length]);
    t[`tap${i}.sd`] = f32(tp.sd, [tp.sd.length]);
    t[`tap${i}.directions`] = f32(tp.directions, [6, tp.mean.length]);
  });
  await writeSafetensors(file, t as never, {
    ...meta, format: 'brainnet-synthetic-world', version: '3', network: w.network, inputSize: String(w.inputSize), taps: JSON.stringify(w.taps),
    nLh: String(vx.nLh), scale: JSON.stringify(vx.scale), layer: JSON.stringify(vx.layer), categories: JSON.stringify(CATEGORIES),
    auc: JSON.stringify(w.calibration.taps.map((tp) => tp.auc.map((a) => Math.round(a * 1e4) / 1e4))), calibrationImages: String(w.calibration.images),
  });
}

/** Reads a world written by saveWorld and loads its network: the same trueResponse as when the subject was made. */
export async function readWorld(file: string): Promise<SyntheticWorld> {
  const { tensors, metadata } = await readSafetensors(file);
  const network = metadata.network as BuiltinBackboneName;
  const spec = WORLD_NETWORKS[network];
  const f = (k: string) => Float32Array.from(tensors[k]!.data as ArrayLike<number>);
  const N = tensors.soc_share!.shape[0]!;
  const socArr = f('soc');
  const vx: WorldVertices = {
    nLh: Number(metadata.nLh), socShare: f('soc_share'),
    soc: Array.from({ length: N }, (_, v) => { const a = socArr.subarray(v * 10, v * 10 + 10); return { x: a[0]!, y: a[1]!, sigma: a[2]!, surround: a[3]!, c: a[4]!, n: a[5]!, x2: a[6]!, y2: a[7]!, sigma2: a[8]!, mix: a[9]! }; }),
    tap: Int32Array.from(tensors.tap!.data as ArrayLike<number>), tapWeight: f('tap_weight'), prf: f('prf'),
    channels: Int32Array.from(tensors.channels!.data as ArrayLike<number>), channelWeights: f('channel_weights'),
    categoryShare: f('category_share'), tuning: f('tuning'), depth: f('depth'), scale: JSON.parse(metadata.scale!), layer: JSON.parse(metadata.layer!),
  };
  const aucs = JSON.parse(metadata.auc ?? '[]') as number[][];
  const cal: WorldCalibration = {
    taps: spec.taps.map((_, i) => ({ mean: f(`tap${i}.mean`), sd: f(`tap${i}.sd`), directions: f(`tap${i}.directions`), auc: aucs[i] ?? [] })),
    stats: f('stats'), images: Number(metadata.calibrationImages ?? 0),
  };
  const backbone = await loadBuiltinBackbone(network, { layers: spec.taps, inputSize: spec.inputSize });
  return assembleWorld({ network, vertices: vx, calibration: cal, backbone, soc: socPart(vx), readouts: tapReadouts(vx, cal, backbone.grids, backbone.channels) });
}
