/**
 * Stable Diffusion (2.1-base and alike) in the ONNX layout that `optimum-cli export onnx`
 * writes and diffusers.js reads. Forward passes run through onnxruntime-node; the gradient
 * path (guidance) runs the same ONNX graphs as tfjs ops through the differentiable executor
 * (lib/backbones/onnx-graph), folded for static shapes. Self-attention guidance needs the UNet's
 * mid-block self-attention probabilities as the extra output `mid_attention_probs`
 * (data-prep/add-sag-output.py adds it to an optimum export); `hasAttention` says whether it is there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as ortTypes from 'onnxruntime-node';
import { FileFormatError } from '../io/errors.js';
import { onnxExecutionProviders, onnxIntTensor, onnxSessionMeta, type OnnxValueMeta } from '../compute/onnx.js';
import { loadOnnxGraph, type OnnxGraph } from '../backbones/onnx-graph/index.js';
import { ClipTokenizer } from './tokenizer.js';
import { makeScheduler, SD21_SCHEDULER_CONFIG, schedulerConfigFromJson, type SchedulerConfig, type SchedulerKind } from './schedulers/index.js';
import type { DecodeFn, GuidanceGradient, ScoreFn, UNetFn } from './guidance.js';
import { sampleGuided, type GuidedOptions, type GuidedResult } from './sampling.js';

/** Name of the UNet output with the mid-block self-attention probabilities that SAG needs ([B,heads,N,N] or [B*heads,N,N]). */
export const SD_ATTENTION_OUTPUT = 'mid_attention_probs';
/** How to give an exported SD UNet its attention output. */
export const SD_ATTENTION_FIX = `add it with \`/usr/bin/python3 data-prep/add-sag-output.py --unet <sd folder>/unet/model.onnx\` (Debian python3-onnx), or sample without self-attention guidance (sagScale: 0)`;

/** The folder layout a Stable Diffusion ONNX export must have (optimum-cli export onnx --model stabilityai/stable-diffusion-2-1-base). */
export const SD_ONNX_LAYOUT = [
  'model_index.json',
  'scheduler/scheduler_config.json   (optional: SD-2.1 defaults)',
  'text_encoder/model.onnx',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
  'tokenizer/special_tokens_map.json (optional: pad token)',
  'unet/model.onnx                   (+ unet/model.onnx_data for the external weights; output mid_attention_probs for SAG)',
  'vae_decoder/model.onnx',
  'vae_decoder/config.json           (optional: scaling_factor, default 0.18215)',
].join('\n  ');

/** Paths and settings of a checked SD ONNX folder. */
export interface SdOnnxLayout {
  dir: string;
  modelIndex: Record<string, unknown>;
  unet: string;
  vaeDecoder: string;
  textEncoder: string;
  tokenizerDir: string;
  scheduler: SchedulerConfig;
  vaeScalingFactor: number;
}

/** Checks an SD ONNX export folder and reads its settings; a missing file is named with the expected layout. */
export function checkSdOnnxLayout(dir: string): SdOnnxLayout {
  const fix = `export it with \`optimum-cli export onnx --model stabilityai/stable-diffusion-2-1-base --task text-to-image ${dir}\`; the folder must hold:\n  ${SD_ONNX_LAYOUT}`;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new FileFormatError(dir, 'a Stable Diffusion ONNX folder', 'no such folder', fix);
  const need = (rel: string) => {
    const p = path.join(dir, rel);
    if (!fs.existsSync(p)) throw new FileFormatError(p, `${rel} of a Stable Diffusion ONNX export`, 'no such file', fix);
    return p;
  };
  const readJson = (p: string): Record<string, unknown> => {
    try {
      return JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new FileFormatError(p, 'a JSON object', `unparsable JSON (${e instanceof Error ? e.message : e})`, 'restore the file from the export');
    }
  };
  const modelIndex = readJson(need('model_index.json'));
  const unet = need('unet/model.onnx');
  const vaeDecoder = need('vae_decoder/model.onnx');
  const textEncoder = need('text_encoder/model.onnx');
  need('tokenizer/vocab.json');
  need('tokenizer/merges.txt');
  const sc = path.join(dir, 'scheduler', 'scheduler_config.json');
  const scheduler = fs.existsSync(sc) ? schedulerConfigFromJson(readJson(sc)) : { ...SD21_SCHEDULER_CONFIG };
  const vc = path.join(dir, 'vae_decoder', 'config.json');
  const vaeScalingFactor = fs.existsSync(vc) && typeof readJson(vc)['scaling_factor'] === 'number' ? (readJson(vc)['scaling_factor'] as number) : 0.18215;
  return { dir, modelIndex, unet, vaeDecoder, textEncoder, tokenizerDir: path.join(dir, 'tokenizer'), scheduler, vaeScalingFactor };
}

type Ort = typeof ortTypes;
type Session = ortTypes.InferenceSession;

/** Checks that a session has the named inputs; the error names the file, what the pipeline needs and what it found. */
function requireInputs(s: Session, file: string, names: string[], role: string): void {
  const have = s.inputNames;
  const missing = names.filter((n) => !have.includes(n));
  if (missing.length) {
    throw new FileFormatError(file, `an SD ${role} with inputs ${names.join(', ')}`, `inputs ${have.join(', ')} (missing ${missing.join(', ')})`, 'export with optimum-cli export onnx, which uses these names');
  }
}

/** A Stable Diffusion ONNX pipeline: tokenizer, text encoder, UNet and VAE decoder. */
export class StableDiffusionOnnx {
  private graphs: OnnxGraph[] = [];
  private constructor(
    readonly layout: SdOnnxLayout,
    readonly tokenizer: ClipTokenizer,
    private readonly ort: Ort,
    private readonly textSession: Session,
    private readonly unetSession: Session,
    private readonly vaeSession: Session,
  ) {}

  /** Opens an SD ONNX folder (layout checked first) with onnxruntime-node sessions (CUDA when available, else CPU). */
  static async load(dir: string, opts: { providers?: string[] } = {}): Promise<StableDiffusionOnnx> {
    const layout = checkSdOnnxLayout(dir);
    const tokenizer = ClipTokenizer.fromDir(layout.tokenizerDir);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-node') as Ort;
    const executionProviders = opts.providers ?? onnxExecutionProviders();
    const open = async (file: string) => {
      try {
        return await ort.InferenceSession.create(file, { executionProviders });
      } catch (e) {
        throw new FileFormatError(file, 'an ONNX model onnxruntime can load', e instanceof Error ? e.message.split('\n')[0]! : String(e), 'export it again (opset 14-18), and keep model.onnx_data next to model.onnx');
      }
    };
    const [te, un, vd] = [await open(layout.textEncoder), await open(layout.unet), await open(layout.vaeDecoder)];
    requireInputs(te, layout.textEncoder, ['input_ids'], 'text encoder');
    requireInputs(un, layout.unet, ['sample', 'timestep', 'encoder_hidden_states'], 'UNet');
    requireInputs(vd, layout.vaeDecoder, ['latent_sample'], 'VAE decoder');
    return new StableDiffusionOnnx(layout, tokenizer, ort, te, un, vd);
  }

  /** True when the UNet has the output `mid_attention_probs` (the mid-block self-attention), so SAG can run. */
  get hasAttention(): boolean {
    return this.unetSession.outputNames.includes(SD_ATTENTION_OUTPUT);
  }

  /** Throws a FileFormatError naming the UNet file, its outputs and the fix when it has no attention output (SAG cannot run). */
  requireAttention(): void {
    if (!this.hasAttention) {
      throw new FileFormatError(this.layout.unet, `a UNet with the output ${SD_ATTENTION_OUTPUT} (its mid-block self-attention probabilities, which self-attention guidance needs)`, `outputs ${this.unetSession.outputNames.join(', ')}`, SD_ATTENTION_FIX);
    }
  }

  /** Latent channels the UNet expects (4 for SD). */
  get latentChannels(): number {
    const d = onnxSessionMeta(this.unetSession, 'input').find((m) => m.name === 'sample')?.shape?.[1];
    return typeof d === 'number' ? d : 4;
  }

  private toOrt(x: tf.Tensor): ortTypes.Tensor {
    return new this.ort.Tensor('float32', x.dataSync() as Float32Array, x.shape);
  }

  /** Text contexts [B,77,D] for the prompts (text encoder's last_hidden_state), through onnxruntime. */
  async encodePrompt(prompts: string[]): Promise<tf.Tensor3D> {
    const L = this.tokenizer.maxLength;
    const ids = new Int32Array(prompts.length * L);
    prompts.forEach((p, i) => ids.set(this.tokenizer.encode(p), i * L));
    return this.encodeIds(ids, prompts.length);
  }

  /** Text contexts [B,L,D] for token ids [B*L] (row-major), through onnxruntime. */
  async encodeIds(ids: Int32Array, B: number): Promise<tf.Tensor3D> {
    const L = ids.length / B;
    const out = await this.textSession.run({ input_ids: onnxIntTensor(this.ort, this.textSession, 'input_ids', ids, [B, L], 'int32') });
    const h = out['last_hidden_state'] ?? out[this.textSession.outputNames[0]!]!;
    return tf.tensor3d(h.data as Float32Array, h.dims as [number, number, number]);
  }

  private timestepTensor(t: number, B: number, meta: OnnxValueMeta | undefined): ortTypes.Tensor {
    const n = meta?.shape?.[0] === 1 ? 1 : B;
    if (meta?.type === 'int64') return new this.ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(Math.round(t))), [n]);
    if (meta?.type === 'float16') throw new FileFormatError(this.layout.unet, 'a float32 UNet', 'a float16 timestep input', 'export with --dtype fp32 (the default)');
    return new this.ort.Tensor('float32', new Float32Array(n).fill(t), [n]);
  }

  /** UNet forward through onnxruntime: latents [B,4,h,w], timestep, context [B,L,D] -> eps [B,4,h,w]. */
  async unet(latents: tf.Tensor4D, t: number, context: tf.Tensor3D): Promise<tf.Tensor4D> {
    const name = this.unetSession.outputNames.includes('out_sample') ? 'out_sample' : this.unetSession.outputNames[0]!;
    const out = await this.unetSession.run(this.unetFeeds(latents, t, context), [name]);
    const y = out[name]!;
    return tf.tensor4d(y.data as Float32Array, y.dims as [number, number, number, number]);
  }

  /** UNet forward with its mid-block self-attention, through onnxruntime: eps [B,4,h,w] and attention [B,heads,N,N] (or [B*heads,N,N], as exported). */
  async unetWithAttention(latents: tf.Tensor4D, t: number, context: tf.Tensor3D): Promise<{ eps: tf.Tensor4D; attention: tf.Tensor }> {
    this.requireAttention();
    const name = this.unetSession.outputNames.includes('out_sample') ? 'out_sample' : this.unetSession.outputNames[0]!;
    const out = await this.unetSession.run(this.unetFeeds(latents, t, context), [name, SD_ATTENTION_OUTPUT]);
    const y = out[name]!;
    const a = out[SD_ATTENTION_OUTPUT]!;
    if (a.type !== 'float32') throw new FileFormatError(this.layout.unet, `a float32 ${SD_ATTENTION_OUTPUT}`, `${a.type}`, 'export the UNet in float32 (the default)');
    return { eps: tf.tensor4d(y.data as Float32Array, y.dims as [number, number, number, number]), attention: tf.tensor(a.data as Float32Array, a.dims as number[]) };
  }

  private unetFeeds(latents: tf.Tensor4D, t: number, context: tf.Tensor3D): Record<string, ortTypes.Tensor> {
    const meta = onnxSessionMeta(this.unetSession, 'input').find((m) => m.name === 'timestep');
    return { sample: this.toOrt(latents), timestep: this.timestepTensor(t, latents.shape[0], meta), encoder_hidden_states: this.toOrt(context) };
  }

  /** VAE decoder forward through onnxruntime: latents [B,4,h,w] (already divided by the scaling factor) -> images [B,3,8h,8w] in about [-1,1]. */
  async decode(latents: tf.Tensor4D): Promise<tf.Tensor4D> {
    const out = await this.vaeSession.run({ latent_sample: this.toOrt(latents) });
    const y = out['sample'] ?? out[this.vaeSession.outputNames[0]!]!;
    return tf.tensor4d(y.data as Float32Array, y.dims as [number, number, number, number]);
  }

  /** The UNet and VAE decoder as differentiable tfjs functions (ONNX graphs folded for batch B, latents h x w, context length L x D). */
  async differentiable(shape: { batch: number; height: number; width: number; contextLength?: number; contextDim?: number }): Promise<{ unet: UNetFn; decode: DecodeFn; unetGraph: OnnxGraph; vaeGraph: OnnxGraph }> {
    const B = shape.batch;
    const C = this.latentChannels;
    const ctxMeta = onnxSessionMeta(this.unetSession, 'input').find((m) => m.name === 'encoder_hidden_states');
    const L = shape.contextLength ?? this.tokenizer.maxLength;
    const D = shape.contextDim ?? (typeof ctxMeta?.shape?.[2] === 'number' ? (ctxMeta.shape[2] as number) : 1024);
    const tMeta = onnxSessionMeta(this.unetSession, 'input').find((m) => m.name === 'timestep');
    const tLen = tMeta?.shape?.[0] === 1 ? 1 : B;
    const unetGraph = await loadOnnxGraph(this.layout.unet, { inputShapes: { sample: [B, C, shape.height, shape.width], timestep: [tLen], encoder_hidden_states: [B, L, D] } });
    const vaeGraph = await loadOnnxGraph(this.layout.vaeDecoder, { inputShapes: { latent_sample: [B, C, shape.height, shape.width] } });
    this.graphs.push(unetGraph, vaeGraph);
    const tInfo = unetGraph.inputs.find((i) => i.name === 'timestep');
    const tDtype = tInfo && /int/.test(tInfo.dtype) ? 'int32' : 'float32';
    const unetOut = unetGraph.outputs[0]!.name;
    const vaeOut = vaeGraph.outputs[0]!.name;
    const unet: UNetFn = (x, t, ctx) =>
      tf.tidy(() => {
        if (!ctx) throw new Error('the SD UNet needs a text context [B, 77, D] (use encodePrompt(["" ]) for the empty prompt)');
        const ts = tf.fill([tLen], tDtype === 'int32' ? Math.round(t) : t, tDtype);
        return unetGraph.run({ sample: x, timestep: ts, encoder_hidden_states: ctx }, [unetOut])[unetOut] as tf.Tensor4D;
      });
    const decode: DecodeFn = (z) => vaeGraph.run({ latent_sample: z }, [vaeOut])[vaeOut] as tf.Tensor4D;
    return { unet, decode, unetGraph, vaeGraph };
  }

  /**
   * Brain-guided generation with BrainDiVE's defaults: SD at 512^2 (latents 64^2), empty prompt, no
   * classifier-free guidance, 50 DPM-Solver++ steps; images [B,3,H,W] in [0,1]. Forward passes run
   * through onnxruntime, the guidance gradient through the differentiable executor. Self-attention guidance
   * runs with sagScale > 0 (BrainDiVE: 0.75; default 0 here, the plain SD sampler) and needs the UNet's attention output.
   */
  async generate(opts: {
    score?: ScoreFn;
    guidanceScale?: number;
    prompt?: string;
    /** Negative/empty prompt for classifier-free guidance (enables it, with cfgScale). */
    negativePrompt?: string;
    cfgScale?: number;
    steps?: number;
    scheduler?: SchedulerKind;
    /** Image side in pixels (multiple of 8; default 512). */
    size?: number;
    batch?: number;
    seed?: number;
    gradient?: GuidanceGradient;
    /** Self-attention guidance scale (0, the default: off; BrainDiVE: 0.75). */
    sagScale?: number;
  } & Pick<GuidedOptions, 'callback' | 'progress'> = {}): Promise<GuidedResult> {
    const size = opts.size ?? 512;
    if (size % 8 !== 0) throw new Error(`generate: size must be a multiple of 8, got ${size}`);
    const sagScale = opts.sagScale ?? 0;
    if (sagScale > 0) this.requireAttention(); // sampleGuided checks the scale itself

    const B = opts.batch ?? 1;
    const side = size / 8;
    const guided = !!opts.score && (opts.guidanceScale ?? 0) !== 0;
    const cfg = opts.negativePrompt !== undefined;
    const cond = await this.encodePrompt([opts.prompt ?? '']);
    const uncond = cfg ? await this.encodePrompt([opts.negativePrompt!]) : null;
    const key = `${B}x${side}`;
    let diff = this.diffCache.get(key);
    if (guided && !diff) {
      diff = await this.differentiable({ batch: B, height: side, width: side, contextLength: cond.shape[1], contextDim: cond.shape[2] });
      this.diffCache.set(key, diff);
    }
    const ort: UNetFn = () => {
      throw new Error('internal: the onnxruntime UNet is not differentiable');
    };
    try {
      return await sampleGuided({
        unet: diff?.unet ?? ort,
        decode: diff?.decode ?? ((() => { throw new Error('internal: no differentiable decoder'); }) as DecodeFn),
        unetForward: (x, t, c) => this.unet(x, t, c!),
        decodeForward: (z) => this.decode(z),
        scheduler: makeScheduler(opts.scheduler ?? 'dpmpp2m', this.layout.scheduler),
        steps: opts.steps ?? 50,
        latentShape: [this.latentChannels, side, side],
        batch: B,
        seed: opts.seed ?? 0,
        score: opts.score,
        guidanceScale: opts.guidanceScale ?? 0,
        gradient: opts.gradient ?? 'full',
        cond,
        uncond,
        cfgScale: opts.cfgScale,
        sagScale: opts.sagScale,
        unetWithAttention: sagScale > 0 ? (x, t, c) => this.unetWithAttention(x, t, c!) : undefined,
        vaeScalingFactor: this.layout.vaeScalingFactor,
        callback: opts.callback,
        progress: opts.progress,
      });
    } finally {
      cond.dispose();
      uncond?.dispose();
    }
  }

  private diffCache = new Map<string, { unet: UNetFn; decode: DecodeFn }>();

  /** Releases the onnxruntime sessions and any differentiable graphs. */
  async dispose(): Promise<void> {
    for (const g of this.graphs) g.dispose();
    this.graphs = [];
    this.diffCache.clear();
    await Promise.all([this.textSession.release(), this.unetSession.release(), this.vaeSession.release()]);
  }
}
