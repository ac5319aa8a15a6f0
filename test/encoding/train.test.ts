/** Training: AdamW against torch's formula, determinism, learning a planted signal, NaN stop, metrics. */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  AdamW, FactorizedEncoder, NonFiniteLossError, algonautsScore, algonautsNoiseCeiling, meanFinite, pearsonPerVertex, r2PerVertex,
  summariseByRoi, trainEncoder, type EncoderData,
  encoderVsRidge, layerEntropy,
} from 'brainnet/encoding';

/** A tiny world: responses are a fixed linear read-out of layer 1's global token plus noise. */
function world(n: number, images: number, seed: number, nan = -1): { coords: Float32Array; data: EncoderData } {
  const widths = [6, 6];
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  const coords = Float32Array.from({ length: n * 3 }, rnd);
  const local = widths.map(() => Float32Array.from({ length: images * 6 * 8 * 8 }, rnd));
  const glob = widths.map(() => Float32Array.from({ length: images * 6 }, rnd));
  const readout = Float32Array.from({ length: 6 * n }, rnd);
  const y = new Float32Array(images * n);
  for (let i = 0; i < images; i++) for (let v = 0; v < n; v++) {
    let acc = 0;
    for (let c = 0; c < 6; c++) acc += glob[1]![i * 6 + c]! * readout[c * n + v]!;
    y[i * n + v] = acc + 0.05 * rnd();
  }
  if (nan >= 0) y[nan * n] = NaN;
  const data: EncoderData = {
    size: images,
    batch(idx) {
      const pick = (a: Float32Array, per: number) => {
        const o = new Float32Array(idx.length * per);
        idx.forEach((k, j) => o.set(a.subarray(k * per, (k + 1) * per), j * per));
        return o;
      };
      return {
        tokens: {
          local: widths.map((c, l) => tf.tensor4d(pick(local[l]!, c * 64), [idx.length, c, 8, 8])),
          global: widths.map((c, l) => tf.tensor2d(pick(glob[l]!, c), [idx.length, c])),
        },
        target: tf.tensor2d(pick(y, n), [idx.length, n]),
      };
    },
  };
  return { coords, data };
}

describe('encoding training', function () {
  before(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
  });

  it('AdamW follows torch.optim.AdamW (decoupled decay, bias correction)', () => {
    const v = tf.variable(tf.tensor1d([1, -2]), true, 'adamw_test_var');
    const opt = new AdamW({ lr: 0.1, weightDecay: 0.5 });
    opt.apply([v], [tf.tensor1d([0.5, 0])]);
    opt.apply([v], [tf.tensor1d([-0.25, 1])]);
    // expected values: torch.optim.AdamW's update rule (decay p by 1 - lr*wd, then the bias-corrected Adam step), in float64
    const p = v.dataSync();
    let p0 = 1 * 0.95 - 0.1, p1 = -2 * 0.95 - 0;
    const m0 = 0.9 * 0.05 + 0.1 * -0.25, v0 = 0.999 * 0.00025 + 0.001 * 0.0625;
    const m1 = 0.1 * 1, v1 = 0.001 * 1;
    const bc1 = 1 - 0.81, bc2 = 1 - 0.999 ** 2;
    p0 = p0 * 0.95 - (0.1 / bc1) * m0 / (Math.sqrt(v0) / Math.sqrt(bc2) + 1e-8);
    p1 = p1 * 0.95 - (0.1 / bc1) * m1 / (Math.sqrt(v1) / Math.sqrt(bc2) + 1e-8);
    assert.ok(Math.abs(p[0]! - p0) < 1e-6 && Math.abs(p[1]! - p1) < 1e-6, `${p} vs ${p0}, ${p1}`);
    v.dispose();
  });

  it('learns a planted signal, is deterministic for a seed, and reports validation scores', async () => {
    const n = 40;
    const { coords, data: all } = world(n, 64, 7);
    const sub = (from: number, size: number): EncoderData => ({ size, batch: (idx) => all.batch(idx.map((i) => i + from)) });
    const data = sub(0, 48);
    const val = sub(48, 16);
    const run = async () => {
      const model = new FactorizedEncoder(coords, { layerWidths: [6, 6], bottleneckDim: 16, hiddenDim: 16, seed: 3 });
      const losses: number[] = [];
      const { epochs } = await trainEncoder(model, data, { epochs: 15, batchSize: 8, seed: 5, optimizer: { lr: 1e-2 }, validation: val, onStep: (p) => losses.push(p.loss) });
      const w = model.weight.dataSync().slice();
      const sel = model.selectors();
      model.dispose();
      return { losses, epochs, w, sel };
    };
    const a = await run();
    const b = await run();
    assert.deepEqual(a.losses, b.losses);
    assert.deepEqual(Array.from(a.w), Array.from(b.w));
    assert.equal(a.epochs.length, 15);
    const first = a.epochs[0]!.trainLoss, last = a.epochs[14]!.trainLoss;
    assert.ok(last < 0.75 * first, `train loss ${first} -> ${last}`);
    assert.equal(a.epochs[14]!.r2.length, n);
    assert.ok(a.epochs[14]!.meanPearson > a.epochs[0]!.meanPearson, `pearson ${a.epochs[0]!.meanPearson} -> ${a.epochs[14]!.meanPearson}`);
    // the layer selector moves towards layer 1, where the signal is: 0.72 after 15 epochs (measured; 0.5 is chance with
    // 2 layers, so the threshold keeps a margin above chance and below the measured value)
    let mean1 = 0;
    for (let v = 0; v < n; v++) mean1 += a.sel.layer[2 * v + 1]! / n;
    assert.ok(mean1 > 0.65, `mean weight of layer 1: ${mean1} (measured 0.72; chance 0.5)`);
  });

  it('stops on a NaN loss and names the batch', async () => {
    const { coords, data } = world(10, 16, 1, 5);
    const model = new FactorizedEncoder(coords, { layerWidths: [6, 6], bottleneckDim: 8, hiddenDim: 8, seed: 0 });
    await assert.rejects(trainEncoder(model, data, { epochs: 1, batchSize: 4 }), (e: unknown) => e instanceof NonFiniteLossError && e.batchIndices.includes(5) && /batch of images/.test(e.message));
    model.dispose();
  });

  it('rejects tokens that do not match the layer widths', () => {
    const model = new FactorizedEncoder(new Float32Array([0, 0, 0, 1, 1, 1]), { layerWidths: [4, 5], bottleneckDim: 8, hiddenDim: 8 });
    assert.throws(() => model.forward({ local: [tf.zeros([1, 4, 8, 8]) as tf.Tensor4D], global: [tf.zeros([1, 4]) as tf.Tensor2D] }), /expected tokens for 2 layers/);
    assert.throws(
      () => model.forward({ local: [tf.zeros([1, 4, 8, 8]) as tf.Tensor4D, tf.zeros([1, 6, 8, 8]) as tf.Tensor4D], global: [tf.zeros([1, 4]) as tf.Tensor2D, tf.zeros([1, 5]) as tf.Tensor2D] }),
      /layer 1 local tokens must be \[1, 5, h, w\], found \[1, 6, 8, 8\]/,
    );
    model.dispose();
  });
});

describe('encoding metrics', () => {
  it('layer entropy and the encoder against the ridge per ROI and group', () => {
    // 4 vertices, 2 layers: one-hot, uniform, one-hot, 0.9/0.1
    const layer = [1, 0, 0.5, 0.5, 0, 1, 0.9, 0.1];
    const h = layerEntropy(layer, 2);
    const h4 = -(0.9 * Math.log(0.9) + 0.1 * Math.log(0.1)) / Math.log(2);
    assert.deepEqual(Array.from(h).map((x) => +x.toFixed(12)), [0, 1, 0, +h4.toFixed(12)]);
    assert.throws(() => layerEntropy([1, 0, 0], 2), /rows of 2 layers/);
    const r2 = [0.5, 0.1, NaN, 0.3];
    const ridgeR2 = [0.25, 0.2, 0.4, 0.3];
    const roiMasks = { A: [1, 1, 0, 0], B: [0, 0, 1, 1], C: [0, 0, 0, 0] };
    const { rows, groups } = encoderVsRidge({ r2, ridgeR2, layer, L: 2, roiMasks, rois: ['A', 'B', 'C', 'D'], groups: { AB: ['A', 'B', 'A'] } });
    assert.deepEqual(rows.map((r) => r.roi), ['A', 'B'], 'ROIs without vertices are left out');
    const a = rows[0]!;
    assert.equal(a.n, 2);
    assert.ok(Math.abs(a.encoderR2 - 0.3) < 1e-12 && Math.abs(a.ridgeR2 - 0.225) < 1e-12 && Math.abs(a.ratio - 0.3 / 0.225) < 1e-12);
    assert.equal(a.medianEntropy, 0.5);
    assert.equal(rows[1]!.encoderR2, 0.3, 'NaN R² left out of the mean');
    assert.equal(groups[0]!.n, 4, 'a vertex counts once in a group');
    assert.ok(Math.abs(groups[0]!.encoderR2 - 0.3) < 1e-12);
    assert.ok(Math.abs(groups[0]!.medianEntropy - (h4 + 0) / 2) < 1e-12);
  });

  it('R², Pearson r and the Algonauts score per vertex', () => {
    // 3 images x 2 vertices; vertex 0 predicted perfectly, vertex 1 anti-correlated
    const truth = [1, 1, 2, 2, 3, 3];
    const pred = [1, 3, 2, 2, 3, 1];
    const r2 = r2PerVertex(pred, truth, 2);
    assert.equal(r2[0], 1);
    assert.equal(r2[1], 1 - 8 / 2);
    const r = pearsonPerVertex(pred, truth, 2);
    assert.ok(Math.abs(r[0]! - 1) < 1e-12 && Math.abs(r[1]! + 1) < 1e-12);
    const nc = algonautsNoiseCeiling([1, 2], { three: 10, two: 0, one: 0 });
    assert.ok(Math.abs(nc[0]! - 1 / (1 + 1 / 3)) < 1e-12);
    const s = algonautsScore([0.5, -0.5], nc);
    assert.ok(Math.abs(s[0]! - Math.min(100, (25 / nc[0]!))) < 1e-9);
    assert.equal(s[1], 0);
    assert.throws(() => r2PerVertex([1, 2, 3], [1, 2], 1), /same shape/);
  });

  it('a constant target has no R² (NaN), and means over vertices leave NaN out', () => {
    // 3 images x 2 vertices; vertex 1's measured response is constant
    const r2 = r2PerVertex([1, 5, 2, 5, 3, 6], [1, 4, 2, 4, 3, 4], 2);
    assert.equal(r2[0], 1);
    assert.ok(Number.isNaN(r2[1]!));
    assert.equal(meanFinite(r2), 1);
    assert.ok(Number.isNaN(meanFinite([NaN])));
    assert.deepEqual(summariseByRoi(r2, ['V1', 'V1']).map((s) => [s.vertices, s.n, s.mean]), [[2, 1, 1]]);
  });
});
