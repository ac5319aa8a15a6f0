/**
 * Rasterising a flatmap (describe.ts) to pixels and PNG with node-canvas: triangles filled with per-pixel
 * interpolated vertex colours (supersampled), ROI outlines and labels, the title, the hemisphere names and the
 * colour key (a bar, a 2-D square or a legend).
 */
import { colormap, cssRgb } from '../colormaps.js';
import { palettePng, type PalettePngOptions } from '../../io/image.js';
import { type ColorKey, type Flatmap, type FlatmapGeometry, FlatmapError, flatmapGeometry, flatmapHeight, roiBoundarySegments, roiCentroids } from './describe.js';

/**
 * Rasterises the map's triangles into RGBA pixels `[H, W, 4]` (transparent outside the cortex), with `ss`×`ss`
 * supersampling. Inside each triangle the colour is interpolated from its vertices (smooth) or taken from the
 * nearest vertex (nearest).
 */
export function rasterizeFlatmap(map: Flatmap, geom: FlatmapGeometry, ss = 3): Uint8ClampedArray {
  const W = geom.width, H = geom.height, SW = W * ss, SH = H * ss;
  const acc = new Float32Array(SW * SH * 3);
  const cov = new Uint8Array(SW * SH);
  const { xy, faces } = map.layout;
  const C = map.colors;
  const px = new Float32Array(xy.length);
  for (let i = 0; i < xy.length; i += 2) {
    const [x, y] = geom.toPixel(xy[i]!, xy[i + 1]!);
    px[i] = x * ss; px[i + 1] = y * ss;
  }
  const smooth = map.shading === 'smooth';
  for (let t = 0; t + 2 < faces.length; t += 3) {
    const a = faces[t]!, b = faces[t + 1]!, c = faces[t + 2]!;
    const ax = px[2 * a]!, ay = px[2 * a + 1]!, bx = px[2 * b]!, by = px[2 * b + 1]!, cx = px[2 * c]!, cy = px[2 * c + 1]!;
    if (!Number.isFinite(ax + ay + bx + by + cx + cy)) continue;
    const area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
    if (Math.abs(area) < 1e-12) continue;
    const x0 = Math.max(0, Math.floor(Math.min(ax, bx, cx))), x1 = Math.min(SW - 1, Math.ceil(Math.max(ax, bx, cx)));
    const y0 = Math.max(0, Math.floor(Math.min(ay, by, cy))), y1 = Math.min(SH - 1, Math.ceil(Math.max(ay, by, cy)));
    const inv = 1 / area, eps = -1e-6;
    const same = (p: number, q: number) => C[3 * p] === C[3 * q] && C[3 * p + 1] === C[3 * q + 1] && C[3 * p + 2] === C[3 * q + 2];
    const sameAB = same(a, b), sameAC = same(a, c), sameBC = same(b, c);
    for (let y = y0; y <= y1; y++) {
      const sy = y + 0.5;
      for (let x = x0; x <= x1; x++) {
        const sx = x + 0.5;
        const wa = ((bx - sx) * (cy - sy) - (by - sy) * (cx - sx)) * inv;
        const wb = ((cx - sx) * (ay - sy) - (cy - sy) * (ax - sx)) * inv;
        const wc = 1 - wa - wb;
        if (wa < eps || wb < eps || wc < eps) continue;
        const o = y * SW + x;
        if (smooth) {
          for (let k = 0; k < 3; k++) acc[3 * o + k] = wa * C[3 * a + k]! + wb * C[3 * b + k]! + wc * C[3 * c + k]!;
        } else {
          // categories: the colour with the largest summed weight (boundaries run along the 0.5 contours)
          const sa = wa + (sameAB ? wb : 0) + (sameAC ? wc : 0), sb = wb + (sameAB ? wa : 0) + (sameBC ? wc : 0), sc = wc + (sameAC ? wa : 0) + (sameBC ? wb : 0);
          const v = sa >= sb && sa >= sc ? a : sb >= sc ? b : c;
          for (let k = 0; k < 3; k++) acc[3 * o + k] = C[3 * v + k]!;
        }
        cov[o] = 1;
      }
    }
  }
  const out = new Uint8ClampedArray(W * H * 4);
  const n = ss * ss;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let r = 0, g = 0, bl = 0, k = 0;
      for (let dy = 0; dy < ss; dy++) {
        for (let dx = 0; dx < ss; dx++) {
          const o = (y * ss + dy) * SW + x * ss + dx;
          if (!cov[o]) continue;
          r += acc[3 * o]!; g += acc[3 * o + 1]!; bl += acc[3 * o + 2]!; k++;
        }
      }
      if (!k) continue;
      const q = 4 * (y * W + x);
      out[q] = (255 * r) / k; out[q + 1] = (255 * g) / k; out[q + 2] = (255 * bl) / k; out[q + 3] = (255 * k) / n;
    }
  }
  return out;
}

type Ctx = import('canvas').CanvasRenderingContext2D;
type Rect = { x: number; y: number; w: number; h: number };

/** Formats a tick value with a sensible number of digits. */
export function formatTick(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000 || a < 0.01) return v.toExponential(1);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return String(Number(v.toPrecision(2)));
}

/** Draws the colour key into its rectangle. */
function drawKey(ctx: Ctx, key: ColorKey, r: Rect, font: number): void {
  ctx.fillStyle = '#222';
  ctx.strokeStyle = '#444';
  ctx.lineWidth = 1;
  if (key.kind === 'bar') drawBarKey(ctx, key, r, font);
  else if (key.kind === 'square') drawSquareKey(ctx, key, r, font);
  else drawLegendKey(ctx, key, r, font);
}

/** A horizontal colour bar with its end ticks and label. */
function drawBarKey(ctx: Ctx, key: Extract<ColorKey, { kind: 'bar' }>, r: Rect, font: number): void {
  const bh = Math.max(8, Math.round(font * 0.9));
  const bw = Math.round(r.w);
  const x0 = Math.round(r.x), y0 = Math.round(r.y + font * 0.2);
  for (let i = 0; i < bw; i++) {
    ctx.fillStyle = cssRgb(colormap(key.cmap, (i + 0.5) / bw));
    ctx.fillRect(x0 + i, y0, 1, bh);
  }
  ctx.strokeRect(x0 + 0.5, y0 + 0.5, bw - 1, bh - 1);
  ctx.fillStyle = '#222';
  ctx.font = `${Math.round(font * 0.85)}px sans-serif`;
  ctx.textBaseline = 'top';
  const ty = y0 + bh + font * 0.25;
  ctx.textAlign = 'left';
  ctx.fillText(key.tickLabels?.[0] ?? formatTick(key.vmin), x0, ty);
  ctx.textAlign = 'right';
  ctx.fillText(key.tickLabels?.[1] ?? formatTick(key.vmax), x0 + bw, ty);
  if (key.label) {
    ctx.textAlign = 'center';
    ctx.font = `${Math.round(font * 0.9)}px sans-serif`;
    ctx.fillText(key.label, x0 + bw / 2, ty);
  }
}

/** A 2-D colour square with its ticks, axis labels and title. */
function drawSquareKey(ctx: Ctx, key: Extract<ColorKey, { kind: 'square' }>, r: Rect, font: number): void {
  const side = Math.round(Math.min(r.w - font * 3, r.h * 0.55));
  const x0 = Math.round(r.x + (r.w - side) / 2 + font * 0.6), y0 = Math.round(r.y + (r.h - side) / 2 - font);
  const img = ctx.createImageData(side, side);
  for (let j = 0; j < side; j++) {
    for (let i = 0; i < side; i++) {
      const c = key.color((i + 0.5) / side, 1 - (j + 0.5) / side);
      const q = 4 * (j * side + i);
      img.data[q] = 255 * c[0]; img.data[q + 1] = 255 * c[1]; img.data[q + 2] = 255 * c[2]; img.data[q + 3] = 255;
    }
  }
  ctx.putImageData(img, x0, y0);
  ctx.strokeRect(x0 + 0.5, y0 + 0.5, side - 1, side - 1);
  ctx.fillStyle = '#222';
  const f = Math.round(font * 0.8);
  ctx.font = `${f}px sans-serif`;
  ctx.textBaseline = 'top';
  if (key.xticks) {
    ctx.textAlign = 'left'; ctx.fillText(key.xticks[0], x0, y0 + side + 3);
    ctx.textAlign = 'right'; ctx.fillText(key.xticks[1], x0 + side, y0 + side + 3);
  }
  if (key.xlabel) { ctx.textAlign = 'center'; ctx.fillText(key.xlabel, x0 + side / 2, y0 + side + 3 + (key.xticks ? f * 1.2 : 0)); }
  if (key.title) { ctx.font = `bold ${f}px sans-serif`; ctx.textAlign = 'center'; ctx.textBaseline = 'bottom'; ctx.fillText(key.title, x0 + side / 2, y0 - 4); ctx.font = `${f}px sans-serif`; }
  ctx.save();
  ctx.translate(x0 - 4, y0 + side / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'bottom';
  if (key.yticks) {
    ctx.textAlign = 'left'; ctx.fillText(key.yticks[0], -side / 2, 0);
    ctx.textAlign = 'right'; ctx.fillText(key.yticks[1], side / 2, 0);
  }
  if (key.ylabel) { ctx.textAlign = 'center'; ctx.fillText(key.ylabel, 0, key.yticks ? -f * 1.2 : 0); }
  ctx.restore();
}

/** A legend of category swatches (two columns above 12 entries). */
function drawLegendKey(ctx: Ctx, key: Extract<ColorKey, { kind: 'legend' }>, r: Rect, font: number): void {
  const n = key.entries.length;
  const f = Math.round(font * 0.85);
  const cols = n > 12 ? 2 : 1;
  const rows = Math.ceil(n / cols);
  const rowH = Math.min(f * 1.6, (r.h - (key.title ? f * 2 : 0)) / Math.max(rows, 1));
  const colW = r.w / cols;
  let y = r.y + Math.max(0, (r.h - rows * rowH - (key.title ? f * 2 : 0)) / 2);
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'left';
  if (key.title) { ctx.font = `bold ${f}px sans-serif`; ctx.fillStyle = '#222'; ctx.fillText(key.title, r.x, y + f / 2); y += f * 2; }
  ctx.font = `${f}px sans-serif`;
  const sw = Math.max(6, Math.round(rowH * 0.65));
  key.entries.forEach((e, i) => {
    const cx = r.x + Math.floor(i / rows) * colW, cy = y + (i % rows) * rowH;
    ctx.fillStyle = cssRgb(e.color);
    ctx.fillRect(cx, cy + (rowH - sw) / 2, sw, sw);
    ctx.strokeStyle = 'rgba(0,0,0,0.35)';
    ctx.strokeRect(cx + 0.5, cy + (rowH - sw) / 2 + 0.5, sw - 1, sw - 1);
    ctx.fillStyle = '#222';
    ctx.fillText(e.label, cx + sw + f * 0.5, cy + rowH / 2);
  });
}

/** Options of `renderFlatmapPng`. */
export interface RenderOptions {
  width?: number;
  height?: number;
  /** Supersampling factor per axis (default 3, or 2 above 1.5 megapixels). */
  supersample?: number;
  /** Encode as an indexed PNG of at most 256 colours (`palettePng`; 3–4× smaller, no visible change on a flatmap); default false. */
  palette?: boolean | PalettePngOptions;
}

/** Draws a flatmap into a new node-canvas canvas (`width` × `height`; default width 1200, height fitted to the map); returns it with its geometry. */
export async function drawFlatmapCanvas(map: Flatmap, opts: RenderOptions = {}): Promise<{ canvas: import('canvas').Canvas; geometry: FlatmapGeometry }> {
  const { createCanvas } = await import('canvas');
  const W = Math.round(opts.width ?? 1200), H = Math.round(opts.height ?? flatmapHeight(map, W));
  if (!(W > 0 && H > 0)) throw new FlatmapError(`renderFlatmapPng: width and height must be positive, got ${W} × ${H}`);
  const geom = flatmapGeometry(map, { width: W, height: H });
  const canvas = createCanvas(W, H);
  const ctx = canvas.getContext('2d');
  if (map.background === 'white') { ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, W, H); }
  // 1. the cortex: filled triangles
  const ss = opts.supersample ?? (W * H > 1.5e6 ? 2 : 3);
  const px = rasterizeFlatmap(map, geom, ss);
  const layer = createCanvas(W, H);
  const lctx = layer.getContext('2d');
  const img = lctx.createImageData(W, H);
  img.data.set(px);
  lctx.putImageData(img, 0, 0);
  ctx.drawImage(layer, 0, 0);
  // 2. ROI outlines
  if (map.rois && map.outlines) drawRoiOutlines(ctx, map.layout, map.rois, geom);
  // 3. ROI labels at centroids
  if (map.rois && map.roiLabels) drawRoiLabels(ctx, map.layout, map.rois, map.roiLabels, geom);
  // 4. title, hemisphere names, key
  drawTitleAndHemispheres(ctx, map, geom);
  if (map.key && geom.key) drawKey(ctx, map.key, geom.key, geom.font);
  return { canvas, geometry: geom };
}

/** Strokes the ROI boundaries: a dark halo under a white line. */
function drawRoiOutlines(ctx: Ctx, layout: Flatmap['layout'], rois: (string | null)[], geom: FlatmapGeometry): void {
  const lw = Math.max(1, geom.font / 9);
  const seg = roiBoundarySegments(layout, rois);
  const path = () => {
    ctx.beginPath();
    for (let s = 0; s < seg.length; s += 4) {
      const [x0, y0] = geom.toPixel(seg[s]!, seg[s + 1]!), [x1, y1] = geom.toPixel(seg[s + 2]!, seg[s + 3]!);
      ctx.moveTo(x0, y0); ctx.lineTo(x1, y1);
    }
  };
  ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  path(); ctx.strokeStyle = 'rgba(0,0,0,0.35)'; ctx.lineWidth = lw * 2.2; ctx.stroke();
  path(); ctx.strokeStyle = 'rgba(255,255,255,0.95)'; ctx.lineWidth = lw; ctx.stroke();
}

/** Writes ROI names (all, or those in `which`) at their centroids, larger ROIs first, moving a label that would overlap one already written. */
function drawRoiLabels(ctx: Ctx, layout: Flatmap['layout'], rois: (string | null)[], which: true | string[], geom: FlatmapGeometry): void {
  const want = Array.isArray(which) ? new Set(which) : undefined;
  ctx.font = `bold ${Math.round(geom.font * 0.8)}px sans-serif`;
  ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
  const placed: [number, number, number, number][] = [];
  const fh = Math.round(geom.font * 0.8);
  for (const c of roiCentroids(layout, rois).sort((p, q) => q.count - p.count)) {
    if (want && !want.has(c.name)) continue;
    const [x0, y0] = geom.toPixel(c.x, c.y);
    // move a label that would overlap one already written up or down a line (larger ROIs are placed first)
    const w = ctx.measureText(c.name).width / 2 + 2, h = fh * 0.6;
    const free = (y: number) => placed.every(([a, b, cc, d]) => x0 + w < a || x0 - w > cc || y + h < b || y - h > d);
    const y = [0, 1, -1, 2, -2].map((k) => y0 + k * fh * 1.1).find(free) ?? y0;
    placed.push([x0 - w, y - h, x0 + w, y + h]);
    const x = x0;
    ctx.lineWidth = Math.max(2, geom.font / 5); ctx.strokeStyle = 'rgba(0,0,0,0.8)'; ctx.strokeText(c.name, x, y);
    ctx.fillStyle = '#fff'; ctx.fillText(c.name, x, y);
  }
}

/** Writes the title above the map and 'L' / 'R' under the hemispheres (when they fit). */
function drawTitleAndHemispheres(ctx: Ctx, map: Flatmap, geom: FlatmapGeometry): void {
  ctx.fillStyle = '#222';
  if (map.title) {
    ctx.font = `${Math.round(geom.font * 1.2)}px sans-serif`;
    ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
    ctx.fillText(map.title, geom.map.x + geom.map.w / 2, geom.font * 1.3);
  }
  const b = map.layout.bounds;
  ctx.font = `${Math.round(geom.font * 0.8)}px sans-serif`;
  ctx.fillStyle = '#666'; ctx.textBaseline = 'top';
  const [lx, ly] = geom.toPixel(b.xmin, b.ymin), [rx] = geom.toPixel(b.xmax, b.ymin);
  if (ly + geom.font < geom.height && (!geom.key || map.key?.kind !== 'bar' || ly + geom.font < geom.key.y)) {
    ctx.textAlign = 'left'; ctx.fillText('L', lx, ly + 2);
    ctx.textAlign = 'right'; ctx.fillText('R', rx, ly + 2);
  }
}

/** Renders a flatmap to PNG bytes (`width` × `height` pixels, height fitted to the map when left out; outside the cortex: the background, white or transparent). */
export async function renderFlatmapPng(map: Flatmap, opts: RenderOptions = {}): Promise<Uint8Array> {
  const { canvas } = await drawFlatmapCanvas(map, opts);
  const buf = canvas.toBuffer('image/png');
  const png = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  return opts.palette ? palettePng(png, opts.palette === true ? {} : opts.palette) : png;
}
