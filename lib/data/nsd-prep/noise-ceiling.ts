/**
 * NSD noise ceiling from ncsnr: NC = 100 · ncsnr² / (ncsnr² + (A/3 + B/2 + C/1) / (A + B + C)), where
 * A, B and C count the images shown 3, 2 and 1 times (a single trial is A = B = 0, C = 1).
 */
import { NSD } from '../nsd-layout.js';
import type { NsdExpDesign } from '../nsd.js';

/** How many images were shown 3, 2 and 1 times. */
export interface RepeatCounts { three: number; two: number; one: number }

/** Repeat counts from per-image counts (values 1..3; larger counts are treated as 3). Pure. */
export function repeatCountsOf(counts: ArrayLike<number>): RepeatCounts {
  const r: RepeatCounts = { three: 0, two: 0, one: 0 };
  for (let i = 0; i < counts.length; i++) { const c = counts[i]!; if (c >= 3) r.three++; else if (c === 2) r.two++; else if (c === 1) r.one++; }
  return r;
}

/** Repeat counts of a subject's images over the given sessions of the design. Pure. */
export function nsdRepeatCounts(design: NsdExpDesign, sessions: number[]): RepeatCounts {
  const n = new Uint16Array(design.imagesPerSubject + 1);
  for (const s of sessions) for (let t = 0; t < NSD.trialsPerSession; t++) n[design.masterordering[(s - 1) * NSD.trialsPerSession + t]!]!++;
  return repeatCountsOf(n.subarray(1).filter((c) => c > 0));
}

/** The noise variance factor (A/3 + B/2 + C) / (A + B + C); 1 for single trials. Pure. */
export function noiseFactor(r: RepeatCounts = { three: 0, two: 0, one: 1 }): number {
  const n = r.three + r.two + r.one;
  if (n <= 0) throw new RangeError('noiseFactor: no images counted');
  return (r.three / 3 + r.two / 2 + r.one) / n;
}

/** Noise ceiling in percent from ncsnr `[V]`: single trial when `repeats` is omitted, else for the averaged repeats. NaN stays NaN. Pure. */
export function nsdNoiseCeiling(ncsnr: ArrayLike<number>, repeats?: RepeatCounts): Float32Array {
  const k = noiseFactor(repeats);
  const out = new Float32Array(ncsnr.length);
  for (let i = 0; i < ncsnr.length; i++) { const s2 = ncsnr[i]! * ncsnr[i]!; out[i] = (100 * s2) / (s2 + k); }
  return out;
}
