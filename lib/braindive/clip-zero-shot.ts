/**
 * BrainDiVE's evaluation with real weights: CLIP zero-shot classification of generated images into the paper's
 * five categories, with an exported CLIP model in the layout `optimum-cli export onnx --model openai/clip-vit-base-patch32`
 * writes (model.onnx taking input_ids, attention_mask and pixel_values and giving logits_per_image; the tokenizer's
 * vocab.json and merges.txt beside it or in tokenizer/; preprocessor_config.json optional). Forward only, through
 * onnxruntime-node.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as ortTypes from 'onnxruntime-node';
import { FileFormatError } from '../io/errors.js';
import { CLIP_MEAN, CLIP_STD } from '../io/image.js';
import { onnxExecutionProviders, onnxIntTensor } from '../compute/onnx.js';
import { ClipTokenizer } from '../diffusion/tokenizer.js';
import { resizeBilinearNCHW } from '../backbones/resize.js';
import { EVAL_CATEGORIES } from './categories.js';
import { CLIP_PROMPTS } from './classifier.js';

type Ort = typeof ortTypes;

/** Token ids [P, L] and attention masks [P, L] (1 up to and including the end token) of prompts, row-major. */
export function clipTextInputs(tok: ClipTokenizer, prompts: string[]): { ids: Int32Array; mask: Int32Array; length: number } {
  const L = tok.maxLength;
  const ids = new Int32Array(prompts.length * L);
  const mask = new Int32Array(prompts.length * L);
  prompts.forEach((p, i) => {
    const row = tok.encode(p);
    ids.set(row, i * L);
    const end = row.indexOf(tok.eosId, 1);
    for (let j = 0; j <= (end < 0 ? L - 1 : end); j++) mask[i * L + j] = 1;
  });
  return { ids, mask, length: L };
}

/** CLIP zero-shot over the paper's five categories (CLIP_PROMPTS), from an exported CLIP model folder. */
export class ClipZeroShotOnnx {
  private constructor(
    readonly file: string,
    private readonly ort: Ort,
    private readonly session: ortTypes.InferenceSession,
    private readonly text: { ids: Int32Array; mask: Int32Array; length: number },
    readonly imageSize: number,
    readonly mean: readonly number[],
    readonly std: readonly number[],
    readonly prompts: string[],
  ) {}

  /** Opens `dir` (model.onnx, tokenizer files, optional preprocessor_config.json); each missing or wrong piece is named. */
  static async load(dir: string, opts: { providers?: string[]; prompts?: Record<(typeof EVAL_CATEGORIES)[number], string> } = {}): Promise<ClipZeroShotOnnx> {
    const file = path.join(dir, 'model.onnx');
    const fix = 'export a whole CLIP model with `optimum-cli export onnx --model openai/clip-vit-base-patch32 <dir>` (or another CLIP checkpoint) and pass that folder';
    if (!fs.existsSync(file)) throw new FileFormatError(file, 'a CLIP model exported to ONNX (model.onnx)', 'no such file', fix);
    const tokDir = fs.existsSync(path.join(dir, 'vocab.json')) ? dir : path.join(dir, 'tokenizer');
    const tok = ClipTokenizer.fromDir(tokDir);
    let size = 224;
    let mean: readonly number[] = CLIP_MEAN, std: readonly number[] = CLIP_STD;
    const pre = path.join(dir, 'preprocessor_config.json');
    if (fs.existsSync(pre)) {
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(fs.readFileSync(pre, 'utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new FileFormatError(pre, 'a JSON object (CLIP image preprocessing)', `unparsable JSON (${e instanceof Error ? e.message : e})`, 'restore the file from the export, or delete it to use 224 and CLIP\'s mean and std');
      }
      const crop = j['crop_size'];
      const s = typeof crop === 'number' ? crop : crop && typeof crop === 'object' ? (crop as { height?: number }).height : undefined;
      if (typeof s === 'number') size = s;
      if (Array.isArray(j['image_mean']) && j['image_mean'].length === 3) mean = j['image_mean'] as number[];
      if (Array.isArray(j['image_std']) && j['image_std'].length === 3) std = j['image_std'] as number[];
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-node') as Ort;
    let session: ortTypes.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, { executionProviders: opts.providers ?? onnxExecutionProviders() });
    } catch (e) {
      throw new FileFormatError(file, 'an ONNX model onnxruntime can load', e instanceof Error ? e.message.split('\n')[0]! : String(e), fix);
    }
    const need = ['input_ids', 'pixel_values'];
    const missing = need.filter((n) => !session.inputNames.includes(n));
    if (missing.length || !session.outputNames.includes('logits_per_image')) {
      throw new FileFormatError(file, 'a whole CLIP model with inputs input_ids, pixel_values (attention_mask optional) and output logits_per_image', `inputs ${session.inputNames.join(', ')}; outputs ${session.outputNames.join(', ')}`, fix);
    }
    const table = opts.prompts ?? CLIP_PROMPTS;
    const prompts = EVAL_CATEGORIES.map((c) => table[c]);
    return new ClipZeroShotOnnx(file, ort, session, clipTextInputs(tok, prompts), size, mean, std, prompts);
  }

  /** Class probabilities [B,5] (EVAL_CATEGORIES order) of images [B,3,H,W] on [0,1]: resized to the model's side, CLIP-normalised, softmax of logits_per_image. */
  async classify(images01: tf.Tensor4D): Promise<tf.Tensor2D> {
    const px = tf.tidy(() => {
      let x = images01;
      if (x.shape[2] !== this.imageSize || x.shape[3] !== this.imageSize) x = resizeBilinearNCHW(x, this.imageSize, this.imageSize);
      return tf.div(tf.sub(x, tf.tensor4d([...this.mean], [1, 3, 1, 1])), tf.tensor4d([...this.std], [1, 3, 1, 1]));
    });
    const P = this.prompts.length, L = this.text.length;
    const feeds: Record<string, ortTypes.Tensor> = {
      input_ids: onnxIntTensor(this.ort, this.session, 'input_ids', this.text.ids, [P, L], 'int64'),
      pixel_values: new this.ort.Tensor('float32', px.dataSync() as Float32Array, px.shape),
    };
    if (this.session.inputNames.includes('attention_mask')) feeds.attention_mask = onnxIntTensor(this.ort, this.session, 'attention_mask', this.text.mask, [P, L], 'int64');
    px.dispose();
    const out = await this.session.run(feeds);
    const logits = out['logits_per_image']!;
    if (logits.dims.length !== 2 || logits.dims[1] !== P) {
      throw new FileFormatError(this.file, `logits_per_image of shape [B, ${P}]`, `shape [${logits.dims.join(', ')}]`, 'export the whole CLIP model (image and text towers) with optimum-cli');
    }
    return tf.tidy(() => tf.softmax(tf.tensor2d(logits.data as Float32Array, [logits.dims[0]!, P])) as tf.Tensor2D);
  }

  /** Releases the onnxruntime session. */
  async dispose(): Promise<void> {
    await this.session.release();
  }
}
