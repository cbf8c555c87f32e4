/**
 * The array engine boundary: the one place that knows jax-js's ownership rules.
 *
 * jax-js counts references: every function consumes its array arguments, `x.ref` adds a reference,
 * `x.dispose()` drops one. Method code in bayesdl is written as pure traced functions (inside `jit`,
 * where a value used twice needs `.ref`) and never manages buffers outside them; the loops that carry
 * state between jitted calls go through {@link compile} and the ownership helpers of core/tree.ts
 * (`keep`, `free`).
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
  jvp,
  vjp,
  hessian,
  numpy as np,
  random,
  tree,
  type Array as JArray,
  type JsTree,
} from "@jax-js/jax";

export { np, nn, lax, random, tree, jit, vmap, grad, valueAndGrad, vjp };
export type { JArray, JsTree };

/** A PRNG key (jax-js threefry key, `uint32[2]`). */
export type Key = JArray;

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
 * jax-js workaround: `jit` rejects `undefined` and `null` arguments ("Unknown value: undefined"), which
 * data-free targets pass as their batch. Such arguments are closed over instead: one program is traced
 * per pattern of missing arguments.
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
  type Jitted = ((...args: unknown[]) => R) & { dispose(): void };
  const programs = new Map<string, Jitted>();
  const call = (...args: A): R => {
    const missing = args.map((a) => (a === undefined || a === null ? "1" : "0")).join("");
    let jitted = programs.get(missing);
    if (!jitted) {
      const given = (xs: unknown[]) => xs.filter((_, i) => missing[i] !== "1");
      const full = (xs: unknown[]): A => {
        let j = 0;
        return args.map((a, i) => (missing[i] === "1" ? a : xs[j++])) as A;
      };
      const staticIdx = given(args.map((_, i) => i)).flatMap((i, j) => (statics.has(i as number) ? [j] : []));
      jitted = jit(((...xs: unknown[]) => f(...full(xs))) as never, staticIdx.length ? { staticArgnums: staticIdx } : undefined) as unknown as Jitted;
      programs.set(missing, jitted);
    }
    const passed = args.map((a, i) => (consume.has(i) || statics.has(i) ? a : tree.ref(a as JsTree<JArray>)));
    return jitted(...passed.filter((_, i) => missing[i] !== "1"));
  };
  return Object.assign(call, {
    dispose: () => {
      for (const p of programs.values()) p.dispose();
      programs.clear();
    },
  });
}

/**
 * Upload a host array to the engine: float32 unless the data are an `Int32Array` or `dtype` says
 * otherwise.
 *
 * jax-js workaround (0.1.25, Node 20): `np.array(Float64Array)` throws `ReferenceError: Float16Array
 * is not defined` (it checks `instanceof Float16Array` before `Float64Array`). float64 data are sent as
 * two float32 arrays hi = fround(x), lo = fround(x - hi) and added in float64, which keeps ~48 bits of
 * the mantissa (relative error <= 2^-48, ~4e-15).
 */
export function fromHost(
  data: Float32Array | Int32Array | Float64Array | ArrayLike<number>,
  shape: readonly number[],
  dtype: "float32" | "int32" | "float64" = data instanceof Int32Array ? "int32" : "float32",
): JArray {
  if (dtype === "float64") {
    const hi = Float32Array.from(data);
    const lo = Float32Array.from(data, (x, i) => x - hi[i]);
    return np.array(hi).astype(np.float64).add(np.array(lo).astype(np.float64)).reshape([...shape]);
  }
  if (dtype === "int32") return np.array(data instanceof Int32Array ? data : Int32Array.from(data), { dtype: np.int32 }).reshape([...shape]);
  return np.array(data instanceof Float32Array ? data : Float32Array.from(data), { dtype: np.float32 }).reshape([...shape]);
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

/**
 * Typed forms of jax-js's autodiff over a first argument that is any pytree `P` (jax-js types its
 * transformations over its own tree type; these keep the caller's parameter types).
 */
/** `[f(x, ...rest), df/dx]`, the gradient shaped like x. Traceable; consumes its arguments. */
export function valueAndGradient<P, R extends unknown[]>(f: (x: P, ...rest: R) => JArray): (x: P, ...rest: R) => [JArray, P] {
  return valueAndGrad(f as never) as unknown as (x: P, ...rest: R) => [JArray, P];
}

/** `df/dx`, shaped like x. Traceable; consumes its arguments. */
export function gradient<P, R extends unknown[]>(f: (x: P, ...rest: R) => JArray): (x: P, ...rest: R) => P {
  return grad(f as never) as unknown as (x: P, ...rest: R) => P;
}

/** `[df/dx, aux]` for `f` returning `[value, aux]`. Traceable; consumes its arguments. */
export function gradientWithAux<P, A, R extends unknown[]>(f: (x: P, ...rest: R) => [JArray, A]): (x: P, ...rest: R) => [P, A] {
  return grad(f as never, { hasAux: true }) as unknown as (x: P, ...rest: R) => [P, A];
}

/**
 * Forward-mode product `[f(x), J_f(x) t]` (tangent shaped like x). Traceable; consumes `x` and `t`.
 * The linearised predictive and sampled Laplace use it for J z without building J.
 */
export function jvpOf<P>(f: (x: P) => JArray, x: P, t: P): [JArray, JArray] {
  return jvp(f as never, [x] as never, [t] as never) as unknown as [JArray, JArray];
}

/**
 * Reverse-mode product: `[f(x), back]` with `back(c) = J_f(x)^T c` shaped like x. Traceable; consumes
 * `x`; `back` consumes its cotangent and may be called more than once; `back.dispose()` releases the
 * residuals it holds (needed outside `jit`).
 */
export function vjpOf<P>(f: (x: P) => JArray, x: P): [JArray, ((c: JArray) => P) & { dispose(): void }] {
  const [out, back] = vjp(f as never, [x] as never) as unknown as [JArray, ((c: JArray) => P[]) & { dispose(): void }];
  return [out, Object.assign((c: JArray) => back(c)[0], { dispose: () => back.dispose() })];
}

/** The Hessian `[d, d]` of a scalar function of a vector `x` `[d]` (forward over reverse). Traceable; consumes `x`. */
export function hessianOf(f: (x: JArray) => JArray, x: JArray): JArray {
  return (hessian(f as never) as unknown as (x: JArray) => JArray)(x);
}

/** `vmap(f, inAxes)` with the caller's argument and result types (jax-js types them over its own trees). */
export function vmapped<A extends unknown[], R>(f: (...args: A) => R, inAxes?: (number | null)[]): (...args: A) => R {
  return vmap(f as never, inAxes) as unknown as (...args: A) => R;
}

/** Element types a state can hold, read and written exactly by {@link toHostExact} / {@link fromHostExact}. */
export type HostDtype = "float32" | "float64" | "int32" | "uint32";

/** An array on the host with its engine dtype, bit for bit. */
export interface HostArray {
  readonly dtype: HostDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array | Float64Array | Int32Array | Uint32Array;
}

/** Read an array to the host with its own dtype and every bit (consumes it); for checkpoints. */
export async function toHostExact(a: JArray): Promise<HostArray> {
  const shape = [...a.shape];
  const dtype = String(a.dtype);
  const d = await a.data();
  if (dtype === "float32") return { dtype, shape, data: d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>) };
  if (dtype === "float64") return { dtype, shape, data: d instanceof Float64Array ? d : Float64Array.from(d as ArrayLike<number>) };
  if (dtype === "int32") return { dtype, shape, data: d instanceof Int32Array ? d : Int32Array.from(d as ArrayLike<number>) };
  if (dtype === "uint32") return { dtype, shape, data: d instanceof Uint32Array ? d : Uint32Array.from(d as ArrayLike<number>) };
  throw new TypeError(`toHostExact: arrays of dtype ${dtype} are not supported (float32, float64, int32, uint32)`);
}

/**
 * The array {@link toHostExact} read, bit for bit. float64 goes through the Float16Array workaround of
 * {@link fromHost} in three float32 parts, hi = fround(x), mid = fround(x - hi), lo = x - hi - mid:
 * each remainder is exact in float64 and lo has at most 5 significant bits, so hi + mid + lo = x
 * exactly for |x| within float32's normal range (about 1e-38 to 3e38).
 */
export function fromHostExact(h: HostArray): JArray {
  const shape = [...h.shape];
  if (h.dtype === "uint32") return np.array(h.data instanceof Uint32Array ? h.data : Uint32Array.from(h.data), { dtype: np.uint32 }).reshape(shape);
  if (h.dtype !== "float64") return fromHost(h.data as Float32Array | Int32Array, shape, h.dtype);
  const x = h.data;
  const hi = Float32Array.from(x);
  const mid = Float32Array.from(x, (v, i) => v - hi[i]);
  const lo = Float32Array.from(x, (v, i) => v - hi[i] - mid[i]);
  const f64 = (p: Float32Array) => np.array(p).astype(np.float64);
  return f64(hi).add(f64(mid)).add(f64(lo)).reshape(shape);
}
