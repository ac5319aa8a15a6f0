import { strict as assert } from 'node:assert';
import { plotlyLoaderBundle, plotlyBundle, PLOTLY_MIME, brain3dLoaderBundle } from 'brainnet/notebook';
import { renderNotebookHtml, type Notebook, type NotebookOutput } from 'brainnet/runner';

const PNG_1x1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

function notebook(): Notebook {
  const fig = plotlyBundle({ data: [{ y: [1, 2, 3] }] });
  const fig2 = plotlyBundle({ data: [{ y: [3, 2, 1] }] });
  const loader = plotlyLoaderBundle();
  const dd = (b: { data: Record<string, unknown>; metadata?: Record<string, unknown> }): NotebookOutput => ({ output_type: 'display_data', data: b.data, metadata: b.metadata ?? {} });
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      { id: 'm', cell_type: 'markdown', metadata: {}, source: ['# Heading\n', 'Some **bold** text and a [link](https://example.org).\n\n![pasted](attachment:dot.png)'], attachments: { 'dot.png': { 'image/png': PNG_1x1 } } },
      {
        id: 'c1', cell_type: 'code', metadata: {}, execution_count: 1, source: 'const a = "<tag>";',
        outputs: [
          { output_type: 'stream', name: 'stdout', text: 'hello <world>\n50%\r100%\n' },
          { output_type: 'stream', name: 'stderr', text: 'careful\n' },
          dd({ data: { 'text/html': '<table><tr><td>cell</td></tr></table>', 'text/plain': 'table' } }),
          dd({ data: { 'image/png': PNG_1x1, 'text/plain': '[png]' } }),
          dd({ data: { 'image/jpeg': '/9j/AAAA', 'text/plain': '[jpeg]' } }),
          dd({ data: { 'image/svg+xml': '<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5"><rect width="5" height="5"/></svg>', 'text/plain': '[svg]' } }),
          dd({ data: { 'text/markdown': '*emph*', 'text/plain': '*emph*' } }),
          dd({ data: { 'application/json': { k: [1] }, 'text/plain': '{}' } }),
          { output_type: 'execute_result', execution_count: 1, data: { 'text/plain': "'<quoted>'" }, metadata: {} },
        ],
      },
      { id: 'c2', cell_type: 'code', metadata: {}, execution_count: 2, source: 'plot()', outputs: [dd(loader), dd(fig)] },
      { id: 'c3', cell_type: 'code', metadata: {}, execution_count: 3, source: 'plot2()', outputs: [dd(fig2)] },
      // an older notebook's Plotly output: the figure as JSON, and HTML that expected plotly.js loaded synchronously
      { id: 'c3b', cell_type: 'code', metadata: {}, execution_count: 3, source: 'old()', outputs: [dd({ data: { [PLOTLY_MIME]: { data: [{ y: [7, 8] }], layout: {} }, 'text/html': '<div>old</div>', 'text/plain': '[plotly figure: 1 trace]' } })] },
      { id: 'c4', cell_type: 'code', metadata: {}, execution_count: 4, source: 'boom()', outputs: [{ output_type: 'error', ename: 'TypeError', evalue: 'x is <undefined>', traceback: ['\x1b[31mTypeError: x is <undefined>\x1b[0m', 'Cell In[4], line 1'] }] },
    ],
  };
}

describe('notebook/html', () => {
  let html = '';
  before(async function () {
    this.timeout(30000);
    html = await renderNotebookHtml(notebook(), { title: 'demo' });
  });

  it('renders markdown, code and every output type', () => {
    assert.match(html, /<h1[^>]*>Heading<\/h1>/);
    assert.match(html, /<strong>bold<\/strong>/);
    assert.match(html, /<img src="data:image\/png;base64,iVBOR[^"]*" alt="pasted"/);
    assert.match(html, /In&nbsp;\[1\]:<\/div><pre class="source">const a = &quot;&lt;tag&gt;&quot;;<\/pre>/);
    assert.match(html, /<pre class="stream stdout">hello &lt;world&gt;\n100%\n<\/pre>/);
    assert.match(html, /<pre class="stream stderr">careful/);
    assert.match(html, /<table><tr><td>cell<\/td><\/tr><\/table>/);
    assert.match(html, /<img src="data:image\/png;base64,iVBOR/);
    assert.match(html, /<img src="data:image\/jpeg;base64,\/9j\/AAAA"/);
    assert.match(html, /<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="5"/);
    assert.match(html, /<em>emph<\/em>/);
    assert.match(html, /&quot;k&quot;/);
    assert.match(html, /&#39;&lt;quoted&gt;&#39;|'&lt;quoted&gt;'/);
    assert.match(html, /<pre class="error"><b>TypeError: x is &lt;undefined&gt;<\/b>/);
    assert.doesNotMatch(html, /\x1b/);
  });

  it('inlines plotly.js exactly once, compressed, and draws each figure (and an older notebook\'s figure JSON)', () => {
    assert.equal(html.split('plotly.js v').length - 1, 1, 'one copy of the bundle header');
    assert.equal(html.split('atob("').length - 1, 1, 'one packed bundle');
    assert.equal((html.match(/P\.newPlot\(el,/g) ?? []).length, 3, 'three figures');
    assert.equal((html.match(/class="plotly-graph-div"/g) ?? []).length, 3);
    assert.ok(html.indexOf('plotly.js v') < html.indexOf('class="plotly-graph-div"'), 'bundle before the figures');
    assert.ok(html.includes('[{"y":[7,8]}]') && !html.includes('<div>old</div>'), 'the old output is drawn from its JSON');
    assert.ok(html.length < 4e6, `${html.length} B: plotly.js travels compressed`);
  });

  it('inlines the 3-D viewer once in the head when the notebook has a view, and skips its loader outputs', async () => {
    const nb = notebook();
    const view = { output_type: 'display_data' as const, data: { 'text/html': '<div class="brainnet-brain3d">view</div>', 'text/plain': '[3-D view]' }, metadata: { brainnet: { brain3d: true } } };
    const loader = brain3dLoaderBundle();
    const ld = { output_type: 'display_data' as const, data: loader.data, metadata: loader.metadata ?? {} };
    nb.cells.push({ id: 'v1', cell_type: 'code', metadata: {}, execution_count: 5, source: 'display.brain3d(p)', outputs: [ld, view] });
    nb.cells.push({ id: 'v2', cell_type: 'code', metadata: {}, execution_count: 6, source: 'display.brain3d(p)', outputs: [ld, view] });
    const h = await renderNotebookHtml(nb);
    assert.equal(h.split('NiiVue v').length - 1, 1, 'one copy of the viewer bundle');
    assert.ok(h.indexOf('NiiVue v') < h.indexOf('</head>'), 'in the head');
    assert.equal(h.split('<div class="brainnet-brain3d">view</div>').length - 1, 2, 'both views');
    assert.doesNotMatch(html, /NiiVue v/, 'no viewer without a view');
  });

  it('loads nothing from an external URL', () => {
    assert.doesNotMatch(html, /<script[^>]*\ssrc=/i);
    assert.doesNotMatch(html, /\ssrc=["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /<link[^>]*href=["']?https?:/i);
    assert.doesNotMatch(html, /@import\s+url\(["']?https?:/i);
  });

  it('leaves plotly.js out when there is no figure', async () => {
    const nb = notebook();
    nb.cells = nb.cells.filter((c) => !c.outputs?.some((o) => o.output_type === 'display_data' && (PLOTLY_MIME in o.data || (o.metadata as { brainnet?: { plotly?: boolean } }).brainnet?.plotly)));
    const small = await renderNotebookHtml(nb);
    assert.ok(small.length < 20000);
    assert.doesNotMatch(small, /plotly\.js v/);
  });
});
