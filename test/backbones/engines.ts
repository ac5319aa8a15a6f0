/** Helpers of the built-in engines' tests (builtin-onnx.test.ts and .slow.ts): seeded images and the engine comparison. */
import * as assert from 'node:assert/strict';
import { loadBuiltinBackbone, tf } from 'brainnet';
import { Backbone, BackboneTokens, getCheckedTokens } from 'brainnet/backbones';

/** Seeded images on 0..1, `[B, 3, H, W]`, with some structure (a gradient plus noise). */
export function images(B: number, H: number, W: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const noise = tf.randomUniform([B, 3, H, W], 0, 1, 'float32', seed);
    const ramp = tf.linspace(0, 1, W).reshape([1, 1, 1, W]);
    return tf.add(tf.mul(noise, 0.6), tf.mul(ramp, 0.4)) as tf.Tensor4D;
  });
}

/** Largest |a - b| over every layer's local and global tokens, per layer. */
function maxDiffs(bb: Backbone, a: BackboneTokens, b: BackboneTokens): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of bb.layers) {
    out[l] = tf.tidy(() => Math.max(
      tf.max(tf.abs(tf.sub(a.local[l]!, b.local[l]!))).dataSync()[0]!,
      tf.max(tf.abs(tf.sub(a.global[l]!, b.global[l]!))).dataSync()[0]!,
    ));
  }
  return out;
}

/** Loads both engines, runs the same images through them, and checks every tapped layer to `tol`. */
export async function compareEngines(which: 'mobilenetv2' | 'inceptionv3', size: number | undefined, B: number, tol: number): Promise<Record<string, number>> {
  const onnx = await loadBuiltinBackbone(which, { inputSize: size });
  const tfjs = await loadBuiltinBackbone(which, { inputSize: size, engine: 'tfjs' });
  try {
    assert.deepEqual(onnx.layers, tfjs.layers);
    assert.deepEqual(onnx.channels, tfjs.channels);
    assert.deepEqual(onnx.grids, tfjs.grids, 'the converted graph has tfjs-layers\' grids');
    const x = images(B, onnx.inputSize[0], onnx.inputSize[1], 7);
    const a = await getCheckedTokens(onnx, x);
    const b = await getCheckedTokens(tfjs, x);
    const d = maxDiffs(onnx, a, b);
    for (const [l, v] of Object.entries(d)) assert.ok(v < tol, `${which}${size ? ` at ${size}` : ''}: layer ${l} differs by ${v} (tolerance ${tol})`);
    // and the tokens are not trivially equal (e.g. all zeros)
    const last = onnx.layers.at(-1)!;
    assert.ok(tf.tidy(() => tf.max(tf.abs(a.global[last]!)).dataSync()[0]!) > 0.01);
    tf.dispose([x, ...Object.values(a.local), ...Object.values(a.global), ...Object.values(b.local), ...Object.values(b.global)]);
    return d;
  } finally {
    await onnx.dispose();
    await tfjs.dispose();
  }
}

