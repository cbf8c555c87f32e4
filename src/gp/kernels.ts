/**
 * Stationary kernels for Gaussian-process regression: the squared exponential (RBF) and the Matern
 * family with nu = 1/2, 3/2, 5/2, each with ARD lengthscales l_1..l_d and a signal variance s^2.
 *
 * With r^2 = sum_j ((x_j - x'_j) / l_j)^2 (Rasmussen & Williams 2006, eqs. 4.9 and 4.14-4.17):
 *
 *   rbf:      k = s^2 exp(-r^2 / 2)
 *   matern12: k = s^2 exp(-r)
 *   matern32: k = s^2 (1 + sqrt3 r) exp(-sqrt3 r)
 *   matern52: k = s^2 (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)
 *
 * Three forms of the same kernel live here: host float64 matrices and their derivatives with respect to
 * the log hyperparameters (exact inference and the marginal likelihood), engine float32 blocks (the
 * iterative solvers, which evaluate k(X_b, X) a block of rows at a time and never hold the n x n matrix),
 * and random Fourier features (Rahimi & Recht 2007) for prior function samples: by Bochner's theorem
 * k(x, x') = s^2 E_w[cos(w^T (x - x') / l)] with w drawn from the kernel's spectral density, a standard
 * normal for the RBF and a multivariate Student-t with 2 nu degrees of freedom for Matern nu, so
 * phi(x) = s sqrt(2 / L) cos(W^T (x / l) + b), b ~ U[0, 2 pi), gives phi(x)^T phi(x') -> k(x, x').
 */
import { np, random, split, type JArray, type Key } from "../core/engine.js";

/** The kernels by the names users type. */
export const KERNELS = ["rbf", "matern12", "matern32", "matern52"] as const;
export type KernelName = (typeof KERNELS)[number];

/** Hyperparameters in natural units. */
export interface GpHypers {
  readonly kernel: KernelName;
  /** One lengthscale per input dimension (ARD). */
  readonly lengthscales: readonly number[];
  /** Signal variance s^2. */
  readonly signal: number;
  /** Observation noise variance sigma^2. */
  readonly noise: number;
}

/** Throws unless `name` is a kernel this module knows. */
export function checkKernel(name: string): KernelName {
  if (!(KERNELS as readonly string[]).includes(name)) throw new RangeError(`unknown kernel '${name}'; expected one of ${KERNELS.join(", ")}`);
  return name as KernelName;
}

const SQRT3 = Math.sqrt(3);
const SQRT5 = Math.sqrt(5);

/** k / s^2 as a function of r^2 (host). */
export function kernelOfR2(kernel: KernelName, r2: number): number {
  switch (kernel) {
    case "rbf":
      return Math.exp(-0.5 * r2);
    case "matern12":
      return Math.exp(-Math.sqrt(r2));
    case "matern32": {
      const r = SQRT3 * Math.sqrt(r2);
      return (1 + r) * Math.exp(-r);
    }
    case "matern52": {
      const r = Math.sqrt(r2);
      return (1 + SQRT5 * r + (5 / 3) * r2) * Math.exp(-SQRT5 * r);
    }
  }
}

/**
 * f(r^2) = -2 d(k / s^2) / d(r^2), so that d(k / s^2) / d log l_j = f(r^2) a_j with a_j = ((x_j - x'_j) /
 * l_j)^2 (since d r^2 / d log l_j = -2 a_j). For matern12 f = exp(-r) / r, whose product with a_j <= r^2
 * stays finite; at r = 0 every a_j is 0 and 0 is returned.
 */
export function lengthscaleFactor(kernel: KernelName, r2: number): number {
  switch (kernel) {
    case "rbf":
      return Math.exp(-0.5 * r2);
    case "matern12": {
      const r = Math.sqrt(r2);
      return r === 0 ? 0 : Math.exp(-r) / r;
    }
    case "matern32":
      return 3 * Math.exp(-SQRT3 * Math.sqrt(r2));
    case "matern52": {
      const r = Math.sqrt(r2);
      return (5 / 3) * (1 + SQRT5 * r) * Math.exp(-SQRT5 * r);
    }
  }
}

/** Inputs divided by their lengthscales, row-major n x d (float64 copy). */
export function scaleInputs(x: ArrayLike<number>, n: number, lengthscales: readonly number[]): Float64Array {
  const d = lengthscales.length;
  if (x.length !== n * d) throw new RangeError(`scaleInputs: x must have n*d = ${n * d} entries, got ${x.length}`);
  const z = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) z[i * d + j] = x[i * d + j] / lengthscales[j];
  return z;
}

/** Squared scaled distance between row i of `a` and row j of `b` (both already divided by l). */
function r2At(a: Float64Array, i: number, b: Float64Array, j: number, d: number): number {
  let s = 0;
  const ai = i * d;
  const bj = j * d;
  for (let c = 0; c < d; c++) {
    const t = a[ai + c] - b[bj + c];
    s += t * t;
  }
  return s;
}

/**
 * The cross-covariance k(A, B), m x n row-major float64, from inputs already divided by the lengthscales
 * (`za` m x d, `zb` n x d). Distances are summed from differences, not from |a|^2 + |b|^2 - 2 a.b, so
 * nearby points keep their digits.
 */
export function crossKernel(h: GpHypers, za: Float64Array, m: number, zb: Float64Array, n: number): Float64Array {
  const d = h.lengthscales.length;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] = h.signal * kernelOfR2(h.kernel, r2At(za, i, zb, j, d));
  return out;
}

/** k(X, X) + noise I (symmetric, filled from its lower triangle), n x n float64. */
export function gramMatrix(h: GpHypers, z: Float64Array, n: number, withNoise = true): Float64Array {
  const d = h.lengthscales.length;
  const k = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const v = h.signal * kernelOfR2(h.kernel, r2At(z, i, z, j, d));
      k[i * n + j] = v;
      k[j * n + i] = v;
    }
    k[i * n + i] = h.signal + (withNoise ? h.noise : 0);
  }
  return k;
}

/**
 * sum_ij W_ij dK_ij / d theta for every log hyperparameter theta = (log l_1..log l_d, log s^2, log
 * sigma^2), with W symmetric n x n: the contraction that turns W = alpha alpha^T - K^-1 into twice the
 * gradient of the log marginal likelihood. Uses dK/dlog l_j = s^2 f(r^2) a_j (f from
 * {@link lengthscaleFactor}), dK/dlog s^2 = K - noise I, dK/dlog sigma^2 = sigma^2 I. Cost n^2 d.
 */
export function contractGradients(h: GpHypers, z: Float64Array, n: number, w: Float64Array): Float64Array {
  const d = h.lengthscales.length;
  const g = new Float64Array(d + 2);
  const a = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      let r2 = 0;
      for (let c = 0; c < d; c++) {
        const t = z[i * d + c] - z[j * d + c];
        a[c] = t * t;
        r2 += a[c];
      }
      const wij = 2 * w[i * n + j]; // the (i, j) and (j, i) terms
      const f = h.signal * lengthscaleFactor(h.kernel, r2) * wij;
      for (let c = 0; c < d; c++) g[c] += f * a[c];
      g[d] += wij * h.signal * kernelOfR2(h.kernel, r2);
    }
    g[d] += w[i * n + i] * h.signal;
    g[d + 1] += w[i * n + i] * h.noise;
  }
  return g;
}

/**
 * k(za, zb) as an engine float32 block [m, n] from inputs already divided by the lengthscales:
 * r^2 = |a|^2 + |b|^2 - 2 a.b (one matmul), clamped at 0. Traceable; consumes `za` and borrows nothing
 * else: `zb` and `zbSq` (the squared row norms of zb, [n]) are consumed too, so pass `.ref`s to keep them.
 */
export function kernelBlock(kernel: KernelName, signal: number, za: JArray, zb: JArray, zbSq: JArray): JArray {
  const aSq = np.sum(np.square(za.ref), 1).reshape([-1, 1]);
  const cross = np.matmul(za, zb.transpose());
  const r2 = np.maximum(aSq.add(zbSq.reshape([1, -1])).sub(cross.mul(2)), 0);
  return kernelOfR2Engine(kernel, r2).mul(signal);
}

/** k / s^2 of an engine array of r^2 (traceable; consumes it). */
export function kernelOfR2Engine(kernel: KernelName, r2: JArray): JArray {
  switch (kernel) {
    case "rbf":
      return np.exp(r2.mul(-0.5));
    case "matern12":
      return np.exp(np.sqrt(r2).neg());
    case "matern32": {
      const r = np.sqrt(r2).mul(SQRT3);
      return r.ref.add(1).mul(np.exp(r.neg()));
    }
    case "matern52": {
      const r = np.sqrt(r2.ref);
      return r.ref.mul(SQRT5).add(1).add(r2.mul(5 / 3)).mul(np.exp(r.mul(-SQRT5)));
    }
  }
}

/** Degrees of freedom of the kernel's spectral Student-t (2 nu), or undefined for the RBF's normal. */
function spectralDof(kernel: KernelName): number | undefined {
  return kernel === "rbf" ? undefined : kernel === "matern12" ? 1 : kernel === "matern32" ? 3 : 5;
}

/**
 * Random Fourier features of the kernel: frequencies W [d, L] from its spectral density and phases b
 * [L] uniform on [0, 2 pi). A Student-t frequency with k = 2 nu degrees of freedom is z / sqrt(u / k),
 * z standard normal and u a chi-square with k degrees of freedom, here a sum of k squared normals
 * (k is 1, 3 or 5). Consumes the key.
 */
export function drawFeatures(k: Key, kernel: KernelName, d: number, count: number): { freqs: JArray; phases: JArray } {
  const [kW, kB, kU] = split(k, 3);
  let freqs = random.normal(kW, [d, count]);
  const dof = spectralDof(kernel);
  if (dof !== undefined) {
    const u = np.sum(np.square(random.normal(kU, [dof, count])), 0);
    freqs = freqs.div(np.sqrt(u.div(dof)).reshape([1, count]));
  } else {
    kU.dispose();
  }
  const phases = random.uniform(kB, [count]).mul(2 * Math.PI);
  return { freqs, phases };
}

/**
 * phi(z) [m, L] for inputs already divided by the lengthscales: s sqrt(2 / L) cos(z W + b), so that
 * phi(z) phi(z')^T estimates k(z, z') without bias. Traceable; consumes `z`, borrows the features.
 */
export function featureMap(z: JArray, freqs: JArray, phases: JArray, signal: number): JArray {
  const count = phases.shape[0];
  return np.cos(np.matmul(z, freqs.ref).add(phases.ref.reshape([1, count]))).mul(Math.sqrt((2 * signal) / count));
}
