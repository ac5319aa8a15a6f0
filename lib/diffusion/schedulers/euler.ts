/**
 * Euler (Karras et al. 2022; diffusers EulerDiscreteScheduler, s_churn 0), in sigma space: the sample is
 * x = x0 + sigma eps, the model sees x / sqrt(sigma^2 + 1) (`scaleModelInput`), and with sigma_i at each
 * timestep and a final 0:
 *
 *   x0      = x - sigma_i eps                                   (epsilon)
 *           = -sigma_i / sqrt(sigma_i^2 + 1) v + x / (sigma_i^2 + 1)   (v_prediction)
 *   d       = (x - x0) / sigma_i
 *   x_{i+1} = x + (sigma_{i+1} - sigma_i) d
 *
 * The initial noise is scaled by sigma_max (sqrt(sigma_max^2 + 1) with leading spacing, as diffusers).
 */
import * as tf from '@tensorflow/tfjs';
import { advance, checkStep, initialState, noiseTables, spacedTimesteps, type Scheduler, type SchedulerConfig } from './common.js';

/** An Euler scheduler over `config`. */
export function eulerScheduler(config: SchedulerConfig): Scheduler {
  const tables = noiseTables(config);
  return {
    kind: 'euler',
    config,
    alphasCumprod: tables.alphasCumprod,
    alphaBar: tables.alphaBar,
    setTimesteps(n) {
      const timesteps = spacedTimesteps(config, n, 'euler');
      return initialState('euler', timesteps, [...timesteps.map(tables.sigmaAt), 0]);
    },
    initNoiseSigma(state) {
      const m = Math.max(...state.sigmas);
      return config.timestepSpacing === 'leading' ? Math.sqrt(m * m + 1) : m;
    },
    scaleModelInput(state, x, t) {
      const i = state.timesteps.findIndex((u) => Math.abs(u - t) <= 1e-6);
      if (i < 0) throw new Error(`scaleModelInput: timestep ${t} is not one of this state's timesteps`);
      const s = state.sigmas[i]!;
      return tf.div(x, Math.sqrt(s * s + 1));
    },
    addNoise: (x0, noise, t) => tf.tidy(() => tf.add(x0, tf.mul(noise, tables.sigmaAt(t)))),
    step(state, out, t, x) {
      const i = checkStep('euler', state, t);
      const sigma = state.sigmas[i]!;
      const dt = state.sigmas[i + 1]! - sigma;
      const [prevSample, predOriginalSample] = tf.tidy(() => {
        const x0 = config.predictionType === 'epsilon' ? tf.sub(x, tf.mul(out, sigma)) : tf.add(tf.mul(out, -sigma / Math.sqrt(sigma * sigma + 1)), tf.div(x, sigma * sigma + 1));
        const d = tf.div(tf.sub(x, x0), sigma);
        return [tf.add(x, tf.mul(d, dt)), x0];
      });
      return { prevSample, predOriginalSample, state: advance(state) };
    },
  };
}
