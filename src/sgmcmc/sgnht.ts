/**
 * Stochastic gradient Nose-Hoover thermostat (Ding, Fang, Babbush, Chen, Skeel & Neven 2014, "Bayesian
 * sampling using stochastic gradient thermostats"), in the momentum form of SGHMC (v = p h, eta = h^2,
 * xi = friction):
 *
 *   v_{t+1}     = (1 - xi_t) v_t + eta_t grad log p_T(theta_t | batch) + sqrt(2 a eta_t) zeta_t,   zeta_t ~ N(0, I)
 *   theta_{t+1} = theta_t + v_{t+1}
 *   xi_{t+1}    = xi_t + |v_{t+1}|^2 / D - eta_t
 *
 * D is the number of parameters and a the injected noise's friction, at which xi starts. The thermostat
 * xi is the friction of SGHMC made dynamic: it grows while the kinetic energy per coordinate |v|^2 / D
 * exceeds eta (the value it has at the target's temperature in these units) and shrinks below it, so the
 * unknown extra heat of minibatch gradient noise is removed without an estimate of it (SGHMC's
 * betaHat). The momentum starts at its equilibrium law, v_0 ~ N(0, eta_0 I).
 *
 * @example
 * const s = create(logDensity(model, { dataSize: N }), { stepSize: 2e-3 / N, dataSize: N });
 */
import { np, valueAndGradient, type JArray } from "../core/engine.js";
import { normalTree } from "../core/normal.js";
import { OPTIONS } from "../core/options.js";
import { pointMass } from "../core/posterior.js";
import { use } from "../core/spec.js";
import { keep, leaves, mapTree, sumAll, treeSize } from "../core/tree.js";
import type { LogDensityFn, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { DEFAULT_FRICTION } from "./sghmc.js";
import { SAMPLER_RUN_COST, samplerPlan, samplerSchedules, stepSamplerOptions, stepSchedule, type SamplerOptions, type StepSamplerOptions, taskStep } from "./common.js";

/** Options of {@link create}: the sampler's, plus the noise friction a. */
export interface SgnhtOptions extends SamplerOptions {
  /** a: friction of the injected noise and the thermostat's starting value (default 0.05). */
  readonly friction?: number;
}

/** SGNHT state: parameters, momentum, thermostat xi and the step counter. */
export type SgnhtState = { params: Params; momentum: Params; thermostat: JArray; step: JArray };

/** Per-step information: the sampler's, plus the thermostat after the step. */
export type SgnhtInfo = { loss: JArray; lr: JArray; thermostat: JArray };

/** Build an SGNHT sampler on a (tempered) log density. */
export function create(logDensity: LogDensityFn, opts: SgnhtOptions): ModelMethod<SgnhtState, SgnhtInfo> {
  const { stepSize } = samplerSchedules("sgnht", opts);
  if (opts.noiseGate) throw new RangeError("sgnht: a noise gate would switch the thermostat's heat source off; use sghmc for cyclical schedules");
  const n = opts.dataSize;
  const a = opts.friction ?? DEFAULT_FRICTION;
  if (!(a > 0 && a <= 1)) throw new RangeError(`sgnht: friction must be in (0, 1], got ${a}`);
  return {
    init(k, params) {
      const lr0 = stepSize(np.array(0));
      const momentum = mapTree((z) => z.mul(np.sqrt(lr0.ref)), normalTree(k, params));
      lr0.dispose();
      return { params, momentum, thermostat: np.array(a), step: np.array(0) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lr = stepSize(t.ref);
      const d = treeSize(state.params);
      const [ld, g] = valueAndGradient(logDensity)(keep(state.params), batch);
      const xi = state.thermostat;
      const scale = np.sqrt(lr.ref.mul(2 * a));
      const zeta = normalTree(k, state.momentum);
      const momentum = mapTree(
        (v, gi, z) => v.mul(xi.ref.mul(-1).add(1)).add(gi.mul(lr.ref)).add(z.mul(scale.ref)),
        state.momentum,
        g,
        zeta,
      );
      scale.dispose();
      const kinetic = sumAll(leaves(momentum).map((v) => v.ref.mul(v.ref).sum())).mul(1 / d);
      const thermostat = xi.add(kinetic).sub(lr.ref);
      const params = mapTree((p, v) => p.add(v), state.params, keep(momentum));
      return [{ params, momentum, thermostat: thermostat.ref, step: t.add(1) }, { loss: ld.mul(-1 / n), lr, thermostat }];
    },
    posterior: (state) => pointMass(state.params),
  };
}

/** Options of `--method sgnht`. */
export interface SgnhtSpecOptions extends StepSamplerOptions {
  friction: number;
}

/** `--method sgnht`. */
export const spec: ModelMethodSpec<SgnhtSpecOptions> = {
  name: "sgnht",
  family: "sgmcmc",
  summary: "stochastic gradient Nose-Hoover thermostat: SGHMC whose friction adapts to the gradient noise",
  cost: SAMPLER_RUN_COST,
  paper: "Ding, Fang, Babbush, Chen, Skeel & Neven 2014, Bayesian sampling using stochastic gradient thermostats",
  options: { ...stepSamplerOptions(...taskStep(2e-3, 2e-3)), friction: use(OPTIONS.friction, DEFAULT_FRICTION) },
  plan: (o) => samplerPlan(o),
  build: (ctx, o) => create(ctx.logDensity, { stepSize: stepSchedule(o), friction: o.friction, dataSize: ctx.dataSize }),
};
