/** lib/sweep: a notebook over a grid of parameters (`runSweep`, `npm run sweep`), on this machine or as a SLURM job array, and its collected results (`loadSweep`). */
export {
  SweepError, typedValue, valueText, parseGridArgs, parseParamArgs, gridFromDocument, readGridFile, mergeGrids, expandGrid, canonicalJson,
  pointKey, notebookParameterNames, checkParameterNames,
  type ParamValue, type ProductGrid, type Grid,
} from './grid.js';
export {
  readSweepSpec, readPointSpec, readStatus, pointState, pointDir, pointsDir, slurmDir, sweepFile,
  type SweepPoint, type SweepSpec, type PointSpec, type PointState, type PointError, type PointStatus, type PointRecords,
} from './store.js';
export { loadSweep, writeResults, recordRows, toCsv, csvField, type PointResult, type LoadedSweep } from './collect.js';
export { defaultJobs, runLocal, type ExecutorContext } from './local.js';
export {
  runSlurm, sbatchScript, arraySpec, parseArrayList, shellQuote, submitScript, queuedTasks, finalStates, slurmCommand, DEFAULT_TEMPLATE,
  type SlurmOptions, type RunSlurmOptions, type QueuedTask, type FinalState, type FinalSource, type Submission, type CommandResult,
} from './slurm.js';
export { runSweep, planSweep, formatPlan, pointScriptPath, type SweepOptions, type SweepPlan, type SweepSummary } from './sweep.js';
export { runPoint } from './point.js';
