/**
 * Exact host copies of state trees, for checkpoints: every leaf with its dtype and every bit, named
 * by its path (core/tree.ts `namedLeaves`), and back into a tree shaped like a template.
 */
import { fromHostExact, toHostExact, type HostArray } from "./engine.js";
import { namedLeaves, rebuildByPath, type Tree } from "./tree.js";

/** One leaf of a snapshot. */
export interface SnapshotLeaf extends HostArray {
  readonly name: string;
}

/** Host copies of every leaf of `t` (borrowed), named by path. */
export async function snapshotTree(t: unknown): Promise<SnapshotLeaf[]> {
  const out: SnapshotLeaf[] = [];
  for (const { path, value } of namedLeaves(t)) out.push({ name: path, ...(await toHostExact(value.ref)) });
  return out;
}

/**
 * A tree shaped like `template` (borrowed) from a snapshot of one: every leaf must be present with the
 * template leaf's shape and dtype.
 * @throws naming the leaf that is missing or differs.
 */
export function restoreTree<T extends Tree>(template: T, leaves: readonly SnapshotLeaf[]): T {
  const byName = new Map(leaves.map((l) => [l.name, l]));
  const made: { dispose(): void }[] = [];
  try {
    return rebuildByPath(template, (path, like) => {
      const l = byName.get(path);
      if (!l) throw new Error(`the saved state has no leaf '${path}'`);
      const same = l.shape.length === like.shape.length && l.shape.every((d, i) => d === like.shape[i]);
      if (!same || l.dtype !== String(like.dtype)) {
        throw new Error(`saved leaf '${path}' is ${l.dtype} [${l.shape.join(", ")}], the run expects ${String(like.dtype)} [${like.shape.join(", ")}]`);
      }
      const a = fromHostExact(l);
      made.push(a);
      return a;
    });
  } catch (e) {
    for (const a of made) a.dispose();
    throw e;
  }
}
