/**
 * NSD step 1: z-score the single-trial betas of each session and average the repeats of each image.
 *
 * Streams: one session's betas are in memory at a time. Each finished session is written as a
 * partial result (`partial/session_NN.npy`, its z-scored trials `[750, V]` float32) and recorded in a
 * small state file, both atomically, so an interrupted run resumes without redoing finished
 * sessions. The final pass averages the repeats block by block of images, reading only the trial
 * rows it needs from the partials.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { DTYPE_BYTES } from '../../io/ndarray.js';
import { readNiftiHeader } from '../../io/nifti.js';
import { writeNpy, openNpy, readNpy, npyHeaderBytes, type NpyFile } from '../../io/npy.js';
import { openHdf5 } from '../../io/hdf5.js';
import { writeFileAtomic, withAtomicFile } from '../../io/atomic.js';
import { FileFormatError } from '../../io/errors.js';
import { withFolderLock } from '../../io/lock.js';
import { NSD, nsdBetaName, nsdPaths } from '../nsd-layout.js';
import { openNsdSubject, readNsdVolume, readNsdExpDesign, nsdRoiVoxels, type NsdSubject, type NsdExpDesign } from '../nsd.js';

/** Z-scores each column of `x` `[T, V]` in place (population std over T, two-pass in float64; constant or NaN columns -> 0). Pure. */
export function zscoreColumns(x: Float32Array, T: number): Float32Array {
  const V = x.length / T;
  const mean = new Float64Array(V), ss = new Float64Array(V), inv = new Float64Array(V);
  for (let t = 0; t < T; t++) { const o = t * V; for (let k = 0; k < V; k++) mean[k]! += x[o + k]!; }
  for (let k = 0; k < V; k++) mean[k]! /= T;
  for (let t = 0; t < T; t++) { const o = t * V; for (let k = 0; k < V; k++) { const d = x[o + k]! - mean[k]!; ss[k]! += d * d; } }
  for (let k = 0; k < V; k++) { const sd = Math.sqrt(ss[k]! / T); inv[k] = sd > 0 && Number.isFinite(sd) ? 1 / sd : 0; }
  for (let t = 0; t < T; t++) {
    const o = t * V;
    for (let k = 0; k < V; k++) { const z = (x[o + k]! - mean[k]!) * inv[k]!; x[o + k] = Number.isFinite(z) ? z : 0; }
  }
  return x;
}

/** Z-scores the mask voxels of one session's stored betas: `raw` `[T, N]` (N = grid voxels), ÷`scale`, per voxel over trials (population std; constant or NaN -> 0). Pure. Returns `[T, V]` float32. */
export function zscoreMaskedSession(raw: ArrayLike<number>, T: number, N: number, voxels: Int32Array, scale: number = NSD.betaScale): Float32Array {
  const V = voxels.length;
  const out = new Float32Array(T * V);
  for (let t = 0; t < T; t++) { const o = t * V, b = t * N; for (let k = 0; k < V; k++) out[o + k] = raw[b + voxels[k]!]! / scale; }
  return zscoreColumns(out, T);
}

/**
 * Streams a 4-D NIfTI (`.nii` or `.nii.gz`) volume by volume and keeps only `voxels` (flat indices into [Z, Y, X]),
 * divided by `scale`: `[T, V]` float32. Memory: one volume plus the output, never the whole file.
 */
export async function readNiftiMasked(file: string, voxels: Int32Array, scale = 1): Promise<{ T: number; data: Float32Array }> {
  const h = await readNiftiHeader(file);
  const [X, Y, Z] = [h.dims[0] ?? 1, h.dims[1] ?? 1, h.dims[2] ?? 1];
  const N = X * Y * Z, T = h.dims.length > 3 ? h.dims.slice(3).reduce((a, b) => a * b, 1) : 1;
  const item = DTYPE_BYTES[h.dtype];
  const getters: Partial<Record<string, (dv: DataView, o: number) => number>> = {
    int16: (dv, o) => dv.getInt16(o, h.littleEndian), uint8: (dv, o) => dv.getUint8(o), int8: (dv, o) => dv.getInt8(o),
    uint16: (dv, o) => dv.getUint16(o, h.littleEndian), int32: (dv, o) => dv.getInt32(o, h.littleEndian), uint32: (dv, o) => dv.getUint32(o, h.littleEndian),
    float32: (dv, o) => dv.getFloat32(o, h.littleEndian), float64: (dv, o) => dv.getFloat64(o, h.littleEndian),
  };
  const get = getters[h.dtype];
  if (!get) throw new FileFormatError(file, 'betas of an integer or float dtype', h.dtype);
  const slope = h.sclSlope && Number.isFinite(h.sclSlope) ? h.sclSlope : 1, inter = h.sclSlope && Number.isFinite(h.sclInter) ? h.sclInter : 0;
  const V = voxels.length, out = new Float32Array(T * V);
  const volBytes = N * item, vol = new Uint8Array(volBytes), dv = new DataView(vol.buffer);
  const i16 = h.dtype === 'int16' && h.littleEndian ? new Int16Array(vol.buffer) : null;
  let fill = 0, t = 0, skip = h.voxOffset;
  const flush = () => {
    const o = t * V;
    if (i16 && slope === 1 && inter === 0) for (let k = 0; k < V; k++) out[o + k] = i16[voxels[k]!]! / scale;
    else for (let k = 0; k < V; k++) out[o + k] = (get(dv, voxels[k]! * item) * slope + inter) / scale;
    t++; fill = 0;
  };
  const src = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const gz = /\.gz$/.test(file) || (await isGzip(file));
  const stream: AsyncIterable<Buffer> = gz ? src.pipe(zlib.createGunzip({ chunkSize: 1 << 20 })) : src;
  try {
    for await (const chunk of stream) {
      let p = 0;
      if (skip > 0) { const n = Math.min(skip, chunk.length); skip -= n; p = n; }
      while (p < chunk.length && t < T) {
        const n = Math.min(volBytes - fill, chunk.length - p);
        vol.set(chunk.subarray(p, p + n), fill);
        fill += n; p += n;
        if (fill === volBytes) flush();
      }
      if (t >= T) break;
    }
  } catch (e) {
    throw new FileFormatError(file, 'a complete (gzip) NIfTI stream', `a corrupt or truncated one (${(e as Error).message})`, 'Re-create or re-download the file; `gzip -t` checks it.');
  } finally {
    src.destroy();
    if (stream !== src) (stream as zlib.Gunzip).destroy();
  }
  if (t < T) throw new FileFormatError(file, `${T} volumes of ${N} voxels`, `the data ends after ${t} volumes`, 'The file is truncated; re-create or re-download it.');
  return { T, data: out };
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, 'r');
  try { const b = Buffer.alloc(2); await fh.read(b, 0, 2, 0); return b[0] === 0x1f && b[1] === 0x8b; } finally { await fh.close(); }
}

/** Averages the trials of each image key over sessions: `z[s]` `[T, V]`, `keys[s]` `[T]` -> ascending unique keys and `[images, V]` float32 means (float64 sums). Pure, in memory; {@link zscoreNsd} streams the same computation. */
export function averageRepeats(z: Float32Array[], keys: ArrayLike<number>[], V: number): { keys: Int32Array; mean: Float32Array } {
  const all = new Set<number>();
  for (const k of keys) for (let t = 0; t < k.length; t++) all.add(k[t]!);
  const sorted = Int32Array.from([...all].sort((a, b) => a - b));
  const row = new Map<number, number>();
  sorted.forEach((k, r) => row.set(k, r));
  const sum = new Float64Array(sorted.length * V), n = new Float64Array(sorted.length);
  z.forEach((zs, s) => {
    const ks = keys[s]!;
    if (zs.length !== ks.length * V) throw new RangeError(`averageRepeats: session ${s} has ${zs.length} values, expected ${ks.length} x ${V}`);
    for (let t = 0; t < ks.length; t++) {
      const r = row.get(ks[t]!)!, o = r * V, i = t * V;
      n[r]!++;
      for (let k = 0; k < V; k++) sum[o + k]! += zs[i + k]!;
    }
  });
  const mean = new Float32Array(sum.length);
  for (let r = 0; r < sorted.length; r++) for (let k = 0; k < V; k++) mean[r * V + k] = sum[r * V + k]! / n[r]!;
  return { keys: sorted, mean };
}

/** Rows of the output: the subject's images (1-based 73k ids) shown in `sessions`, in subjectim column order, with repeat counts. Pure. */
export function nsdImageOrder(design: NsdExpDesign, sessions: number[], subject = 1): { nsdIds: Int32Array; columns: Int32Array; counts: Uint8Array } {
  const T = NSD.trialsPerSession;
  const counts = new Uint16Array(design.imagesPerSubject + 1);
  for (const s of sessions) for (let t = 0; t < T; t++) counts[design.masterordering[(s - 1) * T + t]!]!++;
  const cols: number[] = [];
  for (let c = 1; c <= design.imagesPerSubject; c++) if (counts[c]) cols.push(c);
  return {
    columns: Int32Array.from(cols),
    nsdIds: Int32Array.from(cols, (c) => design.subjectim[(subject - 1) * design.imagesPerSubject + c - 1]!),
    counts: Uint8Array.from(cols, (c) => counts[c]!),
  };
}

/** Options of {@link zscoreNsd}. */
export interface ZscoreNsdOptions {
  /** NSD release root (real or synthetic). */
  root: string;
  /** 1-based subject (default 1). */
  subject?: number;
  /** Output folder: betas_zscored.npy, images.npy, images.json, voxels.npy, zscore_state.json, partial/. */
  out: string;
  /** Mask: a NIfTI path (voxels > 0), an ROI name under the subject's roi/ folder (default 'nsdgeneral'), or flat voxel indices into [Z, Y, X]. */
  mask?: string | Int32Array;
  /** 'func1pt8mm' (default; NIfTI volumes) or 'fsaverage' (surface HDF5 `{lh,rh}.betas_sessionNN.hdf5`, vertices lh then rh; `mask` then indexes that concatenation or is a .npy of indices, default all). */
  space?: 'func1pt8mm' | 'fsaverage';
  /** Sessions to use (1-based; default all present). */
  sessions?: number[];
  /** Stop (resumably) after this many sessions have been processed in this call; for tests and batch jobs. */
  stopAfterSessions?: number;
  /** Images per block of the final averaging pass (default 256). */
  blockImages?: number;
  /** Called after each session (done, total) and at the end. */
  onProgress?: (stage: 'session' | 'average', done: number, total: number, info: string) => void;
  /** Where notes go (a stale lock taken over, leftovers of a killed run removed); default console.error. */
  log?: ((line: string) => void) | null;
}

/** What {@link zscoreNsd} returns. */
export interface ZscoreNsdResult {
  /** True when the averaged output was written (false after `stopAfterSessions`). */
  complete: boolean;
  out: string;
  files: { betas: string; images: string; imagesJson: string; voxels: string; state: string };
  sessions: number[];
  /** Sessions processed by this call (the others were resumed from partials). */
  processed: number[];
  resumed: number[];
  /** Seconds of the final averaging pass (when complete). */
  averageSeconds?: number;
  images: number;
  voxels: number;
  /** Per processed session, seconds. */
  secondsPerSession: number[];
  /** Per processed session: seconds reading (decompressing + masking), z-scoring and writing the partial. */
  timings: Array<{ session: number; read: number; zscore: number; write: number }>;
  /** Peak resident memory of the process (ru_maxrss, so it includes whatever ran before in the same process), MiB. */
  peakRssMB: number;
}

interface ZState { version: 1; key: string; done: number[] }

/** Parses `--sessions` text: `1-3,5` -> [1, 2, 3, 5]. */
export function parseSessionList(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new RangeError(`sessions: expected numbers and ranges like '1-3,5', found '${part}'`);
    const a = Number(m[1]), b = m[2] ? Number(m[2]) : a;
    if (a < 1 || b < a) throw new RangeError(`sessions: bad range '${part}'`);
    for (let s = a; s <= b; s++) out.add(s);
  }
  return [...out].sort((x, y) => x - y);
}

async function resolveMask(subj: NsdSubject, mask: string | Int32Array | undefined): Promise<{ voxels: Int32Array; label: string }> {
  if (mask instanceof Int32Array) return { voxels: mask, label: `${mask.length} voxel indices` };
  const name = mask ?? 'nsdgeneral';
  const file = /\.nii(\.gz)?$/.test(name) ? name : path.join(subj.paths.roi, `${name}.nii.gz`);
  const vol = await readNsdVolume(file, subj.dims);
  return { voxels: nsdRoiVoxels(vol), label: file };
}

/** Peak resident memory of this process so far (ru_maxrss), in MiB. */
/** Where a session's betas come from. */
interface BetaSource {
  space: 'func1pt8mm' | 'fsaverage';
  design: NsdExpDesign;
  designFile: string;
  sessions: number[];
  /** Volume grid [X, Y, Z], or [lh vertices, rh vertices] on the surface. */
  dims: number[];
  N: number;
  check(s: number): Promise<void>;
  read(s: number, voxels: Int32Array): Promise<{ T: number; data: Float32Array }>;
  mask(): Promise<{ voxels: Int32Array; label: string }>;
}

const missingSession = (file: string, s: number, present: number[]) => new FileFormatError(file, `the betas of session ${s}`, 'no such file',
  `Sessions present: ${present.join(', ') || 'none'}. Choose the sessions to use with --sessions (e.g. --sessions ${compactList(present)}).`);
const wrongTrials = (file: string, T: number) => new FileFormatError(file, `${NSD.trialsPerSession} trials per NSD session`, `${T}`, 'Each NSD betas_sessionNN file holds 750 single-trial betas; check the file, or leave that session out with --sessions.');

async function volumeSource(root: string, subject: number, mask: string | Int32Array | undefined): Promise<BetaSource> {
  const subj = await openNsdSubject(root, { subject });
  const betaFile = (s: number) => {
    const file = path.join(subj.paths.betas, nsdBetaName(s));
    return !fs.existsSync(file) && fs.existsSync(file.replace(/\.gz$/, '')) ? file.replace(/\.gz$/, '') : file;
  };
  return {
    space: 'func1pt8mm', design: subj.design, designFile: subj.paths.expdesign, sessions: subj.sessions, dims: subj.dims, N: subj.dims[0]! * subj.dims[1]! * subj.dims[2]!,
    async check(s) {
      const file = betaFile(s);
      if (!fs.existsSync(file)) throw missingSession(file, s, subj.sessions);
      const h = await readNiftiHeader(file);
      if ((h.dims[3] ?? 1) !== NSD.trialsPerSession) throw wrongTrials(file, h.dims[3] ?? 1);
      if (h.dims.slice(0, 3).some((d, i) => d !== subj.dims[i])) throw new FileFormatError(file, `the grid [${subj.dims.join(', ')}] of the other sessions`, `[${h.dims.slice(0, 3).join(', ')}]`);
    },
    read: (s, voxels) => readNiftiMasked(betaFile(s), voxels, NSD.betaScale),
    mask: () => resolveMask(subj, mask),
  };
}

/** Surface betas of a session: `{lh,rh}.betas_sessionNN.hdf5` (dataset `betas` [750, vertices] int16) under `dir`. */
export function nsdSurfaceBetaFiles(dir: string, session: number): [string, string] {
  const n = `betas_session${String(session).padStart(2, '0')}.hdf5`;
  return [path.join(dir, `lh.${n}`), path.join(dir, `rh.${n}`)];
}

/** Reads the columns `vertices` (indices into lh then rh) of a session's surface betas, ÷`scale`, in blocks of rows: `[T, V]` float32. */
export async function readSurfaceBetasMasked(files: [string, string], vertices: Int32Array, scale = NSD.betaScale, blockRows = 50): Promise<{ T: number; data: Float32Array }> {
  const hs = [await openHdf5(files[0], 'r'), await openHdf5(files[1], 'r')];
  try {
    const shapes = hs.map((h) => h.info('betas').shape);
    const T = shapes[0]![0]!, nL = shapes[0]![1]!, V = vertices.length;
    const out = new Float32Array(T * V);
    for (let hemi = 0; hemi < 2; hemi++) {
      const cols: number[] = [], pos: number[] = [];
      vertices.forEach((v, k) => { const c = hemi === 0 ? v : v - nL; if (c >= 0 && c < shapes[hemi]![1]! && (hemi === 1 || v < nL)) { cols.push(c); pos.push(k); } });
      const W = shapes[hemi]![1]!;
      for (let t0 = 0; t0 < T; t0 += blockRows) {
        const t1 = Math.min(T, t0 + blockRows);
        const blk = hs[hemi]!.read('betas', [[t0, t1], null]).data as ArrayLike<number>;
        for (let t = t0; t < t1; t++) for (let j = 0; j < cols.length; j++) out[t * V + pos[j]!] = blk[(t - t0) * W + cols[j]!]! / scale;
      }
    }
    return { T, data: out };
  } finally {
    for (const h of hs) h.close();
  }
}

async function surfaceSource(root: string, subject: number, mask: string | Int32Array | undefined): Promise<BetaSource> {
  const sub = `subj${String(subject).padStart(2, '0')}`;
  const dir = path.join(root, 'nsddata_betas', 'ppdata', sub, 'fsaverage', 'betas_fithrf_GLMdenoise_RR');
  const designFile = path.join(root, nsdPaths(subject).expdesign);
  const design = await readNsdExpDesign(designFile);
  const sessions = fs.existsSync(dir) ? fs.readdirSync(dir).map((n) => /^lh\.betas_session(\d+)\.hdf5$/.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((x, y) => x - y) : [];
  if (sessions.length === 0) throw new FileFormatError(dir, 'lh./rh.betas_sessionNN.hdf5 files', 'none', 'It is nsddata_betas/ppdata/subjNN/fsaverage/betas_fithrf_GLMdenoise_RR in the NSD release.');
  const shape = async (f: string) => { const h = await openHdf5(f, 'r'); try { return h.info('betas').shape; } finally { h.close(); } };
  const first = nsdSurfaceBetaFiles(dir, sessions[0]!);
  const dims = [(await shape(first[0]))[1]!, (await shape(first[1]))[1]!];
  const N = dims[0]! + dims[1]!;
  return {
    space: 'fsaverage', design, designFile, sessions, dims, N,
    async check(s) {
      for (const [i, f] of nsdSurfaceBetaFiles(dir, s).entries()) {
        if (!fs.existsSync(f)) throw missingSession(f, s, sessions);
        const sh = await shape(f);
        if (sh[0] !== NSD.trialsPerSession) throw wrongTrials(f, sh[0]!);
        if (sh[1] !== dims[i]) throw new FileFormatError(f, `${dims[i]} vertices like session ${sessions[0]}`, `${sh[1]}`);
      }
    },
    read: (s, voxels) => readSurfaceBetasMasked(nsdSurfaceBetaFiles(dir, s), voxels),
    async mask() {
      if (mask instanceof Int32Array) return { voxels: mask, label: `${mask.length} vertex indices` };
      if (mask === undefined) return { voxels: Int32Array.from({ length: N }, (_, i) => i), label: 'all vertices' };
      const a = await readNpy(mask);
      const d = a.data as ArrayLike<number>;
      if (a.dtype === 'bool' || d.length === N) {
        if (d.length !== N) throw new FileFormatError(mask, `a mask of ${N} vertices (lh ${dims[0]} + rh ${dims[1]})`, `${d.length}`);
        const idx: number[] = [];
        for (let i = 0; i < N; i++) if (Number(d[i]) > 0) idx.push(i);
        return { voxels: Int32Array.from(idx), label: mask };
      }
      return { voxels: Int32Array.from(d, Number), label: mask };
    },
  };
}

const rssMB = () => Math.round(Math.max(process.memoryUsage().rss / 1048576, process.resourceUsage().maxRSS / 1024));

/**
 * Z-scores each session's betas within the mask, averages each image's repeats and writes `[images, voxels]` float32
 * plus the image order. Resumable; the output folder is locked while it is written.
 */
export async function zscoreNsd(opts: ZscoreNsdOptions): Promise<ZscoreNsdResult> {
  let peak = rssMB();
  const subject = opts.subject ?? 1;
  const out = path.resolve(opts.out);
  const files = {
    betas: path.join(out, 'betas_zscored.npy'), images: path.join(out, 'images.npy'), imagesJson: path.join(out, 'images.json'),
    voxels: path.join(out, 'voxels.npy'), state: path.join(out, 'zscore_state.json'),
  };
  const partial = (s: number) => path.join(out, 'partial', `session_${String(s).padStart(2, '0')}.npy`);

  // 1. check inputs before writing anything: subject, sessions, their files and trial counts, mask
  const src = opts.space === 'fsaverage' ? await surfaceSource(opts.root, subject, opts.mask) : await volumeSource(opts.root, subject, opts.mask);
  const sessions = opts.sessions ? [...opts.sessions].sort((x, y) => x - y) : src.sessions;
  if (sessions.length === 0) throw new RangeError('zscoreNsd: no sessions to process');
  for (const s of sessions) {
    await src.check(s);
    if (s * NSD.trialsPerSession > src.design.masterordering.length) throw new FileFormatError(src.designFile, `a design covering session ${s}`, `${src.design.masterordering.length} trials`);
  }
  const { voxels, label: maskLabel } = await src.mask();
  const N = src.N;
  for (const v of [voxels[0], voxels[voxels.length - 1]]) if (v !== undefined && (v < 0 || v >= N)) throw new RangeError(`zscoreNsd: mask voxel index ${v} is outside the grid of ${N} voxels`);
  const V = voxels.length;
  if (V === 0) throw new FileFormatError(maskLabel, 'a mask with at least one voxel > 0', 'an empty mask');
  const subj = { design: src.design, dims: src.dims };

  // 2. lock the output folder (a second writer fails at once, naming this one; leftovers of killed runs go)
  return withFolderLock(out, { command: `zscore (subject ${subject}, ${sessions.length} sessions)`, log: opts.log }, async () => {
    // 3. state: resume what a previous run with the same settings finished
    const key = createHash('sha256').update(JSON.stringify({ root: path.resolve(opts.root), subject, space: src.space, dims: subj.dims }))
      .update(Buffer.from(voxels.buffer, voxels.byteOffset, voxels.byteLength)).digest('hex').slice(0, 16);
    fs.mkdirSync(path.join(out, 'partial'), { recursive: true });
    let state: ZState = { version: 1, key, done: [] };
    if (fs.existsSync(files.state)) {
      const prev = JSON.parse(await fs.promises.readFile(files.state, 'utf8')) as ZState;
      if (prev.key !== key) throw new FileFormatError(files.state, `a run of the same subject and mask (key ${key})`, `key ${prev.key}`, 'Use another --out folder, or delete this one to start again.');
      state = { ...prev, done: prev.done.filter((s) => fs.existsSync(partial(s))) };
    }
    const saveState = () => writeFileAtomic(files.state, JSON.stringify(state, null, 1));
    await saveState();

    // 4. per session: read, z-score within the mask, write the partial atomically, record it
    const resumed = sessions.filter((s) => state.done.includes(s));
    const todo = sessions.filter((s) => !state.done.includes(s));
    const processed: number[] = [], secondsPerSession: number[] = [], timings: ZscoreNsdResult['timings'] = [];
    for (const s of todo) {
      if (opts.stopAfterSessions !== undefined && processed.length >= opts.stopAfterSessions) break;
      const t0 = performance.now();
      const { T, data } = await src.read(s, voxels); // streams: one volume (or block of rows) at a time
      const t1 = performance.now();
      const z = zscoreColumns(data, T);
      const t2 = performance.now();
      peak = Math.max(peak, rssMB());
      await writeNpy(partial(s), { dtype: 'float32', shape: [T, V], data: z });
      timings.push({ session: s, read: (t1 - t0) / 1000, zscore: (t2 - t1) / 1000, write: (performance.now() - t2) / 1000 });
      state.done = [...state.done, s].sort((a, b) => a - b);
      await saveState();
      processed.push(s);
      secondsPerSession.push((performance.now() - t0) / 1000);
      opts.onProgress?.('session', resumed.length + processed.length, sessions.length, `session ${s}`);
    }
    const order = nsdImageOrder(subj.design, sessions, subject);
    const result: ZscoreNsdResult = {
      complete: false, out, files, sessions, processed, resumed, images: order.nsdIds.length, voxels: V, secondsPerSession, timings, peakRssMB: peak,
    };
    if (!sessions.every((s) => state.done.includes(s))) return result;

    // 5. average the repeats, a block of images at a time, into betas_zscored.npy
    const tAvg = performance.now();
    const rowOfCol = new Int32Array(subj.design.imagesPerSubject + 1).fill(-1);
    order.columns.forEach((c, r) => (rowOfCol[c] = r));
    const trialsOfRow: Array<Array<[number, number]>> = Array.from({ length: order.columns.length }, () => []); // [session index, trial]
    sessions.forEach((s, si) => {
      const mo = subj.design.masterordering.subarray((s - 1) * NSD.trialsPerSession, s * NSD.trialsPerSession);
      mo.forEach((c, t) => trialsOfRow[rowOfCol[c]!]!.push([si, t]));
    });
    const nImg = order.columns.length, B = opts.blockImages ?? 256;
    const parts: NpyFile[] = [];
    try {
      for (const s of sessions) parts.push(await openNpy(partial(s)));
      parts.forEach((p, i) => { if (p.header.shape[1] !== V) throw new FileFormatError(partial(sessions[i]!), `${V} voxels`, `${p.header.shape[1]}`, 'Delete the output folder and run again.'); });
      await withAtomicFile(files.betas, async (tmp) => {
        const fh = await fs.promises.open(tmp, 'w');
        try {
          const head = npyHeaderBytes('float32', [nImg, V]);
          await fh.write(head, 0, head.length, 0);
          const acc = new Float64Array(B * V), blk = new Float32Array(B * V), row = new Float32Array(V);
          for (let r0 = 0; r0 < nImg; r0 += B) {
            const r1 = Math.min(nImg, r0 + B);
            acc.fill(0);
            for (let r = r0; r < r1; r++) {
              const o = (r - r0) * V;
              for (const [si, t] of trialsOfRow[r]!) {
                await parts[si]!.readRows(t, t + 1, row);
                for (let k = 0; k < V; k++) acc[o + k]! += row[k]!;
              }
              const inv = 1 / trialsOfRow[r]!.length;
              for (let k = 0; k < V; k++) blk[o + k] = acc[o + k]! * inv;
            }
            const bytes = new Uint8Array(blk.buffer, 0, (r1 - r0) * V * 4);
            await fh.write(bytes, 0, bytes.length, head.length + r0 * V * 4);
            peak = Math.max(peak, rssMB());
            opts.onProgress?.('average', r1, nImg, `${r1}/${nImg} images`);
          }
        } finally {
          await fh.close();
        }
      });
    } finally {
      for (const p of parts) await p.close();
    }
    await writeNpy(files.images, { dtype: 'int32', shape: [nImg], data: order.nsdIds });
    await writeNpy(files.voxels, { dtype: 'int32', shape: [V], data: voxels });
    await writeFileAtomic(files.imagesJson, JSON.stringify({
      description: 'Rows of betas_zscored.npy: 1-based NSD (73k) ids, subjectim columns (1-based) and repeat counts; voxels.npy holds flat indices into [Z, Y, X] of the betas grid (x fastest).',
      subject, sessions, grid: subj.dims, mask: maskLabel, nsdIds: Array.from(order.nsdIds), columns: Array.from(order.columns), counts: Array.from(order.counts),
    }));
    return { ...result, complete: true, averageSeconds: (performance.now() - tAvg) / 1000, peakRssMB: Math.max(peak, rssMB()) };
  });
}

/** `1-3,5` style text of a sorted list. */
function compactList(xs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j]! + 1) j++;
    out.push(i === j ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return out.join(',') || '1';
}

