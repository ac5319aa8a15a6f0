/**
 * The paper's runs and evaluation over a pipeline (pipeline.ts; either setting): for each region, N images written to
 * disk as PNG with their scores (JSON), resumable; and the guided-against-unguided evaluation table from fixed seeds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { writePng } from '../io/image.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import type { SchedulerKind } from '../diffusion/schedulers/index.js';
import { regionIndices } from './voxel-encoder.js';
import { evaluateRegion, type RegionEvaluation } from './evaluate.js';
import { REGION_CATEGORY } from './subject-encoder.js';
import { checkScale, toRgbImages, type BrainDiVEPipeline } from './pipeline.js';

/** Options of {@link runRegions}. */
export interface RunRegionsOptions {
  pipeline: BrainDiVEPipeline;
  outDir: string;
  regions: string[];
  /** Images per region. */
  n: number;
  scale: number;
  /** Sampling steps (default: the pipeline's). */
  steps?: number;
  /** Seed of image i is seed0 + i (the same seeds for every region). */
  seed0?: number;
  /** Also write unguided images (region 'unguided'). */
  unguided?: boolean;
  /** Images generated together (default 8); the images do not depend on it. */
  batch?: number;
  onImage?: (region: string, i: number, skipped: boolean) => void;
}

/** Writes OUT/<region>/<i>.png and <i>.json ({seed, scale, steps, activation, probs}; probs null without a classifier); images already written are skipped. */
export async function runRegions(o: RunRegionsOptions): Promise<{ written: number; skipped: number }> {
  checkScale(o.scale);
  for (const r of o.regions) regionIndices(o.pipeline.encoder, r);
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
      const g = await o.pipeline.generate({ region: region === 'unguided' ? o.regions[0]! : region, scale, seeds, steps: o.steps, batch });
      const probs = await o.pipeline.classify(g.images);
      const rgb = toRgbImages(g.images);
      g.images.dispose();
      for (let j = 0; j < idx.length; j++) {
        await writePng(`${stem(idx[j]!)}.png`, rgb[j]!);
        writeFileAtomicSync(`${stem(idx[j]!)}.json`, JSON.stringify({ region, seed: seeds[j], scale, steps: o.steps ?? o.pipeline.steps, activation: g.activation[j], probs: probs ? Array.from(probs.subarray(j * 5, j * 5 + 5)) : null }));
        written++;
        o.onImage?.(region, idx[j]!, false);
      }
    }
  }
  return { written, skipped };
}

/** The true response of a region to images [N,3,H,W] on [0,1] -> [N] (e.g. a synthetic world's trueResponse averaged over the region), passed in by the caller. */
export type RegionTruth = (region: string, images: tf.Tensor4D) => Promise<Float32Array>;

/**
 * BrainDiVE's evaluation from fixed seeds: one unguided set, then one guided set per region (scale `scale`),
 * each classified by the pipeline's classifier, scored by its encoder and, with `truth`, by the true response; one row per region.
 */
export async function evaluateGuidance(pipeline: BrainDiVEPipeline, regions: string[], o: { scale: number; seeds: number[]; steps: number; scheduler?: SchedulerKind; truth?: RegionTruth }): Promise<RegionEvaluation[]> {
  // 1. check inputs: regions with a preferred category
  if (!regions.length) throw new Error('evaluateGuidance: give at least one region');
  for (const region of regions) {
    if (!REGION_CATEGORY[region]) throw new Error(`evaluateGuidance: region '${region}' has no preferred category; use one of ${Object.keys(REGION_CATEGORY).join(', ')}`);
  }
  const classify = async (images: Parameters<BrainDiVEPipeline['classify']>[0]) => {
    const p = await pipeline.classify(images);
    if (!p) throw new Error('evaluateGuidance: the pipeline has no classifier; give loadSdPipeline a clipModel (CLIP zero-shot)');
    return p;
  };
  // 2. the unguided set from the seeds, classified
  const u = await pipeline.generate({ region: regions[0]!, scale: 0, seeds: o.seeds, steps: o.steps, scheduler: o.scheduler });
  const up = await classify(u.images);
  // 3. per region: the guided set from the same seeds, classified, against the unguided set scored for that region
  const rows: RegionEvaluation[] = [];
  for (const region of regions) {
    const g = await pipeline.generate({ region, scale: o.scale, seeds: o.seeds, steps: o.steps, scheduler: o.scheduler });
    const ua = pipeline.score(region, u.images);
    const gp = await classify(g.images);
    const truth = o.truth ? { g: await o.truth(region, g.images), u: await o.truth(region, u.images) } : undefined;
    rows.push(evaluateRegion(region, REGION_CATEGORY[region]!, { probs: gp, activation: g.activation, truth: truth?.g }, { probs: up, activation: ua, truth: truth?.u }));
    g.images.dispose();
  }
  u.images.dispose();
  return rows;
}
