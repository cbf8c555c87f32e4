/**
 * Exact Gaussian-process regression in float64 on the host (Rasmussen & Williams 2006, Algorithm 2.1),
 * the reference every iterative solver is checked against:
 *
 *   K_y = k(X, X) + sigma^2 I = L L^T,   alpha = L^-T L^-1 y
 *   mean(x*) = k(x*, X) alpha,   var(x*) = k(x*, x*) - |L^-1 k(X, x*)|^2
 *   log p(y) = -y^T alpha / 2 - sum_i log L_ii - (n / 2) log 2 pi
 *   d log p(y) / d theta = tr((alpha alpha^T - K_y^-1) dK_y / d theta) / 2       (R&W eq. 5.9)
 *
 * Hyperparameters (ARD lengthscales, signal and noise variance) are fitted by maximising log p(y) per
 * point with L-BFGS on their logs. Cost: the factorisation n^3 / 3 flops, the gradient another 2 n^3 / 3
 * (K_y^-1 from L^-1); memory 8 n^2 bytes per n x n matrix, of which the fit holds three.
 */
import { cholesky, invertLower, logDetCholesky, solveLower, solveLowerTranspose } from "../core/linalg.js";
import { contractGradients, crossKernel, gramMatrix, scaleInputs, type GpHypers, type KernelName } from "./kernels.js";

const LOG_2PI = Math.log(2 * Math.PI);

/**
 * Smallest noise variance the fit may reach, in the standardised target's units: GPyTorch's default
 * constraint. On yacht the unconstrained fit drove it to 1e-6 with a signal variance of 1.6e3, a
 * condition number of K_y near 1e12 that no float32 solver can work with (CG diverged, SDD's relative
 * residual stayed at 0.4), while the float64 Cholesky did not mind.
 */
export const MIN_NOISE = 1e-4;

/**
 * K^-1 from the Cholesky factor L of K: (L^-1)^T L^-1, accumulated row by row of L^-1 (each row k,
 * nonzero in columns 0..k, adds its outer product), n^3 / 3 multiply-adds. Returns the full symmetric
 * matrix.
 */
export function choleskyInverse(l: Float64Array, n: number): Float64Array {
  const li = invertLower(l, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const row = li.subarray(k * n, k * n + k + 1);
    for (let i = 0; i <= k; i++) {
      const a = row[i];
      if (a === 0) continue;
      const oi = out.subarray(i * n, i * n + i + 1);
      for (let j = 0; j <= i; j++) oi[j] += a * row[j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j];
  return out;
}

/** Log-parameters theta = (log l_1..log l_d, log s^2, log sigma^2) of hyperparameters. */
export function toLog(h: GpHypers): Float64Array {
  return Float64Array.from([...h.lengthscales.map(Math.log), Math.log(h.signal), Math.log(h.noise)]);
}

/** Hyperparameters from their logs. */
export function fromLog(kernel: KernelName, theta: ArrayLike<number>): GpHypers {
  const d = theta.length - 2;
  return { kernel, lengthscales: Array.from({ length: d }, (_, j) => Math.exp(theta[j])), signal: Math.exp(theta[d]), noise: Math.exp(theta[d + 1]) };
}

/** log p(y | X, h) and, with `withGradient`, its gradient in the log-parameters ({@link toLog}). */
export function logMarginal(h: GpHypers, x: ArrayLike<number>, y: ArrayLike<number>, n: number, withGradient = true): { value: number; gradient?: Float64Array } {
  const z = scaleInputs(x, n, h.lengthscales);
  const k = gramMatrix(h, z, n);
  const l = cholesky(k, n);
  const alpha = solveLowerTranspose(l, n, solveLower(l, n, Float64Array.from(y), 1), 1);
  let quad = 0;
  for (let i = 0; i < n; i++) quad += y[i] * alpha[i];
  const value = -0.5 * quad - 0.5 * logDetCholesky(l, n) - 0.5 * n * LOG_2PI;
  if (!withGradient) return { value };
  const w = choleskyInverse(l, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[i * n + j] = alpha[i] * alpha[j] - w[i * n + j];
  const g = contractGradients(h, z, n, w);
  for (let i = 0; i < g.length; i++) g[i] *= 0.5;
  return { value, gradient: g };
}

/** Options of {@link fitHypers}. */
export interface HyperFitOptions {
  /** Largest number of marginal-likelihood evaluations (each one factorisation and gradient). */
  readonly maxEvaluations?: number;
  /** Starting hyperparameters (default: lengthscales sqrt(d), signal 1, noise 0.1). */
  readonly init?: GpHypers;
}

/** What {@link fitHypers} found. */
export interface HyperFit {
  readonly hypers: GpHypers;
  /** log p(y) per point at the optimum. */
  readonly logMarginalPerPoint: number;
  readonly evaluations: number;
  readonly iterations: number;
}

/** Default starting point for standardised inputs and targets. */
export function defaultHypers(kernel: KernelName, d: number): GpHypers {
  return { kernel, lengthscales: new Array<number>(d).fill(Math.sqrt(d)), signal: 1, noise: 0.1 };
}

/**
 * Type-II maximum likelihood: maximises log p(y) / n over the log hyperparameters with L-BFGS (memory 10,
 * Armijo backtracking from the unit step). The log noise is held at or above log {@link MIN_NOISE}; a
 * point where K_y is not positive definite in float64 counts as -infinity and the line search backs off.
 * Stops when an iteration improves the objective by less than 1e-8 (relative), when the gradient's
 * largest entry is below 1e-6, or after `maxEvaluations` evaluations (default 150).
 */
export function fitHypers(kernel: KernelName, x: ArrayLike<number>, y: ArrayLike<number>, n: number, d: number, o: HyperFitOptions = {}): HyperFit {
  const maxEval = o.maxEvaluations ?? 150;
  const floor = Math.log(MIN_NOISE);
  let evaluations = 0;
  const f = (theta: Float64Array): { v: number; g: Float64Array } => {
    evaluations++;
    const t = Float64Array.from(theta);
    if (t[d + 1] < floor) t[d + 1] = floor;
    try {
      const r = logMarginal(fromLog(kernel, t), x, y, n);
      const g = r.gradient!.map((gi) => -gi / n);
      if (theta[d + 1] < floor && g[d + 1] > 0) g[d + 1] = 0;
      return { v: -r.value / n, g };
    } catch (e) {
      if (e instanceof RangeError) return { v: Infinity, g: new Float64Array(d + 2) };
      throw e;
    }
  };
  let theta = toLog(o.init ?? defaultHypers(kernel, d));
  let cur = f(theta);
  if (!Number.isFinite(cur.v)) throw new RangeError("fitHypers: the kernel matrix at the starting hyperparameters is not positive definite");
  const mem: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  const m = d + 2;
  let iterations = 0;
  while (evaluations < maxEval) {
    iterations++;
    // Two-loop recursion: direction p = -H g.
    const q = Float64Array.from(cur.g);
    const alphas: number[] = [];
    for (let i = mem.length - 1; i >= 0; i--) {
      const a = mem[i].rho * dotv(mem[i].s, q);
      alphas[i] = a;
      for (let j = 0; j < m; j++) q[j] -= a * mem[i].y[j];
    }
    if (mem.length > 0) {
      const last = mem[mem.length - 1];
      const gamma = dotv(last.s, last.y) / dotv(last.y, last.y);
      for (let j = 0; j < m; j++) q[j] *= gamma;
    } else {
      const gn = Math.sqrt(dotv(q, q));
      for (let j = 0; j < m; j++) q[j] *= Math.min(1, 0.5 / Math.max(gn, 1e-12));
    }
    for (let i = 0; i < mem.length; i++) {
      const b = mem[i].rho * dotv(mem[i].y, q);
      for (let j = 0; j < m; j++) q[j] += mem[i].s[j] * (alphas[i] - b);
    }
    const p = q.map((v) => -v);
    let slope = dotv(p, cur.g);
    if (!(slope < 0)) {
      // Not a descent direction: restart from steepest descent.
      mem.length = 0;
      const gn = Math.sqrt(dotv(cur.g, cur.g));
      for (let j = 0; j < m; j++) p[j] = (-cur.g[j] * Math.min(1, 0.5 / Math.max(gn, 1e-12)));
      slope = dotv(p, cur.g);
    }
    let step = 1;
    let next: { v: number; g: Float64Array } | undefined;
    let thetaNext = theta;
    while (evaluations < maxEval) {
      thetaNext = theta.map((t, j) => t + step * p[j]);
      const r = f(thetaNext);
      if (Number.isFinite(r.v) && r.v <= cur.v + 1e-4 * step * slope) {
        next = r;
        break;
      }
      step *= 0.5;
      if (step < 1e-10) break;
    }
    if (!next) break;
    const s = thetaNext.map((t, j) => t - theta[j]);
    const yv = next.g.map((g, j) => g - cur.g[j]);
    const sy = dotv(s, yv);
    if (sy > 1e-12) {
      mem.push({ s, y: yv, rho: 1 / sy });
      if (mem.length > 10) mem.shift();
    }
    const improvement = cur.v - next.v;
    theta = thetaNext;
    cur = next;
    if (improvement < 1e-8 * (1 + Math.abs(cur.v))) break;
    if (Math.max(...cur.g.map(Math.abs)) < 1e-6) break;
  }
  if (theta[d + 1] < floor) theta[d + 1] = floor;
  return { hypers: fromLog(kernel, theta), logMarginalPerPoint: -cur.v, evaluations, iterations };
}

function dotv(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** An exact GP conditioned on training data: the factor of K_y and the representer weights. */
export interface ExactGp {
  readonly hypers: GpHypers;
  readonly n: number;
  /** Training inputs divided by the lengthscales, n x d. */
  readonly z: Float64Array;
  /** Lower Cholesky factor of K_y, n x n. */
  readonly factor: Float64Array;
  /** K_y^-1 y. */
  readonly alpha: Float64Array;
  readonly logMarginal: number;
  /** Added to the diagonal beyond sigma^2 to make the factorisation succeed ({@link JITTERS}); usually 0. */
  readonly jitter: number;
}

/**
 * Jitters tried, in units of the signal variance, when K_y is not positive definite in float64. On
 * naval the fitted signal variance dwarfs the noise floor, so round-off in the factorisation left a
 * pivot of -1.3e-5 at the floor sigma^2 = 1e-4 (GPyTorch retries with growing jitter the same way).
 */
export const JITTERS = [0, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6];

/**
 * Conditions on (x, y): one factorisation, n^3 / 3 flops (more if a jitter is needed: each retry is
 * another factorisation). `jitter` is what was added to the diagonal, 0 when none was needed.
 */
export function conditionExact(h: GpHypers, x: ArrayLike<number>, y: ArrayLike<number>, n: number): ExactGp {
  const z = scaleInputs(x, n, h.lengthscales);
  const k = gramMatrix(h, z, n);
  let factor: Float64Array | undefined;
  let jitter = 0;
  for (const j of JITTERS) {
    jitter = j * h.signal;
    if (jitter > 0) for (let i = 0; i < n; i++) k[i * n + i] += jitter;
    try {
      factor = cholesky(k, n);
      break;
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      if (jitter > 0) for (let i = 0; i < n; i++) k[i * n + i] -= jitter;
    }
  }
  if (!factor) throw new RangeError(`exact GP: K + sigma^2 I is not positive definite in float64 even with a jitter of ${JITTERS[JITTERS.length - 1]} times the signal variance (${h.signal}); the hyperparameters are degenerate`);
  const alpha = solveLowerTranspose(factor, n, solveLower(factor, n, Float64Array.from(y), 1), 1);
  let quad = 0;
  for (let i = 0; i < n; i++) quad += y[i] * alpha[i];
  return { hypers: h, n, z, factor, alpha, jitter, logMarginal: -0.5 * quad - 0.5 * logDetCholesky(factor, n) - 0.5 * n * LOG_2PI };
}

/**
 * Posterior mean and latent variance (without the noise) at m inputs `xs` (m x d). With `covariance`,
 * also the m x m posterior covariance. Cost n^2 m (the solve with the cross-covariance).
 */
export function predictExact(gp: ExactGp, xs: ArrayLike<number>, m: number, covariance = false): { mean: Float64Array; variance: Float64Array; covariance?: Float64Array } {
  const h = gp.hypers;
  const n = gp.n;
  const zs = scaleInputs(xs, m, h.lengthscales);
  const kxs = crossKernel(h, gp.z, n, zs, m); // n x m
  const mean = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    const a = gp.alpha[i];
    for (let j = 0; j < m; j++) mean[j] += kxs[i * m + j] * a;
  }
  const v = solveLower(gp.factor, n, kxs, m); // n x m
  const variance = new Float64Array(m).fill(h.signal);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) variance[j] -= v[i * m + j] * v[i * m + j];
  for (let j = 0; j < m; j++) variance[j] = Math.max(variance[j], 0);
  if (!covariance) return { mean, variance };
  const cov = crossKernel(h, zs, m, zs, m);
  for (let i = 0; i < n; i++) {
    const vi = v.subarray(i * m, i * m + m);
    for (let a = 0; a < m; a++) {
      const va = vi[a];
      if (va === 0) continue;
      for (let b = 0; b < m; b++) cov[a * m + b] -= va * vi[b];
    }
  }
  return { mean, variance, covariance: cov };
}

/**
 * S joint posterior function samples at m inputs from standard normal draws `eps` (m x S): mean + C eps
 * with C the Cholesky factor of the posterior covariance plus a jitter of 1e-10 s^2 (the covariance of a
 * smooth kernel is numerically singular). Returns m x S.
 */
export function sampleExact(gp: ExactGp, xs: ArrayLike<number>, m: number, eps: Float64Array, s: number): Float64Array {
  const p = predictExact(gp, xs, m, true);
  const cov = p.covariance!;
  for (let i = 0; i < m; i++) cov[i * m + i] += 1e-10 * gp.hypers.signal;
  const c = cholesky(cov, m);
  const out = new Float64Array(m * s);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k <= i; k++) {
      const cik = c[i * m + k];
      for (let j = 0; j < s; j++) out[i * s + j] += cik * eps[k * s + j];
    }
    for (let j = 0; j < s; j++) out[i * s + j] += p.mean[i];
  }
  return out;
}

/** Bytes the exact solver holds for n training points: K_y and its factor (2 x 8 n^2). */
export function exactBytes(n: number): number {
  return 16 * n * n;
}
