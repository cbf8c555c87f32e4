/**
 * Proximal score-matching VI with a full-rank Gaussian q over all parameters of a small model, in the
 * spirit of Kim (2026), "Large-scale score-based variational posterior inference for Bayesian deep
 * neural networks": the full-covariance counterpart of the mean-field `proximal-svi`
 * (src/scorevi/proximal.ts `create`), with the same objective and the same kind of closed-form step.
 *
 * Outer step t. q_t = N(m_t, Sigma_t), Sigma_t = S_t S_t^T (S_t any square root). Draws
 * theta_k = m_t + S_t eps_k (eps_k ~ N(0, I), in antithetic pairs), frozen; scores
 * s_k = grad_theta logDensity(theta_k, batch). In whitened coordinates (theta = m_t + S_t e) q_t is
 * N(0, I), a Gaussian q is N(A^-1 c, A^-1) with A = S_t^T P S_t (its precision relative to q_t's) and
 * c, and the scores are s~_k = S_t^T s_k. The objective of the step is
 *
 *   F_t(A, c) = (1/M) sum_k || -A eps_k + c - s~_k ||^2 + lambda KL(q_t || q)
 *             = (1/M) sum_k || grad_theta log q(theta_k) - s_k ||^2_{Sigma_t} + lambda KL(q_t || q),
 *   KL(q_t || q) = (tr A - log det A + c^T A^-1 c - d) / 2,
 *
 * the Fisher-divergence estimate at the frozen draws in q_t's metric (the full-covariance form of the
 * mean-field version's sigma_t^2 weighting: lambda is dimensionless, the same for every scale and
 * data size) plus the proximal term. F_t is convex in (A, c).
 *
 * The step (a choice): one damped Newton step from q_t (A = I, c = 0), with the Hessian of the score
 * term replaced by its expectation (E eps eps^T = I), as the mean-field version does. With the
 * moments E1 = <eps_k>, E2 = <eps_k eps_k^T>, S1 = <s~_k>, X = <s~_k eps_k^T> of the M draws,
 *
 *   grad_A F = 2 sym(E2 + X),   grad_c F = -2 (E1 + S1),   Hessian (2 + lambda/2) on A, (2 + lambda) on c,
 *   dA = -eta (4 / (4 + lambda)) sym(E2 + X),   c = eta (2 / (2 + lambda)) (E1 + S1),
 *   A = exp(dA),
 *   Sigma_{t+1} = S_t A^-1 S_t^T,   S_{t+1} = S_t A^-1/2,   m_{t+1} = m_t + S_t A^-1 c.
 *
 * The Newton step dA is taken multiplicatively (a choice): A = exp(dA) is positive definite for any
 * step and log det A = tr dA. With the linear form A = I + dA, log det A drops by ~||dA||_F^2 / 2 per
 * step even when dA is pure noise (a rank-2M estimate of a d x d curvature is mostly noise away from
 * the fixed point), and the covariance grew without bound (bench target d = 50 with M = 2: 1e11 x the
 * target's after 800 steps; docs/tuning.md).
 *
 * On a Gaussian target N(m*, P*^-1), s~ = -A* eps - b with A* = S_t^T P* S_t and b = S_t^T P* (m_t - m*),
 * so E2 + X = (I - A*) E2 and E1 + S1 = (I - A*) E1 - b: the sampled E2 in the gradient makes the
 * curvature statistic vanish at q_t = p, whatever the draws (the expected I in its place would leave
 * the noise I - E2), and with antithetic pairs (E1 = 0) the mean statistic is exactly -b. The fixed
 * point is p itself, and with full batches the iteration settles there without Monte Carlo jitter.
 * One step moves the precision a fraction 4 / (4 + lambda) of the way to the one-batch solution and the
 * mean a fraction 2 / (2 + lambda) (in q_t's metric). The noise of the curvature statistic away from
 * the fixed point grows like sqrt(d / M): with the default M = 8 every bench target up to d = 100
 * converges and a 751-parameter network stays stable; with M = 2, d = 100 did not (docs/tuning.md).
 *
 * Trust region (a choice, the full-rank form of the mean-field version's bounds): dA is scaled down so
 * that ||dA||_F <= 1/2 (every eigenvalue of A in [e^-1/2, e^1/2]: the sd along any direction changes by
 * at most a factor 1.28 per step), and every coordinate of the whitened mean step c is clipped to
 * [-1, 1] (about one sd of q_t). Nothing is rejected: a step whose arithmetic overflows leaves a
 * non-finite state, and the driver's divergence check (src/run/loop.ts) stops the run with an error
 * naming the step.
 *
 * Low rank (how it is computed, O(M d^2) per step): sym(E2 + X) = B C B^T with B = [eps^T, s~^T]
 * (d x 2M) and a constant 2M x 2M matrix C, so dA lives in the span of B's columns. The eigenvalues
 * mu and eigenvectors W (d x 2M, orthonormal) of dA come from two 2M x 2M eigendecompositions (of the
 * Gram matrix B^T B, then of dA in the basis it gives), and
 *
 *   A^-1/2 = I + W diag(e^(-mu/2) - 1) W^T,   A^-1 = I + W diag(e^-mu - 1) W^T,
 *
 * so S, Sigma and m change by rank-2M terms: no d x d factorisation, inverse or product (the
 * covariance is carried in the state beside S, updated by the same terms). The same update as BaM's
 * (src/scorevi/bam.ts) in cost.
 *
 * Posterior (Polyak-Ruppert averaging, a choice): from step `averageFrom` on, the method returns the
 * running average of the iterates' moments over steps s > averageFrom,
 *
 *   mbar = (1/n) sum_s m_s,   Sigmabar = (1/n) sum_s Sigma_s,
 *
 * and before that the current iterate. Minibatch scores make the iterates jitter around the fixed
 * point; their average is what converges. The spec averages over the second half of the run.
 *
 * Numerics: mean, S, Sigma and the averages are float64, as every product with them (as GSM and BaM,
 * src/scorevi/gaussian-state.ts); scores are taken in float32 at the float32-rounded draws (the
 * whitened draws are not recomputed from the rounded points, which would need S^-1: a relative
 * mismatch of ~6e-8 |theta| / sd).
 *
 * @example
 * const vi = createFullRank(target, { lambda: 50, initScale: 1 });
 * let state = vi.init(key(0), np.zeros([d]));
 * [state, info] = compile(vi.step, { consume: [0, 1, 2] })(key(1), state, undefined);
 */
import { fromHostExact, np, random, type JArray } from "../core/engine.js";
import type { InferenceMethod } from "../core/method.js";
import { onParams } from "../core/ravel.js";
import { asSchedule, type Schedule } from "../core/schedule.js";
import { OPTIONS } from "../core/options.js";
import { use } from "../core/spec.js";
import type { ModelMethodSpec } from "../models/model.js";
import type { BbbSpecOptions } from "../vi/bbb.js";
import { flatTarget, type FlatLogDensity } from "../vi/family.js";
import { batchScores, DEFAULT_INIT_SCALE, gaussianKind, gaussianPosterior, symmetrize } from "./gaussian-state.js";
import { WARM_START_SCORE_COST, warmStartPlan } from "./gsm.js";

/** Options of {@link createFullRank}. */
export interface FullRankProximalOptions {
  /** lambda, the proximal strength (default 50); a number or a schedule of the step counter. */
  readonly lambda?: number | Schedule;
  /** M, draws (= score evaluations) per step, in antithetic pairs: an even number (default 8). */
  readonly samplesPerStep?: number;
  /** Damping eta of the Newton step (default 1). */
  readonly learningRate?: number;
  /** q starts at N(theta0, initScale^2 I) around the parameters given to `init` (default 1e-2). */
  readonly initScale?: number;
  /** Steps after which the posterior is the running average of the iterates (default: never; the last iterate). */
  readonly averageFrom?: number;
  /** N: only scales the reported `loss` to a per-datum value (default 1). */
  readonly dataSize?: number;
}

/** Defaults of {@link createFullRank}, which the `proximal-svi-fullrank` spec takes too. */
export const FULLRANK_PROXIMAL_DEFAULTS = { lambda: 50, samplesPerStep: 8, learningRate: 1 } as const;

/**
 * State: q_t = N(mean, cov) with `root` S a square root of `cov` (cov = S S^T; not triangular), the
 * running averages of the iterates' mean and covariance (all float64), and counters (float32 scalars).
 */
export type FullRankProximalState = {
  mean: JArray;
  root: JArray;
  cov: JArray;
  avgMean: JArray;
  avgCov: JArray;
  step: JArray;
  evaluations: JArray;
};

/** Per-step information (float32 scalars). */
export type FullRankProximalInfo = {
  /** -mean_k logDensity(theta_k) / N at the step's draws from q_t (a by-product of their scores). */
  loss: JArray;
  /** KL(q_t || q_{t+1}), nats. */
  kl: JArray;
  /** Target score evaluations so far. */
  evaluations: JArray;
};

/**
 * Proximal score-matching VI with a full-rank Gaussian q over a flat parameter vector (see the
 * module comment for the objective, the step and the averaging).
 * @param logDensity target log density theta `[d]` -> scalar, with a minibatch.
 */
export function createFullRank<B = unknown>(logDensity: FlatLogDensity<B>, opts: FullRankProximalOptions = {}): InferenceMethod<FullRankProximalState, FullRankProximalInfo, JArray, B> {
  const who = "proximalFullRank";
  const m = opts.samplesPerStep ?? FULLRANK_PROXIMAL_DEFAULTS.samplesPerStep;
  if (!Number.isInteger(m) || m < 2 || m % 2 !== 0) throw new RangeError(`${who}: samplesPerStep must be an even integer >= 2 (antithetic pairs), got ${m}`);
  const eta = opts.learningRate ?? FULLRANK_PROXIMAL_DEFAULTS.learningRate;
  if (!(eta > 0) || !Number.isFinite(eta)) throw new RangeError(`${who}: learningRate must be a finite number > 0, got ${eta}`);
  const scale0 = opts.initScale ?? DEFAULT_INIT_SCALE;
  if (!(scale0 > 0) || !Number.isFinite(scale0)) throw new RangeError(`${who}: initScale must be a finite number > 0, got ${scale0}`);
  const n = opts.dataSize ?? 1;
  if (!(n > 0)) throw new RangeError(`${who}: dataSize must be > 0, got ${n}`);
  const lam = opts.lambda ?? FULLRANK_PROXIMAL_DEFAULTS.lambda;
  if (typeof lam === "number" && (!(lam >= 0) || !Number.isFinite(lam))) throw new RangeError(`${who}: lambda must be a finite number >= 0, got ${lam}`);
  const lambdaAt = asSchedule(lam, `${who}: lambda`);
  const from = opts.averageFrom ?? Infinity;
  if (!(from >= 0)) throw new RangeError(`${who}: averageFrom must be >= 0, got ${from}`);
  const scores = batchScores(logDensity);
  // sym(E2 + X) = B C B^T with B = [eps^T, s~^T] (d x 2M): C = (1/M) [[I, I/2], [I/2, 0]].
  const cHost = new Float64Array(4 * m * m);
  for (let i = 0; i < m; i++) {
    cHost[i * 2 * m + i] = 1 / m;
    cHost[i * 2 * m + m + i] = 0.5 / m;
    cHost[(m + i) * 2 * m + i] = 0.5 / m;
  }
  return {
    init(k, theta0) {
      k.dispose();
      if (theta0.shape.length !== 1) {
        const got = theta0.shape;
        theta0.dispose();
        throw new RangeError(`${who}.init: the parameters must be a vector [d], got shape [${got}]`);
      }
      const d = theta0.shape[0];
      const eye = np.eye(d, undefined, { dtype: np.float64 });
      const mean = theta0.astype(np.float64);
      return {
        mean: mean.ref,
        root: eye.ref.mul(scale0),
        cov: eye.ref.mul(scale0 * scale0),
        avgMean: mean,
        avgCov: eye.mul(scale0 * scale0),
        step: np.array(0),
        evaluations: np.array(0),
      };
    },
    step(k, state, batch) {
      const d = state.mean.shape[0];
      const t = state.step;
      const lamT = lambdaAt(t.ref).astype(np.float64);
      const half = random.normal(k, [m / 2, d]).astype(np.float64);
      const eps = np.concatenate([half.ref, half.mul(-1)], 0); // [M, d], antithetic pairs
      // theta_k = m + S eps_k (rows: eps S^T); whitened scores s~_k = S^T s_k (rows: s S).
      const z = np.matmul(eps.ref, state.root.ref.transpose()).add(state.mean.ref.reshape([1, d]));
      const [zr, g, ld] = scores(z, batch);
      zr.dispose();
      const st = np.matmul(g, state.root.ref); // [M, d]
      const meanStat = eps.ref.mean(0).add(st.ref.mean(0)); // E1 + S1
      // The Newton step dA = -gamma_A sym(E2 + X) = B K B^T, in the span of B's columns.
      const b = np.concatenate([eps, st], 0).transpose(); // [d, 2M]
      const gram = np.matmul(b.ref.transpose(), b.ref); // B^T B, [2M, 2M]
      const gammaA = np.reciprocal(lamT.ref.add(4)).mul(4 * eta);
      const gammaC = np.reciprocal(lamT.add(2)).mul(2 * eta);
      let kk = fromHostExact({ dtype: "float64", shape: [2 * m, 2 * m], data: cHost }).mul(gammaA.mul(-1));
      // Trust region: ||dA||_F^2 = tr(K G K G) <= 1/4.
      const kg = np.matmul(kk.ref, gram.ref);
      const normA = np.sqrt(np.trace(np.matmul(kg.ref, kg)));
      kk = kk.mul(np.minimum(np.reciprocal(normA.mul(2)), 1));
      // Orthonormal basis of span(B) from G = Q diag(l) Q^T (directions with l ~ 0 dropped: the
      // antithetic draws make B rank-deficient), dA = U H U^T with U = B Q diag(l)^-1/2, then
      // H = R diag(mu) R^T: mu are dA's nonzero eigenvalues, W = U R their eigenvectors.
      const [lv, qv] = np.linalg.eigh(gram);
      const keepL = np.greater(lv.ref, lv.ref.max().mul(1e-12));
      const sqrtL = np.where(keepL.ref, np.sqrt(np.maximum(lv.ref, 0)), 0);
      const invSqrtL = np.where(keepL, np.reciprocal(np.sqrt(np.maximum(lv, 1e-300))), 0);
      const qkq = np.matmul(np.matmul(qv.ref.transpose(), kk), qv.ref);
      const h = qkq.mul(sqrtL.ref.reshape([-1, 1])).mul(sqrtL.reshape([1, -1]));
      const [mu, rv] = np.linalg.eigh(symmetrize(h));
      const w = np.matmul(np.matmul(b, qv).mul(invSqrtL.reshape([1, -1])), rv); // [d, 2M]
      // A = exp(dA) = I + W diag(e^mu - 1) W^T: A^-1/2 and A^-1 differ from I by W diag(f) W^T.
      const fHalf = np.exp(mu.ref.mul(-0.5)).sub(1);
      const fInv = np.exp(mu.ref.mul(-1)).sub(1);
      const c = np.clip(meanStat.mul(gammaC), -1, 1); // whitened mean step
      const sw = np.matmul(state.root.ref, w.ref); // S W, [d, 2M]
      const sc = np.matmul(state.root.ref, c.ref.reshape([d, 1])).reshape([d]); // S c
      const root = state.root.add(np.matmul(sw.ref.mul(fHalf.reshape([1, -1])), w.ref.transpose()));
      const cov = state.cov.add(np.matmul(sw.ref.mul(fInv.ref.reshape([1, -1])), sw.ref.transpose()));
      // m' = m + S A^-1 c = m + S c + S W diag(fInv) W^T c.
      const wc = np.matmul(w.transpose(), c.ref.reshape([d, 1])).reshape([2 * m]); // W^T c
      const mean = state.mean.add(sc).add(np.matmul(sw, wc.ref.mul(fInv.ref).reshape([2 * m, 1])).reshape([d]));
      // KL(q_t || q_{t+1}) = (tr A - log det A + c^T A^-1 c - d) / 2, A = exp(dA).
      const kl = np.exp(mu.ref).sub(1).sum().sub(mu.sum()).add(c.ref.mul(c).sum()).add(wc.ref.mul(wc).mul(fInv).sum()).mul(0.5);
      // Running averages over steps s = t + 1 > averageFrom (before that, the current iterate).
      const wt = np.reciprocal(np.maximum(t.ref.add(1 - from), 1)).astype(np.float64);
      const avgMean = state.avgMean.ref.add(mean.ref.sub(state.avgMean).mul(wt.ref));
      const avgCov = state.avgCov.ref.add(cov.ref.sub(state.avgCov).mul(wt));
      const evaluations = state.evaluations.add(m);
      const info: FullRankProximalInfo = { loss: ld.mean().mul(-1 / n), kl: kl.astype(np.float32), evaluations: evaluations.ref };
      return [{ mean, root, cov, avgMean, avgCov, step: t.add(1), evaluations }, info];
    },
    posterior(state) {
      // gaussianPosterior borrows its arguments: the averaged mean from the state, the rest ours.
      const cov = symmetrize(state.avgCov.ref);
      const chol = np.linalg.cholesky(cov.ref);
      const post = gaussianPosterior({ mean: state.avgMean, cov, chol });
      cov.dispose();
      chol.dispose();
      return post;
    },
  };
}

/** Options of `--method proximal-svi-fullrank`. */
export interface FullRankProximalSpecOptions extends BbbSpecOptions {
  lambda: number;
}

/** `--method proximal-svi-fullrank`. */
export const spec: ModelMethodSpec<FullRankProximalSpecOptions> = {
  name: "proximal-svi-fullrank",
  family: "scorevi",
  summary: "proximal score-matching VI, full-rank Gaussian q over all parameters of a small model (at most 3,000), closed-form Newton steps, from a MAP warm start",
  cost: WARM_START_SCORE_COST,
  paper: "in the spirit of Kim 2026, Large-scale score-based variational posterior inference for Bayesian deep neural networks",
  options: {
    epochs: use(OPTIONS.epochs, 20),
    samples: use(OPTIONS.samples, 20),
    temperature: use(OPTIONS.temperature, 1),
    lr: use(OPTIONS.lr, FULLRANK_PROXIMAL_DEFAULTS.learningRate),
    mc: use(OPTIONS.mc, FULLRANK_PROXIMAL_DEFAULTS.samplesPerStep),
    initStd: use(OPTIONS.initStd, DEFAULT_INIT_SCALE),
    lambda: use(OPTIONS.lambda, FULLRANK_PROXIMAL_DEFAULTS.lambda),
  },
  kinds: [gaussianKind],
  plan: warmStartPlan,
  build(ctx, o) {
    const { logDensity, unravel } = flatTarget("proximal-svi-fullrank", ctx);
    // The posterior is the average of the iterates over the second half of the run.
    const steps = o.epochs * ctx.stepsPerEpoch;
    return onParams(createFullRank(logDensity, { lambda: o.lambda, samplesPerStep: o.mc, learningRate: o.lr, initScale: o.initStd, dataSize: ctx.dataSize, averageFrom: Math.floor(steps / 2) }), unravel);
  },
};
