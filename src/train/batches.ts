/**
 * Minibatches from host arrays: shuffled once per epoch by a key-derived permutation, gathered on the
 * host and uploaded as one array per step.
 */
import { random, type Key } from "../core/engine.js";
import { permutation } from "../data/prng.js";
import type { ArrayData } from "../data/types.js";

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

/** Gather rows `idx` of `data` into contiguous host arrays. */
export function gatherRows(data: ArrayData, idx: ArrayLike<number>): { x: Float32Array; y: Int32Array | Float32Array } {
  const d = data.xShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(idx.length * d);
  const y = data.y instanceof Int32Array ? new Int32Array(idx.length) : new Float32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    x.set(data.x.subarray(r * d, (r + 1) * d), i * d);
    y[i] = data.y[r];
  }
  return { x, y };
}

/** Number of steps per epoch (the last partial batch is dropped so every step has the same shape). */
export function stepsPerEpoch(n: number, batchSize: number): number {
  return Math.max(1, Math.floor(n / batchSize));
}

