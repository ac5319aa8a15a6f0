/**
 * The bad-input corpus (issue 24): every damaged file (test/fixtures/bad-inputs, from
 * data-prep/fixtures/make_bad_inputs.py) and every damaged subject (subjects.ts) must be refused with an error that
 * names the file or folder at fault, what was expected and what was found. No case may return data.
 * `npx tsx test/bad-inputs/report.ts` runs the same cases and writes the counts.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileCases, runFileCases, CORPUS } from './files.js';
import { SUBJECT_CASES, makeBaseSubjects, runSubjectCases } from './subjects.js';
import { type Outcome } from './judge.js';

function assertClear(o: Outcome): void {
  assert.equal(o.verdict, 'clear', `${o.id} (${o.damage}) is ${o.verdict}: ${o.said}`);
}

describe('bad-input corpus: every reader in lib/io', () => {
  const cases = fileCases();
  it('covers every reader, the cases the issue lists, and stays small', () => {
    const readers = new Set(cases.map((c) => c.reader));
    for (const r of ['npy', 'npz', 'nifti', 'hdf5', 'gifti', 'fs-surface', 'fs-curv', 'fs-patch', 'mgh', 'mat', 'safetensors', 'image']) {
      assert.ok(readers.has(r), `no case for ${r}`);
      for (const k of ['empty', 'directory', 'text']) assert.ok(cases.some((c) => c.reader === r && path.basename(c.file).startsWith(`${k}.`)), `${r}: no ${k} case`);
      assert.ok(cases.filter((c) => c.reader === r && /\/cut-/.test(c.file)).length >= 3 || r === 'gifti' || r === 'image', `${r}: fewer than 3 truncations`);
    }
    for (const kind of [/gzip|deflate|zlib|mgz/, /absurd/, /nan/, /negative/, /disagrees|bitpix/, /magic/]) {
      assert.ok(cases.some((c) => kind.test(c.file)), `no case matching ${kind}`);
    }
    let bytes = 0;
    const walk = (d: string): void => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { if (e.isDirectory()) walk(path.join(d, e.name)); else bytes += fs.statSync(path.join(d, e.name)).size; } };
    walk(CORPUS);
    assert.ok(bytes < 1_000_000, `the corpus is ${bytes} bytes`);
  });

  let outcomes: Outcome[] = [];
  before(async function () {
    this.timeout(120000);
    outcomes = await runFileCases(cases);
  });
  for (const c of cases) {
    it(`${c.file}: ${c.damage}`, () => {
      const mine = outcomes.filter((o) => o.id === c.file || o.id.startsWith(`${c.file} (`));
      assert.ok(mine.length > 0);
      mine.forEach(assertClear);
    });
  }
  it('an HDF5 chunk that does not inflate is an error naming its rows, as h5py raises OSError', () => {
    const o = outcomes.find((x) => x.id === 'hdf5/gzip-chunk-damaged.h5')!;
    assert.match(o.said, /rows \[16, 32\) \(chunk 1 of 4/);
  });
});

describe('bad-input corpus: damaged Algonauts and NSD subjects', function () {
  this.timeout(300000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-bad-subjects-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  let outcomes: Outcome[] = [];
  before(async () => {
    outcomes = await runSubjectCases(tmp, await makeBaseSubjects(tmp));
  });
  for (const c of SUBJECT_CASES) {
    it(`${c.name}: ${c.damage}`, () => assertClear(outcomes.find((o) => o.id === c.name)!));
  }
});
