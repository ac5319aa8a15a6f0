/**
 * Flatmaps on a tiny synthetic subject (generated in a temp dir): ROI colours sampled at ROI centroids in the
 * PNG, background outside the cortex, bad input, Plotly hover text, and a FreeSurfer patch round trip.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pixels } from './pixels';
import { loadAlgonautsSubject, subjectFlatLayout } from 'brainnet';
import { type Surface, readFreesurferSurface, readPatch, writePatch } from 'brainnet/io';
import { groundTruth, makeAlgonautsSubject } from 'brainnet/synthetic';
import {
  type FlatLayout, FlatmapError, LayoutError, colormap, flatLayoutFromPatches, flatLayoutFromSurfaces, flatmap, flatmapGeometry,
  flatmapPlotly, flatmapPlotly2d, layoutCentroid, projectionLayout, readFlatLayout, renderFlatmapPng,
} from 'brainnet/viz';

const EARLY = new Set(['V1v', 'V1d', 'V2v', 'V2d', 'V3v', 'V3d', 'hV4']);

/** Decodes a PNG into RGBA pixels. */
const near = (p: number[], rgb: number[], tol = 12) => rgb.every((v, k) => Math.abs(p[k]! - v) <= tol);
const rgb255 = (c: number[]) => c.map((v) => Math.round(255 * v));

describe('viz: flatmaps on a synthetic subject', function () {
  this.timeout(120000);
  let dir: string;
  let vertices: { lh: Int32Array; rh: Int32Array };
  let spheres: { lh: Surface; rh: Surface };
  let layout: FlatLayout;
  let rois: string[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-viz-'));
    await makeAlgonautsSubject({ size: 'tiny', seed: 1, out: dir, train: 12, test: 4, world: 'v2' }); // drawing only: the fast world
    const gt = groundTruth(dir)!;
    vertices = { lh: gt.fsIndex.subarray(0, gt.nLh), rh: gt.fsIndex.subarray(gt.nLh) };
    spheres = { lh: await readFreesurferSurface(path.join(dir, 'surfaces', 'lh.sphere')), rh: await readFreesurferSurface(path.join(dir, 'surfaces', 'rh.sphere')) };
    layout = await projectionLayout(spheres, { vertices });
    rois = gt.roi;
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('projects both hemispheres side by side, lh left, medial sides (V1) facing the middle', () => {
    assert.equal(layout.nLh, vertices.lh.length);
    assert.equal(layout.nRh, vertices.rh.length);
    assert.ok(layout.faces.length / 3 > layout.nLh, 'triangulated');
    const n = layout.nLh + layout.nRh;
    const mask = (hemi: 'lh' | 'rh', f: (r: string) => boolean) => Array.from({ length: n }, (_, i) => (hemi === 'lh' ? i < layout.nLh : i >= layout.nLh) && f(rois[i]!));
    const v1l = layoutCentroid(layout, mask('lh', (r) => r.startsWith('V1')))!, v1r = layoutCentroid(layout, mask('rh', (r) => r.startsWith('V1')))!;
    const ebal = layoutCentroid(layout, mask('lh', (r) => r === 'EBA'))!, ebar = layoutCentroid(layout, mask('rh', (r) => r === 'EBA'))!;
    assert.ok(v1l[0] < 0 && v1r[0] > 0, 'lh on the left, rh on the right');
    assert.ok(ebal[0] < v1l[0] && ebar[0] > v1r[0], 'lateral (EBA) on the outside, medial toward the middle');
    const ffa = layoutCentroid(layout, mask('lh', (r) => r.startsWith('FFA')))!, opa = layoutCentroid(layout, mask('lh', (r) => r === 'OPA'))!;
    assert.ok(ffa[1] < 0 && opa[1] > 0, 'ventral (FFA) down, dorsal (OPA) up');
  });

  it('draws ROI colours at the V1 and FFA centroids, and background outside the cortex', async () => {
    const values = Float32Array.from(rois, (r) => (EARLY.has(r) ? 0 : r === 'other' ? NaN : 2));
    const map = flatmap(values, layout, { cmap: 'tab20', rois, categories: ['early visual', '', 'category patches'] });
    const size = { width: 900, height: 450 };
    const png = await renderFlatmapPng(map, size);
    const px = await pixels(png);
    assert.equal(px.width, 900);
    const geom = flatmapGeometry(map, size);
    const n = layout.nLh + layout.nRh;
    const blue = rgb255(colormap('tab20', 0)), orange = rgb255(colormap('tab20', 2));
    for (const hemi of ['lh', 'rh'] as const) {
      const inHemi = (i: number) => (hemi === 'lh' ? i < layout.nLh : i >= layout.nLh);
      const v1 = layoutCentroid(layout, Array.from({ length: n }, (_, i) => inHemi(i) && rois[i]!.startsWith('V1')))!;
      const ffa = layoutCentroid(layout, Array.from({ length: n }, (_, i) => inHemi(i) && rois[i] === 'FFA-1'))!;
      const pv1 = px.at(...geom.toPixel(...v1)), pffa = px.at(...geom.toPixel(...ffa));
      assert.ok(near(pv1, blue), `${hemi} V1 centroid pixel ${pv1} should be early-visual blue ${blue}`);
      assert.ok(near(pffa, orange), `${hemi} FFA-1 centroid pixel ${pffa} should be category orange ${orange}`);
    }
    // outside the cortex: the corners, the gap between the hemispheres, and just beyond the layout's bounds
    const b = layout.bounds;
    const outside: [number, number][] = [[0, 0], [899, 449], geom.toPixel(0, 0), geom.toPixel(0, b.ymax * 0.9), geom.toPixel(0, b.ymin * 0.9),
      [geom.toPixel(b.xmin, 0)[0] - 3, geom.toPixel(b.xmin, 0)[1]], [geom.toPixel(b.xmax, 0)[0] + 3, geom.toPixel(b.xmax, 0)[1]]];
    for (const [x, y] of outside) assert.deepEqual(px.at(x, y), [255, 255, 255, 255], `pixel (${x.toFixed(0)}, ${y.toFixed(0)}) is white background`);
    // an unlabelled vertex of the cortex is drawn grey, not background
    const other = rois.findIndex((r, i) => r === 'other' && i < layout.nLh && Math.abs(layout.xy[2 * i + 1]!) < 5 && layout.xy[2 * i]! < layout.bounds.xmin + 15);
    if (other >= 0) {
      const p = px.at(...geom.toPixel(layout.xy[2 * other]!, layout.xy[2 * other + 1]!));
      assert.ok(near(p, [199, 199, 199], 20), `cortex without a value is grey, got ${p}`);
    }
    // transparent background
    const tpx = await pixels(await renderFlatmapPng({ ...map, background: 'transparent' }, size));
    assert.equal(tpx.at(0, 0)[3], 0);
    assert.equal(tpx.at(...geom.toPixel(0, 0))[3], 0);
  });

  it('rejects value arrays that match neither hemisphere, and accepts one hemisphere or RGB', () => {
    const n = layout.nLh + layout.nRh;
    assert.throws(() => flatmap(new Float32Array(n + 1), layout), (e: Error) => e instanceof FlatmapError && /neither hemisphere's vertex count/.test(e.message) && e.message.includes(String(layout.nLh)));
    assert.throws(() => flatmap(new Float32Array(163842), layout), FlatmapError);
    const lhOnly = flatmap(new Float32Array(layout.nLh).fill(1), layout);
    assert.equal(lhOnly.shown.reduce((a, b) => a + b, 0), layout.nLh);
    const rgb = flatmap({ shape: [n, 3], data: new Float32Array(3 * n).fill(0.5) }, layout);
    assert.equal(rgb.channels, 3);
    const rgba = flatmap(Array.from({ length: n }, () => [1, 0, 0, 0.5]), layout);
    assert.ok(Math.abs(rgba.colors[0]! - (0.5 + 0.5 * 0.78)) < 1e-5);
  });

  it('rejects a flat surface or patch from another mesh', async () => {
    const flat = { lh: spheres.lh, rh: spheres.rh }; // 163842 vertices, not the challenge count
    await assert.rejects(flatLayoutFromSurfaces(flat, { counts: { lh: layout.nLh, rh: layout.nRh } }), (e: Error) => e instanceof LayoutError && /another mesh/.test(e.message));
    await assert.rejects(flatLayoutFromSurfaces(flat, { vertices: { lh: [0, 1, 200000], rh: [0] } }), (e: Error) => e instanceof LayoutError && /200000/.test(e.message));
    // a flat surface that keeps every vertex of the sphere, drawn over the challenge vertices (sparse in ico7: triangulated in the plane)
    const viaSphere = await flatLayoutFromSurfaces(flat, { vertices });
    assert.equal(viaSphere.nLh, layout.nLh);
    assert.ok(viaSphere.faces.length / 3 > layout.nLh);
    const small: Surface = { vertices: new Float32Array(3 * 10), faces: new Int32Array([0, 1, 2]) };
    const patch = { vertices: new Float32Array(3 * 2), indices: new Int32Array([3, 5000]), border: new Uint8Array(2) };
    await assert.rejects(flatLayoutFromPatches({ lh: patch, rh: patch }, { lh: small, rh: small }), (e: Error) => e instanceof LayoutError && /another mesh/.test(e.message));
    // the synthetic flat GIFTI matches the challenge vertices
    const fl = await readFlatLayout({ flat: { lh: path.join(dir, 'surfaces', 'lh.flat.visual.gii'), rh: path.join(dir, 'surfaces', 'rh.flat.visual.gii') } }, { counts: { lh: layout.nLh, rh: layout.nRh } });
    assert.equal(fl.nLh, layout.nLh);
    assert.ok(fl.faces.length > 0);
  });

  it('warns on an all-NaN map and draws the empty cortex grey', async () => {
    const warnings: string[] = [];
    const orig = console.warn;
    console.warn = (m: string) => warnings.push(String(m));
    let map;
    try {
      map = flatmap(new Float32Array(layout.nLh + layout.nRh).fill(NaN), layout, { key: false });
    } finally {
      console.warn = orig;
    }
    assert.ok(warnings.some((w) => /every value is NaN/.test(w)));
    const size = { width: 600, height: 300 };
    const px = await pixels(await renderFlatmapPng(map, size));
    const geom = flatmapGeometry(map, size);
    const c = layoutCentroid(layout, Array.from({ length: layout.nLh + layout.nRh }, (_, i) => i < layout.nLh))!;
    assert.ok(near(px.at(...geom.toPixel(...c)), [199, 199, 199], 3));
  });

  it('builds a Plotly figure whose hover text names the index, ROI, value and selectors', () => {
    const n = layout.nLh + layout.nRh;
    const values = Float32Array.from({ length: n }, (_, i) => i / n);
    const map = flatmap(values, layout, { cmap: 'Reds', rois, roiLabels: true, title: 'test' });
    const fig = flatmapPlotly(map, { hover: { selectors: { layer: Float32Array.from({ length: n }, (_, i) => i % 7) } } });
    const fig2 = JSON.parse(JSON.stringify(fig));
    const mesh = fig2.data[0];
    assert.equal(mesh.type, 'mesh3d');
    assert.equal(mesh.x.length, n);
    assert.equal(mesh.i.length, layout.faces.length / 3);
    assert.ok(Math.max(...mesh.i, ...mesh.j, ...mesh.k) < n);
    const v1 = rois.indexOf('V1v');
    const t: string = mesh.hovertext[v1];
    assert.match(t, new RegExp(`vertex ${v1} `));
    assert.match(t, /ROI: V1v/);
    assert.match(t, new RegExp(`value: ${String(Number((v1 / n).toPrecision(4)))}`));
    assert.match(t, new RegExp(`layer: ${v1 % 7}`));
    assert.equal(fig2.layout.dragmode, 'pan');
    assert.ok(fig2.data.some((d: { mode?: string }) => d.mode === 'lines'), 'ROI outlines');
    assert.ok(fig2.data.some((d: { marker?: { showscale?: boolean } }) => d.marker?.showscale), 'colour bar');
  });

  it('lays out a loaded subject: the projection by default, or its flat GIFTI', async () => {
    const subject = await loadAlgonautsSubject(dir);
    const proj = await subjectFlatLayout(subject);
    assert.equal(proj.source, 'projection');
    assert.deepEqual(Array.from(proj.xy.slice(0, 20)), Array.from(layout.xy.slice(0, 20)));
    const fl = await subjectFlatLayout(subject, { flat: { lh: path.join(dir, 'surfaces', 'lh.flat.visual.gii'), rh: path.join(dir, 'surfaces', 'rh.flat.visual.gii') } });
    assert.equal(fl.nLh, subject.vertexCount.lh);
    assert.equal(fl.nRh, subject.vertexCount.rh);
    assert.ok(fl.faces.length / 3 > fl.nLh);
  });

  it('builds a 2-D Plotly figure: the cortex as an image under the axes, hover markers, outlines, colour bar', async () => {
    const n = layout.nLh + layout.nRh;
    const map = flatmap(Float32Array.from({ length: n }, (_, i) => i / n), layout, { cmap: 'viridis', rois, label: 'v' });
    const fig = JSON.parse(JSON.stringify(await flatmapPlotly2d(map, { pixelWidth: 400 })));
    const img = fig.layout.images[0];
    assert.match(img.source, /^data:image\/png;base64,/);
    const png = Buffer.from(img.source.split(',')[1], 'base64');
    const px = await pixels(new Uint8Array(png));
    assert.equal(px.width, 400);
    assert.equal(px.at(0, 0)[3], 0, 'outside the cortex is transparent');
    assert.ok(Math.abs(img.sizex - (layout.bounds.xmax - layout.bounds.xmin) * 400 / 398) < 1e-6 * img.sizex + 1e-3);
    const markers = fig.data[0];
    assert.equal(markers.type, 'scatter');
    assert.equal(markers.x.length, n);
    const v1 = rois.indexOf('V1d');
    assert.match(markers.hovertext[v1], /ROI: V1d/);
    assert.equal(markers.marker.showscale, true);
    assert.ok(fig.data.some((d: { mode?: string; type: string }) => d.type === 'scatter' && d.mode === 'lines'));
    assert.equal(fig.config.scrollZoom, true);
    assert.equal(fig.layout.yaxis.scaleanchor, 'x');
  });

  it('round-trips a FreeSurfer patch cut from the sphere and draws it', async () => {
    // a patch: the lh sphere vertices within 25 degrees of the occipital pole, flattened by the projection
    const cut = async (hemi: 'lh' | 'rh') => {
      const proj = await projectionLayout({ lh: spheres.lh, rh: spheres.rh }, { radiusDeg: 25 });
      const off = hemi === 'lh' ? 0 : proj.nLh;
      const n = hemi === 'lh' ? proj.nLh : proj.nRh;
      const idx: number[] = [], xyz: number[] = [];
      for (let i = 0; i < n; i++) {
        const x = proj.xy[2 * (off + i)]!, y = proj.xy[2 * (off + i) + 1]!;
        if (!Number.isFinite(x)) continue;
        idx.push(i); xyz.push(x * 1.5, y * 1.5, 0);
      }
      const file = path.join(dir, `${hemi}.test.flat.patch.3d`);
      await writePatch(file, { vertices: Float32Array.from(xyz), indices: Int32Array.from(idx), border: new Uint8Array(idx.length) });
      return file;
    };
    const files = { lh: await cut('lh'), rh: await cut('rh') };
    const back = await readPatch(files.lh);
    assert.ok(back.indices.length > 5000 && back.indices.length < 20000, `${back.indices.length} patch vertices`);
    const full = await readFlatLayout({ flat: files, surface: { lh: path.join(dir, 'surfaces', 'lh.sphere'), rh: path.join(dir, 'surfaces', 'rh.sphere') } });
    assert.equal(full.nLh, 163842);
    assert.ok(full.faces.length / 3 > 1.5 * back.indices.length, 'faces come from the full surface');
    // draw the full-resolution patch: a smooth gradient of the vertex's height on the sphere
    const vals = new Float32Array(2 * 163842);
    for (let i = 0; i < 163842; i++) { vals[i] = spheres.lh.vertices[3 * i + 2]!; vals[163842 + i] = spheres.rh.vertices[3 * i + 2]!; }
    const map = flatmap(vals, full, { cmap: 'coolwarm', vmin: -45, vmax: 45, label: 'z (mm)' });
    const size = { width: 800, height: 400 };
    const px = await pixels(await renderFlatmapPng(map, size));
    const geom = flatmapGeometry(map, size);
    const b = full.bounds;
    const top = px.at(...geom.toPixel(b.xmin / 2, b.ymax * 0.8)), bottom = px.at(...geom.toPixel(b.xmin / 2, b.ymin * 0.8));
    assert.ok(top[0] > top[2] + 40, `dorsal is warm: ${top}`);
    assert.ok(bottom[2] > bottom[0] + 40, `ventral is cool: ${bottom}`);
    assert.deepEqual(px.at(...geom.toPixel(0, 0)), [255, 255, 255, 255]);
    // the same patch over the challenge vertices only (a sparse subset of ico7: triangulated in the plane)
    const sub = await readFlatLayout({ flat: files, surface: { lh: path.join(dir, 'surfaces', 'lh.sphere'), rh: path.join(dir, 'surfaces', 'rh.sphere') } },
      { vertices });
    assert.equal(sub.nLh, vertices.lh.length);
    assert.ok(sub.faces.length > 0);
    flatmap(new Float32Array(sub.nLh + sub.nRh).fill(1), sub);
  });
});
