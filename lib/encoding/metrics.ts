/**
 * Per-vertex scores of an encoding model: R², Pearson r, and the Algonauts 2023 noise-normalised
 * score, and their summaries over vertices and ROIs. Inputs are row-major [B, N] arrays (images x
 * vertices). Pure functions, float64 sums.
 *
 * Undefined scores are NaN, never a made-up number: R² of a vertex whose measured response is
 * constant over the images (SS_tot = 0), Pearson r of a constant column, the score where the noise
 * ceiling is 0. Every mean over vertices here (`meanFinite`, `summarize`, `summariseByRoi`) leaves
 * NaN out.
 */

function checkPair(pred: ArrayLike<number>, truth: ArrayLike<number>, n: number, what: string): number {
  if (pred.length !== truth.length) {
    throw new Error(`${what}: predictions have ${pred.length} values and the measurements ${truth.length}; both must be [B, N] with the same shape.`);
  }
  if (n <= 0 || pred.length % n !== 0) {
    throw new Error(`${what}: ${pred.length} values are not a whole number of rows of ${n} vertices; pass N, the number of vertices.`);
  }
  return pred.length / n;
}

/** R² per vertex (column): 1 - SS_res / SS_tot over the B images; pred, truth [B, N] -> [N] (NaN where the truth is constant: R² is undefined there). */
export function r2PerVertex(pred: ArrayLike<number>, truth: ArrayLike<number>, n: number): Float64Array {
  const b = checkPair(pred, truth, n, 'r2PerVertex');
  const mean = new Float64Array(n);
  for (let i = 0; i < b; i++) for (let j = 0; j < n; j++) mean[j]! += truth[i * n + j]!;
  for (let j = 0; j < n; j++) mean[j]! /= b;
  const res = new Float64Array(n);
  const tot = new Float64Array(n);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < n; j++) {
      const t = truth[i * n + j]!;
      const e = t - pred[i * n + j]!;
      const d = t - mean[j]!;
      res[j]! += e * e;
      tot[j]! += d * d;
    }
  }
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = tot[j]! > 0 ? 1 - res[j]! / tot[j]! : NaN;
  return out;
}

/** Pearson r per vertex over the B images; pred, truth [B, N] -> [N] (NaN where either is constant). */
export function pearsonPerVertex(pred: ArrayLike<number>, truth: ArrayLike<number>, n: number): Float64Array {
  const b = checkPair(pred, truth, n, 'pearsonPerVertex');
  const mp = new Float64Array(n);
  const mt = new Float64Array(n);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < n; j++) {
      mp[j]! += pred[i * n + j]!;
      mt[j]! += truth[i * n + j]!;
    }
  }
  for (let j = 0; j < n; j++) {
    mp[j]! /= b;
    mt[j]! /= b;
  }
  const sxy = new Float64Array(n);
  const sxx = new Float64Array(n);
  const syy = new Float64Array(n);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < n; j++) {
      const x = pred[i * n + j]! - mp[j]!;
      const y = truth[i * n + j]! - mt[j]!;
      sxy[j]! += x * y;
      sxx[j]! += x * x;
      syy[j]! += y * y;
    }
  }
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = sxx[j]! > 0 && syy[j]! > 0 ? sxy[j]! / Math.sqrt(sxx[j]! * syy[j]!) : NaN;
  return out;
}

/**
 * Algonauts noise ceiling per vertex, in [0, 1]: ncsnr² / (ncsnr² + (A/3 + B/2 + C/1) / (A + B + C)),
 * where A, B and C count the images shown 3, 2 and 1 times.
 */
export function algonautsNoiseCeiling(ncsnr: ArrayLike<number>, counts: { three: number; two: number; one: number }): Float64Array {
  const { three: a, two: b, one: c } = counts;
  if (a + b + c <= 0) throw new Error('algonautsNoiseCeiling: the repeat counts (three, two, one) add up to 0; give how many images were shown 3, 2 and 1 times.');
  const k = (a / 3 + b / 2 + c) / (a + b + c);
  const out = new Float64Array(ncsnr.length);
  for (let j = 0; j < ncsnr.length; j++) {
    const s2 = ncsnr[j]! * ncsnr[j]!;
    out[j] = s2 / (s2 + k);
  }
  return out;
}

/**
 * Algonauts 2023 noise-normalised score per vertex (percent): max(r, 0)² / NC × 100, capped at 100
 * (NaN where NC is 0). r [N] is Pearson r, nc [N] the noise ceiling in [0, 1].
 */
export function algonautsScore(r: ArrayLike<number>, nc: ArrayLike<number>): Float64Array {
  if (r.length !== nc.length) throw new Error(`algonautsScore: ${r.length} correlations and ${nc.length} noise ceilings; give one of each per vertex.`);
  const out = new Float64Array(r.length);
  for (let j = 0; j < r.length; j++) {
    const rr = Number.isNaN(r[j]!) ? 0 : Math.max(0, r[j]!);
    out[j] = nc[j]! > 0 ? Math.min(100, ((rr * rr) / nc[j]!) * 100) : NaN;
  }
  return out;
}

/** Mean of the finite values of a per-vertex score `[N]` (NaN entries are left out); NaN when none is finite. */
export function meanFinite(values: ArrayLike<number>): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) (s += values[i]!), c++;
  return c ? s / c : NaN;
}

/** Mean and median of the finite values of a per-vertex score, optionally inside a vertex mask. */
export function summarize(values: ArrayLike<number>, mask?: ArrayLike<number | boolean>): { mean: number; median: number; count: number } {
  const v: number[] = [];
  for (let j = 0; j < values.length; j++) {
    if (mask && !mask[j]) continue;
    const x = values[j]!;
    if (Number.isFinite(x)) v.push(x);
  }
  if (!v.length) return { mean: NaN, median: NaN, count: 0 };
  v.sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { mean: v.reduce((a, b) => a + b, 0) / v.length, median, count: v.length };
}

/** Quantile q in [0, 1] of ascending values `sorted`, linearly interpolated (NaN when empty). */
export function quantile(sorted: Float64Array, q: number): number {
  if (!sorted.length) return NaN;
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i]! * (1 - f) + sorted[i + 1]! * f : sorted[i]!;
}

/** One ROI's summary of a per-vertex value. */
export interface RoiSummary {
  roi: string;
  /** Vertices in the ROI. */
  vertices: number;
  /** Of those, the vertices with a finite value: the ones summarised. */
  n: number;
  mean: number;
  median: number;
  std: number;
  q25: number;
  q75: number;
}

/** Options of {@link summariseByRoi}. */
export interface RoiSummaryOptions {
  /** For labels: the ROI a label counts toward (e.g. V1v and V1d toward V1); '' or null leaves the vertex out. Default: the label itself. */
  group?: (label: string) => string | null;
}

/** The ROIs of `rois` as (name, mask [N]) pairs, in first-seen (or map) order. */
function roiMasks(rois: ArrayLike<string | null | undefined> | Record<string, ArrayLike<number | boolean>>, N: number, group?: (label: string) => string | null): [string, ArrayLike<number | boolean>][] {
  if (typeof (rois as ArrayLike<unknown>).length !== 'number') {
    return Object.entries(rois as Record<string, ArrayLike<number | boolean>>).map(([name, m]) => {
      if (m.length !== N) throw new Error(`summariseByRoi: the mask of ROI '${name}' has ${m.length} entries for ${N} values.`);
      return [name, m];
    });
  }
  const labels = rois as ArrayLike<string | null | undefined>;
  if (labels.length !== N) throw new Error(`summariseByRoi: ${labels.length} ROI labels for ${N} values; give one label per vertex.`);
  const byName = new Map<string, Uint8Array>();
  for (let i = 0; i < N; i++) {
    const r = labels[i];
    const g = r ? (group ? group(r) : r) : null;
    if (!g) continue;
    (byName.get(g) ?? byName.set(g, new Uint8Array(N)).get(g)!)[i] = 1;
  }
  return [...byName.entries()];
}

/**
 * Summaries of a per-vertex value `[N]` by ROI: `rois` is a label per vertex (`''` or null for
 * none; `group` merges labels) or a map ROI name -> mask `[N]`. ROIs appear in first-seen (or map)
 * order; NaN values are left out of every statistic.
 */
export function summariseByRoi(values: ArrayLike<number>, rois: ArrayLike<string | null | undefined> | Record<string, ArrayLike<number | boolean>>, opts: RoiSummaryOptions = {}): RoiSummary[] {
  const N = values.length;
  return roiMasks(rois, N, opts.group).map(([roi, mask]) => {
    const v: number[] = [];
    let vertices = 0;
    for (let i = 0; i < N; i++) {
      if (!mask[i]) continue;
      vertices++;
      if (Number.isFinite(values[i]!)) v.push(values[i]!);
    }
    const { mean, median, count } = summarize(v);
    const sorted = Float64Array.from(v).sort();
    const std = count > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (count - 1)) : NaN;
    return { roi, vertices, n: count, mean, median, std, q25: quantile(sorted, 0.25), q75: quantile(sorted, 0.75) };
  });
}

/** Normalised entropy of each vertex's layer weights: layer [N, L] (rows summing to 1) -> [N] in [0, 1] (0: one layer, 1: uniform). */
export function layerEntropy(layer: ArrayLike<number>, L: number): Float64Array {
  if (L < 2 || layer.length % L !== 0) throw new Error(`layerEntropy: ${layer.length} weights are not rows of ${L} layers (L >= 2); pass the layer selector [N, L] and L.`);
  const N = layer.length / L;
  const out = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let h = 0;
    for (let l = 0; l < L; l++) {
      const p = layer[n * L + l]!;
      if (p > 0) h -= p * Math.log(p);
    }
    out[n] = h / Math.log(L);
  }
  return out;
}

/** One row of {@link encoderVsRidge}: an ROI or a group of ROIs. */
export interface EncoderVsRidgeRow {
  roi: string;
  /** Vertices. */
  n: number;
  /** Mean validation R² of the encoder and of the ridge baseline (NaN left out), and encoder / ridge. */
  encoderR2: number;
  ridgeR2: number;
  ratio: number;
  /** Median normalised entropy of the layer selector (see {@link layerEntropy}). */
  medianEntropy: number;
}

/**
 * The encoder against the ridge baseline per ROI and per group of ROIs (e.g. V1–V3, category ROIs):
 * mean R² of each, their ratio, and the median normalised layer entropy. Inputs [N] (lh then rh), the
 * layer selector [N, L] and masks [N] by ROI; ROIs without vertices are left out.
 */
export function encoderVsRidge(o: {
  r2: ArrayLike<number>; ridgeR2: ArrayLike<number>; layer: ArrayLike<number>; L: number;
  roiMasks: Record<string, ArrayLike<number | boolean>>; rois: readonly string[]; groups: Record<string, readonly string[]>;
}): { rows: EncoderVsRidgeRow[]; groups: EncoderVsRidgeRow[] } {
  const N = o.r2.length;
  if (o.ridgeR2.length !== N || o.layer.length !== N * o.L) throw new Error(`encoderVsRidge: r2 has ${N} values, ridgeR2 ${o.ridgeR2.length} and layer ${o.layer.length} (expected ${N} and ${N} x ${o.L}).`);
  const ent = layerEntropy(o.layer, o.L);
  const row = (roi: string, members: readonly string[]): EncoderVsRidgeRow | null => {
    const idx: number[] = [];
    const seen = new Uint8Array(N);
    for (const r of members) {
      const m = o.roiMasks[r];
      if (!m) continue;
      if (m.length !== N) throw new Error(`encoderVsRidge: the mask of ${r} has ${m.length} entries for ${N} vertices.`);
      for (let i = 0; i < N; i++) if (m[i] && !seen[i]) { seen[i] = 1; idx.push(i); }
    }
    if (!idx.length) return null;
    const mean = (a: ArrayLike<number>) => meanFinite(idx.map((i) => a[i]!));
    const e = Float64Array.from(idx.map((i) => ent[i]!)).sort();
    const encoderR2 = mean(o.r2);
    const ridgeR2 = mean(o.ridgeR2);
    return { roi, n: idx.length, encoderR2, ridgeR2, ratio: encoderR2 / ridgeR2, medianEntropy: quantile(e, 0.5) };
  };
  const rows = o.rois.map((r) => row(r, [r])).filter((r): r is EncoderVsRidgeRow => r !== null);
  const groups = Object.entries(o.groups).map(([name, members]) => row(name, members)).filter((r): r is EncoderVsRidgeRow => r !== null);
  return { rows, groups };
}
