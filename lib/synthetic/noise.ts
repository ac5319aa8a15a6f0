/**
 * The trial noise of world v3 and the noise ceiling estimated from repeats, as NSD does it.
 *
 * One trial of image i at vertex v:  y = (s_iv + σ_v · (m_v + ℓ_v g) / sqrt(1 + ℓ_v²)) / sqrt(1 + σ_v²)
 * - s: the noiseless response (world-v3.ts); σ_v = 1 / ncsnr_v, the generating single-trial noise sd;
 * - m: white noise smoothed on the cortical mesh with a Gaussian kernel (NOISE_FWHM_MM full width at half maximum, on
 *   the sphere of radius 100 mm that the subject's surfaces use), scaled back to unit variance;
 * - g ~ N(0, 1): a signal shared by every vertex of both hemispheres in that trial, with a per-vertex loading ℓ_v;
 * - the last factor gives a single trial unit variance (as z-scored betas).
 * The NSD writer adds session drift (a gain and an offset per voxel and session) on top.
 *
 * NSD's ncsnr from repeats: σ_noise² = the mean over images (with two or more trials) of the within-image variance of
 * the trials; σ_signal² = max(0, var(all trials) − σ_noise²); ncsnr = σ_signal / σ_noise (`NcsnrAccumulator`).
 */
import { ico } from './ico.js';
import type { HemisphereTruth } from './cortex.js';
import { Rng } from '../core/rng.js';

/** Smoothing of the trial noise on the mesh (full width at half maximum, mm). */
export const NOISE_FWHM_MM = 6;

/** Sparse smoothing weights (CSR over the hemisphere's challenge vertices): unit-variance output for white input. */
export interface MeshSmoother { ptr: Int32Array; idx: Int32Array; w: Float32Array }

/** Gaussian smoothing weights on the working icosahedron (radius 100 mm) of a hemisphere's challenge vertices. */
export function meshSmoother(h: HemisphereTruth, order: number, fwhmMm = NOISE_FWHM_MM): MeshSmoother {
  const sphere = ico(order, 100).vertices;
  const N = h.fsIndex.length;
  const sigma = fwhmMm / (2 * Math.sqrt(2 * Math.log(2)));
  const reach = 3 * sigma;
  const pos = new Float32Array(N * 3);
  h.fsIndex.forEach((i, k) => pos.set(sphere.subarray(i * 3, i * 3 + 3), k * 3));
  // a 3-D hash grid of cell `reach`
  const key = (v: number) => Math.floor(v / reach);
  const buckets = new Map<string, number[]>();
  for (let k = 0; k < N; k++) {
    const id = `${key(pos[k * 3]!)},${key(pos[k * 3 + 1]!)},${key(pos[k * 3 + 2]!)}`;
    (buckets.get(id) ?? buckets.set(id, []).get(id)!).push(k);
  }
  const ptr = new Int32Array(N + 1), idx: number[] = [], w: number[] = [];
  for (let k = 0; k < N; k++) {
    const [x, y, z] = [pos[k * 3]!, pos[k * 3 + 1]!, pos[k * 3 + 2]!];
    const start = w.length;
    let ss = 0;
    for (let a = -1; a <= 1; a++) for (let b = -1; b <= 1; b++) for (let c = -1; c <= 1; c++) {
      for (const j of buckets.get(`${key(x) + a},${key(y) + b},${key(z) + c}`) ?? []) {
        const d2 = (pos[j * 3]! - x) ** 2 + (pos[j * 3 + 1]! - y) ** 2 + (pos[j * 3 + 2]! - z) ** 2;
        if (d2 > reach * reach) continue;
        const v = Math.exp(-d2 / (2 * sigma * sigma));
        idx.push(j);
        w.push(v);
        ss += v * v;
      }
    }
    for (let q = start; q < w.length; q++) w[q]! /= Math.sqrt(ss);
    ptr[k + 1] = w.length;
  }
  return { ptr, idx: Int32Array.from(idx), w: Float32Array.from(w) };
}

/** Applies a smoother to white noise [N] -> smoothed [N]. */
export function smoothOnMesh(s: MeshSmoother, white: Float64Array, out: Float64Array): void {
  for (let k = 0; k + 1 < s.ptr.length; k++) {
    let a = 0;
    for (let q = s.ptr[k]!; q < s.ptr[k + 1]!; q++) a += s.w[q]! * white[s.idx[q]!]!;
    out[k] = a;
  }
}

/** Streaming NSD ncsnr per vertex: add each image's trials, then `ncsnr()`. */
export class NcsnrAccumulator {
  private within: Float64Array;
  private imagesWithRepeats = 0;
  private sum: Float64Array;
  private sq: Float64Array;
  private trials = 0;
  constructor(readonly n: number) {
    this.within = new Float64Array(n);
    this.sum = new Float64Array(n);
    this.sq = new Float64Array(n);
  }
  /** The r trials [r, n] of one image. */
  add(trials: Float64Array[]): void {
    const r = trials.length;
    for (const t of trials) for (let k = 0; k < this.n; k++) { this.sum[k]! += t[k]!; this.sq[k]! += t[k]! * t[k]!; }
    this.trials += r;
    if (r < 2) return;
    for (let k = 0; k < this.n; k++) {
      let m = 0;
      for (const t of trials) m += t[k]!;
      m /= r;
      let v = 0;
      for (const t of trials) v += (t[k]! - m) ** 2;
      this.within[k]! += v / (r - 1);
    }
    this.imagesWithRepeats++;
  }
  /** ncsnr = σ_signal / σ_noise per vertex (NaN without repeated images). */
  ncsnr(): Float32Array {
    return Float32Array.from({ length: this.n }, (_, k) => {
      if (!this.imagesWithRepeats) return NaN;
      const noise = this.within[k]! / this.imagesWithRepeats;
      const m = this.sum[k]! / this.trials;
      const total = this.sq[k]! / this.trials - m * m;
      const signal = Math.max(0, total - noise);
      return noise > 0 ? Math.sqrt(signal / noise) : Infinity;
    });
  }
}

/** Options of {@link simulateTrials}. */
export interface TrialOptions {
  /** Noiseless responses [nImages, N]. */
  signal: Float32Array;
  nImages: number;
  /** Generating ncsnr per vertex [N] (σ = 1 / ncsnr). */
  ncsnr: Float32Array;
  repeats: Uint8Array;
  smoother: MeshSmoother;
  /** Loading of the shared signal per vertex [N]. */
  sharedLoading: Float32Array;
  /** The shared signal of trial t of image i: shared[offsets[i] + t] (the same for both hemispheres). */
  shared: Float64Array;
  offsets: Int32Array;
  rng: Rng;
  /** Called with each image's trials [r][N] (single-trial values), e.g. to write betas. */
  onTrials?: (image: number, trials: Float64Array[]) => void;
}

/** Trial-averaged responses [nImages, N] of world v3's noise model, and the ncsnr estimated from the repeats. */
export function simulateTrials(o: TrialOptions): { mean: Float32Array; ncsnr: Float32Array } {
  const N = o.ncsnr.length;
  const sd = Float64Array.from(o.ncsnr, (s) => 1 / Math.max(1e-3, s));
  const unit = Float64Array.from(sd, (s) => 1 / Math.sqrt(1 + s * s));
  const load = Float64Array.from(o.sharedLoading, (l) => 1 / Math.sqrt(1 + l * l));
  const mean = new Float32Array(o.nImages * N);
  const acc = new NcsnrAccumulator(N);
  const white = new Float64Array(N), smooth = new Float64Array(N);
  for (let i = 0; i < o.nImages; i++) {
    const r = o.repeats[i]!;
    const trials: Float64Array[] = [];
    for (let t = 0; t < r; t++) {
      for (let k = 0; k < N; k++) white[k] = o.rng.normal();
      smoothOnMesh(o.smoother, white, smooth);
      const g = o.shared[o.offsets[i]! + t]!;
      const y = new Float64Array(N);
      for (let k = 0; k < N; k++) y[k] = (o.signal[i * N + k]! + sd[k]! * (smooth[k]! + o.sharedLoading[k]! * g) * load[k]!) * unit[k]!;
      trials.push(y);
    }
    for (let k = 0; k < N; k++) { let s = 0; for (const y of trials) s += y[k]!; mean[i * N + k] = s / r; }
    acc.add(trials);
    o.onTrials?.(i, trials);
  }
  return { mean, ncsnr: acc.ncsnr() };
}

/** The shared trial signal for images with `repeats` trials each: values and each image's offset into them. */
export function sharedSignal(repeats: Uint8Array, rng: Rng): { shared: Float64Array; offsets: Int32Array } {
  const offsets = new Int32Array(repeats.length);
  let n = 0;
  repeats.forEach((r, i) => { offsets[i] = n; n += r; });
  return { shared: Float64Array.from({ length: n }, () => rng.normal()), offsets };
}
