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

/** Options of {@link loadNsfwjsModel}. */
export interface NsfwjsModelOptions {
  /** Input side in pixels instead of the native one (299 InceptionV3, 224 MobileNetV2): the convolutional part is rebuilt for it. */
  inputSize?: number;
  /** Keep the layers up to this one, or up to the last of these in the model's order (the model's output); needed with `inputSize`, since the classifier head is built for the native size. */
  upTo?: string | string[];
}

/** Loads a built-in backbone's Keras model (NHWC input, RGB on 0..1) from nsfwjs's base64-in-JS files; no network. With `inputSize`, the layers up to `upTo` rebuilt for that input side, with the same weights. */
export async function loadNsfwjsModel(which: BuiltinBackboneName, opts: NsfwjsModelOptions = {}): Promise<tf.LayersModel> {
  const full = await loadNsfwjsFull(which);
  if (opts.inputSize === undefined && opts.upTo === undefined) return full;
  try {
    return await rebuildModel(full, opts);
  } finally {
    full.dispose();
  }
}

/** The model's layers up to `upTo` (default: all but a classifier head) with input side `inputSize`, weights copied layer by layer. */
async function rebuildModel(model: tf.LayersModel, opts: NsfwjsModelOptions): Promise<tf.LayersModel> {
  const topology = JSON.parse(JSON.stringify(model.toJSON(null, false))) as { config: { layers: { name: string; class_name: string; config: Record<string, unknown> }[]; output_layers: unknown[] } };
  const cfg = topology.config;
  const inShape = model.inputs[0]!.shape;
  const size = opts.inputSize ?? (inShape[1] as number);
  if (!Number.isInteger(size) || size < 32) throw new BackboneError(`inputSize must be an integer >= 32 (pixels), got ${opts.inputSize}`);
  const wanted = opts.upTo === undefined ? [cfg.layers[cfg.layers.length - 1]!.name] : Array.isArray(opts.upTo) ? opts.upTo : [opts.upTo];
  const names = cfg.layers.map((l) => l.name);
  const missing = wanted.filter((n) => !names.includes(n));
  if (missing.length) throw new BackboneError(`no layer '${missing.join("', '")}' in the built-in model. Layers include: ${names.slice(0, 12).join(', ')}, ... ${names.slice(-6).join(', ')} (${names.length} in all).`);
  const end = Math.max(...wanted.map((n) => names.indexOf(n)));
  const upTo = names[end]!;
  cfg.layers = cfg.layers.slice(0, end + 1);
  for (const l of cfg.layers) if (l.class_name === 'InputLayer') l.config.batch_input_shape = [null, size, size, 3];
  cfg.output_layers = [[upTo, 0, 0]];
  let rebuilt: tf.LayersModel;
  try {
    rebuilt = await tf.models.modelFromJSON({ modelTopology: topology } as unknown as tf.io.ModelJSON);
  } catch (e) {
    throw new BackboneError(`the built-in model cannot run at ${size}x${size} up to '${upTo}': ${(e as Error).message}; use a larger inputSize`);
  }
  for (const l of rebuilt.layers) {
    const w = model.getLayer(l.name).getWeights();
    if (w.length) l.setWeights(w);
  }
  return rebuilt;
}

async function loadNsfwjsFull(which: BuiltinBackboneName): Promise<tf.LayersModel> {
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
