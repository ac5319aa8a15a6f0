#!/usr/bin/env python3
"""PyTorch CPU reference for `npm run bench -- braindive`: the same guided sampling loop with the same shapes, so
that brainnet's seconds per guided image can be put next to PyTorch's on the same machine.

Each of `steps` steps: the latent denoiser (residual MLP 128 -> 512, 4 blocks with timestep embedding, -> 128,
v-prediction) with the gradient taken through it, the x0 estimate, BrainDiVE's mixed sample
x0*sqrt(1-a) + z*(1-sqrt(1-a)), the PCA decode (128 -> 64*64*3), a bilinear resize to the encoder's input size,
MobileNetV2 (Keras layout, eval-mode batch norm, ReLU6) to out_relu, global mean, unit norm, a linear map to 618
vertices, the mean over a 14-vertex region, its gradient back to the latent, and a DDIM update.
Weights are random: the time does not depend on their values.

Prints one JSON line. Run: /usr/bin/python3 test/bench/braindive_reference.py [--steps 20] [--n 8] [--size 128]
(Debian python3-torch; torch.set_num_threads(2), as the wasm backend's two threads).
"""
import argparse, json, math, resource, time

import torch, torch.nn as nn, torch.nn.functional as F


def mobilenet_v2() -> nn.Module:
    """MobileNetV2 (alpha 1) up to out_relu: [B, 3, S, S] -> [B, 1280, S/32, S/32]."""
    def cbr(i, o, k, s, groups=1):
        return [nn.Conv2d(i, o, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o), nn.ReLU6()]

    class Block(nn.Module):
        def __init__(self, i, o, s, t):
            super().__init__()
            h = i * t
            layers = (cbr(i, h, 1, 1) if t != 1 else []) + cbr(h, h, 3, s, groups=h) + [nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o)]
            self.body = nn.Sequential(*layers)
            self.res = s == 1 and i == o

        def forward(self, x):
            y = self.body(x)
            return x + y if self.res else y

    layers, c = cbr(3, 32, 3, 2), 32
    for t, o, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for j in range(n):
            layers.append(Block(c, o, s if j == 0 else 1, t))
            c = o
    layers += cbr(c, 1280, 1, 1)
    return nn.Sequential(*layers).eval()


class Denoiser(nn.Module):
    """The latent model's residual MLP (lib/diffusion/pca-latent.ts latentDenoiser): z [B, k], t [B] -> v [B, k]."""
    def __init__(self, k=128, width=512, blocks=4, emb=128):
        super().__init__()
        self.emb_dim = emb
        self.temb = nn.Sequential(nn.Linear(emb, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU())
        self.inp = nn.Linear(k, width)
        self.blocks = nn.ModuleList([nn.ModuleDict({'ln': nn.LayerNorm(width), 'fc1': nn.Linear(width, width), 'temb': nn.Linear(width, width), 'fc2': nn.Linear(width, width)}) for _ in range(blocks)])
        self.out_ln, self.out = nn.LayerNorm(width), nn.Linear(width, k)

    def forward(self, z, t):
        half = self.emb_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half) / half)
        a = t[:, None].float() * freqs[None]
        e = self.temb(torch.cat([torch.sin(a), torch.cos(a)], 1))
        h = self.inp(z)
        for b in self.blocks:
            x = b['fc1'](F.silu(b['ln'](h)))
            h = h + b['fc2'](F.silu(x + b['temb'](e)))
        return self.out(F.silu(self.out_ln(h)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--n', type=int, default=8)
    ap.add_argument('--size', type=int, default=128)
    o = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    k, side, voxels, region = 128, 64, 618, 14
    net, den = mobilenet_v2(), Denoiser().eval()
    for p in list(net.parameters()) + list(den.parameters()):
        p.requires_grad_(False)
    basis, mean = torch.randn(k, side * side * 3) * 0.01, torch.zeros(side * side * 3)
    w, bias = torch.randn(1280, voxels) * 0.01, torch.zeros(voxels)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    ts = list(range(999, -1, -1000 // o.steps))[: o.steps]

    def sample(batch):
        z = torch.randn(batch, k)
        for i, t in enumerate(ts):
            a = float(abar[t])
            a_prev = float(abar[ts[i + 1]]) if i + 1 < len(ts) else 1.0
            z = z.detach().requires_grad_(True)
            v = den(z, torch.full((batch,), t))
            x0 = math.sqrt(a) * z - math.sqrt(1 - a) * v
            eps = math.sqrt(1 - a) * z + math.sqrt(a) * v
            mixed = x0 * math.sqrt(1 - a) + z * (1 - math.sqrt(1 - a))
            img = (mixed @ basis + mean).reshape(batch, side, side, 3).permute(0, 3, 1, 2)
            img = F.interpolate((img + 1) / 2, size=(o.size, o.size), mode='bilinear', align_corners=False)
            f = net(img).mean((2, 3))
            f = f / f.norm(dim=1, keepdim=True)
            score = (f @ w + bias)[:, :region].mean(1).sum()
            g, = torch.autograd.grad(score, z)
            with torch.no_grad():
                eps = eps - math.sqrt(1 - a) * 10.0 * g
                x0 = (z - math.sqrt(1 - a) * eps) / math.sqrt(a)
                z = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
        return z

    sample(1)  # warm-up
    out = {}
    for batch in (1, 8):
        t0 = time.perf_counter()
        for _ in range(max(1, o.n // batch)):
            sample(batch)
        out[f'batch{batch}'] = round((time.perf_counter() - t0) / (max(1, o.n // batch) * batch), 3)
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'steps': o.steps, 'scoreSize': o.size,
                      'secondsPerGuidedImage': out, 'peakRssMiB': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == '__main__':
    main()
