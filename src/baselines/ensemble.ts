/**
 * Deep ensembles (Lakshminarayanan et al. 2017, "Simple and scalable predictive uncertainty estimation
 * using deep ensembles"): M networks from independent initialisations, each trained to a MAP estimate
 * on its own shuffle of the data; the predictive averages their predictive distributions.
 *
 * All members advance in one jitted call: the MAP step replicated over a leading member axis
 * (core/replicate.ts; `batching` picks side-by-side tracing or `vmap`). Minibatches arrive stacked as
 * `[M, n, ...]`, one shuffle per member.
 */
import { replicate, stackTrees, type Batching, type Replicated } from "../core/replicate.js";
import { split, tree, type Key } from "../core/engine.js";
import type { Batch, LogDensityFn, Model, Params } from "../models/model.js";
import { create as createMap, type MapInfo, type MapOptions, type MapState } from "./map.js";

/** Options of {@link create}: MAP's, plus the number of members and the batching. */
export interface EnsembleOptions extends MapOptions {
  readonly members: number;
  /** Default `"auto"`: `vmap` for small networks, side-by-side tracing for large ones. */
  readonly batching?: Batching;
  /** Parameters per member (for `"auto"`). */
  readonly paramCount?: number;
}

/** Ensemble state: the members' MAP states. */
export type EnsembleState = Replicated<MapState>;

/** Ensemble method in the shared `{init, step}` shape, plus the stacked parameters of a state. */
export interface EnsembleMethod {
  readonly members: number;
  /** `params` stacked on a leading member axis (see {@link initMembers}); consumed. */
  init(key: Key, params: Params): EnsembleState;
  /** One MAP step for every member; `batch` is `[M, n, ...]`; `info.loss` is `[M]`. */
  step(key: Key, state: EnsembleState, batch: Batch): [EnsembleState, MapInfo];
  /** The members' parameters stacked on a leading axis (consumes the state). */
  params(state: EnsembleState): Params;
}

/** Build a deep-ensemble trainer over `members` MAP runs stepped together. */
export function create(logDensity: LogDensityFn, opts: EnsembleOptions): EnsembleMethod {
  const rep = replicate(createMap(logDensity, opts), opts.members, opts.batching ?? "auto", opts.paramCount ?? Infinity);
  return {
    members: opts.members,
    init: (k, params) => rep.init(k, params),
    step: (k, state, batch) => rep.step(k, state, batch),
    params(state) {
      const s = rep.stacked(state);
      tree.dispose([s.opt, s.step]);
      return s.params;
    },
  };
}

/** Independent initialisations for `members` copies of a model, stacked on a leading axis. */
export function initMembers(model: Model, k: Key, members: number): Params {
  return stackTrees(split(k, members).map((ki) => model.init(ki)));
}

export { stackTrees, unstackTree } from "../core/replicate.js";
