/**
 * Preconditioned SGLD with an RMSprop preconditioner (Li, Chen, Carlson & Carin 2016, "Preconditioned
 * stochastic gradient Langevin dynamics for deep neural networks").
 *
 *   gbar_t  = grad log p_T(theta_t | batch) / N               (per-datum gradient scale)
 *   V_t     = beta V_{t-1} + (1 - beta) gbar_t^2,  V_{-1} = 0
 *   G_t     = 1 / (lambda + sqrt(V_t / (1 - beta^(t+1))))
 *   theta_{t+1} = theta_t + (eps_t / 2) G_t grad log p_T(theta_t | batch) + sqrt(eps_t) n_t sqrt(G_t) xi_t
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
 *
 * Frozen preconditioner (`adaptSteps`, the CLI's default: the burn-in): V adapts for the first
 * `adaptSteps` steps and is then held fixed, so the sampling phase is Langevin dynamics with a constant
 * preconditioner G, whose Gamma term is exactly zero: the draws target p_T up to the discretisation
 * error. A V that keeps following the current gradient makes the chain drift towards the stationary law
 * of the dynamics without Gamma; on a Gaussian target at beta = 0.99 that inflated or shrank the
 * variances by tens of percent, and more for smaller steps (test/sgmcmc.test.ts).
 */
import { np, valueAndGradient, type JArray } from "../core/engine.js";
import { pointMass } from "../core/posterior.js";
import { keep, mapTree, zerosLike } from "../core/tree.js";
import type { LogDensityFn, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { addNoise, SAMPLER_RUN_COST, samplerPlan, samplerSchedules, stepSamplerOptions, stepSchedule, type SamplerInfo, type SamplerOptions, type StepSamplerOptions, taskStep } from "./common.js";

/** Options of {@link create}: the sampler's, plus the RMSprop decay and damping. */
export interface PsgldOptions extends SamplerOptions {
  /** Decay of the squared-gradient average (default 0.99). */
  readonly beta?: number;
  /** Damping lambda (default 1e-5). */
  readonly lambda?: number;
  /** Steps during which V adapts; held fixed afterwards (default: never frozen). */
  readonly adaptSteps?: number;
}

/** pSGLD state: parameters, squared-gradient average V and the step counter. */
export type PsgldState = { params: Params; v: Params; step: JArray };

/** Build a pSGLD sampler on a (tempered) log density. */
export function create(logDensity: LogDensityFn, opts: PsgldOptions): ModelMethod<PsgldState, SamplerInfo> {
  const { stepSize, gate } = samplerSchedules("psgld", opts);
  const n = opts.dataSize;
  const beta = opts.beta ?? 0.99;
  const lambda = opts.lambda ?? 1e-5;
  if (!(beta > 0 && beta < 1)) throw new RangeError(`psgld: beta must be in (0, 1), got ${beta}`);
  if (!(lambda > 0)) throw new RangeError(`psgld: lambda must be > 0, got ${lambda}`);
  const adapt = opts.adaptSteps ?? Infinity;
  if (!(adapt >= 1)) throw new RangeError(`psgld: adaptSteps must be >= 1, got ${adapt}`);
  return {
    init(k, params) {
      k.dispose();
      return { params, v: zerosLike(params), step: np.array(0) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lr = stepSize(t.ref);
      const [ld, g] = valueAndGradient(logDensity)(keep(state.params), batch);
      const frozen = Number.isFinite(adapt);
      const adapting = frozen ? np.less(t.ref, adapt) : undefined;
      const v = mapTree((vi, gi) => {
        const gb = gi.mul(1 / n);
        const next = vi.ref.mul(beta).add(gb.ref.mul(gb).mul(1 - beta));
        if (!adapting) {
          vi.dispose();
          return next;
        }
        return np.where(adapting.ref, next, vi);
      }, state.v, keep(g));
      adapting?.dispose();
      // 1 / (1 - beta^(t'+1)), the bias correction of the average, t' = min(t, adaptSteps - 1).
      const tc = frozen ? np.minimum(t.ref, adapt - 1) : t.ref;
      const corr = np.reciprocal(np.exp(tc.add(1).mul(Math.log(beta))).mul(-1).add(1));
      const precond = mapTree((vi) => np.reciprocal(np.sqrt(vi.mul(corr.ref)).add(lambda)), keep(v));
      corr.dispose();
      const half = lr.ref.mul(0.5);
      const drift = mapTree((p, gi, pc) => p.add(gi.mul(pc).mul(half.ref)), state.params, g, keep(precond));
      half.dispose();
      // noise variance eps G per coordinate
      const variance = mapTree((pc) => pc.mul(lr.ref), precond);
      const params = addNoise(k, drift, variance, gate, t.ref);
      return [{ params, v, step: t.add(1) }, { loss: ld.mul(-1 / n), lr }];
    },
    posterior: (state) => pointMass(state.params),
  };
}

/** `--method psgld`. */
export const spec: ModelMethodSpec<StepSamplerOptions> = {
  name: "psgld",
  family: "sgmcmc",
  summary: "preconditioned SGLD with an RMSprop preconditioner",
  cost: SAMPLER_RUN_COST,
  paper: "Li, Chen, Carlson & Carin 2016, Preconditioned stochastic gradient Langevin dynamics for deep neural networks",
  // The preconditioner scales with 1 / |grad log p_T|, which absorbs the temperature: no T here. The
  // classification step was chosen on training digits with the drop schedule (docs/priors.md).
  options: stepSamplerOptions(...taskStep(6.4e-3, 1e-4)),
  plan: (o) => samplerPlan(o),
  // The preconditioner adapts during burn-in and is frozen for sampling (see the module comment).
  build: (ctx, o) => create(ctx.logDensity, { stepSize: stepSchedule(o), dataSize: ctx.dataSize, adaptSteps: Math.max(1, o.burnin) }),
};
