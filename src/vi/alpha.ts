/**
 * Alpha-divergence objectives for the network-scale mean-field Gaussian q (src/vi/meanfield.ts), with
 * K reparameterised samples per step and Adam (src/optim/transform.ts):
 *
 * - `"bb-alpha"`: black-box alpha (Hernandez-Lobato, Li, Rowland, Bui, Hernandez-Lobato & Turner 2016,
 *   "Black-box alpha divergence minimization") in the simple form of Li & Gal 2017 ("Dropout inference
 *   in Bayesian neural networks with alpha-divergences"), minimised:
 *
 *     L_alpha(q) = KL(q || p) - (1/alpha) sum_{n=1..N} log (1/K) sum_{k=1..K} p(y_n | x_n, theta_k)^alpha,
 *
 *   theta_k ~ q, the data sum estimated as (N/n) x the minibatch sum. alpha -> 0 gives the negative
 *   ELBO with K samples (alpha = 0 is implemented as that limit, exactly); alpha = 1 is the
 *   predictive-likelihood objective; alpha = 0.5 is the usual choice. With `"lrt"` / `"flipout"` each
 *   example gets its own K effective draws (exact marginals, see src/vi/bbb.ts).
 *
 * - `"vr"`: the Renyi variational bound (Li & Turner 2016, "Renyi divergence variational inference"),
 *   maximised (we minimise -L_VR / N):
 *
 *     L_VR(q) = 1/(1 - alpha) log (1/K) sum_k [ p(theta_k, D) / q(theta_k) ]^(1 - alpha),
 *     log p(theta, D) ~ log p(theta) + N (1/n) sum_{i in batch} log p(y_i | x_i, theta),
 *
 *   alpha -> 1 gives the ELBO (alpha = 1 is implemented as that limit, exactly), alpha = 0 the
 *   importance-weighted bound (Burda et al. 2016), alpha < 0 bounds above the evidence. It needs
 *   whole-network draws theta_k, so it always uses plain reparameterisation.
 *
 * Both log-mean-exp's are written as the "power mean" (1/b) log mean_k exp(b l_k) =
 * m + (1/b) log1p(mean_k expm1(b (l_k - m))), m = max_k l_k (min for b < 0): stable for every b and
 * accurate as b -> 0, where it tends to mean_k l_k (so small alpha is numerically close to the limit).
 *
 * Reported per step (per datum): `loss` the minimised objective, `nll` -mean log-likelihood over the K
 * samples, `kl` the KL(q || p) estimate (analytic for the Gaussian prior; for VR the Monte Carlo
 * mean of log q - log p over the K draws).
 *
 * Posterior: as in src/vi/bbb.ts, the last iterate or, with `averageFrom` (the `alpha` spec: half the
 * run), the average of the iterates after it (exact-posterior test: 3.8% largest variance error
 * against black-box alpha's optimum, the last iterate 6%).
 *
 * @example
 * const vi = create(model, { dataSize: N, objective: "bb-alpha", alpha: 0.5, samples: 10 });
 * let state = vi.init(key(0), model.init(key(1)));
 * [state, info] = vi.step(key(2), state, batch);   // inside compile(...)
 */
import { gradientWithAux, np, split, type JArray, type Key } from "../core/engine.js";
import type { Schedule } from "../core/schedule.js";
import { OPTIONS } from "../core/options.js";
import { use } from "../core/spec.js";
import { free, keep } from "../core/tree.js";
import type { Batch, Model, ModelMethod, ModelMethodSpec } from "../models/model.js";
import { adam, type GradientTransformation } from "../optim/transform.js";
import {
  BBB_DEFAULTS,
  checkEstimator,
  meanFieldDescent,
  meanFieldRunOptions,
  priorTerms,
  sampledLogLik,
  secondHalf,
  variationalPlan,
  viLogPrior,
  type BbbSpecOptions,
  type BbbState,
  type Estimator,
  type VIPrior,
} from "./bbb.js";
import { likPriorOf, logProbFromSigma, meanFieldKind, sampleWithSigma, withSigma, type MeanField } from "./meanfield.js";

/** Which alpha objective (see the module comment). */
export type AlphaObjective = "bb-alpha" | "vr";

/** Options of {@link create}. */
export interface AlphaOptions {
  /** N, the number of training examples. */
  readonly dataSize: number;
  /** Objective (default `"bb-alpha"`). */
  readonly objective?: AlphaObjective;
  /** alpha: BB-alpha needs alpha >= 0 (0 = ELBO); VR takes any finite alpha (1 = ELBO). Default 0.5. */
  readonly alpha?: number;
  /** K, samples from q per step (default 5). */
  readonly samples?: number;
  /** BB-alpha's likelihood estimator (default `"reparam"`); VR always uses `"reparam"`. */
  readonly estimator?: Estimator;
  /** Adam learning rate (default 1e-3); ignored when `optimizer` is given. */
  readonly optimizer?: GradientTransformation;
  readonly learningRate?: number | Schedule;
  /** Prior (default the model's Gaussian prior). */
  readonly prior?: VIPrior;
  /** Initial standard deviation of every weight in q (default 1e-2). */
  readonly sigma0?: number;
  /** Steps after which the posterior is the running average of the iterates (as in bbb; default never). */
  readonly averageFrom?: number;
}

/** Defaults of {@link create} besides those shared with BBB, which the `alpha` spec takes too. */
export const ALPHA_DEFAULTS = { alpha: 0.5, samples: 5 } as const;

/** Per-step information (per datum). */
export type AlphaInfo = { loss: JArray; nll: JArray; kl: JArray };

/**
 * (1/b) log (1/K) sum_k exp(b l_k) over `axis` 0 of `l` `[K, ...]`, stably and accurately for small |b|;
 * b = 0 returns the mean (the limit). Consumes `l`.
 */
export function powerLogMeanExp(l: JArray, b: number): JArray {
  if (b === 0) return l.mean(0);
  const m = b > 0 ? l.ref.max(0) : l.ref.min(0);
  const d = l.sub(m.ref.reshape([1, ...m.shape]));
  return m.add(np.log1p(np.expm1(d.mul(b)).mean(0)).mul(1 / b));
}

/** Stack K arrays of one shape on a new leading axis (consumes them). */
function stackK(xs: JArray[]): JArray {
  return xs.length === 1 ? xs[0].reshape([1, ...xs[0].shape]) : np.stack(xs, 0);
}

/**
 * Build BB-alpha or Renyi-bound VI for a model (see the module comment).
 * @param model the model (its network's `applyWith` is needed for BB-alpha with `"lrt"` / `"flipout"`).
 */
export function create(model: Model, opts: AlphaOptions): ModelMethod<BbbState, AlphaInfo> {
  const n = opts.dataSize;
  if (!(n > 0)) throw new RangeError(`alpha: dataSize must be > 0, got ${n}`);
  const objectiveKind = opts.objective ?? "bb-alpha";
  if (objectiveKind !== "bb-alpha" && objectiveKind !== "vr") throw new RangeError(`alpha: objective must be "bb-alpha" or "vr", got '${objectiveKind}'`);
  const alpha = opts.alpha ?? ALPHA_DEFAULTS.alpha;
  if (!Number.isFinite(alpha)) throw new RangeError(`alpha: alpha must be finite, got ${alpha}`);
  if (objectiveKind === "bb-alpha" && alpha < 0) throw new RangeError(`alpha: BB-alpha needs alpha >= 0, got ${alpha}`);
  const K = opts.samples ?? ALPHA_DEFAULTS.samples;
  if (!(Number.isInteger(K) && K >= 1)) throw new RangeError(`alpha: samples must be a positive integer, got ${K}`);
  const estimator = objectiveKind === "vr" ? "reparam" : checkEstimator(model, opts.estimator);
  if (objectiveKind === "vr" && opts.estimator !== undefined && opts.estimator !== "reparam") {
    throw new RangeError(`alpha: the VR bound needs whole-network draws; estimator must be "reparam", got '${opts.estimator}'`);
  }
  const prior = opts.prior ?? model.prior;
  const likPrior = likPriorOf(model);
  const sigma0 = opts.sigma0 ?? BBB_DEFAULTS.sigma0;
  const opt = opts.optimizer ?? adam(opts.learningRate ?? BBB_DEFAULTS.learningRate);

  /** BB-alpha: L_alpha / N with the minibatch estimate; consumes all. */
  const bbAlpha = (q: MeanField, k: Key, batch: Batch): [JArray, AlphaInfo] => {
    const keys = split(k, K + 1);
    const qs = withSigma(q);
    const lls: JArray[] = [];
    for (let i = 0; i < K; i++) {
      const b = i === K - 1 ? batch : keep(batch);
      lls.push(sampledLogLik(model, estimator, keys[i], keep(qs), b));
    }
    const ll = stackK(lls); // [K, n]
    const nll = ll.ref.mean().mul(-1);
    const data = powerLogMeanExp(ll, alpha).mean().mul(-1); // -(1/alpha) mean_n log mean_k p^alpha
    const [kl] = priorTerms(prior, likPrior, 1, keys[K], qs);
    const loss = data.add(kl.ref.mul(1 / n));
    return [loss.ref, { loss, nll, kl }];
  };

  /** VR: -L_VR / N; consumes all. */
  const vr = (q: MeanField, k: Key, batch: Batch): [JArray, AlphaInfo] => {
    const keys = split(k, K);
    const qs = withSigma(q);
    const logW: JArray[] = [];
    const lls: JArray[] = [];
    const kls: JArray[] = [];
    for (let i = 0; i < K; i++) {
      const b = i === K - 1 ? batch : keep(batch);
      const theta = sampleWithSigma(keys[i], keep(qs));
      const ll = model.logLik(keep(theta), b).mean();
      const lq = logProbFromSigma(keep(qs), keep(theta));
      const lp = viLogPrior(prior, likPrior, theta);
      const klI = lq.sub(lp);
      lls.push(ll.ref);
      logW.push(ll.mul(n).sub(klI.ref));
      kls.push(klI);
    }
    free(qs);
    const nll = stackK(lls).mean().mul(-1);
    const kl = stackK(kls).mean();
    const loss = powerLogMeanExp(stackK(logW), 1 - alpha).mul(-1 / n);
    return [loss.ref, { loss, nll, kl }];
  };

  const objective = objectiveKind === "vr" ? vr : bbAlpha;
  const gradFn = gradientWithAux(objective);
  return meanFieldDescent(opt, sigma0, opts.averageFrom, "alpha", (q, k, batch, t) => {
    t.dispose();
    return gradFn(q, k, batch);
  });
}

/** Options of `--method alpha`. */
export interface AlphaSpecOptions extends Omit<BbbSpecOptions, "temperature"> {
  alpha: number;
  objective: AlphaObjective;
}

const { temperature: _noTemperature, ...alphaRunOptions } = meanFieldRunOptions(ALPHA_DEFAULTS.samples);

/** `--method alpha` (no temperature: the divergence's alpha plays that part). */
export const spec: ModelMethodSpec<AlphaSpecOptions> = {
  name: "alpha",
  family: "vi",
  summary: "mean-field alpha-divergence VI: black-box alpha or the Renyi bound",
  cost: "5x MAP (20 epochs of 5 weight draws per step)",
  paper: "Hernandez-Lobato et al. 2016, Black-box alpha divergence minimization; Li & Gal 2017; Li & Turner 2016, Renyi divergence variational inference",
  options: {
    ...alphaRunOptions,
    alpha: use(OPTIONS.alpha, ALPHA_DEFAULTS.alpha),
    objective: use(OPTIONS.objective, "bb-alpha"),
  },
  kinds: [meanFieldKind],
  plan: variationalPlan,
  build: (ctx, o) => create(ctx.model, { dataSize: ctx.dataSize, alpha: o.alpha, objective: o.objective, samples: o.mc, learningRate: o.lr, sigma0: o.initStd, averageFrom: secondHalf(o.epochs, ctx.stepsPerEpoch) }),
};
