import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openNsdSubject } from 'brainnet';
import { Rng } from 'brainnet/core';
import { FileFormatError, writeNifti, writeMat, readNpy, readNifti } from 'brainnet/io';
import {
  readNsdExpDesign, readNsdBetas, readNsdStimInfo, parseNsdStimInfo, parseCropBox, readNsdVolume, nsdRoiVoxels, nsdMaskedBetas,
  zscoreSession, readCtab, nsdPaths, nsdBetaName, NSD, type NsdSubject,
} from 'brainnet/data';
import {
  makeNsdSubject, type MakeNsdSubjectResult, makeNsdDesign, nearestOnSphere, nsdVolumeGeometry, formatCropBox,
} from 'brainnet/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-nsd-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('synthetic NSD: pure parts', () => {
  it('nearestOnSphere matches brute force and respects maxAngle', () => {
    const r = new Rng(4);
    const unit = (n: number) => { const a = new Float32Array(n * 3); for (let i = 0; i < n; i++) { const x = r.normal(), y = r.normal(), z = r.normal(), m = Math.hypot(x, y, z); a.set([x / m, y / m, z / m], i * 3); } return a; };
    const pts = unit(400), q = unit(300);
    const got = nearestOnSphere(pts, q, 0.3);
    for (let k = 0; k < 300; k++) {
      let best = -1, bd = Math.cos(0.3);
      for (let j = 0; j < 400; j++) { const d = q[k * 3]! * pts[j * 3]! + q[k * 3 + 1]! * pts[j * 3 + 1]! + q[k * 3 + 2]! * pts[j * 3 + 2]!; if (d > bd) { bd = d; best = j; } }
      assert.equal(got[k], best);
    }
  });
  it('the design is deterministic and the volume geometry is mirrored', () => {
    const a = makeNsdDesign(3, 9), b = makeNsdDesign(3, 9);
    assert.deepEqual(Array.from(a.masterordering.subarray(0, 100)), Array.from(b.masterordering.subarray(0, 100)));
    assert.equal(a.repeats.reduce((s, v) => s + v, 0), 2250);
    for (const S of [30, 40]) {
      const d = makeNsdDesign(S, 1);
      assert.equal(d.repeats.reduce((s, v) => s + v, 0), S * 750);
      assert.ok(d.used.length <= 10000);
      if (S === 40) assert.ok(d.repeats.every((r) => r === 3) && d.used.length === 10000);
    }
    const g = nsdVolumeGeometry([20, 24, 20]);
    let lh = 0, rh = 0;
    g.hemi.forEach((h, i) => { if (h === 1) lh++; if (h === 2) rh++; if (g.cortex[i]) assert.ok(g.brain[i]); });
    assert.equal(lh, rh);
    assert.equal(formatCropBox([0, 0, 0.125, 0.125]), '(0, 0, 0.125, 0.125)');
  });
});

describe('synthetic NSD subject (tiny) read back through the NSD readers', function () {
  this.timeout(60000);
  const out = path.join(tmp, 'nsd');
  let res: MakeNsdSubjectResult;
  let subj: NsdSubject;
  before(async () => {
    res = await makeNsdSubject({ size: 'tiny', seed: 3, out, imageSize: 32, world: 'v2' }); // the layout: the fast world
    subj = await openNsdSubject(out);
  });

  it('writes the NSD release names', () => {
    const P = nsdPaths(1);
    for (const f of [P.expdesign, P.stiminfo, P.brick, P.ncsnr, path.join(P.betas, 'betas_session01.nii.gz'), path.join(P.betas, 'betas_session02.nii.gz'),
      ...['HCP_MMP1', 'nsdgeneral', 'prf-visualrois', 'floc-faces', 'floc-bodies', 'floc-places', 'floc-words'].map((n) => path.join(P.roi, `${n}.nii.gz`)),
      path.join(P.label, 'HCP_MMP1.mgz.ctab'), 'ground_truth/truth.json', 'ground_truth/README.md', 'README.md']) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    assert.equal(nsdBetaName(7), 'betas_session07.nii.gz');
    assert.deepEqual(subj.sessions, [1, 2]);
    assert.deepEqual(subj.dims, [20, 24, 20]);
  });

  it('betas are int16 [20, 24, 20, 750], percent signal change x 300, and z-scoring within session removes the session drift', async () => {
    const gen = await subj.roi('nsdgeneral');
    assert.equal(gen.data.dtype, 'int16');
    const vis = nsdRoiVoxels(gen, [1]);
    assert.equal(vis.length, res.voxels.nsdgeneral);
    const means: number[] = [];
    const z: Float32Array[] = [];
    for (const s of subj.sessions) {
      const b = await subj.betas(s);
      assert.equal(b.data.dtype, 'int16');
      assert.deepEqual(b.dims, [20, 24, 20, 750]);
      assert.equal(b.sclSlope, 1);
      const psc = nsdMaskedBetas(b, vis);
      let m = 0, mx = 0;
      for (const v of psc) { m += v; mx = Math.max(mx, Math.abs(v)); }
      means.push(m / psc.length);
      assert.ok(mx > 0.5 && mx < 30, `percent signal change range ${mx}`);
      // percent signal change = stored int16 / 300
      const raw = b.data.data as Int16Array;
      assert.equal(psc[3 * vis.length + 7], Math.fround(raw[3 * 20 * 24 * 20 + vis[7]!]! / NSD.betaScale));
      z.push(zscoreSession(psc, 750));
    }
    // ground truth: per-session gain/offset differ, so raw session means differ
    const gain = await readNpy(path.join(out, 'ground_truth/session_gain.npy'));
    assert.deepEqual(gain.shape, [2, res.voxels.cortex]);
    assert.ok(Math.abs(means[0]! - means[1]!) > 0.05, `session means ${means}`);
    // repeats of an image agree better than different images in high-ncsnr voxels, after z-scoring
    const ncsnr = await subj.ncsnr();
    assert.equal(ncsnr.data.dtype, 'float32');
    const nc = ncsnr.data.data as Float32Array;
    const good = Array.from(vis.keys()).filter((k) => nc[vis[k]!]! > 0.6);
    assert.ok(good.length > 10);
    const ids = [...subj.sessionImages(1), ...subj.sessionImages(2)];
    const first = new Map<number, number>();
    let same = 0, nSame = 0, diff = 0, nDiff = 0;
    ids.forEach((id, t) => {
      const zt = z[t < 750 ? 0 : 1]!, tt = t % 750;
      const prev = first.get(id);
      if (prev === undefined) { first.set(id, t); if (t > 0) { const zp = z[(t - 1) < 750 ? 0 : 1]!; for (const k of good) { diff += zt[tt * vis.length + k]! * zp[((t - 1) % 750) * vis.length + k]!; nDiff++; } } return; }
      const zp = z[prev < 750 ? 0 : 1]!;
      for (const k of good) { same += zt[tt * vis.length + k]! * zp[(prev % 750) * vis.length + k]!; nSame++; }
    });
    assert.ok(same / nSame > diff / nDiff + 0.2, `repeat covariance ${same / nSame} vs ${diff / nDiff}`);
  });

  it('the design is consistent with the sessions: every shown image 1-3 times, shares near 0.7/0.2/0.1', async () => {
    const d = await readNsdExpDesign(subj.paths.expdesign);
    assert.equal(d.masterordering.length, 30000);
    assert.deepEqual([d.subjects, d.imagesPerSubject, d.sharedix.length], [8, 10000, 1000]);
    for (let c = 0; c < 1000; c++) assert.equal(d.subjectim[c], d.sharedix[c]);
    const all = new Map<number, number>();
    for (const c of d.masterordering) all.set(c, (all.get(c) ?? 0) + 1);
    assert.equal(all.size, 10000);
    assert.ok([...all.values()].every((n) => n === 3));
    const counts = new Map<number, number>();
    for (const s of subj.sessions) for (const id of subj.sessionImages(s)) counts.set(id, (counts.get(id) ?? 0) + 1);
    const hist = [0, 0, 0, 0];
    for (const n of counts.values()) hist[n]!++;
    assert.equal(hist[1]! + 2 * hist[2]! + 3 * hist[3]!, 1500);
    assert.equal(counts.size, res.images);
    assert.deepEqual({ three: hist[3], two: hist[2], one: hist[1] }, res.repeatCounts);
    const n = counts.size;
    assert.ok(Math.abs(hist[3]! / n - 0.7) < 0.07 && Math.abs(hist[2]! / n - 0.2) < 0.06 && Math.abs(hist[1]! / n - 0.1) < 0.06, `shares ${hist}`);
    for (const id of counts.keys()) assert.ok(id >= 1 && id <= 73000);
    // the brick holds exactly the shown images, 32 x 32 x 3 in this test (425 by default)
    const ids = [...counts.keys()].slice(0, 3);
    const img = await subj.images(ids);
    assert.deepEqual(img.shape, [3, 32, 32, 3]);
    assert.equal(img.dtype, 'uint8');
  });

  it('the stimulus CSV parses and agrees with the design', async () => {
    const rows = await readNsdStimInfo(subj.paths.stiminfo);
    assert.equal(rows.length, 73000);
    assert.deepEqual(rows.slice(0, 3).map((r) => r.nsdId), [0, 1, 2]);
    const shared = rows.filter((r) => r.shared1000);
    assert.equal(shared.length, 1000);
    assert.ok(shared.every((r) => r.subjects.every(Boolean)));
    assert.equal(rows.filter((r) => r.subjects[0]).length, 10000);
    for (const r of rows.slice(0, 50)) assert.ok(r.cropBox.every((v) => v >= 0 && v < 1) && (r.cocoSplit === 'train2017' || r.cocoSplit === 'val2017'));
    // subject1_rep0 is the 1-based trial of the first showing: masterordering maps it back to the image
    const d = subj.design;
    for (const r of rows.filter((x) => x.subjects[0]).slice(0, 40)) {
      const t = r.reps[0]![0]!;
      assert.equal(d.subjectim[d.masterordering[t - 1]! - 1], r.nsdId + 1);
    }
  });

  it('ROI volumes use the Algonauts label tables with -1 outside the brain', async () => {
    const gen = await subj.roi('nsdgeneral');
    const g = gen.data.data as Int16Array;
    for (const name of ['prf-visualrois', 'floc-faces', 'floc-bodies', 'floc-places', 'floc-words']) {
      const v = await subj.roi(name);
      const d = v.data.data as Int16Array;
      let labelled = 0;
      for (let i = 0; i < d.length; i++) {
        if (g[i] === -1) assert.equal(d[i], -1);
        if (d[i]! > 0) { labelled++; assert.equal(g[i], 1, `${name} label outside nsdgeneral`); }
      }
      assert.ok(labelled > 0, name);
    }
    const hcp = await subj.roi('HCP_MMP1');
    const h = hcp.data.data as Int16Array;
    assert.ok(Math.max(...h) <= 180 && Math.min(...h) >= 0);
    // ranking HCP regions by mean ncsnr puts V1 (label 1) above the typical region
    const nc = (await subj.ncsnr()).data.data as Float32Array;
    const sum = new Float64Array(181), cnt = new Float64Array(181);
    h.forEach((l, i) => { if (l > 0) { sum[l] += nc[i]!; cnt[l]++; } });
    const means = Array.from(sum, (v, l) => (cnt[l] ? v / cnt[l]! : NaN)).filter((v, l) => l > 0 && !Number.isNaN(v));
    const v1 = sum[1]! / cnt[1]!;
    assert.ok(means.filter((m) => m > v1).length < means.length / 10, `V1 mean ncsnr ${v1} ranks low`);
    const ctab = await readCtab(path.join(out, nsdPaths(1).label, 'HCP_MMP1.mgz.ctab'));
    assert.equal(ctab.get(1), 'V1');
    assert.equal(ctab.size, 181);
    const faces = await readCtab(path.join(out, nsdPaths(1).label, 'floc-faces.mgz.ctab'));
    assert.equal(faces.get(2), 'FFA-1');
  });

  it('bad inputs give clear errors', async () => {
    const P = nsdPaths(1);
    const betas = path.join(out, P.betas);
    await assert.rejects(readNsdBetas(betas, 5), (e: Error) => e instanceof FileFormatError && /betas_session05\.nii\.gz/.test(e.message) && /Sessions present: 1, 2/.test(e.message));
    const bad = path.join(tmp, 'bad');
    fs.mkdirSync(bad);
    await writeNifti(path.join(bad, 'betas_session01.nii.gz'), { dtype: 'int16', shape: [10, 2, 2, 2], data: new Int16Array(80) });
    await assert.rejects(readNsdBetas(bad, 1), /750 trials .* but found 10/);
    await writeNifti(path.join(bad, 'mask.nii.gz'), { dtype: 'int16', shape: [2, 2, 2], data: new Int16Array(8) });
    await assert.rejects(readNsdVolume(path.join(bad, 'mask.nii.gz'), subj.dims), /betas' grid \[20, 24, 20\].*found \[2, 2, 2\]/);
    await writeMat(path.join(bad, 'design.mat'), { subjectim: { dtype: 'float64', shape: [1, 2], data: new Float64Array([1, 2]) } });
    await assert.rejects(readNsdExpDesign(path.join(bad, 'design.mat')), /variable 'masterordering'/);
    assert.throws(() => parseCropBox('(0, 0, 0.2)', 'x.csv', 4), /cropBox .* in row 4.*"\(0, 0, 0.2\)"/);
    assert.deepEqual(parseCropBox('(0, 0, 0.1671875, 0.1671875)'), [0, 0, 0.1671875, 0.1671875]);
    assert.throws(() => parseNsdStimInfo(',nsdId,cocoId\n0,0,1\n', 'y.csv'), /column 'cocoSplit'/);
    void readNifti;
  });
});
