/**
 * Gradients through frozen convolutions on the tfjs wasm backend. wasm has no DepthwiseConv2dNativeBackpropInput/Filter
 * kernels, so ensureWasmDepthwiseGradients registers tfjs's own cpu kernels for it (JavaScript loops on copies of the
 * data: correct but slow). The built-in MobileNetV2 executor avoids them: depthwiseConv2dFrozen and pointwiseConv2d
 * compute the input gradient with the fast forward kernels (XNNPACK), which halves the time of a guided step.
 */
import * as tf from '@tensorflow/tfjs';

const KERNELS = ['DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'] as const;

interface WasmLike {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: ArrayLike<number>): tf.TensorInfo;
}
interface CpuLike {
  write(values: Float32Array, shape: number[], dtype: tf.DataType): object;
  readSync(dataId: object): ArrayLike<number>;
  disposeData(dataId: object, force?: boolean): boolean;
}

let done = false;

/** Registers the missing depthwise-convolution gradient kernels on the wasm backend (idempotent; no-op when they exist). */
export function ensureWasmDepthwiseGradients(): void {
  if (done) return;
  done = true;
  const have = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
  for (const name of KERNELS) {
    if (have.has(name)) continue;
    const cpuKernel = tf.getKernel(name, 'cpu');
    if (!cpuKernel) continue;
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const wasm = backend as unknown as WasmLike;
        const cpu = tf.findBackend('cpu') as unknown as CpuLike;
        const moved: Record<string, tf.TensorInfo> = {};
        for (const [k, t] of Object.entries(inputs)) {
          const info = t as tf.TensorInfo;
          const vals = Float32Array.from(wasm.readSync(info.dataId));
          moved[k] = { dataId: cpu.write(vals, info.shape, info.dtype), shape: info.shape, dtype: info.dtype };
        }
        const out = cpuKernel.kernelFunc({ inputs: moved, backend: cpu as unknown as tf.KernelBackend, attrs }) as tf.TensorInfo;
        const vals = cpu.readSync(out.dataId);
        for (const t of [...Object.values(moved), out]) cpu.disposeData(t.dataId, true);
        return wasm.makeOutput(out.shape, out.dtype, undefined, vals);
      },
    });
  }
}

/**
 * The input gradient of a depthwise convolution, as a depthwise convolution of the (stride-dilated, padded) output
 * gradient dy [B, Ho, Wo, C] with the flipped filter k [kh, kw, C, 1] -> dx [B, H, W, C]. Runs on the backend's fast
 * forward kernel (XNNPACK on wasm) instead of tfjs's JavaScript backprop kernel.
 */
export function depthwiseBackpropInput(dy: tf.Tensor4D, k: tf.Tensor4D, xShape: [number, number, number, number], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  return tf.tidy(() => {
    const [, H, W] = xShape;
    const [kh, kw] = k.shape;
    if (k.shape[3] !== 1) throw new RangeError(`depthwiseBackpropInput: channel multiplier ${k.shape[3]} is not supported (only 1)`);
    const [sh, sw] = strides;
    const [, Ho, Wo] = dy.shape;
    // 1. insert s-1 zeros between output positions (the transpose of the stride)
    let d: tf.Tensor4D = dy;
    if (sw > 1) {
      const [b, h, w, c] = d.shape;
      d = tf.slice(tf.reshape(tf.concat([tf.expandDims(d, 3), tf.zeros([b, h, w, sw - 1, c])], 3), [b, h, w * sw, c]), [0, 0, 0, 0], [b, h, (w - 1) * sw + 1, c]) as tf.Tensor4D;
    }
    if (sh > 1) {
      const [b, h, w, c] = d.shape;
      d = tf.slice(tf.reshape(tf.concat([tf.expandDims(d, 2), tf.zeros([b, h, sh - 1, w, c])], 2), [b, h * sh, w, c]), [0, 0, 0, 0], [b, (h - 1) * sh + 1, w, c]) as tf.Tensor4D;
    }
    // 2. pad so that a valid correlation with the flipped filter gives H x W (tfjs 'same' puts the odd pad at the end)
    const before = (n: number, o: number, kk: number, s: number) => (padding === 'same' ? Math.floor(Math.max((o - 1) * s + kk - n, 0) / 2) : 0);
    const top = kh - 1 - before(H, Ho, kh, sh), left = kw - 1 - before(W, Wo, kw, sw);
    const bottom = H + kh - 1 - d.shape[1] - top, right = W + kw - 1 - d.shape[2] - left;
    if (top < 0 || left < 0 || bottom < 0 || right < 0) throw new RangeError(`depthwiseBackpropInput: padding ${padding} with a ${kh}x${kw} filter on ${H}x${W} is not supported`);
    d = tf.pad(d, [[0, 0], [top, bottom], [left, right], [0, 0]]);
    return tf.depthwiseConv2d(d, tf.reverse(k, [0, 1]) as tf.Tensor4D, 1, 'valid');
  });
}

/** A depthwise convolution x [B, H, W, C] -> [B, Ho, Wo, C] with a frozen filter, whose input gradient is {@link depthwiseBackpropInput}. */
export function depthwiseConv2dFrozen(x: tf.Tensor4D, k: tf.Tensor4D, strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xx = args[0] as tf.Tensor;
    return { value: tf.depthwiseConv2d(xx as tf.Tensor4D, k, strides, padding), gradFunc: (dy: tf.Tensor) => depthwiseBackpropInput(dy as tf.Tensor4D, k, xx.shape as [number, number, number, number], strides, padding) };
  });
  return f(x) as tf.Tensor4D;
}

/**
 * A 1x1, stride-1 convolution x [B, H, W, Cin] -> [B, H, W, Cout] with a frozen filter k [1, 1, Cin, Cout], whose input
 * gradient is the 1x1 convolution of dy with the transposed filter (the backend's fast forward kernel; wasm's
 * Conv2DBackpropInput and transposed matrix products are several times slower).
 */
export function pointwiseConv2d(x: tf.Tensor4D, k: tf.Tensor4D): tf.Tensor4D {
  if (k.shape[0] !== 1 || k.shape[1] !== 1) throw new RangeError(`pointwiseConv2d: the filter must be 1x1, got ${k.shape[0]}x${k.shape[1]}`);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.conv2d(args[0] as tf.Tensor4D, k, 1, 'valid'),
    gradFunc: (dy: tf.Tensor) => tf.tidy(() => tf.conv2d(dy as tf.Tensor4D, tf.transpose(k, [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid')),
  }));
  return f(x) as tf.Tensor4D;
}
