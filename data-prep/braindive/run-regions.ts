/**
 * The paper's runs in the synthetic world: for each region, N images written to OUT/<region>/NNNN.png with
 * NNNN.json (seed, scale, steps, predicted activation, category probabilities). Resumable: images already
 * written are skipped, so an interrupted run continues where it stopped.
 *
 *   npx tsx data-prep/braindive/run-regions.ts --out outputs/braindive-runs --regions FFA,PPA,EBA,VWFA,food --n 20 --scale 10 --steps 20 [--batch 8] [--unguided]
 */
import { loadSyntheticPipeline, progress } from 'brainnet';
import { runRegions } from 'brainnet/braindive';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

(async () => {
  const regions = arg('regions', 'FFA,PPA,EBA,VWFA,food').split(',');
  const n = Number(arg('n', '20'));
  const unguided = process.argv.includes('--unguided');
  const pipeline = await loadSyntheticPipeline();
  console.log(`run-regions: ${n} images per region (${regions.join(', ')}${unguided ? ', unguided' : ''}) -> ${arg('out', 'outputs/braindive-runs')}`);
  const bar = progress({ label: 'braindive runs', total: n * (regions.length + (unguided ? 1 : 0)) });
  const r = await runRegions({ pipeline, outDir: arg('out', 'outputs/braindive-runs'), regions, n, scale: Number(arg('scale', '10')), steps: Number(arg('steps', '20')), seed0: Number(arg('seed', '0')), batch: Number(arg('batch', '8')), unguided, onImage: (reg, i, skipped) => bar.tick(1, `${reg} ${i}${skipped ? ' (skipped)' : ''}`) });
  bar.done();
  console.log(JSON.stringify(r));
})().catch((e) => {
  console.error(e instanceof Error && e.name === 'FolderLockedError' ? e.message : e);
  process.exit(1);
});
