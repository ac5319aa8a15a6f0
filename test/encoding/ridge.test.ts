import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { applyPca, fitPca, Rng, symmetricEigen } from 'brainnet/core';
import { fitRidgeBaseline, fitRidgeBaselineFromCache, kfoldIds, ridgeCV, ridgePredict, tokenFeatures } from 'brainnet/encoding';

interface RidgeCase {
  n: number; p: number; N: number; alphas: number[]; folds: number[];
  X: number[]; Y: number[]; cvScores: number[]; bestAlpha: number[]; weights: number[]; intercept: number[];
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'encoding-ridge', 'ridge.json'), 'utf8')) as Record<string, RidgeCase>;

/** max |a - b| / max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

function randn(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

describe('ridge baseline', function () {
  before(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('symmetricEigen: A v = lambda v, orthonormal vectors, ascending values (incl. repeated eigenvalues)', () => {
    const rng = new Rng(3);
    const n = 30;
    const B = randn(rng, n * n);
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i * n + j] = B[i * n + j]! + B[j * n + i]!;
    const check = (M: Float64Array, m: number) => {
      const { values, vectors } = symmetricEigen(M, m);
      for (let i = 1; i < m; i++) assert.ok(values[i]! >= values[i - 1]!);
      for (let a = 0; a < m; a++) {
        for (let r = 0; r < m; r++) {
          let s = 0;
          for (let c = 0; c < m; c++) s += M[r * m + c]! * vectors[a * m + c]!;
          assert.ok(Math.abs(s - values[a]! * vectors[a * m + r]!) < 1e-10, `residual at ${a},${r}`);
        }
        for (let b = 0; b < m; b++) {
          let d = 0;
          for (let c = 0; c < m; c++) d += vectors[a * m + c]! * vectors[b * m + c]!;
          assert.ok(Math.abs(d - (a === b ? 1 : 0)) < 1e-10);
        }
      }
      return values;
    };
    check(A, n);
    const vals = check(Float64Array.from([2, 0, 0, 0, 2, 0, 0, 0, 5]), 3);
    assert.deepEqual(Array.from(vals).map((v) => +v.toFixed(12)), [2, 2, 5]);
  });

  for (const name of ['primal', 'kernel']) {
    it(`ridgeCV matches the numpy closed form with the same folds (${name}: p ${name === 'primal' ? '<' : '>'} n)`, () => {
      const c = fixture[name]!;
      const fit = ridgeCV({ data: Float32Array.from(c.X), shape: [c.n, c.p] }, { data: Float32Array.from(c.Y), shape: [c.n, c.N] }, {
        alphas: c.alphas,
        folds: Int32Array.from(c.folds),
        targetBatch: 4, // exercise target batching
      });
      assert.deepEqual(Array.from(fit.bestAlpha), c.bestAlpha);
      assert.ok(relErr(fit.cvScores, c.cvScores) < 1e-4, `cv scores rel err ${relErr(fit.cvScores, c.cvScores)}`);
      assert.ok(relErr(fit.weights, c.weights) < 1e-4, `weights rel err ${relErr(fit.weights, c.weights)}`);
      assert.ok(relErr(fit.intercept, c.intercept) < 1e-4, `intercept rel err ${relErr(fit.intercept, c.intercept)}`);
    });
  }

  it('kfoldIds: balanced, seeded folds', () => {
    const ids = kfoldIds(23, 5, 7);
    const counts = [0, 0, 0, 0, 0];
    ids.forEach((f) => counts[f]!++);
    assert.deepEqual(counts.sort(), [4, 4, 5, 5, 5]);
    assert.deepEqual(Array.from(kfoldIds(23, 5, 7)), Array.from(ids));
    assert.notDeepEqual(Array.from(kfoldIds(23, 5, 8)), Array.from(ids));
    assert.throws(() => kfoldIds(3, 5), /folds/);
  });

  it('chooses a larger penalty for noisy vertices than for clean ones', () => {
    const rng = new Rng(11);
    const n = 120;
    const p = 20;
    const N = 40;
    const X = randn(rng, n * p);
    const W = randn(rng, p * N);
    const Y = new Float32Array(n * N);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < p; k++) s += X[i * p + k]! * W[k * N + j]!;
        Y[i * N + j] = s + rng.normal() * (j < N / 2 ? 0.05 : 30);
      }
    }
    const fit = ridgeCV({ data: X, shape: [n, p] }, { data: Y, shape: [n, N] }, { alphas: [0.01, 0.1, 1, 10, 100, 1000, 1e4], folds: 5, seed: 1 });
    const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
    const clean = median(Array.from(fit.bestAlpha.subarray(0, N / 2)));
    const noisy = median(Array.from(fit.bestAlpha.subarray(N / 2)));
    assert.ok(clean <= 1, `clean vertices chose alpha ${clean}`);
    assert.ok(noisy >= 100, `noisy vertices chose alpha ${noisy}`);
    // prediction on the training rows reproduces the clean vertices
    const pred = ridgePredict({ data: X, shape: [n, p] }, fit);
    assert.ok(Math.abs(pred[0]! - Y[0]!) < 0.5);
  });

  it('fitRidgeBaseline recovers the layer the responses were generated from', () => {
    const rng = new Rng(5);
    const nTr = 150;
    const nVa = 50;
    const p = 12;
    const L = 4;
    const N = 30;
    const layers = Array.from({ length: L }, () => ({ tr: randn(rng, nTr * p), va: randn(rng, nVa * p) }));
    const W = randn(rng, p * N);
    const gen = (X: Float32Array, n: number) => {
      const Y = new Float32Array(n * N);
      for (let i = 0; i < n; i++) for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < p; k++) s += X[i * p + k]! * W[k * N + j]!;
        Y[i * N + j] = s + rng.normal() * 2;
      }
      return Y;
    };
    const Ytr = gen(layers[2]!.tr, nTr);
    const Yva = gen(layers[2]!.va, nVa);
    const res = fitRidgeBaseline(
      layers.map((l) => ({ train: { data: l.tr, shape: [nTr, p] as [number, number] }, val: { data: l.va, shape: [nVa, p] as [number, number] } })),
      { data: Ytr, shape: [nTr, N] },
      { data: Yva, shape: [nVa, N] },
      { alphas: [0.1, 1, 10, 100, 1000], folds: 5 },
    );
    assert.ok(res.bestLayer.every((l) => l === 2), `best layers ${Array.from(res.bestLayer)}`);
    assert.equal(res.r2ByLayer.length, L * N);
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    assert.ok(mean(res.r2) > 0.6, `mean R2 ${mean(res.r2)}`);
    assert.ok(mean(res.r) > 0.8, `mean r ${mean(res.r)}`);
    for (let j = 0; j < N; j++) {
      for (const l of [0, 1, 3]) assert.ok(res.r2ByLayer[l * N + j]! < res.r2[j]!, `vertex ${j}: layer ${l} beats layer 2 on validation`);
    }
  });

  it('tokenFeatures: global, pooled and flattened local tokens', () => {
    const local = [tf.tensor4d(Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i), [2, 3, 2, 2])];
    const global = [tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3])];
    const g = tokenFeatures({ local, global }, 'global')[0]!;
    assert.deepEqual(g.shape, [2, 3]);
    assert.deepEqual(Array.from(g.data), [1, 2, 3, 4, 5, 6]);
    const pooled = tokenFeatures({ local, global }, 'pooled')[0]!;
    assert.deepEqual(Array.from(pooled.data), [1.5, 5.5, 9.5, 13.5, 17.5, 21.5]);
    const flat = tokenFeatures({ local, global }, 'flat')[0]!;
    assert.deepEqual(flat.shape, [2, 12]);
    assert.equal(flat.data[13], 13);
    tf.dispose([...local, ...global]);
  });

  it('fitPca: the randomized path (p > 1024) finds the same subspace as the exact one', () => {
    const rng = new Rng(9);
    const n = 60;
    const p = 1100;
    const r = 4;
    const U = randn(rng, n * r);
    const V = randn(rng, r * p);
    const X = new Float32Array(n * p);
    for (let i = 0; i < n; i++) for (let k = 0; k < r; k++) for (let j = 0; j < p; j++) X[i * p + j]! += U[i * r + k]! * V[k * p + j]! * (k + 1);
    const pca = fitPca({ data: X, shape: [n, p] }, r, { seed: 1 });
    const small = fitPca({ data: X.subarray(0, n * p), shape: [n, p] }, r);
    assert.equal(pca.k, r);
    // projection captures all the variance of a rank-r matrix: reconstruction error ~ 0
    const Z = applyPca(pca, { data: X, shape: [n, p] });
    let err = 0;
    let tot = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) {
      let rec = pca.mean[j]!;
      for (let k = 0; k < r; k++) rec += Z.data[i * r + k]! * pca.components[k * p + j]!;
      err += (rec - X[i * p + j]!) ** 2;
      tot += X[i * p + j]! ** 2;
    }
    assert.ok(err / tot < 1e-6, `reconstruction error ${err / tot}`);
    assert.ok(pca.variances[0]! >= pca.variances[1]!);
    assert.ok(Math.abs(pca.variances[0]! - small.variances[0]!) / small.variances[0]! < 1e-3);
  });

  it('fitRidgeBaselineFromCache: pooled local tokens from a cache, the generating layer wins', async () => {
    const rng = new Rng(21);
    const nImg = 120;
    const C = 6;
    const g = 2;
    const L = 3;
    const N = 10;
    const local = Array.from({ length: L }, () => randn(rng, nImg * C * g * g));
    const W = randn(rng, C * N);
    const pooled = (l: number, i: number, c: number) => {
      let s = 0;
      for (let q = 0; q < g * g; q++) s += local[l]![(i * C + c) * g * g + q]!;
      return s / (g * g);
    };
    const Y = new Float32Array(nImg * N);
    for (let i = 0; i < nImg; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += pooled(1, i, c) * W[c * N + j]!;
      Y[i * N + j] = s + 0.1 * rng.normal();
    }
    let batches = 0;
    const cache = {
      async getBatch(idx: readonly number[]) {
        batches++;
        return {
          local: local.map((a) => tf.tensor4d(Float32Array.from(idx.flatMap((i) => Array.from(a.subarray(i * C * g * g, (i + 1) * C * g * g)))), [idx.length, C, g, g])),
          global: local.map(() => tf.zeros([idx.length, C]) as tf.Tensor2D),
        };
      },
    };
    const trainIdx = Array.from({ length: 90 }, (_, i) => i);
    const valIdx = Array.from({ length: 30 }, (_, i) => 90 + i);
    const rows = (idx: number[]) => ({ data: Float32Array.from(idx.flatMap((i) => Array.from(Y.subarray(i * N, (i + 1) * N)))), shape: [idx.length, N] as [number, number] });
    const before = tf.memory().numTensors;
    const res = await fitRidgeBaselineFromCache(cache, trainIdx, valIdx, rows(trainIdx), rows(valIdx), { mode: 'pooled', batchSize: 32, alphas: [0.01, 0.1, 1, 10] });
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    assert.equal(batches, 3 + 1);
    assert.ok(res.bestLayer.every((l) => l === 1), `best layers ${Array.from(res.bestLayer)}`);
    assert.ok(res.r2.every((v) => v > 0.9), `R2 ${Array.from(res.r2)}`);
    await assert.rejects(fitRidgeBaselineFromCache(cache, trainIdx, valIdx, rows(valIdx), rows(valIdx)), /one row per image/);
  });
});
