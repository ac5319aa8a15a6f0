/** crop-images: crops NSD images by their cropBox and resizes them (default 256x256, bicubic) into an HDF5 brick. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openNsdSubject } from 'brainnet';
import { readImage, readNpy, withFileLock } from 'brainnet/io';
import { cropImagesToHdf5, readNsdStimInfo, nsdPaths, type CropItem } from 'brainnet/data';
import { parseArgs, runMain } from './args';

const USAGE = `usage: tsx data-prep/nsd/crop-images.ts --root NSD_ROOT --out FILE.h5 [--coco DIR] [--ids FILE.npy] [--size 256]

  --root DIR   NSD release root (nsd_stim_info_merged.csv; the nsd_stimuli.hdf5 brick when --coco is not given)
  --coco DIR   COCO images (<cocoId as 12 digits>.jpg|png, in DIR or DIR/<cocoSplit>/): each is cropped
               by its cropBox (top, bottom, left, right fractions) and resized. Without --coco the images
               come from the NSD brick, which NSD already cropped, so they are only resized.
  --ids FILE   .npy of 1-based NSD ids to write (e.g. zscore's images.npy); default: the subject's images
               shown in the brick (synthetic) or all 73000
  --size N     output side (default 256); bicubic`;

runMain('crop-images', async () => {
  const a = parseArgs('crop-images', USAGE, process.argv.slice(2));
  if (!a.root || !a.out) { console.error(`crop-images: --root and --out are required\n\n${USAGE}`); process.exit(2); }
  const stim = await readNsdStimInfo(path.join(a.root, nsdPaths(1).stiminfo));
  let ids: number[];
  if (a.ids) ids = Array.from((await readNpy(a.ids)).data as Int32Array);
  else ids = stim.map((r) => r.nsdId + 1);
  const byId = new Map(stim.map((r) => [r.nsdId + 1, r]));
  const subj = a.coco ? undefined : await openNsdSubject(a.root);
  const items: CropItem[] = ids.map((id) => {
    const row = byId.get(id);
    if (!row) throw new Error(`crop-images: no row for NSD id ${id} in the stimulus info`);
    const load = async () => {
      if (!a.coco) { const b = await subj!.images([id]); return { width: b.shape[2]!, height: b.shape[1]!, data: b.data as Uint8Array }; }
      const name = String(row.cocoId).padStart(12, '0');
      for (const f of [path.join(a.coco, `${name}.jpg`), path.join(a.coco, row.cocoSplit, `${name}.jpg`), path.join(a.coco, `${name}.png`)]) if (fs.existsSync(f)) return readImage(f);
      throw new Error(`crop-images: no COCO image ${name}.jpg for NSD id ${id} under ${a.coco}`);
    };
    return { nsdId: id - 1, cocoId: row.cocoId, cropBox: a.coco ? row.cropBox : [0, 0, 0, 0], load };
  });
  const r = await withFileLock(a.out, { command: 'crop-images' }, () => cropImagesToHdf5(items, a.out!, { size: a.size ? Number(a.size) : 256, onProgress: (d, t) => { if (d % 500 === 0 || d === t) console.log(`  ${d}/${t}`); } }));
  console.log(JSON.stringify(r));
});
