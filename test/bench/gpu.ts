/**
 * `npm run bench -- gpu [--quick] [--full] [--reps R] [--head fused|device] [--vertices N] [--sizes 8,64] [--skip token_extraction,encoding_training,guided_diffusion]`
 *
 * One benchmark that runs unchanged on this CPU machine and on a GPU machine without node (packed
 * with ../shared/tools/device-pack.mjs; see the README's GPU section). It prints JSON with:
 * - the backend initBackend chose (BRAINNET_BACKEND forces one) and why;
 * - token extraction images/s: built-in MobileNetV2 (tfjs), and ViT-B/16 through the differentiable
 *   ONNX executor (data/onnx/vit_b_16.onnx when present, else the tiny ViT fixture: it says which);
 * - encoding-model training steps/s at the paper's size (37,984 vertices, 12 x 768, 8 x 8, B = 8)
 *   with the read-out the backend selects (fused on wasm/cpu, device on webgpu/tensorflow), peak
 *   memory (tf.memory() and RSS) and readbacks per step;
 * - a brain-guidance evaluation with the full gradient (UNet + VAE decoder + score, forward and
 *   backward through the executor) at 64^2 (latent 8) and 512^2-equivalent (latent 64) images, on the
 *   tiny random SD fixture (test/fixtures/diffusion/tiny-sd: SD's block types, far fewer channels),
 *   next to the forward alone;
 * - with --full, the wall time of the example's compute (token cache + fitEncoder with ridge) on the
 *   full synthetic subject (data/subjects/full, 9841 images), or 'skipped' with the command to make it.
 *
 * On the GPU machine it runs as plain JavaScript: `npx esbuild test/bench/gpu.ts --bundle --platform=node
 * --format=cjs --packages=external --outfile=dist/bench/gpu.js`, then `node dist/bench/gpu.js`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as BN from 'brainnet';

/** The repository root (this file runs from test/bench, or bundled from dist/bench). */
function findRoot(): string {
  for (let d = __dirname; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'test', 'fixtures'))) return d;
    if (d === path.dirname(d)) return path.join(__dirname, '..', '..');
  }
}
const ROOT = findRoot();

/**
 * brainnet, loaded after a guard: native packages the GPU machine may lack (canvas needs cairo,
 * sharp needs its libvips) become stubs that throw only when used, since the benchmark needs neither.
 */
function loadBrainnet(): typeof BN {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Module = require('node:module') as { _load: (req: string, parent: unknown, isMain: boolean) => unknown };
  const orig = Module._load;
  if (!(orig as { guarded?: boolean }).guarded) {
    const guarded = function (this: unknown, req: string, parent: unknown, isMain: boolean) {
      try {
        return orig.call(this, req, parent, isMain);
      } catch (e) {
        if (req !== 'canvas' && req !== 'sharp') throw e;
        const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
        return new Proxy({}, {
          get: (_t, prop) => (prop === '__esModule' || prop === 'then' || typeof prop === 'symbol' ? undefined : () => { throw new Error(`${req} is not available on this machine (${why})`); }),
        });
      }
    };
    (guarded as { guarded?: boolean }).guarded = true;
    Module._load = guarded;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('brainnet') as typeof BN;
}

function arg(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Runs `f` once to warm up (kernel compilation), then `reps` timed times; the median in seconds. `after` runs after each timed rep. */
async function medianSeconds(f: () => Promise<unknown>, reps: number, after?: () => void): Promise<number> {
  await f();
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await f();
    ts.push((performance.now() - t0) / 1000);
    after?.();
  }
  return median(ts);
}
const round = (x: number, d = 3) => Number(x.toFixed(d));
const mb = (b: number) => Math.round(b / 2 ** 20);

/** Peak of tf.memory() (bytes on the backend) and of the RSS, sampled by callers and a timer. */
class Peak {
  tfBytes = 0;
  rss = 0;
  gpuBytes = 0;
  private timer: NodeJS.Timeout;
  constructor() {
    this.timer = setInterval(() => this.sample(), 50);
  }
  sample(): void {
    const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesInGPUAllocated?: number };
    this.tfBytes = Math.max(this.tfBytes, m.numBytes);
    this.gpuBytes = Math.max(this.gpuBytes, m.numBytesInGPUAllocated ?? m.numBytesInGPU ?? 0);
    this.rss = Math.max(this.rss, process.memoryUsage().rss);
  }
  report(): Record<string, number> {
    this.sample();
    const r: Record<string, number> = { peak_tf_mb: mb(this.tfBytes), peak_rss_mb: mb(this.rss) };
    if (this.gpuBytes) r['peak_gpu_allocated_mb'] = mb(this.gpuBytes);
    return r;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** Waits for the device: a one-element readback of `t` (the only honest clock on a GPU). */
async function sync(t: tf.Tensor): Promise<void> {
  await tf.slice(t.reshape([-1]), 0, 1).data();
}

async function tokenExtraction(bn: typeof BN, quick: boolean, reps: number): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const B = quick ? 2 : 8;
  const mob = await bn.loadBuiltinBackbone('mobilenetv2');
  const x = tf.randomUniform([B, 3, ...mob.inputSize], 0, 1, 'float32', 1) as tf.Tensor4D;
  const once = async () => {
    const t = await mob.getTokens(x);
    for (const v of Object.values(t.local)) await sync(v);
    bn.backbones.disposeTokens(t);
  };
  const mt = await medianSeconds(once, reps);
  x.dispose();
  await mob.dispose();
  out['mobilenetv2_builtin'] = { batch: B, median_s: round(mt, 4), images_per_s: round(B / mt, 2) };

  const big = path.join(ROOT, 'data', 'onnx', 'vit_b_16.onnx');
  const model = fs.existsSync(big) ? big : path.join(ROOT, 'test', 'fixtures', 'onnx', 'vit_tiny.onnx');
  const which = fs.existsSync(big) ? 'ViT-B/16 (data/onnx/vit_b_16.onnx, random weights, 224^2)' : 'tiny ViT fixture (test/fixtures/onnx/vit_tiny.onnx, 32^2): data/onnx/vit_b_16.onnx is absent';
  const size = fs.existsSync(big) ? 224 : 32;
  const VB = quick ? 1 : 8;
  const g = await bn.backbones.loadOnnxGraph(model, { inputShapes: { images: [VB, 3, size, size] } });
  const xi = tf.randomUniform([VB, 3, size, size], 0, 1, 'float32', 2);
  const run1 = async () => {
    const o = g.run({ images: xi });
    await sync(Object.values(o)[0]!);
    tf.dispose(Object.values(o));
  };
  const vt = await medianSeconds(run1, Math.max(1, quick ? 1 : reps));
  xi.dispose();
  g.dispose();
  out['vit_executor'] = { model: which, batch: VB, median_s: round(vt, 4), images_per_s: round(VB / vt, 2) };
  return out;
}

async function encodingTraining(bn: typeof BN, args: string[], quick: boolean, reps: number): Promise<Record<string, unknown>> {
  const N = Number(arg(args, 'vertices', '37984'));
  const L = 12, C = 768, g = 8, B = 8;
  const coords = new Float32Array(N * 3);
  for (let i = 0; i < N; i++) {
    const a = i * 0.618034, z = 1 - (2 * i + 1) / N, r = Math.sqrt(1 - z * z);
    coords[3 * i] = 100 * r * Math.cos(a * 2 * Math.PI);
    coords[3 * i + 1] = 100 * r * Math.sin(a * 2 * Math.PI);
    coords[3 * i + 2] = 100 * z;
  }
  const head = arg(args, 'head', 'auto') as 'auto' | 'fused' | 'device';
  const model = new bn.encoding.FactorizedEncoder(coords, { layerWidths: Array(L).fill(C), seed: 0, head });
  const tokens = {
    local: Array.from({ length: L }, (_, l) => tf.randomNormal([B, C, g, g], 0, 1, 'float32', 10 + l) as tf.Tensor4D),
    global: Array.from({ length: L }, (_, l) => tf.randomNormal([B, C], 0, 1, 'float32', 40 + l) as tf.Tensor2D),
  };
  const target = tf.randomNormal([B, N], 0, 1, 'float32', 99) as tf.Tensor2D;
  const opt = new bn.encoding.AdamW();
  const peak = new Peak();
  const times: number[] = [];
  let readbacks: number[] = [];
  let loss = NaN;
  try {
    const steps = quick ? 3 : reps + 2;
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      // the step's one readback (async: webgpu in Node cannot read back synchronously) waits for the device
      const r = await bn.compute.countReadbacksAsync(() => bn.encoding.trainStep({ model, optimizer: opt, tokens, target, step: s }));
      const dt = (performance.now() - t0) / 1000;
      peak.sample();
      loss = r.result.loss;
      readbacks.push(r.count);
      if (s > 0) times.push(dt); // the first step compiles kernels and makes the AdamW moments
    }
  } finally {
    peak.stop();
    tf.dispose([target, ...tokens.local, ...tokens.global]);
  }
  readbacks = readbacks.slice(1);
  const out = {
    size: { vertices: N, layers: L, width: C, grid: g, batch: B },
    head: model.headKind(),
    steps_timed: times.length,
    median_step_s: round(median(times), 4),
    steps_per_s: round(1 / median(times), 3),
    readbacks_per_step: median(readbacks),
    last_loss: round(loss, 5),
    memory: peak.report(),
  };
  model.dispose();
  return out;
}

async function guidedDiffusion(bn: typeof BN, args: string[], quick: boolean, reps: number): Promise<Record<string, unknown>> {
  const dir = path.join(ROOT, 'test', 'fixtures', 'diffusion', 'tiny-sd');
  const sizes = arg(args, 'sizes', '8,64').split(',').map(Number);
  const sd = await bn.diffusion.StableDiffusionOnnx.load(dir);
  const cond = await sd.encodePrompt(['']);
  // a fixed random conv "brain encoder": [B,3,224,224] -> ROI mean [B]
  const w1 = tf.randomNormal([8, 8, 3, 16], 0, 0.1, 'float32', 1) as tf.Tensor4D;
  const w2 = tf.randomNormal([16, 32], 0, 0.3, 'float32', 2) as tf.Tensor2D;
  const score: BN.diffusion.ScoreFn = (img) => {
    const x = tf.transpose(img, [0, 2, 3, 1]) as tf.Tensor4D;
    const h = tf.relu(tf.conv2d(x, w1, 8, 'valid'));
    return tf.mean(tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, w2), 1);
  };
  const rows: Record<string, unknown>[] = [];
  const peak = new Peak();
  try {
    for (const side of sizes) {
      const { unet, decode, unetGraph, vaeGraph } = await sd.differentiable({ batch: 1, height: side, width: side });
      const x = tf.randomNormal([1, sd.latentChannels, side, side], 0, 1, 'float32', 5) as tf.Tensor4D;
      const t = 500;
      const a = 0.5;
      const forward = async () => {
        const s = tf.tidy(() => {
          const eps = unet(x, t, cond);
          const x0 = tf.div(tf.sub(x, tf.mul(eps, Math.sqrt(1 - a))), Math.sqrt(a));
          const img = decode(tf.div(x0, sd.layout.vaeScalingFactor) as tf.Tensor4D);
          return tf.sum(score(bn.diffusion.toClipInput(img, 224)));
        });
        await s.data();
        s.dispose();
      };
      const guided = async () => {
        const eps = tf.tidy(() => unet(x, t, cond));
        const r = bn.compute.countReadbacks(() => bn.diffusion.brainGuidance({ unet, decode, score, x, eps, t, alphaBar: a, guidanceScale: 100, gradient: 'full', context: cond, vaeScalingFactor: sd.layout.vaeScalingFactor, scoreSize: 224 }));
        await sync(r.result.g);
        tf.dispose([eps, r.result.g]);
        return r.count;
      };
      const n = quick ? 1 : reps;
      const fwd = await medianSeconds(forward, n, () => peak.sample());
      const full = await medianSeconds(guided, n, () => peak.sample());
      const rb = await guided();
      rows.push({
        latent_side: side, image_side: side * 8,
        forward_s: round(fwd, 4),
        forward_and_full_gradient_s: round(full, 4),
        gradient_overhead_over_forward: round((full - fwd) / fwd, 3),
        readbacks_per_guidance: rb,
      });
      x.dispose();
      unetGraph.dispose();
      vaeGraph.dispose();
    }
  } finally {
    peak.stop();
    tf.dispose([w1, w2, cond]);
    await sd.dispose();
  }
  return {
    model: 'tiny random SD (test/fixtures/diffusion/tiny-sd: SD-2.1 block types with far fewer channels); 512^2-equivalent = latent 64 x 64. UNet, VAE decoder and a small conv score forward (and backward) through the differentiable ONNX executor on the tfjs backend',
    results: rows,
    memory: peak.report(),
  };
}

async function fullExample(bn: typeof BN, choice: string): Promise<Record<string, unknown>> {
  const dir = path.join(ROOT, 'data', 'subjects', 'full');
  if (!fs.existsSync(path.join(dir, 'training_split', 'training_fmri', 'lh_training_fmri.npy'))) {
    return { skipped: `no full synthetic subject in ${path.relative(ROOT, dir)}; make it once with \`npm run example -- --size full\` (generates data/subjects/full, 9841 images, then runs the notebook) and rerun with --full` };
  }
  const t0 = performance.now();
  const subject = await bn.loadAlgonautsSubject(dir);
  const tLoad = (performance.now() - t0) / 1000;
  const backbone = await bn.loadBuiltinBackbone('mobilenetv2');
  const peak = new Peak();
  try {
    const fit = await bn.fitEncoder({ subject, backbone, cacheDir: path.join(ROOT, 'outputs', 'cache', 'tokens-gpu-bench'), log: null, progress: false });
    const total = (performance.now() - t0) / 1000;
    const r2 = fit.r2.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) / fit.r2.length;
    fit.model.dispose();
    return { subject: path.relative(ROOT, dir), backend: choice, backbone: 'mobilenetv2', load_s: round(tLoad, 1), wall_s: round(total, 1), mean_val_r2: round(r2, 4), memory: peak.report() };
  } finally {
    peak.stop();
    await backbone.dispose();
  }
}

/** Runs the GPU benchmark and returns its JSON (see the file comment for the flags). */
export async function run(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const reps = Number(arg(args, 'reps', quick ? '1' : '5'));
  const skip = new Set(arg(args, 'skip', '').split(',').filter(Boolean));
  const bn = loadBrainnet();
  const lines: string[] = [];
  const choice = await bn.initBackend({ log: (l) => lines.push(l) });
  await tf.ready();
  const result: Record<string, unknown> = {
    backend: { chosen: choice.name, tf_backend: tf.getBackend(), forced: choice.forced, report: lines.join(' '), skipped: choice.skipped },
    quick,
  };
  const section = async (name: string, f: () => Promise<Record<string, unknown>>) => {
    if (skip.has(name)) {
      result[name] = 'skipped (--skip)';
      return;
    }
    const t0 = performance.now();
    try {
      result[name] = { ...(await f()), section_wall_s: round((performance.now() - t0) / 1000, 1) };
    } catch (e) {
      result[name] = { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
    }
  };
  await section('token_extraction', () => tokenExtraction(bn, quick, reps));
  await section('encoding_training', () => encodingTraining(bn, args, quick, reps));
  await section('guided_diffusion', () => guidedDiffusion(bn, args, quick, reps));
  if (args.includes('--full')) await section('example_full', () => fullExample(bn, choice.name));
  else result['example_full'] = 'skipped: pass --full (needs data/subjects/full: `npm run example -- --size full` makes it)';
  result['tensors_left'] = tf.memory().numTensors;
  return result;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  run(args)
    .then((r) => console.log(JSON.stringify({ bench: 'gpu', started: new Date().toISOString(), node: process.version, ...r }, null, 2)))
    .catch((e) => {
      console.error(e instanceof Error ? e.stack ?? e.message : e);
      process.exit(1);
    });
}
