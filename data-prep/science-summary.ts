/**
 * Summarises science runs over seeds: reads DIR/seed-N/report.json (written by `npm run science -- --out DIR/seed-N` or
 * the slow suite) and writes DIR/roi-over-seeds.md, encoder against ridge per ROI as mean ± sd over the seeds.
 *
 *   npx tsx data-prep/science-summary.ts [--dir outputs/science]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from 'brainnet/io';
import { roiOverSeedsMarkdown, type ScienceRunReport } from './science-run';

(async () => {
  const i = process.argv.indexOf('--dir');
  const dir = i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : 'outputs/science';
  const seeds = fs.existsSync(dir) ? fs.readdirSync(dir).filter((d) => /^seed-\d+$/.test(d) && fs.existsSync(path.join(dir, d, 'report.json'))) : [];
  if (!seeds.length) throw new Error(`science-summary: expected ${dir}/seed-N/report.json files (from npm run science -- --out ${dir}/seed-N), found none`);
  const reports = seeds.map((d) => JSON.parse(fs.readFileSync(path.join(dir, d, 'report.json'), 'utf8')) as ScienceRunReport).sort((a, b) => a.seed - b.seed);
  const md = roiOverSeedsMarkdown(reports);
  await writeFileAtomic(path.join(dir, 'roi-over-seeds.md'), md + '\n');
  console.log(md);
})().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
