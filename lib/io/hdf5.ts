/**
 * HDF5 read and write through h5wasm (the HDF5 C library compiled to WebAssembly).
 *
 * Files are opened on disk through h5wasm's Node build (`h5wasm/node`, Emscripten NODERAWFS),
 * so a file is never copied into memory: a slice read moves only the slice, through the wasm
 * heap (at most 2 GiB, so read very large datasets in row blocks).
 *
 * Writing a new file (`openHdf5(p, 'w')`, `writeHdf5`) goes to a temporary file beside the target,
 * renamed over it by `close()` — nothing half-written is ever left at `p`. Mode 'a' edits the
 * existing file in place (HDF5 itself has no cheaper atomic update).
 *
 * Dtype notes (h5wasm 0.10 limits): float16 datasets read (as raw half words, like NDArray's
 * float16) but cannot be written; bool is read from h5py's enum(FALSE, TRUE) and written as
 * uint8 (h5py then reads uint8); big-endian datasets read correctly (HDF5 converts).
 * Compression: gzip (deflate) is built in; other filters need the `h5wasm-plugins` package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileFormatError } from './errors.js';
import { tempPathFor } from './atomic.js';
import { allocFor, checkInputFile } from './input.js';
import { DType, DTYPE_BYTES, NDArray, allocTyped, shapeSize } from './ndarray.js';

// The slice of h5wasm's API used here, typed locally (its types are ESM-only, which a CommonJS
// build cannot import with the TypeScript that tslab bundles).
interface H5Attr { metadata: unknown; value: unknown; json_value: unknown }
interface H5Obj {
  type: string;
  path: string;
  attrs: Record<string, H5Attr>;
  create_attribute(name: string, data: unknown, shape?: number[] | null, dtype?: string | null): void;
  delete_attribute(name: string): number;
}
interface H5Dataset extends H5Obj { metadata: unknown; value: unknown; resize(shape: number[]): number }
interface CreateArgs {
  name: string; data: unknown; shape?: number[] | null; dtype?: string | null; maxshape?: (number | null)[] | null;
  chunks?: number[] | null; compression?: number | 'gzip'; compression_opts?: number | number[];
}
interface H5Group extends H5Obj {
  get(p: string): H5Obj | null;
  paths(): string[];
  create_group(name: string): H5Group;
  create_dataset(args: CreateArgs): H5Dataset;
}
interface H5File extends H5Group { file_id: bigint; close(): unknown }
interface H5Module { File: new (file: string, mode: string) => H5File; ready: Promise<unknown> }
/** The Emscripten module (raw bindings: _malloc, HEAPU8, get_dataset_data, ...). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Wasm = any;
let loaded: Promise<{ h5: H5Module; M: Wasm }> | null = null;

/** Loads h5wasm once (ESM-only, so a dynamic import). */
async function h5wasm(): Promise<{ h5: H5Module; M: Wasm }> {
  if (!loaded) {
    loaded = (async () => {
      const h5 = (await import('h5wasm/node')) as unknown as H5Module;
      const M = await h5.ready;
      return { h5, M };
    })();
  }
  return loaded;
}

/** One object in an HDF5 file, as listed by {@link listHdf5}. */
export interface Hdf5Entry {
  /** Absolute path inside the file, e.g. `/betas/session01`. */
  path: string;
  kind: 'group' | 'dataset';
  /** Dataset shape (`[]` for a scalar); absent for groups. */
  shape?: number[];
  /** Dataset element type: an NDArray dtype, or 'string', 'compound', 'enum', 'reference', 'opaque', ... */
  dtype?: string;
  /** Names of the object's attributes. */
  attrs: string[];
}

/** Per-axis `[start, end)` ranges (null = the whole axis); missing trailing axes are whole. */
export type Hdf5Slice = Array<[number, number] | null>;

// ---------------------------------------------------------------------------------------
// Pure helpers.

const H5T_INTEGER = 0, H5T_FLOAT = 1, H5T_STRING = 3, H5T_COMPOUND = 6, H5T_ENUM = 8;
const CLASS_NAMES: Record<number, string> = {
  2: 'time', 4: 'bitfield', 5: 'opaque', 6: 'compound', 7: 'reference', 8: 'enum', 9: 'vlen', 10: 'array',
};

interface Meta { type: number; size: number; signed: boolean; vlen?: boolean; enum_type?: { type: number; members: Record<string, number> }; shape: number[] | null; chunks?: number[] | null }

/** Maps h5wasm dataset metadata to our dtype (or a descriptive name for non-numeric types). */
function metaDtype(m: Meta): string {
  if (m.type === H5T_INTEGER) {
    const bits = m.size * 8;
    return `${m.signed ? 'int' : 'uint'}${bits}`;
  }
  if (m.type === H5T_FLOAT) return m.size === 2 ? 'float16' : m.size === 4 ? 'float32' : m.size === 8 ? 'float64' : `float${m.size * 8}`;
  if (m.type === H5T_STRING) return 'string';
  if (m.type === H5T_ENUM) {
    const mem = m.enum_type?.members ?? {};
    const keys = Object.keys(mem);
    if (m.size === 1 && keys.length === 2 && mem['FALSE'] === 0 && mem['TRUE'] === 1) return 'bool';
    return 'enum';
  }
  return CLASS_NAMES[m.type] ?? `class${m.type}`;
}

const NUMERIC = new Set<string>(['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float16', 'float32', 'float64']);

/** h5wasm dtype string for writing an NDArray dtype (bool is stored as uint8; float16 cannot be written). */
function writeDtype(dtype: DType, where: string): string {
  const map: Partial<Record<DType, string>> = {
    bool: '<B', uint8: '<B', int8: '<b', int16: '<h', uint16: '<H', int32: '<i', uint32: '<I',
    int64: '<q', uint64: '<Q', float32: '<f', float64: '<d',
  };
  const s = map[dtype];
  if (!s) {
    throw new TypeError(`${where}: h5wasm cannot write ${dtype} datasets; convert to float32 (float16/bfloat16) or split re/im (complex) first`);
  }
  return s;
}

/** Validates a slice against a shape and returns offset/count per axis; errors name the file, dataset and shape. */
export function resolveHdf5Slice(file: string, name: string, shape: number[], slice: Hdf5Slice | undefined): { offset: number[]; count: number[] } {
  if (slice && slice.length > shape.length) {
    throw new RangeError(`${file}: slice of ${slice.length} axes for dataset ${name} of shape [${shape.join(', ')}] (${shape.length} axes)`);
  }
  const offset: number[] = [];
  const count: number[] = [];
  shape.forEach((d, i) => {
    const r = slice?.[i];
    if (r == null) { offset.push(0); count.push(d); return; }
    const [a, b] = r;
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b > d || a > b) {
      throw new RangeError(`${file}: slice [${a}, ${b}) on axis ${i} is out of range for dataset ${name} of shape [${shape.join(', ')}]`);
    }
    offset.push(a);
    count.push(b - a);
  });
  return { offset, count };
}

/** Default chunk shape for a dataset: whole trailing axes, leading axes halved until a chunk is ≤ 1 MiB. */
export function defaultChunks(shape: number[], itemBytes: number): number[] {
  const chunk = shape.map((d) => Math.max(1, d));
  for (let ax = 0; ax < chunk.length; ax++) {
    while (chunk[ax]! > 1 && shapeSize(chunk) * itemBytes > (1 << 20)) chunk[ax] = Math.ceil(chunk[ax]! / 2);
  }
  return chunk;
}

function normPath(p: string): string {
  const parts = p.split('/').filter((s) => s.length > 0 && s !== '.');
  return '/' + parts.join('/');
}

/** The largest read that goes through the wasm heap in one piece (the heap holds at most 2 GiB). */
const MAX_READ_BYTES = 2 ** 31;

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Checks that `file` exists and starts (or has its superblock at 512, 1024, ...) with the HDF5 signature. */
function checkHdf5File(file: string): void {
  checkInputFile(file, 'HDF5');
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new FileFormatError(file, 'a readable HDF5 file', `${err.code ?? 'an error'}: ${err.message}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const b = Buffer.alloc(8);
    for (let off = 0; off + 8 <= size; off = off === 0 ? 512 : off * 2) {
      fs.readSync(fd, b, 0, 8, off);
      if (HDF5_SIGNATURE.every((v, i) => b[i] === v)) return;
      if (off > (1 << 30)) break;
    }
    fs.readSync(fd, b, 0, Math.min(8, size), 0);
    throw new FileFormatError(file, 'the HDF5 signature \\x89HDF\\r\\n\\x1a\\n', size < 8 ? `a ${size}-byte file` : `bytes ${JSON.stringify(b.subarray(0, Math.min(8, size)).toString('latin1'))}`,
      'This is not an HDF5 file (MATLAB files before v7.3 are read with readMat; .npy/.npz with readNpy/readNpz).');
  } finally {
    fs.closeSync(fd);
  }
}

/** Converts an attribute value from h5wasm to plain JS: numbers, bigints beyond 2^53, strings, booleans, arrays of them. */
function plainValue(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Array.from(v, plainValue);
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  if (Array.isArray(v)) return v.map(plainValue);
  return v;
}

// ---------------------------------------------------------------------------------------
// The handle.

/** Options of {@link Hdf5File.createDataset}. */
export interface CreateDatasetOptions {
  shape: number[];
  dtype: DType;
  /** Chunk shape (default: whole trailing axes, ≤ 1 MiB per chunk). Datasets made here are always chunked. */
  chunks?: number[];
  /** gzip level 0-9 (default: no compression). */
  compression?: number;
}

/**
 * An open HDF5 file. Reads never load more than the requested slice. For mode 'w' the file is
 * written at a temporary path and renamed onto the target by {@link close} (atomic); call
 * {@link abort} to drop it instead.
 */
export class Hdf5File {
  private closed = false;

  private constructor(
    readonly file: string,
    readonly mode: 'r' | 'w' | 'a',
    private readonly f: H5File,
    private readonly M: Wasm,
    private readonly tmp: string | null,
  ) {}

  /** Opens `file`: 'r' read, 'a' read/write in place, 'w' create (atomic, via a temporary file). */
  static async open(file: string, mode: 'r' | 'w' | 'a' = 'r'): Promise<Hdf5File> {
    const { h5, M } = await h5wasm();
    const abs = path.resolve(file);
    if (mode === 'w') {
      await fs.promises.mkdir(path.dirname(abs), { recursive: true });
      const tmp = tempPathFor(abs);
      const f = new h5.File(tmp, 'w');
      if (!fs.existsSync(tmp)) throw new FileFormatError(file, 'a writable folder', `HDF5 could not create ${tmp}`);
      return new Hdf5File(file, mode, f, M, tmp);
    }
    checkHdf5File(abs);
    const f = new h5.File(abs, mode);
    if (!f.file_id || f.file_id < 0n) {
      throw new FileFormatError(file, 'an HDF5 file that HDF5 can open', 'HDF5 refused it (see the HDF5-DIAG lines above)', 'The file may be corrupt or truncated.');
    }
    return new Hdf5File(file, mode, f, M, null);
  }

  private check(): void {
    if (this.closed) throw new Error(`${this.file}: the HDF5 file is closed`);
  }

  /** Every group and dataset below `/`, sorted by path. */
  list(): Hdf5Entry[] {
    this.check();
    const out: Hdf5Entry[] = [];
    for (const rel of this.f.paths()) {
      const p = normPath(rel);
      const obj = this.f.get(p);
      if (!obj) continue;
      const attrs = 'attrs' in obj ? Object.keys((obj as H5Group).attrs) : [];
      const type = (obj as { type?: string }).type;
      if (type === 'Group') out.push({ path: p, kind: 'group', attrs });
      else if (type === 'Dataset') {
        const m = (obj as H5Dataset).metadata as unknown as Meta;
        out.push({ path: p, kind: 'dataset', shape: (m.shape ?? []).map(Number), dtype: metaDtype(m), attrs });
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  private datasetNames(): string[] {
    return this.list().filter((e) => e.kind === 'dataset').map((e) => e.path);
  }

  private dataset(name: string): H5Dataset {
    this.check();
    const p = normPath(name);
    const obj = this.f.get(p);
    if (!obj || (obj as H5Dataset).type !== 'Dataset') {
      const have = this.datasetNames();
      throw new FileFormatError(this.file, `a dataset ${p}`, obj ? `a ${String((obj as { type?: string }).type).toLowerCase()} there` : 'no such object',
        `Datasets in the file: ${have.length ? have.join(', ') : '(none)'}.`);
    }
    return obj as H5Dataset;
  }

  /**
   * The error for a read that HDF5 refused: names the dataset and, for a chunked one, the first block of rows
   * (one chunk high) inside the slice that does not decode (at most 64 blocks are tried).
   */
  private unreadable(p: string, m: Meta, shape: number[], sel: { offset: number[]; count: number[] }): FileFormatError {
    const chunk = m.chunks?.map(Number)[0];
    let where = `rows [${sel.offset[0] ?? 0}, ${(sel.offset[0] ?? 0) + (sel.count[0] ?? 1)})`;
    if (chunk && shape.length > 0) {
      const first = Math.floor((sel.offset[0] ?? 0) / chunk) * chunk;
      const last = (sel.offset[0] ?? 0) + (sel.count[0] ?? 0);
      const rest = shape.slice(1);
      const bytes = chunk * shapeSize(rest) * DTYPE_BYTES[metaDtype(m) as DType];
      const ptr = bytes <= MAX_READ_BYTES ? this.M._malloc(bytes) : 0;
      try {
        for (let r = first, k = 0; ptr && r < last && k < 64; r += chunk, k++) {
          const rows = Math.min(chunk, shape[0]! - r);
          const count = [rows, ...rest].map(BigInt);
          const offset = [r, ...rest.map(() => 0)].map(BigInt);
          if ((this.M.get_dataset_data(this.f.file_id, p, count, offset, count.map(() => 1n), BigInt(ptr)) as number) < 0) {
            where = `rows [${r}, ${r + rows}) (chunk ${r / chunk} of ${Math.ceil(shape[0]! / chunk)} along the first axis, ${chunk} row${chunk === 1 ? '' : 's'} each)`;
            break;
          }
        }
      } finally {
        if (ptr) this.M._free(ptr);
      }
    }
    return new FileFormatError(this.file, `dataset ${p} [${shape.join(', ')}] whose stored data decodes`,
      `${where} that HDF5 cannot read: a damaged chunk (a gzip stream that does not inflate, a checksum that does not match) or data past the end of the file; HDF5's own report (HDF5-DIAG, on stderr) says which`,
      'The file is corrupt; re-copy or re-download it (h5py raises OSError "Can\'t read data" on the same file).');
  }

  private object(name: string): H5Group | H5Dataset {
    this.check();
    const p = normPath(name);
    const obj = p === '/' ? this.f : this.f.get(p);
    if (!obj || !('attrs' in obj)) {
      const have = this.list().map((e) => e.path);
      throw new FileFormatError(this.file, `a group or dataset ${p}`, 'no such object', `Objects in the file: ${['/', ...have].join(', ')}.`);
    }
    return obj as H5Group | H5Dataset;
  }

  /** Shape and dtype of a dataset. */
  info(name: string): { shape: number[]; dtype: string; chunks: number[] | null } {
    const m = this.dataset(name).metadata as unknown as Meta;
    return { shape: (m.shape ?? []).map(Number), dtype: metaDtype(m), chunks: m.chunks ? m.chunks.map(Number) : null };
  }

  /** Reads a numeric or bool dataset, or only `slice` of it (per axis `[start, end)`, null = whole), as an NDArray in C order. */
  read(name: string, slice?: Hdf5Slice): NDArray {
    const ds = this.dataset(name);
    const m = ds.metadata as unknown as Meta;
    const dtype = metaDtype(m);
    if (!NUMERIC.has(dtype)) {
      throw new FileFormatError(this.file, `a numeric or bool dataset at ${ds.path}`, `a ${dtype} dataset`,
        dtype === 'string' ? 'Use readHdf5Strings for string datasets.' : 'Only numeric and bool datasets are read as arrays.');
    }
    const shape = (m.shape ?? []).map(Number);
    const { offset, count } = resolveHdf5Slice(this.file, ds.path, shape, slice);
    const n = shapeSize(count);
    const nbytes = n * DTYPE_BYTES[dtype as DType];
    // the read goes through the wasm heap whole, so a slice larger than it can hold is refused before allocating
    if (nbytes > MAX_READ_BYTES) {
      const rows = Math.max(1, Math.floor(MAX_READ_BYTES / Math.max(1, nbytes / Math.max(1, count[0] ?? 1)) / 2));
      throw new FileFormatError(this.file, `a read of at most ${MAX_READ_BYTES} bytes at once (the wasm heap holds it whole)`,
        `${ds.path} ${slice ? 'slice' : 'dataset'} [${count.join(', ')}] of ${dtype}: ${nbytes.toExponential(3)} bytes`,
        `Read it in slices of the first axis, e.g. readHdf5(file, '${ds.path}', { slice: [[0, ${rows}]] }).`);
    }
    const out = allocFor(this.file, dtype as DType, n, { what: `${ds.path} [${count.join(', ')}]`, fix: 'Read it in smaller slices.' });
    if (shape.length === 0) {
      // Scalar dataspace: HDF5 has no hyperslab for it, so read the value whole.
      const v = ds.value as unknown;
      if (dtype === 'float16') throw new FileFormatError(this.file, 'a float16 array', 'a float16 scalar (h5wasm cannot read it)');
      (out as unknown as unknown[])[0] = ArrayBuffer.isView(v) ? (v as unknown as unknown[])[0] : typeof v === 'boolean' ? Number(v) : v;
      return { dtype: dtype as DType, shape: [], data: out };
    }
    if (nbytes > 0) {
      const M = this.M;
      const ptr = M._malloc(nbytes);
      if (!ptr) {
        throw new FileFormatError(this.file, `a slice of ${ds.path} that fits the wasm heap`, `${nbytes} bytes for [${count.join(', ')}]`,
          `Read it in smaller slices, e.g. readHdf5(file, '${ds.path}', { slice: [[0, ${Math.max(1, Math.floor((count[0] ?? 1) / 4))}]] }).`);
      }
      try {
        // HDF5 reports a chunk it cannot decode (a damaged gzip stream, a Fletcher-32 mismatch) only by the return value
        const status = M.get_dataset_data(this.f.file_id, ds.path, count.map(BigInt), offset.map(BigInt), count.map(() => 1n), BigInt(ptr)) as number;
        if (status < 0) throw this.unreadable(ds.path, m, shape, { offset, count });
        new Uint8Array(out.buffer, out.byteOffset, nbytes).set((M.HEAPU8 as Uint8Array).subarray(ptr, ptr + nbytes));
      } finally {
        M._free(ptr);
      }
    }
    return { dtype: dtype as DType, shape: count, data: out };
  }

  /** Reads a string dataset (variable or fixed length) as a flat array (C order). */
  strings(name: string): string[] {
    const ds = this.dataset(name);
    const m = ds.metadata as unknown as Meta;
    if (m.type !== H5T_STRING) {
      throw new FileFormatError(this.file, `a string dataset at ${ds.path}`, `a ${metaDtype(m)} dataset`, 'Use readHdf5 for numeric datasets.');
    }
    const v = ds.value as unknown;
    return Array.isArray(v) ? (v as string[]) : [v as string];
  }

  /** Attributes of a group or dataset (default the root) as plain values: numbers, strings, booleans and arrays of them. */
  attrs(name = '/'): Record<string, unknown> {
    const obj = this.object(name);
    const out: Record<string, unknown> = {};
    for (const [k, a] of Object.entries(obj.attrs)) {
      try {
        const meta = a.metadata as unknown as Meta;
        if (metaDtype(meta) === 'bool') {
          const v = a.value as unknown;
          out[k] = ArrayBuffer.isView(v) ? Array.from(v as Int8Array, Boolean) : Boolean(v);
        } else {
          out[k] = plainValue(a.value);
        }
      } catch (e) {
        out[k] = a.json_value ?? `<unreadable attribute: ${(e as Error).message}>`;
      }
    }
    return out;
  }

  private ensureGroups(p: string): void {
    const parts = normPath(p).split('/').filter(Boolean);
    let cur = '';
    for (const part of parts.slice(0, -1)) {
      cur += '/' + part;
      const obj = this.f.get(cur);
      if (!obj) this.f.create_group(cur.slice(1));
      else if ((obj as { type?: string }).type !== 'Group') throw new Error(`${this.file}: cannot create ${p}: ${cur} is not a group`);
    }
  }

  private writable(): void {
    this.check();
    if (this.mode === 'r') throw new Error(`${this.file}: opened read-only; open with 'w' or 'a' to write`);
  }

  /** Creates an empty chunked dataset (groups made as needed) to be filled with {@link writeRows}. */
  createDataset(name: string, opts: CreateDatasetOptions): void {
    this.writable();
    const p = normPath(name);
    const dt = writeDtype(opts.dtype, `${this.file}: createDataset ${p}`);
    if (this.f.get(p)) throw new Error(`${this.file}: ${p} already exists`);
    if (opts.shape.length === 0) throw new RangeError(`${this.file}: createDataset ${p}: give a shape with at least one axis`);
    this.ensureGroups(p);
    const chunks = opts.chunks ?? defaultChunks(opts.shape, DTYPE_BYTES[opts.dtype]);
    if (chunks.length !== opts.shape.length) throw new RangeError(`${this.file}: chunks [${chunks.join(', ')}] do not match shape [${opts.shape.join(', ')}]`);
    // h5wasm always writes initial data, so create with 0 rows (maxshape = the full shape), then extend.
    const start = [0, ...opts.shape.slice(1)];
    const empty = allocTyped(opts.dtype === 'bool' ? 'uint8' : opts.dtype, 0);
    const args: CreateArgs = {
      name: p, data: empty as never, shape: start, dtype: dt, maxshape: opts.shape, chunks,
    };
    if (opts.compression !== undefined && opts.compression > 0) {
      args.compression = 'gzip';
      args.compression_opts = opts.compression;
    }
    const ds = this.f.create_dataset(args);
    ds.resize(opts.shape);
  }

  /** Writes `arr` (shape `[n, ...rest]`) into rows `startRow .. startRow+n` of a dataset of shape `[N, ...rest]`. */
  writeRows(name: string, startRow: number, arr: NDArray): void {
    this.writable();
    const ds = this.dataset(name);
    const m = ds.metadata as unknown as Meta;
    const shape = (m.shape ?? []).map(Number);
    const dtype = metaDtype(m);
    const want = arr.dtype === 'bool' ? 'uint8' : arr.dtype;
    if (dtype !== want) throw new TypeError(`${this.file}: writeRows ${ds.path}: dataset is ${dtype}, array is ${arr.dtype}`);
    const n = arr.shape[0] ?? 0;
    const rest = shape.slice(1);
    if (arr.shape.length !== shape.length || arr.shape.slice(1).some((d, i) => d !== rest[i])) {
      throw new RangeError(`${this.file}: writeRows ${ds.path}: array shape [${arr.shape.join(', ')}] does not fit rows of dataset shape [${shape.join(', ')}]`);
    }
    if (!Number.isInteger(startRow) || startRow < 0 || startRow + n > shape[0]!) {
      throw new RangeError(`${this.file}: writeRows ${ds.path}: rows [${startRow}, ${startRow + n}) out of range for dataset shape [${shape.join(', ')}]`);
    }
    const rowBytes = shapeSize(rest) * DTYPE_BYTES[arr.dtype];
    const bytes = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
    const block = Math.max(1, Math.floor((64 << 20) / Math.max(1, rowBytes)));
    const M = this.M;
    for (let r = 0; r < n; r += block) {
      const k = Math.min(block, n - r);
      const nb = k * rowBytes;
      if (nb === 0) continue;
      const ptr = M._malloc(nb);
      if (!ptr) throw new RangeError(`${this.file}: cannot allocate ${nb} bytes in the wasm heap`);
      try {
        (M.HEAPU8 as Uint8Array).set(bytes.subarray(r * rowBytes, r * rowBytes + nb), ptr);
        const count = [k, ...rest].map(BigInt);
        const offset = [startRow + r, ...rest.map(() => 0)].map(BigInt);
        M.set_dataset_data(this.f.file_id, ds.path, count, offset, count.map(() => 1n), BigInt(ptr));
      } finally {
        M._free(ptr);
      }
    }
  }

  /** Writes a whole dataset in one call: an NDArray (contiguous, or chunked when compressed) or a string array. */
  writeDataset(name: string, value: NDArray | string[], opts: { compression?: number; chunks?: number[] } = {}): void {
    this.writable();
    const p = normPath(name);
    if (this.f.get(p)) throw new Error(`${this.file}: ${p} already exists`);
    this.ensureGroups(p);
    if (Array.isArray(value)) {
      this.f.create_dataset({ name: p, data: value, shape: [value.length], dtype: 'S' });
      return;
    }
    const dt = writeDtype(value.dtype, `${this.file}: dataset ${p}`);
    const compressed = opts.compression !== undefined && opts.compression > 0;
    if ((compressed || opts.chunks) && value.shape.length > 0) {
      this.createDataset(p, { shape: value.shape, dtype: value.dtype, chunks: opts.chunks, compression: opts.compression });
      if (shapeSize(value.shape) > 0) this.writeRows(p, 0, value);
      return;
    }
    const data = value.dtype === 'bool' ? new Uint8Array(value.data.buffer, value.data.byteOffset, value.data.byteLength) : value.data;
    this.f.create_dataset({ name: p, data: data as never, shape: value.shape, dtype: dt });
  }

  /**
   * Sets an attribute on a group or dataset (`name` '/' for the root). Values: number (float64, or int64
   * when an integer), bigint (int64), boolean (uint8), string, string[], number[], typed arrays, NDArray.
   */
  setAttr(name: string, key: string, value: unknown): void {
    this.writable();
    const obj = this.object(name);
    if (key in obj.attrs) obj.delete_attribute(key);
    const put = (data: unknown, shape: number[] | null, dtype: string) => obj.create_attribute(key, data as never, shape, dtype);
    if (typeof value === 'string') return put(value, null, 'S');
    if (typeof value === 'boolean') return put(new Uint8Array([value ? 1 : 0]), [], '<B');
    if (typeof value === 'bigint') return put(new BigInt64Array([value]), [], '<q');
    if (typeof value === 'number') {
      return Number.isSafeInteger(value) ? put(new BigInt64Array([BigInt(value)]), [], '<q') : put(new Float64Array([value]), [], '<d');
    }
    if (Array.isArray(value)) {
      if (value.every((v) => typeof v === 'string')) return put(value, [value.length], 'S');
      if (value.every((v) => typeof v === 'number')) {
        return value.every((v) => Number.isSafeInteger(v))
          ? put(BigInt64Array.from(value as number[], (v) => BigInt(v)), [value.length], '<q')
          : put(Float64Array.from(value as number[]), [value.length], '<d');
      }
      throw new TypeError(`${this.file}: attribute ${key}: arrays must be all strings or all numbers`);
    }
    if (value && typeof value === 'object' && 'dtype' in value && 'shape' in value && 'data' in value) {
      const a = value as NDArray;
      return put(a.dtype === 'bool' ? new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength) : a.data, a.shape, writeDtype(a.dtype, `${this.file}: attribute ${key}`));
    }
    if (ArrayBuffer.isView(value)) {
      const t = value as unknown as { length: number };
      const dt: [new (...a: never[]) => unknown, string][] = [
        [Int8Array, '<b'], [Uint8Array, '<B'], [Int16Array, '<h'], [Uint16Array, '<H'], [Int32Array, '<i'], [Uint32Array, '<I'],
        [BigInt64Array, '<q'], [BigUint64Array, '<Q'], [Float32Array, '<f'], [Float64Array, '<d'],
      ];
      const hit = dt.find(([C]) => value instanceof C);
      if (hit) return put(value, [t.length], hit[1]);
    }
    throw new TypeError(`${this.file}: attribute ${key}: unsupported value ${typeof value}`);
  }

  /** Flushes and closes; for a new file ('w') renames the temporary file onto the target. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.f.close();
    if (this.tmp) fs.renameSync(this.tmp, path.resolve(this.file));
  }

  /** Closes without keeping anything: a new file's temporary copy is deleted (mode 'a' changes stay). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.f.close(); } finally { if (this.tmp) fs.rmSync(this.tmp, { force: true }); }
  }
}

// ---------------------------------------------------------------------------------------
// One-call helpers.

/** Opens an HDF5 file ('r', 'a' in place, or 'w' atomic: temporary file renamed on close()). */
export function openHdf5(file: string, mode: 'r' | 'w' | 'a' = 'r'): Promise<Hdf5File> {
  return Hdf5File.open(file, mode);
}

async function withRead<T>(file: string, fn: (h: Hdf5File) => T): Promise<T> {
  const h = await Hdf5File.open(file, 'r');
  try {
    return fn(h);
  } finally {
    h.close();
  }
}

/** Lists every group and dataset (path, kind, shape, dtype, attribute names). */
export function listHdf5(file: string): Promise<Hdf5Entry[]> {
  return withRead(file, (h) => h.list());
}

/** Reads a numeric or bool dataset (or a slice: per axis `[start, end)` or null) as an NDArray, C order. */
export function readHdf5(file: string, dataset: string, opts: { slice?: Hdf5Slice } = {}): Promise<NDArray> {
  return withRead(file, (h) => h.read(dataset, opts.slice));
}

/** Reads a string dataset as a flat string array. */
export function readHdf5Strings(file: string, dataset: string): Promise<string[]> {
  return withRead(file, (h) => h.strings(dataset));
}

/** Reads the attributes of a group or dataset (default the root) as plain values. */
export function readHdf5Attrs(file: string, objectPath = '/'): Promise<Record<string, unknown>> {
  return withRead(file, (h) => h.attrs(objectPath));
}

/** A dataset to write: an array, a string list, or either with attributes and gzip level. */
export type Hdf5DatasetSpec = NDArray | string[] | { data: NDArray | string[]; attrs?: Record<string, unknown>; compression?: number; chunks?: number[] };

/** Writes a whole HDF5 file atomically: `datasets` keyed by path (may contain '/' groups), plus root `attrs`. */
export async function writeHdf5(file: string, content: { datasets: Record<string, Hdf5DatasetSpec>; attrs?: Record<string, unknown> }): Promise<void> {
  const h = await Hdf5File.open(file, 'w');
  try {
    for (const [name, spec] of Object.entries(content.datasets)) {
      const isSpec = !Array.isArray(spec) && 'data' in spec && !('dtype' in spec);
      const value = isSpec ? (spec as { data: NDArray | string[] }).data : (spec as NDArray | string[]);
      const s = isSpec ? (spec as { attrs?: Record<string, unknown>; compression?: number; chunks?: number[] }) : {};
      h.writeDataset(name, value, { compression: s.compression, chunks: s.chunks });
      for (const [k, v] of Object.entries(s.attrs ?? {})) h.setAttr(name, k, v);
    }
    for (const [k, v] of Object.entries(content.attrs ?? {})) h.setAttr('/', k, v);
  } catch (e) {
    h.abort();
    throw e;
  }
  h.close();
}
