/**
 * Checkpoints of the factorized encoding model as safetensors: every parameter, the AdamW moments
 * and the training position (step, epoch, shuffling seed, optimizer settings, history) as metadata.
 * Loading one into a freshly built model and a new AdamW resumes training exactly: the shuffling
 * order is a pure function of (seed, epoch) and the step, so nothing else needs to be stored.
 *
 * Tensor names: `param/<name>`, `adam_m/<name>`, `adam_v/<name>` with the names of
 * `FactorizedEncoder.namedParams()`. Files are written atomically (a temporary file, then a rename).
 */
import * as fs from 'node:fs';
import { FileFormatError } from '../io/errors.js';
import type { NDArray } from '../io/ndarray.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../io/safetensors.js';
import type { FactorizedEncoder } from './model.js';
import { AdamW, type AdamWConfig } from './optimizer.js';

/** Where training stood when a checkpoint was written. */
export interface CheckpointInfo {
  /** Optimizer updates done (the next step's index). */
  step: number;
  /** Epoch of the next step (steps / steps per epoch, rounded down). */
  epoch: number;
  /** Seed of the epoch shuffling (the order of epoch e is epochOrder(n, seed, e)). */
  seed: number;
  /** Anything else the caller keeps (e.g. history), as JSON-able data. */
  extra?: unknown;
}

/** What a checkpoint file says about the model it holds (from its metadata). */
export interface CheckpointHeader extends CheckpointInfo {
  nVertices: number;
  layerNames: string[];
  layerWidths: number[];
  dim: number;
  hidden: number;
  grid: number;
  optimizer: Required<AdamWConfig>;
}

const FORMAT = 'brainnet-encoder-checkpoint';

/** Pure: the tensors `[shape as in the model]` and string metadata of a checkpoint of `model` and `opt`. */
export function checkpointTensors(model: FactorizedEncoder, opt: AdamW, info: CheckpointInfo): { tensors: Record<string, NDArray>; metadata: Record<string, string> } {
  const tensors: Record<string, NDArray> = {};
  const st = opt.state();
  for (const [name, v] of model.namedParams()) {
    const shape = v.shape.slice();
    tensors[`param/${name}`] = { dtype: 'float32', shape, data: Float32Array.from(v.dataSync() as Float32Array) };
    const m = st.m.get(v.name);
    const vv = st.v.get(v.name);
    // moments exist once the optimizer has stepped; before that they are zeros
    const size = v.size;
    tensors[`adam_m/${name}`] = { dtype: 'float32', shape, data: m ? Float32Array.from(m) : new Float32Array(size) };
    tensors[`adam_v/${name}`] = { dtype: 'float32', shape, data: vv ? Float32Array.from(vv) : new Float32Array(size) };
  }
  const metadata: Record<string, string> = {
    format: FORMAT,
    version: '1',
    nVertices: String(model.nVertices),
    layerNames: JSON.stringify(model.layerNames),
    layerWidths: JSON.stringify(model.layerWidths),
    dim: String(model.dim),
    hidden: String(model.hidden),
    grid: String(model.grid),
    step: String(opt.step),
    epoch: String(info.epoch),
    seed: String(info.seed),
    optimizer: JSON.stringify(opt.config),
  };
  if (info.extra !== undefined) metadata.extra = JSON.stringify(info.extra);
  return { tensors, metadata };
}

/** Writes a checkpoint of `model` and `opt` to `file` (safetensors, atomic). */
export async function saveCheckpoint(file: string, model: FactorizedEncoder, opt: AdamW, info: CheckpointInfo): Promise<void> {
  const { tensors, metadata } = checkpointTensors(model, opt, info);
  await writeSafetensors(file, tensors, metadata);
}

function parseHeader(file: string, md: Record<string, string>): CheckpointHeader {
  if (md.format !== FORMAT) {
    throw new FileFormatError(file, `a brainnet encoder checkpoint (metadata format "${FORMAT}")`, md.format ? `format "${md.format}"` : 'no format in the metadata', 'Pass a file written by saveCheckpoint / fitEncoder.');
  }
  const num = (k: string) => {
    const v = Number(md[k]);
    if (!Number.isFinite(v)) throw new FileFormatError(file, `a number in metadata "${k}"`, String(md[k]));
    return v;
  };
  return {
    nVertices: num('nVertices'),
    layerNames: JSON.parse(md.layerNames ?? '[]') as string[],
    layerWidths: JSON.parse(md.layerWidths ?? '[]') as number[],
    dim: num('dim'),
    hidden: num('hidden'),
    grid: num('grid'),
    step: num('step'),
    epoch: num('epoch'),
    seed: num('seed'),
    optimizer: JSON.parse(md.optimizer ?? '{}') as Required<AdamWConfig>,
    extra: md.extra === undefined ? undefined : JSON.parse(md.extra),
  };
}

/** Reads only a checkpoint's header (model sizes, step, epoch, seed, extra) without its tensors. */
export async function readCheckpointHeader(file: string): Promise<CheckpointHeader> {
  const h = await readSafetensorsHeader(file);
  return parseHeader(file, h.metadata);
}

/** Pure: why a checkpoint does not fit `model` (a sentence naming both sides), or null when it fits. */
export function checkpointMismatch(h: Pick<CheckpointHeader, 'nVertices' | 'layerNames' | 'layerWidths' | 'dim' | 'hidden' | 'grid'>, model: FactorizedEncoder): string | null {
  if (h.nVertices !== model.nVertices) {
    return `it was saved for ${h.nVertices} vertices and the model has ${model.nVertices} vertices. Use the same subject and vertex selection (nsdgeneral mask, NaN policy), or start a fresh fit in another checkpoint folder.`;
  }
  if (h.layerWidths.length !== model.layerWidths.length || h.layerWidths.some((w, i) => w !== model.layerWidths[i])) {
    return `it was saved for ${h.layerWidths.length} layers of widths [${h.layerWidths.join(', ')}] (${h.layerNames.join(', ')}) and the model has ${model.layerWidths.length} layers of widths [${model.layerWidths.join(', ')}] (${model.layerNames.join(', ')}). Use the same backbone and layers, or another checkpoint folder.`;
  }
  if (h.dim !== model.dim || h.hidden !== model.hidden || h.grid !== model.grid) {
    return `it was saved with bottleneck ${h.dim}, hidden ${h.hidden}, grid ${h.grid} and the model has bottleneck ${model.dim}, hidden ${model.hidden}, grid ${model.grid}.`;
  }
  return null;
}

/** Thrown when a checkpoint does not fit the model it is loaded into. */
export class CheckpointMismatchError extends Error {
  override name = 'CheckpointMismatchError';
}

/**
 * Loads `file` into `model` (checking vertex count and layer widths first) and returns a new AdamW
 * holding the saved moments and step, plus the saved training position.
 */
export async function loadCheckpoint(file: string, model: FactorizedEncoder): Promise<{ optimizer: AdamW; info: CheckpointHeader }> {
  if (!fs.existsSync(file)) throw new FileFormatError(file, 'an encoder checkpoint (.safetensors)', 'no such file', 'Check the path, or train first so that a checkpoint is written.');
  const { tensors, metadata } = await readSafetensors(file);
  const info = parseHeader(file, metadata);
  const why = checkpointMismatch(info, model);
  if (why) throw new CheckpointMismatchError(`checkpoint ${file} does not fit this model: ${why}`);
  const values: Record<string, Float32Array> = {};
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const [name, variable] of model.namedParams()) {
    const get = (key: string): Float32Array => {
      const t = tensors[key];
      if (!t) throw new FileFormatError(file, `a tensor "${key}"`, 'none', 'The checkpoint is incomplete or from another model version.');
      if (t.dtype !== 'float32' || t.data.length !== variable.size) {
        throw new FileFormatError(file, `"${key}" float32 of shape [${variable.shape.join(', ')}]`, `${t.dtype} [${t.shape.join(', ')}]`);
      }
      return t.data as Float32Array;
    };
    values[name] = get(`param/${name}`);
    m.set(variable.name, Float32Array.from(get(`adam_m/${name}`)));
    v.set(variable.name, Float32Array.from(get(`adam_v/${name}`)));
  }
  model.setParams(values);
  const optimizer = new AdamW(info.optimizer);
  // before the first update the optimizer holds no moments; keep it that way so it starts like a fresh one
  if (info.step > 0) optimizer.setState({ step: info.step, m, v });
  return { optimizer, info };
}

/** The parameters a checkpoint holds, in `model.namedParams()` order, without touching the model (checked like {@link loadCheckpoint}). */
export async function readCheckpointParams(file: string, model: FactorizedEncoder): Promise<Float32Array[]> {
  if (!fs.existsSync(file)) throw new FileFormatError(file, 'an encoder checkpoint (.safetensors)', 'no such file', 'Check the path, or train first so that a checkpoint is written.');
  const { tensors, metadata } = await readSafetensors(file);
  const why = checkpointMismatch(parseHeader(file, metadata), model);
  if (why) throw new CheckpointMismatchError(`checkpoint ${file} does not fit this model: ${why}`);
  return model.namedParams().map(([name, variable]) => {
    const t = tensors[`param/${name}`];
    if (!t || t.dtype !== 'float32' || t.data.length !== variable.size) {
      throw new FileFormatError(file, `"param/${name}" float32 of shape [${variable.shape.join(', ')}]`, t ? `${t.dtype} [${t.shape.join(', ')}]` : 'none', 'The checkpoint is incomplete or from another model version.');
    }
    return t.data as Float32Array;
  });
}
