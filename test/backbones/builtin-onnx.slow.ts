/**
 * The built-in InceptionV3 at its native 299^2 through the ONNX engine against tfjs-layers, every tapped layer
 * (the fast suite checks it at 107^2, and MobileNetV2 at 224^2).
 * Run: npm run build && npx mocha --timeout 900000 test/backbones/builtin-onnx.slow.ts
 */
import { initBackend } from 'brainnet';
import { compareEngines } from './engines';

describe('backbones: built-in ONNX engine at full size (slow)', function () {
  this.timeout(900000);
  it('InceptionV3 at 299^2, 4 images: every tapped layer within 1e-4 of tfjs-layers', async () => {
    await initBackend({ log: null });
    const d = await compareEngines('inceptionv3', undefined, 4, 1e-4);
    console.log(`      largest difference per layer: ${Object.entries(d).map(([l, v]) => `${l} ${v.toExponential(1)}`).join(', ')}`);
  });
});
