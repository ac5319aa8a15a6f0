/**
 * GIFTI (`.gii`): XML with base64 (optionally zlib-compressed) or ASCII data arrays.
 * Surfaces (`.surf.gii`: a POINTSET and a TRIANGLE array), per-vertex data (`.func.gii`, `.shape.gii`)
 * and labels (`.label.gii`, with a label table). Spec: GIFTI Surface Data Format 1.0 (2011).
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import * as buffer from 'node:buffer';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { withAtomicFile } from './atomic.js';
import { FileFormatError } from './errors.js';
import type { Surface } from './freesurfer.js';
import { type DType, type NDArray, type TypedArray, DTYPE_BYTES, allocTyped, shapeSize, swapBytes, fortranToCTyped } from './ndarray.js';
import { checkInputFile } from './input.js';

/** One label of a label table: integer key, name, and colour as RGBA in [0, 1]. */
export interface GiftiLabel {
  key: number;
  label: string;
  rgba: [number, number, number, number];
}

/** A coordinate system transform: `matrix` is 4×4 row-major, from `dataSpace` to `transformedSpace`. */
export interface GiftiCoordSys {
  dataSpace: string;
  transformedSpace: string;
  matrix: Float64Array;
}

/** One GIFTI data array; `data` is in C order with the file's Dim0, Dim1, ... as its shape. */
export interface GiftiDataArray {
  /** NIfTI intent name, e.g. `NIFTI_INTENT_POINTSET`, `NIFTI_INTENT_TRIANGLE`, `NIFTI_INTENT_NONE`. */
  intent: string;
  data: NDArray;
  meta: Record<string, string>;
  coordsys?: GiftiCoordSys;
}

/** A whole GIFTI file. */
export interface GiftiImage {
  meta: Record<string, string>;
  labelTable?: GiftiLabel[];
  darrays: GiftiDataArray[];
}

/** How a data array's values are stored in the XML. */
export type GiftiEncoding = 'ASCII' | 'Base64Binary' | 'GZipBase64Binary';

const NIFTI_TYPES: Record<string, DType> = {
  NIFTI_TYPE_UINT8: 'uint8', NIFTI_TYPE_INT8: 'int8', NIFTI_TYPE_INT16: 'int16', NIFTI_TYPE_UINT16: 'uint16',
  NIFTI_TYPE_INT32: 'int32', NIFTI_TYPE_UINT32: 'uint32', NIFTI_TYPE_INT64: 'int64', NIFTI_TYPE_UINT64: 'uint64',
  NIFTI_TYPE_FLOAT32: 'float32', NIFTI_TYPE_FLOAT64: 'float64',
};

const ARRAYS = new Set(['MD', 'Label', 'DataArray', 'CoordinateSystemTransformMatrix']);

type Node = Record<string, unknown>;

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return text((v as Node)['#text']);
  return String(v);
}

function parseMeta(node: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!node || typeof node !== 'object') return out;
  for (const md of ((node as Node).MD as Node[] | undefined) ?? []) out[text(md.Name)] = text(md.Value);
  return out;
}



function decodeDataArray(file: string, i: number, da: Node, raw: string): GiftiDataArray {
  const where = `data array ${i}`;
  const attr = (name: string) => (da[`@_${name}`] === undefined ? undefined : String(da[`@_${name}`]));
  const typeName = attr('DataType') ?? '';
  const dtype = NIFTI_TYPES[typeName];
  if (!dtype) {
    throw new FileFormatError(file, `a GIFTI DataType (${Object.keys(NIFTI_TYPES).join(', ')}) in ${where}`,
      `"${typeName}"`);
  }
  const ndim = Number(attr('Dimensionality') ?? '1');
  const shape: number[] = [];
  for (let d = 0; d < ndim; d++) {
    const v = Number(attr(`Dim${d}`));
    if (!Number.isInteger(v) || v < 0) throw new FileFormatError(file, `Dim${d} in ${where}`, String(attr(`Dim${d}`)));
    shape.push(v);
  }
  const n = shapeSize(shape);
  const encoding = attr('Encoding') ?? 'ASCII';
  const order = attr('ArrayIndexingOrder') ?? 'RowMajorOrder';
  const endian = attr('Endian') ?? 'LittleEndian';
  if (endian !== 'LittleEndian' && endian !== 'BigEndian') {
    throw new FileFormatError(file, `Endian LittleEndian or BigEndian in ${where}`, `"${endian}"`, 'Fix the attribute or re-save the file (e.g. with nibabel).');
  }
  const itemBytes = DTYPE_BYTES[dtype];
  const dims = `shape [${shape.join(', ')}]`;
  let data: TypedArray;
  if (encoding === 'ASCII') {
    const toks = raw.trim() === '' ? [] : raw.trim().split(/\s+/);
    if (toks.length !== n) {
      throw new FileFormatError(file, `${n} ASCII values in ${where} (${dims})`, `${toks.length}`, 'The file is truncated or its Dim attributes are wrong.');
    }
    data = allocTyped(dtype, n);
    const integer = dtype !== 'float32' && dtype !== 'float64';
    const bad = toks.findIndex((t) => (integer ? !/^[+-]?\d+$/.test(t) : !Number.isFinite(Number(t)) && !/^[+-]?(nan|inf(inity)?)$/i.test(t)));
    if (bad >= 0) {
      throw new FileFormatError(file, `${integer ? 'integers' : 'numbers'} as the ASCII values of ${dtype} ${where}`, `"${toks[bad]}" (value ${bad})`,
        'The file is corrupt; re-save it (e.g. with nibabel).');
    }
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
      for (let j = 0; j < n; j++) data[j] = BigInt(toks[j]!);
    } else {
      const d = data as Exclude<TypedArray, BigInt64Array | BigUint64Array>;
      for (let j = 0; j < n; j++) d[j] = Number(toks[j]);
    }
  } else if (encoding === 'Base64Binary' || encoding === 'GZipBase64Binary') {
    // decode first, then check the length against the Dim attributes, and only then allocate
    const want = n * itemBytes;
    let bytes: Uint8Array = Buffer.from(raw.replace(/\s+/g, ''), 'base64');
    if (encoding === 'GZipBase64Binary') {
      try {
        // writers use zlib streams (nibabel, Workbench); accept real gzip too. Never inflate past what Dim promises.
        const maxOutputLength = Math.min(Math.max(1, want + 1), buffer.constants.MAX_LENGTH);
        bytes = bytes[0] === 0x1f && bytes[1] === 0x8b ? zlib.gunzipSync(bytes, { maxOutputLength }) : zlib.inflateSync(bytes, { maxOutputLength });
      } catch (e) {
        const tooBig = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
        throw new FileFormatError(file, tooBig ? `${want} bytes of ${dtype} in ${where} (${dims})` : `zlib-compressed data in ${where}`,
          tooBig ? 'more data than that' : `a zlib error: ${(e as Error).message}`, 'The file is truncated or corrupt.');
      }
    }
    if (bytes.length !== want) {
      throw new FileFormatError(file, `${want} bytes of ${dtype} in ${where} (${dims})`,
        `${bytes.length} bytes`, 'The file is truncated or corrupt, or its Dim attributes are wrong.');
    }
    data = allocTyped(dtype, n);
    const dst = new Uint8Array(data.buffer);
    dst.set(bytes);
    if (endian === 'BigEndian') swapBytes(dst, data.BYTES_PER_ELEMENT);
  } else {
    throw new FileFormatError(file, `an ASCII, Base64Binary or GZipBase64Binary encoding in ${where}`, `"${encoding}"`,
      encoding === 'ExternalFileBinary' ? 'External data files are not supported; re-save the GIFTI with embedded data (e.g. nibabel).' : undefined);
  }
  if (order === 'ColumnMajorOrder') data = fortranToCTyped(data, shape);
  else if (order !== 'RowMajorOrder') {
    throw new FileFormatError(file, `ArrayIndexingOrder RowMajorOrder or ColumnMajorOrder in ${where}`, `"${order}"`);
  }
  const out: GiftiDataArray = { intent: attr('Intent') ?? 'NIFTI_INTENT_NONE', data: { dtype, shape, data }, meta: parseMeta(da.MetaData) };
  const cs = (da.CoordinateSystemTransformMatrix as Node[] | undefined)?.[0];
  if (cs) {
    const vals = text(cs.MatrixData).trim().split(/\s+/).filter((t) => t !== '').map(Number);
    if (vals.length === 16) {
      out.coordsys = { dataSpace: text(cs.DataSpace).trim(), transformedSpace: text(cs.TransformedSpace).trim(), matrix: Float64Array.from(vals) };
    }
  }
  return out;
}

/** Parses GIFTI XML text into its metadata, label table and data arrays (each in C order). */
export function parseGifti(xml: string, file = '<string>'): GiftiImage {
  const parser = new XMLParser({
    ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, parseAttributeValue: false,
    trimValues: true, isArray: (name) => ARRAYS.has(name),
  });
  // Lift the (large) <Data> bodies out before parsing: the XML parser is slow on megabyte text nodes.
  const bodies: string[] = [];
  const parts: string[] = [];
  let at = 0;
  for (;;) {
    const open = xml.indexOf('<Data>', at);
    if (open < 0) break;
    const close = xml.indexOf('</Data>', open + 6);
    if (close < 0) break; // truncated: left for the parser to report
    parts.push(xml.slice(at, open + 6), String(bodies.length), '</Data>');
    bodies.push(xml.slice(open + 6, close).replace(/^\s*<!\[CDATA\[([\s\S]*)\]\]>\s*$/, '$1'));
    at = close + 7;
  }
  parts.push(xml.slice(at));
  const skeleton = parts.join('');
  const valid = XMLValidator.validate(skeleton);
  if (valid !== true) {
    // the validator reports elements left open at the end as "Invalid '[...names...]' found."
    const open = /^Invalid '(\[[^']*\])' found/.exec(valid.err.msg);
    const names = open ? (JSON.parse(open[1]!) as string[]).map((n) => `<${n}>`).join(', ') : '';
    throw new FileFormatError(file, 'well-formed GIFTI XML', open ? `a document that ends before closing ${names}` : `an XML error at line ${valid.err.line}: ${valid.err.msg.replace(/\.$/, '')}`,
      'The file is truncated or corrupt.');
  }
  let doc: Node;
  try {
    doc = parser.parse(skeleton) as Node;
  } catch (e) {
    throw new FileFormatError(file, 'well-formed GIFTI XML', `an XML error: ${(e as Error).message}`,
      'The file is truncated or corrupt.');
  }
  const root = doc.GIFTI as Node | undefined;
  if (!root || typeof root !== 'object') {
    throw new FileFormatError(file, 'a GIFTI document (root element <GIFTI>)',
      `root elements ${Object.keys(doc).filter((k) => !k.startsWith('?')).join(', ') || 'none'}`, 'Is this a .gii file?');
  }
  const darrays = ((root.DataArray as Node[] | undefined) ?? []).map((da, i) => {
    const ref = text(da.Data).trim();
    return decodeDataArray(file, i, da, ref === '' ? '' : bodies[Number(ref)] ?? '');
  });
  const declared = root['@_NumberOfDataArrays'];
  if (declared !== undefined && Number(declared) !== darrays.length) {
    throw new FileFormatError(file, `${declared} data arrays (NumberOfDataArrays)`, `${darrays.length}`, 'The file is truncated or corrupt.');
  }
  const img: GiftiImage = { meta: parseMeta(root.MetaData), darrays };
  const lt = root.LabelTable;
  const labels = lt && typeof lt === 'object' ? ((lt as Node).Label as Node[] | undefined) ?? [] : [];
  if (labels.length) {
    img.labelTable = labels.map((l) => ({
      key: Number(l['@_Key'] ?? l['@_Index']),
      label: text(l),
      rgba: [Number(l['@_Red'] ?? 0), Number(l['@_Green'] ?? 0), Number(l['@_Blue'] ?? 0), Number(l['@_Alpha'] ?? 1)],
    }));
  }
  return img;
}

/** Reads a GIFTI file (`.gii`): metadata, optional label table, and data arrays in C order. */
export async function readGifti(path: string): Promise<GiftiImage> {
  checkInputFile(path, 'GIFTI');
  let xml: string;
  try {
    xml = await fs.promises.readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(path, 'a readable GIFTI file', code === 'ENOENT' ? 'no such file' : String(e), 'Check the path.');
  }
  if (xml.trim() === '') throw new FileFormatError(path, 'GIFTI XML', 'an empty file', 'The file was not written completely; re-save it.');
  return parseGifti(xml, path);
}

/** Picks a surface out of a parsed GIFTI: vertices `[N, 3]` (float32) and faces `[F, 3]` (int32). */
export function giftiToSurface(img: GiftiImage, file = '<gifti>'): Surface {
  const pts = img.darrays.find((d) => d.intent === 'NIFTI_INTENT_POINTSET');
  const tri = img.darrays.find((d) => d.intent === 'NIFTI_INTENT_TRIANGLE');
  if (!pts || !tri) {
    throw new FileFormatError(file, 'a GIFTI surface with NIFTI_INTENT_POINTSET and NIFTI_INTENT_TRIANGLE arrays',
      `intents [${img.darrays.map((d) => d.intent).join(', ')}]`, 'Use readGiftiData for per-vertex data files.');
  }
  if (pts.data.shape.length !== 2 || pts.data.shape[1] !== 3 || tri.data.shape.length !== 2 || tri.data.shape[1] !== 3) {
    throw new FileFormatError(file, 'points [N, 3] and triangles [F, 3]',
      `points [${pts.data.shape.join(', ')}] and triangles [${tri.data.shape.join(', ')}]`);
  }
  const vertices = pts.data.data instanceof Float32Array ? pts.data.data : Float32Array.from(pts.data.data as ArrayLike<number>);
  const faces = tri.data.data instanceof Int32Array ? tri.data.data : Int32Array.from(tri.data.data as ArrayLike<number>);
  const n = vertices.length / 3;
  for (let i = 0; i < faces.length; i++) {
    if (faces[i]! < 0 || faces[i]! >= n) {
      throw new FileFormatError(file, `triangle indices in [0, ${n})`, `index ${faces[i]} in triangle ${Math.floor(i / 3)}`);
    }
  }
  return { vertices, faces };
}

/** Reads a GIFTI surface (`.surf.gii`): vertices `[N, 3]` and faces `[F, 3]`. */
export async function readGiftiSurface(path: string): Promise<Surface> {
  return giftiToSurface(await readGifti(path), path);
}

/**
 * Reads per-vertex data (`.func.gii`, `.shape.gii`, `.label.gii`). One data array gives that array
 * (e.g. `[N]`); K arrays of the same shape and dtype give `[K, ...shape]` (e.g. `[T, N]` for a time series).
 */
export async function readGiftiData(path: string): Promise<NDArray> {
  const img = await readGifti(path);
  const das = img.darrays;
  if (das.length === 0) throw new FileFormatError(path, 'at least one GIFTI data array', 'none');
  if (das.length === 1) return das[0]!.data;
  const first = das[0]!.data;
  for (const [i, d] of das.entries()) {
    if (d.data.dtype !== first.dtype || d.data.shape.join() !== first.shape.join()) {
      throw new FileFormatError(path, `data arrays of one shape and dtype (array 0: ${first.dtype} [${first.shape.join(', ')}])`,
        `array ${i}: ${d.data.dtype} [${d.data.shape.join(', ')}]`, 'Use readGifti to read the arrays one by one.');
    }
  }
  const per = shapeSize(first.shape);
  const out = allocTyped(first.dtype, per * das.length);
  das.forEach((d, i) => (out as Uint8Array).set(d.data.data as unknown as Uint8Array, i * per));
  return { dtype: first.dtype, shape: [das.length, ...first.shape], data: out };
}

function cdata(s: string): string {
  return `<![CDATA[${s.replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
}

function metaXml(meta: Record<string, string>): string {
  const entries = Object.entries(meta);
  if (!entries.length) return '<MetaData/>';
  return `<MetaData>${entries.map(([k, v]) => `<MD><Name>${cdata(k)}</Name><Value>${cdata(v)}</Value></MD>`).join('')}</MetaData>`;
}

function encodeData(a: NDArray, encoding: GiftiEncoding): string {
  if (encoding === 'ASCII') {
    const d = a.data as ArrayLike<number | bigint>;
    const lastDim = a.shape.length > 1 ? a.shape[a.shape.length - 1]! : 1;
    const parts: string[] = [];
    for (let i = 0; i < d.length; i++) parts.push(String(d[i]) + ((i + 1) % lastDim === 0 ? '\n' : ' '));
    return parts.join('');
  }
  const bytes = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  return Buffer.from(encoding === 'GZipBase64Binary' ? zlib.deflateSync(bytes) : bytes).toString('base64');
}

/** Serialises a GIFTI image to XML (little-endian, row-major; GZipBase64Binary unless `encoding` says otherwise). */
export function encodeGifti(img: GiftiImage, encoding: GiftiEncoding = 'GZipBase64Binary'): string {
  const typeOf = Object.fromEntries(Object.entries(NIFTI_TYPES).map(([k, v]) => [v, k])) as Record<string, string>;
  const parts: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE GIFTI SYSTEM "http://www.nitrc.org/frs/download.php/115/gifti.dtd">\n',
    `<GIFTI Version="1.0" NumberOfDataArrays="${img.darrays.length}">\n${metaXml(img.meta)}\n`,
  ];
  if (img.labelTable?.length) {
    parts.push('<LabelTable>\n');
    for (const l of img.labelTable) {
      parts.push(`<Label Key="${l.key}" Red="${l.rgba[0]}" Green="${l.rgba[1]}" Blue="${l.rgba[2]}" Alpha="${l.rgba[3]}">${cdata(l.label)}</Label>\n`);
    }
    parts.push('</LabelTable>\n');
  } else {
    parts.push('<LabelTable/>\n');
  }
  img.darrays.forEach((da, i) => {
    const nt = typeOf[da.data.dtype];
    if (!nt) {
      throw new FileFormatError('<gifti>', `data arrays of ${Object.values(NIFTI_TYPES).join(', ')}`, `${da.data.dtype} in array ${i}`,
        'Convert the array (e.g. bool to uint8, float16 to float32) first.');
    }
    const dims = da.data.shape.length ? da.data.shape : [1];
    const attrs = [
      `Intent="${da.intent}"`, `DataType="${nt}"`, 'ArrayIndexingOrder="RowMajorOrder"', `Dimensionality="${dims.length}"`,
      ...dims.map((d, k) => `Dim${k}="${d}"`), `Encoding="${encoding}"`, 'Endian="LittleEndian"', 'ExternalFileName=""', 'ExternalFileOffset=""',
    ];
    parts.push(`<DataArray ${attrs.join(' ')}>\n${metaXml(da.meta)}\n`);
    if (da.coordsys) {
      const m = Array.from(da.coordsys.matrix);
      const rows = [0, 1, 2, 3].map((r) => m.slice(4 * r, 4 * r + 4).join(' ')).join('\n');
      parts.push(`<CoordinateSystemTransformMatrix><DataSpace>${cdata(da.coordsys.dataSpace)}</DataSpace>` +
        `<TransformedSpace>${cdata(da.coordsys.transformedSpace)}</TransformedSpace><MatrixData>${rows}</MatrixData>` +
        '</CoordinateSystemTransformMatrix>\n');
    }
    parts.push(`<Data>${encodeData(da.data, encoding)}</Data>\n</DataArray>\n`);
  });
  parts.push('</GIFTI>\n');
  return parts.join('');
}

/** Writes a GIFTI image atomically (little-endian, row-major, GZipBase64Binary by default). */
export async function writeGifti(path: string, img: GiftiImage, opts: { encoding?: GiftiEncoding } = {}): Promise<void> {
  const xml = encodeGifti(img, opts.encoding);
  await withAtomicFile(path, (tmp) => fs.promises.writeFile(tmp, xml, 'utf8'));
}

/** Writes a surface (vertices `[N, 3]`, faces `[F, 3]`) as a GIFTI `.surf.gii`, atomically. */
export async function writeGiftiSurface(path: string, surface: Surface, opts: { encoding?: GiftiEncoding; meta?: Record<string, string> } = {}): Promise<void> {
  const nv = surface.vertices.length / 3, nf = surface.faces.length / 3;
  if (!Number.isInteger(nv) || !Number.isInteger(nf)) {
    throw new FileFormatError(path, 'vertices [N, 3] and faces [F, 3]', `${surface.vertices.length} and ${surface.faces.length} values`);
  }
  const img: GiftiImage = {
    meta: opts.meta ?? {},
    darrays: [
      { intent: 'NIFTI_INTENT_POINTSET', meta: {}, data: { dtype: 'float32', shape: [nv, 3], data: Float32Array.from(surface.vertices) } },
      { intent: 'NIFTI_INTENT_TRIANGLE', meta: {}, data: { dtype: 'int32', shape: [nf, 3], data: Int32Array.from(surface.faces) } },
    ],
  };
  await writeGifti(path, img, { encoding: opts.encoding });
}
