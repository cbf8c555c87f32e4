/**
 * Variational families over a flat parameter vector theta in R^d: the shared interface that ADVI
 * (src/vi/advi.ts), flow VI and score-based VI (src/scorevi/) are written against, and the posterior
 * such a q defines over a model's parameters.
 *
 * A family is a set of pure, traceable functions over its variational parameters `q` (a pytree).
 * Every function consumes its array arguments (jax-js move semantics; `.ref` what you reuse).
 *
 * Network-scale mean-field VI (Bayes-by-backprop and friends) keeps parameters as pytrees instead
 * (src/vi/meanfield.ts); this interface is for targets, small models and last layers, where d is at
 * most a few thousand. Flat parameter vectors follow core/ravel.ts (sorted leaf paths).
 */
import { key, np, type JArray, type Key } from "../core/engine.js";
import type { Posterior, PosteriorKind } from "../core/method.js";
import { distribution, mapDraws, tensorsToTree, treeToTensors } from "../core/posterior.js";
import { flatLogDensity, unraveler, unravelRows, type FlatLogDensity, type Unravel } from "../core/ravel.js";
import { free, keep, type Tree } from "../core/tree.js";
import type { Params } from "../models/model.js";

export type { FlatLogDensity } from "../core/ravel.js";

/** A variational family q_phi(theta) over R^d. */
export interface Family<Q extends Tree = Tree> {
  /** Short name recorded in posterior.json (`"fullrank"`, `"lowrank"`, `"diag"`, `"realnvp"`, ...). */
  readonly name: string;
  /** Dimension d of theta. */
  readonly dim: number;
  /** What rebuilding the family needs besides d (a flow's layer count and width); saved with q. */
  readonly options?: Readonly<Record<string, number | string>>;
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

/** The posterior of a flat family's q (consumed): draws `[n, d]`, saved as tensors `q.<path in q>`. */
export function familyPosterior<Q extends Tree>(family: Family<Q>, q: Q): Posterior<JArray> {
  return distribution({
    kind: family.name,
    options: family.options ?? {},
    q,
    draw: (k, qq, n) => family.sample(k, keep(qq), n),
    tensors: (qq) => treeToTensors(qq, "q"),
  });
}

/**
 * How saved q's of a flat family are rebuilt over a model's parameters: `make(d, options)` gives the
 * family; its `init` at zeros gives q's shapes.
 */
export function flatKind(name: string, make: (d: number, options: Readonly<Record<string, unknown>>) => Family): PosteriorKind<Params> {
  return {
    kind: name,
    load(template, options, tensors) {
      const unravel = unraveler(template);
      const family = make(unravel.size, options);
      const shapes = family.init(key(0), np.zeros([unravel.size]), 1);
      try {
        return onTemplate(familyPosterior(family, tensorsToTree(shapes, tensors, "q")), unravel);
      } finally {
        free(shapes);
      }
    },
  };
}

/** A posterior over flat vectors as one over the parameter trees of `unravel`'s template. */
export function onTemplate<P>(p: Posterior<JArray>, unravel: Unravel<P>): Posterior<P> {
  return mapDraws(p, (rows) => unravelRows(unravel, rows));
}

/** Largest parameter count the flat (dense Gaussian or flow) families accept. */
export const FLAT_MAX_DIM = 3000;

/**
 * A model's tempered log density over flat vectors, and the unravel back to its parameter trees, for a
 * method keeping a dense or flow q over all `d` parameters (at most {@link FLAT_MAX_DIM}).
 * @throws naming the method, d and what to use instead.
 */
export function flatTarget<B>(method: string, ctx: { readonly logDensity: (p: Params, b: B) => JArray; readonly template: Params }): { logDensity: FlatLogDensity<B>; unravel: Unravel<Params>; d: number } {
  const flat = flatLogDensity(ctx.logDensity, ctx.template);
  const d = flat.unravel.size;
  if (d > FLAT_MAX_DIM) {
    throw new RangeError(
      `method ${method} keeps a dense or flow q over all ${d} parameters of this model, more than the ${FLAT_MAX_DIM} it allows; use a smaller model (e.g. --model mlp:50 on UCI data) or a mean-field method (bbb, bbb-lrt, flipout, alpha, proximal-svi)`,
    );
  }
  return { logDensity: flat, unravel: flat.unravel, d };
}
