#!/usr/bin/python3
"""PyTorch CPU reference for test/bench/sag.ts: the same guided step, with and without self-attention guidance, on the
same tiny SD networks (built by data-prep/fixtures/make_diffusion_fixtures.py's tiny_sd_modules, the ones the ONNX
fixture was exported from), the same shapes and the same toy score. Prints one JSON line: seconds per step per mode.

  /usr/bin/python3 test/bench/sag_reference.py --sizes 8,64 --steps 2 [--threads 2]

Modes: none (one UNet forward), sag (+ SAG: blur, second UNet forward), x0 (+ VAE decoder and score forward and
backward, eps held constant), x0+sag, full (+ the UNet's backward too), full+sag. Debian python3-torch.
"""
import argparse, importlib.util, json, math, os, time
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('fixtures', os.path.join(HERE, '..', '..', 'data-prep', 'fixtures', 'make_diffusion_fixtures.py'))
fixtures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fixtures)

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).reshape(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).reshape(1, 3, 1, 1)


def blur(x, k=9, sigma=1.0):
    xs = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k)
    k1 = torch.exp(-0.5 * (xs / sigma) ** 2)
    k1 = k1 / k1.sum()
    return F.conv2d(F.pad(x, [k // 2] * 4, mode='reflect'), (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, k, k), groups=x.shape[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', default='8,64')
    ap.add_argument('--steps', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--modes', default='none,sag,x0,x0+sag,full,full+sag')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    _, unet, vae = fixtures.tiny_sd_modules(699)
    for p in list(unet.parameters()) + list(vae.parameters()):
        p.requires_grad_(False)
    attn1 = unet.mid_block.attentions[0].transformer_blocks[0].attn1
    g = torch.Generator().manual_seed(1)
    w1, w2 = torch.randn(16, 3, 8, 8, generator=g) * 0.1, torch.randn(16, 32, generator=g) * 0.3

    def score(img):
        h = F.relu(F.conv2d(img, w1, stride=8))
        return (h.mean(dim=(2, 3)) @ w2).mean(1)

    ctx = torch.randn(1, 77, 32, generator=g)
    results = []
    for side in [int(s) for s in a.sizes.split(',')]:
        row = {'latentSide': side}
        for mode in a.modes.split(','):
            x = torch.randn(1, 4, side, side, generator=g)
            times = []
            for i in range(a.steps + 1):
                t0 = time.perf_counter()
                t, ab = 981 - 20 * i, 0.5
                sa, sb = math.sqrt(ab), math.sqrt(1 - ab)
                tt = torch.full((1,), t, dtype=torch.int64)
                with torch.no_grad():
                    eps = unet(x, tt, ctx)
                out = eps
                if 'sag' in mode:
                    with torch.no_grad():
                        A = attn1.probs
                        received = A.mean(1).sum(1)
                        gs = int(math.isqrt(received.shape[1]))
                        m = F.interpolate((received > 1.0).float().reshape(1, 1, gs, gs), (side, side))
                        x0 = (x - sb * eps) / sa
                        deg = sa * (blur(x0) * m + x0 * (1 - m)) + sb * eps
                        out = out + 0.75 * (eps - unet(deg, tt, ctx))
                if mode.startswith('x0') or mode.startswith('full'):
                    xg = x.clone().requires_grad_()
                    e = unet(xg, tt, ctx) if mode.startswith('full') else eps
                    sample = (xg - sb * e) / sa * sb + xg * (1 - sb)
                    img = ((vae(sample / 0.18215) * 0.5 + 0.5).clamp(0, 1))
                    img = (F.interpolate(img, size=224, mode='bilinear', antialias=img.shape[-1] > 224) - MEAN) / STD
                    gr = torch.autograd.grad(-100.0 * score(img).sum(), xg)[0]
                    out = out + sb * gr
                x = (x - sb * out.detach()) / sa * 0.9 + out.detach() * 0.1  # a step's arithmetic (cheap)
                times.append(time.perf_counter() - t0)
            row[f'secondsPerStep_{mode}'] = round(sum(times[1:]) / len(times[1:]), 4)
        results.append(row)
    print(json.dumps({'torch': torch.__version__, 'threads': a.threads, 'results': results}))


if __name__ == '__main__':
    main()
