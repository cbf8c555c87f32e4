/**
 * The inference contract: every method of every family (baselines, SG-MCMC, variational, score-based
 * VI, and the families to come) is one {@link InferenceMethod}, and every fit hands one
 * {@link Posterior} to evaluation, prediction and saving.
 *
 * A method is a pair of pure functions over an explicit, immutable state (blackjax's shape):
 *
 *   state0 = init(key, params)
 *   [state_{t+1}, info_t] = step(key_t, state_t, batch_t)
 *   posterior(state) -> what the state says about the parameters (a point mass, a set of draws, or q)
 *
 * `step` is traceable (`jit`, `vmap`) and consumes its arguments; `info.loss` is the scalar objective the
 * driver reads every step (the negative log density per training point for samplers, the minimised
 * objective for optimisers and VI), so every method can be checked for divergence the same way.
 * Parameters are pytrees at the edges; flat methods (dense Gaussians, flows, GSM, BaM) work on one
 * vector and reach pytree parameters through the ravel adapter of core/ravel.ts.
 */
import type { JArray, Key } from "./engine.js";
import type { Tree } from "./tree.js";

/** Per-step information: scalars (or per-copy vectors for replicated methods), `loss` always present. */
export type Info = { readonly loss: JArray } & { readonly [name: string]: JArray };

/**
 * An inference method over parameters `P`, minibatches `B`, with state `S` and per-step info `I`.
 * All three functions consume their array arguments except `posterior`, which borrows the state.
 */
export interface InferenceMethod<S extends Tree = Tree, I extends Info = Info, P = Tree, B = unknown> {
  /** The starting state around `params` (consumed). Consumes the key. */
  init(key: Key, params: P): S;
  /** One update. Pure and traceable; consumes the key, the state and the batch. */
  step(key: Key, state: S, batch: B): [S, I];
  /** The posterior a state represents (borrows the state; the result holds its own references). */
  posterior(state: S): Posterior<P>;
}

/** A named host tensor (no sample axis unless its name's owner says so). */
export interface NamedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * A predictive in function space for a block of inputs, from posteriors that predict without applying
 * the network to weight draws (the linearised Laplace predictive):
 * - classification: p(y | x) `[m, k]` and the mean entropy of the per-draw class distributions `[m]`
 *   (the aleatoric part of the predictive entropy);
 * - regression: an equal-weight mixture of `S` Gaussians per input, means and standard deviations
 *   `[S, m]` in the model's (standardised) units; `S = 1` for a closed-form Gaussian predictive.
 */
export type OutputPredictive =
  | { readonly kind: "categorical"; readonly probs: JArray; readonly meanEntropy: JArray }
  | { readonly kind: "gaussian"; readonly means: JArray; readonly stds: JArray };

/**
 * What a fit returns and evaluation loads: a set of draws (MAP, ensembles, SG-MCMC), or a distribution
 * that draws (variational q, Laplace).
 */
export interface Posterior<P = Tree> {
  /** `"samples"` for a set of draws; the family name of a distribution (`"meanfield"`, `"fullrank"`, ...). */
  readonly kind: string;
  /** What rebuilding it needs besides its tensors (family options such as a flow's layer count). */
  readonly options: Readonly<Record<string, unknown>>;
  /** Number of stored draws of a sample set; `undefined` for a distribution. */
  readonly size: number | undefined;
  /**
   * A distribution that holds a fixed set of samples (sampled Laplace) draws at most this many; absent
   * when `draws` can make any number.
   */
  readonly maxDraws?: number;
  /**
   * Draws stacked on a new leading axis of every leaf (the caller owns them). A sample set returns its
   * stored draws (`n`, when given, must equal `size`); a distribution draws `n` fresh ones. Consumes the key.
   */
  draws(key: Key, n?: number): P;
  /**
   * Host copies of what defines it: the distribution's parameters, named as they are saved (e.g.
   * `mu.net.layers.0.w`); a sample set's draws, one tensor per leaf with the leading sample axis.
   */
  tensors(): Promise<NamedTensor[]>;
  /**
   * Posteriors whose predictive is not the network averaged over weight draws (linearised Laplace):
   * the predictive at inputs `x` `[m, ...inputShape]`. Evaluation and prediction use it when present,
   * and `draws` otherwise. Consumes the key and `x`.
   */
  predict?(key: Key, x: JArray): OutputPredictive;
  /** Release its arrays. */
  dispose(): void;
}

/**
 * How a saved posterior of one kind is rebuilt: from the model's parameter template, options and
 * tensors, and the model `M` itself for kinds that predict through the network (Laplace).
 */
export interface PosteriorKind<P = Tree, M = unknown> {
  readonly kind: string;
  /** Borrows `template` (only shapes are read); the tensors are uploaded. */
  load(template: P, options: Readonly<Record<string, unknown>>, tensors: readonly NamedTensor[], model: M): Posterior<P>;
}
