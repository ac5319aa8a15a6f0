/** The tiny models on the wasm backend (the default on machines without tfjs-node/WebGPU): parity and a gradient. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { loadOnnxGraph } from 'brainnet/backbones';
import { FIX, manifest, inputsFor, ortRun, relErr, tfFeeds } from './helpers';

describe('onnx-graph on the wasm backend', () => {
  let previous = 'cpu';
  before(async () => {
    previous = tf.getBackend() ?? 'cpu';
    await tf.setBackend('wasm');
  });
  after(async () => { await tf.setBackend(previous); });

  for (const e of manifest().filter((m) => m.model)) {
    it(`${e.name}: forward matches onnxruntime and tf.grad runs`, async () => {
      const file = path.join(FIX, e.file);
      const inputs = inputsFor(e, 2);
      const ref = await ortRun(file, inputs);
      const g = await loadOnnxGraph(file, { inputShapes: e.inputs });
      const feeds = tfFeeds(inputs);
      const out = g.run(feeds);
      const err = relErr(out['out']!.dataSync(), ref['out']!.data);
      assert.ok(err < 1e-4, `relative error ${err}`);
      const wrt = Object.keys(e.inputs)[0]!;
      const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.square(g.run({ ...feeds, [wrt]: x })['out']!)))(feeds[wrt]!);
      assert.deepEqual(grad.shape, e.inputs[wrt]);
      assert.ok(tf.tidy(() => tf.sum(tf.abs(grad)).dataSync()[0]!) > 0);
      tf.dispose([grad, ...Object.values(out), ...Object.values(feeds)]);
      g.dispose();
    });
  }
});
