/**
 * NumPy `.npy` read and write (format versions 1.0, 2.0 and 3.0).
 *
 * Every numeric and bool dtype, both byte orders, C and Fortran order. Arrays come back in
 * C order and little-endian (see ndarray.ts). Object, structured, string and datetime arrays
 * (and pickles) are refused with a FileFormatError: this module never unpickles anything.
 *
 * Row ranges of the first axis are read with positioned reads on a file handle, so a block of
 * a large `[N, V]` array never loads the whole file.
 */
import * as fs from 'node:fs';
import { FileFormatError } from './errors.js';
import { withAtomicFile } from './atomic.js';
import { checkInputFile } from './input.js';
import { DType, NDArray, TypedArray, DTYPE_BYTES, shapeSize, fortranToC, cToFortran, swapBytes } from './ndarray.js';

/** What a `.npy` header says about the array that follows it. */
export interface NpyHeader {
  /** Element type, in this library's names. */
  dtype: DType;
  /** Array shape (`[]` for a 0-d array). */
  shape: number[];
  /** True when the data is stored in Fortran (column-major) order. */
  fortranOrder: boolean;
  /** Byte order of the stored data (true for '<', '|', and '=' on this little-endian machine). */
  littleEndian: boolean;
  /** Format major version: 1, 2 or 3. */
  version: 1 | 2 | 3;
  /** Byte offset of the first data byte. */
  dataOffset: number;
  /** The dtype string exactly as the header wrote it, e.g. `'<f4'`. */
  descr: string;
}

/** Options of {@link encodeNpy} and {@link writeNpy}. */
export interface NpyWriteOptions {
  /** Store the data in Fortran order (default false: C order). */
  fortranOrder?: boolean;
  /** Store big-endian data (default false: little-endian). */
  bigEndian?: boolean;
  /** Header format version; default 1, or 2 when the header does not fit version 1. */
  version?: 1 | 2 | 3;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

const KIND_TO_DTYPE: Record<string, DType> = {
  b1: 'bool', i1: 'int8', u1: 'uint8', i2: 'int16', u2: 'uint16', i4: 'int32', u4: 'uint32',
  i8: 'int64', u8: 'uint64', f2: 'float16', f4: 'float32', f8: 'float64', c8: 'complex64', c16: 'complex128',
};
const DTYPE_TO_KIND: Partial<Record<DType, string>> = Object.fromEntries(
  Object.entries(KIND_TO_DTYPE).map(([k, v]) => [v, k]),
);

const RESAVE_FIX = 'Re-save it as a numeric array, e.g. `np.save(path, arr.astype(np.float32))`.';

/** Size in bytes of one component that byte order applies to (complex parts swap separately). */
function swapUnit(dtype: DType): number {
  if (dtype === 'complex64') return 4;
  if (dtype === 'complex128') return 8;
  return DTYPE_BYTES[dtype];
}

/** Maps a numpy descr string ('<f4', '|b1', ...) to a dtype and byte order, or throws a FileFormatError. */
function parseDescr(descr: string, file: string): { dtype: DType; littleEndian: boolean } {
  const m = /^([<>|=]?)([a-zA-Z])(\d*)(.*)$/.exec(descr);
  const kind = m ? m[2]! : '';
  const unsupported = (what: string): never => {
    throw new FileFormatError(file, 'a numeric or bool .npy array', `${what} (dtype '${descr}')`, RESAVE_FIX);
  };
  if (kind === 'O') unsupported('an object array, whose data is a Python pickle; pickles are never loaded');
  if (kind === 'S' || kind === 'a' || kind === 'U') unsupported('a string array');
  if (kind === 'M' || kind === 'm') unsupported('a datetime/timedelta array');
  if (kind === 'V') unsupported('a void/structured array');
  const dtype = m && !m[4] ? KIND_TO_DTYPE[kind + m[3]!] : undefined;
  if (!m || !dtype) unsupported('an unsupported dtype');
  const order = m![1]!;
  // '=' means native order of the machine that wrote it; numpy itself never writes it.
  const littleEndian = order !== '>';
  return { dtype: dtype!, littleEndian };
}

/** Parses the Python-dict header text of a .npy file. */
function parseHeaderText(text: string, file: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const bad = (found: string): never => {
    throw new FileFormatError(file, "a .npy header dict with 'descr', 'fortran_order' and 'shape'", found);
  };
  const t = text.trim();
  if (!t.startsWith('{')) bad(`header text ${JSON.stringify(t.slice(0, 60))}`);
  const descrList = /['"]descr['"]\s*:\s*\[/.exec(t);
  if (descrList) {
    throw new FileFormatError(file, 'a numeric or bool .npy array', 'a structured array (record dtype)', RESAVE_FIX);
  }
  const d = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(t);
  const f = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(t);
  const s = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(t);
  if (!d || !f || !s) bad(`header ${JSON.stringify(t.slice(0, 120))}`);
  const shape: number[] = [];
  for (const part of s![1]!.split(',')) {
    const p = part.trim().replace(/L$/, '');
    if (p === '') continue;
    if (!/^\d+$/.test(p)) bad(`shape (${s![1]})`);
    shape.push(Number(p));
  }
  return { descr: d![1]!, fortranOrder: f![1] === 'True', shape };
}

/** Parses the magic, version and header of a .npy file from its first bytes; `null` when more bytes are needed. */
function parseHeaderBytes(bytes: Uint8Array, file: string, fileLength: number): NpyHeader | null {
  if (bytes.length < 10) {
    if (fileLength >= 0 && fileLength < 10) {
      throw new FileFormatError(file, 'a .npy file (at least 10 header bytes)', `${fileLength} bytes (truncated)`);
    }
    return null;
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) {
      const isPickle = bytes[0] === 0x80 && bytes[1]! >= 2 && bytes[1]! <= 5;
      const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
      throw new FileFormatError(
        file,
        "the .npy magic '\\x93NUMPY'",
        isPickle ? 'a Python pickle (pickles are never loaded)'
          : isZip ? 'a zip archive (an .npz? use readNpz)'
          : `bytes ${Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(' ')}`,
        isPickle ? RESAVE_FIX : undefined,
      );
    }
  }
  const major = bytes[6]!;
  if (major !== 1 && major !== 2 && major !== 3) {
    throw new FileFormatError(file, '.npy format version 1.0, 2.0 or 3.0', `version ${major}.${bytes[7]}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let start: number;
  let hlen: number;
  if (major === 1) {
    start = 10;
    hlen = dv.getUint16(8, true);
  } else {
    if (bytes.length < 12) return null;
    start = 12;
    hlen = dv.getUint32(8, true);
  }
  if (bytes.length < start + hlen) {
    if (fileLength >= 0 && fileLength < start + hlen) {
      throw new FileFormatError(file, `a .npy header of ${hlen} bytes`, `a file of ${fileLength} bytes (truncated)`);
    }
    return null;
  }
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + hlen));
  const { descr, fortranOrder, shape } = parseHeaderText(text, file);
  const { dtype, littleEndian } = parseDescr(descr, file);
  return { dtype, shape, fortranOrder, littleEndian, version: major, dataOffset: start + hlen, descr };
}

/** Number of data bytes that a header's array occupies. */
function dataBytes(h: NpyHeader): number {
  return shapeSize(h.shape) * DTYPE_BYTES[h.dtype];
}


/** Views an 8-byte-aligned byte buffer as the typed array of `dtype` (no copy). */
function viewAs(dtype: DType, buf: ArrayBuffer, byteOffset: number, n: number): TypedArray {
  switch (dtype) {
    case 'bool': case 'uint8': return new Uint8Array(buf, byteOffset, n);
    case 'int8': return new Int8Array(buf, byteOffset, n);
    case 'int16': return new Int16Array(buf, byteOffset, n);
    case 'uint16': case 'float16': case 'bfloat16': return new Uint16Array(buf, byteOffset, n);
    case 'int32': return new Int32Array(buf, byteOffset, n);
    case 'uint32': return new Uint32Array(buf, byteOffset, n);
    case 'int64': return new BigInt64Array(buf, byteOffset, n);
    case 'uint64': return new BigUint64Array(buf, byteOffset, n);
    case 'float32': return new Float32Array(buf, byteOffset, n);
    case 'float64': return new Float64Array(buf, byteOffset, n);
    case 'complex64': return new Float32Array(buf, byteOffset, 2 * n);
    case 'complex128': return new Float64Array(buf, byteOffset, 2 * n);
  }
}

/** A fresh, 8-byte-aligned byte buffer of `n` bytes whose contents will be overwritten. */
function allocBytes(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n); // own ArrayBuffer, byteOffset 0
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** Turns raw stored bytes (already in C order) into an NDArray: copies, byte-swaps if needed. */
function bytesToArray(h: NpyHeader, shape: number[], raw: Uint8Array, owned: boolean): NDArray {
  const n = shapeSize(shape);
  let b = raw;
  if (!owned || raw.byteOffset % swapUnit(h.dtype) !== 0) {
    b = allocBytes(raw.length);
    b.set(raw);
  }
  if (!h.littleEndian) swapBytes(b, swapUnit(h.dtype));
  return { dtype: h.dtype, shape, data: viewAs(h.dtype, b.buffer as ArrayBuffer, b.byteOffset, n) };
}

/** Decodes a whole `.npy` file held in memory; `name` is used in error messages. */
export function decodeNpy(bytes: Uint8Array, name = '<buffer>'): NDArray {
  const h = parseHeaderBytes(bytes, name, bytes.length);
  if (!h) throw new FileFormatError(name, 'a complete .npy header', `${bytes.length} bytes (truncated)`);
  const need = dataBytes(h);
  const have = bytes.length - h.dataOffset;
  checkLength(name, h, have);
  let raw = bytes.subarray(h.dataOffset, h.dataOffset + need);
  let owned = false;
  if (h.fortranOrder && h.shape.length > 1) {
    raw = fortranToC(raw, h.shape, DTYPE_BYTES[h.dtype]);
    owned = true;
  }
  return bytesToArray(h, h.shape.slice(), raw, owned);
}

function checkLength(file: string, h: NpyHeader, have: number): void {
  const need = dataBytes(h);
  if (have !== need) {
    throw new FileFormatError(
      file,
      `${need} data bytes for shape [${h.shape.join(', ')}] of '${h.descr}'`,
      `${have} bytes${have < need ? ' (truncated file)' : ' (extra bytes after the array)'}`,
      have < need ? 'The file was cut short; write it again.' : undefined,
    );
  }
}

/** Reads exactly `length` bytes at `position` into `into`, looping over short reads. */
async function readFully(fh: fs.promises.FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) {
      throw new FileFormatError(file, `${into.length} bytes at offset ${position}`, `end of file after ${done} (truncated)`);
    }
    done += bytesRead;
  }
}

/** Synchronous positioned read of exactly `into.length` bytes. */
function readFullySync(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) {
      throw new FileFormatError(file, `${into.length} bytes at offset ${position}`, `end of file after ${done} (truncated)`);
    }
    done += n;
  }
}

async function readHeaderFrom(fh: fs.promises.FileHandle, file: string, size: number): Promise<NpyHeader> {
  let len = Math.min(size, 4096);
  for (;;) {
    const buf = new Uint8Array(len);
    await readFully(fh, buf, 0, file);
    const h = parseHeaderBytes(buf, file, size);
    if (h) return h;
    if (len >= size) throw new FileFormatError(file, 'a complete .npy header', `${size} bytes (truncated)`);
    len = Math.min(size, len * 16);
  }
}

async function openFile(file: string): Promise<fs.promises.FileHandle> {
  checkInputFile(file, '.npy');
  try {
    return await fs.promises.open(file, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new FileFormatError(file, 'an existing, readable .npy file', err.code ?? String(e), 'Check the path.');
  }
}

/** Reads only the header of a `.npy` file (a few hundred bytes). */
export async function readNpyHeader(file: string): Promise<NpyHeader> {
  const fh = await openFile(file);
  try {
    const { size } = await fh.stat();
    return await readHeaderFrom(fh, file, size);
  } finally {
    await fh.close();
  }
}

/** An open `.npy` file from which blocks of rows can be read through one handle. */
export interface NpyFile {
  header: NpyHeader;
  /**
   * Reads rows `[start, end)` of the first axis: shape `[end - start, ...shape.slice(1)]`.
   * `out` (optional): a typed array of this dtype with room for the block (e.g. the previous block's
   * `data`); the rows are read into it instead of a fresh allocation, and `data` views it.
   */
  readRows(start: number, end: number, out?: TypedArray): Promise<NDArray>;
  /** Closes the file handle. */
  close(): Promise<void>;
}

/** Opens a `.npy` file for streaming blocks of rows through one handle; checks the header and file length. */
export async function openNpy(file: string): Promise<NpyFile> {
  const fh = await openFile(file);
  let header: NpyHeader;
  try {
    const { size } = await fh.stat();
    header = await readHeaderFrom(fh, file, size);
    checkLength(file, header, size - header.dataOffset);
  } catch (e) {
    await fh.close();
    throw e;
  }
  const h = header;
  const item = DTYPE_BYTES[h.dtype];
  const nRows = h.shape.length === 0 ? 1 : h.shape[0]!;
  const rowElems = shapeSize(h.shape.slice(1));
  const readRows = async (start: number, end: number, out?: TypedArray): Promise<NDArray> => {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > nRows) {
      throw new RangeError(`${file}: rows [${start}, ${end}) out of range for first axis of length ${nRows}`);
    }
    if (h.shape.length === 0) {
      const raw = allocBytes(item);
      await readFully(fh, raw, h.dataOffset, file);
      return bytesToArray(h, [], raw, true);
    }
    const count = end - start;
    const shape = [count, ...h.shape.slice(1)];
    const need = count * rowElems * item;
    const direct = !h.fortranOrder || h.shape.length === 1;
    if (out) {
      const proto = viewAs(h.dtype, new ArrayBuffer(8), 0, 0);
      if (out.constructor !== proto.constructor || out.byteLength < need) {
        throw new RangeError(`${file}: readRows 'out' must be a ${proto.constructor.name} of at least ${need} bytes, found ${out.constructor.name} of ${out.byteLength}`);
      }
    }
    let raw: Uint8Array;
    if (out && direct) {
      raw = new Uint8Array(out.buffer, out.byteOffset, need);
    } else {
      raw = allocBytes(need);
    }
    if (raw.length === 0) return bytesToArray(h, shape, raw, true);
    if (direct) {
      // C order: the rows are one contiguous span.
      await readFully(fh, raw, h.dataOffset + start * rowElems * item, file);
      return bytesToArray(h, shape, raw, true);
    }
    // Fortran order: for each trailing index t, rows start..end are contiguous at offset (t*nRows + start).
    const colBytes = count * item;
    const fd = fh.fd;
    if (count === nRows) {
      await readFully(fh, raw, h.dataOffset, file);
    } else {
      for (let t = 0; t < rowElems; t++) {
        readFullySync(fd, raw.subarray(t * colBytes, (t + 1) * colBytes), h.dataOffset + (t * nRows + start) * item, file);
      }
    }
    // `raw` is now the Fortran layout of `shape`.
    const c = fortranToC(raw, shape, item);
    if (out) {
      const dst = new Uint8Array(out.buffer, out.byteOffset, need);
      dst.set(c);
      return bytesToArray(h, shape, dst, true);
    }
    return bytesToArray(h, shape, c, true);
  };
  return { header: h, readRows, close: () => fh.close() };
}

/** Reads a `.npy` file as an NDArray in C order; with `rows: [start, end]`, only that range of the first axis. */
export async function readNpy(file: string, opts: { rows?: [number, number] } = {}): Promise<NDArray> {
  const f = await openNpy(file);
  try {
    const n = f.header.shape.length === 0 ? 1 : f.header.shape[0]!;
    const [a, b] = opts.rows ?? [0, n];
    return await f.readRows(a, b);
  } finally {
    await f.close();
  }
}

function shapeRepr(shape: readonly number[]): string {
  if (shape.length === 0) return '()';
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/** The descr string numpy writes for `dtype` in the chosen byte order, e.g. `'<f4'`, `'|u1'`. */
export function npyDescr(dtype: DType, bigEndian = false): string {
  const kind = DTYPE_TO_KIND[dtype];
  if (!kind) throw new TypeError(`npy: ${dtype} has no .npy dtype; convert it first (e.g. toFloat32)`);
  if (DTYPE_BYTES[dtype] === 1) return `|${kind}`;
  return `${bigEndian ? '>' : '<'}${kind}`;
}

/** Builds the magic + version + padded header bytes for an array. */
function encodeHeader(dtype: DType, shape: readonly number[], opts: NpyWriteOptions): Uint8Array {
  const dict = `{'descr': '${npyDescr(dtype, opts.bigEndian)}', 'fortran_order': ${opts.fortranOrder ? 'True' : 'False'}, 'shape': ${shapeRepr(shape)}, }`;
  let version = opts.version ?? 1;
  const build = (v: 1 | 2 | 3): Uint8Array | null => {
    const pre = v === 1 ? 10 : 12;
    const unpadded = pre + dict.length + 1;
    const total = Math.ceil(unpadded / ALIGN) * ALIGN;
    const hlen = total - pre;
    if (v === 1 && hlen > 0xffff) return null;
    const out = new Uint8Array(total);
    out.set(MAGIC, 0);
    out[6] = v;
    out[7] = 0;
    const dv = new DataView(out.buffer);
    if (v === 1) dv.setUint16(8, hlen, true);
    else dv.setUint32(8, hlen, true);
    const text = dict + ' '.repeat(hlen - dict.length - 1) + '\n';
    for (let i = 0; i < text.length; i++) out[pre + i] = text.charCodeAt(i);
    return out;
  };
  let hdr = build(version);
  if (!hdr) {
    if (opts.version === 1) throw new RangeError('npy: header too long for format version 1.0; use version 2');
    version = 2;
    hdr = build(2)!;
  }
  return hdr;
}

/** Returns the stored data bytes (C or Fortran order, chosen byte order) of `arr`. */
function encodeData(arr: NDArray, opts: NpyWriteOptions): Uint8Array {
  const n = shapeSize(arr.shape);
  const item = DTYPE_BYTES[arr.dtype];
  const nbytes = n * item;
  const d = arr.data;
  if (d.length * d.BYTES_PER_ELEMENT !== nbytes) {
    throw new RangeError(`npy: data holds ${d.length * d.BYTES_PER_ELEMENT} bytes, shape [${arr.shape.join(', ')}] of ${arr.dtype} needs ${nbytes}`);
  }
  let b = new Uint8Array(d.buffer, d.byteOffset, nbytes);
  const copy = (opts.fortranOrder && arr.shape.length > 1) || opts.bigEndian;
  if (opts.fortranOrder && arr.shape.length > 1) b = cToFortran(b, arr.shape, item);
  else if (copy) b = b.slice();
  if (opts.bigEndian) swapBytes(b, swapUnit(arr.dtype));
  return b;
}

/** Encodes an NDArray (any shape) as the bytes of a `.npy` file. */
export function encodeNpy(arr: NDArray, opts: NpyWriteOptions = {}): Uint8Array {
  const hdr = encodeHeader(arr.dtype, arr.shape, opts);
  const data = encodeData(arr, opts);
  const out = new Uint8Array(hdr.length + data.length);
  out.set(hdr, 0);
  out.set(data, hdr.length);
  return out;
}

/** Writes an NDArray to a `.npy` file atomically (temporary file, then rename). */
export async function writeNpy(file: string, arr: NDArray, opts: NpyWriteOptions = {}): Promise<void> {
  if (!DTYPE_TO_KIND[arr.dtype]) {
    throw new FileFormatError(file, 'an array of a dtype that .npy can store', arr.dtype,
      'Convert it first, e.g. `{ dtype: "float32", shape, data: toFloat32(arr) }`.');
  }
  const hdr = encodeHeader(arr.dtype, arr.shape, opts);
  const data = encodeData(arr, opts);
  await withAtomicFile(file, async (tmp) => {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await writeAll(fh, hdr, 0);
      await writeAll(fh, data, hdr.length);
    } finally {
      await fh.close();
    }
  });
}

/** Writes all of `b` at `position`, looping over short writes. */
async function writeAll(fh: fs.promises.FileHandle, b: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < b.length) {
    const { bytesWritten } = await fh.write(b, done, Math.min(b.length - done, 1 << 30), position + done);
    done += bytesWritten;
  }
}

/** Builds the header bytes for streaming writers (e.g. a `[N, V]` file written block by block). */
export function npyHeaderBytes(dtype: DType, shape: readonly number[], opts: NpyWriteOptions = {}): Uint8Array {
  return encodeHeader(dtype, shape, opts);
}
