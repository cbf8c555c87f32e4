/**
 * Stochastic gradient Hamiltonian Monte Carlo (Chen, Fox & Guestrin 2014, "Stochastic gradient
 * Hamiltonian Monte Carlo"), in its practical momentum form (the paper's eq. 15):
 *
 *   v_{t+1}     = (1 - alpha) v_t + eta_t grad log p(theta_t | batch) + sqrt(2 (alpha - betaHat) eta_t T) n_t xi_t
 *   theta_{t+1} = theta_t + v_{t+1}
 *
 * with learning rate eta_t (the schedule), friction alpha, the gradient-noise estimate betaHat
 * (0 by default; must be < alpha), temperature T and n_t = 0 in a cyclical schedule's exploration
 * stage (cSGHMC of Zhang et al. 2020), 1 otherwise. The momentum starts at 0.
 */
import { keep, np, type JArray } from "../core/engine.js";
import type { LogDensityFn, Params } from "../models/model.js";
import { addNoise, checkTemperature, densityAndGrad, mapLeaves, resolveSchedule, type Sampler, type SamplerOptions } from "./common.js";

/** Options of {@link create}: the sampler's, plus friction and gradient-noise estimate. */
export interface SghmcOptions extends SamplerOptions {
  /** Friction alpha = 1 - momentum (default 0.05). */
  readonly friction?: number;
  /** Estimate betaHat of the gradient noise, 0 <= betaHat < alpha (default 0). */
  readonly betaHat?: number;
}

/** SGHMC state: parameters, momentum and the step counter. */
export type SghmcState = { params: Params; momentum: Params; step: JArray };

/** Build an SGHMC sampler. */
export function create(logDensity: LogDensityFn, opts: SghmcOptions): Sampler<SghmcState> {
  const schedule = resolveSchedule(opts.schedule);
  const temp = checkTemperature(opts.temperature);
  const n = opts.dataSize;
  const alpha = opts.friction ?? 0.05;
  const betaHat = opts.betaHat ?? 0;
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`sghmc: friction must be in (0, 1], got ${alpha}`);
  if (!(betaHat >= 0 && betaHat < alpha)) throw new RangeError(`sghmc: betaHat must be in [0, friction), got ${betaHat}`);
  return {
    init(k, params) {
      k.dispose();
      return { params, momentum: mapLeaves((p) => np.zerosLike(p), keep(params)), step: np.array(0) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lr = schedule.lr(t.ref);
      const [ld, g] = densityAndGrad(logDensity, keep(state.params), batch);
      const decayed = mapLeaves((v, gi) => v.mul(1 - alpha).add(gi.mul(lr.ref)), state.momentum, g);
      const momentum = addNoise(k, decayed, lr.ref.mul(2 * (alpha - betaHat)), schedule, t.ref, temp);
      const params = mapLeaves((p, v) => p.add(v), state.params, keep(momentum));
      return [{ params, momentum, step: t.add(1) }, { loss: ld.mul(-1 / n), lr }];
    },
  };
}
