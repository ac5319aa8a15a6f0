import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { PLOTLY_MIME } from 'brainnet/notebook';
import { notebookProblems, type Notebook } from 'brainnet/runner';
import { installTestKernel, runNotebookCli, NOTEBOOK_CLI } from './kernel-env';

describe('notebook runner end to end (brainnet-ts kernel, CLI)', function () {
  this.timeout(120000);
  let env: ReturnType<typeof installTestKernel>;
  let out: string;

  before(() => {
    assert.ok(fs.existsSync(NOTEBOOK_CLI), `${NOTEBOOK_CLI} is missing: run npm run build first`);
    env = installTestKernel();
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-runner-test-'));
  });
  after(() => {
    env?.cleanup();
    if (out) fs.rmSync(out, { recursive: true, force: true });
  });

  describe('notebooks/smoke.ipynb with --param greeting=...', () => {
    let run: ReturnType<typeof runNotebookCli>;
    let nb: Notebook;
    let html: string;
    before(() => {
      run = runNotebookCli(['notebooks/smoke.ipynb', '--out', path.join(out, 'smoke'), '--param', 'greeting=hi from the test', '--timeout', '60'], env.jupyterPath);
      assert.equal(run.code, 0, `CLI failed:\n${run.stdout}\n${run.stderr}`);
      nb = JSON.parse(fs.readFileSync(path.join(out, 'smoke', 'smoke.ipynb'), 'utf8'));
      html = fs.readFileSync(path.join(out, 'smoke', 'smoke.html'), 'utf8');
    });

    it('prints progress per cell and the output paths', () => {
      const code = nb.cells.filter((c) => c.cell_type === 'code').length;
      for (let i = 1; i <= code; i++) assert.match(run.stdout, new RegExp(`cell ${i}/${code} ok in \\d+\\.\\d s`));
      assert.match(run.stdout, /wrote .*smoke\.ipynb/);
      assert.match(run.stdout, /wrote .*smoke\.html/);
    });

    it('writes a valid executed notebook with execution counts and the injected parameter', () => {
      assert.deepEqual(notebookProblems(nb), []);
      const code = nb.cells.filter((c) => c.cell_type === 'code');
      assert.deepEqual(code.map((c) => c.execution_count), code.map((_, i) => i + 1));
      const pIndex = nb.cells.findIndex((c) => c.metadata.tags?.includes('parameters'));
      const injected = nb.cells[pIndex + 1];
      assert.deepEqual(injected.metadata.tags, ['injected-parameters']);
      assert.match([injected.source].flat().join(''), /const greeting = "hi from the test";/);
      assert.ok(code.every((c) => !c.outputs!.some((o) => o.output_type === 'error')));
      const last = code[code.length - 1].outputs!.find((o) => o.output_type === 'execute_result');
      assert.ok(last && last.output_type === 'execute_result');
      assert.match(String(last.data['text/plain']), /hi from the test, n = 3/);
      const importCell = code.find((c) => [c.source].flat().join('').includes("from 'brainnet'"))!;
      assert.match(JSON.stringify(importCell.outputs), /shapeSize\(\[2, 3, 4\]\) = 24/);
    });

    it('has a PNG output that decodes at the drawn size', async () => {
      const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
      const png = outputs.find((o) => o.output_type === 'display_data' && 'image/png' in o.data);
      assert.ok(png && png.output_type === 'display_data');
      const meta = await sharp(Buffer.from(String(png.data['image/png']), 'base64')).metadata();
      assert.equal(meta.format, 'png');
      assert.equal(meta.width, 96);
      assert.equal(meta.height, 64);
    });

    it('has a Plotly output (one copy of the figure, as HTML) and a progress bar', () => {
      const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
      const fig = outputs.find((o) => o.output_type === 'display_data' && (o.metadata as { brainnet?: { plotly?: boolean } }).brainnet?.plotly);
      assert.ok(fig && fig.output_type === 'display_data');
      assert.equal(fig.data[PLOTLY_MIME], undefined);
      assert.equal(fig.data['text/plain'], '[plotly figure: 2 traces]');
      assert.match(String(fig.data['text/html']), /"title":\{"text":"Plotly, inline \(hi from the test\)"/);
      const bar = outputs.find((o) => o.output_type === 'display_data' && /brainnet-progress/.test(String(o.data['text/html'])));
      assert.ok(bar && bar.output_type === 'display_data');
      assert.match(String(bar.data['text/html']), /30\/30 \(100%\)/);
    });

    it('writes self-contained HTML with the plotly bundle once and no external URLs', () => {
      assert.equal(html.split('plotly.js v').length - 1, 1);
      assert.equal((html.match(/class="plotly-graph-div"/g) ?? []).length, 1);
      assert.match(html, /<img src="data:image\/png;base64,/);
      assert.match(html, /<h1[^>]*>brainnet smoke notebook<\/h1>/);
      assert.match(html, /hi from the test, n = 3/);
      assert.doesNotMatch(html, /<script[^>]*\ssrc=/i);
      // Outside inline scripts (plotly.js holds attribution links in strings), nothing points to another host.
      const markup = html.replace(/<script\b[^>]*>[^]*?<\/script>/gi, '<script></script>');
      assert.doesNotMatch(markup, /\s(src|href)=["']?(https?:)?\/\//i);
      assert.doesNotMatch(markup, /url\(["']?(https?:)?\/\//i);
    });
  });

  it('exits non-zero on a failing cell, naming the cell, line and message, after writing both files', () => {
    const dir = path.join(out, 'failing');
    const r = runNotebookCli(['test/fixtures/notebooks/failing.ipynb', '--out', dir], env.jupyterPath);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /code cell 2 of 3 \(cell index 3\) failed at line 3: const missing = \(undefined as unknown as \{ field: number \}\)\.field;/);
    assert.match(r.stderr, /TypeError: Cannot read properties of undefined \(reading 'field'\)/);
    assert.match(r.stdout, /cell 1\/3 ok/);
    assert.match(r.stdout, /cell 2\/3 FAILED/);
    const nb: Notebook = JSON.parse(fs.readFileSync(path.join(dir, 'failing.ipynb'), 'utf8'));
    const code = nb.cells.filter((c) => c.cell_type === 'code');
    assert.match(JSON.stringify(code[0].outputs), /first cell ran/);
    assert.ok(code[1].outputs!.some((o) => o.output_type === 'error'));
    assert.equal(code[2].execution_count, null);
    assert.deepEqual(code[2].outputs, []);
    assert.match(fs.readFileSync(path.join(dir, 'failing.html'), 'utf8'), /<pre class="error"><b>TypeError/);
  });

  it('fails clearly on a kernel that is not installed and on bad arguments', () => {
    const r = runNotebookCli(['notebooks/smoke.ipynb', '--out', path.join(out, 'x'), '--kernel', 'no-such-kernel'], env.jupyterPath);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Jupyter kernel "no-such-kernel" not found/);
    const bad = runNotebookCli(['notebooks/smoke.ipynb'], env.jupyterPath);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected --out <dir>/);
    const badParam = runNotebookCli(['notebooks/smoke.ipynb', '--out', out, '--param', 'oops'], env.jupyterPath);
    assert.match(badParam.stderr, /--param: expected name=value, found "oops"/);
  });
});
