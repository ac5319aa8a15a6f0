/**
 * The brainnet-ts kernel through a real Jupyter client: /usr/bin/python3 with jupyter_client drives the kernel
 * (test/kernel/driver.py) and prints what it saw; these tests assert on it. Run `npm run build` first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { installTempKernel, jupyterEnv, pythonHas, PYTHON, REPO } from './helpers.js';

type Msg = { msg_type: string; content: Record<string, any> };
type Cell = { code: string; reply: Record<string, any>; iopub: Msg[] };

/** Runs /usr/bin/python3 with args; resolves with its exit status and output (killed after `killMs`). */
function run(args: string[], env: NodeJS.ProcessEnv, killMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(PYTHON, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), killMs);
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const of = (cell: Cell, type: string) => cell.iopub.filter((m) => m.msg_type === type);

describe('kernel: brainnet-ts through jupyter_client', function () {
  let result: Record<string, any>;
  let nbclient: Array<{ execution_count: number; outputs: Array<Record<string, any>> }>;
  let install: ReturnType<typeof installTempKernel>;

  before(async function () {
    if (!pythonHas('jupyter_client', 'nbclient')) this.skip(); // Debian python3-jupyter-client, python3-nbclient
    // Two whole scenarios (two kernel starts, about 45 requests with the language service's warm-up), not one test:
    // 40-50 s on a lightly loaded 2-core machine, 107 s at a load of 26, and past the former 90 s kill at a load of 30.
    // The drivers are killed 10 s before the hook's own limit, so a failure shows how far they got ([driver] lines).
    this.timeout(240_000);
    install = installTempKernel();
    const env = jupyterEnv(install.jupyterPath, install.prefix);
    const driver = path.join(__dirname, 'driver.py');
    // The jupyter_client scenario and the nbclient run use two kernels at once.
    const [r, n] = await Promise.all([run([driver, __dirname], env, 230_000), run([driver, 'nbclient', __dirname], env, 230_000)]);
    assert.equal(r.status, 0, `driver failed:\n${r.stderr}`);
    assert.equal(n.status, 0, `nbclient run failed:\n${n.stderr}`);
    result = JSON.parse(r.stdout);
    nbclient = JSON.parse(n.stdout);
  });

  after(() => install?.cleanup());

  it('installs kernel.json with the spec name, display name and absolute paths', () => {
    const spec = JSON.parse(readFileSync(path.join(install.jupyterPath, 'kernels', 'brainnet-ts', 'kernel.json'), 'utf8'));
    assert.equal(spec.display_name, 'TypeScript (brainnet)');
    assert.equal(spec.language, 'typescript');
    assert.equal(spec.argv.at(-1), '{connection_file}');
    assert.ok(spec.argv.slice(0, -1).every((a: string) => path.isAbsolute(a) || a.startsWith('--') || a.startsWith('file://')));
    assert.ok(spec.argv.includes(path.join(REPO, 'kernels', 'brainnet-ts', 'main.ts')));
  });

  it('answers kernel_info with status, protocol 5.3 and TypeScript language info', () => {
    const k = result.kernel_info;
    assert.equal(k.status, 'ok');
    assert.equal(k.protocol_version, '5.3');
    assert.equal(k.language_info.name, 'typescript');
    assert.equal(k.language_info.file_extension, '.ts');
    assert.match(k.language_info.version, /^5\.\d+/);
  });

  it('counts executions, streams stdout and returns the final expression as execute_result', () => {
    const c: Cell = result.hello;
    assert.equal(c.reply.status, 'ok');
    assert.equal(c.reply.execution_count, 1);
    assert.deepEqual(c.iopub.map((m) => m.msg_type), ['status', 'execute_input', 'stream', 'execute_result', 'status']);
    assert.equal(of(c, 'stream')[0].content.text, 'hello\n');
    assert.equal(of(c, 'execute_result')[0].content.execution_count, 1);
    assert.equal(of(c, 'execute_result')[0].content.data['text/plain'], '42');
    // silent: no count, no execute_input, no result
    assert.equal(result.silent.reply.execution_count, 1);
    assert.deepEqual(result.silent.iopub.map((m: Msg) => m.msg_type), ['status', 'status']);
    assert.equal(result.error.reply.execution_count, 2);
    assert.equal(result.exec_count.iopub.find((m: Msg) => m.msg_type === 'execute_result').content.data['text/plain'], String(result.exec_count.reply.execution_count));
  });

  it('reports errors with the class name, message and the cell line', () => {
    const c: Cell = result.error;
    assert.equal(c.reply.status, 'error');
    const e = of(c, 'error')[0].content;
    assert.equal(e.ename, 'RangeError');
    assert.equal(e.evalue, 'out of range');
    assert.ok(e.traceback.includes('Cell In[2], line 2'), e.traceback.join('\n'));
    // an error thrown in a function defined by an earlier cell points at that cell
    const f = result.func_error_call.reply;
    assert.equal(f.ename, 'TypeError');
    assert.ok(f.traceback.includes('Cell In[13], line 2 in boom'), f.traceback.join('\n'));
    assert.ok(f.traceback.includes('Cell In[14], line 1'), f.traceback.join('\n'));
    // syntax errors carry line and column
    const s = result.syntax.reply;
    assert.equal(s.ename, 'SyntaxError');
    assert.match(s.evalue, /line 2, column 14/);
  });

  it('sends display_data and update_display_data through globalThis.__brainnetKernel and tslab.display', () => {
    const c: Cell = result.display;
    const [d] = of(c, 'display_data');
    const [u] = of(c, 'update_display_data');
    assert.equal(d.content.data['text/html'], '<b>v1</b>');
    assert.equal(d.content.transient.display_id, 'd1');
    assert.equal(u.content.data['text/html'], '<b>v2</b>');
    assert.equal(u.content.transient.display_id, 'd1');
    assert.equal(of(result.tslab, 'display_data')[0].content.data['text/html'], '<i>tslab</i>');
    const b = of(result.bundle, 'execute_result')[0].content.data;
    assert.equal(b['text/markdown'], '**md**');
    assert.ok('text/plain' in b);
  });

  it('imports brainnet by name, keeps its bindings for later cells, and imports ESM-only packages', () => {
    assert.equal(of(result.brainnet, 'execute_result')[0]?.content.data['text/plain'], '24', JSON.stringify(result.brainnet.reply));
    assert.equal(of(result.brainnet_later, 'execute_result')[0]?.content.data['text/plain'], '25');
    assert.equal(of(result.esm_vl, 'execute_result')[0]?.content.data['text/plain'], "'function'", JSON.stringify(result.esm_vl.reply));
    assert.equal(of(result.esm_h5, 'execute_result')[0]?.content.data['text/plain'], "'function'", JSON.stringify(result.esm_h5.reply));
  });

  it('supports top-level await, re-declared consts and output from async code the cell awaits', () => {
    assert.equal(of(result.await, 'execute_result')[0].content.data['text/plain'], '10');
    assert.equal(of(result.const1, 'execute_result')[0].content.data['text/plain'], '1');
    assert.equal(result.const2.reply.status, 'ok');
    assert.equal(of(result.const2, 'execute_result')[0].content.data['text/plain'], '2');
    assert.equal(of(result.async_out, 'stream')[0]?.content.text, 'later\n');
  });

  it('completes namespace members and inspects brainnet exports from the language service', () => {
    assert.deepEqual(result.complete_brainnet.matches, ['shapeSize']);
    assert.equal(result.complete_brainnet.cursor_start, 'io.'.length);
    assert.ok(result.complete_member.matches.includes('toUpperCase'));
    assert.equal(result.complete_member.cursor_start, 'const s = \'x\';\ns.'.length);
    assert.equal(result.inspect.found, true);
    assert.match(result.inspect.data['text/plain'], /shapeSize\(shape: readonly number\[\]\): number/);
    assert.equal(result.is_complete.status, 'incomplete');
  });

  it('interrupts a runaway synchronous cell and a pending await; the next cell runs', () => {
    for (const name of ['interrupt_sync', 'interrupt_await']) {
      assert.equal(result[name].reply.status, 'error', name);
      assert.equal(result[name].reply.ename, 'InterruptedError', name);
      assert.equal(of(result[`${name}_after`], 'execute_result')[0].content.data['text/plain'], '42', name);
    }
  });

  it('aborts execute requests queued behind a failed cell (stop_on_error), not later ones', () => {
    assert.deepEqual(result.abort.map((r: { status: string }) => r.status), ['error', 'aborted', 'aborted']);
    assert.equal(result.abort_after.reply.status, 'ok');
    assert.equal(result.abort_after.reply.execution_count, result.abort[0].execution_count + 1);
  });

  it('answers history_request and shuts down cleanly', () => {
    const h = result.history.history as Array<[number, number, string]>;
    assert.deepEqual(h.map((x) => x[2]), ['40 + 2', 'await new Promise(() => {})', '40 + 2']);
    assert.equal(result.alive_after_shutdown, false);
    // It exited by itself on shutdown_request (exit code 0), rather than being killed by jupyter_client after its wait.
    assert.equal(result.exit_code, 0, `exit code ${result.exit_code} after ${result.shutdown_s} s`);
  });

  it('runs a notebook with nbclient by kernel name', () => {
    assert.equal(nbclient[0].outputs[0].text, 'n is 12\n');
    assert.equal(nbclient[1].outputs[0].output_type, 'execute_result');
    assert.equal(nbclient[1].outputs[0].data['text/plain'], '24');
    assert.equal(nbclient[1].execution_count, 2);
  });
});
