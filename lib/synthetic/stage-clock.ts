/** The stage timings, peak memory and progress lines of a subject writer (`makeAlgonautsSubject`, `makeNsdSubject`). */

/** A writer's progress callback: a stage, how much of it is done, and the time since the writer started. */
export type SubjectProgress = (stage: string, done: number, total: number, elapsedMs: number) => void;

/** Times a writer's stages and samples its memory; created when the writer starts. */
export interface StageClock {
  /** Reports `done` of `total` in `stage` with the time since the start. */
  progress(stage: string, done: number, total: number): void;
  /** Ends the named stage: records its duration (ms, since the previous stage ended) and samples memory. */
  end(name: string): void;
  /** Samples memory (resident set size) for the peak. */
  sample(): void;
  /** The stage timings plus `total`, and the peak resident set size in MB. */
  finish(): { timings: Record<string, number>; peakRssMB: number };
}

/** Starts a stage clock that reports through `onProgress` (none: silent). */
export function stageClock(onProgress?: SubjectProgress): StageClock {
  const timings: Record<string, number> = {};
  let peak = process.memoryUsage().rss;
  const t0 = Date.now();
  let tStage = t0;
  const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
  return {
    progress: (stage, done, total) => onProgress?.(stage, done, total, Date.now() - t0),
    end: (name) => { sample(); timings[name] = Date.now() - tStage; tStage = Date.now(); },
    sample,
    finish: () => {
      sample();
      timings.total = Date.now() - t0;
      return { timings, peakRssMB: Math.round(peak / 2 ** 20) };
    },
  };
}
