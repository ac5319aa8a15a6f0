import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNpy } from 'brainnet/io';
import { makeNsdSubject } from 'brainnet/synthetic';
import type { Notebook } from 'brainnet/runner';
import { installTestKernel, runNotebookCli, NOTEBOOK_CLI } from '../notebook/kernel-env';

/** The MIME types of every display output of a run notebook. */
function mimes(nb: Notebook): string[] {
  return nb.cells.flatMap((c) => ((c as { outputs?: Array<{ data?: Record<string, unknown> }> }).outputs ?? []).flatMap((o) => Object.keys(o.data ?? {})));
}

describe('NSD notebooks end to end on a tiny synthetic subject (brainnet-ts kernel)', function () {
  this.timeout(180000);
  let env: ReturnType<typeof installTestKernel>;
  let tmp: string;
  before(async () => {
    assert.ok(fs.existsSync(NOTEBOOK_CLI), `${NOTEBOOK_CLI} is missing: run npm run build first`);
    env = installTestKernel();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-nsdprep-nb-'));
    await makeNsdSubject({ size: 'tiny', seed: 7, out: path.join(tmp, 'subj'), imageSize: 16, world: 'v2' });
  });
  after(() => { env?.cleanup(); if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

  const run = (name: string, outData: string) => {
    const r = runNotebookCli([`notebooks/${name}.ipynb`, '--out', path.join(tmp, name), '--param', `nsdRoot=${path.join(tmp, 'subj')}`, '--param', `outDir=${outData}`, '--timeout', '120'], env.jupyterPath, 170000);
    assert.equal(r.code, 0, `${name} failed:\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(fs.readFileSync(path.join(tmp, name, `${name}.ipynb`), 'utf8')) as Notebook;
  };

  it('z_score.ipynb writes the averaged betas and shows the per-session distribution and the noise-ceiling slice', async () => {
    const data = path.join(tmp, 'zdata');
    const nb = run('z_score', data);
    const bet = await readNpy(path.join(data, 'betas_zscored.npy'));
    assert.equal(bet.shape.length, 2);
    const m = mimes(nb);
    assert.ok(m.includes('image/svg+xml') || m.includes('image/png'), `figures: ${m.join(', ')}`);
    assert.ok(m.filter((x) => x === 'image/png').length >= 1, 'the noise ceiling slice PNG');
    assert.ok(m.includes('text/html'), 'a progress bar');
  });

  it('rank_by_hcp.ipynb writes the ordered regions with names and shows the bar chart', async () => {
    const data = path.join(tmp, 'rdata');
    const nb = run('rank_by_hcp', data);
    const order = (await readNpy(path.join(data, 'hcp_order.npy'))).data as Int32Array;
    assert.equal(order.length, 180);
    const tsv = fs.readFileSync(path.join(data, 'hcp_rank.tsv'), 'utf8');
    assert.match(tsv.split('\n')[1]!, /\t(V1|V2|V3|V4|FFC|PIT|MT)\t/);
    const svg = nb.cells.flatMap((c) => ((c as { outputs?: Array<{ data?: Record<string, unknown> }> }).outputs ?? []).map((o) => o.data?.['image/svg+xml'])).filter(Boolean).map((s) => (Array.isArray(s) ? s.join('') : String(s)));
    assert.ok(svg.some((s) => s.includes('FFC')), 'the bar chart names the regions');
  });
});
