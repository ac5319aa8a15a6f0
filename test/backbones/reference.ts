/** Shared by the ONNX backbone tests: compares a backbone's tokens with PyTorch's saved by data-prep/export-backbone.py. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { tf } from 'brainnet';
import { readNpy, toFloat32 } from 'brainnet/io';
import { Backbone } from 'brainnet/backbones';

/** Runs `bb` on `<refDir>/inputs.npy` and returns the largest |onnx - torch| / (max|torch|) over all layers. */
export async function compareWithReference(bb: Backbone, refDir: string): Promise<{ maxRelErr: number; layers: number }> {
  const x = await readNpy(path.join(refDir, 'inputs.npy'));
  const xt = tf.tensor4d(toFloat32(x), x.shape as [number, number, number, number]);
  const t = await bb.getTokens(xt);
  xt.dispose();
  let maxRelErr = 0;
  for (const layer of bb.layers) {
    const ref = await readNpy(path.join(refDir, `${layer}.npy`));
    const r = toFloat32(ref);
    const [B, T, C] = ref.shape as [number, number, number];
    const local = t.local[layer]!.dataSync();
    const global = t.global[layer]!.dataSync();
    const [, , h, w] = t.local[layer]!.shape;
    assert.equal(T, 1 + h * w, `layer ${layer}: ${T} tokens vs grid ${h}x${w}`);
    let scale = 0;
    for (const v of r) scale = Math.max(scale, Math.abs(v));
    let err = 0;
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        err = Math.max(err, Math.abs(global[b * C + c]! - r[b * T * C + c]!));
        for (let p = 0; p < h * w; p++) err = Math.max(err, Math.abs(local[(b * C + c) * h * w + p]! - r[(b * T + 1 + p) * C + c]!));
      }
    }
    maxRelErr = Math.max(maxRelErr, err / scale);
  }
  for (const r of [t.local, t.global]) for (const v of Object.values(r)) v.dispose();
  return { maxRelErr, layers: bb.layers.length };
}
