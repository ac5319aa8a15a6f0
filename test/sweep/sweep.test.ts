/**
 * The sweep's pure parts, without a kernel: grids from the command line and from YAML/JSON files, the points they
 * expand to and their keys, the check of names against the notebook's parameters cell, the sbatch script, SLURM's
 * array lists, records (what record() accepts, and reading them back from a notebook), and the collected CSV.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RECORD_MIME, RecordError, recordPayload, recordSummary, record } from 'brainnet/notebook';
import { readRecords, type Notebook } from 'brainnet/runner';
import {
  SweepError, arraySpec, canonicalJson, checkParameterNames, csvField, expandGrid, gridFromDocument, loadSweep, mergeGrids, parseArrayList,
  parseGridArgs, parseParamArgs, planSweep, pointKey, readGridFile, sbatchScript, typedValue, valueText, writeResults,
} from 'brainnet/sweep';
import { acquireFolderLock, FolderLockedError } from 'brainnet/io';
import { runSweep } from 'brainnet/sweep';

const POINT_NB = path.resolve(__dirname, '..', 'fixtures', 'notebooks', 'sweep_point.ipynb');

describe('sweep: grids and points', () => {
  let tmp: string;
  before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-sweep-unit-'))));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('types command-line values as the runner does, and writes them back', () => {
    assert.equal(typedValue('3'), 3);
    assert.equal(typedValue('1e-3'), 0.001);
    assert.equal(typedValue('true'), true);
    assert.deepEqual(typedValue('[1,2]'), [1, 2]);
    assert.equal(typedValue('data/subjects/s1'), 'data/subjects/s1');
    assert.equal(valueText('data/s1'), 'data/s1');
    assert.equal(valueText(3), '3');
    assert.equal(valueText([1, 'a']), '[1,"a"]');
  });

  it('parses --grid name=a,b (a name given twice adds values) and --param', () => {
    assert.deepEqual(parseGridArgs(['backbone=mobilenetv2,inceptionv3', 'epochs=1', 'epochs=2']), { backbone: ['mobilenetv2', 'inceptionv3'], epochs: [1, 2] });
    assert.deepEqual(parseParamArgs(['seed=0', 'outDir={point}/x']), { seed: 0, outDir: '{point}/x' });
    assert.throws(() => parseGridArgs(['backbone']), /--grid: expected name=value1,value2/);
    assert.throws(() => parseGridArgs(['a=1,,2']), /an empty value/);
  });

  it('expands a product with the last name fastest, and a union of grids without duplicates', () => {
    const pts = expandGrid({ a: [1, 2], b: ['x', 'y'] });
    assert.deepEqual(pts, [{ a: 1, b: 'x' }, { a: 1, b: 'y' }, { a: 2, b: 'x' }, { a: 2, b: 'y' }]);
    assert.deepEqual(expandGrid([{ a: [1], b: ['x'] }, { a: [1, 3], b: ['x'] }]), [{ a: 1, b: 'x' }, { a: 3, b: 'x' }]);
    assert.deepEqual(mergeGrids([{ a: [1] }, { a: [2] }], { b: [5] }), [{ a: [1], b: [5] }, { a: [2], b: [5] }]);
  });

  it('reads a grid from YAML and from JSON (lists, scalars, a list of grids, fixed params)', () => {
    const y = path.join(tmp, 'grid.yaml');
    fs.writeFileSync(y, 'grid:\n  backbone: [mobilenetv2, inceptionv3]\n  dataPath:\n    - data/subjects/s1\n    - data/subjects/s2\nparams:\n  epochs: 2\n');
    const g = readGridFile(y);
    assert.deepEqual(g.grid, { backbone: ['mobilenetv2', 'inceptionv3'], dataPath: ['data/subjects/s1', 'data/subjects/s2'] });
    assert.deepEqual(g.params, { epochs: 2 });
    const j = path.join(tmp, 'grid.json');
    fs.writeFileSync(j, JSON.stringify([{ alpha: [1, 10] }, { alpha: 100, failAt: 'fit' }]));
    assert.deepEqual(readGridFile(j).grid, [{ alpha: [1, 10] }, { alpha: [100], failAt: ['fit'] }]);
    fs.writeFileSync(y, 'backbone: [a, b\n');
    assert.throws(() => readGridFile(y), (e: Error) => e instanceof SweepError && /grid\.yaml: expected YAML, found text that does not parse/.test(e.message));
    assert.throws(() => readGridFile(path.join(tmp, 'none.yaml')), /none\.yaml: expected a grid file \(YAML or JSON\), found no such file/);
    assert.throws(() => gridFromDocument({ grid: { a: [] } }, 'g.yaml'), /g\.yaml: 'a' has no values/);
    assert.throws(() => gridFromDocument({ grid: {}, other: 1 }, 'g.yaml'), /only the keys grid and params/);
  });

  it('gives each point a stable key from its values, changed by any parameter', () => {
    const k1 = pointKey({ backbone: 'mobilenetv2', dataPath: 'data/subjects/s1' }, { backbone: 'mobilenetv2', dataPath: 'data/subjects/s1', epochs: 2 });
    assert.match(k1, /^mobilenetv2_s1-[0-9a-f]{8}$/);
    assert.equal(pointKey({ backbone: 'mobilenetv2', dataPath: 'data/subjects/s1' }, { epochs: 2, dataPath: 'data/subjects/s1', backbone: 'mobilenetv2' }), k1);
    assert.notEqual(pointKey({ backbone: 'mobilenetv2', dataPath: 'data/subjects/s1' }, { backbone: 'mobilenetv2', dataPath: 'data/subjects/s1', epochs: 3 }), k1);
    assert.equal(canonicalJson({ b: 1, a: [2, { d: 1, c: 2 }] }), '{"a":[2,{"c":2,"d":1}],"b":1}');
  });

  it('refuses a grid name the notebook does not define, listing the names it does, before anything runs', () => {
    assert.throws(() => checkParameterNames(POINT_NB, ['alpha', 'lambda']), (e: Error) =>
      e instanceof SweepError && /does not define 'lambda'; it defines: dataPath, alpha, failAt, saveDir\./.test(e.message));
    const out = path.join(tmp, 'never');
    assert.throws(() => planSweep({ notebook: POINT_NB, grid: { lamda: [1, 2] }, out }), /does not define 'lamda'/);
    assert.throws(() => planSweep({ notebook: POINT_NB, grid: { alpha: [1] }, params: { alpha: 2 }, out }), /given both as a grid and as a fixed parameter/);
    assert.equal(fs.existsSync(out), false, 'nothing was written');
  });

  it('plans: placeholders substituted, done points skipped, all with force', () => {
    const out = path.join(tmp, 'plan');
    const o = { notebook: POINT_NB, grid: { alpha: [1, 10] }, params: { saveDir: '{point}/save', dataPath: 'x' }, out };
    const plan = planSweep(o);
    assert.equal(plan.toRun.length, 2);
    const k = plan.spec.points[1]!.key;
    assert.equal(plan.params[k]!.saveDir, path.join(out, 'points', k, 'save'));
    assert.equal(plan.params[k]!.alpha, '10');
    fs.mkdirSync(path.join(out, 'points', k), { recursive: true });
    fs.writeFileSync(path.join(out, 'points', k, 'status.json'), JSON.stringify({ state: 'done', attempt: 1 }));
    assert.deepEqual(planSweep(o).toRun.map((p) => p.key), [plan.spec.points[0]!.key]);
    assert.equal(planSweep({ ...o, force: true }).toRun.length, 2);
  });

  it('locks the sweep folder: a second sweep into it fails at once naming the first, and writes nothing', async () => {
    const out = path.join(tmp, 'locked');
    const held = await acquireFolderLock(out, { command: 'sweep (the first one)', log: null });
    try {
      await assert.rejects(runSweep({ notebook: POINT_NB, grid: { alpha: [1] }, params: { dataPath: 'x' }, out, log: null, progress: false }),
        (e: Error) => e instanceof FolderLockedError && e.message.includes(out) && e.message.includes(`pid ${process.pid}`) && e.message.includes('sweep (the first one)'));
      assert.deepEqual(fs.readdirSync(out).filter((f) => !f.startsWith('.brainnet.lock')), []);
    } finally {
      held.release();
    }
  });
});

describe('sweep: SLURM scripts and array lists', () => {
  it('writes array lists as ranges and reads them back as sacct and squeue print them', () => {
    assert.equal(arraySpec([3, 0, 1, 2, 7, 9, 10]), '0-3,7,9-10');
    assert.deepEqual(parseArrayList('[0-2,5]'), [0, 1, 2, 5]);
    assert.deepEqual(parseArrayList('3'), [3]);
    assert.deepEqual(parseArrayList('[4-8:2%2]'), [4, 6, 8]);
  });

  it('writes one job array with the options passed through and a line that runs the task point', () => {
    const s = sbatchScript({
      dir: '/shared/sweeps/paper', cwd: '/shared/brainnet', keys: ['a-1', 'b-2', 'c-3'], array: [0, 2], node: '/opt/node/bin/node', pointScript: '/shared/brainnet/dist/lib/sweep/point.js',
      slurm: { partition: 'gpu', time: '04:00:00', mem: '32G', cpusPerTask: 8, gpus: 1, account: 'lab', sbatchArgs: ['--qos=high'] }, throttle: 2,
    });
    for (const line of ['#SBATCH --array=0,2%2', '#SBATCH --partition=gpu', '#SBATCH --time=04:00:00', '#SBATCH --mem=32G', '#SBATCH --cpus-per-task=8', '#SBATCH --gpus=1', '#SBATCH --account=lab', '#SBATCH --qos=high',
      '#SBATCH --output=/shared/sweeps/paper/slurm/%A_%a.out', '#SBATCH --chdir=/shared/brainnet', 'KEYS=(a-1 b-2 c-3)', 'exec /opt/node/bin/node /shared/brainnet/dist/lib/sweep/point.js "$POINT" >> "$POINT/log.txt" 2>&1']) {
      assert.ok(s.split('\n').includes(line), `missing line: ${line}\n${s}`);
    }
    assert.ok(s.startsWith('#!/bin/bash\n'));
    const t = sbatchScript({ dir: '/d', cwd: '/c', keys: ['k'], array: [0], node: 'node', pointScript: 'p.js', slurm: { template: '#!/bin/bash\n{{sbatch}}\nmodule load nodejs/20\n{{run}}\n' } });
    assert.match(t, /#SBATCH --chdir=\/c\nmodule load nodejs\/20\n# The points/);
    assert.throws(() => sbatchScript({ dir: '/d', cwd: '/c', keys: ['k'], array: [0], node: 'n', pointScript: 'p', slurm: { template: '#!/bin/bash\n{{sbatch}}\n' } }), /expected the placeholders \{\{sbatch\}\} and \{\{run\}\}, found no \{\{run\}\}/);
  });
});

describe('record(name, value) and readRecords', () => {
  it('accepts numbers, strings, small arrays, tables and objects; NaN becomes null; typed arrays become arrays', () => {
    assert.deepEqual(recordPayload('meanR2', 0.25), { name: 'meanR2', kind: 'scalar', value: 0.25 });
    assert.deepEqual(recordPayload('r2', new Float32Array([0.5, NaN])), { name: 'r2', kind: 'array', value: [0.5, null] });
    assert.deepEqual(recordPayload('rows', [{ roi: 'V1', r2: 0.5 }]), { name: 'rows', kind: 'table', value: [{ roi: 'V1', r2: 0.5 }] });
    assert.deepEqual(recordPayload('o', { a: 1, b: 'x' }), { name: 'o', kind: 'object', value: { a: 1, b: 'x' } });
    assert.equal(recordSummary(recordPayload('rows', [{ roi: 'V1', r2: 0.5 }, { roi: 'V2', r2: 0.4 }])), 'rows = table of 2 rows (roi, r2)');
  });

  it('refuses bad names, nested values, functions and big arrays with what to do', () => {
    assert.throws(() => recordPayload('mean R2', 1), (e: Error) => e instanceof RecordError && /expected a name of letters/.test(e.message));
    assert.throws(() => recordPayload('x', [[1, 2]]), /record\('x'\)\[0\]: expected a number, string, boolean or null, found an array of 2/);
    assert.throws(() => recordPayload('f', () => 1), /record\('f'\): expected a number, string, boolean, null, an array of them, a table/);
    assert.throws(() => recordPayload('big', new Float64Array(200_000).fill(0.123456789)), /expected at most 1000000 bytes of JSON, found \d+; record a summary and save the full array to a file/);
  });

  it('outside a kernel prints one line', () => {
    const lines: string[] = [];
    const orig = console.log;
    console.log = (s: string) => lines.push(s);
    try {
      record('meanR2', 0.31);
    } finally {
      console.log = orig;
    }
    assert.deepEqual(lines, ['record meanR2 = 0.31']);
  });

  it('reads records from display outputs by MIME type (the last one of a name wins), not from text', () => {
    const out = (name: string, value: unknown, kind = 'scalar') => ({ output_type: 'display_data' as const, data: { [RECORD_MIME]: { name, kind, value }, 'text/plain': `record ${name} = ${value}` }, metadata: {} });
    const nb = {
      nbformat: 4, nbformat_minor: 5, metadata: {},
      cells: [
        { cell_type: 'markdown', source: 'record a = 99', metadata: {} },
        { cell_type: 'code', source: '', metadata: {}, execution_count: 1, outputs: [out('a', 1), { output_type: 'stream', name: 'stdout', text: 'record b = 5\n' }] },
        { cell_type: 'code', source: '', metadata: {}, execution_count: 2, outputs: [out('a', 2), out('t', [{ x: 1 }], 'table')] },
      ],
    } as unknown as Notebook;
    const r = readRecords(nb);
    assert.deepEqual(Object.keys(r), ['a', 't']);
    assert.deepEqual(r.a, { name: 'a', kind: 'scalar', value: 2, cell: 2 });
    (nb.cells[2]!.outputs![0] as { data: Record<string, unknown> }).data[RECORD_MIME] = { nope: 1 };
    assert.throws(() => readRecords(nb, 'x.ipynb'), /x\.ipynb: code cell 2 has a application\/vnd\.brainnet\.record\+json output that is not \{ name, kind, value \}/);
  });
});

describe('sweep: collected results', () => {
  let tmp: string;
  before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-sweep-collect-'))));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('quotes CSV fields as RFC 4180 says', () => {
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField(null), '');
    assert.equal(csvField([1, 2]), '"[1,2]"');
  });

  it('writes results.json, a tidy results.csv (one row per point and name) and one CSV per recorded table', () => {
    const plan = planSweep({ notebook: POINT_NB, grid: { alpha: [1, 10] }, params: { dataPath: 'x' }, out: tmp });
    fs.writeFileSync(path.join(tmp, 'sweep.json'), JSON.stringify(plan.spec));
    const [p0, p1] = plan.spec.points;
    const put = (key: string, status: object, records: object) => {
      fs.mkdirSync(path.join(tmp, 'points', key), { recursive: true });
      fs.writeFileSync(path.join(tmp, 'points', key, 'status.json'), JSON.stringify(status));
      fs.writeFileSync(path.join(tmp, 'points', key, 'records.json'), JSON.stringify(records));
    };
    put(p0!.key, { state: 'done', attempt: 1, seconds: 3 }, { meanR2: { kind: 'scalar', value: 0.5, cell: 4 }, roiR2: { kind: 'table', value: [{ roi: 'V1', r2: 0.1 }, { roi: 'FFA, left', r2: 0.2 }], cell: 4 } });
    put(p1!.key, { state: 'failed', attempt: 2, error: { message: 'boom', cell: 3, ename: 'Error', evalue: 'boom' } }, {});
    const s = loadSweep(tmp);
    const r = writeResults(s);
    const json = JSON.parse(fs.readFileSync(r.json, 'utf8'));
    assert.deepEqual(json.counts, { done: 1, failed: 1, other: 0 });
    assert.equal(json.points[1].error.cell, 3);
    const csv = fs.readFileSync(r.csv, 'utf8').trim().split('\n');
    assert.equal(csv[0], 'point,alpha,status,name,value');
    assert.equal(csv[1], `${p0!.key},1,done,meanR2,0.5`);
    assert.match(csv[2]!, new RegExp(`^${p0!.key},1,done,roiR2,"\\[`));
    assert.equal(csv[3], `${p1!.key},10,failed,,`);
    assert.deepEqual(fs.readFileSync(path.join(tmp, 'tables', 'roiR2.csv'), 'utf8').trim().split('\n'), ['point,alpha,roi,r2', `${p0!.key},1,V1,0.1`, `${p0!.key},1,"FFA, left",0.2`]);
  });
});
