/**
 * The slow suite's run of the README's default paper comparison: notebooks/paper_figures.ipynb with its defaults (the two
 * built-in backbones on three synthetic subjects, a local sweep of fit_backbone.ipynb with one worker per core), as from
 * a fresh clone (subjects, token caches, sweep and figures in a temporary folder). It prints the minutes and the CPU time
 * it took and checks what the figures show: every point done, early visual areas reading earlier layers than the
 * category patches in MobileNetV2 (InceptionV3 shows no hierarchy at this size; see the test), subjects agreeing, and
 * the figures written. Then BrainDiVE's runs as a sweep over two regions and two seed blocks, with the 5-way table from
 * the recorded counts.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installTestKernel, REPO, runNotebookCli } from '../notebook/kernel-env';

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));

describe('paper_figures.ipynb with its defaults, from scratch (slow)', function () {
  this.timeout(3_600_000);
  let env: ReturnType<typeof installTestKernel>;
  let tmp: string;
  before(() => {
    env = installTestKernel();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-paper-slow-'));
  });
  after(() => {
    env?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('sweeps 2 backbones x 3 subjects and draws the comparison', () => {
    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    const r = runNotebookCli(['notebooks/paper_figures.ipynb', '--out', path.join(tmp, 'nb'),
      '--param', `subjectRoot=${tmp}/subjects`, '--param', `sweepDir=${tmp}/sweep`, '--param', `cacheDir=${tmp}/cache`, '--param', `outDir=${tmp}/figures`], env.jupyterPath, 3_500_000);
    const minutes = (Date.now() - t0) / 60000;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const summary = readJson(path.join(tmp, 'figures', 'summary.json'));
    const points = readJson(path.join(tmp, 'sweep', 'results.json')).points as { key: string; seconds: number }[];
    const load = os.loadavg()[0]!.toFixed(1);
    console.log(`      paper_figures defaults: ${minutes.toFixed(1)} min wall (load ${load} at the end, ${os.cpus().length} cores); points: ${points.map((p) => `${p.key} ${(p.seconds / 60).toFixed(1)} min`).join(', ')}; cpu of this process ${(process.cpuUsage(cpu0).user / 1e6).toFixed(0)} s`);
    console.log(`      depth: ${JSON.stringify(summary.depth)}; agreement: ${JSON.stringify(summary.agreement)}; r2: ${JSON.stringify(summary.r2)}`);
    assert.equal(summary.done, 6);
    // MobileNetV2 recovers the hierarchy at this size (2026-12-07: V1-V3 0.59, category ROIs 0.68). InceptionV3 does
    // not with these defaults: its layer selectors sit on layer 8 of 11 (depth 0.80) in every ROI of every subject
    // (README, "The paper's comparison"), so it is printed above, not asserted.
    const mobile = (summary.depth as Record<string, number | string>[]).find((d) => String(d.backbone).startsWith('mobilenetv2'))!;
    assert.ok((mobile['V1-V3'] as number) + 0.05 < (mobile['category ROIs'] as number), `mobilenetv2: V1-V3 depth ${mobile['V1-V3']} is not clearly below the category ROIs' ${mobile['category ROIs']}`);
    for (const [b, r2] of Object.entries(summary.agreement as Record<string, number>)) assert.ok(r2 > 0.2, `${b}: subjects agree only r = ${r2}`);
    for (const f of ['layer_hierarchy.png', 'roi_r2_across_subjects.png', 'subject_agreement.png']) assert.ok(fs.existsSync(path.join(tmp, 'figures', f)), f);
    assert.equal(fs.readdirSync(path.join(tmp, 'figures')).filter((f) => f.startsWith('compare_layer_selector_')).length, 3);
  });

  it("BrainDiVE's runs as a sweep: the 5-way table from the recorded counts", () => {
    const out = path.join(tmp, 'braindive');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'data-prep/braindive/run-regions.ts', '--sweep', '--out', out, '--regions', 'FFA,PPA', '--n', '16', '--batch', '8', '--jobs', '2'],
      { cwd: REPO, env: { ...process.env, JUPYTER_PATH: env.jupyterPath }, encoding: 'utf8', timeout: 3_000_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const five = readJson(path.join(out, 'five_way.json'));
    console.log(`      ${fs.readFileSync(path.join(out, 'five_way.md'), 'utf8').trim().split('\n').join('\n      ')}`);
    assert.equal(five.blocksDone, 4);
    for (const row of five.table as { region: string; n: number; hit: number; baseline: number }[]) {
      assert.equal(row.n, 16);
      assert.ok(row.hit > row.baseline, `${row.region}: guided ${row.hit} not above unguided ${row.baseline}`);
    }
  });
});
