/** BrainDiVE in brainnet: voxel-wise encoder, the small diffusion models (PCA latent, pixel), classifier, evaluation and runs. */
export * from './categorised.js';
export * from './model-folder.js';
export * from './pixel-diffusion.js';
export * from './latent-diffusion.js';
export * from './diffusion-model.js';
export * from './wasm-kernels.js';
export * from './voxel-encoder.js';
export * from './subject-encoder.js';
export * from './classifier.js';
export * from './evaluate.js';
export * from './generate.js';
export * from './runs.js';
export * from './trainer.js';
export * from './localiser.js';
export * from './clip-zero-shot.js';
