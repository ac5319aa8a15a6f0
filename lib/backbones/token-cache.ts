/**
 * Token cache: a backbone's tokens for a fixed list of images, computed once. Local tokens are resized
 * to `localSize` x `localSize` (8 by default, as the encoding model uses them) when cached.
 *
 * - In RAM when the whole cache fits the byte budget; otherwise (or always, with `dir`) on disk as
 *   one `.npy` per layer and scale (`L03_mixed2.local.npy` `[N, C, g, g]`, `.global.npy` `[N, C]`,
 *   float16 or float32) plus `manifest.json`.
 * - Keyed by backbone name, input resolution, layers, local size, dtype and each image's identity
 *   (a hash of its file bytes, or path + size + mtime; never its pixels' sum). A later run with the
 *   same key reads the files and never calls the backbone; a cache built for another backbone or
 *   resolution is an error (or, with `onMismatch: 'rebuild'`, rebuilt with a message).
 * - The size is printed before it is built: `N images x L layers x C x g x g x bytes = X GB`.
 * - On disk, the folder is locked while it is built, and a killed build resumes from its last finished batch.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../io/atomic.js';
import { withFolderLock } from '../io/lock.js';
import { readImage, imagesToTensor, RgbImage } from '../io/image.js';
import { float16ToNumber, numberToFloat16 } from '../io/ndarray.js';
import { npyHeaderBytes, openNpy, NpyFile } from '../io/npy.js';
import { progress, ProgressOptions } from '../notebook/progress.js';
import { Backbone, BackboneError, disposeTokens, getCheckedTokens } from './contract.js';

/** One image to cache: `key` is its identity (content hash or path+size+mtime), `load` decodes it. */
export interface ImageSource {
  /** Identity of the image for cache keys (see {@link fileImageSource}). */
  key: string;
  /** Human-readable name for messages (e.g. the file name). */
  id?: string;
  load(): Promise<RgbImage>;
}

/** How {@link fileImageSource} identifies a file: a SHA-256 of its bytes, or its path, size and mtime (faster). */
export type ImageIdentity = 'content' | 'stat';

/** An ImageSource for an image file, keyed by a SHA-256 of its bytes ('content', default) or path + size + mtime ('stat'). */
export async function fileImageSource(file: string, identity: ImageIdentity = 'content'): Promise<ImageSource> {
  let key: string;
  if (identity === 'stat') {
    const st = await fs.promises.stat(file);
    key = `stat:${path.resolve(file)}:${st.size}:${st.mtimeMs}`;
  } else {
    key = `sha256:${createHash('sha256').update(await fs.promises.readFile(file)).digest('hex')}`;
  }
  return { key, id: path.basename(file), load: () => readImage(file) };
}

/** ImageSources for many files (see {@link fileImageSource}). */
export async function fileImageSources(files: string[], identity: ImageIdentity = 'content'): Promise<ImageSource[]> {
  const out: ImageSource[] = [];
  for (const f of files) out.push(await fileImageSource(f, identity));
  return out;
}

/** An ImageSource for an in-memory image, keyed by a SHA-256 of its size and pixel bytes. */
export function memoryImageSource(img: RgbImage, id?: string): ImageSource {
  const h = createHash('sha256').update(`${img.width}x${img.height}:`).update(img.data).digest('hex');
  return { key: `sha256-pixels:${h}`, id, load: async () => img };
}

/** Options of {@link buildTokenCache}. */
export interface TokenCacheOptions {
  /** Folder for the on-disk cache (created); without it the cache lives in RAM only. */
  dir?: string;
  /** Storage type (default 'float16' on disk, 'float32' in RAM). */
  dtype?: 'float16' | 'float32';
  /** Largest cache held in RAM, in bytes (default 2 GiB). Larger caches need `dir` and are read per batch. */
  ramBudgetBytes?: number;
  /** Images per backbone call (default 8). */
  batchSize?: number;
  /** Side g of the cached local grid (default 8): local tokens are resized bilinearly to g x g. */
  localSize?: number;
  /** What to do when `dir` holds a cache with another key: 'error' (default) or 'rebuild'. */
  onMismatch?: 'error' | 'rebuild';
  /** Where the size line and messages go (default console.log); null for silence. */
  log?: ((line: string) => void) | null;
  /** Progress bar options, or false for none. */
  progress?: ProgressOptions | false;
  /** When another process is building the same `dir`: wait for it (default true) or fail at once (false), naming it. */
  wait?: boolean;
}

/** Tokens for a batch, one entry per layer in the cache's layer order: local `[B, C, g, g]`, global `[B, C]`. */
export interface CachedTokenBatch {
  local: tf.Tensor4D[];
  global: tf.Tensor2D[];
}

/** A built token cache. */
export interface TokenCache {
  backbone: string;
  inputSize: [number, number];
  layers: string[];
  channels: number[];
  /** Number of images. */
  n: number;
  localSize: number;
  dtype: 'float16' | 'float32';
  /** Total bytes of the cached tokens. */
  bytes: number;
  /** true when the tokens are held in RAM, false when read from disk per batch. */
  inRam: boolean;
  /** true when this call read an existing cache instead of running the backbone. */
  reused: boolean;
  dir?: string;
  /** Tokens of images `indices` (rows of the image list): local `[B, C, g, g]` and global `[B, C]` per layer. */
  getBatch(indices: readonly number[]): Promise<CachedTokenBatch>;
  /** Closes open files. */
  close(): Promise<void>;
}

/** Thrown when a token cache on disk does not fit the request. */
export class TokenCacheError extends Error {
  override name = 'TokenCacheError';
}

interface Manifest {
  format: 'brainnet-token-cache';
  version: 1;
  backbone: string;
  inputSize: [number, number];
  mean: number[];
  std: number[];
  layers: string[];
  channels: number[];
  localSize: number;
  dtype: 'float16' | 'float32';
  n: number;
  imageKeys: string[];
  files: { local: string; global: string }[];
}

/** Pure: bytes of a cache of `n` images with layer widths `channels`, local grid g x g, in `dtype`. */
export function tokenCacheBytes(n: number, channels: readonly number[], localSize: number, dtype: 'float16' | 'float32'): number {
  const item = dtype === 'float16' ? 2 : 4;
  return channels.reduce((s, c) => s + n * c * (localSize * localSize + 1) * item, 0);
}

/** Pure: the size line printed before a cache is built. */
export function describeTokenCacheSize(n: number, channels: readonly number[], localSize: number, dtype: 'float16' | 'float32'): string {
  const item = dtype === 'float16' ? 2 : 4;
  const cs = [...new Set(channels)];
  const cDesc = cs.length === 1 ? `${cs[0]}` : `(${channels.join('+')})/${channels.length}`;
  const gb = tokenCacheBytes(n, channels, localSize, dtype) / 1e9;
  return `token cache: ${n} images x ${channels.length} layers x ${cDesc} x (${localSize} x ${localSize} + 1) x ${item} bytes = ${gb < 0.01 ? gb.toPrecision(2) : gb.toFixed(2)} GB`;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, '_');
}

/** Raw bytes of `src` in `dtype`; float16 refuses values beyond its range (|x| > 65504) instead of storing infinities. */
function encodeRows(src: Float32Array, dtype: 'float16' | 'float32', what: string): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (v > 65504 || v < -65504) {
      throw new TokenCacheError(`token cache: ${what} has a value ${v} beyond float16's range (65504); build the cache with dtype: 'float32'.`);
    }
    out[i] = numberToFloat16(v);
  }
  return new Uint8Array(out.buffer);
}

function decodeRows(bytes: Uint8Array, dtype: 'float16' | 'float32', out: Float32Array, at: number): void {
  if (dtype === 'float32') {
    out.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), at);
    return;
  }
  const w = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  for (let i = 0; i < w.length; i++) out[at + i] = float16ToNumber(w[i]!);
}

/** Why `m` cannot serve the request `want`, or null when it can. */
function mismatch(m: Manifest, want: Omit<Manifest, 'files'>): string | null {
  if (m.backbone !== want.backbone) return `it was built for backbone '${m.backbone}', not '${want.backbone}'`;
  if (m.inputSize[0] !== want.inputSize[0] || m.inputSize[1] !== want.inputSize[1]) {
    return `it was built at resolution ${m.inputSize.join('x')}, not ${want.inputSize.join('x')}`;
  }
  if (m.layers.join('\n') !== want.layers.join('\n')) return `it holds layers ${m.layers.join(', ')}, not ${want.layers.join(', ')}`;
  if (m.channels.join() !== want.channels.join()) return `its layer widths ${m.channels.join(', ')} differ from the backbone's ${want.channels.join(', ')}`;
  if (m.localSize !== want.localSize) return `its local grid is ${m.localSize}x${m.localSize}, not ${want.localSize}x${want.localSize}`;
  if (m.dtype !== want.dtype) return `it stores ${m.dtype}, not ${want.dtype}`;
  if (m.mean.join() !== want.mean.join() || m.std.join() !== want.std.join()) return 'it was built with another normalisation (mean/std)';
  if (m.n !== want.n || m.imageKeys.some((k, i) => k !== want.imageKeys[i])) {
    const i = m.imageKeys.findIndex((k, j) => k !== want.imageKeys[j]);
    return m.n !== want.n ? `it holds ${m.n} images, not ${want.n}` : `image ${i} differs (cached ${m.imageKeys[i]}, now ${want.imageKeys[i]})`;
  }
  return null;
}

/**
 * Builds (or reuses) the token cache of `backbone` over `images`: local tokens resized to g x g and
 * global tokens per layer, in RAM or in `dir`. Prints the size first and shows progress.
 *
 * With `dir` the folder is locked while the cache is checked or built (lib/io/lock.ts): a second process
 * building the same folder waits for the first (then reuses its cache) unless `wait: false`. A build
 * writes each layer's rows to `<file>.partial` and records after every batch how many images are done
 * (`build-state.json`), so a killed build resumes from the last finished batch instead of starting over.
 */
export async function buildTokenCache(backbone: Backbone, images: readonly ImageSource[], opts: TokenCacheOptions = {}): Promise<TokenCache> {
  const log = opts.log === undefined ? (s: string) => console.log(s) : opts.log;
  const g = opts.localSize ?? 8;
  const dtype = opts.dtype ?? (opts.dir ? 'float16' : 'float32');
  const budget = opts.ramBudgetBytes ?? 2 * 1024 ** 3;
  const n = images.length;
  const C = backbone.channels;
  if (n === 0) throw new TokenCacheError('buildTokenCache: no images given.');
  const keys = images.map((im, i) => {
    if (!im || typeof im.key !== 'string' || !im.key) throw new TokenCacheError(`buildTokenCache: image ${i} has no identity key; use fileImageSource(file) or memoryImageSource(img).`);
    return im.key;
  });
  const bytes = tokenCacheBytes(n, C, g, dtype);
  const want: Omit<Manifest, 'files'> = {
    format: 'brainnet-token-cache', version: 1, backbone: backbone.name, inputSize: [...backbone.inputSize],
    mean: [...backbone.mean], std: [...backbone.std], layers: [...backbone.layers], channels: [...C], localSize: g, dtype, n, imageKeys: keys,
  };
  const files = backbone.layers.map((l, i) => {
    const stem = `L${String(i).padStart(2, '0')}_${safeName(l)}`;
    return { local: `${stem}.local.npy`, global: `${stem}.global.npy` };
  });
  const run: BuildRun = { backbone, images, want, files, batchSize: Math.max(1, opts.batchSize ?? 8), log, progress: opts.progress };

  if (!opts.dir) {
    if (bytes > budget) {
      throw new TokenCacheError(
        `${describeTokenCacheSize(n, C, g, dtype)} exceeds the RAM budget of ${(budget / 1e9).toFixed(2)} GB. Pass dir: '<folder>' to keep it on disk, raise ramBudgetBytes, or use dtype 'float16'.`,
      );
    }
    log?.(describeTokenCacheSize(n, C, g, dtype));
    const { local, global } = await buildInRam(run);
    return ramCache(want, local, global, bytes, undefined, false);
  }
  const dir = opts.dir;
  const lockLog = log === null ? null : (s: string) => log(s);
  const made = await withFolderLock(dir, { command: `token cache (${backbone.name}, ${n} images)`, wait: opts.wait ?? true, log: lockLog }, async () => {
    // 1. reuse a cache on disk when its key matches
    const reuse = await checkExisting(dir, want, opts.onMismatch ?? 'error', log);
    if (reuse) {
      log?.(`token cache: reusing ${dir} (${backbone.name}, ${n} images, ${(bytes / 1e9).toFixed(3)} GB)`);
      return { reused: true };
    }
    // 2. announce the size, then build (resuming a killed build) and commit
    log?.(describeTokenCacheSize(n, C, g, dtype));
    await buildOnDisk(run, dir);
    return { reused: false };
  });
  return openCache(want, files, dir, bytes, budget, made.reused);
}

/** What one build needs. */
interface BuildRun {
  backbone: Backbone;
  images: readonly ImageSource[];
  want: Omit<Manifest, 'files'>;
  files: Manifest['files'];
  batchSize: number;
  log: ((line: string) => void) | null;
  progress?: ProgressOptions | false;
}

/** Where an interrupted build stands: `done` images (from 0) are in the `.partial` files. */
interface BuildState {
  format: 'brainnet-token-cache-build';
  /** SHA-256 of the request (backbone, sizes, layers, dtype, image keys). */
  key: string;
  done: number;
}

const BUILD_STATE = 'build-state.json';
const PARTIAL = '.partial';

/**
 * Whether `dir` holds a cache that fits `want` (true: reuse it). A cache for another request is an error, or with
 * 'rebuild' is removed (files, partial files and build state) with a message.
 */
async function checkExisting(dir: string, want: Omit<Manifest, 'files'>, onMismatch: 'error' | 'rebuild', log: ((s: string) => void) | null): Promise<boolean> {
  const mf = path.join(dir, 'manifest.json');
  if (!fs.existsSync(mf)) return false;
  let m: Manifest;
  try {
    m = JSON.parse(await fs.promises.readFile(mf, 'utf8')) as Manifest;
  } catch (e) {
    throw new TokenCacheError(`${mf}: not a readable token cache manifest (${(e as Error).message}). Delete ${dir} to rebuild it.`);
  }
  const why = mismatch(m, want);
  if (!why) {
    const present = m.files.every((f) => fs.existsSync(path.join(dir, f.local)) && fs.existsSync(path.join(dir, f.global)));
    if (present) return true;
  }
  const msg = `token cache ${dir} does not fit this request: ${why ?? 'some of its files are missing'}.`;
  if (onMismatch === 'error') throw new TokenCacheError(`${msg} Use another dir, delete it, or pass onMismatch: 'rebuild'.`);
  log?.(`${msg} Rebuilding it.`);
  await fs.promises.rm(mf, { force: true });
  for (const f of Array.isArray(m.files) ? m.files : []) {
    for (const name of [f.local, f.global]) {
      if (typeof name === 'string' && !name.includes('/')) for (const p of [name, name + PARTIAL]) await fs.promises.rm(path.join(dir, p), { force: true });
    }
  }
  await fs.promises.rm(path.join(dir, BUILD_STATE), { force: true });
  return false;
}

/** Runs the backbone over the images from `from`, batch by batch, and hands each batch's rows (encoded in the cache's dtype) per layer to `put`. */
async function runBatches(r: BuildRun, from: number, put: (s: number, e: number, layer: number, local: Uint8Array, global: Uint8Array) => Promise<void> | void, afterBatch?: (e: number) => Promise<void>): Promise<void> {
  const { backbone, want } = r;
  const n = want.n, g = want.localSize;
  const bar = r.progress === false ? null : progress({ total: n, label: `tokens ${backbone.name}`, ...(r.progress ?? {}) });
  if (from > 0) bar?.update(from, 'resumed');
  // images are decoded and resized (sharp, off the main thread) one batch ahead, while the backbone runs
  const prepare = (s: number) => {
    const p = Promise.all(r.images.slice(s, Math.min(n, s + r.batchSize)).map((im) => im.load()))
      .then((imgs) => imagesToTensor(imgs, { size: backbone.inputSize, mean: backbone.mean, std: backbone.std }));
    p.catch(() => undefined); // awaited below; this only keeps an abandoned prefetch from going unhandled
    return p;
  };
  let next = prepare(from);
  for (let s = from; s < n; s += r.batchSize) {
    const e = Math.min(n, s + r.batchSize);
    const x = await next;
    if (e < n) next = prepare(e);
    const xt = tf.tensor4d(x.data, x.shape as [number, number, number, number]);
    const tokens = await getCheckedTokens(backbone, xt).finally(() => xt.dispose());
    try {
      for (let l = 0; l < want.layers.length; l++) {
        const name = want.layers[l]!;
        const loc = tf.tidy(() => {
          const t = tokens.local[name]!;
          if (t.shape[2] === g && t.shape[3] === g) return t.clone();
          const nhwc = tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
          return tf.transpose(tf.image.resizeBilinear(nhwc, [g, g], false, true), [0, 3, 1, 2]);
        });
        const lb = encodeRows((await loc.data()) as Float32Array, want.dtype, `layer ${name} (local tokens)`);
        loc.dispose();
        const gb = encodeRows((await tokens.global[name]!.data()) as Float32Array, want.dtype, `layer ${name} (global tokens)`);
        await put(s, e, l, lb, gb);
      }
    } finally {
      disposeTokens(tokens);
    }
    await afterBatch?.(e);
    bar?.tick(e - s);
  }
  bar?.done();
}

/** Builds a cache in RAM: raw rows per layer, local and global. */
async function buildInRam(r: BuildRun): Promise<{ local: Uint8Array[]; global: Uint8Array[] }> {
  const { n, localSize: g, dtype, channels: C } = r.want;
  const item = dtype === 'float16' ? 2 : 4;
  const local = C.map((c) => new Uint8Array(n * c * g * g * item));
  const global = C.map((c) => new Uint8Array(n * c * item));
  await runBatches(r, 0, (s, _e, l, lb, gb) => {
    local[l]!.set(lb, s * C[l]! * g * g * item);
    global[l]!.set(gb, s * C[l]! * item);
  });
  return { local, global };
}

/**
 * Builds a cache in `dir`: rows go to `<file>.partial` (npy header first), `build-state.json` says after each batch
 * how many images are done, and a rerun after a kill resumes there. At the end the partial files are renamed and
 * the manifest is written last.
 */
async function buildOnDisk(r: BuildRun, dir: string): Promise<void> {
  const { n, localSize: g, dtype, channels: C } = r.want;
  const item = dtype === 'float16' ? 2 : 4;
  const key = createHash('sha256').update(JSON.stringify(r.want)).digest('hex');
  const stateFile = path.join(dir, BUILD_STATE);
  const targets = r.files.flatMap((f, l) => [
    { final: path.join(dir, f.local), shape: [n, C[l]!, g, g], row: C[l]! * g * g * item },
    { final: path.join(dir, f.global), shape: [n, C[l]!], row: C[l]! * item },
  ]);
  // 1. what a killed build finished: its state, when it is for this request and its files hold the rows it claims
  let done = 0;
  const prev = readBuildState(stateFile);
  if (prev && prev.key === key) {
    for (const t of targets) if (!fs.existsSync(t.final + PARTIAL) && fs.existsSync(t.final)) fs.renameSync(t.final, t.final + PARTIAL); // killed while committing
    const whole = targets.every((t) => {
      const st = fs.statSync(t.final + PARTIAL, { throwIfNoEntry: false });
      return st && st.size >= npyHeaderBytes(dtype, t.shape).length + prev.done * t.row;
    });
    if (whole) done = Math.min(prev.done, n);
  } else if (prev) {
    r.log?.(`token cache: ${dir} holds a partial build for another request; starting over.`);
  }
  if (done > 0) r.log?.(`token cache: resuming the build in ${dir} at image ${done} of ${n} (an earlier run stopped there).`);
  // 2. open the partial files (fresh ones get the npy header)
  const handles: { fh: fs.promises.FileHandle; t: (typeof targets)[number]; offset: number }[] = [];
  try {
    for (const t of targets) {
      const header = npyHeaderBytes(dtype, t.shape);
      const fh = await fs.promises.open(t.final + PARTIAL, done > 0 ? 'r+' : 'w');
      handles.push({ fh, t, offset: header.length });
      if (done === 0) await fh.write(header, 0, header.length, 0);
    }
    const saveState = (d: number) => writeFileAtomic(stateFile, JSON.stringify({ format: 'brainnet-token-cache-build', key, done: d } satisfies BuildState) + '\n');
    if (done === 0) await saveState(0);
    // 3. the backbone, batch by batch; the state is written after the batch's rows
    await runBatches(r, done, async (s, _e, l, lb, gb) => {
      const hl = handles[2 * l]!, hg = handles[2 * l + 1]!;
      await hl.fh.write(lb, 0, lb.length, hl.offset + s * hl.t.row);
      await hg.fh.write(gb, 0, gb.length, hg.offset + s * hg.t.row);
    }, saveState);
  } finally {
    for (const h of handles) await h.fh.close().catch(() => undefined);
  }
  // 4. commit: rename the partial files, write the manifest last, drop the build state
  for (const t of targets) await fs.promises.rename(t.final + PARTIAL, t.final);
  await writeFileAtomic(path.join(dir, 'manifest.json'), JSON.stringify({ ...r.want, files: r.files } satisfies Manifest, null, 1));
  await fs.promises.rm(stateFile, { force: true });
}

function readBuildState(file: string): BuildState | null {
  try {
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as BuildState;
    return s.format === 'brainnet-token-cache-build' && typeof s.key === 'string' && Number.isInteger(s.done) && s.done >= 0 ? s : null;
  } catch {
    return null;
  }
}

type Key = Omit<Manifest, 'files'>;

function base(k: Key, bytes: number, inRam: boolean, reused: boolean, dir?: string) {
  return { backbone: k.backbone, inputSize: k.inputSize, layers: k.layers, channels: k.channels, n: k.n, localSize: k.localSize, dtype: k.dtype, bytes, inRam, reused, dir };
}

function checkIndices(k: Key, indices: readonly number[]): void {
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= k.n) throw new RangeError(`token cache: image index ${i} out of range [0, ${k.n})`);
  }
}

/** A cache held in RAM as raw rows per layer. */
function ramCache(k: Key, local: Uint8Array[], global: Uint8Array[], bytes: number, dir: string | undefined, reused: boolean): TokenCache {
  const g = k.localSize;
  const item = k.dtype === 'float16' ? 2 : 4;
  return {
    ...base(k, bytes, true, reused, dir),
    async getBatch(indices) {
      checkIndices(k, indices);
      const B = indices.length;
      const out: CachedTokenBatch = { local: [], global: [] };
      k.channels.forEach((c, l) => {
        const lr = c * g * g * item;
        const gr = c * item;
        const lo = new Float32Array(B * c * g * g);
        const go = new Float32Array(B * c);
        indices.forEach((i, b) => {
          decodeRows(local[l]!.subarray(i * lr, (i + 1) * lr), k.dtype, lo, b * c * g * g);
          decodeRows(global[l]!.subarray(i * gr, (i + 1) * gr), k.dtype, go, b * c);
        });
        out.local.push(tf.tensor4d(lo, [B, c, g, g]));
        out.global.push(tf.tensor2d(go, [B, c]));
      });
      return out;
    },
    async close() {},
  };
}

/** A cache on disk: loaded into RAM when it fits the budget, else read per batch. */
async function openCache(k: Key, files: Manifest['files'], dir: string, bytes: number, budget: number, reused: boolean): Promise<TokenCache> {
  const opened: NpyFile[] = [];
  const open = async (f: string, shape: number[]): Promise<NpyFile> => {
    const file = path.join(dir, f);
    const h = await openNpy(file);
    opened.push(h);
    if (h.header.dtype !== k.dtype || h.header.shape.join() !== shape.join()) {
      throw new TokenCacheError(`${file}: expected ${k.dtype} [${shape.join(', ')}], found ${h.header.dtype} [${h.header.shape.join(', ')}]. Delete ${dir} to rebuild the cache.`);
    }
    return h;
  };
  const g = k.localSize;
  try {
    const lf: NpyFile[] = [];
    const gf: NpyFile[] = [];
    for (let l = 0; l < k.layers.length; l++) {
      lf.push(await open(files[l]!.local, [k.n, k.channels[l]!, g, g]));
      gf.push(await open(files[l]!.global, [k.n, k.channels[l]!]));
    }
    const asBytes = (a: { data: ArrayBufferView }) => new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    if (bytes <= budget) {
      const local: Uint8Array[] = [];
      const global: Uint8Array[] = [];
      for (let l = 0; l < k.layers.length; l++) {
        local.push(asBytes(await lf[l]!.readRows(0, k.n)));
        global.push(asBytes(await gf[l]!.readRows(0, k.n)));
      }
      await Promise.all(opened.map((h) => h.close()));
      return ramCache(k, local, global, bytes, dir, reused);
    }
    return {
      ...base(k, bytes, false, reused, dir),
      async getBatch(indices) {
        checkIndices(k, indices);
        const B = indices.length;
        const out: CachedTokenBatch = { local: [], global: [] };
        for (let l = 0; l < k.layers.length; l++) {
          const c = k.channels[l]!;
          const lo = new Float32Array(B * c * g * g);
          const go = new Float32Array(B * c);
          for (let b = 0; b < B; b++) {
            const i = indices[b]!;
            decodeRows(asBytes(await lf[l]!.readRows(i, i + 1)), k.dtype, lo, b * c * g * g);
            decodeRows(asBytes(await gf[l]!.readRows(i, i + 1)), k.dtype, go, b * c);
          }
          out.local.push(tf.tensor4d(lo, [B, c, g, g]));
          out.global.push(tf.tensor2d(go, [B, c]));
        }
        return out;
      },
      async close() {
        await Promise.all(opened.map((h) => h.close()));
      },
    };
  } catch (e) {
    await Promise.all(opened.map((h) => h.close().catch(() => undefined)));
    throw e;
  }
}

