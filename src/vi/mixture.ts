/**
 * Equal-weight Gaussian mixture variational family over flat vectors, with stratified sampling.
 *
 *   q(theta) = (1/K) sum_k N(theta; mu_k, diag(sigma_k^2)),   sigma_k = exp(logScale_k),
 *
 * Weights are fixed at 1/K; means and diagonal scales are learned. `sample` is stratified: n/K
 * reparameterised draws theta = mu_k + sigma_k ⊙ eps from every component. Since
 * E_q[f] = (1/K) sum_k E_{q_k}[f], the plain average of f over the n stratified draws is an unbiased,
 * reparameterisable estimator of E_q[f] with lower variance than sampling component labels (which
 * would not be reparameterisable). This is the stratified mixture ELBO of Morningstar, Vikram, Ham,
 * Gallagher & Dillon 2021 ("Automatic differentiation variational inference with mixtures", SIWAE /
 * stratified ELBO): ELBO = (1/K) sum_k E_{q_k}[log p(theta) - log q(theta)], where log q is the full
 * mixture density. A fit method (ADVI) that averages log p - log q over `sample`'s output therefore
 * optimises exactly that bound with no special case. There is no closed-form entropy.
 */
import { nn, np, random, type JArray } from "../core/engine.js";
import { LOG_2PI } from "../core/math.js";
import type { Family } from "./family.js";

/** Mixture parameters: component means and log scales, both `[K, d]`. */
export type MixtureParams = { loc: JArray; logScale: JArray };

/** An equal-weight diagonal Gaussian mixture family (see the module docs). */
export interface MixtureFamily extends Family<MixtureParams> {
  /** Number of components K. */
  readonly components: number;
}

/**
 * Build the K-component equal-weight Gaussian mixture family over R^d.
 *
 * - `init(key, mean, scale)`: mu_k = mean + scale * z_k with z_k ~ N(0, I) (breaks the symmetry
 *   between components), sigma_k = scale.
 * - `sample(key, q, n)`: stratified, n/K draws per component; row r comes from component r mod K.
 *   `n` must be a multiple of K.
 * - `logProb(q, theta)` = logsumexp_k log N(theta; mu_k, sigma_k^2) - log K.
 *
 * Reference: Morningstar et al. 2021, "Automatic differentiation variational inference with
 * mixtures" (AISTATS), stratified estimator of the mixture ELBO.
 *
 * @param d dimension.
 * @param components K >= 1 (K = 1 is the diagonal Gaussian).
 * @example
 * const fam = gaussianMixture(2, 4);
 * const q = fam.init(key(0), np.zeros([2]), 1);
 * const [theta, logq] = fam.sampleAndLogProb(key(1), q, 64); // 16 draws per component
 */
export function gaussianMixture(d: number, components: number): MixtureFamily {
  const K = components;
  if (!Number.isInteger(d) || d < 1) throw new RangeError(`gaussianMixture: argument 'd' must be a positive integer, got ${d}`);
  if (!Number.isInteger(K) || K < 1) throw new RangeError(`gaussianMixture: argument 'components' must be a positive integer, got ${components}`);

  const checkN = (op: string, n: number) => {
    if (!Number.isInteger(n) || n < 1 || n % K !== 0) {
      throw new RangeError(`mixture.${op}: argument 'n' must be a positive multiple of the number of components ${K} (stratified sampling draws n/K per component), got ${n}`);
    }
  };
  const sample = (key: JArray, q: MixtureParams, n: number): JArray => {
    checkN("sample", n);
    const eps = random.normal(key, [n / K, K, d]);
    return eps.mul(np.exp(q.logScale).reshape([1, K, d])).add(q.loc.reshape([1, K, d])).reshape([n, d]);
  };
  const logProb = (q: MixtureParams, theta: JArray): JArray => {
    if (theta.ndim !== 2 || theta.shape[1] !== d) {
      const shape = `[${theta.shape.join(", ")}]`;
      theta.dispose();
      throw new Error(`mixture.logProb: argument 'theta' must have shape [n, ${d}], got ${shape}`);
    }
    const n = theta.shape[0];
    const z = theta.reshape([n, 1, d]).sub(q.loc.reshape([1, K, d])).mul(np.exp(q.logScale.ref.neg()).reshape([1, K, d]));
    const comp = z.ref.mul(z).sum(-1).mul(-0.5).sub(q.logScale.sum(-1).reshape([1, K])).sub(0.5 * d * LOG_2PI); // [n, K]
    return nn.logsumexp(comp, 1).sub(Math.log(K));
  };
  return {
    name: "mixture",
    dim: d,
    components: K,
    init(key, mean, scale) {
      if (mean.ndim !== 1 || mean.shape[0] !== d) {
        const shape = `[${mean.shape.join(", ")}]`;
        mean.dispose();
        key.dispose();
        throw new Error(`mixture.init: argument 'mean' must have shape [${d}], got ${shape}`);
      }
      if (!(scale > 0) || !Number.isFinite(scale)) {
        mean.dispose();
        key.dispose();
        throw new RangeError(`mixture.init: argument 'scale' must be a positive finite number, got ${scale}`);
      }
      const loc = random.normal(key, [K, d]).mul(scale).add(mean.astype(np.float32).reshape([1, d]));
      return { loc, logScale: np.full([K, d], Math.log(scale)) };
    },
    sample,
    logProb,
    sampleAndLogProb(key, q, n) {
      checkN("sampleAndLogProb", n);
      const theta = sample(key, { loc: q.loc.ref, logScale: q.logScale.ref }, n);
      return [theta.ref, logProb(q, theta)];
    },
  };
}
