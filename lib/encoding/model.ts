/**
 * The factorized brain encoding model of "Brain Decodes Deep Nets" (Yang, Gee & Shi, CVPR 2024),
 * with the semantics of the paper's public code (FactorTopy):
 *
 * - per layer l: a 1x1 bottleneck for local tokens (C_l -> D, no bias) and a linear bottleneck for
 *   global tokens (C_l -> D, no bias: the public code uses `nn.Linear(width, D, bias=False)`);
 * - three MLPs on a sinusoidal encoding of the vertex coordinates (32 features per axis, 3 axes,
 *   192 inputs; Linear(192, H) GELU Linear(H, H) GELU Linear(H, out, no bias)), whose last layers
 *   start at zero: space (2 outputs, tanh), layer (softmax over L), scale (1 output, sigmoid);
 * - local tokens resized to g x g (8) and sampled bilinearly at each vertex's (x, y) (zeros padding,
 *   align_corners false); layers mixed by the layer weights; v = (1 - s) local + s global;
 *   prediction = mean over the D channels of v * w[n] + b[n].
 * - regulariser, exactly as the public code computes it: sum_l p log(p + 1e-8) / log(L), averaged
 *   over vertices (the normalised entropy with the code's sign: adding it to the loss pushes the
 *   layer weights towards uniform while it decays), plus mean (s - 0.5)^2.
 *
 * Parameter layouts (tfjs convention, input-major): bottlenecks [C_l, D] (torch conv weight
 * [D, C_l, 1, 1] transposed), MLP weights [in, out], vertex weights [N, D], vertex bias [N].
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import { activeBackend, isGpuBackend, nodeGpuLoaded } from '../compute/device.js';
import { fusedHead } from './head.js';
import { deviceGelu, deviceHead } from './head-gpu.js';
import { loadOnnxRuntime } from '../compute/onnx.js';
import { gelu as jsGelu, linear, linearConstInput } from './ops.js';

/** Configuration of the factorized model; defaults are the paper's. */
export interface EncoderConfig {
  /** Width C_l of each layer's tokens (one entry per layer). */
  layerWidths: number[];
  /** Names of the layers (default '0', '1', ...); used in errors and checkpoints. */
  layerNames?: string[];
  /** Bottleneck width D (default 128). */
  bottleneckDim?: number;
  /** Hidden width of the selector MLPs (default 128). */
  hiddenDim?: number;
  /** Side of the local token grid after resizing (default 8). */
  grid?: number;
  /** Sinusoidal features per axis, each a sin/cos pair (default 32). */
  peFeatures?: number;
  /** Position-encoding range in steps along the longest axis (default 100). */
  peMaxSteps?: number;
  /** Position-encoding base of the frequencies (default 1000). */
  pePeriods?: number;
  /** Seed of the initialisation (required for reproducibility; default 0). */
  seed?: number;
  /**
   * Which read-out and training step run: 'onnx' (onnx-step.ts: the fused read-out and a hand-written
   * backward of the whole model, matmuls on onnxruntime's CPU provider over every core: fastest without
   * a GPU), 'fused' (head.ts inside tfjs's gradients: per-vertex sums in JavaScript, matmuls on the
   * tfjs backend), 'device' (head-gpu.ts, tfjs ops only, no readbacks: for GPU backends), or 'auto'
   * (default: 'device' on webgpu and tfjs-node-gpu, else 'onnx' when onnxruntime-node loads, else
   * 'fused'). `forward` runs the fused read-out for 'onnx'. Not saved in checkpoints.
   */
  head?: HeadKind;
  /** Vertices per chunk of the device head (default: all at once). */
  headChunk?: number;
}

/** Which read-out the model uses (see EncoderConfig.head). */
export type HeadKind = 'auto' | 'fused' | 'device' | 'onnx';

/**
 * The read-out 'auto' picks on a backend: 'device' on GPU backends (webgpu, and tensorflow when it is
 * tfjs-node-gpu; tfjs-node on the CPU reads back for free and runs the fused head's 13x fewer flops),
 * else 'onnx' when onnxruntime-node loads, else 'fused'. Defaults: the active backend (lib/compute).
 */
export function autoHead(backend: string = activeBackend(), nodeGpu: boolean = nodeGpuLoaded(), onnx: boolean = loadOnnxRuntime() !== null): 'fused' | 'device' | 'onnx' {
  if (isGpuBackend(backend, nodeGpu)) return 'device';
  return onnx ? 'onnx' : 'fused';
}

/** One selector MLP: Linear(192, H) GELU Linear(H, H) GELU Linear(H, out, no bias). */
export interface MlpParams {
  w1: tf.Variable; // [192, H]
  b1: tf.Variable; // [H]
  w2: tf.Variable; // [H, H]
  b2: tf.Variable; // [H]
  w3: tf.Variable; // [H, out]
}

/** Tokens from a backbone: per layer, local [B, C_l, h, w] and global [B, C_l]. */
export interface TokenBatch {
  local: tf.Tensor4D[];
  global: tf.Tensor2D[];
}

/** The three selectors for every vertex, as plain arrays ready to plot. */
export interface Selectors {
  /** [N, 2] (x, y) in [-1, 1] on the token grid (x: width, y: height). */
  space: Float32Array;
  /** [N, L] softmax layer weights. */
  layer: Float32Array;
  /** [N] scale: 0 = local token, 1 = global token. */
  scale: Float32Array;
}

/**
 * Sinusoidal encoding of points [N, 3] -> [N, 3 * 2F] as the public code's PositionalEncoding:
 * positions (x - min) * maxSteps / (largest axis range), frequencies periods^linspace(0, 1/F - 1, F),
 * features ordered (axis, frequency, [sin, cos]).
 */
export function positionEncoding(coords: Float32Array, n: number, features = 32, maxSteps = 100, periods = 1000): Float32Array {
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < 3; a++) {
      const v = coords[3 * i + a]!;
      if (v < lo[a]!) lo[a] = v;
      if (v > hi[a]!) hi[a] = v;
    }
  }
  const range = Math.max(hi[0]! - lo[0]!, hi[1]! - lo[1]!, hi[2]! - lo[2]!);
  const scale = range > 0 ? maxSteps / range : 0;
  const omega = new Float64Array(features);
  for (let f = 0; f < features; f++) {
    const e = features === 1 ? 0 : (f * (1 / features - 1)) / (features - 1);
    omega[f] = Math.fround(Math.pow(periods, e));
  }
  const out = new Float32Array(n * 3 * features * 2);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < 3; a++) {
      const pos = Math.fround((coords[3 * i + a]! - lo[a]!) * scale);
      for (let f = 0; f < features; f++) {
        const x = Math.fround(omega[f]! * pos);
        const o = ((i * 3 + a) * features + f) * 2;
        out[o] = Math.sin(x);
        out[o + 1] = Math.cos(x);
      }
    }
  }
  return out;
}

/** The factorized encoding model: selectors, bottlenecks and per-vertex linear head. */
export class FactorizedEncoder {
  readonly nVertices: number;
  readonly layerWidths: number[];
  readonly layerNames: string[];
  readonly dim: number;
  readonly hidden: number;
  readonly grid: number;
  readonly seed: number;
  readonly localBottleneck: tf.Variable[];
  readonly globalBottleneck: tf.Variable[];
  readonly space: MlpParams;
  readonly layer: MlpParams;
  readonly scale: MlpParams;
  /** [N, D] per-vertex weights. */
  readonly weight: tf.Variable;
  /** [N] per-vertex bias. */
  readonly bias: tf.Variable;
  /** [N, 192] position encoding of the vertex coordinates and its transpose [192, N] (constants). */
  readonly pe: tf.Tensor2D;
  readonly peT: tf.Tensor2D;
  /** Which read-out runs (settable; see EncoderConfig.head). */
  head: HeadKind;
  /** Vertices per chunk of the device head (undefined: all at once). */
  headChunk: number | undefined;
  private readonly cfg: Required<Omit<EncoderConfig, 'layerNames' | 'head' | 'headChunk'>>;
  private readonly disposers: (() => void)[] = [];

  /** Builds a model for vertex coordinates [N, 3] with a seeded, torch-like initialisation. */
  constructor(coords: Float32Array | number[][], config: EncoderConfig) {
    const flat = Array.isArray(coords) ? Float32Array.from(coords.flat()) : coords;
    if (flat.length === 0 || flat.length % 3 !== 0) {
      throw new Error(`FactorizedEncoder: coordinates must be [N, 3], found ${flat.length} numbers (not a multiple of 3). Pass one (x, y, z) per vertex.`);
    }
    if (!config.layerWidths.length) throw new Error('FactorizedEncoder: layerWidths is empty; give one width per backbone layer.');
    const cfg = {
      layerWidths: config.layerWidths.slice(),
      bottleneckDim: config.bottleneckDim ?? 128,
      hiddenDim: config.hiddenDim ?? 128,
      grid: config.grid ?? 8,
      peFeatures: config.peFeatures ?? 32,
      peMaxSteps: config.peMaxSteps ?? 100,
      pePeriods: config.pePeriods ?? 1000,
      seed: config.seed ?? 0,
    };
    this.cfg = cfg;
    this.head = config.head ?? 'auto';
    this.headChunk = config.headChunk;
    this.nVertices = flat.length / 3;
    this.layerWidths = cfg.layerWidths;
    this.layerNames = config.layerNames?.slice() ?? cfg.layerWidths.map((_, i) => String(i));
    if (this.layerNames.length !== this.layerWidths.length) {
      throw new Error(`FactorizedEncoder: ${this.layerNames.length} layer names for ${this.layerWidths.length} layer widths; give one name per width.`);
    }
    this.dim = cfg.bottleneckDim;
    this.hidden = cfg.hiddenDim;
    this.grid = cfg.grid;
    this.seed = cfg.seed;
    const N = this.nVertices;
    const D = this.dim;
    const H = this.hidden;
    const L = this.layerWidths.length;
    const rng = new Rng(cfg.seed);
    // torch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
    const unif = (shape: number[], fanIn: number, name: string) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const bound = 1 / Math.sqrt(fanIn);
      const a = new Float32Array(size);
      for (let i = 0; i < size; i++) a[i] = rng.uniform(-bound, bound);
      return tf.variable(tf.tensor(a, shape), true, `${name}_${uid()}`);
    };
    const zeros = (shape: number[], name: string) => tf.variable(tf.zeros(shape), true, `${name}_${uid()}`);
    this.localBottleneck = this.layerWidths.map((c, i) => unif([c, D], c, `local_bottleneck_${i}`));
    this.globalBottleneck = this.layerWidths.map((c, i) => unif([c, D], c, `global_bottleneck_${i}`));
    const peDim = 3 * 2 * cfg.peFeatures;
    const mlp = (out: number, name: string): MlpParams => ({
      w1: unif([peDim, H], peDim, `${name}_w1`),
      b1: unif([H], peDim, `${name}_b1`),
      w2: unif([H, H], H, `${name}_w2`),
      b2: unif([H], H, `${name}_b2`),
      w3: zeros([H, out], `${name}_w3`),
    });
    this.space = mlp(2, 'space');
    this.layer = mlp(L, 'layer');
    this.scale = mlp(1, 'scale');
    this.weight = unif([N, D], D, 'vertex_weight');
    this.bias = unif([N], D, 'vertex_bias');
    const pe = positionEncoding(flat, N, cfg.peFeatures, cfg.peMaxSteps, cfg.pePeriods);
    this.pe = tf.tensor2d(pe, [N, peDim]);
    this.peT = tf.transpose(this.pe);
  }

  /** The model's configuration (with defaults filled in). */
  get config(): EncoderConfig {
    return { ...this.cfg, layerWidths: this.cfg.layerWidths.slice(), layerNames: this.layerNames.slice() };
  }

  /** Every trainable variable with a stable name (checkpoint keys), in a fixed order. */
  namedParams(): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    this.localBottleneck.forEach((v, i) => out.push([`local_bottleneck.${this.layerNames[i]}`, v]));
    this.globalBottleneck.forEach((v, i) => out.push([`global_bottleneck.${this.layerNames[i]}`, v]));
    for (const [name, m] of [['space', this.space], ['layer', this.layer], ['scale', this.scale]] as const) {
      for (const k of ['w1', 'b1', 'w2', 'b2', 'w3'] as const) out.push([`${name}.${k}`, m[k]]);
    }
    out.push(['weight', this.weight], ['bias', this.bias]);
    return out;
  }

  /** Sets parameters from plain arrays by name (shapes must match); for fixtures and checkpoints. */
  setParams(values: Record<string, Float32Array>): void {
    for (const [name, v] of this.namedParams()) {
      const a = values[name];
      if (!a) continue;
      const size = v.shape.reduce((x, y) => x * y, 1);
      if (a.length !== size) {
        throw new Error(`setParams: ${name} expects ${size} numbers (shape [${v.shape.join(', ')}]), found ${a.length}. Was it saved for another model size?`);
      }
      v.assign(tf.tensor(a, v.shape));
    }
  }

  /** The read-out that runs now: 'fused', 'device' or 'onnx' ('auto' resolved on the active backend). */
  headKind(): 'fused' | 'device' | 'onnx' {
    return this.head === 'auto' ? autoHead() : this.head;
  }

  /** Raw selector outputs: xy [N, 2] (tanh), layer weights [N, L] (softmax), scale [N, 1] (sigmoid). */
  selectorTensors(device = this.headKind() === 'device'): { xy: tf.Tensor2D; p: tf.Tensor2D; s: tf.Tensor2D } {
    const gelu = device ? deviceGelu : jsGelu;
    const run = (m: MlpParams) => {
      const h1 = gelu(linearConstInput(this.pe, this.peT, m.w1 as tf.Tensor2D, m.b1 as tf.Tensor1D));
      const h2 = gelu(linear(h1, m.w2 as tf.Tensor2D, m.b2 as tf.Tensor1D));
      return linear(h2, m.w3 as tf.Tensor2D);
    };
    return {
      xy: tf.tanh(run(this.space)),
      p: tf.softmax(run(this.layer)),
      s: tf.sigmoid(run(this.scale)),
    };
  }

  /** The selectors of every vertex as plain arrays. */
  selectors(): Selectors {
    const { xy, p, s } = this.selectorTensors();
    const out = { space: xy.dataSync() as Float32Array, layer: p.dataSync() as Float32Array, scale: s.dataSync() as Float32Array };
    tf.dispose([xy, p, s]);
    return out;
  }

  /** Checks a token batch against the layer widths; returns the batch size. */
  checkTokens(tokens: TokenBatch): number {
    const L = this.layerWidths.length;
    if (tokens.local.length !== L || tokens.global.length !== L) {
      throw new Error(
        `FactorizedEncoder: expected tokens for ${L} layers (${this.layerNames.join(', ')}), found ${tokens.local.length} local and ${tokens.global.length} global. Pass one local [B, C, h, w] and one global [B, C] tensor per layer.`,
      );
    }
    const B = tokens.local[0]!.shape[0];
    for (let l = 0; l < L; l++) {
      const c = this.layerWidths[l]!;
      const lt = tokens.local[l]!;
      const gt = tokens.global[l]!;
      if (lt.rank !== 4 || lt.shape[0] !== B || lt.shape[1] !== c) {
        throw new Error(`FactorizedEncoder: layer ${this.layerNames[l]} local tokens must be [${B}, ${c}, h, w], found [${lt.shape.join(', ')}]. Check the layer list against the widths.`);
      }
      if (gt.rank !== 2 || gt.shape[0] !== B || gt.shape[1] !== c) {
        throw new Error(`FactorizedEncoder: layer ${this.layerNames[l]} global tokens must be [${B}, ${c}], found [${gt.shape.join(', ')}]. Check the layer list against the widths.`);
      }
    }
    return B;
  }

  /**
   * Forward pass: tokens (local [B, C_l, h, w], global [B, C_l] per layer) -> prediction [B, N]
   * and the regulariser (scalar). Differentiable in the parameters and in the tokens.
   */
  forward(tokens: TokenBatch): { pred: tf.Tensor2D; reg: tf.Scalar } {
    const B = this.checkTokens(tokens);
    const g = this.grid;
    const L = this.layerWidths.length;
    const D = this.dim;
    // 1. bottlenecks: local [B, C, h, w] -> NHWC -> resize to g x g -> [B*g*g, C] @ [C, D]
    const local = tokens.local.map((t, l) => {
      let x = tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
      if (x.shape[1] !== g || x.shape[2] !== g) x = tf.image.resizeBilinear(x, [g, g], false, true);
      const flat = tf.reshape(x, [B * g * g, this.layerWidths[l]!]) as tf.Tensor2D;
      return linear(flat, this.localBottleneck[l] as tf.Tensor2D);
    });
    const glob = tokens.global.map((t, l) => linear(t, this.globalBottleneck[l] as tf.Tensor2D));
    const T = tf.reshape(tf.stack(local), [L, B, g * g, D]);
    const G = tf.stack(glob); // [L, B, D]
    // 2. selectors
    const device = this.headKind() === 'device';
    const { xy, p, s } = this.selectorTensors(device);
    // 3. regulariser (the public code's sign; see the file comment)
    const negEnt = tf.div(tf.mean(tf.sum(tf.mul(p, tf.log(tf.add(p, 1e-8))), -1)), Math.log(L));
    const reg = tf.add(negEnt, tf.mean(tf.square(tf.sub(s, 0.5)))) as tf.Scalar;
    // 4. sampling, layer mix, scale mix and linear head, fused
    const s1 = tf.reshape(s, [this.nVertices]);
    const head = device ? deviceHead(T, G, this.weight, p, s1, xy, { chunk: this.headChunk }) : fusedHead(T, G, this.weight, p, s1, xy);
    const pred = tf.add(head, this.bias) as tf.Tensor2D;
    return { pred, reg };
  }

  /** Prediction only, [B, N], without keeping anything for gradients. */
  predict(tokens: TokenBatch): tf.Tensor2D {
    return tf.tidy(() => this.forward(tokens).pred);
  }

  /** Registers a function that {@link dispose} calls (e.g. to free the host step's sessions). */
  onDispose(f: () => void): void {
    this.disposers.push(f);
  }

  /** Frees the model's variables and constants. */
  dispose(): void {
    for (const f of this.disposers.splice(0)) f();
    for (const [, v] of this.namedParams()) v.dispose();
    this.pe.dispose();
    this.peT.dispose();
  }
}

/** Smooth L1 loss (mean), beta 0.1 by default: 0.5 x^2 / beta where |x| < beta, else |x| - beta / 2. */
export function smoothL1(pred: tf.Tensor, target: tf.Tensor, beta = 0.1): tf.Scalar {
  return tf.tidy(() => {
    // 0.5 min(a, beta)^2 / beta + (a - min(a, beta)): the same piecewise function, written with
    // ops that all have gradients in tfjs.
    const a = tf.abs(tf.sub(pred, target));
    const m = tf.minimum(a, beta);
    return tf.mean(tf.add(tf.div(tf.mul(0.5, tf.square(m)), beta), tf.sub(a, m))) as tf.Scalar;
  });
}

/** The regulariser's weight at a step: lambda * max(0, 1 - step / decaySteps) (0.1, 2000 in the paper). */
export function regWeight(step: number, lambda = 0.1, decaySteps = 2000): number {
  return lambda * Math.max(0, 1 - step / decaySteps);
}

/** Training loss: smooth L1 (beta 0.1) + lambda * reg * max(0, 1 - step / decaySteps). */
export function encoderLoss(pred: tf.Tensor, target: tf.Tensor, reg: tf.Scalar, step: number, lambda = 0.1, decaySteps = 2000): tf.Scalar {
  const w = regWeight(step, lambda, decaySteps);
  const data = smoothL1(pred, target);
  return w === 0 ? data : (tf.add(data, tf.mul(reg, w)) as tf.Scalar);
}

let uidCounter = 0;
function uid(): number {
  return uidCounter++;
}
