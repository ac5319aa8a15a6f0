/**
 * The synthetic cortex: one icosahedral sphere per hemisphere, an occipital pole, early visual
 * areas laid out retinotopically around it, category patches further out, and a known ground
 * truth for every vertex. Pure: no I/O.
 *
 * Geometry. Every point is described by its angular distance `d` (degrees) from the occipital pole
 * (0, -1, 0) and its azimuth `phi` around it (0 = medial, +90 = dorsal, -90 = ventral, ±180 =
 * lateral). The rh uses the mirror image of the lh's frame, so the two hemispheres are mirror
 * images. The flat layout is the azimuthal equidistant projection (u, v) = d·(cos phi, sin phi).
 *
 * Retinotopy. Eccentricity grows with `d` (foveal magnification); polar angle changes with `phi`
 * (V1 around phi = 0, with reversals at the V1/V2 (vertical meridian) and V2/V3 (horizontal
 * meridian) borders; dorsal areas see the lower field, ventral areas the upper field). The left
 * hemisphere sees the right visual field. pRF coordinates are in image units: the image spans
 * [-1, 1] in x (right) and y (up).
 */
import { ROI_FILES, type Hemi } from '../data/rois.js';
import { ico, icoVertexCount } from './ico.js';
import { Rng, subSeed } from '../core/rng.js';

/** Stimulus categories, in the order of every tuning vector. */
export const CATEGORIES = ['faces', 'bodies', 'places', 'words', 'food', 'objects'] as const;
export type Category = (typeof CATEGORIES)[number];
export type Depth = 'early' | 'mid' | 'late';
export type Scale = 'local' | 'global';

/** A category patch: centre in flat coordinates (degrees), radius, preferred category, depth and scale. */
export interface PatchSpec {
  name: string;
  u: number;
  v: number;
  radius: number;
  category: Category;
  depth: Depth;
  scale: Scale;
}

const polar = (d: number, phiDeg: number): [number, number] => [d * Math.cos((phiDeg * Math.PI) / 180), d * Math.sin((phiDeg * Math.PI) / 180)];
const patch = (name: string, d: number, phi: number, radius: number, category: Category, depth: Depth, scale: Scale): PatchSpec => {
  const [u, v] = polar(d, phi);
  return { name, u, v, radius, category, depth, scale };
};

/** The category patches (the same layout in both hemispheres; 'food' has no Algonauts ROI file). */
export const PATCHES: PatchSpec[] = [
  patch('OFA', 24, -170, 3.5, 'faces', 'mid', 'local'),
  patch('FFA-1', 26, -100, 3.5, 'faces', 'late', 'global'),
  patch('FFA-2', 34, -100, 3.5, 'faces', 'late', 'global'),
  patch('EBA', 27, 170, 4.5, 'bodies', 'mid', 'local'),
  patch('FBA-1', 33, -140, 3, 'bodies', 'late', 'global'),
  patch('FBA-2', 34, 155, 3, 'bodies', 'late', 'global'),
  patch('OPA', 26, 130, 4, 'places', 'mid', 'local'),
  patch('PPA', 28, -60, 5, 'places', 'late', 'global'),
  patch('RSC', 26, 20, 4, 'places', 'late', 'global'),
  patch('OWFA', 24, -150, 3, 'words', 'mid', 'local'),
  patch('VWFA-1', 27, -125, 3.5, 'words', 'late', 'global'),
  patch('VWFA-2', 34, -125, 3, 'words', 'late', 'global'),
  patch('food', 33, -80, 3.5, 'food', 'late', 'global'),
];

/** Largest angular distance (degrees) of the early visual map from the pole. */
export const EARLY_RADIUS = 19;

/** Per-vertex ground truth of one hemisphere, over its challenge vertices (columnar). */
export interface HemisphereTruth {
  hemi: Hemi;
  /** fsaverage-space (ico7) index of each challenge vertex, ascending. [N] */
  fsIndex: Int32Array;
  /** ROI name of each vertex ('V1v', 'FFA-1', ..., 'food' or 'other'). [N] */
  roi: string[];
  /** Stream name of each vertex (Algonauts 'streams' labels). [N] */
  stream: string[];
  /** pRF centre x, y and size sigma in image units ([-1, 1]); NaN where the vertex has none. [N] */
  prfX: Float32Array;
  prfY: Float32Array;
  prfSigma: Float32Array;
  /** Intended network depth and scale. [N] */
  depth: Depth[];
  scale: Scale[];
  /** Noise-ceiling SNR (signal sd / single-trial noise sd). [N] */
  ncsnr: Float32Array;
  /** Category tuning, [N, 6] in CATEGORIES order. */
  tuning: Float32Array;
  /** Flat-map coordinates (degrees from the pole, azimuthal equidistant). [N, 2] */
  flat: Float32Array;
}

/** The synthetic cortex of a subject. */
export interface Cortex {
  /** Order of the icosahedron the responses live on (4 tiny, 5 workshop, 7 full). */
  order: number;
  /** Number of vertices of that icosahedron; they are the first vertices of ico7 (fsaverage space). */
  workingVertices: number;
  lh: HemisphereTruth;
  rh: HemisphereTruth;
}

/** Options of `makeCortex`. */
export interface CortexOptions {
  order: number;
  /** Challenge vertex counts; default: the fsaverage fraction of subj01 (19004 and 20544 of 163842) of the working sphere. */
  lhCount?: number;
  rhCount?: number;
  seed: number;
}

/** Challenge vertex counts for an icosahedron order, scaled from subj01 (19004 + 20544 at ico7). */
export function challengeCounts(order: number): { lh: number; rh: number } {
  const n = icoVertexCount(order);
  return { lh: Math.round((19004 / 163842) * n), rh: Math.round((20544 / 163842) * n) };
}

/** Builds the synthetic cortex (both hemispheres) with its ground truth. */
export function makeCortex(opts: CortexOptions): Cortex {
  const counts = challengeCounts(opts.order);
  const sphere = ico(opts.order, 1);
  return {
    order: opts.order,
    workingVertices: sphere.vertices.length / 3,
    lh: makeHemisphere('lh', sphere.vertices, opts.lhCount ?? counts.lh, opts.order, subSeed(opts.seed, 'cortex-lh')),
    rh: makeHemisphere('rh', sphere.vertices, opts.rhCount ?? counts.rh, opts.order, subSeed(opts.seed, 'cortex-rh')),
  };
}

/** Angular distance d (degrees) from the pole and azimuth phi (degrees) of unit vector (x, y, z). */
export function poleCoords(hemi: Hemi, x: number, y: number, z: number): { d: number; phi: number } {
  const medial = hemi === 'lh' ? x : -x; // lh's medial wall faces +x, rh's faces -x
  const d = (Math.acos(Math.max(-1, Math.min(1, -y))) * 180) / Math.PI;
  const phi = (Math.atan2(z, medial) * 180) / Math.PI;
  return { d, phi };
}

interface EarlyMap { roi: string; alpha: number; sizeFactor: number }

/** Early visual area and visual polar angle alpha (degrees, + up) at azimuth phi, or null. */
function earlyArea(phi: number): EarlyMap | null {
  const a = Math.abs(phi);
  const dorsal = phi > 0;
  if (a <= 30) return { roi: dorsal ? 'V1d' : 'V1v', alpha: (-phi / 30) * 90, sizeFactor: 1 };
  if (a <= 55) {
    const t = ((a - 30) / 25) * 90;
    return { roi: dorsal ? 'V2d' : 'V2v', alpha: dorsal ? -90 + t : 90 - t, sizeFactor: 1.4 };
  }
  if (a <= 80) {
    const t = ((a - 55) / 25) * 90;
    return { roi: dorsal ? 'V3d' : 'V3v', alpha: dorsal ? -t : t, sizeFactor: 1.9 };
  }
  if (!dorsal && a <= 130) return { roi: 'hV4', alpha: 90 - ((a - 80) / 50) * 180, sizeFactor: 2.6 };
  return null;
}

/** The Algonauts stream label at (d, phi). */
function streamAt(d: number, phi: number, early: boolean): string {
  if (early) return 'early';
  const sector = phi >= -150 && phi < -20 ? 'ventral' : phi >= -20 && phi < 110 ? 'parietal' : 'lateral';
  if (d <= 24) return sector === 'ventral' ? 'midventral' : sector === 'parietal' ? 'midparietal' : 'midlateral';
  return sector;
}

function makeHemisphere(hemi: Hemi, unit: Float32Array, count: number, order: number, seed: number): HemisphereTruth {
  const nv = unit.length / 3;
  if (count > nv) throw new RangeError(`makeCortex: ${count} challenge vertices requested but ico${order} has only ${nv}`);
  const rng = new Rng(seed);
  const dist = new Float64Array(nv);
  for (let i = 0; i < nv; i++) dist[i] = -unit[i * 3 + 1]!;
  // Challenge vertices: the `count` vertices nearest the occipital pole, then in ascending index order.
  const order0 = Array.from({ length: nv }, (_, i) => i).sort((a, b) => dist[b]! - dist[a]! || a - b);
  const fsIndex = Int32Array.from(order0.slice(0, count)).sort();
  const spacing = (Math.sqrt((4 * Math.PI) / nv) * 180) / Math.PI; // mean vertex spacing (degrees)
  const vfSign = hemi === 'lh' ? 1 : -1; // lh sees the right visual field (x > 0)
  const roi: string[] = [], stream: string[] = [], depth: Depth[] = [], scale: Scale[] = [];
  const prfX = new Float32Array(count).fill(NaN), prfY = new Float32Array(count).fill(NaN), prfSigma = new Float32Array(count).fill(NaN);
  const ncsnr = new Float32Array(count), tuning = new Float32Array(count * 6), flat = new Float32Array(count * 2);
  for (let k = 0; k < count; k++) {
    const i = fsIndex[k]!;
    const { d, phi } = poleCoords(hemi, unit[i * 3]!, unit[i * 3 + 1]!, unit[i * 3 + 2]!);
    const [u, v] = polar(d, phi);
    flat[k * 2] = hemi === 'lh' ? u : -u; // lh is drawn on the left, rh on the right: medial (phi = 0, +u) faces the midline
    flat[k * 2 + 1] = v;
    const early = d <= EARLY_RADIUS ? earlyArea(phi) : null;
    stream.push(streamAt(d, phi, early !== null && early.roi !== 'hV4'));
    // Category patch: the nearest centre in units of its (at least vertex-spacing-sized) radius.
    let best: PatchSpec | null = null, bestR = Infinity;
    for (const p of PATCHES) {
      const r = Math.max(1.3 * p.radius, 0.8 * spacing);
      const q = Math.hypot(u - p.u, v - p.v) / r;
      if (q <= 1 && q < bestR) { best = p; bestR = q; }
    }
    if (early) {
      const ecc = 0.05 + 1.15 * Math.pow(d / EARLY_RADIUS, 1.6);
      const a = (early.alpha * Math.PI) / 180;
      roi.push(early.roi);
      prfX[k] = vfSign * ecc * Math.cos(a) + 0.01 * rng.normal();
      prfY[k] = ecc * Math.sin(a) + 0.01 * rng.normal();
      prfSigma[k] = (0.04 + 0.12 * ecc) * early.sizeFactor;
      depth.push(early.roi === 'hV4' ? 'mid' : 'early');
      scale.push('local');
      ncsnr[k] = early.roi === 'hV4' ? rng.uniform(0.4, 0.8) : rng.uniform(0.5, 1.0);
      for (let c = 0; c < 6; c++) tuning[k * 6 + c] = early.roi === 'hV4' ? rng.uniform(0, 0.2) : 0;
    } else if (best) {
      roi.push(best.name);
      depth.push(best.depth);
      scale.push(best.scale);
      ncsnr[k] = rng.uniform(0.45, 0.9);
      const pref = CATEGORIES.indexOf(best.category);
      for (let c = 0; c < 6; c++) tuning[k * 6 + c] = rng.uniform(0, 0.1);
      tuning[k * 6 + pref] = 0.6 + 0.4 * Math.exp(-0.5 * bestR * bestR * 4);
      if (best.category === 'bodies') tuning[k * 6 + 0] = 0.25; // bodies patches answer faces a little, as in real floc
      if (best.scale === 'local') {
        const ecc = rng.uniform(0.1, 0.7), a = rng.uniform(-Math.PI / 2, Math.PI / 2);
        prfX[k] = vfSign * ecc * Math.cos(a);
        prfY[k] = ecc * Math.sin(a);
        prfSigma[k] = rng.uniform(0.3, 0.6);
      }
    } else {
      roi.push('other');
      const isLate = rng.next() < 0.5;
      depth.push(isLate ? 'late' : 'mid');
      scale.push(isLate ? 'global' : 'local');
      ncsnr[k] = rng.uniform(0.05, 0.3);
      for (let c = 0; c < 6; c++) tuning[k * 6 + c] = rng.uniform(0, 0.3);
      if (!isLate) {
        const ecc = rng.uniform(0.1, 0.9), a = rng.uniform(-Math.PI / 2, Math.PI / 2);
        prfX[k] = vfSign * ecc * Math.cos(a);
        prfY[k] = ecc * Math.sin(a);
        prfSigma[k] = rng.uniform(0.2, 0.6);
      }
    }
  }
  return { hemi, fsIndex, roi, stream, prfX, prfY, prfSigma, depth, scale, ncsnr, tuning, flat };
}

/** Label array (values index into ROI_FILES[file]) for one ROI file over the challenge vertices. [N] */
export function roiLabels(h: HemisphereTruth, file: string): Int32Array {
  const names = ROI_FILES[file];
  if (!names) throw new RangeError(`roiLabels: unknown ROI file '${file}'; known: ${Object.keys(ROI_FILES).join(', ')}`);
  const src = file === 'streams' ? h.stream : h.roi;
  const out = new Int32Array(src.length);
  for (let k = 0; k < src.length; k++) {
    const j = names.indexOf(src[k]!);
    out[k] = j > 0 ? j : 0;
  }
  return out;
}
