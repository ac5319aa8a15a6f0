/**
 * The paper's runs and evaluation over a pipeline (pipeline.ts; either setting): for each region, N images written to
 * disk as PNG with their scores (JSON), resumable; and the guided-against-unguided evaluation table from fixed seeds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { writePng } from '../io/image.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import { withFolderLock } from '../io/lock.js';
import type { SchedulerKind } from '../diffusion/schedulers/index.js';
import { regionIndices } from './voxel-encoder.js';
import { evaluateRegion, type RegionEvaluation } from './evaluate.js';
import { REGION_CATEGORY } from './subject-encoder.js';
import { EVAL_CATEGORIES, type EvalCategory } from './categories.js';
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

/** Counts of images by classified category (argmax of the 5-way probabilities), from runRegions' JSON files or any probabilities [N, 5]. */
export function categoryCounts(probs: ArrayLike<number>[]): Record<EvalCategory, number> & { n: number } {
  const out = { ...Object.fromEntries(EVAL_CATEGORIES.map((c) => [c, 0])), n: 0 } as Record<EvalCategory, number> & { n: number };
  for (const p of probs) {
    if (p.length !== 5) throw new Error(`categoryCounts: expected 5 probabilities (${EVAL_CATEGORIES.join(', ')}), found ${p.length}`);
    let best = 0;
    for (let k = 1; k < 5; k++) if (p[k]! > p[best]!) best = k;
    out[EVAL_CATEGORIES[best]!]++;
    out.n++;
  }
  return out;
}

/** Counts of one block of images: a region (and subject), guided or unguided, how many were classified as each category. */
export type CountsRow = { region: string; subject?: string; condition: 'guided' | 'unguided' } & Partial<Record<EvalCategory, number>> & { n: number };

/** One row of BrainDiVE's 5-way table: per region (and subject), the share of images in each category, guided and unguided. */
export interface FiveWayRow {
  region: string;
  subject: string;
  /** The region's preferred category. */
  category: EvalCategory | '';
  n: number;
  /** Share of guided images per category, and of unguided ones (the same seeds). */
  guided: Record<EvalCategory, number>;
  unguided: Record<EvalCategory, number>;
  /** Guided and unguided share of the preferred category. */
  hit: number;
  baseline: number;
}

/**
 * BrainDiVE's 5-way table from counts collected over blocks of seeds (e.g. a sweep's recorded `counts` tables): counts are
 * summed per region and subject before the shares are taken, so blocks of any size combine exactly.
 */
export function fiveWayTable(rows: CountsRow[]): FiveWayRow[] {
  const key = (r: CountsRow) => JSON.stringify([r.subject ?? '', r.region]);
  const sums = new Map<string, { region: string; subject: string; guided: number[]; unguided: number[]; ng: number; nu: number }>();
  for (const r of rows) {
    const s = sums.get(key(r)) ?? { region: r.region, subject: r.subject ?? '', guided: [0, 0, 0, 0, 0], unguided: [0, 0, 0, 0, 0], ng: 0, nu: 0 };
    const into = r.condition === 'guided' ? s.guided : s.unguided;
    EVAL_CATEGORIES.forEach((c, k) => (into[k]! += Number(r[c] ?? 0)));
    if (r.condition === 'guided') s.ng += r.n;
    else s.nu += r.n;
    sums.set(key(r), s);
  }
  return [...sums.values()].map((s) => {
    const share = (c: number[], n: number) => Object.fromEntries(EVAL_CATEGORIES.map((cat, k) => [cat, n ? c[k]! / n : NaN])) as Record<EvalCategory, number>;
    const category = REGION_CATEGORY[s.region] ?? '';
    const guided = share(s.guided, s.ng), unguided = share(s.unguided, s.nu);
    return { region: s.region, subject: s.subject, category, n: s.ng, guided, unguided, hit: category ? guided[category] : NaN, baseline: category ? unguided[category] : NaN };
  });
}

/** The 5-way table as Markdown: one row per region (and subject), the guided share of each category (unguided in brackets), preferred category in bold. */
export function formatFiveWay(rows: FiveWayRow[]): string {
  const pct = (v: number) => (Number.isFinite(v) ? `${Math.round(100 * v)} %` : '—');
  const subj = rows.some((r) => r.subject);
  const head = `| ${subj ? 'subject | ' : ''}region | n | ${EVAL_CATEGORIES.join(' | ')} |`;
  const sep = `|${subj ? ' --- |' : ''} --- | ---: |${EVAL_CATEGORIES.map(() => ' ---: |').join('')}`;
  const body = rows.map((r) => `| ${subj ? `${r.subject} | ` : ''}${r.region} | ${r.n} | ${EVAL_CATEGORIES.map((c) => {
    const cell = `${pct(r.guided[c])} (${pct(r.unguided[c])})`;
    return c === r.category ? `**${cell}**` : cell;
  }).join(' | ')} |`);
  return [head, sep, ...body].join('\n');
}
