import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type GiftiImage, type NDArray, FileFormatError, readGifti, readGiftiData, readGiftiSurface, writeGifti, writeGiftiSurface,
} from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'surf');
const SCRIPT = path.join(__dirname, '..', '..', 'data-prep', 'fixtures', 'make_surf_mat_fixtures.py');

interface BinRef { dtype: string; shape: number[]; bin: string }
interface DarrayExp { intent: string; meta: Record<string, string>; data: BinRef; coordsys?: { dataSpace: string; transformedSpace: string; matrix: number[] } }
interface GiftiExp { meta: Record<string, string>; labelTable?: { key: number; label: string; rgba: number[] }[]; darrays: DarrayExp[] }

const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as { gifti: Record<string, GiftiExp> };

/** Compares an NDArray with a .bin reference bit for bit (dtype, shape and bytes). */
function assertSameArray(a: NDArray, ref: BinRef, dir: string, what: string): void {
  assert.equal(a.dtype, ref.dtype, `${what}: dtype`);
  assert.deepEqual(a.shape, ref.shape, `${what}: shape`);
  const want = fs.readFileSync(path.join(dir, ref.bin));
  const got = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  assert.ok(got.equals(want), `${what}: bytes differ`);
}

function assertMatches(img: GiftiImage, exp: GiftiExp, dir: string, file: string): void {
  assert.deepEqual(img.meta, exp.meta, `${file}: meta`);
  if (exp.labelTable) {
    assert.deepEqual(img.labelTable?.map((l) => ({ key: l.key, label: l.label, rgba: [...l.rgba] })), exp.labelTable);
  }
  assert.equal(img.darrays.length, exp.darrays.length);
  exp.darrays.forEach((e, i) => {
    const d = img.darrays[i]!;
    assert.equal(d.intent, e.intent);
    assert.deepEqual(d.meta, e.meta);
    assertSameArray(d.data, e.data, dir, `${file} array ${i}`);
    if (e.coordsys) {
      assert.equal(d.coordsys?.dataSpace, e.coordsys.dataSpace);
      assert.equal(d.coordsys?.transformedSpace, e.coordsys.transformedSpace);
      assert.deepEqual(Array.from(d.coordsys!.matrix), e.coordsys.matrix);
    }
  });
}

function hasNibabel(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import nibabel, scipy'], { stdio: 'ignore' }).status === 0;
}

/** Runs the fixture script's peer (nibabel / scipy) on `file`, returning its expected tree and the folder of its .bin files. */
function peerView<T>(kind: 'gifti' | 'mgh' | 'mat', file: string): { exp: T; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-'));
  const r = spawnSync('/usr/bin/python3', [SCRIPT, '--live', kind, file, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { exp: JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as T, dir };
}

describe('io/gifti', () => {
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gifti-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const file of Object.keys(expected.gifti)) {
    it(`reads ${file} exactly as nibabel does`, async () => {
      assertMatches(await readGifti(path.join(FIX, file)), expected.gifti[file]!, FIX, file);
    });
  }

  it('reads a surface as vertices [N, 3] and faces [F, 3] from every encoding', async () => {
    const ref = expected.gifti['surf_b64.surf.gii']!;
    for (const enc of ['ascii', 'b64', 'gzb64']) {
      const s = await readGiftiSurface(path.join(FIX, `surf_${enc}.surf.gii`));
      assert.equal(s.vertices.length, 42 * 3);
      assert.equal(s.faces.length, 80 * 3);
      assert.ok(s.faces instanceof Int32Array && s.vertices instanceof Float32Array);
      if (enc !== 'ascii') {
        assert.ok(Buffer.from(s.faces.buffer).equals(fs.readFileSync(path.join(FIX, ref.darrays[1]!.data.bin))));
      }
    }
  });

  it('readGiftiData stacks K arrays as [K, N] and returns a single array as is', async () => {
    const func = await readGiftiData(path.join(FIX, 'func.func.gii'));
    assert.deepEqual(func.shape, [3, 42]);
    const d = func.data as Float32Array;
    const t0 = (await readGifti(path.join(FIX, 'func.func.gii'))).darrays[2]!.data.data as Float32Array;
    assert.deepEqual(Array.from(d.subarray(84)), Array.from(t0));
    const lab = await readGiftiData(path.join(FIX, 'labels.label.gii'));
    assert.equal(lab.dtype, 'int32');
    assert.deepEqual(lab.shape, [42]);
  });

  it('round-trips surfaces and images through writeGifti in every encoding', async () => {
    const src = await readGifti(path.join(FIX, 'surf_gzb64.surf.gii'));
    const s = await readGiftiSurface(path.join(FIX, 'surf_gzb64.surf.gii'));
    for (const encoding of ['ASCII', 'Base64Binary', 'GZipBase64Binary'] as const) {
      const f = path.join(tmp, `s_${encoding}.surf.gii`);
      await writeGiftiSurface(f, s, { encoding });
      const back = await readGiftiSurface(f);
      assert.deepEqual(back.vertices, s.vertices);
      assert.deepEqual(back.faces, s.faces);
      const g = path.join(tmp, `img_${encoding}.gii`);
      await writeGifti(g, src, { encoding });
      const img = await readGifti(g);
      assert.deepEqual(img.meta, src.meta);
      assert.deepEqual(img.darrays.map((d) => d.data), src.darrays.map((d) => d.data));
      assert.deepEqual(img.darrays[0]!.coordsys, src.darrays[0]!.coordsys);
    }
    const img: GiftiImage = {
      meta: { weird: 'x ]]> y <&>' },
      labelTable: [{ key: 0, label: '???', rgba: [0, 0, 0, 0] }, { key: 7, label: 'FFA & co', rgba: [1, 0.5, 0.25, 1] }],
      darrays: [
        { intent: 'NIFTI_INTENT_LABEL', meta: {}, data: { dtype: 'int32', shape: [4], data: new Int32Array([0, 7, 7, 0]) } },
        { intent: 'NIFTI_INTENT_SHAPE', meta: { a: 'b' }, data: { dtype: 'uint8', shape: [2, 2], data: new Uint8Array([1, 2, 3, 255]) } },
        { intent: 'NIFTI_INTENT_NONE', meta: {}, data: { dtype: 'int16', shape: [3], data: new Int16Array([-5, 0, 32767]) } },
        { intent: 'NIFTI_INTENT_NONE', meta: {}, data: { dtype: 'float64', shape: [2], data: new Float64Array([Math.PI, -1e-300]) } },
      ],
    };
    for (const encoding of ['ASCII', 'GZipBase64Binary'] as const) {
      const f = path.join(tmp, `l_${encoding}.label.gii`);
      await writeGifti(f, img, { encoding });
      const back = await readGifti(f);
      assert.deepEqual(back.meta, img.meta);
      assert.deepEqual(back.labelTable, img.labelTable);
      assert.deepEqual(back.darrays.map((d) => d.data), img.darrays.map((d) => d.data));
    }
  });

  it('writes GIFTI that nibabel reads back identically (live, when /usr/bin/python3 has nibabel)', async function () {
    if (!hasNibabel()) this.skip();
    const s = await readGiftiSurface(path.join(FIX, 'surf_b64.surf.gii'));
    const f = path.join(tmp, 'live.surf.gii');
    await writeGiftiSurface(f, s, { meta: { who: 'brainnet' } });
    const { exp, dir } = peerView<GiftiExp>('gifti', f);
    // nibabel reports its default (identity, NIFTI_XFORM_UNKNOWN) transform where the file has none
    assert.deepEqual(exp.darrays[0]!.coordsys?.dataSpace, 'NIFTI_XFORM_UNKNOWN');
    delete exp.darrays[0]!.coordsys;
    assertMatches(await readGifti(f), exp, dir, 'live.surf.gii');
    assert.equal(exp.meta.who, 'brainnet');
    assert.equal(exp.darrays[0]!.intent, 'NIFTI_INTENT_POINTSET');
  });

  describe('bad input', () => {
    const bad = (name: string, text: string) => {
      const f = path.join(tmp, name);
      fs.writeFileSync(f, text);
      return f;
    };
    const rejects = async (p: Promise<unknown>, re: RegExp) => {
      await assert.rejects(p, (e: unknown) => e instanceof FileFormatError && re.test(e.message));
    };
    it('names a missing file', async () => {
      await rejects(readGifti(path.join(tmp, 'nope.gii')), /nope\.gii.*no such file/);
    });
    it('refuses XML that is not GIFTI', async () => {
      await rejects(readGifti(bad('x.gii', '<?xml version="1.0"?><NIFTI/>')), /root element <GIFTI>.*NIFTI/);
    });
    it('refuses a truncated file', async () => {
      const full = fs.readFileSync(path.join(FIX, 'surf_gzb64.surf.gii'), 'utf8');
      await rejects(readGifti(bad('t.gii', full.slice(0, Math.floor(full.length * 0.6)))), /truncated|corrupt|XML/);
    });
    it('refuses data of the wrong length, an unknown dtype and external files', async () => {
      const head = '<GIFTI Version="1.0" NumberOfDataArrays="1"><DataArray Intent="NIFTI_INTENT_NONE" ';
      await rejects(readGifti(bad('n.gii', `${head}DataType="NIFTI_TYPE_FLOAT32" Dimensionality="1" Dim0="3" Encoding="Base64Binary"><Data>AAAAAA==</Data></DataArray></GIFTI>`)),
        /12 bytes of float32.*found 4 bytes/);
      await rejects(readGifti(bad('d.gii', `${head}DataType="NIFTI_TYPE_RGB24" Dimensionality="1" Dim0="1" Encoding="ASCII"><Data>1</Data></DataArray></GIFTI>`)),
        /DataType.*NIFTI_TYPE_RGB24/);
      await rejects(readGifti(bad('e.gii', `${head}DataType="NIFTI_TYPE_INT32" Dimensionality="1" Dim0="1" Encoding="ExternalFileBinary"><Data></Data></DataArray></GIFTI>`)),
        /ExternalFileBinary.*not supported/);
      await rejects(readGifti(bad('a.gii', `${head}DataType="NIFTI_TYPE_INT32" Dimensionality="1" Dim0="3" Encoding="ASCII"><Data>1 2</Data></DataArray></GIFTI>`)),
        /3 ASCII values.*found 2/);
    });
    it('readGiftiSurface refuses a data file, naming the intents found', async () => {
      await rejects(readGiftiSurface(path.join(FIX, 'func.func.gii')), /POINTSET.*NIFTI_INTENT_TIME_SERIES/);
    });
  });
});
