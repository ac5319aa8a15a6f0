import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { FileFormatError, type NDArray, affineToQform, niftiQform, niftiScaled, readNifti, readNiftiHeader, writeNifti } from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'nifti');

interface Exp {
  base: string; shape: number[]; raw_dtype: string; dataobj_dtype: string; datatype: number; bitpix: number;
  vox_offset: number; scl_slope: number | null; scl_inter: number | null; slope_inter: [number | null, number | null];
  sform_code: number; qform_code: number; pixdim: number[]; dim: number[]; xyzt_units: number; descrip: string;
  little_endian: boolean; affine: number[][]; sform: number[][]; qform: number[][];
}
const index = JSON.parse(fs.readFileSync(path.join(FIX, 'index.json'), 'utf8')) as Record<string, Exp>;

function bin(name: string): Buffer {
  return fs.readFileSync(path.join(FIX, name));
}
function bytesOf(a: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
function maxAbsDiff(a: number[][], b: number[][]): number {
  let d = 0;
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) d = Math.max(d, Math.abs(a[i]![j]! - b[i]![j]!));
  return d;
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-nifti-'));
}

/** /usr/bin/python3 with nibabel, or null when unavailable (the live cross-check is then skipped). */
function python(code: string): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    if (r.stderr && /ModuleNotFoundError|No such file/.test(r.stderr + String(r.error))) return null;
    if (r.error) return null;
    throw new Error(`python failed: ${r.stderr}`);
  }
  return r.stdout;
}
const hasNibabel = python('import nibabel') !== null;

describe('io/nifti: parity with nibabel fixtures', () => {
  for (const [name, exp] of Object.entries(index)) {
    it(`${name}: header, raw voxels, scaled voxels and affine match nibabel`, async () => {
      const file = path.join(FIX, name);
      const vol = await readNifti(file);
      const h = vol.header;
      assert.equal(h.datatype, exp.datatype);
      assert.equal(h.dtype, exp.raw_dtype);
      assert.equal(h.bitpix, exp.bitpix);
      assert.equal(h.voxOffset, exp.vox_offset);
      assert.equal(h.sformCode, exp.sform_code);
      assert.equal(h.qformCode, exp.qform_code);
      assert.equal(h.littleEndian, exp.little_endian);
      assert.equal(h.xyztUnits, exp.xyzt_units);
      assert.equal(h.descrip, exp.descrip);
      assert.deepEqual(h.pixdim, exp.pixdim);
      assert.deepEqual(h.dim, exp.dim);
      assert.deepEqual(h.dims, exp.shape);
      assert.equal(vol.sclSlope, exp.scl_slope ?? NaN);
      assert.equal(vol.sclInter, exp.scl_inter ?? NaN);
      // Layout: dims is nibabel's shape, data.shape is its reverse (x fastest).
      assert.deepEqual(vol.dims, exp.shape);
      assert.deepEqual(vol.data.shape, exp.shape.slice().reverse());
      assert.ok(bytesOf(vol.data.data).equals(bin(`${exp.base}.raw.bin`)), 'raw voxels differ from nibabel');
      // get_fdata(): bit for bit in float64; float32 is that value rounded once.
      const f64 = niftiScaled(vol, { dtype: 'float64' });
      assert.ok(bytesOf(f64).equals(bin(`${exp.base}.fdata.bin`)), 'scaled float64 differs from get_fdata()');
      const def = niftiScaled(vol);
      if (exp.raw_dtype === 'float64') assert.ok(def instanceof Float64Array);
      else assert.ok(bytesOf(def).equals(bytesOf(Float32Array.from(f64))), 'float32 scaled is not float64 rounded once');
      // The affine: sform and the pixdim fallback exactly; the qform to rounding (nibabel uses long double).
      const tol = exp.sform_code > 0 || exp.qform_code === 0 ? 0 : 1e-12;
      assert.ok(maxAbsDiff(vol.affine, exp.affine) <= tol, `affine differs: ${JSON.stringify(vol.affine)} vs ${JSON.stringify(exp.affine)}`);
      assert.deepEqual(await readNiftiHeader(file), h);
    });
  }

  it('dataobj (np.asanyarray(img.dataobj)) equals our scaled float64 for scaled files', async () => {
    for (const exp of Object.values(index)) {
      if (exp.dataobj_dtype !== 'float64') continue;
      const vol = await readNifti(path.join(FIX, Object.keys(index).find((k) => index[k] === exp)!));
      assert.ok(bytesOf(niftiScaled(vol, { dtype: 'float64' })).equals(bin(`${exp.base}.dataobj.bin`)));
    }
  });

  it('affineToQform gives the quaternion, qfac and voxel sizes nibabel stored for the same affine', async () => {
    for (const name of ['uint8.nii', 'int8.nii.gz', 'float64.nii']) {
      const h = await readNiftiHeader(path.join(FIX, name));
      const q = affineToQform(index[name]!.sform);
      assert.equal(q.qfac, h.pixdim[0]);
      for (const [a, b] of [[q.b, h.quaternB], [q.c, h.quaternC], [q.d, h.quaternD], ...q.zooms.map((z, i) => [z, h.pixdim[i + 1]!])] as [number, number][]) {
        assert.ok(Math.abs(a - b) < 1e-6, `${name}: ${a} vs ${b}`);
      }
      assert.deepEqual(q.offset, [h.qoffsetX, h.qoffsetY, h.qoffsetZ]);
    }
  });

  it('voxel (x,y,z,t) is at x + X*(y + Y*(z + Z*t)) in a 4-D file', async () => {
    const vol = await readNifti(path.join(FIX, 'int16_4d.nii'));
    const [X, Y, Z, T] = vol.dims as [number, number, number, number];
    assert.deepEqual(vol.data.shape, [T, Z, Y, X]);
    // nibabel's raw.bin is ravel(order='F'), so flat index = x + X*(y + Y*(z + Z*t)) there too.
    const raw = new Int16Array(new Uint8Array(bin('int16_4d.raw.bin')).buffer);
    const x = 3, y = 2, z = 1, t = 7;
    assert.equal((vol.data.data as Int16Array)[x + X * (y + Y * (z + Z * t))], raw[x + X * (y + Y * (z + Z * t))]);
  });
});

describe('io/nifti: volume ranges', () => {
  for (const name of ['int16_4d.nii', 'int16_4d.nii.gz']) {
    it(`${name}: volumes [2, 6) equal that block of the full read`, async () => {
      const file = path.join(FIX, name);
      const full = await readNifti(file);
      const part = await readNifti(file, { volumes: [2, 6] });
      const vs = full.dims[0]! * full.dims[1]! * full.dims[2]!;
      assert.deepEqual(part.dims, [...full.dims.slice(0, 3), 4]);
      assert.deepEqual(part.data.shape, [4, ...full.data.shape.slice(1)]);
      assert.deepEqual(Array.from(part.data.data as Int16Array), Array.from((full.data.data as Int16Array).subarray(2 * vs, 6 * vs)));
      const none = await readNifti(file, { volumes: [3, 3] });
      assert.equal(none.data.data.length, 0);
      await assert.rejects(readNifti(file, { volumes: [5, 10] }), /out of range; the file has 9 volume/);
    });
  }

  it('.nii.gz: reading early volumes stops before a corrupt tail (streams, never inflates the rest)', async () => {
    const dir = tmpDir();
    const X = 16, Y = 16, Z = 8, T = 40;
    const data = new Int16Array(X * Y * Z * T).map((_, i) => (i * 7919) % 30011 - 15000);
    const good = path.join(dir, 'big.nii.gz');
    await writeNifti(good, { dtype: 'int16', shape: [T, Z, Y, X], data }, { gzipLevel: 0 });
    // Level 0 stores blocks, so byte k of the data sits near byte k of the .gz: cut the last third.
    const gz = fs.readFileSync(good);
    const cut = path.join(dir, 'cut.nii.gz');
    fs.writeFileSync(cut, gz.subarray(0, Math.floor(gz.length * 2 / 3)));
    const early = await readNifti(cut, { volumes: [0, 5] });
    assert.deepEqual(Array.from(early.data.data as Int16Array), Array.from(data.subarray(0, 5 * X * Y * Z)));
    await assert.rejects(readNifti(cut), (e: Error) => e instanceof FileFormatError && /cut\.nii\.gz/.test(e.message) && /truncated/.test(e.message));
    fs.rmSync(dir, { recursive: true });
  });
});

describe('io/nifti: bad input', () => {
  let dir: string;
  before(() => { dir = tmpDir(); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function patched(name: string, edit: (b: Buffer) => Buffer): string {
    const out = path.join(dir, `${Math.random().toString(36).slice(2)}-${name}`);
    fs.writeFileSync(out, edit(Buffer.from(fs.readFileSync(path.join(FIX, name)))));
    return out;
  }

  it('a missing file names the path', async () => {
    await assert.rejects(readNifti(path.join(dir, 'nope.nii')), (e: Error) => e instanceof FileFormatError && /nope\.nii/.test(e.message) && /no such file/.test(e.message));
  });

  it('ANALYZE 7.5 (no magic) is refused, saying only NIfTI is supported', async () => {
    const f = patched('uint8.nii', (b) => { b.fill(0, 344, 348); return b; });
    await assert.rejects(readNifti(f), (e: Error) => e instanceof FileFormatError && /ANALYZE/.test(e.message) && /NIfTI-1 and NIfTI-2/.test(e.message));
  });

  it('a non-NIfTI file (wrong sizeof_hdr) says what was found', async () => {
    const f = path.join(dir, 'notes.nii');
    fs.writeFileSync(f, Buffer.alloc(400, 0x41));
    await assert.rejects(readNifti(f), (e: Error) => e instanceof FileFormatError && /sizeof_hdr = 348/.test(e.message) && /notes\.nii/.test(e.message));
  });

  it('NIfTI-2 is read (not refused)', async () => {
    const h = await readNiftiHeader(path.join(FIX, 'nifti2_float32.nii'));
    assert.equal(h.version, 2);
  });

  it('truncated .nii and .nii.gz files are reported with expected and found sizes', async () => {
    const f = patched('int16_4d.nii', (b) => b.subarray(0, b.length - 100));
    await assert.rejects(readNifti(f), (e: Error) => e instanceof FileFormatError && /truncated/.test(e.message) && /bytes/.test(e.message));
    // A partial read of an intact head still works.
    assert.equal((await readNifti(f, { volumes: [0, 2] })).data.shape[0], 2);
    const g = patched('int16_4d.nii.gz', (b) => zlib.gzipSync(zlib.gunzipSync(b).subarray(0, 400)));
    await assert.rejects(readNifti(g), (e: Error) => e instanceof FileFormatError && /truncated/.test(e.message));
    const header = patched('uint8.nii', (b) => b.subarray(0, 200));
    await assert.rejects(readNifti(header), (e: Error) => e instanceof FileFormatError && /348 bytes/.test(e.message));
  });

  it('unsupported datatypes (RGB24) are named', async () => {
    const f = patched('uint8.nii', (b) => { b.writeInt16LE(128, 70); return b; });
    await assert.rejects(readNifti(f), (e: Error) => e instanceof FileFormatError && /DT_RGB24/.test(e.message));
  });

  it('an unwritable dtype fails before anything is written, leaving no file or temp file', async () => {
    const target = path.join(dir, 'half.nii');
    await assert.rejects(writeNifti(target, { dtype: 'float16', shape: [2, 2, 2], data: new Uint16Array(8) }), /cannot store dtype float16/);
    await assert.rejects(writeNifti(target, { dtype: 'int16', shape: [2, 2, 2], data: new Int16Array(7) }), /needs 8 elements/);
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('half')), []);
  });
});

describe('io/nifti: writer round trip', () => {
  let dir: string;
  before(() => { dir = tmpDir(); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const X = 7, Y = 6, Z = 5, T = 4;
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const affine = [[1.8 * c, -2.0 * s, 0, -70.5], [1.8 * s, 2.0 * c, 0, -95.25], [0, 0, -2.2, 60.125], [0, 0, 0, 1]];
  const data: NDArray = { dtype: 'int16', shape: [T, Z, Y, X], data: new Int16Array(X * Y * Z * T).map((_, i) => (i * 31) % 4001 - 2000) };

  for (const ext of ['.nii', '.nii.gz']) {
    it(`${ext}: our reader gets back data, affine (float32), scaling and metadata`, async () => {
      const file = path.join(dir, `rt${ext}`);
      await writeNifti(file, data, { affine, sclSlope: 1 / 300, sclInter: 0.5, pixdim: [0, 0, 0, 1.6], descrip: 'round trip', intentCode: 0 });
      if (ext === '.nii.gz') assert.equal(fs.readFileSync(file)[0], 0x1f);
      const vol = await readNifti(file);
      assert.deepEqual(vol.dims, [X, Y, Z, T]);
      assert.deepEqual(Array.from(vol.data.data as Int16Array), Array.from(data.data as Int16Array));
      assert.equal(vol.header.sformCode, 1);
      assert.equal(vol.header.qformCode, 1);
      assert.equal(vol.sclSlope, Math.fround(1 / 300));
      assert.equal(vol.sclInter, 0.5);
      assert.equal(vol.header.pixdim[4], Math.fround(1.6));
      assert.equal(vol.header.descrip, 'round trip');
      const f32 = affine.map((r) => r.map((v) => Math.fround(v)));
      assert.deepEqual(vol.affine, f32);
      // The qform (pixdim[0] = qfac -1 here, as the affine flips z) encodes the same affine.
      const q = niftiQform(vol.header);
      assert.equal(vol.header.pixdim[0], -1);
      assert.ok(maxAbsDiff(q, affine) < 1e-4, `qform ${JSON.stringify(q)}`);
      assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.')), [], 'temporary files left behind');
    });
  }

  it('nibabel reads our files identically (live cross-check)', async function () {
    if (!hasNibabel) this.skip();
    for (const ext of ['.nii', '.nii.gz']) {
      const file = path.join(dir, `nb${ext}`);
      await writeNifti(file, data, { affine, sclSlope: 1 / 300, sclInter: 0.5 });
      const out = python(`
import json, nibabel as nib, numpy as np, hashlib
img = nib.load(${JSON.stringify(file)})
raw = np.asanyarray(img.dataobj.get_unscaled())
h = img.header
with nib.openers.ImageOpener(${JSON.stringify(file)}) as f:
    hd = nib.Nifti1Header.from_fileobj(f)
print(json.dumps(dict(shape=list(img.shape), dtype=str(raw.dtype), raw=raw.ravel(order='F').astype('<i2').tobytes().hex(),
  affine=img.affine.tolist(), qform=hd.get_qform().tolist(), codes=[int(hd['sform_code']), int(hd['qform_code'])],
  slope_inter=[float(x) for x in hd.get_slope_inter()], fdata_sum=float(img.get_fdata().sum()))))
`)!;
      const r = JSON.parse(out) as { shape: number[]; dtype: string; raw: string; affine: number[][]; qform: number[][]; codes: number[]; slope_inter: number[]; fdata_sum: number };
      assert.deepEqual(r.shape, [X, Y, Z, T]);
      assert.equal(r.dtype, 'int16');
      assert.equal(r.raw, bytesOf(data.data).toString('hex'));
      assert.deepEqual(r.affine, affine.map((row) => row.map((v) => Math.fround(v))));
      assert.ok(maxAbsDiff(r.qform, affine) < 1e-4);
      assert.deepEqual(r.codes, [1, 1]);
      assert.deepEqual(r.slope_inter, [Math.fround(1 / 300), 0.5]);
      let ours = 0;
      for (const v of niftiScaled(await readNifti(file), { dtype: 'float64' })) ours += v;
      assert.ok(Math.abs(ours - r.fdata_sum) < 1e-6 * Math.abs(r.fdata_sum));
    }
  });

  it('float32, uint8, float64 and 3-D round trip; default affine is diag(pixdim)', async () => {
    const cases: NDArray[] = [
      { dtype: 'float32', shape: [3, 4, 5], data: Float32Array.from({ length: 60 }, (_, i) => Math.sin(i) * 1e3) },
      { dtype: 'uint8', shape: [2, 3, 4, 5], data: Uint8Array.from({ length: 120 }, (_, i) => i * 2) },
      { dtype: 'float64', shape: [3, 4, 5], data: Float64Array.from({ length: 60 }, (_, i) => Math.PI * i) },
    ];
    for (const [k, a] of cases.entries()) {
      const file = path.join(dir, `c${k}.nii.gz`);
      await writeNifti(file, a, { pixdim: [2, 3, 4] });
      const v = await readNifti(file);
      assert.equal(v.data.dtype, a.dtype);
      assert.deepEqual(v.data.shape, a.shape);
      assert.ok(bytesOf(v.data.data).equals(bytesOf(a.data)));
      assert.deepEqual(v.affine, [[2, 0, 0, 0], [0, 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 1]]);
    }
  });
});
