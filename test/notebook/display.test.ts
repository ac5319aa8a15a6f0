import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { createCanvas } from 'canvas';
import sharp from 'sharp';
import { display, newDisplay, clearOutput } from 'brainnet';
import * as zlib from 'node:zlib';
import { resetPlotlyLoaded, resetBrain3dLoaded, PLOTLY_MIME, pngSize, jpegSize, formatBytes, plotlyBundlePath, type MimeBundle, type Brain3dPayload, encodeBrain3dBlob } from 'brainnet/notebook';

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

/** A hand-made payload: two tetrahedra, one overlay (the viewer is exercised for real in test/browser/brain3d.test.ts). */
function tinyPayload(): Brain3dPayload {
  const blobs = [
    encodeBrain3dBlob([0, 1, 2, 0, 3, 1, 0, 2, 3, 1, 3, 2], 'u16'),
    encodeBrain3dBlob([0, 1, -1, -1], 'i32'), encodeBrain3dBlob([2, 3, -1, -1], 'i32'),
    encodeBrain3dBlob([-32767, -32767, -32767, 32767, -32767, -32767, -32767, 32767, -32767, -32767, -32767, 32767], 'i16'),
    encodeBrain3dBlob([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 9, 9, 9, 0], 'u8'),
    encodeBrain3dBlob([1, 2, 3, NaN], 'f32'),
  ];
  const pos = { data: 3, origin: [0, 0, 0] as [number, number, number], step: [1e-3, 1e-3, 1e-3] as [number, number, number] };
  return {
    format: 'brainnet-brain3d-1', nLh: 2, nRh: 2, surfaces: ['sphere'], blobs, underlay: [200, 200, 200],
    hemis: [{ name: 'lh', nVertices: 4, faces: 0, dataIndex: 1, positions: { sphere: pos } }, { name: 'rh', nVertices: 4, faces: 0, dataIndex: 2, positions: { sphere: pos } }],
    overlays: [{ name: 'v', colors: 4, readout: [{ name: 'v', k: 1, values: 5 }] }],
    views: { posterior: { azimuth: 0, elevation: 0, hemis: ['lh', 'rh'] } }, initial: { overlay: 0, surface: 'sphere', view: 'posterior' },
  };
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
    resetBrain3dLoaded();
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
    assert.match(loader, /^<script type="text\/javascript">\/\* plotly\.js v\d+\.\d+\.\d+ \(plotly\.js-dist, MIT licence\); gzip \+ base64/);
    assert.doesNotMatch(loader, /<script[^>]*\bsrc=/i);
    assert.deepEqual(calls[0].bundle.metadata, { brainnet: { plotlyBundle: true } });
    // the whole bundle is inside, compressed: it unpacks to plotly.js-dist's file, byte for byte
    const b64 = /atob\("([A-Za-z0-9+/=]+)"\)/.exec(loader)![1]!;
    const src = fs.readFileSync(plotlyBundlePath());
    assert.ok(zlib.gunzipSync(Buffer.from(b64, 'base64')).equals(src));
    assert.ok(loader.length < 0.3 * src.length, `loader ${loader.length} B for a ${src.length} B bundle`);
    for (const c of calls.slice(1)) {
      const html = String(c.bundle.data['text/html']);
      assert.ok(html.length < 5000, 'figures do not repeat the bundle');
      assert.match(html, /P\.newPlot\(el,/);
      assert.match(html, /<div id="plotly-[^"]+"/);
      assert.equal(c.bundle.data[PLOTLY_MIME], undefined, 'one copy of the figure: HTML only');
      assert.deepEqual(c.bundle.metadata, { brainnet: { plotly: true } });
    }
    assert.ok(String(calls[1].bundle.data['text/html']).includes(JSON.stringify(fig.data)), 'the figure\'s data');
    assert.equal((String(calls[1].bundle.data['text/html']).match(/<\/script>/g) ?? []).length, 1, 'a title holding </script> is escaped');
    assert.equal(calls[2].bundle.data['text/plain'], '[plotly figure: 2 traces]');
    assert.throws(() => display.plotly({ x: [1] } as never), /expected a figure \{ data: \[\.\.\.traces\]/);
  });

  it('inlines the 3-D viewer (NiiVue) once per kernel process, then sends each view as HTML holding its payload', () => {
    const { calls } = fakeKernel();
    const payload = tinyPayload();
    display.brain3d(payload);
    display.brain3d({ ...payload, title: 'second' }, { height: 300 });
    assert.equal(calls.length, 3, 'loader + two views');
    const loader = String(calls[0].bundle.data['text/html']);
    assert.match(loader, /\/\* NiiVue v\d+\.\d+\.\d+ \(@niivue\/niivue, BSD-2-Clause/);
    assert.deepEqual(calls[0].bundle.metadata, { brainnet: { brain3dBundle: true } });
    const unpacked = zlib.gunzipSync(Buffer.from(/atob\("([A-Za-z0-9+/=]+)"\)/.exec(loader)![1]!, 'base64')).toString('utf8');
    assert.match(unpacked, /sA\.niivue=\{\}/, 'NiiVue\'s UMD build');
    assert.match(unpacked, /window\.brainnetBrain3d = \(function/, 'then the viewer');
    assert.doesNotThrow(() => new Function(unpacked), 'the whole bundle parses as a classic script');
    for (const c of calls.slice(1)) {
      assert.deepEqual(c.bundle.metadata, { brainnet: { brain3d: true } });
      const html = String(c.bundle.data['text/html']);
      assert.ok(html.length < 20000, 'a view does not repeat the bundle');
      assert.match(html, /B\.mount\(el,\{"format":"brainnet-brain3d-1"/);
      assert.match(String(c.bundle.data['text/plain']), /^\[3-D view: lh \+ rh, 8 mesh vertices, 4 data vertices, overlays: v; \d+ kB\]$/);
    }
    assert.match(String(calls[2].bundle.data['text/html']), /min-height:300px/);
    assert.throws(() => display.brain3d({ format: 'x' } as never), /display\.brain3d: expected a payload with format 'brainnet-brain3d-1', found format "x"/);
    assert.throws(() => display.brain3d({ ...payload, overlays: [{ ...payload.overlays[0]!, colors: 9 }] }), /overlay 'v' colours refers to blob 9, the payload has \d+/);
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
