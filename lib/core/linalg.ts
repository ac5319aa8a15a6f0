/**
 * Small dense linear algebra on row-major typed arrays: the symmetric eigendecomposition (float64
 * in JS, Householder tridiagonalisation + implicit QL, after EISPACK tred2/tql2 as JAMA writes them,
 * since tfjs has none), float32 products through tfjs, transposes, column centring, and PCA.
 * Used by the ridge baseline, the channel clusters and the latent diffusion's PCA.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from './rng.js';
import { checkMatrix, type Matrix } from './matrix.js';

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

/** A symmetric matrix as Q T Q^T: T tridiagonal (diagonal `d` `[n]`, off-diagonal `e` `[n-1]`), Q orthogonal `[n, n]` row-major. */
export interface SymmetricTridiagonal {
  d: Float64Array;
  e: Float64Array;
  /** `[n, n]` row-major, float32 (formed with tfjs products). */
  q: Float32Array;
  n: number;
}

/**
 * Householder tridiagonalisation A = Q T Q^T of a symmetric `[n, n]` matrix (only its lower triangle is read):
 * the reduction in float64 in JS (row-contiguous loops over the lower triangle), then Q formed from the
 * reflectors in blocks of 32 (compact WY, I - Y T Y^T) with float32 tfjs products. The first half of a
 * symmetric eigendecomposition, enough to solve (A + alpha I) x = b for many alphas ({@link solveShiftedTridiagonal}).
 */
export function symmetricTridiagonal(a: ArrayLike<number>, n: number): SymmetricTridiagonal {
  if (a.length !== n * n) throw new Error(`symmetricTridiagonal: expected ${n * n} values for a ${n}x${n} matrix, found ${a.length}.`);
  const A = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) A[i] = a[i]!;
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  const R = new Float64Array(n * n); // row k: reflector k at columns k+1..n-1
  const beta = new Float64Array(n);
  const p = new Float64Array(n);
  const v = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const m = n - k - 1;
    const o = k + 1;
    let sig = 0;
    for (let i = 1; i < m; i++) {
      const x = A[(o + i) * n + k]!;
      sig += x * x;
    }
    const x0 = A[o * n + k]!;
    d[k] = A[k * n + k]!;
    if (sig === 0) {
      e[k] = x0;
      continue;
    }
    const alpha = -(x0 >= 0 ? 1 : -1) * Math.sqrt(sig + x0 * x0);
    // the reflector scaled to v[0] = 1 (as LAPACK's dlarfg): |v[i]| <= 1 and b in [1, 2], whatever the column's
    // scale. Unscaled, a column of round-off (a rank-deficient Gram matrix) gave b ~ 1e40, Infinity in float32.
    const v0 = x0 - alpha;
    v[0] = 1;
    let vv = 1;
    for (let i = 1; i < m; i++) {
      v[i] = A[(o + i) * n + k]! / v0;
      vv += v[i]! * v[i]!;
    }
    const b = 2 / vv;
    e[k] = alpha;
    beta[k] = b;
    for (let i = 0; i < m; i++) R[k * n + o + i] = v[i]!;
    // p = b B v with B = A[o.., o..], reading B's lower triangle row by row
    p.fill(0, 0, m);
    for (let r = 0; r < m; r++) {
      const row = (o + r) * n + o;
      const vr = v[r]!;
      let pr = 0;
      for (let c = 0; c < r; c++) {
        const x = A[row + c]!;
        pr += x * v[c]!;
        p[c]! += x * vr;
      }
      p[r]! += pr + A[row + r]! * vr;
    }
    let pv = 0;
    for (let i = 0; i < m; i++) {
      p[i]! *= b;
      pv += p[i]! * v[i]!;
    }
    const K = (b / 2) * pv;
    for (let i = 0; i < m; i++) p[i]! -= K * v[i]!; // p is now w
    // B -= v w^T + w v^T on the lower triangle
    for (let r = 0; r < m; r++) {
      const row = (o + r) * n + o;
      const vr = v[r]!;
      const wr = p[r]!;
      for (let c = 0; c <= r; c++) A[row + c]! -= vr * p[c]! + wr * v[c]!;
    }
  }
  if (n >= 2) {
    d[n - 2] = A[(n - 2) * n + n - 2]!;
    e[n - 2] = A[(n - 1) * n + n - 2]!;
  }
  if (n >= 1) d[n - 1] = A[(n - 1) * n + n - 1]!;
  return { d, e, q: formQ(R, beta, n), n };
}

/** Q = H_0 H_1 ... H_{n-3} from the reflectors (rows of R, scales beta), in blocks: Q <- (I - Y T Y^T) Q from the last block back. */
function formQ(R: Float64Array, beta: Float64Array, n: number): Float32Array {
  const q = new Float32Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const nr = Math.max(0, n - 2);
  const NB = 32;
  for (let j0 = Math.floor((nr - 1) / NB) * NB; j0 >= 0; j0 -= NB) {
    const nb = Math.min(NB, nr - j0);
    const o = j0 + 1; // the block's reflectors are zero above row o
    const m = n - o;
    // T (upper triangular nb x nb), float64: T[i][i] = beta_i, T[0:i, i] = -beta_i T[0:i, 0:i] (Y[:, 0:i]^T y_i)
    const T = new Float64Array(nb * nb);
    const yty = new Float64Array(nb);
    for (let i = 0; i < nb; i++) {
      const ki = j0 + i;
      for (let l = 0; l < i; l++) {
        const kl = j0 + l;
        let s = 0;
        for (let r = ki + 1; r < n; r++) s += R[kl * n + r]! * R[ki * n + r]!;
        yty[l] = s;
      }
      for (let r = 0; r < i; r++) {
        let s = 0;
        for (let l = r; l < i; l++) s += T[r * nb + l]! * yty[l]!;
        T[r * nb + i] = -beta[ki]! * s;
      }
      T[i * nb + i] = beta[ki]!;
    }
    const Yt = new Float32Array(nb * m); // Y^T restricted to rows o..n-1
    const Y = new Float32Array(m * nb);
    for (let i = 0; i < nb; i++) {
      const ki = j0 + i;
      for (let r = ki + 1; r < n; r++) {
        const x = R[ki * n + r]!;
        Yt[i * m + r - o] = x;
        Y[(r - o) * nb + i] = x;
      }
    }
    const sub = new Float32Array(m * m);
    for (let r = 0; r < m; r++) sub.set(q.subarray((o + r) * n + o, (o + r) * n + n), r * m);
    const out = tf.tidy(() => {
      const Q = tf.tensor2d(sub, [m, m]);
      const W = tf.matMul(tf.tensor2d(Float32Array.from(T), [nb, nb]), tf.matMul(tf.tensor2d(Yt, [nb, m]), Q));
      return tf.sub(Q, tf.matMul(tf.tensor2d(Y, [m, nb]), W));
    });
    const res = out.dataSync() as Float32Array;
    out.dispose();
    for (let r = 0; r < m; r++) q.set(res.subarray(r * m, r * m + m), (o + r) * n + o);
  }
  return q;
}

/**
 * Solves (T + alpha I) X = Z for a symmetric tridiagonal T (diagonal d `[k]`, off-diagonal e `[k-1]`) and
 * Z `[k, w]` row-major (float64 arithmetic): `alpha` one shift for every column, or one per column `[w]`.
 * Returns X `[k, w]` (float32), or null when T + alpha I is not positive definite (a pivot <= 0).
 */
export function solveShiftedTridiagonal(d: Float64Array, e: Float64Array, alpha: number | ArrayLike<number>, Z: ArrayLike<number>, w: number): Float32Array | null {
  const k = d.length;
  const X = new Float64Array(k * w);
  if (typeof alpha === 'number') {
    // one shift: the pivots are shared by every column
    const piv = new Float64Array(k); // 1 / pivot
    for (let i = 0; i < k; i++) {
      const m = i > 0 ? d[i]! + alpha - e[i - 1]! * e[i - 1]! * piv[i - 1]! : d[i]! + alpha;
      if (!(m > 0)) return null;
      piv[i] = 1 / m;
    }
    for (let j = 0; j < w; j++) X[j] = Z[j]! * piv[0]!;
    for (let i = 1; i < k; i++) {
      const el = e[i - 1]!;
      const inv = piv[i]!;
      const r = i * w;
      const q = r - w;
      for (let j = 0; j < w; j++) X[r + j] = (Z[r + j]! - el * X[q + j]!) * inv;
    }
    for (let i = k - 2; i >= 0; i--) {
      const c = e[i]! * piv[i]!;
      const r = i * w;
      const q = r + w;
      for (let j = 0; j < w; j++) X[r + j]! -= c * X[q + j]!;
    }
    return Float32Array.from(X);
  }
  // one shift per column: pivots per row and column
  const piv = new Float64Array(k * w);
  for (let i = 0; i < k; i++) {
    const di = d[i]!;
    const el = i > 0 ? e[i - 1]! : 0;
    for (let j = 0; j < w; j++) {
      const m = i > 0 ? di + alpha[j]! - el * el * piv[(i - 1) * w + j]! : di + alpha[j]!;
      if (!(m > 0)) return null;
      const inv = 1 / m;
      piv[i * w + j] = inv;
      X[i * w + j] = (Z[i * w + j]! - (i > 0 ? el * X[(i - 1) * w + j]! : 0)) * inv;
    }
  }
  for (let i = k - 2; i >= 0; i--) {
    const ei = e[i]!;
    for (let j = 0; j < w; j++) X[i * w + j]! -= ei * piv[i * w + j]! * X[(i + 1) * w + j]!;
  }
  return Float32Array.from(X);
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

/** Subtracts the column means of a row-major `[r, c]` array in place; returns them `[c]`. */
export function centreColumns(m: Float32Array, r: number, c: number): Float64Array {
  const mean = new Float64Array(c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) mean[j]! += m[i * c + j]!;
  for (let j = 0; j < c; j++) mean[j]! /= r;
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) m[i * c + j]! -= mean[j]!;
  return mean;
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
export function fitPca(X: Matrix, k: number, opts: { seed?: number; oversample?: number; powerIters?: number } = {}): Pca {
  const [n, p] = checkMatrix(X, 'fitPca X');
  k = Math.min(k, p, n);
  const Xc = Float32Array.from(X.data);
  const mean = centreColumns(Xc, n, p);
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
export function applyPca(pca: Pca, X: Matrix): Matrix {
  const [n, p] = checkMatrix(X, 'applyPca X');
  if (p !== pca.p) throw new Error(`applyPca: the PCA was fitted on ${pca.p} features and X has ${p}; use features made the same way.`);
  const Xc = Float32Array.from(X.data);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) Xc[i * p + j]! -= pca.mean[j]!;
  return { data: matmul32(Xc, n, p, transpose32(pca.components, pca.k, p), pca.k), shape: [n, pca.k] };
}
