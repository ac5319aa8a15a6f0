/** lib/synthetic: the synthetic world (cortex, stimuli, responses, subjects in the Algonauts and NSD layouts), its localiser and categorised stimuli, the one reader of a subject's ground truth, and the checks that a fit recovers it. */
export * from './ico.js';
export * from './cortex.js';
export * from './stimuli.js';
export * from './responses.js';
export * from './report.js';
export * from './subject.js';
export * from './ground-truth.js';
export * from './nsd.js';
export * from './categorised.js';
export * from './localiser.js';
export * from './recovery.js';
export { SUBJECT_MARKER, readSubjectMarker, type SubjectSettings } from './subject-folder.js';
export * from './world.js';
export * from './world-v3.js';
export * from './soc.js';
export * from './noise.js';
