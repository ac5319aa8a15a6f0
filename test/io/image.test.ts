import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  decodeImage, readImage, resizeImage, cropImage, encodePng, writePng, writeJpeg, imagesToTensor, IMAGENET_MEAN, IMAGENET_STD,
  CLIP_MEAN, CLIP_STD, FileFormatError, RgbImage,
} from 'brainnet/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'images');
const EXP = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as Record<string, { width: number; height: number; hex: string }>;
const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'img-'));

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}
function pattern(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 53 + (i >> 4)) & 0xff;
  return { width, height, data };
}

describe('image: decoding matches PIL (convert("RGB"))', () => {
  for (const name of Object.keys(EXP).filter((n) => n.endsWith('.png'))) {
    it(`${name} decodes exactly`, async () => {
      const e = EXP[name]!;
      const img = await readImage(path.join(FIX, name));
      assert.equal(img.width, e.width);
      assert.equal(img.height, e.height);
      assert.equal(Buffer.from(img.data).toString('hex'), e.hex);
    });
  }
  for (const name of Object.keys(EXP).filter((n) => n.endsWith('.jpg'))) {
    it(`${name} decodes within 2 levels of PIL (decoder rounding may differ)`, async () => {
      const e = EXP[name]!;
      const img = await decodeImage(fs.readFileSync(path.join(FIX, name)), name);
      assert.equal(img.width, e.width);
      assert.equal(img.height, e.height);
      assert.ok(maxDiff(img.data, Buffer.from(e.hex, 'hex')) <= 2);
    });
  }
  it('drops alpha (does not composite): a fully transparent pixel keeps its colour', async () => {
    const img = await readImage(path.join(FIX, 'rgba.png'));
    const e = Buffer.from(EXP['rgba.png']!.hex, 'hex');
    assert.deepEqual(Array.from(img.data.subarray(0, 3)), Array.from(e.subarray(0, 3)));
  });
  for (const [name, re] of [['bad_truncated.png', /IEND chunk.*truncated/], ['bad_not_an_image.png', /decoder/], ['bad_truncated.jpg', /decoder/], ['missing.png', /ENOENT/]] as const) {
    it(`${name}: FileFormatError naming the file`, async () => {
      const f = path.join(FIX, name);
      await assert.rejects(readImage(f), (e: unknown) => e instanceof FileFormatError && e.message.includes(f) && re.test(e.message));
    });
  }
  it('names bytes in errors', async () => {
    await assert.rejects(decodeImage(new Uint8Array([1, 2, 3]), 'upload.png'), (e: unknown) => e instanceof FileFormatError && e.message.startsWith('upload.png'));
  });
});

describe('image: resize, crop, encode', () => {
  it('nearest 2x upscale replicates pixels exactly', async () => {
    const img = pattern(3, 2);
    const r = await resizeImage(img, 6, 4, { kernel: 'nearest' });
    assert.equal(r.width, 6);
    assert.equal(r.height, 4);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 6; x++) {
        for (let c = 0; c < 3; c++) {
          assert.equal(r.data[(y * 6 + x) * 3 + c], img.data[((y >> 1) * 3 + (x >> 1)) * 3 + c]);
        }
      }
    }
  });
  it('every kernel keeps a solid colour and gives the requested size', async () => {
    for (const kernel of ['nearest', 'linear', 'cubic', 'lanczos3'] as const) {
      const r = await resizeImage(solid(17, 9, [10, 200, 99]), 8, 13, { kernel });
      assert.equal(r.data.length, 8 * 13 * 3);
      assert.ok(maxDiff(r.data, solid(8, 13, [10, 200, 99]).data) <= 1, kernel);
    }
  });
  it('linear downscale by 2 blends a checkerboard (antialiased, not point-sampled)', async () => {
    const img = solid(4, 4, [0, 0, 0]);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) if ((x + y) % 2) img.data.set([200, 100, 50], (y * 4 + x) * 3);
    const r = await resizeImage(img, 2, 2, { kernel: 'linear' });
    assert.ok(maxDiff(r.data, solid(2, 2, [100, 50, 25]).data) <= 10, Array.from(r.data).join(','));
  });
  it('crops without resampling', () => {
    const img = pattern(5, 4);
    const c = cropImage(img, 1, 2, 3, 2);
    assert.deepEqual(Array.from(c.data.subarray(0, 3)), Array.from(img.data.subarray((2 * 5 + 1) * 3, (2 * 5 + 1) * 3 + 3)));
    assert.throws(() => cropImage(img, 3, 0, 3, 1), RangeError);
  });
  it('PNG round trip is lossless; writePng is atomic', async () => {
    const img = pattern(13, 7);
    assert.deepEqual((await decodeImage(await encodePng(img))).data, img.data);
    const dir = tmpdir();
    await writePng(path.join(dir, 'a.png'), img);
    assert.deepEqual(fs.readdirSync(dir), ['a.png']);
    assert.deepEqual((await readImage(path.join(dir, 'a.png'))).data, img.data);
    await assert.rejects(encodePng({ width: 2, height: 2, data: new Uint8Array(5) }), RangeError);
  });
  it('JPEG round trip is close at quality 95', async () => {
    const f = path.join(tmpdir(), 'a.jpg');
    const img = solid(16, 16, [120, 60, 200]);
    await writeJpeg(f, img, 95);
    assert.ok(maxDiff((await readImage(f)).data, img.data) <= 3);
  });
});

describe('image: imagesToTensor', () => {
  it('gives [B, 3, H, W] float32 of (x/255 - mean)/std, channel-first', async () => {
    const a = pattern(4, 3);
    const b = solid(4, 3, [255, 0, 128]);
    const t = await imagesToTensor([a, b], { size: [3, 4], mean: IMAGENET_MEAN, std: IMAGENET_STD });
    assert.equal(t.dtype, 'float32');
    assert.deepEqual(t.shape, [2, 3, 3, 4]);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 3; y++) {
        for (let x = 0; x < 4; x++) {
          const want = Math.fround((a.data[(y * 4 + x) * 3 + c]! / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!);
          assert.equal(t.data[(c * 3 + y) * 4 + x], want);
        }
      }
    }
    const plane = 12;
    assert.ok(Math.abs(t.data[3 * plane]! - (1 - 0.485) / 0.229) < 1e-6);
    assert.ok(Math.abs(t.data[3 * plane + plane]! - (0 - 0.456) / 0.224) < 1e-6);
  });
  it('resizes images of other sizes', async () => {
    const t = await imagesToTensor([solid(10, 20, [0, 255, 0]), solid(224, 224, [0, 255, 0])], { size: [8, 6], mean: CLIP_MEAN, std: CLIP_STD, kernel: 'cubic' });
    assert.deepEqual(t.shape, [2, 3, 8, 6]);
    const g = (1 - CLIP_MEAN[1]) / CLIP_STD[1];
    for (let i = 0; i < 48; i++) assert.ok(Math.abs(t.data[48 + i]! - g) < 0.02);
    assert.equal(t.data.length, 2 * 3 * 48);
  });
});
