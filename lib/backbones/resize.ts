/**
 * Resizing images [N, C, H, W] to a network's input side, differentiably on every backend (two plain
 * matmuls, so tf.grad works on wasm too): what every image featuriser and classifier does first.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Bilinear resampling weights [outSize, inSize] (half-pixel centres, as torch's align_corners=False);
 * with antialias, downsampling widens the triangle filter by the scale (torch/PIL antialias=True).
 */
export function bilinearWeights(inSize: number, outSize: number, antialias = true): Float32Array {
  const scale = inSize / outSize;
  const support = antialias && scale > 1 ? scale : 1;
  const w = new Float32Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    let total = 0;
    const lo = Math.max(0, Math.floor(center - support - 1));
    const hi = Math.min(inSize - 1, Math.ceil(center + support + 1));
    for (let j = lo; j <= hi; j++) {
      const v = Math.max(0, 1 - Math.abs((j + 0.5 - center) / support));
      w[i * inSize + j] = v;
      total += v;
    }
    for (let j = lo; j <= hi; j++) w[i * inSize + j]! /= total;
  }
  return w;
}

/** Resizes images [N,C,H,W] to [N,C,outH,outW] with two matmuls (bilinear, antialiased when shrinking); differentiable on every backend. */
export function resizeBilinearNCHW(x: tf.Tensor4D, outH: number, outW: number, antialias = true): tf.Tensor4D {
  return tf.tidy(() => {
    const [N, C, H, W] = x.shape;
    // transposed weights [in, out] so that both matmuls take plain operands
    const rxT = tf.transpose(tf.tensor2d(bilinearWeights(W, outW, antialias), [outW, W]));
    const ryT = tf.transpose(tf.tensor2d(bilinearWeights(H, outH, antialias), [outH, H]));
    const a = tf.reshape(tf.matMul(tf.reshape(x, [N * C * H, W]), rxT), [N * C, H, outW]);
    const b = tf.reshape(tf.transpose(a, [0, 2, 1]), [N * C * outW, H]);
    const c = tf.reshape(tf.matMul(b, ryT), [N * C, outW, outH]);
    return tf.reshape(tf.transpose(c, [0, 2, 1]), [N, C, outH, outW]) as tf.Tensor4D;
  });
}
