/**
 * Renders an executed notebook as one self-contained HTML page: Markdown rendered, code,
 * streams, HTML, images as data URIs, SVG inline, Plotly figures and 3-D surface views drawn by
 * their bundles (plotly.js; NiiVue and the viewer), each inlined exactly once in the page's head,
 * compressed, and errors. Nothing is loaded from an external URL.
 */
import type { NotebookOutput } from './jupyter-client.js';
import { stripAnsi } from './jupyter-client.js';
import { BRAINNET_META, PLOTLY_MIME, plotlyBundleScript, plotlyFigureHtml, type PlotlyFigure } from '../notebook/display.js';
import { BRAIN3D_SCRIPT } from '../notebook/brain3d.js';
import { inlineScriptLoader } from '../notebook/scripts.js';
import { sourceText, type Notebook, type NotebookCell } from './nbformat.js';

/** Options for {@link renderNotebookHtml}. */
export interface HtmlOptions {
  /** Page title (default: the notebook's metadata title, else 'notebook'). */
  title?: string;
  /** The plotly.js `<script>` to inline when the notebook has Plotly outputs (default: plotly.js-dist's bundle, compressed). */
  plotlyScript?: () => string;
  /** The 3-D viewer's `<script>` to inline when the notebook has 3-D views (default: NiiVue and the viewer, compressed). */
  brain3dScript?: () => string;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function text(v: unknown): string {
  return Array.isArray(v) ? v.join('') : typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

/** Applies carriage returns the way a terminal would (each line keeps what follows its last \r). */
export function applyCarriageReturns(s: string): string {
  return s
    .split('\n')
    .map((line) => {
      const parts = line.split('\r');
      let out = '';
      for (const p of parts) out = p + out.slice(p.length);
      return out;
    })
    .join('\n');
}

type BrainnetMeta = { plotlyBundle?: boolean; plotly?: boolean; brain3dBundle?: boolean; brain3d?: boolean };

/** brainnet's own flags on an output's metadata (which bundle it loads, or which kind of figure it is). */
function brainnetMeta(o: NotebookOutput): BrainnetMeta {
  if (o.output_type !== 'display_data' && o.output_type !== 'execute_result') return {};
  return (o.metadata?.[BRAINNET_META] as BrainnetMeta | undefined) ?? {};
}

/** True for the output that only carries the plotly.js bundle (brainnet's loader output). */
export function isPlotlyLoader(o: NotebookOutput): boolean {
  return brainnetMeta(o).plotlyBundle === true;
}

/** True for the output that only carries the 3-D viewer's bundle (NiiVue and the viewer script). */
export function isBrain3dLoader(o: NotebookOutput): boolean {
  return brainnetMeta(o).brain3dBundle === true;
}

const outputs = (nb: Notebook) => nb.cells.flatMap((c) => c.outputs ?? []);

/** True when any output of the notebook is a Plotly figure (brainnet's, or an older notebook's Plotly JSON). */
export function hasPlotly(nb: Notebook): boolean {
  return outputs(nb).some((o) => brainnetMeta(o).plotly === true || ((o.output_type === 'display_data' || o.output_type === 'execute_result') && PLOTLY_MIME in o.data));
}

/** True when any output of the notebook is a 3-D surface view. */
export function hasBrain3d(nb: Notebook): boolean {
  return outputs(nb).some((o) => brainnetMeta(o).brain3d === true);
}

type Markdown = (md: string) => string;

let plotCounter = 0;

/** HTML for one output (empty string for outputs that render nothing, like the plotly.js loader). */
export function renderOutput(o: NotebookOutput, md: Markdown): string {
  switch (o.output_type) {
    case 'stream':
      return `<pre class="stream ${o.name}">${escapeHtml(stripAnsi(applyCarriageReturns(text(o.text))))}</pre>`;
    case 'error': {
      const tb = o.traceback.length ? o.traceback.map((l) => stripAnsi(l)).join('\n') : `${o.ename}: ${o.evalue}`;
      return `<pre class="error"><b>${escapeHtml(o.ename || 'Error')}: ${escapeHtml(o.evalue)}</b>\n${escapeHtml(tb)}</pre>`;
    }
    case 'display_data':
    case 'execute_result': {
      if (isPlotlyLoader(o) || isBrain3dLoader(o)) return '';
      const d = o.data;
      let body: string;
      if (d[PLOTLY_MIME]) {
        // an older notebook's Plotly output (figure JSON; its HTML expected plotly.js loaded synchronously): drawn anew
        const fig = d[PLOTLY_MIME] as PlotlyFigure;
        body = plotlyFigureHtml(fig, `brainnet-plot-${++plotCounter}`);
      } else if (d['text/html'] !== undefined) body = text(d['text/html']);
      else if (d['image/svg+xml'] !== undefined) body = text(d['image/svg+xml']);
      else if (d['image/png'] !== undefined) body = `<img src="data:image/png;base64,${text(d['image/png']).replace(/\s/g, '')}" alt="png output">`;
      else if (d['image/jpeg'] !== undefined) body = `<img src="data:image/jpeg;base64,${text(d['image/jpeg']).replace(/\s/g, '')}" alt="jpeg output">`;
      else if (d['text/markdown'] !== undefined) body = `<div class="markdown">${md(text(d['text/markdown']))}</div>`;
      else if (d['application/json'] !== undefined) body = `<pre>${escapeHtml(JSON.stringify(d['application/json'], null, 2))}</pre>`;
      else if (d['text/plain'] !== undefined) body = `<pre>${escapeHtml(stripAnsi(text(d['text/plain'])))}</pre>`;
      else body = `<pre>[output with ${escapeHtml(Object.keys(d).join(', '))}]</pre>`;
      return `<div class="display">${body}</div>`;
    }
    default:
      return '';
  }
}

function renderMarkdownCell(c: NotebookCell, md: Markdown): string {
  let src = sourceText(c.source);
  // Attachments (pasted images): attachment:name -> data URI.
  for (const [name, bundle] of Object.entries(c.attachments ?? {})) {
    const b = bundle as Record<string, unknown>;
    const mime = Object.keys(b).find((k) => k.startsWith('image/'));
    if (mime) src = src.split(`attachment:${name}`).join(`data:${mime};base64,${text(b[mime]).replace(/\s/g, '')}`);
  }
  return `<div class="cell markdown">${md(src)}</div>`;
}

function renderCodeCell(c: NotebookCell, md: Markdown): string {
  const count = c.execution_count ?? ' ';
  const tags = Array.isArray(c.metadata?.tags) ? c.metadata.tags : [];
  const cls = tags.includes('injected-parameters') ? ' injected' : '';
  const outputs = (c.outputs ?? []).map((o) => renderOutput(o, md)).filter(Boolean).join('\n');
  return (
    `<div class="cell code${cls}">` +
    `<div class="input"><div class="prompt">In&nbsp;[${count}]:</div><pre class="source">${escapeHtml(sourceText(c.source))}</pre></div>` +
    (outputs ? `<div class="outputs">${outputs}</div>` : '') +
    `</div>`
  );
}

const CSS = `
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
.cell{margin:1em 0}
.input{display:flex;gap:.5em}
.prompt{color:#303f9f;font-family:monospace;min-width:5.5em;text-align:right;padding-top:.5em}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:13px}
pre.source{flex:1;background:#f5f5f5;border:1px solid #e0e0e0;border-radius:3px;padding:.5em}
.injected pre.source{background:#fff8e1}
.outputs{margin-left:6em;padding:.3em 0}
.outputs>*{margin:.3em 0}
pre.stderr{background:#fdecea}
pre.error{background:#fdecea;color:#b71c1c;padding:.5em}
.display img{max-width:100%}
.markdown img{max-width:100%}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px}
`;

/** Renders a (usually executed) notebook as a self-contained HTML page. */
export async function renderNotebookHtml(nb: Notebook, opts: HtmlOptions = {}): Promise<string> {
  const { marked } = await import('marked');
  const md: Markdown = (s) => marked.parse(s, { async: false, gfm: true }) as string;
  const title = opts.title ?? (typeof nb.metadata?.title === 'string' ? (nb.metadata.title as string) : 'notebook');
  // each bundle once, in the head, whether or not the notebook kept its loader output
  const plotly = hasPlotly(nb) ? (opts.plotlyScript ?? plotlyBundleScript)() : '';
  const brain3d = hasBrain3d(nb) ? (opts.brain3dScript ?? (() => inlineScriptLoader(BRAIN3D_SCRIPT)))() : '';
  const cells = nb.cells
    .map((c) => (c.cell_type === 'markdown' ? renderMarkdownCell(c, md) : c.cell_type === 'code' ? renderCodeCell(c, md) : `<div class="cell raw"><pre>${escapeHtml(sourceText(c.source))}</pre></div>`))
    .join('\n');
  return (
    `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>${escapeHtml(title)}</title>\n<style>${CSS}</style>\n${plotly}\n${brain3d}\n</head>\n<body>\n${cells}\n</body>\n</html>\n`
  );
}
