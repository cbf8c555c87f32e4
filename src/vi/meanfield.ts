/**
 * The mean-field Gaussian over a model's parameter pytree: the variational family of Bayes-by-backprop
 * (src/vi/bbb.ts), black-box alpha and Renyi VI (src/vi/alpha.ts), and any method that keeps one
 * independent Gaussian per weight of a network.
 *
 *   q(theta) = prod_i N(theta_i; mu_i, sigma_i^2),   sigma_i = softplus(rho_i) = log(1 + exp(rho_i))
 *
 * `mu` and `rho` are pytrees shaped like the model's {@link Params} (`{ net, lik? }`), so a mean-field
 * q is saved as tensors `mu.<leaf path>` and `rho.<leaf path>` ({@link meanFieldKind}). The
 * softplus parameterisation keeps sigma positive under unconstrained gradient steps (Blundell et al.
 * 2015, "Weight uncertainty in neural networks").
 *
 * Every function here is pure and traceable (use it inside `jit`, `grad`, `vmap`) and consumes its
 * array arguments (jax-js move semantics); pass `keep(q)` to keep using a q.
 */
import { np, split, type JArray, type Key } from "../core/engine.js";
import { inverseSoftplus, inverseSoftplusArray, LOG_2PI, softplus } from "../core/math.js";
import type { NamedTensor, Posterior, PosteriorKind } from "../core/method.js";
import { normalTree } from "../core/normal.js";
import { distribution, tensorsToTree, treeToTensors } from "../core/posterior.js";
import { keep, leaves, mapTree, rebuildFrom, sumAll } from "../core/tree.js";
import type { Model, Params } from "../models/model.js";
import { layerList, leafScales, type PriorSpec } from "../models/prior.js";

/** Mean-field Gaussian over a parameter pytree: means `mu` and pre-softplus scales `rho`. */
export type MeanField = { mu: Params; rho: Params };

/**
 * The Gaussian prior on the likelihood's own parameters: `lik.logSigma ~ N(logSigmaMean, 1)` (the
 * prior src/models/model.ts adds for a learned Gaussian noise scale).
 */
export interface LikPrior {
  readonly logSigmaMean: number;
}

/** The {@link LikPrior} of a model (log of its likelihood's starting sigma; 0 when it has none). */
export function likPriorOf(model: Model): LikPrior {
  const spec = model.likelihood.spec;
  return { logSigmaMean: spec.kind === "gaussian" ? Math.log(spec.sigma) : 0 };
}

/**
 * A mean-field q centred on `params` (consumed) with every standard deviation equal to `sigma0`.
 * @example
 * const q = meanFieldInit(model.init(key(0)), 1e-3);
 */
export function meanFieldInit(params: Params, sigma0: number): MeanField {
  const rho0 = inverseSoftplus(sigma0, "meanField: sigma0");
  const rho = mapTree((p) => np.fullLike(p, rho0), keep(params));
  return { mu: params, rho };
}

/** sigma = softplus(rho), leafwise (consumes `rho`; traceable). */
export function meanFieldSigma(rho: Params): Params {
  return mapTree((r) => softplus(r), rho);
}

/**
 * A mean-field q with its standard deviations computed: `{ mu, sigma }`, sigma = softplus(rho).
 * Methods that use sigma several times per step (a draw and the KL) compute it once with
 * {@link withSigma}; softplus and its gradient cost an exp and a log per weight.
 */
export type MeanFieldSigma = { mu: Params; sigma: Params };

/** `{ mu, sigma = softplus(rho) }` from a mean-field q (consumes `q`). */
export function withSigma(q: MeanField): MeanFieldSigma {
  return { mu: q.mu, sigma: meanFieldSigma(q.rho) };
}

/** theta = mu + sigma * eps with `lead` leading sample axes (consumes all). */
export function sampleWithSigma(k: Key, q: MeanFieldSigma, lead: number[] = []): Params {
  const eps = normalTree(k, q.mu, lead);
  return mapTree((m, sg, e) => m.add(sg.mul(e)), q.mu, q.sigma, eps);
}

/**
 * One reparameterised draw theta = mu + softplus(rho) * eps, eps ~ N(0, I): differentiable in `q`.
 * Consumes `k` and `q`.
 */
export function meanFieldSample(k: Key, q: MeanField): Params {
  return sampleWithSigma(k, withSigma(q));
}

/**
 * `s` reparameterised draws stacked on a leading axis: every leaf becomes `[s, ...shape]`.
 * Consumes `k` and `q`.
 */
export function meanFieldSampleStacked(k: Key, q: MeanField, s: number): Params {
  if (!Number.isInteger(s) || s < 1) throw new RangeError(`meanFieldSampleStacked: s must be a positive integer, got ${s}`);
  return sampleWithSigma(k, withSigma(q), [s]);
}

/**
 * log q(theta) = sum_i [ -(theta_i - mu_i)^2 / (2 sigma_i^2) - log sigma_i - log(2 pi) / 2 ].
 *
 * `theta` is shaped like `q.mu` (result: a scalar) or carries a leading sample axis of size s on
 * every leaf, as from {@link meanFieldSampleStacked} (result: `[s]`). Consumes both.
 */
export function meanFieldLogProb(q: MeanField, theta: Params): JArray {
  return logProbFromSigma(withSigma(q), theta);
}

/** {@link meanFieldLogProb} from `{ mu, sigma }` (consumes both). */
export function logProbFromSigma(q: MeanFieldSigma, theta: Params): JArray {
  const muLeaves = leaves(q.mu);
  const thLeaves = leaves(theta);
  const stacked = thLeaves.length > 0 && thLeaves[0].ndim === muLeaves[0].ndim + 1 ? thLeaves[0].shape[0] : 0;
  const terms = mapTree(
    (m, sig, th) => {
      const z = th.sub(m).div(sig.ref);
      const elem = z.ref.mul(z).mul(-0.5).sub(np.log(sig)).sub(0.5 * LOG_2PI);
      return stacked ? elem.reshape([stacked, -1]).sum(1) : elem.sum();
    },
    q.mu,
    q.sigma,
    theta,
  );
  return sumAll(leaves(terms));
}

/** Entropy H[q] = sum_i [ log sigma_i + (1 + log 2 pi) / 2 ] (consumes `rho`). */
export function meanFieldEntropy(rho: Params): JArray {
  return entropyFromSigma(meanFieldSigma(rho));
}

/** {@link meanFieldEntropy} from sigma itself (consumes `sigma`). */
export function entropyFromSigma(sigma: Params): JArray {
  return sumAll(
    leaves(sigma).map((sg) => {
      const size = sg.shape.reduce((a, b) => a * b, 1);
      return np.log(sg).sum().add(size * 0.5 * (1 + LOG_2PI));
    }),
  );
}

/** KL(N(mu, sigma^2) || N(m0, s^2)) summed over a leaf: log(s / sigma) + (sigma^2 + (mu - m0)^2) / (2 s^2) - 1/2. */
function klLeaf(mu: JArray, sig: JArray, m0: number, s: number): JArray {
  const d = m0 === 0 ? mu : mu.sub(m0);
  const size = d.shape.reduce((a, b) => a * b, 1);
  const quad = sig.ref.mul(sig.ref).add(d.ref.mul(d)).sum().mul(1 / (2 * s * s));
  return quad.sub(np.log(sig).sum()).add(size * (Math.log(s) - 0.5));
}

/**
 * Analytic KL(q || p) to the model's Gaussian prior (src/models/prior.ts):
 *
 *   KL = sum_i [ log(s_i / sigma_i) + (sigma_i^2 + mu_i^2) / (2 s_i^2) - 1/2 ]
 *        + [ -log sigma_ls + (sigma_ls^2 + (mu_ls - m0)^2) / 2 - 1/2 ]   (when q has `lik.logSigma`)
 *
 * with s_i parameter i's prior standard deviation ({@link leafScales}: its layer's scale, over
 * sqrt(fan-in) for the weights of a fan-in prior) and m0 = `likPrior.logSigmaMean` (the learned noise scale's
 * N(log sigma0, 1) prior; see {@link likPriorOf}). Consumes `q`.
 * @example
 * const kl = meanFieldKlToPrior(q, model.prior, likPriorOf(model));
 */
export function meanFieldKlToPrior(q: MeanField, prior: PriorSpec, likPrior: LikPrior = { logSigmaMean: 0 }): JArray {
  return klFromSigma(withSigma(q), prior, likPrior);
}

/** {@link meanFieldKlToPrior} from `{ mu, sigma }` (consumes it). */
export function klFromSigma(q: MeanFieldSigma, prior: PriorSpec, likPrior: LikPrior = { logSigmaMean: 0 }): JArray {
  const muLayers = layerList(q.mu.net);
  const sigLayers = layerList(q.sigma.net);
  const scales = leafScales(prior, muLayers);
  const terms: JArray[] = [];
  muLayers.forEach((layer, l) => {
    const mus = leaves(layer);
    const sigs = leaves(sigLayers[l]);
    mus.forEach((m, i) => terms.push(klLeaf(m, sigs[i], 0, scales[l][i])));
  });
  if (q.mu.lik !== undefined) {
    const mus = leaves(q.mu.lik);
    const sigs = leaves(q.sigma.lik);
    mus.forEach((m, i) => terms.push(klLeaf(m, sigs[i], likPrior.logSigmaMean, 1)));
  }
  return sumAll(terms);
}

/**
 * Running averages of a mean-field q's iterates (Polyak-Ruppert averaging): the means and the
 * variances sigma^2, leaf by leaf.
 */
export type MeanFieldAverage = { mu: Params; var: Params };

/** The average at the start: q's own mean and variances (borrows `q`). */
export function meanFieldAverageInit(q: MeanField): MeanFieldAverage {
  return { mu: keep(q.mu), var: mapTree((r) => {
    const sd = softplus(r);
    return sd.ref.mul(sd);
  }, keep(q.rho)) };
}

/**
 * Fold the iterate `(mu, sigma)` of step s = `t` + 1 into the average over the steps s > `from`:
 *
 *   mubar <- mubar + (mu - mubar) / n,   varbar <- varbar + (sigma^2 - varbar) / n,   n = max(s - from, 1),
 *
 * so before `from` the average is the current iterate. Consumes `avg`, `t`, `mu` and `sigma`.
 */
export function meanFieldAverageUpdate(avg: MeanFieldAverage, t: JArray, from: number, mu: Params, sigma: Params): MeanFieldAverage {
  const w = np.reciprocal(np.maximum(t.add(1 - from), 1));
  const out = {
    mu: mapTree((m0, m) => m0.ref.add(m.sub(m0).mul(w.ref)), avg.mu, mu),
    var: mapTree((v0, sg) => v0.ref.add(sg.ref.mul(sg).sub(v0).mul(w.ref)), avg.var, sigma),
  };
  w.dispose();
  return out;
}

/** The averaged q as a posterior (consumes `avg`): N(mubar, varbar). */
export function meanFieldAveragePosterior(avg: MeanFieldAverage): Posterior<Params> {
  return meanFieldPosterior({ mu: avg.mu, rho: mapTree((v) => inverseSoftplusArray(np.sqrt(v)), avg.var) });
}

/** Host tensors of a mean-field q (borrowed): `mu.<leaf path>` and `rho.<leaf path>`. */
export async function meanFieldTensors(q: MeanField): Promise<NamedTensor[]> {
  return [...(await treeToTensors(q.mu, "mu")), ...(await treeToTensors(q.rho, "rho"))];
}

/**
 * Values of one leaf that one call of {@link meanFieldDraws} draws at most. Drawing a leaf's noise
 * allocates several temporaries of its full size in Wasm memory, which holds 4 GiB at most, and earlier
 * calls' draws kept there stop the freed temporaries from being reused (docs/engine-notes.md).
 */
export const MAX_DRAW_VALUES = 1 << 23;

/**
 * `n` draws from q stacked on a leading axis: one call with `k` itself when every leaf's draws have at
 * most {@link MAX_DRAW_VALUES} values; otherwise calls of as many draws as fit, each moved to the host
 * before the next, and the stack built from the host copies. Consumes `k`, borrows `q`.
 */
export function meanFieldDraws(k: Key, q: MeanField, n: number): Params {
  const shapes = leaves(q.mu).map((l) => l.shape);
  const sizes = leaves(q.mu).map((l) => l.size);
  const per = Math.max(1, Math.floor(MAX_DRAW_VALUES / Math.max(1, ...sizes)));
  if (n <= per) return meanFieldSampleStacked(k, keep(q), n);
  const host = sizes.map((s) => new Float32Array(n * s));
  const keys = split(k, Math.ceil(n / per));
  keys.forEach((kc, i) => {
    const part = meanFieldSampleStacked(kc, keep(q), Math.min(per, n - i * per));
    // dataSync consumes each leaf, so the call's draws leave Wasm memory here.
    leaves(part).forEach((l, j) => host[j].set(l.dataSync() as Float32Array, i * per * sizes[j]));
  });
  let j = 0;
  return rebuildFrom(q.mu, () => {
    const a = np.array(host[j], { shape: [n, ...shapes[j]] });
    j++;
    return a;
  });
}

/** The posterior q (consumed): draws theta = mu + softplus(rho) eps, saved as its `mu` and `rho` tensors. */
export function meanFieldPosterior(q: MeanField): Posterior<Params> {
  return distribution({ kind: "meanfield", q, draw: meanFieldDraws, tensors: meanFieldTensors });
}

/** Rebuilds saved mean-field posteriors (`variational.safetensors` with `mu.*` and `rho.*`). */
export const meanFieldKind: PosteriorKind<Params> = {
  kind: "meanfield",
  load: (template, _options, tensors) => meanFieldPosterior({ mu: tensorsToTree(template, tensors, "mu"), rho: tensorsToTree(template, tensors, "rho") }),
};
