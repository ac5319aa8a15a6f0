/**
 * Brain-guided sampling with toy tfjs models: a linear "UNet", a channel-mixing upsampling
 * "decoder" and a score whose gradient direction is known (mean redness minus blueness). Guidance
 * must raise the score against unguided sampling from the same seed; memory must stay flat.
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  sampleGuided, makeScheduler, brainGuidance, toClipInput, GuidanceError, SCHEDULER_KINDS, type UNetFn, type DecodeFn,
  type ScoreFn,
} from 'brainnet/diffusion';

const C = 4, h = 8, w = 8;
// toy UNet: eps = 0.6 x + 0.1 * mean(context) (depends on x, so the full gradient differs from x0-only)
const unet: UNetFn = (x, _t, ctx) => tf.tidy(() => {
  let e = tf.mul(x, 0.6);
  if (ctx) e = tf.add(e, tf.reshape(tf.mul(tf.mean(ctx, [1, 2]), 0.1), [-1, 1, 1, 1]));
  return e as tf.Tensor4D;
});
// toy decoder: fixed 4->3 channel mix, x2 nearest upsampling, tanh: [B,4,8,8] -> [B,3,16,16]
const MIX = tf.tensor2d([[0.5, -0.2, 0.1, 0.3], [0.1, 0.4, -0.3, 0.2], [-0.2, 0.1, 0.5, -0.1]]);
const decode: DecodeFn = (z) => tf.tidy(() => {
  const [B] = z.shape;
  const flat = tf.reshape(tf.transpose(z, [0, 2, 3, 1]), [-1, C]);
  const rgb = tf.reshape(tf.matMul(flat, MIX, false, true), [B, h, w, 3]);
  const up = tf.image.resizeNearestNeighbor(rgb as tf.Tensor4D, [2 * h, 2 * w]);
  return tf.tanh(tf.transpose(up, [0, 3, 1, 2])) as tf.Tensor4D;
});
// toy score: mean(red) - mean(blue) of the CLIP-normalised image, [B]
const score: ScoreFn = (img) => tf.tidy(() => tf.sub(tf.mean(img.slice([0, 0, 0, 0], [-1, 1, -1, -1]), [1, 2, 3]), tf.mean(img.slice([0, 2, 0, 0], [-1, 1, -1, -1]), [1, 2, 3])));
const finalScore = (images: tf.Tensor4D) => tf.tidy(() => tf.mean(score(toClipInput(tf.sub(tf.mul(images, 2), 1) as tf.Tensor4D, 32))).dataSync()[0]!);

const base = { unet, decode, steps: 8, latentShape: [C, h, w] as [number, number, number], batch: 2, seed: 7, progress: false as const, vaeScalingFactor: 1, scoreSize: 32 };

describe('diffusion: brain-guided sampling (toy models)', function () {
  before(async () => {
    await tf.setBackend('cpu');
  });

  for (const kind of SCHEDULER_KINDS) {
    for (const gradient of ['full', 'x0'] as const) {
      it(`${kind}, ${gradient} gradient: guidance raises the score over unguided sampling from the same seed`, async () => {
        const scheduler = makeScheduler(kind);
        const plain = await sampleGuided({ ...base, scheduler });
        const guided = await sampleGuided({ ...base, scheduler, score, guidanceScale: 3, gradient });
        const s0 = finalScore(plain.images);
        const s1 = finalScore(guided.images);
        assert.ok(s1 > s0 + 0.05, `guided ${s1} vs unguided ${s0}`);
        assert.ok(guided.gradNorms.every((g) => g > 0), 'guidance gradient is non-zero at every step');
        assert.ok(plain.gradNorms.every((g) => g === 0));
        const neg = await sampleGuided({ ...base, scheduler, score, guidanceScale: -3, gradient });
        assert.ok(finalScore(neg.images) < s0 - 0.05, 'a negative scale lowers the score');
        tf.dispose([plain.images, plain.latents, guided.images, guided.latents, neg.images, neg.latents]);
      });
    }
  }

  it('v-prediction models: guidance raises the score too (v\' = v - sqrt(1-a)/sqrt(a) g)', async () => {
    const scheduler = makeScheduler('ddim', { predictionType: 'v_prediction' });
    const plain = await sampleGuided({ ...base, scheduler });
    const guided = await sampleGuided({ ...base, scheduler, score, guidanceScale: 3, gradient: 'x0' });
    assert.ok(finalScore(guided.images) > finalScore(plain.images) + 0.05);
    tf.dispose([plain.images, plain.latents, guided.images, guided.latents]);
  });

  it('the guidance is -d loss/dx with loss = -scale * sum(score): matches central finite differences', () => {
    const x = tf.randomNormal([1, C, h, w], 0, 1, 'float32', 3) as tf.Tensor4D;
    const eps = unet(x, 500, null);
    const a = 0.4, scale = 2.5;
    for (const gradient of ['full', 'x0'] as const) {
      const { g } = brainGuidance({ unet, decode, score, x, eps, t: 500, alphaBar: a, guidanceScale: scale, gradient, context: null, vaeScalingFactor: 1, scoreSize: 32 });
      const loss = (xv: tf.Tensor4D) => tf.tidy(() => {
        const e = gradient === 'full' ? unet(xv, 500, null) : eps;
        const x0 = tf.div(tf.sub(xv, tf.mul(e, Math.sqrt(1 - a))), Math.sqrt(a));
        const s = tf.add(tf.mul(x0, Math.sqrt(1 - a)), tf.mul(xv, 1 - Math.sqrt(1 - a))) as tf.Tensor4D;
        return -scale * tf.sum(score(toClipInput(decode(s), 32))).dataSync()[0]!;
      });
      const gv = g.dataSync();
      const xv = x.dataSync();
      for (const k of [0, 17, 100, 255]) {
        const d = 1e-2;
        const p = xv.slice(); p[k]! += d;
        const m = xv.slice(); m[k]! -= d;
        const fd = -(loss(tf.tensor4d(p, x.shape as [number, number, number, number])) - loss(tf.tensor4d(m, x.shape as [number, number, number, number]))) / (2 * d);
        assert.ok(Math.abs(fd - gv[k]!) < 2e-3 + 2e-2 * Math.abs(fd), `${gradient} g[${k}] ${gv[k]} vs finite difference ${fd}`);
      }
      g.dispose();
    }
    tf.dispose([x, eps]);
  });

  it('is seeded: the same seed gives the same images, another seed different ones', async () => {
    const scheduler = makeScheduler('ddim', { eta: 0.5 });
    const r1 = await sampleGuided({ ...base, scheduler, score, guidanceScale: 1 });
    const r2 = await sampleGuided({ ...base, scheduler, score, guidanceScale: 1 });
    const r3 = await sampleGuided({ ...base, scheduler, score, guidanceScale: 1, seed: 8 });
    assert.deepEqual(Array.from(r1.latents.dataSync()), Array.from(r2.latents.dataSync()));
    assert.notDeepEqual(Array.from(r1.latents.dataSync()), Array.from(r3.latents.dataSync()));
    tf.dispose([r1.images, r1.latents, r2.images, r2.latents, r3.images, r3.latents]);
  });

  it('keeps memory flat across steps and calls back with intermediate images', async () => {
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const previews: number[][] = [];
    const cond = tf.ones([1, 5, 6]) as tf.Tensor3D;
    const uncond = tf.zeros([1, 5, 6]) as tf.Tensor3D;
    const r = await sampleGuided({
      ...base, steps: 10, scheduler: makeScheduler('dpmpp2m'), score, guidanceScale: 2, cond, uncond, cfgScale: 5,
      callback: async ({ decodePreview, step }) => {
        counts.push(tf.memory().numTensors);
        if (step % 5 === 0) { const p = await decodePreview(); previews.push(p.shape); p.dispose(); }
      },
    });
    assert.equal(counts.length, 10);
    assert.ok(counts.slice(2).every((c) => c === counts[2]), `tensor count per step: ${counts.join(' ')}`);
    assert.deepEqual(previews, [[2, 3, 16, 16], [2, 3, 16, 16]]);
    assert.deepEqual(r.images.shape, [2, 3, 16, 16]);
    tf.dispose([r.images, r.latents, cond, uncond]);
    assert.equal(tf.memory().numTensors, before, 'nothing leaks after sampling');
  });

  it('classifier-free guidance mixes cond and uncond: cfgScale 1 equals the cond-only run', async () => {
    const cond = tf.fill([1, 5, 6], 2) as tf.Tensor3D;
    const uncond = tf.zeros([1, 5, 6]) as tf.Tensor3D;
    const scheduler = makeScheduler('ddim');
    const a = await sampleGuided({ ...base, scheduler, cond, uncond, cfgScale: 1 });
    const b = await sampleGuided({ ...base, scheduler, cond });
    const c = await sampleGuided({ ...base, scheduler, cond, uncond, cfgScale: 4 });
    const da = a.latents.dataSync(), db = b.latents.dataSync(), dc = c.latents.dataSync();
    let e = 0, f = 0;
    for (let i = 0; i < da.length; i++) { e = Math.max(e, Math.abs(da[i]! - db[i]!)); f = Math.max(f, Math.abs(dc[i]! - db[i]!)); }
    assert.ok(e < 1e-5, `cfg 1 vs cond-only ${e}`);
    assert.ok(f > 1e-2, 'cfg 4 differs');
    tf.dispose([a.images, a.latents, b.images, b.latents, c.images, c.latents, cond, uncond]);
  });

  it('bad input: NaN latents name the step; a score not shaped [B]; non-finite scales', async () => {
    const scheduler = makeScheduler('ddim');
    const before = tf.memory().numTensors;
    const badUnet: UNetFn = (x, t, ctx) => (t < 500 ? tf.mul(x, NaN) as tf.Tensor4D : unet(x, t, ctx));
    await assert.rejects(sampleGuided({ ...base, scheduler, unet: badUnet }), (e: Error) => e instanceof GuidanceError && /NaN or infinite at step 5 of 8 \(t=376\)/.test(e.message));
    const wide: ScoreFn = (img) => tf.mean(img, [2, 3]);
    await assert.rejects(sampleGuided({ ...base, scheduler, score: wide, guidanceScale: 1 }), /one value per image, shape \[2\]; it returned shape \[2, 3\]/);
    await assert.rejects(sampleGuided({ ...base, scheduler, score, guidanceScale: NaN }), /guidanceScale must be a finite number/);
    await assert.rejects(sampleGuided({ ...base, scheduler, score, guidanceScale: Infinity }), /guidanceScale must be a finite number/);
    assert.equal(tf.memory().numTensors, before, 'errors leak nothing');
  });
});
