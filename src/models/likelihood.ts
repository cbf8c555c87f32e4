/**
 * Likelihoods p(y | f(x)): the observation model on top of a network's outputs.
 * `logLik` returns one value per example so callers can average, sum or vmap as they need.
 */
import { np, nn, type JArray } from "../core/engine.js";
import { LOG_2PI } from "../core/math.js";
import type { Tree } from "../core/tree.js";


/** A likelihood's description as saved in posterior.json. */
export type LikelihoodSpec =
  | { kind: "categorical" }
  | { kind: "gaussian"; noise: "fixed"; sigma: number }
  | { kind: "gaussian"; noise: "learned"; sigma: number };

/** Observation model. `logLik` consumes `out`, `y` and `likParams`. */
export interface Likelihood {
  readonly spec: LikelihoodSpec;
  /** Network outputs this likelihood needs for `k` classes / 1 target. */
  outputDim(numClasses?: number): number;
  /** Its own learnable parameters (e.g. `{ logSigma }`), or `undefined`. */
  initParams(): Tree | undefined;
  /** Per-example log-likelihood `[n]` from outputs `[n, d]` and targets `[n]`. */
  logLik(out: JArray, y: JArray, likParams: Tree | undefined): JArray;
}

/**
 * Categorical likelihood with softmax link: log p(y | f) = f_y - logsumexp(f).
 * Targets are int32 class indices.
 */
export function categorical(): Likelihood {
  return {
    spec: { kind: "categorical" },
    outputDim: (k) => {
      if (!k || k < 2) throw new RangeError(`categorical likelihood: need at least 2 classes, got ${k}`);
      return k;
    },
    initParams: () => undefined,
    logLik(out, y) {
      const k = out.shape[out.ndim - 1];
      return nn.logSoftmax(out, -1).mul(nn.oneHot(y, k)).sum(-1);
    },
  };
}

/**
 * Gaussian likelihood, log p(y | f) = -1/2 log(2 pi sigma^2) - (y - f)^2 / (2 sigma^2), on the
 * network's single output. `noise: "fixed"` keeps sigma constant; `"learned"` makes log sigma a
 * parameter (`lik.logSigma`, initialised at log sigma) with a N(log sigma0, 1) prior added by the model.
 * Targets are float32 (standardised by the loaders for regression data).
 */
export function gaussian(opts: { sigma?: number; learned?: boolean } = {}): Likelihood {
  const sigma = opts.sigma ?? 1;
  if (!(sigma > 0)) throw new RangeError(`gaussian likelihood: sigma must be > 0, got ${sigma}`);
  const learned = opts.learned ?? false;
  return {
    spec: { kind: "gaussian", noise: learned ? "learned" : "fixed", sigma },
    outputDim: () => 1,
    initParams: () => (learned ? { logSigma: np.array(Math.log(sigma)) } : undefined),
    logLik(out, y, likParams) {
      const f = out.reshape([out.shape[0]]);
      const r = y.sub(f);
      if (!learned) return r.mul(r.ref).mul(-0.5 / (sigma * sigma)).sub(0.5 * LOG_2PI + Math.log(sigma));
      const logSigma = (likParams as { logSigma: JArray }).logSigma;
      const invVar = np.exp(logSigma.ref.mul(-2));
      return r.mul(r.ref).mul(invVar).mul(-0.5).sub(logSigma).sub(0.5 * LOG_2PI);
    },
  };
}
