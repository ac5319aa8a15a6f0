/**
 * BrainDiVE pieces: the wasm-safe convolution gradient, the pixel UNet's shapes, the voxel encoder
 * (training recovers a known linear map, save/load, region and vertex-set errors), the
 * differentiable MobileNetV2 path on the active backend, evaluation arithmetic and input errors.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, tf } from 'brainnet';
import { ensureWasmDepthwiseGradients, depthwiseBackpropInput, depthwiseConv2dFrozen, pointwiseConv2d } from 'brainnet/compute';
import { renderCategorisedSet } from 'brainnet/synthetic';
import { builtinFeatureExtractor, builtinFeatureExtractorFor, configValue, BUILTIN_FEATURE_VERSION, layersExecutor, loadNsfwjsModel, type FeatureExtractor } from 'brainnet/backbones';
import { conv3x3, initParams, pixelUNetNHWC, countParams, DEFAULT_PIXEL_UNET, loadPixelDiffusion, saveParams } from 'brainnet/diffusion';
import {
  cachedFeatures, trainVoxelEncoder, saveVoxelEncoder, loadVoxelEncoder, regionIndices, regionActivation, predictVoxels, EncoderError,
  checkScale, topFraction, categoryShare, evaluateRegion, type VoxelEncoder,
} from 'brainnet/braindive';

describe('braindive', () => {
  before(async () => {
    await initBackend();
  });

  it('conv3x3 gradients match finite differences (input and filter)', () => {
    const x = tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const r = tf.randomNormal([2, 5, 5, 4], 0, 1, 'float32', 3);
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv3x3(a as tf.Tensor4D, b as tf.Tensor4D), r));
    const [gx, gw] = tf.grads(f)([x, w]);
    const e = 1e-2;
    for (const [t, g, k, which] of [[w, gw!, 17, 1], [x, gx!, 7, 0]] as const) {
      const d = t.dataSync().slice();
      d[k] += e;
      const bumped = tf.tensor(d, t.shape);
      const fd = ((which === 1 ? f(x, bumped) : f(bumped, w)).dataSync()[0]! - f(x, w).dataSync()[0]!) / e;
      assert.ok(Math.abs(fd - g.dataSync()[k]!) < 2e-2 * Math.max(1, Math.abs(fd)), `${which}: fd ${fd} vs ${g.dataSync()[k]}`);
    }
  });

  it('the fast depthwise input gradient and the pointwise convolution match tfjs\'s own kernels', () => {
    ensureWasmDepthwiseGradients(); // tfjs's JavaScript kernels are the reference
    const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
    for (const [H, W, s, pad] of [[9, 9, 1, 'same'], [8, 10, 1, 'same'], [9, 9, 2, 'valid'], [8, 11, 2, 'valid'], [8, 9, 2, 'same'], [7, 7, 1, 'valid']] as const) {
      tf.tidy(() => {
        const x = tf.randomNormal([2, H, W, 5], 0, 1, 'float32', 1) as tf.Tensor4D;
        const k = tf.randomNormal([3, 3, 5, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
        const dy = tf.randomNormal(tf.depthwiseConv2d(x, k, s, pad).shape, 0, 1, 'float32', 3) as tf.Tensor4D;
        const ref = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(xx as tf.Tensor4D, k, s, pad), dy)))(x);
        const ours = depthwiseBackpropInput(dy, k, x.shape as [number, number, number, number], [s, s], pad);
        assert.deepEqual(ours.shape, ref.shape);
        assert.ok(maxDiff(ours, ref) < 1e-4, `${H}x${W} stride ${s} ${pad}: ${maxDiff(ours, ref)}`);
        const viaFrozen = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(depthwiseConv2dFrozen(xx as tf.Tensor4D, k, [s, s], pad), dy)))(x);
        assert.ok(maxDiff(viaFrozen, ref) < 1e-4);
      });
    }
    tf.tidy(() => {
      const x = tf.randomNormal([2, 4, 5, 6], 0, 1, 'float32', 4) as tf.Tensor4D;
      const k = tf.randomNormal([1, 1, 6, 7], 0, 1, 'float32', 5) as tf.Tensor4D;
      assert.ok(maxDiff(pointwiseConv2d(x, k), tf.conv2d(x, k, 1, 'same')) < 1e-4);
      const dy = tf.randomNormal([2, 4, 5, 7], 0, 1, 'float32', 6);
      const grad = (conv: (xx: tf.Tensor4D) => tf.Tensor) => tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(conv(xx as tf.Tensor4D), dy)))(x);
      assert.ok(maxDiff(grad((xx) => pointwiseConv2d(xx, k)), grad((xx) => tf.conv2d(xx, k, 1, 'same'))) < 1e-4);
    });
  });

  it('pixel UNet maps [B,64,64,3] to [B,64,64,3] with about 1M parameters; the zero-initialised output predicts 0', () => {
    const p = initParams(DEFAULT_PIXEL_UNET, 0);
    const n = countParams(p);
    assert.ok(n > 5e5 && n < 3e6, `params ${n}`);
    const y = pixelUNetNHWC(p, tf.randomNormal([2, 64, 64, 3]) as tf.Tensor4D, [10, 900]);
    assert.deepEqual(y.shape, [2, 64, 64, 3]);
    assert.equal(tf.max(tf.abs(y)).dataSync()[0], 0);
  });

  it('an incomplete diffusion model folder names the missing file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bd-'));
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    await assert.rejects(loadPixelDiffusion(dir), /model\.safetensors is missing/);
    fs.rmSync(path.join(dir, 'config.json'));
    await saveParams(path.join(dir, 'model.safetensors'), initParams(DEFAULT_PIXEL_UNET, 0));
    await assert.rejects(loadPixelDiffusion(dir), /config\.json is missing/);
    await assert.rejects(loadPixelDiffusion(path.join(dir, 'nope')), /does not exist/);
  });

  it('a guidance scale that is not finite is an error', () => {
    for (const s of [NaN, Infinity, -Infinity]) assert.throws(() => checkScale(s), /finite/);
    checkScale(120);
  });

  describe('voxel encoder', () => {
    const d = 16, v = 12, n = 300;
    let enc: VoxelEncoder;
    before(() => {
      // responses = unit-normalised features @ Wtrue + noise
      const rnd = tf.randomNormal([n + 100, d], 0, 1, 'float32', 5);
      const X = tf.div(rnd, tf.norm(rnd, 'euclidean', 1, true));
      const Wt = tf.randomNormal([d, v], 0, 3, 'float32', 6);
      const Y = tf.add(tf.matMul(X, Wt), tf.randomNormal([n + 100, v], 0, 0.05, 'float32', 7));
      const xd = X.dataSync() as Float32Array, yd = Y.dataSync() as Float32Array;
      enc = trainVoxelEncoder(xd.slice(0, n * d), yd.slice(0, n * v), n, d, v, { X: xd.slice(n * d), Y: yd.slice(n * v), n: 100 }, { featureName: 'toy', vertexSet: 'lh 6 + rh 6 #1', regions: { A: Int32Array.from([0, 1, 2]), B: Int32Array.from([5]) } }, { steps: 800, lr: 1e-2 });
    });
    it('AdamW + MSE recovers a linear map (validation R^2 per voxel)', () => {
      const r2 = Array.from(enc.valR2!);
      assert.ok(Math.min(...r2) > 0.8, `R2 ${r2.map((x) => x.toFixed(2))}`);
    });
    it('save/load round trip; another vertex set is an error; unknown regions list the known ones', async () => {
      const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bd-')), 'enc.safetensors');
      await saveVoxelEncoder(f, enc);
      const e2 = await loadVoxelEncoder(f, { expectVertexSet: 'lh 6 + rh 6 #1' });
      assert.deepEqual(Array.from(e2.regions.A!), [0, 1, 2]);
      assert.deepEqual(Array.from(e2.w.dataSync()), Array.from(enc.w.dataSync()));
      await assert.rejects(loadVoxelEncoder(f, { expectVertexSet: 'lh 7 + rh 6 #2' }), /trained for vertex set 'lh 6 \+ rh 6 #1'/);
      assert.throws(() => regionIndices(enc, 'FFA'), (e: Error) => e instanceof EncoderError && /unknown region 'FFA'.*A, B/.test(e.message));
    });
    it('feature cache: keyed by the extractor and the pixels, so a rerun reads it and other images miss it', () => {
      let calls = 0;
      const fx: FeatureExtractor = { name: 'toy-mean', inputSize: 4, dim: 3, features: (im) => { calls++; return tf.mean(im, [2, 3]) as tf.Tensor2D; }, dispose() {} };
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bd-cache-'));
      const px = Uint8Array.from({ length: 2 * 4 * 4 * 3 }, (_, i) => (i * 37) % 256);
      const a = cachedFeatures(fx, px, 2, 4, dir);
      const n1 = calls;
      assert.ok(n1 > 0);
      assert.deepEqual(Array.from(cachedFeatures(fx, px, 2, 4, dir)), Array.from(a));
      assert.equal(calls, n1, 'the second call reads the cache');
      const other = px.slice();
      other[0] = 255 - other[0]!;
      cachedFeatures(fx, other, 2, 4, dir);
      assert.ok(calls > n1, 'other pixels miss the cache');
      assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.f32')).length, 2);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    it('the region score is differentiable through a toy feature extractor', () => {
      const fx: FeatureExtractor = { name: 'toy', inputSize: 4, dim: d, features: (im) => { const f = tf.reshape(tf.slice(tf.reshape(im, [im.shape[0], -1]), [0, 0], [im.shape[0], d]), [im.shape[0], d]) as tf.Tensor2D; return tf.div(f, tf.norm(f, 'euclidean', 1, true)) as tf.Tensor2D; }, dispose() {} };
      const x = tf.randomUniform([2, 3, 4, 4], 0.1, 1, 'float32', 9) as tf.Tensor4D;
      const g = tf.grad((xx: tf.Tensor) => tf.sum(regionActivation(enc, fx, 'A', xx as tf.Tensor4D)))(x);
      assert.ok(tf.norm(g).dataSync()[0]! > 0);
    });
  });

  it('MobileNetV2: the plain-op executor matches tfjs-layers, and gradients reach the image on this backend', async function () {
    this.timeout(120000);
    // the executor against tfjs-layers' own forward pass, at out_relu (after the last ReLU6) and at an expanded ReLU6
    // inside a block, on 2 images at 224^2: an uncapped ReLU differs by tens here
    const model = await loadNsfwjsModel('mobilenetv2');
    const xh = tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    for (const tap of ['block_3_expand_relu', 'out_relu']) {
      const ref = tf.model({ inputs: model.inputs, outputs: model.getLayer(tap).output as tf.SymbolicTensor }).predict(xh) as tf.Tensor4D;
      const ours = layersExecutor(model, tap)(xh);
      const diff = tf.max(tf.abs(tf.sub(ours, ref))).dataSync()[0]!;
      const top = tf.max(ref).dataSync()[0]!;
      assert.ok(diff < 1e-3, `${tap}: max |executor - tfjs-layers| = ${diff}`);
      assert.ok(top <= 6 + 1e-5, `${tap}: ReLU6 caps at 6, max ${top}`);
      tf.dispose([ref, ours]);
    }
    assert.equal(configValue({ maxValue: 6 }, 'maxValue'), 6);
    assert.equal(configValue({ max_value: 6 }, 'maxValue'), 6, 'Keras JSON keys are read too');
    xh.dispose();
    model.dispose();
    const fx = await builtinFeatureExtractor('mobilenetv2');
    const x = tf.randomUniform([1, 3, 64, 64], 0, 1, 'float32', 3) as tf.Tensor4D;
    const f = fx.features(x);
    assert.deepEqual(f.shape, [1, 1280]);
    assert.ok(Math.abs(tf.norm(f).dataSync()[0]! - 1) < 1e-4);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(fx.features(xx as tf.Tensor4D), tf.linspace(-1, 1, 1280))))(x);
    assert.deepEqual(g.shape, [1, 3, 64, 64]);
    assert.ok(tf.norm(g).dataSync()[0]! > 0);
    fx.dispose();
  });

  it('MobileNetV2 at another input size: named by it, rebuilt from an encoder\'s feature name; bad sizes and foreign features are errors', async function () {
    this.timeout(120000);
    const fx = await builtinFeatureExtractor('mobilenetv2', undefined, { inputSize: 128 });
    assert.equal(fx.name, 'mobilenetv2@nsfwjs4/out_relu@128');
    assert.equal(fx.inputSize, 128);
    assert.deepEqual(fx.features(tf.zeros([2, 3, 64, 64]) as tf.Tensor4D).shape, [2, 1280]);
    const again = await builtinFeatureExtractorFor({ featureName: fx.name } as VoxelEncoder);
    assert.equal(again.inputSize, 128);
    const x = tf.randomUniform([1, 3, 64, 64], 0, 1, 'float32', 4) as tf.Tensor4D;
    assert.ok(tf.max(tf.abs(tf.sub(fx.features(x), again.features(x)))).dataSync()[0]! < 1e-6);
    await assert.rejects(builtinFeatureExtractor('mobilenetv2', undefined, { inputSize: 100 }), /inputSize 100 .*multiple of 32/);
    await assert.rejects(builtinFeatureExtractorFor({ featureName: 'clip-vit-b-16' } as VoxelEncoder), /'clip-vit-b-16'.*onnxFeatureExtractor/);
    fx.dispose();
    again.dispose();
  });

  it('feature versions: an encoder saved without one was trained on version 1 (uncapped ReLU6) and gets that extractor back; a mismatch is an error', async function () {
    this.timeout(120000);
    const v2 = await builtinFeatureExtractor('mobilenetv2', undefined, { inputSize: 128 });
    assert.equal(v2.version, BUILTIN_FEATURE_VERSION);
    const d = v2.dim, nv = 2;
    const base = { dim: d, nVoxels: nv, vertexSet: 'lh 1 + rh 1 #0', w: tf.zeros([d, nv]) as tf.Tensor2D, b: tf.zeros([nv]) as tf.Tensor1D, regions: {} };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bd-ver-'));
    // a file as saved before versions were recorded (no featureVersion in its metadata), and one saved now
    await saveVoxelEncoder(path.join(dir, 'old.safetensors'), { ...base, featureName: v2.name });
    await saveVoxelEncoder(path.join(dir, 'new.safetensors'), { ...base, featureName: v2.name, featureVersion: v2.version });
    const old = await loadVoxelEncoder(path.join(dir, 'old.safetensors'));
    const cur = await loadVoxelEncoder(path.join(dir, 'new.safetensors'));
    assert.deepEqual([old.featureVersion, cur.featureVersion], [1, BUILTIN_FEATURE_VERSION]);
    const v1 = await builtinFeatureExtractorFor(old);
    assert.equal(v1.version, 1);
    assert.equal(v1.name, v2.name);
    // the versions differ in values (ReLU6 capped or not), on bright random images
    const x = tf.randomUniform([2, 3, 128, 128], 0, 1, 'float32', 11) as tf.Tensor4D;
    const gap = tf.max(tf.abs(tf.sub(v1.features(x), v2.features(x)))).dataSync()[0]!;
    assert.ok(gap > 1e-3, `version 1 and 2 features differ (max gap ${gap})`);
    assert.throws(() => predictVoxels(old, v2, x), /trained on version 1 .* makes version 2/);
    assert.deepEqual(predictVoxels(old, v1, x).shape, [2, nv]);
    await assert.rejects(builtinFeatureExtractor('mobilenetv2', undefined, { featureVersion: 7 }), /feature version 7 is unknown/);
    fs.rmSync(dir, { recursive: true, force: true });
    tf.dispose([x, base.w, base.b]);
    v1.dispose();
    v2.dispose();
  });

  it('evaluation: top fraction, category share and the effect size', () => {
    assert.deepEqual(topFraction([1, 5, 3, 4, 2], 0.4), [1, 3]);
    const onehot = (cls: number[]) => cls.flatMap((c) => [0, 1, 2, 3, 4].map((k) => (k === c ? 1 : 0)));
    assert.equal(categoryShare(onehot([0, 0, 1, 2]), 4, 'faces'), 0.5);
    const r = evaluateRegion('FFA', 'faces', { probs: onehot([0, 0, 0, 1]), activation: [3, 4, 5, 4] }, { probs: onehot([0, 1, 2, 3]), activation: [0, 1, 2, 1] });
    assert.equal(r.guidedShare, 0.75);
    assert.equal(r.unguidedShare, 0.25);
    assert.ok(Math.abs(r.effectSD - 3 / Math.sqrt(2 / 3)) < 1e-9);
  });

  it('categorised stimuli: balanced labels, deterministic pixels', () => {
    const a = renderCategorisedSet(10, 32, 3), b = renderCategorisedSet(10, 32, 3);
    assert.deepEqual(Array.from(a.labels), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    assert.deepEqual(a.pixels, b.pixels);
  });
});
