/**
 * Closed-form answers the tests compare against, in host float64: Bayesian linear regression
 * posteriors, Gaussian moments and their errors, Monte Carlo standard errors. Every test that needs an
 * exact posterior takes it from here.
 */
import { spdInverse } from "../src/bench/hostlinalg.js";

/** A deterministic uniform(0, 1) generator (Park-Miller), for test data independent of the engine. */
export function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}

/** Standard normal draws from a uniform generator (Box-Muller). */
export function gaussianFrom(u: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/**
 * The posterior of Bayesian linear regression y = Z w + e, e ~ N(0, sigma^2), w ~ N(0, s^2 I):
 *
 *   precision A = Z^T Z / sigma^2 + I / s^2,   mean = A^-1 Z^T y / sigma^2,   covariance A^-1.
 *
 * `z` is the design, one row per example (include a column of ones for an intercept). Float64.
 */
export function blrPosterior(z: readonly (readonly number[])[], y: readonly number[], sigma: number, priorScale: number): { mean: Float64Array; cov: Float64Array; precision: Float64Array } {
  const d = z[0].length;
  const a = new Float64Array(d * d);
  const zty = new Float64Array(d);
  z.forEach((row, i) => {
    for (let j = 0; j < d; j++) {
      zty[j] += (row[j] * y[i]) / sigma ** 2;
      for (let k = 0; k < d; k++) a[j * d + k] += (row[j] * row[k]) / sigma ** 2;
    }
  });
  for (let j = 0; j < d; j++) a[j * d + j] += 1 / priorScale ** 2;
  const cov = spdInverse(a, d);
  const mean = new Float64Array(d);
  for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) mean[j] += cov[j * d + k] * zty[k];
  return { mean, cov, precision: a };
}

/** A row-major d x d matrix as rows (`number[][]`), for tests that keep their matrices as nested arrays. */
export function toRows(flat: ArrayLike<number>, d: number): number[][] {
  return Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => flat[i * d + j]));
}

/** Sample mean and covariance (n - 1 denominator) of rows `[n][d]`. */
export function sampleMoments(rows: readonly ArrayLike<number>[]): { mean: Float64Array; cov: Float64Array } {
  const n = rows.length;
  const d = rows[0].length;
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j] / n;
  const cov = new Float64Array(d * d);
  for (const r of rows) for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) cov[j * d + k] += ((r[j] - mean[j]) * (r[k] - mean[k])) / Math.max(1, n - 1);
  return { mean, cov };
}

/**
 * Errors of (mean, cov) against an exact Gaussian: the largest |mean_j - exact_j| in exact standard
 * deviations, and the largest |cov_jk - exact_jk| relative to the largest exact variance.
 */
export function gaussianErrors(mean: ArrayLike<number>, cov: ArrayLike<number>, exactMean: ArrayLike<number>, exactCov: ArrayLike<number>): { meanErr: number; covErr: number } {
  const d = exactMean.length;
  let meanErr = 0;
  let scale = 0;
  for (let j = 0; j < d; j++) {
    meanErr = Math.max(meanErr, Math.abs(mean[j] - exactMean[j]) / Math.sqrt(exactCov[j * d + j]));
    scale = Math.max(scale, exactCov[j * d + j]);
  }
  let covErr = 0;
  for (let i = 0; i < d * d; i++) covErr = Math.max(covErr, Math.abs(cov[i] - exactCov[i]) / scale);
  return { meanErr, covErr };
}

/** The mean-field optimum of KL(q || N(m, A^-1)): mean m, diagonal covariance 1 / A_jj. */
export function meanFieldOptimum(mean: Float64Array, precision: Float64Array): { mean: Float64Array; cov: Float64Array } {
  const d = mean.length;
  const cov = new Float64Array(d * d);
  for (let j = 0; j < d; j++) cov[j * d + j] = 1 / precision[j * d + j];
  return { mean, cov };
}

/** Mean and standard error of the mean. */
export function meanSe(xs: ArrayLike<number>): { mean: number; se: number } {
  const n = xs.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += xs[i] / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (xs[i] - m) ** 2 / Math.max(1, n - 1);
  return { mean: m, se: Math.sqrt(v / n) };
}
