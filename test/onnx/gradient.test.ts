/** tf.grad through the executor matches central finite differences (float32: h = 1e-2, loose relative tolerance). */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadOnnxGraph, OnnxGraph } from 'brainnet/backbones';
import { FIX, manifest, inputsFor, seeded } from './helpers';

/** loss(x) = sum(out * w) for a fixed random w, with the other inputs fixed. */
function lossFn(g: OnnxGraph, feeds: Record<string, tf.Tensor>, wrt: string, weights: Record<string, tf.Tensor>) {
  return (x: tf.Tensor): tf.Scalar => {
    const out = g.run({ ...feeds, [wrt]: x });
    return tf.addN(Object.entries(out).map(([k, t]) => tf.sum(tf.mul(t, weights[k]!)))) as tf.Scalar;
  };
}

async function checkGrad(file: string, inputs: Record<string, number[]>, wrt: string, coords: number, seed: number, h: number): Promise<number> {
  const g = await loadOnnxGraph(file, { inputShapes: inputs });
  const data = inputsFor({ name: '', file, inputs, grad: true }, seed);
  const feeds: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(data)) feeds[k] = tf.tensor(v.data, v.shape);
  const weights: Record<string, tf.Tensor> = {};
  g.outputs.forEach((o, i) => (weights[o.name] = tf.tensor(seeded(o.shape.reduce((a, b) => a * b, 1), 999 + i), o.shape)));
  const f = lossFn(g, feeds, wrt, weights);
  const x = feeds[wrt]!;
  const grad = tf.grad(f)(x);
  const gd = await grad.data();
  const xd = (await x.data()) as Float32Array;
  const L = (arr: Float32Array) => tf.tidy(() => f(tf.tensor(arr, x.shape)).dataSync()[0]!);
  let worst = 0;
  const gscale = Math.max(...Array.from(gd, Math.abs));
  if (!(gscale > 0)) throw new Error(`${path.basename(file)}: the gradient is all zero (or NaN); the check would be vacuous`);
  // a random direction (averages float32 noise) plus a few single coordinates
  const dir = seeded(xd.length, seed + 7);
  const checks: Float32Array[] = [dir];
  for (let c = 0; c < coords; c++) {
    const e = new Float32Array(xd.length);
    e[Math.floor(((c + 0.5) / coords) * xd.length)] = 1;
    checks.push(e);
  }
  for (const v of checks) {
    const plus = xd.map((a, i) => a + h * v[i]!), minus = xd.map((a, i) => a - h * v[i]!);
    const fd = (L(plus) - L(minus)) / (2 * h);
    let an = 0, vn = 0;
    for (let i = 0; i < xd.length; i++) { an += gd[i]! * v[i]!; vn += Math.abs(v[i]!); }
    const err = Math.abs(fd - an) / Math.max(Math.abs(an), gscale * (vn > 1 ? Math.sqrt(vn) : 1));
    worst = Math.max(worst, err);
  }
  tf.dispose([grad, ...Object.values(feeds), ...Object.values(weights)]);
  g.dispose();
  return worst;
}

describe('onnx-graph gradients vs central finite differences', () => {
  before(async () => { await tf.setBackend('cpu'); });
  for (const e of manifest().filter((m) => m.grad)) {
    const wrt = Object.keys(e.inputs).find((k) => k !== 'timestep')!;
    it(`${e.model ? 'model' : 'op'} ${e.name} d/d${wrt}`, async () => {
      const err = await checkGrad(path.join(FIX, e.file), e.inputs, wrt, e.model ? 3 : 2, 3, e.model ? 1e-2 : 1e-3);
      assert.ok(err < 2e-2, `${e.name}: gradient relative error ${err.toExponential(2)}`);
    });
  }
  it('tf.grads gives gradients for two inputs at once (unet: sample and encoder_hidden_states)', async () => {
    const e = manifest().find((m) => m.name === 'unet_tiny')!;
    const g = await loadOnnxGraph(path.join(FIX, e.file), { inputShapes: e.inputs });
    const d = inputsFor(e, 5);
    const t = tf.tensor(d['timestep']!.data, d['timestep']!.shape);
    const before = tf.memory().numTensors;
    const gs = tf.grads((s: tf.Tensor, c: tf.Tensor) => tf.sum(g.run({ sample: s, timestep: t, encoder_hidden_states: c })['out']!))(
      [tf.tensor(d['sample']!.data, d['sample']!.shape), tf.tensor(d['encoder_hidden_states']!.data, d['encoder_hidden_states']!.shape)]);
    assert.deepEqual(gs[0]!.shape, e.inputs['sample']);
    assert.deepEqual(gs[1]!.shape, e.inputs['encoder_hidden_states']);
    assert.ok(tf.tidy(() => tf.max(tf.abs(gs[1]!)).dataSync()[0]!) > 0, 'cross-attention context receives gradient');
    tf.dispose(gs);
    assert.ok(tf.memory().numTensors <= before + 2, 'only the two fed tensors stay alive');
    g.dispose();
    t.dispose();
  });
});
