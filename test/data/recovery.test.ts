/** The science check's pure parts (lib/synthetic/recovery.ts) on a hand-made truth and fit; the whole experiment is data-prep/science-check.ts. */
import { strict as assert } from 'node:assert';
import { formatScienceTable, meanLayerIndex, pearsonFinite, scienceChecks, type ScienceInput } from 'brainnet/synthetic';

// 8 vertices: four early (V1-V3) with a pRF, three category-ROI vertices, one other
const truth: ScienceInput['truth'] = {
  roi: ['V1v', 'V1d', 'V2v', 'V3d', 'FFA-1', 'FFA-1', 'PPA', 'other'],
  prfX: Float32Array.from([0.5, -0.5, 0.2, -0.8, NaN, NaN, NaN, NaN]),
  prfY: Float32Array.from([0.3, -0.1, 0.6, -0.4, NaN, NaN, NaN, NaN]),
  scale: ['local', 'local', 'local', 'local', 'global', 'local', 'global', 'global'],
  noiseCeiling: Float32Array.from([0.5, 0.5, 0.4, 0.4, 0.6, 0.6, 0.3, 0.2]),
};
const L = 3;
/** One-hot layer weights [8, 3]: early vertices read layer `early`, category vertices layer `late`, the last one all. */
const layers = (early: number, late: number) => Float32Array.from({ length: 8 * L }, (_, k) => {
  const i = Math.floor(k / L), l = k % L;
  return i < 4 ? +(l === early) : i < 7 ? +(l === late) : 1 / L;
});
// space on the token grid (y down) = the pRF centre (y up) mirrored in y; 0 without a pRF
const space = Float32Array.from({ length: 16 }, (_, k) => (k >> 1 < 4 ? (k % 2 ? -truth.prfY[k >> 1]! : truth.prfX[k >> 1]!) : 0));
const scale = Float32Array.from([0.1, 0.1, 0.1, 0.1, 0.9, 0.5, 0.9, 0.5]);
const r2 = Float32Array.from([0.2, 0.3, 0.2, 0.3, 0.4, 0.2, 0.1, 0]);
const ridge = { bestLayer: Int32Array.from([1, 1, 1, 1, 1, 1, 1, 1]), r2: Float32Array.from(r2, (v) => v / 2) };
const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} vs ${b}`);

describe('science checks (pure): a fit against the ground truth', () => {
  it('pass when the fit recovers layer depth, pRF position and scale; every number as computed by hand', () => {
    const rep = scienceChecks({ truth, selectors: { layer: layers(0, 2), space, scale }, L, r2, ridge });
    assert.deepEqual(rep.layer.model, { early: 0, category: 2, gap: 2, pass: true });
    assert.deepEqual(rep.layer.ridge, { early: 1, category: 1, gap: 0, pass: false });
    near(rep.space.rx, 1, 'rx');
    near(rep.space.ry, 1, 'ry');
    assert.deepEqual([rep.space.n, rep.space.nWellFit, rep.space.pass], [4, 4, true]);
    near(rep.scale.early, 0.1, 'scale early');
    near(rep.scale.category, (0.9 + 0.5 + 0.9) / 3, 'scale category');
    near(rep.scale.categoryGlobal, 0.9, 'category global');
    near(rep.scale.categoryLocal, 0.5, 'category local');
    assert.deepEqual(rep.r2.byRoi.map((r) => [r.roi, r.n]), [['V1v', 1], ['V1d', 1], ['V2v', 1], ['V3d', 1], ['FFA-1', 2], ['PPA', 1]]);
    const ffa = rep.r2.byRoi[4]!;
    near(ffa.model, 0.3, 'FFA R²');
    near(ffa.noiseCeiling, 0.6, 'FFA NC');
    near(ffa.modelFraction, 0.5, 'FFA fraction');
    near(ffa.ridgeFraction!, 0.25, 'FFA ridge fraction');
    near(rep.r2.model.early, 0.25, 'R² early');
    near(rep.r2.model.category, 0.7 / 3, 'R² category');
    near(rep.r2.model.all, 1.7 / 8, 'R² all');
    assert.equal(rep.pass, true);
    const table = formatScienceTable(rep);
    assert.match(table, /layer gap \(category - early, of 2\)\s+2\.000\s+0\.000\s+PASS\s+FAIL/);
    assert.match(table, /space r\(x, pRF x\), V1-V3 \(n=4\)\s+1\.000\s+n\/a\s+PASS/);
    assert.match(table, /FFA-1\s+2\s+0\.600\s+0\.300\s+0\.150\s+0\.500\s+0\.250/);
    assert.match(table, /overall: PASS$/);
  });

  it('fail when early and category vertices read the same layers the other way round, or the space selector is scrambled', () => {
    const swapped = scienceChecks({ truth, selectors: { layer: layers(2, 0), space, scale }, L, r2 });
    assert.deepEqual(swapped.layer.model, { early: 2, category: 0, gap: -2, pass: false });
    assert.equal(swapped.layer.ridge, undefined);
    assert.equal(swapped.pass, false);
    assert.match(formatScienceTable(swapped), /overall: FAIL$/);
    const flat = scienceChecks({ truth, selectors: { layer: layers(0, 2), space: new Float32Array(16), scale }, L, r2 });
    assert.ok(Number.isNaN(flat.space.rx) && !flat.space.pass && !flat.pass, 'a constant space selector has no correlation');
    assert.throws(() => scienceChecks({ truth, selectors: { layer: layers(0, 2), space, scale: scale.subarray(1) }, L, r2 }), /ground truth has 8 vertices and the fit 7/);
  });

  it('helpers: mean layer index, Pearson r over finite pairs', () => {
    assert.deepEqual(Array.from(meanLayerIndex([0.5, 0.5, 0, 0, 0, 1], 3)), [0.5, 2]);
    near(pearsonFinite([1, 2, NaN, 3], [2, 4, 0, 6]), 1, 'r');
    assert.ok(Number.isNaN(pearsonFinite([1, 2], [1, 2])), 'fewer than 3 pairs');
  });
});
