/**
 * Running SG-MCMC chains on a model: K chains stepped together (core/replicate.ts), samples collected
 * on the host, and per-sample traces for convergence diagnostics.
 *
 * Collection rule, for a budget of T = burnin + samples * thin steps per chain:
 * - constant or decaying schedules: after `burnin` steps, every `thin`-th step (S samples);
 * - cyclical schedules (C cycles of length L = ceil(T / C)): S / C samples at the end of every cycle,
 *   every `thin`-th step, all of which must fall in the cycle's sampling stage.
 *
 * Traces (one value per chain and sample) for R-hat and ESS: the mean predictive log-likelihood of
 * up to 500 held-out points, and projections of the parameters on a few random unit directions.
 */
import { compile, fromHost, isArray, namedLeaves, split, toHost, tree, treeSize, type JArray, type Key } from "../core/engine.js";
import { replicate, sliceTree, stackTrees, type Batching, type Replicated } from "../core/replicate.js";
import type { ArrayData } from "../data/types.js";
import { essBulk, essTail, rhat } from "../diagnostics/convergence.js";
import type { PosteriorLeafSamples } from "../io/posterior.js";
import type { Model, Params } from "../models/model.js";
import { fitEpochs, type Progress } from "../train/fit.js";
import type { Sampler } from "./common.js";
import type { Schedule } from "./schedule.js";
import { hostSeed } from "../train/batches.js";
import { createRng } from "../data/prng.js";

/** Options of {@link runChains}. */
export interface ChainOptions {
  readonly chains: number;
  readonly burnin: number;
  readonly samples: number;
  readonly thin: number;
  readonly batchSize: number;
  /** The sampler's schedule (for the cyclical collection rule). */
  readonly schedule: Schedule;
  readonly batching?: Batching;
  /** Held-out points for the predictive log-likelihood trace (the first 500 are used). */
  readonly heldOut?: ArrayData;
  /** Number of random projections traced (default 3). */
  readonly projections?: number;
  /**
   * Steps per jitted call (default: 8 for networks up to 50k parameters, else 1), lowered to a
   * divisor of every collection step and of the run's length.
   */
  readonly fuse?: number;
  readonly onProgress?: (p: Progress) => void;
}

/** Convergence summary of one traced quantity. */
export interface TraceDiagnostics {
  readonly name: string;
  readonly rhat: number;
  readonly essBulk: number;
  readonly essTail: number;
}

/** What {@link runChains} returns. */
export interface ChainResult {
  /** Samples of every leaf, `[chains * samples, ...]`, chain-major. */
  readonly leaves: PosteriorLeafSamples[];
  readonly numSamples: number;
  /** Per traced quantity: `trace[chain][sample]`. */
  readonly traces: Record<string, number[][]>;
  readonly diagnostics: TraceDiagnostics[];
  /** Steps per chain actually run. */
  readonly steps: number;
}

/** The steps (1-based counts of completed steps) after which a sample is collected. */
export function collectionSteps(o: { burnin: number; samples: number; thin: number; schedule: Schedule }): number[] {
  const { burnin, samples, thin, schedule } = o;
  for (const [k, v, min] of [["burnin", burnin, 0], ["samples", samples, 1], ["thin", thin, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`--${k} must be an integer >= ${min}, got ${v}`);
  }
  const total = burnin + samples * thin;
  if (schedule.spec.kind !== "cyclical") return Array.from({ length: samples }, (_, i) => burnin + (i + 1) * thin);
  const c = schedule.spec.cycles;
  if (schedule.spec.totalSteps !== total) throw new Error(`cyclical schedule built for ${schedule.spec.totalSteps} steps, but the run has ${total}`);
  const perCycle = Math.ceil(samples / c);
  const len = Math.ceil(total / c);
  const out: number[] = [];
  for (let cyc = 0; cyc < c && out.length < samples; cyc++) {
    const end = Math.min((cyc + 1) * len, total);
    for (let j = perCycle - 1; j >= 0 && out.length < samples; j--) {
      const t = end - j * thin; // completed steps; the step index just taken is t - 1
      if (!schedule.sampling(t - 1) || schedule.cycle(t - 1) !== cyc) {
        throw new RangeError(
          `cyclical collection: ${perCycle} samples per cycle every ${thin} steps do not fit in the sampling stage of cycles of ${len} steps ` +
            `(exploration fraction ${schedule.spec.explore}); lower --thin or --samples, or lengthen the run with --burnin`,
        );
      }
      out.push(t);
    }
  }
  return out.sort((a, b) => a - b);
}

/**
 * Run `opts.chains` chains of `sampler` from independent initialisations and collect samples.
 * @param k consumed; split for inits, shuffles, noise and projections.
 */
export async function runChains<S extends { params: Params }>(k: Key, model: Model, sampler: Sampler<S>, train: ArrayData, opts: ChainOptions): Promise<ChainResult> {
  const K = opts.chains;
  const [kInit, kInitState, kRun, kProj] = split(k, 4);
  const inits = split(kInit, K).map((ki) => model.init(ki));
  const paramCount = treeSize(inits[0]);
  const stacked = stackTrees(inits);
  const rep = replicate(sampler, K, opts.batching ?? "auto", paramCount);
  const state0 = rep.init(kInitState, stacked);
  const when = collectionSteps(opts);
  const total = opts.burnin + opts.samples * opts.thin;
  const collect = new Set(when);

  // Host sample buffers, chain-major: [chain][sample] per leaf.
  const template = namedLeaves(sliceParams(state0, 0), isArray);
  const names = template.map((l) => l.path);
  const shapes = template.map((l) => l.value.shape);
  tree.dispose(template.map((l) => l.value));
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const buffers = sizes.map((n) => new Float32Array(K * opts.samples * n));

  // Random unit projections over the flattened parameters (host), drawn from kProj.
  const nProj = opts.projections ?? 3;
  const dirs = projections(kProj, sizes, nProj);
  const traces: Record<string, number[][]> = {};
  for (let j = 0; j < nProj; j++) traces[`projection ${j + 1}`] = Array.from({ length: K }, () => []);

  // Held-out predictive log-likelihood per chain, one jitted forward per chain and sample.
  const held = opts.heldOut && opts.heldOut.n > 0 ? firstRows(opts.heldOut, 500) : undefined;
  const heldLl = held
    ? compile((p: Params, x: JArray, y: JArray) => model.logLik(p, { x, y }).mean())
    : undefined;
  const heldX = held ? fromHost(held.x, [held.n, ...held.xShape]) : undefined;
  const heldY = held ? fromHost(held.y, [held.n]) : undefined;
  if (held) traces["held-out log-lik"] = Array.from({ length: K }, () => []);

  let collected = 0;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const align = [...when, total].reduce(gcd, 0);
  let fuse = opts.fuse ?? (paramCount <= 50_000 ? 8 : 1);
  while (fuse > 1 && align % fuse !== 0) fuse--;
  const { state } = await fitEpochs(kRun, rep, state0, train, {
    epochs: 0,
    steps: total,
    fuse,
    batchSize: opts.batchSize,
    lead: K,
    onProgress: opts.onProgress,
    afterStep: async (t, st: Replicated<S>) => {
      if (!collect.has(t)) return;
      for (let c = 0; c < K; c++) {
        const p = sliceParams(st, c);
        const leaves = namedLeaves(p, isArray);
        let offset = 0;
        const proj = new Float64Array(nProj);
        for (let l = 0; l < leaves.length; l++) {
          const h = await toHost(leaves[l].value.ref);
          buffers[l].set(h, (c * opts.samples + collected) * sizes[l]);
          for (let j = 0; j < nProj; j++) {
            const d = dirs[j];
            let s = 0;
            for (let i = 0; i < h.length; i++) s += h[i] * d[offset + i];
            proj[j] += s;
          }
          offset += h.length;
        }
        for (let j = 0; j < nProj; j++) traces[`projection ${j + 1}`][c].push(proj[j]);
        if (heldLl) {
          const v = heldLl(p, heldX!, heldY!);
          traces["held-out log-lik"][c].push((await toHost(v))[0]);
        }
        tree.dispose(p);
      }
      collected++;
    },
  });
  tree.dispose(state as never);
  heldLl?.dispose();
  tree.dispose([heldX, heldY].filter(Boolean) as JArray[]);
  const diagnostics: TraceDiagnostics[] = Object.entries(traces).map(([name, tr]) => diagnose(name, tr));
  return {
    leaves: names.map((name, l) => ({ name, shape: shapes[l], data: buffers[l] })),
    numSamples: K * opts.samples,
    traces,
    diagnostics,
    steps: total,
  };
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

/** Chain c's parameters as new references (views), for either replicated layout. */
function sliceParams<S extends { params: Params }>(st: Replicated<S>, c: number): Params {
  if ("copies" in st) return tree.ref(st.copies[c].params) as Params;
  return sliceTree(st.stacked.params, c);
}

function firstRows(d: ArrayData, n: number): ArrayData {
  const m = Math.min(n, d.n);
  const row = d.xShape.reduce((a, b) => a * b, 1);
  return { x: d.x.subarray(0, m * row), y: d.y.subarray(0, m), n: m, xShape: d.xShape };
}

/** `count` random unit vectors over the concatenated leaves (Gaussian directions, normalised). */
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
