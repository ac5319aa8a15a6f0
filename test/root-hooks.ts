/**
 * Root hooks of the test suite (loaded by .mocharc.json "require"): no kernel outlives its test.
 *
 * The runner's Jupyter client records every kernel it starts until it is shut down or killed (lib/runner/jupyter-client.ts,
 * on globalThis, so this file needs no build). After each test, a kernel started during the test and still
 * recorded is killed: after a test that failed or timed out (mocha goes on while the test's promise still waits,
 * e.g. in watch mode) that is the clean-up, and after a test that passed it is a leak, reported when the run ends.
 * Kernels started by other programs (the Python drivers) exit on their own when their parent dies (the kernel's
 * parent poller, kernels/brainnet-ts/channels-worker.ts).
 */
import type { Context } from 'mocha';

type LiveKernel = { pid?: number; kill(): Promise<void> };

const live = (): LiveKernel[] => [...((globalThis as Record<symbol, Set<LiveKernel> | undefined>)[Symbol.for('brainnet.runner.liveKernels')] ?? [])];
const pids = (ks: LiveKernel[]) => ks.map((k) => k.pid).join(', ');

let before = new Set<LiveKernel>();
const leaks: string[] = [];

export const mochaHooks = {
  beforeEach(): void {
    before = new Set(live());
  },
  async afterEach(this: Context): Promise<void> {
    const left = live().filter((k) => !before.has(k));
    if (!left.length) return;
    const test = this.currentTest!;
    await Promise.all(left.map((k) => k.kill()));
    const what = `${left.length} kernel(s) (pid ${pids(left)}) started by "${test.fullTitle()}"`;
    if (test.state === 'passed') leaks.push(what);
    else console.error(`      [root-hooks] stopped ${what}, still running after the test ${test.timedOut ? 'timed out' : 'failed'}`);
  },
  async afterAll(): Promise<void> {
    const left = live();
    await Promise.all(left.map((k) => k.kill()));
    if (left.length) leaks.push(`${left.length} kernel(s) (pid ${pids(left)}) still running when the run ended`);
    if (leaks.length) throw new Error(`kernels outlived their tests (stop them in the test or its after hook):\n${leaks.join('\n')}`);
  },
};
