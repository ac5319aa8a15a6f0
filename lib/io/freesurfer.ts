/**
 * FreeSurfer binary formats (all big-endian): triangle and quad surfaces, curv ("morph data") files,
 * flat patches (`?h.full.flat.patch.3d`) and MGH / MGZ volumes.
 *
 * Byte layouts follow FreeSurfer's own readers (matlab/read_surf.m, read_curv.m, read_patch.m, MRIread.m)
 * and nibabel.freesurfer, which the fixtures in test/fixtures/surf were checked against.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { withAtomicFile } from './atomic.js';
import { FileFormatError } from './errors.js';
import { checkInputFile } from './input.js';
import { type DType, type NDArray, type TypedArray, allocTyped, shapeSize, swapBytes } from './ndarray.js';

/** A triangle mesh: `vertices` is `[N, 3]` flat (x, y, z per vertex), `faces` is `[F, 3]` flat, 0-based vertex indices. */
export interface Surface {
  vertices: Float32Array;
  faces: Int32Array;
}

const TRIANGLE_MAGIC = 0xfffffe;
const QUAD_MAGIC = 0xffffff;
const NEW_QUAD_MAGIC = 0xfffffd;
const NEW_CURV_MAGIC = 0xffffff;

/** Reads a whole file, turning a missing file into a FileFormatError. */
async function readAll(file: string, what: string): Promise<Buffer> {
  checkInputFile(file, what);
  try {
    return await fs.promises.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(file, `a readable ${what}`, code === 'ENOENT' ? 'no such file' : String(e),
      'Check the path.');
  }
}

/** A bounds-checked big-endian cursor over a file's bytes. */
class BEReader {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly buf: Uint8Array, readonly file: string, readonly what: string) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number, field: string): void {
    if (this.pos + n > this.buf.length) {
      throw new FileFormatError(this.file, `${n} more bytes for ${field} of a ${this.what}`,
        `the file ends at byte ${this.buf.length} (truncated)`, 'Re-copy or re-export the file.');
    }
  }
  u24(field: string): number {
    this.need(3, field);
    const b = this.buf;
    const v = (b[this.pos]! << 16) | (b[this.pos + 1]! << 8) | b[this.pos + 2]!;
    this.pos += 3;
    return v;
  }
  i32(field: string): number {
    this.need(4, field);
    const v = this.view.getInt32(this.pos, false);
    this.pos += 4;
    return v;
  }
  i16(field: string): number {
    this.need(2, field);
    const v = this.view.getInt16(this.pos, false);
    this.pos += 2;
    return v;
  }
  f32(field: string): number {
    this.need(4, field);
    const v = this.view.getFloat32(this.pos, false);
    this.pos += 4;
    return v;
  }
  /** Reads `n` big-endian 4-byte words into a fresh little-endian typed array. */
  words<T extends Float32Array | Int32Array>(n: number, Ctor: new (n: number) => T, field: string): T {
    this.need(4 * n, field);
    const out = new Ctor(n);
    const bytes = new Uint8Array(out.buffer);
    bytes.set(this.buf.subarray(this.pos, this.pos + 4 * n));
    swapBytes(bytes, 4);
    this.pos += 4 * n;
    return out;
  }
}


/** Big-endian bytes of a typed array (a copy). */
function toBigEndian(a: TypedArray): Uint8Array {
  const bytes = new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
  swapBytes(bytes, a.BYTES_PER_ELEMENT);
  return bytes;
}

function checkSurface(file: string, s: Surface): number {
  if (s.vertices.length % 3 !== 0 || s.faces.length % 3 !== 0) {
    throw new FileFormatError(file, 'vertices [N, 3] and faces [F, 3] (flat lengths divisible by 3)',
      `${s.vertices.length} vertex and ${s.faces.length} face values`);
  }
  const n = s.vertices.length / 3;
  for (let i = 0; i < s.faces.length; i++) {
    const f = s.faces[i]!;
    if (f < 0 || f >= n) {
      throw new FileFormatError(file, `face indices in [0, ${n})`, `index ${f} in face ${Math.floor(i / 3)}`);
    }
  }
  return n;
}

/**
 * Parses a FreeSurfer surface from its bytes: triangle files (magic 0xFFFFFE) and quad files
 * (0xFFFFFF, int16 coordinates / 100; 0xFFFFFD, float32), whose quads are split into two triangles
 * each as nibabel and FreeSurfer's read_surf.m do. Returns vertices `[N, 3]` and faces `[F, 3]`.
 */
export function parseFreesurferSurface(buf: Uint8Array, file = '<buffer>'): Surface & { createdBy?: string } {
  const r = new BEReader(buf, file, 'FreeSurfer surface');
  const magic = r.u24('the magic number');
  if (magic === TRIANGLE_MAGIC) {
    // "created by <user> on <date>\n\n" (nibabel and FreeSurfer write two newlines)
    let end = r.pos;
    while (end < buf.length && buf[end] !== 0x0a) end++;
    if (end >= buf.length) r.need(buf.length - r.pos + 1, 'the "created by" line');
    const createdBy = Buffer.from(buf.subarray(r.pos, end)).toString('utf8');
    r.pos = end + 1;
    if (buf[r.pos] === 0x0a) r.pos++;
    const nv = r.i32('the vertex count');
    const nf = r.i32('the face count');
    if (nv < 0 || nf < 0) {
      throw new FileFormatError(file, 'non-negative vertex and face counts', `${nv} vertices and ${nf} faces`,
        'The file is corrupt.');
    }
    const vertices = r.words(3 * nv, Float32Array, 'the vertex coordinates');
    const faces = r.words(3 * nf, Int32Array, 'the faces');
    checkSurface(file, { vertices, faces });
    return { vertices, faces, createdBy };
  }
  if (magic === QUAD_MAGIC && buf.length >= 4 && buf[3] === 0xff) {
    throw new FileFormatError(file, 'a FreeSurfer surface', 'a FreeSurfer patch (first int32 = -1)', 'Read it with readPatch.');
  }
  if (magic === QUAD_MAGIC && buf.length >= 15) {
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (v.getInt32(11, false) === 1 && buf.length === 15 + 4 * v.getInt32(3, false)) {
      throw new FileFormatError(file, 'a FreeSurfer surface', 'a curv (morph data) file (magic 0xFFFFFF, 1 value per vertex)',
        'Read it with readCurv.');
    }
  }
  if (magic === QUAD_MAGIC || magic === NEW_QUAD_MAGIC) {
    const nv = r.u24('the vertex count');
    const nq = r.u24('the quad count');
    r.need((magic === NEW_QUAD_MAGIC ? 12 : 6) * nv + 12 * nq, 'the vertices and quads');
    const vertices = new Float32Array(3 * nv);
    if (magic === NEW_QUAD_MAGIC) vertices.set(r.words(3 * nv, Float32Array, 'the vertex coordinates'));
    else for (let i = 0; i < 3 * nv; i++) vertices[i] = r.i16('the vertex coordinates') / 100;
    const faces = new Int32Array(6 * nq);
    for (let q = 0; q < nq; q++) {
      const a = r.u24('the quads'), b = r.u24('the quads'), c = r.u24('the quads'), d = r.u24('the quads');
      // the split depends on the parity of the first vertex (nibabel.freesurfer.io.read_geometry)
      const tri = a % 2 === 0 ? [a, b, d, c, d, b] : [a, b, c, a, c, d];
      faces.set(tri, 6 * q);
    }
    checkSurface(file, { vertices, faces });
    return { vertices, faces };
  }
  throw new FileFormatError(file, 'a FreeSurfer surface (magic 0xFFFFFE triangles, 0xFFFFFF or 0xFFFFFD quads)',
    `magic 0x${magic.toString(16).toUpperCase().padStart(6, '0')}`,
    'Is this a curv, patch, label or GIFTI file? Use the matching reader.');
}

/** Reads a FreeSurfer surface (`lh.white`, `lh.sphere`, ...): vertices `[N, 3]`, faces `[F, 3]`, and the "created by" line. */
export async function readFreesurferSurface(path: string): Promise<Surface & { createdBy?: string }> {
  return parseFreesurferSurface(await readAll(path, 'FreeSurfer surface'), path);
}

/** Serialises a triangle surface in FreeSurfer's binary format (magic 0xFFFFFE). */
export function encodeFreesurferSurface(surface: Surface, createdBy = 'created by brainnet'): Uint8Array {
  checkSurface('<surface>', surface);
  const stamp = Buffer.from(`${createdBy.replace(/\n/g, ' ')}\n\n`, 'utf8');
  const nv = surface.vertices.length / 3, nf = surface.faces.length / 3;
  const out = new Uint8Array(3 + stamp.length + 8 + 4 * (3 * nv + 3 * nf));
  const view = new DataView(out.buffer);
  out.set([0xff, 0xff, 0xfe], 0);
  out.set(stamp, 3);
  let p = 3 + stamp.length;
  view.setInt32(p, nv, false);
  view.setInt32(p + 4, nf, false);
  p += 8;
  out.set(toBigEndian(Float32Array.from(surface.vertices)), p);
  out.set(toBigEndian(Int32Array.from(surface.faces)), p + 12 * nv);
  return out;
}

/** Writes a triangle surface (vertices `[N, 3]`, faces `[F, 3]`) as a FreeSurfer binary surface, atomically. */
export async function writeFreesurferSurface(path: string, surface: Surface, createdBy?: string): Promise<void> {
  const bytes = encodeFreesurferSurface(surface, createdBy);
  await withAtomicFile(path, (tmp) => fs.promises.writeFile(tmp, bytes));
}

/** Parses a curv file: new format (magic 0xFFFFFF, float32) or old format (int16 / 100). Returns `[N]`. */
export function parseCurv(buf: Uint8Array, file = '<buffer>'): Float32Array {
  const r = new BEReader(buf, file, 'FreeSurfer curv file');
  const first = r.u24('the magic number');
  if (first === NEW_CURV_MAGIC) {
    const nv = r.i32('the vertex count');
    r.i32('the face count');
    const perVertex = r.i32('the values per vertex');
    if (perVertex !== 1 || nv < 0) {
      throw new FileFormatError(file, 'a curv file with 1 value per vertex', `${perVertex} values per vertex, ${nv} vertices`,
        'Multi-frame morph files are not supported.');
    }
    return r.words(nv, Float32Array, 'the curvature values');
  }
  if (first === TRIANGLE_MAGIC || first === NEW_QUAD_MAGIC) {
    throw new FileFormatError(file, 'a FreeSurfer curv file (magic 0xFFFFFF)', `a FreeSurfer surface (magic 0x${first.toString(16).toUpperCase()})`,
      'Read it with readFreesurferSurface.');
  }
  // old format: 3-byte vertex count, 3-byte face count, int16 values scaled by 100 (read_curv.m)
  const nv = first;
  if (buf.length !== 6 + 2 * nv) {
    throw new FileFormatError(file, 'a FreeSurfer curv file (magic 0xFFFFFF, or the old int16 format)',
      `first bytes 0x${first.toString(16).toUpperCase().padStart(6, '0')} and a size (${buf.length} bytes) that fits neither`,
      'The file is truncated, or is a surface, patch or MGH file: use the matching reader.');
  }
  r.u24('the face count');
  const out = new Float32Array(nv);
  for (let i = 0; i < nv; i++) out[i] = r.i16('the curvature values') / 100;
  return out;
}

/** Reads a FreeSurfer curv / morph-data file (`lh.curv`, `lh.thickness`, `lh.sulc`): one float per vertex, `[N]`. */
export async function readCurv(path: string): Promise<Float32Array> {
  return parseCurv(await readAll(path, 'FreeSurfer curv file'), path);
}

/** Writes per-vertex values `[N]` as a new-format curv file (magic 0xFFFFFF), atomically. */
export async function writeCurv(path: string, values: ArrayLike<number>, nFaces = 0): Promise<void> {
  const out = new Uint8Array(15 + 4 * values.length);
  const view = new DataView(out.buffer);
  out.set([0xff, 0xff, 0xff], 0);
  view.setInt32(3, values.length, false);
  view.setInt32(7, nFaces, false);
  view.setInt32(11, 1, false);
  out.set(toBigEndian(Float32Array.from(values)), 15);
  await withAtomicFile(path, (tmp) => fs.promises.writeFile(tmp, out));
}

/** A flat patch: `vertices` `[n, 3]`, `indices` `[n]` (vertex numbers in the full surface), `border` `[n]` (1 = on the cut border). */
export interface Patch {
  vertices: Float32Array;
  indices: Int32Array;
  border: Uint8Array;
}

/**
 * Parses a binary FreeSurfer patch. Layout (FreeSurfer matlab/read_patch.m and MRISwritePatch): int32 -1
 * (the new-format marker), int32 npts, then per point int32 code, float32 x, y, z, all big-endian.
 * A code c < 0 marks a border vertex numbered -c - 1; otherwise the vertex is c - 1.
 */
export function parsePatch(buf: Uint8Array, file = '<buffer>'): Patch {
  const r = new BEReader(buf, file, 'FreeSurfer patch');
  const version = r.i32('the version marker');
  if (version !== -1) {
    throw new FileFormatError(file, 'a new-format FreeSurfer patch (first int32 = -1)', `first int32 = ${version}`,
      'Old-format patches are not supported; re-save it with a current FreeSurfer (mris_flatten), or check that this is a patch file.');
  }
  const n = r.i32('the point count');
  if (n < 0) throw new FileFormatError(file, 'a non-negative point count', String(n), 'The file is corrupt.');
  r.need(16 * n, 'the points');
  const vertices = new Float32Array(3 * n);
  const indices = new Int32Array(n);
  const border = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const code = r.i32('a vertex code');
    if (code < 0) {
      indices[i] = -code - 1;
      border[i] = 1;
    } else if (code > 0) {
      indices[i] = code - 1;
    } else {
      throw new FileFormatError(file, 'vertex codes other than 0 (1-based, negative on the border)',
        `code 0 at point ${i}`, 'The file is corrupt.');
    }
    vertices[3 * i] = r.f32('x');
    vertices[3 * i + 1] = r.f32('y');
    vertices[3 * i + 2] = r.f32('z');
  }
  return { vertices, indices, border };
}

/** Reads a FreeSurfer flat patch (`lh.full.flat.patch.3d`): vertices `[n, 3]`, full-surface indices `[n]`, border flags `[n]`. */
export async function readPatch(path: string): Promise<Patch> {
  return parsePatch(await readAll(path, 'FreeSurfer patch'), path);
}

/** Writes a patch (vertices `[n, 3]`, indices `[n]`, border `[n]`) in FreeSurfer's binary format, atomically. */
export async function writePatch(path: string, patch: Patch): Promise<void> {
  const n = patch.indices.length;
  if (patch.vertices.length !== 3 * n || patch.border.length !== n) {
    throw new FileFormatError(path, `vertices [${n}, 3] and border [${n}] to match indices [${n}]`,
      `${patch.vertices.length} vertex values and ${patch.border.length} border flags`);
  }
  const out = new Uint8Array(8 + 16 * n);
  const v = new DataView(out.buffer);
  v.setInt32(0, -1, false);
  v.setInt32(4, n, false);
  for (let i = 0; i < n; i++) {
    const idx = patch.indices[i]!;
    if (idx < 0) throw new FileFormatError(path, 'non-negative vertex indices', `index ${idx} at point ${i}`);
    v.setInt32(8 + 16 * i, patch.border[i] ? -(idx + 1) : idx + 1, false);
    for (let k = 0; k < 3; k++) v.setFloat32(12 + 16 * i + 4 * k, patch.vertices[3 * i + k]!, false);
  }
  await withAtomicFile(path, (tmp) => fs.promises.writeFile(tmp, out));
}

// ------------------------------------------------------------------------------------------- MGH / MGZ

/** An MGH volume. `dims` are the file's [width, height, depth(, frames)] (frames left out when 1, as nibabel does);
 * `data.shape` is `dims` reversed (slowest first), so x varies fastest in memory, as on disk (the NIfTI convention). */
export interface MghVolume {
  dims: number[];
  dtype: DType;
  data: NDArray;
  /** 4×4 voxel-to-RAS matrix, row-major (present when the file's goodRASFlag is set). */
  affine?: Float64Array;
}

const MGH_TYPES: Record<number, DType> = { 0: 'uint8', 1: 'int32', 3: 'float32', 4: 'int16' };
const MGH_HEADER = 284;

/** Parses MGH bytes (already gunzipped): header, voxel data (big-endian, x fastest) and affine. */
export function parseMgh(buf: Uint8Array, file = '<buffer>'): MghVolume {
  const r = new BEReader(buf, file, 'MGH volume');
  const version = r.i32('the version');
  if (version !== 1) {
    throw new FileFormatError(file, 'an MGH file (version 1 header)', `version ${version}`,
      'Is this an MGH/MGZ file? (.mgz must be gzipped .mgh)');
  }
  const dims4 = [r.i32('width'), r.i32('height'), r.i32('depth'), r.i32('frames')];
  const type = r.i32('the data type');
  r.i32('dof');
  const goodRAS = r.i16('goodRASFlag');
  const delta = [r.f32('delta'), r.f32('delta'), r.f32('delta')];
  const mdc: number[] = [];
  for (let i = 0; i < 9; i++) mdc.push(r.f32('Mdc'));
  const c = [r.f32('Pxyz_c'), r.f32('Pxyz_c'), r.f32('Pxyz_c')];
  const dtype = MGH_TYPES[type];
  if (!dtype) {
    throw new FileFormatError(file, 'MGH data type 0 (uint8), 1 (int32), 3 (float32) or 4 (int16)', `type ${type}`);
  }
  if (dims4.some((d) => d < 1)) throw new FileFormatError(file, 'positive dimensions', `[${dims4.join(', ')}]`);
  const dims = dims4[3] === 1 ? dims4.slice(0, 3) : dims4;
  const n = shapeSize(dims);
  const size = ({ uint8: 1, int32: 4, float32: 4, int16: 2 } as Record<string, number>)[dtype]!;
  r.pos = MGH_HEADER;
  r.need(n * size, 'the voxel data');
  const arr = allocTyped(dtype, n);
  const bytes = new Uint8Array(arr.buffer);
  bytes.set(buf.subarray(MGH_HEADER, MGH_HEADER + n * size));
  swapBytes(bytes, size);
  const out: MghVolume = { dims, dtype, data: { dtype, shape: [...dims].reverse(), data: arr } };
  if (goodRAS > 0) {
    // vox2ras = [Mdc·diag(delta) | c - Mdc·diag(delta)·dims/2] (nibabel MGHHeader.get_affine; mdc holds x, y, z direction rows)
    const a = new Float64Array(16);
    const half = [dims4[0]! / 2, dims4[1]! / 2, dims4[2]! / 2];
    for (let row = 0; row < 3; row++) {
      let t = c[row]!;
      for (let col = 0; col < 3; col++) {
        const m = mdc[3 * col + row]! * delta[col]!;
        a[4 * row + col] = m;
        t -= m * half[col]!;
      }
      a[4 * row + 3] = t;
    }
    a[15] = 1;
    out.affine = a;
  }
  return out;
}

/** Reads an MGH (`.mgh`) or gzipped MGH (`.mgz`) volume, e.g. NSD's `lh.nsdgeneral.mgz`; data shape is dims reversed. */
export async function readMgh(path: string): Promise<MghVolume> {
  let buf: Uint8Array = await readAll(path, 'MGH/MGZ volume');
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (e) {
      throw new FileFormatError(path, 'a complete gzip stream (.mgz)', `a gzip error: ${(e as Error).message}`,
        'The file is truncated or corrupt; re-copy it.');
    }
  }
  return parseMgh(buf, path);
}

/** Serialises an MGH volume: `data` shaped `[frames?, depth, height, width]` (slowest first) or given `dims`; affine row-major 4×4. */
export function encodeMgh(data: NDArray, affine?: ArrayLike<number>): Uint8Array {
  const code = Object.entries(MGH_TYPES).find(([, t]) => t === data.dtype)?.[0];
  if (code === undefined) {
    throw new FileFormatError('<mgh>', 'uint8, int16, int32 or float32 data for MGH', data.dtype, 'Convert the array first.');
  }
  const rev = [...data.shape].reverse();
  if (rev.length < 1 || rev.length > 4) {
    throw new FileFormatError('<mgh>', 'a 1- to 4-D array', `shape [${data.shape.join(', ')}]`);
  }
  while (rev.length < 4) rev.push(1);
  const size = data.data.BYTES_PER_ELEMENT;
  const out = new Uint8Array(MGH_HEADER + data.data.byteLength);
  const v = new DataView(out.buffer);
  v.setInt32(0, 1, false);
  rev.forEach((d, i) => v.setInt32(4 + 4 * i, d, false));
  v.setInt32(20, Number(code), false);
  v.setInt32(24, 0, false);
  const A = affine ? Array.from(affine) : [1, 0, 0, -rev[0]! / 2, 0, 1, 0, -rev[1]! / 2, 0, 0, 1, -rev[2]! / 2, 0, 0, 0, 1];
  // decompose the affine into voxel sizes, unit direction columns and the centre's RAS
  const delta = [0, 1, 2].map((col) => Math.hypot(A[col]!, A[4 + col]!, A[8 + col]!) || 1);
  v.setInt16(28, 1, false);
  let p = 30;
  for (const d of delta) { v.setFloat32(p, d, false); p += 4; }
  for (let col = 0; col < 3; col++) {
    for (let row = 0; row < 3; row++) { v.setFloat32(p, A[4 * row + col]! / delta[col]!, false); p += 4; }
  }
  for (let row = 0; row < 3; row++) {
    let cRow = A[4 * row + 3]!;
    for (let col = 0; col < 3; col++) cRow += A[4 * row + col]! * (rev[col]! / 2);
    v.setFloat32(p, cRow, false);
    p += 4;
  }
  const bytes = new Uint8Array(data.data.buffer.slice(data.data.byteOffset, data.data.byteOffset + data.data.byteLength));
  swapBytes(bytes, size);
  out.set(bytes, MGH_HEADER);
  return out;
}

/** Writes an MGH volume (`.mgz` paths are gzipped); `data.shape` is dims reversed (slowest first), affine row-major 4×4. Atomic. */
export async function writeMgh(path: string, data: NDArray, affine?: ArrayLike<number>): Promise<void> {
  let bytes = encodeMgh(data, affine);
  if (path.toLowerCase().endsWith('.mgz')) bytes = zlib.gzipSync(bytes);
  await withAtomicFile(path, (tmp) => fs.promises.writeFile(tmp, bytes));
}
