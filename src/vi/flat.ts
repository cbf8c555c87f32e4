/**
 * Flat views of parameter pytrees: the bridge between the model contract (pytree `params`) and the
 * flat-vector variational families of src/vi/family.ts (theta in R^d).
 *
 *   ravel(tree) = concat_k vec(leaf_k),   unravel(theta) = { leaf_k = reshape(theta[o_k : o_k + n_k], shape_k) }
 *
 * Leaves are visited in a deterministic order that depends only on the tree's structure: object keys
 * sorted, arrays by index (the order of {@link namedLeaves} in src/core/engine.ts, so a flat index can
 * be named `net.layers.0.w[3]`). `unravel` is a pure, traceable function of `theta` (static slices and
 * reshapes), so it can be used inside `jit`, `grad` and `vmap`.
 *
 * jax-js workaround: under `jit(grad(f))`, the gradient of a slice whose incoming cotangent is a
 * broadcast scalar (f ending in `x.slice(i)` or `x.slice([a, b]).sum()`) comes back as ones over the
 * whole input instead of a one-hot (measured, jax-js 0.1.25; eager `grad` is right, and so is any
 * non-constant cotangent, e.g. `x.slice([a, b]).mul(c).sum()`). A leaf that enters the log density only
 * through a plain sum would hit it; model densities (leaves feeding matmuls, priors quadratic in the
 * leaves) do not. The test suite pins the unravel gradient on a non-constant cotangent.
 */
import { np, type JArray, type Tree } from "../core/engine.js";
import type { FlatLogDensity } from "./family.js";

/** One leaf of a pytree: where it sits (dotted path), its shape and its offset in the flat vector. */
export interface FlatLeaf {
  readonly path: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

/** A traceable map from a flat `[d]` vector to a pytree shaped like a template. */
export interface Unravel<T> {
  /** Rebuild the tree from `theta` (`[d]`, consumed). Traceable. */
  (theta: JArray): T;
  /** d, the total number of scalars. */
  readonly size: number;
  /** The leaves in flat order. */
  readonly leaves: readonly FlatLeaf[];
}

function isLeaf(x: unknown): x is JArray {
  return x !== null && typeof x === "object" && "shape" in x && "dtype" in x && typeof (x as JArray).dispose === "function";
}

/** Visit the leaves of a tree in flat order; `undefined`/`null` members hold no leaves. */
function walk(t: unknown, prefix: string, visit: (path: string, leaf: JArray) => void): void {
  if (t === undefined || t === null) return;
  if (isLeaf(t)) return visit(prefix, t);
  const join = (k: string | number) => (prefix === "" ? String(k) : `${prefix}.${k}`);
  if (Array.isArray(t)) t.forEach((v, i) => walk(v, join(i), visit));
  else if (typeof t === "object") for (const k of Object.keys(t).sort()) walk((t as Record<string, unknown>)[k], join(k), visit);
  else throw new TypeError(`ravel: unexpected tree node ${String(t)} at '${prefix}' (expected arrays, objects or lists)`);
}

/** Rebuild a tree shaped like `t`, each leaf from `leafAt(path)`. */
function build(t: unknown, prefix: string, leafAt: (path: string) => JArray): unknown {
  if (t === undefined || t === null) return t;
  if (isLeaf(t)) return leafAt(prefix);
  const join = (k: string | number) => (prefix === "" ? String(k) : `${prefix}.${k}`);
  if (Array.isArray(t)) return t.map((v, i) => build(v, join(i), leafAt));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(t as object).sort()) out[k] = build((t as Record<string, unknown>)[k], join(k), leafAt);
  return out;
}

/** A skeleton of the tree with plain markers in place of arrays, so `unravel` holds no engine buffers. */
function skeleton(t: unknown): unknown {
  if (t === undefined || t === null) return t;
  if (isLeaf(t)) return { __leaf: true, shape: t.shape.slice(), dtype: t.dtype, dispose() {} };
  if (Array.isArray(t)) return t.map(skeleton);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(t as object)) out[k] = skeleton((t as Record<string, unknown>)[k]);
  return out;
}

/**
 * The {@link Unravel} for trees shaped like `template`. Borrows `template` (only its structure and
 * leaf shapes are read; no array is kept).
 *
 * @example
 * const unravel = unraveler(model.init(key(0)));   // unravel.size === d
 * const params = unravel(theta);                    // inside jit/grad as well
 */
export function unraveler<T extends Tree>(template: T): Unravel<T> {
  const leaves: FlatLeaf[] = [];
  let offset = 0;
  let dtype: string | undefined;
  walk(template, "", (path, leaf) => {
    if (leaf.dtype !== np.float32 && leaf.dtype !== np.float64) {
      throw new TypeError(`ravel: leaf '${path}' has dtype ${leaf.dtype}; only floating-point parameters can be flattened`);
    }
    if (dtype !== undefined && leaf.dtype !== dtype) {
      throw new TypeError(`ravel: leaf '${path}' has dtype ${leaf.dtype} but earlier leaves are ${dtype}; all leaves must share one dtype`);
    }
    dtype = leaf.dtype;
    const size = leaf.shape.reduce((p, n) => p * n, 1);
    leaves.push({ path, shape: leaf.shape.slice(), offset, size });
    offset += size;
  });
  if (leaves.length === 0) throw new RangeError("ravel: the tree has no array leaves");
  const byPath = new Map(leaves.map((l) => [l.path, l]));
  const skel = skeleton(template);
  const d = offset;
  const unravel = (theta: JArray): T => {
    if (theta.shape.length !== 1 || theta.shape[0] !== d) {
      const shape = `[${theta.shape.join(", ")}]`;
      theta.dispose();
      throw new RangeError(`unravel: theta must have shape [${d}], got ${shape}`);
    }
    let left = leaves.length;
    return build(skel, "", (path) => {
      const l = byPath.get(path)!;
      // The last leaf takes over theta's reference; the others borrow it.
      const src = --left === 0 ? theta : theta.ref;
      return src.slice([l.offset, l.offset + l.size]).reshape(l.shape as number[]);
    }) as T;
  };
  return Object.assign(unravel, { size: d, leaves: leaves as readonly FlatLeaf[] });
}

/**
 * Flatten a parameter pytree into one vector and return the inverse map.
 *
 *   vec = concat_k reshape(leaf_k, [n_k])   (leaf order: see the module comment)
 *
 * Consumes `t`. `unravel` is traceable and holds no arrays, so it can be kept for the life of a run.
 * jax-js workaround: `np.concatenate` lowers to a sum of zero-padded views (one per piece), so its cost
 * grows with (number of leaves) x d; parameter trees have a handful of leaves (4 for a one-hidden-layer
 * MLP: 751 scalars for a 13-50-1 net), where this is negligible and runs once per fit.
 *
 * @example
 * const { vec, unravel } = ravel(model.init(key(0)));
 * const back = unravel(vec);   // same tree, same values
 */
export function ravel<T extends Tree>(t: T): { vec: JArray; unravel: Unravel<T> } {
  const unravel = unraveler(t);
  const pieces: JArray[] = [];
  walk(t, "", (_path, leaf) => pieces.push(leaf.reshape([-1])));
  const vec = pieces.length === 1 ? pieces[0] : np.concatenate(pieces, 0);
  return { vec, unravel };
}

/**
 * A pytree log density `(params, batch) => scalar` (src/models/model.ts `LogDensityFn`) as a
 * {@link FlatLogDensity} over `[d]` vectors: `flat(theta, batch) = logDensity(unravel(theta), batch)`.
 * Borrows `template` (shapes only). Traceable.
 *
 * @example
 * const ld = logDensity(model, { dataSize: N });
 * const flat = flatLogDensity(ld, model.init(key(0)));     // theta: [751] for a 13-50-1 MLP
 * const advi = create(flat, { family: fullRank(751), learningRate: 1e-2 });
 */
export function flatLogDensity<P extends Tree, B>(logDensity: (params: P, batch: B) => JArray, template: P): FlatLogDensity<B> & { unravel: Unravel<P> } {
  const unravel = unraveler(template);
  const flat = (theta: JArray, batch: B) => logDensity(unravel(theta), batch);
  return Object.assign(flat, { unravel });
}
