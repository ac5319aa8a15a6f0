/**
 * The early visual areas of world v3: a second-order contrast (SOC) model computed from pixels, after Kay, Winawer,
 * Rokem, Mezer & Wandell (2013, PLoS Comput Biol) and the compressive spatial summation of Kay, Winawer, Mezer &
 * Wandell (2013, J Neurophysiol).
 *
 * For images [B,3,H,W] on [0,1]:
 * 1. luminance, resized to SOC_SIZE² (the image spans [-1, 1] in x and y);
 * 2. oriented filter energy: a quadrature pair of Gabor filters at 4 orientations (wavelength 4 px, sigma 2.2 px),
 *    E_o = sqrt(even² + odd²);
 * 3. divisive normalisation over orientations and a neighbourhood: Ê_o = E_o² / (s² + N²), N = the local mean of
 *    E over orientations (Gaussian, sigma 2 px); the contrast image is C = Σ_o Ê_o;
 * 4. per vertex, a Gaussian pRF w_c (centre x, y, size sigma) and a suppressive surround w_s (3 sigma), each
 *    summing to 1 (a difference of Gaussians w_c − k·w_s), applied to SOC's second-order term:
 *      v = Σ (w_c − k·w_s) (C − c·C̄)²,   C̄ = Σ w_c C,
 *    r = max(0, v)^n. `n` is the compressive exponent on this variance-like term (about 0.5 in V1, 0.3–0.4 in V2/V3,
 *    0.25 in hV4): in contrast-energy units the exponent is 2n, about 1 in V1 and 0.5–0.7 beyond;
 * 5. some vertices mix two pRFs: r = (1 − m)·r(pRF 1) + m·r(pRF 2).
 * Σ w (C − cC̄)² = Σ w C² − 2c·C̄·Σ w C + c²C̄² (Σ w = 1), so each pRF is two matrix products over the SOC_SIZE² pixels.
 */
import * as tf from '@tensorflow/tfjs';
import { resizeBilinearNCHW } from '../backbones/resize.js';

/** Side of the contrast image the SOC model reads (pixels). */
export const SOC_SIZE = 64;

/** One vertex's SOC parameters (image units: the image spans [-1, 1], x right, y up). */
export interface SocParams {
  x: number;
  y: number;
  sigma: number;
  /** Surround strength k (0: none) and size (sigma multiple). */
  surround: number;
  /** The second-order constant c (1: pure variance, 0: first-order energy). */
  c: number;
  /** Exponent n on the second-order term. */
  n: number;
  /** Second pRF and its weight m (m = 0: none). */
  x2: number;
  y2: number;
  sigma2: number;
  mix: number;
}

/** The semi-saturation constant of the divisive normalisation (filter-energy units; a full-contrast edge gives about 2). */
export const SOC_SEMISATURATION = 0.5;

/** Surround size as a multiple of the centre's sigma. */
export const SURROUND_FACTOR = 3;

function gaborBank(): tf.Tensor4D {
  const K = 11, half = 5, lambda = 4, sigma = 2.2;
  const data = new Float32Array(K * K * 1 * 8);
  for (let o = 0; o < 4; o++) {
    const th = (o * Math.PI) / 4;
    for (const [p, phase] of [[0, 0], [1, Math.PI / 2]] as const) {
      const ch = o * 2 + p;
      const vals: number[] = [];
      for (let y = -half; y <= half; y++) for (let x = -half; x <= half; x++) {
        const u = x * Math.cos(th) + y * Math.sin(th);
        vals.push(Math.exp(-(x * x + y * y) / (2 * sigma * sigma)) * Math.cos((2 * Math.PI * u) / lambda + phase));
      }
      const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
      const norm = Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0));
      vals.forEach((v, i) => (data[i * 8 + ch] = (v - mean) / norm)); // [K, K, 1, 8] HWIO
    }
  }
  return tf.tensor4d(data, [K, K, 1, 8]);
}

function gaussKernel(sigma: number): tf.Tensor4D {
  const r = Math.ceil(3 * sigma), K = 2 * r + 1;
  const v = Float32Array.from({ length: K * K }, (_, i) => Math.exp(-(((i % K) - r) ** 2 + (Math.floor(i / K) - r) ** 2) / (2 * sigma * sigma)));
  const s = v.reduce((a, b) => a + b, 0);
  return tf.tensor4d(v.map((x) => x / s), [K, K, 1, 1]);
}

/** The contrast image C of SOC steps 1–3: images [B,3,H,W] on [0,1] -> [B, SOC_SIZE²] (row 0 = top). */
export function contrastImage(images: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const B = images.shape[0];
    const w = tf.tensor4d([0.299, 0.587, 0.114], [1, 3, 1, 1]);
    let lum = tf.sum(tf.mul(images, w), 1, true) as tf.Tensor4D; // [B,1,H,W]
    if (lum.shape[2] !== SOC_SIZE || lum.shape[3] !== SOC_SIZE) lum = resizeBilinearNCHW(lum, SOC_SIZE, SOC_SIZE);
    const x = tf.mirrorPad(tf.transpose(lum, [0, 2, 3, 1]) as tf.Tensor4D, [[0, 0], [5, 5], [5, 5], [0, 0]], 'reflect'); // NHWC, no edge at the border
    const f = tf.conv2d(x, gaborBank(), 1, 'valid'); // [B,S,S,8]
    const sq = tf.square(f);
    const pairs = tf.reshape(sq, [B, SOC_SIZE, SOC_SIZE, 4, 2]);
    const energy = tf.sqrt(tf.add(tf.sum(pairs, 4), 1e-12)); // [B,S,S,4]
    const pool = tf.conv2d(tf.mirrorPad(tf.mean(energy, 3, true) as tf.Tensor4D, [[0, 0], [6, 6], [6, 6], [0, 0]], 'reflect'), gaussKernel(2), 1, 'valid'); // [B,S,S,1]
    const s = SOC_SEMISATURATION;
    const norm = tf.div(tf.square(energy), tf.add(tf.square(pool), s * s));
    return tf.reshape(tf.sum(norm, 3), [B, SOC_SIZE * SOC_SIZE]) as tf.Tensor2D;
  });
}

/** Gaussian pRF weights over the SOC_SIZE² grid (truncated at 3 sigma, summing to 1) into column `col` of w [P, V]. */
function prfColumn(w: Float32Array, V: number, col: number, x: number, y: number, sigma: number): void {
  const S = SOC_SIZE;
  const s = Math.max(sigma, 1 / S);
  let sum = 0;
  for (let r = 0; r < S; r++) {
    const cy = 1 - ((r + 0.5) * 2) / S;
    for (let c = 0; c < S; c++) {
      const cx = ((c + 0.5) * 2) / S - 1;
      const d2 = ((cx - x) ** 2 + (cy - y) ** 2) / (s * s);
      if (d2 > 9) continue;
      const v = Math.exp(-0.5 * d2);
      w[(r * S + c) * V + col] = v;
      sum += v;
    }
  }
  if (sum === 0) { // off the grid: the nearest pixel
    const c = Math.min(S - 1, Math.max(0, Math.floor(((x + 1) * S) / 2)));
    const r = Math.min(S - 1, Math.max(0, Math.floor(((1 - y) * S) / 2)));
    w[(r * S + c) * V + col] = 1;
    return;
  }
  for (let p = 0; p < S * S; p++) if (w[p * V + col]) w[p * V + col]! /= sum;
}

/** The SOC model of a set of vertices: pRF matrices built once, responses of image batches. */
export interface SocModel {
  /** Number of vertices. */
  n: number;
  /** Responses r (step 4–5) of images [B,3,H,W] on [0,1] -> [B, n]. */
  respond(images: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

/** Builds the SOC model of `params` (one per vertex). */
export function socModel(params: SocParams[]): SocModel {
  const V = params.length, P = SOC_SIZE * SOC_SIZE;
  // columns: [centre 1 | surround 1 | centre 2 | surround 2], each V wide
  const w = new Float32Array(P * 4 * V);
  params.forEach((p, v) => {
    prfColumn(w, 4 * V, v, p.x, p.y, p.sigma);
    prfColumn(w, 4 * V, V + v, p.x, p.y, p.sigma * SURROUND_FACTOR);
    prfColumn(w, 4 * V, 2 * V + v, p.x2, p.y2, p.sigma2);
    prfColumn(w, 4 * V, 3 * V + v, p.x2, p.y2, p.sigma2 * SURROUND_FACTOR);
  });
  const W = tf.tensor2d(w, [P, 4 * V]);
  const c = tf.tensor1d(params.map((p) => p.c));
  const k = tf.tensor1d(params.map((p) => p.surround));
  const n = tf.tensor1d(params.map((p) => p.n));
  const mix = tf.tensor1d(params.map((p) => p.mix));
  return {
    n: V,
    respond(images) {
      return tf.tidy(() => {
        const C = contrastImage(images);
        const m1 = tf.matMul(C, W); // [B, 4V] first moments
        const m2 = tf.matMul(tf.square(C), W); // second moments
        const col = (m: tf.Tensor, j: number) => tf.slice(m, [0, j * V], [-1, V]);
        // Σ w (C − c·C̄)² with C̄ the centre's mean, for the centre (j) and its surround (j + 1)
        const part = (j: number, mean: tf.Tensor) => tf.add(tf.sub(col(m2, j), tf.mul(tf.mul(2, c), tf.mul(mean, col(m1, j)))), tf.mul(tf.square(c), tf.square(mean)));
        const r = (a: number) => { const mean = col(m1, a); return tf.pow(tf.relu(tf.sub(part(a, mean), tf.mul(k, part(a + 1, mean)))), n); };
        const one = r(0), two = r(2);
        return tf.add(tf.mul(tf.sub(1, mix), one), tf.mul(mix, two)) as tf.Tensor2D;
      });
    },
    dispose() {
      tf.dispose([W, c, k, n, mix]);
    },
  };
}
