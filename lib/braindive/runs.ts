/**
 * The paper's runs and evaluation over a pipeline (pipeline.ts; either setting): for each region, N images written to
 * disk as PNG with their scores (JSON), resumable; and the guided-against-unguided evaluation table from fixed seeds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writePng } from '../io/image.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import { withFolderLock } from '../io/lock.js';
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
  /** Images generated together (default 8); image i is drawn in batch floor(i / batch). Another batch size changes pixels by at most a few levels. */
  batch?: number;
  /** Self-attention guidance scale (default: the pipeline's; SD: 0.75, 0 turns it off; the synthetic world has none). */
  sagScale?: number;
  onImage?: (region: string, i: number, skipped: boolean) => void;
  /** Where notes go (a stale lock taken over, leftovers of a killed run removed); default console.error. */
  log?: ((line: string) => void) | null;
}

/**
 * Writes OUT/<region>/<i>.png and <i>.json ({seed, scale, steps, sagScale, activation, probs}; probs null without a classifier);
 * images already written are skipped. Images are drawn in fixed batches (image i in batch floor(i / batch)), and a
 * batch with a missing image is drawn whole again, so a rerun after a kill writes the same bytes as an uninterrupted
 * run (with the same --batch). OUT is locked while it is written.
 */
export async function runRegions(o: RunRegionsOptions): Promise<{ written: number; skipped: number }> {
  // 1. check inputs
  checkScale(o.scale);
  for (const r of o.regions) regionIndices(o.pipeline.encoder, r);
  const batch = Math.max(1, o.batch ?? 8);
  // 2. lock the output folder (a second run into it fails at once, naming this one; leftovers of killed runs go)
  return withFolderLock(o.outDir, { command: `run-regions (${o.regions.join(', ')}, n ${o.n})`, log: o.log }, async () => {
    let written = 0, skipped = 0;
    const jobs: [string, number][] = [...(o.unguided ? [['unguided', 0] as [string, number]] : []), ...o.regions.map((r) => [r, o.scale] as [string, number])];
    for (const [region, scale] of jobs) {
      const dir = path.join(o.outDir, region);
      fs.mkdirSync(dir, { recursive: true });
      const stem = (i: number) => path.join(dir, String(i).padStart(4, '0'));
      const done = (i: number) => fs.existsSync(`${stem(i)}.png`) && fs.existsSync(`${stem(i)}.json`);
      // 3. per fixed batch: skip it when complete, else draw it whole and write what is missing (PNG, then its JSON)
      for (let b0 = 0; b0 < o.n; b0 += batch) {
        const idx = Array.from({ length: Math.min(batch, o.n - b0) }, (_, j) => b0 + j);
        const missing = idx.filter((i) => !done(i));
        for (const i of idx) if (!missing.includes(i)) { skipped++; o.onImage?.(region, i, true); }
        if (!missing.length) continue;
        const seeds = idx.map((i) => (o.seed0 ?? 0) + i);
        const g = await o.pipeline.generate({ region: region === 'unguided' ? o.regions[0]! : region, scale, seeds, steps: o.steps, batch, sagScale: o.sagScale });
        const probs = await o.pipeline.classify(g.images);
        const rgb = toRgbImages(g.images);
        g.images.dispose();
        for (let j = 0; j < idx.length; j++) {
          if (!missing.includes(idx[j]!)) continue;
          await writePng(`${stem(idx[j]!)}.png`, rgb[j]!);
          writeFileAtomicSync(`${stem(idx[j]!)}.json`, JSON.stringify({ region, seed: seeds[j], scale, steps: o.steps ?? o.pipeline.steps, sagScale: g.sagScale, activation: g.activation[j], probs: probs ? Array.from(probs.subarray(j * 5, j * 5 + 5)) : null }));
          written++;
          o.onImage?.(region, idx[j]!, false);
        }
      }
    }
    return { written, skipped };
  });
}

/**
 * BrainDiVE's evaluation from fixed seeds: one unguided set, then one guided set per region (scale `scale`),
 * each classified by the pipeline's classifier and scored by its encoder; one row per region.
 */
export async function evaluateGuidance(pipeline: BrainDiVEPipeline, regions: string[], o: { scale: number; seeds: number[]; steps: number; scheduler?: SchedulerKind }): Promise<RegionEvaluation[]> {
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
    rows.push(evaluateRegion(region, REGION_CATEGORY[region]!, { probs: gp, activation: g.activation }, { probs: up, activation: ua }));
    g.images.dispose();
  }
  u.images.dispose();
  return rows;
}
