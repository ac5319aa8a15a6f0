/**
 * The BrainDiVE evaluation in the synthetic world with the committed models: every paper region plus FBA-1, 60 seeds
 * (1000-1059) that the fast test does not use, 20 DDIM steps, scale 10 (about 7 minutes on 2 cores; `npm run test:slow`).
 * Asserts that guidance raises every region's predicted activation (> 1 unguided sd) and the number of images of its
 * category by at least a quarter of the seeds; prints the whole table (guided, top-20 % and unguided shares).
 */
import * as assert from 'node:assert/strict';
import { loadSyntheticPipeline } from 'brainnet';
import { evaluateGuidance, formatEvaluation, type SyntheticPipeline } from 'brainnet/braindive';
import { encoderWorld, regionTruth, TRUE_EFFECT_SD } from './world-truth';

describe('BrainDiVE evaluation (synthetic world, slow)', function () {
  this.timeout(3600000);
  let pipeline: SyntheticPipeline;
  const seeds = Array.from({ length: 60 }, (_, i) => 1000 + i);
  const steps = 20;
  before(async () => {
    pipeline = await loadSyntheticPipeline();
  });
  it('guidance raises each region\'s predicted activation and category share', async () => {
    const world = await encoderWorld();
    const rows = await evaluateGuidance(pipeline, ['FFA', 'PPA', 'EBA', 'VWFA', 'food', 'FBA-1'], { scale: 10, seeds, steps, truth: world && regionTruth(world, pipeline.encoder.regions) });
    await world?.dispose();
    console.log(formatEvaluation(rows));
    for (const r of rows) console.log(r.region, 'guided', JSON.stringify(r.guidedShares), 'unguided', JSON.stringify(r.unguidedShares));
    const count = (share: number) => Math.round(share * seeds.length);
    for (const r of rows) {
      if (r.truth) assert.ok(r.truth.effectSD >= TRUE_EFFECT_SD, `${r.region}: true effect ${r.truth.effectSD.toFixed(2)} sd (the encoder's ${r.effectSD.toFixed(2)})`);
      else assert.ok(r.effectSD > 1, `${r.region}: effect ${r.effectSD.toFixed(2)} sd`);
      assert.ok(count(r.guidedShare) - count(r.unguidedShare) >= seeds.length / 4, `${r.region}: guided ${count(r.guidedShare)}/${seeds.length} vs unguided ${count(r.unguidedShare)}/${seeds.length}`);
    }
  });
});
