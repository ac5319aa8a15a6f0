/**
 * safetensors read and write (https://github.com/huggingface/safetensors, format section).
 *
 * Layout: 8 bytes little-endian u64 N, then N bytes of JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`,
 * then the data buffer; offsets are relative to the start of the buffer. Data is little-endian, C order.
 * Readers fetch only the requested tensors' byte ranges with positioned reads.
 */
import * as fs from 'node:fs';
import { FileFormatError } from './errors.js';
import { withAtomicFile } from './atomic.js';
import { checkInputFile } from './input.js';
import { DType, NDArray, TypedArray, DTYPE_BYTES, shapeSize, allocTyped } from './ndarray.js';

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  /** The file's dtype string, e.g. `'F32'`. */
  dtype: string;
  shape: number[];
  /** `[begin, end)` byte offsets, relative to the start of the data buffer. */
  dataOffsets: [number, number];
}

/** A parsed safetensors header. */
export interface SafetensorsHeader {
  tensors: Record<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Absolute byte offset of the data buffer (8 + header length). */
  dataStart: number;
  /** Length of the data buffer in bytes. */
  dataLength: number;
}

const ST_TO_DTYPE: Record<string, DType> = {
  BOOL: 'bool', U8: 'uint8', I8: 'int8', I16: 'int16', U16: 'uint16', I32: 'int32', U32: 'uint32',
  I64: 'int64', U64: 'uint64', F16: 'float16', BF16: 'bfloat16', F32: 'float32', F64: 'float64',
};
const DTYPE_TO_ST: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k]));
const MAX_HEADER = 100_000_000; // the reference implementation's limit

/** Pure: validates a parsed header against the data buffer length. */
function validateHeader(json: unknown, file: string, dataLength: number, dataStart: number): SafetensorsHeader {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FileFormatError(file, 'a JSON object as the safetensors header', typeof json);
  }
  const tensors: Record<string, SafetensorsEntry> = {};
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
        throw new FileFormatError(file, '"__metadata__" as an object of string values', JSON.stringify(v).slice(0, 100));
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const where = `tensor "${name}"`;
    if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
      throw new FileFormatError(file, `${where} with dtype, shape and data_offsets`, JSON.stringify(v).slice(0, 100));
    }
    const dt = ST_TO_DTYPE[e.dtype];
    if (!dt) {
      throw new FileFormatError(file, `${where} of a supported dtype (${Object.keys(ST_TO_DTYPE).join(' ')})`, `dtype ${e.dtype}`,
        'Convert it to one of those (e.g. float32) before saving.');
    }
    const shape = e.shape as unknown[];
    const offs = e.data_offsets as unknown[];
    if (!shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new FileFormatError(file, `${where} with a shape of non-negative integers`, JSON.stringify(shape));
    }
    if (offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new FileFormatError(file, `${where} with data_offsets [begin, end]`, JSON.stringify(offs));
    }
    const [b, en] = offs as [number, number];
    const need = shapeSize(shape as number[]) * DTYPE_BYTES[dt];
    if (en < b || en - b !== need) {
      throw new FileFormatError(file, `${where}: ${need} bytes for shape [${shape.join(', ')}] of ${e.dtype}`, `data_offsets [${b}, ${en}]`);
    }
    if (en > dataLength) {
      throw new FileFormatError(file, `${where} inside the ${dataLength}-byte data buffer`,
        `data_offsets [${b}, ${en}] (out of range: truncated file?)`);
    }
    tensors[name] = { dtype: e.dtype, shape: shape as number[], dataOffsets: [b, en] };
  }
  checkCoverage(file, tensors, dataLength);
  return { tensors, metadata, dataStart, dataLength };
}

/**
 * The format requires the tensors to tile the data buffer exactly: no two share bytes, none leaves a gap, and the
 * last ends where the file ends (the reference reader's InvalidOffset / MetadataIncompleteBuffer checks).
 */
function checkCoverage(file: string, tensors: Record<string, SafetensorsEntry>, dataLength: number): void {
  const spans = Object.entries(tensors).sort((x, y) => x[1].dataOffsets[0] - y[1].dataOffsets[0] || x[1].dataOffsets[1] - y[1].dataOffsets[1]);
  let end = 0;
  let prev = '(the start of the data buffer)';
  for (const [name, t] of spans) {
    const [b, e] = t.dataOffsets;
    if (b < end) {
      throw new FileFormatError(file, 'tensors with non-overlapping data_offsets', `"${prev}" [${tensors[prev]?.dataOffsets ?? [0, 0]}] overlapping "${name}" [${t.dataOffsets}]`,
        'The header is corrupt; save the tensors again.');
    }
    if (b > end) {
      throw new FileFormatError(file, `tensors that cover the data buffer without gaps (the next tensor after ${prev.startsWith('(') ? prev : `"${prev}"`} starting at byte ${end})`,
        `${b - end} unclaimed bytes [${end}, ${b}) before "${name}" [${t.dataOffsets}]`, 'The header and the data disagree; save the tensors again.');
    }
    end = e;
    prev = name;
  }
  if (end !== dataLength) {
    throw new FileFormatError(file, `tensors that end where the ${dataLength}-byte data buffer ends`,
      `${dataLength - end} unclaimed bytes [${end}, ${dataLength}) after the last tensor${spans.length ? ` "${prev}"` : ''}`,
      'Extra bytes were appended or a tensor is missing from the header; save the tensors again.');
  }
}

async function readAt(fh: fs.promises.FileHandle, into: Uint8Array, pos: number, file: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, pos + done);
    if (bytesRead === 0) throw new FileFormatError(file, `${into.length} bytes at offset ${pos}`, 'end of file (truncated)');
    done += bytesRead;
  }
}

async function headerFrom(fh: fs.promises.FileHandle, file: string): Promise<SafetensorsHeader> {
  const { size } = await fh.stat();
  if (size < 8) throw new FileFormatError(file, 'a safetensors file (8-byte header length first)', `${size} bytes (truncated)`);
  const lenBytes = new Uint8Array(8);
  await readAt(fh, lenBytes, 0, file);
  const n = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER) || Number(n) + 8 > size) {
    throw new FileFormatError(file, `a header length of at most ${Math.min(MAX_HEADER, size - 8)} bytes`,
      `${n}${Number(n) + 8 > size && n <= BigInt(MAX_HEADER) ? ' (truncated file)' : ' (not a safetensors file?)'}`);
  }
  const hb = new Uint8Array(Number(n));
  await readAt(fh, hb, 8, file);
  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(hb);
    if (!text.startsWith('{')) throw new Error(`it starts with ${JSON.stringify(text.slice(0, 10))}`);
    json = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, 'a UTF-8 JSON header', `invalid JSON (${(e as Error).message})`);
  }
  return validateHeader(json, file, size - 8 - Number(n), 8 + Number(n));
}

async function open(file: string): Promise<fs.promises.FileHandle> {
  checkInputFile(file, 'safetensors');
  try {
    return await fs.promises.open(file, 'r');
  } catch (e) {
    throw new FileFormatError(file, 'an existing, readable .safetensors file', (e as NodeJS.ErrnoException).code ?? String(e), 'Check the path.');
  }
}

/** Reads and validates the JSON header of a safetensors file (names, dtypes, shapes, offsets, metadata). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await open(file);
  try {
    return await headerFrom(fh, file);
  } finally {
    await fh.close();
  }
}

/** Reads tensors (all, or only `names`, fetching just their byte ranges) and the string metadata. */
export async function readSafetensors(
  file: string,
  opts: { names?: string[] } = {},
): Promise<{ tensors: Record<string, NDArray>; metadata: Record<string, string> }> {
  const fh = await open(file);
  try {
    const h = await headerFrom(fh, file);
    const names = opts.names ?? Object.keys(h.tensors);
    const tensors: Record<string, NDArray> = {};
    for (const name of names) {
      const e = h.tensors[name];
      if (!e) {
        throw new FileFormatError(file, `a tensor named "${name}"`, `only ${Object.keys(h.tensors).slice(0, 20).join(', ')}${Object.keys(h.tensors).length > 20 ? ', ...' : ''}`);
      }
      const dtype = ST_TO_DTYPE[e.dtype]!;
      const data: TypedArray = allocTyped(dtype, shapeSize(e.shape));
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      await readAt(fh, bytes, h.dataStart + e.dataOffsets[0], file);
      tensors[name] = { dtype, shape: e.shape.slice(), data };
    }
    return { tensors, metadata: { ...h.metadata } };
  } finally {
    await fh.close();
  }
}

/** Pure: the header bytes (length prefix + JSON padded with spaces to a multiple of 8) and the tensor order. */
export function encodeSafetensorsHeader(
  tensors: Record<string, NDArray>,
  metadata?: Record<string, string>,
  file = '<safetensors>',
): { header: Uint8Array; order: string[] } {
  // Largest items first, then by name (as the reference writer does), so every tensor is aligned to its item size.
  const order = Object.keys(tensors).sort((a, b) =>
    DTYPE_BYTES[tensors[b]!.dtype] - DTYPE_BYTES[tensors[a]!.dtype] || (a < b ? -1 : a > b ? 1 : 0));
  const json: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new FileFormatError(file, 'metadata of string values', `${k}: ${typeof v}`, 'Convert values with String() or JSON.stringify().');
    }
    json.__metadata__ = metadata;
  }
  let off = 0;
  for (const name of order) {
    if (name === '__metadata__') throw new FileFormatError(file, 'tensor names other than "__metadata__"', name);
    const t = tensors[name]!;
    const st = DTYPE_TO_ST[t.dtype];
    if (!st) throw new FileFormatError(file, `a dtype safetensors can store for "${name}"`, t.dtype, 'Store complex data as two float tensors.');
    const n = shapeSize(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== n) throw new RangeError(`safetensors: "${name}" holds ${t.data.byteLength} bytes, shape [${t.shape}] of ${t.dtype} needs ${n}`);
    json[name] = { dtype: st, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let text = JSON.stringify(json);
  let bytes = new TextEncoder().encode(text);
  const pad = (8 - (bytes.length % 8)) % 8;
  if (pad) {
    text += ' '.repeat(pad);
    bytes = new TextEncoder().encode(text);
  }
  const header = new Uint8Array(8 + bytes.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(bytes.length), true);
  header.set(bytes, 8);
  return { header, order };
}

/** Writes tensors (any shapes) and optional string metadata to a safetensors file atomically. */
export async function writeSafetensors(file: string, tensors: Record<string, NDArray>, metadata?: Record<string, string>): Promise<void> {
  const { header, order } = encodeSafetensorsHeader(tensors, metadata, file);
  await withAtomicFile(file, async (tmp) => {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      let pos = 0;
      const write = async (b: Uint8Array) => {
        let done = 0;
        while (done < b.length) {
          const { bytesWritten } = await fh.write(b, done, Math.min(b.length - done, 1 << 30), pos + done);
          done += bytesWritten;
        }
        pos += b.length;
      };
      await write(header);
      for (const name of order) {
        const d = tensors[name]!.data;
        await write(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      }
    } finally {
      await fh.close();
    }
  });
}
