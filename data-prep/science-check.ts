/**
 * `npm run science`: does a fitted encoder recover a synthetic subject's ground truth, and does the shuffled-image null
 * fail? The experiment is science-run.ts; the checks are pure functions in lib/synthetic/recovery.ts.
 *
 *   npm run science -- [--size tiny|workshop] [--seed N] [--world v2|v3] [--out DIR] [--backbone mobilenetv2|inceptionv3]
 *       [--input-size PX] [--epochs N] [--reg-decay N] [--subject DIR] [--cache DIR] [--no-null] [--no-ridge]
 *
 * Writes report.json (overall pass, world version, the null control) and table.md into --out (default outputs/science/).
 * Exit status 0 when every check passes and the null fails every one, 1 otherwise, 2 on an error.
 */
import * as path from 'node:path';
import { runScience, SCIENCE_DEFAULTS, type ScienceSize } from './science-run';

const USAGE = `Science check: fit the encoder (and ridge) on a synthetic subject, fit it again with the fMRI rows shuffled against
the images, and compare both with the subject's ground truth.

  npm run science -- [options]

  --size tiny|workshop   subject size (default workshop); generated into data/subjects/science-<size>-<world>-... when missing
  --seed N               seed of the subject and of the fit (default 1)
  --world v2|v3          synthetic world (default v3)
  --out DIR              where report.json and table.md go (default outputs/science)
  --backbone NAME        fitted backbone: mobilenetv2 | inceptionv3 (default mobilenetv2; world v3 is made of the other)
  --input-size PX        the fitted backbone's input side (default: tiny ${SCIENCE_DEFAULTS.tiny.inputSize}, workshop native)
  --epochs N             training epochs (default: tiny ${SCIENCE_DEFAULTS.tiny.epochs}, workshop ${SCIENCE_DEFAULTS.workshop.epochs})
  --reg-decay N          steps over which the selector regulariser fades
  --subject DIR          use this subject folder (made when missing)
  --cache DIR            root of the token caches (default data/cache)
  --no-null              skip the shuffled-image null
  --no-ridge             skip the ridge baseline
  --help                 this text

Exit status: 0 when every check passes and the null fails every one, 1 otherwise, 2 on an error.`;

function arg(name: string, def?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const size = arg('size', 'workshop') as ScienceSize;
  if (size !== 'tiny' && size !== 'workshop') throw new Error(`science: --size must be tiny or workshop, got '${size}'`);
  const world = arg('world', 'v3') as 'v2' | 'v3';
  if (world !== 'v2' && world !== 'v3') throw new Error(`science: --world must be v2 or v3, got '${world}'`);
  const seed = Number(arg('seed', '1'));
  if (!Number.isInteger(seed)) throw new Error(`science: --seed must be an integer, got '${arg('seed')}'`);
  const num = (name: string) => (arg(name) === undefined ? undefined : Number(arg(name)));
  const outDir = arg('out', 'outputs/science')!;
  const { report, table } = await runScience({
    size, seed, world, outDir, subjectDir: arg('subject'), backbone: arg('backbone', 'mobilenetv2') as 'mobilenetv2' | 'inceptionv3',
    inputSize: num('input-size'), epochs: num('epochs'), regDecaySteps: num('reg-decay'), cacheRoot: arg('cache'),
    nullControl: !process.argv.includes('--no-null'), ridge: process.argv.includes('--no-ridge') ? false : undefined,
    command: `npm run science -- ${process.argv.slice(2).join(' ')}`.trim(),
  });
  console.log(table);
  console.log(`\n${report.seconds.total.toFixed(0)} s; report in ${path.join(outDir, 'report.json')}`);
  process.exitCode = report.pass ? 0 : 1;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
});
