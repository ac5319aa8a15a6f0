/** lib/notebook: what a notebook cell uses: inline display, progress bars, recorded results (`record`), and the kernel hook. */
export * from './kernel-hook.js';
export * from './display.js';
export * from './progress.js';
export * from './record.js';
