/** Diffusion model folders (config.json + model.safetensors): checks and clear errors, shared by the pixel and latent models. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FileFormatError } from '../io/errors.js';
import { readSafetensors } from '../io/safetensors.js';

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

/** Reads the float32 tensors named in `shapes` from a folder's model.safetensors; a missing tensor or another shape is an error naming the file, the tensor and `retrain`. */
export async function readModelWeights(dir: string, shapes: Record<string, number[]>, retrain: string): Promise<Record<string, tf.Tensor>> {
  const weights = path.join(dir, 'model.safetensors');
  const { tensors } = await readSafetensors(weights);
  const out: Record<string, tf.Tensor> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const t = tensors[name];
    if (!t) throw new FileFormatError(weights, `tensor "${name}" of shape [${shape}]`, 'no such tensor', `the weights do not match config.json; ${retrain}`);
    if (t.shape.join(',') !== shape.join(',')) throw new FileFormatError(weights, `tensor "${name}" of shape [${shape}]`, `shape [${t.shape}]`, 'the weights do not match config.json');
    out[name] = tf.tensor(Float32Array.from(t.data as ArrayLike<number>), shape, 'float32');
  }
  return out;
}
