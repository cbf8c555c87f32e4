/**
 * M independent copies of a method (ensemble members, MCMC chains) stepped in one jitted call.
 *
 * Any {@link InferenceMethod} becomes a method over M copies whose parameters, keys and minibatches carry
 * a leading axis of size M, and whose posterior is the union of the copies' (their draws
 * concatenated, copy-major). Two batchings, same results:
 * - `"unroll"`: the state is a list of M states; the step traces the copies side by side, so each
 *   copy's matmuls stay plain 2-D matmuls.
 * - `"vmap"`: the state is stacked on a leading axis and the step is `vmap`ped.
 *
 * jax-js workaround (0.1.25, Wasm): the batching rule for `dot` moves the mapped axis next to the
 * contraction axis and puts the output's mapped axis last, a layout the Wasm matmul kernel does not tile;
 * a vmapped [128,784]x[784,400] matmul over 5 copies is ~35x slower than five plain ones. `vmap` wins on
 * small networks, where the per-call and per-kernel overhead, not matmul, dominates; `"auto"` picks by
 * parameter count.
 */
import { np, random, split, vmapped, type JArray, type Key } from "./engine.js";
import type { Info, InferenceMethod, Posterior } from "./method.js";
import { union } from "./posterior.js";
import { free, keep, leaves, mapTree, sliceTree, sumAll, unstackTree, type Tree } from "./tree.js";

/** How the copies are batched (see the module comment). */
export type Batching = "unroll" | "vmap" | "auto";

/** Parameter count up to which `"auto"` uses `vmap`. */
export const AUTO_VMAP_MAX_PARAMS = 50_000;

/** State of M copies: a list (`unroll`) or one stacked state (`vmap`). */
export type Replicated<S> = { copies: S[] } | { stacked: S };

/** A replicated method: an {@link InferenceMethod} over stacked parameters, plus per-copy access. */
export interface ReplicatedMethod<S extends Tree, I extends Info, P, B> extends InferenceMethod<Replicated<S>, I, P, B> {
  readonly copies: number;
  readonly batching: "unroll" | "vmap";
  /** Copy c's posterior (borrows the state). */
  posteriorOf(state: Replicated<S>, c: number): Posterior<P>;
}

/**
 * Replicate `method` over `m` copies. `init` takes parameters stacked on a leading axis of size m,
 * `step` minibatches `[m, n, ...]`; infos come back as `[m]` per field.
 * @param paramCount parameters per copy, which `"auto"` uses to choose the batching.
 */
export function replicate<S extends Tree, I extends Info, P, B>(
  method: InferenceMethod<S, I, P, B>,
  m: number,
  batching: Batching = "auto",
  paramCount = Infinity,
): ReplicatedMethod<S, I, P, B> {
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`replicate: the number of copies must be a positive integer, got ${m}`);
  const mode = batching === "auto" ? (paramCount <= AUTO_VMAP_MAX_PARAMS ? "vmap" : "unroll") : batching;
  const stateOf = (state: Replicated<S>, c: number): { s: S; view: boolean } =>
    "copies" in state ? { s: state.copies[c], view: false } : { s: sliceTree(state.stacked, c), view: true };
  const posteriorOf = (state: Replicated<S>, c: number): Posterior<P> => {
    const { s, view } = stateOf(state, c);
    const p = method.posterior(s);
    if (view) free(s);
    return p;
  };
  const base = {
    copies: m,
    batching: mode,
    posteriorOf,
    posterior: (state: Replicated<S>) => union(Array.from({ length: m }, (_, c) => posteriorOf(state, c))),
  };
  if (mode === "vmap") {
    const vinit = vmapped((k: Key, p: P) => method.init(k, p), [0, 0]);
    const vstep = vmapped((k: Key, s: S, b: B) => method.step(k, s, b), [0, 0, 0]);
    return {
      ...base,
      init: (k, params) => ({ stacked: vinit(random.split(k, m), params) }),
      step(k, state, batch) {
        const [s, info] = vstep(random.split(k, m), (state as { stacked: S }).stacked, batch);
        return [{ stacked: s }, info];
      },
    };
  }
  return {
    ...base,
    init(k, params) {
      const keys = split(k, m);
      return { copies: unstackTree(params, m).map((p, i) => method.init(keys[i], p)) };
    },
    step(k, state, batch) {
      const keys = split(k, m);
      const results = (state as { copies: S[] }).copies.map((s, i) => method.step(keys[i], s, sliceTree(batch, i)));
      free(batch);
      const infos = results.map((r) => r[1]);
      const info = mapTree((...xs: JArray[]) => np.concatenate(xs.map((x) => x.reshape([1]))), infos[0], ...infos.slice(1));
      return [{ copies: results.map((r) => r[0]) }, info];
    },
  };
}

/**
 * Each copy's sum of every float in its part of `state`, `[copies]` float32 (borrows `state`; works
 * under `jit`). Finite exactly when all of the copy's floats are (short of overflow).
 */
export function copyTotals<S extends Tree>(state: Replicated<S>, copies: number): JArray {
  const isFloat = (a: JArray) => String(a.dtype).startsWith("float");
  if ("copies" in state) {
    return np.stack(state.copies.map((s) => sumAll(leaves(s).filter(isFloat).map((a) => a.ref.sum().astype(np.float32)))));
  }
  const parts = leaves(state.stacked).filter(isFloat).map((a) => a.ref.reshape([copies, -1]).sum(1).astype(np.float32));
  return parts.length > 0 ? sumAll(parts) : np.zeros([copies]);
}

/**
 * `next` with the copies in `bad` taken from `before` (a chain restarted from its last good state).
 * Consumes `next`, borrows `before`.
 */
export function mergeCopies<S extends Tree>(next: Replicated<S>, before: Replicated<S>, bad: readonly number[], copies: number): Replicated<S> {
  const isBad = new Set(bad);
  if ("copies" in next && "copies" in before) {
    return { copies: next.copies.map((s, c) => (isBad.has(c) ? (free(s), keep(before.copies[c])) : s)) };
  }
  if ("stacked" in next && "stacked" in before) {
    const merged = mapTree(
      (n: JArray, b: JArray) => {
        const parts = Array.from({ length: copies }, (_, c) => (isBad.has(c) ? b : n).ref.slice(c));
        n.dispose();
        b.dispose();
        return np.stack(parts);
      },
      next.stacked,
      keep(before.stacked),
    );
    return { stacked: merged };
  }
  throw new TypeError("mergeCopies: the two states have different layouts");
}
