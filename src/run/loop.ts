/**
 * The training loop every method runs through: epochs of shuffled minibatches, jitted steps, the
 * objective read back after every call (which also keeps jax-js's lazy queue from growing; see
 * core/engine.ts), divergence detection, and progress callbacks.
 *
 * With `fuse: u`, u consecutive steps run in one jitted call (core/fuse.ts): on small networks
 * nearly all of a step's cost is call overhead, which fusing divides by u.
 *
 * Checkpoints: every `checkpoint.every` steps the loop hands its position (steps done, its two PRNG
 * keys, the current epoch's shuffles, the objective so far) and the state to `checkpoint.save`; a run
 * started with that position and state as `resume` takes exactly the steps the uninterrupted run
 * would have taken, so it ends bit-identical.
 *
 * Divergence: every call also returns each step's objective and the sum of the new state, finite
 * exactly when every float in it is. The first non-finite one stops the run with a {@link DivergenceError} naming the step;
 * the state before that call (the last good one) is kept: written as a checkpoint when checkpoints are
 * on, and handed to the caller in the error.
 */
import { compile, fromHost, fromHostExact, np, scalar, split, toHost, toHostExact, type HostArray, type JArray, type Key } from "../core/engine.js";
import { fuseSteps } from "../core/fuse.js";
import type { Info, InferenceMethod } from "../core/method.js";
import { free, keep, leaves, mapTree, sumAll, type Tree } from "../core/tree.js";
import { takeRows } from "../data/arrays.js";
import type { ArrayData } from "../data/types.js";
import type { Batch, Params } from "../models/model.js";
import { epochShuffles, stepsPerEpoch } from "./batches.js";

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
  /** Continue a run from a checkpoint: `state` is the state saved with this position. */
  readonly resume?: LoopPosition;
  /**
   * Save a checkpoint after the first call that completes a multiple of `every` steps (after
   * `afterStep`), and the last good state when the run diverges. `save` borrows the state.
   */
  readonly checkpoint?: { readonly every: number; save(position: LoopPosition, state: S): Promise<void> };
  /**
   * Copies (chains) whose objective goes non-finite while others stay finite are restarted: the state
   * after the call takes those copies from the state before it (`merge(next, before, bad)`, which
   * consumes `next` and borrows `before`), and the run goes on with fresh keys. A copy is restarted at
   * most `maxPerCopy` times for this; the next divergence stops the run. Without this option, any
   * divergence stops it.
   */
  readonly restart?: {
    readonly maxPerCopy: number;
    /**
     * Also restart a copy that runs away while staying finite: when its objective at a step exceeds
     * the median over the copies by more than `z` robust standard deviations of such deviations
     * (1.4826 times their median absolute value over the last {@link RUNAWAY_HISTORY} ones, all
     * copies; none before {@link RUNAWAY_MIN_HISTORY} are recorded) and by more than `minExcess` in
     * the objective's own units (the scale collapses where the copies agree, e.g. when a cyclical
     * schedule's exploring phase takes them all to one mode). It restarts from a snapshot
     * ({@link RUNAWAY_ANCHOR_CALLS}), at most `maxPerCopy` times per copy (a budget of its own); after
     * that the copy goes on as it is, and each call it ends as a runaway is recorded
     * ({@link LoopResult.strays}): its state there is no draw of the target. Default: off.
     */
    readonly runaway?: { readonly z: number; readonly minExcess: number; readonly maxPerCopy: number };
    /** Each copy's sum of every float of its state, `[copies]` (borrows the state; traced). */
    copyTotals(state: S): JArray;
    merge(next: S, before: S, bad: readonly number[]): S;
  };
}

/**
 * A copy restarted by {@link LoopOptions.restart}: which, the 1-based step its objective went
 * non-finite or ran away at, and which of the two; for a runaway, how far its objective was above
 * the copies' median, in robust standard deviations (`z`) and in the objective's units (`excess`).
 */
export type Restart =
  | { readonly copy: number; readonly step: number; readonly reason: "non-finite" }
  | { readonly copy: number; readonly step: number; readonly reason: "runaway"; readonly z: number; readonly excess: number };

/**
 * The end of a call where a copy was a runaway with its restarts used up ({@link LoopOptions.restart}):
 * which copy, and the step count after the call.
 */
export interface Stray {
  readonly copy: number;
  readonly step: number;
}

/** Deviations from the copies' median kept for the runaway check's scale ({@link LoopOptions.restart}). */
export const RUNAWAY_HISTORY = 512;
/** Deviations recorded before the runaway check starts. */
export const RUNAWAY_MIN_HISTORY = 64;
/**
 * Calls between the snapshots a runaway copy restarts from. The state just before the call that
 * ran away is already on its way out (in a momentum sampler the velocity has built up: on UCI
 * energy, three restarts in a row from it ran away again), so runaways go back to a snapshot taken
 * at least this many calls earlier, when no copy was above a quarter of the limit.
 */
export const RUNAWAY_ANCHOR_CALLS = 16;

/**
 * The runaway check of one call: `perCopy` holds each step's objective per copy (`[u x copies]`,
 * step-major, all finite). Returns, per copy, its largest deviation above the median of the copies
 * over the call's steps in robust standard deviations (0 while the history is short), and records
 * the deviations of copies below `limit` in `history` (a runaway's own do not widen the scale).
 */
export function runawayScores(perCopy: ArrayLike<number>, u: number, copies: number, history: number[], limit: number): { z: number[]; excess: number[] } {
  const dev: number[][] = Array.from({ length: copies }, () => []);
  for (let i = 0; i < u; i++) {
    const row = Array.from({ length: copies }, (_, c) => perCopy[i * copies + c]);
    const med = median(row);
    row.forEach((v, c) => dev[c].push(v - med));
  }
  const ready = history.length >= RUNAWAY_MIN_HISTORY;
  // Robust sd of the deviations; the floor keeps identical copies (a spread of 0) from flagging noise.
  const scale = ready ? Math.max(1.4826 * median(history.map(Math.abs)), 1e-6) : Infinity;
  const excess = dev.map((d) => Math.max(...d));
  const z = excess.map((e) => (ready ? e / scale : 0));
  dev.forEach((d, c) => {
    if (z[c] <= limit) history.push(...d);
  });
  if (history.length > RUNAWAY_HISTORY) history.splice(0, history.length - RUNAWAY_HISTORY);
  return { z, excess };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Where a run of {@link runSteps} stands between two calls: all it needs to continue exactly. */
export interface LoopPosition {
  /** Steps done. */
  readonly done: number;
  /** 0-based epoch whose shuffles `perms` are (-1 before the first). */
  readonly epoch: number;
  /** The keys of the next epochs' shuffles and of the next calls. */
  readonly kEpochs: HostArray;
  readonly kSteps: HostArray;
  /** The current epoch's row order, one per copy. */
  readonly perms: readonly Int32Array[];
  /** The objective after every call so far. */
  readonly losses: readonly number[];
  /**
   * The runaway check's recent deviations ({@link LoopOptions.restart}); absent when it is off. Its
   * snapshot needs no saving: a checkpoint also resets the snapshot to the checkpointed state, which
   * is where a resumed run starts.
   */
  readonly runawayHistory?: readonly number[];
  /** The runaway check's restarts used so far per copy, and its strays; absent when it is off. */
  readonly runawayUsed?: readonly number[];
  readonly strays?: readonly Stray[];
}

/** A run stopped by a non-finite objective or state. */
export class DivergenceError<S = unknown> extends Error {
  constructor(
    /** 1-based step where the first non-finite value appeared. */
    readonly step: number,
    readonly totalSteps: number,
    /** What was not finite, e.g. "objective NaN" or "state (objective 3.2)". */
    readonly what: string,
    /** Steps done in the last good state. */
    readonly lastGoodStep: number,
    /** The last good state (owned by the catcher, who frees it). */
    readonly lastGood: S,
  ) {
    super(`the run diverged at step ${step} of ${totalSteps}: ${what} is not finite; the last good state is the one after step ${lastGoodStep}. Lower the learning rate / step size (--lr)`);
    this.name = "DivergenceError";
  }
}

/** What {@link runSteps} returns. */
export interface LoopResult<S> {
  readonly state: S;
  /** The objective after every call. */
  readonly losses: number[];
  /** The last call's info, each field averaged over its steps and copies. */
  readonly lastInfo: Record<string, number>;
  /** Copies restarted from their last good state ({@link LoopOptions.restart}), in order. */
  readonly restarts: readonly Restart[];
  /** Runaways left as they were, their restarts used up ({@link LoopOptions.restart}), in order, including those of a run this one resumed. */
  readonly strays: readonly Stray[];
}

/**
 * Run `opts.steps` steps of `method` over `data`, advancing `state` (consumed; the final state is
 * returned). Randomness: `key` is split into one key per epoch (shuffles) and one per call (the
 * method's own).
 * @throws DivergenceError when the objective or the state is not finite, naming the step.
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
  // Both calls return the state; one vector holding each step's objective (mean over copies) and, last,
  // the sum of every float in the new state, which is finite exactly when they all are (short of an
  // overflow of the sum itself, at |state| ~ 1e38 / size: diverged anyway); one read-back per call;
  // and every info field's mean, reduced in the program. The sum is one pass over the state: ~1.5 ms
  // per step for the 478k-parameter MLP with Adam's moments (a count of np.isfinite took ~4.5 ms).
  const reduce = (s2: S, info: Info, u: number): [S, JArray, Info] => {
    const loss = info.loss.ref;
    const perStep = u > 1 ? loss.reshape([u, loss.size / u]).mean(1) : loss.mean().reshape([1]);
    // With restarts, each step's objective per copy ([u x copies], step-major) and each copy's state
    // sum follow: which copy diverged. The state's total is then the sum of the copies'.
    const copyTotals = lead > 0 && opts.restart ? opts.restart.copyTotals(s2) : undefined;
    const floats = copyTotals ? [] : leaves(s2).filter((a) => String(a.dtype).startsWith("float"));
    const total = copyTotals ? copyTotals.ref.sum() : floats.length > 0 ? sumAll(floats.map((a) => a.ref.sum().astype(np.float32))) : fromHost([0], []);
    const perCopy = copyTotals ? [info.loss.ref.reshape([-1]).astype(np.float32), copyTotals] : [];
    return [s2, np.concatenate([perStep.astype(np.float32), total.reshape([1]), ...perCopy]), mapTree((a) => a.mean(), info)];
  };
  const single = compile((kk: Key, s: S, b: Batch) => reduce(...method.step(kk, s, b), 1), { consume: [0, 1, 2] });
  const fusedSteps = fuseSteps((kk: Key, s: S, b: Batch) => method.step(kk, s, b), fuse);
  const fused = fuse > 1 ? compile((kk: Key, s: S, b: Batch) => reduce(...fusedSteps(kk, s, b), fuse), { consume: [0, 1, 2] }) : undefined;
  const r = opts.resume;
  if (r && !(Number.isInteger(r.done) && r.done >= 0 && r.done <= total)) throw new RangeError(`resume: the checkpoint is at step ${r.done}, the run has ${total} steps`);
  const losses: number[] = r ? [...r.losses] : [];
  const restarts: Restart[] = [];
  // The runaway check (LoopOptions.restart.runaway): its history of deviations and its snapshot.
  const watch = opts.restart?.runaway !== undefined && lead > 1;
  const limit = opts.restart?.runaway?.z ?? Infinity;
  const minExcess = opts.restart?.runaway?.minExcess ?? 0;
  const runawayHistory: number[] = watch && r?.runawayHistory ? [...r.runawayHistory] : [];
  const runawayUsed: number[] = watch && r?.runawayUsed ? [...r.runawayUsed] : new Array<number>(copies).fill(0);
  const strays: Stray[] = watch && r?.strays ? [...r.strays] : [];
  let anchor: S | undefined = watch && r ? keep(state) : undefined;
  let callsSinceAnchor = 0;
  const snapshot = () => {
    free(anchor);
    anchor = keep(state);
    callsSinceAnchor = 0;
  };
  let info: Info | undefined;
  const t0 = performance.now();
  let kEpochs: Key;
  let kSteps: Key;
  if (r) {
    free(k);
    kEpochs = fromHostExact(r.kEpochs);
    kSteps = fromHostExact(r.kSteps);
  } else {
    [kEpochs, kSteps] = split(k, 2);
  }
  let perms: Int32Array[] = r ? [...r.perms] : [];
  let epoch = r ? r.epoch : -1;
  let done = r ? r.done : 0;
  const position = async (): Promise<LoopPosition> => ({
    done,
    epoch,
    kEpochs: await toHostExact(kEpochs.ref),
    kSteps: await toHostExact(kSteps.ref),
    perms: [...perms],
    losses: [...losses],
    ...(watch ? { runawayHistory: [...runawayHistory], runawayUsed: [...runawayUsed], strays: [...strays] } : {}),
  });
  const shuffles = epochShuffles(lead, data.n);
  /** Row indices of step `t` (0-based), reshuffling at epoch boundaries: copies x bs. */
  const rowsOf = (t: number): Int32Array => {
    const e = Math.floor(t / spe);
    if (e !== epoch) {
      [kEpochs, perms] = shuffles.next(kEpochs);
      epoch = e;
    }
    const s = t % spe;
    const idx = new Int32Array(copies * bs);
    perms.forEach((p, m) => idx.set(p.subarray(s * bs, (s + 1) * bs), m * bs));
    return idx;
  };
  const ck = opts.checkpoint;
  if (ck && !(Number.isInteger(ck.every) && ck.every >= 1)) throw new RangeError(`checkpoint every must be a positive integer, got ${ck.every}`);
  try {
    while (done < total) {
      // Where the run stands before this call, kept by reference (no read-back) for a divergence.
      const prior = ck ? { done, epoch, perms, losses: losses.length, kEpochs: kEpochs.ref, kSteps: kSteps.ref } : undefined;
      const kept = keep(state);
      const u = fused && total - done >= fuse ? fuse : 1;
      const idx = new Int32Array(u * copies * bs);
      for (let i = 0; i < u; i++) idx.set(rowsOf(done + i), i * copies * bs);
      const rows = takeRows(data, idx);
      const shape = [...(u > 1 ? [u] : []), ...(lead > 0 ? [lead] : []), bs];
      const batch: Batch = { x: fromHost(rows.x, [...shape, ...data.xShape]), y: fromHost(rows.y, shape) };
      const [kS, kRest] = split(kSteps, 2);
      kSteps = kRest;
      const [next, checks, means] = u > 1 ? fused!(kS, state, batch) : single(kS, state, batch);
      state = next;
      free(info);
      info = means;
      const read = await toHost(checks);
      const perStep = read.subarray(0, u);
      let stateOk = Number.isFinite(read[u]);
      let bad = perStep.findIndex((v) => !Number.isFinite(v));
      const rs = opts.restart;
      // Each step's objective per copy ([u x copies], step-major), read back when restarts are on.
      const perCopy = read.subarray(u + 1, u + 1 + u * copies);
      const used = (c: number) => restarts.filter((r) => r.copy === c && r.reason === "non-finite").length;
      let runaways: { c: number; z: number; excess: number }[] = [];
      let runawayMax = Infinity;
      if (bad < 0 && stateOk && watch) {
        const { z, excess } = runawayScores(perCopy, u, copies, runawayHistory, limit);
        runaways = z.flatMap((v, c) => (v > limit && excess[c] > minExcess ? [{ c, z: v, excess: excess[c] }] : []));
        runawayMax = Math.max(...z);
      }
      const restarted: number[] = [];
      if ((bad >= 0 || !stateOk) && rs && lead > 0) {
        // Which copies went non-finite, by their objectives and their states; restart them if the
        // others are fine and none has used up its restarts.
        const totals = read.subarray(u + 1 + u * copies);
        const firstBad = Array.from({ length: copies }, (_, c) => {
          for (let i = 0; i < u; i++) if (!Number.isFinite(perCopy[i * copies + c])) return i;
          return Number.isFinite(totals[c]) ? -1 : u - 1;
        });
        const badCopies = firstBad.flatMap((i, c) => (i >= 0 ? [c] : []));
        if (badCopies.length > 0 && badCopies.length < copies && badCopies.every((c) => used(c) < rs.maxPerCopy)) {
          state = rs.merge(state, kept, badCopies);
          for (const c of badCopies) restarts.push({ copy: c, step: done + firstBad[c] + 1, reason: "non-finite" });
          restarted.push(...badCopies);
          bad = -1;
          stateOk = true;
        }
      }
      // Runaways (finite) restart while their copy has restarts left; used up, the copy goes on as a stray.
      const retry = runaways.filter((r) => runawayUsed[r.c] < rs!.runaway!.maxPerCopy);
      for (const r of runaways) if (!retry.includes(r)) strays.push({ copy: r.c, step: done + u });
      if (retry.length > 0) {
        state = rs!.merge(state, anchor ?? kept, retry.map((r) => r.c));
        for (const r of retry) {
          restarts.push({ copy: r.c, step: done + u, reason: "runaway", z: r.z, excess: r.excess });
          runawayUsed[r.c]++;
        }
        restarted.push(...retry.map((r) => r.c));
      }
      if (restarted.length > 0) {
        // The call's objective per step over the copies that were not restarted.
        for (let i = 0; i < u; i++) {
          let sum = 0;
          for (let c = 0; c < copies; c++) if (!restarted.includes(c)) sum += perCopy[i * copies + c];
          perStep[i] = sum / (copies - restarted.length);
        }
      }
      if (bad >= 0 || !stateOk) {
        const at = bad >= 0 ? done + bad + 1 : done + u;
        const what = bad >= 0 ? `the objective (${perStep[bad]})` : `the state (objective ${perStep[u - 1]})`;
        if (ck && prior) {
          const at0 = { done: prior.done, epoch: prior.epoch, perms: [...prior.perms], losses: losses.slice(0, prior.losses) };
          await ck.save({ ...at0, kEpochs: await toHostExact(prior.kEpochs), kSteps: await toHostExact(prior.kSteps) }, kept);
        }
        throw new DivergenceError(at, total, what, done, kept);
      }
      free(kept);
      if (prior) free([prior.kEpochs, prior.kSteps]);
      if (watch && ++callsSinceAnchor >= RUNAWAY_ANCHOR_CALLS && restarted.length === 0 && runawayMax <= limit / 4) snapshot();
      const loss = perStep.reduce((a, b) => a + b, 0) / u;
      losses.push(loss);
      const before = done;
      done += u;
      if (opts.afterStep) await opts.afterStep(done, state);
      opts.onProgress?.({ epoch: Math.min(epochs, Math.floor((done - 1) / spe) + 1), epochs, step: done, totalSteps: total, loss, elapsedSeconds: (performance.now() - t0) / 1000 });
      if (ck && done < total && Math.floor(done / ck.every) > Math.floor(before / ck.every)) {
        await ck.save(await position(), state);
        // The snapshot restarts where a resumed run starts, so both runs go on alike.
        if (watch) snapshot();
      }
    }
  } finally {
    free(anchor);
    free(kEpochs);
    free(kSteps);
    single.dispose();
    fused?.dispose();
    shuffles.dispose();
  }
  const lastInfo: Record<string, number> = {};
  if (info) for (const [name, v] of Object.entries(info)) lastInfo[name] = (await toHost(v))[0];
  return { state, losses, lastInfo, restarts, strays };
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
