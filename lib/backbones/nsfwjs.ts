/**
 * The one loader of the built-in weights: the ImageNet-initialised Keras InceptionV3 and MobileNetV2 that the
 * `nsfwjs@4` npm package bundles (MIT licence) as base64 inside `dist/models/<model>/*.min.js`, read with
 * `tf.io.fromMemory` (no network). Both views of a built-in backbone start here: the tokens of
 * `loadBuiltinBackbone` (builtin.ts) and the differentiable features of `builtinFeatureExtractor` (features.ts).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BackboneError } from './contract.js';

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

/** Loads a built-in backbone's whole Keras model (NHWC input, RGB on 0..1) from nsfwjs's base64-in-JS files; no network. */
export async function loadNsfwjsModel(which: BuiltinBackboneName): Promise<tf.LayersModel> {
  const sub = NSFWJS_DIRS[which];
  if (!sub) throw new BackboneError(`unknown built-in backbone '${which}'; choose one of ${Object.keys(NSFWJS_DIRS).join(', ')}`);
  const dir = path.join(nsfwjsModelsDir(), sub);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const m = require(path.join(dir, 'model.min.js')) as { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const group of m.weightsManifest) {
    specs.push(...group.weights);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    for (const p of group.paths) parts.push(Buffer.from(require(path.join(dir, `${p}.min.js`)) as string, 'base64'));
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: m.modelTopology, weightSpecs: specs, weightData }));
}
