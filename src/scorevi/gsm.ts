/**
 * Gaussian score matching VI (GSM): closed-form Gaussian updates that match the target's score at
 * each draw (Modi, Gower, Margossian, Wu, Blei, Saul 2023, "Variational inference with Gaussian
 * score matching", NeurIPS), with the batch version used as a baseline by Cai et al. 2024 ("Batch
 * and match", ICML): the B single-sample updates averaged.
 *
 * Single-sample update (the paper's Algorithm 1). Draw z ~ q_t = N(mu_t, Sigma_t), g = grad log p(z).
 * The new q = N(mu, Sigma) is the one closest to q_t in KL(q_t || q) among Gaussians whose score at z
 * equals g, i.e. Sigma^{-1} (mu - z) = g. Substituting mu = z + Sigma g and setting the gradient with
 * respect to Sigma^{-1} to zero gives Sigma g g^T Sigma + Sigma = Sigma_t + delta delta^T with
 * delta = z - mu_t: the BaM equation (src/scorevi/bam.ts) with the rank-one U = g g^T. Its
 * positive-definite root is a rank-two change of Sigma_t:
 *
 *   rho > 0 solves  rho (1 + rho) = g^T Sigma_t g + (delta^T g)^2
 *                   (rho = (sqrt(1 + 4 (g^T Sigma_t g + (delta^T g)^2)) - 1) / 2)
 *   eps = (Sigma_t g + (delta^T g) delta) / (1 + rho)     ( = mu_{t+1} - z )
 *   mu_{t+1}    = z + eps
 *   Sigma_{t+1} = Sigma_t + delta delta^T - eps eps^T
 *
 * (check: Sigma_{t+1} g = Sigma_t g + (delta^T g) delta - eps (eps^T g) and
 * eps^T g = rho (1 + rho) / (1 + rho) = rho, so Sigma_{t+1} g = (1 + rho) eps - rho eps = eps = mu_{t+1} - z:
 * the score of q_{t+1} at z is exactly g.)
 *
 * Batch version: with B draws, each gives (mu^(b), Sigma^(b)) from q_t as above, and
 *
 *   mu_{t+1} = (1/B) sum_b mu^(b),   Sigma_{t+1} = Sigma_t + (1/B) sum_b (delta_b delta_b^T - eps_b eps_b^T).
 *
 * Each Sigma^(b) is positive definite in exact arithmetic, but the subtraction of eps eps^T can leave
 * a numerically indefinite average when the draws are far in the tails (large rho); the candidate is
 * checked and rejected then (src/scorevi/gaussian-state.ts). Cost O(B d^2) plus one Cholesky.
 *
 * @param logDensity target log density theta `[d]` -> scalar (the update needs only its gradient; its
 *   value gives the reported loss).
 * @param opts.batchSize B, draws averaged per iteration (B = 1: the paper's single-sample GSM).
 *
 * @example
 * const gsm = create(logDensity, { batchSize: 4, initScale: 1 });
 * let state = gsm.init(key(0), np.zeros([d]));
 * const step = compile(gsm.step, { consume: [0, 1] });
 * [state, info] = step(key(1), state, undefined);
 */
import { np, type JArray } from "../core/engine.js";
import type { InferenceMethod } from "../core/method.js";
import { OPTIONS } from "../core/options.js";
import { onParams } from "../core/ravel.js";
import { use, type OptionUses, type RunPlan } from "../core/spec.js";
import type { ModelMethodSpec } from "../models/model.js";
import { flatTarget, type FlatLogDensity } from "../vi/family.js";
import { acceptOrKeep, batchScores, checkBatchSize, DEFAULT_INIT_SCALE, drawGaussian, gaussianKind, gaussianPosterior, initState, type GaussianState, type ScoreViInfo, type ScoreViOptions } from "./gaussian-state.js";

/** GSM options (B = 1 is the original single-sample algorithm). */
export type GsmOptions = ScoreViOptions;

/**
 * The averaged GSM update for one batch (equations in the module comment). All arrays float64:
 * mean `[d]`, cov `[d, d]`, z and g `[B, d]`. Consumes everything; returns the candidate
 * [mu_{t+1}, Sigma_{t+1}] (not yet checked for positive definiteness).
 */
export function gsmUpdate(mean: JArray, cov: JArray, z: JArray, g: JArray): [JArray, JArray] {
  const [b, d] = z.shape;
  const delta = z.ref.sub(mean.reshape([1, d])); // [B, d]
  const sg = np.matmul(g.ref, cov.ref); // rows Sigma_t g_b (Sigma_t symmetric)
  const gsg = g.ref.mul(sg.ref).sum(1); // g_b^T Sigma_t g_b
  const dg = delta.ref.mul(g).sum(1); // delta_b^T g_b
  const rho = np.sqrt(gsg.add(dg.ref.mul(dg.ref)).mul(4).add(1)).sub(1).mul(0.5);
  const eps = sg.add(delta.ref.mul(dg.reshape([b, 1]))).div(rho.add(1).reshape([b, 1])); // [B, d]
  const meanNext = z.add(eps.ref).mean(0);
  const change = np.matmul(delta.ref.transpose(), delta).sub(np.matmul(eps.ref.transpose(), eps)).mul(1 / b);
  return [meanNext, cov.add(change)];
}

/**
 * Build (batch) GSM for a target over R^d.
 *
 * `step(key, state, batch)`: B draws from q_t, `vmap(valueAndGrad(logDensity))` at them, {@link gsmUpdate},
 * and the positive-definiteness check (a failing candidate is rejected: the state keeps its Gaussian,
 * `info.rejected` = 1 and `state.rejections` counts it). `info.evaluations` counts score evaluations;
 * `info.lambda` is 0 (GSM has no regulariser).
 */
export function create<B = unknown>(logDensity: FlatLogDensity<B>, opts: GsmOptions): InferenceMethod<GaussianState, ScoreViInfo, JArray, B> {
  const b = checkBatchSize(opts, "gsm");
  const scale0 = opts.initScale ?? DEFAULT_INIT_SCALE;
  const n = opts.dataSize ?? 1;
  const scores = batchScores(logDensity);
  return {
    init(k, theta) {
      k.dispose();
      return initState(theta, scale0, "gsm");
    },
    step(k, state, batch) {
      const [z, g, lp] = scores(drawGaussian(k, state.mean.ref, state.chol.ref, b), batch);
      const [mean, cov] = gsmUpdate(state.mean.ref, state.cov.ref, z, g);
      const [next, rejected] = acceptOrKeep(state, mean, cov, b);
      return [next, { loss: lp.mean().mul(-1 / n), rejected, rejections: next.rejections.ref, evaluations: next.evaluations.ref, lambda: np.array(0) }];
    },
    posterior: gaussianPosterior,
  };
}

/** Options of the closed-form Gaussian score methods (`gsm`, `bam`). */
export interface GaussianScoreSpecOptions {
  epochs: number;
  samples: number;
  temperature: number;
  mc: number;
  initStd: number;
}

/** The options of `gsm` and `bam`: a batch of 8 scores per step, q from the MAP warm start with sd 0.01. */
export function gaussianScoreOptions(): OptionUses<GaussianScoreSpecOptions> {
  return {
    epochs: use(OPTIONS.epochs, 20),
    samples: use(OPTIONS.samples, 20),
    temperature: use(OPTIONS.temperature, 1),
    mc: use(OPTIONS.mc, 8),
    initStd: use(OPTIONS.initStd, DEFAULT_INIT_SCALE),
  };
}

/** The cost (core/spec.ts `cost`) of a {@link warmStartPlan} run with 8 score evaluations per step. */
export const WARM_START_SCORE_COST = "9x MAP (a 20-epoch MAP warm start, then 20 epochs of 8 score evaluations per step) plus O(d^2) per step (small models only)";

/** `epochs` of steps from a MAP warm start of as many epochs, then `samples` draws from q. */
export function warmStartPlan(o: { epochs: number; samples: number }): RunPlan {
  return { collect: "final", epochs: o.epochs, draws: o.samples, warmStart: { epochs: o.epochs } };
}

/** `--method gsm`. */
export const spec: ModelMethodSpec<GaussianScoreSpecOptions> = {
  name: "gsm",
  family: "scorevi",
  summary: "Gaussian score matching: batch closed-form full-covariance updates over all parameters of a small model",
  cost: WARM_START_SCORE_COST,
  paper: "Modi, Gower, Margossian, Wu, Blei & Saul 2023, Variational inference with Gaussian score matching",
  options: gaussianScoreOptions(),
  kinds: [gaussianKind],
  plan: warmStartPlan,
  build(ctx, o) {
    const { logDensity, unravel } = flatTarget("gsm", ctx);
    return onParams(create(logDensity, { batchSize: o.mc, initScale: o.initStd, dataSize: ctx.dataSize }), unravel);
  },
};
