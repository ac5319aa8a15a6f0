/**
 * NIfTI-1 (and NIfTI-2 read) volumes, `.nii` and `.nii.gz`.
 *
 * ┌──────────────────────────────────────────────────────────────────────────────────┐
 * │ MEMORY LAYOUT — READ THIS FIRST                                                  │
 * │ NIfTI stores x fastest. To avoid transposing multi-GB 4-D files, `data` keeps    │
 * │ the on-disk order, so its `shape` lists the axes SLOWEST FIRST, i.e. REVERSED    │
 * │ from nibabel:  data.shape = [T, Z, Y, X]  (or [Z, Y, X] for 3-D),                │
 * │ while `dims` = [X, Y, Z, T] is nibabel's `img.shape`.                            │
 * │ Voxel (x, y, z, t) is  data.data[x + X*(y + Y*(z + Z*t))],  and one volume is    │
 * │ one contiguous block of X*Y*Z elements.                                          │
 * │ (In numpy terms: our data equals `img.get_fdata().T` / `np.asarray(dataobj).T`.) │
 * └──────────────────────────────────────────────────────────────────────────────────┘
 *
 * The header is parsed by hand (a fixed 348-byte struct read with a DataView), because
 * reading a volume range from a `.nii.gz` has to stream anyway. Both byte orders are read.
 * Writers always write little-endian NIfTI-1, atomically (temporary file, then rename).
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileFormatError } from './errors.js';
import { withAtomicFile } from './atomic.js';
import { allocFor, checkInputFile } from './input.js';
import { DType, DTYPE_BYTES, NDArray, TypedArray, shapeSize, swapBytes } from './ndarray.js';

/** NIfTI datatype codes that this module reads and writes, and their dtypes. */
const CODE_TO_DTYPE: Record<number, DType> = {
  2: 'uint8', 4: 'int16', 8: 'int32', 16: 'float32', 32: 'complex64', 64: 'float64',
  256: 'int8', 512: 'uint16', 768: 'uint32', 1024: 'int64', 1280: 'uint64', 1792: 'complex128',
};
const UNSUPPORTED_CODES: Record<number, string> = {
  0: 'DT_UNKNOWN', 1: 'DT_BINARY (1 bit)', 128: 'DT_RGB24', 1536: 'DT_FLOAT128', 2048: 'DT_COMPLEX256', 2304: 'DT_RGBA32',
};
const DTYPE_TO_CODE: Partial<Record<DType, number>> = Object.fromEntries(
  Object.entries(CODE_TO_DTYPE).map(([c, d]) => [d, Number(c)]),
);

/** The parsed NIfTI header (field names follow nifti1.h in camelCase). */
export interface NiftiHeader {
  /** 1 for NIfTI-1 (348-byte header), 2 for NIfTI-2 (540 bytes). */
  version: 1 | 2;
  littleEndian: boolean;
  /** The raw `dim[8]` field: dim[0] is the number of dimensions. */
  dim: number[];
  /** `dim[1..dim[0]]`: the file's shape as nibabel gives it, `[X, Y, Z, T, ...]`. */
  dims: number[];
  /** The raw `pixdim[8]` field: pixdim[0] is qfac, pixdim[1..3] voxel sizes, pixdim[4] the TR. */
  pixdim: number[];
  /** NIfTI datatype code (e.g. 4 = int16). */
  datatype: number;
  dtype: DType;
  bitpix: number;
  /** Byte offset of the voxel data in the (decompressed) file. */
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  calMin: number;
  calMax: number;
  qformCode: number;
  sformCode: number;
  quaternB: number;
  quaternC: number;
  quaternD: number;
  qoffsetX: number;
  qoffsetY: number;
  qoffsetZ: number;
  srowX: number[];
  srowY: number[];
  srowZ: number[];
  /** Units code: spatial (bits 0-2, 2 = mm) | temporal (bits 3-5, 8 = s). */
  xyztUnits: number;
  intentCode: number;
  intentName: string;
  descrip: string;
  auxFile: string;
  /** 'n+1' (single file), 'ni1' (.hdr/.img pair), 'n+2' or 'ni2'. */
  magic: string;
}

/** A NIfTI volume. `data.shape` is REVERSED from nibabel: `[T, Z, Y, X]` (see the module comment). */
export interface NiftiVolume {
  header: NiftiHeader;
  /** 4×4 voxel-to-world matrix exactly as nibabel's `img.affine` (sform, else qform, else pixdim). */
  affine: number[][];
  /** Shape of the returned data in nibabel's order, `[X, Y, Z, T...]` (T counts only the volumes read). */
  dims: number[];
  /** Raw (unscaled) voxels in on-disk order, `shape` `[T, Z, Y, X]` or `[Z, Y, X]`: voxel (x,y,z,t) is `data[x + X*(y + Y*(z + Z*t))]`. */
  data: NDArray;
  /** `scl_slope` from the header (0 or NaN mean "no scaling"). */
  sclSlope: number;
  /** `scl_inter` from the header. */
  sclInter: number;
}

// ---------------------------------------------------------------------------------------
// Byte sources: plain files read by position, gzip files streamed and stopped early.

/** The most that deflate can compress: 1032 output bytes per input byte (zlib's technical details). */
const MAX_DEFLATE_RATIO = 1032;

function isGzipFile(fd: number): boolean {
  const b = Buffer.alloc(2);
  const n = fs.readSync(fd, b, 0, 2, 0);
  return n === 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/**
 * Copies decompressed bytes [start, start+out.length) of a gzip file into `out`; returns bytes copied. It stops
 * after the last byte needed, unless `toEnd` is set: then it inflates to the end of the stream, so that a missing
 * or wrong gzip trailer (CRC-32, size) is an error.
 */
async function gunzipRange(file: string, start: number, out: Uint8Array, toEnd = false): Promise<number> {
  const end = start + out.length;
  if (out.length === 0 && !toEnd) return 0;
  const src = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const gunzip = zlib.createGunzip({ chunkSize: 1 << 20 });
  src.pipe(gunzip);
  let pos = 0;
  let filled = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      const cStart = pos;
      const cEnd = pos + chunk.length;
      pos = cEnd;
      if (cEnd <= start) continue;
      const from = Math.max(start, cStart);
      const to = Math.min(end, cEnd);
      if (to > from) {
        out.set(chunk.subarray(from - cStart, to - cStart), from - start);
        filled += to - from;
      }
      if (cEnd >= end && !toEnd) break;
    }
  } catch (e) {
    throw new FileFormatError(file, 'a complete gzip stream', `a corrupt or truncated one (${(e as Error).message}) after ${pos} decompressed bytes`,
      'Re-create or re-download the file; `gzip -t` checks it.');
  } finally {
    src.destroy();
    gunzip.destroy();
  }
  return filled;
}

/** Reads bytes [start, start+out.length) of a plain or gzip file into `out`; returns bytes read (`toEnd`: see gunzipRange). */
async function readRange(file: string, gz: boolean, start: number, out: Uint8Array, toEnd = false): Promise<number> {
  if (gz) return gunzipRange(file, start, out, toEnd);
  const fh = await fs.promises.open(file, 'r');
  try {
    let got = 0;
    while (got < out.length) {
      const step = Math.min(out.length - got, 1 << 30);
      const { bytesRead } = await fh.read(out, got, step, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  } finally {
    await fh.close();
  }
}

function openChecked(file: string): number {
  checkInputFile(file, 'NIfTI');
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new FileFormatError(file, 'a readable NIfTI file', `${err.code ?? 'an error'}: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Header parsing (pure).

function cstr(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return Buffer.from(b.subarray(off, end)).toString('latin1');
}

/** Parses a NIfTI-1 or NIfTI-2 header from its first bytes (at least 348 or 540); `file` is used in errors. */
export function parseNiftiHeader(bytes: Uint8Array, file = '<buffer>'): NiftiHeader {
  if (bytes.length < 348) {
    throw new FileFormatError(file, 'a NIfTI header of at least 348 bytes', `only ${bytes.length} bytes`, 'The file is truncated or not NIfTI.');
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = dv.getInt32(0, true);
  const be = dv.getInt32(0, false);
  let little: boolean;
  let version: 1 | 2;
  if (le === 348 || be === 348) { little = le === 348; version = 1; }
  else if (le === 540 || be === 540) { little = le === 540; version = 2; }
  else {
    throw new FileFormatError(file, 'sizeof_hdr = 348 (NIfTI-1) or 540 (NIfTI-2)', `${le} (little-endian) / ${be} (big-endian)`,
      'This is not a NIfTI file (MGH/MGZ, MINC and DICOM need converting, e.g. with `mri_convert` or nibabel).');
  }
  if (version === 1) {
    const magic = cstr(bytes, 344, 4);
    if (magic !== 'n+1' && magic !== 'ni1') {
      throw new FileFormatError(file, "NIfTI-1 magic 'n+1'", magic ? `'${magic}'` : 'no magic (an ANALYZE 7.5 header)',
        'Only NIfTI-1 and NIfTI-2 are supported; convert ANALYZE files with nibabel: nib.save(nib.Nifti1Image.from_image(nib.load(p)), "out.nii").');
    }
    const f32 = (o: number) => dv.getFloat32(o, little);
    const i16 = (o: number) => dv.getInt16(o, little);
    const dim = Array.from({ length: 8 }, (_, i) => i16(40 + 2 * i));
    const pixdim = Array.from({ length: 8 }, (_, i) => f32(76 + 4 * i));
    return finishHeader(file, {
      version, littleEndian: little, dim, pixdim,
      intentCode: i16(68), datatype: i16(70), bitpix: i16(72),
      voxOffset: f32(108), sclSlope: f32(112), sclInter: f32(116),
      xyztUnits: bytes[123]!, calMax: f32(124), calMin: f32(128),
      descrip: cstr(bytes, 148, 80), auxFile: cstr(bytes, 228, 24),
      qformCode: i16(252), sformCode: i16(254),
      quaternB: f32(256), quaternC: f32(260), quaternD: f32(264),
      qoffsetX: f32(268), qoffsetY: f32(272), qoffsetZ: f32(276),
      srowX: [0, 1, 2, 3].map((i) => f32(280 + 4 * i)),
      srowY: [0, 1, 2, 3].map((i) => f32(296 + 4 * i)),
      srowZ: [0, 1, 2, 3].map((i) => f32(312 + 4 * i)),
      intentName: cstr(bytes, 328, 16), magic,
    });
  }
  if (bytes.length < 540) {
    throw new FileFormatError(file, 'a NIfTI-2 header of 540 bytes', `only ${bytes.length} bytes`, 'The file is truncated.');
  }
  const magic = cstr(bytes, 4, 8).slice(0, 3);
  if (magic !== 'n+2' && magic !== 'ni2') {
    throw new FileFormatError(file, "NIfTI-2 magic 'n+2'", `'${magic}'`, 'The file is corrupt or not NIfTI.');
  }
  const f64 = (o: number) => dv.getFloat64(o, little);
  const i64 = (o: number) => Number(dv.getBigInt64(o, little));
  const i32 = (o: number) => dv.getInt32(o, little);
  return finishHeader(file, {
    version, littleEndian: little,
    datatype: dv.getInt16(12, little), bitpix: dv.getInt16(14, little),
    dim: Array.from({ length: 8 }, (_, i) => i64(16 + 8 * i)),
    pixdim: Array.from({ length: 8 }, (_, i) => f64(104 + 8 * i)),
    voxOffset: i64(168), sclSlope: f64(176), sclInter: f64(184), calMax: f64(192), calMin: f64(200),
    descrip: cstr(bytes, 240, 80), auxFile: cstr(bytes, 320, 24),
    qformCode: i32(344), sformCode: i32(348),
    quaternB: f64(352), quaternC: f64(360), quaternD: f64(368),
    qoffsetX: f64(376), qoffsetY: f64(384), qoffsetZ: f64(392),
    srowX: [0, 1, 2, 3].map((i) => f64(400 + 8 * i)),
    srowY: [0, 1, 2, 3].map((i) => f64(432 + 8 * i)),
    srowZ: [0, 1, 2, 3].map((i) => f64(464 + 8 * i)),
    xyztUnits: i32(500), intentCode: i32(504), intentName: cstr(bytes, 508, 16), magic,
  });
}

function finishHeader(file: string, h: Omit<NiftiHeader, 'dims' | 'dtype'>): NiftiHeader {
  const nd = h.dim[0]!;
  if (nd < 1 || nd > 7) {
    throw new FileFormatError(file, 'dim[0] between 1 and 7', `dim[0] = ${nd}`, 'The header is corrupt.');
  }
  const dims = h.dim.slice(1, nd + 1);
  if (dims.some((d) => d < 0)) {
    throw new FileFormatError(file, 'non-negative dimensions', `dim = [${dims.join(', ')}]`, 'The header is corrupt.');
  }
  const dtype = CODE_TO_DTYPE[h.datatype];
  if (!dtype) {
    const name = UNSUPPORTED_CODES[h.datatype] ?? 'an unknown code';
    throw new FileFormatError(file, `a numeric NIfTI datatype (${Object.keys(CODE_TO_DTYPE).join(', ')})`, `datatype ${h.datatype} (${name})`,
      'Convert the image to a numeric type, e.g. with nibabel: img.set_data_dtype(np.float32).');
  }
  if (h.magic === 'ni1' || h.magic === 'ni2') {
    throw new FileFormatError(file, "a single-file NIfTI ('n+1' magic, .nii)", `a .hdr/.img pair ('${h.magic}' magic)`,
      'Convert it to a single .nii file, e.g. with nibabel: nib.save(nib.load("x.hdr"), "x.nii").');
  }
  // the header's fields must agree with each other: bitpix with datatype, vox_offset with the header's own size
  const bits = DTYPE_BYTES[dtype] * 8;
  if (h.bitpix !== bits) {
    throw new FileFormatError(file, `bitpix ${bits} for datatype ${h.datatype} (${dtype})`, `bitpix ${h.bitpix}`,
      'The header contradicts itself, so the voxel size is unknown; re-save the image (e.g. nibabel: nib.save(nib.Nifti1Image(data, affine), path)).');
  }
  const minOffset = h.version === 1 ? 352 : 544;
  if (!Number.isInteger(h.voxOffset) || h.voxOffset < minOffset) {
    throw new FileFormatError(file, `vox_offset a whole number ≥ ${minOffset} (voxels start after the ${minOffset - 4}-byte header and its 4-byte extension flag)`,
      `vox_offset ${h.voxOffset}`, `Reading from there would read the header as voxels. Fix the field (e.g. nibabel: img.header['vox_offset'] = ${minOffset}) or re-save the image.`);
  }
  return { ...h, dims, dtype };
}

/** 4×4 affine from the header exactly as nibabel's `img.affine`: sform if sform_code > 0, else qform if qform_code > 0, else the centred pixdim diagonal. */
export function niftiAffine(h: NiftiHeader): number[][] {
  if (h.sformCode > 0) return niftiSform(h);
  if (h.qformCode > 0) return niftiQform(h);
  return niftiBaseAffine(h);
}

/** The sform matrix (rows srow_x, srow_y, srow_z, [0 0 0 1]). */
export function niftiSform(h: NiftiHeader): number[][] {
  return [h.srowX.slice(), h.srowY.slice(), h.srowZ.slice(), [0, 0, 0, 1]];
}

/** The qform matrix from the quaternion, pixdim and qoffset (as nibabel's `get_qform`). */
export function niftiQform(h: NiftiHeader): number[][] {
  const b = h.quaternB, c = h.quaternC, d = h.quaternD;
  const w2 = 1 - (b * b + c * c + d * d);
  const a = w2 < 0 ? 0 : Math.sqrt(w2);
  const R = quatToMat(a, b, c, d);
  const qfac = h.pixdim[0]! < 0 ? -1 : 1;
  const z = [h.pixdim[1]!, h.pixdim[2]!, h.pixdim[3]! * qfac];
  const t = [h.qoffsetX, h.qoffsetY, h.qoffsetZ];
  return [0, 1, 2].map((i) => [R[i]![0]! * z[0]!, R[i]![1]! * z[1]!, R[i]![2]! * z[2]!, t[i]!]).concat([[0, 0, 0, 1]]);
}

/** nibabel's base affine when neither form is set: diag(-dx, dy, dz) centred on the volume (`shape_zoom_affine`). */
export function niftiBaseAffine(h: NiftiHeader): number[][] {
  const shape = [0, 1, 2].map((i) => h.dims[i] ?? 1);
  const zooms = [0, 1, 2].map((i) => (i < h.dims.length ? h.pixdim[i + 1]! : 1));
  zooms[0] = -zooms[0]!;
  const aff = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  for (let i = 0; i < 3; i++) {
    aff[i]![i] = zooms[i]!;
    aff[i]![3] = -((shape[i]! - 1) / 2) * zooms[i]!;
  }
  return aff;
}

function quatToMat(w: number, x: number, y: number, z: number): number[][] {
  const Nq = w * w + x * x + y * y + z * z;
  if (Nq < 2.220446049250313e-16) return [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const s = 2 / Nq;
  const X = x * s, Y = y * s, Z = z * s;
  const wX = w * X, wY = w * Y, wZ = w * Z;
  const xX = x * X, xY = x * Y, xZ = x * Z;
  const yY = y * Y, yZ = y * Z, zZ = z * Z;
  return [
    [1 - (yY + zZ), xY - wZ, xZ + wY],
    [xY + wZ, 1 - (xX + zZ), yZ - wX],
    [xZ - wY, yZ + wX, 1 - (xX + yY)],
  ];
}

/** Splits an affine into the NIfTI qform fields (quaternion b,c,d, qfac, voxel sizes, offsets), as nibabel's `set_qform`. */
export function affineToQform(affine: number[][]): { b: number; c: number; d: number; qfac: number; zooms: number[]; offset: number[] } {
  const M = [0, 1, 2].map((i) => [0, 1, 2].map((j) => affine[i]![j]!));
  const zooms = [0, 1, 2].map((j) => Math.hypot(M[0]![j]!, M[1]![j]!, M[2]![j]!) || 1);
  let R = M.map((row) => row.map((v, j) => v / zooms[j]!));
  let qfac = 1;
  if (det3(R) < 0) {
    qfac = -1;
    for (const row of R) row[2] = -row[2]!;
  }
  // Nearest orthonormal matrix (the polar factor, as nibabel's P @ Qs from the SVD), by Newton iteration.
  for (let it = 0; it < 50; it++) {
    const inv = inv3(R);
    if (!inv) break;
    const next = R.map((row, i) => row.map((v, j) => 0.5 * (v + inv[j]![i]!)));
    let diff = 0;
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) diff = Math.max(diff, Math.abs(next[i]![j]! - R[i]![j]!));
    R = next;
    if (diff < 1e-15) break;
  }
  let [w, x, y, z] = matToQuat(R);
  if (w < 0) { w = -w; x = -x; y = -y; z = -z; }
  return { b: x, c: y, d: z, qfac, zooms, offset: [affine[0]![3]!, affine[1]![3]!, affine[2]![3]!] };
}

function det3(m: number[][]): number {
  return m[0]![0]! * (m[1]![1]! * m[2]![2]! - m[1]![2]! * m[2]![1]!)
    - m[0]![1]! * (m[1]![0]! * m[2]![2]! - m[1]![2]! * m[2]![0]!)
    + m[0]![2]! * (m[1]![0]! * m[2]![1]! - m[1]![1]! * m[2]![0]!);
}

function inv3(m: number[][]): number[][] | null {
  const d = det3(m);
  if (!d) return null;
  const [a, b, c] = m as [number[], number[], number[]];
  return [
    [(b[1]! * c[2]! - b[2]! * c[1]!) / d, (a[2]! * c[1]! - a[1]! * c[2]!) / d, (a[1]! * b[2]! - a[2]! * b[1]!) / d],
    [(b[2]! * c[0]! - b[0]! * c[2]!) / d, (a[0]! * c[2]! - a[2]! * c[0]!) / d, (a[2]! * b[0]! - a[0]! * b[2]!) / d],
    [(b[0]! * c[1]! - b[1]! * c[0]!) / d, (a[1]! * c[0]! - a[0]! * c[1]!) / d, (a[0]! * b[1]! - a[1]! * b[0]!) / d],
  ];
}

/** Rotation matrix to unit quaternion [w, x, y, z] (Shepperd's method). */
function matToQuat(R: number[][]): [number, number, number, number] {
  const m00 = R[0]![0]!, m01 = R[0]![1]!, m02 = R[0]![2]!;
  const m10 = R[1]![0]!, m11 = R[1]![1]!, m12 = R[1]![2]!;
  const m20 = R[2]![0]!, m21 = R[2]![1]!, m22 = R[2]![2]!;
  const tr = m00 + m11 + m22;
  if (tr > 0) {
    const s = Math.sqrt(tr + 1) * 2;
    return [0.25 * s, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s];
  }
  if (m00 > m11 && m00 > m22) {
    const s = Math.sqrt(1 + m00 - m11 - m22) * 2;
    return [(m21 - m12) / s, 0.25 * s, (m01 + m10) / s, (m02 + m20) / s];
  }
  if (m11 > m22) {
    const s = Math.sqrt(1 + m11 - m00 - m22) * 2;
    return [(m02 - m20) / s, (m01 + m10) / s, 0.25 * s, (m12 + m21) / s];
  }
  const s = Math.sqrt(1 + m22 - m00 - m11) * 2;
  return [(m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, 0.25 * s];
}

// ---------------------------------------------------------------------------------------
// Reading.

async function readHeaderBytes(file: string): Promise<{ bytes: Uint8Array; gz: boolean; size: number }> {
  const fd = openChecked(file);
  let gz: boolean;
  let size: number;
  try {
    gz = isGzipFile(fd);
    size = fs.fstatSync(fd).size;
  } finally {
    fs.closeSync(fd);
  }
  const buf = new Uint8Array(540);
  const n = await readRange(file, gz, 0, buf);
  return { bytes: buf.subarray(0, n), gz, size };
}

/** Reads only the header of a `.nii` / `.nii.gz` (NIfTI-1, or NIfTI-2). */
export async function readNiftiHeader(file: string): Promise<NiftiHeader> {
  const { bytes } = await readHeaderBytes(file);
  return parseNiftiHeader(bytes, file);
}


/**
 * Reads a `.nii` / `.nii.gz`. Returns raw voxels with `data.shape` = `[T, Z, Y, X]` (REVERSED from
 * nibabel; voxel (x,y,z,t) at `x + X*(y + Y*(z + Z*t))`), the affine as nibabel's, and scl_slope/inter.
 * `volumes: [t0, t1]` reads only volumes t0 ≤ t < t1 (over all axes after Z, flattened): positioned
 * reads for `.nii`, and for `.nii.gz` a streaming gunzip that stops after the last byte needed.
 */
export async function readNifti(file: string, opts: { volumes?: [number, number] } = {}): Promise<NiftiVolume> {
  const { bytes, gz, size } = await readHeaderBytes(file);
  const header = parseNiftiHeader(bytes, file);
  const dims = header.dims;
  const spatial = [dims[0] ?? 1, dims[1] ?? 1, dims[2] ?? 1];
  const volSize = spatial[0]! * spatial[1]! * spatial[2]!;
  const nVol = dims.length > 3 ? shapeSize(dims.slice(3)) : 1;
  let t0 = 0;
  let t1 = nVol;
  if (opts.volumes) {
    [t0, t1] = opts.volumes;
    if (!Number.isInteger(t0) || !Number.isInteger(t1) || t0 < 0 || t1 > nVol || t0 > t1) {
      throw new RangeError(`readNifti(${file}): volumes [${t0}, ${t1}) is out of range; the file has ${nVol} volume(s) (shape [${dims.join(', ')}])`);
    }
  }
  const itemBytes = DTYPE_BYTES[header.dtype];
  const width = header.dtype === 'complex64' ? 4 : header.dtype === 'complex128' ? 8 : itemBytes;
  const n = volSize * (t1 - t0);
  const start = header.voxOffset + t0 * volSize * itemBytes;
  const need = header.voxOffset + shapeSize(dims) * itemBytes;
  const layout = `header ${header.voxOffset} + ${shapeSize(dims)} voxels × ${itemBytes} bytes of ${header.dtype}, dims [${dims.join(', ')}]`;
  // 1. sizes the file cannot hold are refused before anything is allocated
  if (!gz && size < start + n * itemBytes) {
    throw new FileFormatError(file, `${need} bytes (${layout})`, `${size} bytes`, 'The file is truncated or its dimensions are wrong; re-create or re-download it.');
  }
  if (gz && need > size * MAX_DEFLATE_RATIO + 1024) {
    throw new FileFormatError(file, `at most ${size * MAX_DEFLATE_RATIO} decompressed bytes (deflate compresses at most ${MAX_DEFLATE_RATIO}:1 and the file holds ${size} bytes)`,
      `a header that asks for ${need} (${layout})`, 'The dimensions in the header are wrong, or the file is truncated; re-create or re-download it.');
  }
  // 2. the voxels, read straight into the array; a read to the last voxel checks the gzip trailer too
  const typed = allocFor(file, header.dtype, n, { what: `${t1 - t0} volume(s) of ${volSize} voxels`, fix: `Read fewer volumes at once: readNifti(file, { volumes: [t0, t1] }).` });
  const out = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  const got = await readRange(file, gz, start, out, gz && start + out.length === need);
  if (got < out.length) {
    throw new FileFormatError(file, `${need} decompressed bytes (${layout})`,
      `the data ends after ${start + got} bytes`, 'The file is truncated; re-create or re-download it.');
  }
  if (!header.littleEndian) swapBytes(out, width);
  const outDims = dims.length > 3 ? [...spatial, t1 - t0] : dims.slice();
  const shape = outDims.slice().reverse();
  return {
    header, affine: niftiAffine(header), dims: outDims,
    data: { dtype: header.dtype, shape, data: typed },
    sclSlope: header.sclSlope, sclInter: header.sclInter,
  };
}

/**
 * Voxels with scl_slope/scl_inter applied when the slope is finite and non-zero (as nibabel), same
 * layout as `vol.data` (`[T, Z, Y, X]`). Float64Array for float64 data or `{ dtype: 'float64' }`
 * (then bit-identical to nibabel's `get_fdata()`), else Float32Array (the float64 result rounded once).
 */
export function niftiScaled(vol: Pick<NiftiVolume, 'data' | 'sclSlope' | 'sclInter'>, opts: { dtype?: 'float32' | 'float64' } = {}): Float32Array | Float64Array {
  const { data } = vol;
  if (data.dtype === 'complex64' || data.dtype === 'complex128') {
    throw new TypeError('niftiScaled: complex data has no real scaled form; use vol.data directly');
  }
  const want = opts.dtype ?? (data.dtype === 'float64' ? 'float64' : 'float32');
  const n = shapeSize(data.shape);
  const out = want === 'float64' ? new Float64Array(n) : new Float32Array(n);
  const slope = vol.sclSlope;
  const scale = Number.isFinite(slope) && slope !== 0;
  const inter = scale && Number.isFinite(vol.sclInter) ? vol.sclInter : 0;
  const src = data.data;
  if (src instanceof BigInt64Array || src instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = scale ? Number(src[i]!) * slope + inter : Number(src[i]!);
  } else if (!scale || (slope === 1 && inter === 0)) {
    out.set(src as ArrayLike<number>);
  } else {
    const s = src as Exclude<TypedArray, BigInt64Array | BigUint64Array>;
    for (let i = 0; i < n; i++) out[i] = s[i]! * slope + inter;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Writing.

/** Options of {@link writeNifti}. */
export interface WriteNiftiOptions {
  /** 4×4 voxel-to-world matrix; both sform and qform are set from it. Default: diag(pixdim[0..2], 1). */
  affine?: number[][];
  /** Stored scl_slope (default 1: nibabel and FSL read that as "no scaling"). */
  sclSlope?: number;
  /** Stored scl_inter (default 0). */
  sclInter?: number;
  /** Voxel sizes `[dx, dy, dz, TR, ...]` (dx..dz are replaced by the affine's column norms when an affine is given). */
  pixdim?: number[];
  /** Units code (default 10 = mm + seconds). */
  xyztUnits?: number;
  /** Free text, up to 80 bytes. */
  descrip?: string;
  intentCode?: number;
  /** sform_code and qform_code (default 1, NIFTI_XFORM_SCANNER_ANAT; 2 = aligned to another scan). */
  xformCode?: number;
  /** gzip level for `.nii.gz` (default 6). */
  gzipLevel?: number;
}

/** Builds the 352-byte little-endian NIfTI-1 header (+ empty extension flag) for `data` (`[T, Z, Y, X]` or `[Z, Y, X]`). */
export function buildNiftiHeader(data: Pick<NDArray, 'dtype' | 'shape'>, opts: WriteNiftiOptions = {}): Uint8Array {
  const code = DTYPE_TO_CODE[data.dtype];
  if (code === undefined) {
    throw new TypeError(`writeNifti: NIfTI-1 cannot store dtype ${data.dtype}; use one of ${Object.keys(DTYPE_TO_CODE).join(', ')} (e.g. float16 -> float32, bool -> uint8)`);
  }
  const dims = data.shape.slice().reverse();
  if (dims.length < 1 || dims.length > 7) throw new RangeError(`writeNifti: NIfTI holds 1 to 7 dimensions, got shape [${data.shape.join(', ')}]`);
  if (dims.some((d) => d > 32767)) throw new RangeError(`writeNifti: NIfTI-1 dimensions must be ≤ 32767, got [${dims.join(', ')}]`);
  const buf = new Uint8Array(352);
  const dv = new DataView(buf.buffer);
  const pix = opts.pixdim ?? [];
  const pixdim = [1, ...Array.from({ length: 7 }, (_, i) => (i < dims.length ? pix[i] ?? 1 : 1))];
  const affine = opts.affine ?? [[pixdim[1]!, 0, 0, 0], [0, pixdim[2]!, 0, 0], [0, 0, pixdim[3]!, 0], [0, 0, 0, 1]];
  if (affine.length < 3 || affine.slice(0, 3).some((r) => r.length < 4 || r.some((v) => !Number.isFinite(v)))) {
    throw new RangeError('writeNifti: affine must be a finite 4×4 matrix (rows of 4 numbers)');
  }
  const q = affineToQform(affine);
  pixdim[0] = q.qfac;
  for (let i = 0; i < 3; i++) pixdim[i + 1] = q.zooms[i]!;
  const xform = opts.xformCode ?? 1;
  dv.setInt32(0, 348, true);
  buf[38] = 'r'.charCodeAt(0);
  dv.setInt16(40, dims.length, true);
  for (let i = 0; i < 7; i++) dv.setInt16(42 + 2 * i, i < dims.length ? dims[i]! : 1, true);
  dv.setInt16(68, opts.intentCode ?? 0, true);
  dv.setInt16(70, code, true);
  dv.setInt16(72, DTYPE_BYTES[data.dtype] * 8, true);
  for (let i = 0; i < 8; i++) dv.setFloat32(76 + 4 * i, pixdim[i]!, true);
  dv.setFloat32(108, 352, true);
  dv.setFloat32(112, opts.sclSlope ?? 1, true);
  dv.setFloat32(116, opts.sclInter ?? 0, true);
  buf[123] = opts.xyztUnits ?? 10;
  const descrip = Buffer.from(opts.descrip ?? '', 'utf8').subarray(0, 79);
  buf.set(descrip, 148);
  dv.setInt16(252, xform, true);
  dv.setInt16(254, xform, true);
  dv.setFloat32(256, q.b, true);
  dv.setFloat32(260, q.c, true);
  dv.setFloat32(264, q.d, true);
  for (let i = 0; i < 3; i++) dv.setFloat32(268 + 4 * i, q.offset[i]!, true);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) dv.setFloat32(280 + 16 * r + 4 * c, affine[r]![c]!, true);
  buf.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  return buf; // bytes 348..351: extension flag 0 (no extensions)
}

function* dataChunks(bytes: Uint8Array, chunk = 1 << 24): Generator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += chunk) yield bytes.subarray(o, Math.min(bytes.length, o + chunk));
}

/**
 * Writes `data` (shape `[T, Z, Y, X]` or `[Z, Y, X]`, x fastest — the layout `readNifti` returns) as
 * little-endian NIfTI-1; `.nii.gz` is gzip-streamed (no compressed copy held in memory). sform and qform
 * are both set from `affine` with code `xformCode` (default 1 = scanner). Atomic: temp file, then rename.
 */
export async function writeNifti(file: string, data: NDArray, opts: WriteNiftiOptions = {}): Promise<void> {
  const header = buildNiftiHeader(data, opts);
  const want = shapeSize(data.shape) * (data.dtype === 'complex64' || data.dtype === 'complex128' ? 2 : 1);
  if (data.data.length !== want) {
    throw new RangeError(`writeNifti(${file}): shape [${data.shape.join(', ')}] needs ${want} elements, data has ${data.data.length}`);
  }
  const bytes = new Uint8Array(data.data.buffer, data.data.byteOffset, data.data.byteLength);
  const gz = /\.gz$/i.test(file);
  await withAtomicFile(file, async (tmp) => {
    if (gz) {
      const source = Readable.from((function* () { yield header; yield* dataChunks(bytes); })(), { objectMode: false });
      await pipeline(source, zlib.createGzip({ level: opts.gzipLevel ?? 6 }), fs.createWriteStream(tmp));
    } else {
      const fh = await fs.promises.open(tmp, 'w');
      try {
        await fh.write(header, 0, header.length, 0);
        let pos = header.length;
        for (const c of dataChunks(bytes)) {
          await fh.write(c, 0, c.length, pos);
          pos += c.length;
        }
      } finally {
        await fh.close();
      }
    }
  });
}
