/**
 * MATLAB Level 5 MAT-files (`save -v6` and `-v7`, the format of NSD's `nsd_expdesign.mat`), written from
 * MathWorks' "MAT-File Format" specification (R2023b, chapter 1: Level 5 MAT-File Format).
 *
 * Conventions:
 * - A numeric, logical or complex MATLAB array becomes an NDArray whose `shape` is MATLAB's `size()`
 *   (always at least 2-D: a 1×30000 row stays `[1, 30000]`), with data converted from MATLAB's
 *   column-major order to C order, so `data[i * cols + j]` is MATLAB's `A(i+1, j+1)`.
 * - dtypes follow MATLAB's class (double → float64, single → float32, int8..uint64, logical → bool,
 *   whatever narrower type the file used for storage). Complex double/single → complex128/complex64
 *   (complex integer classes → complex128).
 * - char: a 1×N (or empty) char array → `string`; an M×N char matrix → `string[]` (one per row).
 * - struct 1×1 → {@link MatStruct} (`fields`); other struct arrays → {@link MatStructArray};
 *   cell arrays → {@link MatCell}. Their elements are listed in C order over `shape`.
 * Sparse arrays, objects, function handles and MATLAB's opaque classes (string, table, ...) are refused with a
 * FileFormatError naming the variable. v7.3 files are HDF5 and are refused with a pointer to readHdf5.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { withAtomicFile } from './atomic.js';
import { FileFormatError } from './errors.js';
import { checkInputFile } from './input.js';
import { type DType, type NDArray, type TypedArray, allocTyped, shapeSize, swapBytes, fortranToCTyped, cToFortranTyped } from './ndarray.js';

/** A 1×1 MATLAB struct: field name → value. */
export interface MatStruct {
  kind: 'struct';
  fields: { [name: string]: MatValue };
}

/** A MATLAB struct array of any other size; `elements` holds one record per element, C order over `shape`. */
export interface MatStructArray {
  kind: 'struct-array';
  shape: number[];
  fieldNames: string[];
  elements: { [name: string]: MatValue }[];
}

/** A MATLAB cell array; `cells` in C order over `shape` (for a 1×N cell, simply in order). */
export interface MatCell {
  kind: 'cell';
  shape: number[];
  cells: MatValue[];
}

/** Any value a MAT-file variable can hold here. */
export type MatValue = NDArray | string | string[] | MatStruct | MatStructArray | MatCell;

/** Builds a 1×1 struct value for {@link writeMat}. */
export function matStruct(fields: { [name: string]: MatValue }): MatStruct {
  return { kind: 'struct', fields };
}

/** Builds a 1×N cell value for {@link writeMat}. */
export function matCell(cells: MatValue[], shape: number[] = [1, cells.length]): MatCell {
  return { kind: 'cell', shape, cells };
}

/** True when a value is an NDArray (not a string, struct or cell). */
export function isMatArray(v: MatValue): v is NDArray {
  return typeof v === 'object' && !Array.isArray(v) && !('kind' in v);
}

// miXXX data types
const mi = {
  INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9,
  INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15, UTF8: 16, UTF16: 17, UTF32: 18,
} as const;
const MI_DTYPE: Record<number, DType> = {
  1: 'int8', 2: 'uint8', 3: 'int16', 4: 'uint16', 5: 'int32', 6: 'uint32', 7: 'float32', 9: 'float64',
  12: 'int64', 13: 'uint64', 16: 'uint8', 17: 'uint16', 18: 'uint32',
};
// mxXXX_CLASS array classes
const mx = {
  CELL: 1, STRUCT: 2, OBJECT: 3, CHAR: 4, SPARSE: 5, DOUBLE: 6, SINGLE: 7, INT8: 8, UINT8: 9,
  INT16: 10, UINT16: 11, INT32: 12, UINT32: 13, INT64: 14, UINT64: 15, FUNCTION: 16, OPAQUE: 17,
} as const;
const MX_DTYPE: Record<number, DType> = {
  6: 'float64', 7: 'float32', 8: 'int8', 9: 'uint8', 10: 'int16', 11: 'uint16', 12: 'int32', 13: 'uint32',
  14: 'int64', 15: 'uint64',
};
const MX_NAME: Record<number, string> = {
  3: 'an object (MATLAB class instance)', 5: 'a sparse array', 16: 'a function handle', 17: 'an opaque MATLAB object (string, table, datetime, ...)',
};
const FLAG_COMPLEX = 0x0800;
const FLAG_LOGICAL = 0x0200;


/** Reorders column-major data of `shape` into C order (or, with `toF`, C order into column-major). */
function reorder<T extends TypedArray>(src: T, shape: number[], toF = false): T {
  return toF ? cToFortranTyped(src, shape) : fortranToCTyped(src, shape);
}

/** Reorders an element list (cells, struct elements) from column-major to C order. */
function reorderList<T>(items: T[], shape: number[]): T[] {
  const idx = reorder(Uint32Array.from(items.keys()), shape);
  return Array.from(idx, (i) => items[i]!);
}

interface Element { type: number; data: Uint8Array }

/** Reads data elements from a byte range in a given byte order. */
class ElementReader {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly buf: Uint8Array, readonly le: boolean, readonly file: string, readonly what: string) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get done(): boolean { return this.pos >= this.buf.length; }
  truncated(need: string): FileFormatError {
    return new FileFormatError(this.file, `${need} in ${this.what}`,
      `the data ends at byte ${this.buf.length} (truncated)`, 'The file is truncated or corrupt; re-save or re-copy it.');
  }
  /** The next element (tag + data), handling the small-data-element format and 8-byte padding. */
  next(need = 'a data element'): Element {
    if (this.pos + 8 > this.buf.length) throw this.truncated(need);
    const w = this.view.getUint32(this.pos, this.le);
    if (w >>> 16 !== 0) {
      // small data element: 2 bytes count, 2 bytes type, then up to 4 bytes of data in the same 8 bytes
      const nbytes = w >>> 16, type = w & 0xffff;
      if (nbytes > 4) throw new FileFormatError(this.file, `a small data element of at most 4 bytes in ${this.what}`, `${nbytes} bytes`);
      const data = this.buf.subarray(this.pos + 4, this.pos + 4 + nbytes);
      this.pos += 8;
      return { type, data };
    }
    const type = w;
    const nbytes = this.view.getUint32(this.pos + 4, this.le);
    const start = this.pos + 8;
    if (start + nbytes > this.buf.length) throw this.truncated(`${nbytes} bytes of ${need}`);
    this.pos = start + nbytes;
    if (type !== mi.COMPRESSED) this.pos += (8 - (nbytes % 8)) % 8;
    return { type, data: this.buf.subarray(start, start + nbytes) };
  }
}

/** Decodes an element's bytes as a typed array of its own mi type, in this machine's byte order. */
function typed(el: Element, le: boolean, file: string, what: string): TypedArray {
  const dtype = MI_DTYPE[el.type];
  if (!dtype) throw new FileFormatError(file, `a numeric data element in ${what}`, `data type ${el.type}`);
  const arr = allocTyped(dtype, 0);
  const size = arr.BYTES_PER_ELEMENT;
  if (el.data.length % size !== 0) {
    throw new FileFormatError(file, `a multiple of ${size} bytes for ${dtype} data in ${what}`, `${el.data.length} bytes`);
  }
  const out = allocTyped(dtype, el.data.length / size);
  const bytes = new Uint8Array(out.buffer);
  bytes.set(el.data);
  if (!le) swapBytes(bytes, size);
  return out;
}

/** Converts typed data to the class's dtype (MATLAB may store a double array as, say, uint8). */
function castTo(src: TypedArray, dtype: DType): TypedArray {
  const out = allocTyped(dtype, src.length);
  if (out.constructor === src.constructor) return src;
  const bigOut = out instanceof BigInt64Array || out instanceof BigUint64Array;
  const bigIn = src instanceof BigInt64Array || src instanceof BigUint64Array;
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (bigOut) (out as BigInt64Array)[i] = bigIn ? (v as bigint) : BigInt(Math.trunc(v as number));
    else (out as Float64Array)[i] = bigIn ? Number(v) : (v as number);
  }
  return out;
}

function decodeChars(el: Element, le: boolean, file: string, what: string): Uint16Array {
  if (el.type === mi.UTF8 || el.type === mi.UINT8 || el.type === mi.INT8) {
    const s = Buffer.from(el.data).toString(el.type === mi.UTF8 ? 'utf8' : 'latin1');
    const out = new Uint16Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  if (el.type === mi.UTF32) {
    const cps = typed(el, le, file, what) as Uint32Array;
    const s = String.fromCodePoint(...cps);
    return Uint16Array.from(s, (_c, i) => s.charCodeAt(i));
  }
  return Uint16Array.from(castTo(typed(el, le, file, what), 'uint16') as Uint16Array);
}

function decodeMatrix(el: Element, le: boolean, file: string, where: string): { name: string; value: MatValue | undefined } {
  if (el.data.length === 0) return { name: '', value: undefined }; // an empty miMATRIX ([] in a cell)
  const r = new ElementReader(el.data, le, file, where);
  const flagsEl = r.next('the array flags');
  if (flagsEl.type !== mi.UINT32 || flagsEl.data.length < 8) {
    throw new FileFormatError(file, `array flags (8 bytes of miUINT32) in ${where}`, `type ${flagsEl.type}, ${flagsEl.data.length} bytes`);
  }
  const flags = new DataView(flagsEl.data.buffer, flagsEl.data.byteOffset, 8).getUint32(0, le);
  const cls = flags & 0xff;
  const dimsEl = r.next('the dimensions');
  const dims = Array.from(castTo(typed(dimsEl, le, file, where), 'int32') as Int32Array);
  const nameEl = r.next('the array name');
  const name = Buffer.from(nameEl.data).toString('latin1');
  const label = name ? `variable "${name}"` : where;
  if (MX_NAME[cls]) {
    throw new FileFormatError(file, `numeric, logical, char, struct or cell data in ${label}`, MX_NAME[cls]!,
      cls === mx.SPARSE ? 'Convert it to a full matrix in MATLAB (full(x)) and save again.'
        : 'Convert it to plain arrays/structs in MATLAB (e.g. struct(x), char(x)) and save again.');
  }
  if (dims.some((d) => d < 0)) throw new FileFormatError(file, `non-negative dimensions in ${label}`, `[${dims.join(', ')}]`);
  const n = shapeSize(dims);
  if (cls === mx.CHAR) {
    const codes = n === 0 ? new Uint16Array(0) : decodeChars(r.next('the characters'), le, file, label);
    if (codes.length !== n) {
      throw new FileFormatError(file, `${n} characters in ${label} (size [${dims.join(', ')}])`, `${codes.length}`);
    }
    if (dims.length === 2) {
      const [rows, cols] = dims as [number, number];
      const strs: string[] = [];
      for (let i = 0; i < rows; i++) {
        let s = '';
        for (let j = 0; j < cols; j++) s += String.fromCharCode(codes[i + j * rows]!);
        strs.push(s);
      }
      return { name, value: rows <= 1 ? (strs[0] ?? '') : strs };
    }
    return { name, value: { dtype: 'uint16', shape: dims, data: reorder(codes, dims) } };
  }
  if (cls === mx.CELL) {
    const cells: MatValue[] = [];
    for (let i = 0; i < n; i++) {
      const c = r.next(`cell ${i}`);
      cells.push(decodeMatrix(c, le, file, `cell ${i} of ${label}`).value ?? emptyDouble());
    }
    return { name, value: { kind: 'cell', shape: dims, cells: reorderList(cells, dims) } };
  }
  if (cls === mx.STRUCT) {
    const lenEl = r.next('the field name length');
    const fieldLen = (castTo(typed(lenEl, le, file, label), 'int32') as Int32Array)[0] ?? 0;
    const namesEl = r.next('the field names');
    const fieldNames: string[] = [];
    if (fieldLen > 0) {
      for (let p = 0; p + fieldLen <= namesEl.data.length; p += fieldLen) {
        const raw = namesEl.data.subarray(p, p + fieldLen);
        const z = raw.indexOf(0);
        fieldNames.push(Buffer.from(z < 0 ? raw : raw.subarray(0, z)).toString('latin1'));
      }
    }
    const elements: { [k: string]: MatValue }[] = [];
    for (let i = 0; i < n; i++) {
      const rec: { [k: string]: MatValue } = {};
      for (const f of fieldNames) {
        rec[f] = decodeMatrix(r.next(`field ${f}`), le, file, `field "${f}" of ${label}`).value ?? emptyDouble();
      }
      elements.push(rec);
    }
    if (n === 1 && dims.every((d) => d === 1)) return { name, value: { kind: 'struct', fields: elements[0]! } };
    return { name, value: { kind: 'struct-array', shape: dims, fieldNames, elements: reorderList(elements, dims) } };
  }
  const classType = MX_DTYPE[cls];
  if (!classType) throw new FileFormatError(file, `a known MATLAB array class in ${label}`, `class ${cls}`);
  const logical = (flags & FLAG_LOGICAL) !== 0;
  const complex = (flags & FLAG_COMPLEX) !== 0;
  const realEl = r.next('the real part');
  let re = castTo(typed(realEl, le, file, label), classType);
  if (re.length !== n) {
    throw new FileFormatError(file, `${n} values in ${label} (size [${dims.join(', ')}])`, `${re.length}`, 'The file is corrupt.');
  }
  re = reorder(re, dims);
  if (complex) {
    const cdt: DType = classType === 'float32' ? 'complex64' : 'complex128';
    const partType: DType = cdt === 'complex64' ? 'float32' : 'float64';
    const reF = castTo(re, partType) as Float64Array;
    const imEl = r.next('the imaginary part');
    const im = reorder(castTo(castTo(typed(imEl, le, file, label), classType), partType) as Float64Array, dims);
    if (im.length !== n) throw new FileFormatError(file, `${n} imaginary values in ${label}`, `${im.length}`);
    const out = allocTyped(cdt, n) as Float64Array;
    for (let i = 0; i < n; i++) { out[2 * i] = reF[i]!; out[2 * i + 1] = im[i]!; }
    return { name, value: { dtype: cdt, shape: dims, data: out } };
  }
  if (logical) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = re[i] ? 1 : 0;
    return { name, value: { dtype: 'bool', shape: dims, data: out } };
  }
  return { name, value: { dtype: classType, shape: dims, data: re } };
}

function emptyDouble(): NDArray {
  return { dtype: 'float64', shape: [0, 0], data: new Float64Array(0) };
}

/** Parses the bytes of a Level 5 MAT-file into its variables (see the module comment for the value conventions). */
export function parseMat(buf: Uint8Array, file = '<buffer>'): Record<string, MatValue> {
  if (buf.length >= 520 && Buffer.from(buf.subarray(512, 520)).equals(Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    throw new FileFormatError(file, 'a MATLAB v5/v7 MAT-file', 'a v7.3 MAT-file (HDF5 inside)',
      'Read its variables with readHdf5(path, "/<variable>") (HDF5 stores MATLAB arrays transposed), or re-save it in MATLAB with save(..., "-v7").');
  }
  if (buf.length < 128) {
    throw new FileFormatError(file, 'a MAT-file with a 128-byte header', `${buf.length} bytes`, 'The file is truncated or not a MAT-file.');
  }
  const head = Buffer.from(buf.subarray(0, 116)).toString('latin1');
  const endian = Buffer.from(buf.subarray(126, 128)).toString('latin1');
  if (endian !== 'IM' && endian !== 'MI') {
    const v4 = !head.startsWith('MATLAB');
    throw new FileFormatError(file, 'a MATLAB Level 5 MAT-file (endian mark "IM" or "MI" at byte 126)',
      v4 ? 'no Level 5 header (a MATLAB v4 file, or not a MAT-file)' : `"${endian}"`,
      v4 ? 'Re-save it in MATLAB with save(..., "-v7"), or with scipy.io.savemat.' : 'The file is corrupt.');
  }
  const le = endian === 'IM';
  const version = new DataView(buf.buffer, buf.byteOffset + 124, 2).getUint16(0, le);
  if (version !== 0x0100) {
    throw new FileFormatError(file, 'MAT-file version 0x0100 (Level 5)', `version 0x${version.toString(16).padStart(4, '0')}${version === 0x0200 ? ' (v7.3, HDF5)' : ''}`,
      version === 0x0200 ? 'Read it with readHdf5, or re-save it with save(..., "-v7").' : undefined);
  }
  const out: Record<string, MatValue> = {};
  const r = new ElementReader(buf.subarray(128), le, file, 'the file');
  let k = 0;
  while (!r.done) {
    let el = r.next(`variable ${k}`);
    if (el.type === mi.COMPRESSED) {
      let inflated: Uint8Array;
      try {
        inflated = zlib.inflateSync(el.data);
      } catch (e) {
        throw new FileFormatError(file, `a complete zlib stream in variable ${k}`, `a zlib error: ${(e as Error).message}`,
          'The file is truncated or corrupt; re-save or re-copy it.');
      }
      el = new ElementReader(inflated, le, file, `compressed variable ${k}`).next(`variable ${k}`);
    }
    if (el.type !== mi.MATRIX) {
      throw new FileFormatError(file, `a miMATRIX element for variable ${k}`, `data type ${el.type}`, 'The file is corrupt.');
    }
    const { name, value } = decodeMatrix(el, le, file, `variable ${k}`);
    // the subsystem data (function handles, classdef objects) is stored as a nameless variable: skip it
    if (name && value !== undefined) out[name] = value;
    k++;
  }
  return out;
}

/** Reads a MATLAB v5/v7 `.mat` file (e.g. NSD's nsd_expdesign.mat) into name → value (arrays keep MATLAB's size as shape, C order). */
export async function readMat(path: string): Promise<Record<string, MatValue>> {
  checkInputFile(path, 'MATLAB .mat');
  let buf: Buffer;
  try {
    buf = await fs.promises.readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(path, 'a readable MAT-file', code === 'ENOENT' ? 'no such file' : String(e), 'Check the path.');
  }
  return parseMat(buf, path);
}

// ------------------------------------------------------------------------------------------------ writer

const DTYPE_MX: Partial<Record<DType, [number, number]>> = {
  float64: [mx.DOUBLE, mi.DOUBLE], float32: [mx.SINGLE, mi.SINGLE], int8: [mx.INT8, mi.INT8], uint8: [mx.UINT8, mi.UINT8],
  int16: [mx.INT16, mi.INT16], uint16: [mx.UINT16, mi.UINT16], int32: [mx.INT32, mi.INT32], uint32: [mx.UINT32, mi.UINT32],
  int64: [mx.INT64, mi.INT64], uint64: [mx.UINT64, mi.UINT64], bool: [mx.UINT8, mi.UINT8],
  complex128: [mx.DOUBLE, mi.DOUBLE], complex64: [mx.SINGLE, mi.SINGLE],
};

/** A data element (little-endian): small format for ≤ 4 bytes, otherwise tag + data padded to 8 bytes. */
function element(type: number, data: Uint8Array): Uint8Array {
  if (data.length <= 4 && type !== mi.MATRIX) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setUint32(0, (data.length << 16) | type, true);
    out.set(data, 4);
    return out;
  }
  const out = new Uint8Array(8 + data.length + ((8 - (data.length % 8)) % 8));
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, data.length, true);
  out.set(data, 8);
  return out;
}

function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

function matrix(name: string, cls: number, dims: number[], flags: number, body: Uint8Array[]): Uint8Array {
  const f = new Uint32Array([cls | flags, 0]);
  const parts = [element(mi.UINT32, bytesOf(f)), element(mi.INT32, bytesOf(Int32Array.from(dims))),
    element(mi.INT8, Buffer.from(name, 'latin1')), ...body];
  return element(mi.MATRIX, concat(parts));
}

function matDims(shape: number[]): number[] {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [1, shape[0]!];
  return shape;
}

function encodeValue(file: string, name: string, label: string, v: MatValue): Uint8Array {
  if (typeof v === 'string' || Array.isArray(v)) {
    const rows = typeof v === 'string' ? [v] : v;
    const cols = Math.max(0, ...rows.map((s) => s.length));
    if (rows.length === 0 || cols === 0) return matrix(name, mx.CHAR, [0, 0], 0, [element(mi.UTF16, new Uint8Array(0))]);
    const codes = new Uint16Array(rows.length * cols);
    rows.forEach((s, i) => {
      for (let j = 0; j < cols; j++) codes[i + j * rows.length] = j < s.length ? s.charCodeAt(j) : 32;
    });
    return matrix(name, mx.CHAR, [rows.length, cols], 0, [element(mi.UINT16, bytesOf(codes))]);
  }
  if ('kind' in v) {
    if (v.kind === 'cell') {
      const dims = matDims(v.shape);
      if (shapeSize(dims) !== v.cells.length) {
        throw new FileFormatError(file, `${shapeSize(dims)} cells for shape [${v.shape.join(', ')}] in ${label}`, `${v.cells.length}`);
      }
      const order = reorder(Uint32Array.from(v.cells.keys()), dims, true);
      return matrix(name, mx.CELL, dims, 0, Array.from(order, (i) => encodeValue(file, '', `cell ${i} of ${label}`, v.cells[i]!)));
    }
    const isOne = v.kind === 'struct';
    const dims = isOne ? [1, 1] : matDims(v.shape);
    const elements = isOne ? [v.fields] : v.elements;
    const fieldNames = isOne ? Object.keys(v.fields) : v.fieldNames;
    if (shapeSize(dims) !== elements.length) {
      throw new FileFormatError(file, `${shapeSize(dims)} struct elements for shape [${dims.join(', ')}] in ${label}`, `${elements.length}`);
    }
    for (const f of fieldNames) checkName(file, f, `field of ${label}`);
    const fl = Math.max(32, ...fieldNames.map((f) => f.length + 1));
    const names = new Uint8Array(fl * fieldNames.length);
    fieldNames.forEach((f, i) => names.set(Buffer.from(f, 'latin1'), i * fl));
    const order = reorder(Uint32Array.from(elements.keys()), dims, true);
    const body: Uint8Array[] = [element(mi.INT32, bytesOf(new Int32Array([fl]))), element(mi.INT8, names)];
    for (const i of order) {
      for (const f of fieldNames) {
        const fv = elements[i]![f];
        if (fv === undefined) throw new FileFormatError(file, `field "${f}" in element ${i} of ${label}`, 'no such field');
        body.push(encodeValue(file, '', `field "${f}" of ${label}`, fv));
      }
    }
    return matrix(name, mx.STRUCT, dims, 0, body);
  }
  const map = DTYPE_MX[v.dtype];
  if (!map) {
    throw new FileFormatError(file, 'a float64, float32, integer, bool or complex array', `${v.dtype} in ${label}`,
      'Convert float16/bfloat16 arrays to float32 first.');
  }
  const [cls, type] = map;
  const dims = matDims(v.shape);
  const n = shapeSize(dims);
  if (v.dtype === 'complex64' || v.dtype === 'complex128') {
    const Part = v.dtype === 'complex64' ? Float32Array : Float64Array;
    const re = new Part(n), im = new Part(n);
    const d = v.data as Float64Array;
    for (let i = 0; i < n; i++) { re[i] = d[2 * i]!; im[i] = d[2 * i + 1]!; }
    return matrix(name, cls, dims, FLAG_COMPLEX,
      [element(type, bytesOf(reorder(re, dims, true))), element(type, bytesOf(reorder(im, dims, true)))]);
  }
  if (v.data.length !== n) throw new FileFormatError(file, `${n} values for shape [${v.shape.join(', ')}] in ${label}`, `${v.data.length}`);
  const flags = v.dtype === 'bool' ? FLAG_LOGICAL : 0;
  return matrix(name, cls, dims, flags, [element(type, bytesOf(reorder(v.data, dims, true)))]);
}

function checkName(file: string, name: string, what: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new FileFormatError(file, `a MATLAB name for a ${what} (a letter, then up to 62 letters, digits or _)`, `"${name}"`);
  }
}

/** Serialises variables as a Level 5 MAT-file (little-endian; each variable zlib-compressed unless `compress` is false). */
export function encodeMat(vars: Record<string, MatValue>, opts: { compress?: boolean } = {}, file = '<mat>'): Uint8Array {
  const compress = opts.compress ?? true;
  const text = `MATLAB 5.0 MAT-file, Platform: ${process.platform}, Created on: ${new Date().toUTCString()} by brainnet`;
  const header = new Uint8Array(128);
  header.fill(0x20, 0, 116);
  header.set(Buffer.from(text.slice(0, 116), 'latin1'), 0);
  const hv = new DataView(header.buffer);
  hv.setUint16(124, 0x0100, true);
  header[126] = 0x49; // 'I'
  header[127] = 0x4d; // 'M'
  const parts: Uint8Array[] = [header];
  for (const [name, value] of Object.entries(vars)) {
    checkName(file, name, 'variable');
    const el = encodeValue(file, name, `variable "${name}"`, value);
    if (compress) {
      const z = zlib.deflateSync(el);
      const tag = new Uint8Array(8);
      const tv = new DataView(tag.buffer);
      tv.setUint32(0, mi.COMPRESSED, true);
      tv.setUint32(4, z.length, true);
      parts.push(tag, z);
    } else {
      parts.push(el);
    }
  }
  return concat(parts);
}

/**
 * Writes variables to a MATLAB v7 `.mat` file, atomically: NDArrays (1-D `[n]` become 1×n rows, scalars 1×1),
 * strings, string[] (char matrix, rows padded with spaces), structs, struct arrays and cells.
 */
export async function writeMat(path: string, vars: Record<string, MatValue>, opts: { compress?: boolean } = {}): Promise<void> {
  const bytes = encodeMat(vars, opts, path);
  await withAtomicFile(path, (tmp) => fs.promises.writeFile(tmp, bytes));
}
