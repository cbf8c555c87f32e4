/**
 * Variational families over a flat parameter vector theta in R^d: the shared interface that
 * ADVI (src/vi/advi.ts), flow VI, and score-based VI (src/scorevi/) are written against.
 *
 * A family is a set of pure, traceable functions over its variational parameters `q` (a pytree).
 * Every function consumes its array arguments (jax-js move semantics; `.ref` what you reuse).
 *
 * Network-scale mean-field VI (Bayes-by-backprop and friends) keeps parameters as pytrees instead
 * (src/vi/meanfield.ts); this interface is for targets, small models and last layers, where
 * d is at most a few thousand.
 */
import type { JArray, Key, Tree } from "../core/engine.js";

/** A variational family q_phi(theta) over R^d. */
export interface Family<Q extends Tree = Tree> {
  /** Short name recorded in posterior.json (`"fullrank"`, `"lowrank"`, `"diag"`, `"realnvp"`, ...). */
  readonly name: string;
  /** Dimension d of theta. */
  readonly dim: number;
  /** Initial variational parameters around `mean` (shape `[d]`, consumed) with scale `scale`. */
  init(key: Key, mean: JArray, scale: number): Q;
  /**
   * `n` reparameterised draws, shape `[n, d]`: differentiable with respect to `q`
   * (theta = T_phi(eps), eps from a fixed base distribution). Consumes `key` and `q`.
   */
  sample(key: Key, q: Q, n: number): JArray;
  /** log q(theta) for theta `[n, d]`, shape `[n]`. Consumes both. */
  logProb(q: Q, theta: JArray): JArray;
  /** Draws and their log density in one pass (cheaper for flows). Consumes `key` and `q`. */
  sampleAndLogProb(key: Key, q: Q, n: number): [JArray, JArray];
  /** Entropy H[q], where it has a closed form. Consumes `q`. */
  entropy?(q: Q): JArray;
  /** KL(qa || qb), where it has a closed form. Consumes both. */
  kl?(qa: Q, qb: Q): JArray;
  /** Mean `[d]` and covariance `[d, d]`, where the family is Gaussian. Consumes `q`. */
  moments?(q: Q): [JArray, JArray];
}

/** A target log density over flat vectors: theta `[d]` -> scalar. Consumes its arguments. */
export type FlatLogDensity<B = unknown> = (theta: JArray, batch: B) => JArray;
