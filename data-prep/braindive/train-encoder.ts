/**
 * Fits BrainDiVE's voxel encoder (a built-in backbone's last layer -> every voxel) to an Algonauts-layout
 * subject and saves it as safetensors with its regions; prints validation R^2 per paper region.
 *
 *   npx tsx data-prep/braindive/train-encoder.ts --out models/synthetic-encoder-mobilenetv2/encoder.safetensors
 *
 * Without --subject it generates the synthetic 'tiny' subject (seed 1, --train training images, default 2000) into
 * data/braindive/, and again when the synthetic world's version changed. For that subject it adds --localiser N
 * (default 6000) simulated localiser trials (categorised 64x64 images, half of the plain ones blurred;
 * lib/synthetic/localiser.ts). With --generator DIR (default models/synthetic-diffusion-64; 'none' to skip) a share
 * --recon-share (0.25) of them shows the image as the latent model reproduces it and a share --view-share (0.25) as
 * guidance scores it mid-sampling (the x0 estimate from a random timestep), so the encoder's gradient points at
 * category content in the images the generator draws. The responses stay the subject's responses to the original image.
 * Features (MobileNetV2 at --input-size 128 by default; --backbone inceptionv3; or --onnx FILE, an exported image encoder
 * such as CLIP's vision tower, at --input-size 224 with CLIP's normalisation, named onnx:<output> as the notebook names it)
 * are cached by content in --cache (default data/braindive/features), so a rerun with the same images is quick. AdamW runs --steps (default 3000) steps; each voxel keeps its best validation weights.
 * The synthetic subject is made by world v3 (its responses come from the pixels, through InceptionV3 and a contrast model):
 * the localiser's responses are that world's trueResponse to the localiser images, and the world's parameters are copied
 * next to --out as world.safetensors, so that tests can score generated images by the true brain (readWorld).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAlgonautsSubject, progress } from 'brainnet';
import {
  makeAlgonautsSubject, syntheticLocaliser, syntheticLocaliserV3, localiserThroughGenerator, groundTruth, loadSyntheticWorld, syntheticWorldVersion,
  SYNTHETIC_WORLD_VERSION,
} from 'brainnet/synthetic';
import { builtinFeatureExtractor, loadOnnxImageEncoder } from 'brainnet/backbones';
import { loadSyntheticDiffusion } from 'brainnet/diffusion';
import { fitSubjectEncoder, saveVoxelEncoder } from 'brainnet/braindive';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

(async () => {
  let subject = arg('subject', '');
  const synthetic = !subject;
  if (synthetic) {
    const train = Number(arg('train', '2000'));
    subject = `data/braindive/subj-tiny-${train}`;
    const v = syntheticWorldVersion(subject);
    if (v === null || v < SYNTHETIC_WORLD_VERSION) {
      console.log(`generating the synthetic tiny subject (seed 1, ${train} training images) in ${subject}`);
      await makeAlgonautsSubject({ size: 'tiny', seed: 1, out: subject, train, test: 20, overwrite: v !== null });
    }
  }
  const out = arg('out', 'data/braindive/encoder.safetensors');
  const s = await loadAlgonautsSubject(subject);
  // MobileNetV2 at 128^2 by default: guidance differentiates through it at every step, and at 128 that costs a quarter of 224.
  // --onnx FILE: an exported image encoder instead (e.g. CLIP's vision tower; its first output, or --onnx-output NAME).
  const onnx = arg('onnx', '');
  const backbone = arg('backbone', 'mobilenetv2') as 'mobilenetv2' | 'inceptionv3';
  const size = arg('input-size', onnx ? '224' : backbone === 'mobilenetv2' ? '128' : '');
  const fx = onnx
    ? await loadOnnxImageEncoder(onnx, { inputSize: Number(size), ...(arg('onnx-output', '') ? { output: arg('onnx-output', '') } : {}) })
    : await builtinFeatureExtractor(backbone, undefined, size ? { inputSize: Number(size) } : {});
  // the subject's own responses to categorised 64x64 images (a category localiser): only for the generated synthetic subject
  const nLoc = Number(arg('localiser', synthetic ? '6000' : '0'));
  const world = synthetic && syntheticWorldVersion(subject)! >= 3 ? await loadSyntheticWorld(subject) : undefined;
  let extra = nLoc > 0
    ? world ? await syntheticLocaliserV3({ world, size: 'tiny', subjectSeed: 1, n: nLoc, onProgress: (d) => { if (d % 640 === 0 || d === nLoc) console.log(`localiser: true responses ${d}/${nLoc}`); } }) : syntheticLocaliser({ size: 'tiny', subjectSeed: 1, n: nLoc })
    : undefined;
  const gen = arg('generator', 'models/synthetic-diffusion-64');
  if (extra && gen !== 'none') {
    const model = await loadSyntheticDiffusion(gen);
    if (model.kind !== 'pca-latent') throw new Error(`--generator ${gen}: expected a pca-latent diffusion model folder (config.json kind 'pca-latent'), found kind '${model.kind}'; pass --generator none to skip`);
    const r = localiserThroughGenerator(extra, model, { recon: Number(arg('recon-share', '0.25')), views: Number(arg('view-share', '0.25')) });
    extra = r.set;
    console.log(`localiser: ${extra.n} trials, ${r.recon} shown through the PCA latent and ${r.views} as guidance views of ${gen}`);
  }
  // a synthetic subject's 'food' region comes from its ground truth
  const truth = groundTruth(s);
  const food = truth && { lh: Uint8Array.from(truth.roi.slice(0, truth.nLh), (r) => +(r === 'food')), rh: Uint8Array.from(truth.roi.slice(truth.nLh), (r) => +(r === 'food')) };
  const bar = progress({ label: 'features', total: s.trainImagePaths.length + (extra?.n ?? 0) });
  const steps = Number(arg('steps', '3000'));
  let stepBar: ReturnType<typeof progress> | undefined;
  const r = await fitSubjectEncoder(s, fx, {
    extra, food, steps, lr: Number(arg('lr', '1e-3')), featureCacheDir: arg('cache', 'data/braindive/features'), onProgress: (d) => bar.update(d),
    onStep: (d) => {
      if (!stepBar) { bar.done(); stepBar = progress({ label: 'AdamW steps', total: steps }); }
      if (d % 20 === 0 || d === steps) stepBar.update(d);
    },
  });
  if (stepBar) stepBar.done();
  else bar.done();
  await saveVoxelEncoder(out, r.encoder);
  if (world) {
    fs.copyFileSync(path.join(subject, 'ground_truth', 'world.safetensors'), path.join(path.dirname(out), 'world.safetensors'));
    await world.dispose();
  }
  const show = ['FFA', 'PPA', 'EBA', 'VWFA', 'food', 'early'];
  const pick = (t: Record<string, number>) => Object.fromEntries(show.map((k) => [k, +(t[k] ?? NaN).toFixed(3)]));
  console.log(JSON.stringify({ out, featureName: fx.name, nTrain: r.nTrain, nVal: r.nVal, valR2Scenes: pick(r.regionR2), ...(r.extraR2 ? { valR2Localiser: pick(r.extraR2) } : {}) }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
