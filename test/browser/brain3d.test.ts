/**
 * The 3-D surface viewer in a browser. A notebook that calls `display.brain3d` (the layer selector, R² and clusters of a
 * ground-truth fit of a tiny synthetic subject, on its sphere) is executed headless by the runner with the brainnet-ts
 * kernel; headless Chromium with software WebGL (SwiftShader) and no network opens the exported HTML and checks that
 * - the viewer is ready and its canvas is not blank;
 * - the overlay's colours appear where the ROIs are: at visible V1 vertices the picture is blue (early layers), at
 *   category-patch vertices red (late layers), at mesh vertices outside the data the grey underlay;
 * - a rotation (a mouse drag, and a view button) and a zoom (the wheel) change the picture;
 * - a hover (a real mouse move) at the bluest spot of the picture, and at a V1 vertex, reads out an early visual ROI
 *   and that vertex's index and ROI;
 * - the executed notebook's outputs, rendered as JupyterLab and VS Code render text/html (innerHTML, scripts re-created),
 *   mount the view too;
 * and keeps a screenshot (outputs/browser/brain3d.png). Without WebGL2 (--disable-3d-apis) the view is one line.
 * (brain3d-notebook.slow.ts runs the same notebook live in Jupyter Notebook.)
 * Skips, saying what to install, without /usr/bin/chromium (BRAINNET_CHROMIUM).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { installTestKernel, runNotebookCli, REPO, NOTEBOOK_CLI } from '../notebook/kernel-env';
import { CHROMIUM, launchChromium, openPage, removeDir, sleep, stopProcess, type Cdp, type Page } from './chromium';
import { notebookJson, SWIFTSHADER, VIEW } from './brain3d-notebook';

/** Decoded RGB pixels of a PNG screenshot, and the pixel at CSS (x, y) (the screenshots are at device scale 1). */
async function decode(png: Buffer): Promise<{ width: number; height: number; at(x: number, y: number): [number, number, number]; data: Buffer }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data, at: (x, y) => { const q = 3 * (Math.round(y) * info.width + Math.round(x)); return [data[q]!, data[q + 1]!, data[q + 2]!]; } };
}

async function shot(cdp: Cdp, page: Page, clip?: { x: number; y: number; width: number; height: number }): Promise<Buffer> {
  const r = await cdp.send('Page.captureScreenshot', { format: 'png', ...(clip ? { clip: { ...clip, scale: 1 } } : {}) }, page.session);
  return Buffer.from(r.data, 'base64');
}

describe('browser: the 3-D surface viewer (NiiVue) in exported HTML, headless Chromium with software WebGL', function () {
  this.timeout(240000);
  let dir = '', nbPath = '', htmlPath = '', rois: string[] = [];
  let kernel: ReturnType<typeof installTestKernel> | undefined;
  const procs: ChildProcess[] = [];
  let cdp: Cdp;
  let page: Page;
  /** The canvas's rectangle in the viewport now (the page may have scrolled), and the scroll offsets. */
  const box = async (): Promise<{ x: number; y: number; width: number; height: number; sx: number; sy: number }> =>
    page.evaluate(`(() => { const r = ${VIEW}.querySelector('canvas').getBoundingClientRect(); return { x: r.left, y: r.top, width: r.width, height: r.height, sx: window.scrollX, sy: window.scrollY }; })()`);
  /** A screenshot of the canvas alone, decoded. */
  const canvasShot = async () => { const b = await box(); return decode(await shot(cdp, page, { x: b.x + b.sx, y: b.y + b.sy, width: b.width, height: b.height })); };

  before(async function () {
    const missing = [fs.existsSync(CHROMIUM) ? '' : 'chromium'].filter(Boolean);
    if (missing.length) {
      console.log(`    (skipped: ${missing.join(' and ')} not installed; apt-get install -y ${missing.join(' ')} to run this test)`);
      this.skip();
    }
    assert.ok(fs.existsSync(NOTEBOOK_CLI), `${NOTEBOOK_CLI} is missing: run npm run build first`);
    kernel = installTestKernel();
    // inside the checkout (ignored outputs/), so that `import ... from 'brainnet'` resolves in the notebook
    fs.mkdirSync(path.join(REPO, 'outputs'), { recursive: true });
    dir = fs.mkdtempSync(path.join(REPO, 'outputs', 'browser-brain3d-'));
    nbPath = path.join(dir, 'brain3d.ipynb');
    fs.writeFileSync(nbPath, notebookJson(path.join(dir, 'subject')));
    const run = runNotebookCli([nbPath, '--out', path.join(dir, 'run'), '--timeout', '180'], kernel.jupyterPath, 220000);
    assert.equal(run.code, 0, `the notebook failed:\n${run.stdout}\n${run.stderr}`);
    htmlPath = path.join(dir, 'run', 'brain3d.html');
    const nb = JSON.parse(fs.readFileSync(path.join(dir, 'run', 'brain3d.ipynb'), 'utf8'));
    const txt = nb.cells[3].outputs.find((o: { data?: Record<string, unknown> }) => o.data?.['text/plain']);
    rois = JSON.parse(String(txt.data['text/plain']).slice('rois: '.length));

    const chrome = launchChromium(path.join(dir, 'profile'), SWIFTSHADER);
    procs.push(chrome.proc);
    cdp = chrome.cdp;
    page = await openPage(cdp, 'about:blank');
    await cdp.send('Network.enable', {}, page.session);
    await cdp.send('Page.enable', {}, page.session);
    await cdp.send('Page.navigate', { url: `file://${htmlPath}` }, page.session);
    await page.waitFor('the 3-D view', `${VIEW} && ${VIEW}.getAttribute('data-state') !== 'loading' && ${VIEW}.getAttribute('data-state')`, 90000);
  });

  after(async () => {
    for (const p of procs.reverse()) await stopProcess(p);
    kernel?.cleanup();
    if (dir) removeDir(dir);
  });

  it('draws the view from the inlined bundle: ready, not blank, no request leaving the machine', async () => {
    assert.equal(await page.evaluate(`${VIEW}.getAttribute('data-state')`), 'ready', await page.evaluate(`${VIEW}.textContent`));
    const html = fs.readFileSync(htmlPath, 'utf8');
    assert.equal(html.split('NiiVue v').length - 1, 1, 'the viewer bundle once');
    assert.doesNotMatch(html, /<script[^>]+src=/i);
    await sleep(500);
    const img = await canvasShot();
    let painted = 0;
    const colours = new Set<number>();
    for (let i = 0; i < img.data.length; i += 3) {
      const [r, g, b] = [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
      if (r < 245 || g < 245 || b < 245) painted++;
      colours.add((r >> 3) * 1024 + (g >> 3) * 32 + (b >> 3));
    }
    assert.ok(painted > 0.1 * img.width * img.height, `${painted} of ${img.width * img.height} pixels painted`);
    assert.ok(colours.size > 50, `${colours.size} colours`);
    const remote = cdp.events.filter((e) => e.method === 'Network.requestWillBeSent' && !/^(file|data|about|blob):/.test(e.params.request.url));
    assert.deepEqual(remote.map((e) => e.params.request.url), []);
  });

  it('shows the layer selector\'s colours where the ROIs are: V1 blue, category patches red, no data grey', async () => {
    await page.evaluate(`${VIEW}.brainnet.setView('posterior'), true`);
    await sleep(400);
    const b0 = await box();
    const img = await decode(await shot(cdp, page));
    // visible vertices: the pick at a vertex's projection finds that vertex (not one in front of it)
    const visible: { v: number; x: number; y: number }[] = await page.evaluate(`(() => { const b = ${VIEW}.brainnet, out = [];
      const n = ${rois.length};
      for (let v = 0; v < n; v++) { const p = b.project(v); if (!p) continue; const h = b.pick(p.x, p.y); if (h && h.vertex === v) out.push({ v, x: p.x, y: p.y }); }
      return out; })()`);
    assert.ok(visible.length > 0.5 * rois.length, `${visible.length} of ${rois.length} data vertices face the viewer`);
    const at = (x: number, y: number) => img.at(b0.x + x, b0.y + y);
    const early = visible.filter((p) => /^V1[vd]$/.test(rois[p.v]!));
    const late = visible.filter((p) => /^(FFA-1|FFA-2|FBA-1|FBA-2|PPA|RSC|VWFA-1|VWFA-2)$/.test(rois[p.v]!)); // 'late' patches (EBA, OFA, OPA are 'mid')
    assert.ok(early.length >= 5 && late.length >= 5, `${early.length} V1 and ${late.length} category vertices visible`);
    const blue = early.filter((p) => { const [r, , b] = at(p.x, p.y); return b > r + 20; }).length;
    const red = late.filter((p) => { const [r, , b] = at(p.x, p.y); return r > b + 20; }).length;
    assert.ok(blue >= 0.8 * early.length, `${blue} of ${early.length} V1 vertices drawn blue`);
    assert.ok(red >= 0.8 * late.length, `${red} of ${late.length} category vertices drawn red`);
    // a mesh vertex outside the data: the grey underlay
    const bare: { x: number; y: number } | null = await page.evaluate(`(() => { const b = ${VIEW}.brainnet, r = ${VIEW}.querySelector('canvas').getBoundingClientRect();
      for (let y = 10; y < r.height; y += 6) for (let x = 10; x < r.width; x += 6) { const h = b.pick(x, y); if (h && h.vertex < 0) return { x, y }; } return null; })()`);
    assert.ok(bare, 'some of the sphere carries no data');
    const [r, g, b] = at(bare!.x, bare!.y);
    assert.ok(Math.max(r, g, b) - Math.min(r, g, b) < 12 && r > 80, `underlay grey, found rgb(${r},${g},${b})`);
  });

  it('answers a real mouse hover with the vertex index and its ROI', async () => {
    await page.evaluate(`${VIEW}.brainnet.setView('posterior'), true`);
    await sleep(300);
    // the bluest spot of the picture (found in the pixels alone) is an early visual area
    const img = await canvasShot();
    let best = { x: 0, y: 0, s: -1e9 };
    for (let y = 0; y < img.height; y += 2) for (let x = 0; x < img.width; x += 2) { const [r, g, b] = img.at(x, y); const s = b - r - Math.abs(g - r) * 0.2; if (s > best.s) best = { x, y, s }; }
    const hover = async (x: number, y: number) => {
      const b = await box();
      await cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: b.x + x, y: b.y + y, button: 'none' }, page.session);
      await sleep(400);
      return String(await page.evaluate(`${VIEW}.querySelector('.bn3d-readout').textContent`));
    };
    const text = await hover(best.x, best.y);
    assert.match(text, /^vertex \d+ \((lh|rh) \d+\)\nROI: (V1v|V1d|V2v|V2d|V3v|V3d)\n/, text);
    // and at one V1 vertex, exactly that vertex
    const p = await page.evaluate(`(() => { const b = ${VIEW}.brainnet; for (let v = 0; v < ${rois.length}; v++) { if (!${JSON.stringify(rois)}[v].startsWith('V1')) continue; const p = b.project(v); const h = b.pick(p.x, p.y); if (h && h.vertex === v) return { v, x: p.x, y: p.y }; } return null; })()`);
    assert.ok(p, 'a visible V1 vertex');
    const t2 = await hover(p.x, p.y);
    assert.match(t2, new RegExp(`^vertex ${p.v} \\((lh|rh) \\d+\\)\\nROI: ${rois[p.v]}\\nlayer \\(argmax\\): 2\\n`), t2);
    assert.match(t2, /\nR²: 0\.\d+/);
  });

  it('rotates and zooms: a mouse drag, a view button and the wheel each change the picture; keeps a screenshot', async () => {
    await page.evaluate(`${VIEW}.brainnet.setView('posterior'), true`);
    await sleep(300);
    const before = await canvasShot();
    const b1 = await box();
    const cx = b1.x + b1.width / 2, cy = b1.y + b1.height / 2;
    await cdp.send('Input.dispatchMouseEvent', { type: 'mousePressed', x: cx, y: cy, button: 'left', buttons: 1, clickCount: 1 }, page.session);
    for (let k = 1; k <= 8; k++) await cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: cx + 15 * k, y: cy + 4 * k, button: 'left', buttons: 1 }, page.session);
    await cdp.send('Input.dispatchMouseEvent', { type: 'mouseReleased', x: cx + 120, y: cy + 32, button: 'left', buttons: 0, clickCount: 1 }, page.session);
    await sleep(500);
    const dragged = await canvasShot();
    const changed = (a: typeof before, b: typeof before) => { let n = 0; for (let i = 0; i < a.data.length; i += 3) if (Math.abs(a.data[i]! - b.data[i]!) + Math.abs(a.data[i + 1]! - b.data[i + 1]!) + Math.abs(a.data[i + 2]! - b.data[i + 2]!) > 30) n++; return n / (a.width * a.height); };
    const azimuth = await page.evaluate(`${VIEW}.brainnet.nv.scene.renderAzimuth`);
    assert.notEqual(azimuth, 0, 'the drag turned the camera');
    assert.ok(changed(before, dragged) > 0.03, `drag: ${(100 * changed(before, dragged)).toFixed(1)} % of pixels changed`);
    // the 'lateral lh' button, clicked with the mouse
    const btn = await page.evaluate(`(() => { const r = ${VIEW}.querySelector('button[data-view="lateral lh"]').getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`);
    await cdp.send('Input.dispatchMouseEvent', { type: 'mousePressed', x: btn.x, y: btn.y, button: 'left', buttons: 1, clickCount: 1 }, page.session);
    await cdp.send('Input.dispatchMouseEvent', { type: 'mouseReleased', x: btn.x, y: btn.y, button: 'left', buttons: 0, clickCount: 1 }, page.session);
    await sleep(500);
    assert.equal(await page.evaluate(`${VIEW}.getAttribute('data-view')`), 'lateral lh');
    const lateral = await canvasShot();
    assert.ok(changed(before, lateral) > 0.05, `view button: ${(100 * changed(before, lateral)).toFixed(1)} % of pixels changed`);
    // the wheel zooms (and does not scroll the page)
    const zoom0 = await page.evaluate(`${VIEW}.brainnet.nv.scene.volScaleMultiplier`), scroll0 = await page.evaluate('window.scrollY');
    const b3 = await box();
    await cdp.send('Input.dispatchMouseEvent', { type: 'mouseWheel', x: b3.x + b3.width / 2, y: b3.y + b3.height / 2, deltaX: 0, deltaY: 300 }, page.session);
    await sleep(500);
    assert.notEqual(await page.evaluate(`${VIEW}.brainnet.nv.scene.volScaleMultiplier`), zoom0, 'the wheel zoomed');
    assert.equal(await page.evaluate('window.scrollY'), scroll0, 'the page did not scroll');
    assert.ok(changed(lateral, await canvasShot()) > 0.02, 'zooming changed the picture');
    // the artefact: the whole page in the posterior view, with the readout of a V1 vertex under the mouse
    await page.evaluate(`${VIEW}.brainnet.setView('posterior'), true`);
    await sleep(400);
    const v1 = await page.evaluate(`(() => { const b = ${VIEW}.brainnet; for (let v = 0; v < ${rois.length}; v++) { if (!${JSON.stringify(rois)}[v].startsWith('V1')) continue; const p = b.project(v); const h = b.pick(p.x, p.y); if (h && h.vertex === v) return p; } return null; })()`);
    const b2 = await box();
    await cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: b2.x + v1.x, y: b2.y + v1.y, button: 'none' }, page.session);
    await sleep(400);
    assert.match(String(await page.evaluate(`${VIEW}.querySelector('.bn3d-readout').textContent`)), /ROI: V1/);
    const out = path.join(REPO, 'outputs', 'browser');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'brain3d.png'), await shot(cdp, page));
    if (process.env.BRAINNET_BROWSER_SHOT) fs.copyFileSync(path.join(out, 'brain3d.png'), process.env.BRAINNET_BROWSER_SHOT);
  });

  it('renders as JupyterLab and VS Code do: each output\'s HTML set as innerHTML, its scripts re-created in order', async () => {
    const nb = JSON.parse(fs.readFileSync(path.join(dir, 'run', 'brain3d.ipynb'), 'utf8'));
    const htmls = nb.cells.flatMap((c: { outputs?: { data?: Record<string, unknown> }[] }) => c.outputs ?? []).map((o: { data?: Record<string, unknown> }) => o.data?.['text/html'])
      .filter((h: unknown) => h !== undefined).map((h: string | string[]) => [h].flat().join(''));
    assert.equal(htmls.filter((h: string) => h.includes('NiiVue v')).length, 1, 'the notebook holds the viewer bundle once');
    const p = await openPage(cdp, 'about:blank');
    // JupyterLab's renderHTML: innerHTML, then evalInnerHTMLScriptTags (a new <script> with the same attributes and text)
    await p.evaluate(`(() => { for (const h of ${JSON.stringify(htmls)}) { const d = document.createElement('div'); d.className = 'jp-OutputArea-output'; d.innerHTML = h; document.body.appendChild(d);
      for (const s of Array.from(d.getElementsByTagName('script'))) { const c = document.createElement('script'); for (const a of Array.from(s.attributes)) c.setAttribute(a.name, a.value); c.textContent = s.textContent; s.parentNode.replaceChild(c, s); } } return true; })()`);
    const state = await p.waitFor('the 3-D view', `(() => { const e = ${VIEW}; return e && e.getAttribute('data-state') !== 'loading' && e.getAttribute('data-state'); })()`, 90000);
    assert.equal(state, 'ready', String(await p.evaluate(`${VIEW}.textContent`)));
    assert.equal(await p.evaluate(`${VIEW}.brainnet.state.overlay`), 0);
  });

  it('shows one line instead of a blank box without WebGL2', async () => {
    const chrome = launchChromium(path.join(dir, 'profile-nogl'), ['--disable-3d-apis', '--disable-webgl', '--host-resolver-rules=MAP * ~NOTFOUND']);
    procs.push(chrome.proc);
    const p = await openPage(chrome.cdp, `file://${htmlPath}`);
    await p.waitFor('the view', `${VIEW} && ${VIEW}.getAttribute('data-state') === 'no-webgl2'`, 60000);
    const text = String(await p.evaluate(`${VIEW}.innerText`));
    assert.match(text, /^3-D view unavailable: this browser gives no WebGL2 context/);
    assert.equal(text.trim().split('\n').length, 1);
  });
});
