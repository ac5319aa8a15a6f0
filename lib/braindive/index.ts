/** lib/braindive: BrainDiVE: the voxel-wise encoder, the category classifier, CLIP zero-shot, generation, evaluation and runs. */
export * from './categories.js';
export * from './voxel-encoder.js';
export * from './subject-encoder.js';
export * from './classifier.js';
export * from './evaluate.js';
export * from './generate.js';
export * from './runs.js';
export * from './clip-zero-shot.js';
