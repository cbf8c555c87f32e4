/**
 * `bayesdl bench vi-gaussian`: proximal score-matching VI (full-rank Gaussian q, closed-form Newton
 * steps: src/scorevi/proximal-fullrank.ts), full-rank ADVI, GSM and BaM on Gaussian targets with exact
 * answers (src/bench/vi-targets.ts), each traced against the number of target score / gradient
 * evaluations (src/bench/vi.ts).
 *
 * Errors at the current q = N(m_q, S_q), against the target N(m, S) with precision P:
 * - forward KL(p || q), closed form;
 * - mean error sqrt((m_q - m)^T P (m_q - m)) (Mahalanobis, in target standard deviations);
 * - covariance error ||S_q - S||_F / ||S||_F.
 */
import { compile, key, np, scalar, split, toHost, type JArray, type Key } from "../core/engine.js";
import type { InferenceMethod } from "../core/method.js";
import { create as createBam } from "../scorevi/bam.js";
import type { GaussianState, ScoreViInfo } from "../scorevi/gaussian-state.js";
import { create as createGsm } from "../scorevi/gsm.js";
import { createFullRank } from "../scorevi/proximal-fullrank.js";
import { free, type Tree } from "../core/tree.js";
import { create as createAdvi, type AdviState } from "../vi/advi.js";
import { fullRank, fullRankScale, type FullRankQ } from "../vi/gaussian.js";
import { gaussianKl, matmul, relFrobenius, transpose } from "./hostlinalg.js";
import { benchMethod, benchTable, traceRun, writeBench, type BenchRun, type TracePoint } from "./vi.js";
import { gaussianLogDensity, standardGaussianTargets, type GaussianTarget } from "./vi-targets.js";

/** Method names of this bench, in table order. */
export const VI_GAUSSIAN_METHODS = ["proximal-svi", "advi", "gsm", "bam"] as const;
export type ViGaussianMethod = (typeof VI_GAUSSIAN_METHODS)[number];

/** Per-method settings (documented in the README and the closing note of the issue). */
export const VI_GAUSSIAN_SETTINGS = {
  "proximal-svi": { samplesPerStep: 8, lambda: 50 },
  advi: { samples: 8, learningRate: 2e-2 },
  gsm: { batchSize: 8 },
  bam: { batchSize: 8, strength: "2 (t + 1) / (B d), i.e. lambda_t = B d / (t + 1)" },
} as const;

function errorsOf(t: GaussianTarget, mean: ArrayLike<number>, cov: ArrayLike<number>): Record<string, number> {
  const d = t.d;
  const m = Float64Array.from(mean);
  const c = Float64Array.from(cov);
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) c[i * d + j] = c[j * d + i] = 0.5 * (c[i * d + j] + c[j * d + i]);
  let maha = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) maha += (m[i] - t.mean[i]) * t.prec[i * d + j] * (m[j] - t.mean[j]);
  return { forwardKl: gaussianKl(t.mean, t.cov, m, c, d), meanErr: Math.sqrt(Math.max(0, maha)), covErr: relFrobenius(c, t.cov) };
}

/**
 * q's mean and covariance in host float64 from its Cholesky factor, so the forward KL stays finite for
 * any positive-definite q (a float32 L L^T of a q spanning several scales need not pass a float64
 * Cholesky).
 */
async function hostMoments(mean: JArray, rawChol: JArray, d: number): Promise<{ m: Float64Array; c: Float64Array }> {
  const f = Float64Array.from(await toHost(fullRankScale(rawChol)));
  return { m: Float64Array.from(await toHost(mean)), c: matmul(f, transpose(f, d), d) };
}

/** Steps with an optimiser-style state whose q is a full-rank Gaussian (ADVI). */
function familyRun<S extends { q: FullRankQ }>(
  t: GaussianTarget,
  init: S,
  step: (k: Key, s: S) => [S, JArray],
  evalsPerStep: number,
  k: Key,
  dispose: () => void,
): BenchRun {
  let state = init;
  let kk = k;
  let evals = 0;
  return {
    async step() {
      const [k1, k2] = split(kk, 2);
      kk = k2;
      const [s, probe] = step(k1, state);
      state = s;
      await scalar(probe);
      evals += evalsPerStep;
      return evals;
    },
    async errors() {
      const { m, c } = await hostMoments(state.q.mean.ref, state.q.chol.ref, t.d);
      return errorsOf(t, m, c);
    },
    dispose() {
      kk.dispose();
      dispose();
    },
  };
}

/**
 * Steps of a closed-form Gaussian method (GSM, BaM, full-rank proximal); `moments` reads q's mean and
 * covariance (float64) from its state (borrowed).
 */
function closedFormRun<S extends Tree>(
  t: GaussianTarget,
  method: InferenceMethod<S, Pick<ScoreViInfo, "loss" | "evaluations"> & { rejected?: JArray }, JArray, undefined>,
  k: Key,
  dispose: () => void,
  moments: (s: S) => [JArray, JArray],
): BenchRun {
  const step = compile(method.step, { consume: [0, 1] });
  const [kInit, kRun] = split(k, 2);
  let state: S = method.init(kInit, np.zeros([t.d], { dtype: np.float64 }));
  let kk = kRun;
  let evals = 0;
  let rejected = 0;
  return {
    async step() {
      const [k1, k2] = split(kk, 2);
      kk = k2;
      const [s, info] = step(k1, state, undefined);
      state = s;
      const { rejected: r, evaluations: e, ...rest } = info;
      free(rest);
      if (r) rejected += await scalar(r);
      evals = await scalar(e);
      return evals;
    },
    async errors() {
      const [mean, cov] = moments(state);
      const m = await mean.ref.data();
      const c = await cov.ref.data();
      return errorsOf(t, m as ArrayLike<number>, c as ArrayLike<number>);
    },
    rejected: () => rejected,
    dispose() {
      step.dispose();
      kk.dispose();
      free(state);
      dispose();
    },
  };
}

/** A running method on a target. */
export function startRun(t: GaussianTarget, method: ViGaussianMethod, k: Key): BenchRun {
  const target = gaussianLogDensity(t);
  const ld = target.logDensity;
  const gaussianMoments = (s: GaussianState): [JArray, JArray] => [s.mean, s.cov];
  if (method === "gsm") return closedFormRun(t, createGsm(ld, { batchSize: VI_GAUSSIAN_SETTINGS.gsm.batchSize, initScale: t.initScale }), k, target.dispose, gaussianMoments);
  if (method === "bam") return closedFormRun(t, createBam(ld, { batchSize: VI_GAUSSIAN_SETTINGS.bam.batchSize, initScale: t.initScale }), k, target.dispose, gaussianMoments);
  if (method === "proximal-svi") {
    const s = VI_GAUSSIAN_SETTINGS["proximal-svi"];
    // Exact scores: the iterate itself converges (no averaging).
    const prox = createFullRank(ld, { samplesPerStep: s.samplesPerStep, lambda: s.lambda, initScale: t.initScale });
    return closedFormRun(t, prox, k, target.dispose, (st) => [st.avgMean, st.avgCov]);
  }
  const [kInit, kRun] = split(k, 2);
  const fam = fullRank(t.d);
  if (method === "advi") {
    const s = VI_GAUSSIAN_SETTINGS.advi;
    const advi = createAdvi(ld, { family: fam, samples: s.samples, learningRate: s.learningRate, initScale: t.initScale });
    const init = advi.init(kInit, np.zeros([t.d]));
    const step = compile((kk: Key, st: AdviState<FullRankQ>) => {
      const [s2, info] = advi.step(kk, st, undefined);
      return [s2, info.loss] as [AdviState<FullRankQ>, JArray];
    }, { consume: [0, 1] });
    return familyRun(t, init, step, s.samples, kRun, () => {
      step.dispose();
      target.dispose();
    });
  }
  throw new Error(`bench vi-gaussian: unknown method ${method}`);
}

/** Options of {@link runViGaussianBench}. */
export interface ViGaussianOptions {
  readonly budget: number;
  readonly seed: number;
  readonly targets?: string[];
  /** Method names of this bench (default: all). */
  readonly methods?: readonly string[];
  readonly onRun?: (target: string, method: string, last: TracePoint) => void;
}

/** Run every method on every target; returns the traces. */
export async function runViGaussianBench(o: ViGaussianOptions) {
  const all = standardGaussianTargets(o.seed);
  const targets = o.targets ? all.filter((t) => o.targets!.includes(t.name)) : all;
  if (o.targets) {
    const unknown = o.targets.filter((n) => !all.some((t) => t.name === n));
    if (unknown.length) throw new Error(`--targets: unknown target(s) ${unknown.join(", ")}; known: ${all.map((t) => t.name).join(", ")}`);
  }
  const results: { target: string; method: string; trace: TracePoint[]; rejected: number; diverged: boolean }[] = [];
  for (const t of targets) {
    for (const m of (o.methods ?? VI_GAUSSIAN_METHODS).map((name) => benchMethod(name, VI_GAUSSIAN_METHODS))) {
      const r = await traceRun(t.name, m, startRun(t, m, key(o.seed)), o.budget);
      results.push({ target: t.name, method: m, ...r });
      o.onRun?.(t.name, m, r.trace[r.trace.length - 1]);
    }
  }
  return results;
}

/** Run the bench and write `vi-gaussian.md`, `.json` and `.svg` into `outDir`. */
export async function viGaussianBench(outDir: string, o: ViGaussianOptions): Promise<{ table: string; files: string[] }> {
  const t0 = performance.now();
  const results = await runViGaussianBench(o);
  const table = benchTable(results, ["forwardKl", "meanErr", "covErr"], [
    { metric: "forwardKl", threshold: 0.1 },
    { metric: "covErr", threshold: 0.05 },
  ]);
  const files = await writeBench(outDir, "vi-gaussian", "Gaussian targets: forward KL(p || q) against target evaluations", table, results, "forwardKl", "forward KL(p || q)", {
    budget: o.budget,
    seed: o.seed,
    settings: VI_GAUSSIAN_SETTINGS,
    wallTimeSeconds: (performance.now() - t0) / 1000,
  });
  return { table, files };
}

