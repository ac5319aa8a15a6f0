/**
 * DDIM (Song et al. 2021; diffusers DDIMScheduler), in VP space. At timestep t with the previous
 * timestep t' = t - floor(T/n), a = alpha_bar(t) and a' = alpha_bar(t') (after the last step, 1 with
 * setAlphaToOne, else alpha_bar(0)):
 *
 *   x0     = (x_t - sqrt(1-a) eps) / sqrt(a)
 *   sigma  = eta * sqrt((1-a')/(1-a) * (1 - a/a'))
 *   x_t'   = sqrt(a') x0 + sqrt(1 - a' - sigma^2) eps + sigma z      (z ~ N(0, I), only for eta > 0)
 *
 * eta = 0 is deterministic; eta > 0 takes z from the step's `noise` or its seeded `generator`.
 */
import * as tf from '@tensorflow/tfjs';
import { addNoiseVP, advance, checkStep, initialState, modelX0AndEps, noiseTables, spacedTimesteps, type Scheduler, type SchedulerConfig } from './common.js';

/** A DDIM scheduler over `config` with stochasticity eta (0: deterministic). */
export function ddimScheduler(config: SchedulerConfig, eta: number): Scheduler {
  const tables = noiseTables(config);
  const ac = tables.alphasCumprod;
  const T = config.numTrainTimesteps;
  return {
    kind: 'ddim',
    config,
    alphasCumprod: ac,
    alphaBar: tables.alphaBar,
    setTimesteps: (n) => initialState('ddim', spacedTimesteps(config, n, 'ddim'), []),
    initNoiseSigma: () => 1,
    scaleModelInput: (_s, x) => x,
    addNoise: (x0, noise, t) => addNoiseVP(tables, x0, noise, t),
    step(state, out, t, x, so = {}) {
      checkStep('ddim', state, t);
      const n = state.timesteps.length;
      const prevT = t - Math.floor(T / n);
      const a = ac[t]!;
      const aPrev = prevT >= 0 ? ac[prevT]! : config.setAlphaToOne ? 1 : ac[0]!;
      const variance = ((1 - aPrev) / (1 - a)) * (1 - a / aPrev);
      const std = eta * Math.sqrt(variance);
      const [prevSample, predOriginalSample] = tf.tidy(() => {
        const [x0, eps] = modelX0AndEps(out, x, a, config.predictionType);
        let prev = tf.add(tf.mul(x0, Math.sqrt(aPrev)), tf.mul(eps, Math.sqrt(Math.max(0, 1 - aPrev - std * std))));
        if (eta > 0) {
          const z = so.noise ?? so.generator?.randn(x.shape);
          if (!z) throw new Error('DDIM with eta > 0 needs `noise` or a seeded `generator`');
          prev = tf.add(prev, tf.mul(z, std));
        }
        return [prev, x0];
      });
      return { prevSample, predOriginalSample, state: advance(state) };
    },
  };
}
