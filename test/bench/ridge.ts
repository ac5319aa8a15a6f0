/**
 * `npm run bench -- ridge [--subject data/subjects/workshop] [--cache outputs/cache/tokens/mobilenetv2_nsfwjs4__workshop]
 *   [--layers 0,9] [--no-eigen] [--no-tridiagonal] [--no-numpy]`
 *
 * The ridge baseline of fitEncoder (step 8: pooled tokens of every layer, 15 alphas per vertex, 5-fold CV, the
 * subject's seeded split) on the example's data: the workshop subject's responses and its MobileNetV2 token cache
 * (the example writes both; without them, seeded random features of the same shapes: 2,000 images, widths 16..1280,
 * 2,472 vertices). Timed with the tridiagonal solver (the default, the path fitEncoder takes) and the
 * eigendecomposition (the path before it, bit for bit) in the same run, with how far their choices agree (alphas per layer and vertex, best
 * layers, R²), and against the same algorithm in numpy (float64, numpy.linalg.eigh per fold, 2 BLAS threads) as the
 * reference, ratio = ours (each solver) / numpy. Wall and CPU seconds (user + system, every thread) for each: on a shared machine the CPU
 * seconds say what a free one would take (the ridge runs on one thread, numpy on two). Writes outputs/bench/ridge.json.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, loadAlgonautsSubject } from 'brainnet';
import { Rng, type Matrix } from 'brainnet/core';
import { buildTokenCache, fileImageSources, type Backbone } from 'brainnet/backbones';
import { collectTokenFeatures, DEFAULT_ALPHAS, kfoldIds, r2PerVertex, ridgeCV, ridgePredict, type RidgeSolver } from 'brainnet/encoding';
import { encodeNpy, ndarray, writeFileAtomicSync } from 'brainnet/io';

const ROOT = path.join(__dirname, '..', '..');
const PY = '/usr/bin/python3';

const NUMPY_REF = String.raw`
import json, sys, time, numpy as np
d = sys.argv[1]; L = int(sys.argv[2])
alphas = np.array(json.load(open(d + '/alphas.json')))
folds = np.load(d + '/folds.npy'); Ytr = np.load(d + '/Ytr.npy').astype(np.float64)
K = folds.max() + 1
def factor(X):  # -> proj [k, n], back [p, k], lam [k], as ridge.ts's eigen path
    if X.shape[1] <= X.shape[0]:
        lam, V = np.linalg.eigh(X.T @ X)
        return V.T @ X.T, V, np.maximum(lam, 0)
    lam, U = np.linalg.eigh(X @ X.T)
    return U.T, X.T @ U, np.maximum(lam, 0)
t0, c0 = time.perf_counter(), time.process_time()
chosen = []
for l in range(L):
    X = np.load(d + f'/X{l}.npy').astype(np.float64)
    cv = np.zeros((len(alphas), Ytr.shape[1]))
    for k in range(K):
        tr, va = folds != k, folds == k
        mx, my = X[tr].mean(0), Ytr[tr].mean(0)
        proj, back, lam = factor(X[tr] - mx)
        Aval = (X[va] - mx) @ back
        z = proj @ (Ytr[tr] - my)
        yv = Ytr[va] - my
        tot = ((yv - yv.mean(0)) ** 2).sum(0)
        for ai, a in enumerate(alphas):
            cv[ai] += (1 - ((yv - Aval @ (z / (lam[:, None] + a))) ** 2).sum(0) / tot) / K
    best = np.nan_to_num(cv, nan=-np.inf).argmax(0)
    mx, my = X.mean(0), Ytr.mean(0)
    proj, back, lam = factor(X - mx)
    W = back @ ((proj @ (Ytr - my)) / (lam[:, None] + alphas[best][None, :]))
    chosen.append(alphas[best].tolist())
print(json.dumps({'seconds': time.perf_counter() - t0, 'cpu_s': time.process_time() - c0, 'numpy': np.__version__, 'alphaByLayer': chosen}))
`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

interface RidgeData { source: string; layers: { train: Matrix; val: Matrix }[]; widths: number[]; Ytr: Matrix; Yva: Matrix; names: string[] }

/**
 * fitEncoder's ridge inputs from the example's subject and token cache, read as fitEncoder reads them: the cache is
 * reopened by its key (a stand-in backbone with the cache's name and layers, the images' path+size+mtime keys; the
 * backbone is never called) and collectTokenFeatures pools each layer's 8x8 local tokens; the seed-0 split.
 */
async function realData(subjectDir: string, cacheDir: string, only: number[] | null): Promise<RidgeData & { collect_s: number }> {
  const subject = await loadAlgonautsSubject(subjectDir);
  const m = JSON.parse(fs.readFileSync(path.join(cacheDir, 'manifest.json'), 'utf8')) as { backbone: string; inputSize: [number, number]; mean: [number, number, number]; std: [number, number, number]; layers: string[]; channels: number[] };
  const standIn: Backbone = {
    name: m.backbone, inputSize: m.inputSize, mean: m.mean, std: m.std, layers: m.layers, channels: m.channels, grids: m.layers.map(() => [8, 8] as [number, number]),
    async getTokens() {
      throw new Error(`bench ridge: the token cache ${cacheDir} does not match the subject's images; run the example once to build it.`);
    },
    dispose() {},
  };
  const cache = await buildTokenCache(standIn, await fileImageSources(subject.trainImagePaths, 'stat'), { dir: cacheDir, log: null, progress: false });
  const split = subject.split({ seed: 0 });
  const t0 = performance.now();
  const tr = await collectTokenFeatures(cache, Array.from(split.train), 'pooled');
  const va = await collectTokenFeatures(cache, Array.from(split.val), 'pooled');
  const collect = (performance.now() - t0) / 1000;
  await cache.close();
  const lh = await subject.fmri('lh');
  const rh = await subject.fmri('rh');
  const nLh = subject.vertexCount.lh;
  const nRh = subject.vertexCount.rh;
  const N = nLh + nRh;
  const rows = (idx: Int32Array): Matrix => {
    const out = new Float32Array(idx.length * N);
    idx.forEach((r, j) => {
      out.set(lh.subarray(r * nLh, (r + 1) * nLh), j * N);
      out.set(rh.subarray(r * nRh, (r + 1) * nRh), j * N + nLh);
    });
    return { data: out, shape: [idx.length, N] };
  };
  const layerIdx = only ?? m.layers.map((_, l) => l);
  return {
    source: `${path.relative(ROOT, subjectDir) || subjectDir} + its ${m.backbone} token cache (pooled local tokens, as fitEncoder's default)`,
    layers: layerIdx.map((l) => ({ train: tr[l]!, val: va[l]! })), widths: layerIdx.map((l) => m.channels[l]!),
    Ytr: rows(split.train), Yva: rows(split.val), names: layerIdx.map((l) => m.layers[l]!), collect_s: +collect.toFixed(2),
  };
}

/** Seeded stand-in with the example's shapes: ReLU-like features of MobileNetV2's widths, responses reading two layers. */
function syntheticData(only: number[] | null): RidgeData {
  const widths = [16, 24, 32, 64, 64, 96, 160, 160, 320, 1280];
  const idx = only ?? widths.map((_, l) => l);
  const nTr = 1829;
  const nVa = 171;
  const N = 2472;
  const rng = new Rng(0);
  const layers = idx.map((l) => {
    const p = widths[l]!;
    const X = Float32Array.from({ length: (nTr + nVa) * p }, () => Math.max(0, rng.normal() + 0.3));
    return { train: { data: X.subarray(0, nTr * p), shape: [nTr, p] as [number, number] }, val: { data: X.subarray(nTr * p), shape: [nVa, p] as [number, number] } };
  });
  const Y = new Float32Array((nTr + nVa) * N);
  const src = layers[Math.floor(layers.length / 2)]!;
  const p = src.train.shape[1];
  const all = Float32Array.from([...src.train.data, ...src.val.data]);
  const W = Float32Array.from({ length: p * N }, () => rng.normal() * 0.1);
  for (let i = 0; i < nTr + nVa; i++) for (let j = 0; j < N; j++) {
    let s = rng.normal() * 3;
    for (let k = 0; k < Math.min(p, 16); k++) s += all[i * p + k]! * W[k * N + j]!;
    Y[i * N + j] = s;
  }
  return {
    source: 'synthetic (seed 0): no workshop subject or token cache found', layers, widths: idx.map((l) => widths[l]!),
    Ytr: { data: Y.subarray(0, nTr * N), shape: [nTr, N] }, Yva: { data: Y.subarray(nTr * N), shape: [nVa, N] }, names: idx.map((l) => `L${l}`),
  };
}

interface Solved { seconds: number; cpuSeconds: number; perLayer: number[]; alphaByLayer: Float64Array; r2ByLayer: Float64Array; cvByLayer: Float64Array; cvScores: Float64Array[]; fallbacks: number }

/** fitRidgeBaseline's per-layer work (ridgeCV, then validation R²), layer by layer, the solvers alternating first and second. */
function solveAll(data: RidgeData, solvers: RidgeSolver[]): Record<string, Solved> {
  const L = data.layers.length;
  const N = data.Ytr.shape[1];
  const out: Record<string, Solved> = {};
  for (const s of solvers) {
    out[s] = { seconds: 0, cpuSeconds: 0, perLayer: [], alphaByLayer: new Float64Array(L * N), r2ByLayer: new Float64Array(L * N), cvByLayer: new Float64Array(L * N), cvScores: [], fallbacks: 0 };
  }
  data.layers.forEach((layer, l) => {
    const order = l % 2 ? [...solvers].reverse() : solvers;
    for (const s of order) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const fit = ridgeCV(layer.train, data.Ytr, { seed: 0, solver: s });
      const r2 = r2PerVertex(ridgePredict(layer.val, fit), data.Yva.data, N);
      const dt = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(c0);
      const o = out[s]!;
      o.seconds += dt;
      o.cpuSeconds += (cpu.user + cpu.system) / 1e6;
      o.perLayer[l] = +dt.toFixed(2);
      o.alphaByLayer.set(fit.bestAlpha, l * N);
      o.r2ByLayer.set(r2, l * N);
      o.cvByLayer.set(fit.cvScore, l * N);
      o.cvScores[l] = fit.cvScores;
      o.fallbacks += fit.eigenFallbacks;
    }
  });
  for (const s of solvers) {
    out[s]!.seconds = +out[s]!.seconds.toFixed(2);
    out[s]!.cpuSeconds = +out[s]!.cpuSeconds.toFixed(2);
  }
  return out;
}

/** Each vertex's best layer by cross-validated R², as fitRidgeBaseline picks it. */
function bestLayers(cvByLayer: Float64Array, L: number, N: number): Int32Array {
  const best = new Int32Array(N);
  for (let j = 0; j < N; j++) {
    let bs = -Infinity;
    for (let l = 0; l < L; l++) if (cvByLayer[l * N + j]! > bs) [bs, best[j]] = [cvByLayer[l * N + j]!, l];
  }
  return best;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  await initBackend({ log: null });
  const subjectDir = path.resolve(ROOT, flag(args, 'subject') ?? 'data/subjects/workshop');
  const cacheDir = path.resolve(ROOT, flag(args, 'cache') ?? 'outputs/cache/tokens/mobilenetv2_nsfwjs4__workshop');
  const only = flag(args, 'layers') ? flag(args, 'layers')!.split(',').map(Number) : null;
  const t0 = performance.now();
  const data: RidgeData & { collect_s?: number } = fs.existsSync(path.join(cacheDir, 'manifest.json')) && fs.existsSync(subjectDir) ? await realData(subjectDir, cacheDir, only) : syntheticData(only);
  const result: Record<string, unknown> = {
    data: data.source, layers: data.names, widths: data.widths, train: data.Ytr.shape[0], val: data.Yva.shape[0], vertices: data.Ytr.shape[1],
    alphas: 15, folds: 5, load_s: +((performance.now() - t0) / 1000).toFixed(2),
    ...(data.collect_s !== undefined ? { collect_token_features_s: data.collect_s } : {}), loadavg_1m_start: os.loadavg()[0],
  };
  const solvers = (['tridiagonal', 'eigen'] as RidgeSolver[]).filter((s) => !args.includes(`--no-${s}`));
  if (!solvers.length) throw new Error('bench ridge: --no-eigen and --no-tridiagonal leave nothing to time; drop one.');
  const res = solveAll(data, solvers);
  const tri = res['tridiagonal'];
  const eig = res['eigen'];
  const L = data.layers.length;
  const N = data.Ytr.shape[1];
  if (eig) result['eigen'] = { seconds: eig.seconds, cpu_s: eig.cpuSeconds, per_layer_s: eig.perLayer };
  if (tri) result['tridiagonal'] = { seconds: tri.seconds, cpu_s: tri.cpuSeconds, per_layer_s: tri.perLayer, eigen_fallbacks: tri.fallbacks };
  if (eig && tri) {
    // the choices that differ: how far apart the two alphas' CV scores are (the eigen path's scores)
    let sameAlpha = 0;
    const samePerLayer = new Array<number>(L).fill(0);
    const maxR2PerLayer = new Array<number>(L).fill(0);
    let maxR2 = 0;
    let maxGap = 0;
    const A = tri.cvScores[0]!.length / N;
    const alphas = DEFAULT_ALPHAS.slice(0, A);
    for (let l = 0; l < L; l++) for (let j = 0; j < N; j++) {
      const i = l * N + j;
      maxR2 = Math.max(maxR2, Math.abs(tri.r2ByLayer[i]! - eig.r2ByLayer[i]!) || 0);
      maxR2PerLayer[l] = Math.max(maxR2PerLayer[l]!, Math.abs(tri.r2ByLayer[i]! - eig.r2ByLayer[i]!) || 0);
      if (tri.alphaByLayer[i] === eig.alphaByLayer[i]) {
        sameAlpha++;
        samePerLayer[l]!++;
        continue;
      }
      const at = (a: number) => eig.cvScores[l]![alphas.findIndex((x) => Math.abs(x - a) <= 1e-9 * a) * N + j]!;
      maxGap = Math.max(maxGap, Math.abs(at(tri.alphaByLayer[i]!) - at(eig.alphaByLayer[i]!)));
    }
    const bt = bestLayers(tri.cvByLayer, L, N);
    const be = bestLayers(eig.cvByLayer, L, N);
    let sameLayer = 0;
    let maxBestR2 = 0;
    for (let j = 0; j < N; j++) {
      if (bt[j] === be[j]) sameLayer++;
      maxBestR2 = Math.max(maxBestR2, Math.abs(tri.r2ByLayer[bt[j]! * N + j]! - eig.r2ByLayer[be[j]! * N + j]!) || 0);
    }
    result['tridiagonal_vs_eigen_speedup_cpu'] = +(eig.cpuSeconds / tri.cpuSeconds).toFixed(2);
    result['tridiagonal_vs_eigen_speedup'] = +(eig.seconds / tri.seconds).toFixed(2);
    result['tridiagonal_agreement_with_eigen'] = {
      alphas_same: `${sameAlpha} of ${L * N}`,
      alphas_same_per_layer: samePerLayer,
      max_abs_val_r2_diff_by_layer: maxR2PerLayer.map((v) => +v.toExponential(2)),
      where_alphas_differ_max_cv_r2_gap_between_them: maxGap,
      max_abs_val_r2_diff_per_layer: maxR2,
      best_layer_same: `${sameLayer} of ${N}`,
      max_abs_val_r2_diff_at_best_layer: maxBestR2,
    };
  }
  if (!args.includes('--no-numpy') && fs.existsSync(PY)) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ridge-bench-'));
    try {
      const nTr = data.Ytr.shape[0];
      data.layers.forEach((l, i) => fs.writeFileSync(path.join(dir, `X${i}.npy`), encodeNpy(ndarray('float32', [nTr, l.train.shape[1]], Float32Array.from(l.train.data)))));
      fs.writeFileSync(path.join(dir, 'Ytr.npy'), encodeNpy(ndarray('float32', [nTr, N], Float32Array.from(data.Ytr.data))));
      fs.writeFileSync(path.join(dir, 'Yva.npy'), encodeNpy(ndarray('float32', [data.Yva.shape[0], N], Float32Array.from(data.Yva.data))));
      fs.writeFileSync(path.join(dir, 'folds.npy'), encodeNpy(ndarray('int32', [nTr], kfoldIds(nTr, 5, 0))));
      fs.writeFileSync(path.join(dir, 'alphas.json'), JSON.stringify(DEFAULT_ALPHAS));
      const env = { ...process.env, OPENBLAS_NUM_THREADS: '2', OMP_NUM_THREADS: '2', MKL_NUM_THREADS: '2' };
      const r = spawnSync(PY, ['-c', NUMPY_REF, dir, String(L)], { encoding: 'utf8', env, maxBuffer: 1 << 28 });
      if (r.status === 0) {
        const ref = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; cpu_s: number; numpy: string; alphaByLayer: number[][] };
        const same = (ours: Float64Array) => {
          let k = 0;
          ref.alphaByLayer.forEach((row, l) => row.forEach((a, j) => {
            if (Math.abs(a - ours[l * N + j]!) <= 1e-6 * a) k++;
          }));
          return `${k} of ${L * N}`;
        };
        result['numpy_float64_eigh'] = {
          seconds: +ref.seconds.toFixed(2), cpu_s: +ref.cpu_s.toFixed(2), numpy: ref.numpy, blas_threads: 2,
          ...(eig ? { alphas_same_as_eigen: same(eig.alphaByLayer) } : {}),
          ...(tri ? { alphas_same_as_tridiagonal: same(tri.alphaByLayer) } : {}),
        };
        result['ratio_vs_numpy'] = Object.fromEntries(Object.entries(res).map(([k, o]) => [k, { wall: +(o.seconds / ref.seconds).toFixed(2), cpu: +(o.cpuSeconds / ref.cpu_s).toFixed(2) }]));
      } else {
        result['numpy_float64_eigh'] = `failed: ${r.stderr.trim().split('\n').pop()}`;
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  result['loadavg_1m_end'] = os.loadavg()[0];
  const out = path.join(ROOT, 'outputs', 'bench', 'ridge.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  writeFileAtomicSync(out, JSON.stringify({ bench: 'ridge', args, date: new Date().toISOString(), ...result }, null, 2));
  result['written'] = path.relative(ROOT, out);
  return result;
}
