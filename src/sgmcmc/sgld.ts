/**
 * Stochastic gradient Langevin dynamics (Welling & Teh 2011, "Bayesian learning via stochastic
 * gradient Langevin dynamics").
 *
 *   theta_{t+1} = theta_t + (eps_t / 2) grad log p_T(theta_t | batch) + sqrt(eps_t) n_t xi_t,   xi_t ~ N(0, I),
 *
 * where log p_T(theta | batch) = (log p(theta) + N mean_batch log p(y | x, theta)) / T is the tempered
 * log density the sampler is built with (so the drift is -(eps/2) grad U), eps_t comes from the step
 * size schedule and n_t is the noise gate: 1, or 0 in a cyclical schedule's exploration stage
 * (Zhang et al. 2020; `csgld`).
 *
 * @example
 * const s = create(logDensity(model, { dataSize: N }), { stepSize: 1e-5, dataSize: N });
 * let state = s.init(key(0), model.init(key(1)));
 * [state, info] = s.step(key(2), state, batch);
 */
import { np, valueAndGradient, type JArray } from "../core/engine.js";
import { pointMass } from "../core/posterior.js";
import { keep, mapTree } from "../core/tree.js";
import type { LogDensityFn, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { addNoise, SAMPLER_RUN_COST, samplerPlan, samplerSchedules, stepSamplerOptions, stepSchedule, type SamplerInfo, type SamplerOptions, type StepSamplerOptions, taskStep } from "./common.js";

/** SGLD state: parameters and the step counter (float32 scalar). */
export type SgldState = { params: Params; step: JArray };

/** Build an SGLD sampler on a (tempered) log density. */
export function create(logDensity: LogDensityFn, opts: SamplerOptions): ModelMethod<SgldState, SamplerInfo> {
  const { stepSize, gate } = samplerSchedules("sgld", opts);
  const n = opts.dataSize;
  return {
    init(k, params) {
      k.dispose();
      return { params, step: np.array(0) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lr = stepSize(t.ref);
      const [ld, g] = valueAndGradient(logDensity)(keep(state.params), batch);
      const half = lr.ref.mul(0.5);
      const drift = mapTree((p, gi) => p.add(gi.mul(half.ref)), state.params, g);
      half.dispose();
      const params = addNoise(k, drift, lr.ref, gate, t.ref);
      return [{ params, step: t.add(1) }, { loss: ld.mul(-1 / n), lr }];
    },
    posterior: (state) => pointMass(state.params),
  };
}

/** `--method sgld`. */
export const spec: ModelMethodSpec<StepSamplerOptions> = {
  name: "sgld",
  family: "sgmcmc",
  summary: "stochastic gradient Langevin dynamics",
  cost: SAMPLER_RUN_COST,
  paper: "Welling & Teh 2011, Bayesian learning via stochastic gradient Langevin dynamics",
  options: stepSamplerOptions(...taskStep(2e-2, 1e-3)),
  plan: (o) => samplerPlan(o),
  build: (ctx, o) => create(ctx.logDensity, { stepSize: stepSchedule(o), dataSize: ctx.dataSize }),
};
