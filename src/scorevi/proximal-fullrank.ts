/**
 * Proximal score-matching VI with a full-rank Gaussian q over all parameters of a small model, in the
 * spirit of Kim (2026), "Large-scale score-based variational posterior inference for Bayesian deep
 * neural networks": the full-covariance counterpart of the mean-field `proximal-svi`
 * (src/scorevi/proximal.ts `create`), with the same objective and the same kind of closed-form step.
 *
 * Outer step t. q_t = N(m_t, P_t^-1), P_t = W_t W_t^T (W_t lower triangular), V_t = W_t^-1, so
 * Sigma_t = V_t^T V_t. Draws theta_k = m_t + V_t^T eps_k (eps_k ~ N(0, I), in antithetic pairs), frozen;
 * scores s_k = grad_theta logDensity(theta_k, batch). In whitened coordinates (theta = m_t + V_t^T e)
 * q_t is N(0, I), a Gaussian q is N(A^-1 c, A^-1) with A = V_t P V_t^T (precision relative to q_t's)
 * and c, and the scores are s~_k = V_t s_k. The objective of the step is
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
 *   A = I + dA + dA^2 / 2   (exp(dA) to second order),
 *   P_{t+1} = W_t A W_t^T,   m_{t+1} = m_t + P_{t+1}^-1 W_t c   (= m_t + V_t^T A^-1 c).
 *
 * The Newton step dA is taken multiplicatively (a choice): A = I + dA + dA^2/2 has eigenvalues
 * 1 + x + x^2/2 >= 1/2 (positive definite for any step) and log det A = tr dA up to third order. The
 * linear form A = I + dA lowers log det A by ~||dA||_F^2 / 2 per step even when dA is pure noise
 * (a rank-2M estimate of a d x d curvature is mostly noise away from the fixed point), and the
 * covariance grew without bound (bench target d = 50 with M = 2: 1e11 x the target's after 800
 * steps; docs/tuning.md).
 *
 * On a Gaussian target N(m*, P*^-1), s~ = -A* eps - b with A* = V_t P* V_t^T and b = V_t P* (m_t - m*),
 * so E2 + X = (I - A*) E2 and E1 + S1 = (I - A*) E1 - b: the sampled E2 in the gradient makes the
 * curvature statistic vanish at q_t = p, whatever the draws (the expected I in its place would leave
 * the noise I - E2), and with antithetic pairs (E1 = 0) the mean statistic is exactly -b. The fixed
 * point is p itself, and with full batches the iteration settles there without Monte Carlo jitter.
 * One step moves the precision a fraction 4 / (4 + lambda) of the way to the one-batch solution and the
 * mean a fraction 2 / (2 + lambda) (in q_t's metric).
 *
 * Trust region (a choice, the full-rank form of the mean-field version's bounds): dA is scaled down so
 * that ||dA||_F <= 1/2 (every eigenvalue of A in [0.61, 1.63]: the sd along any direction changes by at
 * most ~1.3x per step), and every coordinate of the whitened mean step c is clipped to [-1, 1] (about
 * one sd of q_t). Nothing is rejected: a step whose arithmetic overflows leaves a non-finite state, and
 * the driver's divergence check (src/run/loop.ts) stops the run with an error naming the step.
 *
 * Posterior (Polyak-Ruppert averaging, a choice): from step `averageFrom` on, the method returns the
 * running average of the iterates' moments over steps s > averageFrom,
 *
 *   mbar = (1/n) sum_s m_s,   Sigmabar = (1/n) sum_s Sigma_s,
 *
 * and before that the current iterate. Minibatch scores make the iterates jitter around the fixed
 * point; their average is what converges. The spec averages over the second half of the run.
 *
 * Numerics: mean, W, V and the averages are float64, every d x d product too (as GSM and BaM,
 * src/scorevi/gaussian-state.ts); scores are taken in float32 at the float32-rounded draws, and the
 * whitened draws are recomputed from the rounded points so each (draw, score) pair is consistent.
 * V = W^-1 comes from matmuls only (src/vi/gaussian.ts `lowerInverseSeries`: jax-js's triangular solve
 * fails under jit). Cost per step: M scores, one Cholesky and one triangular inverse, a few d x d
 * matmuls: O(d^3), like GSM and BaM.
 *
 * @example
 * const vi = createFullRank(target, { lambda: 50, initScale: 1 });
 * let state = vi.init(key(0), np.zeros([d]));
 * [state, info] = compile(vi.step, { consume: [0, 1, 2] })(key(1), state, undefined);
 */
import { np, random, type JArray } from "../core/engine.js";
import type { InferenceMethod } from "../core/method.js";
import { onParams } from "../core/ravel.js";
import { asSchedule, type Schedule } from "../core/schedule.js";
import { OPTIONS } from "../core/options.js";
import { use } from "../core/spec.js";
import type { ModelMethodSpec } from "../models/model.js";
import { flatTarget, type FlatLogDensity } from "../vi/family.js";
import { lowerInverseSeries } from "../vi/gaussian.js";
import { batchScores, DEFAULT_INIT_SCALE, gaussianKind, gaussianPosterior, symmetrize } from "./gaussian-state.js";
import { warmStartPlan } from "./gsm.js";

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
 * State: q_t = N(mean, (factor factor^T)^-1) with `inv` = factor^-1 (all float64), the running
 * averages of the iterates' mean and covariance (float64), and counters (float32 scalars).
 */
export type FullRankProximalState = {
  mean: JArray;
  factor: JArray;
  inv: JArray;
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
        factor: eye.ref.mul(1 / scale0),
        inv: eye.ref.mul(scale0),
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
      const eps0 = np.concatenate([half.ref, half.mul(-1)], 0); // [M, d], antithetic pairs
      // theta_k = m + V^T eps_k (rows: eps V); scores at the float32-rounded points.
      const z = np.matmul(eps0, state.inv.ref).add(state.mean.ref.reshape([1, d]));
      const [zr, g, ld] = scores(z, batch);
      // Whitened draws of the rounded points, W^T (z' - m), and whitened scores V s (rows).
      const eps = np.matmul(zr.sub(state.mean.ref.reshape([1, d])), state.factor.ref); // [M, d]
      const st = np.matmul(g, state.inv.ref.transpose()); // [M, d]
      const e1 = eps.ref.mean(0);
      const s1 = st.ref.mean(0);
      const e2 = np.matmul(eps.ref.transpose(), eps.ref).mul(1 / m);
      const x = np.matmul(st.transpose(), eps).mul(1 / m); // X_ij = <s~_i eps_j>
      // One damped Newton step with the expected Hessian, then the trust region.
      const gammaA = np.reciprocal(lamT.ref.add(4)).mul(4 * eta);
      const gammaC = np.reciprocal(lamT.add(2)).mul(2 * eta);
      let dA = symmetrize(e2.add(x)).mul(gammaA.mul(-1));
      const normA = np.sqrt(dA.ref.mul(dA.ref).sum());
      dA = dA.mul(np.minimum(np.reciprocal(normA.mul(2)), 1));
      const c = np.clip(e1.add(s1).mul(gammaC), -1, 1);
      // A = exp(dA) to second order.
      const a = dA.ref.add(np.matmul(dA.ref, dA).mul(0.5)).add(np.eye(d, undefined, { dtype: np.float64 }));
      // P' = W A W^T; m' = m + P'^-1 W c.
      const prec = np.matmul(np.matmul(state.factor.ref, a.ref), state.factor.ref.transpose());
      const factor = np.linalg.cholesky(symmetrize(prec));
      const inv = lowerInverseSeries(factor.ref, d);
      const vwc = np.matmul(inv.ref, np.matmul(state.factor.ref, c.reshape([d, 1]))); // V' W c
      const mean = state.mean.add(np.matmul(inv.ref.transpose(), vwc.ref).reshape([d]));
      // KL(q_t || q_{t+1}) = (tr A - log det A + c^T A^-1 c - d) / 2, with log det A = log det P' - log det P
      // = 2 sum log diag W' - 2 sum log diag W and c^T A^-1 c = ||V' W c||^2 (A^-1 = W^T P'^-1 W).
      const logDetA = np.log(np.diagonal(factor.ref)).sum().sub(np.log(np.diagonal(state.factor)).sum()).mul(2);
      const kl = np.trace(a).sub(logDetA).add(vwc.ref.mul(vwc).sum()).sub(d).mul(0.5);
      state.inv.dispose();
      // Running averages over steps s = t + 1 > averageFrom (before that, the current iterate).
      const w = np.reciprocal(np.maximum(t.ref.add(1 - from), 1)).astype(np.float64);
      const cov = np.matmul(inv.ref.transpose(), inv.ref);
      const avgMean = state.avgMean.ref.add(mean.ref.sub(state.avgMean).mul(w.ref));
      const avgCov = state.avgCov.ref.add(cov.sub(state.avgCov).mul(w));
      const evaluations = state.evaluations.add(m);
      const info: FullRankProximalInfo = { loss: ld.mean().mul(-1 / n), kl: kl.astype(np.float32), evaluations: evaluations.ref };
      return [{ mean, factor, inv, avgMean, avgCov, step: t.add(1), evaluations }, info];
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
export interface FullRankProximalSpecOptions {
  epochs: number;
  samples: number;
  temperature: number;
  lr: number;
  mc: number;
  initStd: number;
  lambda: number;
}

/** `--method proximal-svi-fullrank`. */
export const spec: ModelMethodSpec<FullRankProximalSpecOptions> = {
  name: "proximal-svi-fullrank",
  family: "scorevi",
  summary: "proximal score-matching VI, full-rank Gaussian q over all parameters of a small model (at most 3,000), closed-form Newton steps, from a MAP warm start",
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
