/**
 * `bayesdl gp fit` and the evaluation of saved GP posteriors: load a regression source, fit (gp/solve.ts),
 * score the held-out part in original units, and save through the shared posterior layout.
 */
import { totalmem } from "node:os";
import { key, split as splitKey } from "../core/engine.js";
import { absoluteSource, loadData } from "../data/index.js";
import type { DataSplit } from "../data/types.js";
import { regressionMetrics } from "../eval/metrics.js";
import { fitGp, gpOptions, resolveSolver, restoreGp, type GpFitOptions, type GpFitReport, type GpMonitor, type GpPosterior, type GpProgress } from "../gp/solve.js";
import type { GpHypers } from "../gp/kernels.js";
import { loadGpPosterior, saveGpPosterior, type GpPosteriorMeta } from "../io/gp-posterior.js";
import { checkOutputDir, POSTERIOR_FORMAT_VERSION, type PosteriorMeta } from "../io/posterior.js";
import { inPosteriorUnits } from "./posterior.js";

/** Memory the exact solver may use: three quarters of this machine's. */
export const EXACT_MEMORY_BYTES = 0.75 * totalmem();

/** Settings of one GP fit job. */
export interface GpFitJob {
  readonly data: string;
  readonly split?: number;
  readonly seed: number;
  readonly target?: string;
  readonly testSize?: number;
  readonly options: Partial<GpFitOptions> & { readonly solver: string };
  readonly out?: string;
  readonly force?: boolean;
  readonly progress?: GpProgress;
  readonly memoryBytes?: number;
  /**
   * Stochastic solvers: every this many steps, the RMSE (original units) of the averaged iterate's mean
   * on the first 2,000 test points is passed to `onMonitor` with the step and the seconds since the fit
   * began (the hyperparameter fit included).
   */
  readonly monitorEvery?: number;
  readonly onMonitor?: (step: number, rmse: number, seconds: number) => void;
}

/** Test metrics in original units: RMSE, log-likelihood per point, and the mean predictive sd. */
export type GpMetrics = { rmse: number; ll: number; nll: number; meanSd: number; coverage90: number };

/** What a GP fit job returns. */
export interface GpFitResult {
  readonly metrics: GpMetrics;
  readonly report: GpFitReport;
  readonly hypers: GpHypers;
  readonly options: GpFitOptions;
  readonly nTrain: number;
  readonly nTest: number;
  readonly d: number;
  readonly wallTimeSeconds: number;
  readonly data: DataSplit;
  readonly out?: string;
}

/** The regression split of a source, or an error saying why a GP cannot use it. */
export function gpData(source: string, o: { seed: number; split?: number; target?: string; testSize?: number }): DataSplit {
  const data = loadData(source, { seed: o.seed, split: o.split, target: o.target, testSize: o.testSize, task: o.target !== undefined ? "regression" : undefined });
  if (data.task !== "regression") throw new Error(`--data ${source}: GP regression needs real-valued targets, but this is a ${data.task} set`);
  if (data.train.n === 0 || data.test.n === 0) throw new Error(`--data ${source}: needs training and test examples (got ${data.train.n} and ${data.test.n})`);
  return data;
}

/** Metrics of a latent predictive (standardised units) plus the noise, against the split's test targets. */
export function gpMetrics(data: DataSplit, mean: Float64Array, variance: Float64Array, noise: number): GpMetrics {
  const scale = data.targetScale ?? { mean: 0, std: 1 };
  const m = data.test.n;
  const stds = Float64Array.from(variance, (v) => Math.sqrt(v + noise));
  const yOrig = Float64Array.from(data.test.y, (z) => scale.mean + scale.std * z);
  const r = regressionMetrics(mean, stds, yOrig, scale);
  // Share of test targets inside the central 90% predictive interval (1.645 sd).
  let inside = 0;
  let sd = 0;
  for (let i = 0; i < m; i++) {
    if (Math.abs(data.test.y[i] - mean[i]) <= 1.6448536 * stds[i]) inside++;
    sd += scale.std * stds[i];
  }
  return { rmse: r.rmse, ll: r.ll, nll: r.nll, meanSd: sd / m, coverage90: inside / m };
}

/** Fits, scores the test part and optionally saves. */
export async function runGpFit(job: GpFitJob): Promise<GpFitResult> {
  const t0 = performance.now();
  if (job.out) await checkOutputDir(job.out, Boolean(job.force));
  const data = gpData(job.data, job);
  const n = data.train.n;
  const o = gpOptions(resolveSolver(job.options.solver, n, job.memoryBytes ?? EXACT_MEMORY_BYTES), job.options);
  const d = data.train.xShape.reduce((a, b) => a * b, 1);
  const [kFit, kPred] = splitKey(key(job.seed), 2);
  kPred.dispose();
  let monitor: GpMonitor | undefined;
  if (job.monitorEvery !== undefined) {
    const m = Math.min(2000, data.test.n);
    const scale = data.targetScale ?? { mean: 0, std: 1 };
    const t1 = performance.now();
    monitor = {
      every: job.monitorEvery,
      x: data.test.x.subarray(0, m * d),
      m,
      report(step, mean) {
        let se = 0;
        for (let i = 0; i < m; i++) se += (mean[i] - data.test.y[i]) ** 2;
        job.onMonitor?.(step, scale.std * Math.sqrt(se / m), (performance.now() - t1) / 1000);
      },
    };
  }
  const { posterior, report } = await fitGp(kFit, data.train.x, data.train.y, n, d, o, job.progress, job.memoryBytes ?? EXACT_MEMORY_BYTES, monitor);
  try {
    const p = await posterior.predict(data.test.x, data.test.n);
    const metrics = gpMetrics(data, p.mean, p.variance, posterior.hypers.noise);
    if (job.out) {
      const meta: GpPosteriorMeta = {
        format: POSTERIOR_FORMAT_VERSION,
        family: "gp",
        kind: posterior.kind,
        solver: o.solver,
        hypers: posterior.hypers,
        data: { source: absoluteSource(job.data), split: job.split, seed: job.seed, target: job.target, testSize: job.testSize },
        seed: job.seed,
        targetScale: data.targetScale ?? { mean: 0, std: 1 },
        inputScale: data.inputScale,
        options: { ...o, hypers: undefined },
        report: { ...report, metrics },
        createdAt: new Date().toISOString(),
      };
      await saveGpPosterior(job.out, meta, await posterior.tensors(), Boolean(job.force));
    }
    return { metrics, report, hypers: posterior.hypers, options: o, nTrain: n, nTest: data.test.n, d, wallTimeSeconds: (performance.now() - t0) / 1000, data, out: job.out };
  } finally {
    posterior.dispose();
  }
}

/** Evaluates a saved GP posterior on its own test part or on another source's (same inputs). */
export async function runGpEvaluate(dir: string, o: { data?: string; split?: number; seed?: number; target?: string; testSize?: number } = {}): Promise<{ meta: GpPosteriorMeta; metrics: GpMetrics; data: DataSplit; sameData: boolean }> {
  const { meta, tensors } = await loadGpPosterior(dir);
  const sameData = o.data === undefined && o.split === undefined;
  const own = gpData(o.data ?? meta.data.source, {
    seed: o.seed ?? meta.data.seed,
    split: o.split ?? meta.data.split,
    target: o.target ?? meta.data.target,
    testSize: o.testSize ?? meta.data.testSize,
  });
  // Another split or source is standardised with its own training statistics: map its inputs and
  // targets into the posterior's units (inPosteriorUnits reads only the two scales of the metadata).
  const units = { data: { inputScale: meta.inputScale, targetScale: meta.targetScale } } as unknown as PosteriorMeta;
  const data = sameData ? own : inPosteriorUnits(own, units, o.data ?? `split ${o.split}`);
  const d = meta.hypers.lengthscales.length;
  const got = data.test.xShape.reduce((a, b) => a * b, 1);
  if (got !== d) throw new Error(`evaluate: the data have ${got} inputs per example but the GP in ${dir} was fitted on ${d}`);
  const posterior: GpPosterior = restoreGp(meta.kind, meta.hypers, tensors);
  try {
    const p = await posterior.predict(data.test.x, data.test.n);
    return { meta, metrics: gpMetrics(data, p.mean, p.variance, meta.hypers.noise), data, sameData };
  } finally {
    posterior.dispose();
  }
}
