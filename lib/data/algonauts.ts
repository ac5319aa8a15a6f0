/**
 * Loader for an Algonauts 2023 subject (the real release or a synthetic one: same layout).
 *
 * Layout read (real names):
 *   training_split/training_fmri/{lh,rh}_training_fmri.npy   float32 [images, challenge vertices]
 *   training_split/training_images/*.png                      sorted order = row order
 *   test_split/test_images/*.png
 *   roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy        [163842], 1 = challenge vertex
 *   roi_masks/{lh,rh}.<file>_{challenge,fsaverage}_space.npy  label per vertex
 *   roi_masks/mapping_<file>.npy                              pickled dicts in the real release:
 *     never unpickled here; the labels come from mapping_<file>.json when present (synthetic
 *     subjects) or else from the published Algonauts tables (ALGONAUTS_ROI_LABELS).
 * Vertex coordinates come from an fsaverage sphere (FreeSurfer binary or GIFTI), by default
 * `surfaces/{lh,rh}.sphere` inside the subject (synthetic subjects) or the paths given.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileFormatError } from '../io/errors.js';
import { checkInputFile } from '../io/input.js';
import { openNpy, readNpy, readNpyHeader } from '../io/npy.js';
import { readImage, type RgbImage } from '../io/image.js';
import { readGiftiSurface } from '../io/gifti.js';
import { readFreesurferSurface } from '../io/freesurfer.js';
import { toFloat32, type NDArray } from '../io/ndarray.js';
import { ALGONAUTS_ROI_LABELS, FSAVERAGE_N, type Hemi } from './rois.js';
import { Rng } from '../core/rng.js';

/**
 * What to do with NaN or Inf in the training fMRI. The damage comes in three shapes, told apart and reported
 * separately: a row that is non-finite in every vertex is a missing image, a column that is non-finite in every
 * image a dead vertex, and the rest are scattered values.
 * - 'error' (default): throw, saying which shapes were found and which policy fits them;
 * - 'drop': match the damage: leave out the images of the all-NaN rows (from both hemispheres), then the vertices
 *   that still hold a non-finite value (the dead ones and those with scattered values);
 * - 'drop-images': leave out every image whose row holds a non-finite value in either hemisphere;
 * - 'drop-vertices': leave out every vertex whose column holds a non-finite value;
 * - 'zero': replace every non-finite value with 0 (the report counts the values, images and vertices touched).
 * A policy that would drop more than `maxDropFraction` of a hemisphere's vertices, or of the images, is an error.
 */
export type NanPolicy = 'error' | 'zero' | 'drop' | 'drop-images' | 'drop-vertices';

/** What the NaN/Inf check found in one hemisphere's training fMRI [images, vertices], and what the policy did there. */
export interface HemiNanReport {
  /** Non-finite values found. */
  count: number;
  /** Rows non-finite in every vertex (missing images). */
  emptyRows: number;
  /** Columns non-finite in every image (dead vertices). */
  emptyColumns: number;
  /** Non-finite values outside those rows and columns (scattered), and the columns that hold them. */
  scattered: number;
  scatteredVertices: number;
  /** Rows (images) that hold at least one non-finite value. */
  images: number;
  /** Columns (vertices) that hold at least one non-finite value. */
  vertices: number;
  /** The first few (row, column) places, rows as in the file. */
  first: [number, number][];
  /** Vertices the policy left out of this hemisphere. */
  droppedVertices: number;
  /** Values the policy set to 0 ('zero'). */
  zeroed: number;
}

/** What the NaN/Inf policy found and did at load (memory mode; stream mode checks each read instead). */
export interface NanReport extends Record<Hemi, HemiNanReport> {
  policy: NanPolicy;
  /** Rows of the fMRI files (0-based) whose images were left out, ascending; `trainImagePaths` and `fmri` skip them. */
  droppedImages: number[];
  /** One line that says what was found and done, e.g. for a log. */
  summary: string;
}

/** Options of `loadAlgonautsSubject`. */
export interface AlgonautsOptions {
  /** 'memory' (default) reads both fMRI files at load; 'stream' reads rows on demand. */
  fmri?: 'memory' | 'stream';
  /** NaN/Inf handling (see {@link NanPolicy}; stream mode supports 'error' and 'zero', per read). Default 'error'. */
  nanPolicy?: NanPolicy;
  /** The largest share of a hemisphere's vertices, or of the training images, that a drop policy may leave out (default 0.1); above it the load fails. Pass 1 to allow any. */
  maxDropFraction?: number;
  /** Optional nsdgeneral masks, one .npy per hemisphere: fsaverage space ([163842]) or challenge space; non-zero = keep. */
  nsdgeneral?: { lh: string; rh: string };
  /** fsaverage sphere per hemisphere (FreeSurfer binary or .gii); default DIR/surfaces/{hemi}.sphere. */
  sphere?: { lh: string; rh: string };
  /** x offset applied to each hemisphere's sphere coordinates (lh −, rh +) so they do not overlap; default 110 (sphere radius 100). */
  hemiOffset?: number;
}

/** A loaded subject. Vertex arrays cover the selected vertices (all challenge vertices, or the nsdgeneral ones). */
export interface AlgonautsSubject {
  dir: string;
  trainImagePaths: string[];
  testImagePaths: string[];
  /** Selected vertex count per hemisphere. */
  vertexCount: Record<Hemi, number>;
  /** fsaverage index of each selected vertex. [N_hemi] */
  fsIndex: Record<Hemi, Int32Array>;
  /** Column of each selected vertex in the challenge-space arrays. [N_hemi] */
  challengeIndex: Record<Hemi, Int32Array>;
  /** Reads training image i (decoded RGB). */
  trainImage(i: number): Promise<RgbImage>;
  /** Reads test image i (decoded RGB). */
  testImage(i: number): Promise<RgbImage>;
  /** fMRI rows [start, end) of one hemisphere, float32 [end-start, N_hemi]. */
  fmriRows(hemi: Hemi, start: number, end: number): Promise<Float32Array>;
  /** All training fMRI of one hemisphere, float32 [nTrain, N_hemi] (memory mode, or read whole). */
  fmri(hemi: Hemi): Promise<Float32Array>;
  /** Names of every ROI label available (e.g. 'V1v', 'FFA-1', 'early'). */
  roiNames(): string[];
  /** Boolean masks of an ROI over the selected vertices of each hemisphere. */
  roiMask(name: string): Promise<Record<Hemi, Uint8Array>>;
  /** Sphere coordinates of the selected vertices, lh then rh, hemispheres offset in x. [N_lh + N_rh, 3] */
  coordinates(): Promise<Float32Array>;
  /** Seeded train/validation split of the training rows (default 841/9841 validation). */
  split(opts?: { seed?: number; valFraction?: number }): { train: Int32Array; val: Int32Array };
  /** What the NaN/Inf policy found (per hemisphere: missing images, dead vertices, scattered values) and did (memory mode). */
  nanReport: NanReport;
}

const HEMIS: Hemi[] = ['lh', 'rh'];

/** Loads an Algonauts 2023 subject folder (real or synthetic), checking names, shapes, dtypes and values. */
export async function loadAlgonautsSubject(dir: string, opts: AlgonautsOptions = {}): Promise<AlgonautsSubject> {
  const root = path.resolve(dir);
  const nanPolicy = opts.nanPolicy ?? 'error';
  const memory = (opts.fmri ?? 'memory') === 'memory';
  checkNanOptions(nanPolicy, { memory, maxDropFraction: opts.maxDropFraction });
  // 1. images (sorted names = fMRI row order)
  const allTrainImages = listImages(root, 'training_split/training_images');
  const testImagePaths = listImages(root, 'test_split/test_images');
  // 2. fMRI headers: dtype, shape, one row per training image; their columns are the challenge vertices
  const cols = await readFmriColumns(root, allTrainImages.length);
  // 3. challenge vertices in fsaverage space
  const challengeFs = await readChallengeVertices(root, cols);
  // 4. fMRI values (memory mode) under the NaN/Inf policy, which may leave out images (rows) and vertices (columns)
  const { full, nanReport, drop } = memory
    ? await readFmriInMemory(root, cols, { policy: nanPolicy, maxDropFraction: opts.maxDropFraction ?? 0.1 })
    : notReadYet(nanPolicy);
  const dropped = new Set(nanReport.droppedImages);
  const trainImagePaths = allTrainImages.filter((_, i) => !dropped.has(i));
  const nTrain = trainImagePaths.length;
  // 5. vertex selection: nsdgeneral and dropped vertices
  const challengeIndex = await selectVertices({ cols, challengeFs, nsdgeneral: opts.nsdgeneral, drop });
  const fsIndex = { lh: Int32Array.from(challengeIndex.lh, (k) => challengeFs.lh[k]!), rh: Int32Array.from(challengeIndex.rh, (k) => challengeFs.rh[k]!) };
  const vertexCount = { lh: challengeIndex.lh.length, rh: challengeIndex.rh.length };
  const fmriRows = fmriRowsReader({ root, cols, challengeIndex, full, nanPolicy, nTrain });
  // 6. ROI labels
  const { roiNames, roiMask } = roiMaskReader(root, readRoiLabels(root), fsIndex);
  return {
    dir: root, trainImagePaths, testImagePaths, vertexCount, fsIndex, challengeIndex,
    trainImage: imageAt(trainImagePaths, path.join(root, 'training_split/training_images'), 'trainImage'),
    testImage: imageAt(testImagePaths, path.join(root, 'test_split/test_images'), 'testImage'),
    fmriRows, fmri: (h: Hemi) => fmriRows(h, 0, nTrain), roiNames, roiMask,
    coordinates: () => readCoordinates({ root, fsIndex, sphere: opts.sphere, hemiOffset: opts.hemiOffset }),
    split: (o = {}) => seededSplit(nTrain, o),
    nanReport,
  };
}

const fmriPath = (root: string, h: Hemi) => path.join(root, 'training_split/training_fmri', `${h}_training_fmri.npy`);

/** The images of `rel` (a folder of the subject), sorted by name; a missing folder is an error (an empty one is not). */
function listImages(root: string, rel: string): string[] {
  const dir = path.join(root, rel);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    const top = rel.split('/')[0]!;
    const isSubject = fs.existsSync(root) && fs.statSync(root).isDirectory();
    throw new FileFormatError(dir, `the folder ${rel}/ of an Algonauts subject`,
      fs.existsSync(dir) ? 'a file' : !isSubject ? `${root} is not a folder` : fs.existsSync(path.join(root, top)) ? 'no such folder' : `no ${top}/ folder in ${root}`,
      isSubject ? `Copy ${top}/ from the release into the subject folder (or make a subject with make-subject).`
        : 'Point loadAlgonautsSubject at a subject folder (e.g. .../subj01) that holds training_split/ and test_split/, or generate one with make-subject.');
  }
  return fs.readdirSync(dir).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => path.join(dir, f));
}

async function readMaskNpy(file: string, what: string): Promise<Float32Array> {
  if (!fs.existsSync(file)) throw new FileFormatError(file, what, 'no such file', 'Check the subject folder (roi_masks/) or the path given.');
  const a = await readNpy(file);
  if (a.shape.length !== 1) throw new FileFormatError(file, `a 1-D ${what}`, `shape [${a.shape.join(', ')}]`);
  if (a.dtype === 'complex64' || a.dtype === 'complex128') {
    throw new FileFormatError(file, `a real (integer, float or bool) ${what}`, `dtype ${a.dtype}`, 'Save the real part as integers, e.g. np.save(path, a.real.astype(np.int32)).');
  }
  return toFloat32(a);
}

/** Checks each hemisphere's training fMRI header (float, 2-D, `nTrain` rows) and returns its column count. */
async function readFmriColumns(root: string, nTrain: number): Promise<Record<Hemi, number>> {
  const cols: Record<Hemi, number> = { lh: 0, rh: 0 };
  for (const h of HEMIS) {
    const f = fmriPath(root, h);
    if (!fs.existsSync(f)) throw new FileFormatError(f, `the ${h} training fMRI (training_split/training_fmri/${h}_training_fmri.npy)`, 'no such file', 'Point loadAlgonautsSubject at a subject folder (e.g. .../subj01) that holds training_split/, or generate one with make-subject.');
    const hd = await readNpyHeader(f);
    if (hd.dtype !== 'float32' && hd.dtype !== 'float64') throw new FileFormatError(f, 'float32 fMRI (images x vertices)', `dtype ${hd.dtype}`, 'Save the array as float32.');
    if (hd.shape.length !== 2) throw new FileFormatError(f, 'a 2-D array (images x vertices)', `shape [${hd.shape.join(', ')}]`);
    if (hd.shape[0] !== nTrain) throw new FileFormatError(f, `${nTrain} rows, one per image in training_split/training_images`, `${hd.shape[0]} rows`, 'The images and the fMRI rows must match one to one (sorted image names = row order).');
    cols[h] = hd.shape[1]!;
  }
  return cols;
}

/** The fsaverage index of each challenge vertex (the fMRI's columns), from roi_masks/{hemi}.all-vertices_fsaverage_space.npy. */
async function readChallengeVertices(root: string, cols: Record<Hemi, number>): Promise<Record<Hemi, Int32Array>> {
  const challengeFs: Record<Hemi, Int32Array> = { lh: new Int32Array(0), rh: new Int32Array(0) };
  for (const h of HEMIS) {
    const f = path.join(root, 'roi_masks', `${h}.all-vertices_fsaverage_space.npy`);
    const m = await readMaskNpy(f, 'all-vertices mask');
    if (m.length !== FSAVERAGE_N) throw new FileFormatError(f, `${FSAVERAGE_N} entries (fsaverage vertices)`, `${m.length}`, 'fsaverage-space masks index the 163,842 fsaverage vertices of one hemisphere.');
    const idx: number[] = [];
    m.forEach((v, i) => { if (v !== 0) idx.push(i); });
    if (idx.length !== cols[h]) throw new FileFormatError(f, `${cols[h]} challenge vertices (the fMRI's columns)`, `${idx.length} non-zero entries`);
    challengeFs[h] = Int32Array.from(idx);
  }
  return challengeFs;
}

/** The training fMRI as loaded: whole per hemisphere (memory mode, dropped images already left out), the report, and the challenge columns to leave out. */
type LoadedFmri = { full: Partial<Record<Hemi, Float32Array>>; nanReport: NanReport; drop: Record<Hemi, Uint8Array | undefined> };

/** Memory mode: both hemispheres' training fMRI [nTrain, columns], read whole, then the NaN/Inf policy over both at once. */
async function readFmriInMemory(root: string, cols: Record<Hemi, number>, o: { policy: NanPolicy; maxDropFraction: number }): Promise<LoadedFmri> {
  const data = {} as Record<Hemi, Float32Array>;
  for (const h of HEMIS) data[h] = toFloat32(await readNpy(fmriPath(root, h)));
  const found = applyNanPolicy(data, { files: { lh: fmriPath(root, 'lh'), rh: fmriPath(root, 'rh') }, cols, ...o });
  return { full: found.data, nanReport: found.report, drop: found.drop };
}

/** Stream mode: nothing read at load, no NaN/Inf found, nothing dropped. */
function notReadYet(policy: NanPolicy): LoadedFmri {
  const none = (): HemiNanReport => ({ count: 0, emptyRows: 0, emptyColumns: 0, scattered: 0, scatteredVertices: 0, images: 0, vertices: 0, first: [], droppedVertices: 0, zeroed: 0 });
  return { full: {}, nanReport: { policy, lh: none(), rh: none(), droppedImages: [], summary: 'not checked at load (stream mode checks each read)' }, drop: { lh: undefined, rh: undefined } };
}

// --- The NaN/Inf policy: the one place that decides what a non-finite fMRI value does. ---

/** Refuses option combinations that cannot work, before anything is read. */
function checkNanOptions(policy: NanPolicy, o: { memory: boolean; maxDropFraction?: number }): void {
  const policies: NanPolicy[] = ['error', 'zero', 'drop', 'drop-images', 'drop-vertices'];
  if (!policies.includes(policy)) throw new RangeError(`loadAlgonautsSubject: nanPolicy must be one of ${policies.join(', ')}; got '${policy}'.`);
  if (!o.memory && policy !== 'error' && policy !== 'zero') {
    throw new RangeError(`loadAlgonautsSubject: nanPolicy '${policy}' needs fmri: 'memory' (stream mode reads rows on demand, so it can only 'error' or 'zero').`);
  }
  const f = o.maxDropFraction;
  if (f !== undefined && !(f >= 0 && f <= 1)) throw new RangeError(`loadAlgonautsSubject: maxDropFraction must be in [0, 1]; got ${f}.`);
}

/** Where the non-finite values of one hemisphere's d [rows, n] are: per row and per column counts, and the first few places. */
function scanNonFinite(d: Float32Array, n: number): { rowBad: Int32Array; colBad: Int32Array; count: number; first: [number, number][] } {
  const rows = n ? d.length / n : 0;
  const rowBad = new Int32Array(rows), colBad = new Int32Array(n);
  const first: [number, number][] = [];
  let count = 0;
  for (let i = 0; i < d.length; i++) {
    if (Number.isFinite(d[i]!)) continue;
    const r = Math.floor(i / n), c = i % n;
    count++;
    rowBad[r]!++;
    colBad[c]!++;
    if (first.length < 5) first.push([r, c]);
  }
  return { rowBad, colBad, count, first };
}

/** The non-finite values of d [rows, n] outside its all-non-finite rows and columns, and the columns that hold them. */
function scatteredOf(d: Float32Array, n: number, s: { rowBad: Int32Array; colBad: Int32Array; count: number }): { scattered: number; scatteredVertices: number } {
  const rows = s.rowBad.length;
  let scattered = 0;
  const cols = new Uint8Array(n);
  if (s.count === 0) return { scattered: 0, scatteredVertices: 0 };
  for (let r = 0; r < rows; r++) {
    if (s.rowBad[r] === 0 || s.rowBad[r] === n) continue;
    for (let c = 0; c < n; c++) {
      if (s.colBad[c] !== rows && !Number.isFinite(d[r * n + c]!)) { scattered++; cols[c] = 1; }
    }
  }
  return { scattered, scatteredVertices: cols.reduce((k, v) => k + v, 0) };
}

/** The rows of d [rows, n] that are not in `drop` (sorted), as a new array [rows - drop.length, n]. */
function withoutRows(d: Float32Array, n: number, drop: number[]): Float32Array {
  if (!drop.length) return d;
  const skip = new Set(drop);
  const rows = d.length / n;
  const out = new Float32Array((rows - drop.length) * n);
  for (let r = 0, k = 0; r < rows; r++) if (!skip.has(r)) out.set(d.subarray(r * n, (r + 1) * n), (k++) * n);
  return out;
}

/** `what` for the first `k` indices of a list, e.g. "rows 3, 17, 40 and 2 more". */
function some(what: string, idx: number[], k = 5): string {
  return `${what}${idx.length === 1 ? '' : 's'} ${idx.slice(0, k).join(', ')}${idx.length > k ? ` and ${idx.length - k} more` : ''}`;
}

/** The damage of one hemisphere in words: missing images, dead vertices, scattered values. */
function describeDamage(r: HemiNanReport, rows: number, n: number): string {
  const parts: string[] = [];
  if (r.emptyRows) parts.push(`${r.emptyRows} of ${rows} rows entirely NaN/Inf (missing images)`);
  if (r.emptyColumns) parts.push(`${r.emptyColumns} of ${n} columns entirely NaN/Inf (dead vertices)`);
  if (r.scattered > 0) parts.push(`${r.scattered} scattered value${r.scattered === 1 ? '' : 's'} in ${r.scatteredVertices} vertices`);
  return `${r.count} NaN/Inf values: ${parts.join('; ')} (first at row, column ${r.first.map((p) => `(${p[0]}, ${p[1]})`).join(', ')})`;
}

/** The policy that fits the damage found, for the error's fix. */
function fittingPolicy(r: HemiNanReport): string {
  if (r.emptyRows && !r.emptyColumns && !r.scattered) return "nanPolicy: 'drop-images' (or 'drop') leaves those images out";
  if (!r.emptyRows) return "nanPolicy: 'drop-vertices' (or 'drop') leaves those vertices out, 'zero' sets the values to 0";
  return "nanPolicy: 'drop' leaves out the missing images and then the vertices that still hold NaN/Inf";
}

/**
 * The policy over both hemispheres' whole training fMRI (memory mode): counts the non-finite values, the rows and
 * columns that hold them and the rows and columns made only of them; then throws ('error', or a drop above
 * `maxDropFraction`), zeroes them ('zero'), or chooses the images (rows, in both hemispheres) and the vertices
 * (columns, per hemisphere) to leave out. Returns the data with the dropped rows removed and the columns to drop.
 */
function applyNanPolicy(data: Record<Hemi, Float32Array>, o: { files: Record<Hemi, string>; cols: Record<Hemi, number>; policy: NanPolicy; maxDropFraction: number }): { data: Record<Hemi, Float32Array>; report: NanReport; drop: Record<Hemi, Uint8Array | undefined> } {
  // 1. what is where
  const scan = {} as Record<Hemi, ReturnType<typeof scanNonFinite>>;
  const report = { policy: o.policy, droppedImages: [] as number[], summary: '' } as NanReport;
  let rows = 0;
  for (const h of HEMIS) {
    const n = o.cols[h];
    const s = scanNonFinite(data[h], n);
    rows = n ? data[h].length / n : 0;
    scan[h] = s;
    report[h] = {
      count: s.count, first: s.first, droppedVertices: 0, zeroed: 0,
      emptyRows: s.rowBad.reduce((k, v) => k + (n > 0 && v === n ? 1 : 0), 0),
      emptyColumns: s.colBad.reduce((k, v) => k + (rows > 0 && v === rows ? 1 : 0), 0),
      images: s.rowBad.reduce((k, v) => k + (v > 0 ? 1 : 0), 0),
      vertices: s.colBad.reduce((k, v) => k + (v > 0 ? 1 : 0), 0),
      ...scatteredOf(data[h], n, s),
    };
  }
  const drop: Record<Hemi, Uint8Array | undefined> = { lh: undefined, rh: undefined };
  const damaged = HEMIS.filter((h) => report[h].count > 0);
  if (!damaged.length) {
    report.summary = 'no NaN/Inf in the training fMRI';
    return { data, report, drop };
  }
  // 2. 'error' and 'zero'
  if (o.policy === 'error') {
    const h = damaged[0]!;
    throw new FileFormatError(o.files[h], 'finite values', describeDamage(report[h], rows, o.cols[h]), `Pass ${fittingPolicy(report[h])}.`);
  }
  if (o.policy === 'zero') {
    for (const h of damaged) {
      const d = data[h];
      for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) d[i] = 0;
      report[h].zeroed = report[h].count;
    }
    report.summary = damaged.map((h) => `${h}: ${report[h].zeroed} NaN/Inf values set to 0 in ${report[h].images} images and ${report[h].vertices} vertices (${report[h].emptyRows} whole images, ${report[h].emptyColumns} whole vertices)`).join('; ');
    return { data, report, drop };
  }
  // 3. the images to leave out (rows, the same in both hemispheres)
  const dropRows = new Set<number>();
  for (const h of damaged) {
    const n = o.cols[h];
    scan[h].rowBad.forEach((v, r) => {
      if (o.policy === 'drop-images' ? v > 0 : o.policy === 'drop' ? v === n : false) dropRows.add(r);
    });
  }
  report.droppedImages = [...dropRows].sort((a, b) => a - b);
  if (report.droppedImages.length > o.maxDropFraction * rows) {
    const h = damaged[0]!;
    throw new FileFormatError(o.files[h], `at most ${Math.floor(o.maxDropFraction * rows)} of ${rows} images (maxDropFraction ${o.maxDropFraction}) to leave out under nanPolicy '${o.policy}'`,
      `${report.droppedImages.length} images with NaN/Inf (${some('row', report.droppedImages)}); ${describeDamage(report[h], rows, o.cols[h])}`,
      damaged.every((g) => report[g].vertices <= o.maxDropFraction * o.cols[g])
        ? `The NaN/Inf are in ${damaged.map((g) => `${report[g].vertices} ${g}`).join(' and ')} vertices: nanPolicy 'drop-vertices' leaves those out instead. Or pass a larger maxDropFraction.`
        : 'Pass a larger maxDropFraction to allow it, or repair the file.');
  }
  // 4. the vertices to leave out (columns, per hemisphere): those with a non-finite value in a kept row
  for (const h of damaged) {
    const n = o.cols[h];
    const bad = new Uint8Array(n);
    if (o.policy !== 'drop-images') {
      const d = data[h];
      for (let r = 0; r < rows; r++) {
        if (dropRows.has(r) || scan[h].rowBad[r] === 0) continue;
        for (let c = 0; c < n; c++) if (!Number.isFinite(d[r * n + c]!)) bad[c] = 1;
      }
    }
    const k = bad.reduce((s, v) => s + v, 0);
    if (k > o.maxDropFraction * n) {
      const whole = report[h].emptyRows;
      throw new FileFormatError(o.files[h], `at most ${Math.floor(o.maxDropFraction * n)} of ${n} vertices (maxDropFraction ${o.maxDropFraction}) to leave out under nanPolicy '${o.policy}'`,
        `${k} vertices with NaN/Inf; ${describeDamage(report[h], rows, n)}`,
        whole ? `${whole === 1 ? 'A row' : `${whole} rows`} entirely NaN/Inf ${whole === 1 ? 'is a missing image' : 'are missing images'}, not ${k} bad vertices: nanPolicy 'drop' (or 'drop-images') leaves the image${whole === 1 ? '' : 's'} out.`
          : "Pass a larger maxDropFraction to allow it, nanPolicy 'zero' to keep the vertices, or repair the file.");
    }
    drop[h] = k ? bad : undefined;
    report[h].droppedVertices = k;
  }
  // 5. the data without the dropped rows
  const out = { lh: withoutRows(data.lh, o.cols.lh, report.droppedImages), rh: withoutRows(data.rh, o.cols.rh, report.droppedImages) };
  report.summary = `nanPolicy '${o.policy}': ${report.droppedImages.length} images left out (${report.droppedImages.length ? some('row', report.droppedImages) : 'none'}), `
    + HEMIS.map((h) => `${h} ${report[h].droppedVertices} of ${o.cols[h]} vertices left out`).join(', ');
  return { data: out, report, drop };
}

/** The policy on fMRI rows [start, end) read on demand (stream mode): 'zero' replaces non-finite values with 0 in place; 'error' throws. */
function applyNanPolicyToRows(d: Float32Array, o: { file: string; start: number; end: number; policy: NanPolicy }): void {
  let count = 0;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) { count++; d[i] = 0; }
  if (count > 0 && o.policy !== 'zero') throw new FileFormatError(o.file, `finite values in rows ${o.start}..${o.end - 1}`, `${count} NaN/Inf values`, "Pass nanPolicy: 'zero' (stream mode cannot drop images or vertices), or load with fmri: 'memory' and nanPolicy 'drop'.");
}

// --- Vertex selection, fMRI reads, ROI masks, coordinates, split. ---

/** The selected challenge columns per hemisphere: all, or the nsdgeneral ones, less the columns in `drop`. */
async function selectVertices(o: { cols: Record<Hemi, number>; challengeFs: Record<Hemi, Int32Array>; nsdgeneral?: { lh: string; rh: string }; drop: Record<Hemi, Uint8Array | undefined> }): Promise<Record<Hemi, Int32Array>> {
  const challengeIndex: Record<Hemi, Int32Array> = { lh: new Int32Array(0), rh: new Int32Array(0) };
  for (const h of HEMIS) {
    const n = o.cols[h];
    let keep = new Uint8Array(n).fill(1);
    if (o.nsdgeneral) {
      const f = o.nsdgeneral[h];
      const m = await readMaskNpy(f, 'nsdgeneral mask');
      if (m.length === FSAVERAGE_N) keep = Uint8Array.from(o.challengeFs[h], (i) => (m[i] !== 0 ? 1 : 0));
      else if (m.length === n) keep = Uint8Array.from(m, (v) => (v !== 0 ? 1 : 0));
      else throw new FileFormatError(f, `${FSAVERAGE_N} (fsaverage space) or ${n} (challenge space) entries`, `${m.length}`);
    }
    const drop = o.drop[h];
    if (drop) for (let k = 0; k < n; k++) if (drop[k]) keep[k] = 0;
    const idx: number[] = [];
    keep.forEach((v, k) => { if (v) idx.push(k); });
    challengeIndex[h] = Int32Array.from(idx);
  }
  return challengeIndex;
}

/** The selected columns `sel` of d [rows, n]: [rows, sel.length] (d itself when every column is selected). */
function selectColumns(d: Float32Array, rows: number, n: number, sel: Int32Array): Float32Array {
  if (sel.length === n) return d;
  const out = new Float32Array(rows * sel.length);
  for (let r = 0; r < rows; r++) for (let j = 0; j < sel.length; j++) out[r * sel.length + j] = d[r * n + sel[j]!]!;
  return out;
}

/** `fmriRows(hemi, start, end)`: float32 [end-start, N_hemi] of the selected vertices, from memory or read from the file. */
function fmriRowsReader(s: { root: string; cols: Record<Hemi, number>; challengeIndex: Record<Hemi, Int32Array>; full: Partial<Record<Hemi, Float32Array>>; nanPolicy: NanPolicy; nTrain: number }) {
  return async (h: Hemi, start: number, end: number): Promise<Float32Array> => {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= s.nTrain)) throw new RangeError(`fmriRows: rows [${start}, ${end}) outside [0, ${s.nTrain})`);
    const n = s.cols[h];
    const whole = s.full[h];
    if (whole) return selectColumns(whole.subarray(start * n, end * n), end - start, n, s.challengeIndex[h]);
    const file = fmriPath(s.root, h);
    const f = await openNpy(file);
    try {
      const d = toFloat32(await f.readRows(start, end));
      applyNanPolicyToRows(d, { file, start, end, policy: s.nanPolicy });
      return selectColumns(d, end - start, n, s.challengeIndex[h]);
    } finally {
      await f.close();
    }
  };
}

/** Label names per ROI file (index = label value, 0 = 'Unknown'): roi_masks/mapping_<file>.json when present, else the published tables. */
function readRoiLabels(root: string): Record<string, string[]> {
  const labelTable: Record<string, string[]> = {};
  for (const file of Object.keys(ALGONAUTS_ROI_LABELS)) {
    const j = path.join(root, 'roi_masks', `mapping_${file}.json`);
    labelTable[file] = fs.existsSync(j) ? readMappingJson(j) : ALGONAUTS_ROI_LABELS[file]!;
  }
  return labelTable;
}

/** A mapping_<file>.json: an object of label value (a whole number as text) to label name, e.g. {"0": "Unknown", "1": "OFA"}. */
function readMappingJson(file: string): string[] {
  const expected = 'a JSON object of label value to ROI name, e.g. {"0": "Unknown", "1": "OFA"}';
  const fix = 'Re-write it with json.dump({int(k): name for k, name in mapping.items()}, f), or delete it to use the published Algonauts labels.';
  checkInputFile(file, 'JSON');
  let obj: unknown;
  try {
    obj = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FileFormatError(file, expected, `text that is not JSON (${(e as Error).message})`, fix);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new FileFormatError(file, expected, Array.isArray(obj) ? 'a JSON array' : `a JSON ${obj === null ? 'null' : typeof obj}`, fix);
  const arr: string[] = [];
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (!/^\d+$/.test(k)) throw new FileFormatError(file, expected, `the key ${JSON.stringify(k)}, which is not a label value`, fix);
    if (typeof v !== 'string') throw new FileFormatError(file, expected, `${JSON.stringify(v)} as the name of label ${k}`, fix);
    arr[Number(k)] = v;
  }
  return arr;
}

/** `roiNames()` and `roiMask(name)`: a named ROI's mask over the selected vertices, from its fsaverage-space label file. */
function roiMaskReader(root: string, labelTable: Record<string, string[]>, fsIndex: Record<Hemi, Int32Array>) {
  const roiNames = () => Object.values(labelTable).flatMap((l) => l.slice(1));
  const roiMask = async (name: string): Promise<Record<Hemi, Uint8Array>> => {
    const file = Object.keys(labelTable).find((f) => labelTable[f]!.indexOf(name) > 0);
    if (!file) throw new RangeError(`roiMask: unknown ROI '${name}'. Available: ${roiNames().join(', ')}`);
    const code = labelTable[file]!.indexOf(name);
    const out = {} as Record<Hemi, Uint8Array>;
    for (const h of HEMIS) {
      const f = path.join(root, 'roi_masks', `${h}.${file}_fsaverage_space.npy`);
      const m = await readMaskNpy(f, `${file} labels in fsaverage space`);
      if (m.length !== FSAVERAGE_N) throw new FileFormatError(f, `${FSAVERAGE_N} entries (fsaverage vertices)`, `${m.length}`, 'fsaverage-space masks index the 163,842 fsaverage vertices of one hemisphere.');
      checkIntegerLabels(f, m, labelTable[file]!);
      out[h] = Uint8Array.from(fsIndex[h], (i) => (m[i] === code ? 1 : 0));
    }
    return out;
  };
  return { roiNames, roiMask };
}

/** ROI labels must be whole numbers: a float label file with values such as 2.3 would match no label, without a word. */
function checkIntegerLabels(file: string, m: Float32Array, names: string[]): void {
  let bad = -1, n = 0;
  for (let i = 0; i < m.length; i++) if (!Number.isInteger(m[i]!)) { n++; if (bad < 0) bad = i; }
  if (n) {
    throw new FileFormatError(file, `whole-number ROI labels (0 = outside, 1..${names.length - 1} = ${names.slice(1, 4).join(', ')}${names.length > 4 ? ', ...' : ''})`,
      `${n} values that are not whole numbers (first ${m[bad]} at vertex ${bad})`,
      'The labels were stored as floats and changed on the way (resampled or averaged?); re-export them as integers, e.g. np.save(path, labels.astype(np.int32)).');
  }
}

/** Sphere coordinates of the selected vertices, lh then rh, each hemisphere offset in x (lh −, rh +). [N_lh + N_rh, 3] */
async function readCoordinates(o: { root: string; fsIndex: Record<Hemi, Int32Array>; sphere?: { lh: string; rh: string }; hemiOffset?: number }): Promise<Float32Array> {
  const out = new Float32Array((o.fsIndex.lh.length + o.fsIndex.rh.length) * 3);
  const off = o.hemiOffset ?? 110;
  let k = 0;
  for (const h of HEMIS) {
    const given = o.sphere?.[h];
    const candidates = given ? [given] : [path.join(o.root, 'surfaces', `${h}.sphere`), path.join(o.root, 'surfaces', `${h}.sphere.gii`)];
    const f = candidates.find((c) => fs.existsSync(c));
    if (!f) throw new FileFormatError(candidates[0]!, 'an fsaverage sphere surface', 'no such file', 'Pass sphere: { lh, rh } with the paths of fsaverage surf/lh.sphere and surf/rh.sphere (FreeSurfer) or GIFTI spheres.');
    const s = f.endsWith('.gii') ? await readGiftiSurface(f) : await readFreesurferSurface(f);
    if (s.vertices.length / 3 !== FSAVERAGE_N) throw new FileFormatError(f, `an fsaverage sphere with ${FSAVERAGE_N} vertices`, `${s.vertices.length / 3} vertices`);
    const sign = h === 'lh' ? -1 : 1;
    for (const i of o.fsIndex[h]) {
      out[k++] = s.vertices[i * 3]! + sign * off;
      out[k++] = s.vertices[i * 3 + 1]!;
      out[k++] = s.vertices[i * 3 + 2]!;
    }
  }
  return out;
}

/** Seeded train/validation split of rows 0..nTrain-1 (default 841/9841 validation), each part sorted. */
function seededSplit(nTrain: number, o: { seed?: number; valFraction?: number }): { train: Int32Array; val: Int32Array } {
  const frac = o.valFraction ?? 841 / 9841;
  if (!(frac >= 0 && frac < 1)) throw new RangeError(`split: valFraction must be in [0, 1), got ${frac}`);
  const perm = new Rng(o.seed ?? 0).shuffle(Array.from({ length: nTrain }, (_, i) => i));
  const nVal = Math.round(frac * nTrain);
  return { train: Int32Array.from(perm.slice(nVal)).sort(), val: Int32Array.from(perm.slice(0, nVal)).sort() };
}

/** A reader of image i of `list` (decoded RGB, from `folder`), with a clear error for an index out of range. */
function imageAt(list: string[], folder: string, what: string) {
  return async (i: number): Promise<RgbImage> => {
    if (!(Number.isInteger(i) && i >= 0 && i < list.length)) {
      throw new RangeError(`${what}: index ${i} outside [0, ${list.length})${list.length ? '' : `: ${folder} holds no images`}`);
    }
    return readImage(list[i]!);
  };
}
