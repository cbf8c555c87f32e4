/**
 * The model contract: a probabilistic model is `{ apply, likelihood, prior }`, and every inference
 * method sees it only through {@link logDensity}.
 *
 * Log density (the one definition every method uses):
 *
 *   log p_T(theta | batch) = (1/T) [ log p(theta) + N * (1/n) sum_{i in batch} log p(y_i | x_i, theta) ]
 *
 * with N the training-set size, n the batch size and T the temperature. The minibatch term is an
 * unbiased estimate of the full-data log-likelihood. T = 1 is the Bayes posterior; T < 1 is a "cold"
 * posterior (Wenzel et al. 2020, "How good is the Bayes posterior in deep neural networks really?"),
 * which tempers prior and likelihood together.
 */
import { split, type JArray, type Key } from "../core/engine.js";
import { LOG_2PI } from "../core/math.js";
import type { Info, InferenceMethod } from "../core/method.js";
import type { MethodSpec } from "../core/spec.js";
import { free, keep, stackTrees, type Tree } from "../core/tree.js";
import type { Likelihood } from "./likelihood.js";
import type { Network } from "./network.js";
import { gaussianLogPrior, type PriorSpec } from "./prior.js";

/** Model parameters: the network's, plus the likelihood's own when it has any. */
export type Params = { net: Tree; lik?: Tree };

/** A minibatch: inputs `[n, ...inputShape]` and targets `[n]` (int32 labels or float32 values). */
export type Batch = { x: JArray; y: JArray };

/** A probabilistic model. All functions consume their array arguments. */
export interface Model {
  readonly network: Network;
  readonly likelihood: Likelihood;
  readonly prior: PriorSpec;
  /** Fresh parameters (consumes the key). */
  init(key: Key): Params;
  /** Network outputs `[n, d]`. */
  apply(params: Params, x: JArray): JArray;
  /** log p(theta), including the likelihood parameters' prior. */
  logPrior(params: Params): JArray;
  /** Per-example log p(y_i | x_i, theta), shape `[n]`. */
  logLik(params: Params, batch: Batch): JArray;
}

/** Assemble a model from its three parts. */
export function makeModel(network: Network, likelihood: Likelihood, prior: PriorSpec): Model {
  const likSigma = likelihood.spec.kind === "gaussian" ? likelihood.spec.sigma : 1;
  return {
    network,
    likelihood,
    prior,
    init(key) {
      const lik = likelihood.initParams();
      return lik ? { net: network.init(key), lik } : { net: network.init(key) };
    },
    apply(params, x) {
      if (params.lik) free(params.lik);
      return network.apply(params.net, x);
    },
    logPrior(params) {
      const lp = gaussianLogPrior(prior, params.net);
      if (!params.lik) return lp;
      // log sigma ~ N(log sigma0, 1): keeps a learned noise scale proper and near its starting value.
      const ls = (params.lik as { logSigma: JArray }).logSigma;
      const d = ls.sub(Math.log(likSigma));
      return lp.add(d.ref.mul(d).mul(-0.5).sub(0.5 * LOG_2PI));
    },
    logLik(params, batch) {
      return likelihood.logLik(network.apply(params.net, batch.x), batch.y, params.lik);
    },
  };
}

/**
 * Independent initialisations of `copies` copies of a model (ensemble members, chains), stacked on a
 * leading axis; copy i starts from `model.init(split(k, copies)[i])`. Consumes `k`.
 */
export function initMembers(model: Model, k: Key, copies: number): Params {
  return stackTrees(split(k, copies).map((ki) => model.init(ki)));
}

/** Options of {@link logDensity}. */
export interface LogDensityOptions {
  /** N, the number of training examples. */
  readonly dataSize: number;
  /** T, the posterior temperature (default 1). */
  readonly temperature?: number;
}

/** `logDensity(params, batch)`: a scalar; consumes its arguments. */
export type LogDensityFn = (params: Params, batch: Batch) => JArray;

/**
 * The tempered minibatch log posterior density (see the module comment for the formula).
 * @example
 * const ld = logDensity(model, { dataSize: 8000 });
 * const g = grad(ld)(params, batch);
 */
export function logDensity(model: Model, opts: LogDensityOptions): LogDensityFn {
  const n = opts.dataSize;
  const t = opts.temperature ?? 1;
  if (!(n > 0)) throw new RangeError(`logDensity: dataSize must be > 0, got ${n}`);
  if (!(t > 0)) throw new RangeError(`logDensity: temperature must be > 0, got ${t}`);
  return (params, batch) => {
    const ll = model.logLik(keep(params), batch).mean().mul(n);
    const lp = model.logPrior(params);
    const total = lp.add(ll);
    return t === 1 ? total : total.mul(1 / t);
  };
}

/** An inference method on a model's parameters and minibatches. */
export type ModelMethod<S extends Tree = Tree, I extends Info = Info> = InferenceMethod<S, I, Params, Batch>;

/** The spec of a method on models (core/spec.ts), with options type `O`. */
export type ModelMethodSpec<O> = MethodSpec<O, Model, Params, Batch>;
