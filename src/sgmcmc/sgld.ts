/**
 * Stochastic gradient Langevin dynamics (Welling & Teh 2011, "Bayesian learning via stochastic
 * gradient Langevin dynamics").
 *
 *   theta_{t+1} = theta_t + (eps_t / 2) grad log p(theta_t | batch) + sqrt(eps_t T) n_t xi_t,
 *   xi_t ~ N(0, I),
 *
 * where log p(theta | batch) = log p(theta) + N * mean_batch log p(y | x, theta) is the model's
 * `logDensity` (so the drift is -(eps/2) grad U), eps_t comes from the schedule, T is the temperature
 * and n_t is 1, or 0 in a cyclical schedule's exploration stage (Zhang et al. 2020). With T = 0 no
 * noise is drawn at all: the trajectory is deterministic gradient ascent on the log posterior.
 *
 * @example
 * const s = create(logDensity(model, { dataSize: N }), { schedule: 1e-5, dataSize: N });
 * let state = s.init(key(0), model.init(key(1)));
 * [state, info] = s.step(key(2), state, batch);
 */
import { keep, np, type JArray } from "../core/engine.js";
import type { LogDensityFn, Params } from "../models/model.js";
import { addNoise, checkTemperature, densityAndGrad, mapLeaves, resolveSchedule, type Sampler, type SamplerOptions } from "./common.js";

/** SGLD state: parameters and the step counter (float32 scalar). */
export type SgldState = { params: Params; step: JArray };

/** Build an SGLD sampler. */
export function create(logDensity: LogDensityFn, opts: SamplerOptions): Sampler<SgldState> {
  const schedule = resolveSchedule(opts.schedule);
  const temp = checkTemperature(opts.temperature);
  const n = opts.dataSize;
  return {
    init(k, params) {
      k.dispose();
      return { params, step: np.array(0) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lr = schedule.lr(t.ref);
      const [ld, g] = densityAndGrad(logDensity, keep(state.params), batch);
      const half = lr.ref.mul(0.5);
      const drift = mapLeaves((p, gi) => p.add(gi.mul(half.ref)), state.params, g);
      half.dispose();
      const params = addNoise(k, drift, lr.ref, schedule, t.ref, temp);
      return [{ params, step: t.add(1) }, { loss: ld.mul(-1 / n), lr }];
    },
  };
}

