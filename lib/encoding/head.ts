/**
 * The fused read-out of the factorized model: bilinear sampling at each vertex's (x, y), the layer
 * mix, the local/global scale mix and the per-vertex linear head, with a hand-written gradient.
 *
 *   pred[b, n] = 1/D * sum_d w[n, d] * ( (1 - s[n]) * sum_l p[n, l] * sum_k c[n, k] * T[l, b, pos_k(n), d]
 *                                       +      s[n]  * sum_l p[n, l] * G[l, b, d] )
 *
 * The naive form builds [B, N, D, L]. Here vertices are grouped by the grid cell their (x, y)
 * falls in (all vertices of a cell share the same 4 bilinear corners, at most (g+1)^2 cells), and
 * for each cell one plain matmul  w_cell [n, D] @ M_cell [D, B*5*L]  gives every vertex's dot
 * product with the 4 corner tokens and the global token of every image and layer. The layer mix,
 * corner weights and scale are then per-vertex weighted sums in JavaScript. The backward pass is
 * two more plain matmuls per cell. Sampling follows torch.nn.functional.grid_sample with
 * mode 'bilinear', padding_mode 'zeros', align_corners false.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from './ops.js';

/** Where the 4 bilinear corners of each vertex fall on a g x g grid, and their weights. */
export interface BilinearPlan {
  /** Cell of each vertex, (y0 + 1) * (g + 1) + (x0 + 1), in [0, (g+1)^2). */
  cell: Int32Array;
  /** Corner weights [N, 4]: (y0,x0), (y0,x0+1), (y0+1,x0), (y0+1,x0+1). */
  weights: Float32Array;
  /** Fractional offsets [N, 2]: (x - x0, y - y0) in grid units. */
  frac: Float32Array;
  /** Vertices sorted by cell (a permutation of 0..N-1). */
  order: Int32Array;
  /** Start of each cell's run in `order` ([(g+1)^2 + 1]). */
  cellStart: Int32Array;
}

/** Plans bilinear sampling of a g x g grid at xy [N, 2] in [-1, 1] (x: width, y: height; align_corners false). */
export function planBilinear(xy: Float32Array, grid: number): BilinearPlan {
  const n = xy.length / 2;
  const side = grid + 1;
  const cell = new Int32Array(n);
  const weights = new Float32Array(n * 4);
  const frac = new Float32Array(n * 2);
  const counts = new Int32Array(side * side + 1);
  for (let i = 0; i < n; i++) {
    const ix = ((xy[2 * i]! + 1) * grid - 1) / 2;
    const iy = ((xy[2 * i + 1]! + 1) * grid - 1) / 2;
    let x0 = Math.floor(ix);
    let y0 = Math.floor(iy);
    // tanh keeps (x, y) inside (-1, 1); clamp anyway so a caller's out-of-range point reads zeros.
    if (x0 < -1) x0 = -1;
    if (x0 > grid - 1) x0 = grid - 1;
    if (y0 < -1) y0 = -1;
    if (y0 > grid - 1) y0 = grid - 1;
    const fx = ix - x0;
    const fy = iy - y0;
    frac[2 * i] = fx;
    frac[2 * i + 1] = fy;
    weights[4 * i] = (1 - fy) * (1 - fx);
    weights[4 * i + 1] = (1 - fy) * fx;
    weights[4 * i + 2] = fy * (1 - fx);
    weights[4 * i + 3] = fy * fx;
    const c = (y0 + 1) * side + (x0 + 1);
    cell[i] = c;
    counts[c + 1]!++;
  }
  const cellStart = new Int32Array(side * side + 1);
  for (let c = 0; c < side * side; c++) cellStart[c + 1] = cellStart[c]! + counts[c + 1]!;
  const fill = cellStart.slice(0, side * side);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[fill[cell[i]!]!++] = i;
  return { cell, weights, frac, order, cellStart };
}

/** Grid positions (y * g + x, or -1 outside the grid) of the 4 corners of cell `c`. */
export function cellCorners(c: number, grid: number): [number, number, number, number] {
  const side = grid + 1;
  const y0 = Math.floor(c / side) - 1;
  const x0 = (c % side) - 1;
  const at = (y: number, x: number) => (y >= 0 && y < grid && x >= 0 && x < grid ? y * grid + x : -1);
  return [at(y0, x0), at(y0, x0 + 1), at(y0 + 1, x0), at(y0 + 1, x0 + 1)];
}

/** Sizes the fused head needs. */
export interface HeadDims {
  /** Layers L. */
  layers: number;
  /** Batch B. */
  batch: number;
  /** Token grid side g (positions g*g). */
  grid: number;
  /** Bottleneck width D. */
  dim: number;
  /** Vertices N. */
  vertices: number;
}

/** Tokens read per vertex and image: the 4 bilinear corners and the global token. */
export const HEAD_J = 5;

/** Columns K = B * 5 * L of a cell's token matrix M_c [D, K], ordered (b, j, l). */
export function headColumns(d: HeadDims): number {
  return d.batch * HEAD_J * d.layers;
}

/**
 * Writes cell `cc`'s token matrix M_c [D, K] into `M`: column (b, j, l) is T[l, b, corner j] (zeros for a
 * corner outside the grid) for j < 4 and G[l, b] for j = 4. T [L, B, P, D], G [L, B, D].
 */
export function fillCellTokens(M: Float32Array, T: Float32Array, G: Float32Array, cc: readonly number[], d: HeadDims): void {
  const { batch: B, layers: L, dim: D } = d;
  const P = d.grid * d.grid;
  const K = headColumns(d);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < HEAD_J; j++) {
      const pos = j < 4 ? cc[j]! : -2;
      for (let l = 0; l < L; l++) {
        const col = (b * HEAD_J + j) * L + l;
        if (pos === -1) {
          for (let dd = 0; dd < D; dd++) M[dd * K + col] = 0;
          continue;
        }
        const src = pos === -2 ? (l * B + b) * D : ((l * B + b) * P + pos) * D;
        const arr = pos === -2 ? G : T;
        for (let dd = 0; dd < D; dd++) M[dd * K + col] = arr[src + dd]!;
      }
    }
  }
}

/** Adds cell `cc`'s gradient dM_c [D, K] into dT [L, B, P, D] and dG [L, B, D] (the transpose of {@link fillCellTokens}). */
export function addCellGrads(dM: Float32Array, cc: readonly number[], d: HeadDims, dT: Float32Array, dG: Float32Array): void {
  const { batch: B, layers: L, dim: D } = d;
  const P = d.grid * d.grid;
  const K = headColumns(d);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < HEAD_J; j++) {
      const pos = j < 4 ? cc[j]! : -2;
      if (pos === -1) continue;
      for (let l = 0; l < L; l++) {
        const col = (b * HEAD_J + j) * L + l;
        const dst = pos === -2 ? (l * B + b) * D : ((l * B + b) * P + pos) * D;
        const arr = pos === -2 ? dG : dT;
        for (let dd = 0; dd < D; dd++) arr[dst + dd]! += dM[dd * K + col]!;
      }
    }
  }
}

/** Rows of `src` [N, width] in the plan's cell order, into `out` [N, width]. */
export function rowsInCellOrder(src: Float32Array, width: number, order: Int32Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let r = 0; r < order.length; r++) out.set(src.subarray(order[r]! * width, order[r]! * width + width), r * width);
  return out;
}

/**
 * The layer mix after the cell matmuls: Y [N sorted, K] (each vertex's dot products with its cell's
 * K = B * 5 * L token rows) and layer weights p [N, L] -> R [N sorted, B * 5], R[n, (b, j)] =
 * sum_l p[n, l] Y[n, (b, j, l)].
 */
export function layerMix(Y: Float32Array, pv: Float32Array, plan: BilinearPlan, d: HeadDims): Float32Array {
  const { batch: B, layers: L, vertices: N } = d;
  const K = headColumns(d);
  const BJ = B * HEAD_J;
  const R = new Float32Array(N * BJ);
  for (let r = 0; r < N; r++) {
    const yo = r * K;
    const po = plan.order[r]! * L;
    for (let q = 0; q < BJ; q++) {
      let acc = 0;
      const o = yo + q * L;
      for (let l = 0; l < L; l++) acc += pv[po + l]! * Y[o + l]!;
      R[r * BJ + q] = acc;
    }
  }
  return R;
}

/** The prediction from the layer-mixed dot products R [N sorted, B * 5]: corner weights, then the local/global scale s [N]: pred [B, N] (no bias). */
export function readout(R: Float32Array, sv: Float32Array, plan: BilinearPlan, d: HeadDims, pred: Float32Array = new Float32Array(d.batch * d.vertices)): Float32Array {
  const { batch: B, dim: D, vertices: N } = d;
  const BJ = B * HEAD_J;
  const cw = plan.weights;
  for (let r = 0; r < N; r++) {
    const n = plan.order[r]!;
    const sn = sv[n]!;
    for (let b = 0; b < B; b++) {
      const o = r * BJ + b * HEAD_J;
      const loc = cw[4 * n]! * R[o]! + cw[4 * n + 1]! * R[o + 1]! + cw[4 * n + 2]! * R[o + 2]! + cw[4 * n + 3]! * R[o + 3]!;
      pred[b * N + n] = ((1 - sn) * loc + sn * R[o + 4]!) / D;
    }
  }
  return pred;
}

/** Output buffers of {@link readoutGrads} (reused across steps by the host step). */
export interface ReadoutGrads {
  /** [N sorted, B * 5] the gradient of R. */
  E: Float32Array;
  /** [N] */
  ds: Float32Array;
  /** [N, 2] */
  dxy: Float32Array;
}

/** Gradients of {@link readout}: dy [B, N] -> dR = E [N sorted, B * 5], ds [N], dxy [N, 2] (through the corner weights). Writes into `out` when given. */
export function readoutGrads(dy: Float32Array, R: Float32Array, sv: Float32Array, plan: BilinearPlan, d: HeadDims, out?: ReadoutGrads): ReadoutGrads {
  const { batch: B, dim: D, vertices: N, grid } = d;
  const J = HEAD_J;
  const BJ = B * J;
  const E = out?.E ?? new Float32Array(N * BJ);
  const ds = out?.ds ?? new Float32Array(N);
  const dxy = out?.dxy ?? new Float32Array(N * 2);
  const cw = plan.weights;
  for (let r = 0; r < N; r++) {
    const n = plan.order[r]!;
    const sn = sv[n]!;
    const c0 = cw[4 * n]!, c1 = cw[4 * n + 1]!, c2 = cw[4 * n + 2]!, c3 = cw[4 * n + 3]!;
    let dsn = 0;
    let dc0 = 0, dc1 = 0, dc2 = 0, dc3 = 0;
    for (let b = 0; b < B; b++) {
      const e = dy[b * N + n]! / D;
      const o = r * BJ + b * J;
      const r0 = R[o]!, r1 = R[o + 1]!, r2 = R[o + 2]!, r3 = R[o + 3]!;
      dsn += e * (R[o + 4]! - (c0 * r0 + c1 * r1 + c2 * r2 + c3 * r3));
      dc0 += e * r0;
      dc1 += e * r1;
      dc2 += e * r2;
      dc3 += e * r3;
      const el = e * (1 - sn);
      E[o] = el * c0;
      E[o + 1] = el * c1;
      E[o + 2] = el * c2;
      E[o + 3] = el * c3;
      E[o + 4] = e * sn;
    }
    ds[n] = dsn;
    // Corner weights -> grid coordinates -> (x, y): d ix / d x = g / 2.
    const fx = plan.frac[2 * n]!;
    const fy = plan.frac[2 * n + 1]!;
    dc0 *= 1 - sn;
    dc1 *= 1 - sn;
    dc2 *= 1 - sn;
    dc3 *= 1 - sn;
    const dix = (1 - fy) * (dc1 - dc0) + fy * (dc3 - dc2);
    const diy = (1 - fx) * (dc2 - dc0) + fx * (dc3 - dc1);
    dxy[2 * n] = (dix * grid) / 2;
    dxy[2 * n + 1] = (diy * grid) / 2;
  }
  return { E, ds, dxy };
}

/** Gradients of {@link layerMix}: E [N sorted, B * 5] -> dY [N sorted, K] = E (x) p and dp [N, L] = sum_q E Y. */
export function layerMixGrads(E: Float32Array, Y: Float32Array, pv: Float32Array, plan: BilinearPlan, d: HeadDims): { dYs: Float32Array; dp: Float32Array } {
  const { batch: B, layers: L, vertices: N } = d;
  const K = headColumns(d);
  const BJ = B * HEAD_J;
  const dp = new Float32Array(N * L);
  const dYs = new Float32Array(N * K);
  const acc = new Float64Array(L);
  for (let r = 0; r < N; r++) {
    const po = plan.order[r]! * L;
    const yo = r * K;
    acc.fill(0);
    for (let q = 0; q < BJ; q++) {
      const eq = E[r * BJ + q]!;
      const o = yo + q * L;
      for (let l = 0; l < L; l++) {
        acc[l]! += eq * Y[o + l]!;
        dYs[o + l] = eq * pv[po + l]!;
      }
    }
    for (let l = 0; l < L; l++) dp[po + l] = acc[l]!;
  }
  return { dYs, dp };
}

/** Plain matmul a [m, k] @ b [k, p] on the active backend, returned as a Float32Array. */
function mm(a: Float32Array, m: number, k: number, b: Float32Array, p: number): Float32Array {
  // No tf.tidy here: on the wasm backend a dataSync() inside tidy is about 100x slower.
  const x = tf.tensor2d(a, [m, k]);
  const y = tf.tensor2d(b, [k, p]);
  const o = tf.matMul(x, y);
  const out = o.dataSync() as Float32Array;
  tf.dispose([x, y, o]);
  return out;
}

/** Matrix transpose: a [m, n] -> [n, m]. */
function transpose(a: Float32Array, m: number, n: number): Float32Array {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = a[i * n + j]!;
  return out;
}

/**
 * The fused read-out (no bias): tokens [L, B, g*g, D], globals [L, B, D], w [N, D], p [N, L],
 * s [N], xy [N, 2] -> pred [B, N]. Differentiable in every input; the cell matmuls run on the active
 * tfjs backend.
 */
export function fusedHead(tokens: tf.Tensor, globals: tf.Tensor, w: tf.Tensor, p: tf.Tensor, s: tf.Tensor, xy: tf.Tensor): tf.Tensor2D {
  const [L, B, P, D] = tokens.shape as [number, number, number, number];
  const dims: HeadDims = { layers: L, batch: B, grid: Math.round(Math.sqrt(P)), dim: D, vertices: w.shape[0]! };
  const f = customOp(([tT, gT, wT, pT, sT, xyT]) => {
    const T = tT!.dataSync() as Float32Array;
    const G = gT!.dataSync() as Float32Array;
    const pv = pT!.dataSync() as Float32Array;
    const sv = sT!.dataSync() as Float32Array;
    const plan = planBilinear(xyT!.dataSync() as Float32Array, dims.grid);
    const Ws = rowsInCellOrder(wT!.dataSync() as Float32Array, D, plan.order);
    const { Ms, Y } = cellMatmuls(T, G, Ws, plan, dims);
    const R = layerMix(Y, pv, plan, dims);
    const pred = readout(R, sv, plan, dims);
    const gradFunc = (dyT: tf.Tensor) => {
      const g = readoutGrads(dyT.dataSync() as Float32Array, R, sv, plan, dims);
      const { dYs, dp } = layerMixGrads(g.E, Y, pv, plan, dims);
      const { dW, dT, dG } = cellMatmulGrads(dYs, Ms, Ws, plan, dims);
      return [
        tf.tensor(dT, [L, B, P, D]), tf.tensor(dG, [L, B, D]), tf.tensor(dW, [dims.vertices, D]),
        tf.tensor(dp, [dims.vertices, L]), tf.tensor(g.ds, sT!.shape), tf.tensor(g.dxy, [dims.vertices, 2]),
      ];
    };
    return { value: tf.tensor2d(pred, [B, dims.vertices]), gradFunc };
  });
  return f(tokens, globals, w, p, s, xy) as tf.Tensor2D;
}

/** Forward cell matmuls on tfjs: each non-empty cell's M_c [D, K] and Y [N sorted, K] = W_c @ M_c per cell. */
function cellMatmuls(T: Float32Array, G: Float32Array, Ws: Float32Array, plan: BilinearPlan, d: HeadDims): { Ms: (Float32Array | null)[]; Y: Float32Array } {
  const { dim: D, vertices: N } = d;
  const K = headColumns(d);
  const nCells = plan.cellStart.length - 1;
  const Y = new Float32Array(N * K);
  const Ms: (Float32Array | null)[] = new Array(nCells).fill(null);
  for (let c = 0; c < nCells; c++) {
    const r0 = plan.cellStart[c]!;
    const r1 = plan.cellStart[c + 1]!;
    if (r1 === r0) continue;
    const M = new Float32Array(D * K);
    fillCellTokens(M, T, G, cellCorners(c, d.grid), d);
    Ms[c] = M;
    Y.set(mm(Ws.subarray(r0 * D, r1 * D), r1 - r0, D, M, K), r0 * K);
  }
  return { Ms, Y };
}

/** Backward cell matmuls on tfjs: dW_c = dY_c @ M_c^T (unsorted into dW [N, D]) and dM_c = W_c^T @ dY_c (added into dT, dG). */
function cellMatmulGrads(dYs: Float32Array, Ms: (Float32Array | null)[], Ws: Float32Array, plan: BilinearPlan, d: HeadDims): { dW: Float32Array; dT: Float32Array; dG: Float32Array } {
  const { layers: L, batch: B, dim: D, vertices: N } = d;
  const K = headColumns(d);
  const dW = new Float32Array(N * D);
  const dT = new Float32Array(L * B * d.grid * d.grid * D);
  const dG = new Float32Array(L * B * D);
  Ms.forEach((M, c) => {
    if (!M) return;
    const r0 = plan.cellStart[c]!;
    const r1 = plan.cellStart[c + 1]!;
    const m = r1 - r0;
    const dWc = mm(dYs.subarray(r0 * K, r1 * K), m, K, transpose(M, D, K), D);
    for (let i = 0; i < m; i++) dW.set(dWc.subarray(i * D, i * D + D), plan.order[r0 + i]! * D);
    const dM = mm(transpose(Ws.subarray(r0 * D, r1 * D), m, D), D, m, dYs.subarray(r0 * K, r1 * K), K);
    addCellGrads(dM, cellCorners(c, d.grid), d, dT, dG);
  });
  return { dW, dT, dG };
}
