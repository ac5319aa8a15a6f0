import { strict as assert } from 'node:assert';
import { progress, withProgress } from 'brainnet';
import { formatDuration, formatProgressLine, formatRate, progressHtml, progressStats } from 'brainnet/notebook';

/** A fake clock the tests move by hand. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('notebook/progress', () => {
  it('computes fraction, rate and ETA from elapsed time', () => {
    const s = progressStats(25, 100, 5000);
    assert.equal(s.fraction, 0.25);
    assert.equal(s.rate, 5); // 25 steps in 5 s
    assert.equal(s.etaSeconds, 15); // 75 left at 5/s
    assert.equal(progressStats(0, 100, 0).rate, undefined);
    assert.equal(progressStats(0, 100, 0).etaSeconds, undefined);
    assert.equal(progressStats(10, undefined, 2000).fraction, undefined);
    assert.equal(progressStats(10, undefined, 2000).rate, 5);
    assert.equal(progressStats(150, 100, 1000).fraction, 1);
    assert.equal(progressStats(150, 100, 1000).etaSeconds, 0);
  });

  it('formats durations and rates', () => {
    assert.equal(formatDuration(0), '0:00');
    assert.equal(formatDuration(65), '1:05');
    assert.equal(formatDuration(3725), '1:02:05');
    assert.equal(formatDuration(undefined), '--:--');
    assert.equal(formatRate(12.345), '12.3 it/s');
    assert.equal(formatRate(250), '250 it/s');
    assert.equal(formatRate(0.25), '4.0 s/it');
    assert.equal(formatRate(undefined), '? it/s');
  });

  it('formats a text line with count, percent, rate and ETA', () => {
    const line = formatProgressLine({ label: 'fit', done: 45, total: 100, elapsedMs: 9000, info: 'loss 0.3' }, 10);
    assert.match(line, /^fit {2}45\/100 {3}45% \|████▌ {5}\| {2}5\.0 it\/s {2}0:09<0:11 {2}loss 0\.3$/);
    const fin = formatProgressLine({ done: 10, total: 10, elapsedMs: 2000, finished: true }, 4);
    assert.match(fin, /100% \|████\|/);
    assert.doesNotMatch(fin, /</);
  });

  it('makes an HTML bar with percent, count, rate and ETA', () => {
    const html = progressHtml({ label: 'a<b', done: 30, total: 120, elapsedMs: 6000 });
    assert.match(html, /width:25\.0%/);
    assert.match(html, /30\/120 \(25%\)/);
    assert.match(html, /5\.0 it\/s/);
    assert.match(html, /ETA 0:18/);
    assert.match(html, /a&lt;b/);
  });

  it('redraws one line with \\r in a TTY, throttled by the injected clock', () => {
    const c = clock();
    const out: string[] = [];
    const bar = progress({ total: 100, mode: 'tty', now: c.now, write: (s) => out.push(s), minIntervalMs: 100 });
    assert.equal(out.length, 1);
    for (let i = 0; i < 10; i++) {
      c.advance(10);
      bar.tick();
    }
    assert.equal(out.length, 2, 'ten ticks within 100 ms redraw once');
    c.advance(200);
    bar.tick(40, 'half');
    bar.done();
    assert.ok(out.every((s) => s.startsWith('\r')));
    assert.match(out[out.length - 1], /\n$/);
    assert.match(out[out.length - 1], /50\/100.*half/);
  });

  it('prints a line every 10% (or 10 s) when stdout is not a TTY', () => {
    const c = clock();
    const out: string[] = [];
    const bar = progress({ total: 1000, mode: 'log', now: c.now, write: (s) => out.push(s) });
    for (let i = 0; i < 1000; i++) {
      c.advance(1);
      bar.tick();
    }
    bar.done();
    // 0% line, one per 10% bucket (10..100), and the final line
    assert.ok(out.length >= 11 && out.length <= 13, `got ${out.length} lines`);
    assert.ok(out.every((s) => s.endsWith('\n') && !s.includes('\r')));
    const slow: string[] = [];
    const c2 = clock();
    const bar2 = progress({ mode: 'log', now: c2.now, write: (s) => slow.push(s) });
    c2.advance(5000);
    bar2.tick();
    assert.equal(slow.length, 1, 'no total: nothing before 10 s');
    c2.advance(6000);
    bar2.tick();
    assert.equal(slow.length, 2);
  });

  it('updates one display_id in a notebook, a few times a second', () => {
    const c = clock();
    const calls: Array<{ id?: string; update?: boolean; html: string }> = [];
    const g = globalThis as { __brainnetKernel?: unknown };
    g.__brainnetKernel = {
      display: (b: { data: Record<string, unknown>; transient?: { display_id?: string } }, update?: boolean) =>
        calls.push({ id: b.transient?.display_id, update, html: String(b.data['text/html']) }),
      clearOutput: () => undefined,
      executionCount: 1,
      language: 'typescript',
    };
    try {
      const bar = progress({ total: 50, label: 'steps', now: c.now });
      for (let i = 0; i < 50; i++) {
        c.advance(20); // 50 ticks over 1 s
        bar.tick();
      }
      bar.done();
      assert.ok(calls.length >= 4 && calls.length <= 7, `${calls.length} displays for 1 s at 250 ms throttle`);
      assert.equal(new Set(calls.map((x) => x.id)).size, 1);
      assert.equal(calls[0].update, false);
      assert.ok(calls.slice(1).every((x) => x.update === true));
      assert.match(calls[calls.length - 1].html, /50\/50 \(100%\)/);
    } finally {
      delete g.__brainnetKernel;
    }
  });

  it('wraps iterables and async iterables', async () => {
    const out: string[] = [];
    const seen: number[] = [];
    for (const x of withProgress([1, 2, 3], { mode: 'log', write: (s) => out.push(s) })) seen.push(x);
    assert.deepEqual(seen, [1, 2, 3]);
    assert.match(out[out.length - 1], /3\/3/);
    async function* gen() {
      yield 'a';
      yield 'b';
    }
    const aout: string[] = [];
    const got: string[] = [];
    for await (const x of withProgress(gen(), { mode: 'log', write: (s) => aout.push(s) })) got.push(x);
    assert.deepEqual(got, ['a', 'b']);
    assert.match(aout[aout.length - 1], /^2 /);
  });
});
