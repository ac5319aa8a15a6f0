/** rank-hcp: ranks HCP_MMP1 regions 1-180 by mean ncsnr per subject and averages the ranks across subjects. */
import { rankHcp } from 'brainnet/data';
import { withFolderLock } from 'brainnet/io';
import { parseArgs, runMain } from './args';

const USAGE = `usage: tsx data-prep/nsd/rank-hcp.ts --root NSD_ROOT --out DIR [--subjects 1,2,...] [--ctab FILE]

  --root DIR       NSD release root (ncsnr.nii.gz and roi/HCP_MMP1.nii.gz per subject)
  --out DIR        hcp_order.npy (int32 labels, best first), hcp_rank.json, hcp_rank.tsv (with names)
  --subjects LIST  1-based subjects (default: every subject with ncsnr under root)
  --ctab FILE      label table 'index name r g b a' (default: label/HCP_MMP1.mgz.ctab when present)`;

runMain('rank-hcp', async () => {
  const a = parseArgs('rank-hcp', USAGE, process.argv.slice(2));
  if (!a.root || !a.out) { console.error(`rank-hcp: --root and --out are required\n\n${USAGE}`); process.exit(2); }
  const r = await withFolderLock(a.out, { command: 'rank-hcp' }, () => rankHcp({ root: a.root!, out: a.out!, subjects: a.subjects?.split(',').map(Number), ctab: a.ctab }));
  console.log(`subjects ${r.subjects.join(', ')}; top 10 regions:`);
  for (const row of r.rows.slice(0, 10)) console.log(`  ${String(row.region).padStart(3)} ${row.name.padEnd(10)} mean rank ${row.meanRank.toFixed(2)}`);
  console.log(`wrote ${r.files.join(', ')}`);
});
