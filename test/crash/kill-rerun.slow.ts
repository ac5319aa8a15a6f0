/**
 * Crash recovery of the long jobs, heavier than kill-rerun.test.ts: each long job is killed at 6 seeded points of
 * its working time (from 5 % to 95 %), and every rerun must equal an uninterrupted run byte for byte and leave
 * nothing behind. `npm run test:slow` (about 15 minutes on 2 busy cores).
 */
import { describeKillRerun } from './kill-suite';

describe('crash recovery (slow): kill each long job at 6 seeded points', function () {
  describeKillRerun(6, 2024);
});
