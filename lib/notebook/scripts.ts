/**
 * Heavy JavaScript bundles (plotly.js, the NiiVue surface viewer) inlined into a notebook output, and into the runner's
 * self-contained HTML, once each and compressed: the bundle is gzipped and base64-encoded inside a small loader
 * `<script>` (plotly.js: 10.1 MB as text, 2.6 MB this way; nothing is fetched from a CDN).
 *
 * In the browser the loader unpacks the bundle with `DecompressionStream('gzip')` and runs it as a classic script in
 * which `define`, `module`, `exports` and `require` are hidden, so that a UMD bundle sets its global even in Jupyter
 * Notebook (whose RequireJS would otherwise capture it as an anonymous module). The loader stores a promise of that
 * global in `window.__brainnetScripts[name]`; a figure's own `<script>` waits on it ({@link whenScriptJs}), for a few
 * seconds if its output is rendered before the loader's (or the loader output was lost), then says what to do.
 * JupyterLab, Jupyter Notebook and VS Code run such scripts in the text/html outputs of a trusted notebook.
 */
import * as zlib from 'node:zlib';
import { scriptJson } from './script-text.js';

/** Output metadata key brainnet puts on its own outputs (e.g. `{ plotlyBundle: true }`). */
export const BRAINNET_META = 'brainnet';

/** A bundle to inline: a registry name, its global (`window[global]` once it ran) and its source text. */
export interface InlineScript {
  /** Key in `window.__brainnetScripts`, e.g. 'plotly'. */
  name: string;
  /** The global the bundle defines, e.g. 'Plotly'. */
  global: string;
  /** A one-line comment kept readable at the top of the loader (what the bundle is, its version and licence). */
  banner: string;
  /** The JavaScript source (read lazily: it can be megabytes). */
  source: () => string;
}

const cache = new Map<string, string>();

/** The base64 gzip of a bundle's source (computed once per process and bundle name). */
export function packedScript(s: InlineScript): string {
  let b64 = cache.get(s.name);
  if (b64 === undefined) {
    b64 = zlib.gzipSync(Buffer.from(s.source(), 'utf8'), { level: 9 }).toString('base64');
    cache.set(s.name, b64);
  }
  return b64;
}

/**
 * The loader `<script>` of a bundle: unpacks and runs it once per page, and resolves `window.__brainnetScripts[name]`
 * to `window[global]` (rejects with a one-line reason: no DecompressionStream, or the bundle did not define its global).
 */
export function inlineScriptLoader(s: InlineScript): string {
  const name = scriptJson(s.name), global = scriptJson(s.global);
  return (
    `<script type="text/javascript">/* ${s.banner.replace(/\*\//g, '* /')}; gzip + base64, unpacked in the browser (inlined by brainnet) */\n` +
    `(function(){var w=window,reg=w.__brainnetScripts||(w.__brainnetScripts={}),name=${name},glob=${global};` +
    `if(reg[name])return;` +
    `reg[name]=(async function(){` +
    `if(typeof DecompressionStream==='undefined')throw new Error('this browser cannot unpack the inlined '+name+' bundle (no DecompressionStream); use a current Chrome, Edge, Firefox, Safari or VS Code');` +
    `var bin=atob(${JSON.stringify(packedScript(s))});var bytes=new Uint8Array(bin.length);for(var i=0;i<bin.length;i++)bytes[i]=bin.charCodeAt(i);` +
    `var text=await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();` +
    `var el=document.createElement('script');el.setAttribute('data-brainnet-bundle',name);` +
    `el.textContent='(function(define,module,exports,require){'+text+'\\n}).call(window);';` +
    `(document.head||document.documentElement).appendChild(el);` +
    `if(!w[glob])throw new Error('the inlined '+name+' bundle did not define window.'+glob);return w[glob];})();` +
    `reg[name].catch(function(e){console.error('[brainnet] '+e.message);});})();</script>`
  );
}

/**
 * JavaScript (an expression statement) that calls `draw(global)` once the bundle `name` is loaded, or writes a one-line
 * message into the element with id `elId` when it fails or is not there after `waitMs`. A page that defined `window[global]`
 * without the loader (an older notebook's plain bundle) is accepted as loaded.
 */
export function whenScriptJs(opts: { name: string; global: string; elId: string; label: string; draw: string; waitMs?: number }): string {
  const { name, global, elId, label, draw } = opts;
  return (
    `(function(){var el=document.getElementById(${scriptJson(elId)}),t0=Date.now(),draw=${draw};` +
    `var say=function(m){el.textContent='['+${scriptJson(label)}+': '+m+']';};` +
    `(function poll(){var reg=window.__brainnetScripts||{},p=reg[${scriptJson(name)}]||(window[${scriptJson(global)}]?Promise.resolve(window[${scriptJson(global)}]):null);` +
    `if(p){p.then(function(g){try{draw(g,el);}catch(e){say(e.message);console.error(e);}},function(e){say(e.message);});return;}` +
    `if(Date.now()-t0>${opts.waitMs ?? 8000}){say('its script is not loaded in this page; run the notebook from the top');return;}` +
    `setTimeout(poll,100);})();})();`
  );
}
