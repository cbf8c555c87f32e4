/**
 * Run M independent copies of a method (ensemble members, MCMC chains) in one jitted step.
 *
 * Any `{ init(key, params), step(key, state, batch) }` method becomes a method over M copies whose
 * parameters, keys and minibatches carry a leading axis of size M. Two batchings, same results:
 * - `"unroll"`: the state is a list of M states; the step traces the copies side by side, so each
 *   copy's matmuls stay plain 2-D matmuls.
 * - `"vmap"`: the state is stacked on a leading axis and the step is `vmap`ped.
 *
 * Why both: jax-js 0.1.25's batching rule for `dot` moves the mapped axis next to the contraction
 * axis and puts the output's mapped axis last, a layout its Wasm matmul kernel does not tile. A
 * vmapped [128,784]x[784,400] matmul over 5 copies takes ~600 ms against 17 ms for five plain ones
 * (measured on this project's 2-core machine). `vmap` wins on small networks, where the per-call
 * and per-kernel overhead, not matmul, dominates; `"auto"` picks by parameter count.
 */
import { np, random, split, tree, vmap, type JArray, type Key, type Tree } from "./engine.js";

/** How the copies are batched (see the module comment). */
export type Batching = "unroll" | "vmap" | "auto";

/** Parameter count up to which `"auto"` uses `vmap`. */
export const AUTO_VMAP_MAX_PARAMS = 50_000;

/** A method in the shared shape. Infos are pytrees of scalars. */
export interface StepMethod<P, S, B, I> {
  init(key: Key, params: P): S;
  step(key: Key, state: S, batch: B): [S, I];
}

/** State of M copies: a list (`unroll`) or one stacked state (`vmap`). */
export type Replicated<S> = { copies: S[] } | { stacked: S };

/** The replicated method: params and batches carry a leading axis M; infos come back as `[M]`. */
export interface ReplicatedMethod<P, S, B, I> {
  readonly copies: number;
  readonly batching: "unroll" | "vmap";
  init(key: Key, params: P): Replicated<S>;
  step(key: Key, state: Replicated<S>, batch: B): [Replicated<S>, I];
  /** The copies' states stacked on a leading axis (consumes the replicated state). */
  stacked(state: Replicated<S>): S;
}

/**
 * Replicate `method` over `m` copies.
 * @param paramCount used by `"auto"` to choose the batching.
 */
export function replicate<P extends Tree, S extends Tree, B extends Tree, I extends Tree>(
  method: StepMethod<P, S, B, I>,
  m: number,
  batching: Batching = "auto",
  paramCount = Infinity,
): ReplicatedMethod<P, S, B, I> {
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`replicate: the number of copies must be a positive integer, got ${m}`);
  const mode = batching === "auto" ? (paramCount <= AUTO_VMAP_MAX_PARAMS ? "vmap" : "unroll") : batching;
  if (mode === "vmap") {
    const vinit = vmap((k: Key, p: P) => method.init(k, p) as never, [0, 0]);
    const vstep = vmap((k: Key, s: S, b: B) => method.step(k, s, b) as never, [0, 0, 0]);
    return {
      copies: m,
      batching: mode,
      init: (k, params) => ({ stacked: vinit(random.split(k, m), params as never) as unknown as S }),
      step(k, state, batch) {
        const [s, info] = vstep(random.split(k, m), (state as { stacked: S }).stacked as never, batch as never) as unknown as [S, I];
        return [{ stacked: s }, info];
      },
      stacked: (state) => (state as { stacked: S }).stacked,
    };
  }
  return {
    copies: m,
    batching: mode,
    init(k, params) {
      const keys = split(k, m);
      return { copies: unstackTree(params, m).map((p, i) => method.init(keys[i], p)) };
    },
    step(k, state, batch) {
      const keys = split(k, m);
      const results = (state as { copies: S[] }).copies.map((s, i) => method.step(keys[i], s, sliceTree(batch, i)));
      tree.dispose(batch);
      const infos = results.map((r) => r[1]);
      const info = tree.map(((...xs: JArray[]) => np.concatenate(xs.map((x) => x.reshape([1])))) as never, infos[0] as never, ...(infos.slice(1) as never[])) as unknown as I;
      return [{ copies: results.map((r) => r[0]) }, info];
    },
    stacked: (state) => stackTrees((state as { copies: S[] }).copies),
  };
}

/** Copy `i` of a stacked tree, as views (borrows the tree). */
export function sliceTree<T>(t: T, i: number): T {
  return tree.map(((a: JArray) => a.ref.slice(i)) as never, t as never) as T;
}

/** Stack same-shaped pytrees leafwise along a new leading axis (consumes them). */
export function stackTrees<T>(trees: T[]): T {
  const [first, ...rest] = trees;
  return tree.map(((...leaves: JArray[]) => np.stack(leaves)) as never, first as never, ...(rest as never[])) as T;
}

/** Split a stacked pytree into `m` trees along the leading axis (consumes it). */
export function unstackTree<T>(t: T, m: number): T[] {
  const out = Array.from({ length: m }, (_, i) => sliceTree(t, i));
  tree.dispose(t as never);
  return out;
}
