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
 * Pure functions over plain arrays: the truth comes from `groundTruth` (ground-truth.ts), the fit from
 * anywhere; data-prep/science-check.ts runs the whole experiment (make a subject, fit, check).
 */
import type { VertexTruth } from './ground-truth.js';

/** ROIs of V1-V3 (early visual). */
export const EARLY_ROIS = ['V1v', 'V1d', 'V2v', 'V2d', 'V3v', 'V3d'] as const;
/** Category ROIs of the synthetic world (floc ROIs plus food). */
export const CATEGORY_ROIS = ['OFA', 'FFA-1', 'FFA-2', 'EBA', 'FBA-1', 'FBA-2', 'OPA', 'PPA', 'RSC', 'OWFA', 'VWFA-1', 'VWFA-2', 'food'] as const;

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
  /** The ground truth's fields the checks read (`groundTruth(subject)`). */
  truth: Pick<VertexTruth, 'roi' | 'prfX' | 'prfY' | 'scale' | 'noiseCeiling'>;
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

// ---------------------------------------------------------------------------------------------------------------------
// Recovery checks with thresholds (issue 18): each a number, a threshold set from measured effects with a margin, and
// whether it passes. A shuffled-image null (fMRI rows permuted against the images) must fail every one.

/** Spearman rank correlation of the pairs where both are finite (average ranks for ties; NaN with fewer than 3). */
export function spearmanFinite(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const keep: number[] = [];
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]!) && Number.isFinite(y[i]!)) keep.push(i);
  if (keep.length < 3) return NaN;
  const rank = (v: ArrayLike<number>) => {
    const order = keep.map((i, j) => [v[i]!, j] as const).sort((a, b) => a[0] - b[0]);
    const r = new Float64Array(keep.length);
    for (let a = 0; a < order.length;) {
      let b = a;
      while (b + 1 < order.length && order[b + 1]![0] === order[a]![0]) b++;
      for (let q = a; q <= b; q++) r[order[q]![1]] = (a + b) / 2;
      a = b + 1;
    }
    return r;
  };
  return pearsonFinite(rank(x), rank(y));
}

/** The validation R² above which a vertex counts as well fit in the recovery checks. */
export const WELL_FIT_R2 = 0.05;

/** Fewer vertices than this in a check (e.g. too few well fit) and the check fails: there is nothing to judge. */
export const MIN_CHECK_VERTICES = 10;

/**
 * Thresholds of the recovery checks, per subject size (a check passes when its value is at least the threshold), set from
 * the measured effects of the true fit with a margin of about half (never just a sign):
 * - tiny (600 training images, at most 20 epochs, the regulariser over 300 steps: SCIENCE_DEFAULTS in
 *   data-prep/science-run.ts): `npm run science -- --size tiny --seed 1` measured depth 0.763 over 245 well-fit vertices,
 *   pRF 0.913 over 55, scale 0.151 (category ROIs minus V1-V3) and 0.166 (global minus local inside them); the shuffled
 *   null had no well-fit vertex and scale 0.000 and -0.000. With 200 images the scale selector collapsed to local
 *   everywhere (0.000), in the fit and the null alike: too little data for the global path to win where it should.
 * - workshop (2,000 images, the example's settings): the slow suite over seeds 1-5 (outputs/science/seeds.md, 2026-12-08)
 *   measured 0.819 ± 0.008, 0.976 ± 0.002, 0.538 ± 0.023 and 0.286 ± 0.065; the nulls had no well-fit vertex and scale
 *   -0.001 ± 0.005 and 0.001 ± 0.001.
 */
export const RECOVERY_THRESHOLDS: Record<'tiny' | 'workshop', Record<RecoveryCheckName, number>> = {
  tiny: { depthSpearman: 0.5, prfCentre: 0.7, scaleEarlyVsCategory: 0.075, scaleLocalVsGlobal: 0.075 },
  workshop: { depthSpearman: 0.5, prfCentre: 0.7, scaleEarlyVsCategory: 0.2, scaleLocalVsGlobal: 0.1 },
};

export type RecoveryCheckName = 'depthSpearman' | 'prfCentre' | 'scaleEarlyVsCategory' | 'scaleLocalVsGlobal';

/** One recovery check: value, threshold (value must be at least it), pass, and over how many vertices. */
export interface RecoveryCheck { name: RecoveryCheckName; what: string; value: number; threshold: number; pass: boolean; n: number }

/** Inputs of {@link recoveryChecks}. */
export interface RecoveryInput {
  truth: Pick<VertexTruth, 'roi' | 'prfX' | 'prfY' | 'scale' | 'depth' | 'trueDepth'>;
  selectors: { layer: ArrayLike<number>; space: ArrayLike<number>; scale: ArrayLike<number> };
  L: number;
  r2: ArrayLike<number>;
  thresholds: Record<RecoveryCheckName, number>;
  /** Fewest vertices a check needs (default MIN_CHECK_VERTICES). */
  minVertices?: number;
}

/** The true depth of each vertex: world v3's `trueDepth`, or for older worlds early 0, mid 0.5, late 1. */
export function depthOf(truth: Pick<VertexTruth, 'depth' | 'trueDepth'>): Float32Array {
  return Float32Array.from(truth.depth, (d, i) => {
    const t = truth.trueDepth?.[i];
    if (t !== undefined && Number.isFinite(t)) return t;
    return d === 'early' ? 0 : d === 'mid' ? 0.5 : d === 'late' ? 1 : NaN;
  });
}

/** Pure: the four recovery checks of a fit against the ground truth. */
export function recoveryChecks(inp: RecoveryInput): { checks: RecoveryCheck[]; pass: boolean } {
  const { truth, selectors, L, r2, thresholds } = inp;
  const N = truth.roi.length;
  if (selectors.scale.length !== N || r2.length !== N) throw new Error(`recoveryChecks: the ground truth has ${N} vertices and the fit ${selectors.scale.length}; use the same subject and vertex selection.`);
  const early = new Set<string>(EARLY_ROIS), cat = new Set<string>(CATEGORY_ROIS);
  const well = (i: number) => r2[i]! > WELL_FIT_R2;
  const mask = (v: ArrayLike<number>, keep: (i: number) => boolean) => Float32Array.from({ length: N }, (_, i) => (keep(i) ? v[i]! : NaN));
  const count = (keep: (i: number) => boolean) => { let n = 0; for (let i = 0; i < N; i++) n += keep(i) ? 1 : 0; return n; };
  // 1. depth: Spearman(true depth, recovered mean layer index) over well-fit vertices
  const mli = meanLayerIndex(selectors.layer, L);
  const depth = depthOf(truth);
  const depthSpearman = spearmanFinite(mask(depth, well), mask(mli, well));
  // 2. pRF centre in V1-V3 (well fit): the lower of r(x) and r(y); the grid's y points down
  const ewell = (i: number) => early.has(truth.roi[i]!) && well(i) && Number.isFinite(truth.prfX[i]!);
  const rx = pearsonFinite(mask(Float32Array.from({ length: N }, (_, i) => selectors.space[2 * i]!), ewell), truth.prfX);
  const ry = pearsonFinite(mask(Float32Array.from({ length: N }, (_, i) => selectors.space[2 * i + 1]!), ewell), Float32Array.from(truth.prfY, (v) => -v));
  // 3. scale: category ROIs minus V1-V3; inside the category ROIs, global-truth minus local-truth vertices
  const mean = (keep: (i: number) => boolean) => { let s = 0, n = 0; for (let i = 0; i < N; i++) if (keep(i) && Number.isFinite(selectors.scale[i]!)) { s += selectors.scale[i]!; n++; } return n ? s / n : NaN; };
  const isE = (i: number) => early.has(truth.roi[i]!), isC = (i: number) => cat.has(truth.roi[i]!);
  const sEC = mean(isC) - mean(isE);
  const sLG = mean((i) => isC(i) && truth.scale[i] === 'global') - mean((i) => isC(i) && truth.scale[i] === 'local');
  const mk = (name: RecoveryCheckName, what: string, value: number, n: number): RecoveryCheck => ({ name, what, value, threshold: thresholds[name], pass: n >= (inp.minVertices ?? MIN_CHECK_VERTICES) && Number.isFinite(value) && value >= thresholds[name], n });
  const checks = [
    mk('depthSpearman', `Spearman(true depth, mean layer index), vertices with R² > ${WELL_FIT_R2}`, depthSpearman, count((i) => well(i) && Number.isFinite(depth[i]!))),
    mk('prfCentre', 'pRF centre in V1-V3, min(r(x), r(y)), well fit', Math.min(rx, ry), count(ewell)),
    mk('scaleEarlyVsCategory', 'scale, category ROIs minus V1-V3', sEC, count((i) => isE(i) || isC(i))),
    mk('scaleLocalVsGlobal', 'scale inside category ROIs, global minus local vertices', sLG, count(isC)),
  ];
  return { checks, pass: checks.every((c) => c.pass) };
}

/** A Markdown table of recovery checks, the true fit next to the shuffled-image null when given. */
export function formatRecoveryTable(fit: RecoveryCheck[], nullFit?: RecoveryCheck[]): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'NaN');
  const head = nullFit ? '| check | threshold | fit | pass | shuffled null | null fails |\n|---|---|---|---|---|---|' : '| check | threshold | fit | pass |\n|---|---|---|---|';
  const rows = fit.map((c, k) => {
    const base = `| ${c.what} (n=${c.n}) | ≥ ${c.threshold} | ${f(c.value)} | ${c.pass ? 'yes' : 'NO'} |`;
    if (!nullFit) return base;
    const z = nullFit[k]!;
    return `${base} ${f(z.value)} | ${z.pass ? 'NO' : 'yes'} |`;
  });
  return [head, ...rows].join('\n');
}
