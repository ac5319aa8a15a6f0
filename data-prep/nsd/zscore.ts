/**
 * zscore: z-scores NSD betas within each session (mask voxels), averages each image's repeats and
 * writes [images x voxels] float32 plus the image order. Resumes an interrupted run.
 */
import { progress } from 'brainnet';
import { zscoreNsd, parseSessionList } from 'brainnet/data';
import { parseArgs, runMain } from './args';

const USAGE = `usage: tsx data-prep/nsd/zscore.ts --root NSD_ROOT --out DIR [options]

  --root DIR        NSD release root (holding nsddata/ and nsddata_betas/), real or synthetic
  --out DIR         output folder: betas_zscored.npy [images, voxels] float32, images.npy (1-based
                    NSD ids), images.json, voxels.npy (flat indices), zscore_state.json, partial/
  --subject N       1-based subject (default 1)
  --mask M          ROI name in the subject's roi/ folder (default nsdgeneral) or a NIfTI path; voxels > 0
  --space S         func1pt8mm (default: betas_sessionNN.nii.gz) or fsaverage (lh./rh.betas_sessionNN.hdf5;
                    --mask is then a .npy of vertex indices into lh+rh or a boolean mask; default all vertices)
  --sessions LIST   sessions to use, e.g. 1-3,5 (default: all present)
  --stop-after N    stop after N sessions (run again to resume)
  --help            this text

Betas are divided by 300, z-scored per voxel within each session (population std, NaN -> 0) and
averaged over the repeats of each image (experiment design's trial -> image order). One session
is held in memory at a time; finished sessions are kept in partial/ and not redone on a rerun.`;

runMain('zscore', async () => {
  const a = parseArgs('zscore', USAGE, process.argv.slice(2));
  if (!a.root || !a.out) { console.error(`zscore: --root and --out are required\n\n${USAGE}`); process.exit(2); }
  console.log(`zscore: ${a.root} (subject ${a.subject ?? 1}) -> ${a.out}`);
  let bar: ReturnType<typeof progress> | undefined;
  const r = await zscoreNsd({
    root: a.root, out: a.out, space: a.space as 'func1pt8mm' | 'fsaverage' | undefined, subject: a.subject ? Number(a.subject) : undefined, mask: a.mask,
    sessions: a.sessions ? parseSessionList(a.sessions) : undefined,
    stopAfterSessions: a['stop-after'] ? Number(a['stop-after']) : undefined,
    onProgress: (stage, done, total, info) => {
      if (stage === 'session') console.log(`  session ${done}/${total} (${info}) rss ${Math.round(process.memoryUsage().rss / 1048576)} MB`);
      else { bar ??= progress({ total, label: 'averaging repeats' }); bar.update(done, info); if (done === total) bar.done(); }
    },
  });
  console.log(JSON.stringify({ complete: r.complete, out: r.out, sessions: r.sessions, processed: r.processed, resumed: r.resumed, images: r.images, voxels: r.voxels,
    secondsPerSession: r.secondsPerSession.map((s) => +s.toFixed(3)),
    timings: r.timings.map((t) => ({ session: t.session, read: +t.read.toFixed(3), zscore: +t.zscore.toFixed(3), write: +t.write.toFixed(3) })), averageSeconds: r.averageSeconds && +r.averageSeconds.toFixed(3), peakRssMB: r.peakRssMB }, null, 1));
  if (!r.complete) console.log('zscore: stopped early; run the same command again to resume.');
});
