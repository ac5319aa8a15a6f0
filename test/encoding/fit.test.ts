/** fitEncoder end to end on a tiny synthetic subject (the fast world v2: this tests the API, shapes and resume, not recovery) with a tiny real (random-weight) tfjs conv backbone. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { fitEncoder, loadAlgonautsSubject } from 'brainnet';
import type { AlgonautsSubject } from 'brainnet/data';
import { groundTruth, makeAlgonautsSubject } from 'brainnet/synthetic';
import type { Backbone } from 'brainnet/backbones';
import { tinyBackbone } from '../backbones/tiny-backbone';
import { collectGridFeatures, readCheckpointHeader, summariseByRoi } from 'brainnet/encoding';

describe('fitEncoder', function () {
  let dir: string;
  let subject: AlgonautsSubject;
  let backbone: Backbone;
  before(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-fit-'));
    await makeAlgonautsSubject({ size: 'tiny', seed: 5, out: path.join(dir, 'subj'), train: 24, test: 2, world: 'v2' });
    subject = await loadAlgonautsSubject(path.join(dir, 'subj'));
    backbone = tinyBackbone('tiny-conv-test');
  });
  after(async () => {
    backbone?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fits, returns plain arrays of the documented shapes, and resumes from its checkpoint', async () => {
    const epochsSeen: number[] = [];
    const lines: string[] = [];
    const truth = groundTruth(subject)!;
    const common = { subject, backbone, cacheDir: path.join(dir, 'cache'), epochs: 2, batchSize: 8, seed: 1, valFraction: 0.25, checkpointDir: path.join(dir, 'ckpt'), progress: false, log: (s: string) => lines.push(s) };
    const fit = await fitEncoder({ ...common, noiseCeiling: truth.noiseCeiling, onEpoch: (r) => epochsSeen.push(r.epoch) });
    const N = subject.vertexCount.lh + subject.vertexCount.rh;
    const L = 3;
    assert.deepEqual(fit.layers, ['c1', 'c2', 'c3']);
    assert.equal(fit.nLh + fit.nRh, N);
    assert.equal(fit.selectors.layer.length, N * L);
    assert.equal(fit.selectors.space.length, N * 2);
    assert.equal(fit.selectors.scale.length, N);
    assert.equal(fit.r2.length, N);
    assert.equal(fit.pearson.length, N);
    assert.ok(fit.score && fit.score.length === N, 'the synthetic subject knows its noise ceiling');
    assert.deepEqual(fit.noiseCeiling, truth.noiseCeiling);
    assert.ok(fit.score.every((s) => Number.isNaN(s) || (s >= 0 && s <= 100)));
    assert.equal(fit.vertexWeights.length, N * 128);
    assert.equal(fit.clusters.length, N);
    assert.equal(new Set(fit.clusters).size, 20);
    assert.ok(fit.ridge && fit.ridge.bestLayer.length === N && fit.ridge.r2ByLayer.length === L * N);
    assert.ok(fit.ridge.bestLayer.every((l) => l >= 0 && l < L));
    // 24 images, 6 validation -> 18 training -> 3 steps per epoch, 2 epochs
    assert.deepEqual([fit.split.train.length, fit.split.val.length], [18, 6]);
    assert.deepEqual(epochsSeen, [0, 1]);
    assert.equal(fit.history.length, 6);
    assert.ok(fit.history.every((h) => Number.isFinite(h.loss)));
    assert.equal(fit.history.filter((h) => h.valR2 !== undefined).length, 2);
    assert.ok(lines.some((l) => /validation mean R²/.test(l)), lines.join('\n'));
    // selectors moved off their zero-initialised start (uniform layers, centre, scale 0.5)
    assert.ok(fit.selectors.space.some((v) => Math.abs(v) > 1e-4));
    // ROI summary over the subject's ROIs
    const rs = summariseByRoi(fit.r2, fit.roiMasks);
    const v1 = rs.find((r) => r.roi === 'V1v');
    assert.ok(v1 && v1.n > 0 && Number.isFinite(v1.mean));
    assert.deepEqual(Array.from(fit.roiMask('V1v')), Array.from(fit.roiMasks['V1v']!));
    assert.throws(() => summariseByRoi(new Float32Array(3), fit.roiMasks), /has \d+ entries for 3 values/);
    // top-channel image of an ROI
    const img = await fit.topChannelImage(0, 'V1v');
    assert.equal(img.data.length, img.width * img.height * 3);
    // (whether a fit recovers the truth is asserted, with thresholds and a shuffled-image null, in test/data/recovery.test.ts)
    const params = fit.model.namedParams().map(([, v]) => Float32Array.from(v.dataSync() as Float32Array));
    await fit.dispose();

    // checkpoint after the last epoch; a second call with the same settings resumes it and trains nothing
    const hdr = await readCheckpointHeader(path.join(dir, 'ckpt', 'encoder.safetensors'));
    assert.deepEqual([hdr.step, hdr.epoch, hdr.nVertices], [6, 2, N]);
    const again = await fitEncoder({ ...common, ridge: false });
    assert.ok(lines.some((l) => /resuming from .* at step 6/.test(l)));
    assert.equal(again.history.length, 6, 'history comes back from the checkpoint');
    assert.equal(again.ridge, undefined);
    assert.equal(again.score, undefined, 'no noise ceiling given, no score');
    again.model.namedParams().forEach(([name, v], i) => assert.deepEqual(Float32Array.from(v.dataSync() as Float32Array), params[i], name));
    assert.deepEqual(again.r2, fit.r2);
    await again.dispose();
  });

  it('stops when the validation R² stops rising, keeps the best epoch, and a rerun resumes to the same result', async () => {
    const lines: string[] = [];
    const common = {
      subject, backbone, cacheDir: path.join(dir, 'cache'), maxEpochs: 12, patience: 2, batchSize: 8, seed: 2, valFraction: 0.25, optimizer: { lr: 3e-2 },
      checkpointDir: path.join(dir, 'ckpt-es'), progress: false, log: (s: string) => lines.push(s), ridge: false as const,
    };
    const fit = await fitEncoder(common);
    const t = fit.training;
    const val = fit.history.filter((h) => h.valR2 !== undefined).map((h) => h.valR2!);
    assert.equal(t.stoppedEarly, true, `validation mean R² per epoch: ${val.map((v) => v.toFixed(4)).join(', ')}`);
    assert.equal(val.length, t.epochs);
    assert.ok(t.epochs < 12);
    // the best epoch is the last one that beat every earlier one by more than 1e-4, and patience ran out after it
    let best = 0;
    val.forEach((v, e) => { if (v > val[best]! + 1e-4) best = e; });
    assert.equal(t.bestEpoch, best);
    assert.equal(t.bestValR2, val[best]);
    assert.equal(t.epochs - 1 - best, 2);
    assert.ok(lines.some((l) => /converged/.test(l)), lines.join('\n'));
    // the model holds the best epoch's weights: its validation R² is that epoch's
    const mean = (a: Float32Array) => { let s = 0, n = 0; for (const x of a) if (Number.isFinite(x)) { s += x; n++; } return s / n; };
    assert.ok(Math.abs(mean(fit.r2) - val[best]!) < 1e-6, `${mean(fit.r2)} vs ${val[best]}`);
    const params = fit.model.namedParams().map(([, v]) => Float32Array.from(v.dataSync() as Float32Array));
    await fit.dispose();
    assert.ok(fs.existsSync(path.join(dir, 'ckpt-es', 'encoder-best.safetensors')));
    // a rerun finds patience spent: no more steps, the best weights again
    const again = await fitEncoder(common);
    assert.equal(again.history.length, fit.history.length);
    assert.equal(again.training.stoppedEarly, true);
    assert.equal(again.training.bestEpoch, best);
    again.model.namedParams().forEach(([name, v], i) => assert.deepEqual(Float32Array.from(v.dataSync() as Float32Array), params[i], name));
    assert.deepEqual(again.r2, fit.r2);
    await again.dispose();
  });

  it('refuses a checkpoint made for another vertex selection, naming both counts', async () => {
    const fewer = await loadAlgonautsSubject(path.join(dir, 'subj'), { nsdgeneral: { lh: path.join(dir, 'lh.mask.npy'), rh: path.join(dir, 'rh.mask.npy') } }).catch(() => null);
    assert.equal(fewer, null); // no such mask files: the loader says so (the real check is below)
    const { writeNpy } = await import('brainnet/io');
    for (const h of ['lh', 'rh'] as const) {
      const n = subject.vertexCount[h];
      const m = new Float32Array(n).fill(1);
      m[0] = 0;
      await writeNpy(path.join(dir, `${h}.mask.npy`), { dtype: 'float32', shape: [n], data: m });
    }
    const sub2 = await loadAlgonautsSubject(path.join(dir, 'subj'), { nsdgeneral: { lh: path.join(dir, 'lh.mask.npy'), rh: path.join(dir, 'rh.mask.npy') } });
    const N = subject.vertexCount.lh + subject.vertexCount.rh;
    await assert.rejects(
      fitEncoder({ subject: sub2, backbone, cacheDir: path.join(dir, 'cache'), epochs: 2, seed: 1, valFraction: 0.25, checkpointDir: path.join(dir, 'ckpt'), progress: false, log: null, ridge: false }),
      (e: Error) => e.message.includes(`saved for ${N} vertices`) && e.message.includes(`has ${N - 2} vertices`),
    );
  });

  it('collectGridFeatures average-pools local tokens to k x k, channel-major', async () => {
    // one image, 2 channels on a 4x4 grid: channel c holds value 100c + 10 row + col
    const local = Float32Array.from({ length: 32 }, (_, i) => 100 * Math.floor(i / 16) + 10 * Math.floor((i % 16) / 4) + (i % 4));
    const cache = { getBatch: async (idx: readonly number[]) => ({ local: [tf.tensor4d(local, [idx.length, 2, 4, 4])], global: [tf.tensor2d([0, 0], [1, 2])] }) };
    const [f] = await collectGridFeatures(cache, [0], 2);
    assert.deepEqual(f!.shape, [1, 8]);
    assert.deepEqual(Array.from(f!.data), [5.5, 7.5, 25.5, 27.5, 105.5, 107.5, 125.5, 127.5]);
  });
});
