/**
 * The backbone contract: one frozen image network, seen two ways.
 * - Tokens, for the encoding model: `Backbone.getTokens(images [B, 3, H, W]) -> { local: {layer: [B, C, h, w]},
 *   global: {layer: [B, C]} }`, asynchronous, whatever runs underneath (tfjs layers model, onnxruntime, ...).
 * - Features, for guidance: `FeatureExtractor.features(images [B, 3, H, W] on [0, 1]) -> [B, D]`, one layer's
 *   global token, unit-normalised, computed synchronously with tfjs ops so that tf.grad reaches the image
 *   (BrainDiVE's voxel encoder reads these, and its gradient steers diffusion).
 * The built-in networks give both views from one loader (nsfwjs.ts): tokens in builtin.ts, features in features.ts.
 * For InceptionV3, `features(x)` is `getTokens(x).global[layer]` divided by its norm at the network's input size
 * (checked in test/backbones); MobileNetV2's features run through keras-executor.ts (see the note there).
 * `checkTokens` validates a backbone's output against what it declares, so a misshaped or missing
 * layer is reported where it appears instead of deep inside the encoding model.
 */
import * as tf from '@tensorflow/tfjs';

/** Per-layer tokens: local feature maps `[B, C, h, w]` and global tokens `[B, C]`, keyed by layer name. */
export interface BackboneTokens {
  local: Record<string, tf.Tensor4D>;
  global: Record<string, tf.Tensor2D>;
}

/** A frozen vision network that turns normalised images into per-layer tokens. */
export interface Backbone {
  /** Identity of the network and its weights (used to key token caches), e.g. `mobilenetv2@nsfwjs4`. */
  readonly name: string;
  /** Input `[H, W]` that `getTokens` expects. */
  readonly inputSize: [number, number];
  /** Per-channel RGB mean on 0..1 values: images are normalised as (x/255 - mean) / std. */
  readonly mean: [number, number, number];
  /** Per-channel RGB standard deviation on 0..1 values. */
  readonly std: [number, number, number];
  /** Tapped layers, early to late. */
  readonly layers: string[];
  /** Channels C of each layer, parallel to `layers`. */
  readonly channels: number[];
  /** Local grid `[h, w]` of each layer at `inputSize`, parallel to `layers`. */
  readonly grids: [number, number][];
  /** images `[B, 3, H, W]` normalised -> local `{layer: [B, C, h, w]}`, global `{layer: [B, C]}`; the caller disposes them. */
  getTokens(images: tf.Tensor4D): Promise<BackboneTokens>;
  /** Frees weights and sessions. */
  dispose(): void | Promise<void>;
}

/**
 * The features view: a frozen, differentiable image featuriser, images [B, 3, H, W] on [0, 1] (resized to
 * `inputSize` inside) -> unit-normalised features [B, D]. Synchronous, so that tf.grad works through it.
 */
export interface FeatureExtractor {
  /** Identity of the network, layer and input size (a voxel encoder records it), e.g. `mobilenetv2@nsfwjs4/out_relu@128`. */
  readonly name: string;
  /** Side the images are resized to before the network. */
  readonly inputSize: number;
  /** Feature width D. */
  readonly dim: number;
  /** Version of the values under this name (the built-ins: BUILTIN_FEATURE_VERSION, or 1 when rebuilt for an older model); absent elsewhere. */
  readonly version?: number;
  /** images [B, 3, H, W] on [0, 1] -> unit-normalised features [B, D]; differentiable. */
  features(images01: tf.Tensor4D): tf.Tensor2D;
  /** Frees the network's weights. */
  dispose(): void;
}

/** Thrown when a backbone's output or declaration does not match its contract. */
export class BackboneError extends Error {
  override name = 'BackboneError';
}

/** Pure: checks that a backbone's declared `layers`, `channels` and `grids` agree; throws BackboneError otherwise. */
export function checkBackboneDeclaration(b: Pick<Backbone, 'name' | 'layers' | 'channels' | 'grids' | 'inputSize'>): void {
  const n = b.layers.length;
  if (n === 0) throw new BackboneError(`backbone ${b.name}: declares no layers. Tap at least one layer.`);
  if (new Set(b.layers).size !== n) {
    const dup = b.layers.filter((l, i) => b.layers.indexOf(l) !== i);
    throw new BackboneError(`backbone ${b.name}: layer names must be unique, found duplicates ${dup.join(', ')}.`);
  }
  if (b.channels.length !== n) {
    throw new BackboneError(
      `backbone ${b.name}: ${n} layers (${b.layers.join(', ')}) but ${b.channels.length} channel widths (${b.channels.join(', ')}). Give one width per layer.`,
    );
  }
  if (b.grids.length !== n) {
    throw new BackboneError(`backbone ${b.name}: ${n} layers but ${b.grids.length} grids. Give one [h, w] per layer.`);
  }
  b.channels.forEach((c, i) => {
    if (!Number.isInteger(c) || c <= 0) throw new BackboneError(`backbone ${b.name}: layer ${b.layers[i]} has width ${c}; widths must be positive integers.`);
  });
  const [H, W] = b.inputSize;
  if (!(Number.isInteger(H) && Number.isInteger(W) && H > 0 && W > 0)) {
    throw new BackboneError(`backbone ${b.name}: inputSize must be two positive integers [H, W], found [${b.inputSize.join(', ')}].`);
  }
}

/**
 * Pure: checks tokens from `backbone.getTokens` for a batch of `B`: every declared layer present in
 * local `[B, C, h, w]` and global `[B, C]` with the declared widths and grids, no undeclared layer.
 */
export function checkTokens(b: Pick<Backbone, 'name' | 'layers' | 'channels' | 'grids'>, tokens: BackboneTokens, B: number): void {
  const want = new Set(b.layers);
  for (const kind of ['local', 'global'] as const) {
    const got = tokens?.[kind];
    if (!got || typeof got !== 'object') {
      throw new BackboneError(`backbone ${b.name}: getTokens returned no '${kind}' record; expected {layer: tensor} for ${b.layers.join(', ')}.`);
    }
    const extra = Object.keys(got).filter((k) => !want.has(k));
    if (extra.length) {
      throw new BackboneError(`backbone ${b.name}: getTokens returned ${kind} tokens for undeclared layers ${extra.join(', ')}; declared: ${b.layers.join(', ')}.`);
    }
  }
  b.layers.forEach((layer, i) => {
    const C = b.channels[i]!;
    const [h, w] = b.grids[i]!;
    const lt = tokens.local[layer];
    const gt = tokens.global[layer];
    if (!lt) throw new BackboneError(`backbone ${b.name}: layer ${layer} is missing from the local tokens (found ${Object.keys(tokens.local).join(', ') || 'none'}).`);
    if (!gt) throw new BackboneError(`backbone ${b.name}: layer ${layer} is missing from the global tokens (found ${Object.keys(tokens.global).join(', ') || 'none'}).`);
    const ls = lt.shape;
    if (ls.length !== 4 || ls[0] !== B || ls[1] !== C || ls[2] !== h || ls[3] !== w) {
      throw new BackboneError(
        `backbone ${b.name}: layer ${layer} local tokens must be [B=${B}, C=${C}, ${h}, ${w}], found [${ls.join(', ')}]. ` +
          (ls.length === 4 && ls[3] === C ? 'They look channels-last (NHWC): transpose to [B, C, h, w]. ' : '') +
          'Check the declared widths and grids against the network.',
      );
    }
    const gs = gt.shape;
    if (gs.length !== 2 || gs[0] !== B || gs[1] !== C) {
      throw new BackboneError(`backbone ${b.name}: layer ${layer} global tokens must be [B=${B}, C=${C}], found [${gs.join(', ')}]. Check the declared widths.`);
    }
  });
}

/** Pure: checks an image batch against a backbone's input: `[B, 3, H, W]` at `inputSize`. */
export function checkImages(b: Pick<Backbone, 'name' | 'inputSize'>, images: tf.Tensor): number {
  const s = images.shape;
  const [H, W] = b.inputSize;
  if (s.length !== 4 || s[1] !== 3 || s[2] !== H || s[3] !== W) {
    throw new BackboneError(
      `backbone ${b.name}: images must be [B, 3, ${H}, ${W}] (normalised, channels first), found [${s.join(', ')}]. ` +
        'Resize and normalise with imagesToTensor(images, { size: backbone.inputSize, mean: backbone.mean, std: backbone.std }).',
    );
  }
  return s[0]!;
}

/** Runs `getTokens` and validates the result (disposing it on failure); returns the tokens. */
export async function getCheckedTokens(b: Backbone, images: tf.Tensor4D): Promise<BackboneTokens> {
  const B = checkImages(b, images);
  const t = await b.getTokens(images);
  try {
    checkTokens(b, t, B);
  } catch (e) {
    disposeTokens(t);
    throw e;
  }
  return t;
}

/** Disposes every tensor in a token record. */
export function disposeTokens(t: BackboneTokens | undefined): void {
  if (!t) return;
  for (const r of [t.local, t.global]) if (r) for (const v of Object.values(r)) v?.dispose?.();
}
