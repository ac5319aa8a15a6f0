/**
 * Reactive execution in a real front end: Debian's Jupyter Notebook server on localhost (with a token) opened in
 * headless Chromium, driven over the Chrome DevTools Protocol (--remote-debugging-pipe, so no WebSocket package).
 * Two cells, `const k = 2` and a `display.html(...)` that reads k; after both ran, the first cell is edited to
 * `const k = 5` and run alone, and the second cell's output must change in the DOM while its prompt keeps its count.
 * Skips (saying which apt packages to add) when /usr/bin/chromium or jupyter-notebook is missing (paths can be
 * overridden with BRAINNET_CHROMIUM and BRAINNET_JUPYTER_NOTEBOOK).
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { installTestKernel, REPO } from '../notebook/kernel-env';
import { CHROMIUM, launchChromium, openPage, removeDir, sleep, stopProcess, type Cdp, type Page } from './chromium';

const NOTEBOOK_SERVER = process.env.BRAINNET_JUPYTER_NOTEBOOK ?? '/usr/bin/jupyter-notebook';

/** A free TCP port on localhost. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

describe('browser: a dependent cell updates in Jupyter Notebook (headless Chromium)', function () {
  this.timeout(90000);
  const procs: ChildProcess[] = [];
  const cleanups: Array<() => void> = [];
  let cdp: Cdp;
  let page: Page;
  let shotPath: string;

  before(async function () {
    const missing = [fs.existsSync(CHROMIUM) ? '' : 'chromium', fs.existsSync(NOTEBOOK_SERVER) ? '' : 'jupyter-notebook'].filter(Boolean);
    if (missing.length) {
      console.log(`    (skipped: ${missing.join(' and ')} not installed; apt-get install -y ${missing.join(' ')} to run this test)`);
      this.skip();
    }
    const kernel = installTestKernel();
    cleanups.push(kernel.cleanup);
    // The notebook lives inside the checkout (ignored outputs/), so `import ... from 'brainnet'` resolves.
    fs.mkdirSync(path.join(REPO, 'outputs'), { recursive: true });
    const dir = fs.mkdtempSync(path.join(REPO, 'outputs', 'browser-test-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const cell = (source: string) => ({ cell_type: 'code', metadata: {}, source, outputs: [], execution_count: null });
    const nb = {
      nbformat: 4,
      nbformat_minor: 4,
      metadata: { kernelspec: { name: 'brainnet-ts', display_name: 'TypeScript (brainnet)', language: 'typescript' }, brainnet: { reactive: true } },
      cells: [cell('//% reactive on\nconst k = 2;'), cell("import { display } from 'brainnet';\ndisplay.html(`<b class=\"bn-k\">k is ${k}</b>`);")],
    };
    fs.writeFileSync(path.join(dir, 'reactive.ipynb'), JSON.stringify(nb));

    const port = await freePort();
    const token = `t${Math.random().toString(36).slice(2)}`;
    const jupyterHome = path.join(kernel.prefix, 'home');
    const env = {
      ...process.env,
      JUPYTER_PATH: kernel.jupyterPath,
      JUPYTER_DATA_DIR: path.join(jupyterHome, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(jupyterHome, 'runtime'),
      JUPYTER_CONFIG_DIR: path.join(jupyterHome, 'config'),
      IPYTHONDIR: path.join(jupyterHome, 'ipython'),
      PYTHONWARNINGS: 'ignore',
    };
    const server = spawn(NOTEBOOK_SERVER, ['--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0', `--NotebookApp.token=${token}`, `--notebook-dir=${dir}`, '--NotebookApp.open_browser=False', ...(process.getuid?.() === 0 ? ['--allow-root'] : [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(server);
    let serverLog = '';
    server.stdout!.on('data', (d) => (serverLog += d));
    server.stderr!.on('data', (d) => (serverLog += d));
    const base = `http://127.0.0.1:${port}`;
    for (let t = Date.now(); ; await sleep(200)) {
      try {
        if ((await fetch(`${base}/api/status?token=${token}`)).ok) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() - t > 30000 || server.exitCode !== null) throw new Error(`jupyter-notebook did not start:\n${serverLog}`);
    }

    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-chromium-'));
    cleanups.push(() => removeDir(profile));
    const chrome = launchChromium(profile);
    procs.push(chrome.proc);
    cdp = chrome.cdp;
    page = await openPage(cdp, `${base}/notebooks/reactive.ipynb?token=${token}`);
    shotPath = path.join(dir, 'reactive.png');
  });

  after(async () => {
    for (const p of procs.reverse()) await stopProcess(p);
    for (const c of cleanups.reverse()) c();
  });

  it('editing `const k` and running only that cell updates the display of the cell that reads k', async () => {
    await page.waitFor('the notebook and its kernel', "!!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected() && Jupyter.notebook.kernel_selector && Jupyter.notebook.get_cells().length === 2)");
    await page.evaluate('Jupyter.notebook.execute_all_cells(), true');
    const outputOf2 = "(document.querySelectorAll('.cell')[1].querySelector('.output_area .bn-k') || {}).textContent || ''";
    assert.equal(await page.waitFor('the first run of cell 2', outputOf2), 'k is 2');
    const prompt2 = "document.querySelectorAll('.cell')[1].querySelector('.input_prompt').textContent.replace(/\\s+/g, '')";
    const before = await page.waitFor('cell 2 prompt', `/\\[\\d+\\]/.test(${prompt2}) && ${prompt2}`);
    // Edit the first cell in the front end and run it alone.
    await page.evaluate("Jupyter.notebook.get_cell(0).set_text('//% reactive on\\nconst k = 5;'), Jupyter.notebook.select(0), Jupyter.notebook.execute_cells([0]), true");
    assert.equal(await page.waitFor('the updated output of cell 2', `(${outputOf2}) === 'k is 5' && 'k is 5'`), 'k is 5');
    assert.equal(await page.evaluate(prompt2), before, 'cell 2 was not run by the front end: its prompt keeps its count');
    assert.equal(await page.evaluate("document.querySelectorAll('.cell')[1].querySelectorAll('.output_area').length"), 1, 'the output was replaced, not appended');
    const text1 = await page.waitFor('cell 1 output', "document.querySelectorAll('.cell')[0].querySelector('.output_area') && document.querySelectorAll('.cell')[0].querySelector('.output_subarea').textContent");
    assert.match(text1, /\[reactive\] re-ran 1 cell/);
    const shot = await cdp.send('Page.captureScreenshot', { format: 'png' }, page.session);
    fs.writeFileSync(shotPath, Buffer.from(shot.data, 'base64'));
    if (process.env.BRAINNET_BROWSER_SHOT) fs.copyFileSync(shotPath, process.env.BRAINNET_BROWSER_SHOT);
  });
});
