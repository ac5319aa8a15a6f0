/**
 * Crash recovery of the long jobs, heavier than kill-rerun.test.ts: each long job (make-subject in both layouts,
 * zscore, the token cache, training with checkpoints, run-regions) is killed at 6 seeded points of its working
 * time (from 5 % to 95 %), and every rerun must equal an uninterrupted run byte for byte and leave nothing behind.
 * `npm run test:slow`.
 */
import { describeKillRerun } from './kill-suite';

describe('crash recovery (slow): kill each long job at 6 seeded points', function () {
  describeKillRerun(6, 2024);
});
