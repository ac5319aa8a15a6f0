/** The Algonauts 2023 ROI files, their label tables, and the fsaverage facts the loaders check against. */

/** A hemisphere. */
export type Hemi = 'lh' | 'rh';

/** Vertices of one fsaverage hemisphere (ico7). */
export const FSAVERAGE_N = 163842;

/** The Algonauts 2023 ROI files and their label dictionaries (index 0 is 'Unknown'). */
export const ROI_FILES: Record<string, string[]> = {
  'prf-visualrois': ['Unknown', 'V1v', 'V1d', 'V2v', 'V2d', 'V3v', 'V3d', 'hV4'],
  'floc-bodies': ['Unknown', 'EBA', 'FBA-1', 'FBA-2', 'mTL-bodies'],
  'floc-faces': ['Unknown', 'OFA', 'FFA-1', 'FFA-2', 'mTL-faces', 'aTL-faces'],
  'floc-places': ['Unknown', 'OPA', 'PPA', 'RSC'],
  'floc-words': ['Unknown', 'OWFA', 'VWFA-1', 'VWFA-2', 'mfs-words', 'mTL-words'],
  streams: ['Unknown', 'early', 'midventral', 'midlateral', 'midparietal', 'ventral', 'lateral', 'parietal'],
};

/** The Algonauts 2023 ROI label tables (index 0 = 'Unknown'), used when no mapping JSON is present. */
export const ALGONAUTS_ROI_LABELS: Record<string, string[]> = ROI_FILES;
