/** Shared test helpers. */
import assert from "node:assert/strict";
import { key, toHost, type JArray } from "../src/core/engine.js";
import { free, leaves, namedLeaves, type Tree } from "../src/core/tree.js";
import type { Params } from "../src/models/model.js";
import { stepsPerEpoch } from "../src/run/batches.js";
import { DataFormatError } from "../src/data/types.js";

/** Host copies of every leaf of a tree (borrows the tree). */
export async function hostLeaves(t: Tree): Promise<Float32Array[]> {
  return Promise.all(leaves(t).map((a: JArray) => toHost(a.ref)));
}

/** Largest absolute difference between two lists of arrays of the same shapes. */
export function maxAbsDiff(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let m = 0;
  a.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j] - b[i][j]));
  });
  return m;
}

/** A small deterministic classification set (no engine randomness). */
export function tinyClassification(n: number, d: number, k: number, seed = 1) {
  let s = seed;
  const rnd = () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let a = 0;
    for (let j = 0; j < d; j++) {
      x[i * d + j] = rnd() * 2 - 1;
      a += x[i * d + j] * ((j % 3) - 1);
    }
    y[i] = Math.min(k - 1, Math.max(0, Math.floor((a + 1) * k / 2)));
  }
  return { x, y, n, xShape: [d] };
}

/** Assert `fn` throws a DataFormatError for `file` whose message contains every fragment. */
export function throwsData(fn: () => unknown, file: string, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataFormatError, `expected DataFormatError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

/** Steps in `epochs` passes over `n` examples with minibatches of `batchSize` (the last partial batch dropped). */
export function epochSteps(n: number, batchSize: number, epochs: number): number {
  return epochs * stepsPerEpoch(n, Math.min(batchSize, n));
}

/**
 * Draws of a posterior as flat parameter rows (leaf paths in sorted order): all of a set of draws, or
 * `n` drawn with key 99 from a distribution. Consumes the draws it makes.
 */
export async function drawRows(post: { draws(k: ReturnType<typeof key>, n?: number): Params; size: number | undefined }, n: number): Promise<number[][]> {
  const draws = post.draws(key(99), post.size === undefined ? n : undefined);
  const named = namedLeaves(draws);
  const host = await Promise.all(named.map((l) => toHost(l.value.ref)));
  free(draws);
  const s = named[0].value.shape[0];
  return Array.from({ length: s }, (_, i) => host.flatMap((h) => Array.from(h.subarray((i * h.length) / s, ((i + 1) * h.length) / s))));
}
