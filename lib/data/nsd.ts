/**
 * Readers for the Natural Scenes Dataset (NSD) under its release names: betas per session
 * (`betas_sessionNN.nii.gz`, int16 ×300, 750 trials), the experiment design (`nsd_expdesign.mat`),
 * the stimulus info CSV (`nsd_stim_info_merged.csv`), the image brick (`nsd_stimuli.hdf5`), ROI
 * volumes and ncsnr. Work on a real NSD download or on a synthetic one from `makeNsdSubject`.
 * Volumes come back as `readNifti` gives them: `[T, Z, Y, X]` / `[Z, Y, X]`, x fastest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readNifti, readNiftiHeader, type NiftiVolume } from '../io/nifti.js';
import { readMat, isMatArray, type MatValue } from '../io/mat.js';
import { openHdf5 } from '../io/hdf5.js';
import { FileFormatError } from '../io/errors.js';
import { checkInputFile } from '../io/input.js';
import { type NDArray } from '../io/ndarray.js';
import { NSD, nsdBetaName, nsdPaths } from './nsd-layout.js';

/** The NSD experiment design. All indices 1-based, as in the .mat file. */
export interface NsdExpDesign {
  /** Trial -> column of subjectim (1..10000). [30000] */
  masterordering: Int32Array;
  /** NSD 73k ids (1..73000) of each subject's images, [8, 10000] row-major. */
  subjectim: Int32Array;
  subjects: number;
  imagesPerSubject: number;
  /** 73k ids of the shared images. [1000] */
  sharedix: Int32Array;
}

/** One row of nsd_stim_info_merged.csv. */
export interface NsdStimInfo {
  /** 0-based NSD id (the CSV's nsdId column). */
  nsdId: number;
  cocoId: number;
  cocoSplit: string;
  /** Crop fractions [top, bottom, left, right]. */
  cropBox: [number, number, number, number];
  shared1000: boolean;
  /** Which of subject1..subject8 saw the image. [8] */
  subjects: boolean[];
  /** subjectN_rep0..2: 1-based trial numbers (0 = not shown), [8][3]; empty when the CSV lacks those columns. */
  reps: number[][];
}

/** Parses a cropBox string `(top, bottom, left, right)` into four fractions in [0, 1). */
export function parseCropBox(text: string, file = '<cropBox>', row?: number): [number, number, number, number] {
  const m = /^\s*\(\s*([^,()]+),\s*([^,()]+),\s*([^,()]+),\s*([^,()]+)\s*\)\s*$/.exec(text);
  const v = m ? m.slice(1, 5).map(Number) : [];
  if (!m || v.some((x) => !Number.isFinite(x) || x < 0 || x >= 1)) {
    throw new FileFormatError(file, `a cropBox "(top, bottom, left, right)" of four fractions in [0, 1)${row !== undefined ? ` in row ${row}` : ''}`,
      JSON.stringify(text), 'Fix that row of nsd_stim_info_merged.csv (the release writes e.g. "(0, 0, 0.1671875, 0.1671875)").');
  }
  return v as [number, number, number, number];
}

/** Splits one CSV line, honouring double quotes. */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '', q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (q) {
      if (c === '"') { if (line[i + 1] === '"') { cur += '"'; i++; } else q = false; } else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Parses the text of nsd_stim_info_merged.csv into rows (needs cocoId, cocoSplit, cropBox, nsdId, shared1000, subject1..8). */
export function parseNsdStimInfo(text: string, file = 'nsd_stim_info_merged.csv'): NsdStimInfo[] {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length === 0) throw new FileFormatError(file, 'a CSV with a header row', 'an empty file');
  const head = csvFields(lines[0]!);
  const col = (name: string, required = true): number => {
    const j = head.indexOf(name);
    if (j < 0 && required) throw new FileFormatError(file, `a column '${name}'`, `columns ${head.filter(Boolean).slice(0, 12).join(', ')}${head.length > 12 ? ', ...' : ''}`, 'Use the NSD release file nsddata/experiments/nsd/nsd_stim_info_merged.csv.');
    return j;
  };
  const cId = col('nsdId'), cCoco = col('cocoId'), cSplit = col('cocoSplit'), cCrop = col('cropBox'), cShared = col('shared1000');
  const cSub = Array.from({ length: 8 }, (_, s) => col(`subject${s + 1}`));
  const cRep = Array.from({ length: 8 }, (_, s) => [0, 1, 2].map((r) => col(`subject${s + 1}_rep${r}`, false)));
  const hasReps = cRep.every((r) => r.every((j) => j >= 0));
  const truthy = (s: string) => s === 'True' || s === 'true' || s === '1';
  return lines.slice(1).map((line, k) => {
    const f = csvFields(line);
    if (f.length < head.length) throw new FileFormatError(file, `${head.length} fields in row ${k + 1}`, `${f.length}`, 'The file is truncated or damaged.');
    const nsdId = Number(f[cId]);
    if (!Number.isInteger(nsdId)) throw new FileFormatError(file, `an integer nsdId in row ${k + 1}`, JSON.stringify(f[cId]));
    return {
      nsdId, cocoId: Number(f[cCoco]), cocoSplit: f[cSplit]!, cropBox: parseCropBox(f[cCrop]!, file, k + 1),
      shared1000: truthy(f[cShared]!), subjects: cSub.map((j) => truthy(f[j]!)),
      reps: hasReps ? cRep.map((r) => r.map((j) => Number(f[j]))) : [],
    };
  });
}

/** Reads nsd_stim_info_merged.csv. */
export async function readNsdStimInfo(file: string): Promise<NsdStimInfo[]> {
  if (!fs.existsSync(file)) throw new FileFormatError(file, 'the NSD stimulus info CSV', 'no such file', 'It is nsddata/experiments/nsd/nsd_stim_info_merged.csv in the NSD release.');
  return parseNsdStimInfo(await fs.promises.readFile(file, 'utf8'), file);
}

/** Reads nsd_expdesign.mat: masterordering [30000], subjectim [8, 10000], sharedix [1000] (1-based). */
export async function readNsdExpDesign(file: string): Promise<NsdExpDesign> {
  if (!fs.existsSync(file)) throw new FileFormatError(file, 'the NSD experiment design', 'no such file', 'It is nsddata/experiments/nsd/nsd_expdesign.mat in the NSD release.');
  const vars = await readMat(file);
  const get = (name: string): NDArray => {
    const v: MatValue | undefined = vars[name];
    if (v === undefined) throw new FileFormatError(file, `a variable '${name}' (NSD experiment design)`, `variables ${Object.keys(vars).join(', ') || '(none)'}`, 'Use nsd_expdesign.mat from the NSD release.');
    if (!isMatArray(v)) throw new FileFormatError(file, `'${name}' to be a numeric array`, typeof v === 'string' ? 'a string' : 'a struct or cell');
    return v;
  };
  const ints = (a: NDArray) => Int32Array.from(a.data as ArrayLike<number>, Number);
  const mo = get('masterordering'), si = get('subjectim'), sh = get('sharedix');
  if (si.shape.length !== 2) throw new FileFormatError(file, 'subjectim of shape [subjects, images]', `shape [${si.shape.join(', ')}]`);
  const masterordering = ints(mo), subjectim = ints(si);
  const imagesPerSubject = si.shape[1]!;
  for (const c of masterordering) if (c < 1 || c > imagesPerSubject) throw new FileFormatError(file, `masterordering values in 1..${imagesPerSubject}`, `${c}`);
  return { masterordering, subjectim, subjects: si.shape[0]!, imagesPerSubject, sharedix: ints(sh) };
}

/** 1-based 73k ids of the trials of a session (1-based) for a subject (1-based). [750] */
export function nsdSessionImages(design: NsdExpDesign, session: number, subject = 1): Int32Array {
  const T = NSD.trialsPerSession;
  if (session < 1 || session * T > design.masterordering.length) throw new RangeError(`nsdSessionImages: session ${session} is outside the design's ${design.masterordering.length / T} sessions`);
  if (subject < 1 || subject > design.subjects) throw new RangeError(`nsdSessionImages: subject ${subject} is outside 1..${design.subjects}`);
  return Int32Array.from(design.masterordering.subarray((session - 1) * T, session * T), (c) => design.subjectim[(subject - 1) * design.imagesPerSubject + c - 1]!);
}

/** Session numbers (1-based, ascending) with a `betas_sessionNN.nii.gz` (or `.nii`) in `betasDir`. */
export function listNsdSessions(betasDir: string): number[] {
  if (!fs.existsSync(betasDir)) throw new FileFormatError(betasDir, 'a folder of betas_sessionNN.nii.gz files', 'no such folder', 'It is nsddata_betas/ppdata/subjNN/func1pt8mm/betas_fithrf_GLMdenoise_RR in the NSD release.');
  return fs.readdirSync(betasDir).map((n) => /^betas_session(\d+)\.nii(\.gz)?$/.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** A session's betas as stored (int16, ÷300 for percent signal change): data `[T, Z, Y, X]`; `trials: [t0, t1)` reads a range. Checks the file has 750 trials. */
export async function readNsdBetas(betasDir: string, session: number, opts: { trials?: [number, number] } = {}): Promise<NiftiVolume> {
  let file = path.join(betasDir, nsdBetaName(session));
  if (!fs.existsSync(file) && fs.existsSync(file.replace(/\.gz$/, ''))) file = file.replace(/\.gz$/, '');
  if (!fs.existsSync(file)) {
    const have = fs.existsSync(betasDir) ? listNsdSessions(betasDir) : [];
    throw new FileFormatError(file, `the betas of session ${session}`, 'no such file', have.length ? `Sessions present: ${have.join(', ')}.` : 'No betas_sessionNN files are in that folder.');
  }
  const T = (await readNiftiHeader(file)).dims[3] ?? 1;
  if (T !== NSD.trialsPerSession) throw new FileFormatError(file, `${NSD.trialsPerSession} trials (volumes) per NSD session`, `${T}`, 'Each NSD session file holds 750 single-trial betas; check the file is a betas_sessionNN file.');
  return readNifti(file, { volumes: opts.trials ?? [0, T] });
}

/** Betas of the voxels of `mask` (flat indices into [Z, Y, X]) as percent signal change: `[T, V]`. */
export function nsdMaskedBetas(vol: NiftiVolume, voxels: Int32Array): Float32Array {
  const [T, Z, Y, X] = vol.data.shape as [number, number, number, number];
  const n = Z * Y * X, V = voxels.length, src = vol.data.data as Int16Array;
  const out = new Float32Array(T * V);
  for (let t = 0; t < T; t++) for (let k = 0; k < V; k++) out[t * V + k] = src[t * n + voxels[k]!]! / NSD.betaScale;
  void X;
  return out;
}

/** Z-scores each column of `[T, V]` in place (per voxel within one session). */
export function zscoreSession(data: Float32Array, T: number): Float32Array {
  const V = data.length / T;
  for (let k = 0; k < V; k++) {
    let s = 0, ss = 0;
    for (let t = 0; t < T; t++) { const v = data[t * V + k]!; s += v; ss += v * v; }
    const m = s / T, sd = Math.sqrt(Math.max(0, ss / T - m * m)) || 1;
    for (let t = 0; t < T; t++) data[t * V + k] = (data[t * V + k]! - m) / sd;
  }
  return data;
}

/** Reads an ROI or ncsnr volume (`[Z, Y, X]`); with `like` (a betas volume or dims [X, Y, Z]) checks it has the same grid. */
export async function readNsdVolume(file: string, like?: NiftiVolume | number[]): Promise<NiftiVolume> {
  if (!fs.existsSync(file)) throw new FileFormatError(file, 'an NSD ROI / ncsnr volume', 'no such file', 'ROI volumes are in nsddata/ppdata/subjNN/func1pt8mm/roi/ of the NSD release.');
  const vol = await readNifti(file);
  if (like) {
    const want = (Array.isArray(like) ? like : like.dims).slice(0, 3);
    const got = vol.dims.slice(0, 3);
    if (want.some((d, i) => d !== got[i])) throw new FileFormatError(file, `a volume on the betas' grid [${want.join(', ')}]`, `[${got.join(', ')}]`, 'Use the ROI file of the same space (func1pt8mm vs func1mm) and subject as the betas.');
  }
  return vol;
}

/** Flat voxel indices (into [Z, Y, X]) where an ROI volume equals one of `labels` (default: > 0). [V] */
export function nsdRoiVoxels(vol: NiftiVolume, labels?: number[]): Int32Array {
  const d = vol.data.data as ArrayLike<number>;
  const out: number[] = [];
  for (let i = 0; i < d.length; i++) if (labels ? labels.includes(d[i]!) : d[i]! > 0) out.push(i);
  return Int32Array.from(out);
}

/** Reads a FreeSurfer-style `.ctab` name table (`index name r g b a` lines) into index -> name. */
export async function readCtab(file: string): Promise<Map<number, string>> {
  checkInputFile(file, 'colour table (.ctab)');
  const m = new Map<number, string>();
  for (const line of (await fs.promises.readFile(file, 'utf8')).split(/\r?\n/)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 2 && /^\d+$/.test(f[0]!)) m.set(Number(f[0]), f[1]!);
  }
  return m;
}

/** Images from the brick `[n, 425, 425, 3]` uint8 for 1-based 73k ids; uses the `nsdId` row index when the file has one (synthetic), else row = id - 1. */
export async function readNsdImages(file: string, nsdIds: ArrayLike<number>): Promise<NDArray> {
  const h = await openHdf5(file, 'r');
  try {
    const names = h.list().map((e) => e.path);
    if (!names.includes('/imgBrick')) throw new FileFormatError(file, "a dataset 'imgBrick'", `${names.join(', ')}`, 'Use nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5.');
    const shape = h.info('imgBrick').shape;
    const rowOf = new Map<number, number>();
    if (names.includes('/nsdId')) Array.from(h.read('nsdId').data as Int32Array).forEach((id, r) => rowOf.set(id, r));
    const n = nsdIds.length, size = shape[1]! * shape[2]! * shape[3]!;
    const out = new Uint8Array(n * size);
    for (let k = 0; k < n; k++) {
      const id = nsdIds[k]!;
      const r = rowOf.size ? rowOf.get(id) : id - 1;
      if (r === undefined || r < 0 || r >= shape[0]!) throw new FileFormatError(file, `an image for NSD id ${id}`, rowOf.size ? 'no such id in its nsdId dataset' : `${shape[0]} rows`);
      out.set(h.read('imgBrick', [[r, r + 1], null, null, null]).data as Uint8Array, k * size);
    }
    return { dtype: 'uint8', shape: [n, shape[1]!, shape[2]!, shape[3]!], data: out };
  } finally {
    h.close();
  }
}

/** An NSD subject folder (the release's root, holding nsddata/, nsddata_betas/, nsddata_stimuli/). */
export interface NsdSubject {
  root: string;
  subject: number;
  /** Absolute paths of the subject's files (see `nsdPaths`). */
  paths: ReturnType<typeof nsdPaths>;
  /** Session numbers present. */
  sessions: number[];
  design: NsdExpDesign;
  /** Grid [X, Y, Z] of the betas (from session 1's header). */
  dims: number[];
  /** Reads a session's betas; see `readNsdBetas`. */
  betas(session: number, trials?: [number, number]): Promise<NiftiVolume>;
  /** Reads an ROI volume by name (`nsdgeneral`, `HCP_MMP1`, `prf-visualrois`, `floc-faces`, ...), checked against the betas' grid. */
  roi(name: string): Promise<NiftiVolume>;
  /** Reads ncsnr (float32 [Z, Y, X]). */
  ncsnr(): Promise<NiftiVolume>;
  /** 1-based 73k ids of a session's 750 trials. */
  sessionImages(session: number): Int32Array;
  stimInfo(): Promise<NsdStimInfo[]>;
  images(nsdIds: ArrayLike<number>): Promise<NDArray>;
}

/** Opens an NSD release root (real or synthetic) for one subject (1-based): lists sessions, reads the design, checks session 1's trial count. */
export async function openNsdSubject(root: string, opts: { subject?: number } = {}): Promise<NsdSubject> {
  const subject = opts.subject ?? 1;
  const rel = nsdPaths(subject);
  const paths = Object.fromEntries(Object.entries(rel).map(([k, v]) => [k, path.join(root, v)])) as typeof rel;
  const sessions = listNsdSessions(paths.betas);
  if (sessions.length === 0) throw new FileFormatError(paths.betas, 'betas_sessionNN.nii.gz files', 'none', 'Download the subject\'s betas or generate a subject with make-subject --layout nsd.');
  const design = await readNsdExpDesign(paths.expdesign);
  const first = await readNsdBetas(paths.betas, sessions[0]!, { trials: [0, 0] });
  const dims = first.dims.slice(0, 3);
  return {
    root, subject, paths, sessions, design, dims,
    betas: (s, trials) => readNsdBetas(paths.betas, s, { trials }),
    roi: (name) => readNsdVolume(path.join(paths.roi, `${name}.nii.gz`), dims),
    ncsnr: () => readNsdVolume(paths.ncsnr, dims),
    sessionImages: (s) => nsdSessionImages(design, s, subject),
    stimInfo: () => readNsdStimInfo(paths.stiminfo),
    images: (ids) => readNsdImages(paths.brick, ids),
  };
}
