/** Differentiable ONNX execution: ONNX graphs run as tfjs ops, so tf.grad works through exported models. */
export { loadOnnxGraph, OnnxGraph, MIN_OPSET, MAX_OPSET } from './executor.js';
export type { OnnxValueInfo, LoadOnnxGraphOptions } from './executor.js';
export { supportedOps } from './ops/index.js';
export type { HostTensor } from './host.js';
export { decodeModel, encodeModel } from './proto.js';
