/**
 * The table of inference methods the CLI (and any other front end) can run. Each entry turns a
 * model, training data and options into posterior samples (host arrays with a leading sample axis)
 * plus anything worth saving beside them. Families add entries here; nothing else in the job layer
 * knows a method by name.
 */
import { split, tree, treeSize, type Key, type Tree } from "../core/engine.js";
import { create as createEnsemble, initMembers, stackTrees } from "../baselines/ensemble.js";
import { create as createMap } from "../baselines/map.js";
import type { ArrayData } from "../data/types.js";
import type { NamedTensor, PosteriorLeafSamples, VariationalMeta } from "../io/posterior.js";
import { logDensity, type Model } from "../models/model.js";
import { create as createSgld } from "../sgmcmc/sgld.js";
import { create as createPsgld } from "../sgmcmc/psgld.js";
import { create as createSghmc } from "../sgmcmc/sghmc.js";
import { runChains, type TraceDiagnostics } from "../sgmcmc/run.js";
import { constant, cyclical, polynomial, type Schedule } from "../sgmcmc/schedule.js";
import { fitEpochs, type Progress } from "../train/fit.js";
import { samplesToHost } from "./posterior.js";
import { VI_METHODS } from "./vi-methods.js";

/**
 * Variational methods' flags: Monte Carlo draws per step (bbb 1, alpha 5, proximal-svi 2; gsm/bam
 * batch 8), initial posterior standard deviation, alpha and objective of `alpha`, lambda of
 * proximal-svi and bam, inner steps of proximal-svi, coupling layers of `flow`. Undefined means the
 * method's default. Shared by the fit job's options (src/jobs/fit.ts).
 */
export interface VariationalFlags {
  readonly mc?: number;
  readonly initStd?: number;
  readonly alpha?: number;
  readonly objective?: "bb-alpha" | "vr";
  readonly lambda?: number;
  readonly innerSteps?: number;
  readonly flowLayers?: number;
}

/** Options every method understands (each uses the ones that apply to it). */
export interface CommonFitOptions extends VariationalFlags {
  readonly epochs: number;
  readonly batchSize: number;
  /** Optimisers: the Adam rate. Samplers: the step size eps (SGLD, pSGLD) or eta (SGHMC). */
  readonly learningRate: number;
  readonly temperature: number;
  /** Ensemble members. */
  readonly members: number;
  /** SG-MCMC: chains, samples per chain, burn-in and thinning in steps, cycles, exploration fraction, friction. */
  readonly chains: number;
  readonly samples: number;
  readonly burnin: number;
  readonly thin: number;
  readonly cycles: number;
  readonly explore: number;
  readonly friction: number;
  /** Non-cyclical samplers: constant step size, or polynomial decay eps0 (1 + t / b)^-0.55 with b = T / 10. */
  readonly schedule: "constant" | "polynomial";
  /**
   * Variational methods: every `every` steps (and at the end), `fn` gets `samples` draws from the
   * current q (borrowed) with the step count, for learning curves (`bayesdl bench vi-mnist`).
   */
  readonly monitor?: { readonly every: number; readonly samples: number; fn(step: number, draws: import("../models/model.js").Params): Promise<void> };
  /** Held-out data for diagnostics. */
  readonly heldOut?: ArrayData;
  readonly onProgress?: (p: Progress) => void;
}

/** What a method produced. */
export interface FitOutput {
  readonly leaves: PosteriorLeafSamples[];
  readonly numSamples: number;
  /** Saved in posterior.json under `extra`. */
  readonly extra?: Record<string, unknown>;
  readonly diagnostics?: TraceDiagnostics[];
  /** Variational methods: q's parameters, saved to `variational.safetensors`. */
  readonly variational?: { meta: VariationalMeta; tensors: NamedTensor[] };
}

/** Which group of defaults and options a method uses. */
export type MethodKind = "optimiser" | "sampler" | "variational";

/** A method entry: its defaults and how it produces samples. */
export interface MethodEntry {
  readonly summary: string;
  readonly kind: MethodKind;
  /** Samplers with a cyclical step-size schedule. */
  readonly cyclical?: boolean;
  /**
   * Default step size / learning rate given the training-set size N. Samplers step on the N-scaled
   * log density, so their defaults scale as 1/N.
   */
  defaultLearningRate(n: number): number;
  /** The options recorded in posterior.json. */
  recordedOptions(o: CommonFitOptions): Record<string, unknown>;
  fit(k: Key, model: Model, train: ArrayData, o: CommonFitOptions): Promise<FitOutput>;
}

const optimiserOptions = (o: CommonFitOptions) => ({ optimizer: "adam", learningRate: o.learningRate, epochs: o.epochs, batchSize: o.batchSize });

const samplerOptions = (o: CommonFitOptions, extra: Record<string, unknown> = {}) => ({
  learningRate: o.learningRate,
  temperature: o.temperature,
  chains: o.chains,
  samples: o.samples,
  burnin: o.burnin,
  thin: o.thin,
  batchSize: o.batchSize,
  ...extra,
});

/** The run's step budget and schedule for a sampler. */
function scheduleFor(o: CommonFitOptions, cyclic: boolean): Schedule {
  const total = o.burnin + o.samples * o.thin;
  if (cyclic) return cyclical(o.learningRate, o.cycles, total, o.explore);
  return o.schedule === "polynomial" ? polynomial(o.learningRate, Math.max(1, total / 10), 0.55) : constant(o.learningRate);
}

function samplerEntry(
  summary: string,
  lrPerDatum: number,
  cyclic: boolean,
  make: (ld: ReturnType<typeof logDensity>, o: CommonFitOptions, schedule: Schedule, n: number) => Parameters<typeof runChains>[2],
  extra: (o: CommonFitOptions) => Record<string, unknown> = () => ({}),
): MethodEntry {
  return {
    summary,
    kind: "sampler",
    cyclical: cyclic,
    defaultLearningRate: (n) => lrPerDatum / n,
    recordedOptions: (o) => samplerOptions(o, { schedule: scheduleFor(o, cyclic).spec, ...extra(o) }),
    async fit(k, model, train, o) {
      const schedule = scheduleFor(o, cyclic);
      const ld = logDensity(model, { dataSize: train.n });
      const r = await runChains(k, model, make(ld, o, schedule, train.n), train, {
        chains: o.chains,
        burnin: o.burnin,
        samples: o.samples,
        thin: o.thin,
        batchSize: o.batchSize,
        schedule,
        heldOut: o.heldOut,
        onProgress: o.onProgress,
      });
      return { leaves: r.leaves, numSamples: r.numSamples, diagnostics: r.diagnostics, extra: { traces: r.traces, stepsPerChain: r.steps } };
    },
  };
}

export const METHODS = {
  map: {
    summary: "MAP point estimate (Adam; the Gaussian prior acts as weight decay)",
    kind: "optimiser",
    defaultLearningRate: () => 1e-3,
    recordedOptions: optimiserOptions,
    async fit(k, model, train, o) {
      const m = createMap(logDensity(model, { dataSize: train.n }), { dataSize: train.n, learningRate: o.learningRate });
      const [k0, k1, k2] = split(k, 3);
      const { state } = await fitEpochs(k2, m, m.init(k0, model.init(k1)), train, { epochs: o.epochs, batchSize: o.batchSize, onProgress: o.onProgress });
      const samples = stackTrees([state.params]);
      const leaves = await samplesToHost(samples);
      freeAll(samples, state.opt, state.step);
      return { leaves, numSamples: 1 };
    },
  },
  ensemble: {
    summary: "deep ensemble: M MAP networks from independent inits and shuffles, stepped together",
    kind: "optimiser",
    defaultLearningRate: () => 1e-3,
    recordedOptions: (o) => ({ ...optimiserOptions(o), members: o.members }),
    async fit(k, model, train, o) {
      const [k0, k1, k2] = split(k, 3);
      const init = initMembers(model, k1, o.members);
      const paramCount = treeSize(init) / o.members;
      const m = createEnsemble(logDensity(model, { dataSize: train.n }), { dataSize: train.n, learningRate: o.learningRate, members: o.members, paramCount });
      const { state } = await fitEpochs(k2, m, m.init(k0, init), train, { epochs: o.epochs, batchSize: o.batchSize, lead: o.members, onProgress: o.onProgress });
      const samples = m.params(state);
      const leaves = await samplesToHost(samples);
      freeAll(samples);
      return { leaves, numSamples: o.members };
    },
  },
  sgld: samplerEntry("stochastic gradient Langevin dynamics (Welling & Teh 2011)", 1e-3, false, (ld, o, s, n) =>
    createSgld(ld, { schedule: s, temperature: o.temperature, dataSize: n })),
  psgld: samplerEntry("preconditioned SGLD, RMSprop preconditioner (Li et al. 2016)", 1e-4, false, (ld, o, s, n) =>
    createPsgld(ld, { schedule: s, temperature: o.temperature, dataSize: n })),
  sghmc: samplerEntry(
    "stochastic gradient HMC, momentum form (Chen et al. 2014)",
    2e-3,
    false,
    (ld, o, s, n) => createSghmc(ld, { schedule: s, temperature: o.temperature, dataSize: n, friction: o.friction }),
    (o) => ({ friction: o.friction }),
  ),
  csgld: samplerEntry("cyclical SGLD (Zhang et al. 2020)", 2e-3, true, (ld, o, s, n) =>
    createSgld(ld, { schedule: s, temperature: o.temperature, dataSize: n }), (o) => ({ cycles: o.cycles, explore: o.explore })),
  csghmc: samplerEntry(
    "cyclical SGHMC (Zhang et al. 2020)",
    4e-3,
    true,
    (ld, o, s, n) => createSghmc(ld, { schedule: s, temperature: o.temperature, dataSize: n, friction: o.friction }),
    (o) => ({ friction: o.friction, cycles: o.cycles, explore: o.explore }),
  ),
  ...VI_METHODS,
} satisfies Record<string, MethodEntry>;

/** Method names, for help text and validation. */
export type MethodName = keyof typeof METHODS;
export const METHOD_NAMES = Object.keys(METHODS) as MethodName[];

function freeAll(...ts: Tree[]): void {
  for (const t of ts) tree.dispose(t);
}
