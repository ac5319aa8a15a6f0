/**
 * The papers' figures from plain arrays on a tiny synthetic subject: the layer selector shows early-layer colours at
 * V1 and late-layer colours at the category patches (pixels sampled at ROI centroids), scale and space selectors,
 * R², clusters, per-layer maps, image grids, panels and training curves.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pixels } from './pixels';
import { imageGrid, trainingCurves } from 'brainnet';
import { readFreesurferSurface } from 'brainnet/io';
import { groundTruth, makeAlgonautsSubject } from 'brainnet/synthetic';
import {
  type FlatLayout, type Flatmap, clusterFigure, comparePanel, flatmapGeometry, flatmapHeight, flatmapPlotly, layerSelectorFigure,
  layoutCentroid, perLayerFigures, projectionLayout, r2Figure, renderFlatmapPng, scaleSelectorFigure, spaceSelectorFigure,
} from 'brainnet/viz';
import { pngSize, renderVegaLite } from 'brainnet/notebook';

describe('viz: selector figures and panels', function () {
  this.timeout(120000);
  let dir: string;
  let layout: FlatLayout;
  let rois: string[], depth: string[], scale: string[];
  let N: number;
  const L = 8;
  let weights: Float32Array;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-vizfig-'));
    await makeAlgonautsSubject({ size: 'tiny', seed: 2, out: dir, train: 12, test: 4, world: 'v2' }); // drawing only: the fast world
    const gt = groundTruth(dir)!;
    const spheres = { lh: await readFreesurferSurface(path.join(dir, 'surfaces', 'lh.sphere')), rh: await readFreesurferSurface(path.join(dir, 'surfaces', 'rh.sphere')) };
    layout = await projectionLayout(spheres, { vertices: { lh: gt.fsIndex.subarray(0, gt.nLh), rh: gt.fsIndex.subarray(gt.nLh) } });
    ({ roi: rois, depth, scale } = gt);
    N = rois.length;
    // layer weights as a fitted model would give them: a softmax peaked at the vertex's intended depth
    weights = new Float32Array(N * L);
    for (let i = 0; i < N; i++) {
      const c = depth[i] === 'early' ? 1 : depth[i] === 'mid' ? 4 : 7;
      let s = 0;
      for (let l = 0; l < L; l++) s += (weights[i * L + l] = Math.exp(-((l - c) ** 2) / 1.5));
      for (let l = 0; l < L; l++) weights[i * L + l]! /= s;
    }
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const centroidPixel = (map: Flatmap, size: { width: number; height: number }, hemi: 'lh' | 'rh', f: (r: string) => boolean) => {
    const c = layoutCentroid(layout, Array.from({ length: N }, (_, i) => (hemi === 'lh' ? i < layout.nLh : i >= layout.nLh) && f(rois[i]!)));
    assert.ok(c, 'ROI present');
    return flatmapGeometry(map, size).toPixel(...c);
  };

  it('layer selector: early-layer (blue) colours at V1, late-layer (red) colours at the category patches', async () => {
    const map = layerSelectorFigure({ shape: [N, L], data: weights }, layout, { rois, outlines: true });
    assert.equal(map.key?.kind, 'square');
    const size = { width: 1000, height: 460 };
    const px = await pixels(await renderFlatmapPng(map, size));
    for (const hemi of ['lh', 'rh'] as const) {
      const v1 = px.at(...centroidPixel(map, size, hemi, (r) => r.startsWith('V1')));
      const ffa = px.at(...centroidPixel(map, size, hemi, (r) => r === 'FFA-1'));
      const ppa = px.at(...centroidPixel(map, size, hemi, (r) => r === 'PPA'));
      assert.ok(v1[2]! > v1[0]! + 40, `${hemi} V1 is blue (early layer): ${v1}`);
      assert.ok(ffa[0]! > ffa[2]! + 40, `${hemi} FFA is red (late layer): ${ffa}`);
      assert.ok(ppa[0]! > ppa[2]! + 40, `${hemi} PPA is red (late layer): ${ppa}`);
    }
    assert.deepEqual(px.at(2, 2), [255, 255, 255, 255]);
    // hover shows the selector values
    const fig = flatmapPlotly(map);
    const t: string = (fig.data[0] as { hovertext: string[] }).hovertext[rois.indexOf('V1v')]!;
    assert.match(t, /layer \(argmax\): 2/);
    assert.match(t, /entropy: /);
  });

  it('a flat entropy darkens the layer colour', async () => {
    const uniform = new Float32Array(N * L).fill(1 / L);
    const map = layerSelectorFigure({ shape: [N, L], data: uniform }, layout);
    const sharp = layerSelectorFigure({ shape: [N, L], data: weights }, layout);
    const lum = (m: Flatmap) => m.colors.reduce((a, b) => a + b, 0) / m.colors.length;
    assert.ok(lum(map) < 0.5 * lum(sharp), `uniform weights are dark: ${lum(map)} vs ${lum(sharp)}`);
  });

  it('scale selector on PuOr: local (orange) at V1, global (purple) at FFA; space on the colour square; R²; clusters', async () => {
    const s = Float32Array.from(scale, (v) => (v === 'global' ? 0.9 : 0.1));
    const map = scaleSelectorFigure(s, layout, { rois });
    const size = { width: 900, height: flatmapHeight(map, 900) };
    const px = await pixels(await renderFlatmapPng(map, size));
    const v1 = px.at(...centroidPixel(map, size, 'lh', (r) => r.startsWith('V1')));
    const ffa = px.at(...centroidPixel(map, size, 'lh', (r) => r === 'FFA-1'));
    assert.ok(v1[0]! > v1[2]! + 60, `V1 local is orange: ${v1}`);
    assert.ok(ffa[2]! > ffa[1]! + 40, `FFA global is purple: ${ffa}`);

    const xy = new Float32Array(2 * N).map((_, k) => (k % 2 ? -0.9 : 0.9)); // everything bottom-right: red corner
    const sp = spaceSelectorFigure({ shape: [N, 2], data: xy }, layout);
    assert.ok(sp.colors[0]! > 0.7 && sp.colors[2]! < 0.3, 'bottom-right is red');
    assert.throws(() => spaceSelectorFigure({ shape: [N, 3], data: new Float32Array(3 * N) }, layout), /\[N, 2\]/);

    const r2 = r2Figure(Float32Array.from({ length: N }, (_, i) => (rois[i] === 'other' ? 0.05 : 0.6)), layout);
    assert.equal(r2.key?.kind, 'bar');
    const cl = clusterFigure(Int32Array.from({ length: N }, (_, i) => i % 20), layout);
    assert.equal(cl.key?.kind === 'legend' && cl.key.entries.length, 20);
    assert.equal(cl.shading, 'nearest');
    assert.throws(() => clusterFigure(Int32Array.from({ length: N }, () => 25), layout), /20 colours/);
  });

  it('one flatmap per layer', () => {
    const maps = perLayerFigures({ shape: [N, L], data: weights }, layout);
    assert.equal(maps.length, L);
    assert.equal(maps[0]!.title, 'layer 1');
    const v1 = rois.indexOf('V1v');
    assert.ok(maps[1]!.values[v1]! > maps[7]!.values[v1]!);
  });

  it('image grids and side-by-side panels are PNGs of the expected size', async () => {
    const img = (r: number, g: number, b: number) => ({ width: 32, height: 24, data: new Uint8Array(32 * 24 * 3).map((_, k) => [r, g, b][k % 3]!) });
    const grid = await imageGrid([img(255, 0, 0), img(0, 255, 0), img(0, 0, 255), img(9, 9, 9), img(200, 200, 0)], { cols: 3, labels: ['a', 'b', 'c', 'd', 'e'], cell: 64, title: 'top channels' });
    const gsz = pngSize(grid)!;
    assert.ok(gsz.width > 3 * 64 && gsz.width < 4 * 64, `grid width ${gsz.width}`);
    const gp = await pixels(grid);
    // find the red image: centre of the first cell
    const titleH = Math.round(Math.max(10, Math.round(64 / 12)) * 2.4), pad = Math.round(64 * 0.05);
    assert.deepEqual(gp.at(pad + 32, titleH + pad + 32).slice(0, 3), [255, 0, 0]);
    const a = layerSelectorFigure({ shape: [N, L], data: weights }, layout, { title: 'model' });
    const b = r2Figure(new Float32Array(N).fill(0.3), layout, { title: 'ridge' });
    const panel = await comparePanel([a, b, grid], { width: 500, height: 250, labels: ['model', 'ridge', 'grid'] });
    const psz = pngSize(panel)!;
    assert.equal(psz.width, 3 * Math.max(500, gsz.width));
  });

  it('training curves are a Vega-Lite spec that compiles and renders', async () => {
    const history = Array.from({ length: 20 }, (_, i) => ({ step: i * 10, loss: 1 / (1 + i), valR2: i / 40, split: 'train' }));
    const spec = trainingCurves(history, { title: 'training' });
    const data = (spec.data as { values: { metric: string }[] }).values;
    assert.equal(data.length, 40);
    assert.deepEqual([...new Set(data.map((d) => d.metric))].sort(), ['loss', 'valR2']);
    const out = await renderVegaLite(spec, { format: 'svg' });
    assert.match(out.data as string, /<svg/);
    assert.match(out.data as string, /valR2/);
    const cols = trainingCurves({ step: [0, 1, 2], loss: [3, 2, 1] });
    assert.equal((cols.data as { values: unknown[] }).values.length, 3);
  });
});
