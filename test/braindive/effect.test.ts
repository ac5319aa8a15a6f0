/**
 * The BrainDiVE effect in the synthetic world, with the committed models and fixed seeds: guidance towards
 * FFA, PPA and VWFA raises the share of generated images that the project's 5-way classifier assigns to the
 * region's category above the unguided images from the same seeds, and raises the region's predicted
 * activation by more than one unguided sd. The food and body regions do not reach that yet (their
 * activation rises, their category share does not); the slow suite (effect.slow.ts) reports all regions.
 * See models/synthetic-diffusion-64/README.md.
 */
import * as assert from 'node:assert/strict';
import { loadSyntheticBrainDiVE, evaluateGuidance, formatEvaluation, type SyntheticBrainDiVE } from 'brainnet';

describe('BrainDiVE effect (synthetic world, fixed seeds)', function () {
  this.timeout(900000);
  let setup: SyntheticBrainDiVE;
  const seeds = [0, 1, 2, 3, 4, 5, 6, 7];
  const steps = 10;
  const scale = 10;
  before(async () => {
    setup = await loadSyntheticBrainDiVE();
  });
  it('guidance towards FFA, PPA and VWFA raises their category share and predicted activation', async () => {
    const rows = await evaluateGuidance(setup, ['FFA', 'PPA', 'VWFA'], { scale, seeds, steps });
    console.log(formatEvaluation(rows));
    for (const r of rows) {
      assert.ok(r.guidedShare > r.unguidedShare, `${r.region}: guided ${r.guidedShare} vs unguided ${r.unguidedShare}`);
      assert.ok(r.effectSD > 1, `${r.region}: activation effect ${r.effectSD.toFixed(2)} sd`);
    }
    const gain = rows.reduce((a, r) => a + r.guidedShare - r.unguidedShare, 0) / rows.length;
    assert.ok(gain >= 0.25, `mean share gain ${gain.toFixed(2)}`);
  });
});
