/**
 * make-subject: writes a synthetic subject with known ground truth.
 *
 *   tsx data-prep/make-subject.ts --layout algonauts --size tiny|workshop|full --seed N --out DIR [--world v3|v2] [--network inceptionv3|mobilenetv2]
 *   tsx data-prep/make-subject.ts --layout nsd --size tiny|workshop|full --seed N --out DIR [--sessions S]
 *
 * Prints progress with timings, the validation table, the stage timings and peak memory, and
 * exits 1 when a report check fails (0 otherwise).
 */
import { makeAlgonautsSubject, makeNsdSubject, type SubjectSize } from 'brainnet/synthetic';

function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`make-subject: unexpected argument '${a}'`);
    const [k, v] = a.includes('=') ? a.slice(2).split('=', 2) : [a.slice(2), argv[++i]];
    if (v === undefined) throw new Error(`make-subject: --${k} needs a value`);
    out[k!] = v;
  }
  return out;
}

const USAGE = 'usage: make-subject --layout algonauts|nsd --size tiny|workshop|full --seed N --out DIR [--world v3|v2] [--network inceptionv3|mobilenetv2 (v3: the world\'s network, not the one you fit)] [--sessions S (nsd)]';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const layout = args.layout ?? 'algonauts';
  const size = (args.size ?? 'tiny') as SubjectSize;
  const seed = Number(args.seed ?? 1);
  if (!args.out) throw new Error(`make-subject: --out DIR is required\n${USAGE}`);
  if (layout !== 'algonauts' && layout !== 'nsd') throw new Error(`make-subject: layout must be 'algonauts' or 'nsd', got '${layout}'\n${USAGE}`);
  if (!['tiny', 'workshop', 'full'].includes(size)) throw new Error(`make-subject: --size must be tiny, workshop or full, got '${size}'\n${USAGE}`);
  if (!Number.isInteger(seed)) throw new Error(`make-subject: --seed must be an integer, got '${args.seed}'`);
  const world = (args.world ?? 'v3') as 'v2' | 'v3';
  if (world !== 'v2' && world !== 'v3') throw new Error(`make-subject: --world must be v2 or v3, got '${world}'\n${USAGE}`);
  const network = (args.network ?? 'inceptionv3') as 'inceptionv3' | 'mobilenetv2';
  if (network !== 'inceptionv3' && network !== 'mobilenetv2') throw new Error(`make-subject: --network must be inceptionv3 or mobilenetv2, got '${network}'\n${USAGE}`);
  console.log(`make-subject: ${layout} ${size}, seed ${seed}, world ${world}${world === 'v3' ? ` (${network})` : ''} -> ${args.out}`);
  let last = 0;
  if (layout === 'nsd') {
    const sessions = args.sessions === undefined ? undefined : Number(args.sessions);
    const r = await makeNsdSubject({
      size, seed, out: args.out, sessions, world, network,
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
    size, seed, out: args.out, world, network,
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
