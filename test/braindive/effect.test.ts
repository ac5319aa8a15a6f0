/**
 * The BrainDiVE effect in the synthetic world, with the committed models and fixed seeds (0-23, 20 DDIM steps, scale
 * 10; about 3 minutes on 2 cores): guidance towards each of the paper's category regions (FFA faces, PPA places, EBA
 * bodies, VWFA words, food) raises the number of generated images that the project's 5-way classifier assigns to the
 * region's category by at least a quarter of the seeds over the unguided images from the same seeds, and raises the
 * region's predicted activation by more than one unguided sd. The slow suite
 * (effect.slow.ts) repeats this with 20 other seeds. See models/synthetic-diffusion-64/README.md.
 */
import * as assert from 'node:assert/strict';
import { loadSyntheticPipeline } from 'brainnet';
import { evaluateGuidance, formatEvaluation, type SyntheticPipeline } from 'brainnet/braindive';

describe('BrainDiVE effect (synthetic world, fixed seeds)', function () {
  this.timeout(1200000);
  let pipeline: SyntheticPipeline;
  const seeds = Array.from({ length: 24 }, (_, i) => i);
  const steps = 20;
  const scale = 10;
  before(async () => {
    pipeline = await loadSyntheticPipeline();
  });
  it('guidance towards FFA, PPA, EBA, VWFA and food raises their category share and predicted activation', async () => {
    const rows = await evaluateGuidance(pipeline, ['FFA', 'PPA', 'EBA', 'VWFA', 'food'], { scale, seeds, steps });
    console.log(formatEvaluation(rows));
    // Counted in images, so that a gain of exactly a quarter of the seeds is not lost to rounding.
    const count = (share: number) => Math.round(share * seeds.length);
    const n = seeds.length;
    for (const r of rows) {
      const gain = count(r.guidedShare) - count(r.unguidedShare);
      assert.ok(gain >= n / 4, `${r.region}: guided ${count(r.guidedShare)}/${n} vs unguided ${count(r.unguidedShare)}/${n} of ${r.category}; expected a gain of at least ${n / 4} images`);
      assert.ok(r.effectSD > 1, `${r.region}: activation effect ${r.effectSD.toFixed(2)} sd`);
    }
    // Over the five regions together, guidance at least doubles the hits on the target category.
    const guided = rows.reduce((a, r) => a + count(r.guidedShare), 0);
    const unguided = rows.reduce((a, r) => a + count(r.unguidedShare), 0);
    assert.ok(guided >= 2 * unguided, `all regions: ${guided} vs ${unguided} of ${rows.length * n} images`);
  });
});
