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
import type { Rng } from '../core/rng.js';
import type { HemisphereTruth } from './cortex.js';
import { GRID, renderStimulus, sampleStimulus, stimulusFeatures, type RenderedStimulus, type StimulusSpec } from './stimuli.js';
import { FEATURE_DIM, featureVector, noiselessSignal, readoutWeights } from './responses.js';

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
}

/** Draws `count` stimuli, renders each, hands it to `write` and keeps its features, contrast and labels. */
export async function drawWorldStimuli(opts: DrawStimuliOptions): Promise<WorldStimuli> {
  const { rng, count, imageSize } = opts;
  const features = new Float32Array(count * FEATURE_DIM);
  const contrast = new Float32Array(count * GRID * GRID);
  const labels = new Uint8Array(count * 6);
  const specs: StimulusSpec[] = [];
  for (let i = 0; i < count; i++) {
    const spec = sampleStimulus(rng, i, imageSize);
    const image = renderStimulus(spec);
    await opts.write(i, image);
    const f = stimulusFeatures(image);
    featureVector(f, features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM));
    contrast.set(f.contrast, i * GRID * GRID);
    spec.labels.forEach((b, c) => (labels[i * 6 + c] = b ? 1 : 0));
    specs.push(spec);
    if (i % 100 === 99 || i === count - 1) opts.onProgress?.(i + 1, count);
  }
  return { count, specs, features, contrast, labels };
}

/** Noiseless response of each vertex of a hemisphere to each stimulus, z-scored per vertex over the stimuli. [count, N] */
export function worldSignal(h: HemisphereTruth, stimuli: WorldStimuli): Float32Array {
  return noiselessSignal(stimuli.features, stimuli.count, readoutWeights(h));
}

/** How many images are shown three, two and once. */
export function repeatTally(repeats: Uint8Array): { three: number; two: number; one: number } {
  let three = 0, two = 0, one = 0;
  for (const r of repeats) r === 3 ? three++ : r === 2 ? two++ : one++;
  return { three, two, one };
}
