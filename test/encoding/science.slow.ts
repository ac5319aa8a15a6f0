/**
 * Slow science check (issue 4): on the synthetic `workshop` subject (generated into
 * data/subjects/workshop when missing), fit the factorized encoder and the ridge baseline with the
 * built-in MobileNetV2 and check that the encoder recovers the ground truth:
 *   - V1-V3 choose a lower mean layer index than the category ROIs;
 *   - the space selector follows the true pRF centre in V1-V3 (r >= 0.7 for x and y);
 *   - the scale selector is lower in V1-V3 than in the category ROIs;
 *   - validation R² is positive in V1-V3 and the category ROIs and below the noise ceiling.
 * Writes outputs/science/{report.json,table.txt}. The token cache (data/cache) and the checkpoint
 * (data/ckpt) are reused, so a second run takes seconds. About 20 minutes from scratch on 2 shared cores.
 * Run: npm run build && npx mocha --timeout 3600000 test/encoding/science.slow.ts
 * Defaults: 3 epochs (687 steps) with the regulariser decaying over 300 steps (the paper decays it
 * over 2000 steps of ~1125 per epoch, i.e. within the first ~2 of many epochs; a workshop run has
 * 229 steps per epoch). BRAINNET_SCIENCE_EPOCHS and BRAINNET_SCIENCE_REG_DECAY override them.
 * The same settings as `npx tsx data-prep/science-check.ts --epochs 3 --reg-decay 300 --checkpoint data/ckpt/science-e3`,
 * whose checkpoint it reuses.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { runScienceCheck } from '../../data-prep/science-run';

const ROOT = path.join(__dirname, '..', '..');

describe('science check on the workshop subject (slow)', function () {
  this.timeout(3600000);

  it('the fitted encoder recovers layer depth, pRF position and scale; ridge side by side', async () => {
    const epochs = Number(process.env.BRAINNET_SCIENCE_EPOCHS ?? 3);
    const regDecaySteps = Number(process.env.BRAINNET_SCIENCE_REG_DECAY ?? 300);
    const { report, table } = await runScienceCheck({
      subjectDir: path.join(ROOT, 'data', 'subjects', 'workshop'),
      backbone: 'mobilenetv2',
      epochs,
      regDecaySteps,
      cacheDir: path.join(ROOT, 'data', 'cache', 'workshop-mobilenetv2'),
      checkpointDir: path.join(ROOT, 'data', 'ckpt', epochs === 3 && regDecaySteps === 300 ? 'science-e3' : `science-e${epochs}-r${regDecaySteps}`),
      outDir: path.join(ROOT, 'outputs', 'science'),
    });
    console.log(table);
    assert.ok(report.layer.model.gap > 0, `layer gap ${report.layer.model.gap}`);
    assert.ok(report.space.rx >= 0.7 && report.space.ry >= 0.7, `space r ${report.space.rx}, ${report.space.ry}`);
    assert.ok(report.scale.early < report.scale.category, `scale ${report.scale.early} vs ${report.scale.category}`);
    assert.ok(report.r2.model.early > 0 && report.r2.model.category > 0, 'positive validation R² in V1-V3 and the category ROIs');
    for (const row of report.r2.byRoi) assert.ok(row.model < row.noiseCeiling + 0.1, `${row.roi}: R² ${row.model} far above the noise ceiling ${row.noiseCeiling}`);
    assert.ok(report.layer.ridge, 'the ridge baseline ran');
  });
});
