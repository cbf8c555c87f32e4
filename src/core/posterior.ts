/**
 * Posterior implementations shared by every family: sets of draws, unions of posteriors (chains,
 * ensemble members), distributions defined by parameters that draw, and the named-tensor views that
 * saving and loading go through.
 */
import { fromHost, key, split, toHost, type JArray, type Key } from "./engine.js";
import type { NamedTensor, Posterior } from "./method.js";
import { concatTrees, free, keep, namedLeaves, rebuildByPath, rebuildFrom } from "./tree.js";

/** Host copies of every leaf of `t` (borrows it), named `prefix.<path>` (or `<path>` without a prefix). */
export async function treeToTensors(t: unknown, prefix = ""): Promise<NamedTensor[]> {
  return Promise.all(
    namedLeaves(t).map(async ({ path, value }) => ({
      name: prefix === "" ? path : path === "" ? prefix : `${prefix}.${path}`,
      shape: [...value.shape],
      data: await toHost(value.ref),
    })),
  );
}

/**
 * A tree shaped like `template` (borrowed; only shapes are read) with every leaf uploaded from the
 * tensor `prefix.<path>`, whose shape must be `[...lead, ...leaf shape]`.
 * @throws naming the missing tensor or the mismatched shape.
 */
export function tensorsToTree<T>(template: T, tensors: readonly NamedTensor[], prefix = "", lead: readonly number[] = []): T {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const made: JArray[] = [];
  try {
    return rebuildByPath(template, (path, like) => {
      const name = prefix === "" ? path : path === "" ? prefix : `${prefix}.${path}`;
      const t = byName.get(name);
      if (!t) throw new Error(`no tensor '${name}' (found: ${[...byName.keys()].join(", ") || "none"})`);
      const want = [...lead, ...like.shape];
      if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
        throw new Error(`tensor '${name}' has shape [${t.shape.join(", ")}], expected [${want.join(", ")}]`);
      }
      const a = fromHost(t.data, want);
      made.push(a);
      return a;
    });
  } catch (e) {
    for (const a of made) a.dispose();
    throw e;
  }
}

/** Number of draws in a tree stacked on a leading axis. */
export function leadingSize(t: unknown): number {
  const first = namedLeaves(t)[0];
  if (!first) throw new RangeError("posterior: the parameter tree has no arrays");
  return first.value.shape[0];
}

/**
 * A set of draws: `stacked` (consumed) holds them on a leading axis of every leaf. `draws()` returns new
 * references to all of them.
 */
export function sampleSet<P>(stacked: P): Posterior<P> {
  const size = leadingSize(stacked);
  let held: P | undefined = stacked;
  const live = (): P => {
    if (held === undefined) throw new Error("posterior: used after dispose()");
    return held;
  };
  return {
    kind: "samples",
    options: {},
    size,
    draws(k, n) {
      k.dispose();
      if (n !== undefined && n !== size) throw new RangeError(`this posterior is a set of ${size} draws; it cannot give ${n} (draw fresh samples only from a variational posterior)`);
      return keep(live());
    },
    tensors: () => treeToTensors(live()),
    dispose() {
      free(held);
      held = undefined;
    },
  };
}

/** The point mass at `params` (borrowed): a set of one draw. */
export function pointMass<P>(params: P): Posterior<P> {
  return sampleSet(rebuildFrom(params, (a) => a.ref.reshape([1, ...a.shape])));
}

/** A set of draws uploaded from host tensors named by leaf path, each `[S, ...leaf shape]`. */
export function sampleSetFromTensors<P>(template: P, tensors: readonly NamedTensor[], size: number): Posterior<P> {
  return sampleSet(tensorsToTree(template, tensors, "", [size]));
}

/**
 * The union of several posteriors (chains, ensemble members), each consumed. Sample sets are
 * concatenated into one set; distributions form an equal-weight mixture that splits `n` draws evenly.
 */
export function union<P>(parts: Posterior<P>[]): Posterior<P> {
  if (parts.length === 1) return parts[0];
  if (parts.every((p) => p.size !== undefined)) {
    const all = parts.map((p, i) => {
      // A sample set ignores the key.
      const d = p.draws(key(i), p.size);
      p.dispose();
      return d;
    });
    return sampleSet(concatTrees(all));
  }
  const m = parts.length;
  return {
    kind: "mixture",
    options: { components: parts.map((p) => p.kind) },
    size: undefined,
    draws(k: Key, n?: number) {
      if (n === undefined || n % m !== 0) {
        k.dispose();
        throw new RangeError(`a mixture of ${m} posteriors draws a multiple of ${m} samples, got ${n}`);
      }
      const keys = split(k, m);
      return concatTrees(parts.map((p, i) => p.draws(keys[i], n / m)));
    },
    tensors: () => Promise.reject(new Error("a mixture of variational posteriors cannot be saved as one q; save its components")),
    dispose: () => parts.forEach((p) => p.dispose()),
  };
}

/**
 * A distribution given by its parameters `q` (consumed): `draw(key, q, n)` draws `n` parameter sets
 * stacked on a leading axis (borrowing `q`), and `save` names its tensors.
 */
export function distribution<P, Q>(o: {
  kind: string;
  options?: Readonly<Record<string, unknown>>;
  q: Q;
  draw: (key: Key, q: Q, n: number) => P;
  tensors: (q: Q) => Promise<NamedTensor[]>;
}): Posterior<P> {
  let held: Q | undefined = o.q;
  const live = (): Q => {
    if (held === undefined) throw new Error("posterior: used after dispose()");
    return held;
  };
  return {
    kind: o.kind,
    options: o.options ?? {},
    size: undefined,
    draws(k, n) {
      if (n === undefined || !Number.isInteger(n) || n < 1) {
        k.dispose();
        throw new RangeError(`a ${o.kind} posterior draws a positive integer number of samples, got ${n}`);
      }
      return o.draw(k, live(), n);
    },
    tensors: () => o.tensors(live()),
    dispose() {
      free(held);
      held = undefined;
    },
  };
}

/** The same posterior with every draw passed through `f` (e.g. flat rows to parameter trees). */
export function mapDraws<A, P>(p: Posterior<A>, f: (draws: A) => P): Posterior<P> {
  return {
    kind: p.kind,
    options: p.options,
    size: p.size,
    draws: (k, n) => f(p.draws(k, n)),
    tensors: () => p.tensors(),
    dispose: () => p.dispose(),
  };
}

