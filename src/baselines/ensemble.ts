/**
 * Deep ensembles (Lakshminarayanan et al. 2017, "Simple and scalable predictive uncertainty estimation
 * using deep ensembles"): M networks from independent initialisations, each trained to a MAP estimate
 * on its own shuffle of the data; the predictive averages their predictive distributions.
 *
 * All members advance in one jitted call. Two batchings of that call, same results:
 * - `"unroll"` (default): the state is a list of member states and the step traces each member's MAP
 *   update side by side. Each member's matmuls stay ordinary 2-D matmuls.
 * - `"vmap"`: the state is stacked on a leading member axis and the MAP step is `vmap`ped.
 *   jax-js 0.1.25's batching rule for `dot` moves the mapped axis next to the contraction axis and
 *   the output's mapped axis last, a layout its Wasm matmul kernel does not tile: a vmapped
 *   [128,784]x[784,400] matmul over 5 members takes ~600 ms against 17 ms for five plain ones
 *   (measured here). Use it for small networks where per-call overhead, not matmul, dominates.
 * Minibatches arrive stacked as `[M, n, ...]` in both cases.
 */
import { random, split, tree, vmap, np, type JArray, type Key } from "../core/engine.js";
import type { Batch, LogDensityFn, Model, Params } from "../models/model.js";
import { create as createMap, type MapInfo, type MapOptions, type MapState } from "./map.js";

/** How the members are batched into one jitted step (see the module comment). */
export type MemberBatching = "unroll" | "vmap";

/** Options of {@link create}: MAP's, plus the number of members and the batching. */
export interface EnsembleOptions extends MapOptions {
  readonly members: number;
  readonly batching?: MemberBatching;
}

/** Ensemble state: member states as a list (`unroll`) or stacked on a leading axis (`vmap`). */
export type EnsembleState = { members: MapState[] } | { stacked: MapState };

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
  const m = opts.members;
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`ensemble: members must be a positive integer, got ${m}`);
  const inner = createMap(logDensity, opts);
  if ((opts.batching ?? "unroll") === "vmap") {
    const vinit = vmap((k: Key, p: Params) => inner.init(k, p) as never, [0, 0]);
    const vstep = vmap((k: Key, s: MapState, b: Batch) => inner.step(k, s, b) as never, [0, 0, 0]);
    return {
      members: m,
      init: (k, params) => ({ stacked: vinit(random.split(k, m), params as never) as unknown as MapState }),
      step(k, state, batch) {
        const [s, info] = vstep(random.split(k, m), (state as { stacked: MapState }).stacked as never, batch as never) as unknown as [MapState, MapInfo];
        return [{ stacked: s }, info];
      },
      params(state) {
        const s = (state as { stacked: MapState }).stacked;
        tree.dispose([s.opt, s.step]);
        return s.params;
      },
    };
  }
  return {
    members: m,
    init(k, params) {
      const keys = split(k, m);
      const list = unstackTree(params, m);
      return { members: list.map((p, i) => inner.init(keys[i], p)) };
    },
    step(k, state, batch) {
      const keys = split(k, m);
      const states = (state as { members: MapState[] }).members;
      const out: MapState[] = [];
      const losses: JArray[] = [];
      states.forEach((s, i) => {
        const [s2, info] = inner.step(keys[i], s, { x: batch.x.ref.slice(i), y: batch.y.ref.slice(i) });
        out.push(s2);
        losses.push(info.loss.reshape([1]));
      });
      batch.x.dispose();
      batch.y.dispose();
      return [{ members: out }, { loss: np.concatenate(losses) }];
    },
    params(state) {
      const states = (state as { members: MapState[] }).members;
      tree.dispose(states.map((s) => [s.opt, s.step]));
      return stackTrees(states.map((s) => s.params));
    },
  };
}

/** Independent initialisations for `members` copies of a model, stacked on a leading axis. */
export function initMembers(model: Model, k: Key, members: number): Params {
  return stackTrees(split(k, members).map((ki) => model.init(ki)));
}

/** Stack same-shaped pytrees leafwise along a new leading axis (consumes them). */
export function stackTrees<T>(trees: T[]): T {
  const [first, ...rest] = trees;
  return tree.map(((...leaves: JArray[]) => np.stack(leaves)) as never, first as never, ...(rest as never[])) as T;
}

/** Split a stacked pytree into `m` trees along the leading axis (consumes it). */
export function unstackTree<T>(t: T, m: number): T[] {
  const out = Array.from({ length: m }, (_, i) => tree.map(((a: JArray) => a.ref.slice(i)) as never, t as never) as T);
  tree.dispose(t as never);
  return out;
}
