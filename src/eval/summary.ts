/**
 * Per-input summaries of a posterior predictive, for `bayesdl predict` and the playground.
 *
 * Regression: the predictive is an equal-weight mixture of the samples' Gaussians
 * N(mu_s, sigma_s^2) (in original units: mu_s = m + s * mu'_s, sigma_s = s * sigma'_s for the target
 * standardisation (m, s)). Its mean is mu = (1/S) sum mu_s; its variance splits by the law of total
 * variance into an epistemic part Var_s[mu_s] and an aleatoric part E_s[sigma_s^2]; its quantiles solve
 * (1/S) sum Phi((q - mu_s) / sigma_s) = level (bisection to |dq| < 1e-10 * scale).
 *
 * Classification: p = (1/S) sum p_s; total entropy H[p] = aleatoric E_s H[p_s] + mutual information
 * I(y; w) = H[p] - E_s H[p_s] (Depeweg et al. 2018, "Decomposition of uncertainty in Bayesian deep
 * learning"; Houlsby et al. 2011, BALD).
 */
import type { Standardisation } from "../data/types.js";
import { normalCdf } from "../diagnostics/convergence.js";
import type { Predictive } from "./predict.js";

/** Quantile levels `bayesdl predict` reports by default. */
export const DEFAULT_QUANTILES: readonly number[] = [0.05, 0.25, 0.5, 0.75, 0.95];

/** Regression predictive per input, in original units. */
export interface RegressionSummary {
  readonly kind: "regression";
  readonly mean: Float64Array;
  /** Total predictive standard deviation: sqrt(epistemic^2 + aleatoric^2). */
  readonly sd: Float64Array;
  readonly epistemicSd: Float64Array;
  readonly aleatoricSd: Float64Array;
  readonly quantiles: readonly { readonly level: number; readonly values: Float64Array }[];
}

/** Classification predictive per input. */
export interface ClassificationSummary {
  readonly kind: "classification";
  readonly numClasses: number;
  /** Row-major `[n, k]`. */
  readonly probs: Float32Array;
  /** argmax of probs. */
  readonly predicted: Int32Array;
  /** H[p] (nats). */
  readonly entropy: Float64Array;
  /** E_s H[p_s] (nats). */
  readonly aleatoricEntropy: Float64Array;
  /** H[p] - E_s H[p_s] (nats, clipped at 0 against rounding). */
  readonly mutualInformation: Float64Array;
}

export type PredictiveSummary = RegressionSummary | ClassificationSummary;

/** Summarise a predictive over `n` inputs (regression in the units given by `scale`). */
export function summarise(p: Predictive, n: number, scale: Standardisation = { mean: 0, std: 1 }, levels: readonly number[] = DEFAULT_QUANTILES): PredictiveSummary {
  if (p.kind === "categorical") {
    const k = p.numClasses;
    const predicted = new Int32Array(n);
    const entropy = new Float64Array(n);
    const mutualInformation = new Float64Array(n);
    const aleatoricEntropy = Float64Array.from(p.meanEntropy);
    for (let i = 0; i < n; i++) {
      let best = 0;
      let h = 0;
      for (let c = 0; c < k; c++) {
        const q = p.probs[i * k + c];
        if (q > p.probs[i * k + best]) best = c;
        if (q > 0) h -= q * Math.log(q);
      }
      predicted[i] = best;
      entropy[i] = h;
      mutualInformation[i] = Math.max(0, h - aleatoricEntropy[i]);
    }
    return { kind: "classification", numClasses: k, probs: p.probs, predicted, entropy, aleatoricEntropy, mutualInformation };
  }
  const S = p.samples;
  const mean = new Float64Array(n);
  const sd = new Float64Array(n);
  const epistemicSd = new Float64Array(n);
  const aleatoricSd = new Float64Array(n);
  const quantiles = levels.map((level) => ({ level, values: new Float64Array(n) }));
  const mu = new Float64Array(S);
  const sigma = new Float64Array(S);
  for (let i = 0; i < n; i++) {
    let m = 0;
    let v = 0;
    for (let s = 0; s < S; s++) {
      mu[s] = scale.mean + scale.std * p.means[s * n + i];
      sigma[s] = scale.std * p.stds[s * n + i];
      m += mu[s];
      v += sigma[s] * sigma[s];
    }
    m /= S;
    let e = 0;
    for (let s = 0; s < S; s++) e += (mu[s] - m) ** 2;
    mean[i] = m;
    epistemicSd[i] = Math.sqrt(e / S);
    aleatoricSd[i] = Math.sqrt(v / S);
    sd[i] = Math.sqrt(e / S + v / S);
    for (const q of quantiles) q.values[i] = mixtureQuantile(mu, sigma, q.level);
  }
  return { kind: "regression", mean, sd, epistemicSd, aleatoricSd, quantiles };
}

/** The `level` quantile of the equal-weight Gaussian mixture sum_s N(mu_s, sigma_s^2) / S (bisection). */
export function mixtureQuantile(mu: ArrayLike<number>, sigma: ArrayLike<number>, level: number): number {
  const S = mu.length;
  let lo = Infinity;
  let hi = -Infinity;
  let width = 0;
  for (let s = 0; s < S; s++) {
    lo = Math.min(lo, mu[s] - 10 * sigma[s]);
    hi = Math.max(hi, mu[s] + 10 * sigma[s]);
    width = Math.max(width, sigma[s]);
  }
  const cdf = (x: number): number => {
    let c = 0;
    for (let s = 0; s < S; s++) c += normalCdf((x - mu[s]) / sigma[s]);
    return c / S;
  };
  const tol = 1e-10 * Math.max(width, Math.abs(lo), Math.abs(hi), 1e-300);
  for (let it = 0; it < 200 && hi - lo > tol; it++) {
    const mid = 0.5 * (lo + hi);
    if (cdf(mid) < level) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}
