/**
 * The training loop shared by every method that advances a state with minibatches: epochs of
 * shuffled minibatches, one jitted step per minibatch, the objective read back every step (which also
 * keeps jax-js's lazy queue from growing; see core/engine.ts), and a progress callback.
 */
import { compile, free, scalar, split, type JArray, type Key, type Tree } from "../core/engine.js";
import type { ArrayData } from "../data/types.js";
import type { Batch } from "../models/model.js";
import { gatherRows, hostPermutation, stepsPerEpoch, toBatch } from "./batches.js";

/** What the loop needs from a method: a step that returns the new state and a scalar `loss`. */
export interface Steppable<S> {
  step(key: Key, state: S, batch: Batch): [S, { loss: JArray }];
}

/** Progress report, once per step. */
export interface Progress {
  readonly epoch: number;
  readonly epochs: number;
  readonly step: number;
  readonly totalSteps: number;
  /** Objective of this step (for ensembles, the mean over members). */
  readonly loss: number;
  readonly elapsedSeconds: number;
}

/** Options of {@link fitEpochs}. */
export interface FitOptions {
  readonly epochs: number;
  readonly batchSize: number;
  /**
   * Leading axis of the state (ensemble members, chains): each gets its own shuffle and its own
   * minibatch, stacked as `[lead, batchSize, ...]`. 0 for a single state.
   */
  readonly lead?: number;
  readonly onProgress?: (p: Progress) => void;
}

/**
 * Run `epochs` passes over `data`, advancing `state` (consumed; the final state is returned).
 * Randomness: `key` is split into one key per epoch (shuffles) and one per step (the method's own).
 */
export async function fitEpochs<S extends Tree>(
  k: Key,
  method: Steppable<S>,
  state: S,
  data: ArrayData,
  opts: FitOptions,
): Promise<{ state: S; losses: number[] }> {
  if (!(opts.epochs >= 0) || !Number.isInteger(opts.epochs)) throw new RangeError(`fit: epochs must be a non-negative integer, got ${opts.epochs}`);
  if (!(opts.batchSize >= 1)) throw new RangeError(`fit: batch size must be >= 1, got ${opts.batchSize}`);
  if (data.n < 1) throw new RangeError("fit: the training set is empty");
  const lead = opts.lead ?? 0;
  const bs = Math.min(opts.batchSize, data.n);
  const spe = stepsPerEpoch(data.n, bs);
  const total = spe * opts.epochs;
  const step = compile((kk: Key, s: S, b: Batch) => method.step(kk, s, b), { consume: [0, 1, 2] });
  const losses: number[] = [];
  const t0 = performance.now();
  let [kEpochs, kSteps] = split(k, 2);
  let done = 0;
  try {
    for (let e = 0; e < opts.epochs; e++) {
      const [kE, kNext] = split(kEpochs, 2);
      kEpochs = kNext;
      const perms = lead > 0 ? split(kE, lead).map((ki) => hostPermutation(ki, data.n)) : [hostPermutation(kE, data.n)];
      for (let s = 0; s < spe; s++) {
        const idx = new Int32Array(perms.length * bs);
        perms.forEach((p, m) => idx.set(p.subarray(s * bs, (s + 1) * bs), m * bs));
        const batch = toBatch(data, gatherRows(data, idx), lead);
        const [kS, kRest] = split(kSteps, 2);
        kSteps = kRest;
        const [next, info] = step(kS, state, batch);
        state = next;
        const loss = await scalar(info.loss.mean());
        losses.push(loss);
        done++;
        opts.onProgress?.({ epoch: e + 1, epochs: opts.epochs, step: done, totalSteps: total, loss, elapsedSeconds: (performance.now() - t0) / 1000 });
      }
    }
  } finally {
    free(kEpochs);
    free(kSteps);
    step.dispose();
  }
  return { state, losses };
}
