import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { applyPca, fitPca, Rng, solveShiftedTridiagonal, symmetricEigen, symmetricTridiagonal } from 'brainnet/core';
import { fitRidgeBaseline, fitRidgeBaselineFromCache, kfoldIds, ridgeCV, ridgePredict, tokenFeatures, type RidgeSolver } from 'brainnet/encoding';

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

  it('symmetricTridiagonal: Q T Q^T = A with Q orthonormal (across several 32-reflector blocks); the shifted solve', () => {
    for (const n of [1, 2, 3, 70]) {
      const rng = new Rng(40 + n);
      const A = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) A[i * n + j] = A[j * n + i] = rng.normal();
      const { d, e, q } = symmetricTridiagonal(A, n);
      assert.equal(d.length, n);
      assert.equal(e.length, Math.max(0, n - 1));
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        let rec = 0;
        let dot = 0;
        for (let k = 0; k < n; k++) {
          dot += q[i * n + k]! * q[j * n + k]!;
          const tq = d[k]! * q[j * n + k]! + (k > 0 ? e[k - 1]! * q[j * n + k - 1]! : 0) + (k < n - 1 ? e[k]! * q[j * n + k + 1]! : 0);
          rec += q[i * n + k]! * tq;
        }
        assert.ok(Math.abs(rec - A[i * n + j]!) < 1e-5, `n ${n}: (Q T Q^T - A)[${i},${j}] = ${rec - A[i * n + j]!}`);
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-5, `n ${n}: Q not orthonormal at ${i},${j}`);
      }
      // (T + alpha_j I) x_j = z_j, one alpha per column
      const alphas = [2 * n + 5, 3 * n + 9];
      const z = Float64Array.from({ length: n * 2 }, () => rng.normal());
      const x = solveShiftedTridiagonal(d, e, alphas, z, 2)!;
      for (let i = 0; i < n; i++) for (let j = 0; j < 2; j++) {
        const tx = (d[i]! + alphas[j]!) * x[i * 2 + j]! + (i > 0 ? e[i - 1]! * x[(i - 1) * 2 + j]! : 0) + (i < n - 1 ? e[i]! * x[(i + 1) * 2 + j]! : 0);
        assert.ok(Math.abs(tx - z[i * 2 + j]!) < 1e-5);
      }
    }
    // not positive definite: null, not a wrong answer
    assert.equal(solveShiftedTridiagonal(Float64Array.from([1, -3]), Float64Array.from([0.5]), 1, Float64Array.from([1, 1]), 1), null);
  });

  it('symmetricTridiagonal: a column of round-off (rank-deficient Gram matrix) gives a finite, orthonormal Q', () => {
    // column 0 below the diagonal is ~1e-22 (what a reduced rank-deficient Gram matrix leaves): an unscaled reflector
    // had beta ~ 1e42, Infinity in float32, and Q was NaN (the example's 1,280-wide out_relu features)
    const n = 40;
    const rng = new Rng(9);
    const A = new Float64Array(n * n);
    for (let i = 1; i < n; i++) for (let j = 1; j <= i; j++) A[i * n + j] = A[j * n + i] = rng.normal() + (i === j ? n : 0);
    A[0] = 2;
    for (let i = 1; i < n; i++) A[i * n] = A[i] = 1e-22 * rng.uniform(1, 2);
    const { d, e, q } = symmetricTridiagonal(A, n);
    assert.ok(Array.from(q).every(Number.isFinite), 'Q is finite');
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let rec = 0;
      let dot = 0;
      for (let k = 0; k < n; k++) {
        dot += q[i * n + k]! * q[j * n + k]!;
        rec += q[i * n + k]! * (d[k]! * q[j * n + k]! + (k > 0 ? e[k - 1]! * q[j * n + k - 1]! : 0) + (k < n - 1 ? e[k]! * q[j * n + k + 1]! : 0));
      }
      assert.ok(Math.abs(rec - A[i * n + j]!) < 1e-4, `(Q T Q^T - A)[${i},${j}] = ${rec - A[i * n + j]!}`);
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-5, `Q not orthonormal at ${i},${j}`);
    }
  });

  /** ReLU6-like features (values 0..6, a dead channel, a duplicated one) and vertices of mixed noise: the fixture of the solver comparison. */
  function reluFixture(seed: number, n: number, p: number, N: number): { X: Float32Array; Y: Float32Array } {
    const rng = new Rng(seed);
    const r = 8;
    const U = randn(rng, n * r);
    const M = randn(rng, r * p);
    const X = new Float32Array(n * p);
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) {
      let s = 0.3 * rng.normal();
      for (let k = 0; k < r; k++) s += U[i * r + k]! * M[k * p + j]!;
      X[i * p + j] = j === 0 ? 0 : Math.min(6, Math.max(0, s + 1));
    }
    for (let i = 0; i < n; i++) X[i * p + 2] = X[i * p + 1]!;
    const W = randn(rng, p * N);
    const Y = new Float32Array(n * N);
    for (let i = 0; i < n; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < p; k++) s += X[i * p + k]! * W[k * N + j]! * (j % 3 === 0 ? 1 : 0.05);
      Y[i * N + j] = s + rng.normal() * (1 + (j % 7) * 4);
    }
    return { X, Y };
  }

  it("the tridiagonal solver makes the eigendecomposition's choices: the same alphas per vertex and layer, the same R² (fixture: 3 layers, primal and kernel)", () => {
    const nTr = 240;
    const nVa = 60;
    const N = 48;
    const widths = [20, 96, 300]; // the last has more features than training rows: the kernel form
    const layers = widths.map((p, l) => {
      const { X } = reluFixture(100 + l, nTr + nVa, p, 1);
      return { train: { data: X.subarray(0, nTr * p), shape: [nTr, p] as [number, number] }, val: { data: X.subarray(nTr * p), shape: [nVa, p] as [number, number] } };
    });
    const { Y } = reluFixture(7, nTr + nVa, 1, N);
    // responses read layer 1's features
    const X1 = Float32Array.from([...layers[1]!.train.data, ...layers[1]!.val.data]);
    const rng = new Rng(8);
    const W = randn(rng, 96 * N);
    for (let i = 0; i < nTr + nVa; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < 96; k++) s += X1[i * 96 + k]! * W[k * N + j]!;
      Y[i * N + j]! += s * (j % 4 === 0 ? 0.02 : 0.3);
    }
    const Ytr = { data: Y.subarray(0, nTr * N), shape: [nTr, N] as [number, number] };
    const Yva = { data: Y.subarray(nTr * N), shape: [nVa, N] as [number, number] };
    const run = (solver: RidgeSolver) => fitRidgeBaseline(layers, Ytr, Yva, { folds: 5, seed: 3, solver, targetBatch: 20 });
    const eig = run('eigen');
    const tri = run('tridiagonal');
    assert.equal(tri.eigenFallbacks, 0, 'every factorisation was tridiagonal');
    assert.deepEqual(Array.from(tri.alphaByLayer), Array.from(eig.alphaByLayer), 'the chosen alphas');
    assert.deepEqual(Array.from(tri.bestLayer), Array.from(eig.bestLayer), 'the best layers');
    // the alphas really vary across vertices (the comparison means something)
    assert.ok(new Set(eig.alphaByLayer).size >= 4, `alphas chosen: ${[...new Set(eig.alphaByLayer)]}`);
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
    assert.ok(maxDiff(tri.r2ByLayer, eig.r2ByLayer) < 1e-5, `R² differs by ${maxDiff(tri.r2ByLayer, eig.r2ByLayer)}`);
    assert.ok(maxDiff(tri.cvByLayer, eig.cvByLayer) < 1e-5, `CV R² differs by ${maxDiff(tri.cvByLayer, eig.cvByLayer)}`);
    assert.ok(eig.bestLayer.filter((l) => l === 1).length > N / 2, 'the generating layer wins most vertices');
  });

  it('hands a Gram matrix that is not positive definite at the smallest alpha to the eigendecomposition', () => {
    // 30 copies of one feature at different scales: rank one, its float32 Gram matrix has round-off eigenvalues below -1e-9
    const rng = new Rng(12);
    const n = 80;
    const p = 30;
    const x = randn(rng, n);
    const c = randn(rng, p);
    const X = new Float32Array(n * p);
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) X[i * p + j] = x[i]! * c[j]! * 10;
    const Y = Float32Array.from({ length: n * 3 }, (_, i) => x[Math.floor(i / 3)]! * (i % 3) + rng.normal());
    const opts = { alphas: [1e-9, 1e-3, 1, 1e3], folds: 4 };
    const tri = ridgeCV({ data: X, shape: [n, p] }, { data: Y, shape: [n, 3] }, { ...opts, solver: 'tridiagonal' });
    const eig = ridgeCV({ data: X, shape: [n, p] }, { data: Y, shape: [n, 3] }, { ...opts, solver: 'eigen' });
    // the default is the tridiagonal solver, bit for bit
    assert.deepEqual(Array.from(ridgeCV({ data: X, shape: [n, p] }, { data: Y, shape: [n, 3] }, opts).weights), Array.from(tri.weights));
    assert.ok(tri.eigenFallbacks > 0, 'fell back');
    assert.equal(eig.eigenFallbacks, 0);
    assert.ok(Array.from(tri.weights).every(Number.isFinite));
    assert.deepEqual(Array.from(tri.bestAlpha), Array.from(eig.bestAlpha));
    assert.throws(() => ridgeCV({ data: X, shape: [n, p] }, { data: Y, shape: [n, 3] }, { solver: 'qr' as RidgeSolver }), /unknown solver 'qr'/);
  });

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
