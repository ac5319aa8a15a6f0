/**
 * Science check of the encoding model on a synthetic subject (issue 4): fits the factorized encoder
 * and the ridge baseline with a built-in backbone and checks that they recover the ground truth
 * (the experiment is in science-run.ts; the checks themselves in lib/synthetic/recovery.ts).
 *
 *   npx tsx data-prep/science-check.ts [--subject data/subjects/workshop] [--backbone mobilenetv2]
 *       [--epochs 10] [--reg-decay 2000] [--seed 0] [--cache data/cache] [--checkpoint DIR] [--out outputs/science] [--no-ridge | --ridge-grid 2]
 *
 * Prints the encoder and ridge side by side and writes report.json and table.txt to --out.
 * Exit status 0 when every encoder check passes, 1 otherwise.
 */
import * as path from 'node:path';
import { runScienceCheck } from './science-run';

const USAGE = `Science check: fit the encoder and the ridge baseline on a synthetic subject and compare them with its ground truth.

  npx tsx data-prep/science-check.ts [options]

  --subject DIR      synthetic subject folder, generated (workshop size, seed 1) when missing (default data/subjects/workshop)
  --backbone NAME    mobilenetv2 | inceptionv3 (default mobilenetv2)
  --epochs N         training epochs (default 10)
  --reg-decay N      steps over which the selector regulariser fades (default 2000)
  --seed N           seed of the model, split and shuffling (default 0)
  --cache DIR        root of the token caches (default data/cache)
  --checkpoint DIR   checkpoint folder; training resumes from it when present
  --out DIR          where report.json and table.txt go (default outputs/science)
  --no-ridge         skip the ridge baseline
  --ridge-grid K     ridge on K x K average-pooled local tokens (default: pooled tokens)
  --help             this text

Exit status: 0 when every encoder check passes, 1 when one fails, 2 on an error.`;

function arg(name: string, def?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const subjectDir = arg('subject', 'data/subjects/workshop')!;
  const backbone = (arg('backbone', 'mobilenetv2') as 'mobilenetv2' | 'inceptionv3');
  const epochs = Number(arg('epochs', '10'));
  const seed = Number(arg('seed', '0'));
  const regDecaySteps = Number(arg('reg-decay', '2000'));
  const cacheRoot = arg('cache', 'data/cache')!;
  const outDir = arg('out', 'outputs/science')!;
  const ckpt = arg('checkpoint');
  const { table, report, seconds } = await runScienceCheck({
    subjectDir, backbone, epochs, seed, regDecaySteps, outDir, checkpointDir: ckpt,
    cacheDir: path.join(cacheRoot, `${path.basename(path.resolve(subjectDir))}-${backbone}`),
    ridge: process.argv.includes('--no-ridge') ? false : arg('ridge-grid') ? { grid: Number(arg('ridge-grid')) } : true,
  });
  console.log(table);
  console.log(`\n${seconds.total.toFixed(0)} s; report in ${path.join(outDir, 'report.json')}`);
  process.exitCode = report.pass ? 0 : 1;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
