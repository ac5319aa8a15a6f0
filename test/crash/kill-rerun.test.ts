/**
 * Crash recovery of the long jobs (issue 24): make-subject (both layouts), zscore, the token cache, training with
 * checkpoints and run-regions are each killed with SIGKILL at one seeded point, run again, and must then hold exactly
 * the bytes of an uninterrupted run, with no temporary file, partial file or lock left (kill-suite.ts). The slow
 * suite (kill-rerun.slow.ts) kills each at more points.
 */
import { describeKillRerun } from './kill-suite';

describe('crash recovery: kill each long job and run it again', function () {
  describeKillRerun(1, 24);
});
