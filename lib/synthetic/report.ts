/**
 * The validation report of a synthetic subject: category selectivity (d'), split-half
 * reliability against the intended value, and a retinotopy check. Pure.
 */
import { CATEGORIES, type HemisphereTruth } from './cortex.js';
import { GRID } from './stimuli.js';

/** One check of the report. */
export interface ReportCheck {
  name: string;
  value: number;
  threshold: number;
  /** 'min': value must be >= threshold; 'max': value must be <= threshold. */
  kind: 'min' | 'max';
  pass: boolean;
  detail?: string;
}

const PATCH_CATEGORY: Record<string, number> = {
  OFA: 0, 'FFA-1': 0, 'FFA-2': 0, EBA: 1, 'FBA-1': 1, 'FBA-2': 1, OPA: 2, PPA: 2, RSC: 2, OWFA: 3, 'VWFA-1': 3, 'VWFA-2': 3, food: 4,
};

/** d' of each category ROI: mean ROI response to images with its category vs without. fmri: [nImages, N]; labels: [nImages, 6]. */
export function categoryDprime(h: HemisphereTruth, fmri: Float32Array, nImages: number, labels: Uint8Array): Record<string, number> {
  const n = h.roi.length;
  const out: Record<string, number> = {};
  for (const [roi, c] of Object.entries(PATCH_CATEGORY)) {
    const verts = h.roi.flatMap((r, k) => (r === roi ? [k] : []));
    if (verts.length === 0) continue;
    const a: number[] = [], b: number[] = [];
    for (let i = 0; i < nImages; i++) {
      let s = 0;
      for (const k of verts) s += fmri[i * n + k]!;
      (labels[i * 6 + c] ? a : b).push(s / verts.length);
    }
    out[roi] = dprime(a, b);
  }
  return out;
}

/** d' = (mean a − mean b) / sqrt((var a + var b) / 2). */
export function dprime(a: number[], b: number[]): number {
  const m = (x: number[]) => x.reduce((s, v) => s + v, 0) / Math.max(1, x.length);
  const v = (x: number[], mu: number) => x.reduce((s, y) => s + (y - mu) ** 2, 0) / Math.max(1, x.length - 1);
  const ma = m(a), mb = m(b);
  return (ma - mb) / Math.sqrt((v(a, ma) + v(b, mb)) / 2 || 1e-12);
}

/** Pearson correlation of two equal-length sequences (NaN pairs skipped). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i]!, b = y[i]!;
    if (Number.isNaN(a) || Number.isNaN(b)) continue;
    n++; sx += a; sy += b; sxx += a * a; syy += b * b; sxy += a * b;
  }
  const cov = sxy / n - (sx / n) * (sy / n);
  return cov / Math.sqrt((sxx / n - (sx / n) ** 2) * (syy / n - (sy / n) ** 2));
}

/** Split-half reliability of kept vertices: observed corr(trial 1, trial 2) vs intended ncsnr²/(ncsnr²+1). trials: [nImages, K]. */
export function splitHalf(trial1: Float32Array, trial2: Float32Array, nImages: number, ncsnr: Float32Array): { observed: number[]; intended: number[] } {
  const K = ncsnr.length;
  const observed: number[] = [], intended: number[] = [];
  for (let j = 0; j < K; j++) {
    const a: number[] = [], b: number[] = [];
    for (let i = 0; i < nImages; i++) {
      const v = trial2[i * K + j]!;
      if (!Number.isNaN(v)) { a.push(trial1[i * K + j]!); b.push(v); }
    }
    observed.push(pearson(a, b));
    intended.push(ncsnr[j]! ** 2 / (ncsnr[j]! ** 2 + 1));
  }
  return { observed, intended };
}

/** Retinotopy: for early vertices, the contrast cell whose energy best correlates with the response, vs the true pRF centre. contrast: [nImages, GRID²]. */
export function retinotopy(h: HemisphereTruth, fmri: Float32Array, nImages: number, contrast: Float32Array, maxVertices = 300): { rx: number; ry: number; medianError: number; count: number } {
  const n = h.roi.length;
  const early = h.depth.flatMap((d, k) => (d === 'early' ? [k] : []));
  const step = Math.max(1, Math.floor(early.length / maxVertices));
  const G = GRID * GRID;
  // standardise contrast cells once
  const cz = new Float32Array(nImages * G);
  for (let c = 0; c < G; c++) {
    let m = 0, s = 0;
    for (let i = 0; i < nImages; i++) m += contrast[i * G + c]!;
    m /= nImages;
    for (let i = 0; i < nImages; i++) s += (contrast[i * G + c]! - m) ** 2;
    s = Math.sqrt(s / nImages) || 1;
    for (let i = 0; i < nImages; i++) cz[i * G + c] = (contrast[i * G + c]! - m) / s;
  }
  const ex: number[] = [], ey: number[] = [], tx: number[] = [], ty: number[] = [], err: number[] = [];
  for (let q = 0; q < early.length; q += step) {
    const k = early[q]!;
    let best = -Infinity, bc = 0;
    const score = new Float64Array(G);
    for (let i = 0; i < nImages; i++) {
      const r = fmri[i * n + k]!;
      for (let c = 0; c < G; c++) score[c]! += r * cz[i * G + c]!;
    }
    for (let c = 0; c < G; c++) if (score[c]! > best) { best = score[c]!; bc = c; }
    const x = (((bc % GRID) + 0.5) * 2) / GRID - 1, y = 1 - ((Math.floor(bc / GRID) + 0.5) * 2) / GRID;
    ex.push(x); ey.push(y); tx.push(h.prfX[k]!); ty.push(h.prfY[k]!);
    err.push(Math.hypot(x - h.prfX[k]!, y - h.prfY[k]!));
  }
  err.sort((a, b) => a - b);
  return { rx: pearson(ex, tx), ry: pearson(ey, ty), medianError: err[Math.floor(err.length / 2)] ?? NaN, count: ex.length };
}

/** Formats checks as a short terminal table. */
export function formatReport(checks: ReportCheck[]): string {
  const lines = ['check                                   value   threshold  result'];
  for (const c of checks) {
    lines.push(`${c.name.padEnd(38)} ${c.value.toFixed(3).padStart(7)}   ${(c.kind === 'min' ? '>= ' : '<= ') + c.threshold.toFixed(2).padStart(5)}   ${c.pass ? 'pass' : 'FAIL'}`);
  }
  return lines.join('\n');
}

export { CATEGORIES };
