/** lib/data: real-data loaders and layouts: Algonauts 2023 subjects and ROI tables, NSD's release layout and loaders, and NSD preparation. */
export * from './rois.js';
export * from './algonauts.js';
export * from './nsd-layout.js';
export * from './nsd.js';
export * from './nsd-prep/index.js';
