/**
 * Trains the synthetic world's 5-way category classifier (lib/braindive/classifier.ts) on freshly
 * rendered categorised stimuli (seed 1000, disjoint from the diffusion model's data) and writes it to
 * models/synthetic-classifier-64/ with its held-out accuracy.
 *
 * A share --blurred (default 0.5) of the training and test images is low-pass filtered (Gaussian, sigma 1-3 px),
 * so that the blurry samples of the PCA-latent diffusion model are judged by content, not by sharpness.
 *
 *   npx tsx data-prep/braindive/train-classifier.ts [--steps 400] [--out models/synthetic-classifier-64]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, tf, renderCategorisedSet, trainClassifier, classifyImages, saveClassifier, progress, blurRgb, Rng, type CategorisedSet } from 'brainnet';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

(async () => {
  await initBackend();
  const steps = Number(arg('steps', '400'));
  const out = arg('out', 'models/synthetic-classifier-64');
  const blurred = Number(arg('blurred', '0.5'));
  const blurSome = (set: CategorisedSet, seed: number): CategorisedSet => {
    const rng = new Rng(seed);
    const per = set.size * set.size * 3;
    for (let i = 0; i < set.count; i++) {
      if (rng.next() < blurred) set.pixels.set(blurRgb(set.pixels.subarray(i * per, (i + 1) * per), set.size, rng.uniform(1, 3)), i * per);
    }
    return set;
  };
  const train = blurSome(renderCategorisedSet(1500, 64, 1000), 1);
  const test = blurSome(renderCategorisedSet(250, 64, 2000), 2);
  const bar = progress({ label: 'classifier', total: steps });
  const { params, accuracy } = trainClassifier(train, { steps, onStep: (s, l) => bar.update(s + 1, `loss ${l.toFixed(3)}`) });
  bar.done();
  const probs = tf.tidy(() => classifyImages(params, tf.div(tf.transpose(tf.tensor4d(test.pixels, [test.count, 64, 64, 3], 'float32'), [0, 3, 1, 2]), 255) as tf.Tensor4D));
  const pred = tf.argMax(probs, 1).dataSync();
  let ok = 0;
  for (let i = 0; i < test.count; i++) ok += pred[i] === test.labels[i] ? 1 : 0;
  const testAcc = ok / test.count;
  await saveClassifier(out, params, { steps: String(steps), trainAccuracy: accuracy.toFixed(3), testAccuracy: testAcc.toFixed(3) });
  fs.writeFileSync(path.join(out, 'metrics.json'), JSON.stringify({ steps, trainImages: 1500, testImages: 250, blurred, trainAccuracyLast50: accuracy, testAccuracy: testAcc }, null, 1));
  console.log(JSON.stringify({ trainAccuracy: accuracy, testAccuracy: testAcc }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
