/**
 * The one place that asks which tfjs backend is running and what it can do: its name, whether it
 * runs on a GPU, whether it can read tensors back synchronously, its WebGPU device (for error
 * scopes), and how an allocation failure looks on it. The rest of lib asks here instead of calling
 * `tf.getBackend()` / `tf.backend()` (test/architecture.test.ts checks it).
 */
import * as tf from '@tensorflow/tfjs';

/** tfjs's name of the active backend ('wasm', 'cpu', 'webgpu', 'tensorflow', ...). */
export function activeBackend(): string {
  return tf.getBackend();
}

/** True when @tensorflow/tfjs-node-gpu has been loaded in this process. */
export function nodeGpuLoaded(): boolean {
  return typeof require !== 'undefined' && Object.keys(require.cache).some((k) => k.includes(`tfjs-node-gpu`));
}

/** True when `backend` runs on a GPU: webgpu, or tensorflow when it is tfjs-node-gpu (`nodeGpu`). */
export function isGpuBackend(backend: string = activeBackend(), nodeGpu: boolean = nodeGpuLoaded()): boolean {
  return backend === 'webgpu' || (backend === 'tensorflow' && nodeGpu);
}

/** True when `backend` cannot read tensors back synchronously (webgpu in Node: tfjs reads through an OffscreenCanvas). */
export function syncReadbackUnsupported(backend: string = activeBackend()): boolean {
  return backend === 'webgpu' && typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined';
}

/** Throws when the active backend cannot read back synchronously; the error names `what` and the async way (`instead`). */
export function assertSyncReadback(what: string, instead: string): void {
  if (!syncReadbackUnsupported()) return;
  throw new Error(
    `${what}: the ${activeBackend()} backend cannot read tensors back synchronously in Node (tfjs reads through an OffscreenCanvas, which Node lacks). ` +
      `${instead}, or force another backend with BRAINNET_BACKEND=wasm.`,
  );
}

/** The error-scope part of a WebGPU GPUDevice. */
export interface ErrorScopeDevice {
  pushErrorScope(filter: 'out-of-memory' | 'validation' | 'internal'): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

/** The GPUDevice of the tfjs webgpu backend when it is active, else null. */
export function webgpuDevice(): ErrorScopeDevice | null {
  if (activeBackend() !== 'webgpu') return null;
  const d = (tf.backend() as unknown as { device?: ErrorScopeDevice }).device;
  return d && typeof d.pushErrorScope === 'function' ? d : null;
}

/** Message patterns of allocation failures on tfjs backends (webgpu, tfjs-node-gpu, wasm, cpu). */
const OOM_PATTERNS = [
  /out of memory/i,
  /\bOOM\b/,
  /GPUOutOfMemory/i,
  /failed to allocate/i,
  /allocation failed/i,
  /resource exhausted/i,
  /could not allocate/i,
  /cannot allocate/i,
  /Invalid typed array length/i,
  /Array buffer allocation failed/i,
  /createBuffer.*(fail|invalid)/i,
];

/** True when `e` looks like a device or host allocation failure. */
export function isOutOfMemoryError(e: unknown): boolean {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return OOM_PATTERNS.some((r) => r.test(msg));
}

/** Thrown when a training or prediction step runs out of (device) memory; names the tensor sizes [shape] and the backend. */
export class DeviceOutOfMemoryError extends Error {
  override name = 'DeviceOutOfMemoryError';
  constructor(readonly what: string, readonly sizes: Record<string, number[]>, readonly backend: string, override readonly cause: unknown) {
    const mb = (shape: number[]) => ((shape.reduce((a, b) => a * b, 1) * 4) / 2 ** 20).toFixed(1);
    const list = Object.entries(sizes).map(([k, v]) => `${k} [${v.join(', ')}] (${mb(v)} MB)`).join(', ');
    const orig = cause instanceof Error ? cause.message : String(cause);
    super(
      `${what} ran out of memory on the ${backend} backend. Tensor sizes (float32): ${list}. ` +
        'Use a smaller batch (batchSize), or split the vertices into chunks (model.headChunk = 4096, or a smaller value), ' +
        `or force a backend with more memory (BRAINNET_BACKEND=wasm). Original error: ${orig}`,
    );
  }
}
