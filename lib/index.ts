/**
 * brainnet: the library behind the brainnet-ts notebooks (ARCHITECTURE.md is the map).
 *
 * The root holds the short list a notebook reaches for; everything else lives in a namespace,
 * one per stage of the data flow:
 *
 *   import { display, loadAlgonautsSubject, loadBuiltinBackbone, fitEncoder, paperFigures } from 'brainnet';
 *   import { encoding, synthetic } from 'brainnet';          // encoding.ridgeCV, synthetic.groundTruth
 *   import { ridgeCV } from 'brainnet/encoding';               // the same module, for tools and tests
 */

// Notebook cells: displays, progress bars, recorded results, the compute backend and tfjs itself.
export { display, newDisplay, clearOutput } from './notebook/display.js';
export { progress, withProgress } from './notebook/progress.js';
export { record } from './notebook/record.js';
export { initBackend, tf } from './compute/backend.js';

// Data in, model out: subjects, backbones, the encoding model.
export { loadAlgonautsSubject } from './data/algonauts.js';
export { openNsdSubject } from './data/nsd.js';
export { loadBuiltinBackbone } from './backbones/builtin.js';
export { loadOnnxBackbone, loadOnnxBackboneFromSidecar } from './backbones/onnx-backbone.js';
export { fitEncoder } from './encoding/fit.js';

// The papers' figures.
export { imageGrid, trainingCurves } from './viz/figures.js';
export { subjectFlatLayout } from './viz/layout.js';
export { subjectSurfaces } from './viz/brain3d.js';
export {
  paperFigures, paperPlotly, paperBrain3d, writePaperFigures, paperLayerSelector, paperSpaceSelector, paperScaleSelector, paperR2, paperClusters,
  paperPerLayer, paperTopChannels, paperTrainingCurves, paperModelVsRidge, paperCompareBackbones, paperRoiScores,
  roiSummaryRows, subjectRoiLabels, markdownTable,
} from './viz/paper.js';

// BrainDiVE: one pipeline per setting.
export { loadSyntheticPipeline } from './braindive/synthetic-pipeline.js';
export { loadSdPipeline } from './braindive/sd-pipeline.js';

// Everything else, by stage of the data flow.
export * as core from './core/index.js';
export * as io from './io/index.js';
export * as compute from './compute/index.js';
export * as data from './data/index.js';
export * as synthetic from './synthetic/index.js';
export * as backbones from './backbones/index.js';
export * as encoding from './encoding/index.js';
export * as diffusion from './diffusion/index.js';
export * as braindive from './braindive/index.js';
export * as viz from './viz/index.js';
export * as notebook from './notebook/index.js';
export * as runner from './runner/index.js';
export * as sweep from './sweep/index.js';
