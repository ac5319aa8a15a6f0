/**
 * Fits BrainDiVE's voxel encoder to an Algonauts-layout subject (real or synthetic): named regions
 * (the paper's FFA, PPA, EBA, VWFA, food, plus every Algonauts ROI label), features of the
 * training images, a seeded train/validation split, AdamW training, validation R^2.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AlgonautsSubject } from '../data/algonauts.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import { Rng, subSeed } from '../core/rng.js';
import { meanFinite, r2PerVertex } from '../encoding/metrics.js';
import type { FeatureExtractor } from '../backbones/contract.js';
import { extractFeatures } from '../backbones/features.js';
import { predictFromFeatures, trainVoxelEncoder, vertexSetId, type TrainVoxelOptions, type VoxelEncoder } from './voxel-encoder.js';

/** Localiser data: images [n, side, side, 3] (uint8 HWC), labels [n] (EVAL_CATEGORIES index), responses [n, lh + rh]. */
export interface LocaliserSet {
  n: number;
  side: number;
  pixels: Uint8Array;
  labels: Int32Array;
  responses: Float32Array;
  vertexCount: { lh: number; rh: number };
}

/** The paper's regions as unions of Algonauts labels ('food' comes from a mask, e.g. the synthetic ground truth's). */
export const PAPER_REGIONS: Record<string, string[]> = {
  FFA: ['FFA-1', 'FFA-2'],
  PPA: ['PPA'],
  EBA: ['EBA'],
  VWFA: ['VWFA-1', 'VWFA-2'],
  OFA: ['OFA'],
  OPA: ['OPA'],
  RSC: ['RSC'],
};

/** Each paper region's preferred category. */
export const REGION_CATEGORY: Record<string, 'faces' | 'bodies' | 'places' | 'words' | 'food'> = {
  FFA: 'faces', OFA: 'faces', 'FFA-1': 'faces', 'FFA-2': 'faces',
  EBA: 'bodies', 'FBA-1': 'bodies', 'FBA-2': 'bodies',
  PPA: 'places', OPA: 'places', RSC: 'places',
  VWFA: 'words', 'VWFA-1': 'words', 'VWFA-2': 'words', OWFA: 'words',
  food: 'food',
};

/** Voxel columns (lh then rh) of every region of a subject: each Algonauts label, the paper's unions, and 'food' when a food mask is given (e.g. from a synthetic subject's `groundTruth`). */
export async function subjectRegions(s: AlgonautsSubject, opts: { food?: { lh: Uint8Array; rh: Uint8Array } } = {}): Promise<Record<string, Int32Array>> {
  const nl = s.vertexCount.lh;
  const toIdx = (m: Record<'lh' | 'rh', ArrayLike<number>>) => {
    const out: number[] = [];
    for (let i = 0; i < m.lh.length; i++) if (m.lh[i]) out.push(i);
    for (let i = 0; i < m.rh.length; i++) if (m.rh[i]) out.push(nl + i);
    return Int32Array.from(out);
  };
  const regions: Record<string, Int32Array> = {};
  for (const name of s.roiNames()) regions[name] = toIdx(await s.roiMask(name));
  for (const [name, parts] of Object.entries(PAPER_REGIONS)) {
    const set = new Set<number>();
    for (const p of parts) for (const i of regions[p] ?? []) set.add(i);
    if (set.size) regions[name] = Int32Array.from([...set].sort((a, b) => a - b));
  }
  if (opts.food) regions.food = toIdx(opts.food);
  return regions;
}

/** Result of {@link fitSubjectEncoder}. */
export interface FitSubjectResult {
  encoder: VoxelEncoder;
  /** Mean validation R^2 per region on the subject's own held-out images (the extra trials left out). */
  regionR2: Record<string, number>;
  /** The same on the held-out extra trials (e.g. the localiser), when there are any. */
  extraR2?: Record<string, number>;
  nTrain: number;
  nVal: number;
}

/** Bumped when a built-in extractor's values change under the same name (2: MobileNetV2's ReLU6 capped in the Keras executor), so old caches miss. */
export const FEATURE_CACHE_VERSION = 2;

/** Features [n, D] of images [n, side, side, 3] (uint8 HWC), read from `cacheDir` when an earlier run stored them; the file is named by the SHA-256 of the extractor's name and the pixels, so other images or another backbone never hit it. */
export function cachedFeatures(fx: FeatureExtractor, pixels: Uint8Array, n: number, side: number, cacheDir?: string, onBatch?: (done: number) => void): Float32Array {
  let file: string | undefined;
  if (cacheDir) {
    const h = crypto.createHash('sha256').update(`${FEATURE_CACHE_VERSION}|${fx.name}|${fx.version ?? ''}|${fx.dim}|${n}x${side}x${side}x3|`).update(pixels).digest('hex').slice(0, 32);
    file = path.join(cacheDir, `features-${h}.f32`);
    if (fs.existsSync(file) && fs.statSync(file).size === n * fx.dim * 4) {
      const buf = fs.readFileSync(file);
      onBatch?.(n);
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    }
  }
  const X = extractFeatures(fx, pixels, n, side, 16, onBatch);
  if (file) writeFileAtomicSync(file, Buffer.from(X.buffer, X.byteOffset, X.byteLength));
  return X;
}

/** Extracts features of a subject's training images and fits the voxel encoder (seeded 90/10 split). */
export async function fitSubjectEncoder(
  s: AlgonautsSubject, fx: FeatureExtractor,
  opts: TrainVoxelOptions & {
    valFraction?: number; maxImages?: number; onProgress?: (done: number, total: number) => void;
    /** Folder for content-keyed feature caches (see cachedFeatures); none by default. */
    featureCacheDir?: string;
    /** More training trials on the same vertices (e.g. syntheticLocaliser), split 90/10 like the subject's. */
    extra?: LocaliserSet;
    /** Mask of the 'food' region per hemisphere (see {@link subjectRegions}). */
    food?: { lh: Uint8Array; rh: Uint8Array };
  } = {},
): Promise<FitSubjectResult> {
  const n = Math.min(s.trainImagePaths.length, opts.maxImages ?? Infinity);
  const first = await s.trainImage(0);
  const side = first.width;
  const pixels = new Uint8Array(n * side * side * 3);
  for (let i = 0; i < n; i++) {
    const im = await s.trainImage(i);
    if (im.width !== side || im.height !== side) throw new Error(`training image ${i} is ${im.width}x${im.height}, expected ${side}x${side} like the first`);
    pixels.set(im.data, i * side * side * 3);
  }
  const total = n + (opts.extra?.n ?? 0);
  let X = cachedFeatures(fx, pixels, n, side, opts.featureCacheDir, (d) => opts.onProgress?.(d, total));
  const lh = await s.fmri('lh');
  const rh = await s.fmri('rh');
  const nl = s.vertexCount.lh, nr = s.vertexCount.rh, v = nl + nr;
  let Y = new Float32Array(n * v);
  for (let i = 0; i < n; i++) {
    Y.set(lh.subarray(i * nl, (i + 1) * nl), i * v);
    Y.set(rh.subarray(i * nr, (i + 1) * nr), i * v + nl);
  }
  const { train, val } = s.split({ seed: opts.seed ?? 0, valFraction: opts.valFraction ?? 0.1 });
  const tr = Array.from(train).filter((i) => i < n);
  const va = Array.from(val).filter((i) => i < n);
  const ex = opts.extra;
  if (ex) {
    if (ex.vertexCount.lh !== nl || ex.vertexCount.rh !== nr) throw new Error(`the extra trials cover ${ex.vertexCount.lh} + ${ex.vertexCount.rh} vertices, the subject ${nl} + ${nr}; simulate them for the same subject`);
    const Xe = cachedFeatures(fx, ex.pixels, ex.n, ex.side, opts.featureCacheDir, (d) => opts.onProgress?.(n + d, total));
    const all = new Float32Array((n + ex.n) * fx.dim);
    all.set(X);
    all.set(Xe, n * fx.dim);
    X = all;
    const Yall = new Float32Array((n + ex.n) * v);
    Yall.set(Y);
    Yall.set(ex.responses, n * v);
    // a seeded random share (a fixed stride would pick one category: localiser trials cycle through the five)
    const rng = new Rng(subSeed(opts.seed ?? 0, 'extra-validation'));
    for (let i = 0; i < ex.n; i++) (rng.next() < (opts.valFraction ?? 0.1) ? va : tr).push(n + i);
    Y = Yall;
  }
  const pick = (rows: number[], src: Float32Array, w: number) => {
    const o = new Float32Array(rows.length * w);
    rows.forEach((r, k) => o.set(src.subarray(r * w, (r + 1) * w), k * w));
    return o;
  };
  const d = fx.dim;
  const regions = await subjectRegions(s, { food: opts.food });
  const encoder = trainVoxelEncoder(pick(tr, X, d), pick(tr, Y, v), tr.length, d, v, { X: pick(va, X, d), Y: pick(va, Y, v), n: va.length }, { featureName: fx.name, featureVersion: fx.version, vertexSet: vertexSetId(s.fsIndex), regions }, opts);
  // R^2 per region on one kind of held-out row: the subject's images, or the extra trials
  const r2Of = (rows: number[]): { perVoxel: Float32Array; byRegion: Record<string, number> } => {
    const perVoxel = Float32Array.from(r2PerVertex(predictFromFeatures(encoder, pick(rows, X, d), rows.length), pick(rows, Y, v), v));
    return { perVoxel, byRegion: Object.fromEntries(Object.entries(regions).map(([k, idx]) => [k, meanFinite(Array.from(idx, (i) => perVoxel[i]!))])) };
  };
  const scenes = r2Of(va.filter((i) => i < n));
  encoder.valR2 = scenes.perVoxel; // what is saved with the encoder: R^2 on the subject's own held-out images
  const regionR2 = scenes.byRegion;
  const extraRows = va.filter((i) => i >= n);
  const extraR2 = extraRows.length ? r2Of(extraRows).byRegion : undefined;
  return { encoder, regionR2, extraR2, nTrain: tr.length, nVal: va.length };
}
