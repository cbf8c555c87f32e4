/**
 * `bayesdl bench vi-gaussian`: proximal score-matching VI (full-rank Gaussian family in precision form,
 * `fullRankPrecision`), full-rank
 * ADVI, GSM and BaM on Gaussian targets with exact answers (src/bench/vi-targets.ts), each traced
 * against the number of target score / gradient evaluations (src/bench/vi.ts).
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
import { createFlat as createProximal, type FlatProximalState } from "../scorevi/proximal.js";
import { create as createAdvi, type AdviState } from "../vi/advi.js";
import { fullRank, fullRankPrecision, fullRankScale, precisionFactor, triangularAdam, type FullRankPrecisionQ, type FullRankQ } from "../vi/gaussian.js";
import { gaussianKl, matmul, relFrobenius, spdInverse, transpose } from "./hostlinalg.js";
import { benchMethod, benchTable, traceRun, writeBench, type BenchRun, type TracePoint } from "./vi.js";
import { gaussianLogDensity, standardGaussianTargets, type GaussianTarget } from "./vi-targets.js";

/** Method names of this bench, in table order. */
export const VI_GAUSSIAN_METHODS = ["proximal-svi", "advi", "gsm", "bam"] as const;
export type ViGaussianMethod = (typeof VI_GAUSSIAN_METHODS)[number];

/** Per-method settings (documented in the README and the closing note of the issue). */
export const VI_GAUSSIAN_SETTINGS = {
  "proximal-svi": { samplesPerStep: 8, innerSteps: 4, learningRate: 5e-3, lambda: 0.01, offDiagonalScale: 0.1 },
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
 * q's mean and covariance in host float64 from its triangular factor, so the forward KL stays finite
 * for any positive-definite q (a float32 L L^T of a q spanning several scales need not pass a float64
 * Cholesky). `precision`: the factor is U with Sigma = (U U^T)^-1, else L with Sigma = L L^T.
 */
async function hostMoments(mean: JArray, rawFactor: JArray, d: number, precision: boolean): Promise<{ m: Float64Array; c: Float64Array }> {
  const f = Float64Array.from(await toHost(precision ? precisionFactor(rawFactor) : fullRankScale(rawFactor)));
  const ff = matmul(f, transpose(f, d), d);
  return { m: Float64Array.from(await toHost(mean)), c: precision ? spdInverse(ff, d) : ff };
}

/** Steps with an optimiser-style state whose q is a full-rank Gaussian in covariance or precision form (ADVI, proximal). */
function familyRun<S extends { q: FullRankQ | FullRankPrecisionQ }>(
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
      const q = state.q;
      const { m, c } = "prec" in q ? await hostMoments(q.mean.ref, q.prec.ref, t.d, true) : await hostMoments(q.mean.ref, q.chol.ref, t.d, false);
      return errorsOf(t, m, c);
    },
    dispose() {
      kk.dispose();
      dispose();
    },
  };
}

function closedFormRun(t: GaussianTarget, method: InferenceMethod<GaussianState, ScoreViInfo, JArray, undefined>, k: Key, dispose: () => void): BenchRun {
  const step = compile(method.step, { consume: [0, 1] });
  const [kInit, kRun] = split(k, 2);
  let state: GaussianState = method.init(kInit, np.zeros([t.d], { dtype: np.float64 }));
  let kk = kRun;
  let evals = 0;
  let rejected = 0;
  return {
    async step() {
      const [k1, k2] = split(kk, 2);
      kk = k2;
      const [s, info] = step(k1, state, undefined);
      state = s;
      rejected += await scalar(info.rejected);
      evals = await scalar(info.evaluations);
      return evals;
    },
    async errors() {
      const m = await state.mean.ref.data();
      const c = await state.cov.ref.data();
      return errorsOf(t, m as ArrayLike<number>, c as ArrayLike<number>);
    },
    rejected: () => rejected,
    dispose() {
      step.dispose();
      kk.dispose();
      for (const a of Object.values(state)) (a as JArray).dispose();
      dispose();
    },
  };
}

/** A running method on a target. */
export function startRun(t: GaussianTarget, method: ViGaussianMethod, k: Key): BenchRun {
  const target = gaussianLogDensity(t);
  const ld = target.logDensity;
  if (method === "gsm") return closedFormRun(t, createGsm(ld, { batchSize: VI_GAUSSIAN_SETTINGS.gsm.batchSize, initScale: t.initScale }), k, target.dispose);
  if (method === "bam") return closedFormRun(t, createBam(ld, { batchSize: VI_GAUSSIAN_SETTINGS.bam.batchSize, initScale: t.initScale }), k, target.dispose);
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
  const s = VI_GAUSSIAN_SETTINGS["proximal-svi"];
  const pfam = fullRankPrecision(t.d);
  const prox = createProximal(ld, { family: pfam, samplesPerStep: s.samplesPerStep, innerSteps: s.innerSteps, lambda: s.lambda, optimizer: triangularAdam(s.learningRate, s.offDiagonalScale, t.d, "prec"), initScale: t.initScale });
  const init = prox.init(kInit, np.zeros([t.d]));
  const step = compile((kk: Key, st: FlatProximalState<FullRankPrecisionQ>) => {
    const [s2, info] = prox.step(kk, st, undefined);
    return [s2, info.kl] as [FlatProximalState<FullRankPrecisionQ>, JArray];
  }, { consume: [0, 1] });
  return familyRun(t, init, step, s.samplesPerStep, kRun, () => {
    step.dispose();
    target.dispose();
  });
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

