/**
 * The BrainDiVE effect in the synthetic world, with the committed models and fixed seeds (0-23, 20 DDIM steps, scale
 * 10; about 3 minutes on 2 cores): guidance towards each of the paper's category regions (FFA faces, PPA places, EBA
 * bodies, VWFA words, food) raises the number of generated images that the project's 5-way classifier assigns to the
 * region's category by at least a quarter of the seeds over the unguided images from the same seeds. When the encoder
 * was fitted to a world-v3 subject (models/synthetic-encoder-mobilenetv2/world.safetensors exists), the effect is judged
 * by the TRUE brain: each region's true response (the world's trueResponse of the generated pixels) must rise by
 * TRUE_EFFECT_SD unguided sd; otherwise by the encoder's own prediction (> 1 sd), and the test says so. The slow suite
 * (effect.slow.ts) repeats this with other seeds. See models/synthetic-diffusion-64/README.md.
 */
import * as assert from 'node:assert/strict';
import { loadSyntheticPipeline } from 'brainnet';
import { evaluateGuidance, formatEvaluation, type SyntheticPipeline } from 'brainnet/braindive';
import { encoderWorld, regionTruth, ENCODER_WORLD, TRUE_EFFECT_SD } from './world-truth';

describe('BrainDiVE effect (synthetic world, fixed seeds)', function () {
  this.timeout(1200000);
  let pipeline: SyntheticPipeline;
  const seeds = Array.from({ length: 24 }, (_, i) => i);
  const steps = 20;
  const scale = 10;
  before(async () => {
    pipeline = await loadSyntheticPipeline();
  });
  it('guidance towards FFA, PPA, EBA, VWFA and food raises their category share and their true (or predicted) response', async () => {
    const world = await encoderWorld();
    if (!world) console.log(`no ${ENCODER_WORLD}: the encoder was fitted to an older world, so the effect is judged by the encoder's prediction; retrain it with data-prep/braindive/train-encoder.ts`);
    const rows = await evaluateGuidance(pipeline, ['FFA', 'PPA', 'EBA', 'VWFA', 'food'], { scale, seeds, steps, truth: world && regionTruth(world, pipeline.encoder.regions) });
    await world?.dispose();
    console.log(formatEvaluation(rows));
    // Counted in images, so that a gain of exactly a quarter of the seeds is not lost to rounding.
    const count = (share: number) => Math.round(share * seeds.length);
    const n = seeds.length;
    for (const r of rows) {
      const gain = count(r.guidedShare) - count(r.unguidedShare);
      assert.ok(gain >= n / 4, `${r.region}: guided ${count(r.guidedShare)}/${n} vs unguided ${count(r.unguidedShare)}/${n} of ${r.category}; expected a gain of at least ${n / 4} images`);
      if (r.truth) assert.ok(r.truth.effectSD >= TRUE_EFFECT_SD, `${r.region}: true response effect ${r.truth.effectSD.toFixed(2)} sd (the encoder's ${r.effectSD.toFixed(2)} sd), expected at least ${TRUE_EFFECT_SD}`);
      else assert.ok(r.effectSD > 1, `${r.region}: activation effect ${r.effectSD.toFixed(2)} sd`);
    }
    // Over the five regions together, guidance at least doubles the hits on the target category.
    const guided = rows.reduce((a, r) => a + count(r.guidedShare), 0);
    const unguided = rows.reduce((a, r) => a + count(r.unguidedShare), 0);
    assert.ok(guided >= 2 * unguided, `all regions: ${guided} vs ${unguided} of ${rows.length * n} images`);
  });
});
