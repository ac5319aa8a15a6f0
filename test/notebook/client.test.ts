import { strict as assert } from 'node:assert';
import * as os from 'node:os';
import type { ReactiveReplyMetadata } from 'brainnet/notebook';
import { KernelClient, findKernelSpec, jupyterDataDirs, type NotebookOutput } from 'brainnet/runner';
import { installTestKernel, REPO } from './kernel-env';

const texts = (outs: NotebookOutput[]) =>
  outs.map((o) => (o.output_type === 'stream' ? `${o.name}:${o.text}` : o.output_type === 'error' ? `error:${o.evalue}` : `${o.output_type}:${String(o.data['text/plain'])}`));

describe('notebook/jupyter-client (brainnet-ts kernel)', function () {
  this.timeout(60000);
  let env: ReturnType<typeof installTestKernel>;
  let kernel: KernelClient;

  before(async () => {
    env = installTestKernel();
    kernel = await KernelClient.start({ kernel: findKernelSpec('brainnet-ts', { ...process.env, JUPYTER_PATH: env.jupyterPath }), cwd: REPO });
  });
  after(async () => {
    await kernel?.kill();
    env?.cleanup();
  });

  it('searches JUPYTER_PATH, the user folder and the system folders, and names them when a kernel is missing', () => {
    const dirs = jupyterDataDirs({ JUPYTER_PATH: `/a:/b`, HOME: '/home/u' });
    assert.deepEqual(dirs, ['/a', '/b', '/home/u/.local/share/jupyter', '/usr/local/share/jupyter', '/usr/share/jupyter']);
    assert.deepEqual(jupyterDataDirs({ JUPYTER_DATA_DIR: '/d', HOME: '/h' })[0], '/d');
    assert.throws(() => findKernelSpec('no-such-kernel', { JUPYTER_PATH: env.jupyterPath, HOME: os.tmpdir() }), /Jupyter kernel "no-such-kernel" not found: expected no-such-kernel\/kernel\.json under a kernels\/ folder of .*brainnet-ts/);
  });

  it('runs code, merges streams and returns the execution count and result', async () => {
    const r1 = await kernel.execute("console.log('a'); console.log('b'); console.error('e'); console.log('c'); 6 * 7");
    assert.equal(r1.status, 'ok');
    const stream = (name: string) => r1.outputs.map((o) => (o.output_type === 'stream' && o.name === name ? o.text : '')).join('');
    assert.equal(stream('stdout'), 'a\nb\nc\n');
    assert.equal(stream('stderr'), 'e\n');
    const kinds = r1.outputs.map((o) => (o.output_type === 'stream' ? o.name : o.output_type));
    assert.ok(kinds.every((k, i) => i === 0 || k !== kinds[i - 1]), `consecutive streams of one name are merged: ${kinds}`);
    assert.deepEqual(texts(r1.outputs.slice(-1)), ['execute_result:42']);
    const r2 = await kernel.execute('const z = 1;');
    assert.equal(r2.executionCount, r1.executionCount! + 1);
    // The execute_reply's metadata comes back: the brainnet-ts kernel's dependency-graph report of the cell.
    const graph = r2.metadata.brainnet as ReactiveReplyMetadata;
    assert.deepEqual([graph.defines, graph.reran, graph.stopped], [['z'], [], null]);
    assert.equal((r1.outputs[r1.outputs.length - 1] as { execution_count: number }).execution_count, r1.executionCount);
  });

  it('replaces outputs with the same display_id, also in earlier cells', async () => {
    const a = await kernel.execute("import { newDisplay, display, clearOutput } from 'brainnet';\nvar h = newDisplay();\nh.text('v1');");
    assert.equal(a.status, 'ok', JSON.stringify(a.error));
    assert.deepEqual(texts(a.outputs), ['display_data:v1']);
    const b = await kernel.execute("h.text('v2'); h.text('v3');");
    assert.deepEqual(texts(b.outputs), []);
    assert.deepEqual(texts(a.outputs), ['display_data:v3']);
  });

  it('honours clear_output, with and without wait', async () => {
    const r = await kernel.execute("display.text('x'); clearOutput(true); display.text('y');");
    assert.deepEqual(texts(r.outputs), ['display_data:y']);
    const r2 = await kernel.execute("display.text('x'); clearOutput();");
    assert.deepEqual(texts(r2.outputs), []);
  });

  it('reports errors with the kernel traceback', async () => {
    const r = await kernel.execute("const q = 1;\nthrow new RangeError('boom');");
    assert.equal(r.status, 'error');
    assert.equal(r.error!.ename, 'RangeError');
    assert.equal(r.error!.evalue, 'boom');
    assert.ok(r.error!.traceback.some((l) => /line 2/.test(l)), r.error!.traceback.join('\n'));
  });

  it('times out a cell, interrupts it, and the kernel keeps working', async () => {
    await assert.rejects(kernel.execute('await new Promise((r) => setTimeout(r, 4000));', { timeoutMs: 300 }), /cell timed out after 0\.3 s/);
    await new Promise((r) => setTimeout(r, 200));
    const r = await kernel.execute('1 + 1');
    assert.deepEqual(texts(r.outputs), ['execute_result:2']);
  });

  it('detects kernel death, with how it died and its last stderr', async () => {
    await assert.rejects(kernel.execute("setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50);\nawait new Promise((r) => setTimeout(r, 5000));"), /kernel "brainnet-ts" died \(killed by SIGKILL; its last stderr:/);
    assert.ok(kernel.dead);
    await assert.rejects(kernel.execute('1'), /is dead/);
  });
});
