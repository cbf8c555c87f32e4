/**
 * Flat views of parameter pytrees, and the one adapter through which flat-vector methods (dense
 * Gaussian and flow VI, GSM, BaM) run on pytree parameters, as blackjax does with `ravel_pytree`.
 *
 *   ravel(tree) = concat_k vec(leaf_k),   unravel(theta) = { leaf_k = reshape(theta[o_k : o_k + n_k], shape_k) }
 *
 * Leaves are visited in a deterministic order that depends only on the tree's structure: object keys
 * sorted, arrays by index (the order of {@link namedLeaves} in core/tree.ts, so a flat index can
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
import { np, vmapped, type JArray } from "./engine.js";
import type { Info, InferenceMethod } from "./method.js";
import { mapDraws } from "./posterior.js";
import { isArray, namedLeaves, rebuildByPath, type Tree } from "./tree.js";

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

/** A skeleton of the tree with plain markers in place of arrays, so `unravel` holds no engine buffers. */
function skeleton(t: unknown): unknown {
  if (t === undefined || t === null) return t;
  if (isArray(t)) return { __leaf: true, shape: t.shape.slice(), dtype: t.dtype, dispose() {} };
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
export function unraveler<T>(template: T): Unravel<T> {
  const leaves: FlatLeaf[] = [];
  let offset = 0;
  let dtype: string | undefined;
  for (const { path, value: leaf } of namedLeaves(template)) {
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
  }
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
    return rebuildByPath(skel, (path) => {
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
export function ravel<T>(t: T): { vec: JArray; unravel: Unravel<T> } {
  const unravel = unraveler(t);
  const pieces = namedLeaves(t).map(({ value }) => value.reshape([-1]));
  const vec = pieces.length === 1 ? pieces[0] : np.concatenate(pieces, 0);
  return { vec, unravel };
}

/** A target log density over flat vectors: theta `[d]` -> scalar. Consumes its arguments. */
export type FlatLogDensity<B = unknown> = (theta: JArray, batch: B) => JArray;

/**
 * A pytree log density `(params, batch) => scalar` as a {@link FlatLogDensity} over `[d]` vectors:
 * `flat(theta, batch) = logDensity(unravel(theta), batch)`. Borrows `template` (shapes only). Traceable.
 *
 * @example
 * const flat = flatLogDensity(logDensity(model, { dataSize: N }), model.init(key(0)));   // theta: [751] for a 13-50-1 MLP
 */
export function flatLogDensity<P, B>(logDensity: (params: P, batch: B) => JArray, template: P): FlatLogDensity<B> & { unravel: Unravel<P> } {
  const unravel = unraveler(template);
  const flat = (theta: JArray, batch: B) => logDensity(unravel(theta), batch);
  return Object.assign(flat, { unravel });
}

/** Rows of `[s, d]` (consumed) as parameter trees stacked on a leading axis of size s. */
export function unravelRows<P>(unravel: Unravel<P>, rows: JArray): P {
  return vmapped((r: JArray) => unravel(r))(rows);
}

/**
 * A flat method (parameters `[d]`, posterior draws `[n, d]`) as a method on parameter trees shaped like
 * `unravel`'s template: `init` ravels the given parameters, `step` is the flat method's own, and the
 * posterior's draws are unravelled row by row. The state and its updates are untouched.
 *
 * @example
 * const flat = flatLogDensity(ld, template);
 * const method = onParams(createAdvi(flat, { family: fullRank(flat.unravel.size), learningRate: 1e-3 }), flat.unravel);
 */
export function onParams<S extends Tree, I extends Info, P, B>(flat: InferenceMethod<S, I, JArray, B>, unravel: Unravel<P>): InferenceMethod<S, I, P, B> {
  return {
    init: (k, params) => flat.init(k, ravel(params).vec),
    step: (k, state, batch) => flat.step(k, state, batch),
    posterior: (state) => mapDraws(flat.posterior(state), (rows) => unravelRows(unravel, rows)),
  };
}
