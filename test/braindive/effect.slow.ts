/**
 * The BrainDiVE evaluation in the synthetic world with the committed models, every paper region plus FBA-1,
 * 20 fixed seeds, 20 sampling steps (slow: about 20 minutes on 2 cores; `npm run test:slow`). Asserts that
 * guidance raises every region's predicted activation (> 1 unguided sd) and the category share of FFA, PPA
 * and VWFA; prints the whole table (guided, top-20 % and unguided shares) for the closing notes.
 */
import * as assert from 'node:assert/strict';
import { loadSyntheticBrainDiVE, evaluateGuidance, formatEvaluation, type SyntheticBrainDiVE } from 'brainnet';

describe('BrainDiVE evaluation (synthetic world, slow)', function () {
  this.timeout(3600000);
  let setup: SyntheticBrainDiVE;
  const seeds = Array.from({ length: 20 }, (_, i) => 1000 + i);
  const steps = 20;
  before(async () => {
    setup = await loadSyntheticBrainDiVE();
  });
  it('guidance raises each region\'s predicted activation, and the category share of FFA, PPA and VWFA', async () => {
    const rows = await evaluateGuidance(setup, ['FFA', 'PPA', 'VWFA', 'food', 'EBA', 'FBA-1'], { scale: 10, seeds, steps });
    console.log(formatEvaluation(rows));
    for (const r of rows) assert.ok(r.effectSD > 1, `${r.region}: effect ${r.effectSD.toFixed(2)} sd`);
    for (const r of rows.slice(0, 3)) assert.ok(r.guidedShare > r.unguidedShare, `${r.region}: guided ${r.guidedShare} vs unguided ${r.unguidedShare}`);
  });
});
