/** BrainDiVE generation with the synthetic world's diffusion model (PCA latent or pixel): guided and unguided samples of a region, scored by the encoder. */
import * as tf from '@tensorflow/tfjs';
import { sampleGuided } from '../diffusion/guided.js';
import { NoiseGenerator } from '../diffusion/schedulers.js';
import { samplerParts, type SyntheticDiffusionModel } from '../diffusion/small-models.js';
import type { FeatureExtractor } from '../backbones/contract.js';
import { regionActivation, regionScoreFn, type VoxelEncoder } from './voxel-encoder.js';

/** Options of {@link generatePixel}. */
export interface GeneratePixelOptions {
  model: SyntheticDiffusionModel;
  encoder: VoxelEncoder;
  fx: FeatureExtractor;
  region: string;
  /** Brain guidance scale (0 = unguided). */
  scale: number;
  /** One image per seed (the initial noise of image i comes from seeds[i]). */
  seeds: number[];
  steps?: number;
  scheduler?: 'ddim' | 'dpmpp2m' | 'euler';
  /** 'full' (through the denoiser, as the paper's code; the default for the latent model, whose MLP is cheap) or 'x0' (one UNet call per step; the pixel model's default). */
  gradient?: 'x0' | 'full';
  progress?: boolean;
  /** Images sampled together (default 8). Image i still starts from seeds[i]'s noise, so the batch size does not change the images. */
  batch?: number;
  /** Called after each image. */
  onImage?: (i: number) => void;
}

/** Generated images [N,3,S,S] on [0,1] and the encoder's predicted region activation of each [N]. */
export interface GeneratedSet {
  images: tf.Tensor4D;
  activation: Float32Array;
}

/** Thrown for a guidance scale that is not a finite number. */
export function checkScale(scale: number): void {
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`guidance scale must be a finite number, got ${String(scale)}`);
}

/** Samples one image per seed with brain guidance towards `region` (scale 0: unguided), then scores the results. */
export async function generatePixel(o: GeneratePixelOptions): Promise<GeneratedSet> {
  checkScale(o.scale);
  const parts = samplerParts(o.model);
  const score = regionScoreFn(o.encoder, o.fx, o.region);
  const batch = o.batch ?? 8;
  if (!(Number.isInteger(batch) && batch >= 1)) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  const outs: tf.Tensor4D[] = [];
  for (let i0 = 0; i0 < o.seeds.length; i0 += batch) {
    const seeds = o.seeds.slice(i0, i0 + batch);
    // 1. each image's initial noise from its own seed
    const latents = tf.tidy(() => tf.concat(seeds.map((s) => new NoiseGenerator(s).randn([1, ...parts.latentShape]) as tf.Tensor4D), 0) as tf.Tensor4D);
    // 2. guided (or plain) sampling of the batch
    const r = await sampleGuided({
      unet: (x, t) => parts.unet(x, t),
      decode: parts.decode,
      scheduler: parts.scheduler(o.scheduler ?? 'ddim'),
      steps: o.steps ?? 25,
      latentShape: parts.latentShape,
      latents,
      seed: seeds[0]!,
      score: o.scale !== 0 ? score : undefined,
      guidanceScale: o.scale,
      gradient: o.gradient ?? (o.model.kind === 'pca-latent' ? 'full' : 'x0'),
      vaeScalingFactor: 1,
      scoreSize: o.fx.inputSize,
      progress: o.progress ? { label: `${o.scale !== 0 ? `guided ${o.region} x${o.scale}` : 'unguided'}: images ${i0 + 1}-${i0 + seeds.length} of ${o.seeds.length}` } : false,
    });
    latents.dispose();
    outs.push(r.images);
    r.latents.dispose();
    seeds.forEach((_, j) => o.onImage?.(i0 + j));
  }
  const images = tf.concat(outs, 0) as tf.Tensor4D;
  outs.forEach((t) => t.dispose());
  const activation = tf.tidy(() => regionActivation(o.encoder, o.fx, o.region, images).dataSync() as Float32Array);
  return { images, activation };
}

/** Images [N,3,S,S] on [0,1] -> uint8 RGB HWC per image. */
export function toRgbImages(images: tf.Tensor4D): { width: number; height: number; data: Uint8Array }[] {
  const [N, , H, W] = images.shape;
  const d = tf.tidy(() => tf.transpose(tf.clipByValue(tf.mul(images, 255), 0, 255), [0, 2, 3, 1]).dataSync());
  return Array.from({ length: N }, (_, i) => ({ width: W, height: H, data: Uint8Array.from(d.subarray(i * H * W * 3, (i + 1) * H * W * 3), (v) => Math.round(v)) }));
}
