/** Every op fixture and the tiny whole models: outputs match onnxruntime-node (CPU) to 1e-4 relative. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadOnnxGraph } from 'brainnet/backbones';
import { FIX, manifest, inputsFor, ortRun, relErr, tfFeeds } from './helpers';

describe('onnx-graph parity with onnxruntime-node', () => {
  before(async () => { await tf.setBackend('cpu'); });
  const report: Record<string, number> = {};
  after(() => { if (process.env['BRAINNET_VERBOSE']) console.log(JSON.stringify(report, null, 1)); });
  for (const e of manifest()) {
    it(`${e.model ? 'model' : 'op'} ${e.name}`, async () => {
      const file = path.join(FIX, e.file);
      const inputs = inputsFor(e);
      const ref = await ortRun(file, inputs);
      const g = await loadOnnxGraph(file, { inputShapes: e.inputs });
      const before = tf.memory().numTensors;
      const feeds = tfFeeds(inputs);
      const out = g.run(feeds);
      let worst = 0;
      for (const [name, r] of Object.entries(ref)) {
        const t = out[name];
        assert.ok(t, `output ${name} missing`);
        assert.deepEqual(t.shape, r.dims, `${name} shape`);
        const err = relErr(await t.data() as Float32Array, r.data);
        worst = Math.max(worst, err);
        assert.ok(err <= 1e-4, `${e.name}/${name}: relative error ${err.toExponential(2)} > 1e-4`);
      }
      report[e.name] = worst;
      tf.dispose(Object.values(out));
      tf.dispose(Object.values(feeds));
      assert.equal(tf.memory().numTensors, before, 'run() leaks no tensors');
      g.dispose();
    });
  }
});
