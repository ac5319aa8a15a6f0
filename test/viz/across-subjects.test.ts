/**
 * The paper's comparison across backbones and subjects (lib/viz/paper.ts): ROI numbers of a fit made from a synthetic
 * subject's ground truth (early visual areas read early layers, category patches late ones), the spread over subjects,
 * the hierarchy plot and the R² bars (PNGs with each backbone's colour where its points are), and the agreement between
 * subjects on shared vertices.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  meanLayerPerVertex, paperLayerHierarchy, paperRoiOrder, paperRoiScoresAcrossSubjects, paperSubjectAgreement, roiLayerRows, sharedVertexCorrelation,
  spreadAcrossSubjects, type SubjectRoiValue,
} from 'brainnet/viz';
import { groundTruthFit, L } from '../example/fake-fit';
import { pixels } from './pixels';

describe('viz/paper: across backbones and subjects', function () {
  this.timeout(120000);
  let dir: string;
  let g: Awaited<ReturnType<typeof groundTruthFit>>;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-across-'));
    g = await groundTruthFit(path.join(dir, 'subject'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('mean layer per vertex is the softmax-weighted layer index', () => {
    const m = meanLayerPerVertex({ shape: [3, 3], data: new Float32Array([1, 0, 0, 0, 0, 1, 0.25, 0.5, 0.25]) }, 3);
    assert.deepEqual(Array.from(m), [0, 2, 1]);
  });

  it('ROI rows of a ground-truth fit: early visual areas read early layers, category patches late ones, in the paper order', () => {
    const rows = roiLayerRows(g.fit, g.rois);
    assert.deepEqual(rows.slice(0, 4).map((r) => r.roi), ['V1', 'V2', 'V3', 'hV4']);
    const v1 = rows.find((r) => r.roi === 'V1')!, ffa = rows.find((r) => r.roi === 'FFA-1')!;
    assert.ok(v1.depth < 0.3 && ffa.depth > 0.7, `V1 depth ${v1.depth}, FFA-1 depth ${ffa.depth}`);
    assert.ok(Math.abs(v1.layer / (L - 1) - v1.depth) < 1e-6);
    assert.equal(rows.reduce((s, r) => s + r.n, 0), g.rois.filter((r) => r).length);
    assert.deepEqual(paperRoiOrder(['FFA-1', 'zzz', 'V2', 'EBA', 'V1']), ['V1', 'V2', 'FFA-1', 'EBA', 'zzz']);
  });

  it('spread over subjects: mean, sample sd, min and max per backbone and ROI', () => {
    const rows: SubjectRoiValue[] = [
      { backbone: 'a', subject: 's1', roi: 'FFA-1', value: 0.8 }, { backbone: 'a', subject: 's2', roi: 'FFA-1', value: 0.6 },
      { backbone: 'a', subject: 's1', roi: 'V1', value: 0.1 }, { backbone: 'a', subject: 's2', roi: 'V1', value: 0.3 }, { backbone: 'a', subject: 's3', roi: 'V1', value: NaN },
      { backbone: 'b', subject: 's1', roi: 'V1', value: 0.5 },
    ];
    const s = spreadAcrossSubjects(rows);
    assert.deepEqual(s.map((r) => [r.group, r.roi, r.n]), [['a', 'V1', 2], ['a', 'FFA-1', 2], ['b', 'V1', 1]]);
    assert.ok(Math.abs(s[0]!.mean - 0.2) < 1e-12 && Math.abs(s[0]!.sd - Math.SQRT2 * 0.1) < 1e-12 && s[0]!.min === 0.1 && s[0]!.max === 0.3);
    assert.ok(Number.isNaN(s[2]!.sd));
  });

  it('the hierarchy plot and the R² bars draw each backbone in its own colour, early ROIs low and category ROIs high', async () => {
    // two "backbones" over three "subjects": one with the truth's hierarchy, one flat
    const truth = roiLayerRows(g.fit, g.rois);
    const rows: SubjectRoiValue[] = [];
    for (const subject of ['s1', 's2', 's3']) {
      for (const [k, r] of truth.entries()) {
        rows.push({ backbone: 'hierarchical', subject, roi: r.roi, value: r.depth + 0.02 * Math.sin(k + subject.length) });
        rows.push({ backbone: 'flat', subject, roi: r.roi, value: 0.5 });
      }
    }
    const h = await paperLayerHierarchy(rows);
    assert.equal(h.name, 'layer_hierarchy');
    const hv1 = h.rows.find((r) => r.group === 'hierarchical' && r.roi === 'V1')!, hffa = h.rows.find((r) => r.group === 'hierarchical' && r.roi === 'FFA-1')!;
    assert.ok(hv1.mean < 0.3 && hffa.mean > 0.7 && hv1.n === 3);
    const px = await pixels(h.png);
    assert.ok(px.width > 600 && px.height > 300);
    // vega's category10: the first backbone blue (#4c78a8), the second orange (#f58518); both are drawn
    let blue = 0, orange = 0;
    for (let y = 0; y < px.height; y += 2) for (let x = 0; x < px.width; x += 2) {
      const [r, gg, b] = px.at(x, y);
      if (Math.abs(r - 0x4c) < 30 && Math.abs(gg - 0x78) < 30 && Math.abs(b - 0xa8) < 30) blue++;
      if (Math.abs(r - 0xf5) < 30 && Math.abs(gg - 0x85) < 30 && Math.abs(b - 0x18) < 40) orange++;
    }
    assert.ok(blue > 50 && orange > 50, `blue ${blue}, orange ${orange}`);
    const bars = await paperRoiScoresAcrossSubjects(rows.map((r) => ({ ...r, value: r.value / 2 })), { yTitle: 'R²' });
    assert.equal(bars.rows.length, h.rows.length);
    assert.ok((await pixels(bars.png)).width > 600);
  });

  it('subject agreement: Pearson r on shared vertices only, one heatmap per backbone', async () => {
    const N = g.rois.length;
    const depth = meanLayerPerVertex(g.fit.selectors.layer, N);
    const ids = Int32Array.from({ length: N }, (_, i) => 1000 + i);
    // s2 has the same map on a shifted vertex set (the first 50 vertices missing); s3 is its negative
    const s2 = { values: depth.slice(50), vertexIds: ids.slice(50) };
    const shared = sharedVertexCorrelation({ values: depth, vertexIds: ids }, s2);
    assert.equal(shared.n, N - 50);
    assert.ok(Math.abs(shared.r - 1) < 1e-9);
    const neg = { values: depth.map((v) => -v), vertexIds: ids };
    assert.ok(Math.abs(sharedVertexCorrelation(s2, neg).r + 1) < 1e-9);
    assert.equal(sharedVertexCorrelation({ values: [1, 2], vertexIds: [1, 2] }, { values: [1, 2], vertexIds: [3, 4] }).n, 0);
    const a = await paperSubjectAgreement({ good: { s1: { values: depth, vertexIds: ids }, s2 }, bad: { s1: { values: depth, vertexIds: ids }, s3: neg } });
    assert.ok(Math.abs(a.meanR.good! - 1) < 1e-9 && Math.abs(a.meanR.bad! + 1) < 1e-9);
    assert.equal(a.rows.filter((r) => r.backbone === 'good').length, 4);
    const px = await pixels(a.png);
    // a dark red cell (r = 1) and a dark blue one (r = -1) are drawn
    let red = 0, blue = 0;
    for (let y = 0; y < px.height; y += 2) for (let x = 0; x < px.width; x += 2) {
      const [r, gg, b] = px.at(x, y);
      if (r > 120 && gg < 60 && b < 60) red++;
      if (b > 90 && r < 60 && gg < 100) blue++;
    }
    assert.ok(red > 100 && blue > 100, `red ${red}, blue ${blue}`);
  });
});
