import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, loadBuiltinBackbone, tf } from 'brainnet';
import { imagesToTensor, RgbImage, writePng } from 'brainnet/io';
import {
  Backbone, BackboneError, BackboneTokens, buildTokenCache, checkBackboneDeclaration, checkTokens, describeTokenCacheSize,
  fileImageSources, getCheckedTokens, builtinFeatureExtractor, memoryImageSource, TokenCacheError,
} from 'brainnet/backbones';

/** A tiny deterministic backbone on 32x32 images: layer a [B,3,16,16], layer b [B,6,8,8]; counts its calls. */
function fakeBackbone(name = 'fake', inputSize: [number, number] = [32, 32]): Backbone & { calls: number } {
  const bb = {
    name, inputSize, mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.25, 0.25, 0.25] as [number, number, number],
    layers: ['a', 'b'], channels: [3, 6], grids: [[inputSize[0] / 2, inputSize[1] / 2], [inputSize[0] / 4, inputSize[1] / 4]] as [number, number][],
    calls: 0,
    async getTokens(x: tf.Tensor4D): Promise<BackboneTokens> {
      bb.calls++;
      return tf.tidy(() => {
        const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
        const a = tf.avgPool(nhwc, 2, 2, 'valid');
        const b = tf.avgPool(tf.concat([nhwc, tf.square(nhwc)], 3) as tf.Tensor4D, 4, 4, 'valid');
        const t = { local: { a: tf.transpose(a, [0, 3, 1, 2]), b: tf.transpose(b, [0, 3, 1, 2]) }, global: { a: tf.mean(a, [1, 2]), b: tf.mean(b, [1, 2]) } };
        return t as unknown as tf.TensorContainerObject;
      }) as unknown as BackboneTokens;
    },
    dispose() {},
  };
  return bb as Backbone & { calls: number };
}

function randomImage(seed: number, w = 32, h = 32): RgbImage {
  const data = new Uint8Array(w * h * 3);
  let s = seed * 7919 + 1;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s % 256;
  }
  return { width: w, height: h, data };
}

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-tokcache-'));

describe('backbones: contract', () => {
  before(async () => { await initBackend({ log: null }); });
  const decl = { name: 'x', layers: ['a', 'b'], channels: [3, 6], grids: [[4, 4], [2, 2]] as [number, number][], inputSize: [8, 8] as [number, number] };

  it('rejects layer lists that do not match the widths', () => {
    assert.throws(() => checkBackboneDeclaration({ ...decl, channels: [3] }), /2 layers \(a, b\) but 1 channel widths/);
    assert.throws(() => checkBackboneDeclaration({ ...decl, layers: ['a', 'a'] }), /unique.*a/);
    assert.throws(() => checkBackboneDeclaration({ ...decl, channels: [3, 0] }), /layer b has width 0/);
    checkBackboneDeclaration(decl);
  });

  it('names a missing or misshaped layer', () => {
    const ok = (): BackboneTokens => ({ local: { a: tf.zeros([2, 3, 4, 4]), b: tf.zeros([2, 6, 2, 2]) }, global: { a: tf.zeros([2, 3]), b: tf.zeros([2, 6]) } });
    checkTokens(decl, ok(), 2);
    const missing = ok();
    delete (missing.local as Record<string, unknown>)['b'];
    assert.throws(() => checkTokens(decl, missing, 2), (e: Error) => e instanceof BackboneError && /layer b is missing from the local tokens/.test(e.message));
    const nhwc = ok();
    nhwc.local['a'] = tf.zeros([2, 4, 4, 3]);
    assert.throws(() => checkTokens(decl, nhwc, 2), /layer a local tokens must be \[B=2, C=3, 4, 4\], found \[2, 4, 4, 3\].*channels-last/);
    const wide = ok();
    wide.global['b'] = tf.zeros([2, 7]);
    assert.throws(() => checkTokens(decl, wide, 2), /layer b global tokens must be \[B=2, C=6\], found \[2, 7\]/);
    const extra = ok();
    extra.global['c'] = tf.zeros([2, 1]);
    assert.throws(() => checkTokens(decl, extra, 2), /undeclared layers c/);
  });

  it('checks the image batch shape', async () => {
    const bb = fakeBackbone();
    await assert.rejects(getCheckedTokens(bb, tf.zeros([1, 32, 32, 3])), /must be \[B, 3, 32, 32\].*found \[1, 32, 32, 3\]/);
  });
});

describe('backbones: built-in (nsfwjs@4 weights)', function () {
  // InceptionV3 (load with the ONNX conversion, two runs) takes ~8 s of CPU but took 60 s of wall time at load 24 on 2 cores
  this.timeout(240000);
  for (const which of ['mobilenetv2', 'inceptionv3'] as const) {
    it(`${which}: documented layers and shapes on 2 images, deterministic`, async () => {
      const bb = await loadBuiltinBackbone(which);
      try {
        const expect = which === 'mobilenetv2'
          ? { size: 224, layers: 10, first: [16, 112], last: [1280, 7] }
          : { size: 299, layers: 11, first: [64, 73], last: [2048, 8] };
        assert.deepEqual(bb.inputSize, [expect.size, expect.size]);
        assert.equal(bb.layers.length, expect.layers);
        // two small images (40x30), resized and normalised for the backbone
        const nd = await imagesToTensor([randomImage(1, 40, 30), randomImage(2, 40, 30)], { size: bb.inputSize, mean: bb.mean, std: bb.std });
        const x = tf.tensor4d(nd.data, nd.shape as [number, number, number, number]);
        const t1 = await getCheckedTokens(bb, x);
        const t2 = await getCheckedTokens(bb, x);
        const l0 = bb.layers[0]!;
        const lz = bb.layers.at(-1)!;
        assert.deepEqual(t1.local[l0]!.shape, [2, expect.first[0], expect.first[1], expect.first[1]]);
        assert.deepEqual(t1.local[lz]!.shape, [2, expect.last[0], expect.last[1], expect.last[1]]);
        assert.deepEqual(t1.global[lz]!.shape, [2, expect.last[0]]);
        // global = global average pool of local
        const gap = tf.mean(t1.local[lz]!, [2, 3]);
        assert.ok(tf.max(tf.abs(tf.sub(gap, t1.global[lz]!))).dataSync()[0]! < 1e-4);
        for (const l of bb.layers) assert.deepEqual(Array.from(t1.local[l]!.dataSync()), Array.from(t2.local[l]!.dataSync()), `layer ${l} deterministic`);
        // the two images give different tokens
        const g = t1.global[lz]!.arraySync() as number[][];
        assert.notDeepEqual(g[0], g[1]);
        x.dispose();
      } finally {
        await bb.dispose();
      }
    });
  }

  it('runs at a smaller input size: smaller maps, named by the size', async function () {
    this.timeout(300000);
    const bb = await loadBuiltinBackbone('inceptionv3', { layers: ['mixed1', 'mixed9'], inputSize: 139 });
    try {
      assert.match(bb.name, /^inceptionv3@nsfwjs4@139\+ort1\.\d+\.\d+$/);
      assert.deepEqual(bb.inputSize, [139, 139]);
      assert.deepEqual(bb.grids, [[15, 15], [3, 3]]);
      const x = tf.randomUniform([1, 3, 139, 139], 0, 1, 'float32', 2) as tf.Tensor4D;
      const t = await getCheckedTokens(bb, x);
      assert.deepEqual(t.local['mixed9']!.shape, [1, 2048, 3, 3]);
      await assert.rejects(loadBuiltinBackbone('mobilenetv2', { inputSize: 16 }), /inputSize 16 must be a whole number of pixels \(or \[H, W\]\) of at least 32/);
    } finally {
      await bb.dispose();
    }
  });

  it('names an unknown tapped layer', async () => {
    await assert.rejects(loadBuiltinBackbone('mobilenetv2', { layers: ['nope'] }), /no layer 'nope'.*Conv1/);
  });

  it('the two views agree: features are the unit-normalised global tokens of the same layer', async () => {
    // tokens (async, for the encoding model) and features (differentiable, for guidance) of InceptionV3's mixed10 at 299^2
    const bb = await loadBuiltinBackbone('inceptionv3', { layers: ['mixed10'] });
    const fx = await builtinFeatureExtractor('inceptionv3');
    try {
      assert.equal(fx.inputSize, bb.inputSize[0]);
      const nd = await imagesToTensor([randomImage(3, 40, 30), randomImage(4, 40, 30)], { size: bb.inputSize, mean: bb.mean, std: bb.std });
      const x = tf.tensor4d(nd.data, nd.shape as [number, number, number, number]);
      const t = await getCheckedTokens(bb, x);
      const g = t.global['mixed10']!;
      const viaTokens = tf.div(g, tf.norm(g, 'euclidean', 1, true));
      const diff = tf.max(tf.abs(tf.sub(viaTokens, fx.features(x)))).dataSync()[0]!;
      assert.ok(diff < 1e-4, `max |tokens - features| = ${diff}`);
      x.dispose();
    } finally {
      await bb.dispose();
      fx.dispose();
    }
  });
});

describe('backbones: token cache', function () {
  this.timeout(30000);
  const imgs = [0, 1, 2, 3, 4].map((i) => memoryImageSource(randomImage(i), `img${i}`));

  /** The expected cached tokens: the backbone's output with local resized to 8x8. */
  async function expected(bb: Backbone, idx: number[]): Promise<{ local: number[][]; global: number[][] }> {
    const loaded = await Promise.all(idx.map((i) => imgs[i]!.load()));
    const x = await imagesToTensor(loaded, { size: bb.inputSize, mean: bb.mean, std: bb.std });
    const t = await bb.getTokens(tf.tensor4d(x.data, x.shape as [number, number, number, number]));
    return {
      local: bb.layers.map((l) => {
        const v = t.local[l]!;
        const r = v.shape[2] === 8 ? v : tf.transpose(tf.image.resizeBilinear(tf.transpose(v, [0, 2, 3, 1]) as tf.Tensor4D, [8, 8], false, true), [0, 3, 1, 2]);
        return Array.from(r.dataSync());
      }),
      global: bb.layers.map((l) => Array.from(t.global[l]!.dataSync())),
    };
  }

  const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number): void => {
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)), `element ${i}: ${a[i]} vs ${b[i]}`);
  };

  it('prints its size', () => {
    assert.equal(describeTokenCacheSize(9841, Array(12).fill(768), 8, 'float16'), 'token cache: 9841 images x 12 layers x 768 x (8 x 8 + 1) x 2 bytes = 11.79 GB');
  });

  it('round trip in RAM (float32 exact, float16 close)', async () => {
    const bb = fakeBackbone();
    for (const dtype of ['float32', 'float16'] as const) {
      const lines: string[] = [];
      const cache = await buildTokenCache(bb, imgs, { dtype, batchSize: 2, log: (s) => lines.push(s), progress: false });
      assert.match(lines[0]!, /^token cache: 5 images x 2 layers/);
      assert.ok(cache.inRam);
      assert.deepEqual(cache.layers, ['a', 'b']);
      const batch = await cache.getBatch([3, 1]);
      assert.deepEqual(batch.local[0]!.shape, [2, 3, 8, 8]);
      assert.deepEqual(batch.local[1]!.shape, [2, 6, 8, 8]);
      assert.deepEqual(batch.global[1]!.shape, [2, 6]);
      const want = await expected(bb, [3, 1]);
      const tol = dtype === 'float32' ? 1e-6 : 2e-3;
      for (let l = 0; l < 2; l++) {
        close(batch.local[l]!.dataSync(), want.local[l]!, tol);
        close(batch.global[l]!.dataSync(), want.global[l]!, tol);
      }
    }
  });

  it('round trip on disk, float16 and float32, and reuse across runs without calling the backbone', async () => {
    const dir = tmp();
    const files = imgs.map((_, i) => path.join(dir, `im${i}.png`));
    for (let i = 0; i < files.length; i++) await writePng(files[i]!, randomImage(i));
    const sources = await fileImageSources(files);
    for (const dtype of ['float16', 'float32'] as const) {
      const cdir = path.join(dir, `cache-${dtype}`);
      const bb = fakeBackbone();
      const first = await buildTokenCache(bb, sources, { dir: cdir, dtype, batchSize: 3, log: null, progress: false });
      assert.equal(bb.calls, 2);
      assert.equal(first.reused, false);
      assert.ok(fs.existsSync(path.join(cdir, 'L01_b.local.npy')));
      // a second run (fresh backbone object, same identity) reads the files
      const bb2 = fakeBackbone();
      const lines: string[] = [];
      const again = await buildTokenCache(bb2, await fileImageSources(files), { dir: cdir, dtype, log: (s) => lines.push(s), progress: false, ramBudgetBytes: 0 });
      assert.equal(bb2.calls, 0);
      assert.equal(again.reused, true);
      assert.equal(again.inRam, false);
      assert.match(lines[0]!, /reusing/);
      const a = await first.getBatch([4, 0, 2]);
      const b = await again.getBatch([4, 0, 2]);
      const want = await expected(bb, [4, 0, 2]);
      const tol = dtype === 'float32' ? 1e-6 : 2e-3;
      for (let l = 0; l < 2; l++) {
        close(b.local[l]!.dataSync(), a.local[l]!.dataSync(), 0);
        close(b.global[l]!.dataSync(), a.global[l]!.dataSync(), 0);
        close(b.local[l]!.dataSync(), want.local[l]!, tol);
        close(b.global[l]!.dataSync(), want.global[l]!, tol);
      }
      await again.close();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a build stopped mid-way resumes from its last finished batch, and the files equal an uninterrupted build', async () => {
    const dir = tmp();
    const many = Array.from({ length: 11 }, (_, i) => memoryImageSource(randomImage(100 + i), `m${i}`));
    const whole = path.join(dir, 'whole');
    await buildTokenCache(fakeBackbone(), many, { dir: whole, batchSize: 2, log: null, progress: false });
    // a backbone that dies on its 4th call (images 6-7): the state says 6 images are done
    const cut = path.join(dir, 'cut');
    const dying = fakeBackbone();
    const inner = dying.getTokens.bind(dying);
    dying.getTokens = async (x) => { if (dying.calls === 3) throw new Error('killed'); return inner(x); };
    await assert.rejects(buildTokenCache(dying, many, { dir: cut, batchSize: 2, log: null, progress: false }), /killed/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(cut, 'build-state.json'), 'utf8')).done, 6);
    assert.ok(!fs.existsSync(path.join(cut, 'manifest.json')));
    const bb = fakeBackbone();
    const lines: string[] = [];
    const c = await buildTokenCache(bb, many, { dir: cut, batchSize: 2, log: (s) => lines.push(s), progress: false });
    assert.equal(bb.calls, 3, 'only images 6-10 (3 batches of 2) are computed again');
    assert.match(lines.join('\n'), /resuming the build in .*cut at image 6 of 11/);
    assert.equal(c.reused, false);
    assert.deepEqual(fs.readdirSync(cut).sort(), fs.readdirSync(whole).sort(), 'no partial file, build state or temporary file remains');
    for (const f of fs.readdirSync(whole)) assert.ok(fs.readFileSync(path.join(cut, f)).equals(fs.readFileSync(path.join(whole, f))), `${f} differs from the uninterrupted build`);
    await c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a cache built for another backbone, resolution or image set; rebuilds on request', async () => {
    const dir = tmp();
    await buildTokenCache(fakeBackbone('fake-a'), imgs, { dir, log: null, progress: false });
    await assert.rejects(buildTokenCache(fakeBackbone('fake-b'), imgs, { dir, log: null, progress: false }),
      (e: Error) => e instanceof TokenCacheError && /built for backbone 'fake-a', not 'fake-b'.*onMismatch: 'rebuild'/.test(e.message));
    await assert.rejects(buildTokenCache(fakeBackbone('fake-a', [64, 64]), imgs, { dir, log: null, progress: false }), /resolution 32x32, not 64x64/);
    await assert.rejects(buildTokenCache(fakeBackbone('fake-a'), imgs.slice().reverse(), { dir, log: null, progress: false }), /image 0 differs/);
    const bb = fakeBackbone('fake-b');
    const lines: string[] = [];
    const c = await buildTokenCache(bb, imgs, { dir, log: (s) => lines.push(s), progress: false, onMismatch: 'rebuild' });
    assert.ok(bb.calls > 0);
    assert.equal(c.backbone, 'fake-b');
    assert.match(lines.join('\n'), /Rebuilding/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to store values beyond float16 range', async () => {
    const bb = fakeBackbone();
    const inner = bb.getTokens.bind(bb);
    bb.getTokens = async (x) => inner(tf.mul(x, 1e6) as tf.Tensor4D);
    await assert.rejects(buildTokenCache(bb, imgs, { dtype: 'float16', log: null, progress: false }), /beyond float16's range.*dtype: 'float32'/);
  });

  it('says when a RAM-only cache exceeds its budget, and catches a misbehaving backbone', async () => {
    await assert.rejects(buildTokenCache(fakeBackbone(), imgs, { ramBudgetBytes: 100, log: null, progress: false }), /exceeds the RAM budget.*dir/);
    const bad = fakeBackbone();
    (bad as { channels: number[] }).channels = [3, 5];
    await assert.rejects(buildTokenCache(bad, imgs, { log: null, progress: false }), /layer b local tokens must be \[B=5, C=5/);
  });
});
