/** The true brain of the committed BrainDiVE encoder's synthetic subject, for the effect tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findRepoRoot } from 'brainnet/braindive';
import { readWorld, type SyntheticWorld } from 'brainnet/synthetic';

/** The smallest true effect (unguided sd) each region must reach. Provisional: the encoder has not yet been retrained on world v3, so no true effect has been measured to set it from. */
export const TRUE_EFFECT_SD = 0.5;

/** The world file next to the committed encoder (train-encoder.ts copies it there when it fits a world-v3 subject). */
export const ENCODER_WORLD = path.join(findRepoRoot(), 'models', 'synthetic-encoder-mobilenetv2', 'world.safetensors');

/** The world the committed encoder's subject was made of, or undefined when the encoder was fitted to an older world (no world file). */
export async function encoderWorld(): Promise<SyntheticWorld | undefined> {
  return fs.existsSync(ENCODER_WORLD) ? readWorld(ENCODER_WORLD) : undefined;
}

/** The truth function evaluateGuidance takes: a region's mean true response. */
export function regionTruth(world: SyntheticWorld, regions: Record<string, Int32Array>) {
  return (region: string, images: Parameters<SyntheticWorld['trueResponse']>[0]) => world.regionResponse(images, regions[region]!);
}
