/** Flatmaps: describing one (values to vertex colours, colour key, geometry, ROI boundaries), rasterising it to PNG, and Plotly figures of it. */
export * from './describe.js';
export * from './raster.js';
export * from './plotly.js';
