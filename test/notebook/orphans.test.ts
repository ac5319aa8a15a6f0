/**
 * No orphan kernels: the kernel exits when the process that started it dies (its parent poller), the runner removes
 * its connection file on every exit path it can catch, the next runner removes what a killed one left, and the
 * test suite stops a kernel left running by a test that timed out.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeStaleKernelFiles } from 'brainnet/runner';
import { installTestKernel, NOTEBOOK_CLI, REPO } from './kernel-env';

/** True while `pid` runs (a zombie counts as gone). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The brainnet-ts kernel whose parent is `parent`, if one runs. */
function kernelOf(parent: number): number | undefined {
  for (const name of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('brainnet-ts/main.ts')) return Number(name);
    } catch {
      /* gone meanwhile */
    }
  }
  return undefined;
}

/** Resolves with how many seconds it took `check` to become true, or rejects after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return (Date.now() - t0) / 1000;
}

/** The connection file and ipc folder a runner with this pid made. */
const filesOf = (pid: number) => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(`brainnet-kernel-${pid}-`) || n.startsWith(`brainnet-ipc-${pid}-`)).map((n) => path.join(os.tmpdir(), n));

describe('notebook runner: no orphan kernels', function () {
  this.timeout(120_000);
  let env: ReturnType<typeof installTestKernel>;
  let dir: string;
  const children: ChildProcess[] = [];

  before(() => {
    env = installTestKernel();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-orphans-'));
    const cells = [
      { cell_type: 'code', id: 'a', metadata: {}, source: "console.log('first cell')", outputs: [], execution_count: null },
      { cell_type: 'code', id: 'b', metadata: {}, source: 'while (true) {}', outputs: [], execution_count: null }, // a busy main thread
    ];
    fs.writeFileSync(path.join(dir, 'busy.ipynb'), JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'brainnet-ts', display_name: 'TypeScript (brainnet)', language: 'typescript' } }, cells }));
  });
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    env?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the CLI on the busy notebook and resolves once its second cell (the endless loop) runs. */
  async function busyRunner(): Promise<{ runner: ChildProcess; kernel: number }> {
    const runner = spawn(process.execPath, [NOTEBOOK_CLI, 'busy.ipynb', '--out', 'out'], { cwd: dir, env: { ...process.env, JUPYTER_PATH: env.jupyterPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(runner);
    let out = '';
    runner.stdout!.on('data', (d) => (out += d));
    runner.stderr!.on('data', (d) => (out += d));
    await until(() => /cell 1\/2 ok/.test(out) || runner.exitCode !== null, 90_000, `the runner's first cell (${out})`);
    assert.equal(runner.exitCode, null, out);
    const kernel = kernelOf(runner.pid!);
    assert.ok(kernel, 'the runner has a kernel child');
    return { runner, kernel };
  }

  it('the kernel of a runner killed with SIGKILL (mid-cell, main thread busy) exits within a few seconds; the next runner removes its files', async () => {
    const { runner, kernel } = await busyRunner();
    const files = filesOf(runner.pid!);
    assert.equal(files.length, 2, `connection file and ipc folder: ${files}`);
    runner.kill('SIGKILL');
    const seconds = await until(() => !running(kernel), 10_000, `kernel ${kernel} exiting after its runner was killed`);
    console.log(`      kernel gone ${seconds.toFixed(1)} s after SIGKILL of its runner`);
    assert.ok(seconds < 5, `the kernel took ${seconds} s`);
    // SIGKILL cannot be caught: the files stay until a runner starts and sees their owner is dead.
    assert.ok(files.every((f) => fs.existsSync(f)));
    assert.deepEqual(removeStaleKernelFiles().filter((f) => files.includes(f)).sort(), files.sort());
    assert.ok(files.every((f) => !fs.existsSync(f)));
  });

  it('a runner stopped with SIGTERM or SIGINT stops its kernel and removes its connection file before it exits', async () => {
    for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
      const { runner, kernel } = await busyRunner();
      const files = filesOf(runner.pid!);
      const exited = new Promise<number | null>((r) => runner.once('exit', (c) => r(c)));
      runner.kill(signal);
      assert.equal(await exited, code, signal);
      await until(() => !running(kernel), 3000, `kernel exit after ${signal}`);
      assert.deepEqual(files.filter((f) => fs.existsSync(f)), [], `files left after ${signal}`);
    }
  });

  it('a program that exits without shutting its kernel down takes the kernel and its files with it', async () => {
    const script = `
      const { KernelClient, findKernelSpec } = require(${JSON.stringify(path.join(REPO, 'dist', 'lib', 'runner', 'index.js'))});
      KernelClient.start({ kernel: findKernelSpec('brainnet-ts'), cwd: ${JSON.stringify(dir)} }).then((k) => {
        console.log(JSON.stringify({ kernel: k.pid }));
        process.exit(3);
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, JUPYTER_PATH: env.jupyterPath }, encoding: 'utf8', timeout: 110_000 });
    assert.equal(r.status, 3, r.stderr);
    const { kernel } = JSON.parse(r.stdout);
    await until(() => !running(kernel), 3000, `kernel ${kernel} exiting with its program`);
    assert.deepEqual(filesOf(r.pid!), []);
  });

  it('a program that calls exitOnSignals() stops its kernel and removes its files when it gets SIGTERM', async () => {
    const script = `
      const { KernelClient, findKernelSpec, exitOnSignals } = require(${JSON.stringify(path.join(REPO, 'dist', 'lib', 'runner', 'index.js'))});
      exitOnSignals();
      KernelClient.start({ kernel: findKernelSpec('brainnet-ts'), cwd: ${JSON.stringify(dir)} }).then((k) => {
        console.log(JSON.stringify({ kernel: k.pid }));
        setInterval(() => {}, 1000);
      });`;
    const p = spawn(process.execPath, ['-e', script], { env: { ...process.env, JUPYTER_PATH: env.jupyterPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    await until(() => out.includes('\n') || p.exitCode !== null, 110_000, 'the program\'s kernel');
    const { kernel } = JSON.parse(out);
    assert.equal(filesOf(p.pid!).length, 2);
    const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    p.kill('SIGTERM');
    assert.equal(await exited, 143);
    await until(() => !running(kernel), 3000, `kernel ${kernel} exiting with its program`);
    assert.deepEqual(filesOf(p.pid!), []);
  });

  it('the test suite stops a kernel left running by a test that timed out', () => {
    const r = spawnSync(process.execPath, [path.join(REPO, 'node_modules', 'mocha', 'bin', 'mocha.js'), 'test/fixtures/mocha/kernel-timeout.fixture.ts'], {
      cwd: REPO, env: { ...process.env, JUPYTER_PATH: env.jupyterPath, BN_FIXTURE_CWD: dir }, encoding: 'utf8', timeout: 110_000,
    });
    const line = /FIXTURE (.*)/.exec(r.stdout)?.[1];
    assert.ok(line, `${r.stdout}\n${r.stderr}`);
    const seen = JSON.parse(line);
    assert.ok(seen.pid > 0);
    assert.deepEqual([seen.running, seen.live], [false, 0], line);
    assert.match(r.stdout + r.stderr, /Timeout of 500ms exceeded/);
    assert.match(r.stdout + r.stderr, /\[root-hooks\] stopped 1 kernel\(s\) \(pid \d+\) started by "a test that times out with a kernel running starts a kernel and hangs", still running after the test timed out/);
  });
});
