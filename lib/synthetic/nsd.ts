/**
 * Writes a synthetic subject in the Natural Scenes Dataset (NSD) layout: func1pt8mm-like volumes,
 * int16 betas per session (×300, 750 trials), the experiment design, the stimulus info CSV, the
 * image brick and the ROI volumes, under NSD's own relative paths (see `NSD_PATHS`), plus ground
 * truth. The responses come from the same world as the Algonauts layout (world.ts: cortex, stimuli,
 * read-out; responses.ts: the noise model), so the two layouts agree on what each brain region does.
 *
 * Volume. The brain is two half-ellipsoids (one per hemisphere) inside the grid; the cortex is the
 * outer shell of each (normalised radius 0.7..1). Each cortex voxel gets a direction on its
 * hemisphere's unit sphere: the unit vector from the hemisphere's centre to the voxel, in RAS
 * (x right, y anterior, z up), so the occipital pole is -y and the lh's medial side faces +x, the
 * frame `poleCoords` uses. Voxels whose direction lies within the challenge region (angular
 * distance from the pole no larger than the farthest challenge vertex) are "visual" (nsdgeneral 1)
 * and take the ROI, ncsnr and responses of the nearest challenge vertex of the working
 * icosahedron; other cortex voxels are nsdgeneral 0 and hold noise only (ncsnr 0).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeNifti } from '../io/nifti.js';
import { writeMat } from '../io/mat.js';
import { openHdf5 } from '../io/hdf5.js';
import { writeNpy } from '../io/npy.js';
import { writeFileAtomic } from '../io/atomic.js';
import { withSubjectFolder } from './subject-folder.js';
import { CATEGORIES, makeCortex, poleCoords, type Cortex, type HemisphereTruth } from './cortex.js';
import { ROI_FILES, type Hemi } from '../data/rois.js';
import { NSD, nsdBetaName, nsdPaths } from '../data/nsd-layout.js';
import { ico } from './ico.js';
import { Rng, subSeed } from '../core/rng.js';
import { noiseCeiling, repeatCounts, trialNoiseSd, unitVarianceScale } from './responses.js';
import type { SubjectSize } from './subject.js';
import { CALIBRATION_IMAGES, drawWorldStimuli, makeWorldV3, repeatTally, worldSignal, type WorldStimuli, type WorldVersion } from './world.js';
import type { SyntheticWorld } from './world-v3.js';
import { meshSmoother, smoothOnMesh, type MeshSmoother } from './noise.js';
import type { BuiltinBackboneName } from '../backbones/nsfwjs.js';

const HEMI_LIST: Hemi[] = ['lh', 'rh'];
import { stageClock, type StageClock, type SubjectProgress } from './stage-clock.js';

/** The NSD-layout sizes: grid [X, Y, Z], sessions written, icosahedron order of the world. */
export const NSD_SIZES: Record<SubjectSize, { grid: [number, number, number]; sessions: number; order: number }> = {
  tiny: { grid: [20, 24, 20], sessions: 2, order: 4 },
  workshop: { grid: [40, 52, 42], sessions: 4, order: 5 },
  full: { grid: [81, 104, 83], sessions: 40, order: 6 },
};

/** Options of `makeNsdSubject`. */
export interface MakeNsdSubjectOptions {
  size: SubjectSize;
  seed: number;
  out: string;
  /** Override the number of sessions written (1..40). */
  sessions?: number;
  /** Side of the brick images (default 425, NSD's); tests use a smaller one. */
  imageSize?: number;
  /** gzip level of the betas (default 1: fast). */
  gzipLevel?: number;
  onProgress?: SubjectProgress;
  /** Replace a subject made in `out` with other settings (default false: refused, naming both). */
  overwrite?: boolean;
  /** Where notes go (lock taken over, leftovers of a killed run removed); default console.error. */
  log?: ((line: string) => void) | null;
  /** Which world makes the responses: 'v3' (default, from pixels) or 'v2'. */
  world?: WorldVersion;
  /** World v3's network (default 'inceptionv3'). */
  network?: BuiltinBackboneName;
}

/** What `makeNsdSubject` returns. */
export interface MakeNsdSubjectResult {
  dir: string;
  sessions: number;
  images: number;
  grid: [number, number, number];
  voxels: { brain: number; cortex: number; nsdgeneral: number };
  repeatCounts: { three: number; two: number; one: number };
  timings: Record<string, number>;
  peakRssMB: number;
}

/** HCP-MMP1 indices the synthetic parcellation gives real names (the rest are Voronoi parcels named `area<NNN>`). */
export const HCP_NAMED: Record<number, string> = { 1: 'V1', 4: 'V2', 5: 'V3', 6: 'V4', 18: 'FFC', 22: 'PIT', 23: 'MT' };
const HCP_OF_ROI: Record<string, number> = { V1v: 1, V1d: 1, V2v: 4, V2d: 4, V3v: 5, V3d: 5, hV4: 6, 'FFA-1': 18, 'FFA-2': 18, OFA: 22, EBA: 23 };

/** Name of HCP_MMP1 label 1..180 in the synthetic table. */
export function hcpName(label: number): string {
  return HCP_NAMED[label] ?? `area${String(label).padStart(3, '0')}`;
}

/** Geometry of the synthetic volume: per voxel hemisphere (0 none, 1 lh, 2 rh), in-brain flag, cortex flag and unit direction. Pure. */
export function nsdVolumeGeometry(grid: [number, number, number]): { hemi: Uint8Array; brain: Uint8Array; cortex: Uint8Array; dir: Float32Array } {
  const [X, Y, Z] = grid;
  const n = X * Y * Z;
  const hemi = new Uint8Array(n), brain = new Uint8Array(n), cortex = new Uint8Array(n), dir = new Float32Array(n * 3);
  const cx = (X - 1) / 2, cy = (Y - 1) / 2, cz = (Z - 1) / 2;
  const rx = 0.24 * X, ry = 0.45 * Y, rz = 0.42 * Z; // per-hemisphere radii
  for (let z = 0; z < Z; z++) for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) {
    const i = x + X * (y + Y * z);
    const lh = x < cx;
    const hx = lh ? cx - rx - 0.5 : cx + rx + 0.5; // hemisphere centres either side of the midline gap
    const px = (x - hx) / rx, py = (y - cy) / ry, pz = (z - cz) / rz;
    const r = Math.hypot(px, py, pz);
    if (r > 1) continue;
    brain[i] = 1;
    hemi[i] = lh ? 1 : 2;
    if (r >= 0.7) {
      cortex[i] = 1;
      const ux = x - hx, uy = y - cy, uz = z - cz, m = Math.hypot(ux, uy, uz) || 1;
      dir[i * 3] = ux / m; dir[i * 3 + 1] = uy / m; dir[i * 3 + 2] = uz / m;
    }
  }
  return { hemi, brain, cortex, dir };
}

/** Nearest of `points` (unit vectors [M, 3]) to each query direction, via a 3-D hash grid; -1 where none lies within `maxAngle` radians. */
export function nearestOnSphere(points: Float32Array, queries: Float32Array, maxAngle: number): Int32Array {
  const cell = 2 * Math.sin(maxAngle / 2) + 1e-6; // chord length of maxAngle
  const G = Math.max(1, Math.ceil(2 / cell));
  const key = (v: number) => Math.min(G - 1, Math.max(0, Math.floor(((v + 1) / 2) * G)));
  const buckets = new Map<number, number[]>();
  const m = points.length / 3;
  for (let j = 0; j < m; j++) {
    const k = key(points[j * 3]!) + G * (key(points[j * 3 + 1]!) + G * key(points[j * 3 + 2]!));
    let b = buckets.get(k);
    if (!b) buckets.set(k, (b = []));
    b.push(j);
  }
  const nq = queries.length / 3;
  const out = new Int32Array(nq).fill(-1);
  const minDot = Math.cos(maxAngle);
  for (let q = 0; q < nq; q++) {
    const x = queries[q * 3]!, y = queries[q * 3 + 1]!, z = queries[q * 3 + 2]!;
    const kx = key(x), ky = key(y), kz = key(z);
    let best = -1, bestDot = minDot;
    for (let a = Math.max(0, kx - 1); a <= Math.min(G - 1, kx + 1); a++)
      for (let b = Math.max(0, ky - 1); b <= Math.min(G - 1, ky + 1); b++)
        for (let c = Math.max(0, kz - 1); c <= Math.min(G - 1, kz + 1); c++) {
          const list = buckets.get(a + G * (b + G * c));
          if (!list) continue;
          for (const j of list) {
            const d = x * points[j * 3]! + y * points[j * 3 + 1]! + z * points[j * 3 + 2]!;
            if (d > bestDot) { bestDot = d; best = j; }
          }
        }
    out[q] = best;
  }
  return out;
}

/**
 * The NSD design: masterordering [30000] (1-based columns of subjectim), subjectim [8, 10000] (1-based
 * 73k ids, columns 1..1000 = sharedix), sharedix [1000]; the first `sessions`×750 trials show the
 * subject's first-used columns with repeat counts 3/2/1 (shares about 0.7/0.2/0.1, shifting to 3 as the sessions approach 40,
 * where every image is shown 3 times); over all 30000 trials every column appears 3 times. Pure.
 */
export function makeNsdDesign(sessions: number, seed: number): { masterordering: Int32Array; subjectim: Int32Array; sharedix: Int32Array; used: Int32Array; repeats: Uint8Array } {
  const rng = new Rng(subSeed(seed, 'nsd-design'));
  const ids = rng.shuffle(Array.from({ length: NSD.totalImages }, (_, i) => i + 1));
  const sharedix = Int32Array.from(ids.slice(0, NSD.shared)).sort();
  const subjectim = new Int32Array(NSD.subjects * NSD.imagesPerSubject);
  for (let s = 0; s < NSD.subjects; s++) {
    const own = ids.slice(NSD.shared + s * 9000, NSD.shared + (s + 1) * 9000);
    subjectim.set(sharedix, s * NSD.imagesPerSubject);
    subjectim.set(own, s * NSD.imagesPerSubject + NSD.shared);
  }
  const written = sessions * NSD.trialsPerSession;
  // repeat counts of the images shown in the written sessions, summing to exactly `written`
  const draws = repeatCounts(NSD.imagesPerSubject, new Rng(subSeed(seed, 'nsd-repeats')));
  const reps: number[] = [];
  let sum = 0;
  for (let k = 0; sum < written; k++) {
    if (k >= NSD.imagesPerSubject) throw new RangeError(`makeNsdDesign: ${sessions} sessions need more than ${NSD.imagesPerSubject} images`);
    // drawn count, but never more than the trials left, and never so few that the remaining images (3 each) cannot fill them
    const r = Math.max(Math.min(draws[k]!, written - sum), written - sum - 3 * (NSD.imagesPerSubject - k - 1));
    reps.push(r);
    sum += r;
  }
  const cols = rng.shuffle(Array.from({ length: NSD.imagesPerSubject }, (_, i) => i + 1));
  const used = Int32Array.from(cols.slice(0, reps.length));
  const first: number[] = [], rest: number[] = [];
  used.forEach((c, k) => { for (let t = 0; t < reps[k]!; t++) first.push(c); for (let t = reps[k]!; t < 3; t++) rest.push(c); });
  for (const c of cols.slice(reps.length)) rest.push(c, c, c);
  const masterordering = Int32Array.from([...rng.shuffle(first), ...rng.shuffle(rest)]);
  return { masterordering, subjectim, sharedix, used, repeats: Uint8Array.from(reps) };
}

/** Formats a cropBox as NSD's CSV does: `(top, bottom, left, right)` fractions. */
export function formatCropBox(b: [number, number, number, number]): string {
  return `(${b.map((v) => (v === 0 ? '0' : String(v))).join(', ')})`;
}

/** The nsd_stim_info_merged.csv text (73000 rows, nsdId 0-based, subjectN flags, subjectN_repM 1-based trial numbers or 0). Pure. */
export function nsdStimInfoCsv(design: { masterordering: Int32Array; subjectim: Int32Array; sharedix: Int32Array }, seed: number): string {
  const rng = new Rng(subSeed(seed, 'nsd-csv'));
  const N = NSD.totalImages;
  const subjOf = new Int8Array(N + 1).fill(-1); // for non-shared ids: which subject sees it
  const col = new Int32Array(N + 1).fill(-1); // column (0-based) of that id in its subject's subjectim row
  const shared = new Uint8Array(N + 1);
  for (const id of design.sharedix) shared[id] = 1;
  for (let s = 0; s < NSD.subjects; s++) for (let c = 0; c < NSD.imagesPerSubject; c++) {
    const id = design.subjectim[s * NSD.imagesPerSubject + c]!;
    col[id] = c;
    if (!shared[id]) subjOf[id] = s;
  }
  const trialsOfCol: number[][] = Array.from({ length: NSD.imagesPerSubject }, () => []);
  design.masterordering.forEach((c, t) => trialsOfCol[c - 1]!.push(t + 1));
  const head = ['', 'cocoId', 'cocoSplit', 'cropBox', 'loss', 'nsdId', 'flagged', 'BOLD5000', 'shared1000'];
  for (let s = 1; s <= 8; s++) head.push(`subject${s}`);
  for (let s = 1; s <= 8; s++) for (let r = 0; r < 3; r++) head.push(`subject${s}_rep${r}`);
  const lines = [head.join(',')];
  for (let id = 1; id <= N; id++) {
    const cut = Math.round(rng.uniform(0, 0.2) * 1e7) / 1e7;
    const box: [number, number, number, number] = rng.next() < 0.5 ? [0, 0, cut, cut] : [cut, cut, 0, 0];
    const row: (string | number)[] = [id - 1, 100000 + rng.int(0, 500000), rng.next() < 0.9 ? 'train2017' : 'val2017', `"${formatCropBox(box)}"`, 0, id - 1, 'False', rng.next() < 0.03 ? 'True' : 'False', shared[id] ? 'True' : 'False'];
    for (let s = 0; s < 8; s++) row.push(shared[id] || subjOf[id] === s ? 1 : 0);
    for (let s = 0; s < 8; s++) {
      const seen = shared[id] || subjOf[id] === s;
      const tr = seen ? trialsOfCol[col[id]!]! : [];
      for (let r = 0; r < 3; r++) row.push(tr[r] ?? 0);
    }
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

/** Generates a subject (subj01) in the NSD layout under `opts.out`, holding the folder's lock (see makeAlgonautsSubject: other settings refused, a rerun gives the same bytes). */
export async function makeNsdSubject(opts: MakeNsdSubjectOptions): Promise<MakeNsdSubjectResult> {
  const cfg = NSD_SIZES[opts.size];
  if (!cfg) throw new RangeError(`makeNsdSubject: size must be tiny, workshop or full, got '${opts.size}'`);
  const S = opts.sessions ?? cfg.sessions;
  if (!Number.isInteger(S) || S < 1 || S > 40) throw new RangeError(`makeNsdSubject: sessions must be an integer 1..40, got ${S}`);
  const imageSize = opts.imageSize ?? NSD.brickSize;
  const world = opts.world ?? 'v3';
  const settings = { layout: 'nsd', size: opts.size, seed: opts.seed, sessions: S, imageSize, gzipLevel: opts.gzipLevel ?? 1, world, network: world === 'v3' ? (opts.network ?? 'inceptionv3') : null };
  return withSubjectFolder(opts.out, settings, opts, (dir) => writeNsdSubject(dir, opts, S, imageSize));
}

/** makeNsdSubject's steps, in the locked and checked folder `dir`. */
async function writeNsdSubject(dir: string, opts: MakeNsdSubjectOptions, S: number, imageSize: number): Promise<MakeNsdSubjectResult> {
  const cfg = NSD_SIZES[opts.size];
  const P = nsdPaths(1);
  for (const d of [path.dirname(P.expdesign), path.dirname(P.brick), P.betas, P.roi, P.label, 'ground_truth']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const clock = stageClock(opts.onProgress);

  const version = opts.world ?? 'v3';
  if (version !== 'v2' && version !== 'v3') throw new RangeError(`makeNsdSubject: world must be 'v2' or 'v3', got '${String(version)}'`);
  // 1. world, volume, voxel -> vertex map
  const cortex = makeCortex({ order: cfg.order, seed: opts.seed });
  const volume = nsdVolume(cortex, cfg.grid, opts.seed);
  clock.end('volume');
  const world = version === 'v3' ? await makeWorldV3({ hemis: [cortex.lh, cortex.rh], seed: opts.seed, network: opts.network, calibrationImages: CALIBRATION_IMAGES[opts.size] }) : undefined;
  clock.end('world');

  // 2. design, stimuli (only the images shown in the written sessions), brick
  const design = makeNsdDesign(S, opts.seed);
  const shown = shownImages(design);
  let stimuli: WorldStimuli;
  try {
    stimuli = await writeNsdBrick({ file: path.join(dir, P.brick), shown, imageSize, seed: opts.seed, clock, world });
  } finally {
    await world?.dispose();
  }
  await writeNsdDesign(dir, design, opts.seed);
  clock.end('images');

  // 3. betas per session (v3: the ncsnr volume becomes the one estimated from the repeats)
  const drift = await writeNsdBetas({ dir, cortex, volume, stimuli, design, shown, sessions: S, seed: opts.seed, gzipLevel: opts.gzipLevel ?? 1, clock });
  clock.end('betas');

  // 4. ROI volumes, ncsnr, label tables
  await writeNsdRois(dir, volume);
  clock.end('rois');

  // 5. ground truth
  await writeNsdGroundTruth({ dir, seed: opts.seed, size: opts.size, cortex, volume, design, shown, stimuli, drift, sessions: S, imageSize });
  clock.end('ground_truth');
  let nGen = 0, nBrain = 0;
  for (let i = 0; i < volume.geo.brain.length; i++) { nGen += volume.general[i] === 1 ? 1 : 0; nBrain += volume.geo.brain[i]!; }
  return { dir, sessions: S, images: design.used.length, grid: cfg.grid, voxels: { brain: nBrain, cortex: volume.cortexIdx.length, nsdgeneral: nGen }, repeatCounts: repeatTally(design.repeats), ...clock.finish() };
}

/** The synthetic volume's labels [X·Y·Z] (flat index x + X·(y + Y·z)) and each visual voxel's challenge vertex. */
interface NsdVolume {
  grid: [number, number, number];
  geo: ReturnType<typeof nsdVolumeGeometry>;
  /** HCP_MMP1 label: 1..180 in cortex, 0 elsewhere. */
  hcp: Int16Array;
  /** nsdgeneral: 1 visual, 0 other brain, -1 outside. */
  general: Int16Array;
  /** ncsnr of the voxel's vertex, 0 outside nsdgeneral. */
  ncsnr: Float32Array;
  /** Per ROI file but streams: label, 0 in brain, -1 outside. */
  rois: Record<string, Int16Array>;
  /** The visual voxel's challenge vertex in its hemisphere (-1: none), and that hemisphere (1 lh, 2 rh). */
  vertex: Int32Array;
  vertexHemi: Uint8Array;
  /** Flat indices of the cortex voxels, ascending. [V] */
  cortexIdx: Int32Array;
  /** World v3: each vertex's ncsnr estimated from the repeats (set by the betas writer). */
  estimatedNcsnr?: Record<Hemi, Float32Array>;
}

/** Lays the world's cortex into the volume: maps each cortex voxel to its nearest challenge vertex and labels every voxel. */
function nsdVolume(cortex: Cortex, grid: [number, number, number], seed: number): NsdVolume {
  const nVox = grid[0] * grid[1] * grid[2];
  const geo = nsdVolumeGeometry(grid);
  const rois: Record<string, Int16Array> = {};
  for (const f of Object.keys(ROI_FILES)) if (f !== 'streams') rois[f] = new Int16Array(nVox).fill(-1);
  const vol: NsdVolume = {
    grid, geo, rois, hcp: new Int16Array(nVox), general: new Int16Array(nVox).fill(-1), ncsnr: new Float32Array(nVox),
    vertex: new Int32Array(nVox).fill(-1), vertexHemi: new Uint8Array(nVox), cortexIdx: new Int32Array(0),
  };
  const sphere = ico(cortex.order, 1).vertices;
  const seeds = voronoiSeeds(seed);
  for (const [hi, hemi] of [[1, 'lh'], [2, 'rh']] as const) labelHemisphere(vol, { hi, hemi, h: cortex[hemi], sphere, seeds });
  for (let i = 0; i < nVox; i++) if (geo.brain[i] && vol.general[i] === -1) { vol.general[i] = 0; for (const v of Object.values(rois)) v[i] = 0; }
  for (let i = 0; i < nVox; i++) if (!geo.brain[i]) vol.hcp[i] = 0;
  const cortexIdx: number[] = [];
  for (let i = 0; i < nVox; i++) if (geo.cortex[i]) cortexIdx.push(i);
  vol.cortexIdx = Int32Array.from(cortexIdx);
  return vol;
}

/** Labels one hemisphere's cortex voxels in `vol`: visual ones (within the challenge region) take their nearest challenge vertex, its ROI and ncsnr; all take an HCP label. */
function labelHemisphere(vol: NsdVolume, opts: { hi: 1 | 2; hemi: Hemi; h: HemisphereTruth; sphere: Float32Array; seeds: VoronoiSeed[] }): void {
  const { hi, hemi, h, sphere } = opts;
  const { geo } = vol;
  const idx: number[] = [];
  for (let i = 0; i < geo.hemi.length; i++) if (geo.cortex[i] && geo.hemi[i] === hi) idx.push(i);
  const q = new Float32Array(idx.length * 3);
  idx.forEach((i, k) => q.set(geo.dir.subarray(i * 3, i * 3 + 3), k * 3));
  const pts = new Float32Array(h.fsIndex.length * 3);
  h.fsIndex.forEach((v, k) => pts.set(sphere.subarray(v * 3, v * 3 + 3), k * 3));
  const spacing = Math.sqrt((4 * Math.PI) / (sphere.length / 3));
  const near = nearestOnSphere(pts, q, 1.5 * spacing);
  let dMax = 0;
  for (let k = 0; k < pts.length / 3; k++) dMax = Math.max(dMax, poleCoords(hemi, pts[k * 3]!, pts[k * 3 + 1]!, pts[k * 3 + 2]!).d);
  idx.forEach((i, k) => {
    const { d, phi } = poleCoords(hemi, q[k * 3]!, q[k * 3 + 1]!, q[k * 3 + 2]!);
    const j = d <= dMax ? near[k]! : -1;
    vol.hcp[i] = j >= 0 && HCP_OF_ROI[h.roi[j]!] ? HCP_OF_ROI[h.roi[j]!]! : voronoiLabel(opts.seeds, d, phi);
    vol.general[i] = j >= 0 ? 1 : 0;
    if (j >= 0) { vol.vertex[i] = j; vol.vertexHemi[i] = hi; vol.ncsnr[i] = h.ncsnr[j]!; }
    for (const [f, labels] of Object.entries(vol.rois)) {
      const lab = j >= 0 ? ROI_FILES[f]!.indexOf(h.roi[j]!) : -1;
      labels[i] = lab > 0 ? lab : 0;
    }
  });
}

/** The images the written sessions show, in ascending NSD id (the brick's row order): subjectim column, index in `design.used`, 1-based id; and the brick row of each column. */
interface ShownImages {
  order: Array<{ c: number; k: number; id: number }>;
  /** Brick row of subjectim column c (1-based), -1 when not shown. [10001] */
  rowOfCol: Int32Array;
}

/** The shown images of a design in brick order (subject 1's row of subjectim). Pure. */
function shownImages(design: ReturnType<typeof makeNsdDesign>): ShownImages {
  const order = Array.from(design.used).map((c, k) => ({ c, k, id: design.subjectim[c - 1]! })).sort((a, b) => a.id - b.id);
  const rowOfCol = new Int32Array(NSD.imagesPerSubject + 1).fill(-1);
  order.forEach((o, r) => (rowOfCol[o.c] = r));
  return { order, rowOfCol };
}

/** Draws the shown images and writes the brick (imgBrick [N, size, size, 3] uint8, nsdId [N]); the file is removed if a write fails. */
async function writeNsdBrick(opts: { file: string; shown: ShownImages; imageSize: number; seed: number; clock: StageClock; world?: SyntheticWorld }): Promise<WorldStimuli> {
  const { imageSize, shown } = opts;
  const nImg = shown.order.length;
  const brick = await openHdf5(opts.file, 'w');
  try {
    brick.createDataset('imgBrick', { shape: [nImg, imageSize, imageSize, 3], dtype: 'uint8', chunks: [1, imageSize, imageSize, 3], compression: 1 });
    const stimuli = await drawWorldStimuli({
      rng: new Rng(subSeed(opts.seed, 'nsd-stimuli')), count: nImg, imageSize,
      write: (r, image) => brick.writeRows('imgBrick', r, { dtype: 'uint8', shape: [1, imageSize, imageSize, 3], data: image.rgb }),
      onProgress: (done, total) => opts.clock.progress('images', done, total),
      world: opts.world,
    });
    brick.writeDataset('nsdId', { dtype: 'int32', shape: [nImg], data: Int32Array.from(shown.order, (o) => o.id) });
    brick.setAttr('/', 'description', 'Synthetic NSD brick: row r holds the image with 1-based NSD id nsdId[r] (ascending); the real brick has 73000 rows, row = nsdId - 1.');
    brick.close();
    return stimuli;
  } catch (e) { brick.abort(); throw e; }
}

/** Writes the experiment design (nsd_expdesign.mat) and the stimulus info CSV. */
async function writeNsdDesign(dir: string, design: ReturnType<typeof makeNsdDesign>, seed: number): Promise<void> {
  const P = nsdPaths(1);
  await writeMat(path.join(dir, P.expdesign), {
    masterordering: { dtype: 'float64', shape: [1, NSD.designTrials], data: Float64Array.from(design.masterordering) },
    subjectim: { dtype: 'float64', shape: [NSD.subjects, NSD.imagesPerSubject], data: Float64Array.from(design.subjectim) },
    sharedix: { dtype: 'float64', shape: [1, NSD.shared], data: Float64Array.from(design.sharedix) },
  });
  await writeFileAtomic(path.join(dir, P.stiminfo), nsdStimInfoCsv(design, seed));
}

/** Per cortex voxel: baseline [V], and per session gain and offset [S, V] (ground truth of the betas' drift). */
interface NsdDrift { base: Float32Array; gains: Float32Array; offsets: Float32Array }

/**
 * Writes the betas of each session: z = (signal + noise) * unit (single-trial sd 1), psc = base + gain_s * (z + offset_s),
 * int16 = round(psc * 300); non-visual cortex voxels hold z ~ N(0, 1). Returns the drift it drew.
 */
async function writeNsdBetas(opts: {
  dir: string; cortex: Cortex; volume: NsdVolume; stimuli: WorldStimuli; design: ReturnType<typeof makeNsdDesign>; shown: ShownImages;
  sessions: number; seed: number; gzipLevel: number; clock: StageClock;
}): Promise<NsdDrift> {
  const { cortex, volume, sessions: S } = opts;
  const [X, Y, Z] = volume.grid;
  const signal = { lh: worldSignal(cortex.lh, opts.stimuli), rh: worldSignal(cortex.rh, opts.stimuli) };
  const nR = new Rng(subSeed(opts.seed, 'nsd-noise'));
  const dR = new Rng(subSeed(opts.seed, 'nsd-drift'));
  const nCortex = volume.cortexIdx.length;
  const drift: NsdDrift = { base: Float32Array.from({ length: nCortex }, () => dR.normal() * 0.5), gains: new Float32Array(S * nCortex), offsets: new Float32Array(S * nCortex) };
  const noise = voxelNoise(volume, cortex);
  const T = NSD.trialsPerSession;
  const vol = new Int16Array(T * X * Y * Z);
  const v3 = opts.stimuli.signal ? v3TrialNoise(cortex, opts.shown, opts.design, opts.seed) : undefined;
  for (let s = 0; s < S; s++) {
    const sGain = dR.uniform(0.6, 1.6), sOff = dR.normal();
    for (let k = 0; k < nCortex; k++) { drift.gains[s * nCortex + k] = sGain * dR.uniform(0.8, 1.25); drift.offsets[s * nCortex + k] = sOff + 0.5 * dR.normal(); }
    const session = { gain: drift.gains.subarray(s * nCortex, (s + 1) * nCortex), offset: drift.offsets.subarray(s * nCortex, (s + 1) * nCortex) };
    const rows = Array.from({ length: T }, (_, t) => opts.shown.rowOfCol[opts.design.masterordering[s * T + t]!]!);
    sessionBetas(vol, { volume, noise, signal, nVertices: { lh: cortex.lh.roi.length, rh: cortex.rh.roi.length }, rows, base: drift.base, ...session, rng: nR, v3 });
    await writeNifti(path.join(opts.dir, nsdPaths(1).betas, nsdBetaName(s + 1)), { dtype: 'int16', shape: [T, Z, Y, X], data: vol }, { affine: AFFINE(volume.grid), gzipLevel: opts.gzipLevel, descrip: 'synthetic NSD betas: int16 = percent signal change x 300' });
    opts.clock.progress('betas', s + 1, S);
    opts.clock.sample();
  }
  if (v3) {
    // the ncsnr volume: each visual voxel takes its vertex's ncsnr estimated from the repeats
    const est = { lh: v3.acc.lh.ncsnr(), rh: v3.acc.rh.ncsnr() };
    for (let i = 0; i < volume.vertex.length; i++) if (volume.vertex[i]! >= 0) volume.ncsnr[i] = est[volume.vertexHemi[i] === 1 ? 'lh' : 'rh'][volume.vertex[i]!]!;
    volume.estimatedNcsnr = est;
  }
  return drift;
}

/** World v3's trial noise in the NSD layout: per hemisphere the mesh smoother, the shared-signal loadings, and the ncsnr accumulators (by image row). */
interface V3TrialNoise {
  smoother: Record<Hemi, MeshSmoother>;
  loading: Record<Hemi, Float32Array>;
  acc: Record<Hemi, RowNcsnr>;
  /** The generating ncsnr per vertex. */
  ncsnr: Record<Hemi, Float32Array>;
  /** Trials of each brick row within the written sessions. */
  repeatsOfRow: Uint8Array;
}

function v3TrialNoise(cortex: Cortex, shown: ShownImages, design: ReturnType<typeof makeNsdDesign>, seed: number): V3TrialNoise {
  const repeatsOfRow = Uint8Array.from(shown.order, (o) => design.repeats[o.k]!);
  const per = (f: (hemi: Hemi) => unknown) => ({ lh: f('lh'), rh: f('rh') });
  return {
    smoother: per((h) => meshSmoother(cortex[h], cortex.order)) as Record<Hemi, MeshSmoother>,
    loading: per((h) => { const r = new Rng(subSeed(seed, `nsd-shared-loading-${h}`)); return Float32Array.from(cortex[h].roi, () => r.uniform(0.2, 0.6)); }) as Record<Hemi, Float32Array>,
    acc: per((h) => new RowNcsnr(cortex[h].roi.length, repeatsOfRow)) as Record<Hemi, RowNcsnr>,
    ncsnr: { lh: cortex.lh.ncsnr, rh: cortex.rh.ncsnr },
    repeatsOfRow,
  };
}

/** NSD's ncsnr from trials that arrive one at a time (image row, values [N]); the repeats per row are known in advance. */
class RowNcsnr {
  private sums: Float64Array;
  private a: Float64Array;
  private sum: Float64Array;
  private sq: Float64Array;
  private trials = 0;
  constructor(readonly n: number, private readonly repeats: Uint8Array) {
    this.sums = new Float64Array(repeats.length * n);
    this.a = new Float64Array(n);
    this.sum = new Float64Array(n);
    this.sq = new Float64Array(n);
  }
  add(row: number, y: Float64Array): void {
    const r = this.repeats[row]!;
    this.trials++;
    for (let k = 0; k < this.n; k++) {
      const v = y[k]!;
      this.sum[k]! += v;
      this.sq[k]! += v * v;
      if (r >= 2) { this.a[k]! += (v * v) / (r - 1); this.sums[row * this.n + k]! += v; }
    }
  }
  /** σ_noise² = mean over images (r >= 2) of their within-image variance; σ_signal² = max(0, var − σ_noise²); ncsnr = σ_signal / σ_noise. */
  ncsnr(): Float32Array {
    let m = 0;
    const b = new Float64Array(this.n);
    this.repeats.forEach((r, row) => { if (r < 2) return; m++; for (let k = 0; k < this.n; k++) b[k]! += this.sums[row * this.n + k]! ** 2 / (r * (r - 1)); });
    return Float32Array.from({ length: this.n }, (_, k) => {
      const noise = (this.a[k]! - b[k]!) / Math.max(1, m);
      const mean = this.sum[k]! / this.trials, total = this.sq[k]! / this.trials - mean * mean;
      return noise > 0 ? Math.sqrt(Math.max(0, total - noise) / noise) : NaN;
    });
  }
}

/** Per cortex voxel (in `cortexIdx` order): its vertex (-1: non-visual) and hemisphere (1 lh, 2 rh), single-trial noise sd and unit-variance factor. */
function voxelNoise(volume: NsdVolume, cortex: Cortex): { vert: Int32Array; hemi: Uint8Array; sd: Float64Array; unit: Float64Array } {
  const nCortex = volume.cortexIdx.length;
  const out = { vert: new Int32Array(nCortex), hemi: new Uint8Array(nCortex), sd: new Float64Array(nCortex), unit: new Float64Array(nCortex) };
  for (let k = 0; k < nCortex; k++) {
    const i = volume.cortexIdx[k]!, j = volume.vertex[i]!;
    out.vert[k] = j;
    out.hemi[k] = volume.vertexHemi[i]!;
    const sd = j >= 0 ? trialNoiseSd((volume.vertexHemi[i] === 1 ? cortex.lh : cortex.rh).ncsnr[j]!) : 0;
    out.sd[k] = sd;
    out.unit[k] = unitVarianceScale(sd);
  }
  return out;
}

/** Fills `vol` [T, X·Y·Z] with one session's int16 betas: trial t shows brick row rows[t]; `rng` draws the trial noise in trial, then voxel order. */
function sessionBetas(vol: Int16Array, o: {
  volume: NsdVolume; noise: ReturnType<typeof voxelNoise>; signal: Record<Hemi, Float32Array>; nVertices: Record<Hemi, number>;
  rows: number[]; base: Float32Array; gain: Float32Array; offset: Float32Array; rng: Rng; v3?: V3TrialNoise;
}): void {
  const { cortexIdx } = o.volume;
  const { vert, hemi, sd, unit } = o.noise;
  const nVox = vol.length / o.rows.length, nL = o.nVertices.lh, nRh = o.nVertices.rh;
  vol.fill(0);
  const vn = o.v3 && { lh: new Float64Array(nL), rh: new Float64Array(nRh) };
  const white = o.v3 && { lh: new Float64Array(nL), rh: new Float64Array(nRh) };
  o.rows.forEach((row, t) => {
    const sigL = o.signal.lh.subarray(row * nL, (row + 1) * nL), sigR = o.signal.rh.subarray(row * nRh, (row + 1) * nRh);
    const base0 = t * nVox;
    // world v3: this trial's noise per vertex, smoothed on the mesh, plus the signal shared by every vertex; the vertex-level trial feeds the ncsnr estimate
    let g = 0;
    if (o.v3 && vn && white) {
      g = o.rng.normal();
      for (const h of HEMI_LIST) {
        for (let k = 0; k < white[h].length; k++) white[h][k] = o.rng.normal();
        smoothOnMesh(o.v3.smoother[h], white[h], vn[h]);
        const sig = h === 'lh' ? sigL : sigR, ld = o.v3.loading[h], ncs = o.v3.ncsnr[h];
        const y = new Float64Array(vn[h].length);
        for (let k = 0; k < y.length; k++) { const s = 1 / Math.max(1e-3, ncs[k]!); y[k] = (sig[k]! + (s * (vn[h][k]! + ld[k]! * g)) / Math.sqrt(1 + ld[k]! ** 2)) / Math.sqrt(1 + s * s); }
        o.v3.acc[h].add(row, y);
      }
    }
    for (let k = 0; k < cortexIdx.length; k++) {
      const j = vert[k]!;
      const h = hemi[k] === 1 ? 'lh' : 'rh';
      const z = j < 0 ? o.rng.normal()
        : o.v3 && vn ? ((h === 'lh' ? sigL[j]! : sigR[j]!) + (sd[k]! * (0.8 * vn[h][j]! + 0.6 * o.rng.normal() + o.v3.loading[h][j]! * g)) / Math.sqrt(1 + o.v3.loading[h][j]! ** 2)) * unit[k]!
        : ((h === 'lh' ? sigL[j]! : sigR[j]!) + sd[k]! * o.rng.normal()) * unit[k]!;
      const v = Math.round((o.base[k]! + o.gain[k]! * (z + o.offset[k]!)) * NSD.betaScale);
      vol[base0 + cortexIdx[k]!] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
  });
}

/** Writes the ROI volumes (HCP_MMP1, nsdgeneral, one per ROI file), the ncsnr volume and each volume's label table. */
async function writeNsdRois(dir: string, volume: NsdVolume): Promise<void> {
  const P = nsdPaths(1);
  const [X, Y, Z] = volume.grid;
  const aff = AFFINE(volume.grid);
  const v3 = (data: Int16Array | Float32Array) => ({ dtype: data instanceof Float32Array ? 'float32' as const : 'int16' as const, shape: [Z, Y, X], data });
  await writeNifti(path.join(dir, P.ncsnr), v3(volume.ncsnr), { affine: aff });
  await writeNifti(path.join(dir, P.roi, 'HCP_MMP1.nii.gz'), v3(volume.hcp), { affine: aff });
  await writeNifti(path.join(dir, P.roi, 'nsdgeneral.nii.gz'), v3(volume.general), { affine: aff });
  for (const [f, v] of Object.entries(volume.rois)) await writeNifti(path.join(dir, P.roi, `${f}.nii.gz`), v3(v), { affine: aff });
  const ctab = (names: string[]) => names.map((n, j) => `${String(j).padStart(3)}  ${n.padEnd(16)} ${(j * 37) % 256} ${(j * 91) % 256} ${(j * 53) % 256} 0`).join('\n') + '\n';
  await writeFileAtomic(path.join(dir, P.label, 'HCP_MMP1.mgz.ctab'), ctab(['Unknown', ...Array.from({ length: 180 }, (_, j) => hcpName(j + 1))]));
  await writeFileAtomic(path.join(dir, P.label, 'nsdgeneral.mgz.ctab'), ctab(['Unknown', 'nsdgeneral']));
  for (const f of Object.keys(volume.rois)) await writeFileAtomic(path.join(dir, P.label, `${f}.mgz.ctab`), ctab(ROI_FILES[f]!));
}

/** Writes ground_truth/ (drift arrays, voxel -> vertex volume, truth.json, README.md) and the subject's README.md. */
async function writeNsdGroundTruth(opts: {
  dir: string; seed: number; size: SubjectSize; cortex: Cortex; volume: NsdVolume; design: ReturnType<typeof makeNsdDesign>; shown: ShownImages;
  stimuli: WorldStimuli; drift: NsdDrift; sessions: number; imageSize: number;
}): Promise<void> {
  const { dir, cortex, volume, design, drift } = opts;
  const gt = (name: string) => path.join(dir, 'ground_truth', name);
  const [X, Y, Z] = volume.grid;
  const nCortex = volume.cortexIdx.length, S = opts.sessions;
  await writeNpy(gt('cortex_voxels.npy'), { dtype: 'int32', shape: [nCortex], data: volume.cortexIdx });
  await writeNpy(gt('session_gain.npy'), { dtype: 'float32', shape: [S, nCortex], data: drift.gains });
  await writeNpy(gt('session_offset.npy'), { dtype: 'float32', shape: [S, nCortex], data: drift.offsets });
  await writeNpy(gt('baseline.npy'), { dtype: 'float32', shape: [nCortex], data: drift.base });
  const vv = new Int32Array(volume.vertex.length).fill(-1);
  for (let i = 0; i < vv.length; i++) if (volume.vertex[i]! >= 0) vv[i] = volume.vertex[i]! + (volume.vertexHemi[i] === 2 ? 1 << 20 : 0);
  await writeNifti(gt('voxel_vertex.nii.gz'), { dtype: 'int32', shape: [Z, Y, X], data: vv }, { affine: AFFINE(volume.grid) });
  const est = volume.estimatedNcsnr;
  const hemiJson = (h: HemisphereTruth) => {
    const ncsnr = est ? est[h.hemi] : h.ncsnr;
    return { fsIndex: Array.from(h.fsIndex), roi: h.roi, depth: h.depth, scale: h.scale, ncsnr: Array.from(ncsnr, rnd), noiseCeiling: Array.from(ncsnr, (v) => rnd(noiseCeiling(v, design.repeats))), ...(est ? { ncsnrTrue: Array.from(h.ncsnr, rnd) } : {}) };
  };
  const { specs } = opts.stimuli, { rowOfCol } = opts.shown;
  await writeFileAtomic(gt('truth.json'), JSON.stringify({
    version: 1, world: est ? 3 : 2, layout: 'nsd', seed: opts.seed, size: opts.size, icoOrder: cortex.order, grid: volume.grid, sessions: S, trialsPerSession: NSD.trialsPerSession, betaScale: NSD.betaScale,
    categories: CATEGORIES, repeatCounts: repeatTally(design.repeats),
    images: opts.shown.order.map((o) => ({ nsdId: o.id, column: o.c, repeats: design.repeats[o.k], labels: CATEGORIES.filter((_, c) => specs[rowOfCol[o.c]!]!.labels[c]) })),
    lh: hemiJson(cortex.lh), rh: hemiJson(cortex.rh),
  }));
  await writeFileAtomic(gt('README.md'), README(S, volume.grid, opts.imageSize));
  await writeFileAtomic(path.join(dir, 'README.md'), README(S, volume.grid, opts.imageSize));
}

const rnd = (v: number) => Math.round(v * 1e4) / 1e4;

/** func1pt8mm-like affine: 1.8 mm voxels, RAS, origin at the grid centre. */
function AFFINE(grid: [number, number, number]): number[][] {
  const v = 1.8;
  return [[v, 0, 0, (-v * (grid[0] - 1)) / 2], [0, v, 0, (-v * (grid[1] - 1)) / 2], [0, 0, v, (-v * (grid[2] - 1)) / 2], [0, 0, 0, 1]];
}

/** A parcel seed: unit vector and HCP_MMP1 label. */
type VoronoiSeed = { x: number; y: number; z: number; label: number };

/** Parcel seeds (unit vectors in the hemisphere's (d, phi) frame) for the HCP_MMP1 labels not tied to a world area. */
function voronoiSeeds(seed: number): VoronoiSeed[] {
  const rng = new Rng(subSeed(seed, 'nsd-hcp'));
  const tied = new Set(Object.values(HCP_OF_ROI));
  const out: VoronoiSeed[] = [];
  for (let label = 1; label <= 180; label++) {
    if (tied.has(label)) continue;
    const u = rng.uniform(-1, 1), t = rng.uniform(0, 2 * Math.PI), s = Math.sqrt(1 - u * u);
    out.push({ x: s * Math.cos(t), y: s * Math.sin(t), z: u, label });
  }
  return out;
}

/** The Voronoi parcel of the point at (d, phi) degrees. */
function voronoiLabel(seeds: VoronoiSeed[], d: number, phi: number): number {
  const dr = (d * Math.PI) / 180, pr = (phi * Math.PI) / 180;
  const x = Math.sin(dr) * Math.cos(pr), y = Math.sin(dr) * Math.sin(pr), z = Math.cos(dr);
  let best = 0, bd = -Infinity;
  for (const s of seeds) { const v = s.x * x + s.y * y + s.z * z; if (v > bd) { bd = v; best = s.label; } }
  return best;
}

const README = (S: number, grid: [number, number, number], imageSize: number) => `# Synthetic NSD subject (subj01)

Written by brainnet's make-subject (\`--layout nsd\`). Everything is synthetic and known by construction.
Paths follow the NSD release:

- \`nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_sessionNN.nii.gz\`: ${S} session(s)
  (real subj01 has 40), int16 [X, Y, Z, 750] = ${grid.join(' x ')} x 750, percent signal change x 300
  (divide by 300; scl_slope is 1). Each session has its own per-voxel gain and offset, so z-score each voxel
  within each session before averaging an image's repeats. Only cortex voxels hold betas; others are 0.
- \`.../betas_fithrf_GLMdenoise_RR/ncsnr.nii.gz\`: float32 noise-ceiling SNR (0 outside nsdgeneral).
- \`nsddata/experiments/nsd/nsd_expdesign.mat\`: masterordering [1, 30000] (trial -> 1-based column of
  subjectim), subjectim [8, 10000] (1-based NSD ids 1..73000; columns 1..1000 are sharedix), sharedix [1, 1000].
  Trial t of session s (both 1-based) is masterordering((s-1)*750 + t). The written sessions show each of
  their images 3, 2 or 1 times (shares about 0.7 / 0.2 / 0.1); over all 30000 trials every column appears 3 times.
- \`nsddata/experiments/nsd/nsd_stim_info_merged.csv\`: 73000 rows; first column the 0-based row index,
  nsdId 0-based (= 73k id - 1), cropBox "(top, bottom, left, right)" fractions, shared1000, subject1..8 flags,
  subjectN_repM = 1-based trial number of the M-th showing in the 30000-trial design (0 when not shown).
- \`nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5\`: \`imgBrick\` uint8 [N, ${imageSize}, ${imageSize}, 3] holding only the N images
  shown in the written sessions, in ascending NSD id; \`nsdId\` int32 [N] gives each row's 1-based NSD id (the
  real brick has all 73000 rows, row = nsdId - 1, and no \`nsdId\` dataset).
- \`nsddata/ppdata/subj01/func1pt8mm/roi/\`: int16 volumes [X, Y, Z]. \`nsdgeneral\`: 1 visual cortex, 0 other
  brain, -1 outside the brain. \`prf-visualrois\`, \`floc-faces\`, \`floc-bodies\`, \`floc-places\`, \`floc-words\`:
  labels as the Algonauts tables (\`nsddata/freesurfer/subj01/label/<name>.mgz.ctab\`), 0 in brain, -1 outside.
  \`HCP_MMP1\`: 1..180 in cortex, 0 elsewhere; only V1 (1), V2 (4), V3 (5), V4 (6), FFC (18), PIT (22) and MT (23)
  follow the world's areas, the other labels are Voronoi parcels (names in HCP_MMP1.mgz.ctab are synthetic).

## Volume and world
The brain is two half-ellipsoids; cortex is their outer shell (normalised radius 0.7..1). A cortex voxel's
direction from its hemisphere's centre (RAS: -y is the occipital pole, the lh's medial side faces +x) is
matched to the nearest challenge vertex of the working icosahedron (within 1.5 vertex spacings and within the
challenge region); such voxels are nsdgeneral 1 and take that vertex's ROI, ncsnr and responses.

## Betas
World v3 (default): signal = the vertex's noiseless response to the image's pixels (lib/synthetic/world-v3.ts);
z = (signal + σ (0.8 m + 0.6 e + ℓ g) / sqrt(1 + ℓ²)) / sqrt(1 + σ²), σ = 1/ncsnr, m the trial's noise smoothed on the
mesh (6 mm FWHM, shared by the voxels of a vertex and its neighbours), e independent per voxel, g a signal shared by all
vertices in that trial with loading ℓ; the ncsnr volume is estimated from the repeats (NSD's formula), truth.json keeps
the generating value as ncsnrTrue. World v2: z = (signal + e) / sqrt(1 + 1/ncsnr^2), e ~ N(0, 1/ncsnr^2), signal the
Algonauts model's. Non-visual cortex: z ~ N(0, 1). Stored: round(300 * (baseline + gain_s * (z + offset_s))).

## ground_truth/
- \`truth.json\`: seed, size, grid, sessions, repeat counts, per image (nsdId, subjectim column, repeats, labels),
  per hemisphere the vertices' fsIndex, roi, depth, scale, ncsnr and Algonauts noise ceiling.
- \`voxel_vertex.nii.gz\`: int32 [X, Y, Z], -1 or the voxel's challenge vertex (lh: k, rh: k + 2^20).
- \`cortex_voxels.npy\` [V] (flat index x + X*(y + Y*z)), \`baseline.npy\` [V], \`session_gain.npy\` and \`session_offset.npy\` [S, V].
`;
