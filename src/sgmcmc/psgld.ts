/**
 * Preconditioned SGLD with an RMSprop preconditioner (Li, Chen, Carlson & Carin 2016, "Preconditioned
 * stochastic gradient Langevin dynamics for deep neural networks").
 *
 *   gbar_t  = grad log p(theta_t | batch) / N                 (per-datum gradient scale)
 *   V_t     = beta V_{t-1} + (1 - beta) gbar_t^2,  V_{-1} = 0
 *   G_t     = 1 / (lambda + sqrt(V_t / (1 - beta^(t+1))))
 *   theta_{t+1} = theta_t + (eps_t / 2) G_t grad log p(theta_t | batch) + sqrt(eps_t T) n_t sqrt(G_t) xi_t
 *
 * The Gamma(theta) correction term of the paper is omitted, as the paper itself recommends for
 * practical use (its contribution vanishes when beta -> 1). Li et al.'s gbar is the mean minibatch
 * likelihood gradient; here it is the whole log-density gradient divided by N, i.e. it also carries
 * the prior's gradient / N, which is small next to the likelihood's.
 *
 * One choice of ours: V is bias-corrected as in Adam (the division by 1 - beta^(t+1)), so V is the
 * weighted mean of all squared gradients so far instead of being shrunk towards 0 early on. Without
 * it the first steps have G ~ 1/sqrt((1 - beta) gbar^2), steps up to 1/sqrt(1 - beta) = 100x too
 * large at beta = 0.9999; with it, beta -> 1 gives a preconditioner that settles to a constant, the
 * regime in which dropping Gamma is exact.
 */
import { keep, np, type JArray } from "../core/engine.js";
import type { LogDensityFn, Params } from "../models/model.js";
import { addNoise, checkTemperature, densityAndGrad, mapLeaves, resolveSchedule, type Sampler, type SamplerOptions } from "./common.js";

/** Options of {@link create}: the sampler's, plus the RMSprop decay and damping. */
export interface PsgldOptions extends SamplerOptions {
  /** Decay of the squared-gradient average (default 0.99). */
  readonly beta?: number;
  /** Damping lambda (default 1e-5). */
  readonly lambda?: number;
}

/** pSGLD state: parameters, squared-gradient average V and the step counter. */
export type PsgldState = { params: Params; v: Params; step: JArray };

/** Build a pSGLD sampler. */
export function create(logDensity: LogDensityFn, opts: PsgldOptions): Sampler<PsgldState> {
  const schedule = resolveSchedule(opts.schedule);
  const temp = checkTemperature(opts.temperature);
  const n = opts.dataSize;
  const beta = opts.beta ?? 0.99;
  const lambda = opts.lambda ?? 1e-5;
  if (!(beta > 0 && beta < 1)) throw new RangeError(`psgld: beta must be in (0, 1), got ${beta}`);
  if (!(lambda > 0)) throw new RangeError(`psgld: lambda must be > 0, got ${lambda}`);
  return {
    init(k, params) {
      k.dispose();
      return { params, v: mapLeaves((p) => np.zerosLike(p), keep(params)), step: np.array(0) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lr = schedule.lr(t.ref);
      const [ld, g] = densityAndGrad(logDensity, keep(state.params), batch);
      const v = mapLeaves((vi, gi) => {
        const gb = gi.mul(1 / n);
        return vi.mul(beta).add(gb.ref.mul(gb).mul(1 - beta));
      }, state.v, keep(g));
      // 1 / (1 - beta^(t+1)), the bias correction of the average.
      const corr = np.reciprocal(np.exp(t.ref.add(1).mul(Math.log(beta))).mul(-1).add(1));
      const precond = mapLeaves((vi) => np.reciprocal(np.sqrt(vi.mul(corr.ref)).add(lambda)), keep(v));
      corr.dispose();
      const half = lr.ref.mul(0.5);
      const drift = mapLeaves((p, gi, pc) => p.add(gi.mul(pc).mul(half.ref)), state.params, g, keep(precond));
      half.dispose();
      // noise variance eps G per coordinate
      const variance = mapLeaves((pc) => pc.mul(lr.ref), precond);
      const params = addNoise(k, drift, variance, schedule, t.ref, temp);
      return [{ params, v, step: t.add(1) }, { loss: ld.mul(-1 / n), lr }];
    },
  };
}
