/**
 * Automatic differentiation variational inference (Kucukelbir, Tran, Ranganath, Gelman & Blei 2017,
 * "Automatic differentiation variational inference", JMLR 18) over a flat parameter vector, for any
 * {@link Family} of src/vi/family.ts (Gaussian families of src/vi/gaussian.ts, flows and mixtures).
 *
 * Objective (maximised; the step descends its negative):
 *
 *   ELBO(phi) = E_{q_phi}[ log p(theta, batch) ] + H[q_phi]
 *
 * estimated with S reparameterised draws theta_s = T_phi(eps_s) (Kingma & Welling 2014, "Auto-encoding
 * variational Bayes"; Titsias & Lazaro-Gredilla 2014, "Doubly stochastic variational Bayes for
 * non-conjugate inference"):
 *
 *   ELBO^ = (1/S) sum_s log p(theta_s, batch) + H[q_phi]                    (closed-form entropy)
 *   ELBO^ = (1/S) sum_s [ log p(theta_s, batch) - log q_phi(theta_s) ]     (otherwise)
 *
 * Both are unbiased for the ELBO when log p(theta, batch) is unbiased for log p(theta | data) up to a
 * constant (the model's minibatch `logDensity` is), and their gradients in phi are unbiased for the
 * ELBO's gradient. phi is updated by an optax-style optimiser (Adam by default) on -ELBO^.
 */
import { np, valueAndGradient, type JArray, type Key } from "../core/engine.js";
import type { Schedule } from "../core/schedule.js";
import type { InferenceMethod } from "../core/method.js";
import { keep, type Tree } from "../core/tree.js";
import { adam, applyUpdates, type GradientTransformation } from "../optim/transform.js";
import { familyPosterior, type Family, type FlatLogDensity } from "./family.js";

/** ADVI state: variational parameters, optimiser state and the step counter (float32 scalar). */
export type AdviState<Q extends Tree = Tree> = { q: Q; opt: Tree; step: JArray };

/** Per-step information: `loss` = -ELBO^ / dataSize (dataSize 1 unless given), and the raw `elbo` estimate. */
export type AdviInfo = { loss: JArray; elbo: JArray };

/** How the entropy term is estimated: closed form when the family has one (`auto`), or always by sampling. */
export type EntropyMode = "auto" | "closed" | "sampled";

/** Options of {@link create}. */
export interface AdviOptions<Q extends Tree = Tree> {
  /** The variational family (src/vi/gaussian.ts, src/vi/flows.ts, ...). */
  readonly family: Family<Q>;
  /** S, reparameterised draws per step (default 1). */
  readonly samples?: number;
  /** Adam learning rate; required unless `optimizer` is given (then ignored). */
  readonly learningRate?: number | Schedule;
  /** Any gradient transformation (src/optim/transform.ts); default `adam(learningRate)`. */
  readonly optimizer?: GradientTransformation;
  /** N: only scales the reported `loss` to -ELBO / N (per training point, like the samplers' loss). */
  readonly dataSize?: number;
  /** Entropy estimator (default `auto`). */
  readonly entropy?: EntropyMode;
  /** Scale of q at `init` around the given mean (default 1e-2; `family.init`'s scale). */
  readonly initScale?: number;
}

/**
 * The reparameterised ELBO estimate (see the module comment) with `samples` draws from q.
 * Consumes `key`, `q` and `batch`. Traceable and differentiable in `q`.
 *
 * @param entropy `auto` (default): closed-form H[q] when `family.entropy` exists, else
 *   -(1/S) sum log q(theta_s) from `family.sampleAndLogProb`; `sampled` forces the second;
 *   `closed` requires the first.
 * @example
 * const elbo = elboEstimate(key(0), target, fullRank(5), keep(q), batch, 16);
 */
export function elboEstimate<Q extends Tree, B>(
  key: Key,
  logDensity: FlatLogDensity<B>,
  family: Family<Q>,
  q: Q,
  batch: B,
  samples: number,
  entropy: EntropyMode = "auto",
): JArray {
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`elboEstimate: samples must be a positive integer, got ${samples}`);
  const closed = entropy === "closed" || (entropy === "auto" && family.entropy !== undefined);
  if (closed && family.entropy === undefined) throw new TypeError(`elboEstimate: family '${family.name}' has no closed-form entropy (entropy: "closed")`);
  let theta: JArray;
  let tail: JArray; // H[q], or (1/S) sum -log q(theta_s)
  if (closed) {
    tail = family.entropy!(keep(q));
    theta = family.sample(key, q, samples);
  } else {
    const [t, lq] = family.sampleAndLogProb(key, q, samples);
    theta = t;
    tail = lq.mean().mul(-1);
  }
  // The draws go through the target one at a time (S is small): vmapping a model over the draw axis
  // turns its weight matmuls into batched matmuls over mapped weights, which jax-js runs slowly.
  const batches = batchCopies(batch, samples);
  let sum: JArray | undefined;
  for (let s = 0; s < samples; s++) {
    const th = s === samples - 1 ? theta.slice(s) : theta.ref.slice(s);
    const lp = logDensity(th, batches[s]);
    sum = sum === undefined ? lp : sum.add(lp);
  }
  return sum!.mul(1 / samples).add(tail);
}

/** `n` owned references to `batch` (its array leaves get n - 1 extra references). */
function batchCopies<B>(batch: B, n: number): B[] {
  const out: B[] = [];
  for (let i = 0; i < n - 1; i++) out.push(keep(batch));
  out.push(batch);
  return out;
}

/**
 * Build ADVI for a flat target density.
 *
 *   phi_{t+1} = phi_t + optimizer(-grad_phi ELBO^(phi_t; eps_t, batch_t))
 *
 * `init(key, theta)` starts q at `family.init(key, theta, initScale)`; the posterior draws `[n, d]`.
 * @param logDensity log p(theta, batch) over `[d]` vectors (core/ravel.ts `flatLogDensity` turns a
 *   model's pytree `logDensity` into one, and `onParams` the method into one on parameter trees).
 * @example
 * const advi = create(target, { family: fullRank(d), samples: 4, learningRate: 1e-2, initScale: 1 });
 * let state = advi.init(key(0), np.zeros([d]));
 * const step = compile(advi.step, { consume: [0, 1, 2] });
 * [state, info] = step(key(2), state, batch);
 * const draws = advi.posterior(state).draws(key(3), 1000);   // [1000, d]
 */
export function create<Q extends Tree, B = unknown>(logDensity: FlatLogDensity<B>, opts: AdviOptions<Q>): InferenceMethod<AdviState<Q>, AdviInfo, JArray, B> {
  const family = opts.family;
  const samples = opts.samples ?? 1;
  const mode = opts.entropy ?? "auto";
  const n = opts.dataSize ?? 1;
  const scale0 = opts.initScale ?? 1e-2;
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`advi: samples must be a positive integer, got ${opts.samples}`);
  if (!(n > 0)) throw new RangeError(`advi: dataSize must be > 0, got ${opts.dataSize}`);
  if (!(scale0 > 0)) throw new RangeError(`advi: initScale must be > 0, got ${opts.initScale}`);
  if (mode === "closed" && family.entropy === undefined) throw new TypeError(`advi: family '${family.name}' has no closed-form entropy`);
  let optimizer = opts.optimizer;
  if (optimizer === undefined) {
    if (opts.learningRate === undefined) throw new RangeError("advi: give learningRate (for the default Adam) or optimizer");
    optimizer = adam(opts.learningRate);
  }
  const opt = optimizer;
  return {
    init(k, theta) {
      const q = family.init(k, theta, scale0);
      return { q, opt: opt.init(keep(q)), step: np.array(0) };
    },
    step(k, state, batch) {
      const negElbo = (q: Q) => elboEstimate(k, logDensity, family, q, batch, samples, mode).mul(-1);
      const [value, g] = valueAndGradient(negElbo)(keep(state.q));
      const [updates, optState] = opt.update(g, state.opt, keep(state.q));
      const q = applyUpdates(state.q, updates);
      const elbo = value.mul(-1);
      return [{ q, opt: optState, step: state.step.add(1) }, { loss: elbo.ref.mul(-1 / n), elbo }];
    },
    posterior: (state) => familyPosterior(family, keep(state.q)),
  };
}
