/**
 * Writes a synthetic subject in the Algonauts 2023 layout, with surfaces, ground truth and a
 * validation report. See DESIGN.md "The synthetic world" and ground_truth/README.md (written
 * with every subject) for what each file holds.
 *
 * Vertex spaces. Responses live on a working icosahedron (ico4 tiny, ico5 workshop, ico7 full).
 * Because ico(k)'s vertices are the first 10·4^k+2 vertices of ico7, every working vertex has an
 * ico7 (fsaverage-space, 163,842) index equal to its own index, so fsaverage-space files always
 * have 163,842 entries and the written spheres are always ico7; at tiny and workshop size only
 * the first 2,562 or 10,242 of those vertices can be challenge vertices.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeNpy } from '../io/npy.js';
import { writeFileAtomic } from '../io/atomic.js';
import { withSubjectFolder } from './subject-folder.js';
import { writeGiftiSurface } from '../io/gifti.js';
import { writeFreesurferSurface } from '../io/freesurfer.js';
import { CATEGORIES, makeCortex, roiLabels, type Cortex, type HemisphereTruth } from './cortex.js';
import { FSAVERAGE_N, ROI_FILES, type Hemi } from '../data/rois.js';
import { ico, icoVertexCount } from './ico.js';
import { groundTruthFile } from './ground-truth.js';
import { Rng, subSeed } from '../core/rng.js';
import { GRID, type StimulusSpec } from './stimuli.js';
import { addTrialNoise, noiseCeiling, repeatCounts } from './responses.js';
import { categoryDprime, formatReport, retinotopy, splitHalf, pearson, type ReportCheck } from './report.js';
import { CALIBRATION_IMAGES, drawWorldStimuli, makeWorldV3, repeatTally, worldSignal, type WorldStimuli, type WorldVersion } from './world.js';
import { saveWorld, type SyntheticWorld } from './world-v3.js';
import { meshSmoother, sharedSignal, simulateTrials } from './noise.js';
import type { BuiltinBackboneName } from '../backbones/nsfwjs.js';
import { stageClock, type StageClock, type SubjectProgress } from './stage-clock.js';


export type SubjectSize = 'tiny' | 'workshop' | 'full';

/**
 * Version of the synthetic world that subjects are made from by default, written to ground_truth/vertices.json and read
 * by `syntheticWorldVersion`. 3: every response is a function of pixels (world-v3.ts: a second-order contrast model in
 * the early areas, another network's features elsewhere; correlated and shared trial noise; the noise ceiling estimated
 * from repeats). 2 (`world: 'v2'`): responses read from the scene description (the category patches OFA, EBA, OPA, OWFA
 * weigh contrast 0.15).
 */
export const SYNTHETIC_WORLD_VERSION = 3;

/** The three sizes: icosahedron order, training and test image counts, image side. */
export const SIZES: Record<SubjectSize, { order: number; train: number; test: number; imageSize: number }> = {
  tiny: { order: 4, train: 200, test: 20, imageSize: 256 },
  workshop: { order: 5, train: 2000, test: 100, imageSize: 256 },
  full: { order: 7, train: 9841, test: 159, imageSize: 256 },
};

/** Options of `makeAlgonautsSubject`. */
export interface MakeSubjectOptions {
  size: SubjectSize;
  seed: number;
  out: string;
  /** Override the image counts (tests). */
  train?: number;
  test?: number;
  /** Called at each stage with a line of progress. */
  onProgress?: SubjectProgress;
  /** Replace a subject made in `out` with other settings (default false: refused, naming both). */
  overwrite?: boolean;
  /** Where notes go (lock taken over, leftovers of a killed run removed); default console.error. */
  log?: ((line: string) => void) | null;
  /** Which world makes the responses: 'v3' (default, from pixels) or 'v2' (the older world, for comparison). */
  world?: WorldVersion;
  /** World v3's network (default 'inceptionv3': the one the example does not fit; use 'mobilenetv2' to fit InceptionV3). */
  network?: BuiltinBackboneName;
}

/** What `makeAlgonautsSubject` returns: the report and the stage timings (ms). */
export interface MakeSubjectResult {
  dir: string;
  checks: ReportCheck[];
  table: string;
  timings: Record<string, number>;
  peakRssMB: number;
}

/** Algonauts image file name: `train-0001_nsd-00013.png` (1-based index, 1-based NSD 73k id). */
export function algonautsImageName(split: 'train' | 'test', index: number, nsdId: number): string {
  return `${split}-${String(index + 1).padStart(4, '0')}_nsd-${String(nsdId + 1).padStart(5, '0')}.png`;
}

/**
 * Generates a subject in the Algonauts 2023 layout under `opts.out`, holding the folder's lock; a folder with a
 * subject of other settings is refused (or replaced with `overwrite`), and a rerun with the same settings after a
 * crash writes the same bytes.
 */
export async function makeAlgonautsSubject(opts: MakeSubjectOptions): Promise<MakeSubjectResult> {
  const cfg = SIZES[opts.size];
  if (!cfg) throw new RangeError(`makeAlgonautsSubject: size must be tiny, workshop or full, got '${opts.size}'`);
  const nTrain = opts.train ?? cfg.train, nTest = opts.test ?? cfg.test;
  const world = opts.world ?? 'v3';
  const settings = { layout: 'algonauts', size: opts.size, seed: opts.seed, train: nTrain, test: nTest, world, network: world === 'v3' ? (opts.network ?? 'inceptionv3') : null };
  return withSubjectFolder(opts.out, settings, opts, (dir) => writeAlgonautsSubject(dir, opts, nTrain, nTest));
}

/** makeAlgonautsSubject's steps, in the locked and checked folder `dir`. */
async function writeAlgonautsSubject(dir: string, opts: MakeSubjectOptions, nTrain: number, nTest: number): Promise<MakeSubjectResult> {
  const cfg = SIZES[opts.size];
  const clock = stageClock(opts.onProgress);
  for (const d of ['training_split/training_fmri', 'training_split/training_images', 'test_split/test_images', 'roi_masks', 'surfaces', 'ground_truth']) fs.mkdirSync(path.join(dir, d), { recursive: true });

  const version = opts.world ?? 'v3';
  if (version !== 'v2' && version !== 'v3') throw new RangeError(`makeAlgonautsSubject: world must be 'v2' or 'v3', got '${String(version)}'`);

  // 1. cortex and ground truth; world v3 (its network, calibrated on the seed's scenes)
  const cortex = makeCortex({ order: cfg.order, seed: opts.seed });
  clock.progress('cortex', 1, 1);
  clock.end('cortex');
  const world = version === 'v3' ? await makeWorldV3({ hemis: [cortex.lh, cortex.rh], seed: opts.seed, network: opts.network, calibrationImages: CALIBRATION_IMAGES[opts.size] }) : undefined;
  clock.end('world');

  try {
    // 2. stimuli: NSD ids, train/test assignment, images written as PNG, features (v3: responses from the pixels)
    const { stimuli, names } = await writeAlgonautsImages({ dir, seed: opts.seed, nTrain, nTest, imageSize: cfg.imageSize, clock, world });
    clock.end('images');

    // 3. responses per hemisphere, with the report's checks
    const repeats = repeatCounts(nTrain, new Rng(subSeed(opts.seed, 'repeats')));
    const checks: ReportCheck[] = [];
    const reportHemi: Record<string, unknown> = {};
    const noisyV3 = world ? await writeResponsesV3({ dir, cortex, stimuli, nTrain, nTest, repeats, seed: opts.seed }) : undefined;
    for (const hemi of ['lh', 'rh'] as const) {
      const h = cortex[hemi];
      const noisy = noisyV3 ? noisyV3[hemi] : await writeHemisphereResponses({ dir, hemi, h, stimuli, nTrain, nTest, repeats, seed: opts.seed });
      clock.progress(`responses ${hemi}`, 1, 1);
      clock.sample();
      const report = hemisphereReport({ hemi, h, ...noisy, nTrain, stimuli, large: opts.size !== 'tiny', v3: !!world });
      checks.push(...report.checks);
      reportHemi[hemi] = report.summary;
    }
    clock.end('responses');

    // 4. ROI masks (challenge and fsaverage space) and label mappings
    await writeRoiMasks(dir, cortex);
    clock.end('roi_masks');

    // 5. surfaces: ico7 sphere per hemisphere, flat visual patch
    await writeSurfaces(dir, cortex);
    clock.progress('surfaces', 1, 1);
    clock.end('surfaces');

    // 6. ground truth (v3: with the world's parameters) and report
    await writeAlgonautsGroundTruth({ dir, seed: opts.seed, size: opts.size, cortex, repeats, stimuli, names, nTrain, world, ncsnr: noisyV3 && { lh: noisyV3.lh.ncsnr, rh: noisyV3.rh.ncsnr } });
    const table = formatReport(checks);
    const report = { size: opts.size, seed: opts.seed, world: version, ...(world ? { network: world.network, categoryAuc: world.calibration.taps.map((t) => t.auc) } : {}), images: { train: nTrain, test: nTest }, vertices: { lh: cortex.lh.roi.length, rh: cortex.rh.roi.length }, pass: checks.every((x) => x.pass), checks, ...reportHemi };
    await writeFileAtomic(path.join(dir, 'report.json'), JSON.stringify(report, null, 1) + '\n');
    clock.end('ground_truth');
    return { dir, checks, table, ...clock.finish() };
  } finally {
    await world?.dispose();
  }
}

/** World v3's responses of both hemispheres: training trials (mesh-correlated noise, a shared trial signal) averaged, the test split (3 trials), and the ncsnr estimated from the repeats. */
async function writeResponsesV3(opts: {
  dir: string; cortex: Cortex; stimuli: WorldStimuli; nTrain: number; nTest: number; repeats: Uint8Array; seed: number;
}): Promise<Record<Hemi, { noisy: ReturnType<typeof addTrialNoise>; keep: Int32Array; ncsnr: Float32Array }>> {
  const { dir, cortex, nTrain, nTest, seed } = opts;
  const shared = sharedSignal(opts.repeats, new Rng(subSeed(seed, 'shared-trial-signal')));
  const testRepeats = new Uint8Array(nTest).fill(3);
  const testShared = sharedSignal(testRepeats, new Rng(subSeed(seed, 'shared-trial-signal-test')));
  const out = {} as Record<Hemi, { noisy: ReturnType<typeof addTrialNoise>; keep: Int32Array; ncsnr: Float32Array }>;
  for (const hemi of HEMIS) {
    const h = cortex[hemi];
    const N = h.roi.length;
    const signal = worldSignal(h, opts.stimuli);
    const smoother = meshSmoother(h, cortex.order);
    const loadRng = new Rng(subSeed(seed, `shared-loading-${hemi}`));
    const sharedLoading = Float32Array.from({ length: N }, () => loadRng.uniform(0.2, 0.6));
    const keepRng = new Rng(subSeed(seed, `keep-${hemi}`));
    const keep = Int32Array.from(keepRng.shuffle(Array.from({ length: N }, (_, k) => k)).slice(0, Math.min(N, 1000))).sort();
    const trial1 = new Float32Array(nTrain * keep.length), trial2 = new Float32Array(nTrain * keep.length).fill(NaN);
    const train = simulateTrials({
      signal: signal.subarray(0, nTrain * N), nImages: nTrain, ncsnr: h.ncsnr, repeats: opts.repeats, smoother, sharedLoading, ...shared, rng: new Rng(subSeed(seed, `noise-${hemi}`)),
      onTrials: (i, trials) => keep.forEach((k, j) => { trial1[i * keep.length + j] = trials[0]![k]!; if (trials[1]) trial2[i * keep.length + j] = trials[1][k]!; }),
    });
    await writeNpy(path.join(dir, 'training_split/training_fmri', `${hemi}_training_fmri.npy`), { dtype: 'float32', shape: [nTrain, N], data: train.mean });
    const test = simulateTrials({ signal: signal.subarray(nTrain * N), nImages: nTest, ncsnr: h.ncsnr, repeats: testRepeats, smoother, sharedLoading, ...testShared, rng: new Rng(subSeed(seed, `test-noise-${hemi}`)) });
    await writeNpy(path.join(dir, 'ground_truth', `${hemi}_test_fmri.npy`), { dtype: 'float32', shape: [nTest, N], data: test.mean });
    out[hemi] = { noisy: { mean: train.mean, trial1, trial2 }, keep, ncsnr: train.ncsnr };
  }
  return out;
}

/** Draws the stimuli and writes them as PNG: NSD ids sorted (so name order = id order), `nTest` of them drawn for the test split. */
async function writeAlgonautsImages(opts: { dir: string; seed: number; nTrain: number; nTest: number; imageSize: number; clock: StageClock; world?: SyntheticWorld }): Promise<{ stimuli: WorldStimuli; names: string[] }> {
  const { dir, nTrain, nTest } = opts;
  const nAll = nTrain + nTest;
  const rng = new Rng(subSeed(opts.seed, 'stimuli'));
  const ids = new Set<number>();
  while (ids.size < nAll) ids.add(rng.int(0, 73000));
  const sorted = [...ids].sort((a, b) => a - b);
  const isTest = new Uint8Array(nAll);
  for (const j of rng.shuffle(sorted.map((_, j) => j)).slice(0, nTest)) isTest[j] = 1;
  const trainIds = sorted.filter((_, j) => !isTest[j]), testIds = sorted.filter((_, j) => isTest[j]);
  const names = Array.from({ length: nAll }, (_, i) => (i < nTrain ? algonautsImageName('train', i, trainIds[i]!) : algonautsImageName('test', i - nTrain, testIds[i - nTrain]!)));
  const stimuli = await drawWorldStimuli({
    rng, count: nAll, imageSize: opts.imageSize,
    write: (i, image) => writeFileAtomic(path.join(dir, i < nTrain ? 'training_split/training_images' : 'test_split/test_images', names[i]!), image.png),
    onProgress: (done, total) => opts.clock.progress('images', done, total),
    world: opts.world,
  });
  return { stimuli, names };
}

/** Writes one hemisphere's training responses (trials averaged) and its withheld test responses (3 trials); returns the training trials. */
async function writeHemisphereResponses(opts: {
  dir: string; hemi: Hemi; h: HemisphereTruth; stimuli: WorldStimuli; nTrain: number; nTest: number; repeats: Uint8Array; seed: number;
}): Promise<{ noisy: ReturnType<typeof addTrialNoise>; keep: Int32Array }> {
  const { dir, hemi, h, nTrain, nTest, seed } = opts;
  const N = h.roi.length;
  const signal = worldSignal(h, opts.stimuli);
  const keepRng = new Rng(subSeed(seed, `keep-${hemi}`));
  const keep = Int32Array.from(keepRng.shuffle(Array.from({ length: N }, (_, k) => k)).slice(0, Math.min(N, 1000))).sort();
  const noisy = addTrialNoise(signal.subarray(0, nTrain * N), nTrain, h.ncsnr, opts.repeats, new Rng(subSeed(seed, `noise-${hemi}`)), keep);
  await writeNpy(path.join(dir, 'training_split/training_fmri', `${hemi}_training_fmri.npy`), { dtype: 'float32', shape: [nTrain, N], data: noisy.mean });
  const testNoisy = addTrialNoise(signal.subarray(nTrain * N), nTest, h.ncsnr, new Uint8Array(nTest).fill(3), new Rng(subSeed(seed, `test-noise-${hemi}`)));
  await writeNpy(path.join(dir, 'ground_truth', `${hemi}_test_fmri.npy`), { dtype: 'float32', shape: [nTest, N], data: testNoisy.mean });
  return { noisy, keep };
}

/**
 * The report's checks of one hemisphere's training responses (category d', split-half reliability, retinotopy) and their
 * summary; thresholds are looser at tiny size. World v3's category d' threshold is 0.35 at every size: its category patches
 * read category directions of another network, and the body patches are the weakest (tiny, seeds 1 and 7: FBA-1/FBA-2
 * d' 0.36-0.65, the other patches 0.9-2.2).
 */
function hemisphereReport(opts: {
  hemi: Hemi; h: HemisphereTruth; noisy: ReturnType<typeof addTrialNoise>; keep: Int32Array; nTrain: number; stimuli: WorldStimuli; large: boolean; v3?: boolean;
}): { checks: ReportCheck[]; summary: unknown } {
  const { hemi, h, noisy, keep, nTrain, large } = opts;
  const checks: ReportCheck[] = [];
  const dp = categoryDprime(h, noisy.mean, nTrain, opts.stimuli.labels);
  for (const [roi, v] of Object.entries(dp)) {
    const thr = opts.v3 ? 0.35 : large ? 1 : 0.5;
    checks.push({ name: `${hemi} d' ${roi}`, value: v, threshold: thr, kind: 'min', pass: v >= thr });
  }
  const sh = splitHalf(noisy.trial1, noisy.trial2, nTrain, Float32Array.from(keep, (k) => h.ncsnr[k]!));
  const shCorr = pearson(sh.observed, sh.intended);
  const shErr = sh.observed.reduce((s, v, j) => s + Math.abs(v - sh.intended[j]!), 0) / sh.observed.length;
  checks.push({ name: `${hemi} split-half r(observed, intended)`, value: shCorr, threshold: large ? 0.8 : 0.5, kind: 'min', pass: shCorr >= (large ? 0.8 : 0.5) });
  checks.push({ name: `${hemi} split-half mean |obs - intended|`, value: shErr, threshold: large ? 0.05 : 0.12, kind: 'max', pass: shErr <= (large ? 0.05 : 0.12) });
  const ret = retinotopy(h, noisy.mean, nTrain, opts.stimuli.contrast.subarray(0, nTrain * GRID * GRID));
  const retThr = large ? 0.8 : 0.5;
  checks.push({ name: `${hemi} retinotopy r(pRF x)`, value: ret.rx, threshold: retThr, kind: 'min', pass: ret.rx >= retThr });
  checks.push({ name: `${hemi} retinotopy r(pRF y)`, value: ret.ry, threshold: retThr, kind: 'min', pass: ret.ry >= retThr });
  return { checks, summary: { dprime: dp, splitHalf: { corrObservedIntended: shCorr, meanAbsError: shErr, vertices: keep.length }, retinotopy: ret } };
}

/** Writes roi_masks/: per hemisphere the all-vertices mask and each ROI file's labels in challenge and fsaverage space, and each file's label mapping (JSON). */
async function writeRoiMasks(dir: string, cortex: Cortex): Promise<void> {
  const p = (name: string) => path.join(dir, 'roi_masks', name);
  for (const hemi of ['lh', 'rh'] as const) {
    const h = cortex[hemi];
    const all = new Int32Array(FSAVERAGE_N);
    for (const i of h.fsIndex) all[i] = 1;
    await writeNpy(p(`${hemi}.all-vertices_fsaverage_space.npy`), { dtype: 'int32', shape: [FSAVERAGE_N], data: all });
    for (const file of Object.keys(ROI_FILES)) {
      const lab = roiLabels(h, file);
      await writeNpy(p(`${hemi}.${file}_challenge_space.npy`), { dtype: 'int32', shape: [lab.length], data: lab });
      const fsLab = new Int32Array(FSAVERAGE_N);
      h.fsIndex.forEach((i, k) => (fsLab[i] = lab[k]!));
      await writeNpy(p(`${hemi}.${file}_fsaverage_space.npy`), { dtype: 'int32', shape: [FSAVERAGE_N], data: fsLab });
    }
  }
  for (const [file, list] of Object.entries(ROI_FILES)) {
    const map = Object.fromEntries(list.map((n, j) => [String(j), n]));
    await writeFileAtomic(p(`mapping_${file}.json`), JSON.stringify(map, null, 1) + '\n');
  }
}

/** Writes surfaces/: the ico7 sphere (fsaverage vertex count) as GIFTI and FreeSurfer, and the flat visual patch, per hemisphere. */
async function writeSurfaces(dir: string, cortex: Cortex): Promise<void> {
  const sphere = ico(7, 100);
  for (const hemi of ['lh', 'rh'] as const) {
    await writeGiftiSurface(path.join(dir, 'surfaces', `${hemi}.sphere.gii`), sphere);
    await writeFreesurferSurface(path.join(dir, 'surfaces', `${hemi}.sphere`), sphere);
    await writeGiftiSurface(path.join(dir, 'surfaces', `${hemi}.flat.visual.gii`), flatPatch(cortex, cortex[hemi]));
  }
}

/** Writes ground_truth/: vertices.json (each hemisphere's truth), stimuli.json (what each image holds) and README.md. */
async function writeAlgonautsGroundTruth(opts: {
  dir: string; seed: number; size: SubjectSize; cortex: Cortex; repeats: Uint8Array; stimuli: WorldStimuli; names: string[]; nTrain: number;
  world?: SyntheticWorld; ncsnr?: Record<Hemi, Float32Array>;
}): Promise<void> {
  const { dir, cortex, repeats, names, nTrain, world } = opts;
  const hemi = (h: HemisphereTruth, from: number) => ({ ...hemisphereJson(h, repeats, opts.ncsnr?.[h.hemi]), ...(world ? worldVertexJson(world, from, h.roi.length) : {}) });
  const vertices = {
    version: world ? 3 : 2, seed: opts.seed, size: opts.size, icoOrder: cortex.order, categories: CATEGORIES,
    ...(world ? { network: world.network, networkInputSize: world.inputSize, taps: world.taps, calibrationImages: world.calibration.images } : {}),
    lh: hemi(cortex.lh, 0), rh: hemi(cortex.rh, cortex.lh.roi.length),
  };
  await writeFileAtomic(groundTruthFile(dir), JSON.stringify(vertices));
  if (world) await saveWorld(path.join(dir, 'ground_truth', 'world.safetensors'), world, { seed: String(opts.seed), size: opts.size });
  const specs = opts.stimuli.specs;
  await writeFileAtomic(path.join(dir, 'ground_truth', 'stimuli.json'), JSON.stringify({
    categories: CATEGORIES, repeatCounts: repeatTally(repeats),
    train: specs.slice(0, nTrain).map((s, i) => stimulusJson(s, names[i]!, repeats[i])),
    test: specs.slice(nTrain).map((s, i) => stimulusJson(s, names[nTrain + i]!)),
  }));
  await writeFileAtomic(path.join(dir, 'ground_truth', 'README.md'), GROUND_TRUTH_README);
}

/** One hemisphere's entry of vertices.json (see GROUND_TRUTH_README), rounded to 4 decimals; with `estimated` (v3) ncsnr and the noise ceiling come from the repeats and `ncsnrTrue` is the generating value. */
function hemisphereJson(h: HemisphereTruth, repeats: Uint8Array, estimated?: Float32Array) {
  const ncsnr = estimated ?? h.ncsnr;
  return {
    fsIndex: Array.from(h.fsIndex), roi: h.roi, stream: h.stream,
    prfX: Array.from(h.prfX, nanNull), prfY: Array.from(h.prfY, nanNull), prfSigma: Array.from(h.prfSigma, nanNull),
    depth: h.depth, scale: h.scale, ncsnr: Array.from(ncsnr, round), noiseCeiling: Array.from(ncsnr, (s) => round(noiseCeiling(s, repeats))),
    ...(estimated ? { ncsnrTrue: Array.from(h.ncsnr, round) } : {}),
    tuning: Array.from({ length: h.roi.length }, (_, k) => Array.from(h.tuning.subarray(k * 6, k * 6 + 6), round)),
    flat: Array.from({ length: h.roi.length }, (_, k) => [round(h.flat[k * 2]!), round(h.flat[k * 2 + 1]!)]),
  };
}

/** World v3's truth of vertices from..from+n (vertices.json): depth (0 SOC .. 1 the last tap), layer, scale, SOC share, second pRF; `scale` and `depth` replace the cortex's intended ones. */
function worldVertexJson(w: SyntheticWorld, from: number, n: number) {
  const vx = w.vertices;
  const at = <T>(f: (v: number) => T) => Array.from({ length: n }, (_, k) => f(from + k));
  return {
    trueDepth: at((v) => round(vx.depth[v]!)), trueLayer: at((v) => (vx.layer[v] === 'soc' ? 'soc' : w.taps[Number(vx.layer[v])]!)), scale: at((v) => vx.scale[v]!),
    depth: at((v) => (vx.socShare[v] === 1 ? 'early' : vx.depth[v]! < 0.6 ? 'mid' : 'late')),
    socShare: at((v) => round(vx.socShare[v]!)), prf2X: at((v) => (vx.soc[v]!.mix ? round(vx.soc[v]!.x2) : null)), prf2Y: at((v) => (vx.soc[v]!.mix ? round(vx.soc[v]!.y2) : null)),
    prfMix: at((v) => round(vx.soc[v]!.mix)), categoryShare: at((v) => round(vx.categoryShare[v]!)),
  };
}

/** One image's entry of stimuli.json; `repeats` only for training images. */
function stimulusJson(s: StimulusSpec, name: string, repeats?: number) {
  const objects = s.objects.map((o) => ({ ...o, cx: round(o.cx), cy: round(o.cy), size: round(o.size) }));
  return { name, ...(repeats === undefined ? {} : { repeats }), background: s.background, labels: CATEGORIES.filter((_, c) => s.labels[c]), objects };
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;
const nanNull = (v: number) => (Number.isNaN(v) ? null : round(v));

/** Flat layout of a hemisphere's challenge vertices: [N, 3] (u, v, 0) in degrees, with the working icosahedron's triangles among them. */
export function flatPatch(cortex: Cortex, h: HemisphereTruth): { vertices: Float32Array; faces: Int32Array } {
  const N = h.roi.length;
  const vertices = new Float32Array(N * 3);
  for (let k = 0; k < N; k++) { vertices[k * 3] = h.flat[k * 2]!; vertices[k * 3 + 1] = h.flat[k * 2 + 1]!; }
  const local = new Int32Array(icoVertexCount(cortex.order)).fill(-1);
  h.fsIndex.forEach((i, k) => (local[i] = k));
  const faces: number[] = [];
  const f = ico(cortex.order, 1).faces;
  for (let t = 0; t < f.length; t += 3) {
    const a = local[f[t]!]!, b = local[f[t + 1]!]!, c = local[f[t + 2]!]!;
    if (a >= 0 && b >= 0 && c >= 0) faces.push(a, b, c);
  }
  return { vertices, faces: Int32Array.from(faces) };
}

/** Hemispheres in a fixed order. */
export const HEMIS: Hemi[] = ['lh', 'rh'];

const GROUND_TRUTH_README = `# Ground truth of a synthetic subject

Written by brainnet's make-subject. Everything here is known by construction; a fitted model
should recover it.

## vertices.json
One object per hemisphere (\`lh\`, \`rh\`); every array has one entry per challenge vertex, in the
column order of \`training_fmri/{lh,rh}_training_fmri.npy\`.
- \`fsIndex\`: the vertex's fsaverage-space index (0..163841); it indexes \`surfaces/{hemi}.sphere*\`
  and the \`*_fsaverage_space.npy\` masks.
- \`roi\`: V1v, V1d, V2v, V2d, V3v, V3d, hV4, OFA, FFA-1, FFA-2, EBA, FBA-1, FBA-2, OPA, PPA, RSC, OWFA,
  VWFA-1, VWFA-2, food, or other.
- \`stream\`: the Algonauts streams label (early, midventral, midlateral, midparietal, ventral, lateral, parietal).
- \`prfX\`, \`prfY\`, \`prfSigma\`: pRF centre and size in image units (the image spans [-1, 1], x right,
  y up); null for vertices without a pRF (global vertices). The left hemisphere sees x > 0.
- \`depth\`: intended network depth, early | mid | late.
- \`scale\`: intended scale, local | global.
- \`ncsnr\`: signal sd / single-trial noise sd.
- \`noiseCeiling\`: the Algonauts noise ceiling (fraction) for the training images' repeat counts.
- \`tuning\`: category tuning, 6 numbers in the order of \`categories\` (faces, bodies, places, words, food, objects).
- \`flat\`: flat-map position (degrees from the occipital pole, azimuthal equidistant).

## stimuli.json
Per training and test image: file name, repeats (3, 2 or 1; training only), background, category
labels and pasted objects (category, centre and size in pixels).

## {lh,rh}_test_fmri.npy
Test-image responses (float32, test images x challenge vertices, 3 trials averaged), which the real
release withholds.

## World v3 (version 3, the default)
Every response is a function of the image's pixels; \`world.safetensors\` holds what \`trueResponse\` needs besides the
network's weights (\`loadSyntheticWorld(dir)\` in brainnet/synthetic rebuilds it). Extra fields in vertices.json:
- \`network\`, \`networkInputSize\`, \`taps\`: the network the mid-level and category vertices read (not the fitted one).
- \`trueDepth\`: 0 for the pixel-level contrast model (V1-V3), else the position of the vertex's tap(s) among the taps
  ((t + 1) / T), weighted by the shares; \`trueLayer\`: its main tap ('soc' for the contrast model alone).
- \`scale\`: 'global' where the vertex reads the network's global token, 'local' otherwise; \`depth\`: early | mid | late from trueDepth.
- \`socShare\`, \`prf2X\`, \`prf2Y\`, \`prfMix\`: the contrast model's share and the second pRF of vertices that mix two.
- \`categoryShare\`: the share of the category directions in the vertex's readout.
- \`ncsnr\` and \`noiseCeiling\` are estimated from the training trials' repeats (NSD's formula); \`ncsnrTrue\` is the generating value.
Trial noise: smoothed on the mesh (6 mm FWHM) plus a signal shared by all vertices in a trial (lib/synthetic/noise.ts).

## Model of world v2 (\`--world v2\`)
Early vertices: Gaussian pRF over local contrast energy (16x16 grid). Mid vertices: pRF over
contrast energy plus pRF over the presence maps of their two preferred categories (8x8 grid);
contrast weighs 0.6 in hV4, 0.15 in the category patches (OFA, EBA, OPA, OWFA) and 0.3 elsewhere.
Late vertices: tuning-weighted category presence plus a global image term (mean contrast energy).
The noiseless signal is z-scored per vertex over all images; each trial adds Gaussian noise of
sd 1/ncsnr, and each image's trials are averaged.
`;
