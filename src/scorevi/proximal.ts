/**
 * Proximal score-matching variational inference, in the spirit of Kim (2026), "Large-scale
 * score-based variational posterior inference for Bayesian deep neural networks".
 *
 * Each outer iteration t freezes q_t, draws theta_1..theta_M ~ q_t (plain draws, NOT
 * reparameterised: they are constants of the objective below), evaluates the unbiased minibatch
 * score of the target at each draw,
 *
 *   s(theta) = grad log p(theta) + (N / n) sum_{i in batch} grad log p(y_i | x_i, theta)
 *            = grad_theta logDensity(theta, batch)          (src/models/model.ts),
 *
 * and then takes K inner optimisation steps on the proximal score-matching objective
 *
 *   F_t(q) = (1/M) sum_m || W_t^{1/2} ( grad_theta log q(theta_m) - s(theta_m) ) ||^2 + lambda KL(q_t || q),
 *
 * a (weighted) Fisher-divergence estimate with the samples frozen at q_t, plus a proximal penalty that
 * keeps q near q_t. q_{t+1} is the result of the K inner steps.
 *
 * Two versions:
 * - {@link create}: a diagonal (mean-field) Gaussian over a network's parameter pytree
 *   (src/vi/meanfield.ts). Everything is closed form: grad log q(theta) = -(theta - mu) / sigma^2, and
 *   the inner steps are damped Newton steps in natural parameters, where F_t is convex.
 * - {@link createFlat}: any flat-vector {@link Family} (full-rank Gaussian, flows, ...): grad log q by
 *   autodiff of `family.logProb` with respect to theta, and the objective's gradient with respect to
 *   q by autodiff of that (grad of grad; jax-js supports it, also under `jit`), with Adam.
 * For a full-rank Gaussian q, src/scorevi/proximal-fullrank.ts (`proximal-svi-fullrank`) takes
 * closed-form Newton steps instead, as the diagonal version does, and converges where the Adam steps
 * of {@link createFlat} do not (docs/tuning.md).
 *
 * Fixed points. For a Gaussian target with precision P and mean m, the fixed point of the iteration
 * (q_t = q_{t+1} in expectation) for the diagonal family has mean m and precision diag(P): with the
 * draws frozen at q* = N(mu*, D^-1), the minimiser over diagonal D of E_{q*} || (P - D)(theta - mu*) ||^2
 * solves D_jj Sigma*_jj = (P Sigma*)_jj, i.e. D_jj = P_jj when Sigma* = D^-1; the mean solves
 * P (mu - m) = 0. This is the same as the KL(q || p) mean-field optimum. It is NOT the minimiser of
 * the Fisher divergence E_q || grad log q - grad log p ||^2 with the expectation moving with q, whose
 * diagonal precision is sqrt((P^2)_jj) >= P_jj. For a full-rank family the fixed point is p itself.
 */
import { gradient, lax, np, split, valueAndGradient, type JArray } from "../core/engine.js";
import { inverseSoftplusArray, softplus } from "../core/math.js";
import type { InferenceMethod } from "../core/method.js";
import { normalTree } from "../core/normal.js";
import { OPTIONS } from "../core/options.js";
import { asSchedule, type Schedule } from "../core/schedule.js";
import { use, type DefaultContext } from "../core/spec.js";
import { flattenTree, free, keep, leaves, sumAll, type Tree } from "../core/tree.js";
import type { LogDensityFn, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { paramPriorScales } from "../models/prior.js";
import { adam, applyUpdates, type GradientTransformation } from "../optim/transform.js";
import { variationalPlan, type BbbSpecOptions } from "../vi/bbb.js";
import { familyPosterior, type Family, type FlatLogDensity } from "../vi/family.js";
import { meanFieldAverageInit, meanFieldAveragePosterior, meanFieldAverageUpdate, meanFieldInit, meanFieldKind, meanFieldPosterior, type MeanField, type MeanFieldAverage } from "../vi/meanfield.js";

/** Per-step information (float32 scalars). */
export type ProximalInfo = {
  /**
   * The score-matching term of F_t at q_{t+1}. Diagonal version: per parameter (divided by the number
   * of parameters), in the dimensionless q_t-weighted form (see {@link create}). Flat version: as in
   * {@link createFlat}'s objective, times `scoreWeight`.
   */
  scoreLoss: JArray;
  /** KL(q_t || q_{t+1}), nats (closed form for Gaussians; Monte Carlo for families without `kl`). */
  kl: JArray;
  /** Target score evaluations so far, this step's M included. */
  evaluations: JArray;
  /** -mean_m logDensity(theta_m) / N at the draws from q_t (diagonal version; a free by-product of the scores). */
  loss: JArray;
};

/** Options of the diagonal (mean-field, pytree) version {@link create}. */
export interface ProximalOptions {
  /** N, the training-set size (used to report `info.loss` per datum). */
  readonly dataSize: number;
  /** lambda, the proximal strength (default 50); a number or a schedule of the step counter. */
  readonly lambda?: number | Schedule;
  /** M, draws from q_t (= score evaluations) per outer step (default 2 with antithetic draws, else 1). */
  readonly samplesPerStep?: number;
  /**
   * Draw in antithetic pairs mu_t +- sigma_t eps, both scored on the same minibatch (default true;
   * M must then be even). See {@link create} for why.
   */
  readonly antithetic?: boolean;
  /** K, inner Newton steps per outer step (default 2). */
  readonly innerSteps?: number;
  /** Damping eta of the inner Newton steps (default 1: full Newton steps). */
  readonly learningRate?: number;
  /** Initial standard deviation of every coordinate (default 1e-3). */
  readonly sigma0?: number;
  /**
   * Trust region kappa of the mean: each outer step moves mu_j by at most kappa sigma_tj (default 1).
   * `Infinity` turns it off.
   */
  readonly meanTrustRegion?: number;
  /** Each outer step changes sigma_j by at most this factor either way (default 2). `Infinity` turns it off. */
  readonly maxScaleChange?: number;
  /**
   * Upper bound on sigma_j (default Infinity): one number for every coordinate, or a function of the
   * parameter tree giving one bound per leaf in `leaves` order. Pass the prior's standard deviations for
   * a network with a Gaussian prior (`paramPriorScales`): the diagonal precision of the posterior is at
   * least the prior's wherever the expected likelihood curvature is non-negative, and the bound stops a
   * noisy curvature estimate from widening q past the prior (see {@link create}).
   */
  readonly maxSigma?: number | ((mu: Params) => readonly number[]);
  /**
   * Steps after which the posterior is the running average of the iterates (see {@link create};
   * default: never, the last iterate). The `proximal-svi` spec averages over the second half of the run.
   */
  readonly averageFrom?: number;
}

/**
 * State of the diagonal version: q_t, counters (float32 scalars) and, with `averageFrom`, the running
 * averages of the iterates' mu and sigma^2 (see {@link create}).
 */
export type ProximalState = { q: MeanField; step: JArray; evaluations: JArray; avg?: MeanFieldAverage };

function checkInt(who: string, name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${who}: ${name} must be a positive integer, got ${v}`);
  return v;
}

function checkPos(who: string, name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${who}: ${name} must be a finite number > 0, got ${v}`);
  return v;
}

function resolveLambda(who: string, lam: number | Schedule, m: number): Schedule {
  if (typeof lam === "number") {
    if (!(lam >= 0) || !Number.isFinite(lam)) throw new RangeError(`${who}: lambda must be a finite number >= 0, got ${lam}`);
    if (lam === 0 && m === 1 && who === "proximal") {
      throw new RangeError("proximal: lambda = 0 needs samplesPerStep >= 2 (one draw cannot identify both mean and variance)");
    }
  }
  return asSchedule(lam, `${who}: lambda`);
}

/** Defaults of {@link create}, which the `proximal-svi` spec takes too (why each: below). */
export const PROXIMAL_DEFAULTS = { lambda: 50, samplesPerStep: 2, innerSteps: 2, learningRate: 1, sigma0: 1e-3 } as const;

/**
 * Proximal score-matching VI with a mean-field Gaussian q over a network's parameter pytree.
 *
 * Objective of outer step t (per coordinate j; q_t = N(mu_t, sigma_t^2), q = N(mu, sigma^2), draws
 * theta_m = mu_t + sigma_t eps_m, eps_m ~ N(0, 1), frozen, scores s_m = grad logDensity(theta_m, batch)):
 *
 *   F_t(q) = sum_j [ (1/M) sum_m sigma_tj^2 ( -(theta_mj - mu_j) / sigma_j^2 - s_mj )^2 + lambda KL(q_tj || q_j) ],
 *   KL(q_tj || q_j) = log(sigma_j / sigma_tj) + (sigma_tj^2 + (mu_tj - mu_j)^2) / (2 sigma_j^2) - 1/2.
 *
 * Normalisation (a choice): the score residual is weighted by sigma_tj^2, i.e. measured in units of
 * q_t's own scale. The raw residual is O(N) per coordinate for a network (posterior precisions are
 * O(N)), so the unweighted sum is O(N^2 d) and its balance with lambda KL would depend on N and on
 * each weight's curvature; weighted, both terms are dimensionless and lambda has the same meaning for
 * every coordinate and data size: near the fixed point, the curvature of the score term in mu is
 * 2 / sigma^2 against lambda / sigma^2 for the KL, so one outer step moves q a fraction ~2 / (2 + lambda)
 * of the way to the one-batch score-matching solution. lambda is therefore the outer step size's
 * inverse: large lambda averages the minibatch noise of the scores over ~lambda / 2 steps. A diagonal
 * weight does not move the diagonal fixed point (mean m, precision diag(P); see the module comment).
 *
 * Parameterisation and optimiser (a choice): in the dimensionless natural coordinates
 * a = sigma_t^2 / sigma^2 (relative precision) and c = sigma_t (mu - mu_t) / sigma^2, the residual is
 * sigma_t r = -a eps + c - sigma_t s, linear in (a, c), so the score term is a convex quadratic, and
 * KL = (a + c^2 / a - log a - 1) / 2 is convex too. Each coordinate is a separate 2-D convex problem
 * whose gradient and 2 x 2 Hessian are closed form in five per-coordinate moments of the draws
 * (mean eps, mean eps^2, mean s~, mean s~ eps, with s~ = sigma_t s); the K inner steps are damped
 * Newton steps (a, c) <- (a, c) - eta H^-1 g from (1, 0) (q = q_t), with a kept >= a / 4 per step (the
 * log barrier of the KL keeps the optimum positive; the guard keeps an overshooting step so). No
 * optimiser state is carried between outer steps, so the memory is q_t, q, the draw and its score,
 * and four moment arrays (for M = 1 these are products of the draw and score). With M = 1 the score
 * term alone is singular (one point fixes a line in (a, c)); lambda > 0 makes H positive definite.
 *
 * Gradient (dimensionless, per coordinate, moments over the M draws: E1 = <eps>, E2 = <eps^2>,
 * S1 = <s~>, X = <s~ eps>):
 *   dF/da = 2 (a E2 - c E1 + X) + (lambda / 2)(1 - 1/a - c^2/a^2),
 *   dF/dc = 2 (c - a E1 - S1) + lambda c / a,
 *   H = [[2 E2 + (lambda/2)(1/a^2 + 2 c^2/a^3), -2 E1 - lambda c / a^2], [., 2 + lambda / a]].
 * Then sigma = sigma_t / sqrt(a), mu = mu_t + sigma_t c / a, rho = softplus^-1(sigma).
 *
 * Draws are never differentiated: nothing here takes a gradient with respect to q (the inner steps are
 * closed form), so no reparameterisation path exists; the only autodiff is grad logDensity at theta.
 *
 * Defaults and why: lambda = 50 (each step moves ~1/26 of the way to the one-batch solution, so the
 * curvature statistic X is in effect averaged over ~25 steps; small lambda lets noisy curvature
 * estimates widen q, large lambda stalls the mean; docs/tuning.md has the scan),
 * M = 2 antithetic draws (the pair cancels the odd terms of the score's expansion around mu_t, so the
 * mean and curvature statistics lose their largest noise term; two evaluations per step), K = 2
 * (Newton converges on the convex 2-D problems in a few steps; the inner steps cost a few elementwise
 * passes over the parameters, negligible next to the score), eta = 1 (undamped Newton),
 * sigma0 = 1e-3 (start near the given point estimate, like Bayes-by-backprop).
 *
 * Trust region (a choice): one outer step moves mu_j by at most kappa sigma_tj (kappa = 1) and changes
 * sigma_j by at most a factor 2, and sigma_j never exceeds `maxSigma` (the fit job passes each leaf's
 * tempered prior sd, s_i sqrt(T): for the weights of the fan-in prior s / sqrt(fan-in); one bound for
 * all leaves, the largest of them (a bias's s), let the weights' sigma reach 28 times their prior sd
 * and the MNIST fit reach 75% error: docs/priors.md). On networks the per-coordinate curvature
 * statistic X = <sigma_t s eps_j> is a Hutchinson-type estimate whose noise grows with the
 * off-diagonal Hessian mass times every other coordinate's sigma; without the bounds, noise that made
 * X look non-positive widened q, wider q made X noisier, and the mean step (~ sigma^2 s) grew with it
 * until a draw overflowed (docs/tuning.md). The bounds do not move the fixed point of a Gaussian
 * target (the Bayesian linear regression test reaches it with them on).
 *
 * Posterior: the average of the iterates (Polyak-Ruppert averaging; with `averageFrom`, which the
 * `proximal-svi` spec sets to half of the run's steps). After step s > averageFrom, with
 * n = s - averageFrom iterates averaged,
 *
 *   mubar_j = (1/n) sum_{s'} mu_{s'j},   sigmabar_j^2 = (1/n) sum_{s'} sigma_{s'j}^2,   q = N(mubar, sigmabar^2),
 *
 * kept as running means in the state (before averageFrom, the posterior is the current iterate).
 * The iterates do not settle: each step's curvature statistic X is a Monte Carlo estimate from M draws,
 * and q_{t+1} moves ~2 / (2 + lambda) of the way to its one-batch solution, so the last iterate's
 * variances scatter around the fixed point. On the Bayesian linear regression of
 * test/defaults-exact.test.ts (M = 2, lambda = 50) the last iterate's variances were 0-19% off the
 * mean-field optimum, the average's at most 5% (docs/tuning.md). Averaging sigma^2 rather than the precision
 * (the arithmetic rather than the harmonic mean of the variances) is a choice; the two averages were
 * within 2% of each other there.
 *
 * @param logDensity the model's minibatch log posterior (src/models/model.ts `logDensity`).
 * @example
 * const vi = create(logDensity(model, { dataSize: N }), { dataSize: N, lambda: 100, averageFrom: 500 });
 * let state = vi.init(key(0), model.init(key(1)));
 * const step = compile(vi.step, { consume: [0, 1, 2] });
 * [state, info] = step(key(2), state, batch);
 * const draws = vi.posterior(state).draws(key(3), 10);
 */
export function create(logDensity: LogDensityFn, opts: ProximalOptions): ModelMethod<ProximalState, ProximalInfo> {
  const who = "proximal";
  const n = checkPos(who, "dataSize", opts.dataSize);
  const anti = opts.antithetic ?? true;
  const m = checkInt(who, "samplesPerStep", opts.samplesPerStep ?? (anti ? PROXIMAL_DEFAULTS.samplesPerStep : 1));
  if (anti && m % 2 !== 0) throw new RangeError(`proximal: antithetic draws need an even samplesPerStep, got ${m}`);
  const kSteps = checkInt(who, "innerSteps", opts.innerSteps ?? PROXIMAL_DEFAULTS.innerSteps);
  const eta = checkPos(who, "learningRate", opts.learningRate ?? PROXIMAL_DEFAULTS.learningRate);
  const sigma0 = checkPos(who, "sigma0", opts.sigma0 ?? PROXIMAL_DEFAULTS.sigma0);
  const kappa = opts.meanTrustRegion ?? 1;
  if (!(kappa > 0)) throw new RangeError(`proximal: meanTrustRegion must be > 0 (or Infinity), got ${kappa}`);
  const maxScale = opts.maxScaleChange ?? 2;
  const maxSigma = opts.maxSigma ?? Infinity;
  const checkBound = (b: number): number => {
    if (!(b > 0)) throw new RangeError(`proximal: maxSigma must be > 0 (or Infinity), got ${b}`);
    return b;
  };
  if (typeof maxSigma === "number") checkBound(maxSigma);
  const boundsOf = (mu: Params): number[] => (typeof maxSigma === "number" ? leaves(mu).map(() => maxSigma) : maxSigma(mu).map(checkBound));
  if (!(maxScale > 1)) throw new RangeError(`proximal: maxScaleChange must be > 1 (or Infinity), got ${maxScale}`);
  const lambdaAt = resolveLambda(who, opts.lambda ?? PROXIMAL_DEFAULTS.lambda, m);
  const from = opts.averageFrom ?? Infinity;
  if (!(from >= 0)) throw new RangeError(`proximal: averageFrom must be >= 0, got ${from}`);
  return {
    init(k, params) {
      k.dispose();
      const q = meanFieldInit(params, sigma0);
      if (!Number.isFinite(from)) return { q, step: np.array(0), evaluations: np.array(0) };
      return { q, step: np.array(0), evaluations: np.array(0), avg: meanFieldAverageInit(q) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lam = lambdaAt(t.ref);
      const bounds = boundsOf(state.q.mu);
      const [muT, unflatten] = flattenTree(state.q.mu);
      const sigT = leaves(state.q.rho).map((r) => softplus(r));
      const size = muT.reduce((s, a) => s + a.size, 0);
      const keys = split(k, anti ? m / 2 : m);
      let pair: JArray[] = [];
      let e1: JArray[] = [], e2: JArray[] = [], s1: JArray[] = [], xs: JArray[] = [];
      let s2: JArray | undefined, ldSum: JArray | undefined;
      for (let i = 0; i < m; i++) {
        let eps: JArray[];
        if (anti && i % 2 === 1) {
          eps = pair.map((a) => a.mul(-1));
        } else {
          eps = leaves(normalTree(keys[anti ? i / 2 : i], unflatten(muT)));
          if (anti) pair = eps.map((a) => a.ref);
        }
        const theta = unflatten(muT.map((mu, j) => mu.ref.add(sigT[j].ref.mul(eps[j].ref))));
        const [ld, g] = valueAndGradient(logDensity)(theta, i < m - 1 ? keep(batch) : batch);
        const st = leaves(g).map((gj, j) => gj.mul(sigT[j].ref));
        const sq = sumAll(st.map((a) => a.ref.mul(a.ref).sum()));
        s2 = s2 ? s2.add(sq) : sq;
        ldSum = ldSum ? ldSum.add(ld) : ld;
        const first = i === 0;
        e1 = eps.map((a, j) => (first ? a.ref : e1[j].add(a.ref)));
        e2 = eps.map((a, j) => (first ? a.ref.mul(a.ref) : e2[j].add(a.ref.mul(a.ref))));
        s1 = st.map((a, j) => (first ? a.ref : s1[j].add(a.ref)));
        xs = st.map((a, j) => (first ? a.mul(eps[j]) : xs[j].add(a.mul(eps[j]))));
      }
      if (m > 1) {
        const inv = 1 / m;
        [e1, e2, s1, xs] = [e1, e2, s1, xs].map((l) => l.map((a) => a.mul(inv)));
        s2 = s2!.mul(inv);
      }
      // K damped Newton steps on each coordinate's convex 2-D problem, from (a, c) = (1, 0), i.e. q = q_t.
      const lamL = muT.map(() => lam.ref);
      let a = muT.map((mu) => np.onesLike(mu.ref));
      let c = muT.map((mu) => np.zerosLike(mu.ref));
      for (let it = 0; it < kSteps; it++) {
        const next = a.map((aj, j) => {
          const cj = c[j], E1 = e1[j], E2 = e2[j], S1 = s1[j], X = xs[j], L = lamL[j];
          const ia = np.reciprocal(aj.ref);
          const ga = aj.ref.mul(E2.ref).sub(cj.ref.mul(E1.ref)).add(X.ref).mul(2)
            .add(L.ref.mul(0.5).mul(ia.ref.mul(-1).add(1).sub(cj.ref.mul(cj.ref).mul(ia.ref).mul(ia.ref))));
          const gc = cj.ref.sub(aj.ref.mul(E1.ref)).sub(S1.ref).mul(2).add(L.ref.mul(cj.ref).mul(ia.ref));
          // Expected Hessian of the score term (E[eps^2] = 1, E[eps] = 0): a constant 2 I, so the step is
          // linear in the draws' statistics (the sampled Hessian 2 [[E2, -E1], [-E1, 1]] puts the same
          // eps^2 in numerator and denominator, which biases the precision upwards; docs/tuning.md).
          const haa = L.ref.mul(0.5).mul(ia.ref.mul(ia.ref).add(cj.ref.mul(cj.ref).mul(2).mul(ia.ref).mul(ia.ref).mul(ia.ref))).add(2);
          const hac = L.ref.mul(cj.ref).mul(ia.ref).mul(ia.ref).mul(-1);
          const hcc = L.ref.mul(ia).add(2);
          const det = haa.ref.mul(hcc.ref).sub(hac.ref.mul(hac.ref));
          const da = hcc.mul(ga.ref).sub(hac.ref.mul(gc.ref)).div(det.ref).mul(-eta);
          const dc = haa.mul(gc).sub(hac.mul(ga)).div(det).mul(-eta);
          const aNew = np.minimum(np.maximum(aj.ref.add(da), aj.ref.mul(0.25)), aj.mul(4));
          return [aNew, cj.add(dc)];
        });
        a = next.map((p) => p[0]);
        c = next.map((p) => p[1]);
      }
      lamL.forEach((l) => l.dispose());
      // Trust region of the outer step: a in [1/r^2, r^2] (sigma within a factor r of sigma_t) and
      // |c| <= kappa a (|mu - mu_t| <= kappa sigma_t).
      if (Number.isFinite(maxScale)) a = a.map((aj) => np.clip(aj, 1 / (maxScale * maxScale), maxScale * maxScale));
      // sigma = sigma_t / sqrt(a) <= maxSigma  <=>  a >= (sigma_t / maxSigma)^2.
      a = a.map((aj, j) => (Number.isFinite(bounds[j]) ? np.maximum(aj, sigT[j].ref.mul(sigT[j].ref).mul(1 / (bounds[j] * bounds[j]))) : aj));
      if (Number.isFinite(kappa)) c = c.map((cj, j) => np.minimum(np.maximum(cj, a[j].ref.mul(-kappa)), a[j].ref.mul(kappa)));
      // Score term and KL at the result, summed over coordinates.
      const sParts = a.map((aj, j) => {
        const cj = c[j];
        return aj.ref.mul(aj.ref).mul(e2[j]).add(cj.ref.mul(cj.ref))
          .sub(aj.ref.mul(cj.ref).mul(e1[j]).mul(2)).add(aj.ref.mul(xs[j]).mul(2)).sub(cj.ref.mul(s1[j]).mul(2)).sum();
      });
      const scoreLoss = sumAll(sParts).add(s2!).mul(1 / size);
      const kl = sumAll(a.map((aj, j) => aj.ref.add(c[j].ref.mul(c[j].ref).div(aj.ref)).sub(np.log(aj.ref)).sub(1).sum())).mul(0.5);
      // Back to (mu, rho): sigma = sigma_t / sqrt(a), mu = mu_t + sigma_t c / a.
      const sig = a.map((aj, j) => sigT[j].ref.div(np.sqrt(aj.ref)));
      const mu = muT.map((mt, j) => mt.add(sigT[j].mul(c[j]).div(a[j])));
      // Running averages of mu and sigma^2 over the steps s = t + 1 > averageFrom (before: the iterate).
      const avg = state.avg && meanFieldAverageUpdate(state.avg, t.ref, from, unflatten(mu.map((x) => x.ref)), unflatten(sig.map((x) => x.ref)));
      const rho = sig.map((sj) => inverseSoftplusArray(sj));
      lam.dispose();
      const q: MeanField = { mu: unflatten(mu), rho: unflatten(rho) };
      const evaluations = state.evaluations.add(m);
      const info: ProximalInfo = { scoreLoss, kl, evaluations: evaluations.ref, loss: ldSum!.mul(-1 / (m * n)) };
      return [avg ? { q, step: t.add(1), evaluations, avg } : { q, step: t.add(1), evaluations }, info];
    },
    posterior: (state) => {
      return state.avg ? meanFieldAveragePosterior(keep(state.avg)) : meanFieldPosterior(keep(state.q));
    },
  };
}

/** Options of the flat-vector version {@link createFlat}. */
export interface FlatProximalOptions<Q extends Tree> {
  /** The variational family q (src/vi/family.ts). */
  readonly family: Family<Q>;
  /** lambda, the proximal strength (default 1); a number or a schedule of the step counter. */
  readonly lambda?: number | Schedule;
  /** M, draws from q_t (= score evaluations) per outer step (default 8). */
  readonly samplesPerStep?: number;
  /** K, inner Adam steps per outer step (default 4). */
  readonly innerSteps?: number;
  /** Adam learning rate (default 1e-2). */
  readonly learningRate?: number;
  /** w, weight of the score-matching term (default 1); set it near the target's variance scale. */
  readonly scoreWeight?: number;
  /** Any gradient transformation over q's parameters (default `adam(learningRate)`), e.g. {@link triangularAdam}. */
  readonly optimizer?: GradientTransformation;
  /** q starts at `family.init(key, theta0, initScale)` around the parameters given to `init` (default 1). */
  readonly initScale?: number;
  /** N: only scales the reported `loss` to a per-datum value (default 1). */
  readonly dataSize?: number;
}

/** Per-step information of the flat version (float32 scalars). */
export type FlatProximalInfo = {
  /** -mean_m logDensity(theta_m) / N at the draws from q_t (a by-product of their scores). */
  loss: JArray;
  /** The score-matching term of F_t at q_{t+1}, times `scoreWeight`. */
  scoreLoss: JArray;
  /** D(q_t, q_{t+1}) (closed form for Gaussians; Monte Carlo otherwise). */
  kl: JArray;
  /** Target score evaluations so far. */
  evaluations: JArray;
};

/** State of the flat version: q_t, the Adam state, and counters (float32 scalars). */
export type FlatProximalState<Q extends Tree = Tree> = { q: Q; opt: Tree; step: JArray; evaluations: JArray };

/**
 * The frozen-draw score-matching term of a flat family:
 *
 *   S(q) = (w / M) sum_m || grad_theta log q(theta_m) - s_m ||^2,
 *
 * with theta `[M, d]` and s `[M, d]` constants (wrapped in `lax.stopGradient`, so a gradient with
 * respect to anything that produced them is zero). grad_theta log q is the gradient of
 * sum_m log q(theta_m) with respect to theta (rows are independent). Consumes all arguments.
 * @example
 * const g = grad((q) => scoreMatchingTerm(family, q, keep(theta), keep(s), 1))(q);
 */
export function scoreMatchingTerm<Q extends Tree>(family: Family<Q>, q: Q, theta: JArray, scores: JArray, weight: number): JArray {
  const th = lax.stopGradient(theta);
  const s = lax.stopGradient(scores);
  const mDraws = th.shape[0];
  const gq = gradient((x: JArray) => family.logProb(q, x).sum())(th);
  const r = gq.sub(s);
  return r.ref.mul(r).sum().mul(weight / mDraws);
}

/**
 * Proximal score-matching VI over a flat-vector variational {@link Family}.
 *
 * Objective of outer step t (theta_m ~ q_t frozen, s_m = grad_theta logDensity(theta_m, batch)):
 *
 *   F_t(q) = (w / M) sum_m || grad_theta log q(theta_m) - s_m ||^2 + lambda D(q_t, q),
 *   D(q_t, q) = family.kl(q_t, q)                                  when the family has it (Gaussians),
 *             = (1/M) sum_m [ log q_t(theta_m) - log q(theta_m) ]     otherwise (flows; same draws),
 *
 * Gradient: dF/dq by autodiff; the score term differentiates grad_theta log q (grad of grad, which
 * jax-js supports, also under jit; for a Gaussian with precision P, grad_theta log q = -P (theta - m)).
 * The draws and the scores are constants (`lax.stopGradient`): no reparameterisation path.
 *
 * Optimiser (a choice): Adam (or `optimizer`), its moments carried across outer steps (resetting them each step turns
 * K = 1 into sign descent with step lr; the flat problems are small, so the two extra copies of q cost
 * nothing). Normalisation (a choice): a constant weight w on the score term, default 1; the score
 * residual scales with the target's precision, so with w ~ the target's variance lambda is
 * dimensionless (as in the diagonal version, where the weight is q_t's own variance).
 * Defaults: lambda = 1, M = 8, K = 4, learning rate 1e-2, w = 1 (targets of unit scale).
 *
 * Known limits (`bayesdl bench vi-gaussian` and `vi-mixture`; the runs are in docs/tuning.md):
 * - Gaussian families: use the closed-form full-rank version (src/scorevi/proximal-fullrank.ts). With
 *   Adam, in precision form with `triangularAdam` at lambda 0.01, the bench's covariance errors after
 *   32,000 evaluations were 1% (d = 10), 3% (d = 50), 7% (condition 1000) and 8% (from a covariance
 *   1e-4 I, whose mean was still 2.9 sds off); d = 100 diverged. In covariance form at lambda 1,
 *   learning rate 1e-2, from a q 30-100x wider than the target, q kept widening (1e4 x the target's
 *   covariance after 3,000 steps) with a finite objective, so no divergence check can see it.
 * - RealNVP flows with 2 or more coupling layers diverge for every lambda and M tried (the gradients
 *   check against finite differences: the frozen-draw objective itself is unstable for them); one
 *   coupling layer converges. Fit flows with ADVI (src/vi/advi.ts).
 *
 * @example
 * const vi = createFlat(target, { family: fullRank(d), lambda: 1, initScale: 1 });
 * let state = vi.init(key(0), np.zeros([d]));
 * [state, info] = compile(vi.step, { consume: [0, 1, 2] })(key(1), state, undefined);
 */
export function createFlat<Q extends Tree, B = unknown>(logDensity: FlatLogDensity<B>, opts: FlatProximalOptions<Q>): InferenceMethod<FlatProximalState<Q>, FlatProximalInfo, JArray, B> {
  const who = "proximalFlat";
  const family = opts.family;
  const m = checkInt(who, "samplesPerStep", opts.samplesPerStep ?? 8);
  const kSteps = checkInt(who, "innerSteps", opts.innerSteps ?? 4);
  const lr = checkPos(who, "learningRate", opts.learningRate ?? 1e-2);
  const w = checkPos(who, "scoreWeight", opts.scoreWeight ?? 1);
  const lambdaAt = resolveLambda(who, opts.lambda ?? 1, m);
  const optimiser: GradientTransformation = opts.optimizer ?? adam(lr);
  const scale0 = checkPos(who, "initScale", opts.initScale ?? 1);
  const n = checkPos(who, "dataSize", opts.dataSize ?? 1);
  const d = family.dim;
  const divergence = (qt: Q, q: Q, theta: JArray, logQt: JArray): JArray => {
    if (family.kl) {
      theta.dispose();
      logQt.dispose();
      return family.kl(qt, q);
    }
    free(qt);
    return logQt.sub(family.logProb(q, theta)).mean();
  };
  return {
    init(k, theta0) {
      const q = family.init(k, theta0, scale0);
      const opt = optimiser.init(keep(q));
      return { q, opt, step: np.array(0), evaluations: np.array(0) };
    },
    step(k, state, batch) {
      const t = state.step;
      const lam = lambdaAt(t.ref);
      const qt = state.q;
      const [theta0, logQt0] = family.sampleAndLogProb(k, keep(qt), m);
      const theta = lax.stopGradient(theta0);
      const logQt = lax.stopGradient(logQt0);
      const rows: JArray[] = [];
      let ldSum: JArray | undefined;
      for (let i = 0; i < m; i++) {
        const b = i < m - 1 ? keep(batch) : batch;
        const [ld, g] = valueAndGradient((x: JArray) => logDensity(x, b))(theta.ref.slice(i));
        rows.push(g.reshape([1, d]));
        ldSum = ldSum ? ldSum.add(ld) : ld;
      }
      const scores = lax.stopGradient(rows.length === 1 ? rows[0] : np.concatenate(rows, 0));
      const objective = (q: Q) => {
        const sm = scoreMatchingTerm(family, keep(q), theta.ref, scores.ref, w);
        const dv = divergence(keep(qt), q, theta.ref, logQt.ref);
        return sm.add(dv.mul(lam.ref));
      };
      let q = keep(qt);
      let opt = state.opt;
      for (let it = 0; it < kSteps; it++) {
        const g = gradient(objective)(keep(q));
        const [u, o2] = optimiser.update(g, opt, keep(q));
        opt = o2;
        q = applyUpdates(q, u);
      }
      const scoreLoss = scoreMatchingTerm(family, keep(q), theta.ref, scores, w);
      const kl = divergence(qt, keep(q), theta, logQt);
      lam.dispose();
      const evaluations = state.evaluations.add(m);
      return [{ q, opt, step: t.add(1), evaluations }, { loss: ldSum!.mul(-1 / (m * n)), scoreLoss, kl, evaluations: evaluations.ref }];
    },
    posterior: (state) => familyPosterior(family, keep(state.q)),
  };
}

/** The default temperature of `proximal-svi` for classification (docs/priors.md). */
export const PROXIMAL_CLASSIFICATION_T = 0.01;

/** Options of `--method proximal-svi`. */
export interface ProximalSpecOptions extends BbbSpecOptions {
  lambda: number;
  innerSteps: number;
}

/** `--method proximal-svi`. */
export const spec: ModelMethodSpec<ProximalSpecOptions> = {
  name: "proximal-svi",
  family: "scorevi",
  summary: "proximal score-matching VI, mean-field Gaussian q, closed-form Newton steps per coordinate",
  cost: "2x MAP (20 epochs of 2 score evaluations per step)",
  paper: "in the spirit of Kim 2026, Large-scale score-based variational posterior inference for Bayesian deep neural networks",
  options: {
    epochs: use(OPTIONS.epochs, 20),
    samples: use(OPTIONS.samples, 20),
    // Chosen on 6,000 / 2,000 of the training digits (docs/priors.md): at T = 1 the mean-field q
    // switches most hidden units off (over-pruning) and predicts worse than MAP; T = 0.01 gave the best
    // validation NLL of 1, 0.1, 0.05, 0.03, 0.01 and 0.003. Regression keeps T = 1.
    temperature: use(OPTIONS.temperature, (c: DefaultContext) => (c.classification ? PROXIMAL_CLASSIFICATION_T : 1), `classification ${PROXIMAL_CLASSIFICATION_T} (a cold posterior, chosen on training digits: docs/priors.md); regression 1`),
    lr: use(OPTIONS.lr, PROXIMAL_DEFAULTS.learningRate),
    mc: use(OPTIONS.mc, PROXIMAL_DEFAULTS.samplesPerStep),
    initStd: use(OPTIONS.initStd, PROXIMAL_DEFAULTS.sigma0),
    lambda: use(OPTIONS.lambda, PROXIMAL_DEFAULTS.lambda),
    innerSteps: use(OPTIONS.innerSteps, PROXIMAL_DEFAULTS.innerSteps),
  },
  kinds: [meanFieldKind],
  plan: variationalPlan,
  build: (ctx, o) =>
    create(ctx.logDensity, {
      dataSize: ctx.dataSize,
      lambda: o.lambda,
      innerSteps: o.innerSteps,
      samplesPerStep: o.mc,
      learningRate: o.lr,
      sigma0: o.initStd,
      // The posterior is the average of the iterates over the second half of the run.
      averageFrom: Math.floor((o.epochs * ctx.stepsPerEpoch) / 2),
      // Each leaf's tempered prior sd, s_i sqrt(T) (s_i over sqrt(fan-in) for the weights of a fan-in prior).
      maxSigma: (mu) => paramPriorScales(ctx.model.prior, mu).map((sd) => sd * Math.sqrt(ctx.temperature)),
    }),
};
