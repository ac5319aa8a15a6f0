/** lib/notebook: what a notebook cell uses: inline display, progress bars, recorded results (`record`), and the kernel hook. */
export * from './kernel-hook.js';
export * from './display.js';
export * from './progress.js';
export * from './brain3d.js';
export { inlineScriptLoader, whenScriptJs, packedScript, type InlineScript } from './scripts.js';
export * from './record.js';
