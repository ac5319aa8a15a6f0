/**
 * Slow: the full-size randomly initialised torchvision ViT-B/16 (data/onnx/vit_b_16.onnx, ~330 MB,
 * git-ignored) matches onnxruntime-node, and its input gradient matches finite differences.
 * Write the model with `/usr/bin/python3 data-prep/fixtures/make_onnx_fixtures.py --vit-b16`.
 * Run: `npm run build && npx mocha test/onnx/vit-b16.slow.ts` (skips when the file is absent).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { loadOnnxGraph, OnnxGraph } from 'brainnet/backbones';
import { ortRun, relErr, seeded } from './helpers';

const FILE = path.join(__dirname, '..', '..', 'data', 'onnx', 'vit_b_16.onnx');

describe('onnx-graph: full-size ViT-B/16 (slow)', function () {
  this.timeout(600_000);
  let g: OnnxGraph | null = null;
  const x = { data: seeded(3 * 224 * 224, 11), shape: [1, 3, 224, 224] };
  before(async function () {
    if (!fs.existsSync(FILE)) {
      console.log(`    skipped: ${FILE} is absent; write it with /usr/bin/python3 data-prep/fixtures/make_onnx_fixtures.py --vit-b16`);
      this.skip();
    }
    await tf.setBackend(process.env['BRAINNET_BACKEND'] === 'cpu' ? 'cpu' : 'wasm');
    g = await loadOnnxGraph(FILE, { inputShapes: { images: [1, 3, 224, 224] } });
  });
  after(() => g?.dispose());

  it('forward matches onnxruntime-node to 1e-4 relative', async () => {
    const ref = await ortRun(FILE, { images: x });
    const xt = tf.tensor(x.data, x.shape);
    const out = g!.run({ images: xt });
    const err = relErr(out['out']!.dataSync(), ref['out']!.data);
    console.log(`    ViT-B/16 relative error vs onnxruntime: ${err.toExponential(2)}`);
    assert.ok(err < 1e-4, `relative error ${err}`);
    tf.dispose([xt, out['out']!]);
  });

  it('d(logit 0)/d(image) along a random direction matches a central finite difference', async () => {
    const xt = tf.tensor(x.data, x.shape);
    const f = (im: tf.Tensor) => tf.sum(tf.slice(g!.run({ images: im })['out']!, [0, 0], [1, 1])) as tf.Scalar;
    const grad = tf.grad(f)(xt);
    const v = seeded(x.data.length, 12);
    const vt = tf.tensor(v, x.shape);
    const h = 1e-2;
    const fd = tf.tidy(() => (f(tf.add(xt, tf.mul(vt, h))).dataSync()[0]! - f(tf.sub(xt, tf.mul(vt, h))).dataSync()[0]!) / (2 * h));
    const an = tf.tidy(() => tf.sum(tf.mul(grad, vt)).dataSync()[0]!);
    console.log(`    directional derivative: analytic ${an.toFixed(5)}, finite difference ${fd.toFixed(5)}`);
    assert.ok(Math.abs(an - fd) <= 2e-2 * Math.abs(an) + 1e-3, `analytic ${an} vs finite difference ${fd}`);
    tf.dispose([xt, grad, vt]);
  });
});
