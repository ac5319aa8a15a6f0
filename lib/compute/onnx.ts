/**
 * onnxruntime-node set-up: which execution providers this install can use.
 * CUDA only when its binaries were installed with the package; CPU always.
 */
import type * as ortTypes from 'onnxruntime-node';

// onnxruntime 1.30's Linux build starts a telemetry component with its first session, which leaves an empty
// /tmp/mat-debug-<pid>.log behind in every process. This project runs offline and sends nothing: turn it off before any
// session exists (every module that creates one imports this file). A user's own setting wins.
process.env['ORT_DISABLE_TELEMETRY'] ??= '1';

/** Execution providers to pass to `InferenceSession.create`, best first (`['cuda', 'cpu']` or `['cpu']`). */
export function onnxExecutionProviders(env: NodeJS.ProcessEnv = process.env): string[] {
  const forced = env['BRAINNET_ONNX_PROVIDER']?.trim();
  if (forced) return forced === 'cpu' ? ['cpu'] : [forced, 'cpu'];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ort = require('onnxruntime-node') as { listSupportedBackends?: () => { name: string; bundled: boolean }[] };
  const listed = ort.listSupportedBackends?.() ?? [];
  const cuda = listed.find((b) => b.name === 'cuda');
  return cuda?.bundled ? ['cuda', 'cpu'] : ['cpu'];
}

let ortModule: typeof ortTypes | null | undefined;

/** onnxruntime-node, loaded once; null when it cannot load on this machine (callers then use tfjs). */
export function loadOnnxRuntime(): typeof ortTypes | null {
  if (ortModule === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      ortModule = require('onnxruntime-node') as typeof ortTypes;
    } catch {
      ortModule = null;
    }
  }
  return ortModule;
}

/** What onnxruntime-node says of one session input or output (type and shape when the install reports them). */
export interface OnnxValueMeta { name: string; type?: string; shape?: (number | string)[] }

/** The metadata of a session's inputs or outputs, one entry per name (only the name where onnxruntime gives none). */
export function onnxSessionMeta(s: ortTypes.InferenceSession, which: 'input' | 'output'): OnnxValueMeta[] {
  const m = (s as unknown as { inputMetadata?: OnnxValueMeta[]; outputMetadata?: OnnxValueMeta[] })[which === 'input' ? 'inputMetadata' : 'outputMetadata'];
  const names = which === 'input' ? s.inputNames : s.outputNames;
  return names.map((name, i) => ({ name, ...(m?.[i] ?? {}) }));
}

/** Integer data [dims] as the tensor type the session's input `name` declares: int64 or int32 (`fallback` when the install does not say). */
export function onnxIntTensor(ort: typeof ortTypes, s: ortTypes.InferenceSession, name: string, data: Int32Array, dims: number[], fallback: 'int32' | 'int64'): ortTypes.Tensor {
  const type = onnxSessionMeta(s, 'input').find((m) => m.name === name)?.type ?? fallback;
  return type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), dims) : new ort.Tensor('int32', data, dims);
}
