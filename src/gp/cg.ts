/**
 * Preconditioned conjugate gradients for (K + sigma^2 I) A = B, all columns at once (each column keeps
 * its own step lengths), the iterative baseline of GP regression (Gardner et al. 2018, "GPyTorch:
 * blackbox matrix-matrix Gaussian process inference with GPU acceleration"; Wang et al. 2019, "Exact
 * Gaussian processes on a million data points").
 *
 * Preconditioner: P = L_r L_r^T + sigma^2 I with L_r the rank-r pivoted Cholesky factor of K (Harbrecht,
 * Peters & Schneider 2012), which picks at each step the point with the largest remaining variance and
 * costs r kernel rows plus O(n r^2). P^-1 by Woodbury: P^-1 v = (v - L_r (sigma^2 I + L_r^T L_r)^-1 L_r^T
 * v) / sigma^2. Each iteration is one blocked kernel product with the n x C search directions.
 */
import { cholesky, solveLower, solveLowerTranspose } from "../core/linalg.js";
import { fromHost, np, toHost, type JArray } from "../core/engine.js";
import { kernelOfR2, scaleInputs, type GpHypers } from "./kernels.js";
import { systemProduct, type GpSystem, type KernelProduct } from "./pathwise.js";

/**
 * Rank-`rank` pivoted Cholesky factor of k(X, X) (host float64, n x r row-major), stopping early when the
 * largest remaining diagonal falls below `tol` times the signal variance. Returns the factor and its rank.
 */
export function pivotedCholesky(h: GpHypers, x: ArrayLike<number>, n: number, rank: number, tol = 1e-6): { factor: Float64Array; rank: number } {
  const d = h.lengthscales.length;
  const z = scaleInputs(x, n, h.lengthscales);
  const r = Math.min(rank, n);
  const cols: Float64Array[] = [];
  const diag = new Float64Array(n).fill(h.signal);
  const pivots: number[] = [];
  for (let k = 0; k < r; k++) {
    let p = 0;
    for (let i = 1; i < n; i++) if (diag[i] > diag[p]) p = i;
    if (diag[p] <= tol * h.signal) break;
    pivots.push(p);
    const col = new Float64Array(n);
    const sp = Math.sqrt(diag[p]);
    for (let i = 0; i < n; i++) {
      let r2 = 0;
      for (let c = 0; c < d; c++) {
        const t = z[i * d + c] - z[p * d + c];
        r2 += t * t;
      }
      let v = h.signal * kernelOfR2(h.kernel, r2);
      for (let j = 0; j < k; j++) v -= cols[j][i] * cols[j][p];
      col[i] = v / sp;
    }
    // Earlier pivots' entries are zero in exact arithmetic; the new pivot's is sqrt(diag_p).
    for (const q of pivots) col[q] = q === p ? sp : 0;
    for (let i = 0; i < n; i++) diag[i] = Math.max(diag[i] - col[i] * col[i], 0);
    for (const q of pivots) diag[q] = 0;
    cols.push(col);
  }
  const k = cols.length;
  const factor = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) factor[i * k + j] = cols[j][i];
  return { factor, rank: k };
}

/** Iterations without a new lowest worst-column residual after which CG stops (float32 round-off has won). */
export const CG_PATIENCE = 100;

/** Options of {@link solveCg}. */
export interface CgOptions {
  /** Rank of the pivoted-Cholesky preconditioner (0: none). */
  readonly rank: number;
  /** Stop when every column's relative residual |b - A x| / |b| is below this. */
  readonly tolerance: number;
  readonly maxIterations: number;
  /**
   * Precision of the kernel products (the recursion is float64 either way). float32 products carry an
   * error of about 6e-8 lambda_max |p|, which decides the solution once lambda_max(K) / sigma^2 nears
   * 1e7 (yacht: 3.6e9, where float32 CG stalled at a relative residual of 0.8); float64 costs 5x.
   */
  readonly precision?: "float32" | "float64";
}

/** Condition-number estimate above which {@link solveCg} is run with float64 kernel products. */
export const CG_FLOAT64_CONDITION = 1e6;

/** The result of {@link solveCg}. */
export interface CgResult {
  readonly solution: JArray;
  readonly iterations: number;
  /** Each column's final relative residual (of the recursion). */
  readonly residuals: Float64Array;
  readonly rank: number;
}

/**
 * Solves (K + sigma^2 I) A = B for B [C, nPad] (borrowed, one row per right-hand side) by preconditioned
 * CG from A = 0. `x` are the host training inputs (for the preconditioner). `onIteration` sees each
 * iteration's largest relative residual.
 *
 * Precision: the kernel product runs on the engine in float32 (blocked, kernel.ts); the recursion, the
 * preconditioner and the iterates are float64 on the host. The Woodbury form subtracts two vectors of
 * size |v| and divides the difference by sigma^2; in float32 its round-off, eps |v| / sigma^2, swamped
 * the true value whenever lambda_max(K) / sigma^2 passed about 1e6 (kin8nm and energy: CG ended at 4x
 * the exact RMSE), which float64 removes. The returned solution is the iterate with the lowest largest
 * relative residual; the run stops after {@link CG_PATIENCE} iterations without a new lowest.
 */
export async function solveCg(product: KernelProduct, sys: GpSystem, x: ArrayLike<number>, b: JArray, o: CgOptions, onIteration?: (it: number, worst: number) => void): Promise<CgResult> {
  const { n, nPad } = sys;
  const c = b.shape[0];
  const noise = sys.hypers.noise;
  const pc = o.rank > 0 ? pivotedCholesky(sys.hypers, x, n, o.rank) : { factor: new Float64Array(0), rank: 0 };
  const r = pc.rank;
  const lf = pc.factor; // n x r
  let minv: Float64Array = new Float64Array(0);
  if (r > 0) {
    // M = sigma^2 I + L^T L (r x r), inverted through its Cholesky factor.
    const m = new Float64Array(r * r);
    for (let i = 0; i < n; i++) {
      for (let a = 0; a < r; a++) {
        const la = lf[i * r + a];
        if (la === 0) continue;
        for (let q = 0; q <= a; q++) m[a * r + q] += la * lf[i * r + q];
      }
    }
    for (let a = 0; a < r; a++) {
      for (let q = 0; q < a; q++) m[q * r + a] = m[a * r + q];
      m[a * r + a] += noise;
    }
    const cm = cholesky(m, r);
    const eye = new Float64Array(r * r);
    for (let a = 0; a < r; a++) eye[a * r + a] = 1;
    minv = solveLowerTranspose(cm, r, solveLower(cm, r, eye, r), r);
  }
  // P^-1 v = (v - L M^-1 L^T v) / sigma^2 for each of the c rows of v [c, nPad] (padding: v / sigma^2 = 0).
  const applyPre = (v: Float64Array): Float64Array => {
    const out = new Float64Array(c * nPad);
    if (r === 0) return Float64Array.from(v);
    const t = new Float64Array(r);
    const u = new Float64Array(r);
    for (let j = 0; j < c; j++) {
      const vj = v.subarray(j * nPad, j * nPad + nPad);
      t.fill(0);
      for (let i = 0; i < n; i++) {
        const vi = vj[i];
        if (vi === 0) continue;
        for (let a = 0; a < r; a++) t[a] += lf[i * r + a] * vi;
      }
      u.fill(0);
      for (let a = 0; a < r; a++) for (let q = 0; q < r; q++) u[a] += minv[a * r + q] * t[q];
      const oj = out.subarray(j * nPad, j * nPad + nPad);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let a = 0; a < r; a++) s += lf[i * r + a] * u[a];
        oj[i] = (vj[i] - s) / noise;
      }
    }
    return out;
  };
  const rowDots = (a: Float64Array, bb: Float64Array): Float64Array => {
    const out = new Float64Array(c);
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let i = j * nPad; i < (j + 1) * nPad; i++) s += a[i] * bb[i];
      out[j] = s;
    }
    return out;
  };
  const f64 = o.precision === "float64";
  const z64 = f64 ? sys.z.ref.astype(np.float64) : undefined;
  const zSq64 = z64 ? np.sum(np.square(z64.ref), 1) : undefined;
  const matvec = async (v: Float64Array): Promise<Float64Array> => {
    if (z64 && zSq64) {
      const up = fromHost(v, [c, nPad], "float64");
      const q = (await product.apply(z64, z64, zSq64, up)).transpose().add(up.mul(noise));
      return Float64Array.from((await q.data()) as ArrayLike<number>);
    }
    const up = fromHost(Float32Array.from(v), [c, nPad]);
    const q = await toHost(await systemProduct(product, sys, up));
    up.dispose();
    return Float64Array.from(q);
  };
  const bh = Float64Array.from(await toHost(b.ref));
  const bNorm = Float64Array.from(rowDots(bh, bh), (v) => Math.max(Math.sqrt(v), 1e-30));
  const xk = new Float64Array(c * nPad);
  const res = Float64Array.from(bh);
  let zk: Float64Array = applyPre(res);
  const p = Float64Array.from(zk);
  let rz = rowDots(res, zk);
  let best = { worst: Infinity, x: new Float64Array(c * nPad), residuals: new Float64Array(c).fill(1), it: 0 };
  let it = 0;
  while (it < o.maxIterations && it - best.it <= CG_PATIENCE) {
    it++;
    const q = await matvec(p);
    const pq = rowDots(p, q);
    for (let j = 0; j < c; j++) {
      const step = pq[j] > 0 ? rz[j] / pq[j] : 0;
      for (let i = j * nPad; i < (j + 1) * nPad; i++) {
        xk[i] += step * p[i];
        res[i] -= step * q[i];
      }
    }
    const residuals = Float64Array.from(rowDots(res, res), (v, j) => Math.sqrt(v) / bNorm[j]);
    const worst = Math.max(...residuals);
    onIteration?.(it, worst);
    if (worst < best.worst) best = { worst, x: Float64Array.from(xk), residuals, it };
    if (worst < o.tolerance) break;
    zk = applyPre(res);
    const rzNew = rowDots(res, zk);
    for (let j = 0; j < c; j++) {
      const beta = rz[j] > 0 ? rzNew[j] / rz[j] : 0;
      for (let i = j * nPad; i < (j + 1) * nPad; i++) p[i] = zk[i] + beta * p[i];
    }
    rz = rzNew;
  }
  z64?.dispose();
  zSq64?.dispose();
  return { solution: fromHost(Float32Array.from(best.x), [c, nPad]), iterations: it, residuals: best.residuals, rank: r };
}
