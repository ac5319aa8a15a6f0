/**
 * Categorised synthetic stimuli for BrainDiVE in the synthetic world: each image shows one of the
 * paper's five evaluation categories (faces, bodies, places, words, food), drawn with the synthetic
 * world's own procedural renderer (lib/synthetic/stimuli.ts). Places are scene backgrounds
 * without objects; the other categories are one large object on a texture or a plain background.
 * They train the small diffusion model and the 5-way classifier.
 */
import { renderStimulus, type StimulusSpec } from './stimuli.js';
import { CATEGORIES } from './cortex.js';
import { EVAL_CATEGORIES, type CategorisedSet, type EvalCategory } from '../braindive/categories.js';
import { Rng } from '../core/rng.js';


const SCENES: StimulusSpec['background'][] = ['city', 'mountains', 'forest', 'room'];

/** The specification of one image of `category`, drawn from `rng`, `size` x `size` pixels. */
export function categoryStimulus(rng: Rng, category: EvalCategory, size: number, index = 0): StimulusSpec {
  if (category === 'places') {
    const background = rng.pick(SCENES);
    return { index, size, background, seed: rng.int(0, 2 ** 31), objects: [], labels: CATEGORIES.map((c) => c === 'places') };
  }
  const background: StimulusSpec['background'] = rng.next() < 0.75 ? 'texture' : 'plain';
  const s = size * rng.uniform(0.5, 0.8);
  const j = (size - s) / 2;
  const obj = { category, size: s, cx: size / 2 + rng.uniform(-j, j) * 0.6, cy: size / 2 + rng.uniform(-j, j) * 0.6, variant: rng.int(0, 1000) };
  return { index, size, background, seed: rng.int(0, 2 ** 31), objects: [obj], labels: CATEGORIES.map((c) => c === category) };
}


/** Renders `n` categorised images, categories in turn (balanced), seeded. */
export function renderCategorisedSet(n: number, size: number, seed: number): CategorisedSet {
  const rng = new Rng(seed);
  const pixels = new Uint8Array(n * size * size * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % EVAL_CATEGORIES.length;
    const r = renderStimulus(categoryStimulus(rng, EVAL_CATEGORIES[c]!, size, i));
    pixels.set(r.rgb, i * size * size * 3);
    labels[i] = c;
  }
  return { size, count: n, pixels, labels };
}

/** Replaces, in place, the images `rows` of pixels [n, side, side, 3] (uint8 HWC, `per` = side*side*3 bytes each) by f(those images [rows.length, side, side, 3]) of the same shape. */
export function mapRows(pixels: Uint8Array, per: number, rows: readonly number[], f: (images: Uint8Array, m: number) => Uint8Array): void {
  if (!rows.length) return;
  const picked = new Uint8Array(rows.length * per);
  rows.forEach((r, j) => picked.set(pixels.subarray(r * per, (r + 1) * per), j * per));
  const out = f(picked, rows.length);
  if (out.length !== picked.length) throw new RangeError(`mapRows: f returned ${out.length} bytes for ${rows.length} images of ${per}`);
  rows.forEach((r, j) => pixels.set(out.subarray(j * per, (j + 1) * per), r * per));
}
