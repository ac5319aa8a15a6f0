/**
 * make-subject: writes a synthetic subject with known ground truth.
 *
 *   tsx data-prep/make-subject.ts --layout algonauts --size tiny|workshop|full --seed N --out DIR [--train N --test N] [--world v3|v2] [--network inceptionv3|mobilenetv2]
 *   tsx data-prep/make-subject.ts --layout nsd --size tiny|workshop|full --seed N --out DIR [--sessions S] [--image-size PX] [--world v3|v2] [--network ...]
 *
 * Several subjects in one call: `--seed 1,2,3` (or `--seed 1-8`) with `{seed}` in `--out`, e.g.
 * `--out data/subjects/paper-s{seed}`; each seed is a different subject (its own noise, stimuli and responses).
 * Prints progress with timings, the validation table, the stage timings and peak memory, and
 * exits 1 when a report check fails (0 otherwise).
 *
 * The folder is locked while it is written: a second make-subject into it fails at once, naming the first. A
 * folder holding a subject made with other settings is refused unless --overwrite; a rerun with the same
 * settings (after a crash or kill) writes the same bytes and removes what the killed run left behind.
 */
import { makeAlgonautsSubject, makeNsdSubject, type SubjectSize } from 'brainnet/synthetic';

function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`make-subject: unexpected argument '${a}'`);
    if (a === '--overwrite') { out.overwrite = 'true'; continue; }
    const [k, v] = a.includes('=') ? a.slice(2).split('=', 2) : [a.slice(2), argv[++i]];
    if (v === undefined) throw new Error(`make-subject: --${k} needs a value`);
    out[k!] = v;
  }
  return out;
}

const USAGE = 'usage: make-subject --layout algonauts|nsd --size tiny|workshop|full --seed N|N,M,...|N-M --out DIR (with {seed} for several) [--world v3|v2] [--network inceptionv3|mobilenetv2 (v3: the world\'s network, not the one you fit)] [--train N --test N (algonauts)] [--sessions S --image-size PX (nsd)] [--overwrite]';

/** An optional positive integer argument. */
function count(args: Record<string, string>, key: string): number | undefined {
  if (args[key] === undefined) return undefined;
  const v = Number(args[key]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`make-subject: --${key} must be a positive integer, got '${args[key]}'\n${USAGE}`);
  return v;
}

/** Seeds from `1`, `1,2,3` or `1-8`. */
function parseSeeds(text: string): number[] {
  const seeds = text.split(',').flatMap((part) => {
    const m = /^\s*(-?\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new Error(`make-subject: --seed: expected an integer, a list (1,2,3) or a range (1-8), found '${text}'`);
    const a = Number(m[1]), b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a) throw new Error(`make-subject: --seed: the range ${part} is empty; write it as low-high`);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
  return [...new Set(seeds)];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const seeds = parseSeeds(args.seed ?? '1');
  if (!args.out) throw new Error(`make-subject: --out DIR is required\n${USAGE}`);
  if (seeds.length > 1 && !args.out.includes('{seed}')) throw new Error(`make-subject: --seed ${args.seed} makes ${seeds.length} subjects: put {seed} in --out (found '${args.out}'), e.g. --out data/subjects/paper-s{seed}`);
  for (const seed of seeds) await makeOne(args, seed, args.out.replace(/\{seed\}/g, String(seed)));
}

async function makeOne(args: Record<string, string>, seed: number, out: string): Promise<void> {
  const layout = args.layout ?? 'algonauts';
  const size = (args.size ?? 'tiny') as SubjectSize;
  if (layout !== 'algonauts' && layout !== 'nsd') throw new Error(`make-subject: layout must be 'algonauts' or 'nsd', got '${layout}'\n${USAGE}`);
  if (!['tiny', 'workshop', 'full'].includes(size)) throw new Error(`make-subject: --size must be tiny, workshop or full, got '${size}'\n${USAGE}`);
  for (const name of ['train', 'test']) {
    if (args[name] !== undefined && layout !== 'algonauts') throw new Error(`make-subject: --${name} applies to --layout algonauts only`);
  }
  const train = count(args, 'train'), test = count(args, 'test');
  const overwrite = args.overwrite === 'true';
  const world = (args.world ?? 'v3') as 'v2' | 'v3';
  if (world !== 'v2' && world !== 'v3') throw new Error(`make-subject: --world must be v2 or v3, got '${world}'\n${USAGE}`);
  const network = (args.network ?? 'inceptionv3') as 'inceptionv3' | 'mobilenetv2';
  if (network !== 'inceptionv3' && network !== 'mobilenetv2') throw new Error(`make-subject: --network must be inceptionv3 or mobilenetv2, got '${network}'\n${USAGE}`);
  console.log(`make-subject: ${layout} ${size}, seed ${seed}, world ${world}${world === 'v3' ? ` (${network})` : ''}${train ? `, ${train} training images` : ''} -> ${out}`);
  let last = 0;
  if (layout === 'nsd') {
    const r = await makeNsdSubject({
      size, seed, out, sessions: count(args, 'sessions'), imageSize: count(args, 'image-size'), overwrite, world, network,
      onProgress: (stage, done, total, ms) => {
        if (done < total && ms - last < 2000) return;
        last = ms;
        console.log(`  [${(ms / 1000).toFixed(1).padStart(6)} s] ${stage} ${done}/${total}`);
      },
    });
    console.log(`grid ${r.grid.join('x')}, ${r.sessions} session(s), ${r.images} images (shown 3/2/1 times: ${r.repeatCounts.three}/${r.repeatCounts.two}/${r.repeatCounts.one}), voxels: brain ${r.voxels.brain}, cortex ${r.voxels.cortex}, nsdgeneral ${r.voxels.nsdgeneral}`);
    console.log('timings (s): ' + Object.entries(r.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`).join(', '));
    console.log(`peak memory (RSS): ${r.peakRssMB} MB`);
    console.log(`wrote ${r.dir}; see ${r.dir}/README.md`);
    return;
  }
  const res = await makeAlgonautsSubject({
    size, seed, out, train, test, overwrite, world, network,
    onProgress: (stage, done, total, ms) => {
      if (stage === 'images' && done < total && ms - last < 2000) return;
      last = ms;
      const pct = total > 1 ? ` ${done}/${total} (${Math.round((100 * done) / total)}%)` : '';
      console.log(`  [${(ms / 1000).toFixed(1).padStart(6)} s] ${stage}${pct}`);
    },
  });
  console.log('\n' + res.table + '\n');
  console.log('timings (s): ' + Object.entries(res.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`).join(', '));
  console.log(`peak memory (RSS): ${res.peakRssMB} MB`);
  console.log(`wrote ${res.dir}; report in ${res.dir}/report.json`);
  if (!res.checks.every((c) => c.pass)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(2);
});
