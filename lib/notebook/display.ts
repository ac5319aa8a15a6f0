/**
 * Inline display helpers for notebooks: HTML, Markdown, text, PNG/JPEG, SVG, JSON, Plotly
 * figures, Vega-Lite charts and 3-D surface views. Inside the brainnet-ts kernel each call becomes a notebook
 * output (a MIME bundle); outside one it prints a one-line summary so scripts still run.
 */
import * as fs from 'node:fs';
import { kernelHook, newDisplayId, type MimeBundle } from './kernel-hook.js';
import { BRAINNET_META, inlineScriptLoader, whenScriptJs, type InlineScript } from './scripts.js';
import { scriptJson } from './script-text.js';
import { brain3dBundle, brain3dLoaderBundle, type Brain3dDisplayOptions, type Brain3dPayload } from './brain3d.js';

export { BRAINNET_META } from './scripts.js';
export { scriptJson, scriptSafe } from './script-text.js';

/** The MIME type that carries a Plotly figure's JSON (JupyterLab's Plotly renderer); read from older notebooks, no longer written. */
export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';
/** The MIME type that carries a Vega-Lite spec (v5 renderer name; the data is the spec). */
export const VEGALITE_MIME = 'application/vnd.vegalite.v5+json';

/** A Plotly figure: traces, optional layout and config (plain JSON). */
export interface PlotlyFigure {
  data: unknown[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** Options for {@link Displayer.plotly}. */
export interface PlotlyDisplayOptions {
  /** CSS width of the plot div (default '100%'). */
  width?: string;
  /** CSS height of the plot div (default: layout.height px, else 450px). */
  height?: string;
}

/** Options for {@link Displayer.vegaLite}. */
export interface VegaLiteDisplayOptions {
  /** Render to inline SVG (default) or to a PNG through node-canvas. */
  format?: 'svg' | 'png';
  /** Pixel ratio for PNG output (default 2). */
  scale?: number;
}

/** The set of display verbs; `display` shows new outputs, a {@link DisplayHandle} replaces its own. */
export interface Displayer {
  /** Shows raw HTML. */
  html(s: string): void;
  /** Shows Markdown (rendered by the front end). */
  markdown(s: string): void;
  /** Shows plain text. */
  text(s: string): void;
  /** Shows PNG bytes (a complete .png file). */
  png(bytes: Uint8Array): void;
  /** Shows JPEG bytes (a complete .jpg file). */
  jpeg(bytes: Uint8Array): void;
  /** Shows an SVG document or fragment. */
  svg(s: string): void;
  /** Shows a JSON value (application/json, with a text fallback). */
  json(obj: unknown): void;
  /** Shows an interactive Plotly figure; the plotly.js bundle is inlined once per kernel process. */
  plotly(figure: PlotlyFigure, opts?: PlotlyDisplayOptions): void;
  /** Shows both hemispheres in 3-D (NiiVue, WebGL2) from a payload of `brain3dFigure` / `paperBrain3d`; the viewer is inlined once per kernel process. */
  brain3d(payload: Brain3dPayload, opts?: Brain3dDisplayOptions): void;
  /** Compiles a Vega-Lite spec and shows it rendered headless to SVG (default) or PNG. */
  vegaLite(spec: object, opts?: VegaLiteDisplayOptions): Promise<void>;
  /** Shows a ready-made MIME bundle (`{ 'text/plain': ..., 'image/png': base64, ... }`). */
  bundle(data: Record<string, unknown>, metadata?: Record<string, unknown>): void;
}

/** A display that can be replaced in place: every call replaces the same output. */
export interface DisplayHandle extends Displayer {
  /** The Jupyter display_id shared by all calls on this handle. */
  readonly id: string;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers: sizes, summaries, bundles

/** Human-readable byte count, e.g. `12.3 kB`. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Width and height of a PNG from its IHDR chunk, or undefined if `bytes` is not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || sig.some((b, i) => bytes[i] !== b)) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: dv.getUint32(16), height: dv.getUint32(20) };
}

/** Width and height of a JPEG from its first SOF marker, or undefined if not found. */
export function jpegSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const len = (bytes[i + 2] << 8) | bytes[i + 3];
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return { height: (bytes[i + 5] << 8) | bytes[i + 6], width: (bytes[i + 7] << 8) | bytes[i + 8] };
    i += 2 + len;
  }
  return undefined;
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** MIME bundle for a PNG image: `image/png` as base64 plus a text summary. */
export function pngBundle(bytes: Uint8Array): MimeBundle {
  const size = pngSize(bytes);
  if (!size) throw new Error(`display.png: expected PNG bytes (starting with \\x89PNG), found ${describeBytes(bytes)}; pass the bytes of a .png file (e.g. canvas.toBuffer('image/png'))`);
  return {
    data: { 'image/png': toBase64(bytes), 'text/plain': `[png ${size.width}x${size.height}, ${formatBytes(bytes.length)}]` },
    metadata: {},
  };
}

/** MIME bundle for a JPEG image: `image/jpeg` as base64 plus a text summary. */
export function jpegBundle(bytes: Uint8Array): MimeBundle {
  if (bytes.length < 2 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
    throw new Error(`display.jpeg: expected JPEG bytes (starting with FF D8), found ${describeBytes(bytes)}; pass the bytes of a .jpg file`);
  }
  const size = jpegSize(bytes);
  const dims = size ? `${size.width}x${size.height}, ` : '';
  return { data: { 'image/jpeg': toBase64(bytes), 'text/plain': `[jpeg ${dims}${formatBytes(bytes.length)}]` }, metadata: {} };
}

function describeBytes(bytes: unknown): string {
  if (!(bytes instanceof Uint8Array)) return `a ${bytes === null ? 'null' : typeof bytes}`;
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `${bytes.length} bytes beginning ${head || '(empty)'}`;
}

/** Width and height declared on an SVG's root element, if any. */
export function svgSize(svg: string): { width: number; height: number } | undefined {
  const m = /<svg\b[^>]*>/i.exec(svg);
  if (!m) return undefined;
  const w = /\bwidth="([\d.]+)/.exec(m[0]);
  const h = /\bheight="([\d.]+)/.exec(m[0]);
  return w && h ? { width: Math.round(+w[1]), height: Math.round(+h[1]) } : undefined;
}

/** MIME bundle for an SVG. */
export function svgBundle(svg: string, label = 'svg'): MimeBundle {
  const size = svgSize(svg);
  const dims = size ? `${size.width}x${size.height}, ` : '';
  return { data: { 'image/svg+xml': svg, 'text/plain': `[${label} ${dims}${formatBytes(Buffer.byteLength(svg))}]` }, metadata: {} };
}

/** MIME bundle for raw HTML. */
export function htmlBundle(html: string): MimeBundle {
  return { data: { 'text/html': html, 'text/plain': `[html ${formatBytes(Buffer.byteLength(html))}]` }, metadata: {} };
}

/** MIME bundle for a JSON value. */
export function jsonBundle(obj: unknown): MimeBundle {
  const text = JSON.stringify(obj, null, 2) ?? String(obj);
  // application/json must hold an object or array in nbformat; wrap scalars.
  const value = obj !== null && typeof obj === 'object' ? obj : { value: obj };
  return { data: { 'application/json': value, 'text/plain': text }, metadata: {} };
}


/** Absolute path of the plotly.js-dist bundle (10 MB of text, defines window.Plotly). */
export function plotlyBundlePath(): string {
  return require.resolve('plotly.js-dist/plotly.js');
}

/** plotly.js as an inlined bundle: its header names the version and licence. */
export const PLOTLY_SCRIPT: InlineScript = {
  name: 'plotly',
  global: 'Plotly',
  get banner() {
    const head = fs.readFileSync(plotlyBundlePath(), 'utf8').slice(0, 300);
    return `plotly.js v${/plotly\.js v([\w.-]+)/.exec(head)?.[1] ?? '?'} (plotly.js-dist, MIT licence)`;
  },
  source: () => fs.readFileSync(plotlyBundlePath(), 'utf8'),
};

/** The plotly.js loader `<script>`: the bundle gzipped and base64-encoded inline (no external URL), unpacked once per page. */
export function plotlyBundleScript(): string {
  return inlineScriptLoader(PLOTLY_SCRIPT);
}

/** HTML that draws `figure` into a fresh div once plotly.js is loaded in the page (by {@link plotlyBundleScript}). */
export function plotlyFigureHtml(figure: PlotlyFigure, id: string = newDisplayId('plotly'), opts: PlotlyDisplayOptions = {}): string {
  const layoutHeight = typeof figure.layout?.height === 'number' ? `${figure.layout.height}px` : undefined;
  const height = opts.height ?? layoutHeight ?? '450px';
  const width = opts.width ?? '100%';
  const config = { responsive: true, ...(figure.config ?? {}) };
  const draw = `function(P,el){el.textContent='';P.newPlot(el,${scriptJson(figure.data ?? [])},${scriptJson(figure.layout ?? {})},${scriptJson(config)});}`;
  return (
    `<div id="${id}" class="plotly-graph-div" style="width:${width};height:${height};"></div>\n` +
    `<script type="text/javascript">${whenScriptJs({ name: PLOTLY_SCRIPT.name, global: PLOTLY_SCRIPT.global, elId: id, label: 'plotly figure', draw })}</script>`
  );
}

/**
 * MIME bundle for a Plotly figure: HTML that draws it (one copy of the figure; JupyterLab, Jupyter Notebook and VS Code
 * run it in a trusted notebook), a text summary, and `{ brainnet: { plotly: true } }` in its metadata.
 */
export function plotlyBundle(figure: PlotlyFigure, opts: PlotlyDisplayOptions = {}): MimeBundle {
  if (!figure || !Array.isArray(figure.data)) {
    throw new Error(`display.plotly: expected a figure { data: [...traces], layout?, config? }, found ${figure === null ? 'null' : typeof figure}${figure && typeof figure === 'object' ? ` with keys [${Object.keys(figure).join(', ')}]` : ''}; wrap your traces as { data: [trace] }`);
  }
  return {
    data: {
      'text/html': plotlyFigureHtml(figure, undefined, opts),
      'text/plain': `[plotly figure: ${figure.data.length} trace${figure.data.length === 1 ? '' : 's'}]`,
    },
    metadata: { [BRAINNET_META]: { plotly: true } },
  };
}

/** The output that defines window.Plotly: the inlined, compressed bundle, flagged in metadata so renderers can skip it. */
export function plotlyLoaderBundle(): MimeBundle {
  return {
    data: { 'text/html': plotlyBundleScript(), 'text/plain': '[plotly.js loaded]' },
    metadata: { [BRAINNET_META]: { plotlyBundle: true } },
  };
}

/** A rendered Vega-Lite chart. */
export interface RenderedVegaLite {
  format: 'svg' | 'png';
  /** SVG text, or PNG bytes. */
  data: string | Uint8Array;
  width: number;
  height: number;
}

/** Compiles a Vega-Lite spec (vega-lite) and renders it headless with vega's View to SVG or PNG (node-canvas). */
export async function renderVegaLite(spec: object, opts: VegaLiteDisplayOptions = {}): Promise<RenderedVegaLite> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  let vgSpec;
  try {
    vgSpec = vl.compile(spec as Parameters<typeof vl.compile>[0]).spec;
  } catch (e) {
    throw new Error(`display.vegaLite: the spec does not compile with vega-lite: ${(e as Error).message}`);
  }
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  try {
    if ((opts.format ?? 'svg') === 'svg') {
      await view.runAsync();
      const svg = await view.toSVG();
      const size = svgSize(svg) ?? { width: view.width(), height: view.height() };
      return { format: 'svg', data: svg, ...size };
    }
    const scale = opts.scale ?? 2;
    const canvas = (await view.toCanvas(scale)) as unknown as { toBuffer(mime: 'image/png'): Buffer; width: number; height: number };
    if (typeof canvas.toBuffer !== 'function') {
      throw new Error('display.vegaLite: PNG output needs node-canvas (npm package `canvas`), which did not load; use { format: "svg" }');
    }
    const png = canvas.toBuffer('image/png');
    return { format: 'png', data: new Uint8Array(png.buffer, png.byteOffset, png.byteLength), width: canvas.width, height: canvas.height };
  } finally {
    view.finalize();
  }
}

// ---------------------------------------------------------------------------------------------
// Sending: to the kernel, or a summary line outside it

type Send = (bundle: MimeBundle) => void;

const PLOTLY_LOADED = Symbol.for('brainnet.notebook.plotlyLoaded');
const BRAIN3D_LOADED = Symbol.for('brainnet.notebook.brain3dLoaded');

/** Sends a bundle's loader as its own output the first time it is needed in this kernel process. */
function ensureLoaded(flag: symbol, loader: () => MimeBundle): void {
  const hook = kernelHook();
  if (!hook) return;
  const g = globalThis as Record<symbol, boolean | undefined>;
  if (g[flag]) return;
  hook.display(loader(), false);
  g[flag] = true;
}

/** Forgets that plotly.js was sent (for tests, or after a front end lost its outputs). */
export function resetPlotlyLoaded(): void {
  delete (globalThis as Record<symbol, boolean | undefined>)[PLOTLY_LOADED];
}

/** Forgets that the 3-D viewer (NiiVue) was sent (for tests, or after a front end lost its outputs). */
export function resetBrain3dLoaded(): void {
  delete (globalThis as Record<symbol, boolean | undefined>)[BRAIN3D_LOADED];
}

function summaryLine(bundle: MimeBundle): string {
  const d = bundle.data;
  if (typeof d['text/markdown'] === 'string') return d['text/markdown'] as string;
  return typeof d['text/plain'] === 'string' ? (d['text/plain'] as string) : `[${Object.keys(d).join(', ')}]`;
}

function makeDisplayer(send: Send): Displayer {
  return {
    html: (s) => send(htmlBundle(s)),
    markdown: (s) => send({ data: { 'text/markdown': s, 'text/plain': s }, metadata: {} }),
    text: (s) => send({ data: { 'text/plain': String(s) }, metadata: {} }),
    png: (bytes) => send(pngBundle(bytes)),
    jpeg: (bytes) => send(jpegBundle(bytes)),
    svg: (s) => send(svgBundle(s)),
    json: (obj) => send(jsonBundle(obj)),
    plotly: (figure, opts) => {
      const bundle = plotlyBundle(figure, opts);
      ensureLoaded(PLOTLY_LOADED, plotlyLoaderBundle);
      send(bundle);
    },
    brain3d: (payload, opts) => {
      const bundle = brain3dBundle(payload, opts);
      ensureLoaded(BRAIN3D_LOADED, brain3dLoaderBundle);
      send(bundle);
    },
    vegaLite: async (spec, opts) => {
      const r = await renderVegaLite(spec, opts);
      const bundle =
        r.format === 'svg'
          ? svgBundle(r.data as string, 'vega-lite svg')
          : { ...pngBundle(r.data as Uint8Array) };
      if (r.format === 'png') bundle.data['text/plain'] = `[vega-lite png ${r.width}x${r.height}, ${formatBytes((r.data as Uint8Array).length)}]`;
      send(bundle);
    },
    bundle: (data, metadata) => send({ data, metadata: metadata ?? {} }),
  };
}

function sendNew(bundle: MimeBundle): void {
  const hook = kernelHook();
  if (hook) hook.display(bundle, false);
  else console.log(summaryLine(bundle));
}

/** Inline display helpers: `display.png(bytes)`, `display.plotly(fig)`, ... (each call adds one output). */
export const display: Displayer = makeDisplayer(sendNew);

/** A display whose every call replaces the same output (Jupyter display_id + update_display_data). */
export function newDisplay(): DisplayHandle {
  const id = newDisplayId();
  let shown = false;
  const send: Send = (bundle) => {
    const hook = kernelHook();
    if (!hook) {
      console.log(summaryLine(bundle));
      return;
    }
    hook.display({ ...bundle, transient: { display_id: id } }, shown);
    shown = true;
  };
  return Object.assign(makeDisplayer(send), { id });
}

/** Clears the current cell's output (with `wait`, only when the next output arrives). Outside a kernel it does nothing. */
export function clearOutput(wait = false): void {
  kernelHook()?.clearOutput(wait);
}
