/**
 * A BrainDiVE pipeline (diffusers / tfjs-models style): `await loadSyntheticPipeline()` or `await loadSdPipeline({...})`
 * gives one object with the same verbs in either setting:
 * - `generate({ region, scale, seeds })` -> images [N,3,S,S] on [0,1] and the region's predicted activation [N]
 *   (scale 0: unguided; image i starts from seeds[i]'s noise);
 * - `score(region, images)` -> the voxel encoder's predicted mean activation of the region [N];
 * - `classify(images)` -> probabilities [N,5] over EVAL_CATEGORIES (the synthetic world's classifier, or CLIP zero-shot
 *   with real weights), or null when the pipeline has no classifier;
 * - `describe()` -> a few lines for the log.
 * The settings differ only in how they sample: synthetic-pipeline.ts and sd-pipeline.ts. Stable Diffusion samples with
 * self-attention guidance at BrainDiVE's 0.75 by default (`sagScale`); the synthetic world's denoisers have no
 * self-attention, so SAG does not apply there (asked for, it says so in one line and samples without it).
 */
import * as tf from '@tensorflow/tfjs';
import type { FeatureExtractor } from '../backbones/contract.js';
import type { SchedulerKind } from '../diffusion/schedulers/index.js';
import type { GuidanceGradient } from '../diffusion/guidance.js';
import { regionActivation, regionIndices, type VoxelEncoder } from './voxel-encoder.js';

/** Options of a pipeline's `generate`. */
export interface GenerateOptions {
  /** The region to drive (a name in the encoder's regions). */
  region: string;
  /** Brain guidance scale (0 = unguided). */
  scale: number;
  /** One image per seed (the initial noise of image i comes from seeds[i]). */
  seeds: number[];
  /** Sampling steps (default: the pipeline's). */
  steps?: number;
  /** Scheduler (default: DDIM in the synthetic world, DPM-Solver++ for SD). */
  scheduler?: SchedulerKind;
  /** 'full' (through the denoiser, as the paper's code) or 'x0' (one denoiser call per step); default: the model's. */
  gradient?: GuidanceGradient;
  /** Images sampled together in the synthetic world (default 8; it does not change the images). SD samples one per seed. */
  batch?: number;
  /** Self-attention guidance scale (default: the pipeline's; SD: 0.75 as BrainDiVE, 0 turns it off). The synthetic world has no attention: SAG does not apply there. */
  sagScale?: number;
  /** Show a progress bar per batch. */
  progress?: boolean;
  /** Called after each image with its index in `seeds`. */
  onImage?: (i: number) => void;
}

/** Generated images [N,3,S,S] on [0,1], the encoder's predicted region activation of each [N], and the SAG scale applied (0: none). */
export interface GeneratedSet {
  images: tf.Tensor4D;
  activation: Float32Array;
  sagScale: number;
}

/** A loaded BrainDiVE set-up: a generator, a voxel encoder on a feature extractor, and (optionally) a 5-way classifier. */
export interface BrainDiVEPipeline {
  readonly mode: 'synthetic' | 'sd';
  readonly encoder: VoxelEncoder;
  readonly fx: FeatureExtractor;
  /** Default sampling steps. */
  readonly steps: number;
  /** Default self-attention guidance scale (SD: 0.75 as BrainDiVE; the synthetic world: 0, it has no attention). */
  readonly sagScale: number;
  /** Guided (scale != 0) or unguided images of a region, one per seed, with their predicted activation. */
  generate(o: GenerateOptions): Promise<GeneratedSet>;
  /** Predicted mean activation of `region` for images [N,3,H,W] on [0,1] -> [N]. */
  score(region: string, images: tf.Tensor4D): Float32Array;
  /** Category probabilities of images [N,3,H,W] on [0,1] -> [N,5] row-major (EVAL_CATEGORIES order), or null without a classifier. */
  classify(images: tf.Tensor4D): Promise<Float32Array | null>;
  /** What is loaded, in a few lines. */
  describe(): string;
  /** Frees weights and sessions. */
  dispose(): Promise<void>;
}

/** Thrown for a guidance scale that is not a finite number. */
export function checkScale(scale: number): void {
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`guidance scale must be a finite number, got ${String(scale)}`);
}

/** Checks generate's inputs against an encoder: a finite scale, a region it knows, at least one seed. */
export function checkGenerateOptions(encoder: VoxelEncoder, o: GenerateOptions): void {
  checkScale(o.scale);
  regionIndices(encoder, o.region);
  if (!Array.isArray(o.seeds) || o.seeds.length === 0) throw new RangeError(`generate: give at least one seed, got ${JSON.stringify(o.seeds)}`);
}

/** The encoder's predicted mean activation of a region, images [N,3,H,W] on [0,1] -> [N] (no gradient kept). */
export function scoreRegion(encoder: VoxelEncoder, fx: FeatureExtractor, region: string, images: tf.Tensor4D): Float32Array {
  return tf.tidy(() => regionActivation(encoder, fx, region, images).dataSync() as Float32Array);
}

/** Images [N,3,S,S] on [0,1] -> uint8 RGB HWC per image. */
export function toRgbImages(images: tf.Tensor4D): { width: number; height: number; data: Uint8Array }[] {
  const [N, , H, W] = images.shape;
  const d = tf.tidy(() => tf.transpose(tf.clipByValue(tf.mul(images, 255), 0, 255), [0, 2, 3, 1]).dataSync());
  return Array.from({ length: N }, (_, i) => ({ width: W, height: H, data: Uint8Array.from(d.subarray(i * H * W * 3, (i + 1) * H * W * 3), (v) => Math.round(v)) }));
}
