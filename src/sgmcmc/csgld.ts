/**
 * Cyclical SGLD (Zhang, Li, Zhang, Chen & Wilson 2020, "Cyclical stochastic gradient MCMC for Bayesian
 * deep learning"): the SGLD update of src/sgmcmc/sgld.ts with the cyclical cosine step size
 *
 *   eps_t = (eps0 / 2) (cos(pi (t mod L) / L) + 1),   L = ceil(budget / cycles),
 *
 * no noise in the first `explore` fraction of each cycle (an optimiser's step that moves to a new mode),
 * and samples collected at the end of each cycle.
 */
import { OPTIONS } from "../core/options.js";
import { use } from "../core/spec.js";
import type { ModelMethodSpec } from "../models/model.js";
import { CYCLICAL_RUN_COST, cyclicalRunOptions, cyclicalSchedules, samplerPlan, type CyclicalRunOptions, taskStep } from "./common.js";
import { create } from "./sgld.js";

/** Options of `--method csgld`. */
export interface CsgldOptions extends CyclicalRunOptions {
  lr: number;
}

/** `--method csgld`. */
export const spec: ModelMethodSpec<CsgldOptions> = {
  name: "csgld",
  family: "sgmcmc",
  summary: "cyclical SGLD: cosine step-size cycles, noise and samples only at the end of each",
  cost: CYCLICAL_RUN_COST,
  paper: "Zhang, Li, Zhang, Chen & Wilson 2020, Cyclical stochastic gradient MCMC for Bayesian deep learning",
  options: {
    ...cyclicalRunOptions(),
    lr: use(OPTIONS.lr, ...taskStep(2e-2, 2e-3)),
  },
  plan: (o) => samplerPlan(o, cyclicalSchedules(o).noiseGate),
  build: (ctx, o) => create(ctx.logDensity, { ...cyclicalSchedules(o), dataSize: ctx.dataSize }),
};
