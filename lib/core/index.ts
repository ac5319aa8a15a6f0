/** lib/core: small pieces every stage shares (seeded random numbers). Imports nothing else from lib. */
export * from './rng.js';
