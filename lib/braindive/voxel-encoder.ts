/**
 * BrainDiVE's voxel-wise encoder: frozen image features (a backbone's last layer, global-pooled and
 * unit-normalised), then a linear map to every voxel plus a per-voxel bias. Trained with AdamW on
 * MSE; validation R^2 per voxel; saved as safetensors. Differentiable end to end
 * (image -> features -> voxels), so that the mean over a region guides diffusion.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../compute/index.js';
import { Rng } from '../core/rng.js';
import { AdamW } from '../encoding/optimizer.js';
import { CLIP_MEAN, CLIP_STD } from '../io/image.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { FileFormatError } from '../io/errors.js';
import { resizeBilinearNCHW, type ScoreFn } from '../diffusion/guidance.js';
import { r2PerVertex } from '../encoding/metrics.js';
import type { OnnxGraph } from '../backbones/onnx-graph/index.js';
import { ensureWasmDepthwiseGradients, depthwiseConv2dFrozen, pointwiseConv2d } from '../compute/wasm-kernels.js';

/** A frozen, differentiable image featuriser: images [B,3,H,W] on [0,1] -> unit-normalised features [B,D] (synchronous, so tf.grad works). */
export interface FeatureExtractor {
  readonly name: string;
  /** Side the images are resized to before the backbone. */
  readonly inputSize: number;
  readonly dim: number;
  features(images01: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

/** Thrown for bad encoder input: an unknown region, another vertex set, a mismatched feature extractor. */
export class EncoderError extends Error {
  override name = 'EncoderError';
}

function unitNorm(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-8)) as tf.Tensor2D;
}

function prep(images01: tf.Tensor4D, size: number, mean: readonly number[], std: readonly number[]): tf.Tensor4D {
  let x = images01;
  if (x.shape[2] !== size || x.shape[3] !== size) x = resizeBilinearNCHW(x, size, size);
  return tf.div(tf.sub(x, tf.tensor4d([...mean], [1, 3, 1, 1])), tf.tensor4d([...std], [1, 3, 1, 1])) as tf.Tensor4D;
}

/** nsfwjs@4's bundled tfjs layers model (base64 in JS files; no network). */
async function loadNsfwjsModel(dirName: string): Promise<tf.LayersModel> {
  let main: string;
  try {
    main = require.resolve('nsfwjs');
  } catch {
    throw new EncoderError('built-in feature extractors need the npm package nsfwjs@4 (bundled MobileNetV2/InceptionV3 weights); run `npm install nsfwjs@4`');
  }
  const dir = path.join(path.dirname(path.dirname(main)), 'models', dirName);
  const m = require(path.join(dir, 'model.min.js')) as { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const g of m.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) parts.push(Buffer.from(require(path.join(dir, `${p}.min.js`)) as string, 'base64'));
  }
  const all = Buffer.concat(parts);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: m.modelTopology, weightSpecs: specs, weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer }));
}

/**
 * A built-in tfjs backbone's last feature map ('mobilenetv2': out_relu 7x7x1280 at 224^2; 'inceptionv3': mixed10 at 299^2),
 * global-average-pooled and unit-normalised; differentiable through tfjs (wasm included). MobileNetV2 also runs at another
 * `inputSize` (a multiple of 32; its name then ends in @size), which makes guidance of small images cheaper.
 */
export async function builtinFeatureExtractor(which: 'mobilenetv2' | 'inceptionv3' = 'mobilenetv2', layer?: string, opts: { inputSize?: number } = {}): Promise<FeatureExtractor> {
  await initBackend();
  ensureWasmDepthwiseGradients();
  const spec = which === 'mobilenetv2' ? { dir: 'mobilenet_v2', size: 224, layer: 'out_relu' } : { dir: 'inception_v3', size: 299, layer: 'mixed10' };
  const size = opts.inputSize ?? spec.size;
  if (size !== spec.size && (which !== 'mobilenetv2' || !Number.isInteger(size) || size < 32 || size % 32 !== 0)) {
    throw new EncoderError(`builtinFeatureExtractor: inputSize ${size} is not supported for ${which}; MobileNetV2 takes a multiple of 32 (default 224), InceptionV3 only 299`);
  }
  const model = await loadNsfwjsModel(spec.dir);
  const tapName = layer ?? spec.layer;
  const out = model.getLayer(tapName).output as tf.SymbolicTensor;
  const tap = tf.model({ inputs: model.inputs, outputs: out });
  const dim = out.shape[3] as number;
  const diff = which === 'mobilenetv2' ? layersExecutor(model, tapName) : null;
  return {
    name: `${which}@nsfwjs4/${tapName}${size !== spec.size ? `@${size}` : ''}`,
    inputSize: size,
    dim,
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

/** The built-in feature extractor an encoder was trained on, from its feature name ('mobilenetv2@nsfwjs4/out_relu', optionally '@128'); other names are an error that says what to load instead. */
export async function builtinFeatureExtractorFor(enc: VoxelEncoder): Promise<FeatureExtractor> {
  const m = /^(mobilenetv2|inceptionv3)@nsfwjs4\/([^@]+)(?:@(\d+))?$/.exec(enc.featureName);
  if (!m) throw new EncoderError(`the encoder was trained on features '${enc.featureName}', which are not a built-in backbone's; load that extractor yourself (e.g. onnxFeatureExtractor for an exported CLIP)`);
  return builtinFeatureExtractor(m[1] as 'mobilenetv2' | 'inceptionv3', m[2], m[3] ? { inputSize: Number(m[3]) } : {});
}

/**
 * Runs a Keras functional model (Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, ZeroPadding2D, Add)
 * up to layer `tap` with plain tfjs ops, NHWC in -> NHWC out. Unlike tfjs-layers (fused convolutions,
 * whose gradient always computes the filter gradient, missing on wasm), only the input gradient is built.
 */
export function layersExecutor(model: tf.LayersModel, tap: string): (x: tf.Tensor4D) => tf.Tensor4D {
  type Step = { name: string; inputs: string[]; f: (xs: tf.Tensor4D[]) => tf.Tensor4D };
  const steps: Step[] = [];
  for (const l of model.layers) {
    const cls = l.getClassName();
    const cfg = l.getConfig() as Record<string, unknown>;
    const inputs = cls === 'InputLayer' ? [] : (l.inboundNodes[0]!.inboundLayers.map((x) => x.name));
    const w = l.getWeights();
    let f: Step['f'];
    if (cls === 'InputLayer') f = (xs) => xs[0]!;
    else if (cls === 'ZeroPadding2D') {
      const pd = cfg.padding as [[number, number], [number, number]];
      f = (xs) => tf.pad(xs[0]!, [[0, 0], pd[0], pd[1], [0, 0]]);
    } else if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') {
      const strides = cfg.strides as [number, number];
      const padding = cfg.padding as 'same' | 'valid';
      const k = w[0] as tf.Tensor4D;
      const b = cfg.use_bias ? w[1] : undefined;
      if (cfg.activation !== 'linear') throw new EncoderError(`layersExecutor: layer ${l.name} has activation ${String(cfg.activation)}; only linear is supported`);
      f = (xs) => {
        // the weights are frozen: 1x1 convolutions as matrix products and depthwise ones with a fast input gradient
        const pointwise = cls === 'Conv2D' && k.shape[0] === 1 && k.shape[1] === 1 && strides[0] === 1 && strides[1] === 1;
        const y = pointwise ? pointwiseConv2d(xs[0]!, k) : cls === 'Conv2D' ? tf.conv2d(xs[0]!, k, strides, padding) : depthwiseConv2dFrozen(xs[0]!, k, strides, padding);
        return (b ? tf.add(y, b) : y) as tf.Tensor4D;
      };
    } else if (cls === 'BatchNormalization') {
      const eps = cfg.epsilon as number;
      const [gamma, beta, mean, variance] = w as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const scale = tf.keep(tf.div(gamma, tf.sqrt(tf.add(variance, eps))));
      const shift = tf.keep(tf.sub(beta, tf.mul(mean, scale)));
      f = (xs) => tf.add(tf.mul(xs[0]!, scale), shift) as tf.Tensor4D;
    } else if (cls === 'ReLU') {
      const mx = cfg.max_value as number | null;
      f = (xs) => (mx != null ? tf.clipByValue(xs[0]!, 0, mx) : tf.relu(xs[0]!)) as tf.Tensor4D;
    } else if (cls === 'Add') f = (xs) => tf.addN(xs) as tf.Tensor4D;
    else throw new EncoderError(`layersExecutor: layer ${l.name} of class ${cls} is not supported`);
    steps.push({ name: l.name, inputs, f });
    if (l.name === tap) break;
  }
  return (x) =>
    tf.tidy(() => {
      const vals = new Map<string, tf.Tensor4D>();
      for (const s of steps) vals.set(s.name, s.inputs.length === 0 ? x : s.f(s.inputs.map((n) => vals.get(n)!)));
      return vals.get(tap)!;
    });
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
  const { loadOnnxGraph } = await import('../backbones/onnx-graph/index.js');
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

/** A trained voxel-wise encoder: W [D,V], b [V], for a feature extractor and a vertex set. */
export interface VoxelEncoder {
  featureName: string;
  dim: number;
  nVoxels: number;
  /** Identifies the vertex set (counts and a hash of the fsaverage indices). */
  vertexSet: string;
  w: tf.Tensor2D;
  b: tf.Tensor1D;
  /** Named regions: voxel column indices. */
  regions: Record<string, Int32Array>;
  /** Validation R^2 per voxel (if trained here). */
  valR2?: Float32Array;
}

/** An id for a vertex set: 'lh N + rh M #hash' of the fsaverage indices. */
export function vertexSetId(fsIndex: Record<'lh' | 'rh', ArrayLike<number>>): string {
  let h = 0x811c9dc5;
  for (const hemi of ['lh', 'rh'] as const) {
    const a = fsIndex[hemi];
    for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i]!, 0x01000193) >>> 0;
    h = Math.imul(h ^ 0xff, 0x01000193) >>> 0;
  }
  return `lh ${fsIndex.lh.length} + rh ${fsIndex.rh.length} #${h.toString(16)}`;
}

/** Options of {@link trainVoxelEncoder}. */
export interface TrainVoxelOptions {
  steps?: number;
  lr?: number;
  weightDecay?: number;
  batch?: number;
  seed?: number;
}

/** Trains W, b on features X [N,D] and responses Y [N,V] with AdamW + MSE (minibatches, seeded), each voxel keeping the weights of its lowest validation MSE (checked every 20 steps); validation R^2 per voxel on (valX, valY). */
export function trainVoxelEncoder(
  X: Float32Array, Y: Float32Array, n: number, d: number, v: number,
  val: { X: Float32Array; Y: Float32Array; n: number } | null,
  meta: { featureName: string; vertexSet: string; regions?: Record<string, Int32Array> },
  opts: TrainVoxelOptions = {},
): VoxelEncoder {
  const { steps = 600, lr = 1e-3, weightDecay = 1e-4, batch = 64, seed = 0 } = opts;
  // Unit-normalised features are small; scale W's learning by sqrt(D) through the parameterisation y = (x*sqrt(D)) W + b.
  const scale = Math.sqrt(d);
  const w = tf.variable(tf.zeros([d, v]));
  let ymean = new Float32Array(v);
  for (let i = 0; i < n; i++) for (let j = 0; j < v; j++) ymean[j] += Y[i * v + j]! / n;
  const b = tf.variable(tf.tensor1d(ymean));
  // AdamW (encoding/optimizer.ts) on the device moments; weight decay on W only
  const optW = new AdamW({ lr, weightDecay });
  const optB = new AdamW({ lr, weightDecay: 0 });
  const rng = new Rng(seed);
  const Xt = tf.mul(tf.tensor2d(X, [n, d]), scale);
  const Yt = tf.tensor2d(Y, [n, v]);
  const valXt = val ? tf.mul(tf.tensor2d(val.X, [val.n, d]), scale) : null;
  const valYt = val ? tf.tensor2d(val.Y, [val.n, v]) : null;
  // early stopping per voxel: each voxel keeps the weights of its own lowest validation MSE
  let bestMse: tf.Tensor1D | null = null;
  let bestW: tf.Tensor2D | null = null;
  let bestB: tf.Tensor1D | null = null;
  for (let k = 0; k <= steps; k++) {
    if (valXt && valYt && (k % 20 === 0 || k === steps)) {
      const prev: { mse: tf.Tensor1D; w: tf.Tensor2D; b: tf.Tensor1D } | null = bestMse && bestW && bestB ? { mse: bestMse, w: bestW, b: bestB } : null;
      const [m, w2, b2] = tf.tidy((): [tf.Tensor1D, tf.Tensor2D, tf.Tensor1D] => {
        const mse = tf.mean(tf.square(tf.sub(tf.add(tf.matMul(valXt, w), b), valYt)), 0) as tf.Tensor1D;
        if (!prev) return [mse, w.clone(), b.clone()] as [tf.Tensor1D, tf.Tensor2D, tf.Tensor1D];
        const better = tf.less(mse, prev.mse);
        return [tf.minimum(mse, prev.mse), tf.where(tf.broadcastTo(better, [d, v]), w as tf.Tensor, prev.w as tf.Tensor), tf.where(better, b as tf.Tensor, prev.b as tf.Tensor)] as [tf.Tensor1D, tf.Tensor2D, tf.Tensor1D];
      });
      if (prev) tf.dispose([prev.mse, prev.w, prev.b]);
      bestMse = m;
      bestW = w2;
      bestB = b2;
    }
    if (k === steps) break;
    const idx = tf.tensor1d(Array.from({ length: Math.min(batch, n) }, () => rng.int(0, n)), 'int32');
    const { value, grads } = tf.variableGrads(() => {
      const xb = tf.gather(Xt, idx);
      const yb = tf.gather(Yt, idx);
      return tf.mean(tf.square(tf.sub(tf.add(tf.matMul(xb, w), b), yb))) as tf.Scalar;
    }, [w, b]);
    optW.applyOnDevice([w], [grads[w.name]!]);
    optB.applyOnDevice([b], [grads[b.name]!]);
    tf.dispose([idx, value, ...Object.values(grads)]);
  }
  Xt.dispose();
  Yt.dispose();
  valXt?.dispose();
  valYt?.dispose();
  optW.dispose();
  optB.dispose();
  if (bestW && bestB) {
    w.assign(bestW);
    b.assign(bestB);
    tf.dispose([bestW, bestB]);
    bestMse?.dispose();
  }
  const wOut = tf.tidy(() => tf.mul(w, scale)) as tf.Tensor2D;
  const bOut = tf.tidy(() => b.clone()) as tf.Tensor1D;
  w.dispose();
  b.dispose();
  ymean = new Float32Array(0);
  const enc: VoxelEncoder = { featureName: meta.featureName, dim: d, nVoxels: v, vertexSet: meta.vertexSet, w: wOut, b: bOut, regions: meta.regions ?? {} };
  if (val) {
    const p = predictFromFeatures(enc, val.X, val.n);
    enc.valR2 = Float32Array.from(r2PerVertex(p, val.Y, v));
  }
  return enc;
}

/** Voxel predictions from features [N,D] -> [N,V] (float32). */
export function predictFromFeatures(enc: VoxelEncoder, X: Float32Array, n: number): Float32Array {
  return tf.tidy(() => tf.add(tf.matMul(tf.tensor2d(X, [n, enc.dim]), enc.w), enc.b).dataSync() as Float32Array);
}

/** Differentiable prediction: images [B,3,H,W] on [0,1] -> voxels [B,V]. */
export function predictVoxels(enc: VoxelEncoder, fx: FeatureExtractor, images01: tf.Tensor4D): tf.Tensor2D {
  checkExtractor(enc, fx);
  return tf.tidy(() => tf.add(tf.matMul(fx.features(images01), enc.w), enc.b) as tf.Tensor2D);
}

function checkExtractor(enc: VoxelEncoder, fx: FeatureExtractor): void {
  if (fx.dim !== enc.dim || fx.name !== enc.featureName) {
    throw new EncoderError(`the encoder was trained on features '${enc.featureName}' (${enc.dim}-d) but the feature extractor is '${fx.name}' (${fx.dim}-d); load the same backbone or retrain the encoder`);
  }
}

/** Voxel columns of a named region; the error lists the regions that exist. */
export function regionIndices(enc: VoxelEncoder, region: string): Int32Array {
  const r = enc.regions[region];
  if (!r) throw new EncoderError(`unknown region '${region}'; this encoder has: ${Object.keys(enc.regions).join(', ') || '(none)'}`);
  if (r.length === 0) throw new EncoderError(`region '${region}' has no voxels in this encoder's vertex set`);
  return r;
}

/** Mean predicted activation of a region, images [B,3,H,W] on [0,1] -> [B]; differentiable. */
export function regionActivation(enc: VoxelEncoder, fx: FeatureExtractor, region: string, images01: tf.Tensor4D): tf.Tensor1D {
  const idx = regionIndices(enc, region);
  return tf.tidy(() => {
    const f = fx.features(images01);
    const wr = tf.gather(enc.w, tf.tensor1d(idx, 'int32'), 1);
    const br = tf.gather(enc.b, tf.tensor1d(idx, 'int32'));
    return tf.mean(tf.add(tf.matMul(f, wr), br), 1) as tf.Tensor1D;
  });
}

/** A guidance score for sampleGuided: CLIP-normalised images [B,3,224,224] (as brainGuidance passes them) -> region mean [B]. */
export function regionScoreFn(enc: VoxelEncoder, fx: FeatureExtractor, region: string): ScoreFn {
  checkExtractor(enc, fx);
  regionIndices(enc, region);
  return (images) =>
    tf.tidy(() => {
      const x01 = tf.add(tf.mul(images, tf.tensor4d([...CLIP_STD], [1, 3, 1, 1])), tf.tensor4d([...CLIP_MEAN], [1, 3, 1, 1])) as tf.Tensor4D;
      return regionActivation(enc, fx, region, x01);
    });
}

/** Saves an encoder as safetensors (w, b, region_<name>, val_r2) with its feature name and vertex set in the metadata. */
export async function saveVoxelEncoder(file: string, enc: VoxelEncoder): Promise<void> {
  const t: Record<string, { dtype: 'float32' | 'int32'; shape: number[]; data: Float32Array | Int32Array }> = {
    w: { dtype: 'float32', shape: [enc.dim, enc.nVoxels], data: enc.w.dataSync() as Float32Array },
    b: { dtype: 'float32', shape: [enc.nVoxels], data: enc.b.dataSync() as Float32Array },
  };
  if (enc.valR2) t['val_r2'] = { dtype: 'float32', shape: [enc.nVoxels], data: enc.valR2 };
  for (const [k, idx] of Object.entries(enc.regions)) t[`region.${k}`] = { dtype: 'int32', shape: [idx.length], data: idx };
  await writeSafetensors(file, t as never, { format: 'brainnet-voxel-encoder', featureName: enc.featureName, vertexSet: enc.vertexSet });
}

/** Loads an encoder; with `expectVertexSet`, an encoder trained for another vertex set is an error. */
export async function loadVoxelEncoder(file: string, opts: { expectVertexSet?: string } = {}): Promise<VoxelEncoder> {
  const { tensors, metadata } = await readSafetensors(file);
  if (metadata.format !== 'brainnet-voxel-encoder' || !tensors.w || !tensors.b) {
    throw new FileFormatError(file, 'a brainnet voxel encoder (safetensors with w, b and format=brainnet-voxel-encoder)', `tensors [${Object.keys(tensors).join(', ')}], format ${metadata.format ?? '(none)'}`, 'train one with trainVoxelEncoder and saveVoxelEncoder');
  }
  if (opts.expectVertexSet !== undefined && metadata.vertexSet !== opts.expectVertexSet) {
    throw new EncoderError(`encoder ${file} was trained for vertex set '${metadata.vertexSet}', but this subject has '${opts.expectVertexSet}'; train an encoder for this subject`);
  }
  const [d, v] = tensors.w.shape as [number, number];
  const regions: Record<string, Int32Array> = {};
  for (const [k, t] of Object.entries(tensors)) if (k.startsWith('region.')) regions[k.slice(7)] = Int32Array.from(t.data as ArrayLike<number>);
  return {
    featureName: metadata.featureName ?? '',
    dim: d,
    nVoxels: v,
    vertexSet: metadata.vertexSet ?? '',
    w: tf.tensor2d(Float32Array.from(tensors.w.data as ArrayLike<number>), [d, v]),
    b: tf.tensor1d(Float32Array.from(tensors.b.data as ArrayLike<number>)),
    regions,
    valR2: tensors.val_r2 ? Float32Array.from(tensors.val_r2.data as ArrayLike<number>) : undefined,
  };
}
