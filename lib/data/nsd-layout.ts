/** The Natural Scenes Dataset release layout: its constants and the relative paths of its files. */

/** NSD facts: trials per session, the int16 beta scale, images per subject, subjects, 73k ids, design length. */
export const NSD = { trialsPerSession: 750, betaScale: 300, imagesPerSubject: 10000, subjects: 8, totalImages: 73000, shared: 1000, designTrials: 30000, brickSize: 425 } as const;

/** Relative paths of NSD files for subject `subj` (1-based), as in the NSD release. */
export function nsdPaths(subj = 1): Record<'expdesign' | 'stiminfo' | 'brick' | 'betas' | 'roi' | 'ncsnr' | 'label', string> {
  const s = `subj${String(subj).padStart(2, '0')}`;
  return {
    expdesign: 'nsddata/experiments/nsd/nsd_expdesign.mat',
    stiminfo: 'nsddata/experiments/nsd/nsd_stim_info_merged.csv',
    brick: 'nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5',
    betas: `nsddata_betas/ppdata/${s}/func1pt8mm/betas_fithrf_GLMdenoise_RR`,
    ncsnr: `nsddata_betas/ppdata/${s}/func1pt8mm/betas_fithrf_GLMdenoise_RR/ncsnr.nii.gz`,
    roi: `nsddata/ppdata/${s}/func1pt8mm/roi`,
    label: `nsddata/freesurfer/${s}/label`,
  };
}

/** NSD beta file name of a session (1-based): `betas_session01.nii.gz`. */
export function nsdBetaName(session: number): string {
  return `betas_session${String(session).padStart(2, '0')}.nii.gz`;
}
