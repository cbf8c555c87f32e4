/**
 * Variational posteriors in the job layer: how a fitted q is saved (its parameters as named tensors
 * in `variational.safetensors`), rebuilt from disk, and sampled for the predictive.
 *
 * Two kinds of q exist:
 * - `meanfield`: a mean-field Gaussian over the model's parameter pytree (src/vi/meanfield.ts),
 *   tensors `mu.<leaf path>` and `rho.<leaf path>` (sigma = softplus(rho));
 * - flat families (src/vi/family.ts: full-rank / low-rank Gaussians, flows, and the `{ mean, cov }`
 *   Gaussians of GSM and BaM) over the raveled parameter vector of a small model, tensors
 *   `q.<path in q>`; the family is rebuilt from the options saved beside them.
 */
import { fromHost, isArray, namedLeaves, rebuild, toHost, tree, type Key, type Tree } from "../core/engine.js";
import type { NamedTensor, VariationalMeta } from "../io/posterior.js";
import type { Model, Params } from "../models/model.js";

/** Named host copies of every leaf of `q` (borrows `q`), prefixed by `prefix.`. */
export async function treeToTensors(q: Tree, prefix = ""): Promise<NamedTensor[]> {
  const leaves = namedLeaves(q, isArray);
  return Promise.all(
    leaves.map(async ({ path, value }) => ({ name: prefix === "" ? path : path === "" ? prefix : `${prefix}.${path}`, shape: [...value.shape], data: await toHost(value.ref) })),
  );
}

/**
 * Rebuild a pytree shaped like `template` (consumed) from named tensors; every template leaf must be
 * present with the template's shape.
 */
export function tensorsToTree<T extends Tree>(template: T, tensors: readonly NamedTensor[], prefix = ""): T {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  try {
    return rebuild(template, isArray, (path) => {
      const name = prefix === "" ? path : path === "" ? prefix : `${prefix}.${path}`;
      const t = byName.get(name);
      if (!t) throw new Error(`variational posterior has no tensor '${name}'; found: ${[...byName.keys()].join(", ")}`);
      return fromHost(t.data, t.shape);
    }) as T;
  } finally {
    const shapes = new Map(namedLeaves(template, isArray).map(({ path, value }) => [path, value.shape.join("x")]));
    tree.dispose(template);
    for (const [path, want] of shapes) {
      const name = prefix === "" ? path : `${prefix}.${path}`;
      const got = byName.get(name)?.shape.join("x");
      if (got !== undefined && got !== want) throw new Error(`variational tensor '${name}' has shape [${got.replace(/x/g, ", ")}], expected [${want.replace(/x/g, ", ")}]`);
    }
  }
}

/** How one kind of saved q is rebuilt and sampled. */
export interface VariationalKind {
  /** q's parameters, shaped for `model` and `options`, from saved tensors. */
  load(model: Model, meta: VariationalMeta, tensors: readonly NamedTensor[]): Tree;
  /** `s` draws of the model's parameters stacked on a leading axis (consumes `key` and `q`). */
  sample(key: Key, model: Model, meta: VariationalMeta, q: Tree, s: number): Params;
}
