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
import { openNpy, readNpy, readNpyHeader } from '../io/npy.js';
import { readImage, type RgbImage } from '../io/image.js';
import { readGiftiSurface } from '../io/gifti.js';
import { readFreesurferSurface } from '../io/freesurfer.js';
import { toFloat32, type NDArray } from '../io/ndarray.js';
import { ALGONAUTS_ROI_LABELS, FSAVERAGE_N, type Hemi } from './rois.js';
import { Rng } from '../core/rng.js';

/** What to do with NaN or Inf in the fMRI: throw (default), replace with 0, or drop the affected vertices. */
export type NanPolicy = 'error' | 'zero' | 'drop-vertices';

/** Options of `loadAlgonautsSubject`. */
export interface AlgonautsOptions {
  /** 'memory' (default) reads both fMRI files at load; 'stream' reads rows on demand. */
  fmri?: 'memory' | 'stream';
  /** NaN/Inf handling (memory mode; stream mode supports 'error' and 'zero' per read). Default 'error'. */
  nanPolicy?: NanPolicy;
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
  /** NaN/Inf found at load (memory mode): count and the first few (row, column) places. */
  nanReport: Record<Hemi, { count: number; vertices: number; first: [number, number][] }>;
}

const HEMIS: Hemi[] = ['lh', 'rh'];

/** Loads an Algonauts 2023 subject folder (real or synthetic), checking names, shapes, dtypes and values. */
export async function loadAlgonautsSubject(dir: string, opts: AlgonautsOptions = {}): Promise<AlgonautsSubject> {
  const root = path.resolve(dir);
  const nanPolicy = opts.nanPolicy ?? 'error';
  // 1. images (sorted names = fMRI row order)
  const trainImagePaths = listPngs(path.join(root, 'training_split/training_images'));
  const testImagePaths = listPngs(path.join(root, 'test_split/test_images'));
  const nTrain = trainImagePaths.length;
  // 2. fMRI headers: dtype, shape, one row per training image; their columns are the challenge vertices
  const cols = await readFmriColumns(root, nTrain);
  // 3. challenge vertices in fsaverage space
  const challengeFs = await readChallengeVertices(root, cols);
  // 4. fMRI values (memory mode) under the NaN/Inf policy
  const { full, nanReport, drop } = (opts.fmri ?? 'memory') === 'memory' ? await readFmriInMemory(root, cols, nanPolicy) : notReadYet();
  // 5. vertex selection: nsdgeneral and dropped vertices
  const challengeIndex = await selectVertices({ cols, challengeFs, nsdgeneral: opts.nsdgeneral, drop });
  const fsIndex = { lh: Int32Array.from(challengeIndex.lh, (k) => challengeFs.lh[k]!), rh: Int32Array.from(challengeIndex.rh, (k) => challengeFs.rh[k]!) };
  const vertexCount = { lh: challengeIndex.lh.length, rh: challengeIndex.rh.length };
  const fmriRows = fmriRowsReader({ root, cols, challengeIndex, full, nanPolicy, nTrain });
  // 6. ROI labels
  const { roiNames, roiMask } = roiMaskReader(root, readRoiLabels(root), fsIndex);
  return {
    dir: root, trainImagePaths, testImagePaths, vertexCount, fsIndex, challengeIndex,
    trainImage: imageAt(trainImagePaths, 'trainImage'), testImage: imageAt(testImagePaths, 'testImage'),
    fmriRows, fmri: (h: Hemi) => fmriRows(h, 0, nTrain), roiNames, roiMask,
    coordinates: () => readCoordinates({ root, fsIndex, sphere: opts.sphere, hemiOffset: opts.hemiOffset }),
    split: (o = {}) => seededSplit(nTrain, o),
    nanReport,
  };
}

const fmriPath = (root: string, h: Hemi) => path.join(root, 'training_split/training_fmri', `${h}_training_fmri.npy`);

function listPngs(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => path.join(dir, f));
}

async function readMaskNpy(file: string, what: string): Promise<Float32Array> {
  if (!fs.existsSync(file)) throw new FileFormatError(file, what, 'no such file', 'Check the subject folder (roi_masks/) or the path given.');
  const a = await readNpy(file);
  if (a.shape.length !== 1) throw new FileFormatError(file, `a 1-D ${what}`, `shape [${a.shape.join(', ')}]`);
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

type NanReport = AlgonautsSubject['nanReport'][Hemi];
/** The training fMRI as loaded: whole per hemisphere (memory mode), what the NaN/Inf check found, and the challenge columns to leave out. */
type LoadedFmri = { full: Partial<Record<Hemi, Float32Array>>; nanReport: Record<Hemi, NanReport>; drop: Record<Hemi, Uint8Array | undefined> };

/** Memory mode: both hemispheres' training fMRI [nTrain, columns] under the NaN/Inf policy (lh first: an lh error stops before rh is read). */
async function readFmriInMemory(root: string, cols: Record<Hemi, number>, policy: NanPolicy): Promise<LoadedFmri> {
  const loaded = notReadYet();
  for (const h of HEMIS) {
    const d = toFloat32(await readNpy(fmriPath(root, h)));
    const found = applyNanPolicy(d, { file: fmriPath(root, h), columns: cols[h], policy });
    loaded.nanReport[h] = found.report;
    loaded.drop[h] = found.drop;
    loaded.full[h] = d;
  }
  return loaded;
}

/** Stream mode: nothing read at load, no NaN/Inf found, no column dropped. */
function notReadYet(): LoadedFmri {
  const none = (): NanReport => ({ count: 0, vertices: 0, first: [] });
  return { full: {}, nanReport: { lh: none(), rh: none() }, drop: { lh: undefined, rh: undefined } };
}

// --- The NaN/Inf policy: the one place that decides what a non-finite fMRI value does. ---

/**
 * The policy on one hemisphere's whole training fMRI d [rows, columns] (memory mode): counts the non-finite values and
 * the columns that hold them; 'error' throws, 'zero' replaces them with 0 in place, 'drop-vertices' returns those columns
 * as `drop` for the vertex selection to leave out.
 */
function applyNanPolicy(d: Float32Array, o: { file: string; columns: number; policy: NanPolicy }): { report: NanReport; drop?: Uint8Array } {
  const n = o.columns;
  const report: NanReport = { count: 0, vertices: 0, first: [] };
  const bad = new Uint8Array(n);
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) {
      report.count++;
      if (report.first.length < 5) report.first.push([Math.floor(i / n), i % n]);
      bad[i % n] = 1;
      if (o.policy === 'zero') d[i] = 0;
    }
  }
  report.vertices = bad.reduce((s, v) => s + v, 0);
  if (report.count > 0 && o.policy === 'error') {
    throw new FileFormatError(o.file, 'finite values', `${report.count} NaN/Inf values in ${report.vertices} vertices (first at row, column ${report.first.map((p) => `(${p[0]}, ${p[1]})`).join(', ')})`, "Pass nanPolicy: 'zero' to replace them with 0, or 'drop-vertices' to leave those vertices out.");
  }
  return { report, drop: o.policy === 'drop-vertices' ? bad : undefined };
}

/** The policy on fMRI rows [start, end) read on demand (stream mode): 'zero' replaces non-finite values with 0 in place; any other policy throws. */
function applyNanPolicyToRows(d: Float32Array, o: { file: string; start: number; end: number; policy: NanPolicy }): void {
  let count = 0;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) { count++; d[i] = 0; }
  if (count > 0 && o.policy !== 'zero') throw new FileFormatError(o.file, `finite values in rows ${o.start}..${o.end - 1}`, `${count} NaN/Inf values`, "Pass nanPolicy: 'zero' (stream mode cannot drop vertices), or load with fmri: 'memory'.");
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
    if (fs.existsSync(j)) {
      const obj = JSON.parse(fs.readFileSync(j, 'utf8')) as Record<string, string>;
      const arr: string[] = [];
      for (const [k, v] of Object.entries(obj)) arr[Number(k)] = v;
      labelTable[file] = arr;
    } else labelTable[file] = ALGONAUTS_ROI_LABELS[file]!;
  }
  return labelTable;
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
      out[h] = Uint8Array.from(fsIndex[h], (i) => (m[i] === code ? 1 : 0));
    }
    return out;
  };
  return { roiNames, roiMask };
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

/** A reader of image i of `list` (decoded RGB), with a clear error for an index out of range. */
function imageAt(list: string[], what: string) {
  return async (i: number): Promise<RgbImage> => {
    if (!(Number.isInteger(i) && i >= 0 && i < list.length)) throw new RangeError(`${what}: index ${i} outside [0, ${list.length})`);
    return readImage(list[i]!);
  };
}
