/**
 * The training loop every method runs through: epochs of shuffled minibatches, jitted steps, the
 * objective read back after every call (which also keeps jax-js's lazy queue from growing; see
 * core/engine.ts), divergence detection, and progress callbacks.
 *
 * With `fuse: u`, u consecutive steps run in one jitted call (core/fuse.ts): on small networks
 * nearly all of a step's cost is call overhead, which fusing divides by u.
 */
import { compile, fromHost, scalar, split, type JArray, type Key } from "../core/engine.js";
import { fuseSteps } from "../core/fuse.js";
import type { Info, InferenceMethod } from "../core/method.js";
import { free, mapTree, type Tree } from "../core/tree.js";
import { takeRows } from "../data/arrays.js";
import type { ArrayData } from "../data/types.js";
import type { Batch, Params } from "../models/model.js";
import { hostPermutation, stepsPerEpoch } from "./batches.js";

/** Progress report, after every jitted call. */
export interface Progress {
  readonly epoch: number;
  readonly epochs: number;
  readonly step: number;
  readonly totalSteps: number;
  /** Objective of the last call (mean over its steps and over copies). */
  readonly loss: number;
  readonly elapsedSeconds: number;
}

/** Options of {@link runSteps}. */
export interface LoopOptions<S = unknown> {
  readonly batchSize: number;
  /** Total number of steps (the last epoch may be partial). */
  readonly steps: number;
  /**
   * Leading axis of the state (ensemble members, chains): each copy gets its own shuffle and its own
   * minibatch, stacked as `[copies, batchSize, ...]`. 0 for a single state.
   */
  readonly copies?: number;
  readonly onProgress?: (p: Progress) => void;
  /** Steps per jitted call (default 1). `afterStep` then sees only multiples of it (and the end). */
  readonly fuse?: number;
  /** Called after every jitted call with the 1-based count of steps done and the state (borrowed). */
  readonly afterStep?: (step: number, state: S) => Promise<void> | void;
}

/** What {@link runSteps} returns. */
export interface LoopResult<S> {
  readonly state: S;
  /** The objective after every call. */
  readonly losses: number[];
  /** The last call's info, each field averaged over its steps and copies. */
  readonly lastInfo: Record<string, number>;
}

/**
 * Run `opts.steps` steps of `method` over `data`, advancing `state` (consumed; the final state is
 * returned). Randomness: `key` is split into one key per epoch (shuffles) and one per call (the
 * method's own).
 * @throws when the objective is not finite, naming the step.
 */
export async function runSteps<S extends Tree>(k: Key, method: Pick<InferenceMethod<S, Info, Params, Batch>, "step">, state: S, data: ArrayData, opts: LoopOptions<S>): Promise<LoopResult<S>> {
  if (!(opts.batchSize >= 1)) throw new RangeError(`batch size must be >= 1, got ${opts.batchSize}`);
  if (data.n < 1) throw new RangeError("the training set is empty");
  if (!(Number.isInteger(opts.steps) && opts.steps >= 0)) throw new RangeError(`steps must be a non-negative integer, got ${opts.steps}`);
  const fuse = opts.fuse ?? 1;
  if (!Number.isInteger(fuse) || fuse < 1) throw new RangeError(`fuse must be a positive integer, got ${fuse}`);
  const lead = opts.copies ?? 0;
  const bs = Math.min(opts.batchSize, data.n);
  const spe = stepsPerEpoch(data.n, bs);
  const total = opts.steps;
  const epochs = Math.ceil(total / spe);
  const copies = Math.max(1, lead);
  // Both calls return the state, the mean objective and every info field's mean, reduced in the program.
  const reduce = (s2: S, info: Info): [S, JArray, Info] => [s2, info.loss.ref.mean(), mapTree((a) => a.mean(), info)];
  const single = compile((kk: Key, s: S, b: Batch) => reduce(...method.step(kk, s, b)), { consume: [0, 1, 2] });
  const fusedSteps = fuseSteps((kk: Key, s: S, b: Batch) => method.step(kk, s, b), fuse);
  const fused = fuse > 1 ? compile((kk: Key, s: S, b: Batch) => reduce(...fusedSteps(kk, s, b)), { consume: [0, 1, 2] }) : undefined;
  const losses: number[] = [];
  let info: Info | undefined;
  const t0 = performance.now();
  let [kEpochs, kSteps] = split(k, 2);
  let perms: Int32Array[] = [];
  let epoch = -1;
  let done = 0;
  /** Row indices of step `t` (0-based), reshuffling at epoch boundaries: copies x bs. */
  const rowsOf = (t: number): Int32Array => {
    const e = Math.floor(t / spe);
    if (e !== epoch) {
      const [kE, kNext] = split(kEpochs, 2);
      kEpochs = kNext;
      perms = lead > 0 ? split(kE, lead).map((ki) => hostPermutation(ki, data.n)) : [hostPermutation(kE, data.n)];
      epoch = e;
    }
    const s = t % spe;
    const idx = new Int32Array(copies * bs);
    perms.forEach((p, m) => idx.set(p.subarray(s * bs, (s + 1) * bs), m * bs));
    return idx;
  };
  try {
    while (done < total) {
      const u = fused && total - done >= fuse ? fuse : 1;
      const idx = new Int32Array(u * copies * bs);
      for (let i = 0; i < u; i++) idx.set(rowsOf(done + i), i * copies * bs);
      const rows = takeRows(data, idx);
      const shape = [...(u > 1 ? [u] : []), ...(lead > 0 ? [lead] : []), bs];
      const batch: Batch = { x: fromHost(rows.x, [...shape, ...data.xShape]), y: fromHost(rows.y, shape) };
      const [kS, kRest] = split(kSteps, 2);
      kSteps = kRest;
      const [next, meanLoss, means] = u > 1 ? fused!(kS, state, batch) : single(kS, state, batch);
      state = next;
      free(info);
      info = means;
      const loss = await scalar(meanLoss);
      if (!Number.isFinite(loss)) {
        throw new Error(`the run diverged: objective ${loss} at step ${done + u} of ${total}; lower the learning rate / step size (lr)`);
      }
      losses.push(loss);
      done += u;
      if (opts.afterStep) await opts.afterStep(done, state);
      opts.onProgress?.({ epoch: Math.min(epochs, Math.floor((done - 1) / spe) + 1), epochs, step: done, totalSteps: total, loss, elapsedSeconds: (performance.now() - t0) / 1000 });
    }
  } finally {
    free(kEpochs);
    free(kSteps);
    single.dispose();
    fused?.dispose();
  }
  const lastInfo: Record<string, number> = {};
  if (info) for (const [name, v] of Object.entries(info)) lastInfo[name] = await scalar(v);
  return { state, losses, lastInfo };
}

/**
 * `steps` steps of any method on one fixed batch, or on none (a data-free target, `batch` undefined):
 * the loop for targets that are not data sets (Gaussian targets, posteriors given as a density). Keys
 * are split as in {@link runSteps}; the objective is read after every step and a non-finite one stops
 * the run with an error naming the step. Consumes `k` and `state`, borrows `batch`.
 *
 * @example
 * const bam = createBam(target, { batchSize: 10, initScale: 1 });
 * const { state } = await iterate(key(1), bam, bam.init(key(0), np.zeros([d])), 200);
 */
export async function iterate<S extends Tree, B>(k: Key, method: Pick<InferenceMethod<S, Info, unknown, B>, "step">, state: S, steps: number, batch?: B): Promise<{ state: S; losses: number[] }> {
  if (!(Number.isInteger(steps) && steps >= 0)) throw new RangeError(`steps must be a non-negative integer, got ${steps}`);
  const step = compile((kk: Key, s: S, b: B | undefined): [S, JArray] => {
    const [s2, info] = method.step(kk, s, b as B);
    return [s2, info.loss.mean()];
  }, { consume: [0, 1] });
  const losses: number[] = [];
  let kk = k;
  try {
    for (let t = 0; t < steps; t++) {
      const [ks, kn] = split(kk, 2);
      kk = kn;
      const [next, lossArr] = step(ks, state, batch);
      state = next;
      const loss = await scalar(lossArr);
      if (!Number.isFinite(loss)) throw new Error(`the run diverged: objective ${loss} at step ${t + 1} of ${steps}`);
      losses.push(loss);
    }
  } finally {
    free(kk);
    step.dispose();
  }
  return { state, losses };
}
