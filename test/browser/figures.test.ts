/**
 * The interactive flatmap opens in headless Chromium with no network: a notebook HTML page (renderNotebookHtml, as
 * `npm run example` writes it) holding the layer-selector figure from `paperPlotly` (2-D Plotly, plotly.js inlined)
 * draws its plot (.plot-container .main-svg) and answers `Plotly.Fx.hover` on a V1 vertex with a tooltip that names
 * the vertex index and its ROI. DNS is mapped to nothing and every request that is not file:// or data: is counted.
 * Chromium is driven over the DevTools Protocol pipe (no npm package). Skips, saying what to install, without
 * /usr/bin/chromium (override with BRAINNET_CHROMIUM).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { paperLayerSelector, paperPlotly } from 'brainnet';
import { plotlyBundle, plotlyLoaderBundle } from 'brainnet/notebook';
import { renderNotebookHtml, type Notebook } from 'brainnet/runner';
import { groundTruthFit } from '../example/fake-fit';
import { CHROMIUM, launchChromium, openPage, removeDir, stopProcess, type Cdp, type Page } from './chromium';

describe('browser: interactive flatmap in headless Chromium (no network)', function () {
  this.timeout(120000);
  let chrome: ChildProcess | undefined;
  let cdp: Cdp;
  let page: Page;
  const cleanups: (() => void)[] = [];
  let v1Index = -1, v1Roi = '';

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.log(`    (skipped: ${CHROMIUM} not found; apt-get install -y chromium to run this test)`);
      this.skip();
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-figbrowser-'));
    cleanups.push(() => removeDir(dir));
    const g = await groundTruthFit(path.join(dir, 'subject'));
    v1Index = g.rois.findIndex((r) => r.startsWith('V1'));
    v1Roi = g.rois[v1Index]!;
    const fig = await paperLayerSelector(g.fit, g.layout, { rois: g.rois, width: 600 });
    // the page as the notebook runner writes it: the plotly.js loader output, then the figure output
    const out = (b: { data: Record<string, unknown>; metadata?: Record<string, unknown> }) => ({ output_type: 'display_data', data: b.data, metadata: b.metadata ?? {} });
    const nb = {
      nbformat: 4, nbformat_minor: 5, metadata: {},
      cells: [{ cell_type: 'code', id: 'c1', metadata: {}, execution_count: 1, source: ['display.plotly(await paperPlotly(layerFig));'],
        outputs: [out(plotlyLoaderBundle()), out(plotlyBundle(await paperPlotly(fig)))] }],
    } as unknown as Notebook;
    const html = await renderNotebookHtml(nb);
    assert.ok(!/<script[^>]+src=["']https?:/i.test(html), 'no external scripts');
    const htmlPath = path.join(dir, 'figure.html');
    fs.writeFileSync(htmlPath, html);

    ({ proc: chrome, cdp } = launchChromium(path.join(dir, 'profile'), ['--host-resolver-rules=MAP * ~NOTFOUND']));
    // network events are recorded from the start, so a request made while the page loads is seen
    page = await openPage(cdp, 'about:blank');
    await cdp.send('Network.enable', {}, page.session);
    await cdp.send('Page.enable', {}, page.session);
    await cdp.send('Page.navigate', { url: `file://${htmlPath}` }, page.session);
  });

  after(async () => {
    await stopProcess(chrome);
    for (const c of cleanups.reverse()) c();
  });

  it('draws the plot from the inlined plotly.js, with no request leaving the machine', async () => {
    await page.waitFor('the plot', "!!document.querySelector('.plot-container .main-svg') && !!window.Plotly");
    const traces = await page.evaluate("document.querySelector('.plotly-graph-div').data.length");
    assert.ok(traces >= 2, `vertex markers and ROI outlines: ${traces} traces`);
    assert.ok(await page.evaluate("!!document.querySelector('.plot-container .layer-below image, .plot-container image')"), 'the cortex image is drawn');
    const remote = cdp.events.filter((e) => e.method === 'Network.requestWillBeSent' && !/^(file|data|about|blob):/.test(e.params.request.url));
    assert.deepEqual(remote.map((e) => e.params.request.url), []);
  });

  it('answers a hover on a V1 vertex with its index and ROI', async () => {
    await page.waitFor('the plot', "!!document.querySelector('.plot-container .main-svg')");
    await page.evaluate(`(() => { const gd = document.querySelector('.plotly-graph-div');
      const i = gd.data[0].hovertext.findIndex((t) => t.startsWith('vertex ${v1Index} '));
      Plotly.Fx.hover(gd, [{ curveNumber: 0, pointNumber: i }]); return i; })()`);
    const tip = await page.waitFor('the tooltip', "(document.querySelector('.hoverlayer .hovertext') || {}).textContent || ''", 10000);
    assert.match(tip, new RegExp(`vertex ${v1Index} `));
    assert.match(tip, new RegExp(`ROI: ${v1Roi}`));
    assert.match(tip, /layer \(argmax\): 2/);
  });
});
