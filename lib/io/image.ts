/**
 * Images: decode (PNG, JPEG and whatever else libvips reads), resize, encode, and turn batches
 * into normalised float tensors `[B, 3, H, W]`. Decoding and resizing use sharp (prebuilt libvips).
 *
 * Decoded images are always 8-bit RGB, HWC, row-major, like PIL's `img.convert('RGB')`:
 * - alpha is dropped (not composited), so transparent pixels keep their stored colour;
 * - greyscale (and grey + alpha) is copied to R, G and B; palette images are expanded;
 * - 16-bit samples become their high byte (v >> 8);
 * - EXIF orientation is not applied (PIL and torchvision do not apply it either).
 */
import * as fs from 'node:fs';
import sharp from 'sharp';
import { FileFormatError } from './errors.js';
import { writeFileAtomic } from './atomic.js';
import { checkInputFile } from './input.js';
import { NDArray } from './ndarray.js';

/** An 8-bit RGB image: `data` is `[height, width, 3]` (HWC), row-major. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Resampling kernels of {@link resizeImage} (sharp/libvips names; down-sampling is antialiased). */
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

/** ImageNet channel mean (RGB, on 0..1 values). */
export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviation (RGB, on 0..1 values). */
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];
/** OpenAI CLIP channel mean (RGB, on 0..1 values). */
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
/** OpenAI CLIP channel standard deviation (RGB, on 0..1 values). */
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

function checkImage(img: RgbImage, what: string): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0
    || img.data.length !== img.width * img.height * 3) {
    throw new RangeError(`${what}: an RgbImage needs width*height*3 = ${img.width * img.height * 3} bytes, found ${img.data.length} (width ${img.width}, height ${img.height})`);
  }
}

function rawInput(img: RgbImage): sharp.Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

/** Decodes an image file or encoded bytes (PNG, JPEG, ...) to 8-bit RGB `[H, W, 3]`; `name` labels errors for bytes. */
export async function decodeImage(bytesOrPath: Uint8Array | string, name?: string): Promise<RgbImage> {
  const label = name ?? (typeof bytesOrPath === 'string' ? bytesOrPath : '<image bytes>');
  if (typeof bytesOrPath === 'string') checkInputFile(bytesOrPath, 'image');
  const bytes = typeof bytesOrPath === 'string' ? await fs.promises.readFile(bytesOrPath) : bytesOrPath;
  checkPngEnd(bytes, label);
  try {
    const { data, info } = await sharp(bytes, { failOn: 'warning' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new Error(`decoder gave ${info.channels} channels and ${data.length} bytes for ${info.width}x${info.height}`);
    }
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    throw new FileFormatError(label, 'a decodable image (PNG, JPEG, WebP, TIFF, GIF ...)', `an error from the decoder: ${(e as Error).message}`,
      'The file may be corrupt or truncated; re-export it as PNG or JPEG.');
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The IEND chunk that ends every PNG: length 0, type 'IEND', CRC ae 42 60 82. */
const PNG_IEND = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/** A PNG must end with its IEND chunk: libpng decodes a PNG cut after its last IDAT without a warning. */
function checkPngEnd(bytes: Uint8Array, label: string): void {
  if (bytes.length < 8 || !PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return;
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).lastIndexOf(PNG_IEND) < 0) {
    throw new FileFormatError(label, 'a PNG that ends with its IEND chunk', `${bytes.length} bytes without one (truncated)`,
      'The file was cut short; re-export or re-copy it.');
  }
}

/** Reads and decodes an image file to 8-bit RGB `[H, W, 3]`. */
export function readImage(file: string): Promise<RgbImage> {
  return decodeImage(file);
}

/** Resizes to exactly `width` x `height` (aspect ratio not kept); default kernel 'linear' (antialiased bilinear). */
export async function resizeImage(
  img: RgbImage,
  width: number,
  height: number,
  opts: { kernel?: ResizeKernel } = {},
): Promise<RgbImage> {
  checkImage(img, 'resizeImage');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`resizeImage: width and height must be positive integers, found ${width} x ${height}`);
  }
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  const { data, info } = await rawInput(img)
    .resize(width, height, { fit: 'fill', kernel: opts.kernel ?? 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`resizeImage: expected 3 channels, libvips gave ${info.channels}`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Crops the rectangle at (`left`, `top`) of size `width` x `height` (pure, no resampling). */
export function cropImage(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  checkImage(img, 'cropImage');
  if (![left, top, width, height].every(Number.isInteger) || left < 0 || top < 0 || width <= 0 || height <= 0
    || left + width > img.width || top + height > img.height) {
    throw new RangeError(`cropImage: box (${left}, ${top}, ${width}x${height}) is not inside the ${img.width}x${img.height} image`);
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(s, s + width * 3), y * width * 3);
  }
  return { width, height, data: out };
}

/** Encodes an RGB image as PNG bytes (lossless). */
export async function encodePng(img: RgbImage): Promise<Uint8Array> {
  checkImage(img, 'encodePng');
  const b = await rawInput(img).png().toBuffer();
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** Writes an RGB image as a PNG file atomically. */
export async function writePng(file: string, img: RgbImage): Promise<void> {
  await writeFileAtomic(file, await encodePng(img));
}

/** Writes an RGB image as a JPEG file atomically (quality 1..100, default 90; 4:2:0 chroma subsampling). */
export async function writeJpeg(file: string, img: RgbImage, quality = 90): Promise<void> {
  checkImage(img, 'writeJpeg');
  if (!(quality >= 1 && quality <= 100)) throw new RangeError(`writeJpeg: quality must be in 1..100, found ${quality}`);
  const b = await rawInput(img).jpeg({ quality: Math.round(quality) }).toBuffer();
  await writeFileAtomic(file, new Uint8Array(b.buffer, b.byteOffset, b.length));
}

/** Options of {@link imagesToTensor}. */
export interface TensorOptions {
  /** Output `[H, W]`; images of another size are resized to it (aspect ratio not kept). */
  size: [number, number];
  /** Per-channel mean (RGB, on 0..1 values), e.g. {@link IMAGENET_MEAN}. */
  mean: [number, number, number];
  /** Per-channel standard deviation (RGB, on 0..1 values), e.g. {@link IMAGENET_STD}. */
  std: [number, number, number];
  /** Resampling kernel for resizing (default 'linear'). */
  kernel?: ResizeKernel;
}

/** Pure: writes one `[H, W, 3]` uint8 image into `out` at batch `b` of `[B, 3, H, W]` as (x/255 - mean)/std. */
export function normalizeInto(out: Float32Array, b: number, img: RgbImage, mean: readonly number[], std: readonly number[]): void {
  const plane = img.width * img.height;
  const lut = [0, 1, 2].map((c) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = (v / 255 - mean[c]!) / std[c]!;
    return t;
  });
  const base = b * 3 * plane;
  const d = img.data;
  for (let c = 0; c < 3; c++) {
    const t = lut[c]!;
    const o = base + c * plane;
    for (let i = 0; i < plane; i++) out[o + i] = t[d[i * 3 + c]!]!;
  }
}

/** Resizes and normalises images into one float32 tensor `[B, 3, H, W]` of (x/255 - mean)/std. */
export async function imagesToTensor(images: RgbImage[], opts: TensorOptions): Promise<NDArray<Float32Array>> {
  const [H, W] = opts.size;
  if (opts.mean.length !== 3 || opts.std.length !== 3 || opts.std.some((s) => !(s > 0))) {
    throw new RangeError(`imagesToTensor: mean and std need 3 values each, std > 0; found mean ${opts.mean}, std ${opts.std}`);
  }
  const out = new Float32Array(images.length * 3 * H * W);
  for (let b = 0; b < images.length; b++) {
    const img = images[b]!;
    const r = img.width === W && img.height === H ? img : await resizeImage(img, W, H, { kernel: opts.kernel });
    normalizeInto(out, b, r, opts.mean, opts.std);
  }
  return { dtype: 'float32', shape: [images.length, 3, H, W], data: out };
}
