/**
 * `fitEncoder`: the one call a notebook makes to fit the factorized encoding model on a subject.
 *
 *   const fit = await fitEncoder({ subject, backbone, epochs: 10 });
 *
 * It (1) builds or reuses the token cache of the subject's training images, (2) reads the fMRI
 * (lh then rh columns), (3) splits train/validation, (4) builds the model and resumes from a
 * checkpoint when one is present, (5) trains with a progress bar (loss per step, validation R² and
 * Pearson r per epoch, a checkpoint per epoch), (6) scores the validation images, and
 * (7) returns selectors, scores, channel clusters and the ridge baseline as plain arrays.
 *
 * `fitEncoder` reads as that numbered list; each step is a function below with explicit inputs
 * (`openTokenCache`, `readResponses`, `splitImages`, `resumeFromCheckpoint`, `trainWithCheckpoints`,
 * `validationScores`, `modelSummary`, `subjectRoiMasks`, `ridgeBaseline`, `fitMethods`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RgbImage } from '../io/image.js';
import type { Matrix } from '../core/matrix.js';
import { progress } from '../notebook/progress.js';
import type { Backbone } from '../backbones/contract.js';
import { buildTokenCache, fileImageSources, type TokenCache } from '../backbones/token-cache.js';
import type { AlgonautsSubject } from '../data/algonauts.js';
import { FactorizedEncoder, type Selectors } from './model.js';
import type { AdamW, AdamWConfig } from './optimizer.js';
import { predictAll, trainEncoder, type EncoderData, type EpochReport } from './train.js';
import { algonautsScore, pearsonPerVertex, r2PerVertex } from './metrics.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { collectTokenFeatures, fitRidgeBaseline, type RidgeFeatureMode } from './ridge.js';
import { clusterChannels, mixedTokenMap, roiPrincipalComponents, topChannelImage as channelImage } from './channels.js';

/** Training data over a token cache: rows `rows` of the cache and of Y [nImages, N]. */
export function cacheData(cache: Pick<TokenCache, 'getBatch'>, Y: Float32Array, N: number, rows: ArrayLike<number>): EncoderData {
  const r = Array.from(rows);
  return {
    size: r.length,
    async batch(idx: number[]) {
      const img = idx.map((i) => r[i]!);
      const b = await cache.getBatch(img);
      const t = new Float32Array(img.length * N);
      img.forEach((row, j) => t.set(Y.subarray(row * N, (row + 1) * N), j * N));
      return { tokens: { local: b.local, global: b.global }, target: tf.tensor2d(t, [img.length, N]) };
    },
  };
}

/** Features of the ridge baseline in {@link fitEncoder}. */
export interface RidgeOptions {
  features?: RidgeFeatureMode;
  /** Pool local tokens to grid x grid and flatten (overrides `features`). */
  grid?: number;
  pca?: number;
}

/** Per-layer ridge features [n, C k^2] of images `indices`: local tokens average-pooled to k x k, flattened (channel-major). */
export async function collectGridFeatures(cache: Pick<TokenCache, 'getBatch'>, indices: readonly number[], k: number, batchSize = 64): Promise<Matrix[]> {
  let out: Matrix[] | null = null;
  for (let i = 0; i < indices.length; i += batchSize) {
    const b = await cache.getBatch(indices.slice(i, i + batchSize));
    b.local.forEach((t, l) => {
      const f = tf.tidy(() => {
        const [B, C, h, w] = t.shape;
        if (h % k || w % k) throw new Error(`ridge grid ${k} does not divide the ${h}x${w} token grid; use a divisor of ${h}.`);
        const nhwc = tf.transpose(t, [0, 2, 3, 1]);
        const pooled = tf.avgPool(nhwc as tf.Tensor4D, [h / k, w / k], [h / k, w / k], 'valid');
        return tf.reshape(tf.transpose(pooled, [0, 3, 1, 2]), [B, C * k * k]);
      });
      out ??= b.local.map((x) => ({ data: new Float32Array(indices.length * x.shape[1] * k * k), shape: [indices.length, x.shape[1] * k * k] as [number, number] }));
      out[l]!.data.set(f.dataSync() as Float32Array, i * out[l]!.shape[1]);
      f.dispose();
    });
    tf.dispose([...b.local, ...b.global]);
  }
  return out ?? [];
}

/** Options of {@link fitEncoder}. */
export interface FitEncoderOptions {
  subject: AlgonautsSubject;
  backbone: Backbone;
  /** Folder of the on-disk token cache (reused across runs); RAM only without it. */
  cacheDir?: string;
  cacheDtype?: 'float16' | 'float32';
  /** Epochs (default 10). */
  epochs?: number;
  /** Batch size (default 8). */
  batchSize?: number;
  /** Seed of the model, the split and the shuffling (default 0). */
  seed?: number;
  /** Validation share of the training images (default 841/9841, the paper's). */
  valFraction?: number;
  /** Folder for `encoder.safetensors`, written after every epoch; training resumes from it when present. */
  checkpointDir?: string;
  /**
   * Fit the ridge baseline too (default true); an object chooses its features and PCA. `grid: k`
   * average-pools each layer's g x g local map to k x k and flattens it ([n, C k^2]; k = 1 is
   * 'pooled'), which keeps coarse position for retinotopic vertices.
   */
  ridge?: boolean | RidgeOptions;
  /** Optimizer settings (default AdamW lr 1e-3, weight decay 0.01). */
  optimizer?: AdamWConfig;
  /** Regulariser weight (default 0.1) and the steps over which it decays to 0 (default 2000, the paper's). */
  regLambda?: number;
  regDecaySteps?: number;
  /** Called after each epoch with the validation scores. */
  onEpoch?: (r: EpochReport) => void;
  /** Where messages go (default console.log); null for silence. */
  log?: ((line: string) => void) | null;
  /** Progress bars (default true). */
  progress?: boolean;
  /** Stop after this many steps in total (time budgets, tests). */
  stopAtStep?: number;
  /** [N] noise ceiling (fraction) of the subject's vertices, lh then rh, when known (a synthetic subject's `groundTruth(subject).noiseCeiling`): adds the Algonauts score. */
  noiseCeiling?: Float32Array;
}

/** What {@link fitEncoder} returns: the model and everything a notebook plots, as plain arrays. */
export interface EncoderFit {
  model: FactorizedEncoder;
  layers: string[];
  nLh: number;
  nRh: number;
  /** layer [N, L] softmax weights, space [N, 2] (x, y) on the token grid in [-1, 1] (y down), scale [N]. */
  selectors: Selectors;
  /** [N] validation R². */
  r2: Float32Array;
  /** [N] validation Pearson r. */
  pearson: Float32Array;
  /** [N] Algonauts noise-normalised score (percent), when the noise ceiling was given. */
  score?: Float32Array;
  /** [N] noise ceiling (fraction), as given in the options. */
  noiseCeiling?: Float32Array;
  /** One entry per step; `valR2` (mean over vertices) on the last step of each epoch. */
  history: { step: number; epoch: number; loss: number; valR2?: number }[];
  /** [N] channel cluster (20 groups) of each vertex's weights. */
  clusters: Int32Array;
  /** [N, D] per-vertex weights (D = 128). */
  vertexWeights: Float32Array;
  ridge?: { bestLayer: Int32Array; r2: Float32Array; r2ByLayer: Float32Array };
  /** Mask [N] (lh then rh) of every ROI of the subject that has vertices: `summariseByRoi(values, fit.roiMasks)` summarises a per-vertex value. */
  roiMasks: Record<string, Uint8Array>;
  /** Mask [N] of one ROI over all vertices (lh then rh). */
  roiMask(roi: string): Uint8Array;
  split: { train: number[]; val: number[] };
  tokenCache: TokenCache;
  /** RGB image [g, g] of training image `imageIndex`'s layer-mixed local tokens projected on the ROI's first 3 weight PCs. */
  topChannelImage(imageIndex: number, roi: string): Promise<RgbImage>;
  /** Frees the model and closes the token cache. */
  dispose(): Promise<void>;
}

/** Fits the factorized encoding model (and the ridge baseline) on a subject; see the file comment. */
export async function fitEncoder(opts: FitEncoderOptions): Promise<EncoderFit> {
  const log = opts.log === undefined ? (s: string) => console.log(s) : opts.log ?? (() => {});
  const { subject, noiseCeiling } = opts;
  const epochs = opts.epochs ?? 10;
  const batchSize = opts.batchSize ?? 8;
  const seed = opts.seed ?? 0;
  checkNoiseCeiling(subject, noiseCeiling);
  checkSubjectVertices(subject, log);
  // 1. token cache
  const cache = await openTokenCache(opts);
  // 2. responses [nTrain, N], lh then rh
  const { Y, nLh, nRh, N, nImg } = await readResponses(subject);
  // 3. split
  const split = splitImages(subject, { seed, valFraction: opts.valFraction, nImg });
  const trainData = cacheData(cache, Y, N, split.train);
  const valData = cacheData(cache, Y, N, split.val);
  // 4. model, resumed from a checkpoint when present
  const model = new FactorizedEncoder(await subject.coordinates(), { layerWidths: cache.channels, layerNames: cache.layers, seed });
  const checkpoint = opts.checkpointDir ? path.join(opts.checkpointDir, 'encoder.safetensors') : undefined;
  const resume = await closingOnError(model, cache, () => resumeFromCheckpoint(model, { checkpoint, seed, log }));
  // 5. training
  const trained = await closingOnError(model, cache, () => trainWithCheckpoints(model, { train: trainData, val: valData }, {
    epochs, batchSize, seed, optimizer: opts.optimizer, regLambda: opts.regLambda, regDecaySteps: opts.regDecaySteps, stopAtStep: opts.stopAtStep,
    resume, checkpoint, onEpoch: opts.onEpoch, log, progress: opts.progress ?? true,
  }));
  // 6. validation scores (fresh when the checkpoint was already complete or training stopped mid-epoch)
  const { r2, pearson } = await validationScores(model, valData, { last: trained.last, steps: trained.steps, batchSize, N });
  const score = noiseCeiling ? Float32Array.from(algonautsScore(pearson, noiseCeiling)) : undefined;
  // 7. selectors, weights, clusters; ROI masks over all vertices (lh then rh)
  const { selectors, vertexWeights, clusters } = modelSummary(model, { N, seed });
  const masks = await subjectRoiMasks(subject, { N, nLh });
  // 8. ridge baseline
  const ridge = (opts.ridge ?? true) ? await ridgeBaseline(cache, typeof opts.ridge === 'object' ? opts.ridge : {}, { Y, N, split, seed, log }) : undefined;
  // 9. result
  const methods = fitMethods({ model, cache, selectors, vertexWeights, masks, nImg, N });
  return {
    model, layers: cache.layers.slice(), nLh, nRh, selectors, r2, pearson, score, noiseCeiling, history: trained.history, clusters, vertexWeights, ridge,
    roiMasks: Object.fromEntries(masks), roiMask: methods.roiMask, split, tokenCache: cache,
    topChannelImage: methods.topChannelImage, dispose: methods.dispose,
  };
}

/** Throws unless the noise ceiling (when given) has one value per vertex of the subject, lh then rh. */
function checkNoiseCeiling(subject: AlgonautsSubject, noiseCeiling: Float32Array | undefined): void {
  const nVertices = subject.vertexCount.lh + subject.vertexCount.rh;
  if (noiseCeiling && noiseCeiling.length !== nVertices) {
    throw new Error(`fitEncoder: noiseCeiling has ${noiseCeiling.length} values and the subject ${nVertices} vertices (lh ${subject.vertexCount.lh} + rh ${subject.vertexCount.rh}); give one per vertex, lh then rh.`);
  }
}

/**
 * Throws when a hemisphere has no vertices left (an nsdgeneral mask or a NaN policy took them all: training would go
 * on with the other hemisphere alone), and says what the subject's NaN/Inf policy left out when it left out anything.
 */
function checkSubjectVertices(subject: AlgonautsSubject, log: (s: string) => void): void {
  const r = subject.nanReport;
  const found = r.lh.count + r.rh.count > 0;
  for (const h of ['lh', 'rh'] as const) {
    if (subject.vertexCount[h] === 0) {
      throw new Error(`fitEncoder: subject ${subject.dir} has no ${h} vertices left${found ? ` (${r.summary})` : ''}; fit needs both hemispheres. Check the nsdgeneral mask or the NaN/Inf policy (loadAlgonautsSubject's nanPolicy, nanReport).`);
    }
  }
  if (found) log(`fitEncoder: the subject's training fMRI held NaN/Inf; ${r.summary}`);
}

/** Step 1: builds (or reuses, from `cacheDir`) the token cache of the subject's training images. */
async function openTokenCache(opts: Pick<FitEncoderOptions, 'subject' | 'backbone' | 'cacheDir' | 'cacheDtype' | 'log' | 'progress'>): Promise<TokenCache> {
  const { subject } = opts;
  if (!subject.trainImagePaths.length) throw new Error(`fitEncoder: subject ${subject.dir} has no training images (training_split/training_images).`);
  const sources = await fileImageSources(subject.trainImagePaths, 'stat');
  return buildTokenCache(opts.backbone, sources, {
    dir: opts.cacheDir,
    dtype: opts.cacheDtype,
    log: opts.log,
    progress: (opts.progress ?? true) ? { label: 'tokens' } : false,
  });
}

/** Step 2: the training responses Y [nImg, N] (lh columns, then rh). */
async function readResponses(subject: AlgonautsSubject): Promise<{ Y: Float32Array; nLh: number; nRh: number; N: number; nImg: number }> {
  const nLh = subject.vertexCount.lh;
  const nRh = subject.vertexCount.rh;
  const N = nLh + nRh;
  const nImg = subject.trainImagePaths.length;
  const lh = await subject.fmri('lh');
  const rh = await subject.fmri('rh');
  const Y = new Float32Array(nImg * N);
  for (let i = 0; i < nImg; i++) {
    Y.set(lh.subarray(i * nLh, (i + 1) * nLh), i * N);
    Y.set(rh.subarray(i * nRh, (i + 1) * nRh), i * N + nLh);
  }
  return { Y, nLh, nRh, N, nImg };
}

/** Step 3: the subject's seeded train/validation split of its `nImg` training images; throws when validation is empty. */
function splitImages(subject: AlgonautsSubject, opts: { seed: number; valFraction?: number; nImg: number }): EncoderFit['split'] {
  const sp = subject.split({ seed: opts.seed, valFraction: opts.valFraction });
  const split = { train: Array.from(sp.train), val: Array.from(sp.val) };
  if (!split.val.length) throw new Error(`fitEncoder: the validation split is empty (valFraction ${opts.valFraction} of ${opts.nImg} images); use a larger valFraction.`);
  return split;
}

/** Where training starts: the optimizer and history of a checkpoint, or nothing for a fresh start. */
interface Resume {
  optimizer?: AdamW;
  history: EncoderFit['history'];
}

/** Step 4: loads the model's weights and optimizer from `checkpoint` when that file exists (same seed required). */
async function resumeFromCheckpoint(model: FactorizedEncoder, opts: { checkpoint?: string; seed: number; log: (line: string) => void }): Promise<Resume> {
  const { checkpoint: ckpt, seed } = opts;
  if (!ckpt || !fs.existsSync(ckpt)) return { history: [] };
  const { optimizer, info } = await loadCheckpoint(ckpt, model);
  if (info.seed !== seed) throw new Error(`fitEncoder: checkpoint ${ckpt} was trained with seed ${info.seed}, not ${seed}; pass seed: ${info.seed} to resume it, or use another checkpointDir.`);
  const history = ((info.extra as { history?: EncoderFit['history'] } | undefined)?.history ?? []).slice();
  opts.log(`encoder: resuming from ${ckpt} at step ${info.step} (epoch ${info.epoch})`);
  return { optimizer, history };
}

/** Runs `work`; when it throws, frees the model and closes the token cache before passing the error on. */
async function closingOnError<T>(model: FactorizedEncoder, cache: TokenCache, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    model.dispose();
    await cache.close();
    throw e;
  }
}

/** Options of {@link trainWithCheckpoints}. */
interface TrainingOptions extends Pick<FitEncoderOptions, 'optimizer' | 'regLambda' | 'regDecaySteps' | 'stopAtStep' | 'onEpoch'> {
  epochs: number;
  batchSize: number;
  seed: number;
  resume: Resume;
  /** `encoder.safetensors` to write after every epoch. */
  checkpoint?: string;
  log: (line: string) => void;
  progress: boolean;
}

/** What {@link trainWithCheckpoints} leaves: the step count, the last epoch's report, and the history (one entry per step). */
interface Trained {
  steps: number;
  last?: EpochReport;
  history: EncoderFit['history'];
}

/** Step 5: trains with a progress bar, logging each epoch's validation scores and writing a checkpoint after it. */
async function trainWithCheckpoints(model: FactorizedEncoder, data: { train: EncoderData; val: EncoderData }, opts: TrainingOptions): Promise<Trained> {
  const { epochs, batchSize: bs, seed, checkpoint: ckpt, log } = opts;
  const resumeFrom = opts.resume.optimizer;
  const history = opts.resume.history;
  const perEpoch = Math.ceil(data.train.size / bs);
  const total = epochs * perEpoch;
  const bar = opts.progress ? progress({ total, label: 'training' }) : null;
  if (bar && resumeFrom) bar.update(resumeFrom.step);
  let last: EpochReport | undefined;
  let steps = 0;
  try {
    ({ steps } = await trainEncoder(model, data.train, {
      epochs, batchSize: bs, seed, optimizer: opts.optimizer, regLambda: opts.regLambda, regDecaySteps: opts.regDecaySteps, resumeFrom, validation: data.val, stopAtStep: opts.stopAtStep,
      onStep: (p) => {
        history.push({ step: p.step, epoch: p.epoch, loss: p.loss });
        bar?.update(p.step, `epoch ${p.epoch + 1}/${epochs} loss ${p.loss.toFixed(4)}`);
      },
      onEpoch: async (r, opt) => {
        last = r;
        const h = history[history.length - 1];
        if (h) h.valR2 = r.meanR2;
        log(`epoch ${r.epoch + 1}/${epochs}: train loss ${r.trainLoss.toFixed(4)}, validation mean R² ${r.meanR2.toFixed(4)}, mean r ${r.meanPearson.toFixed(4)}`);
        if (ckpt) {
          fs.mkdirSync(path.dirname(ckpt), { recursive: true });
          await saveCheckpoint(ckpt, model, opt, { step: opt.step, epoch: Math.floor(opt.step / perEpoch), seed, extra: { history } });
        }
        opts.onEpoch?.(r);
      },
    }));
    bar?.done(history.length ? `loss ${history[history.length - 1]!.loss.toFixed(4)}` : undefined);
  } catch (e) {
    bar?.done('stopped');
    throw e;
  }
  return { steps, last, history };
}

/** Step 6: [N] validation R² and Pearson r, from the last epoch's report when it is the final step, else predicted afresh. */
async function validationScores(model: FactorizedEncoder, val: EncoderData, opts: { last?: EpochReport; steps: number; batchSize: number; N: number }): Promise<{ r2: Float32Array; pearson: Float32Array }> {
  const { last, N } = opts;
  if (last && last.step === opts.steps && last.r2.length) return { r2: Float32Array.from(last.r2), pearson: Float32Array.from(last.pearson) };
  const { pred, truth } = await predictAll(model, val, opts.batchSize);
  return { r2: Float32Array.from(r2PerVertex(pred, truth, N)), pearson: Float32Array.from(pearsonPerVertex(pred, truth, N)) };
}

/** Step 7: the model's selectors, its per-vertex weights [N, D] and their channel clusters (min(20, N) groups). */
function modelSummary(model: FactorizedEncoder, opts: { N: number; seed: number }): Pick<EncoderFit, 'selectors' | 'vertexWeights' | 'clusters'> {
  const { N, seed } = opts;
  const selectors = model.selectors();
  const vertexWeights = Float32Array.from(model.weight.dataSync() as Float32Array);
  const clusters = Int32Array.from(clusterChannels({ data: vertexWeights, shape: [N, model.dim] }, { k: Math.min(20, N), seed }).labels);
  return { selectors, vertexWeights, clusters };
}

/** Mask [N] (lh then rh) of every ROI of the subject that has vertices, in the subject's order. */
async function subjectRoiMasks(subject: AlgonautsSubject, opts: { N: number; nLh: number }): Promise<Map<string, Uint8Array>> {
  const masks = new Map<string, Uint8Array>();
  for (const roi of subject.roiNames()) {
    const m = await subject.roiMask(roi);
    const all = new Uint8Array(opts.N);
    all.set(m.lh, 0);
    all.set(m.rh, opts.nLh);
    if (all.some((x) => x)) masks.set(roi, all);
  }
  return masks;
}

/** Step 8: the ridge baseline on the cache's tokens (`features`, or `grid` x `grid`-pooled; PCA when asked), scored on the validation split. */
async function ridgeBaseline(cache: TokenCache, ridge: RidgeOptions, opts: { Y: Float32Array; N: number; split: EncoderFit['split']; seed: number; log: (line: string) => void }): Promise<EncoderFit['ridge']> {
  const { Y, N, split } = opts;
  const { grid, pca } = ridge;
  const mode = ridge.features ?? 'pooled';
  opts.log(`ridge baseline: ${grid ? `${grid}x${grid}-pooled` : mode} tokens of ${cache.layers.length} layers${pca ? `, PCA ${pca}` : ''}`);
  const collect = (rows: number[]) => (grid ? collectGridFeatures(cache, rows, grid) : collectTokenFeatures(cache, rows, mode));
  const trF = await collect(split.train);
  const vaF = await collect(split.val);
  const pick = (rows: number[]) => {
    const out = new Float32Array(rows.length * N);
    rows.forEach((r, j) => out.set(Y.subarray(r * N, (r + 1) * N), j * N));
    return { data: out, shape: [rows.length, N] as [number, number] };
  };
  const rb = fitRidgeBaseline(trF.map((t, l) => ({ train: t, val: vaF[l]! })), pick(split.train), pick(split.val), { pca, seed: opts.seed });
  return { bestLayer: rb.bestLayer, r2: rb.r2, r2ByLayer: rb.r2ByLayer };
}

/** What the fit's methods read: the model, the token cache, the fitted selectors and weights, and the ROI masks. */
interface FitParts {
  model: FactorizedEncoder;
  cache: TokenCache;
  selectors: Selectors;
  /** [N, D] */
  vertexWeights: Float32Array;
  masks: Map<string, Uint8Array>;
  nImg: number;
  N: number;
}

/** Step 9: the methods of {@link EncoderFit} (`roiMask`, `topChannelImage`, `dispose`) over the fit's parts. */
function fitMethods(parts: FitParts): Pick<EncoderFit, 'roiMask' | 'topChannelImage' | 'dispose'> {
  const { model, cache, masks, nImg } = parts;
  const roiMask = (roi: string): Uint8Array => {
    const m = masks.get(roi);
    if (!m) throw new RangeError(`roiMask: no vertices in ROI '${roi}'. ROIs with vertices: ${[...masks.keys()].join(', ')}`);
    return m;
  };
  return {
    roiMask,
    async topChannelImage(imageIndex: number, roi: string): Promise<RgbImage> {
      if (!(Number.isInteger(imageIndex) && imageIndex >= 0 && imageIndex < nImg)) throw new RangeError(`topChannelImage: image ${imageIndex} outside [0, ${nImg})`);
      return roiChannelImage(parts, imageIndex, roiMask(roi));
    },
    async dispose() {
      model.dispose();
      await cache.close();
    },
  };
}

/** RGB image [g, g] of training image `imageIndex`'s local tokens, mixed by the ROI's mean layer selector and projected on its first 3 weight PCs. */
async function roiChannelImage(parts: FitParts, imageIndex: number, m: Uint8Array): Promise<RgbImage> {
  const { model, cache, selectors, vertexWeights, N } = parts;
  const L = cache.layers.length;
  const p = new Float64Array(L);
  let n = 0;
  for (let j = 0; j < N; j++) if (m[j]) {
    for (let l = 0; l < L; l++) p[l]! += selectors.layer[j * L + l]!;
    n++;
  }
  for (let l = 0; l < L; l++) p[l]! /= n;
  const batch = await cache.getBatch([imageIndex]);
  try {
    const map = mixedTokenMap(batch.local, model.localBottleneck as tf.Tensor2D[], p);
    const comps = roiPrincipalComponents({ data: vertexWeights, shape: [N, model.dim] }, m, 3);
    return channelImage(map, comps);
  } finally {
    tf.dispose([...batch.local, ...batch.global]);
  }
}
