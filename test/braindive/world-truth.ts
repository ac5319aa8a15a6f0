/** The true brain of the committed BrainDiVE encoder's synthetic subject, for the effect tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findRepoRoot } from 'brainnet/braindive';
import { readWorld, type SyntheticWorld } from 'brainnet/synthetic';
import type { RegionEvaluation } from 'brainnet/braindive';

/**
 * What guidance must do to the TRUE brain (the world's trueResponse of the generated pixels, in unguided sd), set from the
 * effects measured with the world-v3 encoder (models/synthetic-encoder-mobilenetv2/README.md, scale 10, 20 DDIM steps) with
 * a margin. Seeds 0-23 measured FFA 0.65, PPA -0.09, EBA 0.71, VWFA 0.31, food 1.08 sd (mean 0.53): guidance towards PPA
 * raises the encoder's PPA prediction (2.07 sd) but not the true PPA, so the test asks for most regions, not every one.
 */
export const TRUE_EFFECT = {
  /** A region counts as moved when its true response rises by at least this many unguided sd. */
  regionSD: 0.25,
  /** At least this many of the five paper regions are moved (measured 4 of 5 at seeds 0-23). */
  regionsMoved: 3,
  /** The mean true effect over the five regions (measured 0.53 sd at seeds 0-23). */
  meanSD: 0.3,
};

/** Checks `rows` against {@link TRUE_EFFECT}; returns the failures as sentences (empty when all hold). */
export function trueEffectFailures(rows: RegionEvaluation[], t = TRUE_EFFECT): string[] {
  const out: string[] = [];
  const missing = rows.filter((r) => !r.truth).map((r) => r.region);
  if (missing.length) return [`no true response for ${missing.join(', ')}: evaluateGuidance was not given the world's truth`];
  const moved = rows.filter((r) => r.truth!.effectSD >= t.regionSD);
  const mean = rows.reduce((a, r) => a + r.truth!.effectSD, 0) / rows.length;
  const each = rows.map((r) => `${r.region} ${r.truth!.effectSD.toFixed(2)}`).join(', ');
  if (moved.length < t.regionsMoved) out.push(`true response raised by >= ${t.regionSD} sd in ${moved.length} of ${rows.length} regions (${each}); expected at least ${t.regionsMoved}`);
  if (!(mean >= t.meanSD)) out.push(`mean true effect ${mean.toFixed(2)} sd over ${rows.length} regions (${each}); expected at least ${t.meanSD}`);
  return out;
}

/** The world file next to the committed encoder (train-encoder.ts copies it there when it fits a world-v3 subject). */
export const ENCODER_WORLD = path.join(findRepoRoot(), 'models', 'synthetic-encoder-mobilenetv2', 'world.safetensors');

/** The world the committed encoder's subject was made of; an error when the encoder was fitted to an older world (no world file). */
export async function encoderWorld(): Promise<SyntheticWorld> {
  if (!fs.existsSync(ENCODER_WORLD)) throw new Error(`${ENCODER_WORLD}: expected the world-v3 file of the committed encoder's subject, found none; refit the encoder with data-prep/braindive/train-encoder.ts, which writes it`);
  return readWorld(ENCODER_WORLD);
}

/** The truth function evaluateGuidance takes: a region's mean true response. */
export function regionTruth(world: SyntheticWorld, regions: Record<string, Int32Array>) {
  return (region: string, images: Parameters<SyntheticWorld['trueResponse']>[0]) => world.regionResponse(images, regions[region]!);
}
