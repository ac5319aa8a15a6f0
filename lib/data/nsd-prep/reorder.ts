/**
 * NSD step 2: attach NSD and COCO ids to each row of the z-scored betas, keep the cortical voxels
 * (the union of the ROI volumes >= 0) and write one HDF5 file with rows sorted by NSD id.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readNpy, openNpy } from '../../io/npy.js';
import { openHdf5 } from '../../io/hdf5.js';
import { FileFormatError } from '../../io/errors.js';
import { readNsdStimInfo, readNsdVolume } from '../nsd.js';
import { nsdPaths } from '../nsd-layout.js';

/** The ROI volumes whose union (>= 0) defines the cortical voxels by default. */
export const NSD_CORTEX_ROIS = ['nsdgeneral', 'prf-visualrois', 'floc-faces', 'floc-bodies', 'floc-places', 'floc-words'];

/** Flat mask `[N]` (1 = cortical) of the voxels where any of the ROI volumes `[N]` is >= 0. Pure. */
export function cortexUnion(vols: ArrayLike<number>[]): Uint8Array {
  const n = vols[0]?.length ?? 0;
  const m = new Uint8Array(n);
  for (const v of vols) {
    if (v.length !== n) throw new RangeError(`cortexUnion: volumes of ${n} and ${v.length} voxels`);
    for (let i = 0; i < n; i++) if (v[i]! >= 0) m[i] = 1;
  }
  return m;
}

/** Columns of `voxels` (flat indices) that lie in `mask`, and the kept voxel indices. Pure. */
export function keepColumns(voxels: Int32Array, mask: Uint8Array): { columns: Int32Array; voxels: Int32Array } {
  const cols: number[] = [];
  voxels.forEach((v, k) => { if (mask[v]) cols.push(k); });
  return { columns: Int32Array.from(cols), voxels: Int32Array.from(cols, (k) => voxels[k]!) };
}

/** Options of {@link reorderNsd}. */
export interface ReorderNsdOptions {
  /** NSD release root (stimulus info CSV and ROI volumes). */
  root: string;
  subject?: number;
  /** The folder `zscoreNsd` wrote (betas_zscored.npy, images.npy, voxels.npy, images.json). */
  zscored: string;
  /** Output HDF5 file. */
  out: string;
  /** ROI volume names whose union >= 0 is kept (default {@link NSD_CORTEX_ROIS}). */
  rois?: string[];
  /** Rows per write (default 256). */
  blockRows?: number;
}

/** Writes `betas` [images, cortical voxels] float32 (rows by ascending NSD id), `nsdId` (0-based), `cocoId`, `counts`, `voxels`, `mask` [Z, Y, X] uint8. */
export async function reorderNsd(opts: ReorderNsdOptions): Promise<{ out: string; images: number; voxels: number }> {
  const subject = opts.subject ?? 1;
  const P = nsdPaths(subject);
  // 1. inputs
  const zf = (n: string) => path.join(opts.zscored, n);
  for (const n of ['betas_zscored.npy', 'images.npy', 'voxels.npy', 'images.json']) {
    if (!fs.existsSync(zf(n))) throw new FileFormatError(zf(n), 'an output of zscore', 'no such file', 'Run data-prep/nsd/zscore.ts first (an interrupted run resumes when run again).');
  }
  const ids = (await readNpy(zf('images.npy'))).data as Int32Array;
  const voxels = (await readNpy(zf('voxels.npy'))).data as Int32Array;
  const meta = JSON.parse(await fs.promises.readFile(zf('images.json'), 'utf8')) as { grid: number[]; counts: number[] };
  const stim = await readNsdStimInfo(path.join(opts.root, P.stiminfo));
  const cocoOf = new Map<number, number>(stim.map((r) => [r.nsdId, r.cocoId]));
  const vols: ArrayLike<number>[] = [];
  for (const name of opts.rois ?? NSD_CORTEX_ROIS) vols.push((await readNsdVolume(path.join(opts.root, P.roi, `${name}.nii.gz`), meta.grid)).data.data as ArrayLike<number>);
  const mask = cortexUnion(vols);
  const keep = keepColumns(voxels, mask);
  // 2. rows sorted by NSD id
  const order = Array.from(ids, (id, r) => ({ id, r })).sort((a, b) => a.id - b.id);
  const nsd0 = Int32Array.from(order, (o) => o.id - 1);
  const coco = Int32Array.from(order, (o) => {
    const c = cocoOf.get(o.id - 1);
    if (c === undefined) throw new FileFormatError(path.join(opts.root, P.stiminfo), `a row for nsdId ${o.id - 1}`, 'none');
    return c;
  });
  // 3. stream the rows into the HDF5 file (written atomically on close)
  const src = await openNpy(zf('betas_zscored.npy'));
  const V = src.header.shape[1]!, Vc = keep.columns.length, n = order.length, B = opts.blockRows ?? 256;
  if (src.header.shape[0] !== n || V !== voxels.length) throw new FileFormatError(zf('betas_zscored.npy'), `shape [${n}, ${voxels.length}]`, `[${src.header.shape.join(', ')}]`);
  const h = await openHdf5(opts.out, 'w');
  try {
    h.createDataset('betas', { shape: [n, Vc], dtype: 'float32', chunks: [Math.min(n, 64), Math.min(Vc, 4096)] });
    const row = new Float32Array(V), blk = new Float32Array(B * Vc);
    for (let r0 = 0; r0 < n; r0 += B) {
      const r1 = Math.min(n, r0 + B);
      for (let r = r0; r < r1; r++) {
        await src.readRows(order[r]!.r, order[r]!.r + 1, row);
        const o = (r - r0) * Vc;
        for (let k = 0; k < Vc; k++) blk[o + k] = row[keep.columns[k]!]!;
      }
      h.writeRows('betas', r0, { dtype: 'float32', shape: [r1 - r0, Vc], data: blk.subarray(0, (r1 - r0) * Vc) });
    }
    h.writeDataset('nsdId', { dtype: 'int32', shape: [n], data: nsd0 });
    h.writeDataset('cocoId', { dtype: 'int32', shape: [n], data: coco });
    h.writeDataset('counts', { dtype: 'uint8', shape: [n], data: Uint8Array.from(order, (o) => meta.counts[o.r]!) });
    h.writeDataset('voxels', { dtype: 'int32', shape: [Vc], data: keep.voxels });
    const [X, Y, Z] = meta.grid as [number, number, number];
    const m3 = new Uint8Array(X * Y * Z);
    for (const v of keep.voxels) m3[v] = 1;
    h.writeDataset('mask', { dtype: 'uint8', shape: [Z, Y, X], data: m3 }, { compression: 4 });
    h.setAttr('/', 'description', 'Z-scored, repeat-averaged NSD betas: row i is the image with 0-based nsdId[i] (ascending; COCO id cocoId[i]); column k is voxel voxels[k] (flat index into mask [Z, Y, X], x fastest).');
    h.setAttr('/', 'subject', subject);
    h.setAttr('/', 'rois', (opts.rois ?? NSD_CORTEX_ROIS).join(','));
    h.close();
  } catch (e) {
    h.abort();
    throw e;
  } finally {
    await src.close();
  }
  return { out: opts.out, images: n, voxels: Vc };
}
