/**
 * Synthetic stimuli: labelled scenes drawn procedurally with node-canvas (the `canvas` package,
 * already a dependency), so that nothing needs a download and every image is reproducible from
 * the seed. Each image is a background (an outdoor or indoor scene, which counts as 'places', or
 * an abstract texture) with 0-3 pasted objects (faces, bodies, words, food, objects) at random
 * positions and scales, so local contrast energy varies across the image.
 *
 * Sources: all procedural drawing (no photographs); the words are drawn with the system's
 * DejaVu fonts through canvas. Photographs from offline packages are not used (see README).
 */
import { createCanvas, type CanvasRenderingContext2D } from 'canvas';
import { CATEGORIES, type Category } from './cortex.js';
import { Rng } from '../core/rng.js';

/** Side of the contrast-energy grid, cells per axis. */
export const GRID = 16;
/** Side of the category-presence grid, cells per axis. */
export const PGRID = 8;

/** One pasted object: category, centre (pixels), size (pixels) and a drawing variant. */
export interface StimulusObject {
  category: Exclude<Category, 'places'>;
  cx: number;
  cy: number;
  size: number;
  variant: number;
}

/** What an image contains: enough to redraw it exactly. */
export interface StimulusSpec {
  /** Index of the image in its list. */
  index: number;
  size: number;
  background: 'city' | 'mountains' | 'forest' | 'room' | 'texture' | 'plain';
  seed: number;
  objects: StimulusObject[];
  /** Which categories the image contains, in CATEGORIES order. [6] */
  labels: boolean[];
}

/** A rendered image: RGB pixels, HWC, `size` x `size`, plus its PNG encoding. */
export interface RenderedStimulus {
  spec: StimulusSpec;
  rgb: Uint8Array;
  png: Buffer;
}

const WORDS = ['STOP', 'OPEN', 'CAFE', 'EXIT', 'HOTEL', 'BUS', 'PARK', 'SALE', 'NEWS', 'BANK', 'PIZZA', 'TAXI', 'BOOKS', 'RADIO', 'ZEBRA', 'river', 'market', 'station', 'garden', 'welcome', 'library', 'music'];
const SCENES: StimulusSpec['background'][] = ['city', 'mountains', 'forest', 'room'];

/** Draws the specification of image `index` from the seeded generator. */
export function sampleStimulus(rng: Rng, index: number, size: number): StimulusSpec {
  const r = rng.next();
  const background: StimulusSpec['background'] = r < 0.5 ? rng.pick(SCENES) : r < 0.92 ? 'texture' : 'plain';
  const nObj = rng.pick([0, 1, 1, 2, 2, 3, 3]);
  const cats = ['faces', 'bodies', 'words', 'food', 'objects'] as const;
  const objects: StimulusObject[] = [];
  for (let k = 0; k < nObj; k++) {
    const category = rng.pick(cats);
    const s = size * rng.uniform(0.22, 0.55);
    objects.push({ category, size: s, cx: rng.uniform(s / 2, size - s / 2), cy: rng.uniform(s / 2, size - s / 2), variant: rng.int(0, 1000) });
  }
  const labels = CATEGORIES.map((c) => (c === 'places' ? SCENES.includes(background) : objects.some((o) => o.category === c)));
  return { index, size, background, seed: rng.int(0, 2 ** 31), objects, labels };
}

const rgbStr = (r: number, g: number, b: number) => `rgb(${r | 0},${g | 0},${b | 0})`;

function drawBackground(ctx: CanvasRenderingContext2D, spec: StimulusSpec, rng: Rng): void {
  const S = spec.size;
  const sky = () => {
    const g = ctx.createLinearGradient(0, 0, 0, S);
    g.addColorStop(0, rgbStr(rng.uniform(60, 140), rng.uniform(120, 180), rng.uniform(200, 255)));
    g.addColorStop(1, rgbStr(220, 230, 240));
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, S, S);
  };
  const horizon = S * rng.uniform(0.45, 0.7);
  switch (spec.background) {
    case 'plain':
      ctx.fillStyle = rgbStr(rng.uniform(80, 220), rng.uniform(80, 220), rng.uniform(80, 220));
      ctx.fillRect(0, 0, S, S);
      return;
    case 'texture': {
      ctx.fillStyle = rgbStr(rng.uniform(60, 200), rng.uniform(60, 200), rng.uniform(60, 200));
      ctx.fillRect(0, 0, S, S);
      const n = rng.int(20, 80);
      for (let i = 0; i < n; i++) {
        ctx.fillStyle = `rgba(${rng.int(0, 255)},${rng.int(0, 255)},${rng.int(0, 255)},${rng.uniform(0.15, 0.6)})`;
        ctx.beginPath();
        ctx.ellipse(rng.uniform(0, S), rng.uniform(0, S), rng.uniform(3, S / 5), rng.uniform(3, S / 5), rng.uniform(0, Math.PI), 0, 2 * Math.PI);
        ctx.fill();
      }
      return;
    }
    case 'city': {
      sky();
      ctx.fillStyle = rgbStr(90, 90, 95);
      ctx.fillRect(0, horizon, S, S - horizon);
      let x = -rng.uniform(0, 20);
      while (x < S) {
        const w = rng.uniform(S * 0.1, S * 0.25), h = rng.uniform(S * 0.2, horizon * 0.95);
        const c = rng.uniform(90, 200);
        ctx.fillStyle = rgbStr(c, c * rng.uniform(0.8, 1), c * rng.uniform(0.7, 1));
        ctx.fillRect(x, horizon - h, w, h);
        ctx.fillStyle = rgbStr(250, 240, 160);
        for (let wy = horizon - h + 6; wy < horizon - 8; wy += 12) for (let wx = x + 4; wx < x + w - 6; wx += 10) if (rng.next() < 0.6) ctx.fillRect(wx, wy, 5, 6);
        x += w + rng.uniform(0, 8);
      }
      return;
    }
    case 'mountains': {
      sky();
      for (let layer = 0; layer < 3; layer++) {
        const c = 70 + layer * 30;
        ctx.fillStyle = rgbStr(c * 0.8, c, c * 0.9);
        ctx.beginPath();
        ctx.moveTo(0, S);
        for (let x = 0; x <= S; x += S / 8) ctx.lineTo(x, horizon - rng.uniform(0, S * 0.35) + layer * S * 0.08);
        ctx.lineTo(S, S);
        ctx.fill();
      }
      ctx.fillStyle = rgbStr(70, 130, 60);
      ctx.fillRect(0, horizon + S * 0.15, S, S);
      return;
    }
    case 'forest': {
      sky();
      ctx.fillStyle = rgbStr(60, 120, 50);
      ctx.fillRect(0, horizon, S, S - horizon);
      const n = rng.int(8, 20);
      for (let i = 0; i < n; i++) {
        const x = rng.uniform(0, S), h = rng.uniform(S * 0.2, S * 0.5), base = horizon + rng.uniform(0, S * 0.3);
        ctx.fillStyle = rgbStr(100, 70, 40);
        ctx.fillRect(x - 3, base - h * 0.3, 6, h * 0.3);
        ctx.fillStyle = rgbStr(20, rng.uniform(80, 140), 30);
        ctx.beginPath();
        ctx.moveTo(x, base - h);
        ctx.lineTo(x - h * 0.3, base - h * 0.25);
        ctx.lineTo(x + h * 0.3, base - h * 0.25);
        ctx.fill();
      }
      return;
    }
    case 'room': {
      const wall = rgbStr(rng.uniform(170, 240), rng.uniform(160, 230), rng.uniform(140, 210));
      ctx.fillStyle = wall;
      ctx.fillRect(0, 0, S, S);
      const m = S * 0.25;
      ctx.fillStyle = rgbStr(rng.uniform(100, 160), rng.uniform(70, 110), 50);
      ctx.beginPath();
      ctx.moveTo(0, S); ctx.lineTo(m, S - m); ctx.lineTo(S - m, S - m); ctx.lineTo(S, S); ctx.fill();
      ctx.strokeStyle = 'rgb(60,60,60)';
      ctx.lineWidth = 2;
      ctx.strokeRect(m, m * 0.6, S - 2 * m, S - m - m * 0.6);
      ctx.beginPath();
      ctx.moveTo(0, 0); ctx.lineTo(m, m * 0.6); ctx.moveTo(S, 0); ctx.lineTo(S - m, m * 0.6); ctx.stroke();
      const wx = rng.uniform(m + 5, S - m - 60);
      ctx.fillStyle = rgbStr(150, 200, 250);
      ctx.fillRect(wx, m, 50, 40);
      ctx.strokeRect(wx, m, 50, 40);
      return;
    }
  }
}

function drawObject(ctx: CanvasRenderingContext2D, o: StimulusObject): void {
  const rng = new Rng(o.variant * 7919 + 13);
  const { cx, cy, size: s } = o;
  ctx.save();
  ctx.translate(cx, cy);
  switch (o.category) {
    case 'faces': {
      const skin = rng.pick([[241, 194, 167], [224, 172, 105], [141, 85, 36], [198, 134, 66], [255, 219, 172]]);
      ctx.fillStyle = rgbStr(rng.uniform(20, 120), rng.uniform(10, 80), rng.uniform(0, 40));
      ctx.beginPath(); ctx.ellipse(0, -s * 0.08, s * 0.4, s * 0.47, 0, 0, 2 * Math.PI); ctx.fill();
      ctx.fillStyle = rgbStr(skin[0]!, skin[1]!, skin[2]!);
      ctx.beginPath(); ctx.ellipse(0, 0, s * 0.33, s * 0.43, 0, 0, 2 * Math.PI); ctx.fill();
      for (const sx of [-1, 1]) {
        ctx.fillStyle = 'white';
        ctx.beginPath(); ctx.ellipse(sx * s * 0.13, -s * 0.08, s * 0.07, s * 0.04, 0, 0, 2 * Math.PI); ctx.fill();
        ctx.fillStyle = 'rgb(40,30,20)';
        ctx.beginPath(); ctx.arc(sx * s * 0.13, -s * 0.08, s * 0.03, 0, 2 * Math.PI); ctx.fill();
        ctx.lineWidth = Math.max(1, s * 0.02);
        ctx.strokeStyle = 'rgb(50,30,20)';
        ctx.beginPath(); ctx.moveTo(sx * s * 0.06, -s * 0.16); ctx.lineTo(sx * s * 0.2, -s * 0.17); ctx.stroke();
      }
      ctx.strokeStyle = 'rgb(120,60,50)';
      ctx.beginPath(); ctx.moveTo(0, -s * 0.04); ctx.lineTo(-s * 0.03, s * 0.08); ctx.lineTo(s * 0.02, s * 0.09); ctx.stroke();
      ctx.strokeStyle = 'rgb(160,40,50)';
      ctx.lineWidth = Math.max(1, s * 0.03);
      ctx.beginPath(); ctx.arc(0, s * 0.12, s * 0.1, 0.2 * Math.PI, 0.8 * Math.PI); ctx.stroke();
      break;
    }
    case 'bodies': {
      const cloth = rgbStr(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255));
      const lw = Math.max(2, s * 0.09);
      ctx.lineCap = 'round';
      ctx.strokeStyle = rgbStr(rng.uniform(20, 80), rng.uniform(20, 80), rng.uniform(60, 140));
      ctx.lineWidth = lw;
      for (const sx of [-1, 1]) {
        ctx.beginPath(); ctx.moveTo(sx * s * 0.06, s * 0.08); ctx.lineTo(sx * s * rng.uniform(0.05, 0.25), s * 0.48); ctx.stroke();
      }
      ctx.strokeStyle = cloth;
      for (const sx of [-1, 1]) {
        ctx.beginPath(); ctx.moveTo(sx * s * 0.1, -s * 0.22); ctx.lineTo(sx * s * rng.uniform(0.2, 0.35), s * rng.uniform(-0.4, 0.1)); ctx.stroke();
      }
      ctx.fillStyle = cloth;
      ctx.fillRect(-s * 0.12, -s * 0.26, s * 0.24, s * 0.36);
      ctx.fillStyle = rgbStr(210, 160, 120);
      ctx.beginPath(); ctx.arc(0, -s * 0.36, s * 0.08, 0, 2 * Math.PI); ctx.fill();
      break;
    }
    case 'words': {
      const word = rng.pick(WORDS);
      const signed = rng.next() < 0.7;
      const fontPx = Math.max(8, (s * 1.6) / Math.max(3, word.length));
      ctx.font = `bold ${fontPx.toFixed(0)}px DejaVu Sans`;
      const w = ctx.measureText(word).width;
      if (signed) {
        ctx.fillStyle = rgbStr(rng.uniform(200, 255), rng.uniform(200, 255), rng.uniform(180, 255));
        ctx.fillRect(-w / 2 - 6, -fontPx * 0.8, w + 12, fontPx * 1.4);
      }
      ctx.fillStyle = signed ? 'rgb(20,20,30)' : rng.pick(['white', 'black', 'rgb(200,20,20)']);
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(word, 0, 0);
      break;
    }
    case 'food': {
      ctx.fillStyle = 'rgb(245,245,240)';
      ctx.beginPath(); ctx.ellipse(0, s * 0.05, s * 0.48, s * 0.3, 0, 0, 2 * Math.PI); ctx.fill();
      const kind = rng.int(0, 3);
      if (kind === 0) {
        ctx.fillStyle = 'rgb(220,170,90)';
        ctx.beginPath(); ctx.ellipse(0, s * 0.03, s * 0.36, s * 0.22, 0, 0, 2 * Math.PI); ctx.fill();
        ctx.fillStyle = 'rgb(200,50,30)';
        ctx.beginPath(); ctx.ellipse(0, s * 0.03, s * 0.3, s * 0.17, 0, 0, 2 * Math.PI); ctx.fill();
        for (let i = 0; i < 8; i++) {
          ctx.fillStyle = rng.pick(['rgb(160,30,30)', 'rgb(250,240,200)', 'rgb(40,120,40)']);
          ctx.beginPath(); ctx.arc(rng.uniform(-0.22, 0.22) * s, s * (0.03 + rng.uniform(-0.1, 0.1)), s * 0.035, 0, 2 * Math.PI); ctx.fill();
        }
      } else {
        const n = rng.int(3, 7);
        for (let i = 0; i < n; i++) {
          const c = rng.pick([[220, 30, 30], [250, 150, 20], [240, 220, 40], [90, 180, 40]]);
          const x = rng.uniform(-0.28, 0.28) * s, y = rng.uniform(-0.12, 0.12) * s;
          ctx.fillStyle = rgbStr(c[0]!, c[1]!, c[2]!);
          ctx.beginPath(); ctx.arc(x, y, s * rng.uniform(0.07, 0.12), 0, 2 * Math.PI); ctx.fill();
          ctx.strokeStyle = 'rgb(80,50,20)';
          ctx.lineWidth = Math.max(1, s * 0.015);
          ctx.beginPath(); ctx.moveTo(x, y - s * 0.08); ctx.lineTo(x + s * 0.02, y - s * 0.13); ctx.stroke();
        }
      }
      break;
    }
    case 'objects': {
      const kind = rng.int(0, 4);
      const col = rgbStr(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255));
      ctx.fillStyle = col;
      ctx.strokeStyle = 'rgb(30,30,30)';
      ctx.lineWidth = Math.max(1, s * 0.02);
      if (kind === 0) { // car
        ctx.fillRect(-s * 0.45, -s * 0.05, s * 0.9, s * 0.2);
        ctx.fillRect(-s * 0.25, -s * 0.2, s * 0.45, s * 0.16);
        ctx.fillStyle = 'rgb(20,20,20)';
        for (const sx of [-0.28, 0.28]) { ctx.beginPath(); ctx.arc(sx * s, s * 0.17, s * 0.09, 0, 2 * Math.PI); ctx.fill(); }
      } else if (kind === 1) { // cup
        ctx.beginPath(); ctx.moveTo(-s * 0.2, -s * 0.25); ctx.lineTo(s * 0.2, -s * 0.25); ctx.lineTo(s * 0.15, s * 0.25); ctx.lineTo(-s * 0.15, s * 0.25); ctx.closePath(); ctx.fill(); ctx.stroke();
        ctx.lineWidth = Math.max(2, s * 0.05);
        ctx.strokeStyle = col;
        ctx.beginPath(); ctx.arc(s * 0.22, 0, s * 0.1, -Math.PI / 2, Math.PI / 2); ctx.stroke();
      } else if (kind === 2) { // ball
        ctx.beginPath(); ctx.arc(0, 0, s * 0.35, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
        ctx.beginPath(); ctx.moveTo(-s * 0.35, 0); ctx.lineTo(s * 0.35, 0); ctx.moveTo(0, -s * 0.35); ctx.lineTo(0, s * 0.35); ctx.stroke();
      } else { // box
        ctx.fillRect(-s * 0.3, -s * 0.15, s * 0.45, s * 0.45); ctx.strokeRect(-s * 0.3, -s * 0.15, s * 0.45, s * 0.45);
        ctx.beginPath(); ctx.moveTo(-s * 0.3, -s * 0.15); ctx.lineTo(-s * 0.15, -s * 0.3); ctx.lineTo(s * 0.3, -s * 0.3); ctx.lineTo(s * 0.3, s * 0.15); ctx.lineTo(s * 0.15, s * 0.3); ctx.lineTo(s * 0.15, -s * 0.15); ctx.closePath(); ctx.globalAlpha = 0.7; ctx.fill(); ctx.globalAlpha = 1; ctx.stroke();
      }
      break;
    }
  }
  ctx.restore();
}

/** Renders a stimulus to RGB pixels ([size, size, 3], HWC) and PNG bytes. */
export function renderStimulus(spec: StimulusSpec): RenderedStimulus {
  const c = createCanvas(spec.size, spec.size);
  const ctx = c.getContext('2d');
  const rng = new Rng(spec.seed);
  drawBackground(ctx, spec, rng);
  for (const o of spec.objects) drawObject(ctx, o);
  const rgba = ctx.getImageData(0, 0, spec.size, spec.size).data;
  const n = spec.size * spec.size;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    rgb[i * 3] = rgba[i * 4]!;
    rgb[i * 3 + 1] = rgba[i * 4 + 1]!;
    rgb[i * 3 + 2] = rgba[i * 4 + 2]!;
  }
  return { spec, rgb, png: c.toBuffer('image/png') };
}

/** Per-image features the responses are built from. */
export interface StimulusFeatures {
  /** Local contrast energy on a GRID x GRID grid (row 0 = top), normalised to mean 1 over a typical image. [GRID*GRID] */
  contrast: Float32Array;
  /** Presence of each category on the PGRID x PGRID grid (fraction of each cell covered), [6, PGRID*PGRID]. */
  presence: Float32Array;
  /** Whole-image presence of each category (0/1), [6]. */
  labels: Float32Array;
  /** A global image statistic (mean contrast energy), the 'global image term'. */
  global: number;
}

/** Local contrast energy of an RGB image ([S, S, 3]): mean squared gradient of luminance per grid cell. [GRID*GRID] */
export function contrastEnergy(rgb: Uint8Array, size: number, grid = GRID): Float32Array {
  const lum = new Float32Array(size * size);
  for (let i = 0; i < size * size; i++) lum[i] = (0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!) / 255;
  const out = new Float32Array(grid * grid);
  const cnt = new Float32Array(grid * grid);
  for (let y = 1; y < size - 1; y++) {
    const gy = Math.min(grid - 1, Math.floor((y * grid) / size));
    for (let x = 1; x < size - 1; x++) {
      const i = y * size + x;
      const dx = lum[i + 1]! - lum[i - 1]!, dy = lum[i + size]! - lum[i - size]!;
      const gx = Math.min(grid - 1, Math.floor((x * grid) / size));
      out[gy * grid + gx]! += dx * dx + dy * dy;
      cnt[gy * grid + gx]!++;
    }
  }
  for (let k = 0; k < out.length; k++) out[k] = Math.sqrt(out[k]! / Math.max(1, cnt[k]!)) * 10;
  return out;
}

/** Features of a rendered stimulus: contrast energy, category presence maps and labels. */
export function stimulusFeatures(r: RenderedStimulus): StimulusFeatures {
  const { spec } = r;
  const contrast = contrastEnergy(r.rgb, spec.size, GRID);
  const grid = PGRID;
  const presence = new Float32Array(6 * grid * grid);
  const cell = spec.size / grid;
  const places = CATEGORIES.indexOf('places');
  if (spec.labels[places]) presence.fill(1, places * grid * grid, (places + 1) * grid * grid);
  for (const o of spec.objects) {
    const c = CATEGORIES.indexOf(o.category);
    const h = o.size / 2;
    for (let gy = 0; gy < grid; gy++) for (let gx = 0; gx < grid; gx++) {
      const x0 = gx * cell, y0 = gy * cell;
      const ox = Math.max(0, Math.min(x0 + cell, o.cx + h) - Math.max(x0, o.cx - h));
      const oy = Math.max(0, Math.min(y0 + cell, o.cy + h) - Math.max(y0, o.cy - h));
      const f = (ox * oy) / (cell * cell);
      const k = c * grid * grid + gy * grid + gx;
      presence[k] = Math.max(presence[k]!, f);
      if (spec.labels[places] && f > 0) presence[places * grid * grid + gy * grid + gx] = Math.max(0, presence[places * grid * grid + gy * grid + gx]! - f);
    }
  }
  const labels = Float32Array.from(spec.labels, (b) => (b ? 1 : 0));
  let g = 0;
  for (const v of contrast) g += v;
  return { contrast, presence, labels, global: g / contrast.length };
}
