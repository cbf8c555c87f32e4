/**
 * The noise variance from held-out training points at the full data's density.
 *
 * The marginal likelihood of a random subset of m << n points sees the data far sparser than the solver
 * will: in a 9-dimensional set such as protein, no two of 1,000 random points are close on the scale of
 * the fitted lengthscales, so "rough signal" and "noise" explain the subset equally well and the fit may
 * put all the variance in the signal (noise at its floor). Conditioned on all n points, such a GP
 * interpolates every near neighbour as if it were noiseless, and its predictive is overconfident.
 *
 * This step keeps the subset's lengthscales and signal variance and chooses sigma^2 by the quantity the
 * test log-likelihood measures, on training points only: for V held-out training rows v, the Gaussian
 * predictive of y_v given its k nearest other training rows (nearest in lengthscale-scaled distance; the
 * held-out rows are never neighbours),
 *
 *   mu_v = k_v^T (K_v + sigma^2 I)^-1 y_N,   s_v^2 = s^2 - k_v^T (K_v + sigma^2 I)^-1 k_v + sigma^2,
 *
 * and sigma^2 maximises (1 / V) sum_v log N(y_v; mu_v, s_v^2). Because the neighbours of a point carry
 * almost all of what the full data say about it (the kernel decays with distance), this local predictive
 * stands in for the full-data one at a cost of V eigendecompositions of k x k matrices. With
 * K_v = Q diag(lambda) Q^T, a = Q^T k_v and b = Q^T y_N, every sigma^2 costs O(k) per point:
 * mu_v = sum_i a_i b_i / (lambda_i + sigma^2) and s_v^2 = s^2 - sum_i a_i^2 / (lambda_i + sigma^2) + sigma^2.
 * The maximiser is found on a grid of log sigma^2 and refined by golden-section search.
 *
 * Choosing a hyperparameter by held-out predictive likelihood is cross-validation (Rasmussen and
 * Williams 2006, section 5.4.2); the local predictive is the nearest-neighbour approximation of Vecchia
 * (1988) and of Datta et al. (2016).
 */
import { symEig } from "../core/linalg.js";
import { goldenSectionMax } from "../core/math.js";
import { MIN_NOISE } from "./exact.js";
import { crossKernel, gramMatrix, type GpHypers } from "./kernels.js";

/** Held-out training rows the noise is chosen on. */
export const NOISE_VALIDATION_POINTS = 500;
/** Neighbours each held-out row is predicted from. */
export const NOISE_NEIGHBOURS = 256;

/** What {@link calibrateNoise} chose. */
export interface NoiseCalibration {
  readonly noise: number;
  /** Mean held-out log-likelihood per point (standardised targets) at the chosen noise and at the given one. */
  readonly validationLl: number;
  readonly givenLl: number;
  readonly points: number;
  readonly neighbours: number;
}

/** One held-out row, reduced to its eigenbasis: lambda, a = Q^T k_v, b = Q^T y_N, and y_v. */
interface Local {
  readonly lambda: Float64Array;
  readonly a: Float64Array;
  readonly b: Float64Array;
  readonly y: number;
}

/** Indices of the k smallest entries of `dist` over `pool` (a bounded max-heap), any order. */
function nearest(dist: (i: number) => number, pool: Int32Array, k: number): Int32Array {
  const heap = new Int32Array(k);
  const key = new Float64Array(k);
  let size = 0;
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && key[l] > key[m]) m = l;
      if (r < size && key[r] > key[m]) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      [key[i], key[m]] = [key[m], key[i]];
      i = m;
    }
  };
  for (const p of pool) {
    const dp = dist(p);
    if (size < k) {
      let i = size++;
      heap[i] = p;
      key[i] = dp;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (key[parent] >= key[i]) break;
        [heap[i], heap[parent]] = [heap[parent], heap[i]];
        [key[i], key[parent]] = [key[parent], key[i]];
        i = parent;
      }
    } else if (dp < key[0]) {
      heap[0] = p;
      key[0] = dp;
      siftDown(0);
    }
  }
  return heap.subarray(0, size);
}

function localProblems(h: GpHypers, x: ArrayLike<number>, y: ArrayLike<number>, n: number, held: Int32Array, k: number): Local[] {
  const d = h.lengthscales.length;
  const z = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) z[i * d + j] = x[i * d + j] / h.lengthscales[j];
  const isHeld = new Uint8Array(n);
  for (const v of held) isHeld[v] = 1;
  const pool = new Int32Array(n - held.length);
  for (let i = 0, w = 0; i < n; i++) if (!isHeld[i]) pool[w++] = i;
  const out: Local[] = [];
  for (const v of held) {
    const zv = z.subarray(v * d, v * d + d);
    const nb = nearest(
      (i) => {
        let s = 0;
        for (let j = 0; j < d; j++) {
          const t = z[i * d + j] - zv[j];
          s += t * t;
        }
        return s;
      },
      pool,
      k,
    );
    const m = nb.length;
    const zn = new Float64Array(m * d);
    nb.forEach((r, i) => zn.set(z.subarray(r * d, r * d + d), i * d));
    const { values, vectors } = symEig(gramMatrix(h, zn, m, false), m);
    const kv = crossKernel(h, Float64Array.from(zv), 1, zn, m);
    const a = new Float64Array(m);
    const b = new Float64Array(m);
    for (let r = 0; r < m; r++) {
      const yr = y[nb[r]];
      for (let c = 0; c < m; c++) {
        a[c] += vectors[r * m + c] * kv[r];
        b[c] += vectors[r * m + c] * yr;
      }
    }
    out.push({ lambda: values.map((l) => Math.max(l, 0)), a, b, y: y[v] });
  }
  return out;
}

/** Mean held-out log-likelihood at noise variance `noise`. */
function meanLl(locals: readonly Local[], signal: number, noise: number): number {
  let total = 0;
  for (const p of locals) {
    let mu = 0;
    let explained = 0;
    for (let i = 0; i < p.lambda.length; i++) {
      const w = 1 / (p.lambda[i] + noise);
      mu += p.a[i] * p.b[i] * w;
      explained += p.a[i] * p.a[i] * w;
    }
    const variance = Math.max(signal - explained, 0) + noise;
    total += -0.5 * Math.log(2 * Math.PI * variance) - ((p.y - mu) * (p.y - mu)) / (2 * variance);
  }
  return total / locals.length;
}

/**
 * Chooses the noise variance of `h` by the held-out predictive log-likelihood of the training rows
 * `held` (see the module comment), searching sigma^2 in [MIN_NOISE, 10 (s^2 + sigma^2)]. Targets are
 * the standardised ones the hyperparameters were fitted on.
 */
export function calibrateNoise(h: GpHypers, x: ArrayLike<number>, y: ArrayLike<number>, n: number, held: Int32Array, neighbours = NOISE_NEIGHBOURS): NoiseCalibration {
  if (held.length === 0 || n - held.length < 1) throw new RangeError(`calibrateNoise: needs held-out rows and at least one other row (n = ${n}, held out ${held.length})`);
  const k = Math.min(neighbours, n - held.length);
  const locals = localProblems(h, x, y, n, held, k);
  const f = (logNoise: number) => meanLl(locals, h.signal, Math.exp(logNoise));
  const lo = Math.log(MIN_NOISE);
  const hi = Math.log(10 * (h.signal + h.noise));
  const grid = 60;
  let best = 0;
  let bestValue = -Infinity;
  const at = (i: number) => lo + ((hi - lo) * i) / grid;
  for (let i = 0; i <= grid; i++) {
    const v = f(at(i));
    if (v > bestValue) [best, bestValue] = [i, v];
  }
  // Golden-section search on the grid cells either side of the best grid point.
  const refined = goldenSectionMax(f, at(Math.max(best - 1, 0)), at(Math.min(best + 1, grid)), 1e-6);
  const [logNoise, value] = refined.value >= bestValue ? [refined.x, refined.value] : [at(best), bestValue];
  return { noise: Math.exp(logNoise), validationLl: value, givenLl: f(Math.log(Math.max(h.noise, MIN_NOISE))), points: held.length, neighbours: k };
}
