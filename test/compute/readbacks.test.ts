/** The readback counter on the cpu backend: dataSync/data/arraySync/array each count once, with bytes. */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { countReadbacks, countReadbacksAsync, startReadbackCounter } from 'brainnet/compute';

describe('readback counter (cpu)', () => {
  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  it('counts dataSync and arraySync with their bytes and shapes', () => {
    const a = tf.ones([3, 4]);
    const r = countReadbacks(() => {
      const b = tf.mul(a, 2);
      const s = tf.sum(b);
      const v = s.dataSync()[0]!;
      const arr = b.arraySync() as number[][];
      tf.dispose([b, s]);
      return v + arr[0]![0]!;
    });
    assert.equal(r.result, 26);
    assert.equal(r.count, 2);
    assert.equal(r.bytes, 4 + 48);
    assert.deepEqual(r.shapes, [[], [3, 4]]);
    a.dispose();
  });

  it('does not count ops whose kernels read their inputs internally (gather on cpu)', () => {
    const x = tf.randomNormal([10, 5]);
    const idx = tf.tensor1d([1, 3, 5], 'int32');
    const r = countReadbacks(() => tf.tidy(() => tf.sum(tf.gather(x, idx)).shape.length));
    assert.equal(r.count, 0);
    tf.dispose([x, idx]);
  });

  it('counts async data() and array() once each, and uploads', async () => {
    const r = await countReadbacksAsync(async () => {
      const t = tf.tensor1d([1, 2, 3, 4]);
      const d = await t.data();
      const a = (await t.array()) as number[];
      t.dispose();
      return d[3]! + a[0]!;
    });
    assert.equal(r.result, 5);
    assert.equal(r.count, 2);
    assert.equal(r.bytes, 32);
    assert.ok(r.uploads >= 1 && r.uploadBytes >= 16, `uploads ${r.uploads} bytes ${r.uploadBytes}`);
  });

  it('nests counters and restores the engine when the last one stops', () => {
    const engine = tf.engine() as unknown as { readSync: unknown };
    const orig = engine.readSync;
    const outer = startReadbackCounter();
    const t = tf.scalar(1);
    t.dataSync();
    const inner = countReadbacks(() => t.dataSync());
    t.dataSync();
    const o = outer.stop();
    assert.equal(inner.count, 1);
    assert.equal(o.count, 3);
    assert.equal(engine.readSync, orig);
    t.dispose();
  });

  it('stops counting when fn throws', () => {
    const engine = tf.engine() as unknown as { readSync: unknown };
    const orig = engine.readSync;
    assert.throws(() => countReadbacks(() => { throw new Error('boom'); }), /boom/);
    assert.equal(engine.readSync, orig);
  });
});

// ---------------------------------------------------------------------------------------------
// Readbacks of the hot paths, on the cpu backend (a regression here stalls a GPU).
// (The encoder training step is covered in test/encoding/head-gpu.test.ts: exactly 1 per step.)

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildTokenCache, memoryImageSource, type Backbone, type BackboneTokens } from 'brainnet/backbones';
import { brainGuidance, makeScheduler, sampleGuided, type DecodeFn, type ScoreFn, type UNetFn } from 'brainnet/diffusion';

describe('readbacks of the hot paths (cpu)', () => {
  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  it("token cache getBatch hands tensors over without reading anything back (RAM and disk)", async () => {
    const bb = {
      name: 'fake-readbacks', inputSize: [16, 16] as [number, number], mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.25, 0.25, 0.25] as [number, number, number],
      layers: ['a'], channels: [3], grids: [[8, 8]] as [number, number][],
      async getTokens(x: tf.Tensor4D): Promise<BackboneTokens> {
        return tf.tidy(() => {
          const a = tf.transpose(tf.avgPool(tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D, 2, 2, 'valid'), [0, 3, 1, 2]);
          return { local: { a }, global: { a: tf.mean(a, [2, 3]) } } as unknown as tf.TensorContainerObject;
        }) as unknown as BackboneTokens;
      },
      dispose() {},
    } as Backbone;
    const imgs = [0, 1, 2, 3].map((s) => memoryImageSource({ width: 16, height: 16, data: Uint8Array.from({ length: 768 }, (_, i) => (i * 31 + s * 17) % 256) }));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-readbacks-'));
    try {
      for (const opts of [{}, { dir, ramBudgetBytes: 0 }]) {
        const cache = await buildTokenCache(bb, imgs, { ...opts, log: null, progress: false });
        const r = await countReadbacksAsync(() => cache.getBatch([2, 0, 1]));
        assert.equal(r.count, 0, `inRam ${cache.inRam}: ${r.count} readbacks`);
        assert.equal(r.uploads, 2, 'one upload per layer for local and global tokens');
        tf.dispose([...r.result.local, ...r.result.global]);
        await cache.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const unet: UNetFn = (x) => tf.mul(x, 0.6) as tf.Tensor4D;
  const decode: DecodeFn = (z) => tf.tanh(tf.image.resizeNearestNeighbor(tf.transpose(tf.slice(z, [0, 0, 0, 0], [-1, 3, -1, -1]), [0, 2, 3, 1]) as tf.Tensor4D, [16, 16]).transpose([0, 3, 1, 2])) as tf.Tensor4D;
  const score: ScoreFn = (img) => tf.mean(img, [1, 2, 3]);

  it('one guidance evaluation (full gradient) reads back one scalar, the score', () => {
    const x = tf.randomNormal([2, 4, 8, 8], 0, 1, 'float32', 3) as tf.Tensor4D;
    const eps = unet(x, 500, null);
    const r = countReadbacks(() => brainGuidance({ unet, decode, score, x, eps, t: 500, alphaBar: 0.5, guidanceScale: 10, gradient: 'full', context: null, vaeScalingFactor: 1, scoreSize: 32 }));
    assert.equal(r.count, 1);
    assert.equal(r.bytes, 4);
    tf.dispose([x, eps, r.result.g]);
  });

  it('a guided sampling step: 2 scalar and 2 latent-sized readbacks (pins the current count; the design allows scalars only)', async () => {
    const steps = 3;
    const r = await countReadbacksAsync(() => sampleGuided({ unet, decode, score, guidanceScale: 10, gradient: 'full', scheduler: makeScheduler('ddim'), steps, latentShape: [4, 8, 8], batch: 2, seed: 1, progress: false, vaeScalingFactor: 1, scoreSize: 32 }));
    tf.dispose([r.result.images, r.result.latents]);
    const latent = r.shapes.filter((s) => s.join() === '2,4,8,8').length;
    const scalars = r.shapes.filter((s) => s.length === 0).length;
    // Per step: the score (scalar), allFinite(g) (the whole gradient), tf.norm(g) (scalar) and
    // allFinite(prev) (the whole latents). sampling.ts could test finiteness on the norm and on a device
    // reduction (tf.all(tf.isFinite(x))): 2 scalars per step. Lower these numbers when it does.
    assert.equal(r.count, 4 * steps, r.shapes.map((s) => `[${s}]`).join(' '));
    assert.equal(scalars, 2 * steps);
    assert.equal(latent, 2 * steps);
  });
});
