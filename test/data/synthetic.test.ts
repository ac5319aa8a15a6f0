import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAlgonautsSubject } from 'brainnet';
import { Rng } from 'brainnet/core';
import { FileFormatError, readNpy, writeNpy } from 'brainnet/io';
import {
  ico, icoVertexCount, makeCortex, makeAlgonautsSubject, noiseCeiling, groundTruth, syntheticWorldVersion, loadSyntheticWorld,
  meshSmoother, smoothOnMesh, socModel, NcsnrAccumulator, pixelsToImages, requireWorldV3, WorldVersionError, SYNTHETIC_WORLD_VERSION,
} from 'brainnet/synthetic';
import { tf } from 'brainnet';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-data-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('synthetic world: pure parts', () => {
  it('ico(k) has 10*4^k+2 vertices and each order is a prefix of the next', () => {
    const a = ico(3), b = ico(4);
    assert.equal(a.vertices.length / 3, icoVertexCount(3));
    assert.equal(b.vertices.length / 3, 2562);
    assert.equal(b.faces.length / 3, 20 * 4 ** 4);
    assert.deepEqual(Array.from(b.vertices.subarray(0, a.vertices.length)), Array.from(a.vertices));
    for (let i = 0; i < 2562; i++) assert.ok(Math.abs(Math.hypot(b.vertices[i * 3]!, b.vertices[i * 3 + 1]!, b.vertices[i * 3 + 2]!) - 100) < 1e-3);
  });
  it('the PRNG is deterministic and its normals have mean 0, sd 1', () => {
    const x = new Rng(5), y = new Rng(5);
    for (let i = 0; i < 10; i++) assert.equal(x.next(), y.next());
    const r = new Rng(1);
    let s = 0, ss = 0;
    for (let i = 0; i < 20000; i++) { const v = r.normal(); s += v; ss += v * v; }
    assert.ok(Math.abs(s / 20000) < 0.03 && Math.abs(ss / 20000 - 1) < 0.05);
  });
  it('retinotopy is mirrored: lh pRFs lie in the right visual field, rh in the left', () => {
    const c = makeCortex({ order: 4, seed: 2 });
    for (const [h, sign] of [['lh', 1], ['rh', -1]] as const) {
      const t = c[h];
      let n = 0;
      t.roi.forEach((r, k) => { if (/^V[123]/.test(r)) { n++; assert.ok(sign * t.prfX[k]! > -0.05, `${h} ${r} x=${t.prfX[k]}`); } });
      assert.ok(n > 10);
      assert.ok(t.roi.includes('FFA-1') && t.roi.includes('PPA') && t.roi.includes('VWFA-1') && t.roi.includes('EBA') && t.roi.includes('food'));
    }
  });
  it('noise ceiling follows the Algonauts formula', () => {
    const reps = Uint8Array.from([3, 3, 2, 1]);
    const k = (2 / 3 + 1 / 2 + 1) / 4;
    assert.ok(Math.abs(noiseCeiling(0.8, reps) - 0.64 / (0.64 + k)) < 1e-12);
  });
});

describe('synthetic world v3: pure parts', () => {
  it('NSD\'s ncsnr from repeats: within-image variance is the noise, the rest of the variance the signal', () => {
    // one vertex, three images shown twice: within-image variances 0.5, 0.5, 2 -> noise 1; all 6 trials' variance 10/3 + ...
    const acc = new NcsnrAccumulator(1);
    const imgs = [[1, 2], [4, 5], [-3, -1]];
    for (const t of imgs) acc.add(t.map((v) => Float64Array.of(v)));
    const all = imgs.flat(), m = all.reduce((a, b) => a + b) / 6, total = all.reduce((a, b) => a + (b - m) ** 2, 0) / 6;
    const noise = (0.5 + 0.5 + 2) / 3;
    assert.ok(Math.abs(acc.ncsnr()[0]! - Math.sqrt((total - noise) / noise)) < 1e-6, `${acc.ncsnr()[0]}`);
  });
  it('trial noise smoothed on the mesh keeps unit variance and correlates neighbours', () => {
    const c = makeCortex({ order: 5, seed: 1 });
    const sm = meshSmoother(c.lh, 5);
    const N = c.lh.roi.length, r = new Rng(3);
    const white = new Float64Array(N), out = new Float64Array(N);
    let ss = 0, nb = 0, cnt = 0;
    for (let rep = 0; rep < 20; rep++) {
      for (let k = 0; k < N; k++) white[k] = r.normal();
      smoothOnMesh(sm, white, out);
      for (let k = 0; k < N; k++) ss += out[k]! ** 2;
      // the nearest other vertex: the largest kernel weight but the vertex's own
      for (let k = 0; k < N; k += 7) {
        let j = -1, best = -1;
        for (let q = sm.ptr[k]!; q < sm.ptr[k + 1]!; q++) if (sm.idx[q] !== k && sm.w[q]! > best) { best = sm.w[q]!; j = sm.idx[q]!; }
        if (j >= 0) { nb += out[k]! * out[j]!; cnt++; }
      }
    }
    assert.ok(Math.abs(ss / (20 * N) - 1) < 0.05, `variance ${ss / (20 * N)}`);
    assert.ok(nb / cnt > 0.2, `neighbour correlation ${nb / cnt}`);
  });
  it('the SOC model responds where the contrast is: a pRF on a textured disc, not one far from it', () => {
    const S = 64, img = new Float32Array(3 * S * S).fill(0.5);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
      const u = ((x + 0.5) * 2) / S - 1, v = 1 - ((y + 0.5) * 2) / S;
      if (Math.hypot(u - 0.5, v - 0.5) < 0.25) for (let ch = 0; ch < 3; ch++) img[ch * S * S + y * S + x] = ((x >> 1) + (y >> 1)) % 2;
    }
    const p = (x: number, y: number) => ({ x, y, sigma: 0.12, surround: 0.2, c: 0.9, n: 0.5, x2: 0, y2: 0, sigma2: 0.1, mix: 0 });
    const m = socModel([p(0.72, 0.5), p(-0.5, 0.5), p(0.5, -0.5)]);
    const r = m.respond(tf.tensor4d(img, [1, 3, S, S])).dataSync();
    m.dispose();
    assert.ok(r[0]! > 0.1 && r[1]! < 0.01 * r[0]! && r[2]! < 0.01 * r[0]!, `responses ${Array.from(r)}`);
  });
  it('a subject from an older world is refused by v3-only functions, naming its version and the command to regenerate it', async () => {
    const old = path.join(tmp, 'v2-world', 'ground_truth');
    fs.mkdirSync(old, { recursive: true });
    fs.writeFileSync(path.join(old, 'vertices.json'), '{"version":2,"seed":4,"size":"workshop","lh":{}}');
    assert.throws(() => requireWorldV3(path.dirname(old), 'the check'), (e: Error) => e instanceof WorldVersionError && /world version 2/.test(e.message) && /make-subject -- --layout algonauts --size workshop --seed 4/.test(e.message));
    await assert.rejects(loadSyntheticWorld(path.dirname(old)), /version 2.*version 3/);
  });
});

describe('synthetic Algonauts subject (tiny, world v3) through the real-data loader', function () {
  this.timeout(900000); // world v3 runs InceptionV3 over the calibration scenes and every image: about 30 s on 2 quiet cores
  const dir = path.join(tmp, 'tiny');
  let res: Awaited<ReturnType<typeof makeAlgonautsSubject>>;
  before(async () => { res = await makeAlgonautsSubject({ size: 'tiny', seed: 7, out: dir }); });

  it('writes the real Algonauts file names and shapes', async () => {
    const imgs = fs.readdirSync(path.join(dir, 'training_split/training_images')).sort();
    assert.equal(imgs.length, 200);
    assert.match(imgs[0]!, /^train-0001_nsd-\d{5}\.png$/);
    assert.equal(fs.readdirSync(path.join(dir, 'test_split/test_images')).length, 20);
    const lh = await readNpy(path.join(dir, 'training_split/training_fmri/lh_training_fmri.npy'));
    assert.equal(lh.dtype, 'float32');
    assert.deepEqual(lh.shape, [200, 297]);
    for (const h of ['lh', 'rh']) for (const f of ['prf-visualrois', 'floc-bodies', 'floc-faces', 'floc-places', 'floc-words', 'streams']) {
      const fsa = await readNpy(path.join(dir, 'roi_masks', `${h}.${f}_fsaverage_space.npy`));
      assert.deepEqual(fsa.shape, [163842]);
      assert.ok(fs.existsSync(path.join(dir, 'roi_masks', `${h}.${f}_challenge_space.npy`)));
    }
    for (const f of ['lh.sphere', 'rh.sphere', 'lh.sphere.gii', 'lh.flat.visual.gii']) assert.ok(fs.existsSync(path.join(dir, 'surfaces', f)), f);
  });

  it('records the synthetic world version, so that tools regenerate subjects made by an older world', () => {
    assert.equal(syntheticWorldVersion(dir), SYNTHETIC_WORLD_VERSION);
    assert.equal(syntheticWorldVersion(path.join(tmp, 'no-such-subject')), null);
    const old = path.join(tmp, 'old-world', 'ground_truth');
    fs.mkdirSync(old, { recursive: true });
    fs.writeFileSync(path.join(old, 'vertices.json'), '{"vertices": []}');
    assert.equal(syntheticWorldVersion(path.dirname(old)), 1);
  });

  it('loads through loadAlgonautsSubject: images, fMRI, ROIs, coordinates, split', async () => {
    const s = await loadAlgonautsSubject(dir);
    assert.deepEqual(s.vertexCount, { lh: 297, rh: 321 });
    const img = await s.trainImage(3);
    assert.equal(img.width, 256);
    assert.equal(img.data.length, 256 * 256 * 3);
    const rows = await s.fmriRows('rh', 10, 12);
    assert.equal(rows.length, 2 * 321);
    const ffa = await s.roiMask('FFA-1');
    assert.ok(ffa.lh.reduce((a, b) => a + b, 0) > 0 && ffa.rh.reduce((a, b) => a + b, 0) > 0);
    await assert.rejects(s.roiMask('FFA-9'), /Available: .*FFA-1/);
    const xyz = await s.coordinates();
    assert.equal(xyz.length, (297 + 321) * 3);
    for (let k = 0; k < 297; k++) assert.ok(xyz[k * 3]! < -5);
    for (let k = 297; k < 618; k++) assert.ok(xyz[k * 3]! > 5);
    const sp = s.split({ seed: 1 });
    assert.equal(sp.train.length + sp.val.length, 200);
    assert.equal(sp.val.length, Math.round((200 * 841) / 9841));
    assert.deepEqual(s.split({ seed: 1 }).val, sp.val);
    const streamed = await loadAlgonautsSubject(dir, { fmri: 'stream' });
    assert.deepEqual(await streamed.fmriRows('rh', 10, 12), rows);
  });

  it('groundTruth reads it: every challenge vertex of a folder, the loaded vertices of a subject, nothing for real data', async () => {
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'ground_truth/vertices.json'), 'utf8'));
    const all = groundTruth(dir)!;
    assert.equal(all.nLh, 297);
    assert.deepEqual(all.roi, [...raw.lh.roi, ...raw.rh.roi]);
    assert.deepEqual(Array.from(all.noiseCeiling), Array.from(Float32Array.from([...raw.lh.noiseCeiling, ...raw.rh.noiseCeiling])));
    assert.ok(all.prfX.some((v) => Number.isNaN(v)), 'no pRF: NaN');
    const s = await loadAlgonautsSubject(dir);
    assert.deepEqual(groundTruth(s)!.fsIndex, Int32Array.from([...s.fsIndex.lh, ...s.fsIndex.rh]));
    assert.equal(groundTruth(path.join(tmp, 'no-such-subject')), undefined);
    const bad = path.join(tmp, 'bad-truth', 'ground_truth');
    fs.mkdirSync(bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'vertices.json'), JSON.stringify({ lh: { ...raw.lh, noiseCeiling: undefined }, rh: raw.rh }));
    assert.throws(() => groundTruth(path.dirname(bad)), (e: Error) => e instanceof FileFormatError && /no lh\.noiseCeiling/.test(e.message));
  });

  it('writes a documented ground truth that matches the loader', async () => {
    assert.ok(fs.readFileSync(path.join(dir, 'ground_truth/README.md'), 'utf8').includes('prfSigma'));
    const gt = JSON.parse(fs.readFileSync(path.join(dir, 'ground_truth/vertices.json'), 'utf8'));
    const s = await loadAlgonautsSubject(dir);
    assert.deepEqual(gt.lh.fsIndex, Array.from(s.fsIndex.lh));
    for (const key of ['roi', 'prfX', 'prfY', 'prfSigma', 'depth', 'scale', 'ncsnr', 'noiseCeiling', 'tuning']) assert.equal(gt.rh[key].length, 321, key);
    const ffa = await s.roiMask('FFA-1');
    ffa.lh.forEach((v, k) => assert.equal(v === 1, gt.lh.roi[k] === 'FFA-1'));
  });

  it('world v3: its trueResponse, read back from ground_truth/world.safetensors, is what the written fMRI measured', async function () {
    this.timeout(600000);
    assert.equal(groundTruth(dir)!.version, 3);
    const world = await loadSyntheticWorld(dir);
    try {
      const s = await loadAlgonautsSubject(dir);
      const n = 48, side = 256;
      const px = new Uint8Array(n * side * side * 3);
      for (let i = 0; i < n; i++) px.set((await s.trainImage(i)).data, i * side * side * 3);
      const x = pixelsToImages(px, 0, n, side);
      const a = await world.trueResponse(x), b = await world.trueResponse(x);
      x.dispose();
      assert.deepEqual(a, b, 'deterministic');
      const N = 297 + 321;
      assert.equal(a.length, n * N);
      const y = new Float32Array(n * N);
      const lh = await s.fmri('lh'), rh = await s.fmri('rh');
      for (let i = 0; i < n; i++) { y.set(lh.subarray(i * 297, (i + 1) * 297), i * N); y.set(rh.subarray(i * 321, (i + 1) * 321), i * N + 297); }
      // per vertex, the correlation over images of the truth and the noisy measurement, averaged: about sqrt(reliability)
      let sum = 0;
      for (let v = 0; v < N; v++) {
        const t = Array.from({ length: n }, (_, i) => a[i * N + v]!), m = Array.from({ length: n }, (_, i) => y[i * N + v]!);
        const mt = t.reduce((p, q) => p + q) / n, mm = m.reduce((p, q) => p + q) / n;
        let c = 0, vt = 0, vm = 0;
        for (let i = 0; i < n; i++) { c += (t[i]! - mt) * (m[i]! - mm); vt += (t[i]! - mt) ** 2; vm += (m[i]! - mm) ** 2; }
        sum += c / Math.sqrt(vt * vm);
      }
      assert.ok(sum / N > 0.3, `mean r(truth, measured) = ${sum / N}`);
      // the noise ceiling in the ground truth is estimated from the repeats, close to the generating one's
      const gt = JSON.parse(fs.readFileSync(path.join(dir, 'ground_truth/vertices.json'), 'utf8'));
      const est = gt.lh.ncsnr as number[], gen = gt.lh.ncsnrTrue as number[];
      const mean = (v: number[]) => v.reduce((p, q) => p + q, 0) / v.length;
      assert.ok(est.some((v, k) => v !== gen[k]), 'estimated, not copied');
      assert.ok(Math.abs(mean(est) - mean(gen)) < 0.25 * mean(gen), `mean ncsnr estimated ${mean(est)} vs generating ${mean(gen)}`);
    } finally {
      await world.dispose();
    }
  });

  it('passes its validation report at tiny size', () => {
    const rep = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    assert.equal(rep.pass, true, res.table);
    assert.ok(rep.checks.length > 20);
  });

  it('same seed, same bytes', async () => {
    const a = path.join(tmp, 'det-a'), b = path.join(tmp, 'det-b');
    await makeAlgonautsSubject({ size: 'tiny', seed: 3, out: a, train: 24, test: 3, world: 'v2' });
    await makeAlgonautsSubject({ size: 'tiny', seed: 3, out: b, train: 24, test: 3, world: 'v2' });
    const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)).map((f) => path.join(e.name, f)) : [e.name])).sort();
    const files = walk(a);
    assert.deepEqual(walk(b), files);
    for (const f of files) assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f);
  });
});

describe('loadAlgonautsSubject: bad input', () => {
  const base = path.join(tmp, 'small');
  const copy = (name: string) => { const d = path.join(tmp, name); fs.cpSync(base, d, { recursive: true }); return d; };
  before(async () => { await makeAlgonautsSubject({ size: 'tiny', seed: 4, out: base, train: 20, test: 2, world: 'v2' }); });

  it('missing training_fmri file', async () => {
    const d = copy('no-fmri');
    fs.rmSync(path.join(d, 'training_split/training_fmri/lh_training_fmri.npy'));
    await assert.rejects(loadAlgonautsSubject(d), (e: unknown) => e instanceof FileFormatError && /lh_training_fmri\.npy/.test(e.message) && /no such file/.test(e.message));
  });
  it('image count != fMRI rows', async () => {
    const d = copy('few-images');
    const dirI = path.join(d, 'training_split/training_images');
    fs.rmSync(path.join(dirI, fs.readdirSync(dirI)[0]!));
    await assert.rejects(loadAlgonautsSubject(d), /19 rows.*found 20 rows/);
  });
  it('wrong dtype and wrong shape', async () => {
    const d = copy('dtype');
    const f = path.join(d, 'training_split/training_fmri/rh_training_fmri.npy');
    await writeNpy(f, { dtype: 'int32', shape: [20, 321], data: new Int32Array(20 * 321) });
    await assert.rejects(loadAlgonautsSubject(d), /float32.*dtype int32/);
    await writeNpy(f, { dtype: 'float32', shape: [20 * 321], data: new Float32Array(20 * 321) });
    await assert.rejects(loadAlgonautsSubject(d), /2-D/);
  });
  it('NaN/Inf: error with count and place, or the zero / drop-vertices policies', async () => {
    const d = copy('nan');
    const f = path.join(d, 'training_split/training_fmri/lh_training_fmri.npy');
    const a = await readNpy(f);
    const x = a.data as Float32Array;
    x[5 * 297 + 7] = NaN; x[9 * 297 + 7] = Infinity; x[2 * 297 + 40] = NaN;
    await writeNpy(f, a);
    await assert.rejects(loadAlgonautsSubject(d), /3 NaN\/Inf values: 3 scattered values in 2 vertices.*\(2, 40\)/);
    const z = await loadAlgonautsSubject(d, { nanPolicy: 'zero' });
    assert.equal((await z.fmri('lh'))[5 * 297 + 7], 0);
    assert.equal(z.nanReport.lh.count, 3);
    const dv = await loadAlgonautsSubject(d, { nanPolicy: 'drop-vertices' });
    assert.equal(dv.vertexCount.lh, 295);
    assert.ok(!Array.from(dv.challengeIndex.lh).includes(7));
    assert.ok((await dv.fmri('lh')).every(Number.isFinite));
  });
  describe('NaN/Inf: rows (images) and columns (vertices) are different failures', () => {
    // 20 images; lh has 297 vertices
    const damage = async (name: string, edit: (lh: Float32Array, rh: Float32Array, nl: number, nr: number) => void) => {
      const d = copy(name);
      const files = ['lh', 'rh'].map((h) => path.join(d, `training_split/training_fmri/${h}_training_fmri.npy`));
      const [lh, rh] = await Promise.all(files.map((p) => readNpy(p)));
      edit(lh!.data as Float32Array, rh!.data as Float32Array, lh!.shape[1]!, rh!.shape[1]!);
      await writeNpy(files[0]!, lh!);
      await writeNpy(files[1]!, rh!);
      return { d, lh: Float32Array.from(lh!.data as Float32Array), rh: Float32Array.from(rh!.data as Float32Array), nl: lh!.shape[1]!, nr: rh!.shape[1]! };
    };
    it("an all-NaN row is a missing image: 'error' says so, 'drop-vertices' refuses to drop every vertex", async () => {
      const { d } = await damage('nan-row', (lh, rh, nl) => lh.fill(NaN, 5 * nl, 6 * nl));
      await assert.rejects(loadAlgonautsSubject(d), (e: Error) => e instanceof FileFormatError && /lh_training_fmri\.npy/.test(e.message)
        && /1 of 20 rows entirely NaN\/Inf \(missing images\)/.test(e.message) && /'drop-images'/.test(e.message));
      await assert.rejects(loadAlgonautsSubject(d, { nanPolicy: 'drop-vertices' }), (e: Error) => e instanceof FileFormatError
        && /at most 29 of 297 vertices \(maxDropFraction 0\.1\)/.test(e.message) && /found 297 vertices/.test(e.message) && /A row entirely NaN\/Inf is a missing image.*'drop'/.test(e.message));
    });
    it("'drop' matches the damage: the image of an all-NaN row leaves both hemispheres, a dead column and a scattered value leave their vertices", async () => {
      const { d, lh, rh, nl, nr } = await damage('nan-drop', (l, r, nl, nr) => {
        l.fill(NaN, 5 * nl, 6 * nl);
        for (let i = 0; i < 20; i++) l[i * nl + 7] = NaN;
        r[2 * nr + 40] = Infinity;
      });
      const all = await loadAlgonautsSubject(copy('nan-drop-clean'));
      const s = await loadAlgonautsSubject(d, { nanPolicy: 'drop' });
      assert.deepEqual(s.nanReport.droppedImages, [5]);
      assert.deepEqual([s.nanReport.lh.emptyRows, s.nanReport.lh.emptyColumns, s.nanReport.lh.scattered, s.nanReport.lh.droppedVertices], [1, 1, 0, 1]);
      assert.deepEqual([s.nanReport.rh.emptyRows, s.nanReport.rh.emptyColumns, s.nanReport.rh.scattered, s.nanReport.rh.droppedVertices], [0, 0, 1, 1]);
      assert.match(s.nanReport.summary, /1 images left out \(row 5\), lh 1 of 297 vertices left out, rh 1 of \d+ vertices left out/);
      assert.deepEqual(s.trainImagePaths.map((p) => path.basename(p)), all.trainImagePaths.filter((_, i) => i !== 5).map((p) => path.basename(p)));
      assert.deepEqual([s.vertexCount.lh, s.vertexCount.rh], [nl - 1, nr - 1]);
      assert.ok(!Array.from(s.challengeIndex.lh).includes(7) && !Array.from(s.challengeIndex.rh).includes(40));
      const gotL = await s.fmri('lh'), gotR = await s.fmri('rh');
      assert.equal(gotL.length, 19 * (nl - 1));
      assert.ok(gotL.every(Number.isFinite) && gotR.every(Number.isFinite));
      // row 6 of the file is row 5 of the loaded subject; column 8 of the file is column 7
      assert.equal(gotL[5 * (nl - 1) + 7], lh[6 * nl + 8]);
      assert.equal(gotR[5 * (nr - 1) + 41 - 1], rh[6 * nr + 41]);
      assert.equal(s.split({ seed: 1 }).train.length + s.split({ seed: 1 }).val.length, 19);
    });
    it("'drop-images' leaves out the images with any NaN, within maxDropFraction unless the caller allows more", async () => {
      const { d } = await damage('nan-images', (l, r, nl) => { l[3 * nl + 1] = NaN; l[8 * nl + 100] = NaN; l[11 * nl + 2] = NaN; });
      await assert.rejects(loadAlgonautsSubject(d, { nanPolicy: 'drop-images' }), (e: Error) => e instanceof FileFormatError
        && /at most 2 of 20 images \(maxDropFraction 0\.1\)/.test(e.message) && /found 3 images with NaN\/Inf \(rows 3, 8, 11\)/.test(e.message) && /'drop-vertices'/.test(e.message));
      const s = await loadAlgonautsSubject(d, { nanPolicy: 'drop-images', maxDropFraction: 0.2 });
      assert.deepEqual(s.nanReport.droppedImages, [3, 8, 11]);
      assert.equal(s.trainImagePaths.length, 17);
      assert.equal(s.nanReport.lh.droppedVertices, 0);
      const v = await loadAlgonautsSubject(d, { nanPolicy: 'drop-vertices' });
      assert.equal(v.nanReport.lh.droppedVertices, 3);
      assert.equal(v.trainImagePaths.length, 20);
    });
    it("'zero' says how many values, images and vertices it touched", async () => {
      const { d } = await damage('nan-zero', (l, r, nl) => { l.fill(NaN, 5 * nl, 6 * nl); l[9 * nl + 3] = -Infinity; });
      const s = await loadAlgonautsSubject(d, { nanPolicy: 'zero' });
      const r = s.nanReport.lh;
      assert.deepEqual([r.count, r.zeroed, r.images, r.vertices, r.emptyRows, r.scattered], [298, 298, 2, 297, 1, 1]);
      assert.match(s.nanReport.summary, /lh: 298 NaN\/Inf values set to 0 in 2 images and 297 vertices \(1 whole images, 0 whole vertices\)/);
      assert.ok((await s.fmri('lh')).every(Number.isFinite));
    });
    it('stream mode refuses the drop policies at load; an unknown policy is refused', async () => {
      await assert.rejects(loadAlgonautsSubject(base, { fmri: 'stream', nanPolicy: 'drop' }), /nanPolicy 'drop' needs fmri: 'memory'/);
      await assert.rejects(loadAlgonautsSubject(base, { nanPolicy: 'skip' as never }), /nanPolicy must be one of error, zero, drop, drop-images, drop-vertices/);
      const clean = await loadAlgonautsSubject(base);
      assert.equal(clean.nanReport.summary, 'no NaN/Inf in the training fMRI');
    });
  });
  it('ROI mask whose length is not 163842', async () => {
    const d = copy('roi-len');
    await writeNpy(path.join(d, 'roi_masks/lh.floc-faces_fsaverage_space.npy'), { dtype: 'int32', shape: [2562], data: new Int32Array(2562) });
    const s = await loadAlgonautsSubject(d);
    await assert.rejects(s.roiMask('FFA-1'), /163842 entries.*found 2562/);
    await writeNpy(path.join(d, 'roi_masks/rh.all-vertices_fsaverage_space.npy'), { dtype: 'int32', shape: [10], data: new Int32Array(10) });
    await assert.rejects(loadAlgonautsSubject(d), /163842 entries/);
  });
  it('nsdgeneral mask selects vertices', async () => {
    const d = copy('nsdg');
    const m = new Uint8Array(163842);
    const all = (await readNpy(path.join(d, 'roi_masks/lh.all-vertices_fsaverage_space.npy'))).data as Int32Array;
    let kept = 0;
    all.forEach((v, i) => { if (v && i % 2 === 0) { m[i] = 1; kept++; } });
    await writeNpy(path.join(d, 'lh.nsdgeneral.npy'), { dtype: 'uint8', shape: [163842], data: m });
    await writeNpy(path.join(d, 'rh.nsdgeneral.npy'), { dtype: 'uint8', shape: [321], data: new Uint8Array(321).fill(1) });
    const s = await loadAlgonautsSubject(d, { nsdgeneral: { lh: path.join(d, 'lh.nsdgeneral.npy'), rh: path.join(d, 'rh.nsdgeneral.npy') } });
    assert.deepEqual(s.vertexCount, { lh: kept, rh: 321 });
    assert.equal((await s.fmri('lh')).length, 20 * kept);
  });
});
