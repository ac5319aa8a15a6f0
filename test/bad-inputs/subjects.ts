/**
 * The subject half of the bad-input corpus: damaged Algonauts and NSD subjects, made at test time (a subject is
 * megabytes) from one tiny synthetic subject of each layout written by the project's own writers
 * (`makeAlgonautsSubject`, `makeNsdSubject`, `writeNpy`, `writeHdf5`, ...), then damaged one way per case.
 *
 * Each case works on a cheap copy of the base subject: folders are real, files are symbolic links to the base,
 * and a damaged file replaces its link. The call is what a user does next: load, then read what was damaged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { readNpy, writeNpy, readHdf5, writeMat, writeNifti, type NDArray } from 'brainnet/io';
import { loadAlgonautsSubject, openNsdSubject, nsdPaths, type AlgonautsOptions } from 'brainnet/data';
import { makeAlgonautsSubject, makeNsdSubject } from 'brainnet/synthetic';
import { judge, type Outcome } from './judge.js';
import { CORPUS } from './files.js';

/** A damaged subject: how to damage a copy, which path a clear error names, and what the user calls. */
interface SubjectCase {
  name: string;
  damage: string;
  /** Damages the copy at `dir`; returns the path (file or folder) at fault. */
  make(dir: string): Promise<string>;
  /** What the user does with the damaged subject. */
  call(dir: string): Promise<unknown>;
}

/** A copy of `base` at `dir`: real folders, files linked to the base (replace a link before writing into it). */
function linkCopy(base: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const e of fs.readdirSync(base, { withFileTypes: true })) {
    const from = path.join(base, e.name), to = path.join(dir, e.name);
    if (e.isDirectory()) linkCopy(from, to);
    else fs.symlinkSync(from, to);
  }
}

/** Replaces the file at `p` (a link into the base) with `bytes`. */
function put(p: string, bytes: Uint8Array | string): string {
  fs.rmSync(p, { force: true, recursive: true });
  fs.writeFileSync(p, bytes);
  return p;
}

/** The bytes of the file at `p` (through its link). */
const bytesOf = (p: string): Buffer => fs.readFileSync(p);

/** An Algonauts case whose call is `loadAlgonautsSubject(dir, opts)` and then `then(subject)`. */
function alg(name: string, damage: string, make: (dir: string) => Promise<string>, o: {
  opts?: (dir: string) => AlgonautsOptions; then?: (s: Awaited<ReturnType<typeof loadAlgonautsSubject>>) => Promise<unknown>; at?: (dir: string) => string;
} = {}): SubjectCase {
  return {
    name: `algonauts/${name}`, damage, make,
    call: async (dir) => {
      const s = await loadAlgonautsSubject(o.at ? o.at(dir) : dir, o.opts?.(dir));
      return o.then ? o.then(s) : s;
    },
  };
}

const fmri = (dir: string, h = 'lh') => path.join(dir, 'training_split/training_fmri', `${h}_training_fmri.npy`);
const roi = (dir: string, file: string, h = 'lh') => path.join(dir, 'roi_masks', `${h}.${file}_fsaverage_space.npy`);

/** Rewrites the lh training fMRI with `edit(data, rows, cols)` applied. */
async function editFmri(dir: string, edit: (d: Float32Array, rows: number, cols: number) => void): Promise<string> {
  const f = fmri(dir);
  const a = await readNpy(f);
  const d = a.data as Float32Array;
  edit(d, a.shape[0]!, a.shape[1]!);
  fs.rmSync(f);
  await writeNpy(f, a);
  return f;
}

/** Rewrites an ROI label file as `dtype` with `map` applied to each label. */
async function editLabels(dir: string, file: string, dtype: 'float32' | 'complex64', map: (v: number) => number): Promise<string> {
  const f = roi(dir, file);
  const a = await readNpy(f);
  const src = Array.from(a.data as Int32Array, map);
  const out: NDArray = dtype === 'float32'
    ? { dtype, shape: a.shape, data: Float32Array.from(src) }
    : { dtype, shape: a.shape, data: Float32Array.from(src.flatMap((v) => [v, 0])) };
  fs.rmSync(f);
  await writeNpy(f, out);
  return f;
}

const ALGONAUTS: SubjectCase[] = [
  alg('fmri-all-nan-row', 'lh fMRI row 5 (one image) entirely NaN; default policy', (d) => editFmri(d, (x, r, c) => x.fill(NaN, 5 * c, 6 * c))),
  alg('fmri-all-nan-row-drop-vertices', "lh fMRI row 5 entirely NaN; nanPolicy 'drop-vertices' (would drop every vertex)",
    (d) => editFmri(d, (x, r, c) => x.fill(NaN, 5 * c, 6 * c)), { opts: () => ({ nanPolicy: 'drop-vertices' }) }),
  alg('fmri-all-nan-column', 'lh fMRI column 7 (one vertex) entirely NaN; default policy', (d) => editFmri(d, (x, r, c) => { for (let i = 0; i < r; i++) x[i * c + 7] = NaN; })),
  alg('fmri-nan-in-a-third-drop-vertices', "a NaN in a third of the lh vertices; nanPolicy 'drop-vertices'",
    (d) => editFmri(d, (x, r, c) => { for (let k = 0; k < c; k += 3) x[((k * 7) % r) * c + k] = NaN; }), { opts: () => ({ nanPolicy: 'drop-vertices' }) }),
  alg('fmri-inf-scattered', 'three Inf values in the lh fMRI; default policy', (d) => editFmri(d, (x, r, c) => { x[c + 1] = Infinity; x[9 * c + 40] = -Infinity; x[17 * c + 2] = Infinity; })),
  alg('fmri-directory', 'lh_training_fmri.npy is a directory', async (d) => { fs.rmSync(fmri(d)); fs.mkdirSync(fmri(d)); return fmri(d); }),
  alg('fmri-empty', 'lh_training_fmri.npy is empty', async (d) => put(fmri(d), '')),
  alg('fmri-cut', 'lh_training_fmri.npy cut in half', async (d) => { const b = bytesOf(fmri(d)); return put(fmri(d), b.subarray(0, b.length >> 1)); }),
  alg('fmri-int32', 'lh fMRI stored as int32', async (d) => {
    const [rows, cols] = (await readNpy(fmri(d))).shape as [number, number];
    fs.rmSync(fmri(d));
    await writeNpy(fmri(d), { dtype: 'int32', shape: [rows, cols], data: new Int32Array(rows * cols) });
    return fmri(d);
  }),
  alg('fmri-rows-disagree', 'one training image removed (one fMRI row more than images)', async (d) => {
    const imgs = path.join(d, 'training_split/training_images');
    fs.rmSync(path.join(imgs, fs.readdirSync(imgs).sort()[0]!));
    return fmri(d);
  }),
  alg('training-images-missing', 'no training_split/training_images folder', async (d) => {
    const p = path.join(d, 'training_split/training_images');
    fs.rmSync(p, { recursive: true });
    return p;
  }),
  alg('test-split-missing', 'no test_split/ folder', async (d) => {
    fs.rmSync(path.join(d, 'test_split'), { recursive: true });
    return path.join(d, 'test_split');
  }, { then: (s) => s.testImage(0) }),
  alg('all-vertices-wrong-length', 'lh.all-vertices mask of 2562 entries', async (d) => {
    const f = path.join(d, 'roi_masks/lh.all-vertices_fsaverage_space.npy');
    fs.rmSync(f);
    await writeNpy(f, { dtype: 'int32', shape: [2562], data: new Int32Array(2562).fill(1) });
    return f;
  }),
  alg('all-vertices-count-disagrees', 'lh.all-vertices mask with one vertex too many', async (d) => {
    const f = path.join(d, 'roi_masks/lh.all-vertices_fsaverage_space.npy');
    const a = await readNpy(f);
    const x = a.data as Int32Array;
    x[x.indexOf(0)] = 1;
    fs.rmSync(f);
    await writeNpy(f, a);
    return f;
  }),
  alg('roi-labels-float-fractional', 'floc-faces labels stored as float32 with 0.3 added (non-integer values)',
    (d) => editLabels(d, 'floc-faces', 'float32', (v) => (v ? v + 0.3 : 0)), { then: (s) => s.roiMask('FFA-1') }),
  alg('roi-labels-complex', 'floc-faces labels stored as complex64', (d) => editLabels(d, 'floc-faces', 'complex64', (v) => v), { then: (s) => s.roiMask('FFA-1') }),
  alg('roi-labels-strings', 'floc-faces labels stored as strings', async (d) => put(roi(d, 'floc-faces'), bytesOf(path.join(CORPUS, 'npy/strings.npy'))),
    { then: (s) => s.roiMask('FFA-1') }),
  alg('roi-labels-missing', 'no lh.floc-faces label file', async (d) => { fs.rmSync(roi(d, 'floc-faces')); return roi(d, 'floc-faces'); }, { then: (s) => s.roiMask('FFA-1') }),
  alg('mapping-json-cut', 'mapping_floc-faces.json cut in the middle of a string', async (d) => {
    const f = path.join(d, 'roi_masks/mapping_floc-faces.json');
    return put(f, bytesOf(f).subarray(0, 30));
  }),
  alg('mapping-json-array', 'mapping_floc-faces.json holds a JSON array', async (d) => put(path.join(d, 'roi_masks/mapping_floc-faces.json'), '["Unknown", "OFA", "FFA-1"]')),
  alg('mapping-json-bad-key', 'mapping_floc-faces.json keys that are not label numbers', async (d) => put(path.join(d, 'roi_masks/mapping_floc-faces.json'), '{"zero": "Unknown", "one": "OFA"}')),
  alg('mapping-json-number-value', 'mapping_floc-faces.json with a number as a label name', async (d) => put(path.join(d, 'roi_masks/mapping_floc-faces.json'), '{"0": "Unknown", "1": 7}')),
  alg('nsdgeneral-wrong-length', 'an nsdgeneral mask of 1000 entries', async (d) => {
    const f = path.join(d, 'lh.nsdgeneral.npy');
    await writeNpy(f, { dtype: 'uint8', shape: [1000], data: new Uint8Array(1000).fill(1) });
    await writeNpy(path.join(d, 'rh.nsdgeneral.npy'), { dtype: 'uint8', shape: [1000], data: new Uint8Array(1000).fill(1) });
    return f;
  }, { opts: (d) => ({ nsdgeneral: { lh: path.join(d, 'lh.nsdgeneral.npy'), rh: path.join(d, 'rh.nsdgeneral.npy') } }) }),
  alg('sphere-missing', 'no surfaces/ folder', async (d) => {
    fs.rmSync(path.join(d, 'surfaces'), { recursive: true });
    return path.join(d, 'surfaces');
  }, { then: (s) => s.coordinates() }),
  alg('sphere-cut', 'surfaces/lh.sphere cut in half', async (d) => {
    const f = path.join(d, 'surfaces/lh.sphere');
    return put(f, bytesOf(f).subarray(0, bytesOf(f).length >> 1));
  }, { then: (s) => s.coordinates() }),
  alg('train-image-cut', 'the first training PNG cut in half', async (d) => {
    const imgs = path.join(d, 'training_split/training_images');
    const f = path.join(imgs, fs.readdirSync(imgs).sort()[0]!);
    return put(f, bytesOf(f).subarray(0, bytesOf(f).length >> 1));
  }, { then: (s) => s.trainImage(0) }),
  alg('subject-is-a-file', 'the subject path is a file', async (d) => put(path.join(d, 'subject.txt'), 'not a folder'), { at: (d) => path.join(d, 'subject.txt') }),
];

/** An NSD case whose call is `openNsdSubject(dir)` and then `then(subject)`. */
function nsd(name: string, damage: string, make: (dir: string) => Promise<string>,
  then?: (s: Awaited<ReturnType<typeof openNsdSubject>>) => Promise<unknown>, at?: (dir: string) => string): SubjectCase {
  return {
    name: `nsd/${name}`, damage, make,
    call: async (dir) => {
      const s = await openNsdSubject(at ? at(dir) : dir);
      return then ? then(s) : s;
    },
  };
}

const P = nsdPaths(1);
const betas = (dir: string, s = 1) => path.join(dir, P.betas, `betas_session${String(s).padStart(2, '0')}.nii.gz`);

/** Rewrites a .nii.gz with its decompressed header edited by `edit`. */
function editNiftiGz(f: string, edit: (dv: DataView) => void): string {
  const raw = zlib.gunzipSync(bytesOf(f));
  edit(new DataView(raw.buffer, raw.byteOffset, raw.byteLength));
  return put(f, zlib.gzipSync(raw, { level: 1 }));
}

const NSD_CASES: SubjectCase[] = [
  nsd('betas-gz-cut', 'betas_session01.nii.gz cut in half', async (d) => { const b = bytesOf(betas(d)); return put(betas(d), b.subarray(0, b.length >> 1)); }, (s) => s.betas(1)),
  nsd('betas-gz-no-trailer', 'betas_session01.nii.gz without its gzip trailer', async (d) => { const b = bytesOf(betas(d)); return put(betas(d), b.subarray(0, b.length - 8)); }, (s) => s.betas(1)),
  nsd('betas-749-trials', 'betas_session01 header says 749 volumes', async (d) => editNiftiGz(betas(d), (dv) => dv.setInt16(48, 749, true))),
  nsd('betas-bitpix-disagrees', 'betas_session02 datatype int16 with bitpix 32', async (d) => editNiftiGz(betas(d, 2), (dv) => dv.setInt16(72, 32, true)), (s) => s.betas(2)),
  nsd('betas-vox-offset-nan', 'betas_session02 vox_offset NaN', async (d) => editNiftiGz(betas(d, 2), (dv) => dv.setFloat32(108, NaN, true)), (s) => s.betas(2)),
  nsd('betas-session-directory', 'a directory named betas_session03.nii.gz', async (d) => { fs.mkdirSync(betas(d, 3)); return betas(d, 3); }, (s) => s.betas(3)),
  nsd('expdesign-cut', 'nsd_expdesign.mat cut in half', async (d) => { const f = path.join(d, P.expdesign); return put(f, bytesOf(f).subarray(0, bytesOf(f).length >> 1)); }),
  nsd('expdesign-missing-variable', 'nsd_expdesign.mat without subjectim', async (d) => {
    const f = path.join(d, P.expdesign);
    fs.rmSync(f);
    await writeMat(f, { masterordering: { dtype: 'float64', shape: [1, 3], data: Float64Array.from([1, 2, 3]) } });
    return f;
  }),
  nsd('expdesign-out-of-range', 'masterordering value 20000 beyond the 10000 images', async (d) => {
    const f = path.join(d, P.expdesign);
    fs.rmSync(f);
    await writeMat(f, {
      masterordering: { dtype: 'float64', shape: [1, 3], data: Float64Array.from([1, 20000, 3]) },
      subjectim: { dtype: 'float64', shape: [8, 10000], data: new Float64Array(80000).fill(1) },
      sharedix: { dtype: 'float64', shape: [1, 3], data: Float64Array.from([1, 2, 3]) },
    });
    return f;
  }),
  nsd('brick-gzip-chunk-damaged', 'one gzip chunk (image) of nsd_stimuli.hdf5 damaged', async (d) => {
    const f = path.join(d, P.brick);
    return put(f, damageOneChunk(bytesOf(f), 32 * 32 * 3));
  }, async (s) => s.images(Array.from((await readHdf5(s.paths.brick, 'nsdId')).data as Int32Array))),
  nsd('brick-no-imgBrick', 'an HDF5 brick without imgBrick', async (d) => put(path.join(d, P.brick), bytesOf(path.join(CORPUS, 'hdf5/string-dataset.h5'))), (s) => s.images([1])),
  nsd('stiminfo-row-cut', 'nsd_stim_info_merged.csv with its last row cut', async (d) => {
    const f = path.join(d, P.stiminfo);
    const t = bytesOf(f).toString('utf8').trimEnd();
    return put(f, t.slice(0, t.length - 40));
  }, (s) => s.stimInfo()),
  nsd('roi-other-grid', 'nsdgeneral.nii.gz on a 3 x 3 x 3 grid', async (d) => {
    const f = path.join(d, P.roi, 'nsdgeneral.nii.gz');
    fs.rmSync(f);
    await writeNifti(f, { dtype: 'uint8', shape: [3, 3, 3], data: new Uint8Array(27).fill(1) });
    return f;
  }, (s) => s.roi('nsdgeneral')),
  nsd('ncsnr-missing', 'no ncsnr.nii.gz', async (d) => { fs.rmSync(path.join(d, P.ncsnr)); return path.join(d, P.ncsnr); }, (s) => s.ncsnr()),
  nsd('root-missing', 'a root folder that does not exist', async (d) => path.join(d, 'no-such-root'), undefined, (d) => path.join(d, 'no-such-root')),
];

/**
 * `h5` with the deflate stream of its first gzip chunk that inflates to `chunkBytes` bytes damaged.
 * Chunks are found by trying to inflate at each zlib header (0x78 0x01 / 0x5e / 0x9c / 0xda).
 */
function damageOneChunk(h5: Buffer, chunkBytes: number): Buffer {
  for (let i = 0; i + 2 < h5.length; i++) {
    if (h5[i] !== 0x78 || ![0x01, 0x5e, 0x9c, 0xda].includes(h5[i + 1]!)) continue;
    try {
      const out = zlib.inflateSync(h5.subarray(i), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      if (out.length !== chunkBytes) continue;
    } catch { continue; }
    const bad = Buffer.from(h5);
    for (let k = i + 6; k < i + 30; k++) bad[k] = bad[k]! ^ 0xff;
    return bad;
  }
  throw new Error(`bad-inputs: no gzip chunk of ${chunkBytes} bytes found in the HDF5 file`);
}

/** Every damaged-subject case. */
export const SUBJECT_CASES: SubjectCase[] = [...ALGONAUTS, ...NSD_CASES];

/** The two tiny base subjects, made once in `tmp`. */
export async function makeBaseSubjects(tmp: string): Promise<{ algonauts: string; nsd: string }> {
  const algonauts = path.join(tmp, 'base-algonauts'), nsdDir = path.join(tmp, 'base-nsd');
  await makeAlgonautsSubject({ size: 'tiny', seed: 24, out: algonauts, train: 40, test: 4, world: 'v2' }); // damaged files, not science: the fast world
  await makeNsdSubject({ size: 'tiny', seed: 24, out: nsdDir, imageSize: 32, world: 'v2' });
  return { algonauts, nsd: nsdDir };
}

/** Damages a copy of the right base per case and judges what the user's call does; one outcome per case. */
export async function runSubjectCases(tmp: string, base: { algonauts: string; nsd: string }, cases = SUBJECT_CASES): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const c of cases) {
    const dir = path.join(tmp, c.name.replace('/', '-'));
    linkCopy(c.name.startsWith('nsd/') ? base.nsd : base.algonauts, dir);
    const file = await c.make(dir);
    out.push(await judge({ id: c.name, file, damage: c.damage }, () => c.call(dir)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
