/**
 * Several steps of a method in one traced call. On small networks a jitted step costs ~0.5 ms of
 * which nearly all is call overhead, so fusing `u` steps into one `compile`d call divides that
 * overhead by `u` (jax-js 0.1.25 has no `scan`/`fori_loop`, so the steps are unrolled in the trace).
 */
import { random, type Key } from "./engine.js";
import { free, sliceTree, stackTrees } from "./tree.js";

/**
 * `u` consecutive steps of `step`; `batches` carries a leading axis of size `u` (one minibatch per
 * step). Returns the final state and the infos stacked `[u, ...]`. Consumes its arguments.
 */
export function fuseSteps<S, B, I>(step: (key: Key, state: S, batch: B) => [S, I], u: number): (key: Key, state: S, batches: B) => [S, I] {
  if (!Number.isInteger(u) || u < 1) throw new RangeError(`fuseSteps: u must be a positive integer, got ${u}`);
  return (k, state, batches) => {
    const keys = random.split(k, u);
    const infos: I[] = [];
    for (let i = 0; i < u; i++) {
      const [s, info] = step(keys.ref.slice(i), state, sliceTree(batches, i));
      state = s;
      infos.push(info);
    }
    keys.dispose();
    free(batches);
    return [state, stackTrees(infos)];
  };
}
