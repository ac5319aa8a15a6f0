/** reorder: attaches NSD/COCO ids to the z-scored rows, keeps the cortical voxels and writes one HDF5 file. */
import { reorderNsd, NSD_CORTEX_ROIS } from 'brainnet/data';
import { withFileLock } from 'brainnet/io';
import { parseArgs, runMain } from './args';

const USAGE = `usage: tsx data-prep/nsd/reorder.ts --root NSD_ROOT --zscored DIR --out FILE.h5 [--subject N] [--rois a,b,c]

  --root DIR      NSD release root (stimulus info CSV, ROI volumes)
  --zscored DIR   the output folder of zscore.ts
  --out FILE      HDF5 output: betas [images, voxels] float32 (rows by ascending nsdId), nsdId (0-based),
                  cocoId, counts, voxels (flat indices), mask [Z, Y, X]
  --rois LIST     ROI volumes whose union >= 0 is kept (default ${NSD_CORTEX_ROIS.join(',')})
  --subject N     1-based subject (default 1)`;

runMain('reorder', async () => {
  const a = parseArgs('reorder', USAGE, process.argv.slice(2));
  if (!a.root || !a.zscored || !a.out) { console.error(`reorder: --root, --zscored and --out are required\n\n${USAGE}`); process.exit(2); }
  const r = await withFileLock(a.out, { command: 'reorder' }, () => reorderNsd({ root: a.root!, zscored: a.zscored!, out: a.out!, subject: a.subject ? Number(a.subject) : undefined, rois: a.rois?.split(',') }));
  console.log(JSON.stringify(r));
});
