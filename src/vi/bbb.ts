/**
 * Bayes-by-backprop: mean-field Gaussian variational inference over every weight of a network
 * (Blundell, Cornebise, Kavukcuoglu & Wierstra 2015, "Weight uncertainty in neural networks"), with
 * three gradient estimators of the expected log-likelihood:
 *
 * - `"reparam"`: plain reparameterisation, one weight draw theta = mu + sigma * eps per minibatch
 *   (per Monte Carlo sample), shared by all its examples (Blundell et al. 2015);
 * - `"lrt"`: the local reparameterisation trick (Kingma, Salimans & Welling 2015, "Variational dropout
 *   and the local reparameterization trick"): a dense layer's pre-activations are Gaussian under q,
 *   b_n ~ N(h_n mu_W + mu_b, h_n^2 sigma_W^2 + sigma_b^2) (squares elementwise), and are drawn
 *   directly, independently per example: same expectation, lower variance, no weight draw;
 * - `"flipout"` (Wen, Vicol, Ba, Tran & Grosse 2018, "Flipout: efficient pseudo-independent weight
 *   perturbations on mini-batches"): one shared perturbation dW = sigma_W * eps_W per minibatch,
 *   decorrelated across examples by random signs, b_n = h_n mu_W + mu_b + ((h_n * s_n) dW + sigma_b
 *   eps_b) * r_n with s_n, r_n uniform in {-1, +1}. Each example's weights are still exactly
 *   distributed as q.
 *
 * The local estimators apply to dense layers only; a CNN's convolutions use plain reparameterised
 * weights drawn once per minibatch, as does the likelihood's own `lik.logSigma`. This is why the
 * method takes the {@link Model} (its network's `applyWith` layer hook, and its prior for the analytic
 * KL) instead of only a `logDensity`.
 *
 * Objective (minimised, per training point), with q's parameters phi = (mu, rho), sigma = softplus(rho):
 *
 *   L(phi) = 1/(N T) [ -(N/S) sum_{s=1..S} (1/n) sum_{i in batch} log p(y_i | x_i, theta_s)
 *                      + w_t (KL(q || p) + (1 - T) H[q]) ]
 *
 * which at w_t = 1 is -ELBO_T / N, the negative ELBO of the tempered target p_T of src/models/model.ts
 * per datum: E_q[log p_T(theta, D)] + H[q] = (1/T)(E_q log p(D | theta) - KL(q || p) - (1 - T) H[q]),
 * assembled here from the likelihood and the prior because the local estimators need the layers.
 * w_t is the KL weight of step t (constant, a linear warm-up, or Blundell et al.'s minibatch weighting).
 *
 * The prior is the model's Gaussian prior (analytic KL) or Blundell et al.'s scale mixture
 * pi N(0, s1^2) + (1 - pi) N(0, s2^2) on every network weight (KL by Monte Carlo: -log p(theta') - H[q]
 * with one separate draw theta' ~ q and the analytic entropy). A learned noise scale keeps its
 * N(log sigma0, 1) prior (analytic). Optimiser: Adam (src/optim/transform.ts).
 *
 * Posterior: the last iterate q_t, or with `averageFrom` (which the `bbb`, `bbb-lrt` and `flipout`
 * specs set to half the run) the average of the iterates' means and variances after that step
 * (Polyak-Ruppert averaging, src/vi/meanfield.ts `meanFieldAverageUpdate`). Adam at a fixed step
 * with one weight draw per step does not settle: the iterates jitter around the optimum, and their
 * average is closer to it (the exact-posterior test: mean 0.02 sd off instead of 0.19) and predicted
 * better on held-out digits (docs/priors.md).
 *
 * @example
 * const vi = create(model, { dataSize: N, estimator: "lrt", learningRate: 1e-3 });
 * let state = vi.init(key(0), model.init(key(1)));
 * [state, info] = vi.step(key(2), state, batch);        // inside compile(...)
 * const draws = vi.posterior(state).draws(key(3), 20);  // leaves [20, ...shape]
 */
import { gradientWithAux, lax, np, random, split, type JArray, type Key } from "../core/engine.js";
import { LOG_2PI } from "../core/math.js";
import { normal } from "../core/normal.js";
import { OPTIONS } from "../core/options.js";
import { asSchedule, type Schedule } from "../core/schedule.js";
import { use, type DefaultContext, type OptionUses, type RunPlan } from "../core/spec.js";
import type { Info } from "../core/method.js";
import { keep, leaves, sumAll, type Tree } from "../core/tree.js";
import type { Batch, Model, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import type { DenseFn } from "../models/network.js";
import { gaussianLogPrior, layerList, type PriorSpec } from "../models/prior.js";
import { adam, applyUpdates, type GradientTransformation } from "../optim/transform.js";
import {
  entropyFromSigma,
  klFromSigma,
  likPriorOf,
  meanFieldAverageInit,
  meanFieldAveragePosterior,
  meanFieldAverageUpdate,
  meanFieldInit,
  meanFieldKind,
  meanFieldPosterior,
  meanFieldSigma,
  sampleWithSigma,
  withSigma,
  type LikPrior,
  type MeanField,
  type MeanFieldAverage,
  type MeanFieldSigma,
} from "./meanfield.js";

/** How the expected log-likelihood's gradient is estimated (see the module comment). */
export type Estimator = "reparam" | "lrt" | "flipout";

/**
 * Blundell et al.'s scale-mixture prior on every network weight: pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2)
 * (typically sigma1 > sigma2, e.g. pi = 0.5, sigma1 = 1, sigma2 = e^-6).
 */
export interface ScaleMixturePrior {
  readonly kind: "scaleMixture";
  readonly pi: number;
  readonly sigma1: number;
  readonly sigma2: number;
}

/** The prior of a mean-field method: the model's Gaussian prior spec, or a scale mixture. */
export type VIPrior = PriorSpec | ScaleMixturePrior;

/** Options of {@link create}. */
export interface BbbOptions {
  /** N, the number of training examples. */
  readonly dataSize: number;
  /** Gradient estimator of the expected log-likelihood (default `"reparam"`). */
  readonly estimator?: Estimator;
  /** S, Monte Carlo samples of the expected log-likelihood per step (default 1). */
  readonly samples?: number;
  /** Adam learning rate (default 1e-3); ignored when `optimizer` is given. */
  readonly learningRate?: number | Schedule;
  /** Any gradient transformation over q's parameters (default `adam(learningRate)`). */
  readonly optimizer?: GradientTransformation;
  /** Prior (default the model's Gaussian prior). */
  readonly prior?: VIPrior;
  /**
   * KL weight w_t: a number or a schedule of the step counter (core/schedule.ts: `linearWarmup` for KL
   * annealing, `halvingCycle` for Blundell et al.'s minibatch weighting). Default 1.
   */
  readonly klWeight?: number | Schedule;
  /** Temperature T > 0 of the target p_T (models/model.ts; default 1). */
  readonly temperature?: number;
  /** Initial standard deviation of every weight in q (default 1e-2); the means start at `params`. */
  readonly sigma0?: number;
  /**
   * Steps after which the posterior is the running average of the iterates' means and variances
   * (src/vi/meanfield.ts `meanFieldAverageUpdate`; default: never, the last iterate).
   */
  readonly averageFrom?: number;
}

/**
 * Bayes-by-backprop state: q, the optimiser state, the step counter (float32 scalar) and, with
 * `averageFrom`, the running average of the iterates.
 */
export type BbbState = { q: MeanField; opt: Tree; step: JArray; avg?: MeanFieldAverage };

/**
 * Per-step information: `loss` the minimised objective L per datum (= -ELBO / N at w = 1, T = 1),
 * `nll` the Monte Carlo mean negative log-likelihood per datum, `kl` the KL(q || p) estimate (exact for
 * a Gaussian prior), `klWeight` the w_t used.
 */
export type BbbInfo = { loss: JArray; nll: JArray; kl: JArray; klWeight: JArray };

/** Check an estimator name and that the network supports it. */
export function checkEstimator(model: Model, e: string | undefined): Estimator {
  const est = (e ?? "reparam") as Estimator;
  if (est !== "reparam" && est !== "lrt" && est !== "flipout") {
    throw new RangeError(`bbb: estimator must be "reparam", "lrt" or "flipout", got '${e}'`);
  }
  if (est !== "reparam" && !model.network.applyWith) {
    throw new RangeError(`bbb: estimator '${est}' needs a network with the applyWith layer hook; '${model.network.spec}' has none (use "reparam")`);
  }
  return est;
}

function checkPrior(p: VIPrior): VIPrior {
  if (p.kind === "scaleMixture") {
    if (!(p.pi > 0 && p.pi < 1)) throw new RangeError(`bbb: scale-mixture pi must be in (0, 1), got ${p.pi}`);
    if (!(p.sigma1 > 0 && p.sigma2 > 0)) throw new RangeError(`bbb: scale-mixture sigmas must be > 0, got ${p.sigma1}, ${p.sigma2}`);
  }
  return p;
}

type Layer = { w: JArray; b: JArray };
type QLayer = { mu: Layer; sigma: Layer };

/** The key of the network's dense-layer list (`layers` for MLPs, `dense` for CNNs). */
function denseKey(net: Tree): "layers" | "dense" {
  const p = net as Record<string, unknown>;
  if (Array.isArray(p.layers)) return "layers";
  if (Array.isArray(p.dense)) return "dense";
  throw new TypeError("bbb: unknown parameter layout (expected 'layers' or 'convs' + 'dense')");
}

/** Local reparameterisation of one dense layer (Kingma et al. 2015). Consumes all. */
function lrtDense(k: Key, l: QLayer, h: JArray): JArray {
  const n = h.shape[0];
  const fout = l.mu.w.shape[1];
  const sw = l.sigma.w;
  const sb = l.sigma.b;
  const m = np.matmul(h.ref, l.mu.w).add(l.mu.b);
  const v = np.matmul(h.ref.mul(h), sw.ref.mul(sw)).add(sb.ref.mul(sb));
  return m.add(np.sqrt(v).mul(normal(k, [n, fout])));
}

/** Flipout perturbation of one dense layer (Wen et al. 2018). Consumes all. */
function flipoutDense(k: Key, l: QLayer, h: JArray): JArray {
  const n = h.shape[0];
  const [fin, fout] = l.mu.w.shape;
  const [kw, kb, ki, ko] = split(k, 4);
  const sIn = random.rademacher(ki, { shape: [n, fin], dtype: np.float32 });
  const sOut = random.rademacher(ko, { shape: [n, fout], dtype: np.float32 });
  const dW = l.sigma.w.mul(normal(kw, [fin, fout]));
  const db = l.sigma.b.mul(normal(kb, [fout]));
  const m = np.matmul(h.ref, l.mu.w).add(l.mu.b);
  return m.add(np.matmul(h.mul(sIn), dW).add(db).mul(sOut));
}

/**
 * Network outputs `[n, d]` for one draw from q under an estimator, and the likelihood parameters used
 * (a reparameterised draw, or `undefined`). Consumes `k`, `q` and `x`.
 */
export function sampledOutputs(model: Model, estimator: Estimator, k: Key, q: MeanField, x: JArray): [JArray, Tree | undefined] {
  return sampledOutputsSigma(model, estimator, k, withSigma(q), x);
}

/** {@link sampledOutputs} from `{ mu, sigma }` (consumes all). */
export function sampledOutputsSigma(model: Model, estimator: Estimator, k: Key, q: MeanFieldSigma, x: JArray): [JArray, Tree | undefined] {
  if (estimator === "reparam") {
    const theta = sampleWithSigma(k, q);
    return [model.network.apply(theta.net, x), theta.lik];
  }
  const [kConv, kDense, kLik] = split(k, 3);
  const dk = denseKey(q.mu.net);
  const muNet = q.mu.net as Record<string, Tree>;
  const sigNet = q.sigma.net as Record<string, Tree>;
  const muD = muNet[dk] as Layer[];
  const sigD = sigNet[dk] as Layer[];
  const slots: QLayer[] = muD.map((mu, i) => ({ mu, sigma: sigD[i] }));
  const params: Record<string, Tree> = { [dk]: slots };
  // Non-dense parts (convolutions): plain reparameterised weights, one draw per minibatch.
  const others = Object.keys(muNet).filter((name) => name !== dk);
  const convKeys = split(kConv, Math.max(1, others.length));
  if (others.length === 0) convKeys[0].dispose();
  others.forEach((name, i) => {
    params[name] = sampleWithSigma(convKeys[i], { mu: { net: muNet[name] }, sigma: { net: sigNet[name] } }).net;
  });
  const keys = split(kDense, Math.max(1, slots.length));
  const layerFn = estimator === "lrt" ? lrtDense : flipoutDense;
  const denseFn: DenseFn = (layer, h, i) => layerFn(keys[i], layer as QLayer, h);
  const out = model.network.applyWith!(params, x, denseFn);
  let lik: Tree | undefined;
  if (q.mu.lik !== undefined) lik = sampleWithSigma(kLik, { mu: { net: q.mu.lik }, sigma: { net: q.sigma.lik as Tree } }).net;
  else kLik.dispose();
  return [out, lik];
}

/**
 * Per-example log p(y_i | x_i, theta) `[n]` for one draw theta ~ q under an estimator (for `"lrt"` and
 * `"flipout"` every example has its own effective draw, exactly distributed as q). Consumes all;
 * `q` is `{ mu, sigma }` (see {@link withSigma}).
 */
export function sampledLogLik(model: Model, estimator: Estimator, k: Key, q: MeanFieldSigma, batch: Batch): JArray {
  const [out, lik] = sampledOutputsSigma(model, estimator, k, q, batch.x);
  return model.likelihood.logLik(out, batch.y, lik);
}

/** log of the scale-mixture density summed over a leaf (consumes `th`). */
function mixtureLogDensity(p: ScaleMixturePrior, th: JArray): JArray {
  const sq = th.ref.mul(th);
  const a = sq.ref.mul(-0.5 / (p.sigma1 * p.sigma1)).add(Math.log(p.pi) - Math.log(p.sigma1) - 0.5 * LOG_2PI);
  const b = sq.mul(-0.5 / (p.sigma2 * p.sigma2)).add(Math.log(1 - p.pi) - Math.log(p.sigma2) - 0.5 * LOG_2PI);
  const m = lax.stopGradient(np.maximum(a.ref, b.ref));
  return np.log(np.exp(a.sub(m.ref)).add(np.exp(b.sub(m.ref)))).add(m).sum();
}

/**
 * The prior side of the objective: returns `[kl, reg]` with `kl` an estimate of KL(q || p) and
 * `reg = kl + (1 - T) H[q]` (= -E_q log p(theta) - T H[q]). Analytic for a Gaussian prior; for a scale
 * mixture, -log p(theta') - H[q] with one draw theta' ~ q from `k`. Consumes `k` and `q` (`{ mu, sigma }`).
 */
export function priorTerms(prior: VIPrior, likPrior: LikPrior, temperature: number, k: Key, q: MeanFieldSigma): [JArray, JArray] {
  if (prior.kind === "gaussian") {
    k.dispose();
    if (temperature === 1) {
      const kl = klFromSigma(q, prior, likPrior);
      return [kl.ref, kl];
    }
    const h = entropyFromSigma(keep(q.sigma));
    const kl = klFromSigma(q, prior, likPrior);
    return [kl.ref, kl.add(h.mul(1 - temperature))];
  }
  const h = entropyFromSigma(keep(q.sigma));
  const negLogP = viLogPrior(prior, likPrior, sampleWithSigma(k, q)).mul(-1);
  return [negLogP.ref.sub(h.ref), negLogP.sub(h.mul(temperature))];
}

/**
 * log p(theta) under a {@link VIPrior}: the Gaussian prior of src/models/prior.ts or the scale
 * mixture on every network weight, plus the N(logSigmaMean, 1) prior of a learned `lik.logSigma`.
 * Consumes `theta`.
 */
export function viLogPrior(prior: VIPrior, likPrior: LikPrior, theta: Params): JArray {
  const terms: JArray[] = [];
  if (prior.kind === "gaussian") terms.push(gaussianLogPrior(prior, theta.net));
  else for (const layer of layerList(theta.net)) for (const leaf of leaves(layer)) terms.push(mixtureLogDensity(prior, leaf));
  if (theta.lik !== undefined) {
    for (const ls of leaves(theta.lik)) {
      const size = ls.shape.reduce((a, b) => a * b, 1);
      const d = ls.sub(likPrior.logSigmaMean);
      terms.push(d.ref.mul(d).mul(-0.5).sum().sub(0.5 * LOG_2PI * size));
    }
  }
  return sumAll(terms);
}

/** Defaults of {@link create} (and of the alpha methods), which the specs of the mean-field methods take too. */
export const BBB_DEFAULTS = { learningRate: 1e-3, samples: 1, sigma0: 1e-2 } as const;

/**
 * Adam's learning rate of the bbb specs (bbb, bbb-lrt, flipout) for classification: MAP's 3e-3 beat
 * 1e-3 on validation digits for each, with the iterate average (NLL: bbb 0.116 against 0.144, bbb-lrt
 * 0.134 against 0.144, flipout 0.121 against 0.143; docs/priors.md).
 */
export const BBB_CLASSIFICATION_LR = 3e-3;

/**
 * Build Bayes-by-backprop for a model (see the module comment for the objective and estimators).
 * @param model the model; its network must have `applyWith` for `"lrt"` / `"flipout"`.
 * @param opts see {@link BbbOptions}.
 */
export function create(model: Model, opts: BbbOptions): ModelMethod<BbbState, BbbInfo> {
  const n = opts.dataSize;
  if (!(n > 0)) throw new RangeError(`bbb: dataSize must be > 0, got ${n}`);
  const estimator = checkEstimator(model, opts.estimator);
  const s = opts.samples ?? BBB_DEFAULTS.samples;
  if (!(Number.isInteger(s) && s >= 1)) throw new RangeError(`bbb: samples must be a positive integer, got ${s}`);
  const temp = opts.temperature ?? 1;
  if (!(temp > 0) || !Number.isFinite(temp)) throw new RangeError(`bbb: temperature must be a finite number > 0, got ${temp}`);
  const sigma0 = opts.sigma0 ?? BBB_DEFAULTS.sigma0;
  const prior = checkPrior(opts.prior ?? model.prior);
  const likPrior = likPriorOf(model);
  const weightAt = asSchedule(opts.klWeight ?? 1, "bbb: klWeight");
  const opt = opts.optimizer ?? adam(opts.learningRate ?? BBB_DEFAULTS.learningRate);

  /** L(q) per datum and its parts; consumes everything. */
  const objective = (q: MeanField, k: Key, batch: Batch, w: JArray): [JArray, { loss: JArray; nll: JArray; kl: JArray }] => {
    const keys = split(k, s + 1);
    const qs = withSigma(q); // softplus once per step, shared by the draws and the KL
    let ll: JArray | undefined;
    for (let i = 0; i < s; i++) {
      const b = i === s - 1 ? batch : keep(batch);
      const li = sampledLogLik(model, estimator, keys[i], keep(qs), b).mean();
      ll = ll ? ll.add(li) : li;
    }
    const nll = ll!.mul(-1 / s);
    const [kl, reg] = priorTerms(prior, likPrior, temp, keys[s], qs);
    const l = nll.ref.add(reg.mul(w).mul(1 / n));
    // -ELBO_T / N = (1/T) (nll + w (KL + (1 - T) H) / N)
    const loss = temp === 1 ? l : l.mul(1 / temp);
    return [loss.ref, { loss, nll, kl }];
  };
  const gradFn = gradientWithAux(objective);

  return meanFieldDescent(opt, sigma0, opts.averageFrom, "bbb", (q, k, batch, t) => {
    const w = weightAt(t);
    const [g, aux] = gradFn(q, k, batch, w.ref);
    return [g, { ...aux, klWeight: w }];
  });
}

/**
 * The method of a mean-field q moved by a gradient transformation of (mu, rho) (Adam by default):
 * `grads(q, k, batch, step)` gives the objective's gradient and the step's info (consuming all);
 * with `averageFrom`, the posterior is the running average of the iterates over the steps after it
 * (src/vi/meanfield.ts `meanFieldAverageUpdate`), else the last iterate. Shared by bbb and alpha.
 */
export function meanFieldDescent<I extends Info>(
  opt: GradientTransformation,
  sigma0: number,
  averageFrom: number | undefined,
  who: string,
  grads: (q: MeanField, k: Key, batch: Batch, step: JArray) => [MeanField, I],
): ModelMethod<BbbState, I> {
  const from = averageFrom ?? Infinity;
  if (!(from >= 0)) throw new RangeError(`${who}: averageFrom must be >= 0, got ${from}`);
  return {
    init(k, params) {
      k.dispose();
      const q = meanFieldInit(params, sigma0);
      const base = { q, opt: opt.init(keep(q)), step: np.array(0) };
      return Number.isFinite(from) ? { ...base, avg: meanFieldAverageInit(q) } : base;
    },
    step(k, state, batch) {
      const [g, info] = grads(keep(state.q), k, batch, state.step.ref);
      const [updates, optState] = opt.update(g, state.opt, keep(state.q));
      const q = applyUpdates(state.q, updates);
      const avg = state.avg && meanFieldAverageUpdate(state.avg, state.step.ref, from, keep(q.mu), meanFieldSigma(keep(q.rho)));
      const next = { q, opt: optState, step: state.step.add(1) };
      return [avg ? { ...next, avg } : next, info];
    },
    posterior: (state) => (state.avg ? meanFieldAveragePosterior(keep(state.avg)) : meanFieldPosterior(keep(state.q))),
  };
}

/** Options of the Bayes-by-backprop methods. */
export interface BbbSpecOptions {
  epochs: number;
  samples: number;
  temperature: number;
  lr: number;
  mc: number;
  initStd: number;
}

/** The options of the mean-field methods trained with Adam for `epochs` (initial sd `initStd`). */
export function meanFieldRunOptions(mc: number): OptionUses<BbbSpecOptions> {
  return {
    epochs: use(OPTIONS.epochs, 20),
    samples: use(OPTIONS.samples, 20),
    temperature: use(OPTIONS.temperature, 1),
    lr: use(OPTIONS.lr, BBB_DEFAULTS.learningRate),
    mc: use(OPTIONS.mc, mc),
    initStd: use(OPTIONS.initStd, BBB_DEFAULTS.sigma0),
  };
}

/**
 * Where the mean-field methods trained by gradient steps start averaging their iterates: half-way
 * through the run. Adam's iterates at the default step keep moving with the minibatch and draw
 * noise; their average over the second half predicted better than the last iterate (held-out
 * digits, bbb: docs/priors.md).
 */
export function secondHalf(epochs: number, stepsPerEpoch: number): number {
  return Math.floor((epochs * stepsPerEpoch) / 2);
}

/** The run of a variational method: `epochs` of minibatch steps, then `samples` draws from q. */
export function variationalPlan(o: { epochs: number; samples: number }): RunPlan {
  return { collect: "final", epochs: o.epochs, draws: o.samples };
}

/**
 * The spec of Bayes-by-backprop with one of its estimators: Adam at {@link BBB_CLASSIFICATION_LR} for
 * classification, {@link BBB_DEFAULTS} for regression.
 */
export function bbbSpec(name: string, estimator: Estimator, summary: string, paper: string): ModelMethodSpec<BbbSpecOptions> {
  return {
    name,
    family: "vi",
    summary,
    paper,
    cost: "1x MAP in gradient evaluations (20 epochs, one weight draw per step), each step heavier (twice the parameters, the draw)",
    options: {
      ...meanFieldRunOptions(BBB_DEFAULTS.samples),
      // Validated with bbb on 6,000 / 2,000 of the training digits (docs/priors.md): T = 0.1 beat T = 1
      // and T = 0.03 on validation NLL, error and ECE; regression keeps T = 1.
      temperature: use(OPTIONS.temperature, (c: DefaultContext) => (c.classification ? 0.1 : 1), "classification 0.1 (KL down-weighted, chosen on training digits: docs/priors.md); regression 1"),
      lr: use(OPTIONS.lr, (c: DefaultContext) => (c.classification ? BBB_CLASSIFICATION_LR : BBB_DEFAULTS.learningRate), `classification ${BBB_CLASSIFICATION_LR} (chosen on training digits: docs/priors.md); regression ${BBB_DEFAULTS.learningRate}`),
    },
    kinds: [meanFieldKind],
    plan: variationalPlan,
    build: (ctx, o) => create(ctx.model, { dataSize: ctx.dataSize, estimator, samples: o.mc, learningRate: o.lr, temperature: ctx.temperature, sigma0: o.initStd, averageFrom: secondHalf(o.epochs, ctx.stepsPerEpoch) }),
  };
}

/** `--method bbb`. */
export const spec = bbbSpec(
  "bbb",
  "reparam",
  "Bayes-by-backprop: mean-field Gaussian q, reparameterised weight draws, analytic KL",
  "Blundell, Cornebise, Kavukcuoglu & Wierstra 2015, Weight uncertainty in neural networks",
);
