/**
 * Benchmark: the ViT-B/16 forward (and input gradient) through the differentiable ONNX executor
 * (tfjs backend chosen by `initBackend()`, wasm here) next to onnxruntime-node (CPU) on the same
 * model, in images/s, plus peak resident memory. Needs data/onnx/vit_b_16.onnx
 * (`/usr/bin/python3 data-prep/fixtures/make_onnx_fixtures.py --vit-b16`); falls back to the tiny
 * ViT fixture when it is absent. `npm run bench -- onnx [--batch N] [--reps N] [--model P] [--no-grad]`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { initBackend } from 'brainnet';
import { loadOnnxGraph } from 'brainnet/backbones';

function argValue(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

let peakRss = 0;
const sample = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };

async function timeIt(reps: number, f: () => Promise<void> | void): Promise<number[]> {
  await f(); // warm-up, untimed
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await f();
    ts.push((performance.now() - t0) / 1000);
    sample();
  }
  return ts;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const root = path.join(__dirname, '..', '..');
  const big = path.join(root, 'data', 'onnx', 'vit_b_16.onnx');
  const model = argValue(args, 'model', fs.existsSync(big) ? big : path.join(root, 'test', 'fixtures', 'onnx', 'vit_tiny.onnx'));
  const batch = Number(argValue(args, 'batch', '1'));
  const reps = Number(argValue(args, 'reps', '3'));
  const size = model.includes('tiny') ? 32 : 224;
  const shape = [batch, 3, size, size];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const ticker = setInterval(sample, 50);
  try {
    // onnxruntime-node
    const sess = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
    const feeds = { images: new ort.Tensor('float32', data, shape) };
    const ortTimes = await timeIt(reps, async () => { await sess.run(feeds); });
    const ortOut = (await sess.run(feeds))['out']!.data as Float32Array;
    await sess.release();
    const rssAfterOrt = process.memoryUsage().rss;
    // the differentiable executor
    const choice = await initBackend({ log: null });
    const t0 = performance.now();
    const g = await loadOnnxGraph(model, { inputShapes: { images: shape } });
    const loadS = (performance.now() - t0) / 1000;
    sample();
    const x = tf.tensor(data, shape);
    let ours: Float32Array | null = null;
    const fwdTimes = await timeIt(reps, () => { const o = g.run({ images: x }); ours = o['out']!.dataSync() as Float32Array; tf.dispose(o); });
    let maxAbs = 0, maxRef = 0;
    for (let i = 0; i < ortOut.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(ours![i]! - ortOut[i]!)); maxRef = Math.max(maxRef, Math.abs(ortOut[i]!)); }
    let gradTimes: number[] | null = null;
    if (!args.includes('--no-grad')) {
      const f = tf.grad((im: tf.Tensor) => tf.sum(g.run({ images: im })['out']!));
      gradTimes = await timeIt(Math.min(reps, 2), () => { const d = f(x); d.dataSync(); d.dispose(); });
    }
    const prof = g.profile({ images: x });
    const profileTop = Object.fromEntries(Object.entries(prof).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => [k, Number(v.toFixed(3))]));
    const tensors = tf.memory().numTensors;
    x.dispose();
    g.dispose();
    return {
      model: path.relative(root, model), batch, reps, backend: choice.tfBackend,
      graph: g.stats,
      onnxruntime: { median_s: median(ortTimes), images_per_s: batch / median(ortTimes) },
      executor: { load_and_fold_s: loadS, forward_median_s: median(fwdTimes), images_per_s: batch / median(fwdTimes), rel_err_vs_ort: maxAbs / maxRef },
      forward_seconds_by_op: profileTop,
      gradient: gradTimes ? { median_s: median(gradTimes), images_per_s: batch / median(gradTimes) } : 'skipped',
      memory: { rss_after_ort_mb: Math.round(rssAfterOrt / 2 ** 20), peak_rss_mb: Math.round(peakRss / 2 ** 20), live_tensors_at_end: tensors },
    };
  } finally {
    clearInterval(ticker);
  }
}
