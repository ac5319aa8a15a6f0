/**
 * Slow science check (issue 18): the workshop-size world-v3 subject over 5 seeds (1-5), each fitted with the built-in
 * MobileNetV2 (the world is made of InceptionV3) and fitted again on shuffled images. Every seed's fit must pass every
 * recovery check and its shuffled null must fail every one; the mean ± sd of each check over the seeds is printed and
 * written to outputs/science/seeds.json and seeds.md, and encoder against ridge per ROI to roi-over-seeds.md (the README's
 * science tables come from these files and the per-seed report.json in outputs/science/seed-N/). Subjects and token caches are kept in data/, so a rerun skips what exists.
 * Run: npm run build && npx mocha --timeout 36000000 test/encoding/science.slow.ts (hours on 2 cores; BRAINNET_SCIENCE_SEEDS=1,2 for fewer).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { meanSd, roiOverSeedsMarkdown, runScience, type ScienceRunReport } from '../../data-prep/science-run';

const ROOT = path.join(__dirname, '..', '..');

describe('science check on the workshop subject, 5 seeds (slow)', function () {
  this.timeout(36000000);

  it('every seed recovers the truth and its shuffled null fails; mean ± sd per check', async () => {
    const seeds = (process.env.BRAINNET_SCIENCE_SEEDS ?? '1,2,3,4,5').split(',').map(Number);
    const reports: ScienceRunReport[] = [];
    for (const seed of seeds) {
      const { report } = await runScience({ size: 'workshop', seed, world: 'v3', outDir: path.join(ROOT, 'outputs', 'science', `seed-${seed}`), cacheRoot: path.join(ROOT, 'data', 'cache'), command: `npm run science -- --size workshop --seed ${seed} --world v3 --out outputs/science/seed-${seed}` });
      reports.push(report);
    }
    const names = reports[0]!.checks.map((c) => c.name);
    const rows = names.map((name, k) => {
      const v = reports.map((r) => r.checks[k]!.value), z = reports.map((r) => r.null!.checks[k]!.value);
      return { name, what: reports[0]!.checks[k]!.what, threshold: reports[0]!.checks[k]!.threshold, fit: meanSd(v), null: meanSd(z), values: v, nullValues: z };
    });
    const f = (m: { mean: number; sd: number }) => `${m.mean.toFixed(3)} ± ${m.sd.toFixed(3)}`;
    const md = [`Seeds ${seeds.join(', ')}, \`npm run science -- --size workshop --seed N --world v3\`, ${reports[0]!.date}`, '', '| check | threshold | fit, mean ± sd | shuffled null, mean ± sd |', '|---|---|---|---|',
      ...rows.map((r) => `| ${r.what} | ≥ ${r.threshold} | ${f(r.fit)} | ${f(r.null)} |`)].join('\n');
    console.log(md);
    fs.mkdirSync(path.join(ROOT, 'outputs', 'science'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'outputs', 'science', 'seeds.json'), JSON.stringify({ seeds, rows }, null, 1) + '\n');
    fs.writeFileSync(path.join(ROOT, 'outputs', 'science', 'seeds.md'), md + '\n');
    fs.writeFileSync(path.join(ROOT, 'outputs', 'science', 'roi-over-seeds.md'), roiOverSeedsMarkdown(reports) + '\n');
    for (const r of reports) {
      for (const c of r.checks) assert.ok(c.pass, `seed ${r.seed}: ${c.what} ${c.value.toFixed(3)} < ${c.threshold}`);
      assert.ok(r.null!.failsEveryCheck, `seed ${r.seed}: the shuffled null passes a check`);
    }
  });
});
