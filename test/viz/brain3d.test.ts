/**
 * The 3-D view's payload (lib/viz/brain3d.ts): icosahedral meshes coarsened to the data's order match `ico(k)` exactly,
 * data vertices land on the right mesh vertices, overlays keep the flatmap's colours, hemispheres are moved apart,
 * surfaces are read from FreeSurfer and GIFTI files, and bad input (overlay lengths, another mesh) is named.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ico } from 'brainnet/synthetic';
import { writeFreesurferSurface, writeGiftiSurface, type Surface } from 'brainnet/io';
import { brain3dFigure, coarsenIcosahedral, icosahedralOrder, flatmap, paperBrain3d, subjectSurfaces, type BrainSurfaces, type FlatLayout } from 'brainnet/viz';
import { decodeBrain3dBlob, type Brain3dPayload } from 'brainnet/notebook';

/** Triangles as a set of canonical strings (rotated so the smallest index comes first; orientation kept). */
function triangleSet(f: ArrayLike<number>): Set<string> {
  const s = new Set<string>();
  for (let t = 0; t < f.length; t += 3) {
    const v = [f[t]!, f[t + 1]!, f[t + 2]!];
    const r = v.indexOf(Math.min(...v));
    s.add([v[r], v[(r + 1) % 3], v[(r + 2) % 3]].join(','));
  }
  return s;
}

const blob = (p: Brain3dPayload, i: number) => decodeBrain3dBlob(p.blobs[i]!);

describe('viz: brain3d payload', function () {
  this.timeout(60000);
  const fine = ico(5, 100);
  const sphere: Surface = { vertices: fine.vertices, faces: fine.faces };
  // data vertices: the ico3 vertices with y < 0 (an "occipital" cap), per hemisphere
  const cap = Int32Array.from({ length: 642 }, (_, i) => i).filter((i) => fine.vertices[3 * i + 1]! < -20);
  const surfaces: BrainSurfaces = { surfaces: { sphere: { lh: sphere, rh: sphere } }, vertices: { lh: cap, rh: cap } };
  const nLh = cap.length, nRh = cap.length, N = nLh + nRh;
  const layout = { nLh, nRh } as FlatLayout; // brain3d reads only the counts of a flatmap's layout
  const values = Float32Array.from({ length: N }, (_, i) => (i % 7) / 6);
  const rois = Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 'V1v' : i % 3 === 1 ? 'FFA-1' : ''));

  it('coarsens a nested icosahedral mesh to exactly the faces of ico(k)', () => {
    for (const k of [2, 3, 4]) {
      const got = triangleSet(coarsenIcosahedral(fine.faces, 10242, k));
      const want = triangleSet(ico(k).faces);
      assert.equal(got.size, want.size);
      for (const t of want) assert.ok(got.has(t), `ico${k} triangle ${t}`);
    }
    assert.equal(icosahedralOrder(163842), 7);
    assert.equal(icosahedralOrder(1000), -1);
    // a relabelled mesh is no longer a nested subdivision: refused, naming why
    const perm = Int32Array.from({ length: 10242 }, (_, i) => 10241 - i);
    assert.throws(() => coarsenIcosahedral(fine.faces.map((v) => perm[v]!), 10242, 4), /not a regular subdivision/);
  });

  it('keeps the smallest icosahedral order that holds the data, and maps each data vertex to its mesh vertex', () => {
    const p = brain3dFigure(surfaces, [{ name: 'v', values }], { rois });
    assert.deepEqual(p.hemis.map((h) => h.nVertices), [2562, 2562], 'ico4: at least order 4 for a round sphere, and the data (ico3) fit');
    for (const [j, h] of p.hemis.entries()) {
      const di = blob(p, h.dataIndex);
      const off = j === 0 ? 0 : nLh;
      for (let k = 0; k < cap.length; k++) assert.equal(di[cap[k]!], off + k, `${h.name} data vertex ${k} sits at mesh vertex ${cap[k]}`);
      assert.equal(di.filter((d) => d >= 0).length, cap.length, 'no other mesh vertex claims a data vertex');
      assert.equal(blob(p, h.faces).length, 3 * 5120);
    }
  });

  it('coarsens below the data under maxVertices: each mesh vertex shows a data vertex within one coarse spacing', () => {
    const dense = Int32Array.from({ length: 10242 }, (_, i) => i).filter((i) => fine.vertices[3 * i + 1]! < -20);
    const p = brain3dFigure({ surfaces: surfaces.surfaces, vertices: { lh: dense, rh: dense } }, [{ name: 'v', values: new Float32Array(2 * dense.length) }], { maxVertices: 642 });
    assert.equal(p.hemis[0]!.nVertices, 642);
    const di = blob(p, p.hemis[0]!.dataIndex);
    const spacing = 100 * Math.sqrt((4 * Math.PI) / 642);
    let mapped = 0;
    for (let v = 0; v < 642; v++) {
      if (di[v]! < 0) continue;
      mapped++;
      const u = dense[di[v]!]!;
      const d = Math.hypot(...[0, 1, 2].map((k) => fine.vertices[3 * v + k]! - fine.vertices[3 * u + k]!));
      assert.ok(d < 1.5 * spacing, `mesh vertex ${v} shows data vertex at surface vertex ${u}, ${d.toFixed(1)} away`);
      if (dense.includes(v)) assert.equal(u, v, 'a mesh vertex that is a data vertex shows itself');
    }
    assert.ok(mapped >= dense.filter((v) => v < 642).length);
  });

  it('gives an overlay the flatmap\'s colours, alpha 0 where there is no value, and its key and hover values', () => {
    const withNaN = values.slice(); withNaN[3] = NaN;
    const map = flatmap(withNaN, layout, { cmap: 'Reds', vmin: 0, vmax: 1, title: 'R²', label: 'R²' });
    map.selectors = { 'layer (argmax)': Float32Array.from({ length: N }, (_, i) => i % 5) };
    const p = brain3dFigure(surfaces, [map], { rois });
    const o = p.overlays[0]!;
    assert.equal(o.name, 'R²');
    const c = blob(p, o.colors);
    for (const i of [0, 1, 2, 3, N - 1]) {
      if (i === 3) { assert.equal(c[4 * 3 + 3], 0); continue; }
      for (let k = 0; k < 3; k++) assert.equal(c[4 * i + k], Math.round(255 * map.colors[3 * i + k]!));
      assert.equal(c[4 * i + 3], 255);
    }
    assert.equal(o.key?.kind, 'bar');
    assert.deepEqual(o.readout.map((r) => r.name), ['R²', 'layer (argmax)']);
    assert.equal(blob(p, o.readout[1]!.values)[7], 2);
    assert.equal(o.threshold?.mode, 'above');
    assert.deepEqual(p.rois!.names, ['V1v', 'FFA-1']);
    assert.deepEqual(Array.from(blob(p, p.rois!.index).slice(0, 3)), [1, 2, 0]);
  });

  it('puts an RGB map\'s threshold on thresholdBy and marks a BrainDiVE region', () => {
    const rgb = Float32Array.from({ length: 3 * N }, (_, i) => (i % 3) / 2);
    const r2 = Float32Array.from({ length: N }, (_, i) => i / N);
    const p = brain3dFigure(surfaces, [{ name: 'rgb', values: { shape: [N, 3], data: rgb } }, { name: 'FFA', region: ['FFA-1', 'FFA-2'] }], { rois, thresholdBy: { name: 'R²', values: r2, value: 0.25 } });
    assert.equal(p.overlays[0]!.threshold?.name, 'R²');
    assert.equal(p.overlays[0]!.threshold?.value, 0.25);
    const fc = blob(p, p.overlays[1]!.colors);
    for (let i = 0; i < N; i++) assert.equal(fc[4 * i + 3], rois[i] === 'FFA-1' ? 255 : 0, `vertex ${i} (${rois[i]})`);
    assert.equal(p.overlays[1]!.key?.kind, 'legend');
    // the R² array is stored once, though both overlays read it out and threshold on it
    const r2Blobs = new Set(p.overlays.flatMap((o) => [o.threshold?.values, ...o.readout.filter((r) => r.name === 'R²').map((r) => r.values)]).filter((x) => x !== undefined));
    assert.equal(r2Blobs.size, 1);
    assert.throws(() => brain3dFigure(surfaces, [{ name: 'X', region: ['PPA'] }], { rois }), /none of PPA is an ROI of these vertices \(ROIs: V1v, FFA-1\)/);
  });

  it('fills the other hemisphere with no value for a one-hemisphere overlay, and names the three lengths otherwise', () => {
    const lhOnly = brain3dFigure({ surfaces: surfaces.surfaces, vertices: { lh: cap, rh: cap.slice(0, -1) } }, [{ name: 'lh', values: new Float32Array(nLh).fill(1) }]);
    const c = blob(lhOnly, lhOnly.overlays[0]!.colors);
    assert.equal(c[4 * 0 + 3], 255);
    assert.equal(c[4 * nLh + 3], 0, 'rh: no value');
    assert.throws(() => brain3dFigure(surfaces, [{ name: 'bad', values: new Float32Array(N + 5) }]),
      new RegExp(`overlay 'bad': ${N + 5} values match neither hemisphere's vertex count \\(lh ${nLh}, rh ${nRh}\\) nor their sum \\(${N}\\)`));
    const wrongLayout = flatmap(new Float32Array(10), { nLh: 4, nRh: 6 } as FlatLayout, { title: 'other subject' });
    assert.throws(() => brain3dFigure(surfaces, [wrongLayout]), /'other subject' is a flatmap of lh 4 \+ rh 6 = 10 vertices, the surfaces carry lh \d+ \+ rh \d+/);
  });

  it('moves overlapping hemispheres apart (lh left) and keeps every surface of a hemisphere on one mesh', () => {
    const p = brain3dFigure(surfaces, [{ name: 'v', values }]);
    const xs = p.hemis.map((h) => {
      const q = h.positions.sphere!, a = blob(p, q.data);
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < a.length; i += 3) { const x = q.origin[0] + q.step[0] * (a[i]! + 32767); lo = Math.min(lo, x); hi = Math.max(hi, x); }
      return [lo, hi];
    });
    assert.ok(xs[0]![1]! < xs[1]![0]!, `lh x ${xs[0]} left of rh x ${xs[1]}`);
    assert.ok(Math.abs(xs[0]![1]! - xs[0]![0]! - 200) < 0.1, 'quantised positions keep the sphere\'s size');
    const other = ico(4, 100);
    assert.throws(() => brain3dFigure({ surfaces: { sphere: { lh: sphere, rh: sphere }, inflated: { lh: other, rh: sphere } }, vertices: { lh: cap, rh: cap }, files: { sphere: { lh: 'lh.sphere', rh: 'rh.sphere' }, inflated: { lh: 'lh.inflated.gii', rh: 'rh.inflated.gii' } } }, [{ name: 'v', values }]),
      /lh\.inflated\.gii has 2562 vertices and 5120 faces, lh\.sphere has 10242 and 20480; all surfaces of a hemisphere must share one mesh/);
  });

  it('uses a mesh that is not icosahedral as it is', () => {
    const odd: Surface = { vertices: Float32Array.from([...ico(2).vertices, 0, 0, 0]), faces: ico(2).faces };
    const p = brain3dFigure({ surfaces: { white: { lh: odd, rh: odd } } }, [{ name: 'v', values: new Float32Array(2 * 163) }]);
    assert.deepEqual(p.hemis.map((h) => h.nVertices), [163, 163]);
    assert.throws(() => brain3dFigure({ surfaces: { white: { lh: odd, rh: odd } }, vertices: { lh: [0, 500], rh: [0] } }, [{ name: 'v', values: new Float32Array(3) }]),
      /lh white: data vertex 1 sits at surface vertex 500, but the surface has 163 vertices/);
  });

  it('reads a subject\'s FreeSurfer sphere and GIFTI inflated surface, and paperBrain3d takes the maps of paper figures', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-brain3d-'));
    try {
      fs.mkdirSync(path.join(dir, 'surfaces'));
      const inflated: Surface = { vertices: fine.vertices.map((v, i) => (i % 3 === 0 ? 1.6 * v : v)), faces: fine.faces };
      for (const h of ['lh', 'rh']) {
        await writeFreesurferSurface(path.join(dir, 'surfaces', `${h}.sphere`), sphere);
        await writeGiftiSurface(path.join(dir, 'surfaces', `${h}.inflated.gii`), inflated);
      }
      const s = await subjectSurfaces({ dir, fsIndex: { lh: cap, rh: cap }, challengeIndex: { lh: cap, rh: cap } });
      assert.deepEqual(Object.keys(s.surfaces), ['sphere', 'inflated']);
      assert.equal(s.vertices?.lh, cap);
      const map = flatmap(values, layout, { title: 'v' });
      const p = paperBrain3d({ name: 'v', title: 'v', png: new Uint8Array(0), map }, s, { surface: 'inflated', view: 'ventral' });
      assert.deepEqual(p.surfaces, ['sphere', 'inflated']);
      assert.deepEqual(p.initial, { overlay: 0, surface: 'inflated', view: 'ventral' });
      const w = (n: string) => { const q = p.hemis[0]!.positions[n]!; return q.step[0] * 65534; };
      assert.ok(Math.abs(w('inflated') / w('sphere') - 1.6) < 0.01, 'the inflated surface is wider along x');
      assert.throws(() => paperBrain3d({ name: 'grid', title: 'grid', png: new Uint8Array(0) }, s), /figure 'grid' has no flatmap/);
      await assert.rejects(subjectSurfaces({ dir: path.join(dir, 'nothing'), fsIndex: { lh: cap, rh: cap }, challengeIndex: { lh: cap, rh: cap } }), /found none of \{lh,rh\}\.sphere\[\.gii\]/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
