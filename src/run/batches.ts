/**
 * Minibatches from host arrays: shuffled once per epoch by a key-derived permutation, gathered on the
 * host and uploaded as one array per step.
 */
import { random, type Key } from "../core/engine.js";
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

/** Number of steps per epoch (the last partial batch is dropped so every step has the same shape). */
export function stepsPerEpoch(n: number, batchSize: number): number {
  return Math.max(1, Math.floor(n / batchSize));
}

