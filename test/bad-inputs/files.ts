/**
 * The file half of the bad-input corpus: test/fixtures/bad-inputs/ (written by
 * data-prep/fixtures/make_bad_inputs.py from numpy, nibabel, h5py and scipy), read by every reader in lib/io.
 *
 * Each case is read once with its reader's full read. The cases every reader gets (an empty file, a directory,
 * a text file) are also read by the reader's other entry points (header-only reads, listings, open handles).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  readNpy, readNpyHeader, openNpy, readNpz, readNifti, readNiftiHeader, readHdf5, listHdf5, readHdf5Attrs,
  readGifti, readGiftiData, readGiftiSurface, readFreesurferSurface, readCurv, readPatch, readMgh, readMat,
  readSafetensors, readSafetensorsHeader, readImage,
} from 'brainnet/io';
import { judge, type Outcome } from './judge.js';

/** The committed corpus. */
export const CORPUS = path.join(__dirname, '..', 'fixtures', 'bad-inputs');

/** One entry of cases.json. */
export interface FileCase {
  file: string;
  reader: string;
  damage: string;
  /** HDF5: the dataset to read. */
  dataset?: string;
  /** GIFTI: 'data' (readGiftiData) or 'surface' (readGiftiSurface). */
  call?: 'data' | 'surface';
}

type Read = (file: string, c: FileCase) => Promise<unknown>;

/** The full read of each reader. */
const FULL: Record<string, Read> = {
  npy: (f) => readNpy(f),
  npz: (f) => readNpz(f),
  nifti: (f) => readNifti(f),
  hdf5: (f, c) => readHdf5(f, c.dataset ?? '/data'),
  gifti: (f, c) => (c.call === 'surface' ? readGiftiSurface(f) : readGiftiData(f)),
  'fs-surface': (f) => readFreesurferSurface(f),
  'fs-curv': (f) => readCurv(f),
  'fs-patch': (f) => readPatch(f),
  mgh: (f) => readMgh(f),
  mat: (f) => readMat(f),
  safetensors: (f) => readSafetensors(f),
  image: (f) => readImage(f),
};

/** The other entry points, tried on the empty / directory / text cases. */
const OTHER: Record<string, Record<string, Read>> = {
  npy: { readNpyHeader: (f) => readNpyHeader(f), openNpy: async (f) => { const h = await openNpy(f); await h.close(); return h.header; } },
  nifti: { readNiftiHeader: (f) => readNiftiHeader(f) },
  hdf5: { listHdf5: (f) => listHdf5(f), readHdf5Attrs: (f) => readHdf5Attrs(f) },
  gifti: { readGifti: (f) => readGifti(f) },
  safetensors: { readSafetensorsHeader: (f) => readSafetensorsHeader(f) },
};

/** The cases of cases.json. */
export function fileCases(): FileCase[] {
  return (JSON.parse(fs.readFileSync(path.join(CORPUS, 'cases.json'), 'utf8')) as { cases: FileCase[] }).cases;
}

/** Reads every file case (and the other entry points on the common ones); one outcome per call. */
export async function runFileCases(cases = fileCases()): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const c of cases) {
    const read = FULL[c.reader];
    if (!read) throw new Error(`bad-inputs: no reader for '${c.reader}' (case ${c.file})`);
    const file = path.join(CORPUS, c.file);
    const id = c.file;
    out.push(await judge({ id, file, damage: c.damage }, () => read(file, c)));
    if (/\/(empty|directory|text)\./.test(c.file)) {
      for (const [name, other] of Object.entries(OTHER[c.reader] ?? {})) {
        out.push(await judge({ id: `${id} (${name})`, file, damage: c.damage }, () => other(file, c)));
      }
    }
  }
  return out;
}
