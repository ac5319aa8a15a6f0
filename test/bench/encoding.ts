/**
 * `npm run bench -- encoding [--size paper|workshop] [--head auto|onnx|fused] [--compare] [--vertices N] [--batch B] [--reps R] [--no-torch]`
 *
 * The factorized encoding model's training step (forward, backward, AdamW) and forward pass (medians)
 * at two sizes, 8x8 local tokens, batch 8:
 * - `paper` (default): 37,984 vertices, 12 layers of 768 channels (the paper's CLIP ViT-B/16 setting);
 * - `workshop`: 2,472 vertices and MobileNetV2's 10 tapped layers (16 ... 1280 channels), the size
 *   `npm run example` trains.
 * It reports the step's arithmetic (matmul FLOPs, counted from the sizes), the achieved GFLOP/s next to
 * the matmul peaks measured in the same run (tfjs-wasm, one thread; onnxruntime's CPU provider, every
 * core), where the host step's time goes (per phase, wall and CPU seconds), peak memory, and the same
 * model in PyTorch (/usr/bin/python3, torch.set_num_threads(2)) in the same run: train_step_ratio =
 * brainnet / PyTorch. `--compare` also times the previous engine ('fused': tfjs gradients through the
 * fused read-out, one wasm thread) in the same run. The load average is printed: on a shared machine,
 * compare only numbers from one run.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from 'brainnet';
import { loadOnnxRuntime } from 'brainnet/compute';
import { AdamW, FactorizedEncoder, matmulGraph, onnxEngine, trainStep, type HeadKind } from 'brainnet/encoding';

const TORCH = String.raw`
import json, math, resource, sys, time
import torch, torch.nn.functional as F
N, B, R = [int(x) for x in sys.argv[1:4]]
WIDTHS = [int(x) for x in sys.argv[4].split(',')]
L = len(WIDTHS)
torch.set_num_threads(2)
torch.manual_seed(0)
D, H, G = 128, 128, 8

def pe(coords, features=32, max_steps=100, periods=1000):
    low, high = coords.min(0).values, coords.max(0).values
    steps = (high - low) * (max_steps / (high - low).max())
    pos = (coords - low) * (steps / (high - low))
    omega = torch.logspace(0, 1 / features - 1, features, periods)
    frac = omega * pos.unsqueeze(-1)
    return torch.stack((frac.sin(), frac.cos()), dim=-1).flatten(-3)

class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.local = torch.nn.ModuleList([torch.nn.Conv2d(C, D, 1, bias=False) for C in WIDTHS])
        self.glob = torch.nn.ModuleList([torch.nn.Linear(C, D, bias=False) for C in WIDTHS])
        def mlp(o):
            m = torch.nn.Sequential(torch.nn.Linear(192, H), torch.nn.GELU(), torch.nn.Linear(H, H), torch.nn.GELU(), torch.nn.Linear(H, o, bias=False))
            torch.nn.init.zeros_(m[-1].weight)
            return m
        self.space, self.layer, self.scale = mlp(2), mlp(L), mlp(1)
        self.weight = torch.nn.Parameter(torch.randn(N, D) * 0.05)
        self.bias = torch.nn.Parameter(torch.zeros(N))
    def forward(self, local, glob, p_enc):
        xy = torch.tanh(self.space(p_enc)); p = torch.softmax(self.layer(p_enc), -1); s = torch.sigmoid(self.scale(p_enc))
        reg = (torch.log(p + 1e-8) * p).sum(-1).mean() / math.log(L) + (s - 0.5).pow(2).mean()
        g = torch.stack([self.glob[l](glob[l]) for l in range(L)], -1)  # [B, D, L]
        v_global = (g.unsqueeze(1) * p.view(1, N, 1, L)).sum(-1)  # as the public code: [B, N, D, L] summed
        grid = xy.view(1, N, 1, 2).expand(B, N, 1, 2)
        v_local = 0
        for l in range(L):
            t = self.local[l](local[l])
            smp = F.grid_sample(t, grid, mode='bilinear', padding_mode='zeros', align_corners=False).squeeze(-1).permute(0, 2, 1)
            v_local = v_local + smp * p[:, l].view(1, N, 1)
        v = (1 - s.unsqueeze(0)) * v_local + s.unsqueeze(0) * v_global
        return (v * self.weight.unsqueeze(0)).mean(-1) + self.bias, reg

coords = torch.sin(torch.arange(N * 3, dtype=torch.float32) * 12.9898).view(N, 3) * 50
p_enc = pe(coords)
model = Model()
with torch.no_grad():
    model.space[-1].weight.normal_(0, 0.3); model.layer[-1].weight.normal_(0, 0.3)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
local = [torch.randn(B, C, G, G) for C in WIDTHS]
glob = [torch.randn(B, C) for C in WIDTHS]
target = torch.randn(B, N)
fwd, step = [], []
for r in range(R + 1):
    t0 = time.perf_counter()
    with torch.no_grad():
        model(local, glob, p_enc)
    t1 = time.perf_counter()
    pred, reg = model(local, glob, p_enc)
    loss = F.smooth_l1_loss(pred, target, beta=0.1) + 0.1 * reg * max(0.0, 1 - r / 2000)
    opt.zero_grad(); loss.backward(); opt.step()
    t2 = time.perf_counter()
    if r > 0:
        fwd.append(t1 - t0); step.append(t2 - t1)
med = lambda a: sorted(a)[len(a) // 2]
print(json.dumps({'forward_s': med(fwd), 'train_step_s': med(step), 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'torch': torch.__version__, 'threads': torch.get_num_threads()}))
`;

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

function argString(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
}

const median = (a: number[]) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/** The two sizes: vertices and token widths per layer. */
export const SIZES = {
  paper: { vertices: 37984, widths: Array(12).fill(768) as number[] },
  workshop: { vertices: 2472, widths: [16, 24, 32, 64, 64, 96, 160, 160, 320, 1280] },
};

/** Matmul FLOPs of one training step (forward, and the backward of every weight; tokens get no gradient). */
export function stepFlops(o: { vertices: number; widths: number[]; batch: number; dim?: number; hidden?: number; peDim?: number; grid?: number }): Record<string, number> {
  const N = o.vertices, B = o.batch, D = o.dim ?? 128, H = o.hidden ?? 128, pe = o.peDim ?? 192, P = (o.grid ?? 8) ** 2;
  const L = o.widths.length;
  const sumC = o.widths.reduce((a, b) => a + b, 0);
  const sumO = 2 + L + 1;
  const selectors = 2 * N * (pe * 3 * H + 3 * H * H + H * sumO) + 2 * N * (pe * 3 * H + 6 * H * H + 2 * H * sumO);
  const bottlenecks = 2 * (2 * B * (P + 1) * sumC * D);
  const head = 3 * (2 * N * D * B * 5 * L);
  return { selectors, bottlenecks, head, total: selectors + bottlenecks + head };
}

/** Best GFLOP/s of a 1024^3 matmul on tfjs-wasm (one thread) and on onnxruntime's CPU provider (every core). */
async function matmulPeaks(): Promise<{ wasm_gflops: number; onnx_gflops: number | null }> {
  const n = 1024;
  const flop = 2 * n ** 3;
  const a = new Float32Array(n * n).map((_, i) => Math.sin(i));
  const b = new Float32Array(n * n).map((_, i) => Math.cos(i));
  const ta = tf.tensor2d(a, [n, n]);
  const tb = tf.tensor2d(b, [n, n]);
  let best = Infinity;
  for (let r = 0; r < 6; r++) {
    const t0 = performance.now();
    const c = tf.matMul(ta, tb);
    c.dataSync();
    best = Math.min(best, performance.now() - t0);
    c.dispose();
  }
  tf.dispose([ta, tb]);
  const wasm = flop / best / 1e6;
  const ort = loadOnnxRuntime();
  if (!ort) return { wasm_gflops: wasm, onnx_gflops: null };
  const sess = await ort.InferenceSession.create(matmulGraph(), { executionProviders: ['cpu'], interOpNumThreads: 1 });
  const feeds = { a: new ort.Tensor('float32', a, [n, n]), b: new ort.Tensor('float32', b, [n, n]) };
  best = Infinity;
  for (let r = 0; r < 6; r++) {
    const t0 = performance.now();
    await sess.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  await sess.release();
  return { wasm_gflops: wasm, onnx_gflops: flop / best / 1e6 };
}

/** The problem of one size: a model with spread selectors (as after training), a token batch and targets. */
function problem(N: number, widths: number[], B: number, head: HeadKind): { model: FactorizedEncoder; tokens: { local: tf.Tensor4D[]; global: tf.Tensor2D[] }; target: tf.Tensor2D } {
  const L = widths.length;
  const coords = new Float32Array(N * 3).map((_, i) => Math.sin(i * 12.9898) * 50);
  const model = new FactorizedEncoder(coords, { layerWidths: widths, seed: 0, head });
  // Spread the space and layer selectors as after training, so vertices fall into many grid cells.
  model.space.w3.assign(tf.randomNormal([128, 2], 0, 0.3, 'float32', 1));
  model.layer.w3.assign(tf.randomNormal([128, L], 0, 0.3, 'float32', 2));
  const tokens = {
    local: widths.map((C, i) => tf.randomNormal([B, C, 8, 8], 0, 1, 'float32', 10 + i) as tf.Tensor4D),
    global: widths.map((C, i) => tf.randomNormal([B, C], 0, 1, 'float32', 40 + i) as tf.Tensor2D),
  };
  return { model, tokens, target: tf.randomNormal([B, N], 0, 1, 'float32', 99) as tf.Tensor2D };
}

/** Median step and forward times of one engine (`head`), with the host step's phases and memory. */
async function measure(N: number, widths: number[], B: number, R: number, head: HeadKind): Promise<Record<string, unknown> & { train_step_s: number; forward_s: number }> {
  const { model, tokens, target } = problem(N, widths, B, head);
  const opt = new AdamW({ lr: 1e-3 });
  const kind = model.headKind();
  const engine = kind === 'onnx' ? await onnxEngine(model) : null;
  const fwd: number[] = [];
  const step: number[] = [];
  const cpu: number[] = [];
  let peakBytes = 0;
  let phases: Record<string, { wall: number; cpu: number }> = {};
  for (let r = 0; r <= R; r++) {
    if (engine) engine.profile = r > 0 ? phases : null;
    const c0 = process.cpuUsage();
    let t0 = performance.now();
    await trainStep({ model, optimizer: opt, tokens, target, step: r });
    const tStep = performance.now() - t0;
    const c = process.cpuUsage(c0);
    // the forward pass after a step (the selectors changed, so nothing is cached)
    t0 = performance.now();
    if (engine) {
      await engine.predict(tokens);
    } else {
      const p = model.predict(tokens);
      p.dataSync();
      p.dispose();
    }
    const tFwd = performance.now() - t0;
    peakBytes = Math.max(peakBytes, tf.memory().numBytes);
    if (r > 0) {
      fwd.push(tFwd / 1000);
      step.push(tStep / 1000);
      cpu.push((c.user + c.system) / 1e6);
    }
  }
  if (engine) {
    engine.profile = null;
    phases = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, { wall: v.wall / R, cpu: v.cpu / R }]));
  }
  const stepS = median(step);
  const flops = stepFlops({ vertices: N, widths, batch: B });
  const out = {
    step_engine: kind,
    forward_s: median(fwd),
    train_step_s: stepS,
    train_steps_s: step,
    train_step_cpu_s: median(cpu),
    step_phases_s: engine ? phases : null,
    achieved_gflops: flops.total! / stepS / 1e9,
    tf_memory_peak_mb: peakBytes / 2 ** 20,
    tf_memory_now: tf.memory().numTensors,
  };
  model.dispose();
  tf.dispose([target, ...tokens.local, ...tokens.global]);
  return out;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const sizeName = argString(args, 'size', 'paper');
  const size = SIZES[sizeName as keyof typeof SIZES];
  if (!size) throw new Error(`bench encoding: --size must be paper or workshop, found '${sizeName}'`);
  const N = arg(args, 'vertices', size.vertices);
  const widths = size.widths;
  const L = widths.length;
  const B = arg(args, 'batch', 8);
  const R = arg(args, 'reps', sizeName === 'paper' ? 3 : 10);
  const head = argString(args, 'head', 'auto') as HeadKind;
  const choice = await initBackend();
  const ours = { backend: choice.name, ...(await measure(N, widths, B, R, head)), peak_rss_mb: process.resourceUsage().maxRSS / 1024 };
  // the previous engine (tfjs gradients through the fused read-out, one wasm thread), in the same run
  const before = args.includes('--compare') ? await measure(N, widths, B, Math.min(R, 3), 'fused') : null;
  const flops = stepFlops({ vertices: N, widths, batch: B });
  const peaks = await matmulPeaks();
  let torch: Record<string, unknown> | null = null;
  if (!args.includes('--no-torch')) {
    const res = spawnSync('/usr/bin/python3', ['-', String(N), String(B), String(Math.min(R, 3)), widths.join(',')], { input: TORCH, encoding: 'utf8', maxBuffer: 1 << 24 });
    if (res.status === 0) torch = JSON.parse(res.stdout.trim().split('\n').pop()!);
    else torch = { error: `python3 with torch failed (${res.status}): ${(res.stderr || '').split('\n').slice(-3).join(' ')}; install Debian python3-torch` };
  }
  const ts = torch && typeof torch['train_step_s'] === 'number' ? (torch['train_step_s'] as number) : null;
  const tf_ = torch && typeof torch['forward_s'] === 'number' ? (torch['forward_s'] as number) : null;
  return {
    size: { name: sizeName, vertices: N, layers: L, widths, batch: B, grid: 8, bottleneck: 128, reps: R },
    load_average: os.loadavg(),
    step_gflop: Object.fromEntries(Object.entries(flops).map(([k, v]) => [k, v / 1e9])),
    matmul_peak_gflops: peaks,
    brainnet: ours,
    brainnet_fused_tfjs: before,
    speedup_vs_fused_tfjs: before ? before.train_step_s / ours.train_step_s : null,
    pytorch: torch,
    train_step_ratio: ts ? ours.train_step_s / ts : null,
    forward_ratio: tf_ ? ours.forward_s / tf_ : null,
  };
}
