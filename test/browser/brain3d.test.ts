/**
 * The 3-D surface viewer in a browser. A notebook that calls `display.brain3d` (the layer selector, R² and clusters of a
 * ground-truth fit of a tiny synthetic subject, on its sphere) is executed headless by the runner with the brainnet-ts
 * kernel; headless Chromium with software WebGL (SwiftShader) and no network opens the exported HTML and checks that
 * - the viewer is ready and its canvas is not blank;
 * - the overlay's colours appear where the ROIs are: at visible V1 vertices the picture is blue (early layers), at
 *   category-patch vertices red (late layers), at mesh vertices outside the data the grey underlay;
 * - a rotation (a mouse drag, and a view button) changes the picture;
 * - a hover (a real mouse move) at the bluest spot of the picture, and at a V1 vertex, reads out an early visual ROI
 *   and that vertex's index and ROI;
 * - the executed notebook's outputs, rendered as JupyterLab and VS Code render text/html (innerHTML, scripts re-created),
 *   mount the view too;
 * and keeps a screenshot (outputs/browser/brain3d.png). Without WebGL2 (--disable-3d-apis) the view is one line.
 * Jupyter Notebook (classic, RequireJS) runs the same notebook live and draws the view too.
 * Skips, saying what to install, without /usr/bin/chromium (BRAINNET_CHROMIUM) or jupyter-notebook.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { installTestKernel, runNotebookCli, REPO, NOTEBOOK_CLI } from '../notebook/kernel-env';
import { CHROMIUM, launchChromium, openPage, sleep, stopProcess, type Cdp, type Page } from './chromium';

const SWIFTSHADER = ['--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--host-resolver-rules=MAP * ~NOTFOUND'];
const VIEW = "document.querySelector('.brainnet-brain3d')";

/** The test notebook: a tiny subject, a ground-truth fit (no training), and one 3-D view with three overlays. */
function notebookJson(subjectDir: string): string {
  const cell = (source: string, tags: string[] = []) => ({ cell_type: 'code', metadata: tags.length ? { tags } : {}, source, outputs: [], execution_count: null });
  return JSON.stringify({
    nbformat: 4, nbformat_minor: 4,
    metadata: { kernelspec: { name: 'brainnet-ts', display_name: 'TypeScript (brainnet)', language: 'typescript' } },
    cells: [
      cell(`const subjectDir = ${JSON.stringify(subjectDir)};`, ['parameters']),
      cell(`import { display, loadAlgonautsSubject, subjectSurfaces, paperLayerSelector, paperR2, paperClusters, paperBrain3d } from 'brainnet';
import { groundTruthFit } from ${JSON.stringify(path.join(REPO, 'test', 'example', 'fake-fit'))};
const g = await groundTruthFit(subjectDir);
const subject = await loadAlgonautsSubject(subjectDir);
const figs = [await paperLayerSelector(g.fit, g.layout, { rois: g.rois, width: 500 }), await paperR2(g.fit, g.layout, { rois: g.rois, width: 500 }), await paperClusters(g.fit, g.layout, { rois: g.rois, width: 500 })];`),
      cell(`display.brain3d(paperBrain3d(figs, await subjectSurfaces(subject), { rois: g.rois, thresholdBy: { name: 'R²', values: g.fit.r2 }, title: 'Layer selector in 3-D' }));`),
      cell(`display.text('rois: ' + JSON.stringify(g.rois));`),
    ],
  });
}

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
  let canvasBox: { x: number; y: number; width: number; height: number };

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
    canvasBox = await page.evaluate(`(() => { const r = ${VIEW}.querySelector('canvas').getBoundingClientRect(); return { x: r.left, y: r.top, width: r.width, height: r.height }; })()`);
  });

  after(async () => {
    for (const p of procs.reverse()) await stopProcess(p);
    kernel?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('draws the view from the inlined bundle: ready, not blank, no request leaving the machine', async () => {
    assert.equal(await page.evaluate(`${VIEW}.getAttribute('data-state')`), 'ready', await page.evaluate(`${VIEW}.textContent`));
    const html = fs.readFileSync(htmlPath, 'utf8');
    assert.equal(html.split('NiiVue v').length - 1, 1, 'the viewer bundle once');
    assert.doesNotMatch(html, /<script[^>]+src=/i);
    await sleep(500);
    const img = await decode(await shot(cdp, page, canvasBox));
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
    const img = await decode(await shot(cdp, page));
    // visible vertices: the pick at a vertex's projection finds that vertex (not one in front of it)
    const visible: { v: number; x: number; y: number }[] = await page.evaluate(`(() => { const b = ${VIEW}.brainnet, out = [];
      const n = ${rois.length};
      for (let v = 0; v < n; v++) { const p = b.project(v); if (!p) continue; const h = b.pick(p.x, p.y); if (h && h.vertex === v) out.push({ v, x: p.x, y: p.y }); }
      return out; })()`);
    assert.ok(visible.length > 0.5 * rois.length, `${visible.length} of ${rois.length} data vertices face the viewer`);
    const at = (x: number, y: number) => img.at(canvasBox.x + x, canvasBox.y + y);
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
    const img = await decode(await shot(cdp, page, canvasBox));
    let best = { x: 0, y: 0, s: -1e9 };
    for (let y = 0; y < img.height; y += 2) for (let x = 0; x < img.width; x += 2) { const [r, g, b] = img.at(x, y); const s = b - r - Math.abs(g - r) * 0.2; if (s > best.s) best = { x, y, s }; }
    const hover = async (x: number, y: number) => {
      await cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: canvasBox.x + x, y: canvasBox.y + y, button: 'none' }, page.session);
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

  it('rotates: a mouse drag and a view button each change the picture; keeps a screenshot', async () => {
    await page.evaluate(`${VIEW}.brainnet.setView('posterior'), true`);
    await sleep(300);
    const before = await decode(await shot(cdp, page, canvasBox));
    const cx = canvasBox.x + canvasBox.width / 2, cy = canvasBox.y + canvasBox.height / 2;
    await cdp.send('Input.dispatchMouseEvent', { type: 'mousePressed', x: cx, y: cy, button: 'left', buttons: 1, clickCount: 1 }, page.session);
    for (let k = 1; k <= 8; k++) await cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: cx + 15 * k, y: cy + 4 * k, button: 'left', buttons: 1 }, page.session);
    await cdp.send('Input.dispatchMouseEvent', { type: 'mouseReleased', x: cx + 120, y: cy + 32, button: 'left', buttons: 0, clickCount: 1 }, page.session);
    await sleep(500);
    const dragged = await decode(await shot(cdp, page, canvasBox));
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
    const lateral = await decode(await shot(cdp, page, canvasBox));
    assert.ok(changed(before, lateral) > 0.05, `view button: ${(100 * changed(before, lateral)).toFixed(1)} % of pixels changed`);
    // the artefact: the whole page in the posterior view, with the readout of a V1 vertex under the mouse
    await page.evaluate(`${VIEW}.brainnet.setView('posterior'), true`);
    await sleep(400);
    const v1 = await page.evaluate(`(() => { const b = ${VIEW}.brainnet; for (let v = 0; v < ${rois.length}; v++) { if (!${JSON.stringify(rois)}[v].startsWith('V1')) continue; const p = b.project(v); const h = b.pick(p.x, p.y); if (h && h.vertex === v) return p; } return null; })()`);
    await cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: canvasBox.x + v1.x, y: canvasBox.y + v1.y, button: 'none' }, page.session);
    await sleep(400);
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

/** A free TCP port on localhost. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const port = (s.address() as net.AddressInfo).port; s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

const NOTEBOOK_SERVER = process.env.BRAINNET_JUPYTER_NOTEBOOK ?? '/usr/bin/jupyter-notebook';

describe('browser: the 3-D viewer in Jupyter Notebook (classic, RequireJS), run live', function () {
  this.timeout(240000);
  const procs: ChildProcess[] = [];
  const cleanups: (() => void)[] = [];
  let page: Page;

  before(async function () {
    const missing = [fs.existsSync(CHROMIUM) ? '' : 'chromium', fs.existsSync(NOTEBOOK_SERVER) ? '' : 'jupyter-notebook'].filter(Boolean);
    if (missing.length) {
      console.log(`    (skipped: ${missing.join(' and ')} not installed; apt-get install -y ${missing.join(' ')} to run this test)`);
      this.skip();
    }
    const kernel = installTestKernel();
    cleanups.push(kernel.cleanup);
    fs.mkdirSync(path.join(REPO, 'outputs'), { recursive: true });
    const dir = fs.mkdtempSync(path.join(REPO, 'outputs', 'browser-brain3d-nb-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'brain3d.ipynb'), notebookJson(path.join(dir, 'subject')));
    const port = await freePort();
    const token = `t${Math.random().toString(36).slice(2)}`;
    const home = path.join(kernel.prefix, 'home');
    const env = { ...process.env, JUPYTER_PATH: kernel.jupyterPath, JUPYTER_DATA_DIR: path.join(home, 'data'), JUPYTER_RUNTIME_DIR: path.join(home, 'runtime'),
      JUPYTER_CONFIG_DIR: path.join(home, 'config'), IPYTHONDIR: path.join(home, 'ipython'), PYTHONWARNINGS: 'ignore' };
    const server = spawn(NOTEBOOK_SERVER, ['--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0', `--NotebookApp.token=${token}`, `--notebook-dir=${dir}`,
      ...(process.getuid?.() === 0 ? ['--allow-root'] : [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(server);
    let log = '';
    server.stdout!.on('data', (d) => (log += d));
    server.stderr!.on('data', (d) => (log += d));
    const base = `http://127.0.0.1:${port}`;
    for (let t = Date.now(); ; await sleep(200)) {
      try { if ((await fetch(`${base}/api/status?token=${token}`)).ok) break; } catch { /* not up yet */ }
      if (Date.now() - t > 30000 || server.exitCode !== null) throw new Error(`jupyter-notebook did not start:\n${log}`);
    }
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-chromium-'));
    cleanups.push(() => fs.rmSync(profile, { recursive: true, force: true }));
    const chrome = launchChromium(profile, SWIFTSHADER.slice(0, 3));
    procs.push(chrome.proc);
    page = await openPage(chrome.cdp, `${base}/notebooks/brain3d.ipynb?token=${token}`);
  });

  after(async () => {
    for (const p of procs.reverse()) await stopProcess(p);
    for (const c of cleanups.reverse()) c();
  });

  it('runs the notebook in the front end and the view mounts next to RequireJS', async () => {
    await page.waitFor('the notebook and its kernel', '!!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected() && Jupyter.notebook.get_cells().length === 4)', 60000);
    assert.equal(await page.evaluate("typeof window.define === 'function' && !!window.define.amd"), true, 'RequireJS is on the page');
    await page.evaluate('Jupyter.notebook.execute_all_cells(), true');
    const state = await page.waitFor('the 3-D view', `(() => { const e = ${VIEW}; return e && e.getAttribute('data-state') !== 'loading' && e.getAttribute('data-state'); })()`, 180000);
    assert.equal(state, 'ready', String(await page.evaluate(`${VIEW}.textContent`)));
    assert.equal(await page.evaluate("document.querySelectorAll('[data-brainnet-bundle=\"brain3d\"]').length"), 1, 'the bundle ran once');
    const hit = await page.evaluate(`(() => { const b = ${VIEW}.brainnet, r = ${VIEW}.querySelector('canvas').getBoundingClientRect(); const h = b.pick(r.width * 0.3, r.height * 0.5); return h && h.hemi; })()`);
    assert.equal(hit, 'lh', 'posterior view: the left hemisphere on the left');
  });
});
