/**
 * Describing a flatmap: per-vertex values over both hemispheres of a flat layout (see ../layout.ts) resolved to vertex
 * colours and a colour key (`flatmap()`, pure), where its parts go in an image (`flatmapGeometry`), and its ROI
 * boundaries and centroids. The renderers (raster.ts: PNG; plotly.ts: interactive Plotly) read this description.
 */
import type { FlatLayout, HemiName } from '../layout.js';
import { type ColormapName, type Rgb, colormap, isQualitative } from '../colormaps.js';

/** Per-vertex values: `[N]` scalar, `[N, 3]` RGB or `[N, 4]` RGBA (flat, or an `{ shape, data }` array, or rows); NaN = not shown. */
export type VertexValues = ArrayLike<number> | { shape: number[]; data: ArrayLike<number> } | ArrayLike<number>[];

/** The colour key drawn next to a map: a 1-D colour bar, a 2-D colour square, or a legend of categories. */
export type ColorKey =
  | { kind: 'bar'; cmap: ColormapName; vmin: number; vmax: number; label?: string; tickLabels?: [string, string] }
  | { kind: 'square'; color: (u: number, v: number) => Rgb; xlabel?: string; ylabel?: string; xticks?: [string, string]; yticks?: [string, string]; title?: string }
  | { kind: 'legend'; entries: { label: string; color: Rgb }[]; title?: string };

/** Options of `flatmap`. */
export interface FlatmapOptions {
  /** Colormap of scalar values; default viridis (tab20 draws integer labels as categories). */
  cmap?: ColormapName;
  /** Colour limits of scalar values; default the finite minimum and maximum. */
  vmin?: number;
  vmax?: number;
  /** Number of channels when the value array is flat and ambiguous (1, 3 or 4). */
  channels?: 1 | 3 | 4;
  /** Which hemisphere a one-hemisphere array covers when both have the same count. */
  hemi?: HemiName;
  /** ROI name of every vertex `[N]` (null, '', 'other' or 'Unknown' = none), for outlines, labels and hover. */
  rois?: ArrayLike<string | null | undefined>;
  /** Draw boundaries between ROI labels; default true when `rois` is given. */
  outlines?: boolean;
  /** Write ROI names at their centroids: true (all), a list of names, or false (default). */
  roiLabels?: boolean | string[];
  /** Title above the map. */
  title?: string;
  /** Colour key: default a colour bar for scalar maps, a legend for tab20 with `categories`, none for RGB. false = none. */
  key?: ColorKey | false;
  /** Colour-bar label of scalar maps. */
  label?: string;
  /** Names of the integer labels of a categorical (tab20) map, for its legend. */
  categories?: string[];
  /** Interpolation inside triangles: 'smooth' (Gouraud, default for continuous maps) or 'nearest' (default for categories). */
  shading?: 'smooth' | 'nearest';
  /** Colour of cortex where values are NaN; default light grey. */
  underlay?: Rgb;
  /** Figure background; default white. */
  background?: 'white' | 'transparent';
}

/** A resolved flatmap: what the renderers draw. */
export interface Flatmap {
  layout: FlatLayout;
  /** Vertex colours over the underlay, `[N, 3]` in [0, 1]. */
  colors: Float32Array;
  /** 1 where the vertex has a value, 0 where it is NaN (drawn as the underlay). [N] */
  shown: Uint8Array;
  /** The values as given, flat `[N, channels]` (NaN where not given). */
  values: Float32Array;
  channels: number;
  rois?: (string | null)[];
  outlines: boolean;
  roiLabels: boolean | string[];
  title?: string;
  key?: ColorKey;
  shading: 'smooth' | 'nearest';
  underlay: Rgb;
  background: 'white' | 'transparent';
  /** Extra per-vertex numbers shown on hover in the Plotly figure: name -> `[N]` or `[N, k]`. */
  selectors?: Record<string, ArrayLike<number>>;
}

/** A value array whose size matches no hemisphere of the layout, or another bad flatmap input. */
export class FlatmapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlatmapError';
  }
}

const NO_ROI = new Set(['', 'other', 'Unknown', 'unknown', 'none']);
/** Whether an ROI name means "no ROI". */
export function isNoRoi(name: string | null | undefined): boolean {
  return name === null || name === undefined || NO_ROI.has(name);
}

/** Flattens any accepted value form; returns the flat data and the channel count when it is explicit. */
function flatValues(values: VertexValues): { data: ArrayLike<number>; channels?: number } {
  if (values && typeof values === 'object' && 'shape' in values && 'data' in values && Array.isArray((values as { shape: unknown }).shape)) {
    const v = values as { shape: number[]; data: ArrayLike<number> };
    if (v.shape.length === 1) return { data: v.data, channels: 1 };
    if (v.shape.length === 2) return { data: v.data, channels: v.shape[1] };
    throw new FlatmapError(`flatmap: values must be [N], [N, 3] or [N, 4]; got shape [${v.shape.join(', ')}]`);
  }
  const arr = values as ArrayLike<unknown>;
  if (arr.length > 0 && typeof arr[0] === 'object' && arr[0] !== null) {
    const rows = values as ArrayLike<number>[];
    const c = rows[0]!.length;
    const out = new Float32Array(rows.length * c);
    for (let i = 0; i < rows.length; i++) {
      if (rows[i]!.length !== c) throw new FlatmapError(`flatmap: row ${i} has ${rows[i]!.length} values, row 0 has ${c}`);
      for (let k = 0; k < c; k++) out[i * c + k] = Number(rows[i]![k]);
    }
    return { data: out, channels: c };
  }
  return { data: values as ArrayLike<number> };
}

/** Data-vertex counts of the two hemispheres (a `FlatLayout` has them, and so does a 3-D figure). */
export type HemiCounts = Pick<FlatLayout, 'nLh' | 'nRh'>;

/** Expands values to `[N, C]` over both hemispheres (NaN for a hemisphere not covered); `what` names the caller in errors. */
export function resolveVertexValues(values: VertexValues, layout: HemiCounts, opts: { channels?: 1 | 3 | 4; hemi?: HemiName; what?: string } = {}): { data: Float32Array; channels: number } {
  const what = opts.what ?? 'flatmap';
  const { data, channels: explicit } = flatValues(values);
  const n = data.length, N = layout.nLh + layout.nRh;
  const cands = explicit ? [explicit] : opts.channels ? [opts.channels] : [1, 3, 4];
  for (const c of cands) {
    if (c !== 1 && c !== 3 && c !== 4) throw new FlatmapError(`${what}: values must have 1, 3 or 4 channels; got ${c}`);
    let hemi: HemiName | 'both' | undefined;
    if (n === N * c) hemi = 'both';
    else if (n === layout.nLh * c && n === layout.nRh * c) {
      if (!opts.hemi) throw new FlatmapError(`${what}: ${n / c} values match both hemispheres' counts (${layout.nLh}); say which with { hemi: 'lh' | 'rh' }`);
      hemi = opts.hemi;
    } else if (n === layout.nLh * c) hemi = 'lh';
    else if (n === layout.nRh * c) hemi = 'rh';
    if (!hemi) continue;
    const out = new Float32Array(N * c).fill(NaN);
    const off = hemi === 'rh' ? layout.nLh * c : 0;
    for (let i = 0; i < n; i++) out[off + i] = Number(data[i]);
    return { data: out, channels: c };
  }
  const per = explicit ?? opts.channels;
  throw new FlatmapError(`${what}: ${n} values${per && per > 1 ? ` (${n / per} vertices × ${per})` : ''} match neither hemisphere's vertex count ` +
    `(lh ${layout.nLh}, rh ${layout.nRh}) nor their sum (${N}), as scalar, RGB or RGBA. ` +
    'Pass one value per data vertex of the layout (lh then rh), or build the layout on the vertices the values cover (LayoutOptions.vertices).');
}

/** Finite minimum and maximum of the values (undefined when none). */
function finiteRange(a: ArrayLike<number>): [number, number] | undefined {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.length; i++) { const v = a[i]!; if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
  return Number.isFinite(lo) ? [lo, hi] : undefined;
}

/** Per-vertex values resolved to colours: what a flatmap and a 3-D view draw. */
export interface VertexColoring {
  /** Vertex colours over the underlay, `[N, 3]` in [0, 1]. */
  colors: Float32Array;
  /** 1 where the vertex has a value, 0 where it is NaN. [N] */
  shown: Uint8Array;
  /** The values as given, flat `[N, channels]` (NaN where not given). */
  values: Float32Array;
  channels: number;
  key?: ColorKey;
  underlay: Rgb;
}

/** Resolves per-vertex values (scalar through a colormap, or RGB/RGBA) over both hemispheres to colours and a colour key; `what` names the caller in errors. */
export function colorVertexValues(values: VertexValues, counts: HemiCounts, opts: FlatmapOptions & { what?: string } = {}): VertexColoring {
  const { data, channels } = resolveVertexValues(values, counts, opts);
  const N = counts.nLh + counts.nRh;
  const underlay = opts.underlay ?? [0.78, 0.78, 0.78];
  const cmap = opts.cmap ?? 'viridis';
  const { colors, shown, key: valueKey } = channels === 1 ? scalarColors(data, N, { ...opts, cmap, underlay }) : rgbColors(data, channels, N, underlay);
  const key = opts.key !== undefined ? (opts.key === false ? undefined : opts.key) : valueKey;
  return { colors, shown, values: data, channels, key, underlay };
}

/** Resolves per-vertex values (scalar through a colormap, or RGB/RGBA) to a drawable flatmap over `layout`. */
export function flatmap(values: VertexValues, layout: FlatLayout, opts: FlatmapOptions = {}): Flatmap {
  const { colors, shown, values: data, channels, key, underlay } = colorVertexValues(values, layout, opts);
  const N = layout.nLh + layout.nRh;
  const cmap = opts.cmap ?? 'viridis';
  let rois: (string | null)[] | undefined;
  if (opts.rois) {
    if (opts.rois.length !== N) throw new FlatmapError(`flatmap: rois has ${opts.rois.length} names, the layout has ${N} vertices (lh ${layout.nLh} + rh ${layout.nRh})`);
    rois = Array.from(opts.rois, (r) => (isNoRoi(r) ? null : (r as string)));
  }
  return {
    layout, colors, shown, values: data, channels, rois,
    outlines: opts.outlines ?? !!rois, roiLabels: opts.roiLabels ?? false, title: opts.title, key,
    shading: opts.shading ?? (channels === 1 && isQualitative(cmap) ? 'nearest' : 'smooth'),
    underlay, background: opts.background ?? 'white',
  };
}

/** Vertex colours `[N, 3]` in [0, 1], 1 where a vertex has a value `[N]`, and the colour key the values call for. */
interface VertexColors {
  colors: Float32Array;
  shown: Uint8Array;
  key?: ColorKey;
}

/** Vertex colours [N, 3] of scalar values [N] through `cmap` (NaN: the underlay), and their key: a colour bar, or a legend of `categories` for a qualitative map. */
function scalarColors(data: Float32Array, N: number, opts: FlatmapOptions & { cmap: ColormapName; underlay: Rgb }): VertexColors {
  const { cmap, underlay } = opts;
  const colors = new Float32Array(3 * N);
  const shown = new Uint8Array(N);
  const range = finiteRange(data);
  if (!range) console.warn('flatmap: every value is NaN; drawing the empty cortex');
  const qualitative = isQualitative(cmap);
  let vmin = opts.vmin ?? range?.[0] ?? 0, vmax = opts.vmax ?? range?.[1] ?? 1;
  if (vmax === vmin) { vmin -= 0.5; vmax += 0.5; }
  for (let i = 0; i < N; i++) {
    const v = data[i]!;
    if (!Number.isFinite(v)) { colors.set(underlay, 3 * i); continue; }
    colors.set(colormap(cmap, qualitative ? v : (v - vmin) / (vmax - vmin)), 3 * i);
    shown[i] = 1;
  }
  let key: ColorKey | undefined;
  if (qualitative) {
    if (opts.categories) key = { kind: 'legend', entries: opts.categories.map((label, k) => ({ label, color: colormap(cmap, k) })).filter((e) => e.label) };
  } else key = { kind: 'bar', cmap, vmin, vmax, label: opts.label };
  return { colors, shown, key };
}

/** Vertex colours [N, 3] of RGB or RGBA values [N, channels] (0..1, or 0..255 when larger), alpha-blended over the underlay; NaN: the underlay. */
function rgbColors(data: Float32Array, channels: number, N: number, underlay: Rgb): VertexColors {
  const colors = new Float32Array(3 * N);
  const shown = new Uint8Array(N);
  let scale = 1;
  const r = finiteRange(data);
  if (!r) console.warn('flatmap: every value is NaN; drawing the empty cortex');
  else if (r[1] > 1.0001) scale = 1 / 255; // 0..255 colours
  for (let i = 0; i < N; i++) {
    const c0 = data[i * channels]!, c1 = data[i * channels + 1]!, c2 = data[i * channels + 2]!;
    const a = channels === 4 ? data[i * channels + 3]! * scale : 1;
    if (!Number.isFinite(c0) || !Number.isFinite(c1) || !Number.isFinite(c2) || !Number.isFinite(a)) { colors.set(underlay, 3 * i); continue; }
    const al = Math.min(1, Math.max(0, a));
    for (let k = 0; k < 3; k++) {
      const c = Math.min(1, Math.max(0, [c0, c1, c2][k]! * scale));
      colors[3 * i + k] = al * c + (1 - al) * underlay[k]!;
    }
    shown[i] = al > 0 ? 1 : 0;
  }
  return { colors, shown };
}

/** Pixel geometry of a rendered flatmap: where the map and its key go, and the figure -> pixel transform. */
export interface FlatmapGeometry {
  width: number;
  height: number;
  /** Rectangle the map is fitted into (pixels). */
  map: { x: number; y: number; w: number; h: number };
  /** Rectangle of the colour key, if any. */
  key?: { x: number; y: number; w: number; h: number };
  /** Pixels per layout unit. */
  scale: number;
  /** Pixel (x right, y down) of a layout point (x, y up). */
  toPixel(x: number, y: number): [number, number];
  /** Base font size (pixels). */
  font: number;
}

/** Computes where a flatmap's parts go in a `width` × `height` image (the transform tests use to find ROI pixels). */
export function flatmapGeometry(map: Flatmap, size: { width: number; height: number }): FlatmapGeometry {
  const { width: W, height: H } = size;
  const font = Math.max(10, Math.round(Math.min(W, H * 2) / 48));
  const top = map.title ? Math.round(font * 2.4) : Math.round(font * 0.8);
  let area = { x: font, y: top, w: W - 2 * font, h: H - top - font };
  let key: FlatmapGeometry['key'];
  if (map.key?.kind === 'bar') {
    const kh = Math.round(font * 4.2);
    key = { x: area.x + area.w * 0.3, y: H - kh, w: area.w * 0.4, h: kh - font * 0.6 };
    area = { ...area, h: area.h - kh + font * 0.4 };
  } else if (map.key) {
    const kw = Math.round(Math.min(W * 0.26, Math.max(font * 11, H * 0.5)));
    key = { x: W - kw - font * 0.5, y: area.y, w: kw, h: area.h };
    area = { ...area, w: area.w - kw - font };
  }
  const b = map.layout.bounds;
  const bw = Math.max(b.xmax - b.xmin, 1e-9), bh = Math.max(b.ymax - b.ymin, 1e-9);
  const scale = Math.min(area.w / bw, area.h / bh);
  const ox = area.x + (area.w - bw * scale) / 2, oy = area.y + (area.h - bh * scale) / 2;
  return {
    width: W, height: H, map: area, key, scale, font,
    toPixel: (x, y) => [ox + (x - b.xmin) * scale, oy + (b.ymax - y) * scale],
  };
}

/** Height (pixels) at which a flatmap `width` pixels wide fills its area without empty bands above and below. */
export function flatmapHeight(map: Flatmap, width: number): number {
  let H = Math.round(width / 2);
  for (let it = 0; it < 6; it++) {
    const g = flatmapGeometry(map, { width, height: H });
    const b = map.layout.bounds;
    const spare = g.map.h - (b.ymax - b.ymin) * g.scale;
    if (Math.abs(spare) < 1) break;
    H = Math.max(Math.round(width / 6), Math.round(H - spare));
    if (map.key && map.key.kind !== 'bar') H = Math.max(H, Math.round(g.font * 16));
  }
  return H;
}

/** ROI boundary segments in layout coordinates, [S, 4] (x0, y0, x1, y1): edges between differing labels, cut at their midpoints. */
export function roiBoundarySegments(layout: FlatLayout, rois: (string | null)[]): Float32Array {
  const out: number[] = [];
  const { xy, faces } = layout;
  const mid = (p: number, q: number): [number, number] => [(xy[2 * p]! + xy[2 * q]!) / 2, (xy[2 * p + 1]! + xy[2 * q + 1]!) / 2];
  for (let t = 0; t + 2 < faces.length; t += 3) {
    const v = [faces[t]!, faces[t + 1]!, faces[t + 2]!];
    const l = v.map((i) => rois[i] ?? null);
    if (l[0] === l[1] && l[1] === l[2]) continue;
    const mids: [number, number][] = [];
    for (let e = 0; e < 3; e++) if (l[e] !== l[(e + 1) % 3]) mids.push(mid(v[e]!, v[(e + 1) % 3]!));
    if (mids.length === 2) out.push(mids[0]![0], mids[0]![1], mids[1]![0], mids[1]![1]);
    else if (mids.length === 3) {
      const cx = (xy[2 * v[0]!]! + xy[2 * v[1]!]! + xy[2 * v[2]!]!) / 3, cy = (xy[2 * v[0]! + 1]! + xy[2 * v[1]! + 1]! + xy[2 * v[2]! + 1]!) / 3;
      for (const m of mids) out.push(cx, cy, m[0], m[1]);
    }
  }
  return Float32Array.from(out);
}

/** Centroid (layout coordinates) of each ROI in each hemisphere: `{ name, hemi, x, y, count }`. */
export function roiCentroids(layout: FlatLayout, rois: (string | null)[]): { name: string; hemi: HemiName; x: number; y: number; count: number }[] {
  const acc = new Map<string, { name: string; hemi: HemiName; x: number; y: number; count: number }>();
  for (let i = 0; i < rois.length; i++) {
    const r = rois[i];
    if (!r) continue;
    const x = layout.xy[2 * i]!, y = layout.xy[2 * i + 1]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const hemi: HemiName = i < layout.nLh ? 'lh' : 'rh';
    const k = `${hemi}:${r}`;
    const e = acc.get(k) ?? { name: r, hemi, x: 0, y: 0, count: 0 };
    e.x += x; e.y += y; e.count++;
    acc.set(k, e);
  }
  return [...acc.values()].map((e) => ({ ...e, x: e.x / e.count, y: e.y / e.count }));
}
