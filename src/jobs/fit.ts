/**
 * The fit and evaluate jobs behind `bayesdl fit` and `bayesdl evaluate`: data in, posterior and
 * metrics out. Front ends (CLI, browser page) call these and only format what they return.
 */
import { free, key, split } from "../core/engine.js";
import { loadData } from "../data/index.js";
import type { ArrayData, DataSplit } from "../data/types.js";
import { loadPosterior, POSTERIOR_FORMAT_VERSION, savePosterior, type PosteriorMeta } from "../io/posterior.js";
import { categorical, gaussian } from "../models/likelihood.js";
import { makeModel } from "../models/model.js";
import { networkFromSpec } from "../models/spec.js";
import type { Progress } from "../train/fit.js";
import { VERSION } from "../version.js";
import { evaluateSamples, checkCompatible, type Metrics } from "./evaluate.js";
import { METHODS, type CommonFitOptions, type MethodEntry, type MethodName, type VariationalFlags } from "./methods.js";
import { stepsPerEpoch } from "../train/batches.js";
import { modelFromMeta, samplesFromHost } from "./posterior.js";
import { sampleSaved } from "./vi-methods.js";

/** Everything `bayesdl fit` needs. */
export interface FitJobOptions extends VariationalFlags {
  readonly data: string;
  readonly model: string;
  readonly method: MethodName;
  readonly seed: number;
  /** Optimisers: passes over the data (default 20). */
  readonly epochs?: number;
  /** Default 128. */
  readonly batchSize?: number;
  /** Default: the method's (see METHODS[m].defaultLearningRate). */
  readonly learningRate?: number;
  /** Ensemble members (default 5). */
  readonly members?: number;
  /** SG-MCMC (defaults in {@link resolveSamplerDefaults}). */
  readonly chains?: number;
  readonly samples?: number;
  readonly burnin?: number;
  readonly thin?: number;
  readonly cycles?: number;
  readonly explore?: number;
  readonly friction?: number;
  /** Non-cyclical samplers' schedule (default constant). */
  readonly schedule?: "constant" | "polynomial";
  readonly priorScale: number;
  /** Optional prior standard deviation per layer (overrides priorScale). */
  readonly priorPerLayer?: number[];
  /** Samplers: temperature of the injected noise. Optimisers ignore it (it does not move the mode). */
  readonly temperature: number;
  /** Regression only: fixed or learned observation noise, and its (initial) scale in standardised units. */
  readonly noise: "fixed" | "learned";
  readonly sigma: number;
  readonly split?: number;
  readonly target?: string;
  readonly testSize?: number;
  /** Variational methods: learning-curve callback (see CommonFitOptions.monitor). */
  readonly monitor?: CommonFitOptions["monitor"];
  /** Output directory; nothing is written when omitted. */
  readonly out?: string;
  readonly onProgress?: (p: Progress) => void;
}

/** What a fit produced. */
export interface FitResult {
  readonly meta: PosteriorMeta;
  readonly metrics: Metrics;
  readonly wallTimeSeconds: number;
  readonly data: DataSplit;
}

/** Fit a posterior, evaluate it on the held-out split, and save it when `out` is given. */
export async function runFit(o: FitJobOptions): Promise<FitResult> {
  const t0 = performance.now();
  const data = loadData(o.data, { seed: o.seed, split: o.split, target: o.target, testSize: o.testSize, role: "fit" });
  if (data.train.n === 0) throw new Error(`--data ${o.data}: the training part is empty`);
  const classification = data.task === "classification";
  const likelihood = classification ? categorical() : gaussian({ sigma: o.sigma, learned: o.noise === "learned" });
  const outputDim = likelihood.outputDim(data.numClasses);
  const prior = { kind: "gaussian" as const, scale: o.priorScale, ...(o.priorPerLayer ? { perLayer: o.priorPerLayer } : {}) };
  const model = makeModel(networkFromSpec(o.model, data.train.xShape, outputDim), likelihood, prior);
  checkCompatible(model, data.train, `--data ${o.data}`);
  const entry: MethodEntry = METHODS[o.method];
  const [kFit, kRest] = split(key(o.seed), 2);
  free(kRest);
  const options = resolveOptions(entry, o, data.train.n);
  const out = await entry.fit(kFit, model, data.train, { ...options, heldOut: data.test, onProgress: o.onProgress, monitor: o.monitor });
  const leaves = out.leaves;
  let metrics: Metrics = {};
  if (data.test.n > 0) {
    const samples = samplesFromHost(model, leaves, out.numSamples);
    metrics = (await evaluateSamples(model, samples, data)).metrics;
    free(samples);
  }
  for (const d of out.diagnostics ?? []) {
    metrics[`rhat: ${d.name}`] = d.rhat;
    metrics[`essBulk: ${d.name}`] = d.essBulk;
    metrics[`essTail: ${d.name}`] = d.essTail;
  }
  const wallTimeSeconds = (performance.now() - t0) / 1000;
  const meta: PosteriorMeta = {
    formatVersion: POSTERIOR_FORMAT_VERSION,
    bayesdlVersion: VERSION,
    model: o.model,
    inputShape: [...data.train.xShape],
    outputDim,
    likelihood: likelihood.spec,
    prior: { ...prior, ...(prior.perLayer ? { perLayer: [...prior.perLayer] } : {}) },
    method: o.method,
    methodOptions: entry.recordedOptions(options),
    seed: o.seed,
    data: { source: o.data, fingerprint: data.fingerprint, split: data.splitInfo, ...(data.targetScale ? { targetScale: data.targetScale } : {}) },
    metrics,
    numSamples: out.numSamples,
    leaves: leaves.map((l) => ({ name: l.name, shape: l.shape })),
    createdAt: new Date().toISOString(),
    wallTimeSeconds,
    ...(out.variational ? { variational: out.variational.meta } : {}),
    ...(out.extra || out.diagnostics ? { extra: { ...out.extra, ...(out.diagnostics ? { diagnostics: out.diagnostics } : {}) } } : {}),
  };
  if (o.out) await savePosterior(o.out, meta, leaves, out.variational?.tensors);
  return { meta, metrics, wallTimeSeconds, data };
}

/**
 * Every option of a method with its default filled in. Samplers default to a burn-in of 10 epochs
 * (at least 1,000 steps) then 20 samples one epoch (at least 20 steps) apart; cyclical runs take a
 * budget of 30 epochs (at least 2,000 steps) in 4 cycles, explore for the first 80% of each and
 * take 3 samples at its end, at most half an epoch apart. Variational methods train for `epochs`
 * (default 20) and keep `samples` (default 20) draws from q.
 */
export function resolveOptions(entry: MethodEntry, o: FitJobOptions, n: number): Omit<CommonFitOptions, "onProgress" | "heldOut"> {
  const batchSize = o.batchSize ?? 128;
  const spe = stepsPerEpoch(n, Math.min(batchSize, n));
  const cyclic = entry.cyclical === true;
  const samples = o.samples ?? (cyclic ? 12 : 20);
  const vi = { mc: o.mc, initStd: o.initStd, alpha: o.alpha, objective: o.objective, lambda: o.lambda, innerSteps: o.innerSteps, flowLayers: o.flowLayers };
  let thin: number;
  let burnin: number;
  if (cyclic) {
    // A budget of 30 epochs (at least 2,000 steps) in `cycles` cycles; samples at the end of each,
    // at most half an epoch apart and all inside the sampling stage.
    const cycles = o.cycles ?? 4;
    const total = Math.max(30 * spe, 2000);
    const len = Math.ceil(total / cycles);
    const perCycle = Math.ceil(samples / cycles);
    thin = o.thin ?? Math.max(1, Math.min(Math.floor(spe / 2), Math.floor(((1 - (o.explore ?? 0.8)) * len) / perCycle)));
    burnin = o.burnin ?? Math.max(0, total - samples * thin);
  } else {
    thin = o.thin ?? Math.max(spe, 20);
    burnin = o.burnin ?? Math.max(10 * spe, 1000);
  }
  return {
    epochs: o.epochs ?? 20,
    batchSize,
    learningRate: o.learningRate ?? entry.defaultLearningRate(n),
    temperature: o.temperature,
    members: o.members ?? 5,
    chains: o.chains ?? 1,
    samples,
    burnin,
    thin,
    cycles: o.cycles ?? 4,
    explore: o.explore ?? 0.8,
    friction: o.friction ?? 0.05,
    schedule: o.schedule ?? "constant",
    ...vi,
  };
}

/** Options of {@link runEvaluate}. */
export interface EvaluateJobOptions {
  readonly posterior: string;
  /** Data source; defaults to the one the posterior was fitted on. */
  readonly data?: string;
  /** Seed of the train/test split for shuffled sources; defaults to the posterior's own seed. */
  readonly seed?: number;
  readonly split?: number;
  readonly target?: string;
  readonly testSize?: number;
  /** Optional out-of-distribution inputs for the entropy AUROC. */
  readonly ood?: string;
  /**
   * Variational posteriors: draw this many fresh samples from q (keyed by `seed`) instead of using
   * the draws saved at fit time.
   */
  readonly samples?: number;
}

/** Load a saved posterior and compute its metrics on the test part of a data source. */
export async function runEvaluate(o: EvaluateJobOptions): Promise<{ meta: PosteriorMeta; metrics: Metrics; data: DataSplit; sameData: boolean }> {
  const { meta, samples, variational } = await loadPosterior(o.posterior);
  const model = modelFromMeta(meta);
  if (o.samples !== undefined && (meta.variational === undefined || variational === undefined)) {
    throw new Error(`--samples: ${o.posterior} holds ${meta.numSamples} saved samples of a ${meta.method} posterior, not a variational one to draw from`);
  }
  const seed = o.seed ?? meta.seed;
  const splitIdx = o.split ?? (typeof meta.data.split?.split === "number" ? meta.data.split.split : undefined);
  const data = loadData(o.data ?? meta.data.source, { seed, split: splitIdx, target: o.target, testSize: o.testSize, role: "evaluate" });
  let ood: ArrayData | undefined;
  if (o.ood) {
    const od = loadData(o.ood, { seed, role: "evaluate" });
    ood = od.test.n > 0 ? od.test : od.train;
  }
  const params =
    o.samples !== undefined ? sampleSaved(key(seed), model, meta.variational!, variational!, o.samples) : samplesFromHost(model, samples, meta.numSamples);
  try {
    const { metrics } = await evaluateSamples(model, params, data, ood);
    return { meta, metrics, data, sameData: data.fingerprint === meta.data.fingerprint };
  } finally {
    free(params);
  }
}
