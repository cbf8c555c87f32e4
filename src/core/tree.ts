/**
 * Pytree utilities: the one place that maps, references, frees, stacks, slices and names the leaves of
 * nested objects and lists of engine arrays.
 *
 * Ownership follows jax-js: {@link mapTree} consumes every tree it is given (its function receives the
 * leaves and owns them); {@link keep} adds a reference to every leaf; {@link free} drops one. jax-js's
 * own `tree.map` is typed for one leaf type per call, which does not fit the typed parameter trees of
 * this library; the casts that bridge the two live here and nowhere else.
 */
import { np, tree, type JArray, type JsTree } from "./engine.js";

/**
 * A pytree of arrays: nested plain objects and lists whose leaves are engine arrays. Object members may
 * be absent (`lik?` of a model's parameters); absent members hold no leaves.
 */
export type Tree = JArray | Tree[] | { [key: string]: Tree | undefined };

/** True for engine arrays (the leaf test of every function here). */
export function isArray(x: unknown): x is JArray {
  return x !== null && typeof x === "object" && "shape" in x && "dtype" in x && typeof (x as JArray).dispose === "function";
}

/**
 * Leafwise map over trees of one structure: `out_i = f(t_i, rest_0_i, ...)`. Consumes every tree
 * (f owns the leaves it receives). Traceable.
 */
export function mapTree<T>(f: (...xs: JArray[]) => JArray, t: T, ...rest: T[]): T {
  return tree.map(f, t as JsTree<JArray>, ...(rest as JsTree<JArray>[])) as T;
}

/** Add a reference to every leaf (returns the same tree; `undefined` and `null` pass through). */
export function keep<T>(t: T): T {
  return t === undefined || t === null ? t : (tree.ref(t as JsTree<JArray>) as T);
}

/** Drop a reference from every leaf of a tree. Accepts `undefined` and `null`. */
export function free(t: unknown): void {
  if (t !== undefined && t !== null) tree.dispose(t as JsTree<JArray>);
}

/** The leaves of a tree in jax-js's flatten order (borrowed, no new references). */
export function leaves(t: unknown): JArray[] {
  return tree.leaves(t as JsTree<JArray>);
}

/** A tree shaped like `t` whose leaves come from `f(leaf)` in flatten order (borrows `t`). */
export function rebuildFrom<T>(t: T, next: (leaf: JArray, i: number) => JArray): T {
  const [ls, def] = tree.flatten(t as JsTree<JArray>);
  return tree.unflatten(def, ls.map(next)) as T;
}

/** Total number of scalars in a tree. */
export function treeSize(t: unknown): number {
  return leaves(t).reduce((s, a) => s + a.shape.reduce((p, d) => p * d, 1), 0);
}

/** Zeros shaped like every leaf of `t` (borrows `t`). */
export function zerosLike<T>(t: T): T {
  return rebuildFrom(t, (a) => np.zerosLike(a.ref));
}

/** Sum of scalars (or equally shaped arrays); `np.array(0)` for none. Consumes them. */
export function sumAll(xs: JArray[]): JArray {
  let total: JArray | undefined;
  for (const x of xs) total = total ? total.add(x) : x;
  return total ?? np.array(0);
}

/** Copy `i` of a tree stacked on a leading axis, as views (borrows the tree). */
export function sliceTree<T>(t: T, i: number): T {
  return rebuildFrom(t, (a) => a.ref.slice(i));
}

/** Stack same-shaped trees leafwise along a new leading axis (consumes them). */
export function stackTrees<T>(trees: T[]): T {
  const [first, ...rest] = trees;
  return mapTree((...xs: JArray[]) => np.stack(xs), first, ...rest);
}

/** Concatenate trees stacked on a leading axis along that axis (consumes them). */
export function concatTrees<T>(trees: T[]): T {
  if (trees.length === 1) return trees[0];
  const [first, ...rest] = trees;
  return mapTree((...xs: JArray[]) => np.concatenate(xs, 0), first, ...rest);
}

/** Split a stacked tree into `m` trees along the leading axis (consumes it). */
export function unstackTree<T>(t: T, m: number): T[] {
  const out = Array.from({ length: m }, (_, i) => sliceTree(t, i));
  free(t);
  return out;
}

/** A named leaf of a tree: `path` like `net.layers.0.w`. */
export interface NamedLeaf<T> {
  readonly path: string;
  readonly value: T;
}

/**
 * Leaves of a tree with dotted paths, in a deterministic order (object keys sorted, lists by index),
 * independent of the engine's own flatten order; `undefined` members hold no leaves. Saved tensors and
 * flat parameter vectors are named and ordered by it.
 */
export function namedLeaves<T = JArray>(t: unknown, isLeaf: (x: unknown) => x is T = isArray as (x: unknown) => x is T, prefix = ""): NamedLeaf<T>[] {
  if (t === undefined || t === null) return [];
  if (isLeaf(t)) return [{ path: prefix, value: t }];
  const out: NamedLeaf<T>[] = [];
  const join = (k: string | number) => (prefix === "" ? String(k) : `${prefix}.${k}`);
  if (Array.isArray(t)) {
    t.forEach((v, i) => out.push(...namedLeaves(v, isLeaf, join(i))));
  } else if (typeof t === "object") {
    for (const k of Object.keys(t).sort()) out.push(...namedLeaves((t as Record<string, unknown>)[k], isLeaf, join(k)));
  } else {
    throw new TypeError(`namedLeaves: unexpected tree node ${String(t)} at '${prefix}' (expected arrays, objects or lists)`);
  }
  return out;
}

/**
 * A tree shaped like `template`, each leaf from `leafAt(path, templateLeaf)` (paths as in
 * {@link namedLeaves}). Borrows `template`. The result keeps the template's key order, which is its
 * flatten order: a tree loaded from tensors then draws and traces exactly like the one it was saved from.
 */
export function rebuildByPath<T>(template: T, leafAt: (path: string, like: JArray) => JArray, prefix = ""): T {
  const t: unknown = template;
  if (t === undefined || t === null) return template;
  if (isArray(t)) return leafAt(prefix, t) as T;
  const join = (k: string | number) => (prefix === "" ? String(k) : `${prefix}.${k}`);
  if (Array.isArray(t)) return t.map((v, i) => rebuildByPath(v, leafAt, join(i))) as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(t as object)) out[k] = rebuildByPath((t as Record<string, unknown>)[k], leafAt, join(k));
  return out as T;
}

/** The leaves of `t` in flatten order (borrowed) and the map from such a list back to a tree of its shape. */
export function flattenTree<T>(t: T): [JArray[], (xs: JArray[]) => T] {
  const [ls, def] = tree.flatten(t as JsTree<JArray>);
  return [ls, (xs) => tree.unflatten(def, xs) as T];
}
