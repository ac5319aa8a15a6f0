/**
 * Benchmark: zscore on NSD sessions of the real size (750 trials x the func1pt8mm grid 81x104x83, int16,
 * gzip level 1, values in a ~265k-voxel brain), with a realistic nsdgeneral-like mask (posterior cortex,
 * ~30k voxels by default), next to the numpy/nibabel reference doing the same work in the same run.
 * Each side runs in its own process so that its peak memory (ru_maxrss) is its own.
 * `npm run bench -- nsd [--sessions 2] [--voxels 30000] [--keep DIR]`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeNifti, writeMat } from 'brainnet/io';
import { nsdPaths, nsdBetaName, NSD } from 'brainnet/data';
import { nsdVolumeGeometry, makeNsdDesign } from 'brainnet/synthetic';

const REPO = path.resolve(__dirname, '..', '..');

function argValue(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

/** Writes a minimal NSD root: design, nsdgeneral mask (~`want` posterior cortex voxels) and `S` real-size sessions. */
async function makeRoot(root: string, S: number, want: number): Promise<{ maskVoxels: number; brainVoxels: number; writeSeconds: number }> {
  const grid: [number, number, number] = [81, 104, 83];
  const [X, Y, Z] = grid, N = X * Y * Z, T = NSD.trialsPerSession;
  const geo = nsdVolumeGeometry(grid);
  const P = nsdPaths(1);
  for (const d of [path.dirname(P.expdesign), P.betas, P.roi]) fs.mkdirSync(path.join(root, d), { recursive: true });
  // mask: the most posterior cortex voxels (largest -dir.y), like nsdgeneral around the occipital pole
  const cortex: number[] = [];
  for (let i = 0; i < N; i++) if (geo.cortex[i]) cortex.push(i);
  cortex.sort((a, b) => geo.dir[a * 3 + 1]! - geo.dir[b * 3 + 1]!);
  const gen = new Int16Array(N).fill(-1);
  for (let i = 0; i < N; i++) if (geo.brain[i]) gen[i] = 0;
  for (const i of cortex.slice(0, Math.min(want, cortex.length))) gen[i] = 1;
  await writeNifti(path.join(root, P.roi, 'nsdgeneral.nii.gz'), { dtype: 'int16', shape: [Z, Y, X], data: gen });
  const d = makeNsdDesign(Math.max(S, 1), 1);
  await writeMat(path.join(root, P.expdesign), {
    masterordering: { dtype: 'float64', shape: [1, NSD.designTrials], data: Float64Array.from(d.masterordering) },
    subjectim: { dtype: 'float64', shape: [NSD.subjects, NSD.imagesPerSubject], data: Float64Array.from(d.subjectim) },
    sharedix: { dtype: 'float64', shape: [1, NSD.shared], data: Float64Array.from(d.sharedix) },
  });
  const brain: number[] = [];
  for (let i = 0; i < N; i++) if (geo.brain[i]) brain.push(i);
  const vol = new Int16Array(T * N);
  let state = 12345;
  const t0 = Date.now();
  for (let s = 1; s <= S; s++) {
    const off = Int16Array.from(brain, () => { state = (Math.imul(state, 1103515245) + 12345) >>> 0; return (state >>> 20) - 2048; });
    for (let t = 0; t < T; t++) {
      const b = t * N;
      for (let k = 0; k < brain.length; k++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        vol[b + brain[k]!] = off[k]! + ((state >>> 22) - 512) + ((state >>> 12) & 511) - 256; // offset + ~triangular noise
      }
    }
    await writeNifti(path.join(root, P.betas, nsdBetaName(s)), { dtype: 'int16', shape: [T, Z, Y, X], data: vol }, { gzipLevel: 1 });
  }
  return { maskVoxels: Math.min(want, cortex.length), brainVoxels: brain.length, writeSeconds: (Date.now() - t0) / 1000 };
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const S = Number(argValue(args, 'sessions', '2'));
  const want = Number(argValue(args, 'voxels', '30000'));
  const keep = argValue(args, 'keep', '');
  const root = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-bench-nsd-'));
  try {
    const made = fs.existsSync(path.join(root, nsdPaths(1).betas, nsdBetaName(S)))
      ? { reused: true } : await makeRoot(root, S, want);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const fileMB = Math.round(fs.statSync(path.join(root, nsdPaths(1).betas, nsdBetaName(1))).size / 1048576);
    // 1. ours, in a child process (the CLI), outputs into a fresh folder
    const out = path.join(root, `zscore-out-${Date.now()}`);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'data-prep', 'nsd', 'zscore.ts'), '--root', root, '--out', out],
      { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`zscore failed:\n${r.stdout}\n${r.stderr}`);
    const js = r.stdout.slice(r.stdout.indexOf('{\n'));
    const ours = JSON.parse(js.slice(0, js.lastIndexOf('}') + 1)) as { secondsPerSession: number[]; timings: unknown[]; averageSeconds: number; peakRssMB: number; images: number; voxels: number };
    const oursTotal = (Date.now() - t0) / 1000;
    fs.rmSync(out, { recursive: true, force: true });
    // 2. numpy/nibabel reference, same files
    let numpy: Record<string, unknown> = { skipped: '/usr/bin/python3 lacks numpy, nibabel or scipy' };
    if (spawnSync('/usr/bin/python3', ['-c', 'import numpy, nibabel, scipy']).status === 0) {
      const jf = path.join(root, 'numpy-bench.json');
      const t1 = Date.now();
      const p = spawnSync('/usr/bin/python3', [path.join(REPO, 'data-prep', 'fixtures', 'make_nsd_prep_reference.py'), 'bench', root, jf], { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`numpy reference failed:\n${p.stderr}`);
      const np = JSON.parse(fs.readFileSync(jf, 'utf8')) as { secondsPerSession: number[] };
      numpy = { ...np, meanSecondsPerSession: +mean(np.secondsPerSession).toFixed(3), totalSeconds: (Date.now() - t1) / 1000 };
    }
    return {
      grid: [81, 104, 83], trials: 750, sessions: S, sessionFileMB: fileMB, ...made,
      brainnet: { secondsPerSession: ours.secondsPerSession, meanSecondsPerSession: +mean(ours.secondsPerSession).toFixed(3), timings: ours.timings, averageSeconds: ours.averageSeconds, totalSeconds: oursTotal, peakRssMB: ours.peakRssMB, images: ours.images, voxels: ours.voxels },
      numpy,
    };
  } finally {
    if (!keep) fs.rmSync(root, { recursive: true, force: true });
  }
}
