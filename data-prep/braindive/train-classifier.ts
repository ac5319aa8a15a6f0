/**
 * Trains the synthetic world's 5-way category classifier (lib/braindive/classifier.ts) on freshly
 * rendered categorised stimuli (seed 1000, disjoint from the diffusion model's data) and writes it to
 * models/synthetic-classifier-64/ with its held-out accuracy.
 *
 * A share --blurred (default 1/3) of the training and test images is low-pass filtered (Gaussian, sigma 1-3 px), and
 * with --generator DIR (default models/synthetic-diffusion-64; 'none' to skip) a share --recon (default 1/3) is shown
 * through that model's PCA latent and back, so that the blurry samples of the latent diffusion model are judged by
 * content, not by sharpness. The test accuracy is reported for each kind of image.
 *
 *   npx tsx data-prep/braindive/train-classifier.ts [--steps 3000] [--train 6000] [--out models/synthetic-classifier-64]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, tf, progress } from 'brainnet';
import { Rng } from 'brainnet/core';
import { renderCategorisedSet, blurRgb, mapRows } from 'brainnet/synthetic';
import { loadSyntheticDiffusion, reconstructThroughLatent, type PcaLatent } from 'brainnet/diffusion';
import { trainClassifier, classifyImages, saveClassifier, EVAL_CATEGORIES, type CategorisedSet } from 'brainnet/braindive';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

(async () => {
  await initBackend();
  const steps = Number(arg('steps', '3000'));
  const batch = Number(arg('batch', '32'));
  const nTrain = Number(arg('train', '6000'));
  const nTest = Number(arg('test', '600'));
  const out = arg('out', 'models/synthetic-classifier-64');
  const blurred = Number(arg('blurred', String(1 / 3)));
  const gen = arg('generator', 'models/synthetic-diffusion-64');
  const reconShare = gen === 'none' ? 0 : Number(arg('recon', String(1 / 3)));
  let pca: PcaLatent | null = null;
  if (reconShare > 0) {
    const m = await loadSyntheticDiffusion(gen);
    if (m.kind !== 'pca-latent') throw new Error(`--generator ${gen}: expected a pca-latent diffusion model folder, found kind '${m.kind}'; pass --generator none to skip`);
    pca = m.pca;
  }
  // each image is kept sharp (0), blurred (1) or shown through the PCA latent (2)
  const degrade = (set: CategorisedSet, seed: number): Uint8Array => {
    const rng = new Rng(seed);
    const per = set.size * set.size * 3;
    const kind = Uint8Array.from({ length: set.count }, () => { const u = rng.next(); return u < blurred ? 1 : u < blurred + reconShare ? 2 : 0; });
    for (let i = 0; i < set.count; i++) {
      if (kind[i] === 1) set.pixels.set(blurRgb(set.pixels.subarray(i * per, (i + 1) * per), set.size, rng.uniform(1, 3)), i * per);
    }
    // only the chosen images go through the latent (reconstructThroughLatent does not depend on the batch)
    if (pca) mapRows(set.pixels, per, Array.from(kind.keys()).filter((i) => kind[i] === 2), (p, m) => reconstructThroughLatent(pca!, p, m, set.size));
    return kind;
  };
  const train = renderCategorisedSet(nTrain, 64, 1000);
  degrade(train, 1);
  const test = renderCategorisedSet(nTest, 64, 2000);
  const testKind = degrade(test, 2);
  const bar = progress({ label: 'classifier', total: steps });
  const { params, accuracy } = trainClassifier(train, { steps, batch, onStep: (s, l) => bar.update(s + 1, `loss ${l.toFixed(3)}`) });
  bar.done();
  const probs = tf.tidy(() => classifyImages(params, tf.div(tf.transpose(tf.tensor4d(test.pixels, [test.count, 64, 64, 3], 'float32'), [0, 3, 1, 2]), 255) as tf.Tensor4D));
  const pred = tf.argMax(probs, 1).dataSync();
  probs.dispose();
  const acc = (keep: (i: number) => boolean) => {
    let ok = 0, n = 0;
    for (let i = 0; i < test.count; i++) if (keep(i)) { n++; ok += pred[i] === test.labels[i] ? 1 : 0; }
    return n ? +(ok / n).toFixed(3) : null;
  };
  const testAccuracy = acc(() => true)!;
  const byKind = { sharp: acc((i) => testKind[i] === 0), blurred: acc((i) => testKind[i] === 1), pcaLatent: acc((i) => testKind[i] === 2) };
  const byCategory = Object.fromEntries(EVAL_CATEGORIES.map((c, k) => [c, acc((i) => test.labels[i] === k)]));
  await saveClassifier(out, params, { steps: String(steps), trainAccuracy: accuracy.toFixed(3), testAccuracy: testAccuracy.toFixed(3) });
  const metrics = { steps, batch, trainImages: nTrain, testImages: nTest, blurred, recon: reconShare, generator: reconShare > 0 ? gen : null, trainAccuracyLast50: +accuracy.toFixed(3), testAccuracy, byKind, byCategory };
  fs.writeFileSync(path.join(out, 'metrics.json'), JSON.stringify(metrics, null, 1));
  console.log(JSON.stringify(metrics));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
