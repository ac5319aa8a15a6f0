/**
 * BrainDiVE's voxel-wise encoder: frozen image features (a FeatureExtractor from lib/backbones: one layer,
 * global-pooled and unit-normalised), then a linear map to every voxel plus a per-voxel bias. Trained with
 * AdamW on MSE; validation R^2 per voxel; saved as safetensors with its named regions. Differentiable end
 * to end (image -> features -> voxels), so that the mean over a region guides diffusion.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import { AdamW } from '../encoding/optimizer.js';
import { r2PerVertex } from '../encoding/metrics.js';
import { CLIP_MEAN, CLIP_STD } from '../io/image.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { FileFormatError } from '../io/errors.js';
import type { FeatureExtractor } from '../backbones/contract.js';
import type { ScoreFn } from '../diffusion/guidance.js';

/** Thrown for bad encoder input: an unknown region, another vertex set, a mismatched feature extractor. */
export class EncoderError extends Error {
  override name = 'EncoderError';
}

/** A trained voxel-wise encoder: W [D,V], b [V], for a feature extractor and a vertex set. */
export interface VoxelEncoder {
  featureName: string;
  /** Version of the features it was trained on (FeatureExtractor.version); undefined for extractors without one. Saved encoders without it were trained on version 1. */
  featureVersion?: number;
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
  /** Called after each optimisation step with (steps done, steps in all): a progress bar's hook. */
  onStep?: (done: number, total: number) => void;
}

/** Trains W, b on features X [N,D] and responses Y [N,V] with AdamW + MSE (minibatches, seeded), each voxel keeping the weights of its lowest validation MSE (checked every 20 steps); validation R^2 per voxel on (valX, valY). */
export function trainVoxelEncoder(
  X: Float32Array, Y: Float32Array, n: number, d: number, v: number,
  val: { X: Float32Array; Y: Float32Array; n: number } | null,
  meta: { featureName: string; featureVersion?: number; vertexSet: string; regions?: Record<string, Int32Array> },
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
    opts.onStep?.(k + 1, steps);
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
  const enc: VoxelEncoder = { featureName: meta.featureName, featureVersion: meta.featureVersion, dim: d, nVoxels: v, vertexSet: meta.vertexSet, w: wOut, b: bOut, regions: meta.regions ?? {} };
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

/** Checks that a feature extractor is the one an encoder was trained on (same name, width and feature version); throws EncoderError otherwise. */
export function checkExtractor(enc: VoxelEncoder, fx: FeatureExtractor): void {
  if (fx.dim !== enc.dim || fx.name !== enc.featureName) {
    throw new EncoderError(`the encoder was trained on features '${enc.featureName}' (${enc.dim}-d) but the feature extractor is '${fx.name}' (${fx.dim}-d); load the same backbone or retrain the encoder`);
  }
  if (fx.version !== undefined && enc.featureVersion !== undefined && fx.version !== enc.featureVersion) {
    throw new EncoderError(`the encoder was trained on version ${enc.featureVersion} of the features '${enc.featureName}', but the feature extractor makes version ${fx.version}; load it with builtinFeatureExtractorFor(encoder) or retrain the encoder`);
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
  await writeSafetensors(file, t as never, { format: 'brainnet-voxel-encoder', featureName: enc.featureName, ...(enc.featureVersion !== undefined ? { featureVersion: String(enc.featureVersion) } : {}), vertexSet: enc.vertexSet });
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
    featureVersion: metadata.featureVersion !== undefined ? Number(metadata.featureVersion) : /^(mobilenetv2|inceptionv3)@nsfwjs4\//.test(metadata.featureName ?? '') ? 1 : undefined,
    dim: d,
    nVoxels: v,
    vertexSet: metadata.vertexSet ?? '',
    w: tf.tensor2d(Float32Array.from(tensors.w.data as ArrayLike<number>), [d, v]),
    b: tf.tensor1d(Float32Array.from(tensors.b.data as ArrayLike<number>)),
    regions,
    valR2: tensors.val_r2 ? Float32Array.from(tensors.val_r2.data as ArrayLike<number>) : undefined,
  };
}
