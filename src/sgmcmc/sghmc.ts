/**
 * Stochastic gradient Hamiltonian Monte Carlo (Chen, Fox & Guestrin 2014, "Stochastic gradient
 * Hamiltonian Monte Carlo"), in its practical momentum form (the paper's eq. 15):
 *
 *   v_{t+1}     = (1 - alpha) v_t + eta_t grad log p_T(theta_t | batch) + sqrt(2 (alpha - betaHat) eta_t) n_t xi_t
 *   theta_{t+1} = theta_t + v_{t+1}
 *
 * with learning rate eta_t (the step size schedule), friction alpha, the gradient-noise estimate
 * betaHat (0 by default; must be < alpha), the tempered log density log p_T and n_t = 0 in a cyclical
 * schedule's exploration stage (cSGHMC of Zhang et al. 2020), 1 otherwise. The momentum starts at 0.
 */
import { np, valueAndGradient, type JArray } from "../core/engine.js";
import { OPTIONS } from "../core/options.js";
import { pointMass } from "../core/posterior.js";
import { use } from "../core/spec.js";
import { keep, mapTree, zerosLike } from "../core/tree.js";
import type { LogDensityFn, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { addNoise, SAMPLER_RUN_COST, samplerPlan, samplerSchedules, stepSamplerOptions, stepSchedule, type SamplerInfo, type SamplerOptions, type StepSamplerOptions, taskStep } from "./common.js";

/** Options of {@link create}: the sampler's, plus friction and gradient-noise estimate. */
export interface SghmcOptions extends SamplerOptions {
  /** Friction alpha = 1 - momentum (default 0.05). */
  readonly friction?: number;
  /** Estimate betaHat of the gradient noise, 0 <= betaHat < alpha (default 0). */
  readonly betaHat?: number;
}

/** Default friction of {@link create} and the specs of `sghmc` and `csghmc`. */
export const DEFAULT_FRICTION = 0.05;

/** SGHMC state: parameters, momentum and the step counter. */
export type SghmcState = { params: Params; momentum: Params; step: JArray };

/** Build an SGHMC sampler on a (tempered) log density. */
export function create(logDensity: LogDensityFn, opts: SghmcOptions): ModelMethod<SghmcState, SamplerInfo> {
  const { stepSize, gate } = samplerSchedules("sghmc", opts);
  const n = opts.dataSize;
  const alpha = opts.friction ?? DEFAULT_FRICTION;
  const betaHat = opts.betaHat ?? 0;
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`sghmc: friction must be in (0, 1], got ${alpha}`);
  if (!(betaHat >= 0 && betaHat < alpha)) throw new RangeError(`sghmc: betaHat must be in [0, friction), got ${betaHat}`);
  return {
    init(k, params) {
      k.dispose();
      return { params, momentum: zerosLike(params), step: np.array(0) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lr = stepSize(t.ref);
      const [ld, g] = valueAndGradient(logDensity)(keep(state.params), batch);
      const decayed = mapTree((v, gi) => v.mul(1 - alpha).add(gi.mul(lr.ref)), state.momentum, g);
      const momentum = addNoise(k, decayed, lr.ref.mul(2 * (alpha - betaHat)), gate, t.ref);
      const params = mapTree((p, v) => p.add(v), state.params, keep(momentum));
      return [{ params, momentum, step: t.add(1) }, { loss: ld.mul(-1 / n), lr }];
    },
    posterior: (state) => pointMass(state.params),
  };
}

/** Options of `--method sghmc`. */
export interface SghmcSpecOptions extends StepSamplerOptions {
  friction: number;
}

/** `--method sghmc`. */
export const spec: ModelMethodSpec<SghmcSpecOptions> = {
  name: "sghmc",
  family: "sgmcmc",
  summary: "stochastic gradient HMC, momentum form",
  cost: SAMPLER_RUN_COST,
  paper: "Chen, Fox & Guestrin 2014, Stochastic gradient Hamiltonian Monte Carlo",
  options: {
    // Regression: 1e-3 / N, chosen on inner validation splits of the UCI training parts over 2e-3 / N
    // (docs/tuning.md): the larger step let chains run away on the low-noise sets (energy, yacht).
    ...stepSamplerOptions(...taskStep(2e-3, 1e-3)),
    friction: use(OPTIONS.friction, DEFAULT_FRICTION),
  },
  plan: (o) => samplerPlan(o),
  build: (ctx, o) => create(ctx.logDensity, { stepSize: stepSchedule(o), friction: o.friction, dataSize: ctx.dataSize }),
};
