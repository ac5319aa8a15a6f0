/**
 * NSD step 3: rank the HCP_MMP1 regions (labels 1..180) by mean ncsnr for each subject, average the
 * ranks across subjects and order the regions by that average.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeNpy } from '../../io/npy.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { FileFormatError } from '../../io/errors.js';
import { readCtab, readNsdVolume } from '../nsd.js';
import { nsdPaths } from '../nsd-layout.js';

/** Mean of `values` `[N]` within each label 1..`regions` of `labels` `[N]`, ignoring NaN; NaN where a region has no finite value. Pure. `[regions]` (index r-1). */
export function regionMeans(values: ArrayLike<number>, labels: ArrayLike<number>, regions = 180): Float64Array {
  if (values.length !== labels.length) throw new RangeError(`regionMeans: ${values.length} values but ${labels.length} labels`);
  const sum = new Float64Array(regions), n = new Float64Array(regions);
  for (let i = 0; i < values.length; i++) {
    const l = labels[i]!, v = values[i]!;
    if (l >= 1 && l <= regions && Number.isInteger(l) && !Number.isNaN(v)) { sum[l - 1]! += v; n[l - 1]!++; }
  }
  return sum.map((s, r) => (n[r]! > 0 ? s / n[r]! : NaN));
}

/** Ranks `[R]`: 1 = largest value; ties keep region order; NaN ranks last. Pure. */
export function rankDescending(values: ArrayLike<number>): Int32Array {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(values[i]!) ? Infinity : -values[i]!);
  idx.sort((a, b) => key(a) - key(b) || a - b);
  const rank = new Int32Array(values.length);
  idx.forEach((i, r) => (rank[i] = r + 1));
  return rank;
}

/** One region of {@link rankHcp}'s result. */
export interface HcpRankRow { region: number; name: string; meanRank: number; ranks: number[]; meanNcsnr: number[] }

/** Per-subject ranks `[S][R]` -> mean rank per region and the regions (1-based) ordered by it (ties by region). Pure. */
export function averageRanks(ranks: ArrayLike<number>[]): { meanRank: Float64Array; order: Int32Array } {
  const R = ranks[0]?.length ?? 0;
  const meanRank = new Float64Array(R);
  for (const r of ranks) for (let i = 0; i < R; i++) meanRank[i]! += r[i]!;
  for (let i = 0; i < R; i++) meanRank[i]! /= ranks.length; // sum first, so equal rank sums tie exactly
  const idx = Array.from({ length: R }, (_, i) => i).sort((a, b) => meanRank[a]! - meanRank[b]! || a - b);
  return { meanRank, order: Int32Array.from(idx, (i) => i + 1) };
}

/** Ranks HCP regions from `[{ ncsnr, hcp }]` volumes per subject (flat, same length per subject). Pure. */
export function rankHcpRegions(subjects: Array<{ ncsnr: ArrayLike<number>; hcp: ArrayLike<number> }>, names?: Map<number, string>, regions = 180): HcpRankRow[] {
  if (subjects.length === 0) throw new RangeError('rankHcpRegions: no subjects');
  const means = subjects.map((s) => regionMeans(s.ncsnr, s.hcp, regions));
  const ranks = means.map((m) => rankDescending(m));
  const { meanRank, order } = averageRanks(ranks);
  return Array.from(order, (r) => ({
    region: r, name: names?.get(r) ?? `region${r}`, meanRank: meanRank[r - 1]!,
    ranks: ranks.map((x) => x[r - 1]!), meanNcsnr: means.map((m) => m[r - 1]!),
  }));
}

/** Options of {@link rankHcp}. */
export interface RankHcpOptions {
  /** NSD release root. */
  root: string;
  /** 1-based subjects (default: every subjNN with ncsnr under root). */
  subjects?: number[];
  /** Output folder: hcp_order.npy (int32 region labels, best first), hcp_rank.json and hcp_rank.tsv. */
  out: string;
  /** A label table (`index name r g b a`); default the first subject's label/HCP_MMP1.mgz.ctab when present. */
  ctab?: string;
  /** Called after each subject is read. */
  onProgress?: (done: number, total: number, subject: number) => void;
}

/** Reads ncsnr and HCP_MMP1 for each subject, ranks the regions and writes the ordered list (+ a named table). */
export async function rankHcp(opts: RankHcpOptions): Promise<{ rows: HcpRankRow[]; subjects: number[]; files: string[] }> {
  let subjects = opts.subjects;
  if (!subjects) {
    subjects = [];
    for (let s = 1; s <= 8; s++) if (fs.existsSync(path.join(opts.root, nsdPaths(s).ncsnr))) subjects.push(s);
    if (subjects.length === 0) throw new FileFormatError(path.join(opts.root, nsdPaths(1).ncsnr), 'ncsnr.nii.gz for at least one subject', 'none found', 'Point --root at the NSD release root (holding nsddata_betas/).');
  }
  const data: Array<{ ncsnr: ArrayLike<number>; hcp: ArrayLike<number> }> = [];
  for (const s of subjects) {
    const P = nsdPaths(s);
    const nc = await readNsdVolume(path.join(opts.root, P.ncsnr));
    const hcp = await readNsdVolume(path.join(opts.root, P.roi, 'HCP_MMP1.nii.gz'), nc.dims);
    data.push({ ncsnr: nc.data.data as ArrayLike<number>, hcp: hcp.data.data as ArrayLike<number> });
    opts.onProgress?.(data.length, subjects.length, s);
  }
  const ctab = opts.ctab ?? path.join(opts.root, nsdPaths(subjects[0]).label, 'HCP_MMP1.mgz.ctab');
  const names = opts.ctab || fs.existsSync(ctab) ? await readCtab(ctab) : undefined;
  const rows = rankHcpRegions(data, names);
  fs.mkdirSync(opts.out, { recursive: true });
  const files = [path.join(opts.out, 'hcp_order.npy'), path.join(opts.out, 'hcp_rank.json')];
  await writeNpy(files[0]!, { dtype: 'int32', shape: [rows.length], data: Int32Array.from(rows, (r) => r.region) });
  await writeFileAtomic(files[1]!, JSON.stringify({ subjects, ctab: names ? ctab : null, rows }, null, 1));
  if (names) {
    files.push(path.join(opts.out, 'hcp_rank.tsv'));
    const lines = ['rank\tregion\tname\tmean_rank\t' + subjects.map((s) => `subj${String(s).padStart(2, '0')}_mean_ncsnr`).join('\t')];
    rows.forEach((r, i) => lines.push([i + 1, r.region, r.name, r.meanRank.toFixed(3), ...r.meanNcsnr.map((v) => v.toFixed(6))].join('\t')));
    await writeFileAtomic(files[2]!, lines.join('\n') + '\n');
  }
  return { rows, subjects, files };
}
