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
import { keep, np, valueAndGrad, type JArray, type Key, type Tree } from "../core/engine.js";
import { adam, applyUpdates, type GradientTransformation } from "../optim/transform.js";
import type { Family, FlatLogDensity } from "./family.js";

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
  readonly learningRate?: number;
  /** Any gradient transformation (src/optim/transform.ts); default `adam(learningRate)`. */
  readonly optimizer?: GradientTransformation;
  /** N: only scales the reported `loss` to -ELBO / N (per training point, like the samplers' loss). */
  readonly dataSize?: number;
  /** Entropy estimator (default `auto`). */
  readonly entropy?: EntropyMode;
}

/** An ADVI run in the shared `{ init, step }` shape, plus `sample`. */
export interface Advi<Q extends Tree = Tree, B = unknown> {
  /** The starting state from initial variational parameters `q0` (consumed; e.g. `family.init(...)`). Consumes `key`. */
  init(key: Key, q0: Q): AdviState<Q>;
  /** One optimiser step on -ELBO^. Consumes `key`, `state` and `batch`. Traceable: wrap in `compile`. */
  step(key: Key, state: AdviState<Q>, batch: B): [AdviState<Q>, AdviInfo];
  /** `n` draws `[n, d]` from the current q. Consumes `key`; borrows `state`. */
  sample(key: Key, state: AdviState<Q>, n: number): JArray;
}

/** Add a reference to every array leaf (the caller keeps its copy). */
function keepQ<T>(t: T): T {
  return keep(t as Tree) as T;
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
    tail = family.entropy!(keepQ(q));
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
  for (let i = 0; i < n - 1; i++) out.push(keepQ(batch));
  out.push(batch);
  return out;
}

/**
 * Build ADVI for a flat target density.
 *
 *   phi_{t+1} = phi_t + optimizer(-grad_phi ELBO^(phi_t; eps_t, batch_t))
 *
 * @param logDensity log p(theta, batch) over `[d]` vectors (src/vi/flat.ts `flatLogDensity` turns a
 *   model's pytree `logDensity` into one).
 * @example
 * const fam = fullRank(d);
 * const advi = create(target, { family: fam, samples: 4, learningRate: 1e-2 });
 * let state = advi.init(key(0), fam.init(key(1), np.zeros([d]), 1));
 * const step = compile(advi.step, { consume: [0, 1, 2] });
 * [state, info] = step(key(2), state, batch);
 * const draws = advi.sample(key(3), state, 1000);   // [1000, d]
 */
export function create<Q extends Tree, B = unknown>(logDensity: FlatLogDensity<B>, opts: AdviOptions<Q>): Advi<Q, B> {
  const family = opts.family;
  const samples = opts.samples ?? 1;
  const mode = opts.entropy ?? "auto";
  const n = opts.dataSize ?? 1;
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`advi: samples must be a positive integer, got ${opts.samples}`);
  if (!(n > 0)) throw new RangeError(`advi: dataSize must be > 0, got ${opts.dataSize}`);
  if (mode === "closed" && family.entropy === undefined) throw new TypeError(`advi: family '${family.name}' has no closed-form entropy`);
  let optimizer = opts.optimizer;
  if (optimizer === undefined) {
    if (opts.learningRate === undefined) throw new RangeError("advi: give learningRate (for the default Adam) or optimizer");
    optimizer = adam(opts.learningRate);
  }
  const opt = optimizer;
  return {
    init(k, q0) {
      k.dispose();
      return { q: q0, opt: opt.init(keepQ(q0)), step: np.array(0) };
    },
    step(k, state, batch) {
      const negElbo = (q: Q) => elboEstimate(k, logDensity, family, q, batch, samples, mode).mul(-1);
      const [value, g] = valueAndGrad(negElbo as (q: Tree) => JArray)(keepQ(state.q) as never) as unknown as [JArray, Q];
      const [updates, optState] = opt.update(g, state.opt, keepQ(state.q));
      const q = applyUpdates(state.q, updates) as Q;
      const elbo = value.mul(-1);
      return [{ q, opt: optState, step: state.step.add(1) }, { loss: elbo.ref.mul(-1 / n), elbo }];
    },
    sample(k, state, count) {
      return family.sample(k, keepQ(state.q), count);
    },
  };
}
