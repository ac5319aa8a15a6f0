/**
 * Self-attention guidance (lib/diffusion/sag.ts) and its place in the guided sampler, against a PyTorch reference of
 * one SAG step written from the paper's formulas (data-prep/fixtures/make_diffusion_fixtures.py, `sag_reference`,
 * committed under test/fixtures/diffusion/tiny-sd-reference/sag/): the mask, the blur and the re-noised latents on
 * random non-square inputs; then, on the tiny SD model whose UNet carries its mid-block attention, the attention from
 * onnxruntime, one SAG step, and one DDIM step of `sampleGuided` with SAG and brain guidance composed in BrainDiVE's
 * order, with and without classifier-free guidance. The reference is float64. The TypeScript step, fed PyTorch's
 * inputs, matches to 1e-5 (max abs error / max abs value; it is about 3e-7); where onnxruntime's float32 UNet runs
 * inside the step, its own error (4-7e-6 against float64 here) dominates, and those checks allow 2e-5.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readNpy, FileFormatError } from 'brainnet/io';
import {
  StableDiffusionOnnx, sampleGuided, makeScheduler, sagMask, sagDegrade, sagStep, gaussianBlur2d, gaussianKernel1d, checkSagScale, attentionGrid,
  GuidanceError, SD_ATTENTION_OUTPUT, type ScoreFn,
} from 'brainnet/diffusion';

const SD = path.join(__dirname, '../fixtures/diffusion/tiny-sd');
const ADD_SAG_OUTPUT = path.join(__dirname, '../../data-prep/add-sag-output.py');
const REF = path.join(__dirname, '../fixtures/diffusion/tiny-sd-reference');
const SAG = path.join(REF, 'sag');
const meta = JSON.parse(fs.readFileSync(path.join(SAG, 'inputs.json'), 'utf8')) as Record<string, unknown> & { sag_scale: number; guidance_scale: number; cfg_scale: number; t: number; alpha_bar_t: number; steps: number };
const TOL = 1e-5;
/** Where onnxruntime's float32 UNet is part of the computation (4-7e-6 of float64 here, depending on the CPU's kernels). */
const TOL_ORT = 2e-5;

/** 1.5 sin(f i + p) over the flat index, float32 (as the Python script makes its inputs). */
const det = ([shape, f, p]: [number[], number, number]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.fround(Math.sin(Math.fround(Math.fround(i * f) + p)) * 1.5);
  return tf.tensor(v, shape);
};
const input = (k: string) => det(meta[k] as [number[], number, number]);
const ref = async (name: string) => {
  const a = await readNpy(path.join(SAG, `${name}.npy`));
  return tf.tensor(Float32Array.from(a.data as Float32Array), a.shape);
};
/** max |a - b| / max |b|. */
const relErr = (a: tf.Tensor, b: tf.Tensor) => {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync(), y = b.dataSync();
  let e = 0, m = 0;
  for (let i = 0; i < y.length; i++) { e = Math.max(e, Math.abs(x[i]! - y[i]!)); m = Math.max(m, Math.abs(y[i]!)); }
  return e / Math.max(m, 1e-12);
};
const close = (a: tf.Tensor, b: tf.Tensor, what: string, tol = TOL) => {
  const e = relErr(a, b);
  if (process.env.DEBUG_SAG) console.log(`${what}: ${e.toExponential(2)}`);
  assert.ok(e < tol, `${what}: relative error ${e.toExponential(2)} >= ${tol}`);
};

describe('diffusion: self-attention guidance (SAG) against a PyTorch reference', function () {
  this.timeout(120000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  describe('the pure functions (random inputs: 2 images, 3 heads, latents 8 x 12, grid 4 x 6)', () => {
    it('the mask: head-mean attention summed over queries > 1, nearest-upsampled; rank 4 and diffusers\' rank 3 agree', async () => {
      const attn = await ref('C_attention');
      const want = await ref('C_mask');
      const m4 = sagMask(attn, [2, 4, 8, 12]);
      assert.deepEqual(Array.from(m4.dataSync()), Array.from(want.dataSync()));
      const m3 = sagMask(attn.reshape([6, 24, 24]), [2, 4, 8, 12]);
      assert.deepEqual(Array.from(m3.dataSync()), Array.from(want.dataSync()));
      const share = tf.mean(want).dataSync()[0]!;
      assert.ok(share > 0.2 && share < 0.8, `the reference mask is neither empty nor full (${share})`);
      tf.dispose([attn, want, m4, m3]);
    });

    it('the blur: 9 x 9 Gaussian, sigma 1, reflect padding', async () => {
      const k = gaussianKernel1d();
      assert.equal(k.length, 9);
      assert.ok(Math.abs(k.reduce((a, b) => a + b, 0) - 1) < 1e-6 && Math.abs(k[0]! - k[8]!) < 1e-9 && k[4]! > k[3]!);
      const x0 = await ref('C_x0');
      const b = gaussianBlur2d(x0 as tf.Tensor4D);
      close(b, await ref('C_blurred'), 'blurred x0');
      assert.throws(() => gaussianBlur2d(tf.zeros([1, 4, 4, 4]) as tf.Tensor4D), (e: Error) => e instanceof GuidanceError && /\[1, 4, 4, 4\]/.test(e.message) && /sagScale 0/.test(e.message));
      tf.dispose([x0, b]);
    });

    it('the degraded latents: x0 blurred inside the mask, re-noised with the model\'s eps (epsilon and v prediction)', async () => {
      const [x, out, attention] = [await ref('C_x'), await ref('C_out'), await ref('C_attention')];
      for (const [pred, name] of [['epsilon', 'C_degraded'], ['v_prediction', 'C_degraded_v']] as const) {
        const r = sagDegrade({ x: x as tf.Tensor4D, out: out as tf.Tensor4D, attention, alphaBar: 0.3, predictionType: pred });
        close(r.degraded, await ref(name), `degraded (${pred})`);
        tf.dispose([r.degraded, r.mask, r.x0]);
      }
      tf.dispose([x, out, attention]);
    });

    it('an attention of the wrong shape names both shapes; the grid is found for non-square latents', () => {
      assert.deepEqual(attentionGrid(24, 8, 12), [4, 6]);
      assert.deepEqual(attentionGrid(64, 64, 64), [8, 8]);
      assert.deepEqual(attentionGrid(8 * 10, 61, 77), [8, 10]);
      assert.equal(attentionGrid(15, 8, 8), null);
      const bad = (shape: number[], latents: [number, number, number, number]) =>
        assert.throws(() => sagMask(tf.zeros(shape), latents), (e: Error) => e instanceof GuidanceError && e.message.includes(`[${shape.join(', ')}]`) && e.message.includes(`[${latents.join(', ')}]`) && /heads, N, N/.test(e.message), shape.join());
      bad([1, 2, 15, 15], [1, 4, 8, 8]); // N fits no grid of 8 x 8 latents
      bad([3, 2, 16, 16], [2, 4, 8, 8]); // batch 3 for 2 images
      bad([1, 2, 16, 12], [1, 4, 8, 8]); // not square
      bad([16, 16], [1, 4, 8, 8]); // rank 2
      bad([5, 16, 16], [2, 4, 8, 8]); // rank 3 whose first dimension is no multiple of the batch
    });

    it('in the sampler, an attention of the wrong shape stops it with both shapes named, and leaks nothing', async () => {
      const before = tf.memory().numTensors;
      const unet = (x: tf.Tensor4D) => tf.zerosLike(x);
      await assert.rejects(sampleGuided({ unet, decode: unet, scheduler: makeScheduler('ddim'), steps: 2, latentShape: [4, 8, 8], sagScale: 0.75, progress: false,
        unetWithAttention: (x) => ({ eps: tf.zerosLike(x), attention: tf.fill([1, 2, 15, 15], 1 / 15) }) }),
      (e: Error) => e instanceof GuidanceError && e.message.includes('[1, 2, 15, 15]') && e.message.includes('[1, 4, 8, 8]'));
      assert.equal(tf.memory().numTensors, before);
    });

    it('a SAG scale below 0 (or not a number) is an error; above 5, a warning line', () => {
      for (const s of [-0.1, NaN, Infinity]) assert.throws(() => checkSagScale(s), (e: Error) => e instanceof GuidanceError && /sagScale must be a finite number >= 0/.test(e.message) && /0\.75/.test(e.message));
      const lines: string[] = [];
      checkSagScale(0, (l) => lines.push(l));
      checkSagScale(0.75, (l) => lines.push(l));
      checkSagScale(5, (l) => lines.push(l));
      assert.equal(lines.length, 0);
      checkSagScale(7, (l) => lines.push(l));
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, /sagScale 7 is far above/);
    });
  });

  describe('on the tiny SD model (UNet with its mid-block attention as an output)', () => {
    let sd: StableDiffusionOnnx;
    let diff: Awaited<ReturnType<StableDiffusionOnnx['differentiable']>>;
    const a = () => meta.alpha_bar_t;
    before(async () => {
      sd = await StableDiffusionOnnx.load(SD);
      diff = await sd.differentiable({ batch: 1, height: 8, width: 8 });
    });
    after(async () => sd?.dispose());

    it('the UNet has the attention output; onnxruntime\'s attention and eps match PyTorch\'s', async () => {
      assert.equal(sd.hasAttention, true);
      const x = input('x') as tf.Tensor4D, cond = input('cond') as tf.Tensor3D;
      const r = await sd.unetWithAttention(x, meta.t, cond);
      assert.deepEqual(r.attention.shape, [1, 2, 16, 16]);
      close(r.attention, await ref('A_attention'), 'attention (onnxruntime)', TOL_ORT);
      close(r.eps, await ref('A_eps'), 'eps (onnxruntime)', TOL_ORT);
      const plain = await sd.unet(x, meta.t, cond);
      assert.deepEqual(Array.from(plain.dataSync()), Array.from(r.eps.dataSync()), 'unet() and unetWithAttention() give the same eps');
      tf.dispose([x, cond, r.eps, r.attention, plain]);
    });

    it('one SAG step in TypeScript on PyTorch\'s inputs (x_t, eps, attention, eps\'): mask, x0, degraded latents, eps + s (eps - eps\')', async () => {
      const x = input('x') as tf.Tensor4D;
      const [eps, attention, epsDegraded, wantDegraded] = [await ref('A_eps'), await ref('A_attention'), await ref('A_eps_degraded'), await ref('A_degraded')];
      const d = sagDegrade({ x, out: eps as tf.Tensor4D, attention, alphaBar: a() });
      assert.deepEqual(Array.from(d.mask.dataSync()), Array.from((await ref('A_mask')).dataSync()));
      close(d.x0, await ref('A_x0'), 'x0');
      let seen: tf.Tensor4D | null = null;
      const s = await sagStep({ x, out: eps as tf.Tensor4D, guided: eps as tf.Tensor4D, attention, alphaBar: a(), scale: meta.sag_scale, t: meta.t,
        unet: (z, t) => { assert.equal(t, meta.t); seen = z.clone(); return epsDegraded.clone() as tf.Tensor4D; } });
      close(seen!, wantDegraded, 'degraded latents, the second pass\'s input');
      close(s.out, await ref('A_eps_sag'), 'eps + s (eps - eps\')');
      tf.dispose([x, eps, attention, epsDegraded, wantDegraded, d.mask, d.x0, d.degraded, s.out, s.degraded, s.degradedOut, seen!]);
    });

    it('one SAG step with onnxruntime\'s UNet (both passes)', async () => {
      const x = input('x') as tf.Tensor4D, cond = input('cond') as tf.Tensor3D;
      const { eps, attention } = await sd.unetWithAttention(x, meta.t, cond);
      const s = await sagStep({ x, out: eps, guided: eps, attention, alphaBar: a(), scale: meta.sag_scale, t: meta.t, unet: (z, t) => sd.unet(z, t, cond) });
      close(s.degraded, await ref('A_degraded'), 'degraded latents', TOL_ORT);
      close(s.degradedOut, await ref('A_eps_degraded'), 'eps\' (second UNet pass)', TOL_ORT);
      close(s.out, await ref('A_eps_sag'), 'eps + s (eps - eps\')', TOL_ORT);
      tf.dispose([x, cond, eps, attention, s.out, s.degraded, s.degradedOut]);
    });

    /** The first DDIM step (of 10) of sampleGuided from the reference x_t, with SAG and optionally brain guidance and CFG: the latents after it (the callback then stops the loop). */
    const firstStep = async (o: { score?: boolean; cfg?: boolean; sagScale?: number }): Promise<tf.Tensor> => {
      const { unet, decode } = diff;
      const W = input('score_weights');
      const score: ScoreFn = (img) => tf.mean(tf.mul(img, W), [1, 2, 3]);
      const x = input('x') as tf.Tensor4D, cond = input('cond') as tf.Tensor3D, uncond = input('uncond') as tf.Tensor3D;
      let after: tf.Tensor | null = null;
      const stop = new Error('stop after the first step');
      await assert.rejects(sampleGuided({
        unet, decode, unetForward: (z, t, c) => sd.unet(z, t, c!), unetWithAttention: (z, t, c) => sd.unetWithAttention(z, t, c!), decodeForward: (z) => sd.decode(z),
        scheduler: makeScheduler('ddim', sd.layout.scheduler), steps: meta.steps, latents: x, cond, progress: false,
        sagScale: o.sagScale ?? meta.sag_scale, ...(o.cfg ? { uncond, cfgScale: meta.cfg_scale } : {}),
        ...(o.score ? { score, guidanceScale: meta.guidance_scale, gradient: 'x0' as const, scoreSize: 64 } : {}),
        callback: ({ step, latents, t }) => {
          assert.equal(step, 0);
          assert.equal(t, meta.t);
          after = latents.clone();
          throw stop;
        },
      }), (e) => e === stop);
      tf.dispose([W, x, cond, uncond]);
      return after!;
    };

    it('sampleGuided, one step with SAG (no CFG): the reference\'s DDIM step from eps_sag', async () => {
      const got = await firstStep({});
      close(got, await ref('A_prev_sag_only'), 'latents after the step (SAG)', TOL_ORT);
      got.dispose();
    });

    it('sampleGuided, one step with SAG then brain guidance (BrainDiVE\'s order): eps + s (eps - eps\') - sqrt(1-a) g', async () => {
      const got = await firstStep({ score: true });
      close(got, await ref('A_prev'), 'latents after the step (SAG, brain guidance)', TOL_ORT);
      got.dispose();
      const before = tf.memory().numTensors; // after a first run (the executor keeps what it caches on first use)
      (await firstStep({ score: true })).dispose();
      (await firstStep({ score: true, cfg: true })).dispose();
      assert.equal(tf.memory().numTensors, before, 'SAG leaks nothing');
    });

    it('with classifier-free guidance: mask, x0 and eps_ref from the unconditional half, eps\' with the empty prompt', async () => {
      const got = await firstStep({ score: true, cfg: true });
      close(got, await ref('B_prev'), 'latents after the step (CFG, SAG, brain guidance)', TOL_ORT);
      got.dispose();
    });

    it('sagScale 0 is bit for bit the sampler without SAG; sagScale 0.75 changes the sample', async () => {
      const { unet, decode } = diff;
      const cond = await sd.encodePrompt(['']);
      const score: ScoreFn = (img) => tf.mean(img.slice([0, 0, 0, 0], [-1, 1, -1, -1]), [1, 2, 3]);
      const common = {
        unet, decode, unetForward: (z: tf.Tensor4D, t: number, c: tf.Tensor3D | null) => sd.unet(z, t, c!), decodeForward: (z: tf.Tensor4D) => sd.decode(z),
        scheduler: makeScheduler('dpmpp2m', sd.layout.scheduler), steps: 2, latentShape: [4, 8, 8] as [number, number, number], seed: 5, cond, progress: false as const,
        score, guidanceScale: 10, gradient: 'x0' as const,
      };
      const none = await sampleGuided(common);
      const zero = await sampleGuided({ ...common, sagScale: 0, unetWithAttention: (z, t, c) => sd.unetWithAttention(z, t, c!) });
      const on = await sampleGuided({ ...common, sagScale: 0.75, unetWithAttention: (z, t, c) => sd.unetWithAttention(z, t, c!) });
      assert.deepEqual(Array.from(zero.latents.dataSync()), Array.from(none.latents.dataSync()));
      assert.deepEqual(zero.scores, none.scores);
      assert.ok(relErr(on.latents, none.latents) > 1e-3, 'SAG moves the sample');
      tf.dispose([none.images, none.latents, zero.images, zero.latents, on.images, on.latents, cond]);
    });

    it('generate({ sagScale }) runs SAG; a bad scale or a missing unetWithAttention is an error', async () => {
      const r = await sd.generate({ size: 64, steps: 2, seed: 1, sagScale: 0.75, progress: false });
      const p = await sd.generate({ size: 64, steps: 2, seed: 1, progress: false });
      assert.ok(relErr(r.latents, p.latents) > 1e-4);
      await assert.rejects(sd.generate({ size: 64, steps: 2, sagScale: -1, progress: false }), (e: Error) => e instanceof GuidanceError && /sagScale must be a finite number >= 0/.test(e.message));
      const unet = () => { throw new Error('unused'); };
      await assert.rejects(sampleGuided({ unet, decode: unet, scheduler: makeScheduler('ddim'), steps: 2, latentShape: [4, 8, 8], sagScale: 0.5, progress: false }),
        (e: Error) => e instanceof GuidanceError && /sagScale 0\.5 needs unetWithAttention/.test(e.message));
      tf.dispose([r.images, r.latents, p.images, p.latents]);
    });

    it('data-prep/add-sag-output.py (the export recipe\'s second step, Debian python3-onnx) gives an exported UNet its attention output', async () => {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-sd-recipe-'));
      try {
        fs.cpSync(SD, d, { recursive: true });
        const unetFile = path.join(d, 'unet/model.onnx');
        fs.copyFileSync(path.join(REF, 'unet-without-attention.onnx'), unetFile);
        const py = (...a: string[]) => spawnSync('/usr/bin/python3', [ADD_SAG_OUTPUT, ...a], { encoding: 'utf8' });
        const r = py('--unet', unetFile);
        assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /output mid_attention_probs = \/mid_block\/attentions\.0\/transformer_blocks\.0\/attn1\/Softmax/);
        assert.match(py('--unet', unetFile).stdout, /already has the output mid_attention_probs; nothing to do/);
        const made = await StableDiffusionOnnx.load(d);
        try {
          assert.equal(made.hasAttention, true);
          const x = input('x') as tf.Tensor4D, cond = input('cond') as tf.Tensor3D;
          const [m, f] = [await made.unetWithAttention(x, meta.t, cond), await sd.unetWithAttention(x, meta.t, cond)];
          assert.deepEqual(Array.from(m.attention.dataSync()), Array.from(f.attention.dataSync()));
          assert.deepEqual(Array.from(m.eps.dataSync()), Array.from(f.eps.dataSync()));
          tf.dispose([x, cond, m.eps, m.attention, f.eps, f.attention]);
        } finally {
          await made.dispose();
        }
        // a graph without such an attention: the error lists what it found and how to pick a node
        const bad = py('--unet', path.join(d, 'vae_decoder/model.onnx'));
        assert.notEqual(bad.status, 0);
        assert.match(bad.stderr, /found no Softmax under \/mid_block\/attentions\.0\/transformer_blocks\.0\/attn1\/.*--node NAME/s);
        const missing = py('--unet', path.join(d, 'nope.onnx'));
        assert.match(missing.stderr, /nope\.onnx: no such file; expected unet\/model\.onnx/);
      } finally {
        fs.rmSync(d, { recursive: true });
      }
    });

    it('a UNet without the attention output: loads, samples without SAG, and says clearly that SAG cannot run on it', async () => {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-sd-noattn-'));
      fs.cpSync(SD, d, { recursive: true });
      fs.copyFileSync(path.join(REF, 'unet-without-attention.onnx'), path.join(d, 'unet/model.onnx'));
      const plain = await StableDiffusionOnnx.load(d);
      try {
        assert.equal(plain.hasAttention, false);
        const r = await plain.generate({ size: 64, steps: 2, progress: false });
        tf.dispose([r.images, r.latents]);
        const check = (e: Error) => e instanceof FileFormatError && e.message.includes(path.join(d, 'unet/model.onnx')) && e.message.includes(SD_ATTENTION_OUTPUT)
          && /outputs out_sample/.test(e.message) && /add-sag-output\.py/.test(e.message) && /sagScale: 0/.test(e.message);
        assert.throws(() => plain.requireAttention(), check);
        await assert.rejects(plain.generate({ size: 64, steps: 2, sagScale: 0.75, progress: false }), check);
      } finally {
        await plain.dispose();
        fs.rmSync(d, { recursive: true });
      }
    });
  });
});
