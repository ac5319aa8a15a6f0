import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from 'brainnet/core';
import {
  clusterChannels, cutTree, kmeansCosine, mixedTokenMap, roiPrincipalComponents, summariseByRoi, topChannelImage, wardLinkage,
} from 'brainnet/encoding';

const ward = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'encoding-ridge', 'ward.json'), 'utf8')) as {
  n: number; d: number; points: number[]; linkage: number[][]; labels: Record<string, number[]>;
};

/** true when two labelings define the same partition (labels may be permuted). */
function samePartition(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  const ab = new Map<number, number>();
  const ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if ((ab.get(a[i]!) ?? b[i]) !== b[i] || (ba.get(b[i]!) ?? a[i]) !== a[i]) return false;
    ab.set(a[i]!, b[i]!);
    ba.set(b[i]!, a[i]!);
  }
  return true;
}

/** n vectors in D dims around `groups` random directions (cosine clusters), each scaled by a random positive factor. */
function directionalData(rng: Rng, n: number, D: number, groups: number, noise: number) {
  const dirs = Array.from({ length: groups }, () => Float64Array.from({ length: D }, () => rng.normal()));
  const data = new Float32Array(n * D);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const g = i % groups;
    truth[i] = g;
    const scale = rng.uniform(0.2, 5);
    for (let j = 0; j < D; j++) data[i * D + j] = scale * (dirs[g]![j]! + noise * rng.normal());
  }
  return { data, truth };
}

describe('channel clusters and top-channel images', function () {
  before(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('wardLinkage: a hand-checked 1-D case (Lance-Williams heights)', () => {
    const Z = wardLinkage({ data: Float32Array.from([0, 1, 5, 7, 20]), shape: [5, 1] });
    const rows = Array.from({ length: 4 }, (_, i) => Array.from(Z.subarray(i * 4, i * 4 + 4)));
    assert.deepEqual(rows[0], [0, 1, 1, 2]);
    assert.deepEqual(rows[1], [2, 3, 2, 2]);
    // {0,1} vs {5,7}: sqrt(2*2*2/4) * |0.5 - 6|
    assert.deepEqual([rows[2]![0], rows[2]![1], rows[2]![3]], [5, 6, 4]);
    assert.ok(Math.abs(rows[2]![2]! - Math.SQRT2 * 5.5) < 1e-12);
    // {0,1,5,7} (centroid 3.25) vs {20}: sqrt(2*4*1/5) * 16.75
    assert.deepEqual([rows[3]![0], rows[3]![1], rows[3]![3]], [4, 7, 5]);
    assert.ok(Math.abs(rows[3]![2]! - Math.sqrt(8 / 5) * 16.75) < 1e-12);
    assert.deepEqual(Array.from(cutTree(Z, 5, 2)), [0, 0, 0, 0, 1]);
    assert.deepEqual(Array.from(cutTree(Z, 5, 3)), [0, 0, 1, 1, 2]);
  });

  it('wardLinkage matches scipy.cluster.hierarchy.ward (linkage and maxclust labels)', () => {
    const Z = wardLinkage({ data: Float32Array.from(ward.points), shape: [ward.n, ward.d] });
    ward.linkage.forEach((row, i) => {
      assert.deepEqual([Z[i * 4], Z[i * 4 + 1], Z[i * 4 + 3]], [row[0], row[1], row[3]], `row ${i}`);
      assert.ok(Math.abs(Z[i * 4 + 2]! - row[2]!) < 1e-5 * row[2]!, `height ${i}: ${Z[i * 4 + 2]} vs ${row[2]}`);
    });
    for (const [k, labels] of Object.entries(ward.labels)) {
      assert.ok(samePartition(cutTree(Z, ward.n, Number(k)), labels), `k = ${k}`);
    }
  });

  it('weighted Ward equals Ward on the underlying points when merging duplicates', () => {
    // points 0 and 0 and 4 as singletons vs (0 with size 2) and (4 with size 1): same final height
    const Zs = wardLinkage({ data: Float32Array.from([0, 0, 4]), shape: [3, 1] });
    const Zw = wardLinkage({ data: Float32Array.from([0, 4]), shape: [2, 1] }, [2, 1]);
    assert.ok(Math.abs(Zs[4 + 2]! - Zw[2]!) < 1e-12);
  });

  it('kmeansCosine recovers direction clusters regardless of vector length, deterministically', () => {
    const { data, truth } = directionalData(new Rng(2), 300, 16, 5, 0.15);
    const a = kmeansCosine({ data, shape: [300, 16] }, 5, { seed: 3 });
    assert.ok(samePartition(a.labels, truth));
    const b = kmeansCosine({ data, shape: [300, 16] }, 5, { seed: 3 });
    assert.deepEqual(Array.from(a.labels), Array.from(b.labels));
    for (let c = 0; c < 5; c++) {
      let s = 0;
      for (let j = 0; j < 16; j++) s += a.centroids[c * 16 + j]! ** 2;
      assert.ok(Math.abs(s - 1) < 1e-5);
    }
  });

  it('clusterChannels: k-means into many centroids, then Ward into k groups', () => {
    const N = 2000;
    const D = 32;
    const { data, truth } = directionalData(new Rng(4), N, D, 6, 0.2);
    const res = clusterChannels({ data, shape: [N, D] }, { k: 6, kmeansK: 60, seed: 1 });
    assert.equal(res.labels.length, N);
    assert.equal(res.centroids.length, 6 * D);
    assert.equal(res.linkage.length, 59 * 4);
    assert.ok(samePartition(res.labels, truth), 'clusters differ from the generating directions');
    // labels are numbered by decreasing size
    const counts = new Array(6).fill(0);
    res.labels.forEach((l) => counts[l]++);
    for (let c = 1; c < 6; c++) assert.ok(counts[c] <= counts[c - 1]);
    // default k = 20 works on a small set and gives 20 distinct labels
    const r20 = clusterChannels({ data: data.subarray(0, 150 * D), shape: [150, D] }, { seed: 1 });
    assert.equal(new Set(r20.labels).size, 20);
    assert.throws(() => clusterChannels({ data: data.subarray(0, 5 * D), shape: [5, D] }), /20 clusters of 5/);
  });

  it('roiPrincipalComponents + topChannelImage: PC1 -> red, PC2 -> green, PC3 -> blue', () => {
    const rng = new Rng(7);
    const D = 8;
    const N = 200;
    // ROI weights vary most along channel 3, then channel 5, then channel 0; the rest is small noise
    const W = new Float32Array(N * D);
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < D; j++) W[i * D + j] = 0.01 * rng.normal() + 1;
      W[i * D + 3]! += 5 * rng.normal();
      W[i * D + 5]! += 2 * rng.normal();
      W[i * D + 0]! += 1 * rng.normal();
    }
    const mask = Uint8Array.from({ length: N }, (_, i) => (i < 150 ? 1 : 0));
    const pcs = roiPrincipalComponents({ data: W, shape: [N, D] }, mask, 3);
    assert.equal(pcs.count, 150);
    assert.ok(pcs.components[0 * D + 3]! > 0.99 && pcs.components[1 * D + 5]! > 0.99 && pcs.components[2 * D + 0]! > 0.99);
    // tokens [D, 4, 6]: channel 3 rises left to right, channel 5 top to bottom, channel 0 is a checkerboard
    const h = 4;
    const w = 6;
    const tokens = new Float32Array(D * h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      tokens[3 * h * w + y * w + x] = x;
      tokens[5 * h * w + y * w + x] = y;
      tokens[0 * h * w + y * w + x] = (x + y) % 2;
    }
    const img = topChannelImage({ data: tokens, shape: [D, h, w] }, pcs);
    assert.equal(img.width, w);
    assert.equal(img.height, h);
    assert.equal(img.data.length, h * w * 3);
    const px = (x: number, y: number) => Array.from(img.data.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));
    const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) <= 12);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const want = [(255 * x) / (w - 1), (255 * y) / (h - 1), 255 * ((x + y) % 2)];
      assert.ok(near(px(x, y), want), `pixel (${x}, ${y}) is ${px(x, y)}, expected about ${want.map(Math.round)}`);
    }
    // upsampled to a display size; percentile scaling keeps the shape
    const big = topChannelImage({ data: tokens, shape: [D, h, w] }, pcs, { size: [60, 40], scaling: 'percentile' });
    assert.equal(big.width, 60);
    assert.equal(big.height, 40);
    assert.equal(big.data.length, 60 * 40 * 3);
    assert.ok(big.data[(20 * 60 + 59) * 3]! > big.data[(20 * 60 + 0) * 3]!);
    // given raw weight rows, the components are computed from them
    const direct = topChannelImage({ data: tokens, shape: [D, h, w] }, { data: W.subarray(0, 150 * D), shape: [150, D] });
    assert.deepEqual(Array.from(direct.data), Array.from(img.data));
    assert.throws(() => topChannelImage({ data: tokens, shape: [D, h, w] }, { data: W.subarray(0, 10 * 4), shape: [10, 4] }), /channels/);
  });

  it('mixedTokenMap mixes the bottlenecked local tokens by layer weights', () => {
    const local = [tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]), tf.tensor4d([1, 1, 1, 1], [1, 1, 2, 2])];
    const bottle = [tf.tensor2d([1, 0, 0, 0, 1, 1], [2, 3]), tf.tensor2d([2, 2, 2], [1, 3])];
    const map = mixedTokenMap(local, bottle, [0.5, 0.25]);
    assert.deepEqual(map.shape, [3, 2, 2]);
    // channel 0: 0.5 * x0 + 0.25 * 2; channel 2: 0.5 * x1 + 0.25 * 2
    assert.deepEqual(Array.from(map.data.subarray(0, 4)), [1, 1.5, 2, 2.5]);
    assert.deepEqual(Array.from(map.data.subarray(8, 12)), [3, 3.5, 4, 4.5]);
    tf.dispose([...local, ...bottle]);
  });

  it('summariseByRoi: by label per vertex and by masks', () => {
    const v = [1, 2, 3, 10, NaN, 20, 5];
    const s = summariseByRoi(v, ['V1', 'V1', 'V1', 'FFA', 'FFA', 'FFA', '']);
    assert.deepEqual(s.map((r) => r.roi), ['V1', 'FFA']);
    assert.deepEqual([s[0]!.n, s[0]!.mean, s[0]!.median, s[0]!.std], [3, 2, 2, 1]);
    assert.deepEqual([s[1]!.n, s[1]!.mean, s[1]!.q25, s[1]!.q75], [2, 15, 12.5, 17.5]);
    const m = summariseByRoi(v, { all: v.map(() => 1), last: [0, 0, 0, 0, 0, 0, 1] });
    assert.equal(m[0]!.n, 6);
    assert.equal(m[1]!.mean, 5);
    assert.throws(() => summariseByRoi(v, ['V1']), /7 values/);
  });
});
