/** noise-ceiling: NSD noise ceiling (%) from ncsnr, single trial and for the averaged repeats of the given sessions. */
import * as path from 'node:path';
import { openNsdSubject } from 'brainnet';
import { withFolderLock, writeNifti } from 'brainnet/io';
import { nsdNoiseCeiling, nsdRepeatCounts, parseSessionList } from 'brainnet/data';
import { parseArgs, runMain } from './args';

const USAGE = `usage: tsx data-prep/nsd/noise-ceiling.ts --root NSD_ROOT --out DIR [--subject N] [--sessions LIST]

Writes nc_single.nii.gz and nc_avg.nii.gz (percent, float32): NC = 100 ncsnr^2 / (ncsnr^2 + (A/3 + B/2 + C)/(A+B+C)),
A, B, C = images shown 3, 2, 1 times in the sessions (single trial: A = B = 0).`;

runMain('noise-ceiling', async () => {
  const a = parseArgs('noise-ceiling', USAGE, process.argv.slice(2));
  if (!a.root || !a.out) { console.error(`noise-ceiling: --root and --out are required\n\n${USAGE}`); process.exit(2); }
  const subj = await openNsdSubject(a.root, { subject: a.subject ? Number(a.subject) : 1 });
  const sessions = a.sessions ? parseSessionList(a.sessions) : subj.sessions;
  const nc = await subj.ncsnr();
  const counts = nsdRepeatCounts(subj.design, sessions);
  const shape = nc.data.shape;
  await withFolderLock(a.out, { command: 'noise-ceiling' }, async () => {
    await writeNifti(path.join(a.out!, 'nc_single.nii.gz'), { dtype: 'float32', shape, data: nsdNoiseCeiling(nc.data.data as Float32Array) }, { affine: nc.affine });
    await writeNifti(path.join(a.out!, 'nc_avg.nii.gz'), { dtype: 'float32', shape, data: nsdNoiseCeiling(nc.data.data as Float32Array, counts) }, { affine: nc.affine });
  });
  console.log(JSON.stringify({ sessions, repeatCounts: counts }));
});
