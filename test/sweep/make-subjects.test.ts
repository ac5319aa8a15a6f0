/**
 * `make-subject --seed 1-2 --out DIR/s{seed}`: several synthetic subjects in one call, the sweep's stand-ins for NSD's
 * subjects (paper_figures.ipynb makes its own through the same function). Each seed is its own subject; several seeds
 * without {seed} in --out is bad input, refused before anything is written.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from '../notebook/kernel-env';

const MAKE_SUBJECT = path.join(REPO, 'data-prep', 'make-subject.ts');
const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', MAKE_SUBJECT, ...args], { cwd: REPO, encoding: 'utf8', timeout: 300_000 });

describe('make-subject: several subjects in one call', function () {
  this.timeout(300_000);
  let tmp: string;
  before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-make-subjects-'))));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('--seed 1-2 with {seed} in --out writes one validated subject per seed, each different', () => {
    const r = run(['--layout', 'algonauts', '--size', 'tiny', '--seed', '1-2', '--world', 'v2', '--out', path.join(tmp, 's{seed}')]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const fmri = [1, 2].map((seed) => {
      const report = JSON.parse(fs.readFileSync(path.join(tmp, `s${seed}`, 'report.json'), 'utf8'));
      assert.deepEqual([report.seed, report.pass], [seed, true]);
      return fs.readFileSync(path.join(tmp, `s${seed}`, 'training_split', 'training_fmri', 'lh_training_fmri.npy'));
    });
    assert.equal(fmri[0]!.length, fmri[1]!.length, 'same size, same layout');
    assert.ok(!fmri[0]!.equals(fmri[1]!), 'seeds 1 and 2 wrote the same responses');
  });

  it('several seeds without {seed} in --out: exit 2 saying how to fix it, nothing written', () => {
    const out = path.join(tmp, 'one-folder');
    const r = run(['--seed', '1,2', '--out', out]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--seed 1,2 makes 2 subjects: put \{seed\} in --out \(found '.*one-folder'\)/);
    assert.equal(fs.existsSync(out), false);
  });
});
