/** lib/diffusion: schedulers (one file each), brain guidance, self-attention guidance (sag.ts) and the guided sampling loop, the small synthetic-world models and their trainer, the CLIP tokenizer and the Stable Diffusion ONNX layout. */
export * from './schedulers/index.js';
export * from './guidance.js';
export * from './sag.js';
export * from './sampling.js';
export * from './tokenizer.js';
export * from './sd.js';
export * from './model-folder.js';
export * from './pixel-unet.js';
export * from './pca-latent.js';
export * from './small-models.js';
export * from './trainer.js';
