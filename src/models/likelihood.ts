/**
 * Likelihoods p(y | f(x)): the observation model on top of a network's outputs.
 * `logLik` returns one value per example so callers can average, sum or vmap as they need.
 */
import { np, nn, type JArray } from "../core/engine.js";
import { inverseSoftplus, LOG_2PI, softplus } from "../core/math.js";
import type { Tree } from "../core/tree.js";


/** How a Gaussian likelihood's noise scale is set: a constant, one learned scalar, or a second network output. */
export type GaussianNoise = "fixed" | "learned" | "heteroscedastic";

/** A likelihood's description as saved in posterior.json. */
export type LikelihoodSpec = { kind: "categorical" } | { kind: "gaussian"; noise: GaussianNoise; sigma: number };

/** Observation model. `logLik` consumes `out`, `y` and `likParams`. */
export interface Likelihood {
  readonly spec: LikelihoodSpec;
  /** Network outputs this likelihood needs for `k` classes / 1 target. */
  outputDim(numClasses?: number): number;
  /** Its own learnable parameters (e.g. `{ logSigma }`), or `undefined`. */
  initParams(): Tree | undefined;
  /** Per-example log-likelihood `[n]` from outputs `[n, d]` and targets `[n]`. */
  logLik(out: JArray, y: JArray, likParams: Tree | undefined): JArray;
  /** Gaussian likelihoods: the mean and standard deviation of y per example, both `[n]` (consumes `out` and `likParams`). */
  meanStd?(out: JArray, likParams: Tree | undefined): [JArray, JArray];
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

/** The heteroscedastic noise's floor, in standardised target units: keeps 1/sigma^2 finite when a point is fitted exactly. */
export const HETEROSCEDASTIC_MIN_SIGMA = 1e-3;

/**
 * Gaussian likelihood, log p(y | x) = -1/2 log(2 pi sigma^2) - (y - mu)^2 / (2 sigma^2). The noise:
 * - `fixed`: mu is the network's single output and sigma the constant `sigma`;
 * - `learned`: as fixed, but log sigma is a parameter (`lik.logSigma`, initialised at log sigma) with a
 *   N(log sigma0, 1) prior added by the model;
 * - `heteroscedastic` (Nix & Weigend 1994; the deep-ensembles likelihood of Lakshminarayanan et al.
 *   2017): the network has two outputs (mu, rho) and sigma(x) = softplus(rho + softplus^-1(sigma - m))
 *   + m, with floor m = {@link HETEROSCEDASTIC_MIN_SIGMA}; at rho = 0 it is `sigma`. The weights behind rho
 *   take the network's prior, so the noise's dependence on x is learned and averaged like the mean's.
 * Targets are float32 (standardised by the loaders for regression data).
 */
export function gaussian(opts: { sigma?: number; noise?: GaussianNoise } = {}): Likelihood {
  const sigma = opts.sigma ?? 1;
  if (!(sigma > 0)) throw new RangeError(`gaussian likelihood: sigma must be > 0, got ${sigma}`);
  const noise = opts.noise ?? "fixed";
  const m = HETEROSCEDASTIC_MIN_SIGMA;
  if (noise === "heteroscedastic" && !(sigma > m)) throw new RangeError(`gaussian likelihood: heteroscedastic sigma must be > ${m}, got ${sigma}`);
  const shift = noise === "heteroscedastic" ? inverseSoftplus(sigma - m, "heteroscedastic sigma") : 0;
  const meanStd = (out: JArray, likParams: Tree | undefined): [JArray, JArray] => {
    const n = out.shape[0];
    if (noise === "heteroscedastic") {
      const mu = out.ref.slice([], [0, 1]).reshape([n]);
      const std = softplus(out.slice([], [1, 2]).reshape([n]).add(shift)).add(m);
      return [mu, std];
    }
    const mu = out.reshape([n]);
    if (noise === "fixed") return [mu, np.full([n], sigma)];
    return [mu, np.exp((likParams as { logSigma: JArray }).logSigma).mul(np.ones([n]))];
  };
  return {
    spec: { kind: "gaussian", noise, sigma },
    outputDim: () => (noise === "heteroscedastic" ? 2 : 1),
    initParams: () => (noise === "learned" ? { logSigma: np.array(Math.log(sigma)) } : undefined),
    logLik(out, y, likParams) {
      if (noise === "fixed") {
        const r = y.sub(out.reshape([out.shape[0]]));
        return r.mul(r.ref).mul(-0.5 / (sigma * sigma)).sub(0.5 * LOG_2PI + Math.log(sigma));
      }
      if (noise === "learned") {
        const r = y.sub(out.reshape([out.shape[0]]));
        const logSigma = (likParams as { logSigma: JArray }).logSigma;
        const invVar = np.exp(logSigma.ref.mul(-2));
        return r.mul(r.ref).mul(invVar).mul(-0.5).sub(logSigma).sub(0.5 * LOG_2PI);
      }
      const [mu, std] = meanStd(out, likParams);
      const z = y.sub(mu).div(std.ref);
      return z.mul(z.ref).mul(-0.5).sub(np.log(std)).sub(0.5 * LOG_2PI);
    },
    meanStd,
  };
}
