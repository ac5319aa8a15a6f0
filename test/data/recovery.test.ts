/**
 * Recovery of the synthetic world's truth. The pure checks (lib/synthetic/recovery.ts) on a hand-made truth and fit; then
 * the whole experiment (data-prep/science-run.ts) on a tiny world-v3 subject (600 images, at most 20 epochs, about 3 min
 * on 2 cores): the fitted encoder recovers depth, pRF centres and scale (category against early, global against local)
 * above their thresholds, and the shuffled-image null (fMRI rows permuted against the images) fails every check.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  formatRecoveryTable, formatScienceTable, meanLayerIndex, pearsonFinite, recoveryChecks, scienceChecks, spearmanFinite, RECOVERY_THRESHOLDS,
  type ScienceInput,
} from 'brainnet/synthetic';
import { runScience } from '../../data-prep/science-run';

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

describe('recovery checks (pure): thresholds, not signs', () => {
  const thr = { depthSpearman: 0.5, prfCentre: 0.5, scaleEarlyVsCategory: 0.2, scaleLocalVsGlobal: 0.2 };
  const base = { ...truth, depth: ['early', 'early', 'early', 'early', 'late', 'mid', 'late', 'late'], trueDepth: Float32Array.from([0, 0, 0.1, 0.1, 0.9, 0.5, 1, NaN]) };
  const wellFit = Float32Array.from([0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]);
  it('pass when each effect clears its threshold; fail when one only has the right sign', () => {
    const good = recoveryChecks({ minVertices: 1, truth: base, selectors: { layer: layers(0, 2), space, scale }, L, r2: wellFit, thresholds: thr });
    assert.deepEqual(good.checks.map((c) => [c.name, c.pass]), [['depthSpearman', true], ['prfCentre', true], ['scaleEarlyVsCategory', true], ['scaleLocalVsGlobal', true]]);
    near(good.checks[3]!.value, 0.9 - 0.5, 'global minus local inside category ROIs');
    near(good.checks[2]!.value, (0.9 + 0.5 + 0.9) / 3 - 0.1, 'category minus early');
    // a positive gap below the threshold fails: category scale only 0.05 above the early areas
    const weak = recoveryChecks({ minVertices: 1, truth: base, selectors: { layer: layers(0, 2), space, scale: Float32Array.from([0.5, 0.5, 0.5, 0.5, 0.56, 0.54, 0.56, 0.5]) }, L, r2: wellFit, thresholds: thr });
    assert.ok(weak.checks[2]!.value > 0 && !weak.checks[2]!.pass && !weak.pass);
    // vertices below the well-fit R² leave the depth and pRF checks
    const none = recoveryChecks({ minVertices: 1, truth: base, selectors: { layer: layers(0, 2), space, scale }, L, r2: new Float32Array(8), thresholds: thr });
    assert.ok(Number.isNaN(none.checks[0]!.value) && !none.checks[0]!.pass && none.checks[1]!.n === 0);
    // too few vertices to judge: a check fails however large its value
    assert.ok(!recoveryChecks({ truth: base, selectors: { layer: layers(0, 2), space, scale }, L, r2: wellFit, thresholds: thr }).checks.some((c) => c.pass), 'fewer than MIN_CHECK_VERTICES');
    assert.match(formatRecoveryTable(good.checks, none.checks), /\| scale inside category ROIs, global minus local vertices \(n=3\) \| ≥ 0.2 \| 0.400 \| yes \| 0.400 \| NO \|/);
  });
  it('Spearman uses ranks (average ranks for ties)', () => {
    near(spearmanFinite([1, 2, 3, 4], [10, 20, 30, 1000]), 1, 'monotone');
    near(spearmanFinite([1, 1, 2, NaN], [1, 1, 2, 5]), 1, 'ties and NaN');
    near(spearmanFinite([1, 2, 3], [3, 2, 1]), -1, 'reversed');
  });
});

describe('recovery of a tiny world-v3 subject, with the shuffled-image null', function () {
  this.timeout(1800000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-recovery-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  it('the fit recovers depth, pRF centres and scale with a margin; the shuffled null fails every check', async () => {
    const { report, table } = await runScience({ size: 'tiny', seed: 1, world: 'v3', subjectDir: path.join(tmp, 'subject'), cacheRoot: path.join(tmp, 'cache'), outDir: path.join(tmp, 'out'), ridge: false, log: null });
    console.log(table.split('\n').slice(0, 12).join('\n'));
    assert.equal(report.world.version, 3);
    assert.equal(report.world.network, 'inceptionv3');
    // every check clears its threshold (measured at seed 1: depth 0.763, pRF 0.913, scale 0.151 and 0.166; thresholds
    // 0.5, 0.7, 0.075, 0.075), each over enough vertices
    for (const c of report.checks) assert.ok(c.pass, `${c.what}: ${c.value.toFixed(3)} below ${c.threshold} (n=${c.n})`);
    assert.ok(report.checks.filter((x) => x.name.startsWith('scale')).every((c) => c.n >= 100), 'the scale checks ran over the ROIs');
    // the shuffled-image null fails every check
    for (const c of report.null!.checks) assert.ok(!c.pass, `the shuffled null passes ${c.what}: ${c.value.toFixed(3)} >= ${c.threshold} over ${c.n} vertices`);
    assert.ok(report.null!.failsEveryCheck);
    assert.equal(report.pass, true);
    assert.deepEqual(report.checks.map((c) => c.threshold), Object.values(RECOVERY_THRESHOLDS.tiny));
    assert.ok(fs.existsSync(path.join(tmp, 'out', 'table.md')));
  });
});
