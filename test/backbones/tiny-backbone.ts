/** A tiny seeded backbone for tests that fit or cache tokens quickly. */
import * as tf from '@tensorflow/tfjs';
import { tfjsLayersBackbone, type Backbone } from 'brainnet/backbones';

/** A seeded 3-layer conv net on 32x32 images: grids 16, 8, 4 with 4, 6, 8 channels; `name` keys its token caches. */
export function tinyBackbone(name: string): Backbone {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const input = tf.input({ shape: [32, 32, 3] });
  const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c1', kernelInitializer: init(1) }).apply(input);
  const c2 = tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c2', kernelInitializer: init(2) }).apply(c1);
  const c3 = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c3', kernelInitializer: init(3) }).apply(c2) as tf.SymbolicTensor;
  return tfjsLayersBackbone(tf.model({ inputs: input, outputs: c3 }), { name, layers: ['c1', 'c2', 'c3'], inputSize: [32, 32], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
}
