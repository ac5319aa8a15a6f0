/**
 * NumPy `.npz` read and write: a zip archive of `.npy` members, stored (`np.savez`) or
 * deflated (`np.savez_compressed`), with zip64 records (numpy always writes zip64 local headers).
 *
 * The zip layer is a small reader/writer over node:zlib (inflateRaw/deflateRaw, crc32) rather
 * than a zip package: it reads the central directory and then only each member's bytes with
 * positioned reads, handles zip64 in both directions, checks every CRC, and adds no dependency.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import * as buffer from 'node:buffer';
import { FileFormatError } from './errors.js';
import { withAtomicFile } from './atomic.js';
import { checkInputFile } from './input.js';
import { NDArray } from './ndarray.js';
import { decodeNpy, encodeNpy } from './npy.js';

/** Options of {@link writeNpz}. */
export interface NpzWriteOptions {
  /** Deflate each member, like `np.savez_compressed` (default false: stored, like `np.savez`). */
  compress?: boolean;
  /** Always write zip64 records (default: only when a size or offset needs them). */
  zip64?: boolean;
}

/** One member of a zip archive, from its central-directory record. */
interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compSize: number;
  size: number;
  localOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_Z64_EOCD = 0x06064b50;
const SIG_Z64_LOC = 0x07064b50;
const U32 = 0xffffffff;
const U16 = 0xffff;

function u64(dv: DataView, off: number): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('zip64 value too large');
  return Number(v);
}

async function readAt(fh: fs.promises.FileHandle, pos: number, len: number, file: string): Promise<Uint8Array> {
  const b = new Uint8Array(len);
  let done = 0;
  while (done < len) {
    const { bytesRead } = await fh.read(b, done, len - done, pos + done);
    if (bytesRead === 0) {
      throw new FileFormatError(file, `${len} bytes at offset ${pos} of the zip archive`, `end of file (truncated)`);
    }
    done += bytesRead;
  }
  return b;
}

/** Reads the central directory of a zip archive. */
async function readCentralDirectory(fh: fs.promises.FileHandle, size: number, file: string): Promise<ZipEntry[]> {
  const tailLen = Math.min(size, 22 + 0xffff + 20);
  const tail = await readAt(fh, size - tailLen, tailLen, file);
  const dv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (dv.getUint32(i, true) === SIG_EOCD) { eocd = i; break; }
  }
  if (eocd < 0) {
    const head = await readAt(fh, 0, Math.min(size, 4), file);
    const isZip = head[0] === 0x50 && head[1] === 0x4b;
    throw new FileFormatError(file, 'a zip archive (.npz) with an end-of-central-directory record',
      isZip ? 'a zip archive without one (truncated)' : size === 0 ? 'an empty file' : 'no zip signature',
      isZip ? 'The file was cut short; write it again.' : undefined);
  }
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if (count === U16 || cdSize === U32 || cdOffset === U32) {
    const loc = eocd - 20;
    if (loc < 0 || dv.getUint32(loc, true) !== SIG_Z64_LOC) {
      throw new FileFormatError(file, 'a zip64 end-of-central-directory locator', 'none');
    }
    const z64Off = u64(dv, loc + 8);
    const z = new DataView((await readAt(fh, z64Off, 56, file)).buffer);
    if (z.getUint32(0, true) !== SIG_Z64_EOCD) {
      throw new FileFormatError(file, 'a zip64 end-of-central-directory record', `signature 0x${z.getUint32(0, true).toString(16)}`);
    }
    count = u64(z, 32);
    cdSize = u64(z, 40);
    cdOffset = u64(z, 48);
  }
  if (cdOffset + cdSize > size) {
    throw new FileFormatError(file, `a central directory at ${cdOffset}..${cdOffset + cdSize}`, `a file of ${size} bytes (truncated)`);
  }
  const cd = await readAt(fh, cdOffset, cdSize, file);
  const cv = new DataView(cd.buffer);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || cv.getUint32(p, true) !== SIG_CENTRAL) {
      throw new FileFormatError(file, `central-directory record ${k + 1} of ${count}`, 'a corrupt record');
    }
    const flags = cv.getUint16(p + 8, true);
    const method = cv.getUint16(p + 10, true);
    const crc = cv.getUint32(p + 16, true);
    let compSize = cv.getUint32(p + 20, true);
    let sz = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    let localOffset = cv.getUint32(p + 42, true);
    const name = new TextDecoder(flags & 0x800 ? 'utf-8' : 'latin1').decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: present fields are the ones set to 0xFFFFFFFF, in this order.
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = cv.getUint16(e, true);
      const len = cv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (sz === U32) { sz = u64(cv, q); q += 8; }
        if (compSize === U32) { compSize = u64(cv, q); q += 8; }
        if (localOffset === U32) { localOffset = u64(cv, q); q += 8; }
      }
      e += 4 + len;
    }
    entries.push({ name, method, flags, crc, compSize, size: sz, localOffset });
    p = eEnd + commentLen;
  }
  return entries;
}

/** Reads and inflates one member, checking its CRC. */
async function readEntry(fh: fs.promises.FileHandle, en: ZipEntry, file: string, fileSize: number): Promise<Uint8Array> {
  const where = `${file} (member ${en.name})`;
  if (en.flags & 1) throw new FileFormatError(where, 'an unencrypted zip member', 'an encrypted one');
  if (en.localOffset + 30 + en.compSize > fileSize) {
    throw new FileFormatError(where, `a member inside the ${fileSize}-byte archive`,
      `${en.compSize} bytes of data at offset ${en.localOffset} (beyond the end: truncated or corrupt)`, 'The file was cut short or damaged; write it again.');
  }
  if (en.method === 0 && en.compSize !== en.size) {
    throw new FileFormatError(where, `a stored member of ${en.size} bytes`, `${en.compSize} stored bytes`, 'The archive is corrupt; write it again.');
  }
  const lh = await readAt(fh, en.localOffset, 30, file);
  const lv = new DataView(lh.buffer);
  if (lv.getUint32(0, true) !== SIG_LOCAL) {
    throw new FileFormatError(where, 'a zip local file header', `signature 0x${lv.getUint32(0, true).toString(16)}`);
  }
  const start = en.localOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
  const comp = await readAt(fh, start, en.compSize, file);
  let data: Uint8Array;
  if (en.method === 0) {
    data = comp;
  } else if (en.method === 8) {
    try {
      // never inflate more than the directory promises (a damaged or hostile size cannot exhaust memory)
      data = zlib.inflateRawSync(comp, { maxOutputLength: Math.min(Math.max(1, en.size + 1), buffer.constants.MAX_LENGTH) });
    } catch (err) {
      throw new FileFormatError(where, 'valid deflate data', `a corrupt stream (${(err as Error).message})`);
    }
  } else {
    throw new FileFormatError(where, 'zip compression method 0 (stored) or 8 (deflate)', `method ${en.method}`,
      'Re-save with np.savez or np.savez_compressed.');
  }
  if (data.length !== en.size) {
    throw new FileFormatError(where, `${en.size} uncompressed bytes`, `${data.length}`);
  }
  if ((zlib.crc32(data) >>> 0) !== en.crc) {
    throw new FileFormatError(where, `CRC-32 ${en.crc.toString(16)}`, `${(zlib.crc32(data) >>> 0).toString(16)} (corrupt data)`);
  }
  return data;
}

/** Reads every `.npy` member of an `.npz` file; keys drop the `.npy` suffix, as numpy's do. Other members are skipped. */
export async function readNpz(file: string): Promise<Record<string, NDArray>> {
  checkInputFile(file, '.npz');
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    throw new FileFormatError(file, 'an existing, readable .npz file', (e as NodeJS.ErrnoException).code ?? String(e), 'Check the path.');
  }
  try {
    const { size } = await fh.stat();
    const entries = await readCentralDirectory(fh, size, file);
    const out: Record<string, NDArray> = {};
    for (const en of entries) {
      if (!en.name.endsWith('.npy')) continue;
      const bytes = await readEntry(fh, en, file, size);
      out[en.name.slice(0, -4)] = decodeNpy(bytes, `${file} (member ${en.name})`);
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** Pure: builds the local header, central record and data of one member. */
function buildMember(name: string, npy: Uint8Array, compress: boolean, offset: number, forceZip64: boolean) {
  const nameBytes = new TextEncoder().encode(name);
  const utf8 = /[^\x20-\x7e]/.test(name);
  const crc = zlib.crc32(npy) >>> 0;
  const data = compress ? new Uint8Array(zlib.deflateRawSync(npy)) : npy;
  const zip64 = forceZip64 || npy.length >= U32 || data.length >= U32 || offset >= U32;
  const version = zip64 ? 45 : 20;
  const dosTime = 0;
  const dosDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01: reproducible archives
  // local header
  const lExtra = zip64 ? 20 : 0;
  const local = new Uint8Array(30 + nameBytes.length + lExtra);
  const lv = new DataView(local.buffer);
  lv.setUint32(0, SIG_LOCAL, true);
  lv.setUint16(4, version, true);
  lv.setUint16(6, utf8 ? 0x800 : 0, true);
  lv.setUint16(8, compress ? 8 : 0, true);
  lv.setUint16(10, dosTime, true);
  lv.setUint16(12, dosDate, true);
  lv.setUint32(14, crc, true);
  lv.setUint32(18, zip64 ? U32 : data.length, true);
  lv.setUint32(22, zip64 ? U32 : npy.length, true);
  lv.setUint16(26, nameBytes.length, true);
  lv.setUint16(28, lExtra, true);
  local.set(nameBytes, 30);
  if (zip64) {
    const q = 30 + nameBytes.length;
    lv.setUint16(q, 1, true);
    lv.setUint16(q + 2, 16, true);
    lv.setBigUint64(q + 4, BigInt(npy.length), true);
    lv.setBigUint64(q + 12, BigInt(data.length), true);
  }
  // central directory record
  const cExtra = zip64 ? 28 : 0;
  const central = new Uint8Array(46 + nameBytes.length + cExtra);
  const cv = new DataView(central.buffer);
  cv.setUint32(0, SIG_CENTRAL, true);
  cv.setUint16(4, version, true);
  cv.setUint16(6, version, true);
  cv.setUint16(8, utf8 ? 0x800 : 0, true);
  cv.setUint16(10, compress ? 8 : 0, true);
  cv.setUint16(12, dosTime, true);
  cv.setUint16(14, dosDate, true);
  cv.setUint32(16, crc, true);
  cv.setUint32(20, zip64 ? U32 : data.length, true);
  cv.setUint32(24, zip64 ? U32 : npy.length, true);
  cv.setUint16(28, nameBytes.length, true);
  cv.setUint16(30, cExtra, true);
  cv.setUint32(38, 0o100644 << 16, true); // external attributes: regular file, rw-r--r--
  cv.setUint32(42, zip64 ? U32 : offset, true);
  central.set(nameBytes, 46);
  if (zip64) {
    const q = 46 + nameBytes.length;
    cv.setUint16(q, 1, true);
    cv.setUint16(q + 2, 24, true);
    cv.setBigUint64(q + 4, BigInt(npy.length), true);
    cv.setBigUint64(q + 12, BigInt(data.length), true);
    cv.setBigUint64(q + 20, BigInt(offset), true);
  }
  return { local, data, central };
}

/** Writes named arrays to an `.npz` file atomically (stored, or deflated with `compress`). Keys get a `.npy` suffix. */
export async function writeNpz(file: string, arrays: Record<string, NDArray>, opts: NpzWriteOptions = {}): Promise<void> {
  const compress = opts.compress ?? false;
  await withAtomicFile(file, async (tmp) => {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      let offset = 0;
      const write = async (b: Uint8Array) => {
        let done = 0;
        while (done < b.length) {
          const { bytesWritten } = await fh.write(b, done, Math.min(b.length - done, 1 << 30), offset + done);
          done += bytesWritten;
        }
        offset += b.length;
      };
      const centrals: Uint8Array[] = [];
      for (const [key, arr] of Object.entries(arrays)) {
        let npy: Uint8Array;
        try {
          npy = encodeNpy(arr);
        } catch (e) {
          throw new FileFormatError(file, `an array of a dtype that .npy can store (member ${key})`, arr.dtype,
            'Convert it first, e.g. with toFloat32.');
        }
        const m = buildMember(`${key}.npy`, npy, compress, offset, opts.zip64 ?? false);
        await write(m.local);
        await write(m.data);
        centrals.push(m.central);
      }
      const cdOffset = offset;
      for (const c of centrals) await write(c);
      const cdSize = offset - cdOffset;
      const n = centrals.length;
      const need64 = (opts.zip64 ?? false) || n >= U16 || cdOffset >= U32 || cdSize >= U32;
      if (need64) {
        const z = new Uint8Array(56 + 20);
        const zv = new DataView(z.buffer);
        zv.setUint32(0, SIG_Z64_EOCD, true);
        zv.setBigUint64(4, 44n, true);
        zv.setUint16(12, 45, true);
        zv.setUint16(14, 45, true);
        zv.setBigUint64(24, BigInt(n), true);
        zv.setBigUint64(32, BigInt(n), true);
        zv.setBigUint64(40, BigInt(cdSize), true);
        zv.setBigUint64(48, BigInt(cdOffset), true);
        zv.setUint32(56, SIG_Z64_LOC, true);
        zv.setBigUint64(64, BigInt(offset), true);
        zv.setUint32(72, 1, true);
        await write(z);
      }
      const e = new Uint8Array(22);
      const ev = new DataView(e.buffer);
      ev.setUint32(0, SIG_EOCD, true);
      ev.setUint16(8, need64 ? U16 : n, true);
      ev.setUint16(10, need64 ? U16 : n, true);
      ev.setUint32(12, need64 ? U32 : cdSize, true);
      ev.setUint32(16, need64 ? U32 : cdOffset, true);
      await write(e);
    } finally {
      await fh.close();
    }
  });
}
