/**
 * The driver: fits any method of the table (methods.ts) to a model and training data. It resolves the
 * method's options, builds the method from its spec, lays out the run the spec asks for (initial
 * parameters, copies, steps), runs the training loop (run/loop.ts), collects the posterior (the final
 * state's, or the union of the chains' states along the way), records monitors and convergence
 * diagnostics, and returns a {@link Posterior}.
 *
 * Key layout of a run, from its key k: [k0, k1, kRun, kPost, kMon] = split(k, 5). Trajectory runs
 * (samplers) initialise their chains' parameters from k0 and their states from k1; final-state runs
 * the other way round. kRun drives the loop (shuffles and steps), kPost the posterior draws or the
 * samplers' random projections, kMon the monitor's draws. (jax-js's `split(k, n)[i]` does not depend on
 * n, so a run needing fewer keys takes the same ones.) The layout is fixed: a seed gives the same fit in
 * every version of the library.
 */
import { compile, fromHost, key as makeKey, np, split, toHost, type JArray, type Key } from "../core/engine.js";
import type { Info, Posterior } from "../core/method.js";
import { sampleSet, sampleSetFromTensors } from "../core/posterior.js";
import { copyTotals, mergeCopies, replicate, type Batching, type Replicated, type ReplicatedMethod } from "../core/replicate.js";
import { resolveOptions, type DefaultContext, type RunPlan } from "../core/spec.js";
import type { OptionValue } from "../core/options.js";
import { restoreTree, snapshotTree, type SnapshotLeaf } from "../core/snapshot.js";
import { free, keep, namedLeaves, sliceTree, stackTrees, treeSize, type Tree } from "../core/tree.js";
import { takeRows } from "../data/arrays.js";
import type { ArrayData } from "../data/types.js";
import { essBulk, essTail, rhat } from "../diagnostics/convergence.js";
import { nll, regressionMetrics } from "../eval/metrics.js";
import { createRng } from "../data/prng.js";
import { initMembers, logDensity, makeModel, type Batch, type Model, type ModelMethod, type Params } from "../models/model.js";
import type { Method } from "../methods.js";
import { spec as mapSpec } from "../baselines/map.js";
import { evidenceWarmStart } from "./evidence.js";
import { hostPermutation, hostSeed, stepsPerEpoch } from "./batches.js";
import { runSteps, type LoopPosition, type Progress, type Restart, type Stray } from "./loop.js";

/** A learning-curve callback: every `every` steps, `samples` draws from the current posterior. */
export interface Monitor {
  readonly every: number;
  readonly samples: number;
  /** Receives the step count and the draws (borrowed). */
  fn(step: number, draws: Params): Promise<void>;
}

/** Options of {@link fit} besides the method's own. */
export interface FitOptions {
  /** Minibatch size (default 128; at most the training set). */
  readonly batchSize?: number;
  /** The method's options by key (core/options.ts); absent ones take the method's defaults. */
  readonly options?: Readonly<Record<string, OptionValue | undefined>>;
  /**
   * Start from these parameters (borrowed; every copy from the same point) instead of the model's
   * initialiser or the method's warm start, e.g. a network trained before.
   */
  readonly initParams?: Params;
  /** Held-out points for the samplers' predictive log-likelihood trace (the first 500 are used). */
  readonly heldOut?: ArrayData;
  readonly onProgress?: (p: Progress) => void;
  readonly monitor?: Monitor;
  /** How copies (chains, members) are batched (default `"auto"`: by parameter count). */
  readonly batching?: Batching;
  /** Random projections traced for the samplers' diagnostics (default 3). */
  readonly projections?: number;
  /**
   * Hand a {@link FitCheckpoint} to `save` every `every` steps (and the last good state if the run
   * diverges). Not with a monitor.
   */
  readonly checkpoint?: { readonly every: number; save(c: FitCheckpoint): Promise<void> };
  /** Continue from a checkpoint of the same fit (same key, method, options, model and data). */
  readonly resume?: FitCheckpoint;
  /** Held-out training examples for a method whose plan asks for them (set by the driver's first fit). */
  readonly validation?: ArrayData;
}

/** Everything a fit needs to continue exactly where it was: the loop's position, the state, the samples so far. */
export interface FitCheckpoint {
  readonly loop: LoopPosition;
  readonly state: readonly SnapshotLeaf[];
  /** Trajectory runs: the draws collected so far (host buffers, chain-major per leaf) and the traces. */
  readonly trajectory?: { readonly collected: number; readonly buffers: readonly Float32Array[]; readonly traces: Readonly<Record<string, number[][]>> };
}

/** Convergence summary of one traced quantity over the chains. */
export interface TraceDiagnostics {
  readonly name: string;
  readonly rhat: number;
  readonly essBulk: number;
  readonly essTail: number;
}

/** What a fit produced. */
export interface FitResult {
  /** The posterior: a set of draws, or the variational q. */
  readonly posterior: Posterior<Params>;
  /**
   * The set of draws behind the reported predictive: the posterior itself when it is a set, else the
   * plan's `draws` samples from q (drawn with the run's kPost).
   */
  readonly sampled: Posterior<Params>;
  /** The method's options, every default filled in (what posterior.json records). */
  readonly options: Readonly<Record<string, OptionValue>>;
  /** Steps per copy actually run. */
  readonly steps: number;
  /** The last step's info, averaged over copies. */
  readonly lastInfo: Readonly<Record<string, number>>;
  /** Samplers: per traced quantity, `trace[chain][sample]`, and their R-hat / ESS. */
  readonly traces?: Record<string, number[][]>;
  readonly diagnostics?: TraceDiagnostics[];
  /** Samplers with several chains: chains whose objective or state went non-finite and were restarted from their last good state. */
  readonly restarts?: readonly Restart[];
  /**
   * Where chains were runaways with their restarts used up (run/loop.ts strays), and how many draws
   * of each chain were taken there and left out of the posterior.
   */
  readonly strays?: { readonly at: readonly Stray[]; readonly leftOut: readonly number[] };
  /** How the parameters were initialised, when not from the model's initialiser (`map, E epochs`). */
  readonly warmStart?: string;
}

/** Default minibatch size. */
export const DEFAULT_BATCH_SIZE = 128;

/** How many times one chain of a multi-chain run may be restarted from its last good state before the run stops. */
export const MAX_CHAIN_RESTARTS = 3;

/**
 * A chain of a multi-chain run whose objective rises this many robust standard deviations above the
 * chains' median (run/loop.ts `runawayScores`) has run away and restarts from an earlier state, at
 * most {@link MAX_RUNAWAY_RESTARTS} times. On UCI energy split 10 (bench protocol, 4 SGHMC chains)
 * the runaways' first calls scored 20-260 (the learned noise sd of one chain went from 1 to 2.7
 * million in original units, its draws' test RMSE from 1 to 186), while chains drifting and coming
 * back by themselves stayed at 5-12.
 */
export const RUNAWAY_Z = 20;
/**
 * ... and by more than this many standard deviations of the difference between two chains' tempered
 * log densities at stationarity, sqrt(d) nats for d parameters (each has variance ~ d / 2 near a
 * Gaussian mode), i.e. by 10 sqrt(d) / N in the loop's per-datum objective: the robust score's scale
 * can collapse when the chains agree, and a floor keeps ordinary spread from counting as a runaway.
 * The runaways seen on UCI (d = 501, N = 222-691) were 2.7-240 nats per datum above the median,
 * against a floor of 0.3-1.
 */
export const RUNAWAY_SPREAD_SDS = 10;

/**
 * Runaway restarts allowed per chain (a budget apart from {@link MAX_CHAIN_RESTARTS}); after them, draws
 * a chain gives while it is a runaway are left out. Large: a restarted chain only repeats part of its
 * path, while a chain left to run away puts wild draws into the posterior (on UCI yacht split 19 one
 * chain ran away 10 times in 1,000 steps; left alone after its tenth, its draws' RMSE was 56-926
 * against 1.3-5 for the others).
 */
export const MAX_RUNAWAY_RESTARTS = 100;

/** Parameter count up to which sampler runs fuse 8 steps per jitted call. */
const FUSE_MAX_PARAMS = 50_000;

/** Held-out points the samplers' predictive log-likelihood trace uses. */
const TRACE_POINTS = 500;

/**
 * Fit `spec` to `model` on `train` (see the module comment). Consumes `k`.
 * @throws on options the method does not take or values they do not accept, naming the option.
 */
export async function fit(k: Key, spec: Method, model: Model, train: ArrayData, o: FitOptions = {}): Promise<FitResult> {
  if (train.n < 1) throw new RangeError("the training set is empty");
  const batchSize = Math.min(o.batchSize ?? DEFAULT_BATCH_SIZE, train.n);
  const template = model.init(makeKey(0));
  const paramCount = treeSize(template);
  const c: DefaultContext = { n: train.n, batchSize, stepsPerEpoch: stepsPerEpoch(train.n, batchSize), classification: model.likelihood.spec.kind === "categorical", paramCount };
  let options: Record<string, OptionValue>;
  try {
    options = resolveOptions(spec, o.options ?? {}, c) as Record<string, OptionValue>;
  } catch (e) {
    free(template);
    throw e;
  }
  const temperature = typeof options.temperature === "number" ? options.temperature : 1;
  const plan = spec.plan(options, c);
  if (plan.collect === "final" && plan.validation && !o.validation) {
    free(template);
    return fitWithValidation(k, spec, model, train, options, plan.validation, o);
  }
  const validation = o.validation ? validationScorer(model, o.validation) : undefined;
  const [k0, k1, kRun, kPost, kMon] = split(k, 5);
  let method: ModelMethod;
  try {
    method = spec.build({ model, dataSize: train.n, logDensity: logDensity(model, { dataSize: train.n, temperature }), temperature, template, paramCount, batchSize, stepsPerEpoch: c.stepsPerEpoch, ...(validation ? { validation } : {}) }, options);
  } finally {
    free(template);
  }
  const [kParams, kState] = plan.collect === "trajectory" ? [k0, k1] : [k1, k0];
  const copies = plan.copies;
  let params: Params;
  let warmStart: string | undefined;
  if (o.resume) {
    // The state comes from the checkpoint; params only give the state its structure.
    params = copies === undefined ? model.init(kParams) : initMembers(model, kParams, copies);
    if (plan.collect === "final" && plan.warmStart && !o.initParams) warmStart = `map, ${plan.warmStart.epochs} epochs`;
  } else if (o.initParams) {
    free(kParams);
    params = copies === undefined ? keep(o.initParams) : stackTrees(Array.from({ length: copies }, () => keep(o.initParams!)));
  } else if (plan.collect === "final" && plan.warmStart?.evidenceRounds !== undefined) {
    const w = plan.warmStart;
    const e = await evidenceWarmStart(fit, kParams, model, train, { epochs: w.epochs, lr: w.lr, rounds: w.evidenceRounds!, batchSize });
    params = e.params;
    // The method runs under the prior the rounds chose.
    const tuned = makeModel(model.network, model.likelihood, e.prior);
    const t = tuned.init(makeKey(0));
    method = spec.build({ model: tuned, dataSize: train.n, logDensity: logDensity(tuned, { dataSize: train.n, temperature }), temperature, template: t, paramCount, batchSize, stepsPerEpoch: c.stepsPerEpoch, ...(validation ? { validation } : {}) }, options);
    free(t);
    warmStart = `map with its prior tuned by the Laplace evidence: ${e.rounds.map((r) => `${r.epochs} epochs -> scales ${r.priorScales.map((v) => v.toPrecision(3)).join(",")} (log evidence ${r.logEvidence.toFixed(1)})`).join("; ")}`;
  } else if (plan.collect === "final" && plan.warmStart) {
    const w = await fit(kParams, mapSpec, model, train, { batchSize, options: { epochs: plan.warmStart.epochs, ...(plan.warmStart.lr !== undefined ? { lr: plan.warmStart.lr } : {}) } });
    const one = w.posterior.draws(makeKey(0));
    w.posterior.dispose();
    params = sliceTree(one, 0);
    free(one);
    warmStart = `map, ${plan.warmStart.epochs} epochs`;
  } else {
    params = copies === undefined ? model.init(kParams) : initMembers(model, kParams, copies);
  }
  const base = { options, warmStart, batchSize, stepsPerEpoch: c.stepsPerEpoch, paramCount };
  if (o.checkpoint && o.monitor) throw new Error("fit: checkpoints and monitors do not go together (a monitor's draws are not part of the checkpoint)");
  const start = <T extends Tree>(state0: T): T => {
    if (!o.resume) return state0;
    try {
      return restoreTree(state0, o.resume.state);
    } finally {
      free(state0);
    }
  };
  if (plan.collect === "trajectory") {
    free(kMon);
    const chains = replicate(method, plan.copies, o.batching ?? "auto", paramCount);
    return runTrajectory(kRun, kPost, chains, start(chains.init(kState, params)), model, train, plan, base, o);
  }
  const run = copies === undefined ? method : replicate(method, copies, o.batching ?? "auto", paramCount);
  return runFinal(kRun, kPost, kMon, run, start(run.init(kState, params)), train, plan, base, o);
}

/**
 * The NLL of a posterior's function-space predictive on `val` (standardised targets for regression),
 * by the metrics `evaluate` reports; synchronous, for a method's `posterior()`.
 */
export function validationScorer(model: Model, val: ArrayData): { nll: (posterior: Posterior<Params>) => number; n: number } {
  return {
    n: val.n,
    nll(posterior) {
      if (!posterior.predict) throw new Error("validation: the posterior has no function-space predictive to score");
      const p = posterior.predict(makeKey(0), fromHost(val.x, [val.n, ...val.xShape]));
      if (p.kind === "categorical") {
        p.meanEntropy.dispose();
        return nll(p.probs.dataSync() as Float32Array, val.y as Int32Array, model.network.outputDim);
      }
      return regressionMetrics(p.means.dataSync() as Float32Array, p.stds.dataSync() as Float32Array, val.y, { mean: 0, std: 1 }).nll;
    },
  };
}

/** A key derived from `k` (consumed) for work beside a run on `k` itself (the last of 8 splits; a fit uses 5). */
function fold(k: Key): Key {
  const ks = split(k, 8);
  free(ks.slice(0, 7));
  return ks[7];
}

/**
 * A plan with `validation`: a seeded random part of the training examples is held out, the method is
 * fitted on the rest with the held-out part in its build context (it chooses something by it, e.g.
 * the Laplace prior by validation NLL), and `spec.refit` turns that fit's posterior options into the
 * options of a second fit on all the training examples; the result is the second fit's, with
 * `refit`'s records added to its options and its posterior's. The second fit runs on `k` itself,
 * as a fit without validation would (the same MAP warm start, for one). Consumes `k`.
 */
async function fitWithValidation(k: Key, spec: Method, model: Model, train: ArrayData, options: Record<string, OptionValue>, fraction: number, o: FitOptions): Promise<FitResult> {
  if (!spec.refit) {
    free(k);
    throw new Error(`${spec.name}: its plan holds out validation data but the spec has no refit`);
  }
  const v = Math.round(fraction * train.n);
  if (v < 1 || v >= train.n) {
    free(k);
    throw new RangeError(`${spec.name}: ${train.n} training examples are too few to hold out a validation part of ${Math.round(fraction * 100)}%`);
  }
  if (o.checkpoint || o.resume || o.monitor) {
    free(k);
    throw new Error(`${spec.name}: a run that holds out validation data (two fits) does not take checkpoints, resume or a monitor`);
  }
  const [kSplit, kFirst] = split(fold(k.ref), 2);
  const perm = hostPermutation(kSplit, train.n);
  const validation = takeRows(train, perm.slice(0, v).sort());
  const rest = takeRows(train, perm.slice(v).sort());
  const first = await fit(kFirst, spec, model, rest, { ...o, validation, onProgress: undefined });
  const chosen = spec.refit(first.posterior.options);
  if (first.sampled !== first.posterior) first.sampled.dispose();
  first.posterior.dispose();
  const second = await fit(k, spec, model, train, { ...o, options: { ...o.options, ...chosen.options } });
  const posterior: Posterior<Params> = { ...second.posterior, options: { ...second.posterior.options, ...chosen.posterior } };
  const sampled = second.sampled === second.posterior ? posterior : second.sampled;
  return { ...second, posterior, sampled, options: { ...options, ...chosen.saved } };
}

/** The loop's checkpoint option for a fit's: the state snapshot plus what `extra` adds. */
function loopCheckpoint<S>(o: FitOptions, extra: () => Pick<FitCheckpoint, "trajectory"> = () => ({})) {
  const c = o.checkpoint;
  if (!c) return undefined;
  return { every: c.every, save: async (loop: LoopPosition, state: S) => c.save({ loop, state: await snapshotTree(state), ...extra() }) };
}

type RunBase = { options: Record<string, OptionValue>; warmStart?: string; batchSize: number; stepsPerEpoch: number; paramCount: number };

/** A final-state run: `epochs` of steps, then the final state's posterior (and draws from it). */
async function runFinal(kRun: Key, kPost: Key, kMon: Key, run: ModelMethod, state0: Tree, train: ArrayData, plan: Extract<RunPlan, { collect: "final" }>, b: RunBase, o: FitOptions): Promise<FitResult> {
  const steps = plan.epochs * b.stepsPerEpoch;
  let kM = kMon;
  const mon = o.monitor;
  const afterStep = mon
    ? async (step: number, state: Tree) => {
        if (step % mon.every !== 0) return;
        const [ka, kb] = split(kM, 2);
        kM = kb;
        await showMonitor(mon, step, run.posterior(state), ka);
      }
    : undefined;
  const { state, lastInfo } = await runSteps(kRun, run, state0, train, {
    batchSize: b.batchSize,
    steps,
    copies: plan.copies ?? 0,
    onProgress: o.onProgress,
    afterStep,
    resume: o.resume?.loop,
    checkpoint: loopCheckpoint(o),
  });
  free(kM);
  const posterior = run.posterior(state);
  free(state);
  let sampled = posterior;
  if (posterior.size === undefined) sampled = sampleSet(posterior.draws(kPost, plan.draws ?? 1));
  else free(kPost);
  return { options: b.options, warmStart: b.warmStart, posterior, sampled, steps, lastInfo };
}

/**
 * A trajectory run: the chains step together for `steps` steps; after each step in `collectAt` every
 * chain's parameters are copied to the host (chain-major), with the traces R-hat and ESS are computed
 * from: the mean predictive log-likelihood of up to 500 held-out points, and projections of the
 * parameters on a few random unit directions. A monitor sees the chains' current states every
 * `every` steps (the fused calls are aligned to it).
 */
async function runTrajectory(
  kRun: Key,
  kProj: Key,
  chains: ReplicatedMethod<Tree, Info, Params, Batch>,
  state0: Replicated<Tree>,
  model: Model,
  train: ArrayData,
  plan: Extract<RunPlan, { collect: "trajectory" }>,
  b: RunBase,
  o: FitOptions,
): Promise<FitResult> {
  const K = chains.copies;
  const S = plan.collectAt.length;
  const collect = new Set(plan.collectAt);
  // Host sample buffers, chain-major: [chain][sample] per leaf.
  const first = chains.posteriorOf(state0, 0);
  const one = first.draws(makeKey(0));
  first.dispose();
  const template = namedLeaves(one).map((l) => ({ path: l.path, shape: l.value.shape.slice(1) }));
  const like = sliceTree(one, 0);
  free(one);
  const sizes = template.map((l) => l.shape.reduce((a, d) => a * d, 1));
  const saved = o.resume?.trajectory;
  if (o.resume && !saved) throw new Error("resume: the checkpoint holds no samples, but this method collects them along the run");
  if (saved && (saved.buffers.length !== sizes.length || saved.buffers.some((buf, i) => buf.length !== K * S * sizes[i]))) {
    throw new Error("resume: the checkpoint's sample buffers do not match this run's chains, samples and parameters");
  }
  const buffers = saved ? saved.buffers.map((buf) => Float32Array.from(buf)) : sizes.map((n) => new Float32Array(K * S * n));
  const nProj = o.projections ?? 3;
  const dirs = projections(kProj, sizes, nProj);
  const traces: Record<string, number[][]> = {};
  for (let j = 0; j < nProj; j++) traces[`projection ${j + 1}`] = Array.from({ length: K }, () => []);
  const held = o.heldOut && o.heldOut.n > 0 ? firstRows(o.heldOut, TRACE_POINTS) : undefined;
  const heldLl = held ? compile((p: Params, x: JArray, y: JArray) => model.logLik(p, { x, y }).mean()) : undefined;
  const heldX = held ? fromHost(held.x, [held.n, ...held.xShape]) : undefined;
  const heldY = held ? fromHost(held.y, [held.n]) : undefined;
  if (held) traces["held-out log-lik"] = Array.from({ length: K }, () => []);
  if (saved) for (const [name, tr] of Object.entries(saved.traces)) if (name in traces) traces[name] = tr.map((c) => [...c]);
  let collected = saved ? saved.collected : 0;
  const gcd = (a: number, c: number): number => (c === 0 ? a : gcd(c, a % c));
  const mon = o.monitor;
  const align = [...plan.collectAt, plan.steps, ...(mon ? [mon.every] : [])].reduce(gcd, 0);
  let fuse = b.paramCount <= FUSE_MAX_PARAMS ? 8 : 1;
  while (fuse > 1 && align % fuse !== 0) fuse--;
  const { state, lastInfo, restarts, strays } = await runSteps(kRun, chains, state0, train, {
    batchSize: b.batchSize,
    steps: plan.steps,
    fuse,
    copies: K,
    // With several chains, one that diverges restarts from its last good state (up to 3 times), and
    // one that runs away (finite, far above the others) from an earlier snapshot.
    restart:
      K > 1
        ? { maxPerCopy: MAX_CHAIN_RESTARTS, runaway: plan.runawayCheck ? { z: RUNAWAY_Z, minExcess: (RUNAWAY_SPREAD_SDS * Math.sqrt(b.paramCount)) / train.n, maxPerCopy: MAX_RUNAWAY_RESTARTS } : undefined, copyTotals: (s) => copyTotals(s, K), merge: (next, before, bad) => mergeCopies(next, before, bad, K) }
        : undefined,
    onProgress: o.onProgress,
    resume: o.resume?.loop,
    checkpoint: loopCheckpoint(o, () => ({ trajectory: { collected, buffers, traces } })),
    afterStep: async (t, st) => {
      // The monitor sees the chains' current states (K draws; a set of draws ignores the key).
      if (mon && t % mon.every === 0) await showMonitor(mon, t, chains.posterior(st), makeKey(0));
      if (!collect.has(t)) return;
      // Every chain's parameters (a point mass's draw ignores the key), then one read-back per leaf
      // for all chains: a read-back per chain and leaf cost more than the steps on small models.
      const k0 = makeKey(0);
      const ps = Array.from({ length: K }, (_, c) => {
        const post = chains.posteriorOf(st, c);
        const drawn = post.draws(k0.ref);
        post.dispose();
        const p = sliceTree(drawn, 0);
        free(drawn);
        return p;
      });
      k0.dispose();
      const byLeaf = ps.map((p) => namedLeaves(p).map((l) => l.value));
      const host = await Promise.all(byLeaf[0].map((_, l) => toHost(K === 1 ? byLeaf[0][l].ref : np.concatenate(byLeaf.map((ls) => ls[l].ref.reshape([-1]))))));
      for (let c = 0; c < K; c++) {
        let offset = 0;
        const proj = new Float64Array(nProj);
        for (let l = 0; l < host.length; l++) {
          const h = host[l].subarray(c * sizes[l], (c + 1) * sizes[l]);
          buffers[l].set(h, (c * S + collected) * sizes[l]);
          for (let j = 0; j < nProj; j++) {
            const d = dirs[j];
            let s = 0;
            for (let i = 0; i < h.length; i++) s += h[i] * d[offset + i];
            proj[j] += s;
          }
          offset += h.length;
        }
        for (let j = 0; j < nProj; j++) traces[`projection ${j + 1}`][c].push(proj[j]);
        if (heldLl) traces["held-out log-lik"][c].push((await toHost(heldLl(ps[c], heldX!, heldY!)))[0]);
        free(ps[c]);
      }
      collected++;
    },
  });
  free(state);
  heldLl?.dispose();
  free([heldX, heldY]);
  const diagnostics = Object.entries(traces).map(([name, tr]) => diagnose(name, tr));
  // Draws taken where a chain was a runaway with its restarts used up (a stray) are left out; the
  // traces keep them, so the diagnostics show the chain as it ran.
  const keep = Array.from({ length: K * S }, (_, i) => !strays.some((r) => r.copy === Math.floor(i / S) && r.step === plan.collectAt[i % S]));
  const kept = keep.filter(Boolean).length;
  const leftOut = Array.from({ length: K }, (_, c) => keep.slice(c * S, (c + 1) * S).filter((k) => !k).length);
  const tensors = template.map((l, i) => ({ name: l.path, shape: [kept, ...l.shape], data: keptDraws(buffers[i], sizes[i], keep) }));
  const posterior = sampleSetFromTensors(like, tensors, kept);
  free(like);
  return { options: b.options, warmStart: b.warmStart, posterior, sampled: posterior, steps: plan.steps, lastInfo, traces, diagnostics, restarts, ...(strays.length > 0 ? { strays: { at: strays, leftOut } } : {}) };
}

/**
 * The draws flagged in `keep` from a buffer of `keep.length` draws of `size` floats each, in order;
 * the buffer itself when every draw is kept.
 */
export function keptDraws(buf: Float32Array, size: number, keep: readonly boolean[]): Float32Array {
  if (keep.every(Boolean)) return buf;
  const out = new Float32Array(keep.filter(Boolean).length * size);
  let j = 0;
  keep.forEach((k, i) => {
    if (k) out.set(buf.subarray(i * size, (i + 1) * size), j++ * size);
  });
  return out;
}

/**
 * Hand the monitor draws from `post` (consumed): all of a set of draws, or `samples` fresh ones from a
 * distribution (drawn with `k`, consumed). The draws are freed once the monitor returns.
 */
async function showMonitor(mon: Monitor, step: number, post: Posterior<Params>, k: Key): Promise<void> {
  const draws = post.draws(k, post.size === undefined ? mon.samples : undefined);
  post.dispose();
  try {
    await mon.fn(step, draws);
  } finally {
    free(draws);
  }
}

/**
 * R-hat and bulk/tail ESS of a trace; NaN where they are undefined: fewer than 4 draws per chain, or
 * a non-finite value in the trace.
 */
export function diagnose(name: string, trace: number[][]): TraceDiagnostics {
  const finite = trace.every((c) => c.every(Number.isFinite));
  if (trace.length === 0 || trace[0].length < 4 || !finite) return { name, rhat: NaN, essBulk: NaN, essTail: NaN };
  return { name, rhat: rhat(trace), essBulk: essBulk(trace), essTail: essTail(trace) };
}

function firstRows(d: ArrayData, n: number): ArrayData {
  const m = Math.min(n, d.n);
  const row = d.xShape.reduce((a, b) => a * b, 1);
  return { x: d.x.subarray(0, m * row), y: d.y.subarray(0, m), n: m, xShape: d.xShape };
}

/** `count` random unit vectors over the concatenated leaves (Gaussian directions, normalised; consumes k). */
function projections(k: Key, sizes: number[], count: number): Float32Array[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const rng = createRng(hostSeed(k));
  return Array.from({ length: count }, () => {
    const v = new Float32Array(total);
    let norm = 0;
    for (let i = 0; i < total; i++) {
      const g = rng.normal();
      v[i] = g;
      norm += g * g;
    }
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < total; i++) v[i] *= inv;
    return v;
  });
}
