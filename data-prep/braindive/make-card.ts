/**
 * Figures for the model card of models/synthetic-diffusion-64: loss.png (training loss, 100-step moving
 * average) and samples.png (unguided DDIM samples, 25 steps), plus samples.json with the classifier's
 * category shares of those samples; and guided.png: the same 8 seeds unguided and guided towards FFA, PPA, EBA,
 * VWFA and food (scale 10, 20 steps), one row each.
 *   npx tsx data-prep/braindive/make-card.ts [--dir models/synthetic-diffusion-64] [--n 20] [--steps 25]
 */
import * as fs from 'node:fs';
import { createCanvas } from 'canvas';
import { loadSyntheticPipeline, imageGrid } from 'brainnet';
import { categoryShare, EVAL_CATEGORIES, toRgbImages } from 'brainnet/braindive';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

(async () => {
  const dir = arg('dir', 'models/synthetic-diffusion-64');
  const cfg = JSON.parse(fs.readFileSync(`${dir}/config.json`, 'utf8')) as { losses: number[]; schedule?: { predictionType?: string } };
  const what = cfg.schedule?.predictionType === 'v_prediction' ? 'v-prediction MSE' : 'epsilon MSE';
  const L = cfg.losses;
  const avg = L.map((_, i) => { const s = L.slice(Math.max(0, i - 99), i + 1); return s.reduce((a, b) => a + b, 0) / s.length; });
  const W = 480, H = 240, c = createCanvas(W, H), ctx = c.getContext('2d');
  ctx.fillStyle = 'white'; ctx.fillRect(0, 0, W, H);
  const ylo = Math.max(0, Math.min(...avg) - 0.02), yhi = Math.max(...avg) + 0.02;
  const X = (i: number) => 40 + (i / Math.max(1, L.length - 1)) * (W - 50), Y = (v: number) => H - 25 - ((Math.min(yhi, Math.max(ylo, v)) - ylo) / (yhi - ylo)) * (H - 40);
  ctx.strokeStyle = '#ccc'; L.forEach((v, i) => { ctx.beginPath(); ctx.moveTo(X(i), Y(v)); ctx.lineTo(X(i) + 0.5, Y(v)); ctx.stroke(); });
  ctx.strokeStyle = '#1565c0'; ctx.lineWidth = 2; ctx.beginPath(); avg.forEach((v, i) => (i ? ctx.lineTo(X(i), Y(v)) : ctx.moveTo(X(i), Y(v)))); ctx.stroke();
  ctx.fillStyle = 'black'; ctx.font = '12px sans-serif';
  ctx.fillText(`${what}, ${L.length} steps (last-100 mean ${avg[avg.length - 1]!.toFixed(3)})`, 50, 14);
  for (const v of [ylo, (ylo + yhi) / 2, yhi]) ctx.fillText(v.toFixed(2), 5, Y(v) + 4);
  fs.writeFileSync(`${dir}/loss.png`, c.toBuffer('image/png'));
  const n = Number(arg('n', '20'));
  const pipeline = await loadSyntheticPipeline({ diffusion: dir });
  const g = await pipeline.generate({ region: 'FFA', scale: 0, seeds: Array.from({ length: n }, (_, i) => i), steps: Number(arg('steps', '25')) });
  fs.writeFileSync(`${dir}/samples.png`, await imageGrid(toRgbImages(g.images), { cols: 10, cell: 64 }));
  const p = await pipeline.classify(g.images);
  const shares = Object.fromEntries(EVAL_CATEGORIES.map((k) => [k, categoryShare(p, n, k)]));
  fs.writeFileSync(`${dir}/samples.json`, JSON.stringify({ n, steps: Number(arg('steps', '25')), classifierShares: shares }, null, 1));
  console.log(JSON.stringify(shares));
  g.images.dispose();
  // guided.png: rows unguided, FFA, PPA, EBA, VWFA, food from seeds 0-7
  const seeds = Array.from({ length: 8 }, (_, i) => i);
  const rows = ['unguided', 'FFA', 'PPA', 'EBA', 'VWFA', 'food'];
  const cells = [];
  for (const r of rows) {
    const s = await pipeline.generate({ region: r === 'unguided' ? 'FFA' : r, scale: r === 'unguided' ? 0 : 10, seeds, steps: 20 });
    cells.push(...toRgbImages(s.images));
    s.images.dispose();
  }
  fs.writeFileSync(`${dir}/guided.png`, await imageGrid(cells, { cols: 8, cell: 64, rowLabels: rows.map((r) => (r === 'unguided' ? r : `${r} x10`)), title: 'seeds 0-7, 20 DDIM steps' }));
})();
