/**
 * BrainDiVE in the synthetic world: the committed 64^2 diffusion model (PCA latent or pixel UNet), the voxel encoder
 * fitted to the synthetic subject on MobileNetV2 features, and the 5-way category classifier, behind the pipeline
 * verbs of pipeline.ts. Small enough for a 2-core laptop; `await loadSyntheticPipeline()` needs no arguments.
 * Its denoisers (a PCA-latent MLP, a small pixel UNet) have no self-attention, so self-attention guidance does not apply.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../compute/index.js';
import type { FeatureExtractor } from '../backbones/contract.js';
import { builtinFeatureExtractorFor } from '../backbones/features.js';
import { sampleGuided } from '../diffusion/sampling.js';
import { ModelFolderError } from '../diffusion/model-folder.js';
import type { Params } from '../diffusion/pixel-unet.js';
import { NoiseGenerator } from '../diffusion/schedulers/index.js';
import { checkSagScale } from '../diffusion/sag.js';
import { loadSyntheticDiffusion, samplerParts, type SamplerParts, type SyntheticDiffusionModel } from '../diffusion/small-models.js';
import { classifyImages, loadClassifier } from './classifier.js';
import { checkGenerateOptions, scoreRegion, type BrainDiVEPipeline, type GenerateOptions, type GeneratedSet } from './pipeline.js';
import { loadVoxelEncoder, regionScoreFn, type VoxelEncoder } from './voxel-encoder.js';

/** Default committed model folders, relative to the repository root. */
export const SYNTHETIC_MODELS = {
  diffusion: 'models/synthetic-diffusion-64',
  encoder: 'models/synthetic-encoder-mobilenetv2/encoder.safetensors',
  classifier: 'models/synthetic-classifier-64',
};

/** Finds the repository root (the folder with models/) from a start folder upwards. */
export function findRepoRoot(start = process.cwd()): string {
  let d = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(d, 'models', 'synthetic-diffusion-64'))) return d;
    const up = path.dirname(d);
    if (up === d) return path.resolve(start);
    d = up;
  }
}

/** Options of {@link loadSyntheticPipeline}: the model files (defaults: SYNTHETIC_MODELS) and the default steps. */
export interface SyntheticPipelineConfig extends Partial<typeof SYNTHETIC_MODELS> {
  /** Folder that relative model paths start from (default: the repository root, found upwards from the working folder). */
  root?: string;
  /** Default DDIM steps of generate (25). */
  steps?: number;
}

/** The one line said when SAG is asked for in the synthetic world. */
export const SYNTHETIC_NO_SAG = 'self-attention guidance does not apply in the synthetic world: its denoiser has no self-attention; sampling without it';

/** The synthetic world's pipeline; its parts are public so that benchmarks and model cards can report them. */
export class SyntheticPipeline implements BrainDiVEPipeline {
  readonly mode = 'synthetic' as const;
  /** Its denoisers have no attention: no SAG. */
  readonly sagScale = 0;
  private readonly parts: SamplerParts;
  private saidNoSag = false;

  constructor(
    readonly model: SyntheticDiffusionModel,
    readonly encoder: VoxelEncoder,
    readonly fx: FeatureExtractor,
    readonly classifier: Params,
    readonly steps = 25,
  ) {
    this.parts = samplerParts(model);
  }

  /** One image per seed, guided towards `region` (scale 0: unguided), sampled in batches, then scored by the encoder. */
  async generate(o: GenerateOptions): Promise<GeneratedSet> {
    // 1. check inputs; the region's guidance score
    checkGenerateOptions(this.encoder, o);
    if (o.sagScale !== undefined) checkSagScale(o.sagScale);
    if (o.sagScale && !this.saidNoSag) {
      console.warn(SYNTHETIC_NO_SAG);
      this.saidNoSag = true;
    }
    const score = regionScoreFn(this.encoder, this.fx, o.region);
    const batch = o.batch ?? 8;
    if (!(Number.isInteger(batch) && batch >= 1)) throw new RangeError(`batch must be a positive integer, got ${batch}`);
    const outs: tf.Tensor4D[] = [];
    for (let i0 = 0; i0 < o.seeds.length; i0 += batch) {
      const seeds = o.seeds.slice(i0, i0 + batch);
      // 2. each image's initial noise from its own seed (so the batch size does not change the images)
      const latents = tf.tidy(() => tf.concat(seeds.map((s) => new NoiseGenerator(s).randn([1, ...this.parts.latentShape]) as tf.Tensor4D), 0) as tf.Tensor4D);
      // 3. guided (or plain) sampling of the batch
      const r = await sampleGuided({
        unet: (x, t) => this.parts.unet(x, t),
        decode: this.parts.decode,
        scheduler: this.parts.scheduler(o.scheduler ?? 'ddim'),
        steps: o.steps ?? this.steps,
        latentShape: this.parts.latentShape,
        latents,
        seed: seeds[0]!,
        score: o.scale !== 0 ? score : undefined,
        guidanceScale: o.scale,
        gradient: o.gradient ?? (this.model.kind === 'pca-latent' ? 'full' : 'x0'),
        vaeScalingFactor: 1,
        scoreSize: this.fx.inputSize,
        progress: o.progress ? { label: `${o.scale !== 0 ? `guided ${o.region} x${o.scale}` : 'unguided'}: images ${i0 + 1}-${i0 + seeds.length} of ${o.seeds.length}` } : false,
      });
      latents.dispose();
      outs.push(r.images);
      r.latents.dispose();
      seeds.forEach((_, j) => o.onImage?.(i0 + j));
    }
    // 4. the images, and the encoder's predicted activation of each
    const images = tf.concat(outs, 0) as tf.Tensor4D;
    outs.forEach((t) => t.dispose());
    return { images, activation: this.score(o.region, images), sagScale: 0 };
  }

  score(region: string, images: tf.Tensor4D): Float32Array {
    return scoreRegion(this.encoder, this.fx, region, images);
  }

  /** The 5-way classifier's probabilities [N,5] (images resized to 64^2). */
  async classify(images: tf.Tensor4D): Promise<Float32Array> {
    return tf.tidy(() => classifyImages(this.classifier, images).dataSync() as Float32Array);
  }

  describe(): string {
    return [
      `diffusion: ${this.model.dir} (${this.model.kind}, ${JSON.stringify(this.model.meta.training)})`,
      `encoder: ${this.encoder.featureName}, ${this.encoder.nVoxels} voxels; regions: ${Object.keys(this.encoder.regions).join(', ')}`,
      'classifier: the synthetic world\'s 5-way CNN (faces, bodies, places, words, food)',
    ].join('\n');
  }

  async dispose(): Promise<void> {
    this.fx.dispose();
    tf.dispose([this.encoder.w, this.encoder.b, ...Object.values(this.model.params), ...Object.values(this.classifier)]);
    if (this.model.kind === 'pca-latent') tf.dispose([this.model.pca.mean, this.model.pca.basis]);
  }
}

/** Loads the committed synthetic-world models (diffusion, voxel encoder, classifier) and the encoder's MobileNetV2 features. */
export async function loadSyntheticPipeline(config: SyntheticPipelineConfig = {}): Promise<SyntheticPipeline> {
  await initBackend();
  const p = { diffusion: config.diffusion ?? SYNTHETIC_MODELS.diffusion, encoder: config.encoder ?? SYNTHETIC_MODELS.encoder, classifier: config.classifier ?? SYNTHETIC_MODELS.classifier };
  const root = config.root ?? findRepoRoot();
  const abs = (x: string) => (path.isAbsolute(x) ? x : path.join(root, x));
  const model = await loadSyntheticDiffusion(abs(p.diffusion));
  if (!fs.existsSync(abs(p.encoder))) throw new ModelFolderError(`encoder file ${abs(p.encoder)} is missing; run data-prep/braindive/train-encoder.ts`);
  const encoder = await loadVoxelEncoder(abs(p.encoder));
  const fx = await builtinFeatureExtractorFor(encoder);
  const classifier = await loadClassifier(abs(p.classifier));
  return new SyntheticPipeline(model, encoder, fx, classifier, config.steps);
}
