/**
 * The one reader of a synthetic subject's ground truth, `ground_truth/vertices.json` (written by
 * `makeAlgonautsSubject`; ground_truth/README.md documents each field). Tools, tests and notebooks
 * read the truth here and hand plain arrays to the library, e.g. `fitEncoder({ noiseCeiling })`:
 * no other lib folder reads the simulator's files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AlgonautsSubject } from '../data/algonauts.js';
import { FileFormatError } from '../io/errors.js';
import { readWorld, type SyntheticWorld } from './world-v3.js';

/** The ground-truth file of a subject folder. */
export function groundTruthFile(dir: string): string {
  return path.join(dir, 'ground_truth', 'vertices.json');
}

/** The world version of a generated subject folder (1 when its ground truth names none), or null when the folder holds no generated subject; reads only the file's head. */
export function syntheticWorldVersion(dir: string): number | null {
  const f = groundTruthFile(dir);
  if (!fs.existsSync(f)) return null;
  const buf = Buffer.alloc(200);
  const fd = fs.openSync(f, 'r');
  const got = fs.readSync(fd, buf, 0, buf.length, 0);
  fs.closeSync(fd);
  const head = buf.subarray(0, got).toString('utf8');
  const m = /"version":\s*(\d+)/.exec(head);
  return m ? Number(m[1]) : 1;
}

/** The world a subject folder was made by: its version and, for world v3, its network; null without a ground truth. */
export function subjectWorldOf(dir: string): { version: number; network?: string } | null {
  const version = syntheticWorldVersion(dir);
  if (version === null) return null;
  return version === 3 ? { version, network: groundTruth(dir)?.network } : { version };
}

/** True when `made` (subjectWorldOf) is `world`, and for world v3 made of `network`. */
export function madeByWorld(made: { version: number; network?: string }, world: 'v2' | 'v3', network: string): boolean {
  return made.version === (world === 'v3' ? 3 : 2) && (world !== 'v3' || made.network === network);
}

/** A synthetic subject's ground truth over its selected vertices, lh then rh (N = nLh + nRh), in the column order of its fMRI. */
export interface VertexTruth {
  /** Vertices of the left hemisphere (the first nLh entries of every array). */
  nLh: number;
  /** [N] fsaverage-space index of each vertex. */
  fsIndex: Int32Array;
  /** [N] ROI name ('V1v', 'FFA-1', ..., 'food', 'other'). */
  roi: string[];
  /** [N] pRF centre in image units (x right, y up), NaN without a pRF. */
  prfX: Float32Array;
  prfY: Float32Array;
  /** [N] intended depth (early | mid | late) and scale (local | global). */
  depth: string[];
  scale: string[];
  /** [N] Algonauts noise ceiling (fraction) for the training images' repeat counts (world v3: from the ncsnr estimated from the repeats). */
  noiseCeiling: Float32Array;
  /** The world version that made the subject (1 when the file names none). */
  version: number;
  /** World v3: [N] true depth (0 the pixel-level SOC model, up to 1 the world network's last tap), NaN for older worlds. */
  trueDepth: Float32Array;
  /** World v3: the network the truth is made of ('inceptionv3' or 'mobilenetv2'), undefined for older worlds. */
  network?: string;
}

type HemiJson = { fsIndex: number[]; roi: string[]; prfX: (number | null)[]; prfY: (number | null)[]; depth: string[]; scale: string[]; noiseCeiling: number[]; trueDepth?: number[] };
const FIELDS = ['fsIndex', 'roi', 'prfX', 'prfY', 'depth', 'scale', 'noiseCeiling'] as const;

/**
 * The ground truth of a synthetic subject, or undefined when it has none (real data). Given a loaded
 * subject it covers the vertices the subject was loaded with (its `challengeIndex`); given a folder,
 * every challenge vertex.
 */
export function groundTruth(subject: string | Pick<AlgonautsSubject, 'dir' | 'challengeIndex'>): VertexTruth | undefined {
  const dir = typeof subject === 'string' ? subject : subject.dir;
  const f = groundTruthFile(dir);
  if (!fs.existsSync(f)) return undefined;
  const gt = JSON.parse(fs.readFileSync(f, 'utf8')) as Record<'lh' | 'rh', HemiJson | undefined> & { version?: number; network?: string };
  const cols = { lh: [] as number[], rh: [] as number[] };
  for (const h of ['lh', 'rh'] as const) {
    const hemi = gt[h];
    const missing = hemi ? FIELDS.filter((k) => !Array.isArray(hemi[k])) : FIELDS;
    if (missing.length) throw new FileFormatError(f, `the ground truth of a synthetic subject (${FIELDS.join(', ')} per hemisphere)`, `no ${h}.${missing.join(`, ${h}.`)}`, 'Regenerate the subject with make-subject.');
    cols[h] = typeof subject === 'string' ? hemi!.roi.map((_, k) => k) : Array.from(subject.challengeIndex[h]);
  }
  const idx: ['lh' | 'rh', number][] = [...cols.lh.map((k) => ['lh', k] as ['lh', number]), ...cols.rh.map((k) => ['rh', k] as ['rh', number])];
  const at = <K extends (typeof FIELDS)[number]>(key: K) => idx.map(([h, k]) => gt[h]![key][k]! as HemiJson[K][number]);
  const num = (v: number | null) => (v == null ? NaN : v);
  return {
    nLh: cols.lh.length,
    fsIndex: Int32Array.from(at('fsIndex')),
    roi: at('roi'),
    prfX: Float32Array.from(at('prfX'), num),
    prfY: Float32Array.from(at('prfY'), num),
    depth: at('depth'),
    scale: at('scale'),
    noiseCeiling: Float32Array.from(at('noiseCeiling')),
    version: gt.version ?? 1,
    trueDepth: Float32Array.from(idx, ([h, k]) => gt[h]!.trueDepth?.[k] ?? NaN),
    network: gt.network,
  };
}

/** Thrown when a function that needs world v3 gets a subject made by an older world; says which and how to regenerate it. */
export class WorldVersionError extends Error {
  override name = 'WorldVersionError';
}

/** Checks that the subject in `dir` was made by world v3 (or later); `what` names the caller. */
export function requireWorldV3(dir: string, what: string): void {
  const v = syntheticWorldVersion(dir);
  if (v === null) throw new WorldVersionError(`${what}: ${dir} has no ground_truth/vertices.json, so it is not a synthetic subject; it needs one made by synthetic world version 3 (npm run make-subject -- --layout algonauts --size tiny --seed 1 --out ${dir}).`);
  if (v < 3) {
    let size = 'tiny', seed = '1';
    try {
      const head = fs.readFileSync(groundTruthFile(dir), 'utf8').slice(0, 400);
      size = /"size":\s*"(\w+)"/.exec(head)?.[1] ?? size;
      seed = /"seed":\s*(\d+)/.exec(head)?.[1] ?? seed;
    } catch { /* the defaults */ }
    throw new WorldVersionError(`${what}: ${dir} was made by synthetic world version ${v}, which has no pixel-computable truth; this needs version 3. Regenerate it: npm run make-subject -- --layout algonauts --size ${size} --seed ${seed} --out ${dir} (world v3 is the default; --world v2 keeps the old one).`);
  }
}

/** World v3 of a synthetic subject folder (ground_truth/world.safetensors): `trueResponse(images)` as when the subject was made. */
export async function loadSyntheticWorld(dir: string): Promise<SyntheticWorld> {
  requireWorldV3(dir, 'loadSyntheticWorld');
  const file = path.join(dir, 'ground_truth', 'world.safetensors');
  if (!fs.existsSync(file)) throw new FileFormatError(file, 'the world v3 parameters written with the subject', 'no such file', 'Regenerate the subject with make-subject.');
  return readWorld(file);
}
