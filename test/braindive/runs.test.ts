/**
 * The paper's runs (runRegions) with the committed synthetic-world models: N images per region on disk with their
 * scores, written in fixed batches, and resumable (a rerun draws again only the batches with a missing image, so
 * their bytes come back the same; drawn in another batch, the same seed gives the same image up to rounding).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadSyntheticPipeline } from 'brainnet';
import { readImage } from 'brainnet/io';
import { EVAL_CATEGORIES, categoryCounts, categoryShare, fiveWayTable, formatFiveWay, runRegions, type SyntheticPipeline } from 'brainnet/braindive';

describe('BrainDiVE runs on disk (synthetic world)', function () {
  this.timeout(300000);
  let pipeline: SyntheticPipeline;
  let out: string;
  before(async () => {
    pipeline = await loadSyntheticPipeline();
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'bd-runs-'));
  });
  after(async () => {
    fs.rmSync(out, { recursive: true, force: true });
    await pipeline?.dispose();
  });

  it('writes N images per region with their scores, and a rerun only fills in what is missing', async () => {
    const o = { pipeline, outDir: out, regions: ['PPA'], n: 3, scale: 10, steps: 3, unguided: true, batch: 2 };
    const first = await runRegions(o);
    assert.deepEqual(first, { written: 6, skipped: 0 });
    for (const region of ['PPA', 'unguided']) {
      assert.deepEqual(fs.readdirSync(path.join(out, region)).sort(), ['0000.json', '0000.png', '0001.json', '0001.png', '0002.json', '0002.png']);
    }
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'PPA', '0001.json'), 'utf8'));
    assert.equal(meta.seed, 1);
    assert.equal(meta.scale, 10);
    assert.equal(meta.sagScale, 0, 'the synthetic world has no SAG');
    assert.equal(meta.probs.length, 5);
    assert.ok(Math.abs(meta.probs.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-4);
    assert.ok(Number.isFinite(meta.activation));
    const before = await readImage(path.join(out, 'PPA', '0001.png'));
    const beforeBytes = fs.readFileSync(path.join(out, 'PPA', '0001.png'));

    // image 1 is in batch [0, 1]: a rerun draws that batch again, so the file comes back byte for byte
    fs.rmSync(path.join(out, 'PPA', '0001.png'));
    const again = await runRegions(o);
    assert.deepEqual(again, { written: 1, skipped: 5 });
    assert.ok(fs.readFileSync(path.join(out, 'PPA', '0001.png')).equals(beforeBytes), 'same seed, same batch: the same PNG bytes');

    // drawn alone (batch 1), it comes out the same up to rounding
    fs.rmSync(path.join(out, 'PPA', '0001.png'));
    assert.deepEqual(await runRegions({ ...o, batch: 1 }), { written: 1, skipped: 5 });
    const after = await readImage(path.join(out, 'PPA', '0001.png'));
    assert.equal(after.data.length, before.data.length);
    let maxDiff = 0;
    for (let i = 0; i < after.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(after.data[i]! - before.data[i]!));
    assert.ok(maxDiff <= 2, `same seed, other batch: max pixel difference ${maxDiff}`);
    const meta2 = JSON.parse(fs.readFileSync(path.join(out, 'PPA', '0001.json'), 'utf8'));
    assert.ok(Math.abs(meta2.activation - meta.activation) < 1e-3, `${meta2.activation} vs ${meta.activation}`);
    assert.ok(!fs.existsSync(path.join(out, '.brainnet.lock')), 'the lock is released');
  });

  it("the 5-way table: counts from the runs' probabilities, summed over blocks of seeds before the shares are taken", () => {
    // the images written above: their classified categories
    const probs = ['0000', '0001', '0002'].map((f) => JSON.parse(fs.readFileSync(path.join(out, 'PPA', `${f}.json`), 'utf8')).probs as number[]);
    const c = categoryCounts(probs);
    assert.equal(c.n, 3);
    for (const cat of EVAL_CATEGORIES) assert.equal(c[cat] / 3, categoryShare(probs.flat(), 3, cat), cat);
    assert.throws(() => categoryCounts([[0.5, 0.5]]), /expected 5 probabilities/);
    // two blocks of one region (3 + 1 guided images) and their unguided sets: the shares of the sums, not the mean of shares
    const table = fiveWayTable([
      { region: 'PPA', condition: 'guided', places: 3, faces: 0, bodies: 0, words: 0, food: 0, n: 3 },
      { region: 'PPA', condition: 'guided', places: 0, faces: 1, bodies: 0, words: 0, food: 0, n: 1 },
      { region: 'PPA', condition: 'unguided', places: 1, faces: 1, bodies: 1, words: 1, food: 0, n: 4 },
      { region: 'FFA', subject: 's2', condition: 'guided', faces: 2, n: 2 },
    ]);
    const ppa = table.find((r) => r.region === 'PPA')!;
    assert.deepEqual([ppa.category, ppa.n, ppa.hit, ppa.baseline, ppa.guided.faces], ['places', 4, 0.75, 0.25, 0.25]);
    const ffa = table.find((r) => r.region === 'FFA')!;
    assert.deepEqual([ffa.subject, ffa.hit], ['s2', 1]);
    assert.ok(Number.isNaN(ffa.baseline), 'no unguided images: no baseline');
    const md = formatFiveWay(table).split('\n');
    assert.equal(md[0], '| subject | region | n | faces | bodies | places | words | food |');
    assert.equal(md[2], '|  | PPA | 4 | 25 % (25 %) | 0 % (25 %) | **75 % (25 %)** | 0 % (25 %) | 0 % (0 %) |');
  });
});
