/**
 * Scheduler parity, step by step, with a float64 numpy reference written from the published
 * formulas (data-prep/fixtures/make_diffusion_fixtures.py): every step is fed the reference's
 * sample and model output; prevSample and predOriginalSample must match to 1e-6 (relative to the
 * sample's scale). Fixture floats carry 10 significant digits.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  makeScheduler, disposeSchedulerState, schedulerConfigFromJson, type BetaSchedule, type PredictionType, type SchedulerKind,
  type SchedulerState, type TimestepSpacing,
} from 'brainnet/diffusion';

interface Step { t: number; x: number[]; out: number[]; prev: number[]; x0: number[]; scaled: number[]; noise?: number[] }
interface Case {
  kind: SchedulerKind; schedule: BetaSchedule; spacing: TimestepSpacing;
  prediction: PredictionType; n: number; eta: number; shape: number[]; timesteps: number[]; sigmas: number[];
  initNoiseSigma: number; alphasCumprod: Record<string, number>; steps: Step[];
  addNoise: { x0: number[]; noise: number[]; out: { t: number; y: number[] }[] };
}
const fx = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/diffusion/schedulers.json'), 'utf8')) as { cases: Case[] };
const TOL = 1e-6;

function err(a: tf.Tensor, ref: number[], scale: number[] = ref): number {
  const v = a.dataSync();
  let m = 1;
  for (const s of scale) m = Math.max(m, Math.abs(s));
  for (const s of ref) m = Math.max(m, Math.abs(s));
  let e = 0;
  for (let i = 0; i < ref.length; i++) e = Math.max(e, Math.abs(v[i]! - ref[i]!));
  return e / m;
}

describe('diffusion schedulers: parity with the numpy reference', function () {
  before(async () => {
    await tf.setBackend('cpu');
  });
  for (const c of fx.cases) {
    const name = `${c.kind} ${c.schedule} ${c.spacing} ${c.prediction} n=${c.n}${c.eta ? ` eta=${c.eta}` : ''}`;
    it(name, () => {
      const s = makeScheduler(c.kind, { betaSchedule: c.schedule, timestepSpacing: c.spacing, predictionType: c.prediction, eta: c.eta });
      for (const [t, v] of Object.entries(c.alphasCumprod)) assert.ok(Math.abs(s.alphasCumprod[Number(t)]! - v) < 1e-9 * v, `alpha_bar[${t}]`);
      let state: SchedulerState = s.setTimesteps(c.n);
      assert.equal(state.timesteps.length, c.n);
      state.timesteps.forEach((t, i) => assert.ok(Math.abs(t - c.timesteps[i]!) < 1e-6, `timestep ${i}: ${t} vs ${c.timesteps[i]}`));
      c.sigmas.forEach((sg, i) => assert.ok(Math.abs(state.sigmas[i]! - sg) <= 1e-8 * Math.max(1, sg), `sigma ${i}`));
      assert.ok(Math.abs(s.initNoiseSigma(state) - c.initNoiseSigma) < 1e-8 * c.initNoiseSigma, 'init noise sigma');
      const before = tf.memory().numTensors;
      c.steps.forEach((st, i) => {
        const x = tf.tensor(st.x, c.shape);
        const out = tf.tensor(st.out, c.shape);
        const scaled = s.scaleModelInput(state, x, st.t);
        assert.ok(err(scaled, st.scaled) < TOL, `step ${i} scaleModelInput`);
        const noise = st.noise ? tf.tensor(st.noise, c.shape) : undefined;
        const r = s.step(state, out, st.t, x, { noise });
        const e1 = err(r.prevSample, st.prev, st.x);
        const e2 = err(r.predOriginalSample, st.x0, st.x);
        assert.ok(e1 < TOL, `step ${i} (t=${st.t}) prevSample rel err ${e1}`);
        assert.ok(e2 < TOL, `step ${i} (t=${st.t}) predOriginalSample rel err ${e2}`);
        disposeSchedulerState(state);
        state = r.state;
        if (scaled !== x) scaled.dispose();
        tf.dispose([x, out, r.prevSample, r.predOriginalSample, noise as tf.Tensor]);
      });
      disposeSchedulerState(state);
      assert.equal(tf.memory().numTensors, before, 'no tensors leak');
      const x0 = tf.tensor(c.addNoise.x0, c.shape);
      const z = tf.tensor(c.addNoise.noise, c.shape);
      for (const o of c.addNoise.out) {
        const y = s.addNoise(x0, z, o.t);
        assert.ok(err(y, o.y) < TOL, `addNoise t=${o.t}`);
        y.dispose();
      }
      tf.dispose([x0, z]);
    });
  }

  it('refuses a step out of order, bad configs and bad step counts', () => {
    const s = makeScheduler('ddim');
    const st = s.setTimesteps(10);
    const x = tf.zeros([1, 4, 2, 2]);
    assert.throws(() => s.step(st, x, 1, x), /expected timestep 901, got 1/);
    assert.throws(() => s.setTimesteps(0), /1\.\.1000/);
    assert.throws(() => makeScheduler('ddim', { eta: NaN }), /eta/);
    assert.throws(() => schedulerConfigFromJson({ beta_schedule: 'sigmoid' }), /beta_schedule "sigmoid"/);
    const e = makeScheduler('ddim', { eta: 0.5 });
    const st2 = e.setTimesteps(4);
    assert.throws(() => e.step(st2, x, st2.timesteps[0]!, x), /seeded `generator`/);
    x.dispose();
  });

  it('reads SD-2.1-base scheduler_config.json', () => {
    const c = schedulerConfigFromJson({ _class_name: 'PNDMScheduler', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085, num_train_timesteps: 1000, set_alpha_to_one: false, steps_offset: 1, prediction_type: 'epsilon' });
    assert.equal(c.timestepSpacing, 'leading');
    const s = makeScheduler('ddim', c);
    assert.deepEqual(s.setTimesteps(50).timesteps.slice(0, 3), [981, 961, 941]);
  });
});
