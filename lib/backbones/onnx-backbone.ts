/**
 * ONNX backbones through onnxruntime-node. The user declares which graph outputs are which layer and
 * what each output holds:
 * - 'vit-tokens': `[B, P + h*w, C]` with P prefix tokens (CLS first; default P = 1): global = CLS token,
 *   local = the patch tokens reshaped to `[B, C, h, w]`;
 * - 'patch-grid': patch tokens only, `[B, h*w, C]` or `[B, h, w, C]` (e.g. SAM's blocks): local = the grid,
 *   global = their mean;
 * - 'feature-map': `[B, C, h, w]` (a CNN): local = the map, global = its global average pool.
 * The loader runs one blank image through the graph to learn each layer's width and grid, and checks
 * them against any widths the user declared.
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { onnxExecutionProviders } from '../compute/index.js';
import { FileFormatError } from '../io/errors.js';
import { float16ToNumber } from '../io/ndarray.js';
import { Backbone, BackboneError, BackboneTokens, checkBackboneDeclaration, checkImages } from './contract.js';

/** How a graph output holds a layer's tokens. */
export type OnnxLayerKind = 'vit-tokens' | 'patch-grid' | 'feature-map';

/** One tapped layer of an ONNX backbone. */
export interface OnnxLayerSpec {
  /** Graph output name. */
  output: string;
  kind: OnnxLayerKind;
  /** Patch grid `[h, w]` for 'vit-tokens' / flat 'patch-grid' outputs (default: square root of the token count). */
  grid?: [number, number];
  /** Layer name (default: the output name). */
  name?: string;
  /** 'vit-tokens' only: tokens before the patches (CLS + registers; default 1). The first is the global token. */
  prefixTokens?: number;
  /** Declared width C; checked against the graph. */
  channels?: number;
}

/** Options of {@link loadOnnxBackbone}. */
export interface OnnxBackboneOptions {
  layers: OnnxLayerSpec[];
  inputSize: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
  /** Backbone name for cache keys (default: the file name). Give the weights' identity, e.g. `clip-vit-b16`. */
  name?: string;
  /** Graph input name (default: the graph's first input). */
  inputName?: string;
  /** onnxruntime execution providers (default: `onnxExecutionProviders()`). */
  executionProviders?: string[];
  /** onnxruntime intra-op threads (default: onnxruntime's choice). The graph is always optimised at level 'all', which fixes the numbers' last bits. */
  intraOpNumThreads?: number;
}

/** Local `[B, C, h, w]` and global `[B, C]` tokens of one layer as flat float32 arrays. */
export interface SplitTokens {
  local: Float32Array;
  global: Float32Array;
  B: number;
  C: number;
  h: number;
  w: number;
}

/** Pure: splits one graph output (`data` with `shape`) into local `[B, C, h, w]` and global `[B, C]` tokens by its kind (a feature map's local tokens are `data` itself, not a copy). */
export function splitLayerOutput(data: Float32Array, shape: readonly number[], spec: OnnxLayerSpec): SplitTokens {
  const name = spec.name ?? spec.output;
  const bad = (want: string): never => {
    throw new BackboneError(`ONNX layer ${name} (output '${spec.output}', kind ${spec.kind}): expected ${want}, found [${shape.join(', ')}]. Check the layer's kind and grid.`);
  };
  const gridOf = (n: number): [number, number] => {
    if (spec.grid) {
      if (spec.grid[0] * spec.grid[1] !== n) bad(`${spec.grid[0]}x${spec.grid[1]} = ${spec.grid[0] * spec.grid[1]} patch tokens (grid ${JSON.stringify(spec.grid)})`);
      return spec.grid;
    }
    const s = Math.round(Math.sqrt(n));
    if (s * s !== n) bad(`a square number of patch tokens (or declare grid: [h, w]); ${n} patches`);
    return [s, s];
  };
  if (spec.kind === 'feature-map') {
    if (shape.length !== 4) bad('[B, C, h, w]');
    const [B, C, h, w] = shape as [number, number, number, number];
    const hw = h * w;
    const global = new Float32Array(B * C);
    for (let i = 0; i < B * C; i++) {
      let s = 0;
      for (let k = 0; k < hw; k++) s += data[i * hw + k]!;
      global[i] = s / hw;
    }
    return { local: data.length === B * C * hw ? data : data.slice(0, B * C * hw), global, B, C, h, w };
  }
  // token layouts: [B, T, C] (flat) or [B, h, w, C] (patch grid)
  let B: number, T: number, C: number, P: number, h: number, w: number;
  if (spec.kind === 'vit-tokens') {
    if (shape.length !== 3) bad('[B, prefix + h*w, C]');
    [B, T, C] = shape as [number, number, number];
    P = spec.prefixTokens ?? 1;
    if (!(P >= 1) || T <= P) bad(`more than ${P} tokens (prefix tokens ${P})`);
    [h, w] = gridOf(T - P);
  } else if (spec.kind === 'patch-grid') {
    P = 0;
    if (shape.length === 3) {
      [B, T, C] = shape as [number, number, number];
      [h, w] = gridOf(T);
    } else if (shape.length === 4) {
      [B, h, w, C] = shape as [number, number, number, number];
      T = h * w;
      if (spec.grid && (spec.grid[0] !== h || spec.grid[1] !== w)) bad(`grid ${JSON.stringify(spec.grid)}`);
    } else {
      return bad('[B, h*w, C] or [B, h, w, C]');
    }
  } else {
    throw new BackboneError(`ONNX layer ${name}: unknown kind '${String(spec.kind)}'; use 'vit-tokens', 'patch-grid' or 'feature-map'.`);
  }
  const hw = h * w;
  const local = new Float32Array(B * C * hw);
  const global = new Float32Array(B * C);
  for (let b = 0; b < B; b++) {
    const base = b * T * C;
    for (let p = 0; p < hw; p++) {
      const src = base + (P + p) * C;
      for (let c = 0; c < C; c++) {
        const v = data[src + c]!;
        local[(b * C + c) * hw + p] = v;
        if (P === 0) global[b * C + c]! += v / hw;
      }
    }
    if (P > 0) for (let c = 0; c < C; c++) global[b * C + c] = data[base + c]!;
  }
  return { local, global, B, C, h, w };
}

/** Float32 view of an onnxruntime output tensor (float16 converted). */
function outputFloats(t: ort.Tensor, name: string): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const d = t.data as Uint16Array;
    const out = new Float32Array(d.length);
    for (let i = 0; i < d.length; i++) out[i] = float16ToNumber(d[i]!);
    return out;
  }
  throw new BackboneError(`ONNX output '${name}' has type ${t.type}; backbone outputs must be float32 or float16.`);
}

/**
 * Loads an ONNX vision model (a file, or its bytes) as a Backbone: `layers` declares which outputs are which
 * layer and their kind; images `[B, 3, H, W]` at `inputSize`, normalised with `mean`/`std`.
 */
export async function loadOnnxBackbone(file: string | Uint8Array, opts: OnnxBackboneOptions): Promise<Backbone> {
  const where = typeof file === 'string' ? file : `${opts?.name ?? 'ONNX model'} (in memory)`;
  if (!opts || !Array.isArray(opts.layers) || opts.layers.length === 0) {
    throw new BackboneError(`loadOnnxBackbone(${where}): declare the tapped layers, e.g. layers: [{ output: 'block_11', kind: 'vit-tokens' }].`);
  }
  let session: ort.InferenceSession;
  try {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: opts.executionProviders ?? onnxExecutionProviders(),
      graphOptimizationLevel: 'all',
      ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
    };
    session = typeof file === 'string' ? await ort.InferenceSession.create(file, sessionOptions) : await ort.InferenceSession.create(file, sessionOptions);
  } catch (e) {
    throw new FileFormatError(where, 'an ONNX model that onnxruntime can load', String((e as Error).message ?? e).split('\n')[0]!, 'Export it with data-prep/export-backbone.py or torch.onnx.export.');
  }
  const inputName = opts.inputName ?? session.inputNames[0]!;
  if (!session.inputNames.includes(inputName)) {
    throw new BackboneError(`${where}: no graph input '${inputName}'; inputs are ${session.inputNames.join(', ')}.`);
  }
  const missing = opts.layers.filter((l) => !session.outputNames.includes(l.output));
  if (missing.length) {
    await session.release();
    throw new BackboneError(
      `${where}: declared outputs ${missing.map((l) => `'${l.output}'`).join(', ')} are not graph outputs. The graph's outputs: ${session.outputNames.join(', ')}.`,
    );
  }
  const specs = opts.layers;
  const names = specs.map((l) => l.name ?? l.output);
  const [H, W] = opts.inputSize;
  const run = async (x: Float32Array, B: number): Promise<SplitTokens[]> => {
    const feeds = { [inputName]: new ort.Tensor('float32', x, [B, 3, H, W]) };
    const res = await session.run(feeds, specs.map((l) => l.output));
    return specs.map((l) => {
      const t = res[l.output]!;
      return splitLayerOutput(outputFloats(t, l.output), t.dims, l);
    });
  };
  // probe once with a blank image to learn widths and grids
  let probe: SplitTokens[];
  try {
    probe = await run(new Float32Array(3 * H * W), 1);
  } catch (e) {
    await session.release();
    if (e instanceof BackboneError) throw e;
    throw new BackboneError(`${where}: running a [1, 3, ${H}, ${W}] image failed: ${(e as Error).message}. Check inputSize against the exported graph.`);
  }
  specs.forEach((l, i) => {
    if (l.channels !== undefined && l.channels !== probe[i]!.C) {
      void session.release();
      throw new BackboneError(`${where}: layer ${names[i]} declares ${l.channels} channels but the graph gives ${probe[i]!.C}. Fix the declared widths.`);
    }
  });
  const bb: Backbone = {
    name: opts.name ?? (typeof file === 'string' ? file.split(/[\\/]/).pop()!.replace(/\.onnx$/, '') : 'onnx-model'),
    inputSize: [H, W],
    mean: opts.mean,
    std: opts.std,
    layers: names,
    channels: probe.map((p) => p.C),
    grids: probe.map((p) => [p.h, p.w] as [number, number]),
    async getTokens(images: tf.Tensor4D): Promise<BackboneTokens> {
      const B = checkImages(bb, images);
      const x = (await images.data()) as Float32Array;
      const outs = await run(x, B);
      const local: Record<string, tf.Tensor4D> = {};
      const global: Record<string, tf.Tensor2D> = {};
      outs.forEach((o, i) => {
        local[names[i]!] = tf.tensor4d(o.local, [o.B, o.C, o.h, o.w]);
        global[names[i]!] = tf.tensor2d(o.global, [o.B, o.C]);
      });
      return { local, global };
    },
    async dispose() {
      await session.release();
    },
  };
  checkBackboneDeclaration(bb);
  return bb;
}

/** The JSON sidecar that data-prep/export-backbone.py writes next to `<name>.onnx`. */
export interface OnnxBackboneSidecar {
  format: 'brainnet-onnx-backbone';
  version: number;
  name: string;
  onnx: string;
  input?: string;
  inputSize: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
  layers: OnnxLayerSpec[];
}

/** Loads an ONNX backbone from the JSON sidecar written by data-prep/export-backbone.py (the `.onnx` path is relative to it). */
export async function loadOnnxBackboneFromSidecar(jsonFile: string, overrides: Partial<OnnxBackboneOptions> = {}): Promise<Backbone> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  let s: OnnxBackboneSidecar;
  try {
    s = JSON.parse(await fs.promises.readFile(jsonFile, 'utf8')) as OnnxBackboneSidecar;
  } catch (e) {
    throw new FileFormatError(jsonFile, 'a JSON backbone sidecar', (e as Error).message, 'Re-run data-prep/export-backbone.py.');
  }
  if (s.format !== 'brainnet-onnx-backbone' || !Array.isArray(s.layers) || !s.onnx || !Array.isArray(s.inputSize)) {
    throw new FileFormatError(jsonFile, "a sidecar with format 'brainnet-onnx-backbone', onnx, inputSize and layers", `format ${String(s.format)}`, 'Re-run data-prep/export-backbone.py.');
  }
  return loadOnnxBackbone(path.resolve(path.dirname(jsonFile), s.onnx), {
    name: s.name, inputName: s.input, inputSize: s.inputSize, mean: s.mean, std: s.std, layers: s.layers, ...overrides,
  });
}
