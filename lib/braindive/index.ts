/** lib/braindive: BrainDiVE: a pipeline per setting (synthetic world, Stable Diffusion), the voxel-wise encoder, the category classifier, CLIP zero-shot, evaluation and runs. */
export * from './categories.js';
export * from './voxel-encoder.js';
export * from './subject-encoder.js';
export * from './classifier.js';
export * from './evaluate.js';
export * from './pipeline.js';
export * from './synthetic-pipeline.js';
export * from './sd-pipeline.js';
export * from './runs.js';
export * from './clip-zero-shot.js';
