/**
 * The science check of issue 4: does a fitted encoder recover a synthetic subject's ground truth?
 *
 * - layer: early-visual vertices (V1-V3) choose a lower mean layer index than category-ROI vertices
 *   (the gap in layers is reported);
 * - space: the space selector's (x, y) correlates with the true pRF centre in V1-V3 (r >= 0.7 for x
 *   and y). Conventions: the generator's pRF is in image units, x right and y UP; the space selector
 *   is on the token grid, x right (width) and y DOWN (height, row 0 at the top). So x_grid ~ prfX and
 *   y_grid ~ -prfY. Both hemifields share the one image, so no mirroring between hemispheres;
 * - scale: the scale selector is lower (more local) in V1-V3 than in the category ROIs;
 * - R² per ROI set against the noise ceiling.
 * The ridge baseline gets the same layer and R² checks (it has no space or scale).
 * Pure functions over plain arrays; `readGroundTruth` is the only I/O.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AlgonautsSubject } from '../data/algonauts.js';
import { FileFormatError } from '../io/errors.js';

/** ROIs of V1-V3 (early visual). */
export const EARLY_ROIS = ['V1v', 'V1d', 'V2v', 'V2d', 'V3v', 'V3d'] as const;
/** Category ROIs of the synthetic world (floc ROIs plus food). */
export const CATEGORY_ROIS = ['OFA', 'FFA-1', 'FFA-2', 'EBA', 'FBA-1', 'FBA-2', 'OPA', 'PPA', 'RSC', 'OWFA', 'VWFA-1', 'VWFA-2', 'food'] as const;

/** A synthetic subject's ground truth over the selected vertices (lh then rh). */
export interface VertexTruth {
  /** [N] ROI name ('V1v', 'FFA-1', ..., 'food', 'other'). */
  roi: string[];
  /** [N] pRF centre in image units (x right, y up), NaN without a pRF. */
  prfX: Float32Array;
  prfY: Float32Array;
  /** [N] intended depth and scale. */
  depth: string[];
  scale: string[];
  /** [N] Algonauts noise ceiling (fraction). */
  noiseCeiling: Float32Array;
}

/** Reads ground_truth/vertices.json of a synthetic subject, over its selected vertices (lh then rh). */
export function readGroundTruth(subject: Pick<AlgonautsSubject, 'dir' | 'challengeIndex'>): VertexTruth {
  const f = path.join(subject.dir, 'ground_truth', 'vertices.json');
  if (!fs.existsSync(f)) throw new FileFormatError(f, 'the ground truth of a synthetic subject', 'no such file', 'The science check needs a synthetic subject (make-subject); real data has no ground truth.');
  type Hemi = { roi: string[]; prfX: (number | null)[]; prfY: (number | null)[]; depth: string[]; scale: string[]; noiseCeiling: number[] };
  const gt = JSON.parse(fs.readFileSync(f, 'utf8')) as { lh: Hemi; rh: Hemi };
  const idx: ['lh' | 'rh', number][] = [...[...subject.challengeIndex.lh].map((k) => ['lh', k] as ['lh', number]), ...[...subject.challengeIndex.rh].map((k) => ['rh', k] as ['rh', number])];
  const num = (v: number | null | undefined) => (v == null ? NaN : v);
  return {
    roi: idx.map(([h, k]) => gt[h].roi[k]!),
    prfX: Float32Array.from(idx, ([h, k]) => num(gt[h].prfX[k])),
    prfY: Float32Array.from(idx, ([h, k]) => num(gt[h].prfY[k])),
    depth: idx.map(([h, k]) => gt[h].depth[k]!),
    scale: idx.map(([h, k]) => gt[h].scale[k]!),
    noiseCeiling: Float32Array.from(idx, ([h, k]) => gt[h].noiseCeiling[k]!),
  };
}

/** Pearson r of the pairs where both are finite (NaN with fewer than 3). */
export function pearsonFinite(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let n = 0, sx = 0, sy = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]!) && Number.isFinite(y[i]!)) (n++, (sx += x[i]!), (sy += y[i]!));
  if (n < 3) return NaN;
  const mx = sx / n, my = sy / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < x.length; i++) {
    if (!(Number.isFinite(x[i]!) && Number.isFinite(y[i]!))) continue;
    const a = x[i]! - mx, b = y[i]! - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

function meanWhere(v: ArrayLike<number>, keep: (i: number) => boolean): { mean: number; n: number } {
  let s = 0, n = 0;
  for (let i = 0; i < v.length; i++) if (keep(i) && Number.isFinite(v[i]!)) (s += v[i]!), n++;
  return { mean: n ? s / n : NaN, n };
}

/** Mean layer index per vertex from softmax layer weights [N, L]: sum_l l * p[n, l] -> [N]. */
export function meanLayerIndex(layer: ArrayLike<number>, L: number): Float32Array {
  const N = layer.length / L;
  const out = new Float32Array(N);
  for (let j = 0; j < N; j++) {
    let s = 0;
    for (let l = 0; l < L; l++) s += l * layer[j * L + l]!;
    out[j] = s;
  }
  return out;
}

/** One line of the per-ROI R² table. */
export interface RoiR2Row {
  roi: string;
  n: number;
  noiseCeiling: number;
  model: number;
  ridge?: number;
  /** Model R² / noise ceiling. */
  modelFraction: number;
  ridgeFraction?: number;
}

/** What a science check found; every number is also in the JSON report. */
export interface ScienceReport {
  layers: number;
  layer: {
    model: { early: number; category: number; gap: number; pass: boolean };
    ridge?: { early: number; category: number; gap: number; pass: boolean };
  };
  space: { rx: number; ry: number; n: number; pass: boolean; threshold: number; rxWellFit: number; ryWellFit: number; nWellFit: number };
  scale: { early: number; category: number; categoryGlobal: number; categoryLocal: number; pass: boolean };
  r2: { byRoi: RoiR2Row[]; model: { early: number; category: number; all: number }; ridge?: { early: number; category: number; all: number } };
  pass: boolean;
}

/** Inputs of {@link scienceChecks}: the fit as plain arrays and the ground truth. */
export interface ScienceInput {
  truth: VertexTruth;
  /** [N, L] layer weights, [N, 2] space (token grid, y down), [N] scale. */
  selectors: { layer: ArrayLike<number>; space: ArrayLike<number>; scale: ArrayLike<number> };
  L: number;
  /** [N] validation R² of the model. */
  r2: ArrayLike<number>;
  ridge?: { bestLayer: ArrayLike<number>; r2: ArrayLike<number> };
  /** Space check threshold (default 0.7). */
  threshold?: number;
}

/** Pure: the science checks of a fit against the ground truth. */
export function scienceChecks(inp: ScienceInput): ScienceReport {
  const { truth, selectors, L } = inp;
  const N = truth.roi.length;
  if (selectors.scale.length !== N || inp.r2.length !== N) throw new Error(`scienceChecks: the ground truth has ${N} vertices and the fit ${selectors.scale.length}; use the same subject and vertex selection.`);
  const early = new Set<string>(EARLY_ROIS);
  const cat = new Set<string>(CATEGORY_ROIS);
  const isE = (i: number) => early.has(truth.roi[i]!);
  const isC = (i: number) => cat.has(truth.roi[i]!);
  const threshold = inp.threshold ?? 0.7;
  // 1. layer
  const mli = meanLayerIndex(selectors.layer, L);
  const layerOf = (v: ArrayLike<number>) => {
    const e = meanWhere(v, isE).mean, c = meanWhere(v, isC).mean;
    return { early: e, category: c, gap: c - e, pass: c - e > 0 };
  };
  const layer = { model: layerOf(mli), ridge: inp.ridge ? layerOf(Float32Array.from(inp.ridge.bestLayer)) : undefined };
  // 2. space: x_grid ~ prfX, y_grid ~ -prfY
  const sx = Float32Array.from({ length: N }, (_, i) => (isE(i) ? selectors.space[2 * i]! : NaN));
  const sy = Float32Array.from({ length: N }, (_, i) => (isE(i) ? selectors.space[2 * i + 1]! : NaN));
  const negY = Float32Array.from(truth.prfY, (v) => -v);
  const well = (i: number) => isE(i) && inp.r2[i]! > 0.1;
  const sxW = Float32Array.from(sx, (v, i) => (well(i) ? v : NaN));
  const syW = Float32Array.from(sy, (v, i) => (well(i) ? v : NaN));
  const rx = pearsonFinite(sx, truth.prfX);
  const ry = pearsonFinite(sy, negY);
  const space = {
    rx, ry, n: meanWhere(sx, (i) => isE(i) && Number.isFinite(truth.prfX[i]!)).n, threshold, pass: rx >= threshold && ry >= threshold,
    rxWellFit: pearsonFinite(sxW, truth.prfX), ryWellFit: pearsonFinite(syW, negY), nWellFit: meanWhere(sxW, (i) => well(i) && Number.isFinite(truth.prfX[i]!)).n,
  };
  // 3. scale
  const sE = meanWhere(selectors.scale, isE).mean;
  const sC = meanWhere(selectors.scale, isC).mean;
  const scale = {
    early: sE, category: sC,
    categoryGlobal: meanWhere(selectors.scale, (i) => isC(i) && truth.scale[i] === 'global').mean,
    categoryLocal: meanWhere(selectors.scale, (i) => isC(i) && truth.scale[i] === 'local').mean,
    pass: sE < sC,
  };
  // 4. R² per ROI vs the noise ceiling
  const rois = [...EARLY_ROIS, 'hV4', ...CATEGORY_ROIS].filter((r) => truth.roi.includes(r));
  const byRoi: RoiR2Row[] = rois.map((roi) => {
    const k = (i: number) => truth.roi[i] === roi;
    const nc = meanWhere(truth.noiseCeiling, k).mean;
    const m = meanWhere(inp.r2, k);
    const rr = inp.ridge ? meanWhere(inp.ridge.r2, k).mean : undefined;
    return { roi, n: m.n, noiseCeiling: nc, model: m.mean, ridge: rr, modelFraction: m.mean / nc, ridgeFraction: rr === undefined ? undefined : rr / nc };
  });
  const r2sum = (v: ArrayLike<number>) => ({ early: meanWhere(v, isE).mean, category: meanWhere(v, isC).mean, all: meanWhere(v, () => true).mean });
  const r2 = { byRoi, model: r2sum(inp.r2), ridge: inp.ridge ? r2sum(inp.ridge.r2) : undefined };
  return { layers: L, layer, space, scale, r2, pass: layer.model.pass && space.pass && scale.pass };
}

const f3 = (v: number | undefined) => (v === undefined ? '-' : Number.isFinite(v) ? v.toFixed(3) : 'NaN');

/** Pure: the model and the ridge baseline side by side, as a plain-text table. */
export function formatScienceTable(r: ScienceReport): string {
  const ok = (p: boolean | undefined) => (p === undefined ? '' : p ? 'PASS' : 'FAIL');
  const rows: string[][] = [
    ['check', 'encoder', 'ridge', 'encoder', 'ridge'],
    ['mean layer index, V1-V3', f3(r.layer.model.early), f3(r.layer.ridge?.early), '', ''],
    ['mean layer index, category ROIs', f3(r.layer.model.category), f3(r.layer.ridge?.category), '', ''],
    [`layer gap (category - early, of ${r.layers - 1})`, f3(r.layer.model.gap), f3(r.layer.ridge?.gap), ok(r.layer.model.pass), ok(r.layer.ridge?.pass)],
    [`space r(x, pRF x), V1-V3 (n=${r.space.n})`, f3(r.space.rx), 'n/a', ok(r.space.rx >= r.space.threshold), ''],
    [`space r(y, -pRF y), V1-V3`, f3(r.space.ry), 'n/a', ok(r.space.ry >= r.space.threshold), ''],
    [`  same, vertices with R2>0.1 (n=${r.space.nWellFit})`, `${f3(r.space.rxWellFit)} / ${f3(r.space.ryWellFit)}`, 'n/a', '', ''],
    ['scale, V1-V3', f3(r.scale.early), 'n/a', '', ''],
    ['scale, category ROIs (global / local)', `${f3(r.scale.category)} (${f3(r.scale.categoryGlobal)} / ${f3(r.scale.categoryLocal)})`, 'n/a', ok(r.scale.pass), ''],
    ['mean validation R2, V1-V3', f3(r.r2.model.early), f3(r.r2.ridge?.early), '', ''],
    ['mean validation R2, category ROIs', f3(r.r2.model.category), f3(r.r2.ridge?.category), '', ''],
    ['mean validation R2, all vertices', f3(r.r2.model.all), f3(r.r2.ridge?.all), '', ''],
  ];
  const table = (rs: string[][]) => {
    const w = rs[0]!.map((_, c) => Math.max(...rs.map((x) => x[c]!.length)));
    return rs.map((x) => x.map((s, c) => (c === 0 ? s.padEnd(w[c]!) : s.padStart(w[c]!))).join('  ')).join('\n');
  };
  const roiRows = [['ROI', 'n', 'noise ceiling', 'encoder R2', 'ridge R2', 'encoder/NC', 'ridge/NC']].concat(
    r.r2.byRoi.map((x) => [x.roi, String(x.n), f3(x.noiseCeiling), f3(x.model), f3(x.ridge), f3(x.modelFraction), f3(x.ridgeFraction)]),
  );
  return `${table(rows)}\n\nvalidation R2 per ROI against the noise ceiling\n${table(roiRows)}\n\noverall: ${r.pass ? 'PASS' : 'FAIL'}`;
}

/** Options of {@link runScienceCheck}. */
export interface ScienceRunOptions {
  /** Subject folder; generated (size 'workshop', seed 1) when missing. */
  subjectDir: string;
  /** Built-in backbone (default 'mobilenetv2'). */
  backbone?: 'mobilenetv2' | 'inceptionv3';
  epochs?: number;
  seed?: number;
  /** Steps over which the regulariser decays (default 2000, the paper's; shorter runs may scale it down). */
  regDecaySteps?: number;
  /** Token cache folder (reused across runs). */
  cacheDir?: string;
  /** Checkpoint folder (resumes when present). */
  checkpointDir?: string;
  /** Writes report.json and table.txt here when given. */
  outDir?: string;
  ridge?: boolean | { features?: 'global' | 'pooled' | 'flat'; grid?: number; pca?: number };
  log?: ((line: string) => void) | null;
  progress?: boolean;
}

/** Fits the encoder (and ridge) on a synthetic subject with a built-in backbone and runs {@link scienceChecks}. */
export async function runScienceCheck(opts: ScienceRunOptions): Promise<{ report: ScienceReport; table: string; seconds: { total: number } }> {
  const t0 = Date.now();
  const log = opts.log === undefined ? (s: string) => console.log(s) : opts.log ?? (() => {});
  const { makeAlgonautsSubject, syntheticWorldVersion, SYNTHETIC_WORLD_VERSION } = await import('./subject.js');
  const { loadAlgonautsSubject } = await import('../data/algonauts.js');
  const { loadBuiltinBackbone } = await import('../backbones/builtin.js');
  const { fitEncoder } = await import('../encoding/fit.js');
  const { writeFileAtomic } = await import('../io/atomic.js');
  // 1. subject (generated when missing)
  const world = syntheticWorldVersion(opts.subjectDir);
  if (world === null || world < SYNTHETIC_WORLD_VERSION) {
    log(`science check: generating the workshop subject in ${opts.subjectDir}${world === null ? '' : ` (it was made by synthetic world version ${world}, now ${SYNTHETIC_WORLD_VERSION})`}`);
    if (world !== null && opts.checkpointDir && fs.existsSync(opts.checkpointDir)) {
      throw new Error(`science check: checkpoint ${opts.checkpointDir} was fitted to the old subject in ${opts.subjectDir}; delete it (or pass another checkpoint folder) to refit on the regenerated subject`);
    }
    await makeAlgonautsSubject({ size: 'workshop', seed: 1, out: opts.subjectDir });
  }
  const subject = await loadAlgonautsSubject(opts.subjectDir);
  const truth = readGroundTruth(subject);
  // 2. fit
  const backbone = await loadBuiltinBackbone(opts.backbone ?? 'mobilenetv2');
  const fit = await fitEncoder({
    subject, backbone, cacheDir: opts.cacheDir, epochs: opts.epochs ?? 10, seed: opts.seed ?? 0,
    checkpointDir: opts.checkpointDir, ridge: opts.ridge ?? true, regDecaySteps: opts.regDecaySteps, log: opts.log, progress: opts.progress,
  });
  try {
    // 3. checks
    const report = scienceChecks({ truth, selectors: fit.selectors, L: fit.layers.length, r2: fit.r2, ridge: fit.ridge });
    const table = formatScienceTable(report);
    const seconds = { total: (Date.now() - t0) / 1000 };
    if (opts.outDir) {
      fs.mkdirSync(opts.outDir, { recursive: true });
      const json = { subject: subject.dir, backbone: backbone.name, layerNames: fit.layers, ridge: opts.ridge ?? true, epochs: opts.epochs ?? 10, regDecaySteps: opts.regDecaySteps ?? 2000, seed: opts.seed ?? 0, vertices: { lh: fit.nLh, rh: fit.nRh }, seconds, history: fit.history.filter((h) => h.valR2 !== undefined), ...report };
      await writeFileAtomic(path.join(opts.outDir, 'report.json'), JSON.stringify(json, null, 1) + '\n');
      await writeFileAtomic(path.join(opts.outDir, 'table.txt'), table + '\n');
    }
    return { report, table, seconds };
  } finally {
    await fit.dispose();
    await backbone.dispose();
  }
}
