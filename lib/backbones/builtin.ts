/**
 * Built-in offline backbones (the tokens view of the contract): InceptionV3 (299 x 299) and MobileNetV2
 * (224 x 224) from the weights that the `nsfwjs@4` npm package bundles (MIT licence; ImageNet-initialised
 * Keras applications fine-tuned by nsfwjs), loaded by nsfwjs.ts. Nothing is downloaded. Inputs are RGB
 * on 0..1 (mean 0, std 1), as nsfwjs feeds them. features.ts gives the same networks' differentiable view.
 *
 * Tapped layers, early to late (name: [h, w] x C at the native input size):
 * - inceptionv3 (11): max_pooling2d_1 73x73x64, max_pooling2d_2 35x35x192, mixed0 35x35x256,
 *   mixed1 35x35x288, mixed2 35x35x288, mixed3 17x17x768, mixed5 17x17x768, mixed7 17x17x768,
 *   mixed8 8x8x1280, mixed9 8x8x2048, mixed10 8x8x2048 (the stem's two pools, then every
 *   Inception block except mixed4/mixed6, which repeat their neighbours' shapes).
 * - mobilenetv2 (10): expanded_conv_project_BN 112x112x16, block_2_add 56x56x24, block_5_add 28x28x32,
 *   block_7_add 14x14x64, block_9_add 14x14x64, block_12_add 14x14x96, block_14_add 7x7x160,
 *   block_15_add 7x7x160, block_16_project_BN 7x7x320, out_relu 7x7x1280 (the end of each resolution
 *   stage plus the residual outputs in between, and the final 1280-wide feature map).
 * Local tokens are the tapped maps as [B, C, h, w]; global tokens are their global average pool [B, C].
 *
 * Two engines run the same weights (README "Backbones and the token cache" says why and how fast):
 * - 'onnxruntime' (default): the Keras graph, cut to the tapped layers, converted to ONNX in memory at load
 *   (keras-to-onnx.ts; no file, no download) and run by onnxruntime-node's CPU provider on every core.
 *   Its outputs match tfjs-layers' to 1e-4 at every tapped layer (test/backbones/builtin-onnx.test.ts).
 *   Backbone name `<name>@nsfwjs4+ort<version>`: its last bits differ from tfjs's, so token caches differ.
 * - 'tfjs': tfjs-layers on the backend initBackend picks (wasm: one thread in Node); name `<name>@nsfwjs4`.
 * Both take a smaller `inputSize` (the tapped grids shrink; the ONNX graph is built for that size).
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { initBackend } from '../compute/index.js';
import { Backbone, BackboneError, BackboneTokens, checkBackboneDeclaration, checkImages } from './contract.js';
import { kerasLayers, kerasToOnnx } from './keras-to-onnx.js';
import { decodeTfjsWeights, loadNsfwjsModel, readNsfwjsModel, type BuiltinBackboneName } from './nsfwjs.js';
import { loadOnnxBackbone } from './onnx-backbone.js';

interface BuiltinSpec {
  inputSize: [number, number];
  layers: string[];
}

/** The documented default taps of each built-in backbone (see the file comment for shapes). */
export const BUILTIN_BACKBONES: Record<BuiltinBackboneName, BuiltinSpec> = {
  inceptionv3: {
    inputSize: [299, 299],
    layers: ['max_pooling2d_1', 'max_pooling2d_2', 'mixed0', 'mixed1', 'mixed2', 'mixed3', 'mixed5', 'mixed7', 'mixed8', 'mixed9', 'mixed10'],
  },
  mobilenetv2: {
    inputSize: [224, 224],
    layers: [
      'expanded_conv_project_BN', 'block_2_add', 'block_5_add', 'block_7_add', 'block_9_add',
      'block_12_add', 'block_14_add', 'block_15_add', 'block_16_project_BN', 'out_relu',
    ],
  },
};

/** What runs a built-in backbone: onnxruntime-node's CPU provider (every core) or tfjs-layers (initBackend's backend). */
export type BuiltinEngine = 'onnxruntime' | 'tfjs';

/** Options of {@link loadBuiltinBackbone}. */
export interface BuiltinBackboneOptions {
  /** Layers to tap instead of the documented defaults (any layer names of the Keras model). */
  layers?: string[];
  /** 'onnxruntime' (default; every core) or 'tfjs' (the backend initBackend picks; one thread on wasm). */
  engine?: BuiltinEngine;
  /** Input side, or `[H, W]` (default the native 299 or 224). Smaller is faster; the tapped grids shrink with it. */
  inputSize?: number | [number, number];
  /** onnxruntime's intra-op threads (default: every core, `os.availableParallelism()`); the numbers do not depend on it. */
  threads?: number;
}

/** The smallest input side each built-in backbone takes (every valid convolution and pool keeps at least one cell). */
export const BUILTIN_MIN_INPUT: Record<BuiltinBackboneName, number> = { inceptionv3: 75, mobilenetv2: 32 };

/** Options of {@link tfjsLayersBackbone}. */
export interface TfjsLayersBackboneOptions {
  name: string;
  /** Layer names to tap (outputs NHWC `[B, h, w, C]`). */
  layers: string[];
  inputSize: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
}

/** Wraps any tfjs layers model taking NHWC images as a Backbone tapping `layers` (local NHWC -> [B, C, h, w], global = mean over h, w). */
export function tfjsLayersBackbone(model: tf.LayersModel, opts: TfjsLayersBackboneOptions): Backbone {
  const outputs = opts.layers.map((name) => {
    let layer: tf.layers.Layer;
    try {
      layer = model.getLayer(name);
    } catch {
      const some = model.layers.map((l) => l.name);
      throw new BackboneError(`backbone ${opts.name}: no layer '${name}' in the model. Layers include: ${some.slice(0, 12).join(', ')}, ... ${some.slice(-6).join(', ')} (${some.length} in all).`);
    }
    const out = layer.output as tf.SymbolicTensor;
    if (Array.isArray(out) || out.shape.length !== 4) {
      throw new BackboneError(`backbone ${opts.name}: layer '${name}' outputs shape ${JSON.stringify(Array.isArray(out) ? out.map((o) => o.shape) : out.shape)}, not a [B, h, w, C] feature map; tap a convolutional layer.`);
    }
    return out;
  });
  const tap = tf.model({ inputs: model.inputs, outputs });
  const [H, W] = opts.inputSize;
  const inShape = model.inputs[0]!.shape;
  const grids = outputs.map((o) => [o.shape[1], o.shape[2]] as [number, number]);
  const fixedInput = inShape[1] != null && inShape[2] != null;
  if (fixedInput && (inShape[1] !== H || inShape[2] !== W)) {
    throw new BackboneError(`backbone ${opts.name}: the model's input is ${inShape[1]}x${inShape[2]} but inputSize is ${H}x${W}.`);
  }
  if (grids.some(([h, w]) => h == null || w == null)) {
    throw new BackboneError(`backbone ${opts.name}: the model has no fixed input size, so the tapped grids are unknown; give the model a fixed input shape.`);
  }
  const bb: Backbone = {
    name: opts.name,
    inputSize: [H, W],
    mean: opts.mean,
    std: opts.std,
    layers: [...opts.layers],
    channels: outputs.map((o) => o.shape[3] as number),
    grids,
    async getTokens(images: tf.Tensor4D): Promise<BackboneTokens> {
      checkImages(bb, images);
      return tf.tidy(() => {
        const nhwc = tf.transpose(images, [0, 2, 3, 1]);
        let outs = tap.predict(nhwc) as tf.Tensor4D | tf.Tensor4D[];
        if (!Array.isArray(outs)) outs = [outs];
        const local: Record<string, tf.Tensor4D> = {};
        const global: Record<string, tf.Tensor2D> = {};
        outs.forEach((o, i) => {
          const name = bb.layers[i]!;
          local[name] = tf.transpose(o, [0, 3, 1, 2]);
          global[name] = tf.mean(o, [1, 2]) as tf.Tensor2D;
        });
        return { local, global } as unknown as tf.TensorContainerObject;
      }) as unknown as BackboneTokens;
    },
    dispose() {
      model.dispose();
    },
  };
  checkBackboneDeclaration(bb);
  return bb;
}

/**
 * Loads a built-in offline backbone ('inceptionv3' 299^2 or 'mobilenetv2' 224^2) from nsfwjs@4's bundled
 * weights, run by onnxruntime-node on every core (default) or by tfjs (`engine: 'tfjs'`); `inputSize` makes
 * it take smaller images. Images: RGB on 0..1 (mean 0, std 1), `[B, 3, H, W]`.
 */
export async function loadBuiltinBackbone(which: BuiltinBackboneName, opts: BuiltinBackboneOptions = {}): Promise<Backbone> {
  const spec = BUILTIN_BACKBONES[which];
  if (!spec) {
    throw new BackboneError(`unknown built-in backbone '${which}'; choose one of ${Object.keys(BUILTIN_BACKBONES).join(', ')}, or load an ONNX model with loadOnnxBackbone.`);
  }
  const engine = opts.engine ?? 'onnxruntime';
  if (engine !== 'onnxruntime' && engine !== 'tfjs') throw new BackboneError(`loadBuiltinBackbone: unknown engine '${String(engine)}'; use 'onnxruntime' or 'tfjs'.`);
  const size: [number, number] = typeof opts.inputSize === 'number' ? [opts.inputSize, opts.inputSize] : opts.inputSize ?? spec.inputSize;
  const min = BUILTIN_MIN_INPUT[which];
  if (!(size.length === 2 && size.every((v) => Number.isInteger(v) && v >= min))) {
    throw new BackboneError(`loadBuiltinBackbone('${which}'): inputSize ${JSON.stringify(opts.inputSize)} must be a whole number of pixels (or [H, W]) of at least ${min}; the default is ${spec.inputSize[0]}.`);
  }
  const layers = opts.layers ?? spec.layers;
  const native = size[0] === spec.inputSize[0] && size[1] === spec.inputSize[1];
  // a smaller input is part of the network's identity (token caches and worlds are keyed by the name)
  const sizeTag = native ? '' : `@${size[0] === size[1] ? size[0] : `${size[0]}x${size[1]}`}`;
  await initBackend();
  if (engine === 'tfjs') {
    const model = await loadNsfwjsModel(which, native ? undefined : { outputs: layers, inputSize: size });
    try {
      return tfjsLayersBackbone(model, { name: `${which}@nsfwjs4${sizeTag}`, layers, inputSize: size, mean: [0, 0, 0], std: [1, 1, 1] });
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  const files = readNsfwjsModel(which);
  const name = `${which}@nsfwjs4${sizeTag}+ort${ort.env.versions.common}`;
  const conv = kerasToOnnx(kerasLayers(files.modelTopology, which), decodeTfjsWeights(files.weightSpecs, files.weightData, `${which} (${files.source})`), {
    outputs: layers, inputSize: size, name,
  });
  const threads = opts.threads ?? os.availableParallelism();
  if (!(Number.isInteger(threads) && threads >= 1)) throw new BackboneError(`loadBuiltinBackbone('${which}'): threads must be a positive whole number, got ${String(opts.threads)}.`);
  return loadOnnxBackbone(conv.bytes, {
    name,
    layers: conv.outputs.map((o) => ({ output: o.name, kind: 'feature-map' as const, channels: o.shape[0] })),
    inputSize: size,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
  });
}
