/** Test helper: decodes a PNG with node-canvas and reads RGBA pixels at (x, y). */
import { createCanvas, loadImage } from 'canvas';

/** The PNG's size and a reader of its pixel [r, g, b, a] at (x, y) (rounded to the nearest pixel). */
export async function pixels(png: Uint8Array): Promise<{ width: number; height: number; at(x: number, y: number): [number, number, number, number] }> {
  const img = await loadImage(Buffer.from(png));
  const c = createCanvas(img.width, img.height);
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, img.width, img.height).data;
  return { width: img.width, height: img.height, at: (x: number, y: number) => { const q = 4 * (Math.round(y) * img.width + Math.round(x)); return [d[q]!, d[q + 1]!, d[q + 2]!, d[q + 3]!] as [number, number, number, number]; } };
}
