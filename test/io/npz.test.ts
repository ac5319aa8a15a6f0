import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readNpz, writeNpz, FileFormatError, NDArray, DType } from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'npy');
interface Expected { dtype: DType; shape: number[]; hex: string }
const EXPECTED: Record<string, Expected> = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')).arrays;
const hexOf = (a: NDArray) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).toString('hex');
const hasNumpy = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

const MEMBERS = Object.keys(EXPECTED).filter((k) => k.startsWith('npz:')).map((k) => k.slice(4));

describe('npz', () => {
  for (const f of ['stored.npz', 'compressed.npz']) {
    it(`reads numpy's ${f} bit for bit (zip64 local headers)`, async () => {
      const z = await readNpz(path.join(FIX, f));
      assert.deepEqual(Object.keys(z).sort(), [...MEMBERS].sort());
      for (const k of MEMBERS) {
        const e = EXPECTED[`npz:${k}`]!;
        assert.equal(z[k]!.dtype, e.dtype, k);
        assert.deepEqual(z[k]!.shape, e.shape, k);
        assert.equal(hexOf(z[k]!), e.hex, k);
      }
    });
  }
  it('refuses an object member with a FileFormatError naming the archive and member', async () => {
    const f = path.join(FIX, 'bad_object.npz');
    await assert.rejects(readNpz(f), (e: unknown) =>
      e instanceof FileFormatError && e.message.includes(f) && /obj\.npy/.test(e.message) && /pickle/.test(e.message));
  });
  it('reports truncated, non-zip and missing files', async () => {
    for (const [name, re] of [['bad_truncated.npz', /truncated/], ['f4_le_C_2d.npy', /no zip signature/], ['nope.npz', /ENOENT/]] as const) {
      const f = path.join(FIX, name);
      await assert.rejects(readNpz(f), (e: unknown) => e instanceof FileFormatError && e.message.includes(f) && re.test(e.message));
    }
  });
  it('detects corrupt member data by CRC', async () => {
    const buf = fs.readFileSync(path.join(FIX, 'stored.npz'));
    const mod = Buffer.from(buf);
    mod[200] ^= 0xff; // inside the first member's data
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'npz-')), 'c.npz');
    fs.writeFileSync(f, mod);
    await assert.rejects(readNpz(f), (e: unknown) => e instanceof FileFormatError && /CRC|magic|header/.test(e.message));
  });

  const arrays = (): Record<string, NDArray> => ({
    a: { dtype: 'float32', shape: [2, 3], data: new Float32Array([1, -0, NaN, Infinity, 1e-40, 3.5]) },
    b: { dtype: 'int64', shape: [3], data: new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]) },
    flags: { dtype: 'bool', shape: [4], data: new Uint8Array([1, 0, 0, 1]) },
    'nested/ünï': { dtype: 'float16', shape: [], data: new Uint16Array([0x3c00]) },
    big: { dtype: 'float64', shape: [100, 50], data: new Float64Array(5000).map((_, i) => Math.sin(i)) },
  });
  for (const [compress, zip64] of [[false, false], [true, false], [false, true], [true, true]]) {
    it(`round trip writeNpz -> readNpz (compress=${compress}, zip64=${zip64})`, async () => {
      const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'npz-')), 'r.npz');
      const a = arrays();
      await writeNpz(f, a, { compress, zip64 });
      const b = await readNpz(f);
      assert.deepEqual(Object.keys(b), Object.keys(a));
      for (const k of Object.keys(a)) {
        assert.equal(b[k]!.dtype, a[k]!.dtype);
        assert.deepEqual(b[k]!.shape, a[k]!.shape);
        assert.equal(hexOf(b[k]!), hexOf(a[k]!));
      }
      if (compress) assert.ok(fs.statSync(f).size < 40000 + 2000);
      if (hasNumpy) {
        const py = `
import sys, json, numpy as np
z = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps({k: np.ascontiguousarray(z[k]).tobytes().hex() for k in z.files}))`;
        const r = spawnSync('/usr/bin/python3', ['-c', py, f], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const got = JSON.parse(r.stdout) as Record<string, string>;
        for (const k of Object.keys(a)) assert.equal(got[k], hexOf(a[k]!), `numpy reads ${k}`);
      }
    });
  }
  it('writes nothing when an array cannot be stored (atomic)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npz-'));
    const f = path.join(dir, 'x.npz');
    await assert.rejects(writeNpz(f, { ok: arrays().a!, bad: { dtype: 'bfloat16', shape: [1], data: new Uint16Array(1) } }), FileFormatError);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
