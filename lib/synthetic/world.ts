/**
 * The synthetic world that both subject writers share (`makeAlgonautsSubject`, `makeNsdSubject`):
 * stimuli drawn, rendered and reduced to what the response model reads, and the noiseless
 * response of every vertex to them. The cortex is `makeCortex`; the noise model is in
 * responses.ts. The writers differ only in where images go (PNG files, an HDF5 brick), which
 * images are drawn, and how noisy trials are laid out on disk.
 *
 * To change how responses are computed (say, from pixels rather than the feature vector), change
 * what `drawWorldStimuli` keeps of each image and how `worldSignal` reads it: both writers follow.
 */
import { Rng, subSeed } from '../core/rng.js';
import type { BuiltinBackboneName } from '../backbones/nsfwjs.js';
import type { HemisphereTruth } from './cortex.js';
import { GRID, renderStimulus, sampleStimulus, stimulusFeatures, type RenderedStimulus, type StimulusSpec } from './stimuli.js';
import { FEATURE_DIM, featureVector, noiselessSignal, readoutWeights } from './responses.js';
import { buildWorld, pixelsToImages, type SyntheticWorld } from './world-v3.js';

/** A set of drawn stimuli as the world sees them: what the response model reads and what the writers and checks keep. */
export interface WorldStimuli {
  count: number;
  /** What each image contains, enough to redraw it. [count] */
  specs: StimulusSpec[];
  /** The response model's input: each image's feature vector. [count, FEATURE_DIM] */
  features: Float32Array;
  /** Local contrast energy of each image (the retinotopy check reads it). [count, GRID²] */
  contrast: Float32Array;
  /** Category labels, 1 where the image contains the category, in CATEGORIES order. [count, 6] */
  labels: Uint8Array;
  /** World v3: the noiseless response of every vertex (lh then rh) to each image, from its pixels. [count, N] */
  signal?: Float32Array;
  /** World v3: vertices of the left hemisphere (the first nLh columns of `signal`). */
  nLh?: number;
}

/** Options of `drawWorldStimuli`. */
export interface DrawStimuliOptions {
  /** The generator the specifications are drawn from, in image order. */
  rng: Rng;
  count: number;
  /** Side of the rendered images in pixels. */
  imageSize: number;
  /** Stores image `index` (a PNG file, a row of a brick); awaited before the next image is drawn. */
  write: (index: number, image: RenderedStimulus) => Promise<void> | void;
  /** Called after every 100th image and after the last one. */
  onProgress?: (done: number, total: number) => void;
  /** World v3: computes every image's noiseless responses from its pixels (in batches of 16). */
  world?: SyntheticWorld;
}

/** Draws `count` stimuli, renders each, hands it to `write` and keeps its features, contrast and labels. */
export async function drawWorldStimuli(opts: DrawStimuliOptions): Promise<WorldStimuli> {
  const { rng, count, imageSize } = opts;
  const features = new Float32Array(count * FEATURE_DIM);
  const contrast = new Float32Array(count * GRID * GRID);
  const labels = new Uint8Array(count * 6);
  const specs: StimulusSpec[] = [];
  const world = opts.world;
  const N = world ? world.vertices.socShare.length : 0;
  const signal = world ? new Float32Array(count * N) : undefined;
  const BATCH = 16;
  const pending = new Uint8Array(BATCH * imageSize * imageSize * 3);
  let first = 0;
  const flush = async (end: number) => {
    if (!world || end === first) return;
    const x = pixelsToImages(pending, 0, end - first, imageSize);
    signal!.set(await world.trueResponse(x), first * N);
    x.dispose();
    first = end;
  };
  for (let i = 0; i < count; i++) {
    const spec = sampleStimulus(rng, i, imageSize);
    const image = renderStimulus(spec);
    await opts.write(i, image);
    if (world) {
      pending.set(image.rgb, (i - first) * imageSize * imageSize * 3);
      if (i + 1 - first === BATCH) await flush(i + 1);
    }
    const f = stimulusFeatures(image);
    featureVector(f, features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM));
    contrast.set(f.contrast, i * GRID * GRID);
    spec.labels.forEach((b, c) => (labels[i * 6 + c] = b ? 1 : 0));
    specs.push(spec);
    if (i % 100 === 99 || i === count - 1) opts.onProgress?.(i + 1, count);
  }
  await flush(count);
  return { count, specs, features, contrast, labels, ...(world ? { signal, nLh: world.vertices.nLh } : {}) };
}

/**
 * Noiseless response of each vertex of a hemisphere to each stimulus [count, N]: world v3's responses to the pixels
 * (standardised on the world's calibration scenes), or v2's read-out of the feature vector z-scored over the stimuli.
 */
export function worldSignal(h: HemisphereTruth, stimuli: WorldStimuli): Float32Array {
  if (!stimuli.signal) return noiselessSignal(stimuli.features, stimuli.count, readoutWeights(h));
  const all = stimuli.signal.length / stimuli.count, nLh = stimuli.nLh!;
  const [from, n] = h.hemi === 'lh' ? [0, nLh] : [nLh, all - nLh];
  if (n !== h.roi.length) throw new RangeError(`worldSignal: the world has ${n} ${h.hemi} vertices, the cortex ${h.roi.length}; build the world from the same cortex`);
  const out = new Float32Array(stimuli.count * n);
  for (let i = 0; i < stimuli.count; i++) out.set(stimuli.signal.subarray(i * all + from, i * all + from + n), i * n);
  return out;
}

/** The synthetic world versions: 2 (responses from the scene description, in the model's own shape) and 3 (from pixels). */
export type WorldVersion = 'v2' | 'v3';

/** Calibration scenes of world v3 per subject size (labelled scenes drawn from the world seed, CALIBRATION_SIDE pixels). */
export const CALIBRATION_IMAGES: Record<'tiny' | 'workshop' | 'full', number> = { tiny: 128, workshop: 256, full: 512 };
export const CALIBRATION_SIDE = 160;

/** The labelled calibration scenes of a world seed: pixels [n, side, side, 3] uint8 and labels [n, 6]. */
export function calibrationScenes(seed: number, n: number, side = CALIBRATION_SIDE): { pixels: Uint8Array; n: number; side: number; labels: Uint8Array } {
  const rng = new Rng(subSeed(seed, 'world-v3-calibration'));
  const pixels = new Uint8Array(n * side * side * 3), labels = new Uint8Array(n * 6);
  for (let i = 0; i < n; i++) {
    const r = renderStimulus(sampleStimulus(rng, i, side));
    pixels.set(r.rgb, i * side * side * 3);
    r.spec.labels.forEach((b, c) => (labels[i * 6 + c] = b ? 1 : 0));
  }
  return { pixels, n, side, labels };
}

/** Builds world v3 for a cortex: its network (the one a fit does not use), calibrated on the seed's scenes. */
export async function makeWorldV3(o: { hemis: HemisphereTruth[]; seed: number; network?: BuiltinBackboneName; calibrationImages: number }): Promise<SyntheticWorld> {
  return buildWorld({ hemis: o.hemis, network: o.network ?? 'inceptionv3', seed: o.seed, calibration: calibrationScenes(o.seed, o.calibrationImages) });
}

/** How many images are shown three, two and once. */
export function repeatTally(repeats: Uint8Array): { three: number; two: number; one: number } {
  let three = 0, two = 0, one = 0;
  for (const r of repeats) r === 3 ? three++ : r === 2 ? two++ : one++;
  return { three, two, one };
}
