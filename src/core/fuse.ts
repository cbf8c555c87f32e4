/**
 * Several steps of a method in one traced call. On small networks a jitted step costs ~0.5 ms of
 * which nearly all is call overhead, so fusing `u` steps into one `compile`d call divides that
 * overhead by `u` (jax-js 0.1.25 has no `scan`/`fori_loop`, so the steps are unrolled in the trace).
 */
import { random, tree, type JArray, type Key, type Tree } from "./engine.js";
import { sliceTree, stackTrees } from "./replicate.js";

/** A step in the shared shape. */
export type StepFn<S, B, I> = (key: Key, state: S, batch: B) => [S, I];

/**
 * `u` consecutive steps; `batches` carries a leading axis of size `u` (one minibatch per step).
 * Returns the final state, the infos stacked `[u, ...]`, and, when `record` is given, `record(state)`
 * after every step stacked `[u, ...]` (`record` borrows the state).
 */
export function fuseSteps<S extends Tree, B extends Tree, I extends Tree, R extends Tree = JArray>(
  step: StepFn<S, B, I>,
  u: number,
  record?: (state: S) => R,
): (key: Key, state: S, batches: B) => [S, I, R | undefined] {
  if (!Number.isInteger(u) || u < 1) throw new RangeError(`fuseSteps: u must be a positive integer, got ${u}`);
  return (k, state, batches) => {
    const keys = random.split(k, u);
    const infos: I[] = [];
    const recs: R[] = [];
    for (let i = 0; i < u; i++) {
      const [s, info] = step(keys.ref.slice(i), state, sliceTree(batches, i));
      state = s;
      infos.push(info);
      if (record) recs.push(record(state));
    }
    keys.dispose();
    tree.dispose(batches);
    return [state, stackTrees(infos), record ? stackTrees(recs) : undefined];
  };
}
