/**
 * The fit and evaluate jobs behind `bayesdl fit` and `bayesdl evaluate`: a data source in, a posterior
 * and its metrics out, saved when asked. Front ends call these and only format what they return.
 */
import { key, split } from "../core/engine.js";
import { free } from "../core/tree.js";
import type { OptionValue } from "../core/options.js";
import { splitFingerprint } from "../data/fingerprint.js";
import { loadData } from "../data/index.js";
import type { ArrayData, DataSplit } from "../data/types.js";
import { loadPosterior, POSTERIOR_FORMAT_VERSION, savePosterior, type PosteriorMeta } from "../io/posterior.js";
import { methodSpec } from "../methods.js";
import { categorical, gaussian } from "../models/likelihood.js";
import { makeModel } from "../models/model.js";
import { networkFromSpec } from "../models/spec.js";
import { DEFAULT_BATCH_SIZE, fit, type Monitor } from "../run/driver.js";
import type { Progress } from "../run/loop.js";
import { VERSION } from "../version.js";
import { checkCompatible, evaluatePosterior, type Metrics } from "./evaluate.js";
import { drawsToLeaves, modelFromMeta, savedDistribution, savedDraws } from "./posterior.js";

/** Everything `bayesdl fit` needs. */
export interface FitJobOptions {
  readonly data: string;
  readonly model: string;
  /** A method of the table (methods.ts). */
  readonly method: string;
  readonly seed: number;
  /** The method's options by key (core/options.ts, e.g. `{ epochs: 30, lr: 1e-3 }`); absent ones take its defaults. */
  readonly options?: Readonly<Record<string, OptionValue | undefined>>;
  /** Minibatch size (default {@link DEFAULT_BATCH_SIZE}, 128). */
  readonly batchSize?: number;
  /** Standard deviation of the Gaussian prior on weights (default 1). */
  readonly priorScale?: number;
  /** Optional prior standard deviation per layer (overrides priorScale). */
  readonly priorPerLayer?: number[];
  /** Regression only: fixed or learned observation noise, and its (initial) scale in standardised units. */
  readonly noise?: "fixed" | "learned";
  readonly sigma?: number;
  readonly split?: number;
  readonly target?: string;
  readonly testSize?: number;
  /** Learning-curve callback (run/driver.ts). */
  readonly monitor?: Monitor;
  /** Output directory; nothing is written when omitted. */
  readonly out?: string;
  readonly onProgress?: (p: Progress) => void;
}

/** What a fit produced. */
export interface FitJobResult {
  readonly meta: PosteriorMeta;
  readonly metrics: Metrics;
  readonly wallTimeSeconds: number;
  readonly data: DataSplit;
}

/** Fit a posterior, evaluate it on the held-out split, and save it when `out` is given. */
export async function runFit(o: FitJobOptions): Promise<FitJobResult> {
  const t0 = performance.now();
  const spec = methodSpec(o.method);
  const data = loadData(o.data, { seed: o.seed, split: o.split, target: o.target, testSize: o.testSize, role: "fit" });
  if (data.train.n === 0) throw new Error(`--data ${o.data}: the training part is empty`);
  const classification = data.task === "classification";
  const likelihood = classification ? categorical() : gaussian({ sigma: o.sigma ?? 1, learned: (o.noise ?? "learned") === "learned" });
  const outputDim = likelihood.outputDim(data.numClasses);
  const prior = { kind: "gaussian" as const, scale: o.priorScale ?? 1, ...(o.priorPerLayer ? { perLayer: o.priorPerLayer } : {}) };
  const model = makeModel(networkFromSpec(o.model, data.train.xShape, outputDim), likelihood, prior);
  checkCompatible(model, data.train, `--data ${o.data}`);
  const [kFit, kRest] = split(key(o.seed), 2);
  free(kRest);
  const result = await fit(kFit, spec, model, data.train, { batchSize: o.batchSize, options: o.options, heldOut: data.test, onProgress: o.onProgress, monitor: o.monitor });
  try {
    let metrics: Metrics = {};
    if (data.test.n > 0) metrics = await evaluatePosterior(model, result.sampled, data);
    for (const d of result.diagnostics ?? []) {
      metrics[`rhat: ${d.name}`] = d.rhat;
      metrics[`essBulk: ${d.name}`] = d.essBulk;
      metrics[`essTail: ${d.name}`] = d.essTail;
    }
    const leaves = await drawsToLeaves(result.sampled);
    const q = result.posterior.size === undefined ? await result.posterior.tensors() : undefined;
    const numSamples = result.sampled.size!;
    const wallTimeSeconds = (performance.now() - t0) / 1000;
    const extra = {
      lastInfo: result.lastInfo,
      ...(result.traces ? { traces: result.traces, stepsPerChain: result.steps } : {}),
      ...(result.diagnostics ? { diagnostics: result.diagnostics } : {}),
    };
    const meta: PosteriorMeta = {
      formatVersion: POSTERIOR_FORMAT_VERSION,
      bayesdlVersion: VERSION,
      model: o.model,
      inputShape: [...data.train.xShape],
      outputDim,
      likelihood: likelihood.spec,
      prior: { ...prior, ...(prior.perLayer ? { perLayer: [...prior.perLayer] } : {}) },
      method: o.method,
      methodOptions: { ...result.options, batchSize: Math.min(o.batchSize ?? DEFAULT_BATCH_SIZE, data.train.n), ...(result.warmStart ? { warmStart: result.warmStart } : {}) },
      seed: o.seed,
      data: { source: o.data, fingerprint: splitFingerprint(data), split: data.splitInfo, ...(data.targetScale ? { targetScale: data.targetScale } : {}) },
      metrics,
      numSamples,
      leaves: leaves.map((l) => ({ name: l.name, shape: l.shape })),
      createdAt: new Date().toISOString(),
      wallTimeSeconds,
      ...(q ? { variational: { family: result.posterior.kind, options: { ...result.posterior.options }, tensors: q.map((t) => ({ name: t.name, shape: [...t.shape] })) } } : {}),
      extra,
    };
    if (o.out) await savePosterior(o.out, meta, leaves, q);
    return { meta, metrics, wallTimeSeconds, data };
  } finally {
    if (result.sampled !== result.posterior) result.sampled.dispose();
    result.posterior.dispose();
  }
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
  const posterior = o.samples !== undefined ? savedDistribution(model, meta.variational!, variational!) : savedDraws(model, samples, meta.numSamples);
  try {
    const metrics = await evaluatePosterior(model, posterior, data, ood, { key: key(seed), samples: o.samples });
    return { meta, metrics, data, sameData: splitFingerprint(data) === meta.data.fingerprint };
  } finally {
    posterior.dispose();
  }
}
