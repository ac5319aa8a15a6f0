/**
 * The synthetic world's latent diffusion model and its training pieces: PCA encode/decode, the committed
 * model loads as kind 'pca-latent' and turns v into eps consistently, incomplete folders are named,
 * AdamW + EMA checkpoints resume and refuse other settings, and the localiser simulates the subject.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, tf } from 'brainnet';
import { syntheticLocaliser, blurRgb, renderCategorisedSet, localiserThroughGenerator } from 'brainnet/synthetic';
import {
  loadSyntheticDiffusion, samplerParts, encodeLatent, decodeLatent, latentDenoiser, initLatentParams, DEFAULT_LATENT_CONFIG,
  makeScheduler, freshTrainState, adamwEmaStep, reconstructThroughLatent, saveTrainState, loadTrainState, guidanceViews,
  type LatentDiffusionModel,
} from 'brainnet/diffusion';

describe('latent diffusion (synthetic world)', () => {
  let model: LatentDiffusionModel;
  before(async () => {
    await initBackend();
    const m = await loadSyntheticDiffusion('models/synthetic-diffusion-64');
    assert.equal(m.kind, 'pca-latent');
    model = m as LatentDiffusionModel;
  });

  it('encode then decode reconstructs a training-like image better than the mean image does', () => {
    const d = renderCategorisedSet(5, 64, 99);
    const x = tf.tensor4d(Float32Array.from(d.pixels, (v) => v / 127.5 - 1), [5, 64, 64, 3]);
    const z = encodeLatent(model.pca, x);
    assert.deepEqual(z.shape, [5, 128]);
    const rec = tf.transpose(decodeLatent(model.pca, z, 64), [0, 2, 3, 1]);
    const mean = tf.reshape(model.pca.mean, [1, 64, 64, 3]);
    const err = tf.mean(tf.square(tf.sub(rec, x))).dataSync()[0]!;
    const base = tf.mean(tf.square(tf.sub(mean, x))).dataSync()[0]!;
    assert.ok(err < 0.5 * base, `reconstruction mse ${err} vs mean-image mse ${base}`);
  });

  it('reconstructThroughLatent returns uint8 images near the originals, batch-independent, and refuses wrong sizes', () => {
    const d = renderCategorisedSet(5, 64, 98);
    const a = reconstructThroughLatent(model.pca, d.pixels, 5, 64);
    const b = reconstructThroughLatent(model.pca, d.pixels, 5, 64, 2);
    assert.equal(a.length, d.pixels.length);
    assert.deepEqual(a, b);
    let errRec = 0, errMean = 0;
    const mean = model.pca.mean.dataSync();
    for (let i = 0; i < a.length; i++) {
      errRec += (a[i]! - d.pixels[i]!) ** 2;
      errMean += ((mean[i % mean.length]! + 1) * 127.5 - d.pixels[i]!) ** 2;
    }
    assert.ok(errRec < 0.5 * errMean, `reconstruction sse ${errRec} vs mean-image sse ${errMean}`);
    assert.throws(() => reconstructThroughLatent(model.pca, d.pixels.subarray(1), 5, 64), /expected 5 x 64 x 64 x 3 = 61440 bytes, got 61439/);
    assert.throws(() => reconstructThroughLatent(model.pca, new Uint8Array(2 * 32 * 32 * 3), 2, 32), /PCA latent is for 12288 values per image, the images have 3072/);
  });

  it('guidanceViews are what sampleGuided scores: close to the reconstruction at small t, near the mean image at t = 999; seeded', () => {
    const d = renderCategorisedSet(6, 64, 97);
    const rec = reconstructThroughLatent(model.pca, d.pixels, 6, 64);
    const mean = model.pca.mean.dataSync();
    const sse = (a: Uint8Array, b: (i: number) => number) => { let s = 0; for (let i = 0; i < a.length; i++) s += (a[i]! - b(i)) ** 2; return s; };
    const early = guidanceViews(model, d.pixels, 6, 64, { seed: 3, tMin: 0, tMax: 20 });
    const late = guidanceViews(model, d.pixels, 6, 64, { seed: 3, tMin: 999, tMax: 999 });
    assert.ok(early.t.every((t) => t >= 0 && t <= 20) && late.t.every((t) => t === 999));
    const toMean = (i: number) => (mean[i % mean.length]! + 1) * 127.5;
    // at small t the view is the reconstruction; at t = 999 it has lost most of the image (closer to the mean than the image is)
    assert.ok(sse(early.pixels, (i) => rec[i]!) < 0.1 * sse(d.pixels, toMean), 'small t: the view is the reconstruction');
    assert.ok(sse(late.pixels, toMean) < 0.5 * sse(d.pixels, toMean), 't = 999: the view is near the mean image');
    assert.deepEqual(guidanceViews(model, d.pixels, 6, 64, { seed: 3, tMin: 0, tMax: 20, batch: 4 }).pixels, early.pixels);
    assert.notDeepEqual(guidanceViews(model, d.pixels, 6, 64, { seed: 4 }).pixels, guidanceViews(model, d.pixels, 6, 64, { seed: 5 }).pixels);
    assert.throws(() => guidanceViews(model, d.pixels, 6, 64, { seed: 0, tMin: 10, tMax: 1000 }), /0 <= tMin <= tMax < 1000/);
    assert.throws(() => guidanceViews(model, new Uint8Array(32 * 32 * 3), 1, 32, { seed: 0 }), /draws 64\^2 images, the images are 32\^2/);
  });

  it('localiserThroughGenerator replaces the chosen shares of trials, keeps the responses, and checks the shares', () => {
    const a = syntheticLocaliser({ size: 'tiny', subjectSeed: 1, n: 40 });
    const r = localiserThroughGenerator(a, model, { recon: 0.25, views: 0.25, seed: 1 });
    assert.ok(r.recon > 3 && r.views > 3 && r.recon + r.views < 35, `recon ${r.recon}, views ${r.views}`);
    assert.equal(r.set.responses, a.responses);
    assert.deepEqual(r.set.labels, a.labels);
    const per = 64 * 64 * 3;
    let changed = 0;
    for (let i = 0; i < 40; i++) if (Buffer.compare(Buffer.from(r.set.pixels.subarray(i * per, (i + 1) * per)), Buffer.from(a.pixels.subarray(i * per, (i + 1) * per))) !== 0) changed++;
    assert.equal(changed, r.recon + r.views);
    assert.deepEqual(localiserThroughGenerator(a, model, { recon: 0.25, views: 0.25, seed: 1 }).set.pixels, r.set.pixels);
    assert.throws(() => localiserThroughGenerator(a, model, { recon: 0.7, views: 0.5 }), /sum to at most 1/);
  });

  it('the sampler view returns eps whose x0 estimate matches the v parametrisation', () => {
    const parts = samplerParts(model);
    assert.deepEqual(parts.latentShape, [128, 1, 1]);
    const x = tf.randomNormal([2, 128, 1, 1], 0, 1, 'float32', 4) as tf.Tensor4D;
    const t = 500;
    const eps = parts.unet(x, t);
    const a = makeScheduler('ddim', model.schedule).alphasCumprod[t]!;
    const v = latentDenoiser(model.params, tf.reshape(x, [2, 128]) as tf.Tensor2D, [t, t], model.config);
    const x0FromEps = tf.div(tf.sub(tf.reshape(x, [2, 128]), tf.mul(tf.reshape(eps, [2, 128]), Math.sqrt(1 - a))), Math.sqrt(a));
    const x0FromV = tf.sub(tf.mul(tf.reshape(x, [2, 128]), Math.sqrt(a)), tf.mul(v, Math.sqrt(1 - a)));
    assert.ok(tf.max(tf.abs(tf.sub(x0FromEps, x0FromV))).dataSync()[0]! < 1e-3);
    const img = parts.decode(x);
    assert.deepEqual(img.shape, [2, 3, 64, 64]);
  });

  it('a model folder without weights, or with weights of another shape, is a clear error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lat-'));
    fs.copyFileSync('models/synthetic-diffusion-64/config.json', path.join(dir, 'config.json'));
    await assert.rejects(loadSyntheticDiffusion(dir), /model\.safetensors is missing/);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    cfg.latent.width = 256;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    fs.copyFileSync('models/synthetic-diffusion-64/model.safetensors', path.join(dir, 'model.safetensors'));
    await assert.rejects(loadSyntheticDiffusion(dir), /in\.w.*shape \[128,256\]/s);
  });

  it('AdamW + EMA steps lower a loss, checkpoints resume, and other settings are refused', async () => {
    const cfg = { ...DEFAULT_LATENT_CONFIG, k: 4, width: 8, blocks: 1, embDim: 8 };
    const st = freshTrainState(initLatentParams(cfg, 1));
    const target = tf.ones([3, 4]);
    const lossAt = () => tf.mean(tf.square(tf.sub(latentDenoiser(st.params, tf.zeros([3, 4]) as tf.Tensor2D, [1, 2, 3], cfg), target))).dataSync()[0]!;
    const before = lossAt();
    const names = Object.keys(st.params);
    for (let i = 0; i < 30; i++) {
      const f = (...ps: tf.Tensor[]) => tf.mean(tf.square(tf.sub(latentDenoiser(Object.fromEntries(names.map((n, k) => [n, ps[k]!])), tf.zeros([3, 4]) as tf.Tensor2D, [1, 2, 3], cfg), target))) as tf.Scalar;
      const g = tf.grads(f)(names.map((n) => st.params[n]!));
      adamwEmaStep(st, Object.fromEntries(names.map((n, k) => [n, g[k]!])), { lr: 1e-2, emaDecay: 0.9, warmup: 1 });
      st.losses.push(0);
    }
    assert.ok(lossAt() < 0.7 * before, `loss ${before} -> ${lossAt()}`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
    await saveTrainState(dir, st, { width: 8 });
    const back = await loadTrainState(dir, { width: 8 });
    assert.equal(back!.step, 30);
    assert.deepEqual(Array.from(back!.ema['out.w']!.dataSync()), Array.from(st.ema['out.w']!.dataSync()));
    await assert.rejects(loadTrainState(dir, { width: 16 }), /width = 8.*asks for 16/);
    assert.equal(await loadTrainState(path.join(dir, 'none'), {}), null);
  });

  it('the localiser simulates the synthetic subject on categorised images, deterministically; blur keeps the mean', () => {
    const a = syntheticLocaliser({ size: 'tiny', subjectSeed: 1, n: 10 });
    const b = syntheticLocaliser({ size: 'tiny', subjectSeed: 1, n: 10 });
    const v = a.vertexCount.lh + a.vertexCount.rh;
    assert.equal(a.responses.length, 10 * v);
    assert.deepEqual(Array.from(a.labels.slice(0, 5)), [0, 1, 2, 3, 4]);
    assert.deepEqual(a.responses, b.responses);
    const img = a.pixels.subarray(0, 64 * 64 * 3);
    const bl = blurRgb(img, 64, 2);
    const m = (x: Uint8Array) => x.reduce((s, q) => s + q, 0) / x.length;
    assert.ok(Math.abs(m(bl) - m(img)) < 2);
    assert.notDeepEqual(bl, img);
  });
});
