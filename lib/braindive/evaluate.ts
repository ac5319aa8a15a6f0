/** BrainDiVE evaluation: re-ranking by encoder score, category shares and activation effect sizes. */
import { EVAL_CATEGORIES, type EvalCategory } from './categories.js';

/** Indices of the top `fraction` of items by score (descending; at least one). */
export function topFraction(scores: ArrayLike<number>, fraction = 0.2): number[] {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  return idx.slice(0, Math.max(1, Math.round(scores.length * fraction)));
}

/** Share of images whose arg-max class is `category`; probs [N,5] flat, EVAL_CATEGORIES order. */
export function categoryShare(probs: ArrayLike<number>, n: number, category: EvalCategory, rows?: number[]): number {
  const c = EVAL_CATEGORIES.indexOf(category);
  const use = rows ?? Array.from({ length: n }, (_, i) => i);
  let hit = 0;
  for (const i of use) {
    let best = 0;
    for (let k = 1; k < 5; k++) if (probs[i * 5 + k]! > probs[i * 5 + best]!) best = k;
    hit += best === c ? 1 : 0;
  }
  return use.length ? hit / use.length : NaN;
}

/** Mean and (sample) standard deviation. */
export function meanStd(x: ArrayLike<number>): { mean: number; std: number } {
  const n = x.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += x[i]!;
  m /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - m) ** 2;
  return { mean: m, std: Math.sqrt(v / Math.max(1, n - 1)) };
}

/** One region's evaluation row. */
export interface RegionEvaluation {
  region: string;
  category: EvalCategory;
  n: number;
  /** Share of guided images classified as the region's category (all, and the top 20% by encoder score). */
  guidedShare: number;
  guidedTopShare: number;
  unguidedShare: number;
  /** Predicted region activation: means, and (guided - unguided) / sd(unguided). */
  guidedActivation: number;
  unguidedActivation: number;
  effectSD: number;
  /** Share of each category among guided and unguided images. */
  guidedShares: Record<EvalCategory, number>;
  unguidedShares: Record<EvalCategory, number>;
  /** The region's TRUE response (e.g. a synthetic world's trueResponse), when given: means and (guided - unguided) / sd(unguided). */
  truth?: { guided: number; unguided: number; effectSD: number };
}

/** The effect of guided over unguided values in unguided standard deviations: (mean g - mean u) / sd(u). */
export function effectSize(guided: ArrayLike<number>, unguided: ArrayLike<number>): { guided: number; unguided: number; effectSD: number } {
  const g = meanStd(guided), u = meanStd(unguided);
  return { guided: g.mean, unguided: u.mean, effectSD: (g.mean - u.mean) / (u.std > 0 ? u.std : NaN) };
}

/** Evaluates guided against unguided images of one region: probabilities [N,5], predicted activations [N] and, when known, true responses [N]. */
export function evaluateRegion(region: string, category: EvalCategory, guided: { probs: ArrayLike<number>; activation: ArrayLike<number>; truth?: ArrayLike<number> }, unguided: { probs: ArrayLike<number>; activation: ArrayLike<number>; truth?: ArrayLike<number> }, topFrac = 0.2): RegionEvaluation {
  const n = guided.activation.length;
  const m = unguided.activation.length;
  const g = meanStd(guided.activation);
  const u = meanStd(unguided.activation);
  const shares = (p: ArrayLike<number>, k: number) => Object.fromEntries(EVAL_CATEGORIES.map((c) => [c, categoryShare(p, k, c)])) as Record<EvalCategory, number>;
  return {
    region,
    category,
    n,
    guidedShare: categoryShare(guided.probs, n, category),
    guidedTopShare: categoryShare(guided.probs, n, category, topFraction(guided.activation, topFrac)),
    unguidedShare: categoryShare(unguided.probs, m, category),
    guidedActivation: g.mean,
    unguidedActivation: u.mean,
    effectSD: (g.mean - u.mean) / (u.std > 0 ? u.std : NaN),
    guidedShares: shares(guided.probs, n),
    unguidedShares: shares(unguided.probs, m),
    ...(guided.truth && unguided.truth ? { truth: effectSize(guided.truth, unguided.truth) } : {}),
  };
}

/** A plain-text table of evaluation rows: category shares, the encoder's effect and, when known, the true response's effect (both in unguided sd). */
export function formatEvaluation(rows: RegionEvaluation[]): string {
  const truth = rows.some((r) => r.truth);
  const head = `region  category  n   guided%  top20%  unguided%  encoder d/sd${truth ? '  true d/sd' : ''}`;
  return [head, ...rows.map((r) => `${r.region.padEnd(7)} ${r.category.padEnd(8)} ${String(r.n).padStart(3)}  ${(100 * r.guidedShare).toFixed(0).padStart(6)}  ${(100 * r.guidedTopShare).toFixed(0).padStart(6)}  ${(100 * r.unguidedShare).toFixed(0).padStart(9)}  ${r.effectSD.toFixed(2).padStart(12)}${truth ? (r.truth ? r.truth.effectSD.toFixed(2) : '-').padStart(11) : ''}`)].join('\n');
}
