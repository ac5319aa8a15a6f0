import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileFormatError, type NDArray, listHdf5, openHdf5, readHdf5, readHdf5Attrs, readHdf5Strings, writeHdf5 } from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'hdf5');
const H5 = path.join(FIX, 'mixed.h5');

interface Index {
  datasets: Record<string, { dtype: string; shape: number[]; chunks: number[] | null }>;
  strings: Record<string, string[]>;
  attrs: Record<string, Record<string, unknown>>;
  entries: string[];
}
const index = JSON.parse(fs.readFileSync(path.join(FIX, 'index.json'), 'utf8')) as Index;

function binFor(name: string): Buffer {
  const file = name.startsWith('numeric/') ? `numeric.${name.slice(8)}.bin` : `${name.replace('/', '.')}.bin`;
  return fs.readFileSync(path.join(FIX, file));
}
function bytesOf(a: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-hdf5-'));
}
function python(code: string): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8' });
  if (r.error) return null;
  if (r.status !== 0) {
    if (/ModuleNotFoundError/.test(r.stderr)) return null;
    throw new Error(`python failed: ${r.stderr}`);
  }
  return r.stdout;
}
const hasH5py = python('import h5py') !== null;

describe('io/hdf5: parity with h5py fixtures', () => {
  before(async function () {
    this.timeout(60000); // the first call compiles h5wasm's WebAssembly (a few seconds on 2 cores)
    await listHdf5(H5);
  });

  it('lists every group and dataset with kind, shape, dtype and attribute names', async () => {
    const entries = await listHdf5(H5);
    assert.deepEqual(entries.map((e) => e.path), index.entries);
    for (const e of entries) {
      const key = e.path.slice(1);
      const d = index.datasets[key];
      if (d) {
        assert.equal(e.kind, 'dataset', e.path);
        assert.deepEqual(e.shape, d.shape, e.path);
        assert.equal(e.dtype, d.dtype, e.path);
      } else if (index.strings[key]) {
        assert.equal(e.dtype, 'string');
      } else {
        assert.equal(e.kind, 'group', e.path);
      }
      assert.deepEqual(e.attrs.sort(), Object.keys(index.attrs[e.path] ?? {}).sort(), e.path);
    }
  });

  for (const [name, d] of Object.entries(index.datasets)) {
    it(`${name} (${d.dtype}${d.chunks ? ', chunked+gzip' : ''}) is bit-identical to h5py`, async () => {
      const a = await readHdf5(H5, name);
      assert.equal(a.dtype, d.dtype);
      assert.deepEqual(a.shape, d.shape);
      assert.ok(bytesOf(a.data).equals(binFor(name)), 'bytes differ');
    });
  }

  it('slices read only the requested block (chunked, gzip) and null means the whole axis', async () => {
    const full = await readHdf5(H5, 'betas/session01');
    const s = await readHdf5(H5, '/betas/session01', { slice: [[5, 17], [100, 350]] });
    assert.deepEqual(s.shape, [12, 250]);
    const f = full.data as Int16Array;
    const want: number[] = [];
    for (let r = 5; r < 17; r++) for (let c = 100; c < 350; c++) want.push(f[r * 1000 + c]!);
    assert.deepEqual(Array.from(s.data as Int16Array), want);
    const rows = await readHdf5(H5, 'betas/session01', { slice: [[39, 40]] });
    assert.deepEqual(rows.shape, [1, 1000]);
    assert.deepEqual(Array.from(rows.data as Int16Array), Array.from(f.subarray(39000)));
    const cols = await readHdf5(H5, 'betas/session01', { slice: [null, [998, 1000]] });
    assert.deepEqual(cols.shape, [40, 2]);
    const empty = await readHdf5(H5, 'betas/session01', { slice: [[3, 3]] });
    assert.deepEqual(empty.shape, [0, 1000]);
  });

  it('reads variable- and fixed-length string datasets', async () => {
    for (const [name, want] of Object.entries(index.strings)) assert.deepEqual(await readHdf5Strings(H5, name), want);
  });

  it('reads scalar, array and string attributes on the root, a group and a dataset', async () => {
    for (const [obj, want] of Object.entries(index.attrs)) {
      assert.deepEqual(await readHdf5Attrs(H5, obj), want, obj);
    }
  });

  it('a handle reads many slices from one open file', async () => {
    const h = await openHdf5(H5);
    try {
      assert.deepEqual(h.info('betas/session01'), { shape: [40, 1000], dtype: 'int16', chunks: [8, 250] });
      let total = 0;
      for (let r = 0; r < 40; r += 8) total += h.read('betas/session01', [[r, r + 8]]).shape[0]!;
      assert.equal(total, 40);
      assert.deepEqual(h.attrs('betas/session01'), { scale: 300 });
    } finally {
      h.close();
    }
  });
});

describe('io/hdf5: bad input', () => {
  let dir: string;
  before(() => { dir = tmpDir(); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a missing file names the path', async () => {
    await assert.rejects(readHdf5(path.join(dir, 'nope.h5'), 'x'), (e: Error) => e instanceof FileFormatError && /nope\.h5/.test(e.message) && /no such file/.test(e.message));
  });

  it('a file without the HDF5 signature is named and refused', async () => {
    const f = path.join(dir, 'fake.h5');
    fs.writeFileSync(f, 'this is not hdf5 at all, just text'.repeat(40));
    await assert.rejects(listHdf5(f), (e: Error) => e instanceof FileFormatError && /fake\.h5/.test(e.message) && /HDF5 signature/.test(e.message));
  });

  it('a missing dataset lists the datasets that exist', async () => {
    await assert.rejects(readHdf5(H5, 'betas/session99'), (e: Error) => e instanceof FileFormatError && /session99/.test(e.message) && /\/betas\/session01/.test(e.message) && /\/numeric\/int8/.test(e.message));
    await assert.rejects(readHdf5(H5, 'numeric'), (e: Error) => e instanceof FileFormatError && /group there/.test(e.message));
  });

  it('an out-of-range slice says the shape', async () => {
    await assert.rejects(readHdf5(H5, 'betas/session01', { slice: [[38, 45]] }), /out of range .*shape \[40, 1000\]/);
    await assert.rejects(readHdf5(H5, 'betas/session01', { slice: [null, null, [0, 1]] }), /3 axes .*shape \[40, 1000\]/);
    await assert.rejects(readHdf5(H5, 'betas/session01', { slice: [[-1, 2]] }), /out of range/);
  });

  it('type mismatches say what the dataset holds', async () => {
    await assert.rejects(readHdf5(H5, 'labels'), (e: Error) => e instanceof FileFormatError && /string dataset/.test(e.message) && /readHdf5Strings/.test(e.message));
    await assert.rejects(readHdf5Strings(H5, 'flags'), (e: Error) => e instanceof FileFormatError && /bool dataset/.test(e.message));
    await assert.rejects(readHdf5Attrs(H5, '/nothing'), (e: Error) => e instanceof FileFormatError && /no such object/.test(e.message));
  });

  it('float16 cannot be written (h5wasm limit) and nothing is left behind', async () => {
    const target = path.join(dir, 'half.h5');
    await assert.rejects(writeHdf5(target, { datasets: { h: { dtype: 'float16', shape: [2], data: new Uint16Array(2) } } }), /cannot write float16/);
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('half')), []);
  });
});

describe('io/hdf5: writing', () => {
  let dir: string;
  before(() => { dir = tmpDir(); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const N = 37, V = 300;
  const full = Float32Array.from({ length: N * V }, (_, i) => Math.sin(i * 0.37) * 100);

  it('streams rows into a pre-created gzip dataset; the target appears only on close()', async () => {
    const target = path.join(dir, 'stream.h5');
    const h = await openHdf5(target, 'w');
    h.createDataset('fmri/lh', { shape: [N, V], dtype: 'float32', compression: 4, chunks: [8, V] });
    for (let r = 0; r < N; r += 10) {
      const k = Math.min(10, N - r);
      h.writeRows('fmri/lh', r, { dtype: 'float32', shape: [k, V], data: full.subarray(r * V, (r + k) * V) });
    }
    h.setAttr('fmri/lh', 'subject', 'subj01');
    h.setAttr('fmri/lh', 'scale', 1 / 300);
    h.setAttr('/', 'n_images', N);
    h.setAttr('/', 'hemis', ['lh', 'rh']);
    h.setAttr('/', 'origin', [0.5, -1.25, 2]);
    assert.throws(() => h.writeRows('fmri/lh', N - 1, { dtype: 'float32', shape: [2, V], data: new Float32Array(2 * V) }), /rows \[36, 38\) out of range .*\[37, 300\]/);
    assert.throws(() => h.writeRows('fmri/lh', 0, { dtype: 'float64', shape: [1, V], data: new Float64Array(V) }), /dataset is float32, array is float64/);
    assert.ok(!fs.existsSync(target), 'target exists before close()');
    h.close();
    assert.ok(fs.existsSync(target));
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.')), []);
    const back = await readHdf5(target, 'fmri/lh');
    assert.deepEqual(back.shape, [N, V]);
    assert.ok(bytesOf(back.data).equals(bytesOf(full)));
    assert.deepEqual(await readHdf5Attrs(target, 'fmri/lh'), { subject: 'subj01', scale: 1 / 300 });
    assert.deepEqual(await readHdf5Attrs(target), { n_images: N, hemis: ['lh', 'rh'], origin: [0.5, -1.25, 2] });
    const h2 = await openHdf5(target);
    assert.deepEqual(h2.info('fmri/lh').chunks, [8, V]);
    h2.close();
  });

  const arrays: Record<string, NDArray> = {
    'a/int8': { dtype: 'int8', shape: [3, 2], data: Int8Array.from([-128, -1, 0, 1, 2, 127]) },
    'a/uint8': { dtype: 'uint8', shape: [6], data: Uint8Array.from([0, 1, 2, 3, 254, 255]) },
    'a/int16': { dtype: 'int16', shape: [2, 3], data: Int16Array.from([-32768, -300, 0, 300, 1, 32767]) },
    'a/uint16': { dtype: 'uint16', shape: [2], data: Uint16Array.from([0, 65535]) },
    'a/int32': { dtype: 'int32', shape: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
    'a/uint32': { dtype: 'uint32', shape: [2], data: Uint32Array.from([0, 2 ** 32 - 1]) },
    'a/int64': { dtype: 'int64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n]) },
    'a/uint64': { dtype: 'uint64', shape: [2], data: BigUint64Array.from([0n, 2n ** 64n - 1n]) },
    'b/float32': { dtype: 'float32', shape: [2, 2, 2], data: Float32Array.from([0.1, -2.5, 1e30, -0, Infinity, NaN, 3, 4]) },
    'b/float64': { dtype: 'float64', shape: [3], data: Float64Array.from([Math.PI, -1e-300, 1e300]) },
  };

  it('writeHdf5 writes groups, every integer and float dtype, strings, compression and attributes', async () => {
    const target = path.join(dir, 'all.h5');
    await writeHdf5(target, {
      datasets: {
        ...arrays,
        mask: { dtype: 'bool', shape: [4], data: Uint8Array.from([1, 0, 0, 1]) },
        labels: ['face', 'body', 'ünïcode'],
        'c/gz': { data: { dtype: 'int16', shape: [50, 40], data: Int16Array.from({ length: 2000 }, (_, i) => i - 1000) }, compression: 9, attrs: { unit: 'beta' } },
      },
      attrs: { title: 'round trip', version: 2 },
    });
    for (const [name, a] of Object.entries(arrays)) {
      const b = await readHdf5(target, name);
      assert.equal(b.dtype, a.dtype, name);
      assert.deepEqual(b.shape, a.shape, name);
      assert.ok(bytesOf(b.data).equals(bytesOf(a.data)), name);
    }
    const mask = await readHdf5(target, 'mask');
    assert.equal(mask.dtype, 'uint8'); // documented: bool is stored as uint8
    assert.deepEqual(Array.from(mask.data as Uint8Array), [1, 0, 0, 1]);
    assert.deepEqual(await readHdf5Strings(target, 'labels'), ['face', 'body', 'ünïcode']);
    assert.deepEqual(await readHdf5Attrs(target, 'c/gz'), { unit: 'beta' });
    assert.deepEqual(await readHdf5Attrs(target), { title: 'round trip', version: 2 });
    assert.deepEqual(Array.from((await readHdf5(target, 'c/gz', { slice: [[10, 11], [0, 3]] })).data as Int16Array), [-600, -599, -598]);
  });

  it("mode 'a' adds to an existing file in place; abort() of a new file leaves nothing", async () => {
    const target = path.join(dir, 'append.h5');
    await writeHdf5(target, { datasets: { x: arrays['a/int16']! } });
    const h = await openHdf5(target, 'a');
    h.writeDataset('y/z', arrays['b/float64']!);
    h.setAttr('x', 'note', 'added');
    h.close();
    assert.deepEqual((await listHdf5(target)).map((e) => e.path), ['/x', '/y', '/y/z']);
    assert.deepEqual(await readHdf5Attrs(target, 'x'), { note: 'added' });
    const ro = await openHdf5(target, 'r');
    assert.throws(() => ro.setAttr('x', 'k', 1), /read-only/);
    ro.close();
    const gone = path.join(dir, 'gone.h5');
    const w = await openHdf5(gone, 'w');
    w.writeDataset('x', arrays['a/int8']!);
    w.abort();
    assert.ok(!fs.existsSync(gone));
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.')), []);
  });

  it('h5py reads our files identically (live cross-check)', async function () {
    if (!hasH5py) this.skip();
    const target = path.join(dir, 'all.h5');
    const stream = path.join(dir, 'stream.h5');
    const out = python(`
import json, h5py, numpy as np
res = {}
with h5py.File(${JSON.stringify(target)}, 'r') as f:
    for k in ${JSON.stringify(Object.keys(arrays))}:
        d = f[k][()]
        res[k] = [str(d.dtype), list(d.shape), d.astype(d.dtype.newbyteorder('<')).tobytes().hex()]
    res['labels'] = [s.decode() if isinstance(s, bytes) else s for s in f['labels'][()]]
    res['attrs'] = {k: (v.decode() if isinstance(v, bytes) else (v.tolist() if hasattr(v, 'tolist') else v)) for k, v in f.attrs.items()}
    res['gz'] = [f['c/gz'].compression, f['c/gz'].compression_opts, int(f['c/gz'][()].astype(np.int64).sum())]
with h5py.File(${JSON.stringify(stream)}, 'r') as f:
    d = f['fmri/lh']
    res['stream'] = [list(d.shape), str(d.dtype), list(d.chunks), d.compression, d[()].tobytes().hex(), d.attrs['subject'] if isinstance(d.attrs['subject'], str) else d.attrs['subject'].decode(), float(d.attrs['scale'])]
print(json.dumps(res))
`)!;
    const r = JSON.parse(out) as Record<string, unknown>;
    for (const [name, a] of Object.entries(arrays)) {
      assert.deepEqual(r[name], [a.dtype, a.shape, bytesOf(a.data).toString('hex')], name);
    }
    assert.deepEqual(r['labels'], ['face', 'body', 'ünïcode']);
    assert.deepEqual(r['attrs'], { title: 'round trip', version: 2 });
    assert.deepEqual(r['gz'], ['gzip', 9, Array.from({ length: 2000 }, (_, i) => i - 1000).reduce((x, y) => x + y, 0)]);
    assert.deepEqual(r['stream'], [[N, V], 'float32', [8, V], 'gzip', bytesOf(full).toString('hex'), 'subj01', 1 / 300]);
  });
});
