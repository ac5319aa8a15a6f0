/** Reads test/fixtures/encoding/parity.{json,bin} (made by data-prep/fixtures/make_encoding_fixtures.py). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FactorizedEncoder, type HeadKind } from 'brainnet/encoding';

export interface ParityFixture {
  meta: {
    N: number; B: number; D: number; H: number; grid: number; widths: number[]; sizes: number[]; step: number;
    scalars: { reg: number; loss: number; data_loss: number };
  };
  get(name: string): { data: Float32Array; shape: number[] };
}

export function loadParityFixture(): ParityFixture {
  const dir = path.join(__dirname, '..', 'fixtures', 'encoding');
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'parity.json'), 'utf8'));
  const buf = fs.readFileSync(path.join(dir, 'parity.bin'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return {
    meta,
    get(name: string) {
      const e = meta.arrays[name] as { offset: number; shape: number[] } | undefined;
      if (!e) throw new Error(`fixture has no array ${name}`);
      const size = e.shape.reduce((a, b) => a * b, 1);
      return { data: all.slice(e.offset, e.offset + size), shape: e.shape };
    },
  };
}

/** max |a - b| / max |b| (norm-relative error of one tensor). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den === 0 ? num : num / den;
}

/** The fixture's encoder with PyTorch's parameters (N vertices, the fixture's layer widths, D, H), on the given head. */
export function fixtureModel(fx: ParityFixture, head?: HeadKind): FactorizedEncoder {
  const { D, H, widths } = fx.meta;
  const model = new FactorizedEncoder(fx.get('coords').data, { layerWidths: widths, bottleneckDim: D, hiddenDim: H, seed: 1, ...(head ? { head } : {}) });
  const values: Record<string, Float32Array> = {};
  for (const [name] of model.namedParams()) values[name] = fx.get(name).data;
  model.setParams(values);
  return model;
}

/** The fixture's input tokens as tensors, per layer: local [B, C_l, g, g], global [B, C_l]. */
export function fixtureTokens(fx: ParityFixture): { local: tf.Tensor4D[]; global: tf.Tensor2D[] } {
  const { B, widths } = fx.meta;
  return {
    local: widths.map((_, l) => {
      const a = fx.get(`input.local.${l}`);
      return tf.tensor4d(a.data, a.shape as [number, number, number, number]);
    }),
    global: widths.map((_, l) => tf.tensor2d(fx.get(`input.global.${l}`).data, [B, widths[l]!])),
  };
}
