/**
 * The Stable Diffusion ONNX layout on a tiny randomly initialised model (optimum's layout, written by
 * data-prep/fixtures/make_diffusion_fixtures.py): layout errors, onnxruntime forward passes against
 * PyTorch, the differentiable executor against onnxruntime, and brain-guided sampling end to end.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readNpy, FileFormatError } from 'brainnet/io';
import { StableDiffusionOnnx, checkSdOnnxLayout, sampleGuided, makeScheduler, type ScoreFn } from 'brainnet/diffusion';

const SD = path.join(__dirname, '../fixtures/diffusion/tiny-sd');
const REF = path.join(__dirname, '../fixtures/diffusion/tiny-sd-reference');
const inputs = JSON.parse(fs.readFileSync(path.join(REF, 'inputs.json'), 'utf8')) as Record<string, [number[], number, number]> & { timestep: number[] };
/** 1.5 sin(f i + p) over the flat index, float32 (as the Python script makes its inputs). */
const det = ([shape, f, p]: [number[], number, number]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.fround(Math.sin(Math.fround(Math.fround(i * f) + p)) * 1.5);
  return tf.tensor(v, shape);
};
const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let e = 0, m = 0;
  for (let i = 0; i < b.length; i++) { e = Math.max(e, Math.abs(a[i]! - b[i]!)); m = Math.max(m, Math.abs(b[i]!)); }
  return e / Math.max(m, 1e-12);
};
const copySd = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-sd-'));
  fs.cpSync(SD, d, { recursive: true });
  return d;
};

describe('diffusion: Stable Diffusion ONNX layout (tiny model)', function () {
  let sd: StableDiffusionOnnx;
  before(async () => {
    await tf.setBackend('cpu');
    sd = await StableDiffusionOnnx.load(SD);
  });
  after(async () => sd?.dispose());

  it('reads the layout: scheduler config, VAE scaling factor, tokenizer', () => {
    const l = checkSdOnnxLayout(SD);
    assert.equal(l.scheduler.betaSchedule, 'scaled_linear');
    assert.equal(l.scheduler.stepsOffset, 1);
    assert.equal(l.vaeScalingFactor, 0.18215);
    assert.equal(sd.tokenizer.maxLength, 77);
    assert.equal(sd.latentChannels, 4);
  });

  it('a missing folder or file is named together with the expected layout', async () => {
    assert.throws(() => checkSdOnnxLayout('/nonexistent/sd21'), (e: Error) => e instanceof FileFormatError && /no such folder/.test(e.message) && /unet\/model\.onnx/.test(e.message));
    for (const rel of ['unet/model.onnx', 'vae_decoder/model.onnx', 'text_encoder/model.onnx', 'tokenizer/merges.txt', 'model_index.json']) {
      const d = copySd();
      fs.rmSync(path.join(d, rel));
      assert.throws(() => checkSdOnnxLayout(d), (e: Error) => e instanceof FileFormatError && e.message.includes(path.join(d, rel)) && /optimum-cli export onnx/.test(e.message) && /vae_decoder\/model\.onnx/.test(e.message), rel);
      fs.rmSync(d, { recursive: true });
    }
  });

  it('an ONNX model with the wrong inputs is refused by name', async () => {
    const d = copySd();
    fs.copyFileSync(path.join(d, 'vae_decoder/model.onnx'), path.join(d, 'unet/model.onnx'));
    await assert.rejects(StableDiffusionOnnx.load(d), (e: Error) => e instanceof FileFormatError && e.message.includes(path.join(d, 'unet/model.onnx')) && /inputs sample, timestep, encoder_hidden_states/.test(e.message) && /missing sample, timestep, encoder_hidden_states/.test(e.message));
    fs.rmSync(d, { recursive: true });
  });

  it('onnxruntime forward passes match PyTorch (text encoder, UNet, VAE decoder)', async () => {
    const ids = await readNpy(path.join(REF, 'input_ids.npy'));
    const h = await sd.encodeIds(Int32Array.from(ids.data as Int32Array), 1);
    assert.ok(relErr(h.dataSync(), (await readNpy(path.join(REF, 'last_hidden_state.npy'))).data as Float32Array) < 1e-4);
    const sample = det(inputs['sample']!) as tf.Tensor4D;
    const ctx = det(inputs['encoder_hidden_states']!) as tf.Tensor3D;
    const eps = await sd.unet(sample, inputs.timestep[0]!, ctx);
    assert.ok(relErr(eps.dataSync(), (await readNpy(path.join(REF, 'out_sample.npy'))).data as Float32Array) < 1e-4);
    const lat = det(inputs['latent_sample']!) as tf.Tensor4D;
    const img = await sd.decode(lat);
    assert.deepEqual(img.shape, [1, 3, 64, 64]);
    assert.ok(relErr(img.dataSync(), (await readNpy(path.join(REF, 'image.npy'))).data as Float32Array) < 1e-4);
    const p = await sd.encodePrompt(['a photo of a face', '']);
    assert.deepEqual(p.shape, [2, 77, 32]);
    tf.dispose([h, sample, ctx, eps, lat, img, p]);
  });

  it('the differentiable executor matches onnxruntime and gives finite gradients', async () => {
    const { unet, decode } = await sd.differentiable({ batch: 2, height: 8, width: 8 });
    const sample = det(inputs['sample']!) as tf.Tensor4D;
    const ctx = det(inputs['encoder_hidden_states']!) as tf.Tensor3D;
    const a = unet(sample, 981, ctx);
    const b = await sd.unet(sample, 981, ctx);
    assert.ok(relErr(a.dataSync(), b.dataSync()) < 1e-4, `UNet tfjs vs ort ${relErr(a.dataSync(), b.dataSync())}`);
    const z = tf.concat([det(inputs['latent_sample']!), det(inputs['latent_sample']!)]) as tf.Tensor4D;
    const c = decode(z);
    const d = await sd.decode(z);
    assert.ok(relErr(c.dataSync(), d.dataSync()) < 1e-4, 'VAE tfjs vs ort');
    const g = tf.grad((x: tf.Tensor) => tf.sum(decode(tf.div(tf.sub(x, unet(x as tf.Tensor4D, 500, ctx)), 0.18215) as tf.Tensor4D)))(sample);
    const gv = g.dataSync();
    assert.ok(gv.every(Number.isFinite) && gv.some((v) => v !== 0));
    tf.dispose([sample, ctx, a, b, z, c, d, g]);
  });

  it('brain-guided sampling end to end: onnxruntime forward, executor gradient; guidance raises the score', async () => {
    const { unet, decode } = await sd.differentiable({ batch: 1, height: 8, width: 8 });
    const cond = await sd.encodePrompt(['']);
    // toy score: mean red minus mean blue of the 224^2 CLIP-normalised image
    const score: ScoreFn = (img) => tf.tidy(() => tf.sub(tf.mean(img.slice([0, 0, 0, 0], [-1, 1, -1, -1]), [1, 2, 3]), tf.mean(img.slice([0, 2, 0, 0], [-1, 1, -1, -1]), [1, 2, 3])));
    const redness = (im: tf.Tensor4D) => tf.tidy(() => tf.sub(tf.mean(im.slice([0, 0, 0, 0], [-1, 1, -1, -1])), tf.mean(im.slice([0, 2, 0, 0], [-1, 1, -1, -1]))).dataSync()[0]!);
    const common = {
      unet, decode, unetForward: (x: tf.Tensor4D, t: number, c: tf.Tensor3D | null) => sd.unet(x, t, c!), decodeForward: (z: tf.Tensor4D) => sd.decode(z),
      scheduler: makeScheduler('dpmpp2m', checkSdOnnxLayout(SD).scheduler), steps: 4, latentShape: [4, 8, 8] as [number, number, number], seed: 3, cond, progress: false as const,
    };
    const before = tf.memory().numTensors;
    const plain = await sampleGuided(common);
    const guided = await sampleGuided({ ...common, score, guidanceScale: 20, gradient: 'x0' });
    const full = await sampleGuided({ ...common, score, guidanceScale: 20, gradient: 'full' });
    assert.deepEqual(plain.images.shape, [1, 3, 64, 64]);
    const [r0, r1, r2] = [redness(plain.images), redness(guided.images), redness(full.images)];
    if (process.env.DEBUG_DIFFUSION) console.log({ r0, r1, r2 });
    assert.ok(r1 > r0 + 0.01 && r2 > r0 + 0.01, `redness unguided ${r0}, x0-guided ${r1}, full ${r2}`);
    tf.dispose([plain.images, plain.latents, guided.images, guided.latents, full.images, full.latents]);
    assert.equal(tf.memory().numTensors, before, 'sampling leaks nothing');
    cond.dispose();
  });

  it('generate(): defaults wrap it all (prompt, scheduler from the layout, cached executor graphs), with progress lines', async () => {
    const lines: string[] = [];
    const score: ScoreFn = (img) => tf.mean(img.slice([0, 0, 0, 0], [-1, 1, -1, -1]), [1, 2, 3]);
    const r = await sd.generate({ score, guidanceScale: 5, size: 64, steps: 3, seed: 2, prompt: 'a photo of a face', progress: { mode: 'log', write: (s) => lines.push(s) } });
    assert.deepEqual(r.images.shape, [1, 3, 64, 64]);
    assert.equal(r.timesteps.length, 3);
    assert.ok(r.gradNorms.every((g) => g > 0));
    assert.ok(lines.join('').includes('brain-guided sampling'), lines.join(''));
    const c = await sd.generate({ size: 64, steps: 2, negativePrompt: '', prompt: 'a face', cfgScale: 7.5, progress: false });
    assert.ok(c.gradNorms.every((g) => g === 0));
    tf.dispose([r.images, r.latents, c.images, c.latents]);
    await assert.rejects(sd.generate({ size: 60 }), /multiple of 8/);
  });
});
