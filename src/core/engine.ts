/**
 * The array engine boundary: the one place that knows jax-js's ownership rules.
 *
 * jax-js counts references: every function consumes its array arguments, `x.ref` adds a reference,
 * `x.dispose()` drops one. Method code in bayesdl is written as pure traced functions (inside `jit`,
 * where a value used twice needs `.ref`) and never manages buffers outside them; the loops that carry
 * state between jitted calls go through {@link compile}, {@link keep} and {@link free}.
 *
 * jax-js facts this module encodes (measured with @jax-js/jax 0.1.25, Node 20, Wasm backend):
 * - Dispatch is lazy. A loop of jitted calls that never waits for a result queues work and buffers
 *   without bound (300 MLP steps grew RSS to 2.2 GB and tripled the step time). {@link compile}d
 *   functions are therefore driven by loops that read a small result (the objective) every step, or
 *   call {@link sync}.
 * - `Array.data()` consumes the array it is called on.
 */
import {
  jit,
  nn,
  lax,
  vmap,
  grad,
  valueAndGrad,
  numpy as np,
  random,
  tree,
  type Array as JArray,
  type JsTree,
} from "@jax-js/jax";

export { np, nn, lax, random, tree, jit, vmap, grad, valueAndGrad };
export type { JArray, JsTree };

/** A PRNG key (jax-js threefry key, `uint32[2]`). */
export type Key = JArray;

/** A pytree of arrays: nested plain objects and arrays whose leaves are engine arrays. */
export type Tree = JsTree<JArray>;

/** Make a PRNG key from an integer seed. */
export function key(seed: number): Key {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`key: seed must be an integer in [0, 2^32), got ${seed}`);
  }
  return random.key(seed);
}

/**
 * Split a key into `n` independent keys. Consumes `k`. Works both eagerly and inside traced code.
 */
export function split(k: Key, n = 2): Key[] {
  const ks = random.split(k, n);
  const out: Key[] = [];
  for (let i = 0; i < n; i++) out.push(i === n - 1 ? ks.slice(i) : ks.ref.slice(i));
  return out;
}

/** Add a reference to every leaf (returns the same tree). Use before passing a tree you still need. */
export function keep<T extends JsTree<JArray>>(t: T): T {
  return tree.ref(t) as T;
}

/** Drop a reference from every leaf of a tree. Accepts `undefined` for convenience. */
export function free(t: JsTree<JArray> | null | undefined): void {
  if (t !== undefined && t !== null) tree.dispose(t);
}

/** Wait until every leaf of a tree is computed (does not consume it). */
export async function sync(t: JsTree<JArray>): Promise<void> {
  await Promise.all(tree.leaves(t).map((a) => (a as JArray).blockUntilReady()));
}

/**
 * A jitted function with explicit ownership: arguments at `consume` indices are taken over (the
 * caller must not use them again); every other argument is borrowed (the caller keeps it).
 * Outputs belong to the caller. `dispose()` releases the compiled program.
 */
export type Compiled<A extends unknown[], R> = ((...args: A) => R) & { dispose(): void };

/**
 * Compile a pure traced function with `jit`, with borrowed-by-default arguments.
 *
 * @param f pure function of engine arrays / pytrees (it must follow jax-js move semantics inside).
 * @param opts.consume indices of arguments the call takes over (typically the state being advanced).
 * @param opts.static indices of arguments that are plain JS values baked into the trace.
 */
export function compile<A extends unknown[], R>(
  f: (...args: A) => R,
  opts: { consume?: number[]; static?: number[] } = {},
): Compiled<A, R> {
  const consume = new Set(opts.consume ?? []);
  const statics = new Set(opts.static ?? []);
  const jitted = jit(f as never, opts.static ? { staticArgnums: opts.static } : undefined) as unknown as ((
    ...args: unknown[]
  ) => R) & { dispose(): void };
  const call = (...args: A): R => {
    const passed = args.map((a, i) => (consume.has(i) || statics.has(i) ? a : keep(a as Tree)));
    return jitted(...passed);
  };
  return Object.assign(call, { dispose: () => jitted.dispose() });
}

/** Upload a host array to the engine (float32 unless given `int32`). */
export function fromHost(
  data: Float32Array | Int32Array | Float64Array | number[],
  shape: number[],
  dtype: "float32" | "int32" | "float64" = data instanceof Int32Array ? "int32" : "float32",
): JArray {
  const dt = dtype === "int32" ? np.int32 : dtype === "float64" ? np.float64 : np.float32;
  const src =
    dtype === "int32"
      ? data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>)
      : dtype === "float64"
        ? data instanceof Float64Array ? data : Float64Array.from(data as ArrayLike<number>)
        : data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
  return np.array(src, { dtype: dt }).reshape(shape);
}

/** Read an array to the host as float32 (consumes it). */
export async function toHost(a: JArray): Promise<Float32Array> {
  const d = await a.data();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** Read a scalar to the host (consumes it). */
export async function scalar(a: JArray): Promise<number> {
  const d = await a.data();
  return Number(d[0]);
}

/** A named leaf of a parameter tree: `path` like `net.layers.0.w`. */
export interface NamedLeaf<T> {
  readonly path: string;
  readonly value: T;
}

/**
 * Leaves of a pytree with dotted paths, in a deterministic order (object keys sorted, arrays by index).
 * Used for naming saved tensors; independent of the engine's own flatten order.
 */
export function namedLeaves<T>(t: unknown, isLeaf: (x: unknown) => x is T, prefix = ""): NamedLeaf<T>[] {
  if (isLeaf(t)) return [{ path: prefix, value: t }];
  const out: NamedLeaf<T>[] = [];
  const join = (k: string | number) => (prefix === "" ? String(k) : `${prefix}.${k}`);
  if (Array.isArray(t)) {
    t.forEach((v, i) => out.push(...namedLeaves(v, isLeaf, join(i))));
  } else if (t !== null && typeof t === "object") {
    for (const k of Object.keys(t).sort()) out.push(...namedLeaves((t as Record<string, unknown>)[k], isLeaf, join(k)));
  } else {
    throw new TypeError(`namedLeaves: unexpected node ${String(t)} at '${prefix}'`);
  }
  return out;
}

/** Rebuild a tree shaped like `template`, taking each leaf from `byPath` (path -> value). */
export function rebuild<T>(template: unknown, isLeaf: (x: unknown) => boolean, byPath: (path: string) => T, prefix = ""): unknown {
  if (isLeaf(template)) return byPath(prefix);
  const join = (k: string | number) => (prefix === "" ? String(k) : `${prefix}.${k}`);
  if (Array.isArray(template)) return template.map((v, i) => rebuild(v, isLeaf, byPath, join(i)));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(template as object).sort()) out[k] = rebuild((template as Record<string, unknown>)[k], isLeaf, byPath, join(k));
  return out;
}

/** True for engine arrays (leaf test for {@link namedLeaves}). */
export function isArray(x: unknown): x is JArray {
  return x !== null && typeof x === "object" && "shape" in x && "dtype" in x && typeof (x as JArray).dispose === "function";
}

/** Total number of scalars in a tree. */
export function treeSize(t: Tree): number {
  return tree.leaves(t).reduce((s, a) => s + (a as JArray).shape.reduce((p, d) => p * d, 1), 0);
}
