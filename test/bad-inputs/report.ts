/**
 * Runs the whole bad-input corpus (files and damaged subjects) and writes what each case did:
 *   npx tsx test/bad-inputs/report.ts [--out outputs/bad-inputs/report.json]
 * (after `npm run build`: the corpus reads through dist/, as the tests do). Prints the counts of silent, unclear
 * and clear cases per reader, and writes them with every case's message to the JSON file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runFileCases } from './files.js';
import { makeBaseSubjects, runSubjectCases } from './subjects.js';
import { tally, type Outcome } from './judge.js';
import { writeFileAtomic } from 'brainnet/io';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const out = args.includes('--out') ? args[args.indexOf('--out') + 1]! : 'outputs/bad-inputs/report.json';
  const files = await runFileCases();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-bad-subjects-'));
  let subjects: Outcome[];
  try {
    subjects = await runSubjectCases(tmp, await makeBaseSubjects(tmp));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const all = [...files, ...subjects];
  const byReader: Record<string, ReturnType<typeof tally>> = {};
  for (const o of all) {
    const r = o.id.split('/')[0]!;
    (byReader[r] ??= { silent: 0, unclear: 0, clear: 0, total: 0 })[o.verdict]++;
    byReader[r]!.total++;
  }
  const report = {
    command: 'npx tsx test/bad-inputs/report.ts', date: new Date().toISOString().slice(0, 10),
    commit: gitHead(), totals: tally(all), files: tally(files), subjects: tally(subjects), byReader,
    outcomes: all.map((o) => ({ ...o, file: path.relative(process.cwd(), o.file) })),
  };
  await writeFileAtomic(out, JSON.stringify(report, null, 1) + '\n');
  for (const [r, t] of Object.entries(byReader)) console.log(`${r.padEnd(12)} ${String(t.total).padStart(4)} cases: ${t.silent} silent, ${t.unclear} unclear, ${t.clear} clear`);
  const t = report.totals;
  console.log(`all          ${String(t.total).padStart(4)} cases: ${t.silent} silent, ${t.unclear} unclear, ${t.clear} clear  (written to ${out})`);
  for (const o of all.filter((x) => x.verdict !== 'clear')) console.log(`  ${o.verdict.padEnd(7)} ${o.id}: ${o.said.split('\n')[0]!.slice(0, 160)}`);
}

/** The commit, and whether lib/ differs from it (as when lib/ of an older commit is checked out to count 'before'). */
function gitHead(): string {
  try {
    const git = (c: string) => require('node:child_process').execSync(`git ${c}`, { encoding: 'utf8' }).trim() as string;
    return `${git('rev-parse --short HEAD')}${git('status --porcelain lib') ? ' (lib/ modified)' : ''}`;
  } catch {
    return 'unknown';
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
