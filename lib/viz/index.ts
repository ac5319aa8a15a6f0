/** lib/viz: flatmaps (PNG via node-canvas, interactive Plotly), the papers' selector figures, image grids, panels and training curves. */
export * from './colormaps.js';
export * from './layout.js';
export * from './flatmap/index.js';
export * from './figures.js';
export * from './paper.js';
export * from './brain3d.js';
