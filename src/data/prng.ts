/**
 * Seeded host-side randomness for data loading: shuffles, splits and toy-data generation.
 *
 * The generator is mulberry32 (Tommy Ettinger's 32-bit state, xorshift-multiply output), whose
 * state is first scrambled with one splitmix32 step so that nearby seeds (0, 1, 2, ...) give
 * unrelated streams. It is small, fast and fully deterministic across platforms; it is not
 * cryptographic. Nothing in the data layer uses the global, unseeded JS generator.
 */

/** A deterministic stream of pseudo-random numbers. */
export interface Rng {
  /** Next 32-bit unsigned integer. */
  nextUint32(): number;
  /** Next float, uniform in [0, 1) with 32 bits of resolution. */
  next(): number;
  /** Next integer, uniform in 0..n-1 (unbiased, by rejection). Expects 1 <= n <= 2^32. */
  nextInt(n: number): number;
  /** Next standard normal draw (Box–Muller). */
  normal(): number;
}

/**
 * Fold a seed into 32 bits. Expects a safe integer (negative values and values beyond 2^32
 * are allowed and folded); throws a RangeError otherwise.
 */
export function seedToUint32(seed: number): number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0;
}

/** One splitmix32 step: a bijective 32-bit mixer, used to decorrelate consecutive seeds. */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Create a mulberry32 generator from an integer seed (see {@link seedToUint32}). */
export function createRng(seed: number): Rng {
  let s = splitmix32(seedToUint32(seed));
  let spare: number | undefined;
  const nextUint32 = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = (): number => nextUint32() / 4294967296;
  const nextInt = (n: number): number => {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new RangeError(`nextInt: n must be an integer in 1..2^32, got ${n}`);
    // Reject the top partial block so every residue is equally likely.
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const u = nextUint32();
      if (u < limit) return u % n;
    }
  };
  const normal = (): number => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const u1 = 1 - next(); // (0, 1]: keeps log finite
    const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
  return { nextUint32, next, nextInt, normal };
}

/** Shuffle `arr` in place with Fisher–Yates driven by `rng`; returns `arr`. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(arr: T, rng: Rng): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = arr[i];
    arr[i] = arr[j];
    arr[j] = t;
  }
  return arr;
}

/** A uniformly random permutation of 0..n-1, deterministic in `seed`. Expects n >= 0. */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, createRng(seed));
}
