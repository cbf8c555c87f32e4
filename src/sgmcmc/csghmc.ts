/**
 * Cyclical SGHMC (Zhang, Li, Zhang, Chen & Wilson 2020, "Cyclical stochastic gradient MCMC for Bayesian
 * deep learning"): the SGHMC update of src/sgmcmc/sghmc.ts with the cyclical cosine learning rate,
 * no noise in the exploration stage of each cycle, and samples at the end of each cycle (see
 * src/sgmcmc/csgld.ts).
 */
import { OPTIONS } from "../core/options.js";
import { use } from "../core/spec.js";
import type { ModelMethodSpec } from "../models/model.js";
import { CYCLICAL_RUN_COST, cyclicalRunOptions, cyclicalSchedules, samplerPlan, type CyclicalRunOptions, taskStep } from "./common.js";
import { create, DEFAULT_FRICTION } from "./sghmc.js";

/** Options of `--method csghmc`. */
export interface CsghmcOptions extends CyclicalRunOptions {
  lr: number;
  friction: number;
}

/** `--method csghmc`. */
export const spec: ModelMethodSpec<CsghmcOptions> = {
  name: "csghmc",
  family: "sgmcmc",
  summary: "cyclical SGHMC: cosine learning-rate cycles, noise and samples only at the end of each",
  cost: CYCLICAL_RUN_COST,
  paper: "Zhang, Li, Zhang, Chen & Wilson 2020, Cyclical stochastic gradient MCMC for Bayesian deep learning",
  options: {
    ...cyclicalRunOptions(),
    lr: use(OPTIONS.lr, ...taskStep(4e-3, 4e-3)),
    friction: use(OPTIONS.friction, DEFAULT_FRICTION),
  },
  plan: (o) => samplerPlan(o, cyclicalSchedules(o).noiseGate),
  build: (ctx, o) => create(ctx.logDensity, { ...cyclicalSchedules(o), friction: o.friction, dataSize: ctx.dataSize }),
};
