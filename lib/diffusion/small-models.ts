/** The synthetic world's diffusion models behind one interface: what the guided sampler needs from either kind. */
import type * as tf from '@tensorflow/tfjs';
import { makeScheduler, type Scheduler, type SchedulerKind } from './schedulers/index.js';
import { readModelFolder } from './model-folder.js';
import { loadPixelDiffusion, pixelUNetFn, type PixelDiffusionModel } from './pixel-unet.js';
import { decodeLatent, latentUNetFn, loadLatentDiffusion, type LatentDiffusionModel } from './pca-latent.js';

/** A pixel UNet (kind 'pixel-unet') or a PCA-latent MLP (kind 'pca-latent'). */
export type SyntheticDiffusionModel = PixelDiffusionModel | LatentDiffusionModel;

/** What sampleGuided needs: eps of latents [B, ...latentShape], latents -> images [B,3,S,S] in [-1,1], and a scheduler. */
export interface SamplerParts {
  latentShape: [number, number, number];
  size: number;
  unet: (latents: tf.Tensor4D, t: number) => tf.Tensor4D;
  decode: (z: tf.Tensor4D) => tf.Tensor4D;
  scheduler: (kind?: SchedulerKind) => Scheduler;
}

/** Loads a diffusion model folder of either kind (config.json "kind"; a folder without one is a pixel UNet). */
export async function loadSyntheticDiffusion(dir: string): Promise<SyntheticDiffusionModel> {
  const json = readModelFolder(dir);
  return json.kind === 'pca-latent' ? loadLatentDiffusion(dir, json) : loadPixelDiffusion(dir, json);
}

/** The sampler's view of a model. Its scheduler takes eps, which both kinds' unet returns whatever the network predicts. */
export function samplerParts(model: SyntheticDiffusionModel): SamplerParts {
  const scheduler = (kind: SchedulerKind = 'ddim') => makeScheduler(kind, { ...model.schedule, predictionType: 'epsilon' });
  if (model.kind === 'pca-latent') {
    const { k, size } = model.config;
    return {
      latentShape: [k, 1, 1],
      size,
      unet: latentUNetFn(model),
      decode: (z) => decodeLatent(model.pca, z.reshape([z.shape[0], k]), size),
      scheduler,
    };
  }
  const S = model.config.size;
  return { latentShape: [3, S, S], size: S, unet: pixelUNetFn(model), decode: (z) => z.clone(), scheduler };
}
