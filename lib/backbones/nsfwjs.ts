/**
 * The one loader of the built-in weights: the ImageNet-initialised Keras InceptionV3 and MobileNetV2 that the
 * `nsfwjs@4` npm package bundles (MIT licence) as base64 inside `dist/models/<model>/*.min.js`, read with
 * `tf.io.fromMemory` (no network). Both views of a built-in backbone start here: the tokens of
 * `loadBuiltinBackbone` (builtin.ts) and the differentiable features of `builtinFeatureExtractor` (features.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BackboneError } from './contract.js';
import { prunedKerasTopology } from './keras-to-onnx.js';

/** The built-in backbones' names. */
export type BuiltinBackboneName = 'inceptionv3' | 'mobilenetv2';

/** Each built-in backbone's folder under nsfwjs's `dist/models`. */
const NSFWJS_DIRS: Record<BuiltinBackboneName, string> = { inceptionv3: 'inception_v3', mobilenetv2: 'mobilenet_v2' };

/** Absolute folder of nsfwjs's bundled model files, or a clear error when nsfwjs is not installed. */
function nsfwjsModelsDir(): string {
  let main: string;
  try {
    main = require.resolve('nsfwjs'); // <pkg>/dist/cjs/index.js
  } catch {
    throw new BackboneError(
      'built-in backbones and feature extractors need the npm package nsfwjs@4 (its bundled InceptionV3/MobileNetV2 weights); it is not installed. Run `npm install nsfwjs@4`.',
    );
  }
  return path.join(path.dirname(path.dirname(main)), 'models');
}

/** A built-in backbone's files as nsfwjs bundles them: the Keras topology, the weight manifest and the weight bytes. */
export interface NsfwjsModelFiles {
  /** `nsfwjs@<version>`, the identity of the weights. */
  source: string;
  modelTopology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

/** Reads a built-in backbone's topology and weight bytes from nsfwjs's base64-in-JS files (no network, no tfjs). */
export function readNsfwjsModel(which: BuiltinBackboneName): NsfwjsModelFiles {
  const sub = NSFWJS_DIRS[which];
  if (!sub) throw new BackboneError(`unknown built-in backbone '${which}'; choose one of ${Object.keys(NSFWJS_DIRS).join(', ')}`);
  const models = nsfwjsModelsDir();
  const dir = path.join(models, sub);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version = (require(path.join(path.dirname(path.dirname(models)), 'package.json')) as { version: string }).version;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const m = require(path.join(dir, 'model.min.js')) as { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const group of m.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) parts.push(shardBytes(path.join(dir, `${p}.min.js`)));
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  return { source: `nsfwjs@${version}`, modelTopology: m.modelTopology, weightSpecs: specs, weightData };
}

/**
 * The bytes of one weight shard: a browserify bundle whose module exports one base64 string. Read as text and
 * decoded (4x faster than `require`, and the string is not kept in the module cache); `require` when the
 * bundle looks different.
 */
function shardBytes(file: string): Buffer {
  const m = /\.exports\s*=\s*"([A-Za-z0-9+/]+={0,2})"/.exec(fs.readFileSync(file, 'latin1'));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return Buffer.from(m ? m[1]! : (require(file) as string), 'base64');
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint16: 2, uint8: 1 };

/**
 * Decodes tfjs weight bytes by their manifest, as tfjs-core's `io.decodeWeights` does (uint8/uint16
 * quantization: value = q * scale + min, rounded to float32), without tfjs: name -> values and shape.
 */
export function decodeTfjsWeights(specs: readonly tf.io.WeightsManifestEntry[], data: ArrayBuffer, what = 'weights'): Map<string, { data: Float32Array; shape: number[] }> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  let off = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const q = s.quantization;
    const stored = q?.dtype ?? s.dtype;
    const size = BYTES[stored];
    if (s.dtype !== 'float32' || !size || (q && q.dtype !== 'uint8' && q.dtype !== 'uint16') || (q && (q.min === undefined || q.scale === undefined))) {
      throw new BackboneError(`${what}: weight ${s.name} is ${s.dtype} stored as ${stored}${q ? ` (quantization ${JSON.stringify(q)})` : ''}; the decoder reads float32 weights stored as float32 or as uint8/uint16 with min and scale.`);
    }
    if (off + n * size > data.byteLength) throw new BackboneError(`${what}: the weight bytes end at ${data.byteLength} but ${s.name} needs bytes ${off}..${off + n * size}; the files are truncated.`);
    let v: Float32Array;
    if (!q) v = new Float32Array(data.slice(off, off + n * 4));
    else {
      const raw = q.dtype === 'uint8' ? new Uint8Array(data, off, n) : new Uint16Array(data.slice(off, off + n * 2));
      v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = raw[i]! * q.scale! + q.min!;
    }
    out.set(s.name, { data: v, shape: [...s.shape] });
    off += n * size;
  }
  if (off !== data.byteLength) throw new BackboneError(`${what}: the manifest describes ${off} bytes of weights but the files hold ${data.byteLength}.`);
  return out;
}

/**
 * Loads a built-in backbone's Keras model (NHWC input, RGB on 0..1) into tfjs-layers from nsfwjs's
 * base64-in-JS files; no network. Whole, or (`cut`) only the layers that `outputs` need, which are then the
 * model's outputs, at input `inputSize` `[H, W]`.
 */
export async function loadNsfwjsModel(which: BuiltinBackboneName, cut?: { outputs: string[]; inputSize: [number, number] }): Promise<tf.LayersModel> {
  const m = readNsfwjsModel(which);
  const modelTopology = cut ? prunedKerasTopology(m.modelTopology, cut.outputs, cut.inputSize, which) : m.modelTopology;
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology, weightSpecs: m.weightSpecs, weightData: m.weightData }), { strict: !cut });
}
