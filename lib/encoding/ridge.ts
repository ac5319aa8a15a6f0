/**
 * The ridge-regression baseline of voxelwise encoding (as himalaya's `solve_ridge_cv_svd`): per
 * layer, ridge from token features to every vertex, with each vertex's penalty chosen by K-fold
 * cross-validation, then for each vertex the best layer and its validation R² and Pearson r.
 *
 * Method: per fold, one factorisation of the centred Gram matrix X^T X (or of the kernel X X^T when
 * there are more features than samples) gives every alpha and every vertex for the price of a few
 * matrix products; targets (vertices) are processed in batches. The intercept is not penalised (X and
 * Y are centred with the training means). Large products run in tfjs (float32, operands transposed in
 * JS first). The factorisation (lib/core/linalg, float64 in JS, since tfjs has none) is, by default, the
 * Householder tridiagonal form G = Q T Q^T (solver 'tridiagonal'): then (G + alpha I)^-1 = Q (T + alpha I)^-1 Q^T,
 * and each alpha costs one tridiagonal solve per vertex, O(k), instead of the eigendecomposition's QL sweeps.
 * Solver 'eigen' is the symmetric eigendecomposition (himalaya's `solve_ridge_cv_svd`; negative round-off
 * eigenvalues clamped to 0), the path before, bit for bit. On the example's data (`npm run bench -- ridge`:
 * 10 MobileNetV2 layers, 16 to 1,280 wide, 2,472 vertices, outputs/bench/ridge.json, 2026-12-07) the two make
 * the same alpha choice for all 24,720 layer-vertex pairs, validation R² within 1.6e-6, with half the CPU time.
 * (The reflectors are scaled to v[0] = 1: unscaled, the example's 1,280-wide layer, rank-deficient with 41 dead
 * channels, gave a NaN Q and other choices for every vertex.) When T + alpha I is not positive definite in
 * floating point, that fold falls back to the eigendecomposition.
 */
import * as tf from '@tensorflow/tfjs';
import type { CachedTokenBatch } from '../backbones/token-cache.js';
import { Rng } from '../core/rng.js';
import { checkMatrix, type Matrix } from '../core/matrix.js';
import { applyPca, centreColumns, fitPca, matmul32, solveShiftedTridiagonal, symmetricEigen, symmetricTridiagonal, transpose32 } from '../core/linalg.js';
import { pearsonPerVertex, r2PerVertex } from './metrics.js';

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
  /**
   * How each fold's Gram matrix is factored: 'tridiagonal' (default; Householder, one tridiagonal solve per
   * alpha; about 2x less CPU on the example) or 'eigen' (the full eigendecomposition, as himalaya; the same
   * choices up to rounding: see the file comment).
   */
  solver?: RidgeSolver;
}

/** How ridgeCV factors each Gram matrix (see {@link RidgeCVOptions.solver}). */
export type RidgeSolver = 'tridiagonal' | 'eigen';

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
  /** Factorisations (folds and the refit) that the tridiagonal solver handed to the eigendecomposition (not positive definite at the smallest alpha). */
  eigenFallbacks: number;
}

/**
 * A ridge solver for one training set, w(alpha) = back S_alpha^-1 proj Y, with S_alpha = diag(lambda + alpha)
 * (eigen) or T + alpha I (tridiagonal): proj `[k, nTrain]`, back `[p, k]`.
 */
interface Factored {
  k: number;
  /** true when the tridiagonal solver fell back to the eigendecomposition. */
  fellBack: boolean;
  proj: Float32Array;
  back: Float32Array;
  /** S_alpha^-1 Z for Z `[k, w]` (one alpha, or one per column `[w]`). */
  solve(Z: Float32Array, w: number, alpha: number | Float64Array): Float32Array;
}

function eigenFactor(M: Float32Array, k: number): { vectors: Float64Array; solve: Factored['solve'] } {
  const { values, vectors } = symmetricEigen(M, k);
  const lambda = clampPos(values);
  return {
    vectors,
    solve(Z, w, alpha) {
      // float32 arithmetic, as tfjs's z / (lambda + alpha) was: the same numbers as before the tridiagonal solver
      const out = new Float32Array(k * w);
      for (let i = 0; i < k; i++) {
        const li = lambda[i]!;
        for (let j = 0; j < w; j++) out[i * w + j] = Z[i * w + j]! / Math.fround(li + Math.fround(typeof alpha === 'number' ? alpha : alpha[j]!));
      }
      return out;
    },
  };
}

/** Factors the Gram matrix (p <= n) or the kernel (p > n) of centred Xc `[n, p]`; `minAlpha` is the smallest penalty the solver will see. */
function factor(Xc: Float32Array, n: number, p: number, solver: RidgeSolver, minAlpha: number): Factored {
  const XT = transpose32(Xc, n, p);
  const primal = p <= n;
  const k = primal ? p : n;
  const M = primal ? matmul32(XT, p, n, Xc, p) : matmul32(Xc, n, p, XT, n);
  if (solver === 'tridiagonal') {
    const tri = symmetricTridiagonal(M, k);
    // positive definite at the smallest alpha means at every alpha of the grid
    if (solveShiftedTridiagonal(tri.d, tri.e, minAlpha, new Float32Array(k), 1)) {
      const QT = transpose32(tri.q, k, k);
      const solve: Factored['solve'] = (Z, w, alpha) => solveShiftedTridiagonal(tri.d, tri.e, alpha, Z, w)!;
      return primal
        ? { k, proj: matmul32(QT, k, k, XT, n), back: tri.q, solve, fellBack: false }
        : { k, proj: QT, back: matmul32(XT, p, n, tri.q, n), solve, fellBack: false };
    }
  }
  const { vectors, solve } = eigenFactor(M, k);
  const fellBack = solver === 'tridiagonal';
  return primal
    ? { k, proj: matmul32(Float32Array.from(vectors), p, p, XT, n), back: transpose32(vectors, p, p), solve, fellBack }
    : { k, proj: Float32Array.from(vectors), back: matmul32(XT, p, n, transpose32(vectors, n, n), n), solve, fellBack };
}

function clampPos(v: Float64Array): Float32Array {
  return Float32Array.from(v, (x) => Math.max(0, x));
}

function rowsOf(m: Float32Array, cols: number, rows: readonly number[] | Int32Array): Float32Array {
  const out = new Float32Array(rows.length * cols);
  for (let i = 0; i < rows.length; i++) out.set(m.subarray(rows[i]! * cols, rows[i]! * cols + cols), i * cols);
  return out;
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
export function ridgeCV(X: Matrix, Y: Matrix, opts: RidgeCVOptions = {}): RidgeCVResult {
  const [n, p] = checkMatrix(X, 'ridgeCV X');
  const [ny, N] = checkMatrix(Y, 'ridgeCV Y');
  if (ny !== n) throw new Error(`ridgeCV: X has ${n} samples (rows) and Y has ${ny}; give one row of Y per row of X.`);
  const alphas = [...(opts.alphas ?? DEFAULT_ALPHAS)];
  if (!alphas.length || alphas.some((a) => !(a > 0))) throw new Error(`ridgeCV: alphas must be positive numbers, got [${alphas.join(', ')}].`);
  const foldOpt = opts.folds ?? 5;
  const ids = typeof foldOpt === 'number' ? kfoldIds(n, foldOpt, opts.seed ?? 0) : foldOpt;
  if (ids.length !== n) throw new Error(`ridgeCV: ${ids.length} fold ids for ${n} samples; give one per sample.`);
  const nFolds = Math.max(...ids) + 1;
  const tb = Math.max(1, opts.targetBatch ?? 4096);
  const solver = opts.solver ?? 'tridiagonal';
  if (solver !== 'tridiagonal' && solver !== 'eigen') throw new Error(`ridgeCV: unknown solver '${String(solver)}'; use 'tridiagonal' or 'eigen'.`);
  const minAlpha = Math.min(...alphas);
  const A = alphas.length;
  const cvScores = new Float64Array(A * N);
  let eigenFallbacks = 0;

  // 1. cross-validation: one eigendecomposition per fold, then every alpha and vertex batch
  for (let f = 0; f < nFolds; f++) {
    const tr: number[] = [];
    const va: number[] = [];
    for (let i = 0; i < n; i++) (ids[i] === f ? va : tr).push(i);
    if (!va.length || tr.length < 2) throw new Error(`ridgeCV: fold ${f} has ${va.length} held-out and ${tr.length} training samples; use fewer folds.`);
    const Xtr = rowsOf(X.data, p, tr);
    const mx = centreColumns(Xtr, tr.length, p);
    const Xva = rowsOf(X.data, p, va);
    for (let i = 0; i < va.length; i++) for (let j = 0; j < p; j++) Xva[i * p + j]! -= mx[j]!;
    const sp = factor(Xtr, tr.length, p, solver, minAlpha);
    if (sp.fellBack) eigenFallbacks++;
    const Aval = matmul32(Xva, va.length, p, sp.back, sp.k); // [nva, k]
    const Ytr = rowsOf(Y.data, N, tr);
    const my = centreColumns(Ytr, tr.length, N);
    const Yva = rowsOf(Y.data, N, va);
    for (let j0 = 0; j0 < N; j0 += tb) {
      const j1 = Math.min(N, j0 + tb);
      const w = j1 - j0;
      const z = matmul32(sp.proj, sp.k, tr.length, colSlice(Ytr, tr.length, N, j0, j1), w); // [k, w]
      const scores = tf.tidy(() => {
        const yv = tf.tensor2d(colSlice(Yva, va.length, N, j0, j1), [va.length, w]).sub(tf.tensor1d(Float32Array.from(my.subarray(j0, j1))));
        const yvMean = yv.mean(0, true);
        const tot = yv.sub(yvMean).square().sum(0);
        const a = tf.tensor2d(Aval, [va.length, sp.k]);
        const out: tf.Tensor1D[] = [];
        for (const alpha of alphas) {
          const pred = tf.matMul(a, tf.tensor2d(sp.solve(z, w, alpha), [sp.k, w]));
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
  const mx = centreColumns(Xall, n, p);
  const Yall = Float32Array.from(Y.data);
  const my = centreColumns(Yall, n, N);
  const sp = factor(Xall, n, p, solver, minAlpha);
  if (sp.fellBack) eigenFallbacks++;
  const weights = new Float32Array(p * N);
  for (let j0 = 0; j0 < N; j0 += tb) {
    const j1 = Math.min(N, j0 + tb);
    const w = j1 - j0;
    const z = matmul32(sp.proj, sp.k, n, colSlice(Yall, n, N, j0, j1), w);
    const d = matmul32(sp.back, p, sp.k, sp.solve(z, w, bestAlpha.subarray(j0, j1)), w);
    for (let i = 0; i < p; i++) weights.set(d.subarray(i * w, i * w + w), i * N + j0);
  }
  const intercept = new Float32Array(N);
  for (let j = 0; j < N; j++) {
    let s = my[j]!;
    for (let i = 0; i < p; i++) s -= mx[i]! * weights[i * N + j]!;
    intercept[j] = s;
  }
  return { weights, intercept, bestAlpha, cvScore, cvScores, alphas, eigenFallbacks };
}

/** Predictions X `[n, p]` W `[p, N]` + b `[N]` -> `[n, N]`. */
export function ridgePredict(X: Matrix, fit: Pick<RidgeCVResult, 'weights' | 'intercept'>): Float32Array {
  const [n, p] = checkMatrix(X, 'ridgePredict X');
  const N = fit.intercept.length;
  if (fit.weights.length !== p * N) throw new Error(`ridgePredict: weights have ${fit.weights.length} values, expected [${p}, ${N}] for ${p} features.`);
  const out = matmul32(X.data, n, p, fit.weights, N);
  for (let i = 0; i < n; i++) for (let j = 0; j < N; j++) out[i * N + j]! += fit.intercept[j]!;
  return out;
}

/** How token features are made for ridge: the global token, the average-pooled local map, or the flattened local map. */
export type RidgeFeatureMode = 'global' | 'pooled' | 'flat';

/** Per-layer features from one token batch: `[B, C]` ('global', 'pooled') or `[B, C*g*g]` ('flat'). */
export function tokenFeatures(batch: CachedTokenBatch, mode: RidgeFeatureMode): Matrix[] {
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
): Promise<Matrix[]> {
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
  /** Factorisations, over all layers, that the tridiagonal solver handed to the eigendecomposition (see {@link RidgeCVResult}). */
  eigenFallbacks: number;
}

/**
 * The ridge baseline: for each layer, ridgeCV on its training features, scored on validation.
 * layers[l] = { train `[nTrain, F_l]`, val `[nVal, F_l]` }, Ytrain `[nTrain, N]`, Yval `[nVal, N]`.
 */
export function fitRidgeBaseline(layers: readonly { train: Matrix; val: Matrix }[], Ytrain: Matrix, Yval: Matrix, opts: RidgeBaselineOptions = {}): RidgeBaselineResult {
  const L = layers.length;
  if (!L) throw new Error('fitRidgeBaseline: no layers given; pass one { train, val } feature pair per layer.');
  const [nv, N] = checkMatrix(Yval, 'fitRidgeBaseline Yval');
  if (Ytrain.shape[1] !== N) throw new Error(`fitRidgeBaseline: Ytrain has ${Ytrain.shape[1]} vertices and Yval ${N}; use the same vertices.`);
  const r2ByLayer = new Float32Array(L * N);
  const rByLayer = new Float32Array(L * N);
  const cvByLayer = new Float32Array(L * N);
  const alphaByLayer = new Float32Array(L * N);
  let alphas: number[] = [];
  let eigenFallbacks = 0;
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
    eigenFallbacks += fit.eigenFallbacks;
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
  return { bestLayer, r2, r, r2ByLayer, rByLayer, cvByLayer, alphaByLayer, alphas, eigenFallbacks };
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
  Ytrain: Matrix,
  Yval: Matrix,
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
