/**
 * A fitted encoder made from a synthetic subject's ground truth (no training): layer weights peaked at each vertex's
 * intended depth, scale from its intended scale, space from its pRF, R² high inside ROIs, clusters by ROI, a ridge
 * baseline that picks the intended depth. The paper figures drawn from it must show the truth.
 */
import { loadAlgonautsSubject, subjectFlatLayout, subjectRoiLabels } from 'brainnet';
import { groundTruth, makeAlgonautsSubject } from 'brainnet/synthetic';
import type { EncoderFitLike, FlatLayout } from 'brainnet/viz';

export const L = 8;
export const DEPTH_LAYER: Record<string, number> = { early: 1, mid: 4, late: 7 };

/** Makes (or reuses) a tiny subject in `dir` and returns its layout, ROI names, truth and a ground-truth fit. */
export async function groundTruthFit(dir: string): Promise<{ layout: FlatLayout; rois: string[]; truthRoi: string[]; depth: string[]; fit: EncoderFitLike }> {
  if (!groundTruth(dir)) await makeAlgonautsSubject({ size: 'tiny', seed: 3, out: dir, train: 12, test: 4, world: 'v2' }); // figures only: the fast world
  const subject = await loadAlgonautsSubject(dir);
  const layout = await subjectFlatLayout(subject);
  const rois = await subjectRoiLabels(subject);
  const { roi: truthRoi, depth, scale: scaleT, prfX: px, prfY: py } = groundTruth(subject)!;
  const N = truthRoi.length;
  const layer = new Float32Array(N * L), space = new Float32Array(N * 2), scale = new Float32Array(N), r2 = new Float32Array(N);
  const clusters = new Float32Array(N), bestLayer = new Int32Array(N), ridgeR2 = new Float32Array(N);
  const groups = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const c = DEPTH_LAYER[depth[i]!] ?? 4;
    let s = 0;
    for (let l = 0; l < L; l++) s += (layer[i * L + l] = Math.exp(-((l - c) ** 2) / (depth[i] === 'none' ? 20 : 1.2)));
    for (let l = 0; l < L; l++) layer[i * L + l]! /= s;
    space[2 * i] = Math.max(-1, Math.min(1, Number.isNaN(px[i]!) ? 0 : px[i]!)); // no pRF: the centre
    space[2 * i + 1] = Math.max(-1, Math.min(1, Number.isNaN(py[i]!) ? 0 : py[i]!));
    scale[i] = scaleT[i] === 'global' ? 0.85 : scaleT[i] === 'local' ? 0.15 : 0.5;
    const inRoi = !!truthRoi[i] && truthRoi[i] !== 'none' && truthRoi[i] !== 'Unknown';
    r2[i] = inRoi ? 0.3 + 0.2 * Math.sin(i) ** 2 : 0.02;
    ridgeR2[i] = r2[i]! * 0.7;
    bestLayer[i] = c;
    const g = truthRoi[i] ?? '';
    if (!groups.has(g)) groups.set(g, groups.size % 20);
    clusters[i] = groups.get(g)!;
  }
  const history = Array.from({ length: 20 }, (_, k) => ({ step: 10 * k, epoch: Math.floor(k / 5), loss: 0.5 * Math.exp(-k / 6) + 0.1, ...(k % 5 === 4 ? { valR2: 0.3 * (1 - Math.exp(-k / 8)) } : {}) }));
  const fit: EncoderFitLike = {
    selectors: { layer: { shape: [N, L], data: layer }, space: { shape: [N, 2], data: space }, scale },
    r2, clusters, history, ridge: { bestLayer, r2: ridgeR2 },
    layers: Array.from({ length: L }, (_, l) => `block${l + 1}`),
    topChannelImage: async (idx: number) => subject.trainImage(idx),
  };
  return { layout, rois, truthRoi, depth, fit };
}
