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

/** Loads an Algonauts 2023 subject folder (real or synthetic), checking names, shapes, dtypes and values. */
export async function loadAlgonautsSubject(dir: string, opts: AlgonautsOptions = {}): Promise<AlgonautsSubject> {
  const root = path.resolve(dir);
  const nanPolicy = opts.nanPolicy ?? 'error';
  const mode = opts.fmri ?? 'memory';
  // 1. images
  const trainImagePaths = listPngs(path.join(root, 'training_split/training_images'));
  const testImagePaths = listPngs(path.join(root, 'test_split/test_images'));
  // 2. fMRI headers
  const fmriPath = (h: Hemi) => path.join(root, 'training_split/training_fmri', `${h}_training_fmri.npy`);
  const cols: Record<Hemi, number> = { lh: 0, rh: 0 };
  for (const h of HEMIS) {
    const f = fmriPath(h);
    if (!fs.existsSync(f)) throw new FileFormatError(f, `the ${h} training fMRI (training_split/training_fmri/${h}_training_fmri.npy)`, 'no such file', 'Point loadAlgonautsSubject at a subject folder (e.g. .../subj01) that holds training_split/, or generate one with make-subject.');
    const hd = await readNpyHeader(f);
    if (hd.dtype !== 'float32' && hd.dtype !== 'float64') throw new FileFormatError(f, 'float32 fMRI (images x vertices)', `dtype ${hd.dtype}`, 'Save the array as float32.');
    if (hd.shape.length !== 2) throw new FileFormatError(f, 'a 2-D array (images x vertices)', `shape [${hd.shape.join(', ')}]`);
    if (hd.shape[0] !== trainImagePaths.length) throw new FileFormatError(f, `${trainImagePaths.length} rows, one per image in training_split/training_images`, `${hd.shape[0]} rows`, 'The images and the fMRI rows must match one to one (sorted image names = row order).');
    cols[h] = hd.shape[1]!;
  }
  // 3. challenge vertices in fsaverage space
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
  // 4. fMRI values (memory) and NaN/Inf policy
  const full: Partial<Record<Hemi, Float32Array>> = {};
  const nanReport = { lh: { count: 0, vertices: 0, first: [] as [number, number][] }, rh: { count: 0, vertices: 0, first: [] as [number, number][] } };
  const bad: Record<Hemi, Uint8Array> = { lh: new Uint8Array(cols.lh), rh: new Uint8Array(cols.rh) };
  if (mode === 'memory') {
    for (const h of HEMIS) {
      const d = toFloat32(await readNpy(fmriPath(h)));
      const n = cols[h];
      const rep = nanReport[h];
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i]!)) {
          rep.count++;
          if (rep.first.length < 5) rep.first.push([Math.floor(i / n), i % n]);
          bad[h][i % n] = 1;
          if (nanPolicy === 'zero') d[i] = 0;
        }
      }
      rep.vertices = bad[h].reduce((s, v) => s + v, 0);
      if (rep.count > 0 && nanPolicy === 'error') {
        throw new FileFormatError(fmriPath(h), 'finite values', `${rep.count} NaN/Inf values in ${rep.vertices} vertices (first at row, column ${rep.first.map((p) => `(${p[0]}, ${p[1]})`).join(', ')})`, "Pass nanPolicy: 'zero' to replace them with 0, or 'drop-vertices' to leave those vertices out.");
      }
      full[h] = d;
    }
  }
  // 5. vertex selection: nsdgeneral and dropped vertices
  const challengeIndex: Record<Hemi, Int32Array> = { lh: new Int32Array(0), rh: new Int32Array(0) };
  for (const h of HEMIS) {
    let keep = new Uint8Array(cols[h]).fill(1);
    if (opts.nsdgeneral) {
      const f = opts.nsdgeneral[h];
      const m = await readMaskNpy(f, 'nsdgeneral mask');
      if (m.length === FSAVERAGE_N) keep = Uint8Array.from(challengeFs[h], (i) => (m[i] !== 0 ? 1 : 0));
      else if (m.length === cols[h]) keep = Uint8Array.from(m, (v) => (v !== 0 ? 1 : 0));
      else throw new FileFormatError(f, `${FSAVERAGE_N} (fsaverage space) or ${cols[h]} (challenge space) entries`, `${m.length}`);
    }
    if (nanPolicy === 'drop-vertices') for (let k = 0; k < cols[h]; k++) if (bad[h][k]) keep[k] = 0;
    const idx: number[] = [];
    keep.forEach((v, k) => { if (v) idx.push(k); });
    challengeIndex[h] = Int32Array.from(idx);
  }
  const fsIndex = { lh: Int32Array.from(challengeIndex.lh, (k) => challengeFs.lh[k]!), rh: Int32Array.from(challengeIndex.rh, (k) => challengeFs.rh[k]!) };
  const vertexCount = { lh: challengeIndex.lh.length, rh: challengeIndex.rh.length };
  const selectCols = (h: Hemi, d: Float32Array, rows: number): Float32Array => {
    const sel = challengeIndex[h], n = cols[h];
    if (sel.length === n) return d;
    const out = new Float32Array(rows * sel.length);
    for (let r = 0; r < rows; r++) for (let j = 0; j < sel.length; j++) out[r * sel.length + j] = d[r * n + sel[j]!]!;
    return out;
  };
  const nTrain = trainImagePaths.length;
  // 6. ROI labels
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
  const roiFileOf = (name: string): string | undefined => Object.keys(labelTable).find((f) => labelTable[f]!.indexOf(name) > 0);
  const roiNames = () => Object.values(labelTable).flatMap((l) => l.slice(1));
  const roiMask = async (name: string): Promise<Record<Hemi, Uint8Array>> => {
    const file = roiFileOf(name);
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
  const checkRows = (start: number, end: number) => {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= nTrain)) throw new RangeError(`fmriRows: rows [${start}, ${end}) outside [0, ${nTrain})`);
  };
  const fmriRows = async (h: Hemi, start: number, end: number): Promise<Float32Array> => {
    checkRows(start, end);
    const n = cols[h];
    if (full[h]) return selectCols(h, full[h]!.subarray(start * n, end * n), end - start);
    const f = await openNpy(fmriPath(h));
    try {
      const d = toFloat32(await f.readRows(start, end));
      let count = 0;
      for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) { count++; d[i] = 0; }
      if (count > 0 && nanPolicy !== 'zero') throw new FileFormatError(fmriPath(h), `finite values in rows ${start}..${end - 1}`, `${count} NaN/Inf values`, "Pass nanPolicy: 'zero' (stream mode cannot drop vertices), or load with fmri: 'memory'.");
      return selectCols(h, d, end - start);
    } finally {
      await f.close();
    }
  };
  const coordinates = async (): Promise<Float32Array> => {
    const out = new Float32Array((vertexCount.lh + vertexCount.rh) * 3);
    const off = opts.hemiOffset ?? 110;
    let o = 0;
    for (const h of HEMIS) {
      const given = opts.sphere?.[h];
      const candidates = given ? [given] : [path.join(root, 'surfaces', `${h}.sphere`), path.join(root, 'surfaces', `${h}.sphere.gii`)];
      const f = candidates.find((c) => fs.existsSync(c));
      if (!f) throw new FileFormatError(candidates[0]!, 'an fsaverage sphere surface', 'no such file', 'Pass sphere: { lh, rh } with the paths of fsaverage surf/lh.sphere and surf/rh.sphere (FreeSurfer) or GIFTI spheres.');
      const s = f.endsWith('.gii') ? await readGiftiSurface(f) : await readFreesurferSurface(f);
      if (s.vertices.length / 3 !== FSAVERAGE_N) throw new FileFormatError(f, `an fsaverage sphere with ${FSAVERAGE_N} vertices`, `${s.vertices.length / 3} vertices`);
      const sign = h === 'lh' ? -1 : 1;
      for (const i of fsIndex[h]) {
        out[o++] = s.vertices[i * 3]! + sign * off;
        out[o++] = s.vertices[i * 3 + 1]!;
        out[o++] = s.vertices[i * 3 + 2]!;
      }
    }
    return out;
  };
  const split = (o: { seed?: number; valFraction?: number } = {}) => {
    const frac = o.valFraction ?? 841 / 9841;
    if (!(frac >= 0 && frac < 1)) throw new RangeError(`split: valFraction must be in [0, 1), got ${frac}`);
    const perm = new Rng(o.seed ?? 0).shuffle(Array.from({ length: nTrain }, (_, i) => i));
    const nVal = Math.round(frac * nTrain);
    return { train: Int32Array.from(perm.slice(nVal)).sort(), val: Int32Array.from(perm.slice(0, nVal)).sort() };
  };
  const imageAt = (list: string[], what: string) => async (i: number) => {
    if (!(Number.isInteger(i) && i >= 0 && i < list.length)) throw new RangeError(`${what}: index ${i} outside [0, ${list.length})`);
    return readImage(list[i]!);
  };
  return {
    dir: root, trainImagePaths, testImagePaths, vertexCount, fsIndex, challengeIndex,
    trainImage: imageAt(trainImagePaths, 'trainImage'), testImage: imageAt(testImagePaths, 'testImage'),
    fmriRows, fmri: (h: Hemi) => fmriRows(h, 0, nTrain), roiNames, roiMask, coordinates, split, nanReport,
  };
}
