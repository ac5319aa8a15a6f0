/**
 * The host step's JavaScript parts (onnx-step.ts), all O(N) per image: the read-out weights the cell
 * graphs take, the prediction and gradients in and out of their cell-blocked layout, the selectors'
 * activations, the loss and the regulariser. With the paper's symbols (model.ts):
 *
 *   pred[b, n] = sum_(j, l) A[n, j, l] Y[n, b, j, l] + bias[n],  Y[n, b, j, l] = w[n] . token_j(l, b),
 *   A[n, j, l] = a[n, j] p[n, l] / D,  a[n, j] = (1 - s[n]) c[n, j] (bilinear corner j < 4), a[n, 4] = s[n].
 *
 * Cell-blocked layout: the vertices of cell c are rows r0..r1 of the plan's order, and a per-cell block
 * [rows, r_c] of a buffer starts at rows * r0, vertices innermost.
 */
import type { BilinearPlan } from './head.js';

/** Tokens read per vertex and image: 4 bilinear corners and the global token. */
const J = 5;

/** The read-out weights A (cell-blocked [5 L, r_c], over D) from the plan's corner weights, the scale s [N] and the layer weights p [N, L]. */
export function readoutWeights(plan: BilinearPlan, sv: Float32Array, pv: Float32Array, L: number, D: number, out: Float32Array): Float32Array {
  const cw = plan.weights;
  const nCells = plan.cellStart.length - 1;
  for (let c = 0; c < nCells; c++) {
    const r0 = plan.cellStart[c]!;
    const rc = plan.cellStart[c + 1]! - r0;
    const base = J * L * r0;
    for (let i = 0; i < rc; i++) {
      const n = plan.order[r0 + i]!;
      const sn = sv[n]!;
      for (let j = 0; j < J; j++) {
        const aj = (j < 4 ? (1 - sn) * cw[4 * n + j]! : sn) / D;
        for (let l = 0; l < L; l++) out[base + (j * L + l) * rc + i] = aj * pv[n * L + l]!;
      }
    }
  }
  return out;
}

/** Cell-blocked [B, r_c] predictions -> pred [B, N] in vertex order, plus the bias [N]. */
export function predFromBlocks(blocks: Float32Array, plan: BilinearPlan, bias: Float32Array, B: number, pred: Float32Array): Float32Array {
  const N = bias.length;
  const nCells = plan.cellStart.length - 1;
  for (let c = 0; c < nCells; c++) {
    const r0 = plan.cellStart[c]!;
    const rc = plan.cellStart[c + 1]! - r0;
    for (let b = 0; b < B; b++) {
      const o = B * r0 + b * rc;
      for (let i = 0; i < rc; i++) {
        const n = plan.order[r0 + i]!;
        pred[b * N + n] = blocks[o + i]! + bias[n]!;
      }
    }
  }
  return pred;
}

/** dPred [B, N] in vertex order -> cell-blocked [B, r_c] (the head graph's dy_c). */
export function blocksFromGrad(dPred: Float32Array, plan: BilinearPlan, B: number, N: number, out: Float32Array): Float32Array {
  const nCells = plan.cellStart.length - 1;
  for (let c = 0; c < nCells; c++) {
    const r0 = plan.cellStart[c]!;
    const rc = plan.cellStart[c + 1]! - r0;
    for (let b = 0; b < B; b++) {
      const o = B * r0 + b * rc;
      for (let i = 0; i < rc; i++) out[o + i] = dPred[b * N + plan.order[r0 + i]!]!;
    }
  }
  return out;
}

/**
 * Gradients through A from dA (cell-blocked [5 L, r_c], the head graph's da_c): dp [N, L], ds [N] and
 * dxy [N, 2] (corner weights -> grid coordinates -> (x, y), d ix / d x = g / 2), written into the arrays given.
 */
export function readoutWeightGrads(
  dA: Float32Array, plan: BilinearPlan, sv: Float32Array, pv: Float32Array, o: { L: number; D: number; grid: number },
  out: { dp: Float32Array; ds: Float32Array; dxy: Float32Array },
): void {
  const { L, D, grid } = o;
  const cw = plan.weights;
  const da = new Float64Array(J);
  const nCells = plan.cellStart.length - 1;
  for (let c = 0; c < nCells; c++) {
    const r0 = plan.cellStart[c]!;
    const rc = plan.cellStart[c + 1]! - r0;
    const base = J * L * r0;
    for (let i = 0; i < rc; i++) {
      const n = plan.order[r0 + i]!;
      const sn = sv[n]!;
      for (let l = 0; l < L; l++) {
        let acc = 0;
        for (let j = 0; j < J; j++) acc += (j < 4 ? (1 - sn) * cw[4 * n + j]! : sn) * dA[base + (j * L + l) * rc + i]!;
        out.dp[n * L + l] = acc / D;
      }
      for (let j = 0; j < J; j++) {
        let acc = 0;
        for (let l = 0; l < L; l++) acc += pv[n * L + l]! * dA[base + (j * L + l) * rc + i]!;
        da[j] = acc / D;
      }
      out.ds[n] = da[4]! - (cw[4 * n]! * da[0]! + cw[4 * n + 1]! * da[1]! + cw[4 * n + 2]! * da[2]! + cw[4 * n + 3]! * da[3]!);
      const dc0 = (1 - sn) * da[0]!, dc1 = (1 - sn) * da[1]!, dc2 = (1 - sn) * da[2]!, dc3 = (1 - sn) * da[3]!;
      const fx = plan.frac[2 * n]!;
      const fy = plan.frac[2 * n + 1]!;
      out.dxy[2 * n] = (((1 - fy) * (dc1 - dc0) + fy * (dc3 - dc2)) * grid) / 2;
      out.dxy[2 * n + 1] = (((1 - fx) * (dc2 - dc0) + fx * (dc3 - dc1)) * grid) / 2;
    }
  }
}

/** xy = tanh(o_space) [N, 2], p = softmax(o_layer) [N, L], s = sigmoid(o_scale) [N]. */
export function activateSelectors(os: Float32Array, ol: Float32Array, oc: Float32Array, N: number, L: number): { xy: Float32Array; p: Float32Array; s: Float32Array } {
  const xy = new Float32Array(2 * N);
  for (let i = 0; i < 2 * N; i++) xy[i] = Math.tanh(os[i]!);
  const p = new Float32Array(N * L);
  for (let n = 0; n < N; n++) {
    let mx = -Infinity;
    for (let l = 0; l < L; l++) mx = Math.max(mx, ol[n * L + l]!);
    let sum = 0;
    for (let l = 0; l < L; l++) sum += (p[n * L + l] = Math.exp(ol[n * L + l]! - mx));
    for (let l = 0; l < L; l++) p[n * L + l]! /= sum;
  }
  const s = new Float32Array(N);
  for (let n = 0; n < N; n++) s[n] = 1 / (1 + Math.exp(-oc[n]!));
  return { xy, p, s };
}

/** Smooth L1 (beta 0.1, mean) of pred - y and its gradient with respect to pred, written into `dPred`. */
export function smoothL1Grad(pred: Float32Array, y: Float32Array, dPred: Float32Array, beta = 0.1): number {
  const n = pred.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = pred[i]! - y[i]!;
    const a = Math.abs(e);
    if (a < beta) {
      sum += (0.5 * a * a) / beta;
      dPred[i] = e / beta / n;
    } else {
      sum += a - 0.5 * beta;
      dPred[i] = (e > 0 ? 1 : e < 0 ? -1 : 0) / n;
    }
  }
  return sum / n;
}

/** The regulariser (model.ts): mean_n sum_l p log(p + 1e-8) / log L + mean_n (s - 0.5)^2. */
export function regulariser(p: Float32Array, s: Float32Array, N: number, L: number): number {
  let ent = 0;
  for (let i = 0; i < N * L; i++) ent += p[i]! * Math.log(p[i]! + 1e-8);
  let sc = 0;
  for (let n = 0; n < N; n++) sc += (s[n]! - 0.5) ** 2;
  return ent / N / Math.log(L) + sc / N;
}

/** dp += w d(reg)/dp, ds += w d(reg)/ds. */
export function addRegulariserGrads(dp: Float32Array, ds: Float32Array, p: Float32Array, s: Float32Array, N: number, L: number, w: number): void {
  const ce = w / (N * Math.log(L));
  for (let i = 0; i < N * L; i++) dp[i]! += ce * (Math.log(p[i]! + 1e-8) + p[i]! / (p[i]! + 1e-8));
  for (let n = 0; n < N; n++) ds[n]! += (w * 2 * (s[n]! - 0.5)) / N;
}

/** Gradients of the three logits from those of xy (tanh) [N, 2], p (softmax) [N, L] and s (sigmoid) [N], into `out`. */
export function selectorLogitGrads(
  sel: { xy: Float32Array; p: Float32Array; s: Float32Array }, g: { dxy: Float32Array; dp: Float32Array; ds: Float32Array }, N: number, L: number,
  out: { space: Float32Array; layer: Float32Array; scale: Float32Array },
): void {
  for (let i = 0; i < 2 * N; i++) out.space[i] = g.dxy[i]! * (1 - sel.xy[i]! * sel.xy[i]!);
  for (let n = 0; n < N; n++) {
    let dot = 0;
    for (let l = 0; l < L; l++) dot += sel.p[n * L + l]! * g.dp[n * L + l]!;
    for (let l = 0; l < L; l++) out.layer[n * L + l] = sel.p[n * L + l]! * (g.dp[n * L + l]! - dot);
  }
  for (let n = 0; n < N; n++) out.scale[n] = g.ds[n]! * sel.s[n]! * (1 - sel.s[n]!);
}
