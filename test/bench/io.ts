/**
 * Benchmark: read a ~1 GB float32 `.npy` ([13068, 20544] by default) in blocks of rows with
 * `openNpy(...).readRows`, next to numpy's `np.load(path, mmap_mode='r')` + `np.array(m[a:b])`
 * on the same file, in the same run. Each reader makes one untimed pass first, so both are timed
 * with the file in the page cache (warm). `npm run bench -- io [--rows N] [--cols N] [--block N] [--path P]`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { openNpy, readNpyHeader, npyHeaderBytes, withAtomicFile } from 'brainnet/io';

function argValue(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

/** Writes a [rows, cols] float32 C-order .npy block by block (never the whole array in memory). */
async function makeBig(file: string, rows: number, cols: number): Promise<void> {
  await withAtomicFile(file, async (tmp) => {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      const hdr = npyHeaderBytes('float32', [rows, cols]);
      await fh.write(hdr, 0, hdr.length, 0);
      let pos = hdr.length;
      const blockRows = 512;
      const buf = new Float32Array(blockRows * cols);
      for (let r0 = 0; r0 < rows; r0 += blockRows) {
        const n = Math.min(blockRows, rows - r0);
        for (let r = 0; r < n; r++) {
          const base = (r0 + r) * 0.001;
          for (let c = 0; c < cols; c++) buf[r * cols + c] = base + c;
        }
        const bytes = new Uint8Array(buf.buffer, 0, n * cols * 4);
        let done = 0;
        while (done < bytes.length) done += (await fh.write(bytes, done, bytes.length - done, pos + done)).bytesWritten;
        pos += bytes.length;
      }
    } finally {
      await fh.close();
    }
  });
}

const PY = String.raw`
import sys, json, time, resource
import numpy as np
path, block = sys.argv[1], int(sys.argv[2])
m = np.load(path, mmap_mode='r')
n = m.shape[0]
def one_pass():
    s = 0.0
    for a in range(0, n, block):
        x = np.array(m[a:a + block])
        s += float(x[0, 0]) + float(x[-1, -1])
    return s
one_pass()  # warm the page cache
t = time.perf_counter()
check = one_pass()
dt = time.perf_counter() - t
print(json.dumps({'seconds': dt, 'check': check, 'maxRssKiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  'numpy': np.__version__}))
`;

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const rows = Number(argValue(args, 'rows', '13068'));
  const cols = Number(argValue(args, 'cols', '20544'));
  const block = Number(argValue(args, 'block', '256'));
  const file = path.resolve(argValue(args, 'path', path.join(__dirname, '..', '..', 'data', 'bench', 'big.npy')));

  // 1. make the file if it is missing or of another shape
  let created = false;
  const ok = fs.existsSync(file) && await readNpyHeader(file).then(
    (h) => h.dtype === 'float32' && !h.fortranOrder && h.shape.join() === `${rows},${cols}`, () => false);
  if (!ok) {
    const t = performance.now();
    await makeBig(file, rows, cols);
    created = true;
    process.stderr.write(`bench io: wrote ${file} in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  }
  const bytes = rows * cols * 4;
  const mb = bytes / 1e6;

  // 2. ours: one warm-up pass, then a timed pass, through one handle
  const f = await openNpy(file);
  const onePass = async (reuse: Float32Array | undefined) => {
    let s = 0;
    for (let a = 0; a < rows; a += block) {
      const x = (await f.readRows(a, Math.min(a + block, rows), reuse)).data as Float32Array;
      s += x[0]! + x[x.length - 1]!;
    }
    return s;
  };
  const timed = async (reuse: Float32Array | undefined) => {
    await onePass(reuse);
    const t0 = performance.now();
    const check = await onePass(reuse);
    return { seconds: (performance.now() - t0) / 1000, check };
  };
  let fresh: { seconds: number; check: number };
  let reused: { seconds: number; check: number };
  let freshRssKiB: number;
  try {
    fresh = await timed(undefined);
    freshRssKiB = process.resourceUsage().maxRSS;
    reused = await timed(new Float32Array(block * cols));
  } finally {
    await f.close();
  }
  const ourSeconds = fresh.seconds;
  const ourCheck = fresh.check;
  const ourRssKiB = process.resourceUsage().maxRSS;

  // 3. numpy, same file, same blocks, same warm-up
  let numpy: Record<string, unknown> = { available: false };
  const r = spawnSync('/usr/bin/python3', ['-c', PY, file, String(block)], { encoding: 'utf8' });
  if (r.status === 0) {
    const p = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; check: number; maxRssKiB: number; numpy: string };
    numpy = {
      available: true,
      version: p.numpy,
      seconds: +p.seconds.toFixed(4),
      MBps: +(mb / p.seconds).toFixed(1),
      peakRssMiB: +(p.maxRssKiB / 1024).toFixed(1),
      sameValues: Math.abs(p.check - ourCheck) <= 1e-6 * Math.abs(ourCheck),
    };
  } else {
    numpy = { available: false, error: (r.stderr || String(r.error)).slice(-500) };
  }
  return {
    benchmark: 'io: .npy row-block reads',
    file,
    created,
    shape: [rows, cols],
    dtype: 'float32',
    fileMB: +mb.toFixed(1),
    blockRows: block,
    blocks: Math.ceil(rows / block),
    pageCache: 'warm (each reader made one untimed pass over the whole file first)',
    ours: {
      method: 'openNpy(file).readRows(a, b): one positioned read per block into a fresh array',
      seconds: +ourSeconds.toFixed(4),
      MBps: +(mb / ourSeconds).toFixed(1),
      peakRssMiB: +(freshRssKiB / 1024).toFixed(1),
    },
    oursReusingBuffer: {
      method: 'openNpy(file).readRows(a, b, out): the same, into one reused Float32Array',
      seconds: +reused.seconds.toFixed(4),
      MBps: +(mb / reused.seconds).toFixed(1),
      peakRssMiB: +(ourRssKiB / 1024).toFixed(1),
      sameValues: reused.check === fresh.check,
    },
    numpy: { method: "np.array(np.load(file, mmap_mode='r')[a:b])", ...numpy },
    ratio: numpy.available ? +(ourSeconds / (numpy.seconds as number)).toFixed(3) : null,
    ratioReusingBuffer: numpy.available ? +(reused.seconds / (numpy.seconds as number)).toFixed(3) : null,
    ratioMeaning: 'our time / numpy time (lower is better)',
    loadAverage1m: +os.loadavg()[0]!.toFixed(2),
    note: 'A fresh array per block costs V8 garbage collections of large external buffers and page faults; pass `out` to readRows when streaming.',
  };
}
