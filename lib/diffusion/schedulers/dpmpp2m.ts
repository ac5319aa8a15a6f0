/**
 * DPM-Solver++ 2M (Lu et al. 2022; diffusers DPMSolverMultistepScheduler, algorithm "dpmsolver++",
 * solver_order 2, midpoint, final sigma 0 so the last step is first order). With sigma_i =
 * sqrt((1-abar)/abar) at each timestep, alpha_i = 1/sqrt(sigma_i^2 + 1), s_i = sigma_i alpha_i and
 * lambda_i = log(alpha_i) - log(s_i):
 *
 *   x0_i    = the model's x0 prediction at step i (from eps or v, in VP space)
 *   h       = lambda_{i+1} - lambda_i
 *   D       = x0_i                                         (first step, and the last)
 *           = x0_i + (x0_i - x0_{i-1}) / (2 r0),  r0 = (lambda_i - lambda_{i-1}) / h   (otherwise)
 *   x_{i+1} = (s_{i+1} / s_i) x_i - alpha_{i+1} (exp(-h) - 1) D
 *
 * The state carries x0_{i-1} (`prevModelOutput`, owned by the caller) and the warm-up count.
 */
import * as tf from '@tensorflow/tfjs';
import { addNoiseVP, advance, checkStep, initialState, modelX0AndEps, noiseTables, spacedTimesteps, type Scheduler, type SchedulerConfig } from './common.js';

/** alpha, s = sigma alpha and lambda = log(alpha / s) of a sigma. */
function lambdaOf(sigma: number): { alpha: number; sig: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return { alpha, sig: sigma * alpha, lambda: Math.log(alpha) - Math.log(sigma * alpha) };
}

/** A DPM-Solver++ 2M scheduler over `config`. */
export function dpmpp2mScheduler(config: SchedulerConfig): Scheduler {
  const tables = noiseTables(config);
  return {
    kind: 'dpmpp2m',
    config,
    alphasCumprod: tables.alphasCumprod,
    alphaBar: tables.alphaBar,
    setTimesteps(n) {
      const timesteps = spacedTimesteps(config, n, 'dpmpp2m');
      return initialState('dpmpp2m', timesteps, [...timesteps.map(tables.sigmaAt), 0]);
    },
    initNoiseSigma: () => 1,
    scaleModelInput: (_s, x) => x,
    addNoise: (x0, noise, t) => addNoiseVP(tables, x0, noise, t),
    step(state, out, t, x) {
      const i = checkStep('dpmpp2m', state, t);
      const n = state.timesteps.length;
      const s0 = lambdaOf(state.sigmas[i]!);
      const st = lambdaOf(state.sigmas[i + 1]!);
      const h = st.lambda - s0.lambda;
      const em1 = Math.exp(-h) - 1; // exp(-h) - 1 (-1 at the final zero sigma)
      const ratio = state.sigmas[i + 1] === 0 ? 0 : st.sig / s0.sig;
      const lowerOrderFinal = i === n - 1; // final sigma is 0: first order there
      const useSecond = state.prevModelOutput !== null && state.lowerOrderNums >= 1 && !lowerOrderFinal;
      const [prevSample, predOriginalSample] = tf.tidy(() => {
        // convert_model_output for dpmsolver++: x0 prediction, with VP alpha/sigma from sigma_i
        const a = s0.alpha * s0.alpha;
        const [x0] = modelX0AndEps(out, x, a, config.predictionType);
        let prev = tf.sub(tf.mul(x, ratio), tf.mul(x0, st.alpha * em1));
        if (useSecond) {
          const s1 = lambdaOf(state.sigmas[i - 1]!);
          const r0 = (s0.lambda - s1.lambda) / h;
          const d1 = tf.div(tf.sub(x0, state.prevModelOutput!), r0);
          prev = tf.sub(prev, tf.mul(d1, 0.5 * st.alpha * em1));
        }
        return [prev, x0];
      });
      return {
        prevSample,
        predOriginalSample,
        state: advance(state, { prevModelOutput: predOriginalSample.clone(), lowerOrderNums: Math.min(state.lowerOrderNums + 1, 2) }),
      };
    },
  };
}
