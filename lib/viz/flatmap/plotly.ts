/**
 * Interactive Plotly figures of a flatmap (describe.ts): a WebGL mesh with vertex colours (`flatmapPlotly`), or
 * 2-D axes over a rasterised image (`flatmapPlotly2d`, no WebGL); both with ROI outlines, the colour key, and
 * hover text per vertex (index, ROI, value, selectors).
 */
import { cssRgb, plotlyColorscale } from '../colormaps.js';
import { type ColorKey, type Flatmap, type FlatmapGeometry, FlatmapError, isNoRoi, roiBoundarySegments, roiCentroids } from './describe.js';
import { rasterizeFlatmap } from './raster.js';
import { palettePng } from '../../io/image.js';

/** Hover options of `flatmapPlotly`. */
export interface PlotlyHoverOptions {
  /** ROI name per vertex `[N]` (default: the map's `rois`). */
  roi?: ArrayLike<string | null | undefined>;
  /** Selector values shown on hover: name -> `[N]` or `[N, k]` (shown as a tuple). */
  selectors?: Record<string, ArrayLike<number>>;
  /** Name of the value line; default 'value'. */
  valueName?: string;
}

/** A Plotly figure (`data` traces and `layout`), as `display.plotly` takes it. */
export interface PlotlyFlatmap {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

type Trace = Record<string, unknown>;
type SquareKey = Extract<ColorKey, { kind: 'square' }>;

const fmt = (v: number) => (Number.isFinite(v) ? (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : String(Number(v.toPrecision(4)))) : 'NaN');

/** Interactive Plotly figure of a flatmap: a mesh with vertex colours (zoom with the wheel, pan by dragging), ROI outlines, and hover text per vertex (index, ROI, value, selectors). */
export function flatmapPlotly(map: Flatmap, opts: { hover?: PlotlyHoverOptions; width?: number; height?: number } = {}): PlotlyFlatmap {
  const mesh = meshTrace(map, opts.hover ?? {});
  const data: Trace[] = [mesh, ...overlayTraces(map), ...keyTraces(map, mesh)];
  const square = map.key?.kind === 'square' ? map.key : undefined;
  const b = map.layout.bounds;
  const axis = { visible: false, showgrid: false, zeroline: false, showspikes: false };
  const fig: PlotlyFlatmap = {
    data,
    layout: {
      title: map.title ? { text: map.title } : undefined,
      width: opts.width, height: opts.height ?? 520,
      margin: { l: 0, r: 0, t: map.title ? 40 : 10, b: 0 },
      paper_bgcolor: map.background === 'white' ? 'white' : 'rgba(0,0,0,0)',
      dragmode: 'pan',
      hovermode: 'closest',
      scene: {
        xaxis: { ...axis, range: [b.xmin, b.xmax] }, yaxis: { ...axis, range: [b.ymin, b.ymax] }, zaxis: { ...axis, range: [-1, 1] },
        // orthographic zoom in plotly.js is the aspect ratio (the wheel scales it): 2.5 fills the scene
        aspectmode: 'manual', aspectratio: { x: 2.5, y: (2.5 * (b.ymax - b.ymin)) / Math.max(b.xmax - b.xmin, 1e-9), z: 0.05 },
        camera: { eye: { x: 0, y: 0, z: 2 }, up: { x: 0, y: 1, z: 0 }, center: { x: 0, y: 0, z: 0 }, projection: { type: 'orthographic' } },
        dragmode: 'pan',
        ...(square ? { domain: { x: [0, 0.8], y: [0, 1] } } : {}),
      },
      ...(square ? squareKeyAxes(square, 'scene') : {}),
      showlegend: map.key?.kind === 'legend',
    },
  };
  return fig;
}

/** The cortex as a `mesh3d` trace over the laid-out vertices (renumbered), with vertex colours and hover text. */
function meshTrace(map: Flatmap, hv: PlotlyHoverOptions): Trace & { x: number[]; y: number[] } {
  const { layout } = map;
  const N = layout.nLh + layout.nRh;
  const roi = hv.roi ? Array.from(hv.roi, (r) => (isNoRoi(r) ? null : (r as string))) : map.rois;
  if (roi && roi.length !== N) throw new FlatmapError(`flatmapPlotly: hover.roi has ${roi.length} names, the layout has ${N} vertices`);
  const sel = Object.entries({ ...(map.selectors ?? {}), ...(hv.selectors ?? {}) }).map(([name, a]) => {
    const k = a.length / N;
    if (!Number.isInteger(k) || k < 1) throw new FlatmapError(`flatmapPlotly: selector '${name}' has ${a.length} values, not [${N}] or [${N}, k]`);
    return { name, a, k };
  });
  const tuple = (a: ArrayLike<number>, i: number, k: number) => `(${Array.from({ length: k }, (_, c) => fmt(a[i * k + c]!)).join(', ')})`;
  // keep laid-out vertices only, renumbered
  const keep = new Int32Array(N).fill(-1);
  const x: number[] = [], y: number[] = [], z: number[] = [], vc: string[] = [], text: string[] = [];
  for (let i = 0; i < N; i++) {
    const px = layout.xy[2 * i]!, py = layout.xy[2 * i + 1]!;
    if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
    keep[i] = x.length;
    x.push(Number(px.toFixed(3))); y.push(Number(py.toFixed(3))); z.push(0);
    vc.push(cssRgb([map.colors[3 * i]!, map.colors[3 * i + 1]!, map.colors[3 * i + 2]!]));
    const hemi = i < layout.nLh ? 'lh' : 'rh', local = i < layout.nLh ? i : i - layout.nLh;
    const val = map.channels === 1 ? fmt(map.values[i]!) : tuple(map.values, i, map.channels);
    let t = `vertex ${i} (${hemi} ${local})<br>ROI: ${roi?.[i] ?? '—'}<br>${hv.valueName ?? 'value'}: ${val}`;
    for (const s of sel) t += `<br>${s.name}: ${s.k === 1 ? fmt(s.a[i]!) : tuple(s.a, i, s.k)}`;
    text.push(t);
  }
  const I: number[] = [], J: number[] = [], K: number[] = [];
  for (let t = 0; t + 2 < layout.faces.length; t += 3) {
    const a = keep[layout.faces[t]!]!, b = keep[layout.faces[t + 1]!]!, c = keep[layout.faces[t + 2]!]!;
    if (a < 0 || b < 0 || c < 0) continue;
    I.push(a); J.push(b); K.push(c);
  }
  return {
    type: 'mesh3d', name: 'cortex', x, y, z, i: I, j: J, k: K, vertexcolor: vc,
    flatshading: map.shading === 'nearest', hovertext: text, hoverinfo: 'text',
    lighting: { ambient: 1, diffuse: 0, specular: 0, roughness: 1, fresnel: 0 }, showscale: false,
  };
}

/** ROI outlines (lines) and names (text at the centroids) as `scatter3d` traces just above the mesh. */
function overlayTraces(map: Flatmap): Trace[] {
  const data: Trace[] = [];
  if (map.rois && map.outlines) {
    const seg = roiBoundarySegments(map.layout, map.rois);
    const lx: (number | null)[] = [], ly: (number | null)[] = [], lz: (number | null)[] = [];
    for (let s = 0; s < seg.length; s += 4) { lx.push(seg[s]!, seg[s + 2]!, null); ly.push(seg[s + 1]!, seg[s + 3]!, null); lz.push(0.01, 0.01, null); }
    data.push({ type: 'scatter3d', mode: 'lines', name: 'ROI outlines', x: lx, y: ly, z: lz, line: { color: 'white', width: 2 }, hoverinfo: 'skip', showlegend: false });
  }
  if (map.rois && map.roiLabels) {
    const want = Array.isArray(map.roiLabels) ? new Set(map.roiLabels) : undefined;
    const cs = roiCentroids(map.layout, map.rois).filter((c) => !want || want.has(c.name));
    data.push({ type: 'scatter3d', mode: 'text', name: 'ROI names', x: cs.map((c) => c.x), y: cs.map((c) => c.y), z: cs.map(() => 0.02), text: cs.map((c) => c.name),
      textfont: { color: 'black', size: 11 }, hoverinfo: 'skip', showlegend: false });
  }
  return data;
}

/** The colour key as traces: an invisible marker carrying the colour bar, one legend entry per category, or the 2-D key as a 32 x 32 image. */
function keyTraces(map: Flatmap, mesh: { x: number[]; y: number[] }): Trace[] {
  const key = map.key;
  if (key?.kind === 'bar') {
    return [{ type: 'scatter3d', mode: 'markers', name: 'colour bar', x: [mesh.x[0] ?? 0], y: [mesh.y[0] ?? 0], z: [0], hoverinfo: 'skip', showlegend: false,
      marker: { size: 0.1, opacity: 0, color: [key.vmin], cmin: key.vmin, cmax: key.vmax, colorscale: plotlyColorscale(key.cmap), showscale: true,
        colorbar: { title: { text: key.label ?? '' }, thickness: 14, len: 0.6 } } }];
  }
  if (key?.kind === 'legend') {
    return key.entries.map((e) => ({ type: 'scatter3d', mode: 'markers', name: e.label, x: [null], y: [null], z: [null], marker: { color: cssRgb(e.color), size: 8, symbol: 'square' }, hoverinfo: 'skip', showlegend: true }));
  }
  if (key?.kind === 'square') {
    // the 2-D colour key as a small image beside the mesh
    const n = 32, z: number[][][] = [];
    for (let j = 0; j < n; j++) {
      const row: number[][] = [];
      for (let i = 0; i < n; i++) row.push(key.color((i + 0.5) / n, (j + 0.5) / n).map((c) => Math.round(255 * c)));
      z.push(row);
    }
    return [{ type: 'image', name: 'colour key', z, x0: 0, dx: 1 / n, y0: 0, dy: 1 / n, xaxis: 'x', yaxis: 'y', hoverinfo: 'skip' }];
  }
  return [];
}

/** Layout axes of the 2-D colour key beside the map: `xaxis`/`yaxis` beside a 3-D scene, or `xaxis2`/`yaxis2` (anchored to each other) beside 2-D axes. */
function squareKeyAxes(square: SquareKey, beside: 'scene' | 'axes'): Record<string, unknown> {
  const x = { title: { text: square.xlabel ?? '' }, tickvals: [0, 1], ticktext: square.xticks ?? ['', ''], showgrid: false, zeroline: false };
  const y = { title: { text: square.ylabel ?? '' }, tickvals: [0, 1], ticktext: square.yticks ?? ['', ''], showgrid: false, zeroline: false };
  if (beside === 'scene') {
    return { xaxis: { domain: [0.84, 0.98], range: [0, 1], fixedrange: true, ...x }, yaxis: { domain: [0.3, 0.7], range: [0, 1], fixedrange: true, ...y, scaleanchor: 'x' } };
  }
  return { xaxis2: { domain: [0.84, 0.98], anchor: 'y2', range: [0, 1], fixedrange: true, ...x }, yaxis2: { domain: [0.3, 0.7], anchor: 'x2', range: [0, 1], fixedrange: true, ...y } };
}

/**
 * Interactive Plotly figure on 2-D axes (no WebGL): the cortex as a rasterised image (`pixelWidth` wide, default 1600;
 * an indexed PNG of ≤ 256 colours unless `palette: false`) under the axes, ROI outlines as vector lines, and an invisible marker at every vertex that carries its hover text.
 * Box zoom, wheel zoom and pan work as on any Plotly x/y plot; hover answers with `Plotly.Fx.hover` or a real mouse.
 */
export async function flatmapPlotly2d(map: Flatmap, opts: { hover?: PlotlyHoverOptions; width?: number; height?: number; pixelWidth?: number; palette?: boolean } = {}): Promise<PlotlyFlatmap & { config: Record<string, unknown> }> {
  const { createCanvas } = await import('canvas');
  const base = flatmapPlotly(map, { hover: opts.hover });
  const b = map.layout.bounds;
  const bw = Math.max(b.xmax - b.xmin, 1e-9), bh = Math.max(b.ymax - b.ymin, 1e-9);
  // 1. the cortex, rasterised at a fixed scale with a one-pixel margin
  const PW = Math.round(opts.pixelWidth ?? 1600), s = (PW - 2) / bw, PH = Math.ceil(bh * s) + 2;
  const geom: FlatmapGeometry = { width: PW, height: PH, map: { x: 0, y: 0, w: PW, h: PH }, scale: s, font: 12, toPixel: (x, y) => [1 + (x - b.xmin) * s, 1 + (b.ymax - y) * s] };
  const rgba = rasterizeFlatmap(map, geom, 2);
  const canvas = createCanvas(PW, PH);
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(PW, PH);
  img.data.set(rgba);
  ctx.putImageData(img, 0, 0);
  const full = canvas.toBuffer('image/png');
  const png = opts.palette === false ? full : await palettePng(new Uint8Array(full.buffer, full.byteOffset, full.byteLength));
  const source = 'data:image/png;base64,' + Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64');
  // 2. traces: hover markers (carrying the colour bar when there is one), outlines, labels, legend
  const data = planarTraces(map, base.data);
  // 3. layout: the image under hidden x/y axes of equal scale, and the 2-D key's axes beside them
  const square = map.key?.kind === 'square' ? map.key : undefined;
  const axis = { visible: false, showgrid: false, zeroline: false };
  const layout: Record<string, unknown> = {
    title: map.title ? { text: map.title } : undefined,
    width: opts.width, height: opts.height ?? 520,
    margin: { l: 10, r: 10, t: map.title ? 40 : 10, b: 10 },
    paper_bgcolor: map.background === 'white' ? 'white' : 'rgba(0,0,0,0)',
    plot_bgcolor: map.background === 'white' ? 'white' : 'rgba(0,0,0,0)',
    dragmode: 'pan', hovermode: 'closest',
    xaxis: { ...axis, range: [b.xmin - 0.02 * bw, b.xmax + 0.02 * bw], domain: square ? [0, 0.8] : [0, 1] },
    yaxis: { ...axis, range: [b.ymin - 0.02 * bh, b.ymax + 0.02 * bh], scaleanchor: 'x' },
    images: [{ source, xref: 'x', yref: 'y', x: b.xmin - 1 / s, y: b.ymax + 1 / s, sizex: PW / s, sizey: PH / s, sizing: 'stretch', layer: 'below', xanchor: 'left', yanchor: 'top' }],
    showlegend: map.key?.kind === 'legend',
    ...(square ? squareKeyAxes(square, 'axes') : {}),
  };
  return { data, layout, config: { scrollZoom: true, displaylogo: false } };
}

/** The 3-D figure's traces on 2-D axes: invisible hover markers at the vertices (carrying the colour bar), outlines, names, legend entries and the 2-D key image. */
function planarTraces(map: Flatmap, traces3d: Trace[]): Trace[] {
  const mesh = traces3d[0] as { x: number[]; y: number[]; hovertext: string[] };
  const bar = map.key?.kind === 'bar' ? map.key : undefined;
  const data: Trace[] = [{
    type: 'scatter', mode: 'markers', name: 'vertices', x: mesh.x, y: mesh.y, hovertext: mesh.hovertext, hoverinfo: 'text', showlegend: false,
    marker: bar
      ? { size: 7, opacity: 0, color: mesh.x.map(() => bar.vmin), cmin: bar.vmin, cmax: bar.vmax, colorscale: plotlyColorscale(bar.cmap), showscale: true, colorbar: { title: { text: bar.label ?? '' }, thickness: 14, len: 0.6 } }
      : { size: 7, opacity: 0, color: 'black' },
  }];
  for (const tr of traces3d.slice(1)) {
    if (tr.type === 'scatter3d' && (tr.mode === 'lines' || tr.mode === 'text')) {
      const { z: _z, type: _t, textfont, line, ...rest } = tr as Trace & { line?: Record<string, unknown> };
      data.push({ ...rest, type: 'scatter', ...(line ? { line: { ...line, width: 1.5 } } : {}), ...(textfont ? { textfont: { color: 'white', size: 12 } } : {}) });
    } else if (tr.type === 'scatter3d' && tr.name !== 'colour bar') {
      const { z: _z, type: _t, ...rest } = tr;
      data.push({ ...rest, type: 'scatter' });
    } else if (tr.type === 'image') data.push({ ...tr, xaxis: 'x2', yaxis: 'y2' });
  }
  return data;
}
