/**
 * The exact-posterior test at the methods' defaults (issue 12, Must-show 5): every method of the
 * table (src/methods.ts) fits a correlated Bayesian linear regression through the driver, as
 * `bayesdl fit` runs it, with every algorithmic option at its spec's default (step sizes, friction,
 * lambda, Monte Carlo draws, initial sd, temperature, schedules, batch size). Only the run's length
 * is set here (epochs, samples, chains, burn-in, thinning), long enough that the Monte Carlo error
 * of the comparison is small next to the tolerances; the test checks that nothing else was.
 *
 * The target: y = 0.3 + x . w + e, e ~ N(0, sigma^2), N = 20 examples of 5 correlated inputs
 * (x = Q diag(s) u, u ~ N(0, I), Q a fixed rotation, s^2 log-spaced over a factor 8), sigma = 0.115,
 * prior N(0, 1) on the 6 parameters (the model's Gaussian prior of scale 1). Its posterior precision
 * has eigenvalues 894 to 11,510: a spread of 12.9 (checked below). N = 20 is the full batch at the
 * default batch size (128), so every gradient is exact. The default step sizes of the samplers are
 * c T / N, so what matters for them is the curvature per example, lambda / N = 45 to 575: the
 * default SGHMC step eta = 2e-3 / N has eta lambda_max = 1.15 here.
 *
 * pSGLD runs on the same inputs with sigma / 30 (eigenvalues 8.0e5 to 1.04e7, the same spread), from a
 * draw of the exact posterior. Its default step 1e-4 / N is scale-dependent: with the preconditioner
 * G ~ N / sqrt(A_jj) frozen after burn-in, one step moves a fraction ~5e-5 lambda / sqrt(A_jj) of the
 * way in an eigendirection, 1e-3 on the main target (10^5 steps for a 10% covariance) and 0.01-0.05
 * on the narrow one. While it is far from the mode its RMSprop-normalised drift moves every parameter
 * ~eps N / 2 = 5e-5 per step: from the model's initialisation (~0.5 away) the transient alone took
 * more than 25,000 steps (docs/tuning.md), hence the start at a posterior draw. (Started at the exact
 * mode instead, its first V estimate is ~0 and the first step's noise throws the chain hundreds of
 * sds away: a default that a MAP warm start would trip; docs/tuning.md.)
 *
 * What each method is compared with:
 * - `posterior` (samplers, full-rank and flow VI, GSM, BaM): the exact mean and covariance;
 * - `meanfield` (BBB and its estimators, mean-field proximal score VI): the mean-field optimum of
 *   KL(q || p), the exact mean and variances 1 / A_jj;
 * - `bb-alpha` (`alpha` at its defaults, black-box alpha with alpha = 0.5 and K = 5 draws): the
 *   optimum of that objective over mean-field Gaussians (test/exact.ts `bbAlphaOptimum`), whose
 *   variances are 1.6-2.3x the mean-field KL optimum's here;
 * - `mode` (MAP, ensembles): every draw at the posterior mode.
 * Errors (test/exact.ts `gaussianErrors`): the largest |mean_j - exact_j| in exact sds, and the largest
 * |cov_jk - exact_jk| relative to the largest exact variance; for the diagonal families also the
 * largest relative error of a variance. The tolerances and the errors measured when they were set are
 * in {@link ROWS}; docs/tuning.md has the table. Distributions are compared through 20,000 draws (Monte
 * Carlo error ~0.6% on the covariance).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromHost, key } from "../src/core/engine.js";
import { cholesky, logDetCholesky, solveLower } from "../src/core/linalg.js";
import type { OptionValue } from "../src/core/options.js";
import { unraveler } from "../src/core/ravel.js";
import { resolveOptions } from "../src/core/spec.js";
import { free } from "../src/core/tree.js";
import type { ArrayData } from "../src/data/types.js";
import { METHODS, type Method } from "../src/methods.js";
import { gaussian } from "../src/models/likelihood.js";
import { makeModel, type Model, type Params } from "../src/models/model.js";
import { mlp } from "../src/models/mlp.js";
import { fit } from "../src/run/driver.js";
import { stepsPerEpoch } from "../src/run/batches.js";
import { bbAlphaOptimum, blrPosterior, gaussianDraw, gaussianErrors, gaussianFrom, lcg, meanFieldOptimum, sampleMoments, symmetricEigenvalues } from "./exact.js";
import { drawRows } from "./helpers.js";

const VERBOSE = !!process.env.BAYESDL_TEST_VERBOSE;

/** The regression: data, model, design and exact posterior. */
interface Target {
  readonly data: ArrayData;
  readonly model: Model;
  readonly z: number[][];
  readonly y: number[];
  readonly sigma: number;
  readonly mean: Float64Array;
  readonly cov: Float64Array;
  readonly precision: Float64Array;
}

const N = 20;
const INPUTS = 5;
const SIGMA = 0.115;

/** The module comment's regression with noise sd `sigma` (the inputs and the noise draws do not depend on it). */
function regression(sigma: number): Target {
  const g = gaussianFrom(lcg(3));
  const scales = Array.from({ length: INPUTS }, (_, k) => Math.sqrt(8 ** (k / (INPUTS - 1))));
  // A fixed rotation: Gram-Schmidt on Gaussian vectors.
  const rot: number[][] = [];
  for (let k = 0; k < INPUTS; k++) {
    let v = Array.from({ length: INPUTS }, () => g());
    for (const q of rot) {
      const p = v.reduce((s, x, j) => s + x * q[j], 0);
      v = v.map((x, j) => x - p * q[j]);
    }
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    rot.push(v.map((x) => x / norm));
  }
  const w = [0.7, -0.4, 0.2, 0.5, -0.3];
  const x = new Float32Array(N * INPUTS);
  const y = new Float32Array(N);
  const z: number[][] = [];
  for (let i = 0; i < N; i++) {
    const u = scales.map((s) => s * g());
    for (let j = 0; j < INPUTS; j++) x[i * INPUTS + j] = rot.reduce((s, q, k) => s + q[j] * u[k], 0);
    const row = Array.from(x.subarray(i * INPUTS, (i + 1) * INPUTS));
    y[i] = row.reduce((s, v, j) => s + v * w[j], 0.3) + sigma * g();
    // The parameter vector is ordered as the saved leaves: net.layers.0.b, then net.layers.0.w.
    z.push([1, ...row]);
  }
  const post = blrPosterior(z, Array.from(y), sigma, 1);
  const model = makeModel(mlp({ inputShape: [INPUTS], hidden: [], outputDim: 1 }), gaussian({ sigma, noise: "fixed" }), { kind: "gaussian", scale: 1 });
  return { data: { x, y, n: N, xShape: [INPUTS] }, model, z, y: Array.from(y), sigma, ...post };
}

const TARGET = regression(SIGMA);
const NARROW = regression(SIGMA / 30);
const D = INPUTS + 1;

/** What a method is compared with, its run length and its tolerances (see the module comment). */
interface Row {
  readonly expect: "posterior" | "meanfield" | "bb-alpha" | "mode" | "evidence" | "evidence-per-weight";
  /** Run length only: epochs, samples, chains, burnin, thin. */
  readonly run: Readonly<Record<string, number>>;
  /** Largest mean error in exact sds. */
  readonly meanTol: number;
  /** Largest covariance error relative to the largest exact variance. */
  readonly covTol: number;
  /** Diagonal families: largest relative error of a variance. */
  readonly varTol?: number;
  /** The narrow target, from a draw of its posterior (pSGLD; see the module comment). */
  readonly narrow?: true;
}

/** The options a test may set: the run's length. */
const RUN_LENGTH = new Set(["epochs", "samples", "chains", "burnin", "thin"]);

const sampler = (chains: number, burnin: number, samples: number, thin: number) => ({ chains, burnin, samples, thin });

/**
 * One row per method. The comment above each row gives the errors measured when the tolerances were
 * set (mean error in sds / covariance error / largest variance error); the tolerances leave room for
 * the Monte Carlo error of the draws (samplers: effective sample sizes of a few hundred to a few
 * thousand) and state each method's known bias at its defaults.
 */
const ROWS: Readonly<Record<string, Row>> = {
  // 0.006 sd. Adam at lr 1e-3 from the model's initialisation reaches the mode in ~3,000 steps (2,000: 0.15 sd).
  map: { expect: "mode", run: { epochs: 3000 }, meanTol: 0.1, covTol: Infinity },
  // 0.074 sd (the farthest of the 5 members; at 3,000 steps one member was still 3.7 sds away).
  ensemble: { expect: "mode", run: { epochs: 5000 }, meanTol: 0.15, covTol: Infinity },
  // 0.04 / 0.035 / 5%.
  sgld: { expect: "posterior", run: sampler(16, 1000, 200, 10), meanTol: 0.2, covTol: 0.15 },
  // 0.04 / 0.028 / 5%: the Must-show's 10%. The preconditioner adapts during burn-in and is frozen for
  // sampling, so the dropped Gamma term is exactly zero; with V adapting throughout (the old
  // behaviour) this row measured 0.111 and failed.
  psgld: { expect: "posterior", run: sampler(48, 2000, 200, 20), meanTol: 0.2, covTol: 0.1, narrow: true },
  // 0.074 / 0.067 / 15% at the regression default 1e-3 / N (at 2e-3 / N: 0.015 / 0.084 / 12%).
  // Discretisation: the stationary variance along an eigendirection is ~1 / (1 - eta lambda / 4) of
  // the exact one: +17% along the stiffest (eta lambda = 0.58), +1% along the softest; at the smaller
  // step the chains also travel less in the same run.
  sghmc: { expect: "posterior", run: sampler(8, 1000, 200, 10), meanTol: 0.2, covTol: 0.2 },
  // 0.033 / 0.091 / 13%, too cold. The thermostat comes down from its burn-in overshoot by at most
  // eta = 1e-4 per step (burn-in 5,000: -30%), and it settles where the discretised kinetic energy,
  // inflated along stiff directions as SGHMC's is, matches eta: it cools every direction for it.
  sgnht: { expect: "posterior", run: sampler(8, 8000, 200, 10), meanTol: 0.2, covTol: 0.25 },
  // 0.17 / 0.18 / 26%. The default 4 cycles explore 80% of each; samples come from the ends of the
  // cycles only, where the step is small and the chains mix slowly: fewer independent draws.
  csgld: { expect: "posterior", run: sampler(16, 10080, 64, 30), meanTol: 0.35, covTol: 0.35 },
  // 0.09 / 0.047 / 10%.
  csghmc: { expect: "posterior", run: sampler(16, 10080, 64, 30), meanTol: 0.3, covTol: 0.25 },
  // 0.021 / 0.045 / 4.5%. The posterior averages the iterates over the second half of the run
  // (src/vi/bbb.ts secondHalf); the variances take ~5,000 steps from the initial sd 0.01, so the run
  // is 10,000 steps (5,000 steps: the average took in unconverged variances, 21% off). The last
  // iterate after 5,000 steps was 0.19 / 0.047 / 8%: Adam's jitter moved its mean.
  bbb: { expect: "meanfield", run: { epochs: 10000 }, meanTol: 0.4, covTol: 0.15, varTol: 0.2 },
  // 0.026 / 0.016 / 2.8%.
  "bbb-lrt": { expect: "meanfield", run: { epochs: 10000 }, meanTol: 0.4, covTol: 0.15, varTol: 0.2 },
  // 0.025 / 0.014 / 4.3% (5,000 steps: 0.032 / 0.141 / 21%).
  flipout: { expect: "meanfield", run: { epochs: 10000 }, meanTol: 0.4, covTol: 0.2, varTol: 0.25 },
  // 0.016 / 0.038 / 3.8% against black-box alpha's optimum (the last iterate after 5,000 steps:
  // 0.06 / 0.048 / 6%). Against the mean-field KL optimum its variances are 50-130% larger, as
  // alpha = 0.5 should make them.
  alpha: { expect: "bb-alpha", run: { epochs: 10000 }, meanTol: 0.4, covTol: 0.2, varTol: 0.2 },
  // 0.013 / 0.035 / 3.5%: the Must-show's 10%. The posterior is the average of the iterates over the
  // second half of the run; the last iterate's variances were up to 19% off.
  "proximal-svi": { expect: "meanfield", run: { epochs: 2000 }, meanTol: 0.1, covTol: 0.1, varTol: 0.1 },
  // 0.007 / 0.006 / 1%: the Must-show's 10%, and exact up to the draws' Monte Carlo error (the
  // iteration settles on the posterior with full batches).
  "proximal-svi-fullrank": { expect: "posterior", run: { epochs: 500 }, meanTol: 0.05, covTol: 0.03 },
  // 0.27 / 0.14 / 27% low. Full-rank ADVI's off-diagonal steps are damped by the initial sd
  // (src/vi/gaussian.ts triangularAdam): its variances converge slowly (3,000 steps: 0.19 / 32%).
  fullrank: { expect: "posterior", run: { epochs: 4000 }, meanTol: 0.5, covTol: 0.3 },
  // 0.29 / 0.17 / 17%. A flow approximates: its couplings must learn the correlations (1,500 steps: 0.29 / 106%).
  flow: { expect: "posterior", run: { epochs: 2000 }, meanTol: 0.6, covTol: 0.4 },
  // 0.008 / 0.006 / 1%, exact up to the draws. The MAP warm start (as many epochs) must reach the
  // mode first: after a 1,000-epoch warm start BaM stayed 40 sds off (its lambda_t = B d / (t + 1)
  // decays before q gets there).
  gsm: { expect: "posterior", run: { epochs: 2000 }, meanTol: 0.05, covTol: 0.03 },
  bam: { expect: "posterior", run: { epochs: 2000 }, meanTol: 0.05, covTol: 0.03 },
  // Regression defaults: all weights, the full matrix, online evidence rounds (MAP, tune the prior,
  // retrain), then a precision per weight tuned at the mode: the reference mean is the exact posterior
  // mean under the prior that maximises the exact evidence (type-II maximum likelihood; one layer, so
  // the rounds' per-layer prior is one scale), its covariance (G + diag(tau))^-1 under the per-weight
  // precisions that maximise the evidence at that mean. 3,000 epochs are 3,000 full-batch Adam steps
  // in the first round. 0.011 / 0.011 / 1.5% (against the one-scale posterior's covariance 0.014 /
  // 1.6%; the one-scale default measured 0.007 / 0.004 / 0.4%): per-weight precisions follow theta*^2,
  // so the mode's own error moves them, and the draws' Monte Carlo error is about 0.01.
  laplace: { expect: "evidence-per-weight", run: { epochs: 3000 }, meanTol: 0.1, covTol: 0.05 },
  // Sampled Laplace at its defaults (3 EM steps, solves of at least 100 steps) under the same reference:
  // the linearised model of a linear model is itself, and EM's fixed point is the evidence maximiser.
  "sampled-laplace": { expect: "evidence", run: { epochs: 3000, samples: 20000 }, meanTol: 0.1, covTol: 0.05 },
};

/**
 * The exact posterior of the target under the prior N(0, s^2 I) whose s maximises the exact evidence
 * log N(y; 0, s^2 Z Z^T + sigma^2 I) (golden-section search on log s; the evidence is unimodal here).
 */
function evidencePosterior(t: Target): { mean: Float64Array; cov: Float64Array } {
  const n = t.z.length;
  const logZ = (logS: number): number => {
    const s2 = Math.exp(2 * logS);
    const c = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c[i * n + j] = s2 * t.z[i].reduce((a, v, q) => a + v * t.z[j][q], 0) + (i === j ? t.sigma * t.sigma : 0);
    // Cholesky, then -1/2 y^T C^-1 y - 1/2 log det C.
    const l = cholesky(c, n);
    const a = solveLower(l, n, Float64Array.from(t.y), 1);
    const ld = 0.5 * logDetCholesky(l, n);
    return -0.5 * a.reduce((x, v) => x + v * v, 0) - ld;
  };
  let lo = -6;
  let hi = 6;
  const g = (Math.sqrt(5) - 1) / 2;
  for (let it = 0; it < 200; it++) {
    const m1 = hi - g * (hi - lo);
    const m2 = lo + g * (hi - lo);
    if (logZ(m1) > logZ(m2)) hi = m2;
    else lo = m1;
  }
  const post = blrPosterior(t.z, t.y, t.sigma, Math.exp((lo + hi) / 2));
  return { mean: post.mean, cov: post.cov };
}


/**
 * The exact posterior covariance (G + diag(tau))^-1, G = Z^T Z / sigma^2, under the per-weight prior
 * precisions tau that maximise the exact evidence with the mean held at `mean` (a post-hoc prior at a
 * fixed mode): MacKay's fixed point tau_p = (1 - tau_p Sigma_pp) / mean_p^2, iterated until no tau_p
 * moves by 1e-12 of itself (all weights here are well determined by the data, where it converges).
 */
function perWeightCovariance(t: Target, mean: Float64Array): Float64Array {
  const d = mean.length;
  const g = Float64Array.from(t.precision, (v, i) => (Math.floor(i / d) === i % d ? v - 1 : v)); // the precision under the unit prior, less it
  const covOf = (tau: Float64Array) => {
    const a = Float64Array.from(g);
    for (let i = 0; i < d; i++) a[i * d + i] += tau[i];
    const l = cholesky(a, d);
    const eye = new Float64Array(d * d);
    for (let i = 0; i < d; i++) eye[i * d + i] = 1;
    const x = solveLower(l, d, eye, d); // L^-1; Sigma = L^-T L^-1
    const cov = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) cov[i * d + j] += x[k * d + i] * x[k * d + j];
    return cov;
  };
  let tau = new Float64Array(d).fill(1);
  for (let it = 0; ; it++) {
    const cov = covOf(tau);
    const next = tau.map((v, p) => (1 - v * cov[p * d + p]) / (mean[p] * mean[p]));
    const moved = Math.max(...next.map((v, p) => Math.abs(v / tau[p] - 1)));
    tau = next;
    if (moved < 1e-12) break;
    assert.ok(it < 10000, "the per-weight fixed point converges");
  }
  return covOf(tau);
}

/** A parameter tree holding the flat vector `v` (sorted leaf paths). */
function paramsOf(model: Model, v: ArrayLike<number>): Params {
  const template = model.init(key(0));
  const unravel = unraveler(template);
  free(template);
  return unravel(fromHost(Float32Array.from(v), [v.length]));
}

test("the target: the posterior precision's eigenvalues spread over more than a factor 10", () => {
  for (const [name, t] of [["main", TARGET], ["narrow", NARROW]] as const) {
    const ev = symmetricEigenvalues(t.precision, D);
    const spread = ev[D - 1] / ev[0];
    if (VERBOSE) console.error(`${name} target: precision eigenvalues ${ev.map((v) => v.toPrecision(4)).join(", ")} (spread ${spread.toFixed(2)})`);
    assert.ok(spread > 10, `${name}: spread ${spread}`);
    // Correlated: some off-diagonal posterior correlation is large.
    let maxCorr = 0;
    for (let i = 0; i < D; i++) for (let j = 0; j < i; j++) maxCorr = Math.max(maxCorr, Math.abs(t.cov[i * D + j]) / Math.sqrt(t.cov[i * D + i] * t.cov[j * D + j]));
    assert.ok(maxCorr > 0.5, `${name}: largest posterior correlation ${maxCorr}`);
  }
});

test("every method of the table has a row", () => {
  const missing = METHODS.map((m) => m.name).filter((n) => !(n in ROWS));
  assert.deepEqual(missing, [], `methods without a row in test/defaults-exact.test.ts: ${missing.join(", ")}`);
});

/** The exact answer a row is compared with. */
function reference(m: Method, row: Row, t: Target, options: Readonly<Record<string, OptionValue>>): { mean: Float64Array; cov: Float64Array } {
  if (row.expect === "meanfield") return meanFieldOptimum(t.mean, t.precision);
  if (row.expect === "evidence") return evidencePosterior(t);
  if (row.expect === "evidence-per-weight") {
    const e = evidencePosterior(t);
    return { mean: e.mean, cov: perWeightCovariance(t, e.mean) };
  }
  if (row.expect === "bb-alpha") {
    assert.equal(options.objective, "bb-alpha", `${m.name}: the reference is black-box alpha's optimum; the default objective is now ${options.objective}`);
    return bbAlphaOptimum(t.z, t.y, t.sigma, 1, Number(options.alpha), Number(options.mc));
  }
  return { mean: t.mean, cov: t.cov };
}

for (const m of METHODS) {
  const row = ROWS[m.name];
  if (!row) continue;
  test(`${m.name} at its default settings: ${row.expect === "mode" ? "the posterior mode" : row.expect === "meanfield" ? "the mean-field optimum" : row.expect === "bb-alpha" ? "the black-box alpha optimum" : row.expect === "evidence" ? "the exact posterior under the evidence-maximising prior" : row.expect === "evidence-per-weight" ? "the exact posterior under the evidence-maximising prior, with the covariance of the per-weight one at its mean" : "the exact posterior"}${row.narrow ? " (narrow target)" : ""}`, async () => {
    const t = row.narrow ? NARROW : TARGET;
    for (const k of Object.keys(row.run)) assert.ok(RUN_LENGTH.has(k), `${m.name}: the test sets '${k}', which is not a run length`);
    const start = row.narrow ? paramsOf(t.model, gaussianDraw(t.mean, t.cov, gaussianFrom(lcg(11)))) : undefined;
    const t0 = performance.now();
    const r = await fit(key(7), m, t.model, t.data, { options: row.run, initParams: start });
    const seconds = (performance.now() - t0) / 1000;
    free(start);
    // Every option but the run's length is the spec's default (full batch: the default batch size, 128, exceeds N).
    const defaults = resolveOptions(m, {}, { n: N, batchSize: N, stepsPerEpoch: stepsPerEpoch(N, N), classification: false, paramCount: D }) as Record<string, OptionValue>;
    for (const [k, v] of Object.entries(r.options)) if (!RUN_LENGTH.has(k)) assert.equal(v, defaults[k], `${m.name}: option ${k} is ${v}, its default is ${defaults[k]}`);
    const rows = await drawRows(r.posterior, 20000);
    r.posterior.dispose();
    if (r.sampled !== r.posterior) r.sampled.dispose();
    const want = reference(m, row, t, r.options);
    const got = sampleMoments(rows);
    let meanErr: number;
    let covErr = 0;
    let varErr = 0;
    if (row.expect === "mode") {
      // Every draw (the MAP estimate, each ensemble member) at the mode.
      meanErr = Math.max(...rows.map((x) => gaussianErrors(x, want.cov, want.mean, want.cov).meanErr));
    } else {
      ({ meanErr, covErr } = gaussianErrors(got.mean, got.cov, want.mean, want.cov));
      for (let j = 0; j < D; j++) varErr = Math.max(varErr, Math.abs(got.cov[j * D + j] / want.cov[j * D + j] - 1));
    }
    if (VERBOSE) console.error(`${m.name}: mean error ${meanErr.toFixed(3)} sd, covariance error ${covErr.toFixed(3)}, largest variance error ${(100 * varErr).toFixed(1)}% (${rows.length} draws, ${r.steps} steps, ${seconds.toFixed(1)} s)`);
    assert.ok(meanErr < row.meanTol, `${m.name}: mean error ${meanErr.toFixed(3)} sd (tolerance ${row.meanTol})`);
    assert.ok(covErr < row.covTol, `${m.name}: covariance error ${covErr.toFixed(3)} of the largest variance (tolerance ${row.covTol})`);
    if (row.varTol !== undefined) assert.ok(varErr < row.varTol, `${m.name}: a variance is ${(100 * varErr).toFixed(1)}% off (tolerance ${100 * row.varTol}%)`);
  });
}
