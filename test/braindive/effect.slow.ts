/**
 * The BrainDiVE evaluation in the synthetic world with the committed models, judged by the true brain: every paper region
 * plus FBA-1, 60 seeds (1000-1059) that the fast test does not use, 20 DDIM steps, scale 10 (about 7 minutes on 2 cores;
 * `npm run test:slow`). Asserts what the fast test asserts (effect.test.ts; TRUE_EFFECT in world-truth.ts over the five
 * paper regions) on these held-out seeds, with a category gain of at least 4 of 60 images per region (measured 6 to 22,
 * 2026-12-08), and prints the whole table (guided, top-20 % and unguided shares, the encoder's and the true effect).
 */
import * as assert from 'node:assert/strict';
import { loadSyntheticPipeline } from 'brainnet';
import { evaluateGuidance, formatEvaluation, type SyntheticPipeline } from 'brainnet/braindive';
import { encoderWorld, regionTruth, trueEffectFailures } from './world-truth';

describe('BrainDiVE evaluation (synthetic world, held-out seeds, slow)', function () {
  this.timeout(3600000);
  let pipeline: SyntheticPipeline;
  const seeds = Array.from({ length: 60 }, (_, i) => 1000 + i);
  const steps = 20;
  before(async () => {
    pipeline = await loadSyntheticPipeline();
  });
  it('guidance raises each region\'s predicted activation, its true response and its category share', async () => {
    const world = await encoderWorld();
    const rows = await evaluateGuidance(pipeline, ['FFA', 'PPA', 'EBA', 'VWFA', 'food', 'FBA-1'], { scale: 10, seeds, steps, truth: regionTruth(world, pipeline.encoder.regions) });
    await world.dispose();
    console.log(formatEvaluation(rows));
    for (const r of rows) console.log(r.region, 'guided', JSON.stringify(r.guidedShares), 'unguided', JSON.stringify(r.unguidedShares));
    const paper = rows.filter((r) => r.region !== 'FBA-1');
    assert.deepEqual(trueEffectFailures(paper), []);
    const count = (share: number) => Math.round(share * seeds.length);
    for (const r of rows) {
      assert.ok(r.effectSD > 1, `${r.region}: predicted activation effect ${r.effectSD.toFixed(2)} sd`);
      assert.ok(count(r.guidedShare) - count(r.unguidedShare) >= 4, `${r.region}: guided ${count(r.guidedShare)}/${seeds.length} vs unguided ${count(r.unguidedShare)}/${seeds.length}`);
    }
    const guided = paper.reduce((a, r) => a + count(r.guidedShare), 0);
    const unguided = paper.reduce((a, r) => a + count(r.unguidedShare), 0);
    assert.ok(guided >= 1.5 * unguided, `the five paper regions: ${guided} vs ${unguided} of ${paper.length * seeds.length} images`);
  });
});
