import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { initBackend, loadOnnxBackbone, loadOnnxBackboneFromSidecar, tf } from 'brainnet';
import { BackboneError, getCheckedTokens, splitLayerOutput } from 'brainnet/backbones';
import { compareWithReference } from './reference';

const FIX = path.join(__dirname, '..', 'fixtures', 'backbones', 'tiny-vit');

describe('backbones: ONNX through onnxruntime-node', function () {
  this.timeout(20000);
  before(async () => { await initBackend({ log: null }); });

  it('tiny exported ViT matches the PyTorch tokens saved with it (CLS = global, patches = local grid)', async () => {
    const bb = await loadOnnxBackboneFromSidecar(path.join(FIX, 'tiny-vit.json'));
    try {
      assert.deepEqual(bb.layers, ['block_0', 'block_1', 'block_2']);
      assert.deepEqual(bb.channels, [32, 32, 32]);
      assert.deepEqual(bb.grids, [[4, 4], [4, 4], [4, 4]]);
      const { maxRelErr } = await compareWithReference(bb, path.join(FIX, 'tiny-vit.reference'));
      assert.ok(maxRelErr < 1e-4, `max relative error ${maxRelErr}`);
      const t = await getCheckedTokens(bb, tf.zeros([3, 3, 32, 32]));
      assert.deepEqual(t.local['block_2']!.shape, [3, 32, 4, 4]);
    } finally {
      await bb.dispose();
    }
  });

  it('gives clear errors for undeclared outputs, wrong widths, wrong grids and wrong input sizes', async () => {
    const onnx = path.join(FIX, 'tiny-vit.onnx');
    const base = { inputSize: [32, 32] as [number, number], mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] };
    await assert.rejects(loadOnnxBackbone(onnx, { ...base, layers: [{ output: 'block_9', kind: 'vit-tokens' }] }), /'block_9' are not graph outputs.*block_0, block_1, block_2/);
    await assert.rejects(loadOnnxBackbone(onnx, { ...base, layers: [{ output: 'block_0', kind: 'vit-tokens', channels: 768 }] }), /declares 768 channels but the graph gives 32/);
    await assert.rejects(loadOnnxBackbone(onnx, { ...base, layers: [{ output: 'block_0', kind: 'vit-tokens', grid: [2, 8], prefixTokens: 2 }] }), /expected 2x8 = 16 patch tokens.*found \[1, 17, 32\]/);
    await assert.rejects(loadOnnxBackbone(onnx, { ...base, layers: [{ output: 'block_0', kind: 'feature-map' }] }), (e: Error) => e instanceof BackboneError && /expected \[B, C, h, w\], found \[1, 17, 32\]/.test(e.message));
    await assert.rejects(loadOnnxBackbone(onnx, { ...base, inputSize: [64, 64], layers: [{ output: 'block_0', kind: 'vit-tokens' }] }), /running a \[1, 3, 64, 64\] image failed/);
    await assert.rejects(loadOnnxBackbone(path.join(FIX, 'tiny-vit.json'), { ...base, layers: [{ output: 'x', kind: 'vit-tokens' }] }), /an ONNX model that onnxruntime can load/);
  });

  it('splits feature maps, patch grids and prefixed token sequences', () => {
    // feature map [1, 2, 2, 2]: global = spatial mean
    const fm = splitLayerOutput(Float32Array.from([1, 2, 3, 4, 10, 20, 30, 40]), [1, 2, 2, 2], { output: 'o', kind: 'feature-map' });
    assert.deepEqual(Array.from(fm.global), [2.5, 25]);
    assert.deepEqual([fm.C, fm.h, fm.w], [2, 2, 2]);
    // patch grid [1, 2, 2, C=2] channels-last -> [1, 2, 2, 2] channels-first, global = mean
    const pg = splitLayerOutput(Float32Array.from([1, 10, 2, 20, 3, 30, 4, 40]), [1, 2, 2, 2], { output: 'o', kind: 'patch-grid' });
    assert.deepEqual(Array.from(pg.local), [1, 2, 3, 4, 10, 20, 30, 40]);
    assert.deepEqual(Array.from(pg.global), [2.5, 25]);
    // ViT tokens with CLS + 1 register: [1, 2 + 4, C=1], global = CLS, registers dropped
    const vt = splitLayerOutput(Float32Array.from([9, 8, 1, 2, 3, 4]), [1, 6, 1], { output: 'o', kind: 'vit-tokens', prefixTokens: 2 });
    assert.deepEqual(Array.from(vt.global), [9]);
    assert.deepEqual(Array.from(vt.local), [1, 2, 3, 4]);
  });
});
