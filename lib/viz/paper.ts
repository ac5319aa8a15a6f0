/**
 * The paper's figures ("Brain Decodes Deep Nets", Yang, Gee & Shi, CVPR 2024) as one call each, from a fitted
 * encoder given as a plain object (what `fitEncoder` returns, or arrays from anywhere) and a flat layout.
 * Each call returns a `PaperFigure`: the PNG bytes, and the flatmap(s) behind it, so that `paperPlotly` can make the
 * same figure interactive in 2-D and `paperBrain3d` can put it on the cortex in 3-D (`display.brain3d`), in the same
 * colours. `writePaperFigures` saves them as `<name>.png`.
 */
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { palettePng } from '../io/image.js';
import { ROI_FILES } from '../data/rois.js';
import { toMatrix, type MatrixInput } from '../core/matrix.js';
import { meanFinite, summariseByRoi } from '../encoding/metrics.js';
import { layerSelectorFigure, spaceSelectorFigure, scaleSelectorFigure, r2Figure, clusterFigure, perLayerFigures, imageGrid, comparePanel, truthVsRecoveredFigures, prfScatterSpec, type TruthMaps,
  trainingCurves, roiSpreadChart, correlationHeatmap, type GridImage, type TrainingHistory, type SpreadRow } from './figures.js';
import { type Flatmap, FlatmapError, flatmap, renderFlatmapPng, flatmapPlotly2d, isNoRoi, type PlotlyFlatmap } from './flatmap/index.js';
import type { FlatLayout } from './layout.js';
import { brain3dFigure, type Brain3dOptions, type Brain3dOverlayInput, type BrainSurfaces } from './brain3d.js';
import type { Brain3dPayload } from '../notebook/brain3d.js';

/** The parts of a fitted encoder (`fitEncoder`'s result) that the paper's figures read. N = nLh + nRh vertices, L layers. */
export interface EncoderFitLike {
  /** Selectors: layer `[N, L]` softmax weights, space `[N, 2]` (x, y) in [-1, 1], scale `[N]` (0 local, 1 global). */
  selectors: { layer: MatrixInput; space: MatrixInput; scale: ArrayLike<number> };
  /** Validation R² per vertex `[N]`. */
  r2: ArrayLike<number>;
  /** Noise-normalised Algonauts score per vertex `[N]` (0..100), when the noise ceiling is known. */
  score?: ArrayLike<number>;
  /** Validation Pearson r per vertex `[N]`. */
  pearson?: ArrayLike<number>;
  /** Channel cluster label per vertex `[N]` (0..19). */
  clusters?: ArrayLike<number>;
  /** Training history, one row per logged step: `{ step, epoch, loss, valR2? }`. */
  history?: TrainingHistory;
  /** Ridge baseline: best layer per vertex `[N]` (0-based), its validation R² `[N]`, and R² of every layer `[L, N]`. */
  ridge?: { bestLayer: ArrayLike<number>; r2: ArrayLike<number>; r2ByLayer?: ArrayLike<number> };
  /** Layer names `[L]`. */
  layers?: readonly string[];
  /** Image whose top channels (the channels that drive an ROI most) are shown in colour, for training image `imageIndex`. */
  topChannelImage?(imageIndex: number, roi: string): Promise<GridImage> | GridImage;
}

/** Options shared by the paper's figures. */
export interface PaperFigureOptions {
  /** ROI name per vertex `[N]` (null or 'Unknown' = none), for outlines, labels and hover. */
  rois?: ArrayLike<string | null | undefined>;
  /** Write ROI names on the map: true (all), a list, or false (default true when `rois` is given). */
  roiLabels?: boolean | string[];
  /** PNG width in pixels (default 1400). */
  width?: number;
  /** Title override. */
  title?: string;
  /**
   * PNG encoding: 'palette' (default) is an indexed PNG of at most 256 colours (`palettePng`), 3–4× smaller with no
   * visible change on flatmaps, so notebooks that show many figures stay light; 'full' is node-canvas's 32-bit PNG.
   */
  png?: 'palette' | 'full';
}

/** One paper figure: a name (the PNG's file name), its PNG bytes, and the flatmap(s) it draws. */
export interface PaperFigure {
  name: string;
  title: string;
  png: Uint8Array;
  /** The flatmap, for `paperPlotly` (absent for image grids and curves). */
  map?: Flatmap;
  /** Per-layer figures: one flatmap per layer. */
  maps?: Flatmap[];
  /** Training curves: the Vega-Lite spec (for `display.vegaLite`). */
  vegaLite?: Record<string, unknown>;
}

const vertexCount = (layout: FlatLayout) => layout.nLh + layout.nRh;

function roiOpts(layout: FlatLayout, opts: PaperFigureOptions): { rois?: string[]; outlines?: boolean; roiLabels?: boolean | string[] } {
  if (!opts.rois) return {};
  const N = vertexCount(layout);
  if (opts.rois.length !== N) throw new FlatmapError(`paper figures: rois has ${opts.rois.length} names, the layout has ${N} vertices (lh ${layout.nLh} + rh ${layout.nRh})`);
  const rois = Array.from(opts.rois, (r) => (isNoRoi(r) ? '' : (r as string)));
  return { rois, outlines: true, roiLabels: opts.roiLabels ?? true };
}

function checkLength(a: ArrayLike<number> | undefined, N: number, what: string): void {
  if (!a) throw new FlatmapError(`paper figures: the fit has no ${what}; pass an object with ${what} [N]`);
  if (a.length !== N) throw new FlatmapError(`paper figures: ${what} has ${a.length} values, the layout has ${N} vertices (lh + rh); fit and layout must cover the same vertices`);
}

const layerNames = (fit: EncoderFitLike) => (fit.layers?.length ? [...fit.layers] : undefined);

/** Whether figures are encoded as palette PNGs (the default). */
const palette = (opts: { png?: 'palette' | 'full' }) => (opts.png ?? 'palette') === 'palette';

async function single(name: string, map: Flatmap, opts: PaperFigureOptions): Promise<PaperFigure> {
  return { name, title: map.title ?? name, png: await renderFlatmapPng(map, { width: opts.width ?? 1400, palette: palette(opts) }), map };
}

/** Layer selector: argmax layer on coolwarm (early blue, late red), darkened by normalised entropy, with a 2-D colour key. */
export async function paperLayerSelector(fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions = {}): Promise<PaperFigure> {
  const names = layerNames(fit);
  const map = layerSelectorFigure(fit.selectors.layer, layout, { ...roiOpts(layout, opts), title: opts.title ?? 'Layer selector', layerNames: names });
  return single('layer_selector', map, opts);
}

/** Space selector: the image position each vertex reads, on a 2-D colour square. */
export async function paperSpaceSelector(fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions = {}): Promise<PaperFigure> {
  const map = spaceSelectorFigure(fit.selectors.space, layout, { ...roiOpts(layout, opts), title: opts.title ?? 'Space selector' });
  return single('space_selector', map, opts);
}

/** Scale selector on PuOr, from local patch tokens (0) to the global token (1). */
export async function paperScaleSelector(fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions = {}): Promise<PaperFigure> {
  checkLength(fit.selectors.scale, vertexCount(layout), 'selectors.scale');
  const map = scaleSelectorFigure(fit.selectors.scale, layout, { ...roiOpts(layout, opts), title: opts.title ?? 'Scale selector' });
  return single('scale_selector', map, opts);
}

/** Validation R² on Reds (or the noise-normalised score with `metric: 'score'`). */
export async function paperR2(fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions & { metric?: 'r2' | 'score'; vmax?: number } = {}): Promise<PaperFigure> {
  const useScore = opts.metric === 'score';
  const v = useScore ? fit.score : fit.r2;
  checkLength(v, vertexCount(layout), useScore ? 'score' : 'r2');
  const map = r2Figure(v!, layout, { ...roiOpts(layout, opts), vmax: opts.vmax, label: useScore ? 'score (% of noise ceiling)' : 'R²',
    title: opts.title ?? (useScore ? 'Noise-normalised score' : 'Validation R²') });
  return single(useScore ? 'score' : 'r2', map, opts);
}

/** The channel clusters (vertex weight vectors grouped into up to 20 clusters) on tab20. */
export async function paperClusters(fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions = {}): Promise<PaperFigure> {
  checkLength(fit.clusters, vertexCount(layout), 'clusters');
  const map = clusterFigure(fit.clusters!, layout, { ...roiOpts(layout, opts), title: opts.title ?? 'Channel clusters' });
  return single('channel_clusters', map, opts);
}

/** One flatmap per layer of that layer's selector weight (viridis, shared limits), as a grid of `cols` maps (default 3). */
export async function paperPerLayer(fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions & { cols?: number } = {}): Promise<PaperFigure> {
  const names = layerNames(fit);
  const maps = perLayerFigures(fit.selectors.layer, layout, { ...roiOpts(layout, opts), roiLabels: false, layerNames: names });
  const cols = Math.min(maps.length, opts.cols ?? 3);
  const w = Math.round((opts.width ?? 1800) / cols);
  const png = await comparePanel(maps, { cols, width: w, height: Math.round(w * 0.62), title: opts.title ?? 'Layer selector weight, per layer', palette: palette(opts) });
  return { name: 'per_layer', title: opts.title ?? 'Layer selector weight, per layer', png, maps };
}

/** Top-channel images of one training image: for each ROI, the image coloured by the channels that drive that ROI most (`fit.topChannelImage`). */
export async function paperTopChannels(fit: EncoderFitLike, imageIndex: number, rois: string[], opts: { original?: GridImage; cell?: number; title?: string; png?: 'palette' | 'full' } = {}): Promise<PaperFigure> {
  if (!fit.topChannelImage) throw new FlatmapError('paperTopChannels: the fit has no topChannelImage(imageIndex, roi)');
  if (!rois.length) throw new FlatmapError('paperTopChannels: no ROIs given');
  const images: GridImage[] = [], labels: string[] = [];
  if (opts.original) { images.push(opts.original); labels.push(`image ${imageIndex}`); }
  for (const r of rois) { images.push(await fit.topChannelImage(imageIndex, r)); labels.push(r); }
  const title = opts.title ?? `Top channels per ROI, training image ${imageIndex}`;
  // photographs: dithered, so that smooth shading does not band
  const png = await imageGrid(images, { cols: images.length, labels, cell: opts.cell ?? 200, title, palette: palette(opts) && { dither: 1 } });
  return { name: `top_channels_${imageIndex}`, title, png };
}

/** Training curves (loss and validation R² against step) as a Vega-Lite spec and a PNG. */
export async function paperTrainingCurves(fit: EncoderFitLike | TrainingHistory, opts: { title?: string; png?: 'palette' | 'full' } = {}): Promise<PaperFigure> {
  const history = (Array.isArray(fit) || !('selectors' in fit) ? fit : fit.history) as TrainingHistory | undefined;
  if (!history) throw new FlatmapError('paperTrainingCurves: the fit has no history');
  const spec = trainingCurves(stripNonMetrics(history), { title: opts.title ?? 'Training' });
  const { renderVegaLite } = await import('../notebook/display.js');
  const r = await renderVegaLite(spec, { format: 'png', scale: 2 });
  const png = palette(opts) ? await palettePng(r.data as Uint8Array) : (r.data as Uint8Array);
  return { name: 'training_curves', title: opts.title ?? 'Training', png, vegaLite: spec };
}

/** Drops bookkeeping columns (epoch) so that each remaining numeric column becomes one panel. */
function stripNonMetrics(h: TrainingHistory): TrainingHistory {
  if (!Array.isArray(h)) { const { epoch: _e, ...rest } = h as Record<string, ArrayLike<number>>; return rest; }
  return h.map(({ epoch: _e, ...rest }) => rest);
}

/** The model next to the ridge baseline: R² of both on one scale, and the model's layer selector next to the ridge's best layer per vertex. */
export async function paperModelVsRidge(fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions = {}): Promise<PaperFigure> {
  if (!fit.ridge) throw new FlatmapError('paperModelVsRidge: the fit has no ridge baseline (fit with ridge: true)');
  const N = vertexCount(layout);
  checkLength(fit.r2, N, 'r2');
  checkLength(fit.ridge.r2, N, 'ridge.r2');
  checkLength(fit.ridge.bestLayer, N, 'ridge.bestLayer');
  const ro = { ...roiOpts(layout, opts), roiLabels: false as const };
  let hi = 0;
  for (const a of [fit.r2, fit.ridge.r2]) for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]!)) hi = Math.max(hi, a[i]!);
  const names = layerNames(fit);
  const L = toMatrix(fit.selectors.layer, { rows: N, cols: names?.length, what: 'paperModelVsRidge: selectors.layer' }).shape[1];
  // the ridge's choice as one-hot layer weights: full saturation (zero entropy), same colours as the model's map
  const oneHot = new Float32Array(N * L);
  for (let i = 0; i < N; i++) { const b = Math.round(Number(fit.ridge.bestLayer[i])); if (b >= 0 && b < L) oneHot[i * L + b] = 1; else for (let l = 0; l < L; l++) oneHot[i * L + l] = NaN; }
  const maps = [
    r2Figure(fit.r2, layout, { ...ro, vmax: hi || 1, title: 'Factorized encoder: R²' }),
    r2Figure(fit.ridge.r2, layout, { ...ro, vmax: hi || 1, title: 'Ridge baseline: R²' }),
    layerSelectorFigure(fit.selectors.layer, layout, { ...ro, layerNames: names, title: 'Encoder: layer selector' }),
    layerSelectorFigure({ shape: [N, L], data: oneHot }, layout, { ...ro, layerNames: names, entropy: 'absolute', title: 'Ridge: best layer per vertex' }),
  ];
  const w = Math.round((opts.width ?? 1800) / 2);
  const title = opts.title ?? `Model vs ridge baseline (mean R² ${meanFinite(fit.r2).toFixed(3)} vs ${meanFinite(fit.ridge.r2).toFixed(3)})`;
  const png = await comparePanel(maps, { cols: 2, width: w, height: Math.round(w * 0.55), title, palette: palette(opts) });
  return { name: 'model_vs_ridge', title, png, maps };
}

/** Every paper figure the fit has data for, in paper order (layer, space, scale, R², clusters, per-layer, ridge, curves). */
export async function paperFigures(fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions = {}): Promise<PaperFigure[]> {
  // check the per-vertex arrays before drawing anything
  const N = vertexCount(layout);
  checkLength(fit.r2, N, 'r2');
  checkLength(fit.selectors.scale, N, 'selectors.scale');
  if (fit.clusters) checkLength(fit.clusters, N, 'clusters');
  const out: PaperFigure[] = [
    await paperLayerSelector(fit, layout, opts),
    await paperSpaceSelector(fit, layout, opts),
    await paperScaleSelector(fit, layout, opts),
    await paperR2(fit, layout, opts),
  ];
  if (fit.clusters) out.push(await paperClusters(fit, layout, opts));
  out.push(await paperPerLayer(fit, layout, opts));
  if (fit.ridge) out.push(await paperModelVsRidge(fit, layout, opts));
  if (fit.history && (Array.isArray(fit.history) ? fit.history.length : true)) out.push(await paperTrainingCurves(fit, { png: opts.png }));
  return out;
}

/** Interactive version of a flatmap figure (2-D Plotly, no WebGL): hover shows vertex index, ROI, value and selectors. */
export async function paperPlotly(fig: PaperFigure | Flatmap, opts: { height?: number; selectors?: Record<string, ArrayLike<number>> } = {}): Promise<PlotlyFlatmap & { config: Record<string, unknown> }> {
  const map = 'png' in fig ? fig.map : fig;
  if (!map) throw new FlatmapError(`paperPlotly: figure '${(fig as PaperFigure).name}' is not a single flatmap`);
  return flatmapPlotly2d(map, { height: opts.height ?? 560, hover: opts.selectors ? { selectors: opts.selectors } : undefined });
}

/**
 * The same figure(s) on the cortex in 3-D, for `display.brain3d`: every flatmap of the given figures (a selector,
 * R², clusters; each map of a panel) becomes one overlay of the viewer's menu, in the flatmap's colours with its key and
 * hover values; other overlays (values, or a region such as `{ name: 'FFA', region: ['FFA-1', 'FFA-2'] }`) can join them. `surfaces` come from `subjectSurfaces(subject)` (the sphere, and white, pial or inflated when the subject
 * has them). RGB maps (layer and space selectors) and clusters get a threshold slider on `thresholdBy` (e.g. R²).
 */
export function paperBrain3d(figs: PaperFigure | Brain3dOverlayInput | (PaperFigure | Brain3dOverlayInput)[], surfaces: BrainSurfaces,
  opts: Brain3dOptions = {}): Brain3dPayload {
  const maps: Brain3dOverlayInput[] = [];
  for (const f of Array.isArray(figs) ? figs : [figs]) {
    if (!('png' in f)) { maps.push(f); continue; }
    const ms = f.map ? [f.map] : f.maps ?? [];
    if (!ms.length) throw new FlatmapError(`paperBrain3d: figure '${f.name}' has no flatmap (image grids and curves have none)`);
    maps.push(...ms);
  }
  return brain3dFigure(surfaces, maps, opts);
}

/** Writes each figure's PNG to `outDir/<prefix><name>.png` (atomically); returns the paths. */
export async function writePaperFigures(figs: PaperFigure | PaperFigure[], outDir: string, prefix = ''): Promise<string[]> {
  const fs = await import('node:fs');
  fs.mkdirSync(outDir, { recursive: true });
  const paths: string[] = [];
  for (const f of Array.isArray(figs) ? figs : [figs]) {
    const p = path.join(outDir, `${prefix}${f.name}.png`);
    await writeFileAtomic(p, f.png);
    paths.push(p);
  }
  return paths;
}

// ------------------------------------------------------------------------------------------------- ROIs

/** Algonauts label files whose ROIs name each vertex (the 'streams' file is coarser and overlaps them, so it is left out). */
const ROI_LABEL_FILES = ['prf-visualrois', 'floc-faces', 'floc-bodies', 'floc-places', 'floc-words'];

/** One ROI name per vertex `[N]` (lh then rh; '' = none) from a subject's ROI masks; early visual areas first, then category patches. */
export async function subjectRoiLabels(subject: { vertexCount: { lh: number; rh: number }; roiNames(): string[]; roiMask(name: string): Promise<{ lh: Uint8Array; rh: Uint8Array }> }): Promise<string[]> {
  const nLh = subject.vertexCount.lh, N = nLh + subject.vertexCount.rh;
  const out = new Array<string>(N).fill('');
  const available = new Set(subject.roiNames());
  for (const file of ROI_LABEL_FILES) {
    for (const name of ROI_FILES[file]!.slice(1)) {
      if (!available.has(name)) continue;
      const m = await subject.roiMask(name);
      for (let i = 0; i < nLh; i++) if (m.lh[i] && !out[i]) out[i] = name;
      for (let i = 0; i < N - nLh; i++) if (m.rh[i] && !out[nLh + i]) out[nLh + i] = name;
    }
  }
  return out;
}

/** Coarse group of an ROI name: 'V1'..'hV4' (dorsal/ventral merged), or the category patch itself. */
export function roiGroup(name: string): string {
  const m = /^(V[123])[vd]$/.exec(name);
  return m ? m[1]! : name;
}

/**
 * One row per ROI (labels grouped by `roiGroup`, in first-seen order): its vertex count and the mean of each metric over its
 * vertices (NaN left out), from {@link summariseByRoi}.
 */
export function roiSummaryRows(values: Record<string, ArrayLike<number>>, rois: ArrayLike<string | null | undefined>, opts: { group?: (name: string) => string } = {}): { roi: string; n: number; [metric: string]: number | string }[] {
  const group = opts.group ?? roiGroup;
  const names = Object.keys(values);
  for (const k of names) if (values[k]!.length !== rois.length) throw new FlatmapError(`roiSummaryRows: '${k}' has ${values[k]!.length} values, rois has ${rois.length}`);
  const byRoi = { group: (r: string) => (isNoRoi(r) ? null : group(r)) };
  const summaries = names.map((k) => summariseByRoi(values[k]!, rois, byRoi));
  const order = summaries[0] ?? summariseByRoi(new Float32Array(rois.length), rois, byRoi);
  return order.map((s, r) => ({ roi: s.roi, n: s.vertices, ...Object.fromEntries(names.map((k, j) => [k, summaries[j]![r]!.mean])) }));
}

/** A Markdown table of rows (numbers to `digits` decimals, default 3). */
export function markdownTable(rows: Record<string, number | string>[], digits = 3): string {
  if (!rows.length) return '_(no rows)_';
  const cols = Object.keys(rows[0]!);
  const cell = (v: number | string | undefined) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : Number.isFinite(v) ? v.toFixed(digits) : '—') : String(v ?? ''));
  return [`| ${cols.join(' | ')} |`, `| ${cols.map((c, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(' | ')} |`)].join('\n');
}

// ------------------------------------------------------------------------------------------- backbones

/** Several backbones side by side: their layer-selector maps (one row) and scale-selector maps (one row), each a PNG panel. */
export async function paperCompareBackbones(fits: Record<string, EncoderFitLike>, layout: FlatLayout, opts: PaperFigureOptions = {}): Promise<PaperFigure[]> {
  const names = Object.keys(fits);
  if (!names.length) throw new FlatmapError('paperCompareBackbones: no fits given');
  const ro = { ...roiOpts(layout, opts), roiLabels: false as const };
  const layerMaps = names.map((n) => layerSelectorFigure(fits[n]!.selectors.layer, layout, { ...ro, layerNames: layerNames(fits[n]!), title: `${n}: layer selector` }));
  const scaleMaps = names.map((n) => { checkLength(fits[n]!.selectors.scale, vertexCount(layout), `${n} selectors.scale`); return scaleSelectorFigure(fits[n]!.selectors.scale, layout, { ...ro, title: `${n}: scale selector` }); });
  const w = Math.round((opts.width ?? 1800) / Math.min(names.length, 3));
  const h = Math.round(w * 0.5);
  return [
    { name: 'compare_layer_selector', title: 'Layer selector by backbone', png: await comparePanel(layerMaps, { cols: Math.min(names.length, 3), width: w, height: h, title: 'Layer selector by backbone', palette: palette(opts) }), maps: layerMaps },
    { name: 'compare_scale_selector', title: 'Scale selector by backbone', png: await comparePanel(scaleMaps, { cols: Math.min(names.length, 3), width: w, height: h, title: 'Scale selector by backbone', palette: palette(opts) }), maps: scaleMaps },
  ];
}

/** ROI-wise scores of several backbones: rows `{ roi, <backbone>: mean }` and a grouped bar chart (Vega-Lite spec, and its PNG). */
export async function paperRoiScores(fits: Record<string, EncoderFitLike>, rois: ArrayLike<string | null | undefined>, opts: { metric?: 'r2' | 'score'; title?: string; png?: 'palette' | 'full' } = {}): Promise<PaperFigure & { rows: { roi: string; n: number; [k: string]: number | string }[] }> {
  const metric = opts.metric ?? 'r2';
  const values: Record<string, ArrayLike<number>> = {};
  for (const [n, f] of Object.entries(fits)) {
    const v = metric === 'score' ? f.score : f.r2;
    if (!v) throw new FlatmapError(`paperRoiScores: backbone '${n}' has no ${metric}`);
    values[n] = v;
  }
  const rows = roiSummaryRows(values, rois);
  const label = metric === 'score' ? 'score (% of noise ceiling)' : 'mean validation R²';
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: opts.title ?? `${label} by ROI`,
    data: { values: rows.flatMap((r) => Object.keys(fits).map((b) => ({ roi: r.roi, backbone: b, value: r[b] as number }))) },
    mark: 'bar',
    encoding: {
      x: { field: 'roi', type: 'nominal', sort: null, title: null, axis: { labelAngle: -45 } },
      xOffset: { field: 'backbone' },
      y: { field: 'value', type: 'quantitative', title: label },
      color: { field: 'backbone', type: 'nominal', title: 'backbone' },
    },
    width: Math.max(360, rows.length * 14 * Math.max(2, Object.keys(fits).length)), height: 220,
  };
  const { renderVegaLite } = await import('../notebook/display.js');
  const r = await renderVegaLite(spec, { format: 'png', scale: 2 });
  const png = palette(opts) ? await palettePng(r.data as Uint8Array) : (r.data as Uint8Array);
  return { name: `roi_${metric}`, title: spec.title, png, vegaLite: spec, rows };
}

// ------------------------------------------------------------------------------ across backbones and subjects

/** Mean layer index per vertex `[N]` (0-based) from the layer selector `[N, L]`: sum over l of l p[n, l]. */
export function meanLayerPerVertex(layer: MatrixInput, N: number, L?: number): Float32Array {
  const m = toMatrix(layer, { rows: N, cols: L, what: 'meanLayerPerVertex: layer' });
  const k = m.shape[1];
  const out = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    let s = 0, w = 0;
    for (let l = 0; l < k; l++) { const p = m.data[i * k + l]!; s += l * p; w += p; }
    out[i] = w > 0 ? s / w : NaN;
  }
  return out;
}

/** One fit's numbers per ROI (grouped as `roiSummaryRows` does): vertices, mean layer index (0-based), depth (index / (L - 1), 0 first layer .. 1 last), R², and the score when the fit has it. */
export function roiLayerRows(fit: EncoderFitLike, rois: ArrayLike<string | null | undefined>): { roi: string; n: number; layer: number; depth: number; r2: number; score?: number }[] {
  const N = rois.length;
  checkLength(fit.r2, N, 'r2');
  const L = toMatrix(fit.selectors.layer, { rows: N, cols: fit.layers?.length, what: 'roiLayerRows: selectors.layer' }).shape[1];
  const layer = meanLayerPerVertex(fit.selectors.layer, N, L);
  const depth = layer.map((v) => (L > 1 ? v / (L - 1) : 0));
  const rows = roiSummaryRows({ layer, depth, r2: fit.r2, ...(fit.score ? { score: fit.score } : {}) }, rois);
  return paperRoiOrder(rows.map((r) => r.roi)).map((roi) => rows.find((r) => r.roi === roi)!) as ReturnType<typeof roiLayerRows>;
}

/** ROI names in the paper's order: early visual areas (V1, V2, V3, hV4), then the category patches (faces, bodies, places, words); others after, as given. */
export function paperRoiOrder(names: Iterable<string>): string[] {
  const known = ['V1', 'V2', 'V3', 'hV4', ...['floc-faces', 'floc-bodies', 'floc-places', 'floc-words'].flatMap((f) => ROI_FILES[f]!.slice(1))];
  const given = [...new Set(names)];
  return [...known.filter((n) => given.includes(n)), ...given.filter((n) => !known.includes(n))];
}

/** A value of one backbone in one ROI of one subject (tidy rows, e.g. from a sweep's recorded tables). */
export interface SubjectRoiValue {
  backbone: string;
  subject: string;
  roi: string;
  value: number;
}

/** Mean, sample sd, min and max over subjects per backbone and ROI (NaN values left out); ROIs in {@link paperRoiOrder}. */
export function spreadAcrossSubjects(rows: SubjectRoiValue[]): SpreadRow[] {
  const groups = new Map<string, number[]>();
  for (const r of rows) {
    if (!Number.isFinite(r.value)) continue;
    const k = JSON.stringify([r.backbone, r.roi]);
    groups.set(k, [...(groups.get(k) ?? []), r.value]);
  }
  const order = paperRoiOrder(rows.map((r) => r.roi));
  const backbones = [...new Set(rows.map((r) => r.backbone))];
  const out: SpreadRow[] = [];
  for (const b of backbones) {
    for (const roi of order) {
      const v = groups.get(JSON.stringify([b, roi]));
      if (!v?.length) continue;
      const mean = v.reduce((s, x) => s + x, 0) / v.length;
      const sd = v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1)) : NaN;
      out.push({ group: b, roi, mean, sd, min: Math.min(...v), max: Math.max(...v), n: v.length });
    }
  }
  return out;
}

const subjectValues = (rows: SubjectRoiValue[]) => rows.map((r) => ({ group: r.backbone, roi: r.roi, value: r.value, subject: r.subject }));

async function vegaPng(spec: Record<string, unknown>): Promise<Uint8Array> {
  const { renderVegaLite } = await import('../notebook/display.js');
  return (await renderVegaLite(spec, { format: 'png', scale: 2 })).data as Uint8Array;
}

/**
 * The paper's hierarchy plot: the mean layer depth per ROI (0 first layer .. 1 last, so backbones with different layer counts
 * compare) for each backbone, early visual areas to category patches, with the spread across subjects (± sd, and each subject).
 */
export async function paperLayerHierarchy(rows: SubjectRoiValue[], opts: { title?: string; yTitle?: string } = {}): Promise<PaperFigure & { rows: SpreadRow[] }> {
  if (!rows.length) throw new FlatmapError('paperLayerHierarchy: no rows; give { backbone, subject, roi, value } per ROI of each fit (roiLayerRows gives the depth)');
  const spread = spreadAcrossSubjects(rows);
  const title = opts.title ?? `Mean layer depth per ROI (spread over ${new Set(rows.map((r) => r.subject)).size} subjects)`;
  const spec = roiSpreadChart(spread, { kind: 'line', yTitle: opts.yTitle ?? 'mean layer depth (0 first, 1 last layer)', title, roiOrder: paperRoiOrder(spread.map((r) => r.roi)), values: subjectValues(rows) });
  return { name: 'layer_hierarchy', title, png: await vegaPng(spec), vegaLite: spec, rows: spread };
}

/** R² (or another score) per ROI per backbone as grouped bars, with the spread across subjects. */
export async function paperRoiScoresAcrossSubjects(rows: SubjectRoiValue[], opts: { title?: string; yTitle?: string; name?: string } = {}): Promise<PaperFigure & { rows: SpreadRow[] }> {
  if (!rows.length) throw new FlatmapError('paperRoiScoresAcrossSubjects: no rows; give { backbone, subject, roi, value } per ROI of each fit');
  const spread = spreadAcrossSubjects(rows);
  const title = opts.title ?? `Validation R² per ROI (spread over ${new Set(rows.map((r) => r.subject)).size} subjects)`;
  const spec = roiSpreadChart(spread, { kind: 'bar', yTitle: opts.yTitle ?? 'mean validation R²', title, roiOrder: paperRoiOrder(spread.map((r) => r.roi)), values: subjectValues(rows) });
  return { name: opts.name ?? 'roi_r2_across_subjects', title, png: await vegaPng(spec), vegaLite: spec, rows: spread };
}

/** A subject's per-vertex map and the ids of its vertices in a space shared by subjects (e.g. fsaverage index, rh offset by 163,842). */
export interface SubjectMap {
  values: ArrayLike<number>;
  vertexIds: ArrayLike<number>;
}

/** Pearson r of two subjects' maps on the vertices both have (finite values only), and how many there were. */
export function sharedVertexCorrelation(a: SubjectMap, b: SubjectMap): { r: number; n: number } {
  if (a.values.length !== a.vertexIds.length || b.values.length !== b.vertexIds.length) throw new FlatmapError('sharedVertexCorrelation: each map needs one vertex id per value');
  const at = new Map<number, number>();
  for (let i = 0; i < b.vertexIds.length; i++) at.set(Number(b.vertexIds[i]), i);
  const xs: number[] = [], ys: number[] = [];
  for (let i = 0; i < a.vertexIds.length; i++) {
    const j = at.get(Number(a.vertexIds[i]));
    if (j === undefined) continue;
    const x = a.values[i]!, y = b.values[j]!;
    if (Number.isFinite(x) && Number.isFinite(y)) (xs.push(x), ys.push(y));
  }
  const n = xs.length;
  if (n < 3) return { r: NaN, n };
  const mx = xs.reduce((s, v) => s + v, 0) / n, my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) { const dx = xs[i]! - mx, dy = ys[i]! - my; sxy += dx * dy; sxx += dx * dx; syy += dy * dy; }
  return { r: sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN, n };
}

/**
 * Agreement between subjects: for each backbone, the correlation of every pair of subjects' selector maps (e.g. the mean
 * layer depth per vertex) on their shared vertices, as heatmaps side by side; rows `{ backbone, a, b, r, n }` for every pair
 * and the mean over pairs per backbone.
 */
export async function paperSubjectAgreement(maps: Record<string, Record<string, SubjectMap>>, opts: { title?: string; label?: string } = {}): Promise<PaperFigure & { rows: { backbone: string; a: string; b: string; r: number; n: number }[]; meanR: Record<string, number> }> {
  const backbones = Object.keys(maps);
  if (!backbones.length) throw new FlatmapError('paperSubjectAgreement: no backbones given');
  const rows: { backbone: string; a: string; b: string; r: number; n: number }[] = [];
  const meanR: Record<string, number> = {};
  const subjects = [...new Set(backbones.flatMap((b) => Object.keys(maps[b]!)))];
  for (const b of backbones) {
    const subs = Object.keys(maps[b]!);
    const pairs: number[] = [];
    for (const sa of subs) for (const sb of subs) {
      const c = sa === sb ? { r: 1, n: maps[b]![sa]!.values.length } : sharedVertexCorrelation(maps[b]![sa]!, maps[b]![sb]!);
      rows.push({ backbone: b, a: sa, b: sb, ...c });
      if (sa < sb && Number.isFinite(c.r)) pairs.push(c.r);
    }
    meanR[b] = pairs.length ? pairs.reduce((s, v) => s + v, 0) / pairs.length : NaN;
  }
  const title = opts.title ?? 'Agreement between subjects: correlation of the layer-selector maps';
  const spec = correlationHeatmap(rows.map((r) => ({ panel: `${r.backbone} (mean r ${Number.isFinite(meanR[r.backbone]!) ? meanR[r.backbone]!.toFixed(2) : '—'})`, a: r.a, b: r.b, r: r.r })), { title, label: opts.label ?? 'Pearson r', order: subjects });
  return { name: 'subject_agreement', title, png: await vegaPng(spec), vegaLite: spec, rows, meanR };
}

/**
 * A synthetic subject's truth next to what the fit recovered (plain arrays; the notebook passes `synthetic.groundTruth`'s):
 * depth against the mean layer index, true pRF centre against the space selector, true scale against the scale selector,
 * as one PNG (two columns, three rows); plus `vegaLite`, the scatter of true against recovered pRF centres of the vertices
 * with a pRF in V1–V3 (`early`, default: every vertex with a finite pRF).
 */
export async function paperTruthVsRecovered(truth: TruthMaps, fit: EncoderFitLike, layout: FlatLayout, opts: PaperFigureOptions & { early?: ArrayLike<boolean | number> } = {}): Promise<PaperFigure> {
  const N = vertexCount(layout);
  const L = layerNames(fit)?.length ?? Math.round(toMatrix(fit.selectors.layer, { rows: N, what: 'selectors.layer' }).shape[1]);
  const depth = meanLayerPerVertex(fit.selectors.layer, N, L).map((v) => (L > 1 ? v / (L - 1) : 0));
  const maps = truthVsRecoveredFigures(truth, { depth, space: fit.selectors.space, scale: fit.selectors.scale }, layout, roiOpts(layout, opts));
  const width = Math.round((opts.width ?? 1400) / 2);
  const png = await comparePanel(maps, { cols: 2, width, height: Math.round(width / 2), title: opts.title ?? 'Ground truth (left) and what the encoder recovered (right)', palette: palette(opts) });
  const vegaLite = prfScatterSpec({ x: truth.prfX, y: truth.prfY }, fit.selectors.space, { keep: opts.early });
  return { name: 'truth_vs_recovered', title: opts.title ?? 'Truth and recovery', png, maps, vegaLite };
}
