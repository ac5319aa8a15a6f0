/** Loading: opset checks, unsupported ops, external data, folding of shape chains, input shape errors. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadOnnxGraph, supportedOps } from 'brainnet/backbones';
import { FIX, ortRun, relErr, seeded } from './helpers';

describe('onnx-graph loading', () => {
  before(async () => { await tf.setBackend('cpu'); });

  it('refuses an opset older than 13, naming the opset and how to re-export', async () => {
    await assert.rejects(loadOnnxGraph(path.join(FIX, 'bad_opset11.onnx')), (e: Error) => /opset 11/.test(e.message) && /opset_version=17/.test(e.message) && /convert_version/.test(e.message));
  });

  it('fails at load time on an unsupported op, naming the op type and the node', async () => {
    await assert.rejects(loadOnnxGraph(path.join(FIX, 'bad_unsupported.onnx')), (e: Error) => /NonMaxSuppression/.test(e.message) && /nms_1/.test(e.message));
  });

  it('reads external data side files (location, offset, length) and matches onnxruntime', async () => {
    const file = path.join(FIX, 'external.onnx');
    const x = { data: seeded(18, 4), shape: [3, 6] };
    const ref = await ortRun(file, { x });
    const g = await loadOnnxGraph(file, { inputShapes: { x: [3, 6] } });
    const w = g.constantValue('w')!;
    assert.deepEqual(w.shape, [6, 4]);
    const out = g.run({ x: tf.tensor(x.data, x.shape) });
    assert.ok(relErr(out['y']!.dataSync(), ref['y']!.data) < 1e-5);
    tf.dispose(Object.values(out));
    g.dispose();
  });

  it('asks for inputShapes when an input has a symbolic dim, and rejects shapes that contradict the declared ones', async () => {
    const file = path.join(FIX, 'external.onnx');
    await assert.rejects(loadOnnxGraph(file), (e: Error) => /inputShapes/.test(e.message) && /'x'/.test(e.message));
    await assert.rejects(loadOnnxGraph(file, { inputShapes: { x: [3, 7] } }), /inputShapes\['x'\]/);
  });

  it('names a missing model file', async () => {
    await assert.rejects(loadOnnxGraph(path.join(FIX, 'nope.onnx')), /nope\.onnx.*no such file/);
  });

  it('folds the Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain into one Reshape with a constant shape', async () => {
    const g = await loadOnnxGraph(path.join(FIX, 'ops', 'ShapeChain.onnx'));
    assert.deepEqual(g.stats.opTypes, { Reshape: 1 });
    assert.equal(g.stats.folded, 6);
    assert.deepEqual(g.outputs[0]!.shape, [2, 3, 20]);
    g.dispose();
  });

  it('fuses the torch GroupNorm pattern (Reshape, InstanceNormalization, Reshape, Mul, Add) into one node', async () => {
    const g = await loadOnnxGraph(path.join(FIX, 'ops', 'GroupNorm.onnx'));
    assert.deepEqual(g.stats.opTypes, { 'GroupNorm(fused)': 1 });
    g.dispose();
    const u = await loadOnnxGraph(path.join(FIX, 'unet_tiny.onnx'), { inputShapes: { sample: [2, 4, 8, 8], timestep: [2], encoder_hidden_states: [2, 5, 12] } });
    assert.equal(u.stats.opTypes['InstanceNormalization'], undefined);
    assert.ok((u.stats.opTypes['GroupNorm(fused)'] ?? 0) >= 10);
    u.dispose();
  });

  it('folds the tiny ViT: no Shape, Gather-on-shape or Concat-of-shape nodes remain', async () => {
    const g = await loadOnnxGraph(path.join(FIX, 'vit_tiny.onnx'), { inputShapes: { images: [2, 3, 32, 32] } });
    assert.equal(g.stats.opTypes['Shape'], undefined);
    assert.equal(g.stats.opTypes['ConstantOfShape'], undefined);
    assert.ok(g.stats.folded > 0);
    assert.deepEqual(g.inputs, [{ name: 'images', shape: [2, 3, 32, 32], dtype: 'float32' }]);
    assert.deepEqual(g.outputs.map((o) => o.shape), [[2, 10]]);
    g.dispose();
  });

  it('run() rejects a feed whose shape differs from the folded one, and a missing feed', async () => {
    const g = await loadOnnxGraph(path.join(FIX, 'ops', 'Relu.onnx'));
    const x = tf.zeros([1, 3, 4, 5]);
    assert.throws(() => g.run({ x }), /folded for \[2,3,4,5\].*inputShapes/);
    assert.throws(() => g.run({}), /missing feed 'x'/);
    x.dispose();
    g.dispose();
    assert.throws(() => g.run({}), /disposed/);
  });

  it('returns only the requested outputs and runs only the nodes they need', async () => {
    const g = await loadOnnxGraph(path.join(FIX, 'ops', 'Split.onnx'));
    const x = tf.tensor(seeded(120, 2), [2, 3, 4, 5]);
    const out = g.run({ x }, ['y1']);
    assert.deepEqual(Object.keys(out), ['y1']);
    assert.deepEqual(out['y1']!.shape, [2, 3, 3, 5]);
    tf.dispose([x, out['y1']!]);
    g.dispose();
  });

  it('lists the supported ops', () => {
    const ops = supportedOps();
    for (const op of ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Erf', 'LayerNormalization', 'InstanceNormalization', 'Resize', 'Einsum', 'Shape', 'Range', 'Where']) assert.ok(ops.includes(op), op);
  });
});
