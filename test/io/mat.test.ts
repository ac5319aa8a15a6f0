import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type MatValue, type NDArray, FileFormatError, isMatArray, matCell, matStruct, readMat, writeMat } from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'mat');
const SCRIPT = path.join(__dirname, '..', '..', 'data-prep', 'fixtures', 'make_surf_mat_fixtures.py');

/** The JSON tree that the fixture script writes for what scipy.io.loadmat returned. */
type Exp =
  | { type: 'array'; dtype: string; shape: number[]; bin: string }
  | { type: 'string'; value: string }
  | { type: 'strings'; value: string[] }
  | { type: 'struct'; shape: number[]; fieldNames: string[]; elements: Record<string, Exp>[] }
  | { type: 'cell'; shape: number[]; cells: Exp[] };

const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as Record<string, Record<string, Exp>>;

/** Asserts that our value matches scipy's, bit for bit for arrays. */
function assertSame(v: MatValue, e: Exp, dir: string, what: string): void {
  switch (e.type) {
    case 'array': {
      assert.ok(isMatArray(v), `${what}: expected an array`);
      const a = v as NDArray;
      assert.equal(a.dtype, e.dtype, `${what}: dtype`);
      assert.deepEqual(a.shape, e.shape, `${what}: shape`);
      const got = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
      assert.ok(got.equals(fs.readFileSync(path.join(dir, e.bin))), `${what}: bytes differ`);
      return;
    }
    case 'string': assert.equal(v, e.value, what); return;
    case 'strings': assert.deepEqual(v, e.value, what); return;
    case 'cell': {
      assert.ok(typeof v === 'object' && 'kind' in v && v.kind === 'cell', `${what}: expected a cell`);
      assert.deepEqual(v.shape, e.shape, `${what}: shape`);
      e.cells.forEach((c, i) => assertSame(v.cells[i]!, c, dir, `${what}{${i}}`));
      return;
    }
    case 'struct': {
      assert.ok(typeof v === 'object' && 'kind' in v, `${what}: expected a struct`);
      if (e.shape.every((d) => d === 1)) {
        assert.equal(v.kind, 'struct', `${what}: a 1x1 struct`);
        if (v.kind !== 'struct') return;
        assert.deepEqual(Object.keys(v.fields), e.fieldNames);
        for (const f of e.fieldNames) assertSame(v.fields[f]!, e.elements[0]![f]!, dir, `${what}.${f}`);
      } else {
        assert.equal(v.kind, 'struct-array', `${what}: a struct array`);
        if (v.kind !== 'struct-array') return;
        assert.deepEqual(v.shape, e.shape);
        assert.deepEqual(v.fieldNames, e.fieldNames);
        e.elements.forEach((el, i) => {
          for (const f of e.fieldNames) assertSame(v.elements[i]![f]!, el[f]!, dir, `${what}(${i}).${f}`);
        });
      }
    }
  }
}

function assertFile(vars: Record<string, MatValue>, exp: Record<string, Exp>, dir: string, file: string): void {
  assert.deepEqual(Object.keys(vars).sort(), Object.keys(exp).sort(), `${file}: variables`);
  for (const [k, e] of Object.entries(exp)) assertSame(vars[k]!, e, dir, `${file}:${k}`);
}

const rejects = async (p: Promise<unknown>, re: RegExp) => {
  await assert.rejects(p, (e: unknown) => {
    if (!(e instanceof FileFormatError)) return false;
    assert.match(e.message, re);
    return true;
  });
};

function hasScipy(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import nibabel, scipy'], { stdio: 'ignore' }).status === 0;
}

describe('io/mat', () => {
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mat-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const file of Object.keys(expected)) {
    it(`reads ${file} exactly as scipy.io.loadmat does`, async () => {
      assertFile(await readMat(path.join(FIX, file)), expected[file]!, FIX, file);
    });
  }

  it('keeps MATLAB dims as the shape and converts column-major data to C order', async () => {
    const m = await readMat(path.join(FIX, 'expdesign_like.mat'));
    const subjectim = m.subjectim as NDArray<Float64Array>;
    assert.deepEqual(subjectim.shape, [8, 100]);
    const mo = m.masterordering as NDArray<Float64Array>;
    assert.deepEqual(mo.shape, [1, 300]);
    assert.deepEqual((m.stimpattern as NDArray).shape, [4, 3, 5]);
    const v5 = await readMat(path.join(FIX, 'types_v5.mat'));
    const st = v5.st as Extract<MatValue, { kind: 'struct' }>;
    // st.a = reshape(0:5, 3, 2)' in MATLAB terms: rows [0 1 2; 3 4 5]
    assert.deepEqual(Array.from((st.fields.a as NDArray).data as Float64Array), [0, 1, 2, 3, 4, 5]);
    assert.equal(st.fields.name, 'V1');
    assert.deepEqual(v5.chars, ['abc', 'def']);
  });

  it('round-trips every kind of value through writeMat, compressed and not', async () => {
    const src = await readMat(path.join(FIX, 'types_v5.mat'));
    for (const compress of [false, true]) {
      const f = path.join(tmp, `rt_${compress}.mat`);
      await writeMat(f, src, { compress });
      assert.deepEqual(await readMat(f), src);
    }
    const f = path.join(tmp, 'shapes.mat');
    await writeMat(f, {
      row: { dtype: 'int32', shape: [3], data: new Int32Array([1, 2, 3]) },
      one: { dtype: 'float64', shape: [], data: new Float64Array([2.5]) },
      s: matStruct({ c: matCell(['x', { dtype: 'bool', shape: [1, 2], data: new Uint8Array([1, 0]) }]) }),
    });
    const back = await readMat(f);
    assert.deepEqual(back.row, { dtype: 'int32', shape: [1, 3], data: new Int32Array([1, 2, 3]) });
    assert.deepEqual(back.one, { dtype: 'float64', shape: [1, 1], data: new Float64Array([2.5]) });
    assert.deepEqual(back.s, matStruct({ c: matCell(['x', { dtype: 'bool', shape: [1, 2], data: new Uint8Array([1, 0]) }]) }));
  });

  it('writes an NSD-expdesign-sized file that scipy.io.loadmat reads identically (live, when /usr/bin/python3 has scipy)', async function () {
    if (!hasScipy()) this.skip();
    const mo = Float64Array.from({ length: 30000 }, (_, i) => (i * 7919) % 10000 + 1);
    const subjectim = Float64Array.from({ length: 8 * 10000 }, (_, i) => (i * 104729) % 73000 + 1);
    const vars: Record<string, MatValue> = {
      masterordering: { dtype: 'float64', shape: [1, 30000], data: mo },
      subjectim: { dtype: 'float64', shape: [8, 10000], data: subjectim },
      sharedix: { dtype: 'float64', shape: [1, 1000], data: Float64Array.from({ length: 1000 }, (_, i) => i * 73 + 1) },
      stimpattern: { dtype: 'uint8', shape: [2, 3, 4], data: Uint8Array.from({ length: 24 }, (_, i) => i) },
      z: { dtype: 'complex64', shape: [1, 2], data: new Float32Array([1, -2, 3.5, 4]) },
      big: { dtype: 'int64', shape: [2, 1], data: new BigInt64Array([-(2n ** 62n), 12345678901234n]) },
      info: matStruct({ name: 'NSD-like', rows: ['ab', 'cd'], cell: matCell([1, 2].map((x) => ({ dtype: 'float64', shape: [1, 1], data: new Float64Array([x]) }))) }),
      sa: { kind: 'struct-array', shape: [2, 1], fieldNames: ['v'], elements: [{ v: 'first' }, { v: 'second' }] },
    };
    for (const compress of [true, false]) {
      const f = path.join(tmp, `live_${compress}.mat`);
      await writeMat(f, vars, { compress });
      const dir = fs.mkdtempSync(path.join(tmp, 'peer-'));
      const r = spawnSync('/usr/bin/python3', [SCRIPT, '--live', 'mat', f, dir], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const exp = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, Exp>;
      assertFile(await readMat(f), exp, dir, f);
      assert.deepEqual((exp.subjectim as { shape: number[] }).shape, [8, 10000]);
    }
  });

  describe('bad input', () => {
    const bad = (name: string, bytes: Uint8Array) => {
      const f = path.join(tmp, name);
      fs.writeFileSync(f, bytes);
      return f;
    };
    const header = (text: string, version: number, endian = 'IM') => {
      const h = Buffer.alloc(128, 0x20);
      h.write(text, 0, 'latin1');
      h.writeUInt16LE(version, 124);
      h.write(endian, 126, 'latin1');
      return h;
    };
    it('names a missing file', async () => {
      await rejects(readMat(path.join(tmp, 'none.mat')), /none\.mat.*no such file/);
    });
    it('refuses sparse arrays, naming the variable', async () => {
      await rejects(readMat(path.join(FIX, 'sparse.mat')), /variable "sp".*sparse array.*full\(x\)/);
    });
    it('refuses objects and function handles, naming the variable', async () => {
      for (const [cls, re] of [[3, /variable "obj".*an object/], [16, /variable "obj".*a function handle/]] as const) {
        // miMATRIX { flags (miUINT32: class), dims (miINT32 [1 1]), name (miINT8 "obj", small element) }
        const body = Buffer.alloc(40);
        body.writeUInt32LE(6, 0); body.writeUInt32LE(8, 4); body.writeUInt32LE(cls, 8);
        body.writeUInt32LE(5, 16); body.writeUInt32LE(8, 20); body.writeInt32LE(1, 24); body.writeInt32LE(1, 28);
        body.writeUInt32LE((3 << 16) | 1, 32); body.write('obj', 36, 'latin1');
        const tag = Buffer.alloc(8);
        tag.writeUInt32LE(14, 0); tag.writeUInt32LE(body.length, 4);
        await rejects(readMat(bad(`cls${cls}.mat`, Buffer.concat([header('MATLAB 5.0 MAT-file', 0x0100), tag, body]))), re);
      }
    });
    it('explains v7.3 (HDF5) files and points to readHdf5', async () => {
      const f = Buffer.concat([header('MATLAB 7.3 MAT-file, Platform: GLNXA64', 0x0200), Buffer.alloc(384),
        Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64)]);
      await rejects(readMat(bad('v73.mat', f)), /v7\.3 MAT-file \(HDF5 inside\).*readHdf5/);
      await rejects(readMat(bad('v73b.mat', header('MATLAB 7.3 MAT-file', 0x0200))), /version 0x0200 \(v7\.3, HDF5\).*readHdf5/);
    });
    it('refuses v4 files, short files and unknown versions', async () => {
      await rejects(readMat(bad('v4.mat', Buffer.alloc(200, 1))), /Level 5.*v4.*-v7/);
      await rejects(readMat(bad('short.mat', Buffer.from('MATLAB 5.0'))), /128-byte header.*10 bytes/);
      await rejects(readMat(bad('ver.mat', header('MATLAB 5.0 MAT-file', 0x0300))), /version 0x0100.*0x0300/);
    });
    it('refuses truncated and corrupt files', async () => {
      const v5 = fs.readFileSync(path.join(FIX, 'types_v5.mat'));
      await rejects(readMat(bad('trunc.mat', v5.subarray(0, v5.length - 100))), /truncated/);
      const v7 = Buffer.from(fs.readFileSync(path.join(FIX, 'types_v7.mat')));
      for (let i = 150; i < 190; i++) v7[i] = v7[i]! ^ 0x5a;
      await rejects(readMat(bad('corrupt.mat', v7)), /zlib|corrupt|truncated/);
    });
    it('writeMat refuses bad names and dtypes, leaving no file', async () => {
      const out = path.join(tmp, 'never.mat');
      await rejects(writeMat(out, { '1bad': 'x' }), /MATLAB name.*"1bad"/);
      await rejects(writeMat(out, { h: { dtype: 'float16', shape: [1], data: new Uint16Array(1) } }), /float16 in variable "h"/);
      await rejects(writeMat(out, { s: matStruct({ 'bad field': 'x' }) }), /"bad field"/);
      assert.ok(!fs.existsSync(out));
    });
  });
});
