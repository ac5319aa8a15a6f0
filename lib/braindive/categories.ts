/** BrainDiVE's five evaluation categories and the labelled image sets its classifier trains on. */

/** The paper's five evaluation categories, in label order. */
export const EVAL_CATEGORIES = ['faces', 'bodies', 'places', 'words', 'food'] as const;
/** One of the five evaluation categories. */
export type EvalCategory = (typeof EVAL_CATEGORIES)[number];

/** A labelled set of categorised images: pixels [N, size, size, 3] (uint8, HWC) and labels [N] (index into EVAL_CATEGORIES). */
export interface CategorisedSet {
  size: number;
  count: number;
  pixels: Uint8Array;
  labels: Int32Array;
}
