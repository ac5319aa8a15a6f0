/** Diffusion schedulers as small pure step functions (diffusers' shape): the shared pieces (common.ts), one file per scheduler, and {@link makeScheduler}. */
import { SCHEDULER_KINDS, SD21_SCHEDULER_CONFIG, type Scheduler, type SchedulerConfig, type SchedulerKind } from './common.js';
import { ddimScheduler } from './ddim.js';
import { dpmpp2mScheduler } from './dpmpp2m.js';
import { eulerScheduler } from './euler.js';

// The step bookkeeping (noiseTables, initialState, checkStep, advance, addNoiseVP) stays inside this folder.
export {
  SCHEDULER_KINDS, SD21_SCHEDULER_CONFIG, schedulerConfigFromJson, makeBetas, alphasCumprod, spacedTimesteps, NoiseGenerator, modelX0AndEps, disposeSchedulerState,
  type BetaSchedule, type TimestepSpacing, type PredictionType, type SchedulerKind, type SchedulerConfig, type SchedulerState, type StepResult, type StepOptions, type Scheduler,
} from './common.js';

/** Options for {@link makeScheduler}: a kind plus config overrides; eta for DDIM. */
export interface MakeSchedulerOptions extends Partial<SchedulerConfig> {
  /** DDIM eta (default 0, deterministic). */
  eta?: number;
}

/** Makes a scheduler of the given kind; config defaults are SD-2.1-base's. */
export function makeScheduler(kind: SchedulerKind, opts: MakeSchedulerOptions = {}): Scheduler {
  const { eta = 0, ...rest } = opts;
  const config: SchedulerConfig = { ...SD21_SCHEDULER_CONFIG, ...rest };
  if (!SCHEDULER_KINDS.includes(kind)) throw new Error(`unknown scheduler "${String(kind)}"; expected ${SCHEDULER_KINDS.slice(0, -1).join(', ')} or ${SCHEDULER_KINDS.at(-1)}`);
  if (!Number.isFinite(eta) || eta < 0) throw new Error(`DDIM eta must be a finite number >= 0, got ${eta}`);
  if (kind === 'ddim') return ddimScheduler(config, eta);
  if (kind === 'dpmpp2m') return dpmpp2mScheduler(config);
  return eulerScheduler(config);
}
