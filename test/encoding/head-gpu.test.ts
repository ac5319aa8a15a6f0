/**
 * The device-resident read-out (head-gpu.ts) and the device path of the training step (train-step.ts)
 * on the cpu and wasm backends: forward and gradients equal the fused head's and the PyTorch fixture's
 * to 1e-4 relative; a training step reads back exactly once (loss and data loss together); AdamW on
 * the device moments follows AdamW on the host moments; an allocation failure becomes a clear error
 * and leaks nothing.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DeviceOutOfMemoryError, countReadbacks, countReadbacksAsync, isOutOfMemoryError, syncReadbackUnsupported } from 'brainnet/compute';
import {
  AdamW, FactorizedEncoder, autoHead, deviceHead, encoderLoss, fusedHead, trainEncoder, trainStep, type EncoderBatch,
} from 'brainnet/encoding';
import { loadParityFixture, relErr } from './fixture';

const TOL = 1e-4;

function rand(shape: number[], seed: number, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = ((x / 2 ** 32) * 2 - 1) * scale;
  }
  return tf.tensor(a, shape);
}

for (const backend of ['cpu', 'wasm']) {
  describe(`device encoding head (${backend})`, function () {
    before(async () => {
      await tf.setBackend(backend);
      await tf.ready();
    });

    it('equals the fused head in value and in the gradient of every input (incl. the zero-padded border, chunked)', () => {
      const L = 3, B = 2, g = 4, D = 8, N = 57;
      const T = rand([L, B, g * g, D], 1);
      const G = rand([L, B, D], 2);
      const W = rand([N, D], 3);
      const P = tf.softmax(rand([N, L], 4, 2));
      const S = tf.sigmoid(rand([N], 5, 2));
      const XY = tf.tanh(rand([N, 2], 6, 2)); // reaches |x| > 0.9: corners outside the 4x4 grid
      const DY = rand([B, N], 7);
      const inputs = [T, G, W, P, S, XY];
      const grad = (f: (...a: tf.Tensor[]) => tf.Tensor) => tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), DY)));
      const fused = (...a: tf.Tensor[]) => fusedHead(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!);
      for (const chunk of [undefined, 10]) {
        const dev = (...a: tf.Tensor[]) => deviceHead(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, { chunk });
        const yf = fused(...inputs);
        const yd = dev(...inputs);
        assert.deepEqual(yd.shape, [B, N]);
        assert.ok(relErr(yd.dataSync(), yf.dataSync()) < TOL, `value rel err ${relErr(yd.dataSync(), yf.dataSync())}`);
        const gf = grad(fused)(inputs);
        const gd = grad(dev)(inputs);
        ['tokens', 'globals', 'w', 'p', 's', 'xy'].forEach((name, i) => {
          const e = relErr(gd[i]!.dataSync(), gf[i]!.dataSync());
          assert.ok(e < TOL, `d${name} (chunk ${chunk}): rel err ${e}`);
        });
        tf.dispose([yf, yd, ...gf, ...gd]);
      }
      tf.dispose([...inputs, DY]);
    });

    it('the model with head "device" matches the PyTorch fixture (prediction, loss, every gradient)', () => {
      const fx = loadParityFixture();
      const { N, B, D, H, widths, step } = fx.meta;
      const model = new FactorizedEncoder(fx.get('coords').data, { layerWidths: widths, bottleneckDim: D, hiddenDim: H, seed: 1, head: 'device' });
      assert.equal(model.headKind(), 'device');
      const values: Record<string, Float32Array> = {};
      for (const [name] of model.namedParams()) values[name] = fx.get(name).data;
      model.setParams(values);
      const t = {
        local: widths.map((_, l) => { const a = fx.get(`input.local.${l}`); return tf.tensor4d(a.data, a.shape as [number, number, number, number]); }),
        global: widths.map((_, l) => tf.tensor2d(fx.get(`input.global.${l}`).data, [B, widths[l]!])),
      };
      const target = tf.tensor2d(fx.get('target').data, [B, N]);
      const named = model.namedParams();
      let predE = NaN;
      const { value, grads } = tf.variableGrads(() => {
        const { pred, reg } = model.forward(t);
        predE = relErr(pred.dataSync(), fx.get('out.pred').data);
        return encoderLoss(pred, target, reg, step);
      }, named.map(([, v]) => v));
      assert.ok(predE < TOL, `pred rel err ${predE}`);
      const loss = value.dataSync()[0]!;
      assert.ok(Math.abs(loss - fx.meta.scalars.loss) < TOL * Math.abs(fx.meta.scalars.loss), `loss ${loss} vs ${fx.meta.scalars.loss}`);
      const worst: string[] = [];
      for (const [name, v] of named) {
        const e = relErr(grads[v.name]!.dataSync(), fx.get(`grad.${name}`).data);
        if (!(e < TOL)) worst.push(`${name}: ${e.toExponential(2)}`);
      }
      assert.deepEqual(worst, []);
      tf.dispose([value, target, ...Object.values(grads), ...t.local, ...t.global]);
      model.dispose();
    });
  });
}

/** A small random problem: tokens and responses for `size` images. */
function smallProblem(N = 40, widths = [6, 5], size = 12, hw = 3): { coords: Float32Array; data: { size: number; batch(idx: number[]): EncoderBatch } } {
  const coords = rand([N, 3], 11, 50).dataSync() as Float32Array;
  const locals = widths.map((c, l) => rand([size, c, hw, hw], 20 + l).dataSync() as Float32Array);
  const globals = widths.map((c, l) => rand([size, c], 30 + l).dataSync() as Float32Array);
  const resp = rand([size, N], 40).dataSync() as Float32Array;
  const data = {
    size,
    batch(idx: number[]) {
      const pick = (src: Float32Array, per: number) => {
        const out = new Float32Array(idx.length * per);
        idx.forEach((i, k) => out.set(src.subarray(i * per, (i + 1) * per), k * per));
        return out;
      };
      return {
        tokens: {
          local: widths.map((c, l) => tf.tensor4d(pick(locals[l]!, c * hw * hw), [idx.length, c, hw, hw])),
          global: widths.map((c, l) => tf.tensor2d(pick(globals[l]!, c), [idx.length, c])),
        },
        target: tf.tensor2d(pick(resp, N), [idx.length, N]),
      };
    },
  };
  return { coords, data };
}

describe('device training step (cpu)', () => {
  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  it("'auto' picks the device head on webgpu and tfjs-node-gpu, the onnx host step elsewhere (fused without onnxruntime)", () => {
    assert.equal(autoHead('webgpu'), 'device');
    assert.equal(autoHead('tensorflow', true), 'device', 'tfjs-node-gpu');
    assert.equal(autoHead('tensorflow', false), 'onnx', 'tfjs-node on the CPU');
    assert.equal(autoHead('tensorflow'), 'onnx', 'tfjs-node-gpu is not loaded here');
    assert.equal(autoHead('wasm'), 'onnx');
    assert.equal(autoHead('cpu'), 'onnx');
    assert.equal(autoHead('wasm', false, false), 'fused', 'onnxruntime-node did not load');
    assert.equal(autoHead('webgpu', false, false), 'device');
    const { coords } = smallProblem();
    const m = new FactorizedEncoder(coords, { layerWidths: [6, 5], bottleneckDim: 8, hiddenDim: 8 });
    assert.equal(m.headKind(), 'onnx');
    assert.equal((m.config as unknown as Record<string, unknown>)['head'], undefined, 'the head choice is not part of the saved config');
    m.dispose();
  });

  it('reads back exactly once per step (loss and data loss together, 8 bytes); the fused path reads back many times', async () => {
    const { coords, data } = smallProblem();
    const counts: Record<string, number[]> = {};
    for (const head of ['device', 'fused'] as const) {
      const model = new FactorizedEncoder(coords, { layerWidths: [6, 5], bottleneckDim: 8, hiddenDim: 8, head });
      const opt = new AdamW();
      counts[head] = [];
      for (let step = 0; step < 4; step++) {
        const { tokens, target } = data.batch([step, step + 1, step + 2]);
        const r = await countReadbacksAsync(() => trainStep({ model, optimizer: opt, tokens, target, step }));
        assert.ok(Number.isFinite(r.result.loss));
        counts[head]!.push(r.count);
        if (head === 'device') assert.equal(r.bytes, 8);
        tf.dispose([target, ...tokens.local, ...tokens.global]);
      }
      model.dispose();
    }
    assert.deepEqual(counts['device'], [1, 1, 1, 1]);
    assert.ok(counts['fused']!.every((c) => c > 10), `fused ${counts['fused']}`);
  });

  it('trainEncoder with the device head: one readback per step, no tensor leak, and AdamW on the device follows AdamW on the host', async () => {
    const { coords, data } = smallProblem();
    const cfg = { layerWidths: [6, 5], bottleneckDim: 8, hiddenDim: 8, seed: 3 };
    const fused = new FactorizedEncoder(coords, { ...cfg, head: 'fused' });
    const dev = new FactorizedEncoder(coords, { ...cfg, head: 'device' });
    const rf = await trainEncoder(fused, data, { epochs: 2, batchSize: 4 });
    // warm-up allocations (device moments) happen in the first step; count leaks after it
    const before = tf.memory().numTensors;
    const r = await countReadbacksAsync(() => trainEncoder(dev, data, { epochs: 2, batchSize: 4 }));
    assert.equal(r.result.steps, 6);
    assert.equal(r.count, 6);
    const made = tf.memory().numTensors - before;
    assert.equal(made, 2 * dev.namedParams().length, 'only the AdamW moments (m, v per variable) stay');
    for (let i = 0; i < 2; i++) {
      assert.ok(Math.abs(r.result.epochs[i]!.trainLoss - rf.epochs[i]!.trainLoss) < 1e-4 * Math.abs(rf.epochs[i]!.trainLoss));
    }
    const pf = fused.namedParams();
    const pd = dev.namedParams();
    pf.forEach(([name, v], i) => {
      const e = relErr(pd[i]![1].dataSync(), v.dataSync());
      assert.ok(e < 1e-4, `${name}: rel err ${e}`);
    });
    // the host state (checkpoints) sees the device moments, and a resumed optimizer uploads them
    const sf = rf.optimizer.state();
    const sd = r.result.optimizer.state();
    assert.equal(sd.step, 6);
    for (const [name] of pf) {
      const key = pf.find(([n]) => n === name)![1].name;
      const keyD = pd.find(([n]) => n === name)![1].name;
      assert.ok(relErr(sd.m.get(keyD)!, sf.m.get(key)!) < 1e-3, `m of ${name}`);
    }
    const resumed = new AdamW();
    resumed.setState(sd);
    const { tokens, target } = data.batch([0, 1, 2, 3]);
    const a = await trainStep({ model: dev, optimizer: resumed, tokens, target, step: 6 });
    assert.ok(Number.isFinite(a.loss));
    assert.equal(resumed.step, 7);
    tf.dispose([target, ...tokens.local, ...tokens.global]);
    fused.dispose();
    dev.dispose();
  });

  it('the device moments reach the host state: flush() with async readbacks, state() with sync ones; the fused head uses the host moments', async () => {
    const { coords, data } = smallProblem();
    const cfg = { layerWidths: [6, 5], bottleneckDim: 8, hiddenDim: 8, seed: 4 };
    const a = new FactorizedEncoder(coords, { ...cfg, head: 'device' });
    const b = new FactorizedEncoder(coords, { ...cfg, head: 'device' });
    const oa = new AdamW();
    const ob = new AdamW();
    for (let step = 0; step < 3; step++) {
      const { tokens, target } = data.batch([step, step + 1, step + 2]);
      const sa = await trainStep({ model: a, optimizer: oa, tokens, target, step });
      const r = await countReadbacksAsync(() => trainStep({ model: b, optimizer: ob, tokens, target, step }));
      assert.equal(r.count, 1);
      assert.equal(r.result.loss, sa.loss);
      assert.equal(r.result.dataLoss, sa.dataLoss);
      tf.dispose([target, ...tokens.local, ...tokens.global]);
    }
    const n = await countReadbacksAsync(() => ob.flush());
    assert.equal(n.count, 2 * b.namedParams().length);
    const st = countReadbacks(() => ob.state());
    assert.equal(st.count, 0, 'state() after a flush reads nothing back');
    const sa = countReadbacks(() => oa.state());
    assert.equal(sa.count, 2 * a.namedParams().length, 'state() without a flush reads the moments back');
    assert.deepEqual(st.result.m.get(b.weight.name), sa.result.m.get(a.weight.name));
    // the fused head goes through the host step
    const f = new FactorizedEncoder(coords, { ...cfg, head: 'fused' });
    const { tokens, target } = data.batch([0, 1]);
    const r = await countReadbacksAsync(() => trainStep({ model: f, optimizer: new AdamW(), tokens, target, step: 0 }));
    assert.ok(r.count > 10 && Number.isFinite(r.result.loss));
    tf.dispose([target, ...tokens.local, ...tokens.global]);
    [a, b, f].forEach((m) => m.dispose());
  });

  it('says that webgpu in Node cannot read back synchronously (no OffscreenCanvas)', () => {
    assert.equal(syncReadbackUnsupported('webgpu'), typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined');
    assert.equal(syncReadbackUnsupported('cpu'), false);
    assert.equal(syncReadbackUnsupported('wasm'), false);
  });

  it('an out-of-memory failure becomes a DeviceOutOfMemoryError naming the sizes, leaks nothing and changes nothing', async () => {
    assert.ok(isOutOfMemoryError(new Error('GPUOutOfMemoryError: Failed to allocate buffer')));
    assert.ok(isOutOfMemoryError(new RangeError('Array buffer allocation failed')));
    assert.ok(!isOutOfMemoryError(new Error('shapes do not match')));
    const { coords, data } = smallProblem();
    const model = new FactorizedEncoder(coords, { layerWidths: [6, 5], bottleneckDim: 8, hiddenDim: 8, head: 'device' });
    const opt = new AdamW();
    const { tokens, target } = data.batch([0, 1, 2, 3]);
    await trainStep({ model, optimizer: opt, tokens, target, step: 0 }); // makes the AdamW moments
    const w0 = Float32Array.from(model.weight.dataSync() as Float32Array);
    const n0 = tf.memory().numTensors;
    // inject: the read-out's big matmul (A [40, 130] @ TG) fails as a GPU allocation would
    const orig = tf.getKernel('BatchMatMul', 'cpu')!;
    tf.unregisterKernel('BatchMatMul', 'cpu');
    tf.registerKernel({
      ...orig,
      kernelFunc: (args) => {
        const a = args.inputs['a'] as tf.TensorInfo;
        if (a.shape[a.shape.length - 1] === 130) throw new Error('GPUOutOfMemoryError: Failed to allocate a buffer of 155 MB');
        return orig.kernelFunc(args);
      },
    });
    let err: unknown;
    try {
      await trainStep({ model, optimizer: opt, tokens, target, step: 1 });
    } catch (e) {
      err = e;
    } finally {
      tf.unregisterKernel('BatchMatMul', 'cpu');
      tf.registerKernel(orig);
    }
    assert.ok(err instanceof DeviceOutOfMemoryError, `got ${err}`);
    const msg = (err as Error).message;
    assert.match(msg, /tokens\.local\[0\] \[4, 6, 3, 3\]/);
    assert.match(msg, /matrix A \(per chunk\) \[40, 130\]/);
    assert.match(msg, /smaller batch/);
    assert.match(msg, /headChunk/);
    assert.match(msg, /Failed to allocate/);
    assert.equal(tf.memory().numTensors, n0, 'no tensor of the failed step is left');
    assert.deepEqual(model.weight.dataSync(), w0);
    assert.equal(opt.step, 1);
    // training goes on after the failure
    assert.ok(Number.isFinite((await trainStep({ model, optimizer: opt, tokens, target, step: 1 })).loss));
    tf.dispose([target, ...tokens.local, ...tokens.global]);
    model.dispose();
  });
});

// The device step on the real tfjs webgpu backend over Dawn's null device (no GPU needed: values are
// meaningless, but every kernel must exist and every WGSL shader must compile). A child process, so
// that this process's backend choice is untouched.
const WEBGPU_NULL = `
const tf = require('@tensorflow/tfjs');
(async () => {
  const dawn = await import('webgpu');
  Object.assign(globalThis, dawn.globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn.create(['backend=null']) }, configurable: true });
  if (!(await navigator.gpu.requestAdapter())) { console.log(JSON.stringify({ skip: 'no null adapter' })); return; }
  require('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) { console.log(JSON.stringify({ skip: 'setBackend failed' })); return; }
  const bn = require('brainnet');
  const N = 50, widths = [6, 5];
  const coords = Float32Array.from({ length: N * 3 }, (_, i) => Math.sin(i) * 40);
  const model = new bn.encoding.FactorizedEncoder(coords, { layerWidths: widths, bottleneckDim: 8, hiddenDim: 8, headChunk: 20 });
  const tokens = { local: widths.map((c) => tf.randomNormal([4, c, 14, 14])), global: widths.map((c) => tf.randomNormal([4, c])) };
  const target = tf.randomNormal([4, N]);
  const opt = new bn.encoding.AdamW();
  const counts = [];
  for (let s = 0; s < 2; s++) counts.push((await bn.compute.countReadbacksAsync(() => bn.encoding.trainStep({ model, optimizer: opt, tokens, target, step: s }))).count);
  let syncError = '';
  try { opt.state(); } catch (e) { syncError = String(e.message); }
  await opt.flush();
  // Dawn's null device has a small memory budget: a large read-out runs out of it. WebGPU does not
  // throw on that; trainStep must catch it in an error scope before AdamW changes anything.
  const M = 20000;
  const big = new bn.encoding.FactorizedEncoder(Float32Array.from({ length: M * 3 }, (_, i) => Math.sin(i) * 40), { layerWidths: [16, 16], hiddenDim: 8 });
  const bt = { local: [0, 1].map(() => tf.randomNormal([8, 16, 8, 8])), global: [0, 1].map(() => tf.randomNormal([8, 16])) };
  const bopt = new bn.encoding.AdamW();
  let oom = 'none';
  try { await bn.encoding.trainStep({ model: big, optimizer: bopt, tokens: bt, target: tf.randomNormal([8, M]), step: 0 }); } catch (e) { oom = e.name + ': ' + e.message; }
  console.log(JSON.stringify({ head: model.headKind(), counts, syncError, step: opt.state().step, oom, bigStep: bopt.step }));
})().catch((e) => { console.log(JSON.stringify({ error: String(e && e.stack || e) })); });
`;

describe('device training step on the webgpu backend (Dawn null device)', function () {
  it('dispatches every kernel, reads back once per step, and refuses a synchronous readback of the optimizer state with a clear message', function () {
    let ok = true;
    try { require.resolve('webgpu'); require.resolve('@tensorflow/tfjs-backend-webgpu'); } catch { ok = false; }
    if (!ok) this.skip();
    const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-xdg-'));
    try {
      const r = spawnSync(process.execPath, ['-e', WEBGPU_NULL], { cwd: path.join(__dirname, '..', '..'), encoding: 'utf8', timeout: 100_000, env: { ...process.env, XDG_RUNTIME_DIR: xdg } });
      const line = r.stdout.trim().split('\n').pop() ?? '';
      let out: { skip?: string; error?: string; head?: string; counts?: number[]; syncError?: string; step?: number };
      try { out = JSON.parse(line); } catch { throw new Error(`child printed no result: ${r.stdout.slice(-500)} ${r.stderr.slice(-1500)}`); }
      if (out.skip) this.skip();
      assert.equal(out.error, undefined, out.error);
      assert.equal(out.head, 'device');
      assert.deepEqual(out.counts, [1, 1]);
      assert.match(out.syncError!, /AdamW\.state\(\).*cannot read tensors back synchronously.*await opt\.flush\(\)/);
      assert.equal(out.step, 2);
      const oom = (out as { oom?: string }).oom!;
      if (oom !== 'none') {
        assert.match(oom, /^DeviceOutOfMemoryError: encoder training step ran out of memory on the webgpu backend.*\[20000, 1024\].*smaller batch/);
        assert.equal((out as { bigStep?: number }).bigStep, 0, 'AdamW did not run after the failed step');
      }
    } finally {
      fs.rmSync(xdg, { recursive: true, force: true });
    }
  });
});
