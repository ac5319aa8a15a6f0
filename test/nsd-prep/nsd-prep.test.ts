import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { openNsdSubject } from 'brainnet';
import { FileFormatError, readNpy, writeNifti, writeMat, openHdf5, readNifti, writeHdf5 } from 'brainnet/io';
import {
  readNsdExpDesign, nsdPaths, nsdBetaName, zscoreMaskedSession, averageRepeats, zscoreNsd, nsdImageOrder, parseSessionList,
  regionMeans, rankDescending, rankHcpRegions, rankHcp, nsdNoiseCeiling, noiseFactor, repeatCountsOf, nsdRepeatCounts,
  cortexUnion, keepColumns, readNiftiMasked, nsdSurfaceBetaFiles, nsdRoiVoxels, reorderNsd, cropBoxPixels, cropAndResize,
  cropImagesToHdf5, parseNsdStimInfo,
} from 'brainnet/data';
import { makeNsdSubject } from 'brainnet/synthetic';

const FIX = path.join(__dirname, '..', 'fixtures', 'nsd-prep');
const REF_SCRIPT = path.join(__dirname, '..', '..', 'data-prep', 'fixtures', 'make_nsd_prep_reference.py');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-nsdprep-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const npy = async (f: string) => readNpy(path.join(FIX, f));
function close(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < a.length; i++) { const d = Math.abs(a[i]! - b[i]!); if (!(d <= worst)) { worst = d; at = i; } }
  assert.ok(worst <= atol, `${what}: max |diff| ${worst} at ${at} (${a[at]} vs ${b[at]}) > ${atol}`);
}
function pythonHas(mods: string[]): boolean {
  if (!fs.existsSync('/usr/bin/python3')) return false;
  return spawnSync('/usr/bin/python3', ['-c', `import ${mods.join(', ')}`]).status === 0;
}

describe('nsd-prep: committed fixture vs the numpy reference', () => {
  it('zscoreMaskedSession and averageRepeats match numpy to float32 precision (constant voxel -> 0)', async () => {
    const raw = await npy('fixed_raw.npy'), vox = (await npy('fixed_voxels.npy')).data as Int32Array;
    const ids = await npy('fixed_trial_ids.npy'), refZ = (await npy('fixed_ref_z.npy')).data as Float32Array;
    const [S, T, N] = raw.shape as [number, number, number];
    const V = vox.length, zs: Float32Array[] = [], keys: Int32Array[] = [];
    for (let s = 0; s < S; s++) {
      const z = zscoreMaskedSession((raw.data as Int16Array).subarray(s * T * N, (s + 1) * T * N), T, N, vox);
      close(z, refZ.subarray(s * T * V, (s + 1) * T * V), 2e-6, `z session ${s + 1}`);
      for (let t = 0; t < T; t++) assert.equal(z[t * V + 3], 0); // voxel 5 is constant
      zs.push(z);
      keys.push((ids.data as Int32Array).subarray(s * T, (s + 1) * T));
    }
    const avg = averageRepeats(zs, keys, V);
    assert.deepEqual(Array.from(avg.keys), Array.from((await npy('fixed_ref_keys.npy')).data as Int32Array));
    close(avg.mean, (await npy('fixed_ref_avg.npy')).data as Float32Array, 2e-6, 'averaged repeats');
  });

  it('HCP ranking (NaN ignored, empty region last) and the noise ceiling match numpy', async () => {
    const lab = await npy('fixed_hcp_labels.npy'), nc = await npy('fixed_hcp_ncsnr.npy');
    const n = lab.shape[1]!;
    const subjects = [0, 1, 2].map((s) => ({ ncsnr: (nc.data as Float32Array).subarray(s * n, (s + 1) * n), hcp: (lab.data as Int16Array).subarray(s * n, (s + 1) * n) }));
    const rows = rankHcpRegions(subjects);
    assert.deepEqual(rows.map((r) => r.region), Array.from((await npy('fixed_ref_hcp_order.npy')).data as Int32Array));
    const meanRank = (await npy('fixed_ref_hcp_meanrank.npy')).data as Float64Array;
    close(rows.map((r) => r.meanRank), rows.map((r) => meanRank[r.region - 1]!), 1e-12, 'mean ranks');
    assert.equal(rows[rows.length - 1]!.region, 77); // no voxels in any subject
    assert.ok(rows.every((r) => r.name === `region${r.region}`));
    const one = subjects[0]!.ncsnr;
    close(nsdNoiseCeiling(one), (await npy('fixed_ref_nc_single.npy')).data as Float32Array, 2e-5, 'nc single');
    close(nsdNoiseCeiling(one, { three: 406, two: 106, one: 70 }), (await npy('fixed_ref_nc_avg.npy')).data as Float32Array, 2e-5, 'nc avg');
  });
});

describe('nsd-prep: pure helpers', () => {
  it('region means, ranks, noise factor, repeat counts, session lists', () => {
    const m = regionMeans([1, 2, NaN, 5, 7], [1, 1, 1, 3, 0], 3);
    assert.deepEqual(Array.from(m).map((v) => (Number.isNaN(v) ? 'nan' : v)), [1.5, 'nan', 5]);
    assert.deepEqual(Array.from(rankDescending([1.5, NaN, 5, 1.5])), [2, 4, 1, 3]);
    assert.equal(noiseFactor(), 1);
    assert.equal(noiseFactor({ three: 1, two: 0, one: 0 }), 1 / 3);
    assert.deepEqual(repeatCountsOf([3, 1, 2, 3, 1]), { three: 2, two: 1, one: 2 });
    const nc = nsdNoiseCeiling([1, 0, NaN]);
    assert.equal(nc[0], 50); assert.equal(nc[1], 0); assert.ok(Number.isNaN(nc[2]));
    assert.deepEqual(parseSessionList('1-3,5,2'), [1, 2, 3, 5]);
    assert.throws(() => parseSessionList('x'), /1-3,5/);
    assert.deepEqual(Array.from(cortexUnion([[-1, 0, -1, -1], [-1, -1, 2, -1]])), [0, 1, 1, 0]);
    assert.deepEqual(Array.from(keepColumns(Int32Array.from([3, 1, 2]), Uint8Array.from([0, 1, 1, 0])).columns), [1, 2]);
  });
  it('cropBox -> pixels, crop + bicubic resize, and unparsable cropBoxes name the row', async () => {
    assert.deepEqual(cropBoxPixels([0, 0, 0.1671875, 0.1671875], 640, 480), { left: 107, top: 0, width: 426, height: 480 });
    assert.deepEqual(cropBoxPixels([0.125, 0.25, 0, 0], 8, 8), { left: 0, top: 1, width: 8, height: 5 });
    assert.throws(() => cropBoxPixels([0.6, 0.5, 0, 0], 10, 10), /leaves nothing/);
    const img = { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3) };
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) img.data.set(x < 2 ? [255, 0, 0] : [10, 200, 30], (y * 8 + x) * 3);
    const out = await cropAndResize(img, [0, 0, 0.25, 0], 4);
    assert.equal(out.width, 4);
    assert.ok(Array.from(out.data).every((v, i) => Math.abs(v - [10, 200, 30][i % 3]!) <= 1), 'the red columns were cropped away');
    const csv = 'x,cocoId,cocoSplit,cropBox,nsdId,shared1000,' + Array.from({ length: 8 }, (_, s) => `subject${s + 1}`).join(',') + '\n'
      + '0,1,train2017,"(0, 0, 0.1, 0.1)",0,False,1,0,0,0,0,0,0,0\n1,2,train2017,"(0, 0, zero, 0.1)",1,False,1,0,0,0,0,0,0,0\n';
    assert.throws(() => parseNsdStimInfo(csv, 'stim.csv'), (e: Error) => e instanceof FileFormatError && /row 2/.test(e.message) && /zero/.test(e.message));
    const h5 = path.join(tmp, 'crop.h5');
    await cropImagesToHdf5([{ nsdId: 4, cocoId: 9, cropBox: [0, 0, 0.25, 0], load: async () => img }], h5, { size: 6 });
    const h = await openHdf5(h5);
    try {
      assert.deepEqual(h.info('images').shape, [1, 6, 6, 3]);
      assert.deepEqual(Array.from(h.read('nsdId').data as Int32Array), [4]);
    } finally { h.close(); }
  });
  it('a design without masterordering is a clear error', async () => {
    const f = path.join(tmp, 'bad_design.mat');
    await writeMat(f, { subjectim: { dtype: 'float64', shape: [1, 2], data: Float64Array.from([1, 2]) } });
    await assert.rejects(readNsdExpDesign(f), (e: Error) => e instanceof FileFormatError && /masterordering/.test(e.message));
  });
});

describe('nsd-prep: pipeline on a tiny synthetic NSD subject', function () {
  this.timeout(120000);
  const root = path.join(tmp, 'subj');
  before(async () => { await makeNsdSubject({ size: 'tiny', seed: 5, out: root, imageSize: 16, world: 'v2' }); });

  it('zscore stops after one session, resumes without redoing it, and equals an uninterrupted run', async () => {
    const a = path.join(tmp, 'za'), b = path.join(tmp, 'zb');
    const r1 = await zscoreNsd({ root, out: a, stopAfterSessions: 1 });
    assert.equal(r1.complete, false);
    assert.deepEqual(r1.processed, [1]);
    assert.ok(!fs.existsSync(r1.files.betas));
    assert.deepEqual(JSON.parse(fs.readFileSync(r1.files.state, 'utf8')).done, [1]);
    const part1 = fs.statSync(path.join(a, 'partial', 'session_01.npy')).mtimeMs;
    const r2 = await zscoreNsd({ root, out: a, blockImages: 50 });
    assert.equal(r2.complete, true);
    assert.deepEqual(r2.resumed, [1]);
    assert.deepEqual(r2.processed, [2]);
    assert.equal(fs.statSync(path.join(a, 'partial', 'session_01.npy')).mtimeMs, part1);
    const r3 = await zscoreNsd({ root, out: b });
    assert.deepEqual(r3.processed, [1, 2]);
    assert.ok(fs.readFileSync(r2.files.betas).equals(fs.readFileSync(r3.files.betas)));
    assert.ok(r3.peakRssMB > 0);
    const bet = await readNpy(r3.files.betas);
    assert.deepEqual(bet.shape, [r3.images, r3.voxels]);
    const subj = await openNsdSubject(root);
    const ord = nsdImageOrder(subj.design, [1, 2]);
    assert.deepEqual(Array.from((await readNpy(r3.files.images)).data as Int32Array), Array.from(ord.nsdIds));
    assert.equal(ord.counts.reduce((s, c) => s + c, 0), 1500);
    assert.deepEqual(repeatCountsOf(ord.counts), nsdRepeatCounts(subj.design, [1, 2]));
  });

  it('readNiftiMasked streams the same values as readNifti (gzip int16, plain float32 with scaling)', async () => {
    const file = path.join(root, nsdPaths(1).betas, nsdBetaName(2));
    const vox = Int32Array.from([0, 17, 4000, 5123, 9599]);
    const full = await readNifti(file);
    const m = await readNiftiMasked(file, vox, 300);
    assert.equal(m.T, 750);
    const N = 20 * 24 * 20, src = full.data.data as Int16Array;
    for (let t = 0; t < 750; t += 37) for (let k = 0; k < vox.length; k++) assert.equal(m.data[t * 5 + k], Math.fround(src[t * N + vox[k]!]! / 300));
    const f32 = path.join(tmp, 'small.nii');
    const data = Float32Array.from({ length: 3 * 4 * 5 * 6 }, (_, i) => i * 0.5 - 7);
    await writeNifti(f32, { dtype: 'float32', shape: [6, 5, 4, 3], data });
    const g = await readNiftiMasked(f32, Int32Array.from([1, 59]), 2);
    assert.deepEqual(Array.from(g.data), [0, 1, 2, 3, 4, 5].flatMap((t) => [(data[t * 60 + 1]!) / 2, (data[t * 60 + 59]!) / 2]));
  });

  it('surface HDF5 betas (fsaverage space) give the same result as the same voxels read from the volumes', async () => {
    const subj = await openNsdSubject(root);
    const vox = nsdRoiVoxels(await subj.roi('nsdgeneral')).slice(0, 50);
    const dir = path.join(root, 'nsddata_betas', 'ppdata', 'subj01', 'fsaverage', 'betas_fithrf_GLMdenoise_RR');
    fs.mkdirSync(dir, { recursive: true });
    for (const s of [1, 2]) {
      const b = await subj.betas(s);
      const N = 20 * 24 * 20, src = b.data.data as Int16Array;
      const cols = (ks: Int32Array) => { const a = new Int16Array(750 * ks.length); for (let t = 0; t < 750; t++) ks.forEach((v, j) => (a[t * ks.length + j] = src[t * N + v]!)); return a; };
      const [lh, rh] = nsdSurfaceBetaFiles(dir, s);
      await writeHdf5(lh, { datasets: { betas: { dtype: 'int16', shape: [750, 30], data: cols(vox.slice(0, 30)) } } });
      await writeHdf5(rh, { datasets: { betas: { dtype: 'int16', shape: [750, 20], data: cols(vox.slice(30)) } } });
    }
    const a = await zscoreNsd({ root, out: path.join(tmp, 'zsurf'), space: 'fsaverage' });
    const b = await zscoreNsd({ root, out: path.join(tmp, 'zvol50'), mask: vox });
    assert.equal(a.voxels, 50);
    assert.ok(fs.readFileSync(a.files.betas).equals(fs.readFileSync(b.files.betas)));
    await assert.rejects(zscoreNsd({ root, out: path.join(tmp, 'zsurf3'), space: 'fsaverage', sessions: [3] }), /lh\.betas_session03\.hdf5[\s\S]*--sessions/);
  });

  it('bad input: a missing session names the file and offers --sessions; 749 trials; a mask of another shape; nothing written is lost', async () => {
    const out = path.join(tmp, 'zb');
    const before = fs.readFileSync(path.join(out, 'betas_zscored.npy'));
    await assert.rejects(zscoreNsd({ root, out, sessions: [1, 3] }), (e: Error) => e instanceof FileFormatError && /betas_session03\.nii\.gz/.test(e.message) && /--sessions/.test(e.message));
    const betas = path.join(root, nsdPaths(1).betas);
    const bad = path.join(betas, nsdBetaName(4));
    await writeNifti(bad, { dtype: 'int16', shape: [749, 20, 24, 20].slice(0, 1).concat([20, 24, 20]), data: new Int16Array(749 * 20 * 24 * 20) });
    try {
      await assert.rejects(zscoreNsd({ root, out, sessions: [1, 4] }), (e: Error) => e instanceof FileFormatError && /750 trials/.test(e.message) && /749/.test(e.message));
    } finally { fs.rmSync(bad); }
    const mask = path.join(tmp, 'mask.nii.gz');
    await writeNifti(mask, { dtype: 'int16', shape: [10, 24, 20], data: new Int16Array(10 * 24 * 20).fill(1) });
    await assert.rejects(zscoreNsd({ root, out, mask }), (e: Error) => e instanceof FileFormatError && /grid/.test(e.message) && /mask\.nii\.gz/.test(e.message));
    assert.ok(fs.readFileSync(path.join(out, 'betas_zscored.npy')).equals(before));
  });

  it('reorder, rank-hcp and the noise ceiling; parity with numpy/nibabel/h5py when /usr/bin/python3 has them', async function () {
    const z = path.join(tmp, 'zb'), h5 = path.join(tmp, 'reordered.h5'), hcpOut = path.join(tmp, 'hcp');
    const rr = await reorderNsd({ root, zscored: z, out: h5 });
    const rk = await rankHcp({ root, out: hcpOut });
    assert.equal(rk.rows.length, 180);
    assert.ok(rk.files.some((f) => f.endsWith('.tsv')));
    assert.ok(['V1', 'V2', 'V3', 'V4', 'FFC', 'PIT', 'MT'].includes(rk.rows[0]!.name), `top region ${rk.rows[0]!.name}`);
    const h = await openHdf5(h5);
    const got = { betas: h.read('betas').data as Float32Array, nsdId: h.read('nsdId').data as Int32Array, cocoId: h.read('cocoId').data as Int32Array, voxels: h.read('voxels').data as Int32Array, mask: h.read('mask') };
    h.close();
    assert.deepEqual(got.mask.shape, [20, 24, 20]);
    assert.equal(got.voxels.length, rr.voxels);
    for (let i = 1; i < got.nsdId.length; i++) assert.ok(got.nsdId[i]! > got.nsdId[i - 1]!);
    if (!pythonHas(['numpy', 'nibabel', 'h5py', 'scipy'])) {
      console.log('      (skipped the live numpy parity: /usr/bin/python3 lacks numpy, nibabel, h5py or scipy)');
      return;
    }
    const ref = path.join(tmp, 'ref');
    fs.mkdirSync(ref, { recursive: true });
    const p = spawnSync('/usr/bin/python3', [REF_SCRIPT, 'live', root, z, h5, ref], { encoding: 'utf8' });
    assert.equal(p.status, 0, p.stderr);
    const R = async (f: string) => (await readNpy(path.join(ref, f))).data as ArrayLike<number>;
    close((await readNpy(path.join(z, 'betas_zscored.npy'))).data as Float32Array, await R('ref_betas.npy'), 5e-6, 'zscored betas');
    assert.deepEqual(Array.from((await readNpy(path.join(z, 'images.npy'))).data as Int32Array), Array.from(await R('ref_images.npy')));
    close(got.betas, await R('ref_reorder_betas.npy'), 5e-6, 'reordered betas');
    assert.deepEqual(Array.from(got.nsdId), Array.from(await R('ref_reorder_nsdid.npy')));
    assert.deepEqual(Array.from(got.cocoId), Array.from(await R('ref_reorder_cocoid.npy')));
    assert.deepEqual(Array.from(got.voxels), Array.from(await R('ref_reorder_voxels.npy')));
    assert.deepEqual(rk.rows.map((r) => r.region), Array.from(await R('ref_hcp_order.npy')));
    const subj = await openNsdSubject(root);
    const nc = (await subj.ncsnr()).data.data as Float32Array;
    close(nsdNoiseCeiling(nc), await R('ref_nc_single.npy'), 2e-5, 'nc single');
    close(nsdNoiseCeiling(nc, nsdRepeatCounts(subj.design, [1, 2])), await R('ref_nc_avg.npy'), 2e-5, 'nc avg');
  });
});

describe('nsd-prep: command-line tools', function () {
  this.timeout(60000);
  const REPO = path.join(__dirname, '..', '..');
  const cli = (tool: string, args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'data-prep', 'nsd', `${tool}.ts`), ...args], { cwd: REPO, encoding: 'utf8' });
  it('--help prints the usage; a missing session exits 1 naming the file and --sessions', () => {
    const h = cli('rank-hcp', ['--help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /usage: tsx data-prep\/nsd\/rank-hcp\.ts/);
    const root = path.join(tmp, 'no-such-root');
    const r = cli('zscore', ['--root', root, '--out', path.join(tmp, 'zcli')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^zscore: .*betas_fithrf_GLMdenoise_RR/);
  });
});
