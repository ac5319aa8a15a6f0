/**
 * The runner's reactive modes with the brainnet-ts kernel: --rerun-from re-runs only the cells downstream of the
 * changed parameters in the live kernel, and watch mode re-runs changed cells and their dependents on each save.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runNotebook, type Notebook } from 'brainnet/runner';
import { installTestKernel, REPO } from './kernel-env';

const CLI = path.join(REPO, 'dist', 'lib', 'runner', 'cli.js');

function code(source: string, id: string, tags: string[] = []): Notebook['cells'][number] {
  return { cell_type: 'code', id, metadata: tags.length ? { tags } : {}, source, outputs: [], execution_count: null };
}

const NOTEBOOK: Notebook = {
  nbformat: 4,
  nbformat_minor: 5,
  metadata: { kernelspec: { name: 'brainnet-ts', display_name: 'TypeScript (brainnet)', language: 'typescript' } },
  cells: [
    code('const guidanceScale = 7.5;\nconst steps = 4;', 'params', ['parameters']),
    code("const scaled = guidanceScale * 2;\nconsole.log('scaled ran');\nscaled", 'scaled'),
    code("const unrelated = 1;\nconsole.log('unrelated ran');\nunrelated", 'unrelated'),
    code("__brainnetKernel.display({ data: { 'text/plain': `guidance ${scaled / 2}` } });", 'shown'),
    code('unrelated + 1', 'uses-unrelated'),
  ],
} as Notebook;

/** The runner's RerunEvent (not re-exported by lib/notebook/index.ts yet). */
type RerunEvent = Parameters<NonNullable<Parameters<typeof runNotebook>[1]['onRerun']>>[0];

const texts = (c: Notebook['cells'][number]) => (c.outputs ?? []).map((o: any) => (o.output_type === 'stream' ? o.text : String(o.data?.['text/plain'] ?? ''))).join('|');

describe('notebook runner: reactive re-runs (brainnet-ts kernel)', function () {
  this.timeout(120000);
  let env: ReturnType<typeof installTestKernel>;
  let dir: string;
  let saved: string | undefined;
  before(() => {
    env = installTestKernel();
    saved = process.env.JUPYTER_PATH;
    process.env.JUPYTER_PATH = env.jupyterPath;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-rerun-test-'));
    fs.writeFileSync(path.join(dir, 'nb.ipynb'), JSON.stringify(NOTEBOOK));
  });
  after(() => {
    if (saved === undefined) delete process.env.JUPYTER_PATH;
    else process.env.JUPYTER_PATH = saved;
    env?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--rerun-from parameters re-runs only the cells downstream of the changed parameter, updating their outputs', async () => {
    const r = await runNotebook(path.join(dir, 'nb.ipynb'), { outDir: path.join(dir, 'out'), params: { guidanceScale: '150' }, rerunFrom: 'parameters' });
    assert.equal(r.reruns.length, 1);
    // Numbers are code cells of the written notebook, where the injected parameters are cell 2.
    assert.deepEqual(r.reruns[0].changed, [2]); // the injected parameters, standing for the parameters cell
    assert.deepEqual(r.reruns[0].reran, [3, 5]); // not 4 or 6
    assert.match(r.reruns[0].message, /^changed: cell 2; re-ran: cells 3, 5$/);
    const nb: Notebook = JSON.parse(fs.readFileSync(r.ipynbPath, 'utf8'));
    const byId = (id: string) => nb.cells.find((c) => c.id === id)!;
    assert.match(texts(byId('scaled')), /\|300$/); // updated in place from 15
    assert.equal(texts(byId('shown')), 'guidance 150');
    assert.equal(texts(byId('unrelated')), 'unrelated ran\n|1');
    const injected = nb.cells.find((c) => (c.metadata.tags as string[] | undefined)?.includes('injected-parameters'))!;
    assert.match(texts(injected), /\[reactive\] re-ran 2 cells/);
    assert.doesNotMatch(texts(injected), /redefinition/);
  });

  it('--rerun-from reports the re-run that failed and stopped the cascade (from the kernel reply), leaving the rest stale', async () => {
    const stops = structuredClone(NOTEBOOK);
    stops.cells = [
      code('const guidanceScale = 7.5;', 'params', ['parameters']),
      code("if (guidanceScale > 100) throw new RangeError('scale too large');\nconst checked = guidanceScale;", 'check'),
      code('const doubled = checked * 2;\ndoubled', 'doubled'),
      code('const tripled = guidanceScale * 3;\ntripled', 'tripled'),
    ];
    fs.writeFileSync(path.join(dir, 'stops.ipynb'), JSON.stringify(stops));
    const r = await runNotebook(path.join(dir, 'stops.ipynb'), { outDir: path.join(dir, 'out-stops'), params: { guidanceScale: '150' }, rerunFrom: 'parameters' });
    assert.equal(r.reruns.length, 1);
    assert.deepEqual(r.reruns[0].changed, [2]);
    assert.deepEqual(r.reruns[0].reran, [3]); // the failing re-run; doubled and tripled are not re-run
    assert.equal(r.reruns[0].stoppedAt, 3);
    assert.equal(r.reruns[0].message, 'changed: cell 2; re-ran: cell 3; stopped at cell 3 (it failed; later dependents are stale)');
    const nb: Notebook = JSON.parse(fs.readFileSync(r.ipynbPath, 'utf8'));
    assert.equal(texts(nb.cells.find((c) => c.id === 'tripled')!), '22.5'); // kept from the first run
  });

  it('watch mode re-runs a changed cell and its dependents on save, and stops on abort', async () => {
    const file = path.join(dir, 'watch.ipynb');
    fs.writeFileSync(file, JSON.stringify(NOTEBOOK));
    const stop = new AbortController();
    const events: RerunEvent[] = [];
    let edited = false;
    let listenersWhileWatching = -1;
    const done = runNotebook(file, {
      outDir: path.join(dir, 'out-watch'),
      watch: true,
      signal: stop.signal,
      watchIntervalMs: 100,
      onCell: (ev) => {
        if (ev.phase === 'end' && ev.number === ev.total && !edited) {
          edited = true;
          // Save an edit of cell 3 as the first run ends: before watch mode has begun to poll, and within the same
          // file-time tick as nothing else. Saves are judged by content from the first read on (lib/runner/saves.ts),
          // so neither its timing nor its modification time matters.
          const nb = structuredClone(NOTEBOOK);
          nb.cells[2].source = "const unrelated = 41;\nconsole.log('unrelated ran');\nunrelated";
          fs.writeFileSync(file, JSON.stringify(nb));
        }
      },
      onRerun: (ev) => {
        events.push(ev);
        // Polls of watch mode leave no abort listener behind (they used to add one per poll).
        listenersWhileWatching = getEventListeners(stop.signal, 'abort').length;
        stop.abort();
      },
    });
    const r = await done;
    assert.ok(listenersWhileWatching <= 1, `${listenersWhileWatching} abort listeners on the signal while watching`);
    assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
    assert.equal(events.length, 1);
    assert.deepEqual(events[0].changed, [3]);
    assert.deepEqual(events[0].reran, [5]);
    const nb: Notebook = JSON.parse(fs.readFileSync(r.ipynbPath, 'utf8'));
    assert.equal(texts(nb.cells[4]), '42');
    assert.equal(texts(nb.cells[1]), 'scaled ran\n|15'); // untouched, kept from the first run
  });

  it('the CLI prints which cells re-ran, and names a --rerun-from that matches no cell', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, path.join(dir, 'nb.ipynb'), '--out', path.join(dir, 'out-cli'), ...args], { cwd: REPO, env: process.env, encoding: 'utf8', timeout: 120000 });
    const ok = run(['--param', 'guidanceScale=20', '--rerun-from', 'parameters']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^rerun: changed: cell 2; re-ran: cells 3, 5$/m);
    const bad = run(['--rerun-from', 'nosuchtag']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--rerun-from nosuchtag: no code cell has that tag or id, and it is not a code cell number 1\.\.5/);
  });
});
