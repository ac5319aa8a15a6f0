/**
 * The 5-way category classifier of the synthetic world (faces, bodies, places, words, food): a small
 * CNN on 64x64 images trained by the project on the categorised stimulus labels. With real weights,
 * the paper uses CLIP zero-shot instead (see `clipZeroShot`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import { conv3x3, dense, loadParams, saveParams, type Params } from '../diffusion/pixel-unet.js';
import { ModelFolderError } from '../diffusion/model-folder.js';
import { resizeBilinearNCHW } from '../backbones/resize.js';
import { EVAL_CATEGORIES, type CategorisedSet } from './categories.js';

const CH = [3, 16, 32, 64];

/** Fresh classifier parameters (He-normal, seeded). */
export function initClassifier(seed = 0): Params {
  const rng = new Rng(seed);
  const p: Params = {};
  const he = (shape: number[], fanIn: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.normal() * Math.sqrt(2 / fanIn);
    return tf.tensor(v, shape);
  };
  for (let l = 0; l < 3; l++) {
    p[`c${l}.w`] = he([3, 3, CH[l]!, CH[l + 1]!], 9 * CH[l]!);
    p[`c${l}.b`] = tf.zeros([CH[l + 1]!]);
  }
  p['fc.w'] = he([64, 5], 64);
  p['fc.b'] = tf.zeros([5]);
  return p;
}

/** Logits [B,5] of images x [B,64,64,3] (NHWC, on [0,1]); pooled to 32^2, three conv+ReLU+pool stages (16, 32, 64 channels), global mean, linear. */
export function classifierLogits(p: Params, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [B0, H0, W0] = x.shape;
    // work at 32^2: 2x2 mean pooling first
    let h: tf.Tensor4D = tf.mean(tf.reshape(tf.sub(tf.mul(x, 2), 1), [B0, H0 / 2, 2, W0 / 2, 2, 3]), [2, 4]) as tf.Tensor4D;
    for (let l = 0; l < 3; l++) {
      h = tf.relu(tf.add(conv3x3(h, p[`c${l}.w`] as tf.Tensor4D), p[`c${l}.b`]!)) as tf.Tensor4D;
      const [B, H, W, C] = h.shape;
      h = tf.mean(tf.reshape(h, [B, H / 2, 2, W / 2, 2, C]), [2, 4]) as tf.Tensor4D;
    }
    const g = tf.mean(h, [1, 2]) as tf.Tensor2D;
    return dense(g, p['fc.w'] as tf.Tensor2D, p['fc.b'] as tf.Tensor1D);
  });
}

/** Trains the classifier on a categorised set (64^2) with Adam and mild noise augmentation; returns params and the training accuracy of the last 50 steps. */
export function trainClassifier(set: CategorisedSet, opts: { steps?: number; batch?: number; lr?: number; seed?: number; onStep?: (step: number, loss: number) => void } = {}): { params: Params; accuracy: number } {
  const { steps = 300, batch = 16, lr = 3e-3, seed = 0 } = opts;
  const p = initClassifier(seed);
  const vars = Object.fromEntries(Object.entries(p).map(([k, t]) => [k, tf.variable(t)]));
  const opt = tf.train.adam(lr);
  const rng = new Rng(seed + 7);
  const S = set.size;
  const per = S * S * 3;
  let correct = 0, seen = 0;
  for (let s = 0; s < steps; s++) {
    const xb = new Float32Array(batch * per);
    const yb = new Int32Array(batch);
    for (let b = 0; b < batch; b++) {
      const i = rng.int(0, set.count);
      const sig = rng.uniform(0, 0.15);
      for (let k = 0; k < per; k++) xb[b * per + k] = set.pixels[i * per + k]! / 255 + sig * rng.normal();
      yb[b] = set.labels[i]!;
    }
    const x = tf.tensor4d(xb, [batch, S, S, 3]);
    const y = tf.oneHot(tf.tensor1d(yb, 'int32'), 5);
    const loss = opt.minimize(() => {
      const logits = classifierLogits(vars as unknown as Params, x);
      if (s >= steps - 50) {
        const pred = tf.argMax(logits, 1).dataSync();
        for (let b = 0; b < batch; b++) correct += pred[b] === yb[b] ? 1 : 0;
        seen += batch;
      }
      return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
    }, true);
    opts.onStep?.(s, loss!.dataSync()[0]!);
    loss!.dispose();
    x.dispose();
    y.dispose();
  }
  opt.dispose();
  const params: Params = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.clone()]));
  Object.values(vars).forEach((v) => v.dispose());
  return { params, accuracy: seen ? correct / seen : NaN };
}

/** Class probabilities [B,5] (EVAL_CATEGORIES order) of images [B,3,H,W] on [0,1] (resized to 64). */
export function classifyImages(p: Params, images01: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    let x = images01;
    if (x.shape[2] !== 64 || x.shape[3] !== 64) x = resizeBilinearNCHW(x, 64, 64);
    return tf.softmax(classifierLogits(p, tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D)) as tf.Tensor2D;
  });
}

/** Saves classifier weights into a folder (classifier.safetensors). */
export async function saveClassifier(dir: string, p: Params, meta: Record<string, string> = {}): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await saveParams(path.join(dir, 'classifier.safetensors'), p, { format: 'brainnet-category-classifier', categories: EVAL_CATEGORIES.join(','), ...meta });
}

/** Loads classifier weights from a folder; names the missing file. */
export async function loadClassifier(dir: string): Promise<Params> {
  const f = path.join(dir, 'classifier.safetensors');
  if (!fs.existsSync(f)) throw new ModelFolderError(`classifier folder ${dir} is incomplete: classifier.safetensors is missing; run data-prep/braindive/train-classifier.ts`);
  return loadParams(f);
}

/** The paper's CLIP zero-shot prompts for the five categories (BrainDiVE evaluation). */
export const CLIP_PROMPTS: Record<(typeof EVAL_CATEGORIES)[number], string> = {
  faces: 'A photo of a person\'s face',
  bodies: 'A photo of a person\'s body',
  places: 'A photo of a place',
  words: 'A photo of words',
  food: 'A photo of food',
};

/** CLIP zero-shot classification: image embeddings [B,D] and prompt text embeddings [5,D] -> probabilities [B,5] (softmax of 100 x cosine). */
export function clipZeroShot(imageEmbeds: tf.Tensor2D, textEmbeds: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const a = tf.div(imageEmbeds, tf.norm(imageEmbeds, 'euclidean', 1, true));
    const b = tf.div(textEmbeds, tf.norm(textEmbeds, 'euclidean', 1, true));
    return tf.softmax(tf.mul(tf.matMul(a, tf.transpose(b)), 100)) as tf.Tensor2D;
  });
}
