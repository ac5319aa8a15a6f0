/**
 * A Keras functional graph run with plain tfjs ops, so that gradients reach the image on every backend:
 * the differentiable path of the built-in MobileNetV2 features (features.ts). Weights are frozen, so only
 * input gradients are built (tfjs-layers' fused convolutions always build the filter gradient too, which
 * wasm lacks), and 1x1 and depthwise convolutions use the fast kernels of lib/compute.
 *
 * Layer configs: tfjs-layers' `getConfig()` reports camelCase keys (`maxValue`, `useBias`); Keras JSON uses snake_case
 * (`max_value`, `use_bias`). `configValue` reads either, so MobileNetV2's ReLU6 is capped at 6 as in tfjs-layers (an
 * earlier version read only snake_case and ran it as a plain ReLU, up to 33.7 off at out_relu).
 */
import * as tf from '@tensorflow/tfjs';
import { depthwiseConv2dFrozen, pointwiseConv2d } from '../compute/wasm-kernels.js';
import { BackboneError } from './contract.js';

/** A layer config value under its tfjs-layers camelCase key or its Keras snake_case key (e.g. 'maxValue' / 'max_value'). */
export function configValue(cfg: Record<string, unknown>, camel: string): unknown {
  if (camel in cfg) return cfg[camel];
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return cfg[snake];
}

/**
 * Runs a Keras functional model (Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, ZeroPadding2D, Add)
 * up to layer `tap` with plain tfjs ops, NHWC in -> NHWC out. Unlike tfjs-layers (fused convolutions,
 * whose gradient always computes the filter gradient, missing on wasm), only the input gradient is built.
 * `uncappedRelu6` reproduces the executor before the camelCase fix (every ReLU uncapped), only so that a model trained
 * on those features (feature version 1, see BUILTIN_FEATURE_VERSION in features.ts) still sees what it was trained on.
 */
export function layersExecutor(model: tf.LayersModel, tap: string, opts: { uncappedRelu6?: boolean } = {}): (x: tf.Tensor4D) => tf.Tensor4D {
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
      const b = configValue(cfg, 'useBias') ? w[1] : undefined;
      if (cfg.activation !== 'linear') throw new BackboneError(`layersExecutor: layer ${l.name} has activation ${String(cfg.activation)}; only linear is supported`);
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
      const mx = opts.uncappedRelu6 ? null : (configValue(cfg, 'maxValue') as number | null | undefined);
      f = (xs) => (mx != null ? tf.clipByValue(xs[0]!, 0, mx) : tf.relu(xs[0]!)) as tf.Tensor4D;
    } else if (cls === 'Add') f = (xs) => tf.addN(xs) as tf.Tensor4D;
    else throw new BackboneError(`layersExecutor: layer ${l.name} of class ${cls} is not supported`);
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
