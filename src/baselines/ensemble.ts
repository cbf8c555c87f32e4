/**
 * Deep ensembles (Lakshminarayanan et al. 2017, "Simple and scalable predictive uncertainty estimation
 * using deep ensembles"): M networks from independent initialisations, each trained to a MAP estimate
 * on its own shuffle of the data; the predictive averages their predictive distributions.
 *
 * All members advance in one jitted call: the MAP step is `vmap`ped over a leading member axis of the
 * parameters, optimiser state, keys and minibatches (`batch.x` is `[M, n, ...]`).
 */
import { random, split, vmap, keep, np, type Key } from "../core/engine.js";
import type { Batch, LogDensityFn, Model, Params } from "../models/model.js";
import { create as createMap, type MapInfo, type MapOptions, type MapState } from "./map.js";

/** Options of {@link create}: MAP's, plus the number of members. */
export interface EnsembleOptions extends MapOptions {
  readonly members: number;
}

/** Ensemble method: states and batches carry a leading member axis. */
export interface EnsembleMethod {
  readonly members: number;
  init(key: Key, params: Params): MapState;
  step(key: Key, state: MapState, batch: Batch): [MapState, MapInfo];
}

/** Build a deep ensemble trainer over `members` MAP runs stepped together. */
export function create(logDensity: LogDensityFn, opts: EnsembleOptions): EnsembleMethod {
  const m = opts.members;
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`ensemble: members must be a positive integer, got ${m}`);
  const inner = createMap(logDensity, opts);
  const vinit = vmap((k: Key, p: Params) => inner.init(k, p) as never, [0, 0]);
  const vstep = vmap((k: Key, s: MapState, b: Batch) => inner.step(k, s, b) as never, [0, 0, 0]);
  return {
    members: m,
    init(k, params) {
      return vinit(random.split(k, m), params as never) as unknown as MapState;
    },
    step(k, state, batch) {
      return vstep(random.split(k, m), state as never, batch as never) as unknown as [MapState, MapInfo];
    },
  };
}

/** Independent initialisations for `members` copies of a model, stacked on a leading axis. */
export function initMembers(model: Model, k: Key, members: number): Params {
  const inits = split(k, members).map((ki) => model.init(ki));
  return stackTrees(inits) as Params;
}

/** Stack same-shaped pytrees leafwise along a new leading axis (consumes them). */
export function stackTrees<T>(trees: T[]): T {
  const [first, ...rest] = trees;
  return mapTree((...leaves) => np.stack(leaves), first, ...rest) as T;
}

import { tree, type JArray } from "../core/engine.js";
function mapTree(f: (...xs: JArray[]) => JArray, ...ts: unknown[]): unknown {
  return tree.map(f as never, ts[0] as never, ...(ts.slice(1) as never[]));
}
export { keep };
