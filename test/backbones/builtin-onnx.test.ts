/**
 * The built-in backbones' ONNX engine: the Keras graph converted by keras-to-onnx.ts and run by onnxruntime-node
 * must give tfjs-layers' own outputs (to 1e-4 at every tapped layer), bit-identical numbers on reruns, and take
 * smaller inputs. The full-size InceptionV3 comparison is in builtin-onnx.slow.ts.
 */
import * as assert from 'node:assert/strict';
import { initBackend, loadBuiltinBackbone, tf } from 'brainnet';
import {
  Backbone, BackboneError, decodeModel, decodeTfjsWeights, kerasLayers, kerasToOnnx, loadNsfwjsModel, loadOnnxBackbone, readNsfwjsModel,
} from 'brainnet/backbones';
import { compareEngines, images } from './engines';

describe('backbones: built-in ONNX engine (Keras -> ONNX -> onnxruntime-node)', function () {
  this.timeout(300000);
  before(async () => {
    await initBackend({ log: null });
  });

  it('decodes the tfjs weight shards bit for bit as tfjs does (uint8-quantised MobileNetV2)', async () => {
    const files = readNsfwjsModel('mobilenetv2');
    assert.match(files.source, /^nsfwjs@4\./);
    const ours = decodeTfjsWeights(files.weightSpecs, files.weightData);
    const model = await loadNsfwjsModel('mobilenetv2');
    try {
      assert.equal(ours.size, model.weights.length);
      for (const w of model.weights) {
        const mine = ours.get(w.originalName);
        assert.ok(mine, `weight ${w.originalName} decoded`);
        assert.deepEqual(mine.shape, w.shape);
        const theirs = w.read().dataSync() as Float32Array;
        assert.ok(Buffer.from(theirs.buffer, theirs.byteOffset, theirs.byteLength).equals(Buffer.from(mine.data.buffer, mine.data.byteOffset, mine.data.byteLength)), `weight ${w.originalName} bit-identical`);
      }
    } finally {
      model.dispose();
    }
    assert.throws(() => decodeTfjsWeights(files.weightSpecs, files.weightData.slice(0, 1000), 'cut'), /cut: the weight bytes end at 1000/);
  });

  it('MobileNetV2 at 224^2 (ReLU6, depthwise, asymmetric zero padding): every tapped layer within 1e-4 of tfjs-layers', async () => {
    await compareEngines('mobilenetv2', undefined, 2, 1e-4);
  });

  it('both networks at smaller inputs (MobileNetV2 at 97^2, InceptionV3 at 107^2): every tapped layer within 1e-4 of tfjs-layers', async () => {
    await compareEngines('mobilenetv2', 97, 2, 1e-4);
    await compareEngines('inceptionv3', 107, 2, 1e-4);
  });

  it('the converted graph: opset 13, input [batch, 3, H, W], one output per tapped layer, only the layers they need', () => {
    const files = readNsfwjsModel('mobilenetv2');
    const w = decodeTfjsWeights(files.weightSpecs, files.weightData);
    const conv = kerasToOnnx(kerasLayers(files.modelTopology, 'm'), w, { outputs: ['block_2_add'], inputSize: [64, 48], name: 'm' });
    assert.deepEqual(conv.outputs, [{ name: 'block_2_add', shape: [24, 16, 12] }]);
    const m = decodeModel(conv.bytes);
    assert.equal(Number(m.opsetImport![0]!.version), 13);
    const g = m.graph!;
    assert.equal(g.input![0]!.name, 'input_1');
    assert.deepEqual(g.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue)), ['batch', 3, 64, 48]);
    assert.deepEqual(g.output!.map((o) => o.name), ['block_2_add']);
    // blocks 0..2 only: no layer of block 3 or later, no classifier head
    const names = new Set(g.node!.map((n) => n.name));
    assert.ok(names.has('block_2_project_BN') && names.has('Conv1_relu'));
    assert.ok(![...names].some((n) => /^block_3|dense|Conv_1/.test(n!)), 'later layers are not converted');
    assert.ok(g.node!.some((n) => n.opType === 'Clip'), 'ReLU6 becomes Clip(0, 6)');
  });

  it('deterministic: the same bytes on a rerun, in another batch, with one thread or two', async () => {
    const two = await loadBuiltinBackbone('mobilenetv2', { inputSize: 96, threads: 2 });
    const one = await loadBuiltinBackbone('mobilenetv2', { inputSize: 96, threads: 1 });
    try {
      const x = images(3, 96, 96, 11);
      const bytes = async (bb: Backbone, t: tf.Tensor4D, row: number) => {
        const tok = await bb.getTokens(t);
        const parts = bb.layers.map((l) => Buffer.from((tok.local[l]!.slice(row, 1).dataSync() as Float32Array).buffer));
        tf.dispose([...Object.values(tok.local), ...Object.values(tok.global)]);
        return Buffer.concat(parts);
      };
      const ref = await bytes(two, x, 1);
      assert.ok(ref.equals(await bytes(two, x, 1)), 'rerun');
      const alone = x.slice(1, 1);
      assert.ok(ref.equals(await bytes(two, alone, 0)), 'batch of one');
      assert.ok(ref.equals(await bytes(one, x, 1)), 'one thread');
      tf.dispose([x, alone]);
    } finally {
      await two.dispose();
      await one.dispose();
    }
  });

  it('names each engine apart (token caches keep them apart) and checks its options', async () => {
    const bb = await loadBuiltinBackbone('mobilenetv2', { inputSize: [64, 96], layers: ['block_2_add', 'out_relu'] });
    try {
      assert.match(bb.name, /^mobilenetv2@nsfwjs4@64x96\+ort1\.\d+\.\d+$/, 'the input size is part of the name');
      assert.deepEqual(bb.inputSize, [64, 96]);
      assert.deepEqual(bb.grids, [[16, 24], [2, 3]]);
      assert.deepEqual(bb.channels, [24, 1280]);
    } finally {
      await bb.dispose();
    }
    await assert.rejects(loadBuiltinBackbone('inceptionv3', { inputSize: 60 }), (e: Error) => e instanceof BackboneError && /inputSize 60 must be .* at least 75/.test(e.message));
    await assert.rejects(loadBuiltinBackbone('mobilenetv2', { engine: 'torch' as 'tfjs' }), /unknown engine 'torch'/);
    await assert.rejects(loadBuiltinBackbone('mobilenetv2', { layers: ['nope'], engine: 'tfjs' }), /no layer 'nope'.*Conv1/);
  });

  it('loadOnnxBackbone takes the bytes of a model, and names it in errors', async () => {
    const files = readNsfwjsModel('mobilenetv2');
    const conv = kerasToOnnx(kerasLayers(files.modelTopology, 'm'), decodeTfjsWeights(files.weightSpecs, files.weightData), { outputs: ['Conv1_relu'], inputSize: [32, 32], name: 'm' });
    const bb = await loadOnnxBackbone(conv.bytes, { name: 'tiny', layers: [{ output: 'Conv1_relu', kind: 'feature-map' }], inputSize: [32, 32], mean: [0, 0, 0], std: [1, 1, 1] });
    assert.deepEqual(bb.grids, [[16, 16]]);
    await bb.dispose();
    await assert.rejects(
      loadOnnxBackbone(conv.bytes, { name: 'tiny', layers: [{ output: 'nope', kind: 'feature-map' }], inputSize: [32, 32], mean: [0, 0, 0], std: [1, 1, 1] }),
      /tiny \(in memory\): declared outputs 'nope' are not graph outputs/,
    );
  });
});

describe('backbones: keras-to-onnx on a small Keras model with the other rules', function () {
  this.timeout(60000);

  it("strided 'same' padding (odd cell at the end), biases, relu activations, depthwise multiplier 2, 'same' pools, Sum, Concatenate", async () => {
    await initBackend({ log: null });
    const H = 13;
    const W = 10;
    const inp = tf.input({ shape: [H, W, 3], name: 'img' });
    const c1 = tf.layers.conv2d({ name: 'c1', filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', useBias: true, biasInitializer: 'randomNormal' }).apply(inp) as tf.SymbolicTensor;
    const c2 = tf.layers.conv2d({ name: 'c2', filters: 4, kernelSize: [2, 4], strides: [2, 2], padding: 'same', useBias: true, biasInitializer: 'randomNormal' }).apply(inp) as tf.SymbolicTensor;
    const dw = tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: false }).apply(c1) as tf.SymbolicTensor;
    const c3 = tf.layers.conv2d({ name: 'c3', filters: 8, kernelSize: 1, useBias: false }).apply(c2) as tf.SymbolicTensor;
    const c4 = tf.layers.conv2d({ name: 'c4', filters: 8, kernelSize: 1, useBias: false }).apply(c1) as tf.SymbolicTensor;
    const sum = tf.layers.add({ name: 'sum3' }).apply([dw, c3, c4]) as tf.SymbolicTensor;
    const act = tf.layers.activation({ name: 'lin', activation: 'linear' }).apply(sum) as tf.SymbolicTensor;
    const mp = tf.layers.maxPooling2d({ name: 'mp', poolSize: 3, strides: 2, padding: 'same' }).apply(act) as tf.SymbolicTensor;
    const ap = tf.layers.averagePooling2d({ name: 'ap', poolSize: 3, strides: 2, padding: 'same' }).apply(act) as tf.SymbolicTensor;
    const cat = tf.layers.concatenate({ name: 'cat', axis: -1 }).apply([mp, ap]) as tf.SymbolicTensor;
    const model = tf.model({ inputs: inp, outputs: [c1, sum, cat] });
    let art: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      art = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const weights = decodeTfjsWeights(art!.weightSpecs!, art!.weightData as ArrayBuffer);
    const conv = kerasToOnnx(kerasLayers(art!.modelTopology, 'small'), weights, { outputs: ['c1', 'sum3', 'cat'], inputSize: [H, W], name: 'small' });
    assert.deepEqual(conv.outputs.map((o) => o.shape), [[4, 7, 5], [8, 7, 5], [16, 4, 3]]);
    const bb = await loadOnnxBackbone(conv.bytes, {
      name: 'small', inputSize: [H, W], mean: [0, 0, 0], std: [1, 1, 1],
      layers: conv.outputs.map((o) => ({ output: o.name, kind: 'feature-map' as const })),
    });
    try {
      const x = images(2, H, W, 3);
      const tok = await bb.getTokens(x);
      const ref = model.predict(tf.transpose(x, [0, 2, 3, 1])) as tf.Tensor4D[];
      ['c1', 'sum3', 'cat'].forEach((l, i) => {
        const d = tf.tidy(() => tf.max(tf.abs(tf.sub(tok.local[l]!, tf.transpose(ref[i]!, [0, 3, 1, 2])))).dataSync()[0]!);
        assert.ok(d < 1e-5, `layer ${l} differs by ${d}`);
      });
      tf.dispose([x, ...ref, ...Object.values(tok.local), ...Object.values(tok.global)]);
    } finally {
      await bb.dispose();
      model.dispose();
    }
  });

  it('refuses what it cannot convert, naming the layer', async () => {
    const inp = tf.input({ shape: [8, 8, 3], name: 'img' });
    const c = tf.layers.conv2d({ name: 'c', filters: 2, kernelSize: 3, activation: 'tanh' }).apply(inp) as tf.SymbolicTensor;
    const model = tf.model({ inputs: inp, outputs: c });
    let art: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      art = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const weights = decodeTfjsWeights(art!.weightSpecs!, art!.weightData as ArrayBuffer);
    assert.throws(() => kerasToOnnx(kerasLayers(art!.modelTopology, 't'), weights, { outputs: ['c'], inputSize: [8, 8], name: 't' }), /layer c uses activation 'tanh'/);
    assert.throws(() => kerasToOnnx(kerasLayers(art!.modelTopology, 't'), weights, { outputs: ['c'], inputSize: [2, 8], name: 't' }), /input 2x8 is too small: layer c \(Conv2D\) would output 0x6/);
    model.dispose();
  });
});
