/**
 * A category localiser for a synthetic subject: the subject's own simulated responses to categorised
 * 64 x 64 images (faces, bodies, places, words, food), as NSD's fLoc experiment measured real subjects.
 * BrainDiVE's encoder scores the diffusion model's 64 x 64 images; fitting it on these in-distribution
 * images as well as the subject's 256 x 256 scenes is what makes its gradient point at category content
 * rather than at colour.
 */
import { makeCortex } from './cortex.js';
import { renderStimulus, stimulusFeatures } from './stimuli.js';
import { featureVector, FEATURE_DIM, noiselessSignal, readoutWeights, addTrialNoise, repeatCounts } from './responses.js';
import { SIZES, type SubjectSize } from './subject.js';
import { Rng, subSeed } from '../core/rng.js';
import { categoryStimulus, mapRows } from './categorised.js';
import { EVAL_CATEGORIES } from '../braindive/categories.js';
import type { LocaliserSet } from '../braindive/subject-encoder.js';
import { guidanceViews, reconstructThroughLatent, type LatentDiffusionModel } from '../diffusion/pca-latent.js';
import { pixelsToImages, type SyntheticWorld } from './world-v3.js';


/** Gaussian blur of an RGB image (uint8 HWC, side x side) with standard deviation `sigma` pixels, edges clamped. */
export function blurRgb(rgb: Uint8Array, side: number, sigma: number): Uint8Array {
  const r = Math.ceil(3 * sigma);
  const k = Float64Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const ks = k.reduce((a, b) => a + b, 0);
  const pass = (src: Float64Array, dx: number, dy: number): Float64Array => {
    const out = new Float64Array(src.length);
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++)
        for (let c = 0; c < 3; c++) {
          let acc = 0;
          for (let i = -r; i <= r; i++) {
            const xx = Math.min(side - 1, Math.max(0, x + i * dx)), yy = Math.min(side - 1, Math.max(0, y + i * dy));
            acc += k[i + r]! * src[(yy * side + xx) * 3 + c]!;
          }
          out[(y * side + x) * 3 + c] = acc / ks;
        }
    return out;
  };
  return Uint8Array.from(pass(pass(Float64Array.from(rgb), 1, 0), 0, 1), (v) => Math.round(v));
}

/**
 * Simulates `n` localiser trials (categories in turn) for the synthetic subject made with (size, subjectSeed); trial
 * noise as the subject's (1-3 repeats). A share `blurred` of the trials (default 0.5) shows the image low-pass
 * filtered (Gaussian, sigma 1-3 px): the synthetic brain still sees the category, and the encoder learns to
 * recognise it in the blurry x0 estimates that guidance scores.
 */
export function syntheticLocaliser(o: { size: SubjectSize; subjectSeed: number; n: number; seed?: number; side?: number; blurred?: number }): LocaliserSet {
  const cfg = SIZES[o.size];
  if (!cfg) throw new RangeError(`syntheticLocaliser: size must be tiny, workshop or full, got '${o.size}'`);
  const side = o.side ?? 64;
  const seed = o.seed ?? 0;
  const cortex = makeCortex({ order: cfg.order, seed: o.subjectSeed });
  const rng = new Rng(subSeed(seed, 'localiser'));
  const pixels = new Uint8Array(o.n * side * side * 3);
  const labels = new Int32Array(o.n);
  const features = new Float32Array(o.n * FEATURE_DIM);
  for (let i = 0; i < o.n; i++) {
    const c = i % EVAL_CATEGORIES.length;
    const r = renderStimulus(categoryStimulus(rng, EVAL_CATEGORIES[c]!, side, i));
    if (rng.next() < (o.blurred ?? 0.5)) r.rgb = blurRgb(r.rgb, side, rng.uniform(1, 3));
    pixels.set(r.rgb, i * side * side * 3);
    labels[i] = c;
    featureVector(stimulusFeatures(r), features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM));
  }
  const nl = cortex.lh.roi.length, nr = cortex.rh.roi.length, v = nl + nr;
  const responses = new Float32Array(o.n * v);
  const repeats = repeatCounts(o.n, new Rng(subSeed(seed, 'localiser-repeats')));
  for (const [hemi, off, N] of [['lh', 0, nl], ['rh', nl, nr]] as const) {
    const h = cortex[hemi];
    const noisy = addTrialNoise(noiselessSignal(features, o.n, readoutWeights(h)), o.n, h.ncsnr, repeats, new Rng(subSeed(seed, `localiser-noise-${hemi}`)));
    for (let i = 0; i < o.n; i++) responses.set(noisy.mean.subarray(i * N, (i + 1) * N), i * v + off);
  }
  return { n: o.n, side, pixels, labels, responses, vertexCount: { lh: nl, rh: nr } };
}

/**
 * World v3's localiser: the same categorised images as {@link syntheticLocaliser} (same seed, same pixels), but the
 * responses are the world's noiseless `trueResponse` to those pixels plus trial noise (sd 1/ncsnr per trial, 1-3 repeats
 * averaged, as the v2 localiser). `world` is the subject's (loadSyntheticWorld) and covers the same vertices.
 */
export async function syntheticLocaliserV3(o: { world: SyntheticWorld; size: SubjectSize; subjectSeed: number; n: number; seed?: number; side?: number; blurred?: number; onProgress?: (done: number) => void }): Promise<LocaliserSet> {
  const base = syntheticLocaliser(o);
  const cortex = makeCortex({ order: SIZES[o.size].order, seed: o.subjectSeed });
  const nl = cortex.lh.roi.length, nr = cortex.rh.roi.length, v = nl + nr;
  if (o.world.vertices.socShare.length !== v) throw new RangeError(`syntheticLocaliserV3: the world has ${o.world.vertices.socShare.length} vertices, the ${o.size} subject of seed ${o.subjectSeed} ${v}; pass that subject's world`);
  const signal = new Float32Array(o.n * v);
  for (let s = 0; s < o.n; s += 32) {
    const e = Math.min(o.n, s + 32);
    const x = pixelsToImages(base.pixels, s, e, base.side);
    signal.set(await o.world.trueResponse(x), s * v);
    x.dispose();
    o.onProgress?.(e);
  }
  const seed = o.seed ?? 0;
  const repeats = repeatCounts(o.n, new Rng(subSeed(seed, 'localiser-repeats')));
  const responses = new Float32Array(o.n * v);
  for (const [hemi, off, N] of [['lh', 0, nl], ['rh', nl, nr]] as const) {
    const h = cortex[hemi];
    const own = new Float32Array(o.n * N);
    for (let i = 0; i < o.n; i++) own.set(signal.subarray(i * v + off, i * v + off + N), i * N);
    const noisy = addTrialNoise(own, o.n, h.ncsnr, repeats, new Rng(subSeed(seed, `localiser-v3-noise-${hemi}`)));
    for (let i = 0; i < o.n; i++) responses.set(noisy.mean.subarray(i * N, (i + 1) * N), i * v + off);
  }
  return { ...base, responses };
}

/**
 * Shows a share of the localiser's trials as the latent diffusion model draws them (pixels only: the responses stay the
 * subject's responses to the original image): a share `recon` through the PCA latent and back, and a share `views` as
 * BrainDiVE's guidance scores them mid-sampling (guidanceViews: the x0 estimate from a random timestep). Returns a new set
 * and how many trials of each kind it holds.
 */
export function localiserThroughGenerator(set: LocaliserSet, model: LatentDiffusionModel, o: { recon: number; views: number; seed?: number }): { set: LocaliserSet; recon: number; views: number } {
  if (!(o.recon >= 0 && o.views >= 0 && o.recon + o.views <= 1)) throw new RangeError(`localiserThroughGenerator: shares must be >= 0 and sum to at most 1, got recon ${o.recon}, views ${o.views}`);
  const per = set.side * set.side * 3;
  const rng = new Rng(subSeed(o.seed ?? 0, 'localiser-generator'));
  const kind = Uint8Array.from({ length: set.n }, () => { const u = rng.next(); return u < o.recon ? 1 : u < o.recon + o.views ? 2 : 0; });
  const pick = (k: number) => Array.from(kind.keys()).filter((i) => kind[i] === k);
  const pixels = set.pixels.slice();
  const rRows = pick(1), vRows = pick(2);
  mapRows(pixels, per, rRows, (p, m) => reconstructThroughLatent(model.pca, p, m, set.side));
  mapRows(pixels, per, vRows, (p, m) => guidanceViews(model, p, m, set.side, { seed: subSeed(o.seed ?? 0, 'localiser-views') }).pixels);
  return { set: { ...set, pixels }, recon: rRows.length, views: vRows.length };
}
