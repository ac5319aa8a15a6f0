/**
 * Synthetic fMRI responses. Pure: features in, arrays out.
 *
 * Every vertex is a sparse linear read-out of an image's feature vector
 * [contrast GRID² | presence 6·PGRID² | labels 6 | global 1]:
 * - early (V1-V3): a Gaussian pRF (centre, size) over local contrast energy;
 * - mid, local (hV4, OFA, EBA, OPA, OWFA, half of the unlabelled vertices): the pRF over
 *   contrast energy plus the pRF over the presence maps of its preferred categories; in the
 *   category patches contrast weighs half as much as in unlabelled vertices (MID_CONTRAST_WEIGHT),
 *   so that they are as selective as real fLoc patches (otherwise EBA answers words, which carry
 *   the most contrast, as much as bodies);
 * - late, global (FFA, FBA, VWFA, PPA, RSC, food, the other unlabelled half): category
 *   presence weighted by the tuning vector plus a global image term.
 * The noiseless signal is z-scored over all images; each trial adds Gaussian noise of sd
 * 1/ncsnr, and the response is the mean of the image's trials (3, 2 or 1, as in NSD).
 */
import { CATEGORIES, type HemisphereTruth } from './cortex.js';
import { GRID, PGRID, type StimulusFeatures } from './stimuli.js';
import { Rng } from '../core/rng.js';

/** Length of the feature vector of one image. */
export const FEATURE_DIM = GRID * GRID + 6 * PGRID * PGRID + 6 + 1;
const OFF_PRESENCE = GRID * GRID;
const OFF_LABELS = OFF_PRESENCE + 6 * PGRID * PGRID;
const OFF_GLOBAL = OFF_LABELS + 6;

/** Packs an image's features into the feature vector. [FEATURE_DIM] */
export function featureVector(f: StimulusFeatures, out = new Float32Array(FEATURE_DIM)): Float32Array {
  out.set(f.contrast, 0);
  out.set(f.presence, OFF_PRESENCE);
  out.set(f.labels, OFF_LABELS);
  out[OFF_GLOBAL] = f.global;
  return out;
}

/** Sparse read-out weights of every vertex (CSR: vertex k uses idx/w[ptr[k]..ptr[k+1]]). */
export interface ReadoutWeights {
  ptr: Int32Array;
  idx: Int32Array;
  w: Float32Array;
}

/** Gaussian pRF weights over a g x g grid covering [-1, 1]² (row 0 = top), truncated at 3 sigma, summing to 1. */
function prfWeights(x: number, y: number, sigma: number, g: number, offset: number, scale: number, idx: number[], w: number[]): void {
  const start = w.length;
  let sum = 0;
  for (let r = 0; r < g; r++) {
    const cy = 1 - ((r + 0.5) * 2) / g;
    for (let c = 0; c < g; c++) {
      const cx = ((c + 0.5) * 2) / g - 1;
      const d2 = ((cx - x) ** 2 + (cy - y) ** 2) / (sigma * sigma);
      if (d2 > 9) continue;
      const v = Math.exp(-0.5 * d2);
      idx.push(offset + r * g + c);
      w.push(v);
      sum += v;
    }
  }
  if (sum === 0) { // pRF off the grid: use the nearest cell
    const c = Math.min(g - 1, Math.max(0, Math.floor(((x + 1) * g) / 2)));
    const r = Math.min(g - 1, Math.max(0, Math.floor(((1 - y) * g) / 2)));
    idx.push(offset + r * g + c);
    w.push(scale);
    return;
  }
  for (let k = start; k < w.length; k++) w[k] = (w[k]! / sum) * scale;
}

/** Weight of the pRF's contrast energy in a mid-level vertex: hV4, a category patch (OFA, EBA, OPA, OWFA), an unlabelled vertex. */
export const MID_CONTRAST_WEIGHT = { hV4: 0.6, patch: 0.15, other: 0.3 } as const;

/** Builds each vertex's read-out weights from its ground truth (depth, scale, pRF, tuning). */
export function readoutWeights(h: HemisphereTruth): ReadoutWeights {
  const n = h.roi.length;
  const ptr = new Int32Array(n + 1);
  const idx: number[] = [], w: number[] = [];
  for (let k = 0; k < n; k++) {
    const tune = h.tuning.subarray(k * 6, k * 6 + 6);
    const early = h.depth[k] === 'early';
    if (h.scale[k] === 'local') {
      const x = h.prfX[k]!, y = h.prfY[k]!, s = h.prfSigma[k]!;
      const roi = h.roi[k]!;
      const contrast = early ? 1 : roi === 'hV4' ? MID_CONTRAST_WEIGHT.hV4 : roi === 'other' ? MID_CONTRAST_WEIGHT.other : MID_CONTRAST_WEIGHT.patch;
      prfWeights(x, y, s, GRID, 0, contrast, idx, w);
      if (!early) {
        // the two most preferred categories, on the coarse presence grid
        const order = [0, 1, 2, 3, 4, 5].sort((a, b) => tune[b]! - tune[a]!).slice(0, 2);
        const tot = tune[order[0]!]! + tune[order[1]!]! || 1;
        const share = h.roi[k] === 'hV4' ? 0.4 : 0.7;
        for (const c of order) prfWeights(x, y, Math.max(s, 2 / PGRID), PGRID, OFF_PRESENCE + c * PGRID * PGRID, (share * tune[c]!) / tot, idx, w);
      }
    } else {
      for (let c = 0; c < CATEGORIES.length; c++) {
        idx.push(OFF_LABELS + c);
        w.push(0.8 * tune[c]!);
      }
      idx.push(OFF_GLOBAL);
      w.push(0.2);
    }
    ptr[k + 1] = w.length;
  }
  return { ptr, idx: Int32Array.from(idx), w: Float32Array.from(w) };
}

/** Noiseless signal of every vertex for every image, z-scored per vertex over images. F: [nImages, FEATURE_DIM] -> [nImages, N]. */
export function noiselessSignal(features: Float32Array, nImages: number, rw: ReadoutWeights): Float32Array {
  const n = rw.ptr.length - 1;
  const out = new Float32Array(nImages * n);
  const { ptr, idx, w } = rw;
  for (let i = 0; i < nImages; i++) {
    const f = features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM);
    const row = i * n;
    for (let k = 0; k < n; k++) {
      let s = 0;
      for (let j = ptr[k]!, e = ptr[k + 1]!; j < e; j++) s += w[j]! * f[idx[j]!]!;
      out[row + k] = s;
    }
  }
  const mean = new Float64Array(n), sq = new Float64Array(n);
  for (let i = 0; i < nImages; i++) for (let k = 0; k < n; k++) { const v = out[i * n + k]!; mean[k]! += v; sq[k]! += v * v; }
  for (let k = 0; k < n; k++) {
    mean[k]! /= nImages;
    sq[k] = Math.sqrt(Math.max(1e-12, sq[k]! / nImages - mean[k]! ** 2));
  }
  for (let i = 0; i < nImages; i++) for (let k = 0; k < n; k++) out[i * n + k] = (out[i * n + k]! - mean[k]!) / sq[k]!;
  return out;
}

/** How many times each image is shown: 3, 2 or 1 (default shares 0.7, 0.2, 0.1, as a mix like NSD's). [nImages] */
export function repeatCounts(nImages: number, rng: Rng, shares: [number, number, number] = [0.7, 0.2, 0.1]): Uint8Array {
  const out = new Uint8Array(nImages);
  for (let i = 0; i < nImages; i++) {
    const u = rng.next();
    out[i] = u < shares[0] ? 3 : u < shares[0] + shares[1] ? 2 : 1;
  }
  return out;
}

/** The Algonauts noise ceiling (fraction, 0..1) for ncsnr given the repeat counts. */
export function noiseCeiling(ncsnr: number, repeats: Uint8Array): number {
  let a = 0, b = 0, c = 0;
  for (const r of repeats) r === 3 ? a++ : r === 2 ? b++ : c++;
  const k = (a / 3 + b / 2 + c) / (a + b + c);
  return (ncsnr * ncsnr) / (ncsnr * ncsnr + k);
}

/** Single-trial noise sd of a vertex: 1/ncsnr, with ncsnr floored at 1e-3. */
export function trialNoiseSd(ncsnr: number): number {
  return 1 / Math.max(1e-3, ncsnr);
}

/** The factor that gives a single trial (unit-variance signal plus noise of sd `sd`) unit variance. */
export function unitVarianceScale(sd: number): number {
  return 1 / Math.sqrt(1 + sd * sd);
}

/** Trial-averaged responses: signal [nImages, N] plus noise of sd 1/ncsnr per trial, scaled so that a single trial has unit variance (z-scored-like). Also returns trials 1 and 2 of `keep` vertices for split-half checks. */
export function addTrialNoise(
  signal: Float32Array, nImages: number, ncsnr: Float32Array, repeats: Uint8Array, rng: Rng, keep: Int32Array = new Int32Array(0),
): { mean: Float32Array; trial1: Float32Array; trial2: Float32Array } {
  const n = ncsnr.length;
  const mean = new Float32Array(nImages * n);
  const trial1 = new Float32Array(nImages * keep.length), trial2 = new Float32Array(nImages * keep.length).fill(NaN);
  const keepPos = new Int32Array(n).fill(-1);
  keep.forEach((v, j) => (keepPos[v] = j));
  const sd = Float64Array.from(ncsnr, trialNoiseSd);
  const unit = Float64Array.from(sd, unitVarianceScale);
  for (let i = 0; i < nImages; i++) {
    const r = repeats[i]!;
    for (let k = 0; k < n; k++) {
      const s = signal[i * n + k]!;
      let acc = 0;
      const j = keepPos[k]!;
      for (let t = 0; t < r; t++) {
        const e = sd[k]! * rng.normal();
        acc += e;
        if (j >= 0 && t === 0) trial1[i * keep.length + j] = (s + e) * unit[k]!;
        if (j >= 0 && t === 1) trial2[i * keep.length + j] = (s + e) * unit[k]!;
      }
      mean[i * n + k] = (s + acc / r) * unit[k]!;
    }
  }
  return { mean, trial1, trial2 };
}
