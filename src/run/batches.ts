/**
 * Minibatches from host arrays: shuffled once per epoch by a key-derived permutation, gathered on the
 * host and uploaded as one array per step.
 */
import { compile, random, split, vmap, type Compiled, type JArray, type Key } from "../core/engine.js";
import { permutation } from "../data/prng.js";

/**
 * A 32-bit host seed drawn from an engine key (consumes it): the bridge from explicit keys to the
 * host generator of data/prng.ts, used for index permutations and other host-side draws.
 */
export function hostSeed(k: Key): number {
  return Number(random.bits(k, [1]).dataSync()[0]) >>> 0;
}

/** A permutation of 0..n-1 determined by the key (consumes it). */
export function hostPermutation(k: Key, n: number): Int32Array {
  return permutation(n, hostSeed(k));
}

/**
 * The shuffles of successive epochs for `copies` copies (0: a single state) of `n` rows. `next(k)`
 * consumes the epochs' key k and returns the next one with the epoch's permutations: k splits into
 * (kE, kNext), kE into one key per copy, and each copy's rows are `hostPermutation(k_copy, n)`.
 * The keys and seeds come from one jitted call and one read-back per epoch, whatever the number of
 * copies; drawing them eagerly cost one dispatch and one read-back per copy (with full batches every
 * step is an epoch: 70% of the time of a 16-chain sampler run on a 6-parameter model). The values are
 * the eager ones (the same Threefry draws).
 */
export function epochShuffles(copies: number, n: number): { next(k: Key): [Key, Int32Array[]]; dispose(): void } {
  const draw: Compiled<[Key], [Key, JArray]> = compile(
    (k: Key): [Key, JArray] => {
      const [kE, kNext] = split(k, 2);
      // One key per copy (`random.split(kE, copies)[c]` is `split(kE, copies)[c]`), their seeds in one vmapped draw.
      const seeds = copies > 0 ? vmap((kc: Key) => random.bits(kc, [1]))(random.split(kE, copies)).reshape([copies]) : random.bits(kE, [1]);
      return [kNext, seeds];
    },
    { consume: [0] },
  );
  return {
    next(k) {
      const [kNext, seeds] = draw(k);
      return [kNext, Array.from(seeds.dataSync(), (s) => permutation(n, Number(s) >>> 0))];
    },
    dispose: () => draw.dispose(),
  };
}

/** Number of steps per epoch (the last partial batch is dropped so every step has the same shape). */
export function stepsPerEpoch(n: number, batchSize: number): number {
  return Math.max(1, Math.floor(n / batchSize));
}

