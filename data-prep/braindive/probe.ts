/** Quick probe: unguided vs guided samples for a few regions and scales; prints category shares and timings. */
import { loadSyntheticPipeline, imageGrid } from 'brainnet';
import type { GuidanceGradient } from 'brainnet/diffusion';
import { evaluateRegion, formatEvaluation, REGION_CATEGORY, toRgbImages } from 'brainnet/braindive';
import * as fs from 'node:fs';
function arg(name: string, def: string): string { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1]! : def; }
(async () => {
  const pipeline = await loadSyntheticPipeline({ diffusion: arg('model', 'models/synthetic-diffusion-64'), encoder: arg('encoder', '') || undefined, classifier: arg('classifier', '') || undefined });
  const n = Number(arg('n', '6')); const steps = Number(arg('steps', '15'));
  const seeds = Array.from({ length: n }, (_, i) => Number(arg('seed0', '100')) + i);
  const regions = arg('regions', 'FFA').split(',');
  const scales = arg('scales', '100').split(',').map(Number);
  const grids: any[] = [];
  let t0 = Date.now();
  const u = await pipeline.generate({ region: regions[0]!, scale: 0, seeds, steps });
  console.log('unguided s/img', (Date.now() - t0) / 1000 / n);
  grids.push(...toRgbImages(u.images));
  const up = await pipeline.classify(u.images);
  const rows = [];
  for (const region of regions) for (const scale of scales) {
    t0 = Date.now();
    const g = await pipeline.generate({ region, scale, seeds, steps, gradient: arg('gradient', 'x0') as GuidanceGradient });
    console.log(region, scale, 'guided s/img', (Date.now() - t0) / 1000 / n);
    grids.push(...toRgbImages(g.images));
    const gp = await pipeline.classify(g.images);
    const ua = pipeline.score(region, u.images);
    const r = evaluateRegion(`${region}@${scale}`, REGION_CATEGORY[region]!, { probs: gp, activation: g.activation }, { probs: up, activation: ua });
    rows.push(r);
    console.log(formatEvaluation([r]), JSON.stringify(r.guidedShares), JSON.stringify(r.unguidedShares));
  }
  fs.writeFileSync(arg('png', 'data/braindive/probe.png'), await imageGrid(grids, { cols: n, cell: 64 }));
})();
