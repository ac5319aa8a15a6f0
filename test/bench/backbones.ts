/**
 * `npm run bench -- backbones [--batch 8] [--reps 3] [--size N] [--only mobilenetv2,inceptionv3,vit_b_16]
 *   [--engines onnxruntime,tfjs] [--no-torch]`
 *
 * Token-extraction images/s of the built-in backbones on both engines (onnxruntime-node on every core, the
 * default; tfjs on the backend initBackend picks, one thread on wasm) and of the exported ViT-B/16 through
 * onnxruntime-node, each next to PyTorch CPU (Debian python3-torch + torchvision) running the same architecture
 * (random weights: speed does not depend on them; the nsfwjs weights exist only as tfjs files, so the tfjs engine
 * is the other reference) on the same machine and threads, in the same run. Each measurement runs in its own
 * process, so its peak RSS is its own. Also per case: the load time and the CPU seconds per image (user + system
 * of every thread, which says what the cores would give on a machine nobody else uses). Writes
 * outputs/bench/backbones.json. The ViT-B/16 ONNX file comes from data-prep/export-backbone.py (exported into
 * data/backbones when missing and torch is there).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, loadBuiltinBackbone, loadOnnxBackboneFromSidecar, tf } from 'brainnet';
import { Backbone, disposeTokens, type BuiltinEngine } from 'brainnet/backbones';
import { writeFileAtomicSync } from 'brainnet/io';

const ROOT = path.join(__dirname, '..', '..');
const PY = '/usr/bin/python3';
const VIT_JSON = path.join(ROOT, 'data', 'backbones', 'vit_b_16-random.json');
/** The targets on 2 cores (images/s). */
const TARGETS: Record<string, number> = { mobilenetv2: 40, inceptionv3: 10 };

const TORCH_BENCH = `
import sys, time, json, resource, torch, torchvision
name, threads, B, reps, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
ctor = {
  'inceptionv3': lambda: torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False),
  'mobilenetv2': lambda: torchvision.models.mobilenet_v2(weights=None),
  'vit_b_16': lambda: torchvision.models.vit_b_16(weights=None),
}[name]
m = ctor().eval()
x = torch.randn(B, 3, size, size)
with torch.no_grad():
    m(x)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(reps):
        m(x)
    dt, dc = time.perf_counter() - t, time.process_time() - c
print(json.dumps({'images_per_s': B * reps / dt, 'cpu_s_per_image': dc / (B * reps), 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'torch': torch.__version__, 'threads': torch.get_num_threads()}))
`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

interface Case { images_per_s: number; cpu_s_per_image: number; load_s: number; peak_rss_mib: number; name: string; input: number[]; threads?: number }

/** In the child process: loads one backbone and times getTokens with every local token read back to the host. */
async function measure(which: string, engine: BuiltinEngine, B: number, reps: number, size: number | undefined): Promise<Case> {
  await initBackend({ log: null });
  const t0 = performance.now();
  const bb: Backbone = which === 'vit_b_16'
    ? await loadOnnxBackboneFromSidecar(VIT_JSON, { intraOpNumThreads: os.availableParallelism() })
    : await loadBuiltinBackbone(which as 'mobilenetv2' | 'inceptionv3', { engine, inputSize: size });
  const load = (performance.now() - t0) / 1000;
  const x = tf.randomUniform([B, 3, ...bb.inputSize], 0, 1, 'float32', 1) as tf.Tensor4D;
  disposeTokens(await bb.getTokens(x)); // warm-up
  const c0 = process.cpuUsage();
  const t1 = performance.now();
  for (let r = 0; r < reps; r++) {
    const t = await bb.getTokens(x);
    for (const v of Object.values(t.local)) await v.data();
    disposeTokens(t);
  }
  const dt = (performance.now() - t1) / 1000;
  const cpu = process.cpuUsage(c0);
  x.dispose();
  const out: Case = {
    name: bb.name, input: bb.inputSize, images_per_s: (B * reps) / dt, cpu_s_per_image: (cpu.user + cpu.system) / 1e6 / (B * reps), load_s: load,
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
    ...(engine === 'onnxruntime' ? { threads: os.availableParallelism() } : {}),
  };
  await bb.dispose();
  return out;
}

/** Runs {@link measure} in a fresh node process (its own peak RSS); the result or the reason it failed. */
function inChild(which: string, engine: BuiltinEngine, B: number, reps: number, size: number | undefined): Case | string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', which, engine, String(B), String(reps), String(size ?? 0)], {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) return `failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`;
  return JSON.parse(line) as Case;
}

function torchCase(name: string, threads: number, B: number, reps: number, size: number): Record<string, unknown> | string {
  const r = spawnSync(PY, ['-c', TORCH_BENCH, name, String(threads), String(B), String(reps), String(size)], { encoding: 'utf8' });
  if (r.status !== 0) return `failed: ${r.stderr.trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const B = Number(flag(args, 'batch') ?? 8);
  const reps = Number(flag(args, 'reps') ?? 3);
  const size = flag(args, 'size') ? Number(flag(args, 'size')) : undefined;
  const only = (flag(args, 'only') ?? 'mobilenetv2,inceptionv3,vit_b_16').split(',');
  const engines = (flag(args, 'engines') ?? 'onnxruntime,tfjs').split(',') as BuiltinEngine[];
  const threads = os.availableParallelism();
  const backend = await initBackend({ log: null });
  const haveTorch = !args.includes('--no-torch') && fs.existsSync(PY) && spawnSync(PY, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0;
  const result: Record<string, unknown> = {
    batch: B, reps, threads, tfjs_backend: backend.name, onnxruntime_node: (await import('onnxruntime-node')).env.versions.common,
    loadavg_1m_start: os.loadavg()[0],
  };
  const ratio = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? +(a / b).toFixed(3) : null);
  for (const which of only) {
    const row: Record<string, unknown> = {};
    if (which === 'vit_b_16') {
      if (!fs.existsSync(VIT_JSON) && haveTorch && spawnSync(PY, ['-c', 'import onnx']).status === 0) {
        spawnSync(PY, [path.join(ROOT, 'data-prep', 'export-backbone.py'), '--arch', 'vit_b_16', '--out', path.dirname(VIT_JSON)], { stdio: 'inherit' });
      }
      row['onnxruntime'] = fs.existsSync(VIT_JSON) ? inChild(which, 'onnxruntime', B, reps, undefined) : 'skipped: no data/backbones/vit_b_16-random.json and no python3-torch/python3-onnx to export it';
    } else {
      for (const engine of engines) row[engine] = inChild(which, engine, B, reps, size);
    }
    const side = size ?? (which === 'inceptionv3' ? 299 : 224);
    row['pytorch_cpu'] = haveTorch ? torchCase(which, threads, B, reps, side) : 'skipped: /usr/bin/python3 lacks torch/torchvision (apt-get install -y python3-torch python3-torchvision)';
    const ips = (k: string) => (row[k] as Case | undefined)?.images_per_s;
    row['onnxruntime_vs_tfjs_speedup'] = ratio(ips('onnxruntime'), ips('tfjs'));
    row['onnxruntime_vs_pytorch_speedup'] = ratio(ips('onnxruntime'), (row['pytorch_cpu'] as Case | undefined)?.images_per_s);
    if (TARGETS[which] && typeof row['onnxruntime'] === 'object') {
      row['target_images_per_s'] = TARGETS[which];
      row['meets_target'] = ips('onnxruntime')! >= TARGETS[which]!;
    }
    result[which] = row;
  }
  result['loadavg_1m_end'] = os.loadavg()[0];
  const out = path.join(ROOT, 'outputs', 'bench', 'backbones.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  writeFileAtomicSync(out, JSON.stringify({ bench: 'backbones', args, date: new Date().toISOString(), ...result }, null, 2));
  result['written'] = path.relative(ROOT, out);
  return result;
}

if (require.main === module && process.argv[2] === '--child') {
  const [which, engine, B, reps, size] = process.argv.slice(3);
  measure(which!, engine as BuiltinEngine, Number(B), Number(reps), Number(size) || undefined).then(
    (r) => {
      console.log(JSON.stringify(r));
      process.exit(0);
    },
    (e) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(1);
    },
  );
}
