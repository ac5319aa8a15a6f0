/** Test helper: installs the brainnet-ts kernel spec into a temporary prefix (as `npx tsx kernels/install.ts --prefix DIR` does). */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..');

/** Installs the kernel spec into a fresh temporary prefix; returns the JUPYTER_PATH entry and a cleanup. */
export function installTestKernel(): { jupyterPath: string; prefix: string; cleanup: () => void } {
  const installer = path.join(REPO, 'kernels', 'install.ts');
  if (!fs.existsSync(installer)) throw new Error(`${installer} is missing: the brainnet-ts kernel (kernels/) must exist for the end-to-end tests`);
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-kernel-test-'));
  execFileSync(process.execPath, ['--import', 'tsx', installer, '--prefix', prefix], { cwd: REPO, stdio: 'pipe' });
  const jupyterPath = path.join(prefix, 'share', 'jupyter');
  const spec = path.join(jupyterPath, 'kernels', 'brainnet-ts', 'kernel.json');
  if (!fs.existsSync(spec)) throw new Error(`kernels/install.ts --prefix ${prefix} did not write ${spec}`);
  return { jupyterPath, prefix, cleanup: () => fs.rmSync(prefix, { recursive: true, force: true }) };
}

/** The notebook runner's command line (built by npm run build). */
export const NOTEBOOK_CLI = path.join(REPO, 'dist', 'lib', 'runner', 'cli.js');

/** Runs the notebook runner's CLI from the repository root with the test kernel on JUPYTER_PATH: exit code and output. */
export function runNotebookCli(args: string[], jupyterPath: string, timeoutMs = 120000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [NOTEBOOK_CLI, ...args], { cwd: REPO, env: { ...process.env, JUPYTER_PATH: jupyterPath }, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
