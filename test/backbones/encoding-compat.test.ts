/** The token cache's batches are what the factorized encoding model consumes (layer order, [B, C, 8, 8], [B, C]). */
import * as assert from 'node:assert/strict';
import { initBackend, loadBuiltinBackbone, tf } from 'brainnet';
import { buildTokenCache, memoryImageSource } from 'brainnet/backbones';
import { FactorizedEncoder } from 'brainnet/encoding';

describe('backbones -> encoding: token cache batches feed FactorizedEncoder', function () {
  this.timeout(60000);
  it('a MobileNetV2 cache of 3 images predicts [B, N] through the encoder', async () => {
    await initBackend({ log: null });
    const bb = await loadBuiltinBackbone('mobilenetv2');
    const imgs = [0, 1, 2].map((s) => memoryImageSource({ width: 24, height: 20, data: Uint8Array.from({ length: 24 * 20 * 3 }, (_, i) => (i * (s + 3) * 13) % 256) }));
    const cache = await buildTokenCache(bb, imgs, { log: null, progress: false, batchSize: 3 });
    await bb.dispose();
    const enc = new FactorizedEncoder([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], { layerWidths: cache.channels, layerNames: cache.layers, seed: 0 });
    const batch = await cache.getBatch([2, 0]);
    assert.equal(enc.checkTokens(batch), 2);
    const pred = enc.predict(batch);
    assert.deepEqual(pred.shape, [2, 4]);
    assert.ok(Array.from(pred.dataSync()).every(Number.isFinite));
    tf.dispose([pred, ...batch.local, ...batch.global]);
  });
});
