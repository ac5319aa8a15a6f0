/**
 * The runner's mirror of a running cell's progress bars (lib/runner/live-progress.ts), with an injected clock:
 * a log gets at most one line per 10 s, a TTY one line redrawn in place, and nothing is left running after a cell.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LiveProgress, runNotebook, type CellEvent, type ProgressEvent } from 'brainnet/runner';
import { progress, progressFromMetadata } from 'brainnet/notebook';
import { installTestKernel } from './kernel-env';

const start = (number: number, total = 12): CellEvent => ({ phase: 'start', number, total, index: number });
const end = (number: number, total = 12): CellEvent => ({ phase: 'end', number, total, index: number, seconds: 1, status: 'ok' });
const bar = (cell: number, done: number, elapsedMs: number, finished = false): ProgressEvent => ({ cell, total: 12, displayId: 'p1', state: { label: 'training', done, total: 100, elapsedMs, finished } });

describe('notebook runner: live progress in the terminal', () => {
  it('in a log, prints at most one line per 10 s, with count, rate and ETA, and nothing for a short cell', () => {
    let now = 0;
    const out: string[] = [];
    const live = new LiveProgress({ tty: false, now: () => now, write: (s) => out.push(s) });
    live.onCell(start(1));
    for (let t = 0; t <= 3000; t += 500) live.onProgress(bar(1, t / 100, t, t === 3000));
    live.onCell(end(1));
    assert.equal(out.length, 0, 'a 3 s cell prints no progress line');
    live.onCell(start(5));
    const times: number[] = [];
    for (let t = 0; t <= 60_000; t += 250) {
      now = t;
      const n = out.length;
      live.onProgress(bar(5, Math.floor(t / 600), t));
      if (out.length > n) times.push(t);
    }
    assert.deepEqual(times, [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    assert.equal(out[0], '  cell 5/12  training  16/100   16% |███▏                |  1.6 it/s  0:10<0:53\n');
    assert.ok(out.every((l) => l.endsWith('\n') && !l.includes('\r')));
    live.onCell(end(5));
  });

  it('in a TTY, redraws one line in place and clears it when the cell ends; its timer stops', () => {
    let now = 0;
    const out: string[] = [];
    const live = new LiveProgress({ tty: true, now: () => now, write: (s) => out.push(s), redrawMs: 100 });
    live.onCell(start(3));
    assert.ok((live as unknown as { timer: unknown }).timer, 'a timer ticks the running time');
    live.onProgress(bar(3, 10, 1000));
    now = 50;
    live.onProgress(bar(3, 11, 1050)); // within the redraw interval: not drawn
    now = 200;
    live.onProgress(bar(3, 30, 1200));
    assert.deepEqual(out.length, 2);
    assert.ok(out.every((l) => l.startsWith('\r') && l.endsWith('\x1b[K') && !l.includes('\n')));
    assert.match(out[1], /cell 3\/12  training  30\/100 +30% .*it\/s/);
    live.onCell(end(3));
    assert.equal(out.at(-1), '\r\x1b[K');
    assert.equal((live as unknown as { timer: unknown }).timer, null);
  });

  it('shows the running time of a cell without a bar in a TTY', () => {
    let now = 0;
    const out: string[] = [];
    const live = new LiveProgress({ tty: true, now: () => now, write: (s) => out.push(s) });
    live.onCell(start(2, 4));
    now = 42_000;
    assert.equal(live.line(), '  cell 2/4 running 0:42');
    live.stop();
  });

  it('reads the bar state a notebook progress display carries in its metadata', () => {
    const sent: Array<{ metadata?: Record<string, unknown> }> = [];
    const hook = { display: (b: { metadata?: Record<string, unknown> }) => sent.push(b), clearOutput() {}, executionCount: 1, language: 'typescript' as const };
    (globalThis as { __brainnetKernel?: unknown }).__brainnetKernel = hook;
    try {
      const p = progress({ total: 4, label: 'tokens', mode: 'notebook', minIntervalMs: 0 });
      p.tick(3);
      p.done();
    } finally {
      delete (globalThis as { __brainnetKernel?: unknown }).__brainnetKernel;
    }
    const states = sent.map((b) => progressFromMetadata(b.metadata));
    assert.deepEqual(states.map((s) => [s?.label, s?.done, s?.total, s?.finished]), [['tokens', 0, 4, false], ['tokens', 3, 4, false], ['tokens', 3, 4, true]]);
    assert.equal(progressFromMetadata({}), undefined);
    assert.equal(progressFromMetadata({ brainnet: { progress: { done: 'x' } } }), undefined);
  });

  it('runNotebook hands the running cell\'s progress bar to onProgress as the kernel sends it', async function () {
    this.timeout(120_000);
    const env = installTestKernel();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-live-'));
    const saved = process.env.JUPYTER_PATH;
    process.env.JUPYTER_PATH = env.jupyterPath;
    try {
      const cells = [
        { cell_type: 'code', id: 'a', metadata: {}, source: "import { progress } from 'brainnet';\nconst n = 1;", outputs: [], execution_count: null },
        { cell_type: 'code', id: 'b', metadata: {}, source: "const bar = progress({ total: 5, label: 'extract', minIntervalMs: 0 });\nfor (let i = 0; i < 5; i++) { await new Promise((r) => setTimeout(r, 5)); bar.tick(); }\nbar.done();", outputs: [], execution_count: null },
      ];
      fs.writeFileSync(path.join(dir, 'bar.ipynb'), JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'brainnet-ts', display_name: 'TypeScript (brainnet)', language: 'typescript' } }, cells }));
      const seen: ProgressEvent[] = [];
      await runNotebook(path.join(dir, 'bar.ipynb'), { outDir: path.join(dir, 'out'), onProgress: (e) => seen.push(e) });
      assert.ok(seen.length >= 2, `${seen.length} progress events`);
      assert.ok(seen.every((e) => e.cell === 2 && e.total === 2 && e.state.label === 'extract' && e.state.total === 5));
      assert.equal(seen[0].state.done, 0);
      assert.deepEqual([seen.at(-1)!.state.done, seen.at(-1)!.state.finished], [5, true]);
      assert.equal(new Set(seen.map((e) => e.displayId)).size, 1, 'one bar, one display id');
    } finally {
      if (saved === undefined) delete process.env.JUPYTER_PATH;
      else process.env.JUPYTER_PATH = saved;
      env.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
