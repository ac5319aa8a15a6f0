/**
 * The paper's one-call figures (lib/viz/paper.ts) on a tiny synthetic subject with a fit made from its ground truth:
 * the layer-selector PNG is blue (early layers) at V1 and red (late layers) at the category patches, the background is
 * white, every figure renders and is written to disk, and the ROI summary groups V1v/V1d.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { pixels } from '../viz/pixels';
import {
  markdownTable, paperCompareBackbones, paperFigures, paperRoiScores, paperLayerSelector, paperPlotly, paperTopChannels,
  roiSummaryRows, writePaperFigures,
} from 'brainnet';
import { flatmapGeometry, layerSelectorFigure, layoutCentroid } from 'brainnet/viz';
import { pngSize } from 'brainnet/notebook';
import { groundTruthFit } from './fake-fit';

describe('viz/paper: one-call paper figures from a fit', function () {
  this.timeout(120000);
  let dir: string;
  let g: Awaited<ReturnType<typeof groundTruthFit>>;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-paper-'));
    g = await groundTruthFit(path.join(dir, 'subject'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('layer selector: early-layer blue at V1, late-layer red at FFA and PPA, white outside the cortex', async () => {
    const fig = await paperLayerSelector(g.fit, g.layout, { rois: g.rois, roiLabels: false, width: 1200 }) // labels sit at the centroids;
    const px = await pixels(fig.png);
    const geom = flatmapGeometry(fig.map!, { width: px.width, height: px.height });
    const N = g.rois.length;
    for (const hemi of ['lh', 'rh'] as const) {
      const at = (f: (r: string) => boolean) => {
        const c = layoutCentroid(g.layout, Array.from({ length: N }, (_, i) => (hemi === 'lh' ? i < g.layout.nLh : i >= g.layout.nLh) && f(g.rois[i]!)));
        assert.ok(c, `${hemi}: ROI present`);
        return px.at(...geom.toPixel(...c));
      };
      const v1 = at((r) => r.startsWith('V1')), ffa = at((r) => r === 'FFA-1'), ppa = at((r) => r === 'PPA');
      assert.ok(v1[2]! > v1[0]! + 40, `${hemi} V1 is blue: ${v1}`);
      assert.ok(ffa[0]! > ffa[2]! + 40, `${hemi} FFA-1 is red: ${ffa}`);
      assert.ok(ppa[0]! > ppa[2]! + 40, `${hemi} PPA is red: ${ppa}`);
    }
    // background: the corners and the gap between the hemispheres' bounding box edges
    for (const [x, y] of [[2, 2], [px.width - 3, px.height - 3], [2, px.height - 3]]) assert.deepEqual(px.at(x!, y!), [255, 255, 255, 255], `background at ${x},${y}`);
  });

  it('encodes figures as palette PNGs by default (the same picture, several times smaller); png: \'full\' keeps 32 bits', async () => {
    const pal = await paperLayerSelector(g.fit, g.layout, { rois: g.rois, width: 900 });
    const full = await paperLayerSelector(g.fit, g.layout, { rois: g.rois, width: 900, png: 'full' });
    assert.equal((await sharp(pal.png).metadata()).isPalette, true);
    assert.notEqual((await sharp(full.png).metadata()).isPalette, true);
    assert.ok(pal.png.length < full.png.length / 2, `palette ${pal.png.length} B, full ${full.png.length} B`);
    const [a, b] = await Promise.all([pal.png, full.png].map((p) => sharp(p).removeAlpha().raw().toBuffer()));
    let far = 0;
    for (let i = 0; i < a!.length; i += 3) if (Math.abs(a![i]! - b![i]!) + Math.abs(a![i + 1]! - b![i + 1]!) + Math.abs(a![i + 2]! - b![i + 2]!) > 24) far++;
    assert.ok(far < 0.002 * (a!.length / 3), `${far} pixels differ visibly`);
  });

  it('draws every figure, writes the PNGs, and makes an interactive one with ROI hover', async () => {
    const figs = await paperFigures(g.fit, g.layout, { rois: g.rois, width: 700 });
    assert.deepEqual(figs.map((f) => f.name), ['layer_selector', 'space_selector', 'scale_selector', 'r2', 'channel_clusters', 'per_layer', 'model_vs_ridge', 'training_curves']);
    figs.push(await paperTopChannels(g.fit, 0, ['V1', 'FFA-1']));
    for (const f of figs) assert.ok((pngSize(f.png)?.width ?? 0) > 200, `${f.name} is a PNG`);
    assert.equal(figs.find((f) => f.name === 'per_layer')!.maps!.length, 8);
    const paths = await writePaperFigures(figs, path.join(dir, 'out'));
    for (const p of paths) assert.ok(fs.statSync(p).size > 1000, p);
    const plot = await paperPlotly(figs[0]!);
    const hover = (plot.data[0] as { hovertext: string[] }).hovertext;
    const iV1 = g.rois.indexOf('V1v');
    assert.match(hover.find((t) => t.startsWith(`vertex ${iV1} `))!, /ROI: V1v.*layer \(argmax\): 2/s);
    await assert.rejects(paperPlotly(figs[5]!), /not a single flatmap/);
  });

  it('truth against recovery: true and recovered depth, pRF and scale maps side by side, and the pRF scatter', async () => {
    const { groundTruth, depthOf } = await import('brainnet/synthetic');
    const { paperTruthVsRecovered } = await import('brainnet/viz');
    const t = groundTruth(path.join(dir, 'subject'))!;
    const truth = { depth: depthOf(t), prfX: t.prfX, prfY: t.prfY, scale: t.scale.map((s) => (s === 'global' ? 1 : 0)) };
    const fig = await paperTruthVsRecovered(truth, g.fit, g.layout, { rois: g.rois, roiLabels: false, width: 1200, early: t.roi.map((r) => /^V[123][dv]$/.test(r)) });
    assert.equal(fig.maps!.length, 6);
    assert.deepEqual(fig.maps!.map((m) => m.title), ['True depth', 'Recovered: mean layer index', 'True pRF centre', 'Recovered: space selector', 'True scale', 'Recovered: scale selector']);
    assert.ok((pngSize(fig.png)?.width ?? 0) >= 1000, 'two columns of 600 px');
    // the true depth map: blue (early) at V1, red (late) at FFA-1, as the ground-truth fit's recovered map
    for (const m of [fig.maps![0]!, fig.maps![1]!]) {
      const png = await (await import('brainnet/viz')).renderFlatmapPng(m, { width: 900, height: 450 });
      const px = await pixels(png);
      const geom = flatmapGeometry(m, { width: px.width, height: px.height });
      const N = g.rois.length;
      const at = (f: (r: string) => boolean) => px.at(...geom.toPixel(...layoutCentroid(g.layout, Array.from({ length: N }, (_, i) => i < g.layout.nLh && f(g.rois[i]!)))!));
      const v1 = at((r) => r.startsWith('V1')), ffa = at((r) => r === 'FFA-1');
      assert.ok(v1[2]! > v1[0]! + 40 && ffa[0]! > ffa[2]! + 40, `${m.title}: V1 ${v1}, FFA-1 ${ffa}`);
    }
    // the scatter: one point per axis per V1-V3 vertex with a pRF; the ground-truth fit lies on the diagonal
    const values = (fig.vegaLite!.data as { values: { axis: string; truth: number; recovered: number }[] }).values;
    const nEarly = t.roi.filter((r, i) => /^V[123][dv]$/.test(r) && Number.isFinite(t.prfX[i]!)).length;
    assert.equal(values.length, 2 * nEarly);
    // x as stored; y flipped back to point up (the ground-truth fit stores the pRF's y unflipped on the grid, so its y comes out negated)
    assert.ok(values.filter((v) => v.axis === 'x').every((v) => Math.abs(v.truth - v.recovered) < 1e-5 || Math.abs(v.truth) > 1), 'x on the diagonal');
    assert.ok(values.filter((v) => v.axis !== 'x').every((v) => Math.abs(v.truth + v.recovered) < 1e-5 || Math.abs(v.truth) > 1), 'y negated');
  });

  it('rejects a fit that covers other vertices than the layout', async () => {
    await assert.rejects(paperFigures({ ...g.fit, r2: new Float32Array(5) }, g.layout), /r2 has 5 values/);
  });

  it('summarises by ROI (V1v and V1d grouped as V1) as a Markdown table', () => {
    const rows = roiSummaryRows({ r2: g.fit.r2 }, g.rois);
    const v1 = rows.find((r) => r.roi === 'V1')!;
    const n = g.rois.filter((r) => r === 'V1v' || r === 'V1d').length;
    assert.equal(v1.n, n);
    assert.ok(!rows.some((r) => r.roi === 'V1v'));
    const md = markdownTable(rows);
    assert.match(md, /^\| roi \| n \| r2 \|/);
    assert.match(md, /\| V1 \| \d+ \| 0\.\d{3} \|/);
  });

  it('compares backbones: side-by-side selector panels and ROI-wise scores per backbone', async () => {
    const flat = { ...g.fit, r2: Float32Array.from(g.fit.r2 as Float32Array, (v) => v / 2) };
    const fits = { good: g.fit, flat };
    const panels = await paperCompareBackbones(fits, g.layout, { rois: g.rois, width: 900 });
    assert.deepEqual(panels.map((p) => p.name), ['compare_layer_selector', 'compare_scale_selector']);
    assert.equal(panels[0]!.maps!.length, 2);
    assert.equal(panels[0]!.maps![1]!.title, 'flat: layer selector');
    const scores = await paperRoiScores(fits, g.rois);
    const v1 = scores.rows.find((r) => r.roi === 'V1')!;
    assert.ok(Math.abs((v1.flat as number) - (v1.good as number) / 2) < 1e-6, `V1: ${JSON.stringify(v1)}`);
    assert.ok((pngSize(scores.png)?.width ?? 0) > 300);
    await assert.rejects(paperRoiScores(fits, g.rois, { metric: 'score' }), /'good' has no score/);
  });

  it('layer selector of a barely trained model (weights near uniform): entropy stretched to the data, not a black map', () => {
    const w = (g.fit.selectors.layer as unknown as { data: Float32Array }).data, N = g.rois.length, L = w.length / N;
    const spread = Float32Array.from(w, (v) => 0.95 / L + 0.05 * v);
    const ffa = g.rois.map((r, i) => (r.startsWith('FFA') ? i : -1)).filter((i) => i >= 0);
    const meanRgb = (m: { colors: Float32Array }) => [0, 1, 2].map((c) => ffa.reduce((s, i) => s + m.colors[3 * i + c]!, 0) / ffa.length);
    const abs = meanRgb(layerSelectorFigure({ shape: [N, L], data: spread }, g.layout, { entropy: 'absolute' }));
    assert.ok(Math.max(...abs) < 0.25, `absolute: dark (${abs})`);
    const map = layerSelectorFigure({ shape: [N, L], data: spread }, g.layout);
    const rgb = meanRgb(map);
    assert.ok(rgb[0]! > rgb[2]! + 0.15 && rgb[0]! > abs[0]! + 0.15, `stretched: FFA bright red (${rgb}; absolute ${abs})`);
    assert.equal(map.key?.kind, 'square');
    assert.ok(map.key?.kind === 'square' && Number(map.key.yticks![0]) > 0.9, 'the key gives the real entropy range');
  });
});
