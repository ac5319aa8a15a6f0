/**
 * The science check as one experiment (issue 4), for data-prep/science-check.ts and the slow test:
 * (1) make the synthetic workshop subject when it is missing or from an older world, (2) fit the
 * factorized encoder and the ridge baseline with a built-in backbone, (3) compare the fit with the
 * subject's ground truth (`scienceChecks`, pure, in lib/synthetic/recovery.ts) and write the report.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fitEncoder, loadAlgonautsSubject, loadBuiltinBackbone } from 'brainnet';
import { writeFileAtomic } from 'brainnet/io';
import {
  formatScienceTable, groundTruth, makeAlgonautsSubject, scienceChecks, syntheticWorldVersion, SYNTHETIC_WORLD_VERSION,
  type ScienceReport,
} from 'brainnet/synthetic';

/** Options of {@link runScienceCheck}. */
export interface ScienceRunOptions {
  /** Subject folder; generated (size 'workshop', seed 1) when missing. */
  subjectDir: string;
  /** Built-in backbone (default 'mobilenetv2'). */
  backbone?: 'mobilenetv2' | 'inceptionv3';
  epochs?: number;
  seed?: number;
  /** Steps over which the regulariser decays (default 2000, the paper's; shorter runs may scale it down). */
  regDecaySteps?: number;
  /** Token cache folder (reused across runs). */
  cacheDir?: string;
  /** Checkpoint folder (resumes when present). */
  checkpointDir?: string;
  /** Writes report.json and table.txt here when given. */
  outDir?: string;
  ridge?: boolean | { features?: 'global' | 'pooled' | 'flat'; grid?: number; pca?: number };
  log?: ((line: string) => void) | null;
  progress?: boolean;
}

/** Fits the encoder (and ridge) on a synthetic subject with a built-in backbone and runs {@link scienceChecks}. */
export async function runScienceCheck(opts: ScienceRunOptions): Promise<{ report: ScienceReport; table: string; seconds: { total: number } }> {
  const t0 = Date.now();
  const log = opts.log === undefined ? (s: string) => console.log(s) : opts.log ?? (() => {});
  // 1. subject (generated when missing or made by an older world)
  const world = syntheticWorldVersion(opts.subjectDir);
  if (world === null || world < SYNTHETIC_WORLD_VERSION) {
    log(`science check: generating the workshop subject in ${opts.subjectDir}${world === null ? '' : ` (it was made by synthetic world version ${world}, now ${SYNTHETIC_WORLD_VERSION})`}`);
    if (world !== null && opts.checkpointDir && fs.existsSync(opts.checkpointDir)) {
      throw new Error(`science check: checkpoint ${opts.checkpointDir} was fitted to the old subject in ${opts.subjectDir}; delete it (or pass another checkpoint folder) to refit on the regenerated subject`);
    }
    await makeAlgonautsSubject({ size: 'workshop', seed: 1, out: opts.subjectDir, overwrite: world !== null });
  }
  const subject = await loadAlgonautsSubject(opts.subjectDir);
  const truth = groundTruth(subject);
  if (!truth) throw new Error(`science check: ${opts.subjectDir} has no ground_truth/vertices.json; the check needs a synthetic subject (make-subject), real data has no ground truth.`);
  // 2. fit
  const backbone = await loadBuiltinBackbone(opts.backbone ?? 'mobilenetv2');
  const fit = await fitEncoder({
    subject, backbone, cacheDir: opts.cacheDir, epochs: opts.epochs ?? 10, seed: opts.seed ?? 0, noiseCeiling: truth.noiseCeiling,
    checkpointDir: opts.checkpointDir, ridge: opts.ridge ?? true, regDecaySteps: opts.regDecaySteps, log: opts.log, progress: opts.progress,
  });
  try {
    // 3. checks
    const report = scienceChecks({ truth, selectors: fit.selectors, L: fit.layers.length, r2: fit.r2, ridge: fit.ridge });
    const table = formatScienceTable(report);
    const seconds = { total: (Date.now() - t0) / 1000 };
    if (opts.outDir) {
      fs.mkdirSync(opts.outDir, { recursive: true });
      const json = { subject: subject.dir, backbone: backbone.name, layerNames: fit.layers, ridge: opts.ridge ?? true, epochs: opts.epochs ?? 10, regDecaySteps: opts.regDecaySteps ?? 2000, seed: opts.seed ?? 0, vertices: { lh: fit.nLh, rh: fit.nRh }, seconds, history: fit.history.filter((h) => h.valR2 !== undefined), ...report };
      await writeFileAtomic(path.join(opts.outDir, 'report.json'), JSON.stringify(json, null, 1) + '\n');
      await writeFileAtomic(path.join(opts.outDir, 'table.txt'), table + '\n');
    }
    return { report, table, seconds };
  } finally {
    await fit.dispose();
    await backbone.dispose();
  }
}
