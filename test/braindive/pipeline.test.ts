/**
 * The BrainDiVE pipelines' verbs (generate, score, classify, describe) and their input errors: the synthetic world's with
 * the committed models, and the Stable Diffusion one on tiny stand-ins in the real layouts (optimum's SD folder, a ViT
 * exported to ONNX as the image encoder, a whole tiny CLIP for zero-shot).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, initBackend, loadSyntheticPipeline, loadSdPipeline } from 'brainnet';
import { loadOnnxImageEncoder } from 'brainnet/backbones';
import { FileFormatError } from 'brainnet/io';
import { trainVoxelEncoder, saveVoxelEncoder, runRegions, SYNTHETIC_NO_SAG, type SyntheticPipeline } from 'brainnet/braindive';

const REPO = path.resolve(__dirname, '../..');
const rowSums = (p: Float32Array, n: number) => Array.from({ length: n }, (_, i) => p.subarray(i * 5, i * 5 + 5).reduce((a, b) => a + b, 0));

describe('BrainDiVE pipeline: synthetic world', function () {
  this.timeout(300000);
  let pipeline: SyntheticPipeline;
  before(async () => {
    pipeline = await loadSyntheticPipeline({ steps: 3 });
  });
  after(async () => pipeline?.dispose());

  it('generate gives images on [0,1] with the activation that score() gives; classify gives probabilities', async () => {
    const g = await pipeline.generate({ region: 'PPA', scale: 10, seeds: [5, 6] });
    assert.deepEqual(g.images.shape, [2, 3, 64, 64]);
    assert.ok(tf.min(g.images).dataSync()[0]! >= 0 && tf.max(g.images).dataSync()[0]! <= 1);
    assert.deepEqual(Array.from(pipeline.score('PPA', g.images)), Array.from(g.activation));
    const p = await pipeline.classify(g.images);
    assert.equal(p.length, 10);
    for (const s of rowSums(p, 2)) assert.ok(Math.abs(s - 1) < 1e-4, `row sum ${s}`);
    assert.match(pipeline.describe(), /mobilenetv2@nsfwjs4.*618 voxels.*PPA/s);
    g.images.dispose();
  });

  it('names what is wrong with its inputs', async () => {
    await assert.rejects(pipeline.generate({ region: 'FFX', scale: 10, seeds: [0] }), /unknown region 'FFX'.*PPA/);
    await assert.rejects(pipeline.generate({ region: 'PPA', scale: NaN, seeds: [0] }), /finite/);
    await assert.rejects(pipeline.generate({ region: 'PPA', scale: 10, seeds: [] }), /at least one seed/);
    await assert.rejects(pipeline.generate({ region: 'PPA', scale: 10, seeds: [0], batch: 0 }), /batch must be a positive integer/);
    await assert.rejects(pipeline.generate({ region: 'PPA', scale: 10, seeds: [0], sagScale: -1 }), /sagScale must be a finite number >= 0/);
  });

  it('SAG does not apply (no attention in its denoiser): asked for, one line says so, and the images are those without it', async () => {
    assert.equal(pipeline.sagScale, 0);
    const lines: string[] = [];
    const warn = console.warn;
    console.warn = (...a: unknown[]) => lines.push(a.join(' '));
    try {
      const plain = await pipeline.generate({ region: 'PPA', scale: 10, seeds: [5] });
      assert.equal(lines.length, 0);
      const asked = await pipeline.generate({ region: 'PPA', scale: 10, seeds: [5], sagScale: 0.75 });
      const again = await pipeline.generate({ region: 'PPA', scale: 0, seeds: [5], sagScale: 0.75 });
      assert.deepEqual(lines, [SYNTHETIC_NO_SAG], 'one line, once');
      assert.match(lines[0]!, /does not apply in the synthetic world: its denoiser has no self-attention/);
      assert.equal(asked.sagScale, 0);
      assert.deepEqual(Array.from(asked.images.dataSync()), Array.from(plain.images.dataSync()));
      tf.dispose([plain.images, asked.images, again.images]);
    } finally {
      console.warn = warn;
    }
  });
});

describe('BrainDiVE pipeline: Stable Diffusion ONNX (tiny fixtures)', function () {
  this.timeout(300000);
  const vit = path.join(REPO, 'test/fixtures/onnx/vit_tiny.onnx');
  const sdDir = path.join(REPO, 'test/fixtures/diffusion/tiny-sd');
  const clipModel = path.join(REPO, 'test/fixtures/braindive/tiny-clip');
  let tmp: string;
  let encoderFile: string;
  before(async () => {
    // a voxel encoder on the ViT's features (random responses: the wiring is under test, not the science)
    await initBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bd-sd-pipeline-'));
    const fx = await loadOnnxImageEncoder(vit, { inputSize: 32 });
    const n = 64, v = 6;
    const X = new Float32Array(n * fx.dim).map((_, i) => Math.sin(i * 1.3)), Y = new Float32Array(n * v).map((_, i) => Math.cos(i * 0.7));
    const enc = trainVoxelEncoder(X, Y, n, fx.dim, v, null, { featureName: fx.name, vertexSet: 'lh 3 + rh 3 #test', regions: { FFA: Int32Array.from([0, 1, 2]) } }, { steps: 20 });
    encoderFile = path.join(tmp, 'encoder.safetensors');
    await saveVoxelEncoder(encoderFile, enc);
  });
  after(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

  it('generates guided images scored by the encoder, classified by CLIP zero-shot', async () => {
    const pipeline = await loadSdPipeline({ sdDir, clipEncoder: vit, clipInputSize: 32, encoderFile, clipModel, size: 64, steps: 2 });
    try {
      const g = await pipeline.generate({ region: 'FFA', scale: 5, seeds: [0, 1] });
      assert.deepEqual(g.images.shape, [2, 3, 64, 64]);
      assert.deepEqual(Array.from(pipeline.score('FFA', g.images)), Array.from(g.activation));
      const p = await pipeline.classify(g.images);
      assert.ok(p && p.length === 10);
      for (const s of rowSums(p, 2)) assert.ok(Math.abs(s - 1) < 1e-4, `row sum ${s}`);
      assert.match(pipeline.describe(), /Stable Diffusion ONNX.*64\^2, 2 steps, self-attention guidance 0\.75.*CLIP zero-shot/s);
      assert.equal(g.sagScale, 0.75, 'SAG at the paper\'s 0.75 by default');
      // turned off per call: other images from the same seeds
      const off = await pipeline.generate({ region: 'FFA', scale: 5, seeds: [0, 1], sagScale: 0 });
      assert.equal(off.sagScale, 0);
      assert.notDeepEqual(Array.from(off.images.dataSync()), Array.from(g.images.dataSync()));
      // the runs record the scale
      const out = path.join(tmp, 'runs');
      await runRegions({ pipeline, outDir: out, regions: ['FFA'], n: 1, scale: 5, steps: 2, batch: 1 });
      await runRegions({ pipeline, outDir: path.join(tmp, 'runs-nosag'), regions: ['FFA'], n: 1, scale: 5, steps: 2, batch: 1, sagScale: 0 });
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'FFA', '0000.json'), 'utf8')).sagScale, 0.75);
      assert.equal(JSON.parse(fs.readFileSync(path.join(tmp, 'runs-nosag', 'FFA', '0000.json'), 'utf8')).sagScale, 0);
      tf.dispose([g.images, off.images]);
    } finally {
      await pipeline.dispose();
    }
  });

  it('SAG needs the UNet\'s attention output: a UNet without it is refused at load, unless sagScale is 0', async () => {
    const d = path.join(tmp, 'sd-no-attention');
    fs.cpSync(sdDir, d, { recursive: true });
    fs.copyFileSync(path.join(REPO, 'test/fixtures/diffusion/tiny-sd-reference/unet-without-attention.onnx'), path.join(d, 'unet/model.onnx'));
    await assert.rejects(loadSdPipeline({ sdDir: d, clipEncoder: vit, clipInputSize: 32, encoderFile, size: 64, steps: 2 }),
      (e: Error) => e instanceof FileFormatError && e.message.includes(path.join(d, 'unet/model.onnx')) && /mid_attention_probs/.test(e.message) && /add-sag-output\.py/.test(e.message) && /sagScale: 0/.test(e.message));
    const pipeline = await loadSdPipeline({ sdDir: d, clipEncoder: vit, clipInputSize: 32, encoderFile, size: 64, steps: 2, sagScale: 0 });
    try {
      assert.match(pipeline.describe(), /no self-attention guidance/);
      const g = await pipeline.generate({ region: 'FFA', scale: 5, seeds: [0] });
      assert.equal(g.sagScale, 0);
      g.images.dispose();
    } finally {
      await pipeline.dispose();
    }
    await assert.rejects(loadSdPipeline({ sdDir, clipEncoder: vit, clipInputSize: 32, encoderFile, size: 64, sagScale: -0.5 }), /sagScale must be a finite number >= 0/);
  });

  it('without clipModel classify gives null; missing paths and a foreign encoder are named', async () => {
    const pipeline = await loadSdPipeline({ sdDir, clipEncoder: vit, clipInputSize: 32, encoderFile, size: 64, steps: 2 });
    try {
      assert.equal(await pipeline.classify(tf.zeros([1, 3, 64, 64]) as tf.Tensor4D), null);
    } finally {
      await pipeline.dispose();
    }
    await assert.rejects(loadSdPipeline({ sdDir: '', clipEncoder: vit, encoderFile }), /sdDir is empty/);
    // an encoder trained on other features than the CLIP encoder gives
    const other = path.join(tmp, 'other.safetensors');
    const enc = trainVoxelEncoder(new Float32Array(8 * 4), new Float32Array(8 * 2), 8, 4, 2, null, { featureName: 'other-features', vertexSet: 'x' }, { steps: 1 });
    await saveVoxelEncoder(other, enc);
    await assert.rejects(loadSdPipeline({ sdDir, clipEncoder: vit, clipInputSize: 32, encoderFile: other, size: 64 }), /trained on features 'other-features'/);
  });
});
