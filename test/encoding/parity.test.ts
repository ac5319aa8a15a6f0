/**
 * Parity with a PyTorch reference (float64) of the same model: forward output, regulariser,
 * loss and the gradient of every parameter, to 1e-4 relative, on the cpu and wasm backends.
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FactorizedEncoder, encoderLoss, onnxEngine, positionEncoding } from 'brainnet/encoding';
import { fixtureModel, fixtureTokens, loadParityFixture, relErr } from './fixture';

const TOL = 1e-4;

for (const backend of ['cpu', 'wasm']) {
  describe(`encoding parity with PyTorch (${backend})`, function () {
    const fx = loadParityFixture();
    const { N, B, step } = fx.meta;
    let model: FactorizedEncoder;
    before(async () => {
      await tf.setBackend(backend);
      await tf.ready();
      model = fixtureModel(fx);
    });
    after(() => model.dispose());

    const tokens = () => fixtureTokens(fx);

    it('position encoding matches', () => {
      const pe = positionEncoding(fx.get('coords').data, N);
      const ref = fx.get('out.pe').data;
      assert.ok(relErr(pe, ref) < 1e-5, `pe rel err ${relErr(pe, ref)}`);
    });

    it('selectors, prediction and regulariser match', () => {
      const sel = model.selectors();
      for (const [mine, name] of [[sel.space, 'out.xy'], [sel.layer, 'out.p'], [sel.scale, 'out.s']] as const) {
        const e = relErr(mine, fx.get(name).data);
        assert.ok(e < TOL, `${name}: rel err ${e}`);
      }
      // the fixture spreads vertices over many grid cells, including the zero-padded border
      const xy = sel.space;
      const cells = new Set<number>();
      let border = 0;
      for (let i = 0; i < N; i++) {
        const ix = Math.floor(((xy[2 * i]! + 1) * 8 - 1) / 2);
        const iy = Math.floor(((xy[2 * i + 1]! + 1) * 8 - 1) / 2);
        cells.add(iy * 100 + ix);
        if (ix < 0 || iy < 0 || ix > 6 || iy > 6) border++;
      }
      assert.ok(cells.size > 10 && border > 0, `cells ${cells.size}, border ${border}`);
      const t = tokens();
      const { pred, reg } = model.forward(t);
      const e = relErr(pred.dataSync(), fx.get('out.pred').data);
      assert.ok(e < TOL, `pred rel err ${e}`);
      assert.ok(Math.abs(reg.dataSync()[0]! - fx.meta.scalars.reg) < TOL * Math.abs(fx.meta.scalars.reg), `reg ${reg.dataSync()[0]} vs ${fx.meta.scalars.reg}`);
      tf.dispose([pred, reg, ...t.local, ...t.global]);
    });

    it('loss and every parameter gradient match', () => {
      const t = tokens();
      const target = tf.tensor2d(fx.get('target').data, [B, N]);
      const named = model.namedParams();
      const { value, grads } = tf.variableGrads(() => {
        const { pred, reg } = model.forward(t);
        return encoderLoss(pred, target, reg, step);
      }, named.map(([, v]) => v));
      const loss = value.dataSync()[0]!;
      assert.ok(Math.abs(loss - fx.meta.scalars.loss) < TOL * Math.abs(fx.meta.scalars.loss), `loss ${loss} vs ${fx.meta.scalars.loss}`);
      const worst: string[] = [];
      for (const [name, v] of named) {
        const g = grads[v.name];
        assert.ok(g, `no gradient for ${name}`);
        const e = relErr(g.dataSync(), fx.get(`grad.${name}`).data);
        if (!(e < TOL)) worst.push(`${name}: ${e.toExponential(2)}`);
      }
      assert.deepEqual(worst, []);
      tf.dispose([value, target, ...Object.values(grads), ...t.local, ...t.global]);
    });
  });
}

describe('encoding parity with PyTorch (onnx host step)', function () {
  const fx = loadParityFixture();
  const { N, B, step } = fx.meta;
  let model: FactorizedEncoder;
  before(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    model = fixtureModel(fx, 'onnx');
  });
  after(() => model.dispose());

  const tokens = () => fixtureTokens(fx);

  it('prediction, loss and every parameter gradient match', async () => {
    const engine = await onnxEngine(model);
    const t = tokens();
    const target = tf.tensor2d(fx.get('target').data, [B, N]);
    const pred = await engine.predict(t);
    assert.ok(relErr(pred, fx.get('out.pred').data) < TOL, `pred rel err ${relErr(pred, fx.get('out.pred').data)}`);
    const r = await engine.lossAndGrads(t, target, { step });
    assert.ok(Math.abs(r.loss - fx.meta.scalars.loss) < TOL * Math.abs(fx.meta.scalars.loss), `loss ${r.loss} vs ${fx.meta.scalars.loss}`);
    assert.ok(Math.abs(r.dataLoss - fx.meta.scalars.data_loss) < TOL * Math.abs(fx.meta.scalars.data_loss), `data loss ${r.dataLoss} vs ${fx.meta.scalars.data_loss}`);
    const worst: string[] = [];
    model.namedParams().forEach(([name], i) => {
      const e = relErr(r.grads[i]!, fx.get(`grad.${name}`).data);
      if (!(e < TOL)) worst.push(`${name}: ${e.toExponential(2)}`);
    });
    assert.deepEqual(worst, []);
    tf.dispose([target, ...t.local, ...t.global]);
  });

  it('is deterministic for a thread count, and within float rounding across thread counts (9,000 vertices: 2 row chunks)', async () => {
    const n = 9000;
    const w = [16, 48];
    const coords = Float32Array.from({ length: n * 3 }, (_, i) => Math.sin(i * 12.9898) * 50);
    const run = async (threads: string) => {
      const saved = process.env['BRAINNET_ONNX_THREADS'];
      process.env['BRAINNET_ONNX_THREADS'] = threads;
      const m = new FactorizedEncoder(coords, { layerWidths: w, seed: 3, head: 'onnx' });
      const t = { local: w.map((c, l) => tf.randomNormal([4, c, 8, 8], 0, 1, 'float32', 10 + l) as tf.Tensor4D), global: w.map((c, l) => tf.randomNormal([4, c], 0, 1, 'float32', 20 + l) as tf.Tensor2D) };
      const target = tf.randomNormal([4, n], 0, 1, 'float32', 30) as tf.Tensor2D;
      try {
        m.space.w3.assign(tf.randomNormal([128, 2], 0, 0.3, 'float32', 1));
        m.layer.w3.assign(tf.randomNormal([128, 2], 0, 0.3, 'float32', 2));
        const r = await (await onnxEngine(m)).lossAndGrads(t, target, { step: 0 });
        return { loss: r.loss, grads: r.grads.map((g) => g.slice()), names: m.namedParams().map(([k]) => k) };
      } finally {
        if (saved === undefined) delete process.env['BRAINNET_ONNX_THREADS'];
        else process.env['BRAINNET_ONNX_THREADS'] = saved;
        tf.dispose([target, ...t.local, ...t.global]);
        m.dispose();
      }
    };
    const a = await run('2');
    const b = await run('2');
    const c = await run('1');
    assert.equal(a.loss, b.loss);
    a.grads.forEach((g, i) => assert.deepEqual(g, b.grads[i], `${a.names[i]}: two runs on 2 threads`));
    // MLAS blocks the inner dimension by the output width each thread gets: the last bits may move
    assert.ok(Math.abs(a.loss - c.loss) < 1e-6 * Math.abs(a.loss));
    a.grads.forEach((g, i) => assert.ok(relErr(g, c.grads[i]!) < 1e-5, `${a.names[i]}: 1 vs 2 threads, rel err ${relErr(g, c.grads[i]!)}`));
  });
});
