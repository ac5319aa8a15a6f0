/** lib/encoding: the factorized encoding model (selectors), its training and metrics. */
export * from './ops.js';
export * from './head.js';
export * from './model.js';
export * from './metrics.js';
export * from './optimizer.js';
export * from './train-step.js';
export * from './train.js';
export * from './ridge.js';
export * from './channels.js';
export * from './checkpoint.js';
export * from './fit.js';
export * from './head-gpu.js';
export { onnxEngine, OnnxEncoderEngine, type HostGradients, type HostLossOptions } from './onnx-step.js';
export { selectorsForwardGraph, forwardGraph, headBackwardGraph, selectorsBackwardGraph, selectorChunks, matmulGraph, type GraphDims } from './onnx-graphs.js';
