/** Test helper: the notebook that the 3-D viewer's browser tests run, and what they share. */
import * as path from 'node:path';
import { REPO } from '../notebook/kernel-env';

/** Chromium flags: software WebGL (SwiftShader) and no DNS (nothing may leave the machine). */
export const SWIFTSHADER = ['--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--host-resolver-rules=MAP * ~NOTFOUND'];
/** The view's element, as page JavaScript. */
export const VIEW = "document.querySelector('.brainnet-brain3d')";

/** The test notebook: a tiny subject, a ground-truth fit (no training), and one 3-D view with three overlays. */
export function notebookJson(subjectDir: string): string {
  const cell = (source: string, tags: string[] = []) => ({ cell_type: 'code', metadata: tags.length ? { tags } : {}, source, outputs: [], execution_count: null });
  return JSON.stringify({
    nbformat: 4, nbformat_minor: 4,
    metadata: { kernelspec: { name: 'brainnet-ts', display_name: 'TypeScript (brainnet)', language: 'typescript' } },
    cells: [
      cell(`const subjectDir = ${JSON.stringify(subjectDir)};`, ['parameters']),
      cell(`import { display, loadAlgonautsSubject, subjectSurfaces, paperLayerSelector, paperR2, paperClusters, paperBrain3d } from 'brainnet';
import { groundTruthFit } from ${JSON.stringify(path.join(REPO, 'test', 'example', 'fake-fit'))};
const g = await groundTruthFit(subjectDir);
const subject = await loadAlgonautsSubject(subjectDir);
const figs = [await paperLayerSelector(g.fit, g.layout, { rois: g.rois, width: 500 }), await paperR2(g.fit, g.layout, { rois: g.rois, width: 500 }), await paperClusters(g.fit, g.layout, { rois: g.rois, width: 500 })];`),
      cell(`display.brain3d(paperBrain3d(figs, await subjectSurfaces(subject), { rois: g.rois, thresholdBy: { name: 'R²', values: g.fit.r2 }, title: 'Layer selector in 3-D' }));`),
      cell(`display.text('rois: ' + JSON.stringify(g.rois));`),
    ],
  });
}

