/**
 * Where a cell's imports come from. A notebook may live in any folder: its imports resolve from the notebook's
 * folder first (its own node_modules win), then from the kernel's checkout, which has 'brainnet' (its package
 * self-reference, 'brainnet/io' etc.) and the packages the notebooks use (tslab, @tensorflow/tfjs,
 * plotly.js-dist, ...). Relative and absolute paths resolve from the notebook's folder only.
 * Each import tries require() first (exact CommonJS semantics, esModuleInterop defaults) and import() for
 * ESM-only packages.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { types } from 'node:util';
import vm from 'node:vm';

/** The kernel's checkout (the repository holding kernels/ and the built library). */
export const CHECKOUT = path.resolve(__dirname, '..', '..');

const ESM_ONLY_CODES = new Set(['ERR_REQUIRE_ESM', 'ERR_REQUIRE_ASYNC_MODULE', 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'ERR_UNKNOWN_FILE_EXTENSION']);

/** One place imports resolve from. */
interface Origin {
  /** For messages: "the notebook folder /x" or "the kernel's checkout /y". */
  label: string;
  req: NodeRequire;
  /** import() as seen from a file in this place. */
  dynamicImport(spec: string, options?: unknown): Promise<unknown>;
}

/** Thrown when no place has the module; names the folders searched. */
export class ModuleNotFoundError extends Error {
  readonly code = 'MODULE_NOT_FOUND';
  constructor(message: string, readonly searched: string[]) {
    super(message);
    this.name = 'ModuleNotFoundError';
  }
}

/** `import()` evaluated as if written in a file at `file` (so it resolves from that file's folder). */
function importFrom(file: string): (spec: string, options?: unknown) => Promise<unknown> {
  const script = new vm.Script('(spec, options) => import(spec, options)', { filename: file, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER as never });
  return script.runInThisContext() as (spec: string, options?: unknown) => Promise<unknown>;
}

/** Resolves and loads the modules cells import. */
export class ModuleLoader {
  private readonly origins: Origin[];

  constructor(readonly cwd: string, readonly checkout: string = CHECKOUT) {
    const here = path.join(cwd, '__bn_notebook__.js');
    const there = path.join(checkout, 'kernels', '__bn_checkout__.js');
    this.origins = [{ label: `the notebook folder ${cwd}`, req: createRequire(here), dynamicImport: importFrom(here) }];
    if (path.resolve(cwd) !== path.resolve(checkout)) this.origins.push({ label: `the kernel's checkout ${checkout}`, req: createRequire(there), dynamicImport: importFrom(there) });
  }

  /** Where `spec` resolves (the file require() would load), or null; for completion and tests. */
  resolve(spec: string): string | null {
    for (const o of this.originsFor(spec)) {
      try {
        return o.req.resolve(spec);
      } catch {
        /* next */
      }
    }
    return null;
  }

  private originsFor(spec: string): Origin[] {
    return isLocal(spec) ? this.origins.slice(0, 1) : this.origins;
  }

  /**
   * Loads `spec` for a cell's `import`: the first place that has it wins. `cellImport` is the cell's own
   * `import(spec)` (it resolves from the notebook folder), used for ESM-only packages found there.
   */
  async load(spec: string, cellImport?: () => Promise<unknown>): Promise<unknown> {
    const searched: string[] = [];
    for (const [i, o] of this.originsFor(spec).entries()) {
      if (!this.exists(o, spec, searched)) continue;
      let mod: unknown;
      try {
        mod = o.req(spec);
      } catch (e) {
        if (!ESM_ONLY_CODES.has((e as { code?: string }).code ?? '')) throw e;
        return await (i === 0 && cellImport ? cellImport() : o.dynamicImport(spec));
      }
      return interop(mod);
    }
    throw this.notFound(spec, searched);
  }

  /**
   * A cell's `import(spec)`: the cell's own import() (from the notebook folder) first; a bare specifier it does not
   * find is imported from the kernel's checkout.
   */
  async importDynamic(cellImport: (spec: string, options?: unknown) => Promise<unknown>, spec: string, options?: unknown): Promise<unknown> {
    try {
      return await cellImport(spec, options);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' || isLocal(String(spec)) || this.origins.length < 2) throw e;
      try {
        return await this.origins[1].dynamicImport(String(spec), options);
      } catch (e2) {
        if ((e2 as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw e2;
        const searched: string[] = [];
        for (const o of this.origins) searched.push(...(o.req.resolve.paths(String(spec)) ?? []));
        throw this.notFound(String(spec), searched);
      }
    }
  }

  /** True when `spec` resolves from `o` (an ESM-only package counts); else adds the folders searched. */
  private exists(o: Origin, spec: string, searched: string[]): boolean {
    try {
      o.req.resolve(spec);
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (ESM_ONLY_CODES.has(code)) return true;
      if (code !== 'MODULE_NOT_FOUND') throw e;
      // A package found whose entry file is missing (e.g. brainnet before `npm run build`) is not "not found".
      if (!(e as Error).message.includes(`'${spec}'`)) throw this.unbuilt(spec, e as Error);
      searched.push(...(isLocal(spec) ? [this.cwd] : (o.req.resolve.paths(spec) ?? [])));
      return false;
    }
  }

  private unbuilt(spec: string, e: Error): Error {
    if (spec === 'brainnet' || spec.startsWith('brainnet/')) {
      e.message = `'${spec}' is the kernel's own library, but its build is missing (${e.message.split('\n')[0]}): run \`npm run build\` in ${this.checkout}`;
    }
    return e;
  }

  private notFound(spec: string, searched: string[]): ModuleNotFoundError {
    const folders = [...new Set(searched)];
    const local = isLocal(spec);
    const where = local
      ? `relative to the notebook folder ${this.cwd}`
      : `in ${this.origins.map((o) => o.label).join(', then ')}; folders searched: ${folders.join(', ')}`;
    const fix = local
      ? 'check the path (imports of local files resolve from the notebook\'s folder)'
      : `install it next to the notebook (\`npm install ${packageName(spec)}\` in ${this.cwd}) or in ${this.checkout}`;
    return new ModuleNotFoundError(`Cannot find module '${spec}' ${where}. Fix: ${fix}.`, folders);
  }
}

/** A relative or absolute path, or a URL: resolved from the notebook folder only. */
function isLocal(spec: string): boolean {
  return spec.startsWith('.') || path.isAbsolute(spec) || /^[a-z][a-z0-9+.-]*:/i.test(spec);
}

/** The package part of a bare specifier ('@scope/name/sub' -> '@scope/name'). */
function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** What an `import * as m` / `import m from` of a required module gives: esModuleInterop defaults. */
function interop(mod: unknown): unknown {
  if (types.isModuleNamespaceObject(mod)) return mod;
  if (mod && (typeof mod === 'object' || typeof mod === 'function') && (mod as { __esModule?: boolean }).__esModule) return mod;
  // A plain CommonJS module is its own default export.
  if (mod === null || (typeof mod !== 'object' && typeof mod !== 'function')) return { default: mod };
  const target = mod as object;
  return new Proxy(target, {
    get: (t, k, r) => (k === 'default' ? target : Reflect.get(t, k, r)),
    has: (t, k) => k === 'default' || Reflect.has(t, k),
  });
}
