/** Checkpoints: exact resume (bit for bit) on the cpu and wasm backends, and clear mismatch errors. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readSafetensorsHeader } from 'brainnet/io';
import { FactorizedEncoder, loadCheckpoint, readCheckpointHeader, saveCheckpoint, trainEncoder, type EncoderData } from 'brainnet/encoding';

/** Random tokens and a planted read-out of layer 1's global token, as synchronous and asynchronous batches. */
function world(n: number, images: number, seed: number, widths = [5, 7]): { coords: Float32Array; data: EncoderData; asyncData: EncoderData } {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  const coords = Float32Array.from({ length: n * 3 }, rnd);
  const local = widths.map((c) => Float32Array.from({ length: images * c * 16 }, rnd));
  const glob = widths.map((c) => Float32Array.from({ length: images * c }, rnd));
  const c1 = widths[1]!;
  const readout = Float32Array.from({ length: c1 * n }, rnd);
  const y = new Float32Array(images * n);
  for (let i = 0; i < images; i++) for (let v = 0; v < n; v++) {
    let acc = 0;
    for (let c = 0; c < c1; c++) acc += glob[1]![i * c1 + c]! * readout[c * n + v]!;
    y[i * n + v] = acc + 0.05 * rnd();
  }
  const batch = (idx: number[]) => {
    const pick = (a: Float32Array, per: number) => {
      const o = new Float32Array(idx.length * per);
      idx.forEach((k, j) => o.set(a.subarray(k * per, (k + 1) * per), j * per));
      return o;
    };
    return {
      tokens: {
        local: widths.map((c, l) => tf.tensor4d(pick(local[l]!, c * 16), [idx.length, c, 4, 4])),
        global: widths.map((c, l) => tf.tensor2d(pick(glob[l]!, c), [idx.length, c])),
      },
      target: tf.tensor2d(pick(y, n), [idx.length, n]),
    };
  };
  return { coords, data: { size: images, batch }, asyncData: { size: images, batch: async (idx: number[]) => batch(idx) } };
}

const params = (m: FactorizedEncoder) => m.namedParams().map(([name, v]) => [name, Float32Array.from(v.dataSync() as Float32Array)] as const);

function assertBitEqual(a: FactorizedEncoder, b: FactorizedEncoder): void {
  const pa = params(a);
  const pb = params(b);
  pa.forEach(([name, x], i) => {
    const y = pb[i]![1];
    const bad = x.findIndex((v, j) => !Object.is(v, y[j]));
    assert.equal(bad, -1, `${name}[${bad}]: ${x[bad]} vs ${y[bad]}`);
  });
}

for (const backend of ['cpu', 'wasm']) {
  describe(`encoder checkpoints (${backend})`, function () {
    let dir: string;
    before(async () => {
      await tf.setBackend(backend);
      await tf.ready();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-ckpt-'));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    const cfg = { layerWidths: [5, 7], bottleneckDim: 8, hiddenDim: 16, grid: 4, seed: 3 };
    const opts = { batchSize: 4, seed: 11, regDecaySteps: 6, optimizer: { lr: 0.01 } };

    it('k steps, save, load into a fresh model, N-k more == N steps straight (mid-epoch)', async () => {
      const { coords, asyncData } = world(9, 10, 1);
      // 10 images, batch 4 -> 3 steps per epoch; N = 9 steps, stop after k = 4 (inside epoch 1)
      const straight = new FactorizedEncoder(coords, cfg);
      const a = await trainEncoder(straight, asyncData, { ...opts, epochs: 3 });
      assert.equal(a.steps, 9);

      const first = new FactorizedEncoder(coords, cfg);
      const b = await trainEncoder(first, asyncData, { ...opts, epochs: 3, stopAtStep: 4 });
      assert.equal(b.steps, 4);
      const file = path.join(dir, `mid-${backend}.safetensors`);
      await saveCheckpoint(file, first, b.optimizer, { step: b.steps, epoch: 1, seed: opts.seed, extra: { note: 'x' } });
      first.dispose();

      const hdr = await readCheckpointHeader(file);
      assert.deepEqual([hdr.step, hdr.epoch, hdr.seed, hdr.nVertices], [4, 1, 11, 9]);
      assert.deepEqual(hdr.extra, { note: 'x' });
      const st = await readSafetensorsHeader(file);
      assert.ok(st.tensors['adam_m/weight'] && st.tensors['adam_v/space.w3'] && st.tensors['param/local_bottleneck.0']);

      const fresh = new FactorizedEncoder(coords, { ...cfg, seed: 99 }); // another init: everything must come from the file
      const { optimizer } = await loadCheckpoint(file, fresh);
      assert.equal(optimizer.step, 4);
      const c = await trainEncoder(fresh, asyncData, { ...opts, epochs: 3, resumeFrom: optimizer });
      assert.equal(c.steps, 9);
      assertBitEqual(straight, fresh);
      straight.dispose();
      fresh.dispose();
    });

    it('resume at an epoch boundary is exact too (synchronous batches)', async () => {
      const { coords, data } = world(6, 8, 2);
      const straight = new FactorizedEncoder(coords, cfg);
      await trainEncoder(straight, data, { ...opts, epochs: 3 });
      const first = new FactorizedEncoder(coords, cfg);
      const r = await trainEncoder(first, data, { ...opts, epochs: 1 });
      const file = path.join(dir, `epoch-${backend}.safetensors`);
      await saveCheckpoint(file, first, r.optimizer, { step: r.steps, epoch: 1, seed: opts.seed });
      const fresh = new FactorizedEncoder(coords, cfg);
      const { optimizer } = await loadCheckpoint(file, fresh);
      await trainEncoder(fresh, data, { ...opts, epochs: 3, resumeFrom: optimizer });
      assertBitEqual(straight, fresh);
      // and the loaded parameters equal the saved ones before any further training
      const again = new FactorizedEncoder(coords, { ...cfg, seed: 5 });
      await loadCheckpoint(file, again);
      assertBitEqual(first, again);
      for (const m of [straight, first, fresh, again]) m.dispose();
    });
  });
}

describe('encoder checkpoint errors', function () {
  let dir: string;
  let file: string;
  before(async () => {
    await tf.setBackend('cpu');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-ckpt-'));
    const { coords, data } = world(6, 8, 2);
    const m = new FactorizedEncoder(coords, { layerWidths: [5, 7], bottleneckDim: 8, hiddenDim: 16, grid: 4 });
    const r = await trainEncoder(m, data, { epochs: 1, batchSize: 4 });
    file = path.join(dir, 'a.safetensors');
    await saveCheckpoint(file, m, r.optimizer, { step: r.steps, epoch: 1, seed: 0 });
    m.dispose();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names both vertex counts when the checkpoint is from another vertex count', async () => {
    const { coords } = world(11, 8, 2);
    const m = new FactorizedEncoder(coords, { layerWidths: [5, 7], bottleneckDim: 8, hiddenDim: 16, grid: 4 });
    await assert.rejects(loadCheckpoint(file, m), (e: Error) => /saved for 6 vertices/.test(e.message) && /has 11 vertices/.test(e.message) && e.message.includes(file));
    m.dispose();
  });

  it('names both width lists when the layers differ', async () => {
    const { coords } = world(6, 8, 2);
    const m = new FactorizedEncoder(coords, { layerWidths: [5, 9], bottleneckDim: 8, hiddenDim: 16, grid: 4 });
    await assert.rejects(loadCheckpoint(file, m), /widths \[5, 7\].*widths \[5, 9\]/);
    m.dispose();
  });

  it('refuses a safetensors file that is not a checkpoint, and a missing file', async () => {
    const { coords } = world(6, 8, 2);
    const m = new FactorizedEncoder(coords, { layerWidths: [5, 7], bottleneckDim: 8, hiddenDim: 16, grid: 4 });
    const other = path.join(dir, 'other.safetensors');
    const { writeSafetensors } = await import('brainnet/io');
    await writeSafetensors(other, { x: { dtype: 'float32', shape: [1], data: new Float32Array(1) } });
    await assert.rejects(loadCheckpoint(other, m), /brainnet encoder checkpoint/);
    await assert.rejects(loadCheckpoint(path.join(dir, 'nope.safetensors'), m), /no such file/);
    m.dispose();
  });
});
