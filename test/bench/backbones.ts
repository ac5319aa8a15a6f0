/**
 * `npm run bench -- backbones [--batch 4] [--reps 2]`: feature-extraction images/s of the built-in
 * backbones (tfjs, on the backend initBackend picks) and of the exported ViT-B/16 through
 * onnxruntime-node, each next to PyTorch CPU (Debian python3-torch + torchvision) running the same
 * architecture (random weights; speed does not depend on them) on the same machine and threads.
 * The ViT-B/16 ONNX file comes from data-prep/export-backbone.py (exported into data/backbones if missing).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, loadBuiltinBackbone, loadOnnxBackboneFromSidecar, tf } from 'brainnet';
import { Backbone, disposeTokens } from 'brainnet/backbones';

const ROOT = path.join(__dirname, '..', '..');
const PY = '/usr/bin/python3';

const TORCH_BENCH = `
import sys, time, json, torch, torchvision
threads, B, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
models = {
  'inceptionv3': (lambda: torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False), 299),
  'mobilenetv2': (lambda: torchvision.models.mobilenet_v2(weights=None), 224),
  'vit_b_16': (lambda: torchvision.models.vit_b_16(weights=None), 224),
}
out = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
for name, (ctor, size) in models.items():
    m = ctor().eval()
    x = torch.randn(B, 3, size, size)
    with torch.no_grad():
        m(x)
        t = time.perf_counter()
        for _ in range(reps):
            m(x)
        dt = time.perf_counter() - t
    out[name] = B * reps / dt
print(json.dumps(out))
`;

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

async function imagesPerSecond(bb: Backbone, B: number, reps: number): Promise<number> {
  const x = tf.randomUniform([B, 3, ...bb.inputSize], 0, 1, 'float32', 1) as tf.Tensor4D;
  disposeTokens(await bb.getTokens(x)); // warm-up
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    const t = await bb.getTokens(x);
    for (const v of Object.values(t.local)) await v.data();
    disposeTokens(t);
  }
  const dt = (performance.now() - t0) / 1000;
  x.dispose();
  return (B * reps) / dt;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const B = flag(args, 'batch', 4);
  const reps = flag(args, 'reps', 2);
  const threads = os.cpus().length;
  const backend = await initBackend({ log: null });
  const result: Record<string, unknown> = { batch: B, reps, threads, tfjs_backend: backend.name, loadavg_1m: os.loadavg()[0] };

  // 1. built-in backbones (tfjs)
  const tfjs: Record<string, number> = {};
  for (const which of ['mobilenetv2', 'inceptionv3'] as const) {
    const bb = await loadBuiltinBackbone(which);
    tfjs[which] = await imagesPerSecond(bb, B, reps);
    await bb.dispose();
  }
  result['tfjs_images_per_s'] = tfjs;

  // 2. exported ViT-B/16 through onnxruntime-node
  const json = path.join(ROOT, 'data', 'backbones', 'vit_b_16-random.json');
  const haveTorch = fs.existsSync(PY) && spawnSync(PY, ['-c', 'import torch, torchvision, onnx'], { encoding: 'utf8' }).status === 0;
  if (!fs.existsSync(json) && haveTorch) {
    spawnSync(PY, [path.join(ROOT, 'data-prep', 'export-backbone.py'), '--arch', 'vit_b_16', '--out', path.dirname(json)], { stdio: 'inherit' });
  }
  if (fs.existsSync(json)) {
    const vit = await loadOnnxBackboneFromSidecar(json);
    result['onnxruntime_node_images_per_s'] = { vit_b_16_all_12_blocks: await imagesPerSecond(vit, B, reps) };
    await vit.dispose();
  } else {
    result['onnxruntime_node_images_per_s'] = 'skipped: no data/backbones/vit_b_16-random.json and no python3-torch to export it';
  }

  // 3. PyTorch CPU, same architectures, same threads
  if (haveTorch) {
    const r = spawnSync(PY, ['-c', TORCH_BENCH, String(threads), String(B), String(reps)], { encoding: 'utf8' });
    if (r.status === 0) {
      const t = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number | string>;
      result['pytorch_cpu_images_per_s'] = t;
      const ratio = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? a / b : null);
      const onnx = result['onnxruntime_node_images_per_s'] as Record<string, number> | string;
      result['speed_vs_pytorch'] = {
        mobilenetv2_tfjs: ratio(tfjs['mobilenetv2'], t['mobilenetv2']),
        inceptionv3_tfjs: ratio(tfjs['inceptionv3'], t['inceptionv3']),
        vit_b_16_onnxruntime_node: typeof onnx === 'object' ? ratio(onnx['vit_b_16_all_12_blocks'], t['vit_b_16']) : null,
      };
    } else {
      result['pytorch_cpu_images_per_s'] = `failed: ${r.stderr.trim().split('\n').pop()}`;
    }
  } else {
    result['pytorch_cpu_images_per_s'] = 'skipped: /usr/bin/python3 lacks torch/torchvision (apt-get install -y python3-torch python3-torchvision)';
  }
  return result;
}
