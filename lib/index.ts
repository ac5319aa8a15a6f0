/**
 * brainnet: the library behind the brainnet-ts notebooks.
 *
 * Data flows one way: io -> data -> backbones -> encoding -> viz, with diffusion guided
 * by encoding. compute sets up tfjs and onnxruntime; notebook holds display, progress
 * and the headless runner.
 */
export * from './core/index.js';
export * from './io/index.js';
export * from './compute/index.js';
export * from './data/index.js';
export * from './synthetic/index.js';
export * from './backbones/index.js';
export * from './notebook/index.js';
export * from './runner/index.js';
export * from './encoding/index.js';
export * from './diffusion/index.js';
export * from './viz/index.js';
export * from './braindive/index.js';
