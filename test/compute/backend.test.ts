import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, tf } from 'brainnet';
import { BACKEND_ORDER, BackendUnavailableError, describeChoice, parseBackendName, resetBackendChoice } from 'brainnet/compute';

/** A `require` that pretends tfjs-node-gpu is installed but cannot load its native library. */
function brokenGpuRequire(id: string): unknown {
  if (id === '@tensorflow/tfjs-node-gpu') {
    throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');
  }
  return require(id);
}

describe('compute: backend choice', () => {
  afterEach(() => resetBackendChoice());

  it('parses the spellings users write', () => {
    assert.equal(parseBackendName('@tensorflow/tfjs-node-gpu'), 'node-gpu');
    assert.equal(parseBackendName('tensorflow'), 'node');
    assert.equal(parseBackendName('WASM'), 'wasm');
    assert.equal(parseBackendName('metal'), null);
  });

  it('falls back past a tfjs-node-gpu that cannot load, with one clear line', async () => {
    const lines: string[] = [];
    const c = await initBackend({ force: '', log: (l) => lines.push(l), requireFn: brokenGpuRequire, only: ['node-gpu', 'wasm', 'cpu'] });
    assert.equal(c.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /compute backend: wasm/);
    assert.match(lines[0]!, /node-gpu \(installed but failed to load: libcudart.*CUDA 11\.2/);
    const t = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[1], [1]]));
    assert.deepEqual(Array.from(await t.data()), [3, 7]);
    t.dispose();
  });

  it('reports a missing optional package as not installed and follows the documented order', async () => {
    const c = await initBackend({ force: '', log: null });
    assert.ok(BACKEND_ORDER.includes(c.name));
    const tried = [...c.skipped.map((s) => s.name), c.name];
    assert.deepEqual(tried, BACKEND_ORDER.slice(0, tried.length));
    const gpu = c.skipped.find((s) => s.name === 'node-gpu');
    if (gpu) assert.ok(gpu.reason.length > 0);
    assert.match(describeChoice(c), new RegExp(`compute backend: ${c.name}`));
  });

  it('honours a forced backend', async () => {
    const c = await initBackend({ force: 'cpu', log: null });
    assert.equal(c.name, 'cpu');
    assert.equal(c.forced, true);
    assert.equal(tf.getBackend(), 'cpu');
  });

  it('says what is available when a forced backend is not', async () => {
    await assert.rejects(
      initBackend({ force: 'tfjs-node-gpu', log: null, requireFn: brokenGpuRequire }),
      (e: Error) => e instanceof BackendUnavailableError && /not available/.test(e.message) && /Available here: .*wasm.*cpu/.test(e.message),
    );
    await assert.rejects(initBackend({ force: 'metal', log: null }), /expected one of node-gpu, webgpu, node, wasm, cpu/);
  });
});

describe('compute: an uncaught error after the wasm backend loaded', function () {
  this.timeout(120000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-uncaught-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const lib = path.join(__dirname, '..', '..', 'lib', 'compute', 'index.ts');
  const tsx = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
  // Emscripten's glue used to rethrow from its one-line minified source: ~39 KB of it came before the message.
  for (const [kind, raise] of [
    ['a rejected promise', "async function main() { await start(); throw new Error('the message, alone'); } main();"],
    ['a throw in a timer', "start().then(() => setTimeout(() => { throw new Error('the message, alone'); }, 1));"],
  ] as const) {
    it(`${kind}: stderr is Node's usual report, the message near the top, no emscripten source`, () => {
      const script = path.join(dir, `${kind.replace(/\W+/g, '-')}.ts`);
      fs.writeFileSync(script, `import { initBackend, tf } from ${JSON.stringify(lib)};
async function start() { await initBackend({ force: 'wasm', log: null }); tf.tidy(() => tf.add(tf.ones([2]), tf.ones([2])).dataSync()); }
${raise}
`);
      const r = spawnSync(tsx, [script], { encoding: 'utf8', timeout: 100000 });
      assert.notEqual(r.status, 0);
      const at = r.stderr.indexOf('Error: the message, alone');
      assert.ok(at >= 0, r.stderr.slice(0, 500));
      assert.ok(at < 400, `${at} bytes before the message: ${r.stderr.slice(0, 300)}`);
      assert.ok(r.stderr.length < 3000, `stderr holds ${r.stderr.length} bytes`);
      assert.doesNotMatch(r.stderr, /WasmBackendModule|tfjs-backend-wasm/);
    });
  }
});
