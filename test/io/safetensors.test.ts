import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readSafetensors, readSafetensorsHeader, writeSafetensors, FileFormatError, NDArray, DType } from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'safetensors');
interface Expected { dtype: DType; shape: number[]; hex: string }
const EXP = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as { arrays: Record<string, Expected>; metadata: Record<string, string> };
const hexOf = (a: NDArray) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).toString('hex');
const hasNumpy = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'st-'));

describe('safetensors', () => {
  it('reads every dtype of a spec-written file bit for bit, with metadata', async () => {
    const { tensors, metadata } = await readSafetensors(path.join(FIX, 'all.safetensors'));
    assert.deepEqual(metadata, EXP.metadata);
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(EXP.arrays).sort());
    for (const [name, e] of Object.entries(EXP.arrays)) {
      assert.equal(tensors[name]!.dtype, e.dtype, name);
      assert.deepEqual(tensors[name]!.shape, e.shape, name);
      assert.equal(hexOf(tensors[name]!), e.hex, name);
    }
    assert.equal((tensors.bf16!.data as Uint16Array)[4], 0x3f80); // 1.0
    assert.equal((tensors.i64!.data as BigInt64Array)[0], -(2n ** 63n));
  });
  it('reads an unpadded header without metadata', async () => {
    const { tensors, metadata } = await readSafetensors(path.join(FIX, 'nometa_unpadded.safetensors'));
    assert.deepEqual(metadata, {});
    assert.equal(hexOf(tensors.f32!), EXP.arrays.f32!.hex);
  });
  it('reads the header alone', async () => {
    const h = await readSafetensorsHeader(path.join(FIX, 'all.safetensors'));
    assert.deepEqual(h.tensors['layer.0.weight']!.shape, [8, 5]);
    assert.equal(h.tensors.bf16!.dtype, 'BF16');
    assert.equal(h.dataStart % 8, 0);
  });
  it('reads only the requested tensors\' byte ranges (the rest may be garbage)', async () => {
    const src = path.join(FIX, 'all.safetensors');
    const h = await readSafetensorsHeader(src);
    const buf = Buffer.from(fs.readFileSync(src));
    const keep = h.tensors['layer.0.weight']!.dataOffsets;
    buf.fill(0xab, h.dataStart, h.dataStart + keep[0]);
    buf.fill(0xab, h.dataStart + keep[1]);
    const f = path.join(tmpdir(), 'g.safetensors');
    fs.writeFileSync(f, buf);
    const { tensors } = await readSafetensors(f, { names: ['layer.0.weight'] });
    assert.deepEqual(Object.keys(tensors), ['layer.0.weight']);
    assert.equal(hexOf(tensors['layer.0.weight']!), EXP.arrays['layer.0.weight']!.hex);
    await assert.rejects(readSafetensors(f, { names: ['nope'] }), /a tensor named "nope"/);
  });
  const bad: [string, RegExp][] = [
    ['bad_overlap.safetensors', /overlapping/],
    ['bad_out_of_range.safetensors', /out of range/],
    ['bad_dtype.safetensors', /dtype F8_E4M3/],
    ['bad_shape.safetensors', /bytes for shape \[5, 5\]/],
    ['bad_truncated.safetensors', /out of range/],
    ['bad_truncated_header.safetensors', /truncated/],
    ['bad_json.safetensors', /invalid JSON/],
    ['bad_huge_header.safetensors', /header length/],
    ['missing.safetensors', /ENOENT/],
  ];
  for (const [name, re] of bad) {
    it(`${name}: FileFormatError naming the file`, async () => {
      const f = path.join(FIX, name);
      await assert.rejects(readSafetensors(f), (e: unknown) => {
        assert.ok(e instanceof FileFormatError, String(e));
        assert.ok(e.message.includes(f), e.message);
        assert.match(e.message, re);
        return true;
      });
    });
  }

  it('round trip: writeSafetensors -> readSafetensors, header padded to 8, aligned data, atomic', async () => {
    const tensors: Record<string, NDArray> = {
      w: { dtype: 'float32', shape: [3, 2], data: new Float32Array([1, 2, NaN, -0, Infinity, 6]) },
      h: { dtype: 'float16', shape: [3], data: new Uint16Array([0x3c00, 0x0001, 0xfc00]) },
      b: { dtype: 'bfloat16', shape: [1, 2], data: new Uint16Array([0x3f80, 0x7fc0]) },
      m: { dtype: 'bool', shape: [5], data: new Uint8Array([1, 0, 1, 1, 0]) },
      d: { dtype: 'float64', shape: [], data: new Float64Array([Math.PI]) },
      u: { dtype: 'uint64', shape: [2], data: new BigUint64Array([0n, 2n ** 64n - 1n]) },
      z: { dtype: 'int32', shape: [0, 3], data: new Int32Array(0) },
      i8: { dtype: 'int8', shape: [2], data: new Int8Array([-128, 127]) },
    };
    const dir = tmpdir();
    const f = path.join(dir, 'w.safetensors');
    await writeSafetensors(f, tensors, { framework: 'brainnet', epoch: '3' });
    assert.deepEqual(fs.readdirSync(dir), ['w.safetensors']);
    const raw = fs.readFileSync(f);
    const n = Number(raw.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const h = await readSafetensorsHeader(f);
    for (const t of Object.values(h.tensors)) {
      const item = { F64: 8, U64: 8, F32: 4, I32: 4 }[t.dtype as 'F64'] ?? 1;
      assert.equal(t.dataOffsets[0] % item, 0, 'aligned');
    }
    const back = await readSafetensors(f);
    assert.deepEqual(back.metadata, { framework: 'brainnet', epoch: '3' });
    for (const [k, t] of Object.entries(tensors)) {
      assert.equal(back.tensors[k]!.dtype, t.dtype);
      assert.deepEqual(back.tensors[k]!.shape, t.shape);
      assert.equal(hexOf(back.tensors[k]!), hexOf(t), k);
    }
    // the spec's own reading, in Python with numpy (no safetensors package needed)
    if (hasNumpy) {
      const py = `
import sys, json, struct, numpy as np
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
data = b[8 + n:]
dt = {'F32': '<f4', 'F16': '<f2', 'BF16': '<u2', 'BOOL': '?', 'F64': '<f8', 'U64': '<u8', 'I32': '<i4', 'I8': 'i1'}
out = {'__metadata__': h.pop('__metadata__')}
end = 0
for k, v in sorted(h.items(), key=lambda kv: kv[1]['data_offsets'][0]):
    s, e = v['data_offsets']
    assert s == end, 'contiguous, no holes'
    end = e
    a = np.frombuffer(data[s:e], dtype=dt[v['dtype']]).reshape(v['shape'])
    out[k] = a.tobytes().hex()
assert end == len(data)
print(json.dumps(out))`;
      const r = spawnSync('/usr/bin/python3', ['-c', py, f], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const got = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.deepEqual(got.__metadata__, { framework: 'brainnet', epoch: '3' });
      for (const [k, t] of Object.entries(tensors)) assert.equal(got[k], hexOf(t), k);
    }
    // a failing write leaves the old file untouched
    await assert.rejects(writeSafetensors(f, { c: { dtype: 'complex64', shape: [1], data: new Float32Array(2) } }), FileFormatError);
    assert.deepEqual(fs.readFileSync(f), raw);
    assert.deepEqual(fs.readdirSync(dir), ['w.safetensors']);
  });
});
