/**
 * Gaussian variational families over a flat vector theta in R^d (the {@link Family} interface of
 * src/vi/family.ts): full-rank, low-rank-plus-diagonal and diagonal (mean-field).
 *
 *   fullRank(d):      q = N(m, L L^T),        L lower triangular, diag(L) = softplus(raw diagonal)
 *   lowRank(d, r):    q = N(m, D + B B^T),    D = diag(s^2), s = softplus(rho), B in R^{d x r}
 *   diagonal(d):      q = N(m, diag(s^2)),    s = softplus(rho)
 *
 * Positive scales go through softplus(x) = log(1 + exp(x)) rather than exp: for small scales the two
 * agree (softplus(x) ~ exp(x) as x -> -inf, so Adam steps are relative there), while for large ones
 * softplus grows linearly, so an early large gradient cannot blow a scale up exponentially. The same
 * choice as the pytree mean-field family (src/vi/meanfield.ts, Blundell et al. 2015).
 *
 * All draws are reparameterised, theta = m + S eps with eps ~ N(0, I) (Kingma & Welling 2014;
 * Titsias & Lazaro-Gredilla 2014), so gradients of Monte Carlo objectives flow into m and S. Every
 * function is pure and traceable (`jit`, `grad`, `vmap`) and consumes its array arguments.
 */
import { lax, np, random, split, type JArray } from "../core/engine.js";
import { inverseSoftplus, LOG_2PI, softplus, stdNormalLogProb } from "../core/math.js";
import type { Family } from "./family.js";
import { adam, type GradientTransformation } from "../optim/transform.js";

/** Full-rank q: mean `[d]` and `chol` `[d, d]`, whose strict lower triangle is L's and whose diagonal is softplus^-1 of L's. */
export type FullRankQ = { mean: JArray; chol: JArray };
/** Low-rank q: mean `[d]`, `rho` `[d]` (s = softplus(rho)) and `factor` B `[d, r]`. */
export type LowRankQ = { mean: JArray; rho: JArray; factor: JArray };
/** Diagonal q: mean `[d]` and `rho` `[d]` (s = softplus(rho)). */
export type DiagQ = { mean: JArray; rho: JArray };

function checkDim(name: string, d: number): void {
  if (!Number.isInteger(d) || d < 1) throw new RangeError(`${name}: d must be a positive integer, got ${d}`);
}

function checkTheta(name: string, theta: JArray, d: number): void {
  if (theta.shape.length !== 2 || theta.shape[1] !== d) {
    const got = `[${theta.shape.join(", ")}]`;
    theta.dispose();
    throw new RangeError(`${name}.logProb: theta must have shape [n, ${d}], got ${got}`);
  }
}

/** Row vector of a `[d]` vector, `[1, d]`. */
const row = (v: JArray): JArray => v.reshape([1, -1]);

/**
 * The Cholesky factor L of a full-rank q from its raw `chol` parameter:
 * L = tril(raw, -1) + diag(softplus(diag(raw))). Consumes `raw`. Traceable.
 */
export function fullRankScale(raw: JArray): JArray {
  const strict = np.tril(raw.ref, -1);
  return strict.add(np.diag(softplus(np.diagonal(raw))));
}

/** sum_i log L_ii of a raw `chol` parameter (half the log determinant of the covariance). Consumes `raw`. */
function fullRankHalfLogDet(raw: JArray): JArray {
  return np.log(softplus(np.diagonal(raw))).sum();
}


/**
 * ||L^-1 r_i||^2 for each row r_i of `rowsFlipped` ([n, k], the rows given in REVERSED coordinate
 * order), L `[k, k]` lower triangular. Consumes both. Traceable under `jit` (forward) and `grad`
 * (eager), not `jit(grad(...))` (see below).
 *
 * jax-js workaround: `lax.linalg.triangularSolve` fails under `jit` with "routine primitive
 * triangular_solve input is not imm" for every lower/leftSide combination (measured, 0.1.25): the
 * wrapper inserts flips/transposes (views) in front of the routine and jit requires materialised
 * inputs. Reversing coordinates turns the lower system into an upper one, P L P (P the reversal),
 * which the wrapper passes straight through for `{ leftSide: false, lower: false, transposeA: true }`;
 * `triu` and the caller's subtraction/concatenation make both inputs computed (materialised) arrays.
 * Norms do not change under the reversal, so only squared norms are returned. The solve's gradient
 * (and Cholesky's) still builds views in front of the routine, so jit(grad) through this function
 * fails; the ELBO of the Gaussian families never needs it (closed-form entropy), and the low-rank
 * family avoids routines altogether ({@link smallCholesky}).
 */
function lowerSolveSquares(l: JArray, rowsFlipped: JArray): JArray {
  const uf = np.triu(np.flip(l, [0, 1]));
  const z = lax.linalg.triangularSolve(uf, rowsFlipped, { leftSide: false, lower: false, transposeA: true });
  return z.ref.mul(z).sum(1);
}

/**
 * L^-1 for a lower-triangular L `[d, d]` from matmuls only, so it is traceable under `jit(grad(...))`
 * (the routine solve of {@link lowerSolveSquares} is not). Consumes `l`.
 *
 * Blocked recursion, split at h = floor(d / 2):
 *   L = [[A, 0], [C, B]],   L^-1 = [[A^-1, 0], [-B^-1 C A^-1, B^-1]],
 * down to blocks of at most 16, which use the nilpotent series
 *   L = D (I + N),  N = D^-1 L - I strictly lower (N^n = 0),
 *   (I + N)^-1 = prod_{j < ceil(log2 n)} (I + (-N)^(2^j)),   L^-1 = (I + N)^-1 D^-1.
 * A series over the whole matrix forms N^(2^j) up to N^64 at d = 100, which overflowed float32 once
 * the off-diagonal entries of a fitted factor grew past a few times its diagonal (the vi-gaussian
 * bench's d = 100 run); in blocks of 16 the highest power is N^8. Cost O(d^3) in matmuls, against
 * O(d^2) per right-hand side for a solve, so it is the default only up to {@link SERIES_MAX_DIM}.
 */
export function lowerInverseSeries(l: JArray, d: number): JArray {
  if (d > 16) {
    const h = Math.floor(d / 2);
    const aInv = lowerInverseSeries(l.ref.slice([0, h], [0, h]), h);
    const bInv = lowerInverseSeries(l.ref.slice([h, d], [h, d]), d - h);
    const c = l.slice([h, d], [0, h]);
    const lower = np.matmul(np.matmul(bInv.ref, c), aInv.ref).mul(-1);
    const top = np.concatenate([aInv, np.zeros([h, d - h])], 1);
    return np.concatenate([top, np.concatenate([lower, bInv], 1)], 0);
  }
  const eye = np.eye(d);
  const dinv = np.reciprocal(l.ref.mul(eye.ref).sum(1)).reshape([d, 1]);
  let negN = eye.ref.sub(l.mul(dinv.ref)); // -N
  let inv = eye.ref.add(negN.ref);
  for (let p = 2; p < d; p *= 2) {
    negN = np.matmul(negN.ref, negN);
    inv = np.matmul(inv, eye.ref.add(negN.ref));
  }
  negN.dispose();
  eye.dispose();
  return inv.mul(dinv.reshape([1, d]));
}

/** Largest d for which `fullRank` defaults to the matmul inverse ({@link lowerInverseSeries}). */
export const SERIES_MAX_DIM = 256;

/** Options of {@link fullRank}. */
export interface FullRankOptions {
  /**
   * How logProb and kl apply L^-1: `"series"` ({@link lowerInverseSeries}; works under jit and
   * jit(grad), O(d^3 log d)) or `"routine"` (jax-js's triangular solve, O(n d^2); jit forward and
   * eager grad only). Default `"series"` for d <= {@link SERIES_MAX_DIM}, else `"routine"`.
   */
  readonly solve?: "series" | "routine";
}

/** Lower Cholesky factor of a small SPD matrix, as its columns (zero above the diagonal) and diagonal entries. */
interface SmallChol {
  readonly cols: JArray[];
  readonly diag: JArray[];
}

/**
 * Cholesky factor of a small SPD matrix `c` `[r, r]` by r unrolled column steps in elementwise ops
 * (O(r^2) traced ops of size r), so it is differentiable under `jit` (jax-js's cholesky routine is not,
 * see {@link lowerSolveSquares}). Meant for the r x r capacitance of the low-rank family (r up to a
 * few tens). Consumes `c`.
 *
 *   v_j = C[:, j] - sum_{k<j} L[j, k] L[:, k],   L[j, j] = sqrt(v_j[j]),   L[i, j] = v_j[i] / L[j, j] (i > j)
 */
function smallCholesky(c: JArray, r: number): SmallChol {
  const cols: JArray[] = [];
  const diag: JArray[] = [];
  for (let j = 0; j < r; j++) {
    let v = c.ref.slice([], j); // [r]
    for (let k = 0; k < j; k++) v = v.sub(cols[k].ref.mul(cols[k].ref.slice(j)));
    const ljj = np.sqrt(v.ref.slice(j));
    const mask = np.array(Float32Array.from({ length: r }, (_, i) => (i >= j ? 1 : 0)));
    cols.push(v.mul(mask).div(ljj.ref));
    diag.push(ljj);
  }
  c.dispose();
  return { cols, diag };
}

/** sum_j log L_jj (half the log determinant). Borrows `ch`. */
function smallHalfLogDet(ch: SmallChol): JArray {
  return ch.diag.map((x) => np.log(x.ref)).reduce((a, b) => a.add(b));
}

/** ||L^-1 y_i||^2 for each row y_i of `y` `[n, r]` by forward substitution (r unrolled steps). Borrows `ch`, consumes `y`. */
function smallSolveSquares(ch: SmallChol, y: JArray): JArray {
  const r = ch.diag.length;
  const z: JArray[] = [];
  for (let j = 0; j < r; j++) {
    let t = y.ref.slice([], j); // [n]
    for (let k = 0; k < j; k++) t = t.sub(z[k].ref.mul(ch.cols[k].ref.slice(j)));
    z.push(t.div(ch.diag[j].ref));
  }
  y.dispose();
  return z.map((zj) => zj.ref.mul(zj)).reduce((a, b) => a.add(b));
}

function freeChol(ch: SmallChol): void {
  for (const a of [...ch.cols, ...ch.diag]) a.dispose();
}

/**
 * Full-rank Gaussian family q = N(m, L L^T) over R^d.
 *
 *   sample:   theta = m + L eps,  eps ~ N(0, I_d)
 *   logProb:  -1/2 ||L^-1 (theta - m)||^2 - sum_i log L_ii - d/2 log 2 pi   (one triangular solve)
 *   entropy:  d/2 (1 + log 2 pi) + sum_i log L_ii
 *   KL(a||b): 1/2 [ ||Lb^-1 La||_F^2 + ||Lb^-1 (mb - ma)||^2 - d ] + sum log diag Lb - sum log diag La
 *
 * Parameters: `{ mean: [d], chol: [d, d] }` (see {@link FullRankQ}); the upper triangle of `chol` is
 * ignored (it gets zero gradient). Cost O(d^2) per draw and per density, O(d^3) for KL; memory d^2.
 * The family of full-rank ADVI (Kucukelbir et al. 2017, "Automatic differentiation variational
 * inference", JMLR 18).
 *
 * @example
 * const fam = fullRank(5);
 * const q = fam.init(key(0), np.zeros([5]), 1);
 * const theta = fam.sample(key(1), keep(q), 100);   // [100, 5]
 */
export function fullRank(d: number, opts: FullRankOptions = {}): Family<FullRankQ> & Required<Pick<Family<FullRankQ>, "entropy" | "kl" | "moments">> {
  checkDim("fullRank", d);
  const series = (opts.solve ?? (d <= SERIES_MAX_DIM ? "series" : "routine")) === "series";
  /** theta = m + eps L^T for eps [n, d]; consumes all. */
  const transform = (q: FullRankQ, eps: JArray): JArray => np.matmul(eps, fullRankScale(q.chol).transpose()).add(row(q.mean));
  return {
    name: "fullrank",
    dim: d,
    init(k, mean, scale) {
      k.dispose();
      const raw = np.eye(d).mul(inverseSoftplus(scale, "gaussian family: scale"));
      return { mean, chol: raw };
    },
    sample(k, q, n) {
      return transform(q, random.normal(k, [n, d]));
    },
    logProb(q, theta) {
      checkTheta("fullRank", theta, d);
      if (series) {
        const z = np.matmul(theta.sub(row(q.mean)), lowerInverseSeries(fullRankScale(q.chol.ref), d).transpose());
        return z.ref.mul(z).sum(1).mul(-0.5).sub(fullRankHalfLogDet(q.chol)).sub(0.5 * d * LOG_2PI);
      }
      // Rows of (theta - m) in reversed coordinate order (see lowerSolveSquares).
      const rf = np.flip(theta, [1]).sub(row(np.flip(q.mean, [0])));
      const quad = lowerSolveSquares(fullRankScale(q.chol.ref), rf); // [n]
      return quad.mul(-0.5).sub(fullRankHalfLogDet(q.chol)).sub(0.5 * d * LOG_2PI);
    },
    sampleAndLogProb(k, q, n) {
      const eps = random.normal(k, [n, d]);
      const halfLogDet = fullRankHalfLogDet(q.chol.ref);
      const lp = stdNormalLogProb(eps.ref).sub(halfLogDet);
      return [transform(q, eps), lp];
    },
    entropy(q) {
      q.mean.dispose();
      return fullRankHalfLogDet(q.chol).add(0.5 * d * (1 + LOG_2PI));
    },
    kl(qa, qb) {
      const la = fullRankScale(qa.chol.ref);
      if (series) {
        const lbi = lowerInverseSeries(fullRankScale(qb.chol.ref), d);
        const x = np.matmul(lbi.ref, la);
        const y = np.matmul(lbi, qb.mean.sub(qa.mean).reshape([d, 1]));
        return x.ref.mul(x).sum().add(y.ref.mul(y).sum()).sub(d).mul(0.5).add(fullRankHalfLogDet(qb.chol)).sub(fullRankHalfLogDet(qa.chol));
      }
      const diff = qb.mean.sub(qa.mean).reshape([1, d]);
      // Rows [La^T; (mb - ma)^T] reversed: ||Lb^-1 La||_F^2 + ||Lb^-1 (mb - ma)||^2 in one solve.
      const rf = np.concatenate([np.flip(la.transpose(), [1]), np.flip(diff, [1])], 0); // [d + 1, d]
      const sq = lowerSolveSquares(fullRankScale(qb.chol.ref), rf).sum();
      return sq.sub(d).mul(0.5).add(fullRankHalfLogDet(qb.chol)).sub(fullRankHalfLogDet(qa.chol));
    },
    moments(q) {
      const l = fullRankScale(q.chol);
      return [q.mean, np.matmul(l.ref, l.transpose())];
    },
  };
}

/** U of {@link fullRankPrecision} from its raw parameter: tril(raw, -1) + diag(exp(diag raw)). Consumes `raw`. */
export function precisionFactor(raw: JArray): JArray {
  return np.tril(raw.ref, -1).add(np.diag(np.exp(np.diagonal(raw))));
}

/** sum_i log U_ii = sum of the raw diagonal. Consumes `raw`. */
function precisionHalfLogDet(raw: JArray): JArray {
  return np.diagonal(raw).sum();
}

/** Parameters of {@link fullRankPrecision}: mean `[d]` and raw precision factor `[d, d]` (U = {@link precisionFactor}(prec)). */
export type FullRankPrecisionQ = { mean: JArray; prec: JArray };

/**
 * Full-rank Gaussian family in precision form, q = N(m, (U U^T)^-1), U lower triangular with a
 * log-parameterised diagonal (U = tril(raw, -1) + diag(exp(diag raw)), {@link precisionFactor}): an
 * optimiser's step on the raw diagonal is then a relative change of U_ii, so q can start with a
 * precision orders of magnitude off (softplus, linear above ~20, would make such a start crawl).
 *
 *   logProb:  -1/2 ||U^T (theta - m)||^2 + sum_i log U_ii - d/2 log 2 pi      (matmuls only, no inverse)
 *   score:    grad_theta log q = -U U^T (theta - m)                           (linear in theta, quadratic in U)
 *   sample:   theta = m + U^-T eps                                            (one U^-1, {@link lowerInverseSeries})
 *   entropy:  d/2 (1 + log 2 pi) - sum_i log U_ii
 *   KL(a||b): 1/2 [ ||Ua^-1 Ub||_F^2 + ||Ub^T (mb - ma)||^2 - d ] - sum log diag Ub + sum log diag Ua
 *
 * Why a second parameterisation: score-based objectives (src/scorevi/proximal.ts createFlat) compare
 * grad log q with target scores; in covariance form that score is -L^-T L^-1 (theta - m), so the loss
 * is a rational function of L with an inverse in every gradient, badly conditioned when L spans many
 * scales (the vi-gaussian bench's proximal runs diverged at d = 100 in that form; docs/tuning.md). In precision form the
 * score is polynomial in the parameters, and KL(q_t || q), the proximal term, needs only q_t's inverse,
 * which is frozen. Sampling and the moments pay one O(d^3 log d) series inverse (d up to a few hundred).
 */
export function fullRankPrecision(d: number): Family<FullRankPrecisionQ> & Required<Pick<Family<FullRankPrecisionQ>, "entropy" | "kl" | "moments">> {
  checkDim("fullRankPrecision", d);
  /** theta = m + eps U^-1 (rows): consumes all. */
  const transform = (q: FullRankPrecisionQ, eps: JArray): JArray => np.matmul(eps, lowerInverseSeries(precisionFactor(q.prec), d)).add(row(q.mean));
  return {
    name: "fullrank-precision",
    dim: d,
    init(k, mean, scale) {
      k.dispose();
      return { mean, prec: np.eye(d).mul(-Math.log(scale)) };
    },
    sample(k, q, n) {
      return transform(q, random.normal(k, [n, d]));
    },
    logProb(q, theta) {
      checkTheta("fullRankPrecision", theta, d);
      const z = np.matmul(theta.sub(row(q.mean)), precisionFactor(q.prec.ref));
      return z.ref.mul(z).sum(1).mul(-0.5).add(precisionHalfLogDet(q.prec)).sub(0.5 * d * LOG_2PI);
    },
    sampleAndLogProb(k, q, n) {
      const eps = random.normal(k, [n, d]);
      const lp = stdNormalLogProb(eps.ref).add(precisionHalfLogDet(q.prec.ref));
      return [transform(q, eps), lp];
    },
    entropy(q) {
      q.mean.dispose();
      return precisionHalfLogDet(q.prec).mul(-1).add(0.5 * d * (1 + LOG_2PI));
    },
    kl(qa, qb) {
      const ub = precisionFactor(qb.prec.ref);
      const x = np.matmul(lowerInverseSeries(precisionFactor(qa.prec.ref), d), ub.ref);
      const y = np.matmul(qb.mean.sub(qa.mean).reshape([1, d]), ub);
      return x.ref.mul(x).sum().add(y.ref.mul(y).sum()).sub(d).mul(0.5).sub(precisionHalfLogDet(qb.prec)).add(precisionHalfLogDet(qa.prec));
    },
    moments(q) {
      const v = lowerInverseSeries(precisionFactor(q.prec), d); // U^-1; Sigma = U^-T U^-1
      return [q.mean, np.matmul(v.ref.transpose(), v)];
    },
  };
}

/**
 * Woodbury pieces of Sigma = diag(s^2) + B B^T: the Cholesky factor Lc of the r x r capacitance
 * C = I_r + B^T D^-1 B, with log det Sigma = 2 sum log s + 2 sum log diag Lc (matrix determinant
 * lemma). Consumes `s` and `b`.
 */
function capacitance(s: JArray, b: JArray, r: number): SmallChol {
  const bs = b.div(s.reshape([-1, 1])); // D^-1/2 B, [d, r]
  const c = np.matmul(bs.ref.transpose(), bs).add(np.eye(r));
  return smallCholesky(c, r);
}

/**
 * Low-rank-plus-diagonal Gaussian family q = N(m, D + B B^T), D = diag(s^2), B `[d, r]`.
 *
 *   sample:   theta = m + s * eps1 + B eps2,  eps1 ~ N(0, I_d), eps2 ~ N(0, I_r)
 *   logProb:  with x = theta - m, u = D^-1 x, C = I_r + B^T D^-1 B = Lc Lc^T (Woodbury and the matrix
 *             determinant lemma),
 *             x^T Sigma^-1 x = x^T u - ||Lc^-1 B^T u||^2,  log det Sigma = sum log s^2 + 2 sum log diag Lc
 *   entropy:  d/2 (1 + log 2 pi) + 1/2 log det Sigma
 *   KL:       the Gaussian KL, every term through the r x r capacitance of q_b (O(d r^2 + r^3)).
 *
 * Cost O(d r) per draw and O(d r + r^3) per density. Parameters `{ mean, rho, factor }`
 * ({@link LowRankQ}). `init` draws B ~ 0.01 scale N(0, 1) (not zero: at B = 0 the objective is
 * stationary in B up to Monte Carlo noise). The family of Ong, Nott & Smith 2018, "Gaussian
 * variational approximation with a factor covariance structure" (JCGS).
 *
 * @example
 * const fam = lowRank(751, 10);
 * const q = fam.init(key(0), ravel(params).vec, 1e-2);
 */
export function lowRank(d: number, rank: number): Family<LowRankQ> & Required<Pick<Family<LowRankQ>, "entropy" | "kl" | "moments">> {
  checkDim("lowRank", d);
  if (!Number.isInteger(rank) || rank < 1 || rank > d) throw new RangeError(`lowRank: rank must be an integer in [1, d = ${d}], got ${rank}`);
  const r = rank;
  /** 1/2 log det Sigma; consumes rho and factor. */
  const halfLogDet = (rho: JArray, factor: JArray): JArray => {
    const s = softplus(rho);
    const lc = capacitance(s.ref, factor, r);
    const h = np.log(s).sum().add(smallHalfLogDet(lc));
    freeChol(lc);
    return h;
  };
  const fam: Family<LowRankQ> & Required<Pick<Family<LowRankQ>, "entropy" | "kl" | "moments">> = {
    name: "lowrank",
    dim: d,
    init(k, mean, scale) {
      const rho = np.full([d], inverseSoftplus(scale, "gaussian family: scale"));
      const factor = random.normal(k, [d, r]).mul(0.01 * scale);
      return { mean, rho, factor };
    },
    sample(k, q, n) {
      const [k1, k2] = split(k, 2);
      const s = softplus(q.rho);
      const e1 = random.normal(k1, [n, d]).mul(row(s));
      const e2 = np.matmul(random.normal(k2, [n, r]), q.factor.transpose());
      return e1.add(e2).add(row(q.mean));
    },
    logProb(q, theta) {
      checkTheta("lowRank", theta, d);
      const s = softplus(q.rho);
      const x = theta.sub(row(q.mean)); // [n, d]
      const u = x.ref.div(row(s.ref.mul(s.ref))); // D^-1 x, [n, d]
      const xu = x.mul(u.ref).sum(1); // [n]
      const lc = capacitance(s.ref, q.factor.ref, r);
      const utb = np.matmul(u, q.factor); // (B^T D^-1 x)^T, [n, r]
      const quad = xu.sub(smallSolveSquares(lc, utb));
      const hld = np.log(s).sum().add(smallHalfLogDet(lc));
      freeChol(lc);
      return quad.mul(-0.5).sub(hld).sub(0.5 * d * LOG_2PI);
    },
    sampleAndLogProb(k, q, n) {
      const theta = fam.sample(k, { mean: q.mean.ref, rho: q.rho.ref, factor: q.factor.ref }, n);
      return [theta.ref, fam.logProb(q, theta)];
    },
    entropy(q) {
      q.mean.dispose();
      return halfLogDet(q.rho, q.factor).add(0.5 * d * (1 + LOG_2PI));
    },
    kl(qa, qb) {
      // Sigma_b^-1 M = D_b^-1 M - D_b^-1 B_b C_b^-1 B_b^T D_b^-1 M, so for any M,
      // tr(M^T Sigma_b^-1 M) = ||M / s_b||_F^2 - ||Lc^-1 B_b^T D_b^-1 M||_F^2.
      // tr(Sigma_b^-1 Sigma_a) = tr(Sigma_b^-1 D_a) + tr(B_a^T Sigma_b^-1 B_a), and D_a = (diag s_a)^2, so
      // M = [diag(s_a), B_a, m_b - m_a] gives the trace and the Mahalanobis term at once. diag(s_a) is
      // d x d; its terms are formed without it: ||s_a / s_b||^2 and B_b^T D_b^-1 diag(s_a) = B_b^T diag(s_a / s_b^2).
      const sa = softplus(qa.rho.ref);
      const sb = softplus(qb.rho.ref);
      const db = sb.ref.mul(sb.ref); // [d]
      const lc = capacitance(sb.ref, qb.factor.ref, r);
      const bbT = qb.factor.ref.transpose(); // [r, d]
      const diff = qb.mean.sub(qa.mean).reshape([d, 1]);
      const m = np.concatenate([qa.factor.ref, diff], 1); // [d, r + 1]
      const sbc = sb.reshape([d, 1]);
      const direct = np.square(sa.ref.div(sbc.ref.reshape([d]))).sum().add(np.square(m.ref.div(sbc)).sum());
      const gd = bbT.ref.mul(row(sa.div(db.ref))); // [r, d]
      const gm = np.matmul(bbT, m.div(db.reshape([d, 1]))); // [r, r + 1]
      const g = np.concatenate([gd, gm], 1); // [r, d + r + 1]
      const sq = direct.sub(smallSolveSquares(lc, g.transpose()).sum());
      freeChol(lc);
      return sq.sub(d).mul(0.5).add(halfLogDet(qb.rho, qb.factor)).sub(halfLogDet(qa.rho, qa.factor));
    },
    moments(q) {
      const s = softplus(q.rho);
      const cov = np.diag(s.ref.mul(s)).add(np.matmul(q.factor.ref, q.factor.transpose()));
      return [q.mean, cov];
    },
  };
  return fam;
}

/**
 * Diagonal (mean-field) Gaussian family q = N(m, diag(s^2)), s = softplus(rho).
 *
 *   sample:   theta = m + s * eps
 *   logProb:  -1/2 sum ((theta - m) / s)^2 - sum log s - d/2 log 2 pi
 *   entropy:  d/2 (1 + log 2 pi) + sum log s
 *   KL(a||b): sum [ log(s_b / s_a) + (s_a^2 + (m_a - m_b)^2) / (2 s_b^2) - 1/2 ]
 *
 * Cost O(d). Mean-field ADVI (Kucukelbir et al. 2017). For network-sized pytrees use
 * src/vi/meanfield.ts instead.
 *
 * @example
 * const fam = diagonal(10);
 * const q = fam.init(key(0), np.zeros([10]), 1);
 */
export function diagonal(d: number): Family<DiagQ> & Required<Pick<Family<DiagQ>, "entropy" | "kl" | "moments">> {
  checkDim("diagonal", d);
  return {
    name: "diag",
    dim: d,
    init(k, mean, scale) {
      k.dispose();
      return { mean, rho: np.full([d], inverseSoftplus(scale, "gaussian family: scale")) };
    },
    sample(k, q, n) {
      return random.normal(k, [n, d]).mul(row(softplus(q.rho))).add(row(q.mean));
    },
    logProb(q, theta) {
      checkTheta("diagonal", theta, d);
      const s = softplus(q.rho);
      const z = theta.sub(row(q.mean)).div(row(s.ref));
      return z.ref.mul(z).sum(1).mul(-0.5).sub(np.log(s).sum()).sub(0.5 * d * LOG_2PI);
    },
    sampleAndLogProb(k, q, n) {
      const eps = random.normal(k, [n, d]);
      const s = softplus(q.rho);
      const lp = stdNormalLogProb(eps.ref).sub(np.log(s.ref).sum());
      return [eps.mul(row(s)).add(row(q.mean)), lp];
    },
    entropy(q) {
      q.mean.dispose();
      return np.log(softplus(q.rho)).sum().add(0.5 * d * (1 + LOG_2PI));
    },
    kl(qa, qb) {
      const sa = softplus(qa.rho);
      const sb = softplus(qb.rho);
      const dm = qa.mean.sub(qb.mean);
      const vb = sb.ref.mul(sb.ref);
      const t = sa.ref.mul(sa.ref).add(dm.ref.mul(dm)).div(vb.mul(2));
      return np.log(sb.div(sa)).add(t).sub(0.5).sum();
    },
    moments(q) {
      const s = softplus(q.rho);
      return [q.mean, np.diag(s.ref.mul(s))];
    },
  };
}

/**
 * Adam for a full-rank family ({@link fullRank}'s `chol` or {@link fullRankPrecision}'s `prec`) with the
 * steps of the strictly lower entries scaled by `offScale`. Adam moves every entry by ~lr per step
 * whatever the size of its gradient, so the d(d-1)/2 off-diagonal entries random-walk; the inverse of a
 * triangular factor whose off-diagonal entries reach a few times its diagonal grows exponentially with
 * d, so q's covariance (or its precision) blows up (docs/tuning.md has the runs that showed it). The
 * mean and the diagonal keep the full rate.
 */
export function triangularAdam(learningRate: number, offScale: number, d: number, factor: "chol" | "prec"): GradientTransformation {
  const inner = adam(learningRate);
  const mask = np.eye(d).mul(1 - offScale).add(offScale);
  return {
    init: (params) => inner.init(params),
    update: (grads, state, params) => {
      const [u, s2] = inner.update(grads, state, params);
      const q = u as typeof u & Record<string, JArray>;
      return [{ ...q, [factor]: q[factor].mul(mask.ref) }, s2];
    },
  };
}
