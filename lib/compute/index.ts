/** Compute set-up: the tfjs backend and onnxruntime execution providers. */
export * from './backend.js';
export * from './device.js';
export * from './onnx.js';
export * from './readbacks.js';
export * from './wasm-kernels.js';
