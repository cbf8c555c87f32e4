/**
 * Closed-form answers the tests compare against, in host float64: Bayesian linear regression
 * posteriors, Gaussian moments and their errors, Monte Carlo standard errors. Every test that needs an
 * exact posterior takes it from here.
 */
import { cholesky, spdInverse } from "../src/bench/hostlinalg.js";

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

/** Eigenvalues of a symmetric d x d matrix (row-major), ascending, by cyclic Jacobi rotations. */
export function symmetricEigenvalues(m: ArrayLike<number>, d: number): number[] {
  const a = Float64Array.from(m);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q] ** 2;
    if (off < 1e-24 * (1 + a.reduce((s, v) => s + v * v, 0))) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        // The rotation that zeroes a_pq: tan(phi) = t, the smaller root of t^2 + 2 theta t - 1 = 0.
        const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p];
          const akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k];
          const aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: d }, (_, i) => a[i * d + i]).sort((x, y) => x - y);
}

/** mean + L z with L the Cholesky factor of `cov` and z standard normal from `normal`: one exact draw. */
export function gaussianDraw(mean: ArrayLike<number>, cov: Float64Array, normal: () => number): Float64Array {
  const d = mean.length;
  const l = cholesky(cov, d);
  const z = Array.from({ length: d }, () => normal());
  return Float64Array.from({ length: d }, (_, i) => mean[i] + z.reduce((s, zk, k) => s + l[i * d + k] * zk, 0));
}

/**
 * The optimum of black-box alpha (the Li & Gal 2017 form src/vi/alpha.ts minimises) for Bayesian linear
 * regression y = Z w + e, e ~ N(0, sigma^2), prior w ~ N(0, s^2 I), over mean-field Gaussians
 * q = N(mu, diag(sd^2)), with K draws per data term:
 *
 *   L(q) = KL(q || N(0, s^2 I)) - sum_n E[(1/alpha) log (1/K) sum_k p(y_n | z_n, w_k)^alpha],  w_k ~ q.
 *
 * Each data term depends on q only through f = z_n . w ~ N(m_n, v_n), m_n = z_n . mu,
 * v_n = sum_j z_nj^2 sd_j^2, so its expectation over the K draws is taken by a sample average over
 * `draws` fixed sets of K standard normals u (f_k = m_n + sqrt(v_n) u_k; the same sets for every n and
 * every q, so the objective is a smooth function of q), and L is minimised over (mu, log sd) by BFGS
 * from the mean-field KL optimum. For K -> infinity the data term has a closed form; at K = 5 the
 * optimum's variances differ from that limit by 10-16% on the test's regression, so the finite K is
 * kept. Sample-average error at 5,000 sets: ~2% on the variances. Float64, host only.
 */
export function bbAlphaOptimum(
  z: readonly (readonly number[])[],
  y: readonly number[],
  sigma: number,
  priorScale: number,
  alpha: number,
  k: number,
  draws = 5000,
  seed = 17,
): { mean: Float64Array; cov: Float64Array } {
  const n = z.length;
  const d = z[0].length;
  const g = gaussianFrom(lcg(seed));
  const u = Float64Array.from({ length: draws * k }, () => g());
  const s2 = sigma * sigma;
  const p2 = priorScale * priorScale;
  // Value and gradient of L at x = (mu, log sd), up to constants.
  const f = (x: Float64Array): [number, Float64Array] => {
    const grad = new Float64Array(2 * d);
    let val = 0;
    for (let j = 0; j < d; j++) {
      const mu = x[j];
      const sd2 = Math.exp(2 * x[d + j]);
      val += 0.5 * ((sd2 + mu * mu) / p2 - 1) - x[d + j];
      grad[j] += mu / p2;
      grad[d + j] += sd2 / p2 - 1;
    }
    const w = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      let m = 0;
      let v = 0;
      for (let j = 0; j < d; j++) {
        m += z[i][j] * x[j];
        v += z[i][j] * z[i][j] * Math.exp(2 * x[d + j]);
      }
      const rv = Math.sqrt(v);
      let term = 0;
      let dm = 0;
      let dv = 0;
      for (let s = 0; s < draws; s++) {
        // (1/alpha) log mean_k exp(alpha l_k), l_k = -(y - f_k)^2 / (2 sigma^2), and its derivatives in m and v.
        let mx = -Infinity;
        for (let c = 0; c < k; c++) {
          const r = y[i] - m - rv * u[s * k + c];
          w[c] = (-alpha * r * r) / (2 * s2);
          mx = Math.max(mx, w[c]);
        }
        let sum = 0;
        for (let c = 0; c < k; c++) sum += (w[c] = Math.exp(w[c] - mx));
        term += (mx + Math.log(sum / k)) / alpha;
        for (let c = 0; c < k; c++) {
          const r = y[i] - m - rv * u[s * k + c];
          const dl = (w[c] / sum) * (r / s2); // d/df_k of the term, times the softmax weight
          dm += dl;
          dv += (dl * u[s * k + c]) / (2 * rv);
        }
      }
      val -= term / draws;
      for (let j = 0; j < d; j++) {
        grad[j] -= (dm / draws) * z[i][j];
        grad[d + j] -= (dv / draws) * z[i][j] * z[i][j] * 2 * Math.exp(2 * x[d + j]);
      }
    }
    return [val, grad];
  };
  const start = blrPosterior(z, y, sigma, priorScale);
  const x0 = new Float64Array(2 * d);
  for (let j = 0; j < d; j++) {
    x0[j] = start.mean[j];
    x0[d + j] = -0.5 * Math.log(start.precision[j * d + j]);
  }
  return bfgsMeanField(f, d, x0);
}

/** BFGS with a backtracking line search on x = (mu, log sd) in R^{2d} from `start`; returns q's mean and (diagonal) covariance. */
function bfgsMeanField(f: (x: Float64Array) => [number, Float64Array], d: number, start: Float64Array): { mean: Float64Array; cov: Float64Array } {
  const m = 2 * d;
  let x = start;
  let [fx, gx] = f(x);
  // Inverse Hessian estimate, started at a scaled identity after the first step.
  let h = new Float64Array(m * m);
  for (let i = 0; i < m; i++) h[i * m + i] = 1e-6;
  for (let it = 0; it < 200; it++) {
    const p = new Float64Array(m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) p[i] -= h[i * m + j] * gx[j];
    let slope = 0;
    for (let i = 0; i < m; i++) slope += p[i] * gx[i];
    if (slope >= 0) {
      // Not a descent direction: restart from steepest descent.
      h = new Float64Array(m * m);
      for (let i = 0; i < m; i++) h[i * m + i] = 1e-6;
      continue;
    }
    let step = 1;
    let xn = x;
    let fn = fx;
    let gn = gx;
    for (let ls = 0; ls < 40; ls++) {
      xn = x.map((v, i) => v + step * p[i]);
      [fn, gn] = f(xn);
      if (fn <= fx + 1e-4 * step * slope) break;
      step /= 2;
    }
    const sv = xn.map((v, i) => v - x[i]);
    const yv = gn.map((v, i) => v - gx[i]);
    const sy = sv.reduce((a, v, i) => a + v * yv[i], 0);
    x = xn;
    const df = fx - fn;
    fx = fn;
    gx = gn;
    if (Math.sqrt(gx.reduce((a, v) => a + v * v, 0)) < 1e-8 || df < 1e-13) break;
    if (sy > 1e-12) {
      if (it === 0) {
        // First step: scale the initial inverse Hessian to the curvature seen along it.
        const yy = yv.reduce((a, v) => a + v * v, 0);
        h = new Float64Array(m * m);
        for (let i = 0; i < m; i++) h[i * m + i] = sy / yy;
      }
      // H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T
      const rho = 1 / sy;
      const hy = new Float64Array(m);
      for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) hy[i] += h[i * m + j] * yv[j];
      const yhy = yv.reduce((a, v, i) => a + v * hy[i], 0);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) {
          h[i * m + j] += -rho * (hy[i] * sv[j] + sv[i] * hy[j]) + (rho * rho * yhy + rho) * sv[i] * sv[j];
        }
      }
    }
  }
  const cov = new Float64Array(d * d);
  for (let j = 0; j < d; j++) cov[j * d + j] = Math.exp(2 * x[d + j]);
  return { mean: x.slice(0, d), cov };
}
