/**
 * Minibatches from host arrays: shuffled once per epoch by a key-derived permutation, gathered on the
 * host and uploaded as one array per step.
 */
import { fromHost, random, type JArray, type Key } from "../core/engine.js";
import type { ArrayData } from "../data/types.js";
import type { Batch } from "../models/model.js";

/**
 * Host-side randomness derived from an engine key (consumes it): 32 bits from the key seed a
 * small xorshift-multiply generator (mulberry32) used only for index permutations.
 */
export function hostPermutation(k: Key, n: number): Int32Array {
  const bits = random.bits(k, [1]).dataSync();
  let s = Number(bits[0]) >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
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

/** Upload host rows as a batch; with `lead` > 0 the rows are `[lead, n/lead, ...]` (one slice per member or chain). */
export function toBatch(data: ArrayData, rows: { x: Float32Array; y: Int32Array | Float32Array }, lead = 0): Batch {
  const n = rows.y.length;
  const shape = lead > 0 ? [lead, n / lead] : [n];
  return { x: fromHost(rows.x, [...shape, ...data.xShape]), y: fromHost(rows.y, shape) };
}

/** Number of steps per epoch (the last partial batch is dropped so every step has the same shape). */
export function stepsPerEpoch(n: number, batchSize: number): number {
  return Math.max(1, Math.floor(n / batchSize));
}

export type { JArray };
