export * from './contract.js';
export * from './builtin.js';
export * from './onnx-backbone.js';
export * from './token-cache.js';
export * from './onnx-graph/index.js';
