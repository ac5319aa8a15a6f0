/**
 * Picks the TensorFlow.js backend once per process and says why.
 *
 * Order (first that works wins): tfjs-node-gpu, WebGPU (Dawn's `webgpu` package, when it
 * finds an adapter), tfjs-node, wasm, cpu. `BRAINNET_BACKEND` forces one of them.
 * tfjs-node and tfjs-node-gpu are optional peers: they download libtensorflow when they
 * install, so offline machines do without them.
 */
import * as tf from '@tensorflow/tfjs';

/** The backends brainnet knows, in the order it tries them. */
export const BACKEND_ORDER = ['node-gpu', 'webgpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];

/** What `initBackend` chose, what it skipped and why. */
export interface BackendChoice {
  /** brainnet's name for the backend (`wasm`, `webgpu`, ...). */
  name: BackendName;
  /** tfjs's own name for it (`tensorflow` for tfjs-node and tfjs-node-gpu). */
  tfBackend: string;
  /** One entry per backend that was tried before `name` (or not tried), with the reason. */
  skipped: { name: BackendName; reason: string }[];
  /** true when BRAINNET_BACKEND (or the `force` option) chose it. */
  forced: boolean;
}

export interface InitBackendOptions {
  /** Force one backend; defaults to `process.env.BRAINNET_BACKEND`. */
  force?: string;
  /** Where the one-line report goes; defaults to console.error. Pass `null` for silence. */
  log?: ((line: string) => void) | null;
  /** Try only these backends (in BACKEND_ORDER); for tests. */
  only?: BackendName[];
  /** The `require` used to find optional packages; tests pass a fake one. */
  requireFn?: (id: string) => unknown;
}

/** Thrown when a forced backend cannot be used. */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}

type Attempt = { ok: true; tfBackend: string } | { ok: false; reason: string };

let current: Promise<BackendChoice> | null = null;

/** Chooses and activates a backend once; later calls return the same choice. */
export function initBackend(opts: InitBackendOptions = {}): Promise<BackendChoice> {
  if (!current) {
    current = withoutRethrowHandlers(() => chooseBackend(opts)).catch((e) => {
      current = null;
      throw e;
    });
  }
  return current;
}

const PROCESS_ERROR_EVENTS = ['uncaughtException', 'unhandledRejection'] as const;

/**
 * Runs `start` (which loads backends) and then removes the process handlers it added that only rethrow. Emscripten's
 * Node glue in tfjs-backend-wasm installs `uncaughtException` and `unhandledRejection` handlers that rethrow the error
 * from inside its one-line minified source, so Node printed about 39 KB of that line before the message of any
 * uncaught error in a script that loaded the wasm backend. Without them Node reports the error as usual.
 */
async function withoutRethrowHandlers<T>(start: () => Promise<T>): Promise<T> {
  // (both events' listeners take one argument; typed through one of them)
  const listeners = (e: string) => process.listeners(e as 'uncaughtException');
  const before = PROCESS_ERROR_EVENTS.map((e) => new Set(listeners(e)));
  try {
    return await start();
  } finally {
    PROCESS_ERROR_EVENTS.forEach((e, i) => {
      for (const l of listeners(e)) {
        if (!before[i]!.has(l) && /\bthrow\b/.test(String(l))) process.removeListener(e as 'uncaughtException', l);
      }
    });
  }
}

/** Forgets the cached choice so that the next `initBackend` chooses again (tests only). */
export function resetBackendChoice(): void {
  current = null;
}

/** Normalises user spellings (`tfjs-node-gpu`, `tensorflow`, `WASM`) to a BackendName. */
export function parseBackendName(raw: string): BackendName | null {
  const s = raw.trim().toLowerCase().replace(/^@tensorflow\//, '').replace(/^tfjs-/, '');
  const aliases: Record<string, BackendName> = {
    'node-gpu': 'node-gpu', gpu: 'node-gpu', 'tensorflow-gpu': 'node-gpu', cuda: 'node-gpu',
    webgpu: 'webgpu', dawn: 'webgpu',
    node: 'node', tensorflow: 'node',
    wasm: 'wasm',
    cpu: 'cpu',
  };
  return aliases[s] ?? null;
}

async function chooseBackend(opts: InitBackendOptions): Promise<BackendChoice> {
  const log = opts.log === undefined ? (l: string) => console.error(l) : opts.log;
  const forcedRaw = opts.force ?? process.env['BRAINNET_BACKEND'] ?? '';
  const skipped: BackendChoice['skipped'] = [];
  const req = opts.requireFn ?? require;

  if (forcedRaw.trim()) {
    const name = parseBackendName(forcedRaw);
    if (!name) {
      throw new BackendUnavailableError(
        `BRAINNET_BACKEND=${forcedRaw}: expected one of ${BACKEND_ORDER.join(', ')}, found an unknown name. Unset it to choose automatically.`,
      );
    }
    const got = await tryBackend(name, req);
    if (!got.ok) {
      const available = await listAvailable(req);
      throw new BackendUnavailableError(
        `BRAINNET_BACKEND=${forcedRaw}: the ${name} backend is not available (${got.reason}). ` +
          `Available here: ${available.join(', ') || 'none'}. Unset BRAINNET_BACKEND or pick one of those.`,
      );
    }
    const choice: BackendChoice = { name, tfBackend: got.tfBackend, skipped, forced: true };
    log?.(describeChoice(choice));
    return choice;
  }

  for (const name of BACKEND_ORDER) {
    if (opts.only && !opts.only.includes(name)) continue;
    const got = await tryBackend(name, req);
    if (got.ok) {
      const choice: BackendChoice = { name, tfBackend: got.tfBackend, skipped, forced: false };
      log?.(describeChoice(choice));
      return choice;
    }
    skipped.push({ name, reason: got.reason });
  }
  throw new BackendUnavailableError(
    `no TensorFlow.js backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`,
  );
}

/** The one line that says what was chosen and why the others were skipped. */
export function describeChoice(c: BackendChoice): string {
  const why = c.forced ? ' (forced by BRAINNET_BACKEND)' : '';
  const skips = c.skipped.length ? `; skipped ${c.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}` : '';
  return `[brainnet] compute backend: ${c.name}${why}${skips}`;
}

/** The backends that can start on this machine, without activating any (slow: it probes each). */
export async function listAvailable(req: (id: string) => unknown = require): Promise<BackendName[]> {
  const out: BackendName[] = [];
  for (const name of BACKEND_ORDER) {
    if ((await probe(name, req)).ok) out.push(name);
  }
  return out;
}

async function tryBackend(name: BackendName, req: (id: string) => unknown): Promise<Attempt> {
  const p = await probe(name, req);
  if (!p.ok) return p;
  try {
    const ok = await tf.setBackend(p.tfBackend);
    if (!ok) return { ok: false, reason: `tf.setBackend('${p.tfBackend}') returned false` };
    await tf.ready();
    // One tiny op proves the backend really runs (WebGPU can register yet fail later).
    const t = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)));
    const v = (await t.data())[0];
    t.dispose();
    if (v !== 2) return { ok: false, reason: `a test op returned ${v}, not 2` };
    return p;
  } catch (e) {
    return { ok: false, reason: `failed to start: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** Loads (but does not activate) what a backend needs; says why not when it cannot. */
async function probe(name: BackendName, req: (id: string) => unknown): Promise<Attempt> {
  switch (name) {
    case 'node-gpu':
      return probeTfjsNode('@tensorflow/tfjs-node-gpu', req);
    case 'node':
      return probeTfjsNode('@tensorflow/tfjs-node', req);
    case 'webgpu':
      return probeWebgpu();
    case 'wasm':
      try {
        require('@tensorflow/tfjs-backend-wasm');
        return { ok: true, tfBackend: 'wasm' };
      } catch (e) {
        return { ok: false, reason: `@tensorflow/tfjs-backend-wasm did not load: ${(e as Error).message.split('\n')[0]}` };
      }
    case 'cpu':
      return { ok: true, tfBackend: 'cpu' };
  }
}

function probeTfjsNode(pkg: string, req: (id: string) => unknown): Attempt {
  try {
    req(pkg);
    return { ok: true, tfBackend: 'tensorflow' };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(pkg)) return { ok: false, reason: 'not installed' };
    const msg = err.message.split('\n')[0] ?? '';
    const hint = pkg.endsWith('-gpu') ? ' (it needs CUDA 11.2 and cuDNN 8.1; see the README)' : '';
    return { ok: false, reason: `installed but failed to load: ${msg}${hint}` };
  }
}

let webgpuProbe: Promise<Attempt> | null = null;

function probeWebgpu(): Promise<Attempt> {
  webgpuProbe ??= (async (): Promise<Attempt> => {
    const g = globalThis as Record<string, unknown>;
    try {
      if (!(g['navigator'] as { gpu?: unknown } | undefined)?.gpu) {
        // Dawn's node binding: its globals (GPUBufferUsage, ...) must exist before tfjs-backend-webgpu loads.
        const dawn = (await import('webgpu')) as unknown as { create(flags: string[]): unknown; globals: object };
        Object.assign(globalThis, dawn.globals);
        const nav = (g['navigator'] as object | undefined) ?? {};
        Object.defineProperty(nav, 'gpu', { value: dawn.create([]), configurable: true });
        if (!g['navigator']) Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true });
      }
      const gpu = (g['navigator'] as { gpu: { requestAdapter(): Promise<unknown> } }).gpu;
      const adapter = await gpu.requestAdapter();
      if (!adapter) return { ok: false, reason: 'no WebGPU adapter (no GPU, or no Vulkan driver)' };
    } catch (e) {
      return { ok: false, reason: `the webgpu package did not load: ${(e as Error).message.split('\n')[0]}` };
    }
    try {
      require('@tensorflow/tfjs-backend-webgpu');
      return { ok: true, tfBackend: 'webgpu' };
    } catch (e) {
      return { ok: false, reason: `@tensorflow/tfjs-backend-webgpu did not load: ${(e as Error).message.split('\n')[0]}` };
    }
  })();
  return webgpuProbe;
}

/** The tfjs module that the chosen backend is registered with. */
export { tf };
