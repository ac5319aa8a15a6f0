/**
 * The synthetic-world BrainDiVE set-up (committed models) and the paper's runs: for each region,
 * N images written to disk as PNG with their scores (JSON), resumable (images already written are skipped).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../compute/index.js';
import { writePng } from '../io/image.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import type { Params } from '../diffusion/pixel-unet.js';
import { ModelFolderError } from '../diffusion/model-folder.js';
import { loadSyntheticDiffusion, type SyntheticDiffusionModel } from '../diffusion/small-models.js';
import type { FeatureExtractor } from '../backbones/contract.js';
import { builtinFeatureExtractorFor } from '../backbones/features.js';
import { loadVoxelEncoder, regionIndices, regionActivation, type VoxelEncoder } from './voxel-encoder.js';
import { evaluateRegion, type RegionEvaluation } from './evaluate.js';
import { REGION_CATEGORY } from './subject-encoder.js';
import { loadClassifier, classifyImages } from './classifier.js';
import { generatePixel, toRgbImages, checkScale } from './generate.js';

/** Everything the synthetic-world demo needs. */
export interface SyntheticBrainDiVE {
  model: SyntheticDiffusionModel;
  encoder: VoxelEncoder;
  fx: FeatureExtractor;
  classifier: Params;
}

/** Default committed model folders, relative to the repository root. */
export const SYNTHETIC_MODELS = {
  diffusion: 'models/synthetic-diffusion-64',
  encoder: 'models/synthetic-encoder-mobilenetv2/encoder.safetensors',
  classifier: 'models/synthetic-classifier-64',
};

/** Finds the repository root (the folder with models/) from a start folder upwards. */
export function findRepoRoot(start = process.cwd()): string {
  let d = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(d, 'models', 'synthetic-diffusion-64'))) return d;
    const up = path.dirname(d);
    if (up === d) return path.resolve(start);
    d = up;
  }
}

/** Loads the committed synthetic-world models (diffusion, encoder, classifier) and the MobileNetV2 features. */
export async function loadSyntheticBrainDiVE(paths: Partial<typeof SYNTHETIC_MODELS> = {}, root = findRepoRoot()): Promise<SyntheticBrainDiVE> {
  await initBackend();
  const p = { ...SYNTHETIC_MODELS, ...paths };
  const abs = (x: string) => (path.isAbsolute(x) ? x : path.join(root, x));
  const model = await loadSyntheticDiffusion(abs(p.diffusion));
  if (!fs.existsSync(abs(p.encoder))) throw new ModelFolderError(`encoder file ${abs(p.encoder)} is missing; run data-prep/braindive/train-encoder.ts`);
  const encoder = await loadVoxelEncoder(abs(p.encoder));
  const fx = await builtinFeatureExtractorFor(encoder);
  const classifier = await loadClassifier(abs(p.classifier));
  return { model, encoder, fx, classifier };
}

/** Options of {@link runRegions}. */
export interface RunRegionsOptions {
  setup: SyntheticBrainDiVE;
  outDir: string;
  regions: string[];
  /** Images per region. */
  n: number;
  scale: number;
  steps?: number;
  /** Seed of image i is seed0 + i (the same seeds for every region). */
  seed0?: number;
  /** Also write unguided images (region 'unguided'). */
  unguided?: boolean;
  /** Images generated together (default 8); the images do not depend on it. */
  batch?: number;
  onImage?: (region: string, i: number, skipped: boolean) => void;
}

/** Writes OUT/<region>/<i>.png and <i>.json ({seed, scale, steps, activation, probs}); images already written are skipped. */
export async function runRegions(o: RunRegionsOptions): Promise<{ written: number; skipped: number }> {
  checkScale(o.scale);
  for (const r of o.regions) regionIndices(o.setup.encoder, r);
  let written = 0, skipped = 0;
  const jobs: [string, number][] = [...(o.unguided ? [['unguided', 0] as [string, number]] : []), ...o.regions.map((r) => [r, o.scale] as [string, number])];
  for (const [region, scale] of jobs) {
    const dir = path.join(o.outDir, region);
    fs.mkdirSync(dir, { recursive: true });
    const stem = (i: number) => path.join(dir, String(i).padStart(4, '0'));
    const todo: number[] = [];
    for (let i = 0; i < o.n; i++) {
      if (fs.existsSync(`${stem(i)}.png`) && fs.existsSync(`${stem(i)}.json`)) {
        skipped++;
        o.onImage?.(region, i, true);
      } else todo.push(i);
    }
    // the missing images in batches; each is written (PNG, then its JSON) as soon as its batch is done
    const batch = o.batch ?? 8;
    for (let k = 0; k < todo.length; k += batch) {
      const idx = todo.slice(k, k + batch);
      const seeds = idx.map((i) => (o.seed0 ?? 0) + i);
      const g = await generatePixel({ model: o.setup.model, encoder: o.setup.encoder, fx: o.setup.fx, region: region === 'unguided' ? o.regions[0]! : region, scale, seeds, steps: o.steps, batch });
      const probs = tf.tidy(() => Array.from(classifyImages(o.setup.classifier, g.images).dataSync()));
      const rgb = toRgbImages(g.images);
      g.images.dispose();
      for (let j = 0; j < idx.length; j++) {
        await writePng(`${stem(idx[j]!)}.png`, rgb[j]!);
        writeFileAtomicSync(`${stem(idx[j]!)}.json`, JSON.stringify({ region, seed: seeds[j], scale, steps: o.steps ?? 25, activation: g.activation[j], probs: probs.slice(j * 5, j * 5 + 5) }));
        written++;
        o.onImage?.(region, idx[j]!, false);
      }
    }
  }
  return { written, skipped };
}

/**
 * BrainDiVE's evaluation from fixed seeds: one unguided set, then one guided set per region (scale `scale`),
 * each classified by the 5-way classifier and scored by the encoder; one row per region.
 */
export async function evaluateGuidance(setup: SyntheticBrainDiVE, regions: string[], o: { scale: number; seeds: number[]; steps: number; scheduler?: 'ddim' | 'dpmpp2m' | 'euler' }): Promise<RegionEvaluation[]> {
  if (!regions.length) throw new Error('evaluateGuidance: give at least one region');
  const u = await generatePixel({ ...setup, region: regions[0]!, scale: 0, seeds: o.seeds, steps: o.steps, scheduler: o.scheduler });
  const up = classifyImages(setup.classifier, u.images).dataSync();
  const rows: RegionEvaluation[] = [];
  for (const region of regions) {
    const category = REGION_CATEGORY[region];
    if (!category) throw new Error(`evaluateGuidance: region '${region}' has no preferred category; use one of ${Object.keys(REGION_CATEGORY).join(', ')}`);
    const g = await generatePixel({ ...setup, region, scale: o.scale, seeds: o.seeds, steps: o.steps, scheduler: o.scheduler });
    const ua = tf.tidy(() => regionActivation(setup.encoder, setup.fx, region, u.images).dataSync());
    const gp = tf.tidy(() => classifyImages(setup.classifier, g.images).dataSync());
    rows.push(evaluateRegion(region, category, { probs: gp, activation: g.activation }, { probs: up, activation: ua }));
    g.images.dispose();
  }
  u.images.dispose();
  return rows;
}
