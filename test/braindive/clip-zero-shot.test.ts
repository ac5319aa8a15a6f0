/**
 * CLIP zero-shot evaluation with an exported CLIP model (lib/braindive/clip-zero-shot.ts), on a tiny random CLIP-like
 * model in optimum's layout with torch reference probabilities (data-prep/fixtures/make_clip_fixture.py): token ids and
 * attention masks of the paper's prompts, preprocessing, the onnxruntime run and the softmax; plus the layout errors.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, tf } from 'brainnet';
import { FileFormatError } from 'brainnet/io';
import { ClipTokenizer } from 'brainnet/diffusion';
import { ClipZeroShotOnnx, clipTextInputs, CLIP_PROMPTS, EVAL_CATEGORIES } from 'brainnet/braindive';

const FIX = path.join(__dirname, '..', 'fixtures', 'braindive');
const DIR = path.join(FIX, 'tiny-clip');
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'tiny-clip-reference.json'), 'utf8')) as { prompts: string[]; input_ids: number[][]; attention_mask: number[][]; image: { shape: number[] }; probs: number[][] };

/** The fixture's images [2,3,S,S] on [0,1] (see make_clip_fixture.py). */
function fixtureImages(): tf.Tensor4D {
  const [B, C, S] = ref.image.shape as [number, number, number];
  const n = B * C * S * S;
  const v = Float32Array.from({ length: n }, (_, i) => 0.5 + 0.45 * Math.sin(i * 0.013 + 0.3));
  const half = n / 2;
  const out = v.slice();
  for (let c = 0; c < C; c++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out[half + (c * S + y) * S + x] = v[half + (c * S + y) * S + (S - 1 - x)]! * 0.7;
  return tf.tensor4d(out, [B, C, S, S]);
}

describe('CLIP zero-shot (exported CLIP model)', () => {
  before(async () => {
    await initBackend();
  });

  it('the prompts are the paper\'s, tokenised with masks as the reference', () => {
    assert.deepEqual(ref.prompts, EVAL_CATEGORIES.map((c) => CLIP_PROMPTS[c]));
    const t = clipTextInputs(ClipTokenizer.fromDir(DIR), ref.prompts);
    assert.equal(t.length, 77);
    assert.deepEqual(Array.from(t.ids), ref.input_ids.flat());
    assert.deepEqual(Array.from(t.mask), ref.attention_mask.flat());
  });

  it('classifies like the torch reference', async () => {
    const clip = await ClipZeroShotOnnx.load(DIR);
    assert.equal(clip.imageSize, 32);
    const images = fixtureImages();
    const p = await clip.classify(images);
    assert.deepEqual(p.shape, [2, 5]);
    const got = p.arraySync();
    for (let i = 0; i < 2; i++) for (let k = 0; k < 5; k++) assert.ok(Math.abs(got[i]![k]! - ref.probs[i]![k]!) < 1e-4, `image ${i} class ${k}: ${got[i]![k]} vs ${ref.probs[i]![k]}`);
    // larger images are resized to the model's side first; the result stays a distribution
    const big = tf.image.resizeBilinear(images.transpose([0, 2, 3, 1]) as tf.Tensor4D, [64, 64]).transpose([0, 3, 1, 2]) as tf.Tensor4D;
    const pb = await clip.classify(big);
    const sums = tf.sum(pb, 1).arraySync() as number[];
    sums.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-5));
    tf.dispose([images, p, big, pb]);
    await clip.dispose();
  });

  it('names what is missing or wrong in the folder', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-'));
    await assert.rejects(() => ClipZeroShotOnnx.load(tmp), (e: Error) => e instanceof FileFormatError && /model\.onnx/.test(e.message) && /optimum-cli export onnx/.test(e.message));
    // an ONNX file that is not a whole CLIP model (the tiny SD text encoder): its inputs are listed
    fs.copyFileSync(path.join(__dirname, '..', 'fixtures', 'diffusion', 'tiny-sd', 'text_encoder', 'model.onnx'), path.join(tmp, 'model.onnx'));
    for (const f of ['vocab.json', 'merges.txt']) fs.copyFileSync(path.join(DIR, f), path.join(tmp, f));
    await assert.rejects(() => ClipZeroShotOnnx.load(tmp), (e: Error) => e instanceof FileFormatError && /logits_per_image/.test(e.message) && /inputs input_ids/.test(e.message));
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
