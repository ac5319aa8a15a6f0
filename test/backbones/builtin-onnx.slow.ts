/**
 * The built-in InceptionV3 at its native 299^2 through the ONNX engine against tfjs-layers, every tapped layer
 * (the fast suite checks it at 107^2, and MobileNetV2 at 224^2). Writes the largest difference per layer to
 * outputs/tests/builtin-onnx-slow.json (the README quotes it).
 * Run: npm run build && npx mocha --timeout 900000 test/backbones/builtin-onnx.slow.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from 'brainnet';
import { writeFileAtomicSync } from 'brainnet/io';
import { compareEngines } from './engines';

describe('backbones: built-in ONNX engine at full size (slow)', function () {
  this.timeout(900000);
  it('InceptionV3 at 299^2, 4 images: every tapped layer within 1e-4 of tfjs-layers', async () => {
    await initBackend({ log: null });
    const d = await compareEngines('inceptionv3', undefined, 4, 1e-4);
    console.log(`      largest difference per layer: ${Object.entries(d).map(([l, v]) => `${l} ${v.toExponential(1)}`).join(', ')}`);
    const out = path.join(__dirname, '..', '..', 'outputs', 'tests', 'builtin-onnx-slow.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    writeFileAtomicSync(out, JSON.stringify({
      test: 'test/backbones/builtin-onnx.slow.ts', date: new Date().toISOString(), backbone: 'inceptionv3', input: 299, images: 4, image_seed: 7,
      tolerance: 1e-4, max_abs_diff_by_layer: d, max_abs_diff: Math.max(...Object.values(d)),
    }, null, 2));
  });
});
