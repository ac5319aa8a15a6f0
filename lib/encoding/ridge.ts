/**
 * The ridge-regression baseline of voxelwise encoding (as himalaya's `solve_ridge_cv_svd`): per
 * layer, ridge from token features to every vertex, with each vertex's penalty chosen by K-fold
 * cross-validation, then for each vertex the best layer and its validation R² and Pearson r.
 *
 * Method: per fold, one symmetric eigendecomposition of the centred Gram matrix X^T X (or of the
 * kernel X X^T when there are more features than samples) gives every alpha and every vertex for
 * the price of a few matrix products; targets (vertices) are processed in batches. The intercept
 * is not penalised (X and Y are centred with the training means). Large products run in tfjs
 * (float32, operands transposed in JS first); the eigendecomposition is float64 in JS
 * (Householder tridiagonalisation + implicit QL, after EISPACK tred2/tql2 as JAMA writes them),
 * since tfjs has none.
 */
import * as tf from '@tensorflow/tfjs';
import type { CachedTokenBatch } from '../backbones/token-cache.js';
import { Rng } from '../core/rng.js';
import { pearsonPerVertex, r2PerVertex } from './metrics.js';

/** A row-major matrix `[rows, cols]` as a plain typed array. */
export interface Mat {
  data: Float32Array | Float64Array;
  shape: [number, number];
}

/** Eigenvalues (ascending) `[n]` and eigenvectors (row i = eigenvector i) `[n, n]` of a symmetric matrix. */
export interface SymmetricEigen {
  values: Float64Array;
  /** `[n, n]`, row-major; row i is the unit eigenvector of values[i]. */
  vectors: Float64Array;
}

/** Eigendecomposition of a symmetric `[n, n]` matrix (only symmetric input is meaningful), float64. */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new Error(`symmetricEigen: expected ${n * n} values for a ${n}x${n} matrix, found ${a.length}.`);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) V[i] = a[i]!;
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: V };
  tred2(V, d, e, n);
  // transpose so that eigenvector columns become contiguous rows for the QL rotations
  const W = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) W[c * n + r] = V[r * n + c]!;
  tql2(W, d, e, n);
  // sort ascending
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x]! - d[y]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src]!;
    vectors.set(W.subarray(src * n, src * n + n), dst * n);
  });
  return { values, vectors };
}

function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j * n + i] = f;
        g = e[j]! + V[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j]! * d[k]!;
          e[k]! += V[k * n + j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k * n + j]! -= f * e[k]! + g * d[k]!;
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i]!;
    V[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1]! * V[k * n + j]!;
        for (let k = 0; k <= i; k++) V[k * n + j]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j]!;
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e); W holds the eigenvectors as rows (W[i*n+k] = V[k][i]). */
function tql2(W: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new Error('symmetricEigen: the QL iteration did not converge (is the matrix finite?).');
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          const a = i * n;
          const b = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const hk = W[b + k]!;
            const wk = W[a + k]!;
            W[b + k] = s * wk + c * hk;
            W[a + k] = c * wk - s * hk;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
}

/** Transpose of a row-major `[r, c]` array -> `[c, r]` (Float32Array). */
export function transpose32(a: ArrayLike<number>, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j]!;
  return out;
}

/**
 * C = A B with tfjs (float32), A `[m, k]`, B `[k, n]` -> `[m, n]`. Both operands are passed
 * untransposed: on wasm a transposed operand is ~15x slower, so callers transpose in JS first.
 */
export function matmul32(a: ArrayLike<number>, m: number, k: number, b: ArrayLike<number>, n: number): Float32Array {
  const t = tf.tidy(() => {
    const ta = tf.tensor2d(a instanceof Float32Array ? a : Float32Array.from(a), [m, k]);
    const tb = tf.tensor2d(b instanceof Float32Array ? b : Float32Array.from(b), [k, n]);
    return tf.matMul(ta, tb);
  });
  const out = t.dataSync() as Float32Array;
  t.dispose();
  return out;
}

function checkMat(m: Mat, what: string): [number, number] {
  const [r, c] = m.shape;
  if (m.data.length !== r * c) throw new Error(`${what}: shape [${r}, ${c}] needs ${r * c} values, found ${m.data.length}.`);
  return [r, c];
}

/** Default penalty grid: 10^-1 ... 10^6 in half-decade steps (15 values). */
export const DEFAULT_ALPHAS: readonly number[] = Array.from({ length: 15 }, (_, i) => 10 ** (-1 + i / 2));

/** Fold id in [0, k) for each of n samples: a seeded shuffle dealt round-robin (balanced folds). */
export function kfoldIds(n: number, k: number, seed = 0): Int32Array {
  if (!(k >= 2 && k <= n)) throw new Error(`kfoldIds: need 2 <= folds <= samples, got ${k} folds for ${n} samples.`);
  const perm = new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
  const ids = new Int32Array(n);
  perm.forEach((s, i) => (ids[s] = i % k));
  return ids;
}

export interface RidgeCVOptions {
  /** Penalty grid (default {@link DEFAULT_ALPHAS}). */
  alphas?: readonly number[];
  /** Number of folds (default 5), or an explicit fold id per sample `[n]`. */
  folds?: number | Int32Array;
  /** Seed of the fold shuffle (default 0). */
  seed?: number;
  /** Vertices per batch (default 4096): bounds memory at ~(n + p) x targetBatch floats. */
  targetBatch?: number;
}

export interface RidgeCVResult {
  /** `[p, N]` weights refitted on all samples with each vertex's best alpha. */
  weights: Float32Array;
  /** `[N]` intercepts. */
  intercept: Float32Array;
  /** `[N]` the chosen penalty per vertex. */
  bestAlpha: Float64Array;
  /** `[N]` mean cross-validated R² at the chosen penalty. */
  cvScore: Float64Array;
  /** `[A, N]` mean cross-validated R² for every penalty. */
  cvScores: Float64Array;
  alphas: number[];
}

/** A spectral ridge solver for one training set: w(alpha) = back diag(1/(lambda+alpha)) proj Y. */
interface Spectral {
  k: number;
  lambda: Float32Array; // [k]
  proj: Float32Array; // [k, nTrain]
  back: Float32Array; // [p, k]
}

function spectral(Xc: Float32Array, n: number, p: number): Spectral {
  const XT = transpose32(Xc, n, p);
  if (p <= n) {
    const G = matmul32(XT, p, n, Xc, p);
    const { values, vectors } = symmetricEigen(G, p);
    return { k: p, lambda: clampPos(values), proj: matmul32(Float32Array.from(vectors), p, p, XT, n), back: transpose32(vectors, p, p) };
  }
  const K = matmul32(Xc, n, p, XT, n);
  const { values, vectors } = symmetricEigen(K, n);
  return { k: n, lambda: clampPos(values), proj: Float32Array.from(vectors), back: matmul32(XT, p, n, transpose32(vectors, n, n), n) };
}

function clampPos(v: Float64Array): Float32Array {
  return Float32Array.from(v, (x) => Math.max(0, x));
}

function rowsOf(m: Float32Array | Float64Array, cols: number, rows: readonly number[] | Int32Array): Float32Array {
  const out = new Float32Array(rows.length * cols);
  for (let i = 0; i < rows.length; i++) out.set(m.subarray(rows[i]! * cols, rows[i]! * cols + cols), i * cols);
  return out;
}

/** Subtracts the column means in place; returns them `[c]`. */
function centre(m: Float32Array, r: number, c: number): Float64Array {
  const mean = new Float64Array(c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) mean[j]! += m[i * c + j]!;
  for (let j = 0; j < c; j++) mean[j]! /= r;
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) m[i * c + j]! -= mean[j]!;
  return mean;
}

function colSlice(m: Float32Array, r: number, c: number, j0: number, j1: number): Float32Array {
  const w = j1 - j0;
  const out = new Float32Array(r * w);
  for (let i = 0; i < r; i++) out.set(m.subarray(i * c + j0, i * c + j1), i * w);
  return out;
}

/**
 * Ridge regression with the penalty chosen per target by K-fold cross-validation.
 * X `[n, p]`, Y `[n, N]` -> weights `[p, N]`, intercept `[N]`, bestAlpha `[N]`, cvScore `[N]` (mean held-out R²).
 */
export function ridgeCV(X: Mat, Y: Mat, opts: RidgeCVOptions = {}): RidgeCVResult {
  const [n, p] = checkMat(X, 'ridgeCV X');
  const [ny, N] = checkMat(Y, 'ridgeCV Y');
  if (ny !== n) throw new Error(`ridgeCV: X has ${n} samples (rows) and Y has ${ny}; give one row of Y per row of X.`);
  const alphas = [...(opts.alphas ?? DEFAULT_ALPHAS)];
  if (!alphas.length || alphas.some((a) => !(a > 0))) throw new Error(`ridgeCV: alphas must be positive numbers, got [${alphas.join(', ')}].`);
  const foldOpt = opts.folds ?? 5;
  const ids = typeof foldOpt === 'number' ? kfoldIds(n, foldOpt, opts.seed ?? 0) : foldOpt;
  if (ids.length !== n) throw new Error(`ridgeCV: ${ids.length} fold ids for ${n} samples; give one per sample.`);
  const nFolds = Math.max(...ids) + 1;
  const tb = Math.max(1, opts.targetBatch ?? 4096);
  const A = alphas.length;
  const cvScores = new Float64Array(A * N);

  // 1. cross-validation: one eigendecomposition per fold, then every alpha and vertex batch
  for (let f = 0; f < nFolds; f++) {
    const tr: number[] = [];
    const va: number[] = [];
    for (let i = 0; i < n; i++) (ids[i] === f ? va : tr).push(i);
    if (!va.length || tr.length < 2) throw new Error(`ridgeCV: fold ${f} has ${va.length} held-out and ${tr.length} training samples; use fewer folds.`);
    const Xtr = rowsOf(X.data, p, tr);
    const mx = centre(Xtr, tr.length, p);
    const Xva = rowsOf(X.data, p, va);
    for (let i = 0; i < va.length; i++) for (let j = 0; j < p; j++) Xva[i * p + j]! -= mx[j]!;
    const sp = spectral(Xtr, tr.length, p);
    const Aval = matmul32(Xva, va.length, p, sp.back, sp.k); // [nva, k]
    const Ytr = rowsOf(Y.data, N, tr);
    const my = centre(Ytr, tr.length, N);
    const Yva = rowsOf(Y.data, N, va);
    for (let j0 = 0; j0 < N; j0 += tb) {
      const j1 = Math.min(N, j0 + tb);
      const w = j1 - j0;
      const scores = tf.tidy(() => {
        const yt = tf.tensor2d(colSlice(Ytr, tr.length, N, j0, j1), [tr.length, w]);
        const z = tf.matMul(tf.tensor2d(sp.proj, [sp.k, tr.length]), yt); // [k, w]
        const yv = tf.tensor2d(colSlice(Yva, va.length, N, j0, j1), [va.length, w]).sub(tf.tensor1d(Float32Array.from(my.subarray(j0, j1))));
        const yvMean = yv.mean(0, true);
        const tot = yv.sub(yvMean).square().sum(0);
        const a = tf.tensor2d(Aval, [va.length, sp.k]);
        const lam = tf.tensor2d(sp.lambda, [sp.k, 1]);
        const out: tf.Tensor1D[] = [];
        for (const alpha of alphas) {
          const pred = tf.matMul(a, z.div(lam.add(alpha)));
          const res = yv.sub(pred).square().sum(0);
          out.push(tf.sub(1, res.div(tot)) as tf.Tensor1D);
        }
        return tf.stack(out); // [A, w]
      });
      const s = scores.dataSync();
      scores.dispose();
      for (let ai = 0; ai < A; ai++) for (let j = 0; j < w; j++) cvScores[ai * N + j0 + j]! += s[ai * w + j]! / nFolds;
    }
  }

  // 2. each vertex's best alpha (first on ties; NaN scores, from constant targets, lose)
  const bestIdx = new Int32Array(N);
  const bestAlpha = new Float64Array(N);
  const cvScore = new Float64Array(N);
  for (let j = 0; j < N; j++) {
    let b = 0;
    let bs = -Infinity;
    for (let ai = 0; ai < A; ai++) {
      const v = cvScores[ai * N + j]!;
      if (v > bs) {
        bs = v;
        b = ai;
      }
    }
    bestIdx[j] = b;
    bestAlpha[j] = alphas[b]!;
    cvScore[j] = Number.isFinite(bs) ? bs : NaN;
  }

  // 3. refit on all samples with each vertex's alpha
  const Xall = Float32Array.from(X.data);
  const mx = centre(Xall, n, p);
  const Yall = Float32Array.from(Y.data);
  const my = centre(Yall, n, N);
  const sp = spectral(Xall, n, p);
  const weights = new Float32Array(p * N);
  for (let j0 = 0; j0 < N; j0 += tb) {
    const j1 = Math.min(N, j0 + tb);
    const w = j1 - j0;
    const wt = tf.tidy(() => {
      const z = tf.matMul(tf.tensor2d(sp.proj, [sp.k, n]), tf.tensor2d(colSlice(Yall, n, N, j0, j1), [n, w]));
      const denom = tf.tensor2d(sp.lambda, [sp.k, 1]).add(tf.tensor2d(Float32Array.from(bestAlpha.subarray(j0, j1)), [1, w]));
      return tf.matMul(tf.tensor2d(sp.back, [p, sp.k]), z.div(denom));
    });
    const d = wt.dataSync();
    wt.dispose();
    for (let i = 0; i < p; i++) weights.set(d.subarray(i * w, i * w + w), i * N + j0);
  }
  const intercept = new Float32Array(N);
  for (let j = 0; j < N; j++) {
    let s = my[j]!;
    for (let i = 0; i < p; i++) s -= mx[i]! * weights[i * N + j]!;
    intercept[j] = s;
  }
  return { weights, intercept, bestAlpha, cvScore, cvScores, alphas };
}

/** Predictions X `[n, p]` W `[p, N]` + b `[N]` -> `[n, N]`. */
export function ridgePredict(X: Mat, fit: Pick<RidgeCVResult, 'weights' | 'intercept'>): Float32Array {
  const [n, p] = checkMat(X, 'ridgePredict X');
  const N = fit.intercept.length;
  if (fit.weights.length !== p * N) throw new Error(`ridgePredict: weights have ${fit.weights.length} values, expected [${p}, ${N}] for ${p} features.`);
  const out = matmul32(X.data, n, p, fit.weights, N);
  for (let i = 0; i < n; i++) for (let j = 0; j < N; j++) out[i * N + j]! += fit.intercept[j]!;
  return out;
}

/** How token features are made for ridge: the global token, the average-pooled local map, or the flattened local map. */
export type RidgeFeatureMode = 'global' | 'pooled' | 'flat';

/** Per-layer features from one token batch: `[B, C]` ('global', 'pooled') or `[B, C*g*g]` ('flat'). */
export function tokenFeatures(batch: CachedTokenBatch, mode: RidgeFeatureMode): Mat[] {
  return batch.local.map((loc, l) => {
    const t = tf.tidy(() => {
      if (mode === 'global') return batch.global[l]!;
      if (mode === 'pooled') return loc.mean([2, 3]);
      return loc.reshape([loc.shape[0], -1]);
    });
    const data = Float32Array.from(t.dataSync());
    const shape = t.shape as [number, number];
    if (t !== batch.global[l]) t.dispose();
    return { data, shape };
  });
}

/** Collects per-layer ridge features `[n, F]` for images `indices` from a token cache (batches of `batchSize`). */
export async function collectTokenFeatures(
  cache: { getBatch(indices: readonly number[]): Promise<CachedTokenBatch> },
  indices: readonly number[],
  mode: RidgeFeatureMode,
  batchSize = 64,
): Promise<Mat[]> {
  let out: { parts: Float32Array[]; cols: number }[] | null = null;
  for (let i = 0; i < indices.length; i += batchSize) {
    const batch = await cache.getBatch(indices.slice(i, i + batchSize));
    const feats = tokenFeatures(batch, mode);
    batch.local.forEach((t) => t.dispose());
    batch.global.forEach((t) => t.dispose());
    out ??= feats.map((f) => ({ parts: [], cols: f.shape[1] }));
    feats.forEach((f, l) => out![l]!.parts.push(f.data as Float32Array));
  }
  return (out ?? []).map(({ parts, cols }) => {
    const data = new Float32Array(indices.length * cols);
    let o = 0;
    for (const part of parts) {
      data.set(part, o);
      o += part.length;
    }
    return { data, shape: [indices.length, cols] as [number, number] };
  });
}

/** A fitted PCA: mean `[p]`, components `[k, p]` (unit rows, by decreasing variance), variances `[k]`. */
export interface Pca {
  mean: Float64Array;
  components: Float32Array;
  variances: Float64Array;
  k: number;
  p: number;
}

/**
 * PCA of X `[n, p]` to k components: exact (eigendecomposition of the p x p covariance) when
 * p <= 1024 or p <= n/4, otherwise a seeded randomized range finder (k + 10 columns, 2 power iterations).
 */
export function fitPca(X: Mat, k: number, opts: { seed?: number; oversample?: number; powerIters?: number } = {}): Pca {
  const [n, p] = checkMat(X, 'fitPca X');
  k = Math.min(k, p, n);
  const Xc = Float32Array.from(X.data);
  const mean = centre(Xc, n, p);
  const XT = transpose32(Xc, n, p);
  /** Indices of the m largest eigenvalues (symmetricEigen sorts ascending). */
  const topIdx = (dim: number, m: number): number[] => Array.from({ length: m }, (_, i) => dim - 1 - i);
  if (p <= 1024 || p * 4 <= n) {
    const { values, vectors } = symmetricEigen(matmul32(XT, p, n, Xc, p), p);
    const idx = topIdx(p, k);
    const components = new Float32Array(k * p);
    idx.forEach((src, r) => components.set(vectors.subarray(src * p, src * p + p), r * p));
    return { mean, components, variances: Float64Array.from(idx, (i) => Math.max(0, values[i]!) / Math.max(1, n - 1)), k, p };
  }
  // randomized: Q = orth((Xc Xc^T)^q Xc Omega), then the small problem B = Q^T Xc
  const l = Math.min(n, k + (opts.oversample ?? 10));
  const rng = new Rng(opts.seed ?? 0);
  const omega = Float32Array.from({ length: p * l }, () => rng.normal());
  const orth = (Ym: Float32Array): Float32Array => {
    // Q = Y V diag(1/sqrt(lambda)) from the eigendecomposition of Y^T Y (Cholesky-free, rank-safe)
    const { values, vectors } = symmetricEigen(matmul32(transpose32(Ym, n, l), l, n, Ym, l), l);
    const top = values[l - 1]!;
    const M = new Float32Array(l * l);
    for (let c = 0; c < l; c++) {
      const s = values[c]! > top * 1e-12 ? 1 / Math.sqrt(values[c]!) : 0;
      for (let r = 0; r < l; r++) M[r * l + c] = vectors[c * l + r]! * s;
    }
    return matmul32(Ym, n, l, M, l);
  };
  let Q = orth(matmul32(Xc, n, p, omega, l));
  for (let it = 0; it < (opts.powerIters ?? 2); it++) {
    const Z = matmul32(XT, p, n, Q, l); // [p, l]
    Q = orth(matmul32(Xc, n, p, Z, l));
  }
  const B = matmul32(transpose32(Q, n, l), l, n, Xc, p); // [l, p]
  const { values, vectors } = symmetricEigen(matmul32(B, l, p, transpose32(B, l, p), l), l);
  const idx = topIdx(l, k);
  // component r = (w_r^T B) / sigma_r
  const Wsel = new Float32Array(k * l);
  idx.forEach((src, r) => {
    const s = values[src]! > 0 ? 1 / Math.sqrt(values[src]!) : 0;
    for (let c = 0; c < l; c++) Wsel[r * l + c] = vectors[src * l + c]! * s;
  });
  const components = matmul32(Wsel, k, l, B, p);
  return { mean, components, variances: Float64Array.from(idx, (i) => Math.max(0, values[i]!) / Math.max(1, n - 1)), k, p };
}

/** Projects X `[n, p]` onto a fitted PCA -> `[n, k]`. */
export function applyPca(pca: Pca, X: Mat): Mat {
  const [n, p] = checkMat(X, 'applyPca X');
  if (p !== pca.p) throw new Error(`applyPca: the PCA was fitted on ${pca.p} features and X has ${p}; use features made the same way.`);
  const Xc = Float32Array.from(X.data);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) Xc[i * p + j]! -= pca.mean[j]!;
  return { data: matmul32(Xc, n, p, transpose32(pca.components, pca.k, p), pca.k), shape: [n, pca.k] };
}

export interface RidgeBaselineOptions extends RidgeCVOptions {
  /** Reduce each layer's features to this many principal components (fitted on the training rows). */
  pca?: number;
  /** Choose each vertex's best layer by the cross-validated training score ('cv', default) or by validation R² ('val'). */
  selectBy?: 'cv' | 'val';
  /** Called after each layer with (layer index, number of layers). */
  onLayer?: (l: number, L: number) => void;
}

export interface RidgeBaselineResult {
  /** `[N]` best layer per vertex. */
  bestLayer: Int32Array;
  /** `[N]` validation R² of the best layer. */
  r2: Float32Array;
  /** `[N]` validation Pearson r of the best layer. */
  r: Float32Array;
  /** `[L, N]` validation R² per layer. */
  r2ByLayer: Float32Array;
  /** `[L, N]` validation Pearson r per layer. */
  rByLayer: Float32Array;
  /** `[L, N]` cross-validated training R² per layer. */
  cvByLayer: Float32Array;
  /** `[L, N]` chosen penalty per layer. */
  alphaByLayer: Float32Array;
  alphas: number[];
}

/**
 * The ridge baseline: for each layer, ridgeCV on its training features, scored on validation.
 * layers[l] = { train `[nTrain, F_l]`, val `[nVal, F_l]` }, Ytrain `[nTrain, N]`, Yval `[nVal, N]`.
 */
export function fitRidgeBaseline(layers: readonly { train: Mat; val: Mat }[], Ytrain: Mat, Yval: Mat, opts: RidgeBaselineOptions = {}): RidgeBaselineResult {
  const L = layers.length;
  if (!L) throw new Error('fitRidgeBaseline: no layers given; pass one { train, val } feature pair per layer.');
  const [nv, N] = checkMat(Yval, 'fitRidgeBaseline Yval');
  if (Ytrain.shape[1] !== N) throw new Error(`fitRidgeBaseline: Ytrain has ${Ytrain.shape[1]} vertices and Yval ${N}; use the same vertices.`);
  const r2ByLayer = new Float32Array(L * N);
  const rByLayer = new Float32Array(L * N);
  const cvByLayer = new Float32Array(L * N);
  const alphaByLayer = new Float32Array(L * N);
  let alphas: number[] = [];
  layers.forEach((layer, l) => {
    if (layer.val.shape[0] !== nv) throw new Error(`fitRidgeBaseline: layer ${l} has ${layer.val.shape[0]} validation rows and Yval ${nv}.`);
    if (layer.train.shape[1] !== layer.val.shape[1]) throw new Error(`fitRidgeBaseline: layer ${l} has ${layer.train.shape[1]} training and ${layer.val.shape[1]} validation features.`);
    let tr = layer.train;
    let va = layer.val;
    if (opts.pca && opts.pca < tr.shape[1]) {
      const pca = fitPca(tr, opts.pca, { seed: opts.seed ?? 0 });
      tr = applyPca(pca, tr);
      va = applyPca(pca, va);
    }
    const fit = ridgeCV(tr, Ytrain, opts);
    alphas = fit.alphas;
    const pred = ridgePredict(va, fit);
    const r2 = r2PerVertex(pred, Yval.data, N);
    const r = pearsonPerVertex(pred, Yval.data, N);
    r2ByLayer.set(r2, l * N);
    rByLayer.set(r, l * N);
    cvByLayer.set(fit.cvScore, l * N);
    for (let j = 0; j < N; j++) alphaByLayer[l * N + j] = fit.bestAlpha[j]!;
    opts.onLayer?.(l, L);
  });
  const sel = opts.selectBy === 'val' ? r2ByLayer : cvByLayer;
  const bestLayer = new Int32Array(N);
  const r2 = new Float32Array(N);
  const r = new Float32Array(N);
  for (let j = 0; j < N; j++) {
    let b = 0;
    let bs = -Infinity;
    for (let l = 0; l < L; l++) {
      const v = sel[l * N + j]!;
      if (v > bs) {
        bs = v;
        b = l;
      }
    }
    bestLayer[j] = b;
    r2[j] = r2ByLayer[b * N + j]!;
    r[j] = rByLayer[b * N + j]!;
  }
  return { bestLayer, r2, r, r2ByLayer, rByLayer, cvByLayer, alphaByLayer, alphas };
}

/**
 * The ridge baseline straight from a token cache: features of images `trainIdx` and `valIdx`
 * (`mode`: 'global' (default), 'pooled' or 'flat'; with `pca` for 'flat'), then {@link fitRidgeBaseline}.
 * Ytrain `[nTrain, N]`, Yval `[nVal, N]` in the order of the index lists.
 */
export async function fitRidgeBaselineFromCache(
  cache: { getBatch(indices: readonly number[]): Promise<CachedTokenBatch> },
  trainIdx: readonly number[],
  valIdx: readonly number[],
  Ytrain: Mat,
  Yval: Mat,
  opts: RidgeBaselineOptions & { mode?: RidgeFeatureMode; batchSize?: number } = {},
): Promise<RidgeBaselineResult> {
  if (Ytrain.shape[0] !== trainIdx.length || Yval.shape[0] !== valIdx.length) {
    throw new Error(`fitRidgeBaselineFromCache: ${trainIdx.length} training and ${valIdx.length} validation images, but Y has ${Ytrain.shape[0]} and ${Yval.shape[0]} rows; give one row per image.`);
  }
  const mode = opts.mode ?? 'global';
  const tr = await collectTokenFeatures(cache, trainIdx, mode, opts.batchSize);
  const va = await collectTokenFeatures(cache, valIdx, mode, opts.batchSize);
  return fitRidgeBaseline(tr.map((train, l) => ({ train, val: va[l]! })), Ytrain, Yval, opts);
}
