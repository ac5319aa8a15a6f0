/**
 * A notebook outside the checkout: under the brainnet-ts kernel, 'brainnet' (and 'brainnet/io'), the packages the
 * notebooks use and ESM-only packages resolve from a temporary folder, the folder's own node_modules wins, completion
 * and hover docs work there, and a module that cannot be found names the folders searched.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installTempKernel, REPO } from './helpers.js';
import { StrictClient } from './strict-client.js';

const CLI = path.join(REPO, 'dist', 'lib', 'runner', 'cli.js');
const code = (id: string, source: string) => ({ cell_type: 'code', id, metadata: {}, source, outputs: [], execution_count: null });
const notebook = (cells: object[]) => ({ nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'brainnet-ts', display_name: 'TypeScript (brainnet)', language: 'typescript' } }, cells });
const text = (c: { outputs: Array<Record<string, any>> }) => c.outputs.map((o) => o.text ?? o.data?.['text/plain'] ?? `${o.ename}: ${o.evalue}`).join('');

describe('kernel: a notebook in any folder', function () {
  this.timeout(120_000);
  let install: ReturnType<typeof installTempKernel>;
  let dir: string;

  before(() => {
    install = installTempKernel();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-anywhere-'));
    assert.ok(path.relative(REPO, dir).startsWith('..'), 'the folder is outside the checkout');
    // The folder's own copy of a package the checkout also has: it must win.
    fs.mkdirSync(path.join(dir, 'node_modules', 'delaunator'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'node_modules', 'delaunator', 'package.json'), JSON.stringify({ name: 'delaunator', version: '0.0.1', main: 'index.js' }));
    fs.writeFileSync(path.join(dir, 'node_modules', 'delaunator', 'index.js'), "module.exports = { fromTheNotebookFolder: true };\n");
  });
  after(() => {
    install?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const run = (name: string, ...args: string[]) =>
    spawnSync(process.execPath, [CLI, name, '--out', 'out', ...args], { cwd: dir, env: { ...process.env, JUPYTER_PATH: install.jupyterPath }, encoding: 'utf8', timeout: 110_000 });

  it('runs a notebook from a temporary folder: brainnet, its subpaths, the notebooks\' packages and ESM-only ones resolve', () => {
    fs.writeFileSync(path.join(dir, 'here.ipynb'), JSON.stringify(notebook([
      code('imports', [
        "import { io, display } from 'brainnet';",
        "import { shapeSize } from 'brainnet/io';",
        "import * as tslab from 'tslab';",
        "import * as tf from '@tensorflow/tfjs';",
        "import { createCanvas } from 'canvas';",
        'console.log(io.shapeSize([2, 3]), shapeSize([4, 5]), typeof tslab.display.html, typeof tf.tensor, typeof createCanvas);',
      ].join('\n')),
      code('plotly', "display.plotly({ data: [{ y: [1, 3, 2] }], layout: { title: { text: 'from anywhere' } } });"),
      code('esm', "const vl = await import('vega-lite');\ntypeof vl.compile"),
      code('own', "import D from 'delaunator';\n(D as unknown as { fromTheNotebookFolder?: boolean }).fromTheNotebookFolder === true"),
    ])));
    const r = run('here.ipynb');
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const nb = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'here.ipynb'), 'utf8'));
    assert.equal(text(nb.cells[0]), '6 20 function function function\n');
    assert.ok(nb.cells[1].outputs.some((o: { data?: Record<string, unknown> }) => typeof o.data?.['text/html'] === 'string' && (o.data['text/html'] as string).includes('from anywhere')), JSON.stringify(nb.cells[1].outputs).slice(0, 300));
    assert.equal(fs.readFileSync(path.join(dir, 'out', 'here.html'), 'utf8').split('plotly.js v').length - 1, 1, 'the HTML inlines plotly.js-dist from the checkout');
    assert.equal(text(nb.cells[2]), "'function'");
    assert.equal(text(nb.cells[3]), 'true', 'the notebook folder\'s own node_modules wins');
  });

  it('names the folders it searched for a module that cannot be found', () => {
    fs.writeFileSync(path.join(dir, 'missing.ipynb'), JSON.stringify(notebook([code('m', "import { x } from 'no-such-package-bn';")])));
    const r = run('missing.ipynb');
    assert.equal(r.status, 1);
    const real = fs.realpathSync(dir);
    assert.match(r.stderr, /ModuleNotFoundError: Cannot find module 'no-such-package-bn' in the notebook folder .*, then the kernel's checkout /);
    assert.ok(r.stderr.includes(`${real}/node_modules`) || r.stderr.includes(`${dir}/node_modules`), r.stderr);
    assert.ok(r.stderr.includes(path.join(REPO, 'node_modules')), r.stderr);
    assert.match(r.stderr, /npm install no-such-package-bn/);
  });

  it('completes and shows hover docs for brainnet from that folder', async () => {
    const k = await StrictClient.start(path.join(install.jupyterPath, 'kernels', 'brainnet-ts', 'kernel.json'), dir);
    try {
      const imp = await k.execute("import { io } from 'brainnet';");
      assert.equal(imp.reply.content.status, 'ok');
      const c = await k.request('complete_request', { code: 'io.shapeSi', cursor_pos: 10 });
      assert.deepEqual(c.reply.content.matches, ['shapeSize']);
      const h = await k.request('inspect_request', { code: 'io.shapeSize', cursor_pos: 12, detail_level: 0 });
      assert.equal(h.reply.content.found, true);
      assert.match(h.reply.content.data['text/plain'], /shapeSize\(shape: readonly number\[\]\): number/);
      const g = await k.request('complete_request', { code: 'inpu', cursor_pos: 4 });
      assert.ok(g.reply.content.matches.includes('input'), 'the kernel\'s input() global is known to completion');
      assert.deepEqual(k.violations, []);
    } finally {
      await k.close();
    }
  });
});
