/**
 * BrainDiVE's paper setting on real weights: Stable Diffusion 2.1-base exported to ONNX (512^2, 50 DPM-Solver++ steps,
 * empty prompt, no classifier-free guidance, self-attention guidance at 0.75), a voxel encoder trained on the features of an exported CLIP image encoder,
 * and CLIP zero-shot with the paper's prompts for evaluation, behind the pipeline verbs of pipeline.ts. Forward passes
 * run through onnxruntime, the guidance gradient through the differentiable ONNX executor.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../compute/index.js';
import type { FeatureExtractor } from '../backbones/contract.js';
import { loadOnnxImageEncoder } from '../backbones/features.js';
import { StableDiffusionOnnx } from '../diffusion/sd.js';
import { checkSagScale, PAPER_SAG_SCALE } from '../diffusion/sag.js';
import { ClipZeroShotOnnx } from './clip-zero-shot.js';
import { checkGenerateOptions, scoreRegion, type BrainDiVEPipeline, type GenerateOptions, type GeneratedSet } from './pipeline.js';
import { checkExtractor, loadVoxelEncoder, regionScoreFn, type VoxelEncoder } from './voxel-encoder.js';

/** Options of {@link loadSdPipeline}. */
export interface SdPipelineConfig {
  /** SD-2.1-base ONNX folder (optimum-cli export onnx --model stabilityai/stable-diffusion-2-1-base). */
  sdDir: string;
  /** CLIP vision tower exported to ONNX: the voxel encoder's features. */
  clipEncoder: string;
  /** Its input side (default 224; 336 for ViT-L/14@336). */
  clipInputSize?: number;
  /** Voxel encoder (safetensors) trained on clipEncoder's features. */
  encoderFile: string;
  /** A whole CLIP model exported with optimum-cli, for zero-shot classification; none (or '') gives classify() null. */
  clipModel?: string;
  /** Image side (a multiple of 8; default 512). */
  size?: number;
  /** Default DPM-Solver++ steps (50). */
  steps?: number;
  /** Default self-attention guidance scale (BrainDiVE's 0.75; 0 turns it off). Above 0 the UNet needs its attention output (data-prep/add-sag-output.py). */
  sagScale?: number;
  /** onnxruntime execution providers (default: CUDA when available, else CPU). */
  providers?: string[];
}

/** The paper's pipeline on SD ONNX weights. */
export class SdPipeline implements BrainDiVEPipeline {
  readonly mode = 'sd' as const;

  constructor(
    readonly sd: StableDiffusionOnnx,
    readonly encoder: VoxelEncoder,
    readonly fx: FeatureExtractor,
    readonly clip: ClipZeroShotOnnx | null,
    readonly size = 512,
    readonly steps = 50,
    readonly sagScale = PAPER_SAG_SCALE,
  ) {
    checkExtractor(encoder, fx);
  }

  /** One image per seed (SD's own noise from the seed), guided towards `region` (scale 0: unguided), then scored by the encoder. */
  async generate(o: GenerateOptions): Promise<GeneratedSet> {
    // 1. check inputs; the region's guidance score
    checkGenerateOptions(this.encoder, o);
    const score = regionScoreFn(this.encoder, this.fx, o.region);
    const sagScale = o.sagScale ?? this.sagScale;
    const outs: tf.Tensor4D[] = [];
    for (const [i, seed] of o.seeds.entries()) {
      // 2. guided (or plain) sampling from the seed: empty prompt, no classifier-free guidance, SAG at sagScale
      const r = await this.sd.generate({
        score: o.scale !== 0 ? score : undefined,
        guidanceScale: o.scale,
        steps: o.steps ?? this.steps,
        size: this.size,
        seed,
        scheduler: o.scheduler,
        gradient: o.gradient,
        sagScale,
        progress: o.progress ? { label: `${o.scale !== 0 ? `guided ${o.region} x${o.scale}` : 'unguided'}${sagScale > 0 ? `, SAG ${sagScale}` : ''}: image ${i + 1} of ${o.seeds.length}` } : false,
      });
      outs.push(r.images);
      r.latents.dispose();
      o.onImage?.(i);
    }
    // 3. the images, and the encoder's predicted activation of each
    const images = tf.concat(outs, 0) as tf.Tensor4D;
    outs.forEach((t) => t.dispose());
    return { images, activation: this.score(o.region, images), sagScale };
  }

  score(region: string, images: tf.Tensor4D): Float32Array {
    return scoreRegion(this.encoder, this.fx, region, images);
  }

  /** CLIP zero-shot probabilities [N,5] with the paper's prompts, or null without a CLIP model. */
  async classify(images: tf.Tensor4D): Promise<Float32Array | null> {
    if (!this.clip) return null;
    const p = await this.clip.classify(images);
    const d = p.dataSync() as Float32Array;
    p.dispose();
    return d;
  }

  describe(): string {
    return [
      `diffusion: Stable Diffusion ONNX ${this.sd.layout.dir} (${this.size}^2, ${this.steps} steps, ${this.sagScale > 0 ? `self-attention guidance ${this.sagScale}` : 'no self-attention guidance'})`,
      `encoder: ${this.encoder.featureName} (${this.fx.inputSize}^2), ${this.encoder.nVoxels} voxels; regions: ${Object.keys(this.encoder.regions).join(', ')}`,
      `classifier: ${this.clip ? `CLIP zero-shot (${this.clip.file})` : 'none (give clipModel for CLIP zero-shot)'}`,
    ].join('\n');
  }

  async dispose(): Promise<void> {
    this.fx.dispose();
    tf.dispose([this.encoder.w, this.encoder.b]);
    await this.sd.dispose();
    await this.clip?.dispose();
  }
}

/** Loads the paper's setting: SD ONNX, the CLIP image encoder, the voxel encoder on its features and (optionally) CLIP zero-shot. */
export async function loadSdPipeline(config: SdPipelineConfig): Promise<SdPipeline> {
  for (const k of ['sdDir', 'clipEncoder', 'encoderFile'] as const) {
    if (!config[k]) throw new Error(`loadSdPipeline: ${k} is empty; give ${k === 'sdDir' ? 'an SD-2.1-base ONNX folder' : k === 'clipEncoder' ? 'a CLIP image encoder exported to ONNX' : 'a voxel encoder trained on that encoder\'s features'}`);
  }
  const size = config.size ?? 512;
  if (!(Number.isInteger(size) && size > 0 && size % 8 === 0)) throw new RangeError(`loadSdPipeline: size must be a positive multiple of 8, got ${size}`);
  const sagScale = config.sagScale ?? PAPER_SAG_SCALE;
  checkSagScale(sagScale);
  await initBackend();
  // the encoder and its features first: a mismatch is reported before the large sessions open
  const fx = await loadOnnxImageEncoder(config.clipEncoder, { inputSize: config.clipInputSize ?? 224 });
  const encoder = await loadVoxelEncoder(config.encoderFile);
  checkExtractor(encoder, fx);
  const sd = await StableDiffusionOnnx.load(config.sdDir, { providers: config.providers });
  if (sagScale > 0) {
    // SAG needs the UNet's attention: say so before anything runs
    try {
      sd.requireAttention();
    } catch (e) {
      await sd.dispose();
      fx.dispose();
      throw e;
    }
  }
  const clip = config.clipModel ? await ClipZeroShotOnnx.load(config.clipModel, { providers: config.providers }) : null;
  return new SdPipeline(sd, encoder, fx, clip, size, config.steps ?? 50, sagScale);
}
