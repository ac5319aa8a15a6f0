/**
 * The features view of the contract (FeatureExtractor): one layer of a frozen network, global-average-pooled and
 * unit-normalised, differentiable through tfjs, for BrainDiVE's voxel encoder and its guidance gradient.
 * - Built-in: nsfwjs@4's MobileNetV2 (out_relu, through the plain-op Keras executor, so gradients work on wasm) and
 *   InceptionV3 (mixed10), loaded by nsfwjs.ts like the tokens view in builtin.ts.
 * - ONNX: an exported image encoder (e.g. CLIP's vision tower) run as tfjs ops by onnx-graph.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../compute/index.js';
import { ensureWasmDepthwiseGradients } from '../compute/wasm-kernels.js';
import { CLIP_MEAN, CLIP_STD } from '../io/image.js';
import { BackboneError, type FeatureExtractor } from './contract.js';
import { layersExecutor } from './keras-executor.js';
import { loadNsfwjsModel, type BuiltinBackboneName } from './nsfwjs.js';
import type { OnnxGraph } from './onnx-graph/index.js';
import { resizeBilinearNCHW } from './resize.js';

function unitNorm(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-8)) as tf.Tensor2D;
}

/** Images [B,3,H,W] on [0,1] resized to size x size and normalised per channel as (x - mean) / std. */
function prep(images01: tf.Tensor4D, size: number, mean: readonly number[], std: readonly number[]): tf.Tensor4D {
  let x = images01;
  if (x.shape[2] !== size || x.shape[3] !== size) x = resizeBilinearNCHW(x, size, size);
  return tf.div(tf.sub(x, tf.tensor4d([...mean], [1, 3, 1, 1])), tf.tensor4d([...std], [1, 3, 1, 1])) as tf.Tensor4D;
}

/**
 * Version of the built-in extractors' values under the same name: 1 ran MobileNetV2's ReLU6 uncapped (the Keras executor
 * read only snake_case config keys), 2 caps it as tfjs-layers does. A model trained on features records the version
 * (e.g. a voxel encoder's `featureVersion`), and {@link builtinFeatureExtractorFor} rebuilds that version.
 */
export const BUILTIN_FEATURE_VERSION = 2;

/**
 * A built-in tfjs backbone's last feature map ('mobilenetv2': out_relu 7x7x1280 at 224^2; 'inceptionv3': mixed10 at 299^2),
 * global-average-pooled and unit-normalised; differentiable through tfjs (wasm included). MobileNetV2 also runs at another
 * `inputSize` (a multiple of 32; its name then ends in @size), which makes guidance of small images cheaper.
 */
export async function builtinFeatureExtractor(which: BuiltinBackboneName = 'mobilenetv2', layer?: string, opts: { inputSize?: number; featureVersion?: number } = {}): Promise<FeatureExtractor> {
  await initBackend();
  const version = opts.featureVersion ?? BUILTIN_FEATURE_VERSION;
  if (version !== 1 && version !== BUILTIN_FEATURE_VERSION) throw new BackboneError(`builtinFeatureExtractor: feature version ${version} is unknown; this build makes versions 1 and ${BUILTIN_FEATURE_VERSION} (BUILTIN_FEATURE_VERSION)`);
  ensureWasmDepthwiseGradients();
  const spec = which === 'mobilenetv2' ? { size: 224, layer: 'out_relu' } : { size: 299, layer: 'mixed10' };
  const size = opts.inputSize ?? spec.size;
  if (size !== spec.size && (which !== 'mobilenetv2' || !Number.isInteger(size) || size < 32 || size % 32 !== 0)) {
    throw new BackboneError(`builtinFeatureExtractor: inputSize ${size} is not supported for ${which}; MobileNetV2 takes a multiple of 32 (default 224), InceptionV3 only 299`);
  }
  const model = await loadNsfwjsModel(which);
  const tapName = layer ?? spec.layer;
  const out = model.getLayer(tapName).output as tf.SymbolicTensor;
  const tap = tf.model({ inputs: model.inputs, outputs: out });
  const dim = out.shape[3] as number;
  const diff = which === 'mobilenetv2' ? layersExecutor(model, tapName, { uncappedRelu6: version === 1 }) : null;
  return {
    name: `${which}@nsfwjs4/${tapName}${size !== spec.size ? `@${size}` : ''}`,
    inputSize: size,
    dim,
    version,
    features(images01) {
      return tf.tidy(() => {
        const x = tf.transpose(prep(images01, size, [0, 0, 0], [1, 1, 1]), [0, 2, 3, 1]) as tf.Tensor4D;
        const f = diff ? diff(x) : (tap.apply(x, { training: false }) as tf.Tensor4D);
        return unitNorm(tf.mean(f, [1, 2]) as tf.Tensor2D);
      });
    },
    dispose() {
      model.dispose();
    },
  };
}

/**
 * The built-in feature extractor that features named `featureName` came from ('mobilenetv2@nsfwjs4/out_relu', optionally
 * '@128'), e.g. a voxel encoder's, at the `featureVersion` they were computed with (default: the current one; loadVoxelEncoder
 * gives 1 to an encoder saved before versions were recorded); other names are an error that says what to load instead.
 */
export async function builtinFeatureExtractorFor(trained: { featureName: string; featureVersion?: number }): Promise<FeatureExtractor> {
  const m = /^(mobilenetv2|inceptionv3)@nsfwjs4\/([^@]+)(?:@(\d+))?$/.exec(trained.featureName);
  if (!m) throw new BackboneError(`the encoder was trained on features '${trained.featureName}', which are not a built-in backbone's; load that extractor yourself (e.g. onnxFeatureExtractor for an exported CLIP)`);
  return builtinFeatureExtractor(m[1] as BuiltinBackboneName, m[2], { ...(m[3] ? { inputSize: Number(m[3]) } : {}), featureVersion: trained.featureVersion });
}

/** Options of {@link onnxFeatureExtractor}. */
export interface OnnxFeatureOptions {
  name?: string;
  /** Graph input name (default: the first input). */
  input?: string;
  /** Graph output name (default: the first output; e.g. CLIP's image_embeds). */
  output?: string;
  /** Input side (default 224). */
  inputSize?: number;
  /** Normalisation (default CLIP's mean and std). */
  mean?: readonly number[];
  std?: readonly number[];
}

/**
 * An ONNX image encoder (e.g. an exported CLIP vision tower) run as tfjs ops through loadOnnxGraph, so gradients flow:
 * images [B,3,H,W] on [0,1] -> features [B,D] (a [B,T,D] output gives its first token) unit-normalised. A graph folded for
 * batch 1 runs image by image.
 */
export function onnxFeatureExtractor(graph: OnnxGraph, opts: OnnxFeatureOptions = {}): FeatureExtractor {
  const g = graph as unknown as { inputs: { name: string; shape: number[] }[]; outputs: { name: string; shape: number[] }[] };
  const input = opts.input ?? g.inputs[0]!.name;
  const output = opts.output ?? g.outputs[0]!.name;
  const size = opts.inputSize ?? 224;
  const batch1 = g.inputs.find((i) => i.name === input)?.shape[0] === 1;
  const run = (x: tf.Tensor4D): tf.Tensor => {
    if (!batch1 || x.shape[0] === 1) return graph.run({ [input]: x }, [output])[output]!;
    return tf.concat(tf.split(x, x.shape[0], 0).map((xi) => graph.run({ [input]: xi }, [output])[output]!), 0);
  };
  const probe = tf.tidy(() => run(tf.zeros([1, 3, size, size])).shape);
  const dim = probe[probe.length - 1]!;
  return {
    name: opts.name ?? `onnx:${output}`,
    inputSize: size,
    dim,
    features(images01) {
      return tf.tidy(() => {
        let f = run(prep(images01, size, opts.mean ?? CLIP_MEAN, opts.std ?? CLIP_STD));
        if (f.rank === 3) f = tf.squeeze(tf.slice(f, [0, 0, 0], [f.shape[0]!, 1, dim]), [1]);
        if (f.rank === 4) f = tf.mean(f, [2, 3]);
        return unitNorm(f as tf.Tensor2D);
      });
    },
    dispose() {},
  };
}

/** Loads an exported image encoder (e.g. CLIP's vision tower, whose batch and image dims are often symbolic: folded here for [1, 3, inputSize, inputSize]) as a feature extractor. */
export async function loadOnnxImageEncoder(file: string, opts: OnnxFeatureOptions = {}): Promise<FeatureExtractor> {
  const size = opts.inputSize ?? 224;
  const { loadOnnxGraph } = await import('./onnx-graph/index.js');
  const graph = await loadOnnxGraph(file, { fallbackShape: (name, d) => (d.length === 4 && (!opts.input || name === opts.input) ? [1, 3, size, size] : undefined) });
  return onnxFeatureExtractor(graph, opts);
}

/** Features of many images, [N, D] float32 (unit-normalised); images [N,H,W,3] uint8 HWC, in batches. */
export function extractFeatures(fx: FeatureExtractor, pixels: Uint8Array, n: number, side: number, batch = 16, onBatch?: (done: number) => void): Float32Array {
  const out = new Float32Array(n * fx.dim);
  const per = side * side * 3;
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const f = tf.tidy(() => {
      const x = tf.div(tf.transpose(tf.tensor4d(pixels.subarray(s * per, e * per), [e - s, side, side, 3], 'float32'), [0, 3, 1, 2]), 255) as tf.Tensor4D;
      return fx.features(x);
    });
    out.set(f.dataSync(), s * fx.dim);
    f.dispose();
    onBatch?.(e);
  }
  return out;
}
