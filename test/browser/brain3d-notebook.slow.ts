/**
 * Slow (about a minute): the 3-D viewer in Jupyter Notebook (classic, with RequireJS on the page, which would capture a
 * UMD bundle as an anonymous module): Debian's jupyter-notebook on localhost, headless Chromium with software WebGL, the
 * test notebook (brain3d-notebook.ts) executed from the front end; the view must mount, the bundle must run once, and a
 * pick on the left of the posterior view must find the left hemisphere.
 * Skips, saying what to install, without /usr/bin/chromium (BRAINNET_CHROMIUM) or jupyter-notebook (BRAINNET_JUPYTER_NOTEBOOK).
 * Run: npm run build && npx mocha --timeout 600000 test/browser/brain3d-notebook.slow.ts
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { installTestKernel, REPO } from '../notebook/kernel-env';
import { CHROMIUM, launchChromium, openPage, removeDir, sleep, stopProcess, type Page } from './chromium';
import { notebookJson, SWIFTSHADER, VIEW } from './brain3d-notebook';

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
    cleanups.push(() => removeDir(dir));
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
    cleanups.push(() => removeDir(profile));
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
