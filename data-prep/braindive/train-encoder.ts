/**
 * Fits BrainDiVE's voxel encoder (a built-in backbone's last layer -> every voxel) to an Algonauts-layout
 * subject and saves it as safetensors with its regions; prints validation R^2 per paper region.
 *
 *   npx tsx data-prep/braindive/train-encoder.ts --subject data/braindive/subj-tiny --out data/braindive/encoder.safetensors
 * With --localiser N (default 2000) it adds N simulated localiser trials of the synthetic subject (categorised 64x64
 * images; lib/braindive/localiser.ts). Without --subject it first generates a synthetic 'tiny' subject (seed 1, --train training images, default 2000).
 */
import * as fs from 'node:fs';
import { makeAlgonautsSubject, loadAlgonautsSubject, syntheticLocaliser, builtinFeatureExtractor, fitSubjectEncoder, saveVoxelEncoder, progress } from 'brainnet';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

(async () => {
  let subject = arg('subject', '');
  if (!subject) {
    const train = Number(arg('train', '2000'));
    subject = `data/braindive/subj-tiny-${train}`;
    if (!fs.existsSync(subject)) await makeAlgonautsSubject({ size: 'tiny', seed: 1, out: subject, train, test: 20 });
  }
  const out = arg('out', 'data/braindive/encoder.safetensors');
  const s = await loadAlgonautsSubject(subject);
  const fx = await builtinFeatureExtractor((arg('backbone', 'mobilenetv2') as 'mobilenetv2'));
  const bar = progress({ label: 'features', total: s.trainImagePaths.length });
  // the subject's own responses to categorised 64x64 images (a category localiser), unless --localiser 0
  const nLoc = Number(arg('localiser', arg('subject', '') ? '0' : '2000')); // only for the generated synthetic subject (tiny, seed 1)
  const extra = nLoc > 0 ? syntheticLocaliser({ size: 'tiny', subjectSeed: 1, n: nLoc }) : undefined;
  const r = await fitSubjectEncoder(s, fx, { extra, steps: Number(arg('steps', '600')), lr: Number(arg('lr', '1e-3')), featureCache: arg('cache', `${out}.features.bin`), onProgress: (d) => bar.update(d) });
  bar.done();
  await saveVoxelEncoder(out, r.encoder);
  const show = ['FFA', 'PPA', 'EBA', 'VWFA', 'food', 'early'];
  console.log(JSON.stringify({ out, nTrain: r.nTrain, nVal: r.nVal, valR2: Object.fromEntries(show.map((k) => [k, +(r.regionR2[k] ?? NaN).toFixed(3)])) }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
