/**
 * `npm run bench -- encoding [--vertices N] [--layers L] [--width C] [--batch B] [--reps R] [--no-torch]`
 *
 * The factorized encoding model at the paper's size (37,984 vertices, 12 layers of 768 channels,
 * 8x8 local tokens, batch 8): time per training step (forward, backward, AdamW) and forward-only
 * time (medians), peak memory, a breakdown of where the time goes, and the same model in PyTorch
 * (/usr/bin/python3, torch.set_num_threads(2)) run in the same benchmark, with
 * train_step_ratio = brainnet / PyTorch.
 */
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from 'brainnet';
import { AdamW, FactorizedEncoder, trainStep } from 'brainnet/encoding';

const TORCH = String.raw`
import json, math, resource, sys, time
import torch, torch.nn.functional as F
N, L, C, B, R = [int(x) for x in sys.argv[1:6]]
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
        self.local = torch.nn.ModuleList([torch.nn.Conv2d(C, D, 1, bias=False) for _ in range(L)])
        self.glob = torch.nn.ModuleList([torch.nn.Linear(C, D, bias=False) for _ in range(L)])
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
local = [torch.randn(B, C, G, G) for _ in range(L)]
glob = [torch.randn(B, C) for _ in range(L)]
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

const median = (a: number[]) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const N = arg(args, 'vertices', 37984);
  const L = arg(args, 'layers', 12);
  const C = arg(args, 'width', 768);
  const B = arg(args, 'batch', 8);
  const R = arg(args, 'reps', 3);
  const choice = await initBackend();
  const coords = new Float32Array(N * 3).map((_, i) => Math.sin(i * 12.9898) * 50);
  const model = new FactorizedEncoder(coords, { layerWidths: Array(L).fill(C), seed: 0 });
  // Spread the space and layer selectors as after training, so vertices fall into many grid cells.
  model.space.w3.assign(tf.randomNormal([128, 2], 0, 0.3, 'float32', 1));
  model.layer.w3.assign(tf.randomNormal([128, L], 0, 0.3, 'float32', 2));
  const tokens = {
    local: Array.from({ length: L }, (_, i) => tf.randomNormal([B, C, 8, 8], 0, 1, 'float32', 10 + i) as tf.Tensor4D),
    global: Array.from({ length: L }, (_, i) => tf.randomNormal([B, C], 0, 1, 'float32', 40 + i) as tf.Tensor2D),
  };
  const target = tf.randomNormal([B, N], 0, 1, 'float32', 99) as tf.Tensor2D;
  const opt = new AdamW({ lr: 1e-3 });
  const fwd: number[] = [];
  const step: number[] = [];
  const sel: number[] = [];
  let peakBytes = 0;
  for (let r = 0; r <= R; r++) {
    let t0 = performance.now();
    const s = model.selectorTensors();
    s.xy.dataSync();
    tf.dispose([s.xy, s.p, s.s]);
    const tSel = performance.now() - t0;
    t0 = performance.now();
    const p = model.predict(tokens);
    p.dataSync();
    p.dispose();
    const tFwd = performance.now() - t0;
    t0 = performance.now();
    await trainStep({ model, optimizer: opt, tokens, target, step: r });
    const tStep = performance.now() - t0;
    peakBytes = Math.max(peakBytes, tf.memory().numBytes);
    if (r > 0) {
      fwd.push(tFwd / 1000);
      step.push(tStep / 1000);
      sel.push(tSel / 1000);
    }
  }
  const ours = {
    backend: choice.name,
    forward_s: median(fwd),
    train_step_s: median(step),
    selectors_forward_s: median(sel),
    head_and_bottleneck_forward_s: median(fwd) - median(sel),
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    tf_memory_peak_mb: peakBytes / 2 ** 20,
    tf_memory_now: tf.memory().numTensors,
  };
  let torch: Record<string, unknown> | null = null;
  if (!args.includes('--no-torch')) {
    const res = spawnSync('/usr/bin/python3', ['-', String(N), String(L), String(C), String(B), String(R)], { input: TORCH, encoding: 'utf8', maxBuffer: 1 << 24 });
    if (res.status === 0) torch = JSON.parse(res.stdout.trim().split('\n').pop()!);
    else torch = { error: `python3 with torch failed (${res.status}): ${(res.stderr || '').split('\n').slice(-3).join(' ')}; install Debian python3-torch` };
  }
  const ts = torch && typeof torch['train_step_s'] === 'number' ? (torch['train_step_s'] as number) : null;
  const tf_ = torch && typeof torch['forward_s'] === 'number' ? (torch['forward_s'] as number) : null;
  return {
    size: { vertices: N, layers: L, width: C, batch: B, grid: 8, bottleneck: 128, reps: R },
    brainnet: ours,
    pytorch: torch,
    train_step_ratio: ts ? ours.train_step_s / ts : null,
    forward_ratio: tf_ ? ours.forward_s / tf_ : null,
  };
}
