/**
 * Two long jobs of the library as commands, for the kill tests (kill-rerun.test.ts, locked-writers.test.ts): the
 * other killed jobs are the project's own commands (make-subject, zscore, run-regions).
 *
 *   tsx test/crash/jobs.ts token-cache --images DIR --out DIR [--batch 2]
 *       buildTokenCache over the PNGs of DIR (sorted) with a seeded 3-layer conv net, on disk in --out; prints
 *       `computed K of N images` (the images the backbone ran on in this process).
 *   tsx test/crash/jobs.ts fit --subject DIR --cache DIR --ckpt DIR [--epochs 3]
 *       fitEncoder on an Algonauts-layout subject with the same net, the token cache in --cache and a checkpoint after
 *       every epoch in --ckpt (resumed when present); prints the validation mean R².
 *
 * The net's weights come from seeded initialisers, so every process computes the same tokens.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { fitEncoder, loadAlgonautsSubject } from 'brainnet';
import { buildTokenCache, fileImageSources } from 'brainnet/backbones';
import { tinyBackbone } from '../backbones/tiny-backbone';

async function main(): Promise<void> {
  const [job, ...rest] = process.argv.slice(2);
  const { values: a } = parseArgs({
    args: rest,
    options: { images: { type: 'string' }, out: { type: 'string' }, batch: { type: 'string' }, subject: { type: 'string' }, cache: { type: 'string' }, ckpt: { type: 'string' }, epochs: { type: 'string' } },
  });
  await tf.setBackend('wasm');
  await tf.ready();
  const backbone = tinyBackbone('tiny-conv-crash');
  console.log(`${job}: started`);
  if (job === 'token-cache') {
    const files = fs.readdirSync(a.images!).filter((f) => f.endsWith('.png')).sort().map((f) => path.join(a.images!, f));
    let computed = 0;
    const inner = backbone.getTokens.bind(backbone);
    backbone.getTokens = (x) => { computed += x.shape[0]; return inner(x); };
    const cache = await buildTokenCache(backbone, await fileImageSources(files), { dir: a.out, batchSize: Number(a.batch ?? 2), progress: false });
    await cache.close();
    console.log(`computed ${computed} of ${files.length} images`);
  } else if (job === 'fit') {
    const subject = await loadAlgonautsSubject(a.subject!);
    const fit = await fitEncoder({
      subject, backbone, cacheDir: a.cache, checkpointDir: a.ckpt, epochs: Number(a.epochs ?? 3), batchSize: 8, seed: 1, valFraction: 0.25, ridge: false, progress: false,
    });
    console.log(`validation mean R² ${(fit.r2.reduce((s, v) => s + (Number.isFinite(v) ? v : 0), 0) / fit.r2.length).toFixed(6)}`);
    await fit.dispose();
  } else {
    throw new Error(`jobs.ts: unknown job '${job}' (token-cache or fit)`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
