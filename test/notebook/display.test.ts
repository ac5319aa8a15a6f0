import { strict as assert } from 'node:assert';
import { createCanvas } from 'canvas';
import sharp from 'sharp';
import { display, newDisplay, clearOutput } from 'brainnet';
import { resetPlotlyLoaded, PLOTLY_MIME, pngSize, jpegSize, formatBytes, type MimeBundle } from 'brainnet/notebook';

interface Call {
  bundle: MimeBundle;
  update: boolean;
}

/** Installs a fake brainnet-ts kernel hook that records what it is given. */
function fakeKernel() {
  const calls: Call[] = [];
  const clears: boolean[] = [];
  (globalThis as { __brainnetKernel?: unknown }).__brainnetKernel = {
    display: (bundle: MimeBundle, update?: boolean) => calls.push({ bundle, update: update ?? false }),
    clearOutput: (wait?: boolean) => clears.push(wait ?? false),
    executionCount: 1,
    language: 'typescript',
  };
  return { calls, clears };
}

function pngBytes(w: number, h: number): Buffer {
  const c = createCanvas(w, h);
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#f00';
  ctx.fillRect(0, 0, w, h);
  return c.toBuffer('image/png');
}

describe('notebook/display', () => {
  afterEach(() => {
    delete (globalThis as { __brainnetKernel?: unknown }).__brainnetKernel;
    resetPlotlyLoaded();
  });

  it('sends text, HTML, Markdown, SVG and JSON bundles to the kernel', () => {
    const { calls } = fakeKernel();
    display.text('plain');
    display.html('<b>x</b>');
    display.markdown('# T');
    display.svg('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="20"></svg>');
    display.json({ a: [1, 2] });
    display.json(5);
    assert.deepEqual(calls.map((c) => c.update), [false, false, false, false, false, false]);
    assert.deepEqual(calls[0].bundle.data, { 'text/plain': 'plain' });
    assert.equal(calls[1].bundle.data['text/html'], '<b>x</b>');
    assert.equal(calls[2].bundle.data['text/markdown'], '# T');
    assert.match(String(calls[3].bundle.data['image/svg+xml']), /^<svg/);
    assert.match(String(calls[3].bundle.data['text/plain']), /^\[svg 10x20, \d+ B\]$/);
    assert.deepEqual(calls[4].bundle.data['application/json'], { a: [1, 2] });
    assert.deepEqual(calls[5].bundle.data['application/json'], { value: 5 });
  });

  it('sends PNG and JPEG as base64 with their size in the text form', async () => {
    const { calls } = fakeKernel();
    const png = pngBytes(40, 30);
    display.png(png);
    const jpg = await sharp(png).jpeg().toBuffer();
    display.jpeg(new Uint8Array(jpg));
    assert.deepEqual(Buffer.from(String(calls[0].bundle.data['image/png']), 'base64'), png);
    assert.equal(calls[0].bundle.data['text/plain'], `[png 40x30, ${formatBytes(png.length)}]`);
    assert.deepEqual(jpegSize(jpg), { width: 40, height: 30 });
    assert.match(String(calls[1].bundle.data['text/plain']), /^\[jpeg 40x30, /);
    assert.throws(() => display.png(new Uint8Array([1, 2, 3])), /display\.png: expected PNG bytes .* found 3 bytes beginning 01 02 03/);
    assert.throws(() => display.jpeg(png), /display\.jpeg: expected JPEG bytes/);
  });

  it('inlines the plotly.js bundle once per kernel process, then only draws', () => {
    const { calls } = fakeKernel();
    const fig = { data: [{ x: [1, 2], y: [3, 4], type: 'scatter' }], layout: { title: { text: '</script><b>' } } };
    display.plotly(fig);
    display.plotly({ data: [{ y: [1] }, { y: [2] }] });
    assert.equal(calls.length, 3, 'loader + two figures');
    const loader = String(calls[0].bundle.data['text/html']);
    assert.ok(loader.length > 1_000_000, 'the plotly.js bundle itself');
    assert.match(loader, /^<script type="text\/javascript">/);
    assert.doesNotMatch(loader, /<script[^>]*\bsrc=/i);
    assert.deepEqual(calls[0].bundle.metadata, { brainnet: { plotlyBundle: true } });
    for (const c of calls.slice(1)) {
      const html = String(c.bundle.data['text/html']);
      assert.ok(html.length < 5000, 'figures do not repeat the bundle');
      assert.match(html, /Plotly\.newPlot\(/);
      assert.match(html, /<div id="plotly-[^"]+"/);
    }
    assert.deepEqual(calls[1].bundle.data[PLOTLY_MIME], { data: fig.data, layout: fig.layout });
    assert.equal((String(calls[1].bundle.data['text/html']).match(/<\/script>/g) ?? []).length, 1, 'a title holding </script> is escaped');
    assert.equal(calls[2].bundle.data['text/plain'], '[plotly figure: 2 traces]');
    assert.throws(() => display.plotly({ x: [1] } as never), /expected a figure \{ data: \[\.\.\.traces\]/);
  });

  it('renders Vega-Lite headless to SVG and to PNG', async () => {
    const { calls } = fakeKernel();
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      data: { values: [{ a: 'A', b: 28 }, { a: 'B', b: 55 }, { a: 'C', b: 43 }] },
      mark: 'bar',
      encoding: { x: { field: 'a', type: 'nominal' }, y: { field: 'b', type: 'quantitative' } },
      width: 120,
      height: 80,
    };
    await display.vegaLite(spec);
    await display.vegaLite(spec, { format: 'png', scale: 1 });
    const svg = String(calls[0].bundle.data['image/svg+xml']);
    assert.match(svg, /^<svg/);
    assert.ok((svg.match(/<path/g) ?? []).length >= 3, 'bars drawn');
    assert.match(String(calls[0].bundle.data['text/plain']), /^\[vega-lite svg \d+x\d+/);
    const png = Buffer.from(String(calls[1].bundle.data['image/png']), 'base64');
    const size = pngSize(png)!;
    assert.ok(size.width > 120 && size.height > 80, `png ${size.width}x${size.height} includes axes`);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    let coloured = 0;
    for (let i = 0; i < data.length; i += info.channels) if (data[i + 2] > data[i] + 40) coloured++;
    assert.ok(coloured > 200, 'blue bars painted');
    await assert.rejects(display.vegaLite({ mark: 'nope' }), /display\.vegaLite: the spec does not compile|Invalid/);
  });

  it('replaces one output through a display handle (display_id + update)', () => {
    const { calls, clears } = fakeKernel();
    const h = newDisplay();
    h.text('one');
    h.html('<i>two</i>');
    h.png(pngBytes(4, 4));
    assert.equal(calls.length, 3);
    assert.deepEqual(calls.map((c) => c.update), [false, true, true]);
    assert.ok(calls.every((c) => c.bundle.transient?.display_id === h.id));
    const other = newDisplay();
    assert.notEqual(other.id, h.id);
    clearOutput(true);
    assert.deepEqual(clears, [true]);
  });

  it('prints one-line summaries outside a kernel', async () => {
    const lines: string[] = [];
    const orig = console.log;
    console.log = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      display.png(pngBytes(64, 48));
      display.html('<p>hi</p>');
      display.plotly({ data: [{ y: [1] }] });
      display.text('as is');
      newDisplay().json({ k: 1 });
    } finally {
      console.log = orig;
    }
    assert.match(lines[0], /^\[png 64x48, \d+(\.\d)? (B|kB)\]$/);
    assert.equal(lines[1], '[html 9 B]');
    assert.equal(lines[2], '[plotly figure: 1 trace]');
    assert.equal(lines[3], 'as is');
    assert.equal(lines.length, 5);
  });
});
