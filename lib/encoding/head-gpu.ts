/**
 * The read-out of the factorized model written only with tfjs ops that stay on the device (no
 * readbacks), for GPU backends (webgpu, tfjs-node-gpu). Same math as `fusedHead` (head.ts):
 *
 *   pred[b, n] = 1/D * sum_d w[n, d] * ( (1 - s[n]) * sum_l p[n, l] * sum_k c[n, k] * T[l, b, pos_k(n), d]
 *                                       +      s[n]  * sum_l p[n, l] * G[l, b, d] )
 *
 * Bilinear sampling (torch grid_sample, zeros padding, align_corners false) is a sparse-ish matrix
 * S [N, g*g + 1]: 4 corner weights times (1 - s), and s in the last column for the global token.
 * With the layer weights it gives A[n, (l, q)] = p[n, l] * S[n, q]  ([N, L * (g*g + 1)]), and
 *
 *   V [N, B*D] = A @ TG [(l, q), (b, d)]     (TG: tokens and globals side by side)
 *   pred[b, n] = 1/D * sum_d V[n, b, d] * w[n, d]
 *
 * so the largest intermediates are A (N * L * 65 floats: 118 MB at paper size) and V (N * B * D:
 * 155 MB at B = 8), never [B, N, D, L] (1.9 GB). Corner indices come from tf.floor on the device
 * and S from tf.oneHot. Gradients come from tfjs autodiff. `chunk` splits the vertices to bound
 * memory further.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from './ops.js';

/** Options of the device head. */
export interface DeviceHeadOptions {
  /** Vertices per chunk (default: all at once). Smaller chunks use less device memory. */
  chunk?: number;
}

/** Sampling matrix S [n, g*g + 1] for xy [n, 2] and scale s [n]: bilinear weights * (1 - s), then s. */
export function samplingMatrix(xy: tf.Tensor2D, s: tf.Tensor1D, grid: number): tf.Tensor2D {
  return tf.tidy(() => {
    const P = grid * grid;
    const n = xy.shape[0];
    const ix = tf.div(tf.sub(tf.mul(tf.add(xy, 1), grid), 1), 2); // [n, 2] grid coordinates (x, y)
    const cells = cornerCells(ix, grid); // [n, 6]: x0, y0 (floats) and the 4 corner columns (P: outside)
    const i0 = tf.slice(cells, [0, 0], [n, 2]);
    const f = tf.sub(ix, i0); // [n, 2] fractions (fx, fy); gradient 1 w.r.t. ix
    const [fx, fy] = tf.split(f, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
    const wgts = [
      tf.mul(tf.sub(1, fy), tf.sub(1, fx)),
      tf.mul(tf.sub(1, fy), fx),
      tf.mul(fy, tf.sub(1, fx)),
      tf.mul(fy, fx),
    ];
    const idx = tf.cast(tf.slice(cells, [0, 2], [n, 4]), 'int32');
    let local: tf.Tensor = tf.zeros([n, P]);
    wgts.forEach((wgt, k) => {
      const col = tf.reshape(tf.slice(idx, [0, k], [n, 1]), [n]) as tf.Tensor1D;
      const hot = tf.slice(tf.oneHot(col, P + 1), [0, 0], [n, P]); // column P (outside: zero padding) dropped
      local = tf.add(local, tf.mul(hot, wgt));
    });
    const s2 = tf.reshape(s, [n, 1]);
    return tf.concat([tf.mul(local, tf.sub(1, s2)), s2], 1) as tf.Tensor2D;
  });
}

/**
 * Integer part of grid coordinates ix [n, 2] -> [n, 6] float: x0, y0 (floor, clamped to [-1, g-1])
 * and the grid positions y*g + x of the corners (y0,x0), (y0,x0+1), (y0+1,x0), (y0+1,x0+1), or g*g
 * outside the grid. Piecewise constant: its gradient is zero.
 */
function cornerCells(ix: tf.Tensor, grid: number): tf.Tensor2D {
  const f = customOp(([t]) => {
    const value = tf.tidy(() => {
      const n = t!.shape[0]!;
      const i0 = tf.clipByValue(tf.floor(t!), -1, grid - 1);
      const [x0, y0] = tf.split(i0, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
      const x1 = tf.add(x0, 1);
      const y1 = tf.add(y0, 1);
      const pos = (y: tf.Tensor, x: tf.Tensor) => {
        const inside = tf.logicalAnd(
          tf.logicalAnd(tf.greaterEqual(y, 0), tf.less(y, grid)),
          tf.logicalAnd(tf.greaterEqual(x, 0), tf.less(x, grid)),
        );
        return tf.where(inside, tf.add(tf.mul(y, grid), x), tf.fill([n, 1], grid * grid));
      };
      return tf.concat([x0, y0, pos(y0, x0), pos(y0, x1), pos(y1, x0), pos(y1, x1)], 1) as tf.Tensor2D;
    });
    return { value, gradFunc: () => tf.zerosLike(t!) };
  });
  return f(ix) as tf.Tensor2D;
}

/** Tokens [L, B, P, D] and globals [L, B, D] as one matrix [(l, q), (b, d)] = [L*(P+1), B*D]. */
export function tokenMatrix(tokens: tf.Tensor, globals: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const [L, B, P, D] = tokens.shape as [number, number, number, number];
    const tg = tf.concat([tokens, tf.reshape(globals, [L, B, 1, D])], 2); // [L, B, P+1, D]
    return tf.reshape(tf.transpose(tg, [0, 2, 1, 3]), [L * (P + 1), B * D]) as tf.Tensor2D;
  });
}

/**
 * The read-out (no bias), device-resident: tokens [L, B, g*g, D], globals [L, B, D], w [N, D],
 * p [N, L], s [N], xy [N, 2] -> pred [B, N]. Differentiable in every input; no readbacks.
 */
export function deviceHead(
  tokens: tf.Tensor,
  globals: tf.Tensor,
  w: tf.Tensor,
  p: tf.Tensor,
  s: tf.Tensor,
  xy: tf.Tensor,
  opts: DeviceHeadOptions = {},
): tf.Tensor2D {
  const [L, B, P, D] = tokens.shape as [number, number, number, number];
  const grid = Math.round(Math.sqrt(P));
  if (grid * grid !== P) throw new Error(`deviceHead: tokens must be [L, B, g*g, D], found [${tokens.shape.join(', ')}] (${P} is not a square).`);
  const N = w.shape[0]!;
  const chunk = Math.max(1, Math.min(N, opts.chunk ?? N));
  // No tf.tidy here: the caller's gradient tape must see every op.
  const TG = tokenMatrix(tokens, globals); // [L*(P+1), B*D]
  const s1 = tf.reshape(s, [N]) as tf.Tensor1D;
  const parts: tf.Tensor2D[] = [];
  for (let n0 = 0; n0 < N; n0 += chunk) {
    const m = Math.min(chunk, N - n0);
    const sl = <T extends tf.Tensor>(t: T, cols: number) => (m === N ? t : (tf.slice(t, [n0, 0], [m, cols]) as T));
    const xyC = sl(xy as tf.Tensor2D, 2);
    const pC = sl(p as tf.Tensor2D, L);
    const wC = sl(w as tf.Tensor2D, D);
    const sC = m === N ? s1 : (tf.slice(s1, [n0], [m]) as tf.Tensor1D);
    const S = samplingMatrix(xyC, sC, grid); // [m, P+1]
    const A = tf.reshape(tf.mul(tf.reshape(pC, [m, L, 1]), tf.reshape(S, [m, 1, P + 1])), [m, L * (P + 1)]) as tf.Tensor2D;
    const V = tf.reshape(tf.matMul(A, TG), [m, B, D]); // [m, B, D]
    const pred = tf.div(tf.sum(tf.mul(V, tf.reshape(wC, [m, 1, D])), 2), D) as tf.Tensor2D; // [m, B]
    parts.push(pred);
  }
  const all = parts.length === 1 ? parts[0]! : (tf.concat(parts, 0) as tf.Tensor2D);
  return tf.transpose(all) as tf.Tensor2D; // [B, N]
}

/** Exact GELU x * Phi(x) with tf.erf, on the device (the wasm path computes it in JavaScript). */
export function deviceGelu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))))) as T;
}
