/**
 * Channels of the factorized model: cluster the per-vertex weight vectors w_vertex `[N, D]` into
 * groups (cosine k-means into ~200 centroids, then Ward linkage of the centroids into 20
 * clusters, as "Brain Decodes Deep Nets" does), and top-channel images (an image's local tokens
 * projected on the first 3 principal components of a ROI's weights, as RGB).
 * Pure functions on plain arrays; tfjs only for the large products.
 */
import * as tf from '@tensorflow/tfjs';
import type { RgbImage } from '../io/image.js';
import { Rng } from '../core/rng.js';
import { checkMatrix, type Matrix } from '../core/matrix.js';
import { symmetricEigen, transpose32 } from '../core/linalg.js';
import { quantile } from './metrics.js';

/** Rows scaled to unit length `[n, d]` (zero rows stay zero). */
export function unitRows(m: Matrix): Float32Array {
  const [n, d] = checkMatrix(m, 'unitRows');
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += m.data[i * d + j]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = m.data[i * d + j]! * inv;
  }
  return out;
}

export interface KMeansResult {
  /** `[n]` cluster of each row. */
  labels: Int32Array;
  /** `[k, d]` unit-length centroids. */
  centroids: Float32Array;
  /** `[k]` rows per cluster. */
  counts: Int32Array;
  iterations: number;
}

/**
 * Cosine (spherical) k-means of the rows of X `[n, d]`: seeded k-means++ on unit vectors, then
 * Lloyd steps until at most `tol` x n rows change cluster (default 0: until none) or `maxIter` (100).
 */
export function kmeansCosine(X: Matrix, k: number, opts: { seed?: number; maxIter?: number; tol?: number } = {}): KMeansResult {
  const [n, d] = checkMatrix(X, 'kmeansCosine');
  if (!(k >= 1 && k <= n)) throw new Error(`kmeansCosine: need 1 <= k <= ${n} rows, got k = ${k}.`);
  const U = unitRows(X);
  const rng = new Rng(opts.seed ?? 0);
  // 1. k-means++: squared chord distance 2 - 2 cos
  const C = new Float32Array(k * d);
  const minD = new Float64Array(n).fill(Infinity);
  let next = rng.int(0, n);
  for (let c = 0; c < k; c++) {
    C.set(U.subarray(next * d, next * d + d), c * d);
    let total = 0;
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += U[i * d + j]! * C[c * d + j]!;
      const dist = Math.max(0, 2 - 2 * dot);
      if (dist < minD[i]!) minD[i] = dist;
      total += minD[i]!;
    }
    if (c + 1 === k) break;
    if (total <= 0) {
      next = rng.int(0, n);
      continue;
    }
    let u = rng.next() * total;
    next = n - 1;
    for (let i = 0; i < n; i++) {
      u -= minD[i]!;
      if (u < 0) {
        next = i;
        break;
      }
    }
  }
  // 2. Lloyd: assign by largest cosine, centroid = normalised mean
  const labels = new Int32Array(n).fill(-1);
  const best = new Float32Array(n);
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 0;
  const Ut = tf.tensor2d(U, [n, d]);
  let it = 0;
  try {
    for (; it < maxIter; it++) {
      const [idx, val] = tf.tidy(() => {
        const sims = tf.matMul(Ut, tf.tensor2d(transpose32(C, k, d), [d, k]));
        return [sims.argMax(1), sims.max(1)];
      });
      const lab = idx!.dataSync() as Int32Array;
      best.set(val!.dataSync());
      tf.dispose([idx!, val!]);
      let changed = 0;
      for (let i = 0; i < n; i++) if (lab[i] !== labels[i]) (labels[i] = lab[i]!), changed++;
      C.fill(0);
      const counts = new Int32Array(k);
      for (let i = 0; i < n; i++) {
        const c = labels[i]!;
        counts[c]!++;
        for (let j = 0; j < d; j++) C[c * d + j]! += U[i * d + j]!;
      }
      // an empty cluster takes the row worst served by its centroid
      for (let c = 0; c < k; c++) {
        if (counts[c]) continue;
        let w = 0;
        for (let i = 1; i < n; i++) if (best[i]! < best[w]!) w = i;
        best[w] = Infinity;
        C.set(U.subarray(w * d, w * d + d), c * d);
        changed++;
      }
      normaliseInPlace(C, k, d);
      if (changed <= tol * n) break;
    }
  } finally {
    Ut.dispose();
  }
  const counts = new Int32Array(k);
  labels.forEach((c) => counts[c]!++);
  return { labels, centroids: C, counts, iterations: it };
}

function normaliseInPlace(m: Float32Array, r: number, c: number): void {
  for (let i = 0; i < r; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += m[i * c + j]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < c; j++) m[i * c + j]! *= inv;
  }
}

/**
 * Ward agglomerative clustering of points `[m, d]` (Euclidean), by the Lance-Williams update.
 * Returns the linkage `[m-1, 4]` in scipy's layout: (cluster a, cluster b, height, size), where
 * clusters 0..m-1 are the points and m+i is the cluster formed at row i. Optional `sizes` `[m]`
 * treat each point as the centroid of that many points (Ward's criterion between weighted
 * centroids); without it every point counts once, as scipy.cluster.hierarchy.ward.
 */
export function wardLinkage(points: Matrix, sizes?: ArrayLike<number>): Float64Array {
  const [m, d] = checkMatrix(points, 'wardLinkage');
  if (sizes && sizes.length !== m) throw new Error(`wardLinkage: ${sizes.length} sizes for ${m} points.`);
  const size = Float64Array.from({ length: m }, (_, i) => (sizes ? sizes[i]! : 1));
  const D = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += (points.data[i * d + t]! - points.data[j * d + t]!) ** 2;
      const w = (2 * size[i]! * size[j]!) / (size[i]! + size[j]!);
      D[i * m + j] = D[j * m + i] = Math.sqrt(w * s);
    }
  }
  const active = new Uint8Array(m).fill(1);
  const id = Int32Array.from({ length: m }, (_, i) => i); // slot -> cluster id
  const Z = new Float64Array((m - 1) * 4);
  for (let step = 0; step < m - 1; step++) {
    let bi = -1;
    let bj = -1;
    let bd = Infinity;
    for (let i = 0; i < m; i++) {
      if (!active[i]) continue;
      for (let j = i + 1; j < m; j++) {
        if (active[j] && D[i * m + j]! < bd) {
          bd = D[i * m + j]!;
          bi = i;
          bj = j;
        }
      }
    }
    const ni = size[bi]!;
    const nj = size[bj]!;
    for (let k = 0; k < m; k++) {
      if (!active[k] || k === bi || k === bj) continue;
      const nk = size[k]!;
      const dki = D[k * m + bi]!;
      const dkj = D[k * m + bj]!;
      const v = ((nk + ni) * dki * dki + (nk + nj) * dkj * dkj - nk * bd * bd) / (nk + ni + nj);
      D[k * m + bi] = D[bi * m + k] = Math.sqrt(Math.max(0, v));
    }
    const a = Math.min(id[bi]!, id[bj]!);
    const b = Math.max(id[bi]!, id[bj]!);
    Z.set([a, b, bd, ni + nj], step * 4);
    size[bi] = ni + nj;
    id[bi] = m + step;
    active[bj] = 0;
  }
  if (!sizes) {
    // scipy's 4th column counts original points
    const cnt = new Float64Array(2 * m - 1).fill(1);
    for (let s = 0; s < m - 1; s++) Z[s * 4 + 3] = cnt[m + s] = cnt[Z[s * 4]!]! + cnt[Z[s * 4 + 1]!]!;
  }
  return Z;
}

/**
 * Cuts a linkage `[m-1, 4]` into k clusters (the first m-k merges) -> labels `[m]` in 0..k-1,
 * numbered by decreasing cluster size (ties: smallest member first).
 */
export function cutTree(Z: ArrayLike<number>, m: number, k: number): Int32Array {
  if (!(k >= 1 && k <= m)) throw new Error(`cutTree: need 1 <= k <= ${m}, got ${k}.`);
  const parent = Int32Array.from({ length: 2 * m - 1 }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x]!]!;
    return x;
  };
  for (let s = 0; s < m - k; s++) {
    parent[find(Z[s * 4]!)] = m + s;
    parent[find(Z[s * 4 + 1]!)] = m + s;
  }
  const roots = Int32Array.from({ length: m }, (_, i) => find(i));
  const groups = new Map<number, number[]>();
  roots.forEach((r, i) => (groups.get(r) ?? groups.set(r, []).get(r)!).push(i));
  const ordered = [...groups.values()].sort((x, y) => y.length - x.length || x[0]! - y[0]!);
  const labels = new Int32Array(m);
  ordered.forEach((members, c) => members.forEach((i) => (labels[i] = c)));
  return labels;
}

export interface ClusterChannelsOptions {
  /** Final number of clusters (default 20). */
  k?: number;
  /** Number of k-means centroids before Ward (default min(200, N)); when N <= kmeansK Ward runs on the vertices. */
  kmeansK?: number;
  /** Seed of k-means++ (default 0). */
  seed?: number;
  /** Weight each centroid by its member count in Ward (default false: each centroid counts once). */
  weighted?: boolean;
  /** k-means stops when at most tol x N vertices change cluster (default 1e-3) or after maxIter steps (default 50). */
  tol?: number;
  maxIter?: number;
}

export interface ChannelClusters {
  /** `[N]` cluster of each vertex, 0..k-1 numbered by decreasing vertex count. */
  labels: Int32Array;
  /** `[k, D]` unit-length mean direction of each cluster's vertices. */
  centroids: Float32Array;
  /** `[N]` k-means centroid of each vertex. */
  kmeansLabels: Int32Array;
  /** Ward linkage of the k-means centroids `[kmeansK-1, 4]`. */
  linkage: Float64Array;
  k: number;
}

/** Clusters vertex weight vectors `[N, D]` into k groups: cosine k-means, then Ward linkage of the centroids. */
export function clusterChannels(weights: Matrix, opts: ClusterChannelsOptions = {}): ChannelClusters {
  const [N, D] = checkMatrix(weights, 'clusterChannels');
  const k = opts.k ?? 20;
  if (!(k >= 1 && k <= N)) throw new Error(`clusterChannels: cannot make ${k} clusters of ${N} vertices.`);
  const kmK = Math.max(k, Math.min(opts.kmeansK ?? 200, N));
  const U = unitRows(weights);
  // 1. cosine k-means (skipped when there are few vertices)
  const km =
    kmK < N
      ? kmeansCosine({ data: U, shape: [N, D] }, kmK, { seed: opts.seed ?? 0, maxIter: opts.maxIter ?? 50, tol: opts.tol ?? 1e-3 })
      : { labels: Int32Array.from({ length: N }, (_, i) => i), centroids: U, counts: new Int32Array(N).fill(1) };
  // 2. Ward linkage of the centroids, cut into k clusters
  const linkage = wardLinkage({ data: km.centroids, shape: [kmK, D] }, opts.weighted ? km.counts : undefined);
  const cl = cutTree(linkage, kmK, k);
  // number the clusters by decreasing vertex count (ties: lower Ward label first)
  const counts = new Int32Array(k);
  km.labels.forEach((c) => counts[cl[c]!]!++);
  const order = Array.from({ length: k }, (_, i) => i).sort((a, b) => counts[b]! - counts[a]! || a - b);
  const rank = new Int32Array(k);
  order.forEach((c, r) => (rank[c] = r));
  const labels = Int32Array.from(km.labels, (c) => rank[cl[c]!]!);
  // 3. each cluster's direction: normalised mean of its unit vectors
  const centroids = new Float32Array(k * D);
  for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) centroids[labels[i]! * D + j]! += U[i * D + j]!;
  normaliseInPlace(centroids, k, D);
  return { labels, centroids, kmeansLabels: km.labels, linkage, k };
}

/** The principal components of a ROI's vertex weights. */
export interface RoiComponents {
  /** `[nComp, D]` unit rows, by decreasing variance; sign: the largest-magnitude loading is positive. */
  components: Float32Array;
  /** `[D]` mean weight vector of the ROI. */
  mean: Float64Array;
  /** `[nComp]` variances along the components. */
  variances: Float64Array;
  /** Vertices in the ROI. */
  count: number;
  D: number;
}

/** PCA of the weights `[N, D]` of the vertices in `mask` `[N]` (all when omitted) -> the first nComp components. */
export function roiPrincipalComponents(weights: Matrix, mask?: ArrayLike<number | boolean>, nComp = 3): RoiComponents {
  const [N, D] = checkMatrix(weights, 'roiPrincipalComponents');
  if (mask && mask.length !== N) throw new Error(`roiPrincipalComponents: the mask has ${mask.length} entries for ${N} vertices.`);
  const rows: number[] = [];
  for (let i = 0; i < N; i++) if (!mask || mask[i]) rows.push(i);
  if (rows.length < 2) throw new Error(`roiPrincipalComponents: the ROI has ${rows.length} vertices; need at least 2.`);
  nComp = Math.min(nComp, D);
  const mean = new Float64Array(D);
  for (const i of rows) for (let j = 0; j < D; j++) mean[j]! += weights.data[i * D + j]!;
  for (let j = 0; j < D; j++) mean[j]! /= rows.length;
  const cov = new Float64Array(D * D);
  const x = new Float64Array(D);
  for (const i of rows) {
    for (let j = 0; j < D; j++) x[j] = weights.data[i * D + j]! - mean[j]!;
    for (let a = 0; a < D; a++) {
      const xa = x[a]!;
      if (xa === 0) continue;
      for (let b = a; b < D; b++) cov[a * D + b]! += xa * x[b]!;
    }
  }
  for (let a = 0; a < D; a++) for (let b = a; b < D; b++) cov[b * D + a] = cov[a * D + b]! /= rows.length - 1;
  const { values, vectors } = symmetricEigen(cov, D);
  const components = new Float32Array(nComp * D);
  const variances = new Float64Array(nComp);
  for (let c = 0; c < nComp; c++) {
    const src = D - 1 - c;
    let big = 0;
    for (let j = 0; j < D; j++) if (Math.abs(vectors[src * D + j]!) > Math.abs(big)) big = vectors[src * D + j]!;
    const sign = big < 0 ? -1 : 1;
    for (let j = 0; j < D; j++) components[c * D + j] = sign * vectors[src * D + j]!;
    variances[c] = Math.max(0, values[src]!);
  }
  return { components, mean, variances, count: rows.length, D };
}

/**
 * An image's layer-mixed local token map for a ROI, from the model's local bottlenecks:
 * sum_l p_l * (B_l^T x_l), with local tokens `[1, C_l, g, g]` per layer, bottlenecks `[C_l, D]`,
 * layer weights `[L]` (e.g. the mean of the ROI's layer-selector weights) -> `[D, g, g]`.
 */
export function mixedTokenMap(local: readonly tf.Tensor4D[], bottlenecks: readonly tf.Tensor2D[], layerWeights: ArrayLike<number>): { data: Float32Array; shape: [number, number, number] } {
  if (local.length !== bottlenecks.length || local.length !== layerWeights.length) {
    throw new Error(`mixedTokenMap: ${local.length} token layers, ${bottlenecks.length} bottlenecks and ${layerWeights.length} layer weights; give one of each per layer.`);
  }
  const t = tf.tidy(() => {
    let acc: tf.Tensor2D | null = null;
    for (let l = 0; l < local.length; l++) {
      const x = local[l]!;
      const [, c, h, w] = x.shape;
      if (bottlenecks[l]!.shape[0] !== c) throw new Error(`mixedTokenMap: layer ${l} has ${c} channels but its bottleneck expects ${bottlenecks[l]!.shape[0]}.`);
      const bt = bottlenecks[l]!.transpose(); // [D, C]: transpose once, then a plain product
      const y = tf.matMul(bt, x.slice([0, 0, 0, 0], [1, c, h, w]).reshape([c, h * w])).mul(layerWeights[l]!) as tf.Tensor2D;
      acc = acc ? (acc.add(y) as tf.Tensor2D) : y;
    }
    return acc!;
  });
  const D = t.shape[0];
  const [, , h, w] = local[0]!.shape;
  const data = t.dataSync() as Float32Array;
  t.dispose();
  return { data: Float32Array.from(data), shape: [D, h, w] };
}

export interface TopChannelImageOptions {
  /** Output size: a side (square) or [width, height] (default: the token grid). Bilinear, align_corners false. */
  size?: number | [number, number];
  /** Per-component scaling to [0, 255]: 'minmax' (default) or 'percentile' (clip at `percentile` and 100 - `percentile`). */
  scaling?: 'minmax' | 'percentile';
  /** Percentile for 'percentile' scaling (default 2). */
  percentile?: number;
}

/**
 * Top-channel image: tokens `[D, h, w]` projected on the first 3 principal components of a ROI's
 * weights (RoiComponents, or the ROI's weight rows `[n, D]`) -> RGB (PC1 red, PC2 green, PC3 blue).
 */
export function topChannelImage(tokenMap: { data: ArrayLike<number>; shape: [number, number, number] }, roi: RoiComponents | Matrix, opts: TopChannelImageOptions = {}): RgbImage {
  const [D, h, w] = tokenMap.shape;
  if (tokenMap.data.length !== D * h * w) throw new Error(`topChannelImage: a [${D}, ${h}, ${w}] token map needs ${D * h * w} values, found ${tokenMap.data.length}.`);
  const pcs = 'components' in roi ? roi : roiPrincipalComponents(roi, undefined, 3);
  if (pcs.D !== D) throw new Error(`topChannelImage: the tokens have ${D} channels and the ROI weights ${pcs.D}; use the bottlenecked (D-channel) token map.`);
  const nc = pcs.components.length / D;
  const hw = h * w;
  // 1. project each position on the components
  const proj = new Float64Array(3 * hw);
  for (let c = 0; c < Math.min(3, nc); c++) {
    for (let d = 0; d < D; d++) {
      const v = pcs.components[c * D + d]!;
      if (v === 0) continue;
      for (let p = 0; p < hw; p++) proj[c * hw + p]! += v * tokenMap.data[d * hw + p]!;
    }
  }
  // 2. scale each component to [0, 1]
  const pct = opts.scaling === 'percentile' ? (opts.percentile ?? 2) : 0;
  for (let c = 0; c < 3; c++) {
    const ch = proj.subarray(c * hw, (c + 1) * hw);
    const sorted = Float64Array.from(ch).sort();
    const lo = quantile(sorted, pct / 100);
    const hi = quantile(sorted, 1 - pct / 100);
    for (let p = 0; p < hw; p++) ch[p] = hi > lo ? Math.min(1, Math.max(0, (ch[p]! - lo) / (hi - lo))) : 0.5;
  }
  // 3. upsample bilinearly to the output size
  const [W, H] = opts.size === undefined ? [w, h] : typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    const sy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / H - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < W; x++) {
      const sx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / W - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(w - 1, x0 + 1);
      const fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const o = c * hw;
        const v =
          (1 - fy) * ((1 - fx) * proj[o + y0 * w + x0]! + fx * proj[o + y0 * w + x1]!) + fy * ((1 - fx) * proj[o + y1 * w + x0]! + fx * proj[o + y1 * w + x1]!);
        data[(y * W + x) * 3 + c] = Math.round(v * 255);
      }
    }
  }
  return { width: W, height: H, data };
}
