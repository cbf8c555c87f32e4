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
export const CG_PATIENCE = 50;

/** Options of {@link solveCg}. */
export interface CgOptions {
  /** Rank of the pivoted-Cholesky preconditioner (0: none). */
  readonly rank: number;
  /** Stop when every column's relative residual |b - A x| / |b| is below this. */
  readonly tolerance: number;
  readonly maxIterations: number;
}

/** The result of {@link solveCg}. */
export interface CgResult {
  readonly solution: JArray;
  readonly iterations: number;
  /** Each column's final relative residual (of the recursion). */
  readonly residuals: Float64Array;
  readonly rank: number;
}

/**
 * Solves (K + sigma^2 I) A = B for B [C, n] (borrowed, one row per right-hand side) by preconditioned CG
 * from A = 0. `x` are the host training inputs (for the preconditioner). `onIteration` sees each
 * iteration's largest relative residual. In float32 the recursion's residual stops falling once the
 * system's condition number nears 1e7; the iterate with the lowest largest residual is returned, and
 * the run stops after {@link CG_PATIENCE} iterations without a new lowest.
 */
export async function solveCg(product: KernelProduct, sys: GpSystem, x: ArrayLike<number>, b: JArray, o: CgOptions, onIteration?: (it: number, worst: number) => void): Promise<CgResult> {
  const { n, nPad } = sys;
  const noise = sys.hypers.noise;
  const pc = o.rank > 0 ? pivotedCholesky(sys.hypers, x, n, o.rank) : { factor: new Float64Array(0), rank: 0 };
  const r = pc.rank;
  let applyPre: (v: JArray) => JArray = (v) => v;
  let dispose = () => {};
  if (r > 0) {
    // M = sigma^2 I + L^T L (r x r); P^-1 v = (v - L M^-1 L^T v) / sigma^2, M^-1 from its Cholesky factor.
    const m = new Float64Array(r * r);
    for (let i = 0; i < n; i++) {
      for (let a = 0; a < r; a++) {
        const la = pc.factor[i * r + a];
        if (la === 0) continue;
        for (let c = 0; c <= a; c++) m[a * r + c] += la * pc.factor[i * r + c];
      }
    }
    for (let a = 0; a < r; a++) {
      for (let c = 0; c < a; c++) m[c * r + a] = m[a * r + c];
      m[a * r + a] += noise;
    }
    const cm = cholesky(m, r);
    const eye = new Float64Array(r * r);
    for (let a = 0; a < r; a++) eye[a * r + a] = 1;
    const minv = solveLowerTranspose(cm, r, solveLower(cm, r, eye, r), r);
    const padded = new Float32Array(nPad * r);
    padded.set(pc.factor);
    const lf = fromHost(padded, [nPad, r]);
    const mi = fromHost(Float32Array.from(minv), [r, r]);
    // v [C, n]: (v - ((v L) M^-1) L^T) / sigma^2.
    applyPre = (v) => v.ref.sub(np.matmul(np.matmul(np.matmul(v, lf.ref), mi.ref), lf.ref.transpose())).mul(1 / noise);
    dispose = () => {
      lf.dispose();
      mi.dispose();
    };
  }
  const colNorm = (a: JArray) => toHost(np.sqrt(np.sum(np.square(a), 1)));
  const bNorm = Float64Array.from(await colNorm(b.ref), (v) => Math.max(v, 1e-30));
  let xk = np.zeros(b.shape);
  let res = b.ref;
  let zk = applyPre(res.ref);
  let p = zk.ref;
  let rz = np.sum(res.ref.mul(zk), 1);
  let residuals = new Float64Array(b.shape[0]).fill(1);
  let best = { worst: Infinity, x: np.zeros(b.shape), residuals, it: 0 };
  let it = 0;
  try {
    while (it < o.maxIterations && it - best.it <= CG_PATIENCE) {
      it++;
      const q = systemProduct(product, sys, p);
      const pq = np.sum(p.ref.mul(q.ref), 1);
      const step = rz.ref.div(pq);
      xk = xk.add(p.ref.mul(step.ref.reshape([-1, 1])));
      res = res.sub(q.mul(step.reshape([-1, 1])));
      const rn = await colNorm(res.ref);
      residuals = Float64Array.from(rn, (v, i) => v / bNorm[i]);
      const worst = Math.max(...residuals);
      onIteration?.(it, worst);
      if (worst < best.worst) {
        best.x.dispose();
        best = { worst, x: xk.ref, residuals, it };
      }
      if (worst < o.tolerance) break;
      zk = applyPre(res.ref);
      const rzNew = np.sum(res.ref.mul(zk.ref), 1);
      const beta = rzNew.ref.div(rz);
      rz = rzNew;
      p = zk.add(p.mul(beta.reshape([-1, 1])));
    }
  } finally {
    res.dispose();
    rz.dispose();
    p.dispose();
    xk.dispose();
    dispose();
  }
  return { solution: best.x, iterations: it, residuals: best.residuals, rank: r };
}
