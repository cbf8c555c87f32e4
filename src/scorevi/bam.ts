/**
 * Batch and match (BaM): black-box Gaussian VI by closed-form proximal steps on a score-based
 * divergence (Cai, Modi, Pillaud-Vivien, Margossian, Gower, Blei, Saul 2024, "Batch and match:
 * black-box variational inference with a score-based divergence", ICML).
 *
 * Iteration t, with q_t = N(mu_t, Sigma_t), batch size B and regulariser lambda_t > 0:
 *
 *   batch:  z_b ~ q_t, g_b = grad log p(z_b), b = 1..B
 *           zbar = mean_b z_b,  C = (1/B) sum_b (z_b - zbar)(z_b - zbar)^T
 *           gbar = mean_b g_b,  Gam = (1/B) sum_b (g_b - gbar)(g_b - gbar)^T
 *   match:  U = lambda_t Gam + lambda_t/(1+lambda_t) gbar gbar^T
 *           V = Sigma_t + lambda_t C + lambda_t/(1+lambda_t) (mu_t - zbar)(mu_t - zbar)^T
 *           Sigma_{t+1} = 2 V (I + (I + 4 U V)^{1/2})^{-1}
 *           mu_{t+1} = 1/(1+lambda_t) mu_t + lambda_t/(1+lambda_t) (Sigma_{t+1} gbar + zbar)
 *
 * Sigma_{t+1} is the unique positive-definite root of the quadratic matrix equation
 * Sigma U Sigma + Sigma = V (substitute: with W = (I + 4UV)^{1/2}, U Sigma = (W - I)/2, so
 * Sigma U Sigma + Sigma = V (I + W)^{-1} (W - I + 2I) = V).
 *
 * How it is computed (symmetric, stable, O(B d^2)): write U = A A^T with the d x (B+1) matrix
 * A = [sqrt(lambda/B) (g_b - gbar) for b = 1..B, sqrt(lambda/(1+lambda)) gbar], and V = L L^T.
 * Sigma = L S L^T turns the equation into S M S + S = I with M = L^T U L = K K^T, K = L^T A, whose
 * solution is S = f(M), f(m) = 2 / (1 + sqrt(1 + 4m)) (eigenvalue by eigenvalue: the positive root of
 * m s^2 + s - 1 = 0). Since f(0) = 1 and (f(m) - 1)/m = -h(m), h(m) = 4 / (1 + sqrt(1 + 4m))^2,
 * f(M) = I - K h(K^T K) K^T, and L K = V A, so
 *
 *   Sigma_{t+1} = V - (V A) h(G) (V A)^T,   G = A^T V A  ((B+1) x (B+1)),  h(G) = P diag(h(w)) P^T
 *
 * from the eigendecomposition G = P diag(w) P^T. No Cholesky of V and no d x d eigendecomposition
 * are needed, h has no division or cancellation, and Sigma_{t+1} = V - Y Y^T with
 * Y = V A P diag(sqrt(h(w))) is symmetric by construction. With a large lambda the result can be
 * ~1e-8 of V, hence float64 (src/scorevi/gaussian-state.ts).
 *
 * Schedule: lambda_t is a number (constant) or a schedule of the step counter, evaluated in float64;
 * the default is the paper's lambda_t = B d / (t + 1) for non-Gaussian targets. The match step
 * minimises D(q) + (2 / lambda_t) KL(q_t || q) (the paper's proximal form), so lambda_t is an inverse
 * proximal strength: the `--lambda` option of `--method bam`, like proximal-svi's, is the strength
 * 2 / lambda_t. On a Gaussian target with B >= d+1 and a large constant lambda, one iteration lands close
 * to the exact mean and covariance (the paper's infinite-batch analysis: the error contracts by
 * ~1/(1+lambda) per step, up to the batch's Monte Carlo error).
 *
 * @param logDensity target log density theta `[d]` -> scalar (the update needs only its gradient; its
 *   value gives the reported loss).
 * @param opts.batchSize B, samples per iteration.
 * @param opts.lambda lambda_t (default B d / (t + 1)).
 *
 * @example
 * const bam = create(logDensity, { batchSize: 10, initScale: 1 });
 * let state = bam.init(key(0), np.zeros([d]));
 * const step = compile(bam.step, { consume: [0, 1] });
 * for (let t = 0; t < 50; t++) {
 *   const [s, info] = step(key(t + 1), state, undefined);
 *   state = s;
 *   await scalar(info.rejected); free(info);
 * }
 */
import { np, type JArray } from "../core/engine.js";
import type { InferenceMethod } from "../core/method.js";
import { asSchedule, inverseTime, type Schedule } from "../core/schedule.js";
import { OPTIONS } from "../core/options.js";
import { onParams } from "../core/ravel.js";
import { use } from "../core/spec.js";
import type { ModelMethodSpec } from "../models/model.js";
import { flatTarget, type FlatLogDensity } from "../vi/family.js";
import { acceptOrKeep, batchScores, checkBatchSize, DEFAULT_INIT_SCALE, drawGaussian, gaussianKind, gaussianPosterior, initState, symmetrize, type GaussianState, type ScoreViInfo, type ScoreViOptions } from "./gaussian-state.js";
import { gaussianScoreOptions, WARM_START_SCORE_COST, warmStartPlan, type GaussianScoreSpecOptions } from "./gsm.js";

/** BaM options. */
export interface BamOptions extends ScoreViOptions {
  /** lambda_t, the inverse proximal strength: a number or a schedule (default B d / (t + 1)). */
  readonly lambda?: number | Schedule;
}

/**
 * The BaM match step for one batch (see the module comment for the equations). All arrays
 * float64: mean `[d]`, cov `[d, d]`, z and g `[B, d]`, lambda a scalar array. Consumes everything;
 * returns the candidate [mu_{t+1}, Sigma_{t+1}] (not yet checked for positive definiteness).
 */
export function bamUpdate(mean: JArray, cov: JArray, z: JArray, g: JArray, lambda: JArray): [JArray, JArray] {
  const [b, d] = z.shape;
  const zbar = z.ref.mean(0);
  const gbar = g.ref.mean(0);
  const shrink = lambda.ref.div(lambda.ref.add(1)); // lambda / (1 + lambda)
  // V = Sigma + Y^T Y, rows of Y: sqrt(lambda/B) (z_b - zbar) and sqrt(lambda/(1+lambda)) (mu - zbar).
  const zc = z.sub(zbar.ref.reshape([1, d])).mul(np.sqrt(lambda.ref.div(b)));
  const dm = mean.ref.sub(zbar.ref).mul(np.sqrt(shrink.ref)).reshape([1, d]);
  const y = np.concatenate([zc, dm], 0);
  const v = symmetrize(cov.add(np.matmul(y.ref.transpose(), y)));
  // U = A A^T, columns of A (rows of `a` here): sqrt(lambda/B) (g_b - gbar) and sqrt(lambda/(1+lambda)) gbar.
  const gc = g.sub(gbar.ref.reshape([1, d])).mul(np.sqrt(lambda.ref.div(b)));
  const a = np.concatenate([gc, gbar.ref.mul(np.sqrt(shrink)).reshape([1, d])], 0); // [B+1, d]
  const va = np.matmul(v.ref, a.ref.transpose()); // [d, B+1]
  const gram = symmetrize(np.matmul(a, va.ref)); // A^T V A
  const [w, p] = np.linalg.eigh(gram);
  const root = np.sqrt(np.maximum(w, 0).mul(4).add(1)).add(1);
  const sqrtH = np.reciprocal(root).mul(2); // sqrt(h(w)) = 2 / (1 + sqrt(1 + 4w))
  const yy = np.matmul(va, p).mul(sqrtH.reshape([1, b + 1]));
  const covNext = symmetrize(v.sub(np.matmul(yy.ref, yy.transpose())));
  const sg = np.matmul(covNext.ref, gbar.reshape([d, 1])).reshape([d]);
  const meanNext = mean.add(sg.add(zbar).mul(lambda.ref)).div(lambda.add(1));
  return [meanNext, covNext];
}

/**
 * Build BaM for a target over R^d.
 *
 * `step(key, state, batch)`: B draws from q_t, `vmap(valueAndGrad(logDensity))` at them, {@link bamUpdate}
 * with lambda_t (float64), and the positive-definiteness check (a failing candidate is
 * rejected: the state keeps its Gaussian, `info.rejected` = 1 and `state.rejections` counts it).
 * `info.evaluations` counts score evaluations; `info.lambda` is lambda_t.
 */
export function create<B = unknown>(logDensity: FlatLogDensity<B>, opts: BamOptions): InferenceMethod<GaussianState, ScoreViInfo, JArray, B> {
  const b = checkBatchSize(opts, "bam");
  const scale0 = opts.initScale ?? DEFAULT_INIT_SCALE;
  const n = opts.dataSize ?? 1;
  if (typeof opts.lambda === "number" && !(opts.lambda > 0)) throw new RangeError(`bam: lambda must be > 0, got ${opts.lambda}`);
  const scores = batchScores(logDensity);
  const given = opts.lambda === undefined ? undefined : asSchedule(opts.lambda, "bam: lambda");
  return {
    init(k, theta) {
      k.dispose();
      return initState(theta, scale0, "bam");
    },
    step(k, state, batch) {
      const d = state.mean.shape[0];
      const [z, g, lp] = scores(drawGaussian(k, state.mean.ref, state.chol.ref, b), batch);
      // lambda_t feeds float64 matrix updates, so the schedule is evaluated in float64.
      const lambda = (given ?? inverseTime(b * d))(state.step.ref.astype(np.float64));
      const [mean, cov] = bamUpdate(state.mean.ref, state.cov.ref, z, g, lambda.ref);
      const [next, rejected] = acceptOrKeep(state, mean, cov, b);
      return [next, { loss: lp.mean().mul(-1 / n), rejected, rejections: next.rejections.ref, evaluations: next.evaluations.ref, lambda: lambda.astype(np.float32) }];
    },
    posterior: gaussianPosterior,
  };
}

/** Options of `--method bam`. */
export interface BamSpecOptions extends GaussianScoreSpecOptions {
  lambda?: number;
}

/** `--method bam`. */
export const spec: ModelMethodSpec<BamSpecOptions> = {
  name: "bam",
  family: "scorevi",
  summary: "batch and match: closed-form proximal full-covariance Gaussian updates over all parameters of a small model",
  cost: WARM_START_SCORE_COST,
  paper: "Cai, Modi, Pillaud-Vivien, Margossian, Gower, Blei & Saul 2024, Batch and match: black-box variational inference with a score-based divergence",
  options: { ...gaussianScoreOptions(), lambda: use(OPTIONS.lambda, undefined, "2 (t + 1) / (B d): the paper's lambda_t = B d / (t + 1)") },
  kinds: [gaussianKind],
  plan: warmStartPlan,
  build(ctx, o) {
    const { logDensity, unravel } = flatTarget("bam", ctx);
    // --lambda is the proximal strength 2 / lambda_t (the module comment).
    return onParams(create(logDensity, { batchSize: o.mc, initScale: o.initStd, dataSize: ctx.dataSize, lambda: o.lambda === undefined ? undefined : 2 / o.lambda }), unravel);
  },
};
