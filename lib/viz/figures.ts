/**
 * The papers' figures as one call each. Every selector figure takes plain arrays (what the encoding model
 * returns) and a flat layout, and returns a `Flatmap` that `renderFlatmapPng` or `flatmapPlotly` draws.
 * Image grids and panels are PNGs; training curves are a Vega-Lite spec (for `display.vegaLite`).
 */
import { colormap, colorSquare, layerArgmaxEntropy, layerEntropyColor, type Rgb } from './colormaps.js';
import { type Flatmap, type FlatmapOptions, FlatmapError, flatmap, renderFlatmapPng } from './flatmap/index.js';
import type { FlatLayout } from './layout.js';
import { toMatrix, type MatrixInput } from '../core/matrix.js';
import { palettePng, type PalettePngOptions } from '../io/image.js';

/** Options shared by the selector figures (ROI outlines and labels, title, ...). */
export type FigureOptions = Pick<FlatmapOptions, 'rois' | 'outlines' | 'roiLabels' | 'title' | 'key' | 'underlay' | 'background' | 'hemi'>;

/** Reads `[N, k]` input given as a Matrix, rows, or flat data (k given, else inferred from the layout's N vertices). */
function matrix(a: MatrixInput, k: number | undefined, N: number, what: string): { data: Float32Array; k: number } {
  const m = toMatrix(a, { rows: N, cols: k, what });
  return { data: m.data, k: m.shape[1] };
}

/** Layer names short enough for the colour key's ticks, else their numbers. */
function tickNames(names: readonly string[] | undefined, L: number): [string, string] {
  const first = names?.[0], last = names?.[L - 1];
  return first && last && first.length <= 10 && last.length <= 10 ? [first, last] : ['1', String(L)];
}

/**
 * Layer selector `[N, L]` as the paper draws it: argmax layer on coolwarm (early blue, late red), darkened by the normalised
 * entropy of the weights, with a 2-D colour key. With `entropy: 'data'` (default) the entropy is stretched over the data's
 * 2nd..98th percentile when the median entropy is above 0.8, so that a model whose weights are still spread (short training)
 * shows its structure instead of a black map; the key's entropy ticks give the real values. 'absolute' always uses 0..1.
 */
export function layerSelectorFigure(layerWeights: MatrixInput, layout: FlatLayout,
  opts: FigureOptions & { nLayers?: number; layerNames?: readonly string[]; entropy?: 'data' | 'absolute' } = {}): Flatmap {
  const { nLayers, layerNames, entropy: stretch = 'data', ...figOpts } = opts;
  const N = layout.nLh + layout.nRh;
  const { data, k: L } = matrix(layerWeights, nLayers ?? layerNames?.length, N, 'layerSelectorFigure');
  const { argmax, entropy } = layerArgmaxEntropy(data, L);
  // 1. the entropy range that maps to full..no darkening
  let lo = 0, hi = 1;
  if (stretch === 'data') {
    const fin = Array.from(entropy).filter(Number.isFinite).sort((a, b) => a - b);
    if (fin.length) {
      const q = (f: number) => fin[Math.min(fin.length - 1, Math.max(0, Math.round(f * (fin.length - 1))))]!;
      if (q(0.5) > 0.8 && q(0.98) - q(0.02) > 1e-4) { lo = q(0.02); hi = q(0.98); }
    }
  }
  // 2. colours and key
  const rgb = new Float32Array(argmax.length * 3);
  for (let i = 0; i < argmax.length; i++) rgb.set(layerEntropyColor(argmax[i]!, L, (entropy[i]! - lo) / (hi - lo)), 3 * i);
  const f2 = (v: number) => v.toFixed(2);
  const map = flatmap({ shape: [argmax.length, 3], data: rgb }, layout, {
    ...figOpts, title: opts.title ?? 'Layer selector',
    key: opts.key ?? {
      kind: 'square', title: 'layer × entropy',
      color: (u, v) => layerEntropyColor(Math.min(L - 1, Math.floor(u * L)), L, 1 - v),
      xlabel: 'argmax layer', xticks: tickNames(layerNames, L), ylabel: 'entropy', yticks: [f2(hi), f2(lo)],
    },
  });
  map.selectors = { 'layer (argmax)': argmax.map((v) => v + 1), entropy };
  return map;
}

/** Space selector `[N, 2]` ((x, y) in [-1, 1] on the token grid) on a 2-D colour square. */
export function spaceSelectorFigure(xy: MatrixInput, layout: FlatLayout, opts: FigureOptions = {}): Flatmap {
  const N = layout.nLh + layout.nRh;
  const { data, k } = matrix(xy, 2, N, 'spaceSelectorFigure');
  if (k !== 2) throw new FlatmapError(`spaceSelectorFigure: expected [N, 2] positions, got [N, ${k}]`);
  const n = data.length / 2;
  const rgb = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) rgb.set(colorSquare(data[2 * i]!, data[2 * i + 1]!), 3 * i);
  const map = flatmap({ shape: [n, 3], data: rgb }, layout, {
    ...opts, title: opts.title ?? 'Space selector',
    key: opts.key ?? { kind: 'square', title: 'image position', color: (u, v) => colorSquare(2 * u - 1, 2 * v - 1), xlabel: 'x', ylabel: 'y', xticks: ['left', 'right'], yticks: ['bottom', 'top'] },
  });
  map.selectors = { 'space (x, y)': data };
  return map;
}

/** Scale selector `[N]` in [0, 1] (0 = local patch tokens, 1 = the global token) on PuOr. */
export function scaleSelectorFigure(s: ArrayLike<number>, layout: FlatLayout, opts: FigureOptions = {}): Flatmap {
  const map = flatmap(s, layout, { ...opts, channels: 1, cmap: 'PuOr', vmin: 0, vmax: 1, title: opts.title ?? 'Scale selector',
    key: opts.key ?? { kind: 'bar', cmap: 'PuOr', vmin: 0, vmax: 1, label: 'scale', tickLabels: ['local', 'global'] } });
  map.selectors = { scale: Float32Array.from(s) };
  return map;
}

/** R² (or noise-normalised score) `[N]` on Reds, from 0 (or `vmin`) to the maximum (or `vmax`). */
export function r2Figure(r2: ArrayLike<number>, layout: FlatLayout, opts: FigureOptions & { vmin?: number; vmax?: number; label?: string } = {}): Flatmap {
  let hi = 0;
  for (let i = 0; i < r2.length; i++) if (Number.isFinite(r2[i]!)) hi = Math.max(hi, r2[i]!);
  return flatmap(r2, layout, { ...opts, channels: 1, cmap: 'Reds', vmin: opts.vmin ?? 0, vmax: opts.vmax ?? (hi > 0 ? hi : 1), label: opts.label ?? 'R²', title: opts.title ?? 'R²' });
}

/** Channel clusters: integer labels `[N]` (0..19; negative or NaN = none) on tab20, with a legend. */
export function clusterFigure(labels: ArrayLike<number>, layout: FlatLayout, opts: FigureOptions & { names?: string[] } = {}): Flatmap {
  let K = 0;
  const v = new Float32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    v[i] = Number.isFinite(l) && l >= 0 ? l : NaN;
    if (Number.isFinite(v[i]!)) K = Math.max(K, v[i]! + 1);
  }
  if (K > 20) throw new FlatmapError(`clusterFigure: tab20 has 20 colours, the labels go up to ${K - 1}; merge clusters or pass fewer`);
  const names = opts.names ?? Array.from({ length: K }, (_, k) => `cluster ${k + 1}`);
  return flatmap(v, layout, { ...opts, channels: 1, cmap: 'tab20', categories: names, title: opts.title ?? 'Channel clusters' });
}

/** One flatmap per layer of that layer's selector weight `[N, L]` (viridis, shared limits 0 .. max weight). */
export function perLayerFigures(layerWeights: MatrixInput, layout: FlatLayout,
  opts: FigureOptions & { nLayers?: number; layerNames?: readonly string[] } = {}): Flatmap[] {
  const N = layout.nLh + layout.nRh;
  const { data, k: L } = matrix(layerWeights, opts.nLayers ?? opts.layerNames?.length, N, 'perLayerFigures');
  const n = data.length / L;
  let hi = 0;
  for (const w of data) if (Number.isFinite(w)) hi = Math.max(hi, w);
  return Array.from({ length: L }, (_, l) => {
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = data[i * L + l]!;
    const name = opts.layerNames?.[l] ?? `layer ${l + 1}`;
    return flatmap(w, layout, { ...opts, channels: 1, cmap: 'viridis', vmin: 0, vmax: hi || 1, label: 'weight', title: opts.title ? `${opts.title}: ${name}` : name });
  });
}

// ------------------------------------------------------------------------------------------ image grids

/** An image for grids and panels: decoded RGB(A) pixels (`data` `[H, W, 3|4]`) or encoded PNG/JPEG bytes. */
export type GridImage = { width: number; height: number; data: Uint8Array | Uint8ClampedArray } | Uint8Array;

/** Loads a GridImage into something canvas can draw. */
async function toDrawable(img: GridImage): Promise<import('canvas').Image | import('canvas').Canvas> {
  const { createCanvas, loadImage } = await import('canvas');
  if (img instanceof Uint8Array && !('width' in img)) return loadImage(Buffer.from(img.buffer, img.byteOffset, img.byteLength));
  const { width, height, data } = img as { width: number; height: number; data: Uint8Array };
  const ch = data.length / (width * height);
  if (ch !== 3 && ch !== 4) throw new FlatmapError(`imageGrid: an image of ${width} × ${height} has ${data.length} bytes, not RGB or RGBA`);
  const c = createCanvas(width, height);
  const ctx = c.getContext('2d');
  const id = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    id.data[4 * i] = data[ch * i]!; id.data[4 * i + 1] = data[ch * i + 1]!; id.data[4 * i + 2] = data[ch * i + 2]!; id.data[4 * i + 3] = ch === 4 ? data[ch * i + 3]! : 255;
  }
  ctx.putImageData(id, 0, 0);
  return c;
}

/** PNG bytes of a canvas; indexed (palette) when asked. */
async function encode(c: import('canvas').Canvas, palette?: boolean | PalettePngOptions): Promise<Uint8Array> {
  const b = c.toBuffer('image/png');
  const png = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return palette ? palettePng(png, palette === true ? {} : palette) : png;
}

/** A grid of images as PNG: `cols` per row, each fitted into a `cell`-pixel square (default 160), with an optional label under each and a title. */
export async function imageGrid(images: GridImage[], opts: { cols?: number; labels?: string[]; cell?: number; title?: string; rowLabels?: string[]; palette?: boolean | PalettePngOptions } = {}): Promise<Uint8Array> {
  if (!images.length) throw new FlatmapError('imageGrid: no images');
  const { createCanvas } = await import('canvas');
  const cols = Math.max(1, Math.min(opts.cols ?? Math.ceil(Math.sqrt(images.length)), images.length));
  const rows = Math.ceil(images.length / cols);
  const cell = opts.cell ?? 160, pad = Math.round(cell * 0.05);
  const font = Math.max(10, Math.round(cell / 12));
  const labelH = opts.labels ? Math.round(font * 1.6) : 0;
  const titleH = opts.title ? Math.round(font * 2.4) : 0;
  const left = opts.rowLabels ? Math.round(font * 6) : 0;
  const W = left + cols * (cell + pad) + pad, H = titleH + rows * (cell + pad + labelH) + pad;
  const canvas = createCanvas(W, H);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = '#222';
  if (opts.title) { ctx.font = `${Math.round(font * 1.2)}px sans-serif`; ctx.textAlign = 'center'; ctx.textBaseline = 'middle'; ctx.fillText(opts.title, W / 2, titleH / 2); }
  const drawables = await Promise.all(images.map(toDrawable));
  drawables.forEach((d, i) => {
    const r = Math.floor(i / cols), c = i % cols;
    const x = left + pad + c * (cell + pad), y = titleH + pad + r * (cell + pad + labelH);
    const s = Math.min(cell / d.width, cell / d.height);
    const w = d.width * s, h = d.height * s;
    ctx.drawImage(d, x + (cell - w) / 2, y + (cell - h) / 2, w, h);
    if (opts.labels?.[i]) {
      ctx.font = `${font}px sans-serif`; ctx.fillStyle = '#222'; ctx.textAlign = 'center'; ctx.textBaseline = 'top';
      ctx.fillText(opts.labels[i]!, x + cell / 2, y + cell + 2, cell);
    }
    if (c === 0 && opts.rowLabels?.[r]) {
      ctx.font = `bold ${font}px sans-serif`; ctx.fillStyle = '#222'; ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
      ctx.fillText(opts.rowLabels[r]!, left - 4, y + cell / 2, left - 6);
    }
  });
  return encode(canvas, opts.palette);
}

/** A panel of figures side by side as PNG: each flatmap is rendered at `width` × `height` (default 900 × 450); PNG bytes are placed as they are. */
export async function comparePanel(figures: (Flatmap | Uint8Array)[], opts: { labels?: string[]; width?: number; height?: number; cols?: number; title?: string; palette?: boolean | PalettePngOptions } = {}): Promise<Uint8Array> {
  if (!figures.length) throw new FlatmapError('comparePanel: no figures');
  const pngs = await Promise.all(figures.map((f) => (f instanceof Uint8Array ? f : renderFlatmapPng(f, { width: opts.width ?? 900, height: opts.height ?? 450 }))));
  const { createCanvas, loadImage } = await import('canvas');
  const imgs = await Promise.all(pngs.map((p) => loadImage(Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
  const cols = opts.cols ?? imgs.length, rows = Math.ceil(imgs.length / cols);
  const cw = Math.max(...imgs.map((i) => i.width)), ch = Math.max(...imgs.map((i) => i.height));
  const font = Math.max(12, Math.round(ch / 26));
  const labelH = opts.labels ? Math.round(font * 1.8) : 0, titleH = opts.title ? Math.round(font * 2.2) : 0;
  const canvas = createCanvas(cols * cw, titleH + rows * (ch + labelH));
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#222'; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
  if (opts.title) { ctx.font = `bold ${Math.round(font * 1.1)}px sans-serif`; ctx.fillText(opts.title, canvas.width / 2, titleH / 2); }
  imgs.forEach((img, i) => {
    const x = (i % cols) * cw, y = titleH + Math.floor(i / cols) * (ch + labelH);
    if (opts.labels?.[i]) { ctx.font = `bold ${font}px sans-serif`; ctx.fillStyle = '#222'; ctx.fillText(opts.labels[i]!, x + cw / 2, y + labelH / 2); }
    ctx.drawImage(img, x + (cw - img.width) / 2, y + labelH);
  });
  return encode(canvas, opts.palette);
}

// ---------------------------------------------------------------------------------------- training curves

/** Training history: rows `{ step, <metric>: value, ... }`, or columns `{ step: [...], <metric>: [...] }`. */
export type TrainingHistory = Record<string, number | string | undefined>[] | Record<string, ArrayLike<number>>;

/** Vega-Lite spec of training curves: one panel per metric (shared step axis, own y scale), split by `split` ('train' / 'val') when present. */
export function trainingCurves(history: TrainingHistory, opts: { x?: string; split?: string; title?: string; width?: number; height?: number } = {}): Record<string, unknown> {
  const xName = opts.x ?? 'step', splitName = opts.split ?? 'split';
  const rows: Record<string, number | string | undefined>[] = Array.isArray(history) ? history : (() => {
    const cols = history as Record<string, ArrayLike<number>>;
    const n = Math.max(0, ...Object.values(cols).map((c) => c.length));
    return Array.from({ length: n }, (_, i) => Object.fromEntries(Object.entries(cols).map(([k, c]) => [k, c[i]])));
  })();
  const values: { step: number; metric: string; value: number; split?: string }[] = [];
  rows.forEach((r, i) => {
    const step = typeof r[xName] === 'number' ? (r[xName] as number) : i;
    for (const [k, v] of Object.entries(r)) {
      if (k === xName || k === splitName || typeof v !== 'number' || !Number.isFinite(v)) continue;
      values.push({ step, metric: k, value: v, ...(typeof r[splitName] === 'string' ? { split: r[splitName] as string } : {}) });
    }
  });
  const hasSplit = values.some((v) => v.split !== undefined);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    ...(opts.title ? { title: opts.title } : {}),
    data: { values },
    facet: { column: { field: 'metric', type: 'nominal', title: null } },
    spec: {
      width: opts.width ?? 260, height: opts.height ?? 180,
      mark: { type: 'line', point: values.length < 60, strokeWidth: 1.8 },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: xName },
        y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
        color: hasSplit ? { field: 'split', type: 'nominal', title: null } : { field: 'metric', type: 'nominal', legend: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Colour of category `k` on tab20 (for legends and ROI colouring). */
export function categoryColor(k: number): Rgb {
  return colormap('tab20', k);
}

// ------------------------------------------------------------------------------------ across subjects

/** A value of one group (a backbone) in one ROI, summarised over subjects: mean, sample sd, min, max and the count. */
export interface SpreadRow {
  group: string;
  roi: string;
  mean: number;
  sd: number;
  min: number;
  max: number;
  /** Subjects that have the ROI. */
  n: number;
}

/**
 * Vega-Lite spec of a value per ROI for each group with its spread across subjects: the mean as a line through the ROIs
 * (`kind: 'line'`, the paper's hierarchy plot) or as grouped bars (`'bar'`), an error bar of ± one sample sd, and each
 * subject's own value as a small open circle (`values`). ROIs follow `roiOrder` (default: as given).
 */
export function roiSpreadChart(rows: SpreadRow[], opts: {
  kind: 'line' | 'bar'; yTitle: string; title?: string; roiOrder?: string[]; groupTitle?: string; yDomain?: [number, number];
  values?: { group: string; roi: string; value: number; subject?: string }[];
}): Record<string, unknown> {
  const order = opts.roiOrder ?? [...new Set(rows.map((r) => r.roi))];
  const sd = (r: SpreadRow) => (Number.isFinite(r.sd) ? r.sd : 0);
  const means = rows.filter((r) => Number.isFinite(r.mean)).map((r) => ({ ...r, lo: r.mean - sd(r), hi: r.mean + sd(r) }));
  const groups = [...new Set(rows.map((r) => r.group))];
  const x = { field: 'roi', type: 'nominal', sort: order, title: null, axis: { labelAngle: -45 } };
  const color = { field: 'group', type: 'nominal', title: opts.groupTitle ?? 'backbone', scale: { domain: groups } };
  const off = opts.kind === 'bar' || groups.length > 1 ? { xOffset: { field: 'group', sort: groups } } : {};
  const y = { type: 'quantitative', title: opts.yTitle, scale: opts.yDomain ? { domain: opts.yDomain, zero: false } : { zero: opts.kind === 'bar' } };
  const tooltip = [{ field: 'group' }, { field: 'roi' }, { field: 'mean', format: '.3f' }, { field: 'sd', format: '.3f' }, { field: 'min', format: '.3f' }, { field: 'max', format: '.3f' }, { field: 'n' }];
  const layer: Record<string, unknown>[] = opts.kind === 'bar'
    ? [{ mark: { type: 'bar', opacity: 0.8 }, encoding: { x, ...off, y: { ...y, field: 'mean' }, color, tooltip } }]
    : [
        { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y: { ...y, field: 'mean' }, color } },
        { mark: { type: 'point', filled: true, size: 60 }, encoding: { x, ...off, y: { ...y, field: 'mean' }, color, tooltip } },
      ];
  layer.push({ mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { x, ...off, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color: opts.kind === 'bar' ? { value: '#333' } : color } });
  if (opts.values?.length) {
    layer.push({
      data: { values: opts.values.filter((v) => Number.isFinite(v.value)) },
      mark: { type: 'point', filled: false, size: 22, opacity: 0.8 },
      encoding: { x, ...off, y: { ...y, field: 'value' }, color: opts.kind === 'bar' ? { value: '#333' } : color, tooltip: [{ field: 'group' }, { field: 'subject' }, { field: 'roi' }, { field: 'value', format: '.3f' }] },
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    ...(opts.title ? { title: opts.title } : {}),
    data: { values: means },
    width: Math.max(360, order.length * (opts.kind === 'bar' ? 12 * Math.max(2, groups.length) : 30)), height: 240,
    layer,
  };
}

/** Vega-Lite spec of correlation matrices side by side (one panel per `panel`): cells coloured by r in [-1, 1], with the value written in. */
export function correlationHeatmap(rows: { panel: string; a: string; b: string; r: number }[], opts: { title?: string; label?: string; order?: string[] } = {}): Record<string, unknown> {
  const order = opts.order ?? [...new Set(rows.flatMap((r) => [r.a, r.b]))];
  const cell = Math.max(36, Math.min(70, 360 / Math.max(1, order.length)));
  const values = rows.map((r) => ({ ...r, text: Number.isFinite(r.r) ? r.r.toFixed(2) : '—' }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    ...(opts.title ? { title: opts.title } : {}),
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: [...new Set(rows.map((r) => r.panel))] } },
    spec: {
      width: cell * order.length, height: cell * order.length,
      encoding: {
        x: { field: 'a', type: 'nominal', sort: order, title: null, axis: { labelAngle: -45 } },
        y: { field: 'b', type: 'nominal', sort: order, title: null },
      },
      layer: [
        { mark: 'rect', encoding: { color: { field: 'r', type: 'quantitative', title: opts.label ?? 'r', scale: { domain: [-1, 1], scheme: 'redblue', reverse: true } } } },
        { mark: { type: 'text', fontSize: 11 }, encoding: { text: { field: 'text' }, color: { condition: { test: 'abs(datum.r) > 0.6', value: 'white' }, value: 'black' } } },
      ],
    },
  };
}

// ---------------------------------------------------------------------------------------- truth against recovery

/** What a synthetic subject's truth says of each vertex `[N]`: depth (0..1), pRF centre (image units, y up; NaN without one), scale (0 local, 1 global). */
export interface TruthMaps { depth: ArrayLike<number>; prfX: ArrayLike<number>; prfY: ArrayLike<number>; scale: ArrayLike<number> }
/** What a fit recovered `[N]`: mean layer index scaled to 0..1, space selector `[N, 2]` (token grid, y down), scale selector. */
export interface RecoveredMaps { depth: ArrayLike<number>; space: MatrixInput; scale: ArrayLike<number> }

/**
 * Truth next to recovery, three pairs of flatmaps (true, recovered): depth against the mean layer index (coolwarm, 0..1),
 * pRF centre against the space selector (the same colour square; the truth's y is flipped to the grid's), scale (PuOr).
 */
export function truthVsRecoveredFigures(truth: TruthMaps, rec: RecoveredMaps, layout: FlatLayout, opts: FigureOptions = {}): Flatmap[] {
  const N = layout.nLh + layout.nRh;
  for (const [name, a] of [['truth.depth', truth.depth], ['truth.prfX', truth.prfX], ['truth.prfY', truth.prfY], ['truth.scale', truth.scale], ['recovered.depth', rec.depth], ['recovered.scale', rec.scale]] as const) {
    if (a.length !== N) throw new FlatmapError(`truthVsRecoveredFigures: ${name} has ${a.length} values, the layout ${N} vertices (lh ${layout.nLh} + rh ${layout.nRh})`);
  }
  const depthKey = { kind: 'bar' as const, cmap: 'coolwarm' as const, vmin: 0, vmax: 1, label: 'depth', tickLabels: ['early', 'late'] as [string, string] };
  const depth = (v: ArrayLike<number>, title: string) => flatmap(v, layout, { ...opts, channels: 1, cmap: 'coolwarm', vmin: 0, vmax: 1, title, key: depthKey });
  const grid = Float32Array.from({ length: 2 * N }, (_, k) => (k % 2 ? -truth.prfY[k >> 1]! : truth.prfX[k >> 1]!));
  const prf = spaceSelectorFigure(grid, layout, { ...opts, title: 'True pRF centre' });
  return [
    depth(truth.depth, 'True depth'), depth(rec.depth, 'Recovered: mean layer index'),
    prf, spaceSelectorFigure(rec.space, layout, { ...opts, title: 'Recovered: space selector' }),
    scaleSelectorFigure(truth.scale, layout, { ...opts, title: 'True scale' }), scaleSelectorFigure(rec.scale, layout, { ...opts, title: 'Recovered: scale selector' }),
  ];
}

/** Vega-Lite spec: true against recovered pRF centres, one panel per axis (x; y with the grid's y flipped to point up), points where `keep` (default: finite truth). */
export function prfScatterSpec(truth: { x: ArrayLike<number>; y: ArrayLike<number> }, space: MatrixInput, opts: { keep?: ArrayLike<boolean | number>; groups?: ArrayLike<string>; title?: string } = {}): Record<string, unknown> {
  const N = truth.x.length;
  const { data } = matrix(space, 2, N, 'prfScatterSpec');
  const values: { axis: string; truth: number; recovered: number; group?: string }[] = [];
  for (let i = 0; i < N; i++) {
    if (!(Number.isFinite(truth.x[i]!) && Number.isFinite(truth.y[i]!)) || (opts.keep && !opts.keep[i])) continue;
    const group = opts.groups?.[i];
    values.push({ axis: 'x', truth: truth.x[i]!, recovered: data[2 * i]!, ...(group ? { group } : {}) });
    values.push({ axis: 'y (up)', truth: truth.y[i]!, recovered: -data[2 * i + 1]!, ...(group ? { group } : {}) });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: opts.title ?? 'True against recovered pRF centre',
    data: { values },
    facet: { column: { field: 'axis', type: 'nominal', title: null } },
    spec: {
      width: 240, height: 240,
      layer: [
        { mark: { type: 'point', filled: true, size: 14, opacity: 0.6 }, encoding: {
          x: { field: 'truth', type: 'quantitative', title: 'true pRF centre', scale: { domain: [-1.2, 1.2] } },
          y: { field: 'recovered', type: 'quantitative', title: 'space selector', scale: { domain: [-1.2, 1.2] } },
          color: opts.groups ? { field: 'group', type: 'nominal', title: null } : { value: '#3b4cc0' },
        } },
        { data: { values: [{ a: -1.2, b: -1.2 }, { a: 1.2, b: 1.2 }] }, mark: { type: 'line', color: '#999', strokeDash: [4, 3] }, encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' } } },
      ],
    },
  };
}
