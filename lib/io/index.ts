/** File formats only: arrays, neuroimaging volumes and surfaces, weights, images. Nothing here knows about brains. */
export * from './ndarray.js';
export * from './errors.js';
export * from './atomic.js';
export * from './npy.js';
export * from './npz.js';
export * from './safetensors.js';
export * from './image.js';
export * from './nifti.js';
export * from './hdf5.js';
export * from './gifti.js';
export * from './freesurfer.js';
export * from './mat.js';
export * from './input.js';
