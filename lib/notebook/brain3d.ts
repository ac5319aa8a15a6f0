/**
 * The 3-D surface viewer of notebooks: both hemispheres drawn by NiiVue (`@niivue/niivue`, WebGL2, BSD-2-Clause) in a
 * text/html output, with an overlay menu, a colour key, a threshold, standard views and a hover/click readout of the
 * vertex index, its ROI and the overlay values.
 *
 * The contract is {@link Brain3dPayload}: plain JSON (typed arrays as little-endian bytes, deflated and base64-encoded,
 * each stored once in `blobs` and referred to by index), built by `lib/viz/brain3d.ts` (which knows about surfaces,
 * colours and ROIs) and read by the viewer script (`brain3d-viewer.ts`). NiiVue's UMD bundle and the viewer script
 * are inlined once per notebook, compressed (`scripts.ts`), as plotly.js is; a figure output holds only its payload.
 * Without WebGL2 the output shows one line saying so.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { MimeBundle } from './kernel-hook.js';
import { newDisplayId } from './kernel-hook.js';
import { BRAIN3D_VIEWER_JS } from './brain3d-viewer.js';
import { BRAINNET_META, inlineScriptLoader, whenScriptJs, type InlineScript } from './scripts.js';
import { scriptJson } from './script-text.js';

/** Element types of a {@link Brain3dBlob}. */
export type Brain3dDtype = 'u8' | 'u16' | 'u32' | 'i16' | 'i32' | 'f32';

/** A typed array in the payload: `length` elements of `dtype`, little-endian, zlib-deflated when `deflate`, base64. */
export interface Brain3dBlob {
  dtype: Brain3dDtype;
  length: number;
  b64: string;
  deflate?: boolean;
}

/** Vertex positions of one surface of one hemisphere, quantised: xyz = origin + step · (q + 32767) with q int16 `[n, 3]` (blob index). */
export interface Brain3dPositions {
  data: number;
  origin: [number, number, number];
  step: [number, number, number];
}

/** One hemisphere's mesh: faces `[F, 3]` (blob index), positions per surface, and the data vertex shown at each mesh vertex. */
export interface Brain3dHemi {
  name: 'lh' | 'rh';
  nVertices: number;
  /** Blob index of the faces, u16 or u32 `[F, 3]`. */
  faces: number;
  /** Per surface name (e.g. 'sphere', 'inflated'): positions, already placed so the hemispheres do not overlap. */
  positions: Record<string, Brain3dPositions>;
  /** Blob index of i32 `[nVertices]`: the data vertex (0..N-1, lh then rh) each mesh vertex shows, -1 for none. */
  dataIndex: number;
}

/** A colour key: a bar (CSS colour stops from vmin to vmax), a 2-D square (u8 RGB image, top row first), or a legend. */
export type Brain3dKey =
  | { kind: 'bar'; colors: string[]; vmin: number; vmax: number; label?: string; tickLabels?: [string, string] }
  | { kind: 'square'; size: number; rgb: number; title?: string; xlabel?: string; ylabel?: string; xticks?: [string, string]; yticks?: [string, string] }
  | { kind: 'legend'; entries: { label: string; color: string }[]; title?: string };

/** One overlay of the viewer's menu. */
export interface Brain3dOverlay {
  name: string;
  /** Blob index of u8 `[N, 4]`: each data vertex's colour (as on the flatmap) and 255, or alpha 0 where it has no value. */
  colors: number;
  key?: Brain3dKey;
  /** Values listed by the readout: name, width k and blob index of f32 `[N, k]`. */
  readout: { name: string; k: number; values: number }[];
  /** A threshold slider: vertices whose value (blob f32 `[N]`) is below it (or whose |value| is, for 'abs') show the underlay. */
  threshold?: { name: string; values: number; min: number; max: number; value: number; mode: 'above' | 'abs' };
}

/** A standard view: NiiVue's azimuth and elevation (degrees) and which hemispheres are shown. */
export interface Brain3dView {
  azimuth: number;
  elevation: number;
  hemis: ('lh' | 'rh')[];
}

/** Everything the viewer draws: meshes, overlays, ROI names, views. N = nLh + nRh data vertices. */
export interface Brain3dPayload {
  format: 'brainnet-brain3d-1';
  title?: string;
  nLh: number;
  nRh: number;
  hemis: Brain3dHemi[];
  /** Surface names, in menu order. */
  surfaces: string[];
  /** ROI of each data vertex: blob index of u16 `[N]` (0 = none, k = names[k - 1]). */
  rois?: { names: string[]; index: number };
  overlays: Brain3dOverlay[];
  views: Record<string, Brain3dView>;
  initial: { overlay: number; surface: string; view: string };
  /** Colour of the cortex where an overlay has no value (0..255). */
  underlay: [number, number, number];
  /** Every typed array, stored once. */
  blobs: Brain3dBlob[];
  /** Height of the view in CSS pixels (default 480). */
  height?: number;
}

const ARRAYS = { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, i16: Int16Array, i32: Int32Array, f32: Float32Array } as const;

/** Encodes numbers as a {@link Brain3dBlob} of `dtype` (deflated when that makes it smaller). */
export function encodeBrain3dBlob(values: ArrayLike<number>, dtype: Brain3dDtype): Brain3dBlob {
  const arr = new ARRAYS[dtype](values.length);
  arr.set(values);
  const raw = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
  const z = zlib.deflateSync(raw, { level: 9 });
  return z.length < raw.length ? { dtype, length: values.length, b64: z.toString('base64'), deflate: true } : { dtype, length: values.length, b64: raw.toString('base64') };
}

/** Decodes a {@link Brain3dBlob} (Node; the viewer does the same in the browser). */
export function decodeBrain3dBlob(b: Brain3dBlob): Float64Array {
  let bytes = Buffer.from(b.b64, 'base64');
  if (b.deflate) bytes = zlib.inflateSync(bytes);
  const T = ARRAYS[b.dtype];
  const n = bytes.byteLength / T.BYTES_PER_ELEMENT;
  if (n !== b.length) throw new Error(`brain3d payload: a ${b.dtype} blob holds ${n} elements, its header says ${b.length}`);
  const copy = new Uint8Array(bytes); // aligned, own buffer
  return Float64Array.from(new T(copy.buffer, 0, n));
}

/** Directory of the installed `@niivue/niivue` package (its exports map has no `require` entry, so it is found on the resolve paths). */
function niivueDir(): string {
  for (const dir of require.resolve.paths('@niivue/niivue') ?? []) {
    const d = path.join(dir, '@niivue', 'niivue');
    if (fs.existsSync(path.join(d, 'dist', 'niivue.umd.js'))) return d;
  }
  throw new Error('display.brain3d: @niivue/niivue is not installed (no dist/niivue.umd.js on the module paths); run `npm ci`');
}

/** Absolute path of NiiVue's UMD bundle (a classic script that defines window.niivue). */
export function niivueBundlePath(): string {
  return path.join(niivueDir(), 'dist', 'niivue.umd.js');
}

/** NiiVue's version, from its package.json. */
export function niivueVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(niivueDir(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The viewer bundle: NiiVue's UMD build followed by the viewer script, which defines `window.brainnetBrain3d`. */
export const BRAIN3D_SCRIPT: InlineScript = {
  name: 'brain3d',
  global: 'brainnetBrain3d',
  get banner() {
    return `NiiVue v${niivueVersion()} (@niivue/niivue, BSD-2-Clause, https://github.com/niivue/niivue) and the brainnet surface viewer`;
  },
  source: () => `${fs.readFileSync(niivueBundlePath(), 'utf8')}\n;\n${BRAIN3D_VIEWER_JS}`,
};

/** The output that loads the viewer (NiiVue and the viewer script, compressed), flagged in metadata so renderers can skip it. */
export function brain3dLoaderBundle(): MimeBundle {
  return {
    data: { 'text/html': inlineScriptLoader(BRAIN3D_SCRIPT), 'text/plain': '[3-D surface viewer (NiiVue) loaded]' },
    metadata: { [BRAINNET_META]: { brain3dBundle: true } },
  };
}

/** Options of {@link brain3dHtml}. */
export interface Brain3dDisplayOptions {
  /** Height of the view in CSS pixels (default: the payload's, else 480). */
  height?: number;
}

/** Checks the parts of a payload the viewer relies on; throws naming what is wrong. */
export function checkBrain3dPayload(p: Brain3dPayload): void {
  const bad = (what: string) => { throw new Error(`display.brain3d: ${what}; build the payload with brain3dFigure (brainnet/viz) or paperBrain3d`); };
  if (!p || p.format !== 'brainnet-brain3d-1') bad(`expected a payload with format 'brainnet-brain3d-1', found ${p && typeof p === 'object' ? `format ${JSON.stringify((p as { format?: unknown }).format)}` : typeof p}`);
  if (!Array.isArray(p.hemis) || !p.hemis.length) bad('the payload has no hemispheres');
  if (!Array.isArray(p.overlays)) bad('the payload has no overlay list');
  const nb = p.blobs?.length ?? 0;
  const ref = (i: number, what: string) => { if (!Number.isInteger(i) || i < 0 || i >= nb) bad(`${what} refers to blob ${i}, the payload has ${nb}`); };
  for (const h of p.hemis) {
    ref(h.faces, `${h.name} faces`); ref(h.dataIndex, `${h.name} dataIndex`);
    for (const s of p.surfaces) { if (!h.positions[s]) bad(`${h.name} has no positions for surface '${s}'`); ref(h.positions[s]!.data, `${h.name} ${s} positions`); }
  }
  for (const o of p.overlays) { ref(o.colors, `overlay '${o.name}' colours`); for (const r of o.readout) ref(r.values, `overlay '${o.name}' readout '${r.name}'`); }
}

/** HTML that mounts the viewer on `payload` in a fresh div (the viewer bundle must be loaded in the page, once). */
export function brain3dHtml(payload: Brain3dPayload, id: string = newDisplayId('brain3d'), opts: Brain3dDisplayOptions = {}): string {
  checkBrain3dPayload(payload);
  const height = Math.round(opts.height ?? payload.height ?? 480);
  return (
    // the placeholder stays only where the output's script does not run: an untrusted notebook
    `<div id="${id}" class="brainnet-brain3d" style="width:100%;min-height:${height}px;">[3-D view: it is drawn by this output's script, which runs in a trusted notebook (JupyterLab: File › Trust Notebook; or run the cell)]</div>\n` +
    `<script type="text/javascript">` +
    whenScriptJs({ name: BRAIN3D_SCRIPT.name, global: BRAIN3D_SCRIPT.global, elId: id, label: '3-D view', draw: `function(B,el){B.mount(el,${scriptJson({ ...payload, height })});}` }) +
    `</script>`
  );
}

/** The one-line text form of a view: meshes, data vertices, overlays and the size of its HTML. */
function summary(p: Brain3dPayload, html: string): string {
  const nv = p.hemis.reduce((s, h) => s + h.nVertices, 0);
  return `[3-D view: ${p.hemis.map((h) => h.name).join(' + ')}, ${nv} mesh vertices, ${p.nLh + p.nRh} data vertices, overlays: ${p.overlays.map((o) => o.name).join(', ')}; ${(Buffer.byteLength(html) / 1e3).toFixed(0)} kB]`;
}

/** MIME bundle of a 3-D view: text/html that mounts the viewer, a text summary, and metadata flagging it as a brain3d output. */
export function brain3dBundle(payload: Brain3dPayload, opts: Brain3dDisplayOptions = {}): MimeBundle {
  const html = brain3dHtml(payload, undefined, opts);
  return { data: { 'text/html': html, 'text/plain': summary(payload, html) }, metadata: { [BRAINNET_META]: { brain3d: true } } };
}
