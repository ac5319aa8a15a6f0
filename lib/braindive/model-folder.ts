/** Diffusion model folders (config.json + model.safetensors): checks and clear errors, shared by the pixel and latent models. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileFormatError } from '../io/errors.js';

/** Files a model folder must hold. */
export const PIXEL_MODEL_FILES = ['config.json', 'model.safetensors'] as const;

/** Thrown for a model folder that is missing or incomplete. */
export class ModelFolderError extends Error {
  override name = 'ModelFolderError';
}

/** Checks that a model folder exists and holds config.json and model.safetensors; returns the parsed config.json. */
export function readModelFolder(dir: string): Record<string, unknown> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new ModelFolderError(`diffusion model folder ${dir} does not exist; expected a folder with ${PIXEL_MODEL_FILES.join(' and ')} (see models/synthetic-diffusion-64/README.md to train one)`);
  for (const f of PIXEL_MODEL_FILES) {
    if (!fs.existsSync(path.join(dir, f))) throw new ModelFolderError(`diffusion model folder ${dir} is incomplete: ${f} is missing (expected ${PIXEL_MODEL_FILES.join(', ')}); retrain (models/synthetic-diffusion-64/README.md) or copy the file`);
  }
  const cfgFile = path.join(dir, 'config.json');
  try {
    return JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new FileFormatError(cfgFile, 'JSON model configuration', `unparseable text (${(e as Error).message})`, 'retrain or restore the file');
  }
}
