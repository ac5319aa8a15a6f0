/**
 * Crash recovery of the long jobs (issue 24): make-subject, zscore, the token cache, training with checkpoints and
 * run-regions are each killed with SIGKILL at one seeded point, run again, and must then hold exactly the bytes of
 * an uninterrupted run, with no temporary file, partial file or lock left (kill-suite.ts). The slow suite
 * (kill-rerun.slow.ts) kills each at 6 points and adds make-subject's NSD layout (its 289 images cost 3 runs of
 * several seconds; its folder is locked and checked by the same code as the Algonauts layout's).
 */
import { describeKillRerun, LONG_JOBS } from './kill-suite';

describe('crash recovery: kill each long job and run it again', function () {
  describeKillRerun(1, 24, LONG_JOBS.filter((j) => j !== 'make-subject (nsd)'));
});
