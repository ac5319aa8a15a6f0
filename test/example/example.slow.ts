/**
 * End to end (slow: about a minute per notebook on 2 cores): notebooks/example.ipynb and notebooks/compare_backbones.ipynb
 * run headless through the runner CLI on a tiny synthetic subject with 1 epoch. The executed notebooks carry the
 * figures (PNG, the interactive Plotly layer map, the 3-D view, the live training curves, the ROI table) within the size
 * limits (≤ 8 MB .ipynb, ≤ 10 MB HTML: bundles once and compressed, palette PNGs), every paper figure is
 * written as PNG, and a second run of compare_backbones reuses the token cache and the checkpoints (says so, and trains no epoch).
 * Run: npm run build && npx mocha --timeout 900000 test/example/example.slow.ts
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeAlgonautsSubject } from 'brainnet/synthetic';
import { pngSize } from 'brainnet/notebook';
import type { Notebook } from 'brainnet/runner';
import { installTestKernel, REPO } from '../notebook/kernel-env';

const CLI = path.join(REPO, 'dist', 'lib', 'runner', 'cli.js');

const metas = (nb: Notebook) => nb.cells.flatMap((c) => ((c as { outputs?: Array<{ metadata?: { brainnet?: Record<string, boolean> } }> }).outputs ?? []).map((o) => o.metadata?.brainnet ?? {}));
const mimes = (nb: Notebook) => nb.cells.flatMap((c) => ((c as { outputs?: Array<{ data?: Record<string, unknown> }> }).outputs ?? []).flatMap((o) => Object.keys(o.data ?? {})));

describe('example notebooks end to end on a tiny synthetic subject', function () {
  this.timeout(900000);
  let env: ReturnType<typeof installTestKernel>;
  let tmp: string;
  before(async () => {
    assert.ok(fs.existsSync(CLI), `${CLI} is missing: run npm run build first`);
    env = installTestKernel();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-example-'));
    await makeAlgonautsSubject({ size: 'tiny', seed: 5, out: path.join(tmp, 'subj'), train: 40, test: 4 });
  });
  after(() => { env?.cleanup(); if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

  const run = (name: string, params: Record<string, string>) => {
    const t = Date.now();
    const args = [CLI, `notebooks/${name}.ipynb`, '--out', path.join(tmp, name), ...Object.entries(params).flatMap(([k, v]) => ['--param', `${k}=${v}`])];
    const r = spawnSync(process.execPath, args, { cwd: REPO, env: { ...process.env, JUPYTER_PATH: env.jupyterPath }, encoding: 'utf8', timeout: 800000 });
    assert.equal(r.status, 0, `${name} failed:\n${r.stdout}\n${r.stderr}`);
    return { nb: JSON.parse(fs.readFileSync(path.join(tmp, name, `${name}.ipynb`), 'utf8')) as Notebook, seconds: (Date.now() - t) / 1000 };
  };

  it('example.ipynb: trains, shows every figure and writes them as PNG', () => {
    const figs = path.join(tmp, 'figs');
    const { nb } = run('example', { dataPath: path.join(tmp, 'subj'), maxEpochs: '1', cacheDir: path.join(tmp, 'cache'), outDir: figs });
    const m = mimes(nb);
    assert.ok(m.filter((x) => x === 'image/png' || x === 'image/svg+xml').length >= 9, `figures: ${m.join(', ')}`);
    const b = metas(nb);
    assert.equal(b.filter((x) => x.plotly).length, 1, 'the interactive layer map');
    assert.equal(b.filter((x) => x.brain3d).length, 1, 'the 3-D view');
    assert.equal(b.filter((x) => x.plotlyBundle).length + b.filter((x) => x.brain3dBundle).length, 2, 'each bundle once');
    assert.ok(m.includes('text/markdown'), 'the ROI table');
    for (const f of ['layer_selector', 'space_selector', 'scale_selector', 'r2', 'channel_clusters', 'per_layer', 'model_vs_ridge', 'training_curves', 'top_channels_0']) {
      const p = path.join(figs, `${f}.png`);
      assert.ok(fs.existsSync(p), `${p} written`);
      assert.ok((pngSize(new Uint8Array(fs.readFileSync(p)))?.width ?? 0) > 300, `${f}.png is a real figure`);
    }
    assert.match(fs.readFileSync(path.join(figs, 'roi_summary.md'), 'utf8'), /\| V1 \|/);
    const html = fs.statSync(path.join(tmp, 'example', 'example.html')).size, ipynb = fs.statSync(path.join(tmp, 'example', 'example.ipynb')).size;
    assert.ok(html > 1e6, 'self-contained HTML (plotly.js inlined)');
    assert.ok(ipynb <= 8e6 && html <= 10e6, `example.ipynb ${ipynb} B (≤ 8 MB), example.html ${html} B (≤ 10 MB)`);
  });

  it('compare_backbones.ipynb: side-by-side selectors and ROI scores; a second run reuses the cache', () => {
    const params = { dataPath: path.join(tmp, 'subj'), maxEpochs: '1', cacheDir: path.join(tmp, 'cache'), checkpointRoot: path.join(tmp, 'ckpt'), outDir: path.join(tmp, 'cmpfigs') };
    const first = run('compare_backbones', params);
    for (const f of ['compare_layer_selector', 'compare_scale_selector', 'roi_r2']) assert.ok(fs.existsSync(path.join(params.outDir, `${f}.png`)), `${f}.png`);
    assert.ok(mimes(first.nb).filter((x) => x === 'image/png').length >= 3);
    const second = run('compare_backbones', params);
    const text = (nb: Notebook) => nb.cells.flatMap((c) => ((c as { outputs?: Array<{ text?: string | string[] }> }).outputs ?? []).map((o) => [o.text ?? ''].flat().join(''))).join('\n');
    const log2 = text(second.nb);
    assert.equal((log2.match(/token cache: reusing/g) ?? []).length, 2, `both backbones' tokens come from the cache:\n${log2}`);
    assert.equal((log2.match(/encoder: resuming from/g) ?? []).length, 2, `both encoders resume from their checkpoints:\n${log2}`);
    assert.doesNotMatch(log2, /epoch 1\/1: train loss/, 'no training epoch is run again');
  });
});
