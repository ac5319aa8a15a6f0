/** lib/core: small pieces every stage shares (seeded random numbers, the Matrix type, small linear algebra). Imports nothing else from lib. */
export * from './rng.js';
export * from './matrix.js';
export * from './linalg.js';
