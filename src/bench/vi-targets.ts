/**
 * Targets with exact answers for the variational-inference benches (`bayesdl bench vi-gaussian`,
 * `bayesdl bench vi-mixture`): correlated Gaussians with known mean and covariance, and Gaussian
 * mixtures with a normalised density, each built deterministically from a seed.
 */
import { fromHost, np, nn, type JArray } from "../core/engine.js";
import { LOG_2PI } from "../core/math.js";
import { createRng } from "../data/prng.js";
import type { FlatLogDensity } from "../core/ravel.js";
import { matmul, randomOrthogonal, spdInverse, transpose } from "./hostlinalg.js";

/** A Gaussian target N(mean, cov) and where the methods start. */
export interface GaussianTarget {
  readonly name: string;
  readonly d: number;
  readonly mean: Float64Array;
  readonly cov: Float64Array;
  readonly prec: Float64Array;
  /** Condition number of `cov`. */
  readonly condition: number;
  /** Initial q: N(0, initScale^2 I). */
  readonly initScale: number;
}

/**
 * N(m, Q diag(lambda) Q^T) with Q a random rotation, eigenvalues log-spaced over
 * [cond^-1/2, cond^1/2], and m ~ N(0, I).
 */
export function gaussianTarget(name: string, d: number, condition: number, initScale: number, seed: number): GaussianTarget {
  const rng = createRng(seed);
  const q = randomOrthogonal(d, () => rng.normal());
  const lam = Array.from({ length: d }, (_, i) => Math.pow(condition, (d === 1 ? 0 : i / (d - 1)) - 0.5));
  const ql = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) ql[i * d + j] = q[i * d + j] * lam[j];
  const cov = matmul(ql, transpose(q, d), d);
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) cov[i * d + j] = cov[j * d + i] = 0.5 * (cov[i * d + j] + cov[j * d + i]);
  const mean = Float64Array.from({ length: d }, () => rng.normal());
  return { name, d, mean, cov, prec: spdInverse(cov, d), condition, initScale };
}

/** The standard set of `bench vi-gaussian`: dims 10, 50, 100, one ill-conditioned, one tiny start. */
export function standardGaussianTargets(seed = 0): GaussianTarget[] {
  return [
    gaussianTarget("d10", 10, 10, 1, seed + 1),
    gaussianTarget("d50", 50, 10, 1, seed + 2),
    gaussianTarget("d100", 100, 10, 1, seed + 3),
    gaussianTarget("d50-illcond", 50, 1000, 1, seed + 4),
    gaussianTarget("d50-tinyinit", 50, 10, 1e-2, seed + 5),
  ];
}

/** log p(theta) = -1/2 (theta - m)^T P (theta - m) (unnormalised); theta `[d]`. */
export function gaussianLogDensity(t: GaussianTarget): { logDensity: FlatLogDensity; dispose(): void } {
  const m = fromHost(Float32Array.from(t.mean), [t.d]);
  const p = fromHost(Float32Array.from(t.prec), [t.d, t.d]);
  return {
    logDensity: (theta: JArray) => {
      const diff = theta.sub(m.ref);
      const pd = np.matmul(p.ref, diff.ref.reshape([t.d, 1])).reshape([t.d]);
      return diff.mul(pd).sum().mul(-0.5);
    },
    dispose: () => {
      m.dispose();
      p.dispose();
    },
  };
}

/** An equal-weight mixture of K Gaussians N(mu_k, s_k^2 I) in d dimensions. */
export interface MixtureTarget {
  readonly name: string;
  readonly d: number;
  readonly k: number;
  /** `[K * d]` component means. */
  readonly means: Float64Array;
  /** `[K]` component standard deviations. */
  readonly scales: Float64Array;
}

/** Components spread on a sphere of radius `radius` (well separated for large radius). */
export function mixtureTarget(name: string, d: number, k: number, radius: number, seed: number): MixtureTarget {
  const rng = createRng(seed);
  const means = new Float64Array(k * d);
  for (let c = 0; c < k; c++) {
    let n = 0;
    for (let i = 0; i < d; i++) {
      means[c * d + i] = rng.normal();
      n += means[c * d + i] ** 2;
    }
    for (let i = 0; i < d; i++) means[c * d + i] *= radius / Math.sqrt(n);
  }
  const scales = Float64Array.from({ length: k }, () => 0.5 + rng.next());
  return { name, d, k, means, scales };
}

/** The set of `bench vi-mixture`: 2 and 5 components in dims 2 and 30. */
export function standardMixtureTargets(seed = 0): MixtureTarget[] {
  return [
    mixtureTarget("k2-d2", 2, 2, 3, seed + 11),
    mixtureTarget("k5-d2", 2, 5, 4, seed + 12),
    mixtureTarget("k2-d30", 30, 2, 4, seed + 13),
    mixtureTarget("k5-d30", 30, 5, 5, seed + 14),
  ];
}

/** The normalised log density log sum_k (1/K) N(theta; mu_k, s_k^2 I) for theta `[d]` or `[n, d]`. */
export function mixtureLogDensity(t: MixtureTarget): { logDensity: FlatLogDensity; dispose(): void } {
  const mu = fromHost(Float32Array.from(t.means), [t.k, t.d]);
  const inv2 = fromHost(Float32Array.from(t.scales, (s) => -0.5 / (s * s)), [t.k]);
  const consts = fromHost(Float32Array.from(t.scales, (s) => -Math.log(t.k) - t.d * (Math.log(s) + 0.5 * LOG_2PI)), [t.k]);
  return {
    logDensity: (theta: JArray) => {
      const single = theta.ndim === 1;
      const x = single ? theta.reshape([1, t.d]) : theta;
      const n = x.shape[0];
      const diff = x.reshape([n, 1, t.d]).sub(mu.ref.reshape([1, t.k, t.d]));
      const sq = diff.ref.mul(diff).sum(-1); // [n, K]
      const lp = nn.logsumexp(sq.mul(inv2.ref).add(consts.ref), -1);
      return single ? lp.reshape([]) : lp;
    },
    dispose: () => {
      mu.dispose();
      inv2.dispose();
      consts.dispose();
    },
  };
}

/** Exact draws from a mixture target (host), `[n * d]`. */
export function sampleMixture(t: MixtureTarget, n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(n * t.d);
  for (let i = 0; i < n; i++) {
    const c = rng.nextInt(t.k);
    for (let j = 0; j < t.d; j++) out[i * t.d + j] = t.means[c * t.d + j] + t.scales[c] * rng.normal();
  }
  return out;
}
