import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  type NDArray, FileFormatError, readCurv, readFreesurferSurface, readMgh, readPatch, writeCurv, writeFreesurferSurface,
  writeMgh, writePatch,
} from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'surf');
const SCRIPT = path.join(__dirname, '..', '..', 'data-prep', 'fixtures', 'make_surf_mat_fixtures.py');

interface BinRef { dtype: string; shape: number[]; bin: string }
interface MghExp { dims: number[]; dtype: string; data: BinRef; affine: number[] }
interface Expected {
  freesurfer: Record<string, { vertices: BinRef; faces: BinRef; createdBy?: string }>;
  curv: Record<string, BinRef>;
  patch: Record<string, { vertices: BinRef; indices: BinRef; border: BinRef }>;
  mgh: Record<string, MghExp>;
}
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as Expected;

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Asserts typed data equals a .bin reference bit for bit. */
function assertBin(a: ArrayBufferView, ref: BinRef, dir: string, what: string): void {
  assert.ok(bytesOf(a).equals(fs.readFileSync(path.join(dir, ref.bin))), `${what}: bytes differ`);
}

function assertMgh(v: Awaited<ReturnType<typeof readMgh>>, e: MghExp, dir: string, what: string): void {
  assert.deepEqual(v.dims, e.dims, `${what}: dims`);
  assert.equal(v.dtype, e.dtype);
  assert.deepEqual(v.data.shape, [...e.dims].reverse(), `${what}: shape is dims reversed`);
  assertBin(v.data.data, e.data, dir, what);
  assert.ok(v.affine, `${what}: affine`);
  v.affine!.forEach((x, i) => assert.ok(Math.abs(x - e.affine[i]!) < 1e-4, `${what}: affine[${i}] ${x} vs ${e.affine[i]}`));
}

function hasNibabel(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import nibabel, scipy'], { stdio: 'ignore' }).status === 0;
}

function peerView<T>(kind: string, file: string): { exp: T; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-'));
  const r = spawnSync('/usr/bin/python3', [SCRIPT, '--live', kind, file, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { exp: JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as T, dir };
}

const rejects = async (p: Promise<unknown>, re: RegExp) => {
  await assert.rejects(p, (e: unknown) => {
    if (!(e instanceof FileFormatError)) return false;
    assert.match(e.message, re);
    return true;
  });
};

describe('io/freesurfer', () => {
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reads triangle and quad surfaces exactly as nibabel does', async () => {
    for (const [file, e] of Object.entries(expected.freesurfer)) {
      const s = await readFreesurferSurface(path.join(FIX, file));
      assertBin(s.vertices, e.vertices, FIX, `${file} vertices`);
      assertBin(s.faces, e.faces, FIX, `${file} faces`);
      if (e.createdBy) assert.equal(s.createdBy, e.createdBy);
    }
  });

  it('reads new- and old-format curv files exactly as nibabel does', async () => {
    for (const [file, e] of Object.entries(expected.curv)) {
      const c = await readCurv(path.join(FIX, file));
      assert.equal(c.length, e.shape[0]);
      assertBin(c, e, FIX, file);
    }
  });

  it('reads a flat patch: vertices [n, 3], full-surface indices and border flags', async () => {
    const e = expected.patch['lh.full.flat.patch.3d']!;
    const p = await readPatch(path.join(FIX, 'lh.full.flat.patch.3d'));
    assertBin(p.vertices, e.vertices, FIX, 'patch vertices');
    assertBin(p.indices, e.indices, FIX, 'patch indices');
    assertBin(p.border, e.border, FIX, 'patch border');
    assert.ok(p.border.some((b) => b === 1) && p.border.some((b) => b === 0));
  });

  for (const file of Object.keys(expected.mgh)) {
    it(`reads ${file} exactly as nibabel does (data, dims, dtype, affine)`, async () => {
      assertMgh(await readMgh(path.join(FIX, file)), expected.mgh[file]!, FIX, file);
    });
  }

  it('round-trips surfaces, curv, patches and MGH/MGZ through the writers', async () => {
    const s = await readFreesurferSurface(path.join(FIX, 'lh.tri'));
    const sf = path.join(tmp, 'lh.white');
    await writeFreesurferSurface(sf, s, 'created by test');
    const s2 = await readFreesurferSurface(sf);
    assert.deepEqual(s2, { vertices: s.vertices, faces: s.faces, createdBy: 'created by test' });

    const c = await readCurv(path.join(FIX, 'lh.curv'));
    await writeCurv(path.join(tmp, 'lh.thickness'), c);
    assert.deepEqual(await readCurv(path.join(tmp, 'lh.thickness')), c);

    const p = await readPatch(path.join(FIX, 'lh.full.flat.patch.3d'));
    await writePatch(path.join(tmp, 'lh.flat.patch.3d'), p);
    assert.ok(fs.readFileSync(path.join(tmp, 'lh.flat.patch.3d')).equals(fs.readFileSync(path.join(FIX, 'lh.full.flat.patch.3d'))));

    for (const file of ['vol_f32.mgh', 'vol_u8.mgz', 'vol_i16.mgh', 'vol_4d.mgz', 'vol_i32.mgz']) {
      const v = await readMgh(path.join(FIX, file));
      const out = path.join(tmp, file);
      await writeMgh(out, v.data, v.affine);
      const back = await readMgh(out);
      assert.deepEqual(back.data, v.data);
      assert.deepEqual(back.dims, v.dims);
      back.affine!.forEach((x, i) => assert.ok(Math.abs(x - v.affine![i]!) < 1e-5));
      if (file.endsWith('.mgz')) assert.equal(fs.readFileSync(out)[0], 0x1f);
    }
  });

  it('writes surfaces, curv and MGH that nibabel reads back identically (live, when /usr/bin/python3 has nibabel)', async function () {
    if (!hasNibabel()) this.skip();
    const s = await readFreesurferSurface(path.join(FIX, 'lh.tri'));
    const sf = path.join(tmp, 'live.white');
    await writeFreesurferSurface(sf, s, 'created by brainnet live test');
    const surf = peerView<{ vertices: BinRef; faces: BinRef; createdBy: string }>('surf', sf);
    assertBin(s.vertices, surf.exp.vertices, surf.dir, 'live vertices');
    assertBin(s.faces, surf.exp.faces, surf.dir, 'live faces');
    assert.equal(surf.exp.createdBy, 'created by brainnet live test');

    const c = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * 3);
    await writeCurv(path.join(tmp, 'live.curv'), c);
    const cv = peerView<BinRef>('curv', path.join(tmp, 'live.curv'));
    assertBin(c, cv.exp, cv.dir, 'live curv');

    const data: NDArray = { dtype: 'float32', shape: [2, 3, 4, 5], data: Float32Array.from({ length: 120 }, (_, i) => i * 0.5 - 7) };
    const affine = [0, 0, -2, 50, -1, 0, 0, 60, 0, 1.5, 0, -70, 0, 0, 0, 1];
    await writeMgh(path.join(tmp, 'live.mgz'), data, affine);
    const m = peerView<MghExp>('mgh', path.join(tmp, 'live.mgz'));
    assert.deepEqual(m.exp.dims, [5, 4, 3, 2]);
    m.exp.affine.forEach((x, i) => assert.ok(Math.abs(x - affine[i]!) < 1e-4, `affine[${i}]`));
    assertMgh(await readMgh(path.join(tmp, 'live.mgz')), m.exp, m.dir, 'live.mgz');
  });

  describe('bad input', () => {
    const bad = (name: string, bytes: Uint8Array) => {
      const f = path.join(tmp, name);
      fs.writeFileSync(f, bytes);
      return f;
    };
    it('names a missing file', async () => {
      await rejects(readFreesurferSurface(path.join(tmp, 'lh.none')), /lh\.none.*no such file/);
      await rejects(readMgh(path.join(tmp, 'none.mgz')), /none\.mgz.*no such file/);
    });
    it('refuses a file with the wrong magic number, naming it', async () => {
      await rejects(readFreesurferSurface(path.join(FIX, 'lh.full.flat.patch.3d')), /FreeSurfer surface.*patch.*readPatch/);
      await rejects(readFreesurferSurface(path.join(FIX, 'lh.curv')), /FreeSurfer surface.*curv.*readCurv/);
      await rejects(readFreesurferSurface(path.join(FIX, 'labels.label.gii')), /FreeSurfer surface.*magic 0x3C3F78/);
      await rejects(readPatch(path.join(FIX, 'lh.tri')), /first int32 = -1/);
      await rejects(readFreesurferSurface(path.join(FIX, 'vol_f32.mgh')), /magic 0x000000/);
      await rejects(readCurv(path.join(FIX, 'lh.tri')), /curv file.*FreeSurfer surface.*readFreesurferSurface/);
      await rejects(readCurv(path.join(FIX, 'vol_f32.mgh')), /curv file.*fits neither/);
    });
    it('refuses truncated surfaces, curv, patches and MGZ', async () => {
      const tri = fs.readFileSync(path.join(FIX, 'lh.tri'));
      await rejects(readFreesurferSurface(bad('t.tri', tri.subarray(0, tri.length - 10))), /truncated/);
      const curv = fs.readFileSync(path.join(FIX, 'lh.curv'));
      await rejects(readCurv(bad('t.curv', curv.subarray(0, 40))), /truncated/);
      const patch = fs.readFileSync(path.join(FIX, 'lh.full.flat.patch.3d'));
      await rejects(readPatch(bad('t.patch', patch.subarray(0, 100))), /truncated/);
      const mgz = fs.readFileSync(path.join(FIX, 'vol_u8.mgz'));
      await rejects(readMgh(bad('t.mgz', mgz.subarray(0, mgz.length - 20))), /gzip|truncated/);
      const mgh = fs.readFileSync(path.join(FIX, 'vol_f32.mgh'));
      await rejects(readMgh(bad('t.mgh', mgh.subarray(0, 300))), /voxel data.*truncated/);
    });
    it('refuses wrong versions and corrupt contents', async () => {
      const patch = Buffer.from(fs.readFileSync(path.join(FIX, 'lh.full.flat.patch.3d')));
      patch.writeInt32BE(20, 0);
      await rejects(readPatch(bad('v.patch', patch)), /first int32 = -1.*found first int32 = 20/);
      const mgh = Buffer.from(fs.readFileSync(path.join(FIX, 'vol_f32.mgh')));
      mgh.writeInt32BE(2, 0);
      await rejects(readMgh(bad('v.mgh', mgh)), /version 1.*version 2/);
      const mgh2 = Buffer.from(fs.readFileSync(path.join(FIX, 'vol_f32.mgh')));
      mgh2.writeInt32BE(2, 20);
      await rejects(readMgh(bad('d.mgh', zlib.gzipSync(mgh2))), /data type.*type 2/);
      const tri = Buffer.from(fs.readFileSync(path.join(FIX, 'lh.tri')));
      tri.writeInt32BE(999, tri.length - 4);
      await rejects(readFreesurferSurface(bad('f.tri', tri)), /face indices in \[0, 42\).*999/);
    });
    it('writers refuse bad shapes and leave no file behind', async () => {
      const out = path.join(tmp, 'never.mgh');
      await rejects(writeMgh(out, { dtype: 'float64', shape: [2], data: new Float64Array(2) }), /uint8, int16, int32 or float32/);
      await assert.rejects(writeFreesurferSurface(path.join(tmp, 'never.white'), { vertices: new Float32Array(4), faces: new Int32Array(3) }));
      assert.ok(!fs.existsSync(out) && !fs.existsSync(path.join(tmp, 'never.white')));
      assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-')), []);
    });
  });
});
