import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readNpy, readNpyHeader, openNpy, decodeNpy, encodeNpy, writeNpy, FileFormatError, NDArray, DType, allocTyped } from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'npy');
interface Expected { dtype: DType; shape: number[]; hex: string }
const EXPECTED: Record<string, Expected> = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')).arrays;

/** Hex of an NDArray's bytes (C order, little-endian) for bit-for-bit comparison. */
export function hexOf(a: NDArray): string {
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).toString('hex');
}

const ITEM: Record<DType, number> = {
  bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8,
  float16: 2, bfloat16: 2, float32: 4, float64: 8, complex64: 8, complex128: 16,
};

/** Expected rows [a, b) of a fixture, as hex. */
function rowsHex(e: Expected, a: number, b: number): string {
  const rowBytes = (e.shape.slice(1).reduce((x, y) => x * y, 1)) * ITEM[e.dtype];
  return e.hex.slice(a * rowBytes * 2, b * rowBytes * 2);
}

const hasNumpy = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

describe('npy: parity with numpy-written fixtures', () => {
  const files = Object.keys(EXPECTED).filter((k) => k.endsWith('.npy'));
  it('has fixtures for every dtype x byte order x C/F order', () => {
    assert.ok(files.length >= 100, `only ${files.length} fixtures`);
  });
  for (const name of files) {
    it(`reads ${name} bit for bit`, async () => {
      const e = EXPECTED[name]!;
      const a = await readNpy(path.join(FIX, name));
      assert.equal(a.dtype, e.dtype);
      assert.deepEqual(a.shape, e.shape);
      assert.equal(hexOf(a), e.hex);
      // decodeNpy on the same bytes agrees
      const b = decodeNpy(fs.readFileSync(path.join(FIX, name)), name);
      assert.equal(hexOf(b), e.hex);
      assert.deepEqual(b.shape, e.shape);
    });
  }
  it('parses headers: version, order, byte order, descr', async () => {
    const h = await readNpyHeader(path.join(FIX, 'u2_be_v2_F.npy'));
    assert.deepEqual(
      { ...h },
      { dtype: 'uint16', shape: [2, 3, 4], fortranOrder: true, littleEndian: false, version: 2, dataOffset: 128, descr: '>u2' },
    );
    assert.equal((await readNpyHeader(path.join(FIX, 'f4_v3.npy'))).version, 3);
    assert.equal((await readNpyHeader(path.join(FIX, 'f4_v1.npy'))).dataOffset, 128);
    assert.equal((await readNpyHeader(path.join(FIX, 'f4_native_eq.npy'))).descr, '=f4');
    const z = await readNpyHeader(path.join(FIX, 'f8_0d.npy'));
    assert.deepEqual(z.shape, []);
  });
  it('gives values, not just bytes: float16 words, int64 bigints, complex interleaved', async () => {
    const f2 = await readNpy(path.join(FIX, 'f2_be_C_2d.npy'));
    assert.equal((f2.data as Uint16Array)[1], 0x7c00); // +inf
    assert.equal((f2.data as Uint16Array)[8], 0x0001); // smallest subnormal
    const i8 = await readNpy(path.join(FIX, 'i8_be_F_2d.npy'));
    assert.equal((i8.data as BigInt64Array)[0], -(2n ** 63n));
    const c = await readNpy(path.join(FIX, 'c16_le_C_2d.npy'));
    assert.ok(Number.isNaN((c.data as Float64Array)[0]!));
    assert.equal((c.data as Float64Array)[2], Infinity);
    assert.equal((await readNpy(path.join(FIX, 'f8_0d.npy'))).data[0], 3.25);
  });
});

describe('npy: row ranges', () => {
  for (const name of ['i4_rows_C.npy', 'i4_rows_F.npy', 'f8_rows_F_3d.npy', 'f4_le_F_3d.npy', 'c8_be_F_3d.npy', 'f8_1d.npy']) {
    it(`reads row blocks of ${name} like a slice of the whole`, async () => {
      const e = EXPECTED[name]!;
      const n = e.shape[0]!;
      for (const [a, b] of [[0, 1], [1, Math.min(3, n)], [Math.floor(n / 2), n], [n, n], [0, n]] as [number, number][]) {
        const r = await readNpy(path.join(FIX, name), { rows: [a, b] });
        assert.deepEqual(r.shape, [b - a, ...e.shape.slice(1)]);
        assert.equal(hexOf(r), rowsHex(e, a, b), `rows ${a}..${b}`);
      }
    });
  }
  it('streams many blocks through one handle (openNpy)', async () => {
    const e = EXPECTED['i4_rows_F.npy']!;
    const f = await openNpy(path.join(FIX, 'i4_rows_F.npy'));
    try {
      let hex = '';
      for (let a = 0; a < 40; a += 7) hex += hexOf(await f.readRows(a, Math.min(a + 7, 40)));
      assert.equal(hex, e.hex);
      // reading into a reused buffer gives the same values and shares its memory
      const buf = new Int32Array(7 * 6 + 5);
      const r = await f.readRows(7, 14, buf);
      assert.equal(r.data.buffer, buf.buffer);
      assert.equal(hexOf(r), e.hex.slice(7 * 24 * 2, 14 * 24 * 2));
      await assert.rejects(f.readRows(0, 8, buf), RangeError);
      await assert.rejects(f.readRows(0, 1, new Float32Array(6)), RangeError);
      await assert.rejects(f.readRows(35, 41), RangeError);
      await assert.rejects(f.readRows(3, 2), RangeError);
    } finally {
      await f.close();
    }
  });
  it('reads C-order blocks into a reused buffer (byte-swapped too)', async () => {
    for (const name of ['i4_rows_C.npy', 'f4_be_C_3d.npy']) {
      const e = EXPECTED[name]!;
      const f = await openNpy(path.join(FIX, name));
      try {
        const buf = e.dtype === 'int32' ? new Int32Array(1000) : new Float32Array(1000);
        const r = await f.readRows(1, 2, buf);
        assert.equal(r.data.buffer, buf.buffer);
        assert.equal(hexOf(r), rowsHex(e, 1, 2));
      } finally {
        await f.close();
      }
    }
  });
  it('reads only the requested range: works while the rest of the file is unreadable garbage', async () => {
    // Replace rows outside [10, 12) with garbage in a copy; a range read must not notice.
    const src = fs.readFileSync(path.join(FIX, 'i4_rows_C.npy'));
    const h = await readNpyHeader(path.join(FIX, 'i4_rows_C.npy'));
    const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'npy-')), 'x.npy');
    const mod = Buffer.from(src);
    const rowBytes = 6 * 4;
    mod.fill(0xee, h.dataOffset, h.dataOffset + 10 * rowBytes);
    mod.fill(0xee, h.dataOffset + 12 * rowBytes);
    fs.writeFileSync(tmp, mod);
    const r = await readNpy(tmp, { rows: [10, 12] });
    assert.equal(hexOf(r), rowsHex(EXPECTED['i4_rows_C.npy']!, 10, 12));
  });
});

describe('npy: refused and corrupt files', () => {
  const cases: [string, RegExp][] = [
    ['bad_object.npy', /object array.*pickle.*np\.save\(path, arr\.astype\(np\.float32\)\)/],
    ['bad_structured.npy', /structured.*Re-save it as a numeric array/],
    ['bad_unicode.npy', /string array/],
    ['bad_bytes.npy', /string array/],
    ['bad_datetime.npy', /datetime/],
    ['bad_pickle.npy', /Python pickle/],
    ['bad_truncated_data.npy', /truncated/],
    ['bad_truncated_header.npy', /truncated/],
    ['bad_extra_bytes.npy', /extra bytes/],
    ['bad_magic.npy', /magic/],
    ['bad_empty.npy', /truncated/],
    ['does_not_exist.npy', /ENOENT/],
  ];
  for (const [name, re] of cases) {
    it(`${name}: FileFormatError naming the file`, async () => {
      const file = path.join(FIX, name);
      await assert.rejects(readNpy(file), (e: unknown) => {
        assert.ok(e instanceof FileFormatError, String(e));
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, re);
        return true;
      });
      if (fs.existsSync(file)) {
        assert.throws(() => decodeNpy(fs.readFileSync(file), name), (e: unknown) => e instanceof FileFormatError && e.message.startsWith(name));
      }
    });
  }
});

/** Deterministic test arrays of every dtype. */
function sample(dtype: DType, shape: number[]): NDArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = allocTyped(dtype, n);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 0xff;
  if (dtype === 'bool') for (let i = 0; i < n; i++) bytes[i] = i % 3 === 0 ? 1 : 0;
  return { dtype, shape, data };
}
const NPY_DTYPES: DType[] = ['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64',
  'float16', 'float32', 'float64', 'complex64', 'complex128'];

describe('npy: round trips', () => {
  it('encodeNpy -> decodeNpy for every dtype, byte order, C/F order, version and shape', () => {
    for (const dtype of NPY_DTYPES) {
      for (const shape of [[], [0], [5], [3, 4], [2, 3, 4], [2, 0, 3]]) {
        const a = sample(dtype, shape);
        for (const fortranOrder of [false, true]) {
          for (const bigEndian of [false, true]) {
            for (const version of [1, 2, 3] as const) {
              const bytes = encodeNpy(a, { fortranOrder, bigEndian, version });
              assert.equal(bytes[6], version);
              const b = decodeNpy(bytes);
              assert.equal(b.dtype, dtype);
              assert.deepEqual(b.shape, shape);
              assert.equal(hexOf(b), hexOf(a), `${dtype} [${shape}] F=${fortranOrder} BE=${bigEndian} v${version}`);
            }
          }
        }
      }
    }
  });
  it('writeNpy is atomic and readable by readNpy (rows too)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npy-'));
    const a = sample('float32', [9, 4, 2]);
    const file = path.join(dir, 'sub', 'a.npy');
    await writeNpy(file, a, { fortranOrder: true, bigEndian: true });
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['a.npy']);
    assert.equal(hexOf(await readNpy(file)), hexOf(a));
    assert.equal(hexOf(await readNpy(file, { rows: [2, 5] })), hexOf(a).slice(2 * 32 * 2, 5 * 32 * 2));
    // a failing write leaves the old file in place
    await assert.rejects(writeNpy(file, { dtype: 'bfloat16', shape: [1], data: new Uint16Array(1) }), FileFormatError);
    assert.equal(hexOf(await readNpy(file)), hexOf(a));
  });
  (hasNumpy ? it : it.skip)('numpy reads what writeNpy wrote, bit for bit (live /usr/bin/python3)', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npy-py-'));
    const want: Record<string, string> = {};
    let k = 0;
    for (const dtype of NPY_DTYPES) {
      for (const [fortranOrder, bigEndian, version] of [[false, false, 1], [true, true, 2], [true, false, 3], [false, true, 1]] as const) {
        const a = sample(dtype, [3, 2, 4]);
        const f = path.join(dir, `${k++}.npy`);
        await writeNpy(f, a, { fortranOrder, bigEndian, version });
        want[f] = hexOf(a);
      }
    }
    const py = `
import sys, json, numpy as np
out = {}
for f in json.load(sys.stdin):
    a = np.load(f, allow_pickle=False)
    out[f] = np.ascontiguousarray(a.astype(a.dtype.newbyteorder('<'))).tobytes().hex()
print(json.dumps(out))`;
    const r = spawnSync('/usr/bin/python3', ['-c', py], { input: JSON.stringify(Object.keys(want)), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), want);
  });
});
