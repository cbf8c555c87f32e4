/**
 * The table-driven harness: every method of the table (src/methods.ts) runs through the driver, as the
 * CLI runs it, against two targets with exact answers, at a second temperature, and through the CLI's
 * fit -> save -> evaluate round trip on real data. A method added to the table without a row in
 * {@link HARNESS} fails here.
 *
 * Targets (host float64 answers from test/exact.ts): Bayesian linear regression with fixed noise,
 * whose posterior is Gaussian,
 * - `gaussian`: 2 correlated inputs (correlation 0.9) and an intercept, full
 *   batches, so the gradient is exact;
 * - `blr`: 4 inputs and an intercept, minibatches of 20 of 200.
 * What each method is checked against:
 * - `posterior` (samplers, full-covariance VI): the exact mean and covariance;
 * - `meanfield` (mean-field VI): the mean-field optimum of KL(q || p): the exact mean and the diagonal
 *   covariance 1 / A_jj (A the posterior precision);
 * - `mode` (MAP, ensembles): every draw at the posterior mode (= its mean).
 * Tolerances are per method, stated with the measured errors in {@link HARNESS}: Monte Carlo error of
 * the draws plus each method's known bias (discretisation of samplers, Adam's stationary jitter).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { key } from "../src/core/engine.js";
import type { OptionValue } from "../src/core/options.js";
import { free } from "../src/core/tree.js";
import type { ArrayData } from "../src/data/types.js";
import { sampleSetFromTensors } from "../src/core/posterior.js";
import { METHODS, posteriorKind, type Method } from "../src/methods.js";
import { gaussian } from "../src/models/likelihood.js";
import { makeModel, type Model } from "../src/models/model.js";
import { mlp } from "../src/models/mlp.js";
import { fit } from "../src/run/driver.js";
import { blrPosterior, gaussianErrors, gaussianFrom, lcg, meanFieldOptimum, sampleMoments } from "./exact.js";
import { drawRows } from "./helpers.js";

const VERBOSE = !!process.env.BAYESDL_TEST_VERBOSE;

/** A regression target: its data, model, exact posterior and batch size. */
interface Target {
  readonly name: "gaussian" | "blr";
  readonly data: ArrayData;
  readonly model: Model;
  readonly batchSize: number;
  readonly mean: Float64Array;
  readonly cov: Float64Array;
  readonly precision: Float64Array;
}

function regression(name: Target["name"], n: number, d: number, corr: number, sigma: number, priorScale: number, batchSize: number, seed: number): Target {
  const g = gaussianFrom(lcg(seed));
  const x = new Float32Array(n * d);
  const y = new Float32Array(n);
  const z: number[][] = [];
  const w = [0.7, -0.4, 0.2, 0.5].slice(0, d);
  for (let i = 0; i < n; i++) {
    const common = g();
    const row = Array.from({ length: d }, () => corr * common + Math.sqrt(1 - corr * corr) * g());
    row.forEach((v, j) => (x[i * d + j] = v));
    y[i] = row.reduce((s, v, j) => s + v * w[j], 0.3) + sigma * g();
    // The parameter vector is ordered as the saved leaves: net.layers.0.b, then net.layers.0.w.
    z.push([1, ...Array.from(x.subarray(i * d, (i + 1) * d))]);
  }
  const post = blrPosterior(z, Array.from(y), sigma, priorScale);
  const model = makeModel(mlp({ inputShape: [d], hidden: [], outputDim: 1 }), gaussian({ sigma, noise: "fixed" }), { kind: "gaussian", scale: priorScale });
  return { name, data: { x, y, n, xShape: [d] }, model, batchSize, ...post };
}

const TARGETS: Target[] = [regression("gaussian", 64, 2, 0.9, 0.5, 1, 64, 3), regression("blr", 200, 4, 0.5, 0.5, 1, 20, 4)];

/** What a method is compared with (see the module comment), its options on each target and its tolerances. */
interface HarnessRow {
  readonly expect: "posterior" | "meanfield" | "mode";
  readonly options: Readonly<Record<Target["name"], Readonly<Record<string, OptionValue>>>>;
  /** Largest mean error in exact posterior sds, and largest covariance error relative to the largest variance. */
  readonly meanTol: number;
  readonly covTol: number;
  /** Run on full batches even on the minibatch target (methods that need exact scores). */
  readonly fullBatch?: boolean;
}

const samplerRun = { chains: 4, samples: 400, thin: 4, burnin: 1000 };
const cyclicalRun = { chains: 4, samples: 400, cycles: 20, explore: 0.5, thin: 2, burnin: 2400 };
const vi = (lr: number, mc: number, extra: Record<string, OptionValue> = {}) => ({
  gaussian: { epochs: 1500, lr, initStd: 0.1, mc, ...extra },
  // 400 epochs: the posterior averages the iterates' second half, which must have converged scales
  // (at 200: covariance 21% off for bbb and alpha).
  blr: { epochs: 400, lr, initStd: 0.1, mc, ...extra },
});
const closedForm = { gaussian: { epochs: 1000, initStd: 0.1 }, blr: { epochs: 1000, initStd: 0.1 } };

/**
 * One row per method of the table. Options are the methods' own, chosen for these targets (each run
 * takes a few seconds). Samplers keep 1,600 draws (an ESS of a few hundred: ~10% Monte Carlo error per
 * covariance entry, up to ~25% for the worst of nine); cyclical ones take short cycles, since only the
 * end of each cycle is sampled, and still see fewer independent draws (tolerance 0.4). The reparameterised estimators take 16 draws per step because their
 * gradient noise, not Adam's step, sets the jitter of q's mean (bbb: 0.27 sd with 4 draws, 0.04 with
 * 16). GSM and BaM run on full batches: they match each batch's scores in closed form, with no step
 * size to average minibatch noise out (GSM's covariance error on 20-of-200 minibatches: 13x; BaM's
 * decaying lambda only damps it), so they are exact with exact scores only.
 */
const HARNESS: Readonly<Record<string, HarnessRow>> = {
  map: { expect: "mode", options: { gaussian: { epochs: 1500, lr: 0.01 }, blr: { epochs: 500, lr: 2e-3 } }, meanTol: 0.1, covTol: Infinity },
  ensemble: { expect: "mode", options: { gaussian: { epochs: 1500, lr: 0.01, members: 3 }, blr: { epochs: 500, lr: 2e-3, members: 3 } }, meanTol: 0.15, covTol: Infinity },
  sgld: { expect: "posterior", options: { gaussian: { ...samplerRun, lr: 1e-3 }, blr: { ...samplerRun, lr: 2e-4 } }, meanTol: 0.25, covTol: 0.3 },
  psgld: { expect: "posterior", options: { gaussian: { ...samplerRun, lr: 2e-4 }, blr: { ...samplerRun, lr: 5e-5 } }, meanTol: 0.25, covTol: 0.3 },
  sghmc: { expect: "posterior", options: { gaussian: { ...samplerRun, lr: 2e-4, friction: 0.1 }, blr: { ...samplerRun, lr: 2e-5, friction: 0.5 } }, meanTol: 0.25, covTol: 0.3 },
  sgnht: { expect: "posterior", options: { gaussian: { ...samplerRun, lr: 2e-4, friction: 0.1 }, blr: { ...samplerRun, lr: 2e-5, friction: 0.5 } }, meanTol: 0.25, covTol: 0.3 },
  csgld: { expect: "posterior", options: { gaussian: { ...cyclicalRun, lr: 2e-3 }, blr: { ...cyclicalRun, lr: 4e-4 } }, meanTol: 0.3, covTol: 0.4 },
  csghmc: { expect: "posterior", options: { gaussian: { ...cyclicalRun, lr: 4e-4, friction: 0.1 }, blr: { ...cyclicalRun, lr: 4e-5, friction: 0.5 } }, meanTol: 0.3, covTol: 0.4 },
  bbb: { expect: "meanfield", options: vi(3e-3, 16), meanTol: 0.2, covTol: 0.2 },
  "bbb-lrt": { expect: "meanfield", options: vi(3e-3, 4), meanTol: 0.2, covTol: 0.2 },
  flipout: { expect: "meanfield", options: vi(3e-3, 4), meanTol: 0.2, covTol: 0.25 },
  // alpha = 0 is the K-sample ELBO exactly, whose optimum is the mean-field one.
  alpha: { expect: "meanfield", options: vi(3e-3, 16, { alpha: 0 }), meanTol: 0.2, covTol: 0.2 },
  "proximal-svi": { expect: "meanfield", options: { gaussian: { epochs: 1500, initStd: 0.1, lambda: 50, mc: 8 }, blr: { epochs: 200, initStd: 0.1, lambda: 200, mc: 8 } }, meanTol: 0.3, covTol: 0.3 },
  // Closed-form steps; on minibatches the average of the iterates over the second half of the run.
  "proximal-svi-fullrank": { expect: "posterior", options: closedForm, meanTol: 0.2, covTol: 0.2 },
  fullrank: { expect: "posterior", options: vi(3e-3, 4), meanTol: 0.25, covTol: 0.25 },
  // A flow is an approximation here (RealNVP's couplings must learn the correlations): measured 0.2-0.55 sd, 0.15-0.32.
  flow: { expect: "posterior", options: { gaussian: { epochs: 600, lr: 3e-3, initStd: 0.1, mc: 4 }, blr: { epochs: 100, lr: 3e-3, initStd: 0.1, mc: 4 } }, meanTol: 0.6, covTol: 0.4 },
  gsm: { expect: "posterior", options: closedForm, meanTol: 0.2, covTol: 0.2, fullBatch: true },
  bam: { expect: "posterior", options: closedForm, meanTol: 0.2, covTol: 0.2, fullBatch: true },
  // The full Laplace at the MAP is the exact posterior of a linear-Gaussian model: measured 0.09 / 0.024 sd (the MAP warm start's Adam jitter) and 0.035 (Monte Carlo error of 4,000 draws).
  laplace: { expect: "posterior", options: { gaussian: { epochs: 1500, lr: 0.01, hessian: "full", priorOpt: "none", pred: "nn" }, blr: { epochs: 500, hessian: "full", priorOpt: "none", pred: "nn" } }, meanTol: 0.15, covTol: 0.06 },
  // The linearised model of a linear-Gaussian model is itself: 4,000 samples solved together around the MAP, under the model's
  // prior (no EM). Measured 0.07 / 0.03 sd (the MAP's Adam jitter) and 0.053 (full batches: the Monte Carlo error of the
  // 4,000 samples); on minibatches 0.064 with 60 epochs per solve and 0.066 with 150 (the same floor: not solver jitter).
  "sampled-laplace": { expect: "posterior", options: { gaussian: { epochs: 1500, lr: 0.01, samples: 4000, emSteps: 0, solveEpochs: 300 }, blr: { epochs: 500, samples: 4000, emSteps: 0, solveEpochs: 60 } }, meanTol: 0.15, covTol: 0.08 },
};


/** Fit `m` on `t` at temperature `temperature` (when the method takes one) and compare with the exact answer. */
async function check(m: Method, row: HarnessRow, t: Target, temperature = 1): Promise<{ meanErr: number; covErr: number }> {
  const base = row.options[t.name];
  // A colder target is narrower: q shrinks from its initial scale for twice as long.
  const cold = temperature !== 1 ? { temperature, ...(typeof base.epochs === "number" ? { epochs: 2 * base.epochs } : {}) } : {};
  const r = await fit(key(7), m, t.model, t.data, { batchSize: row.fullBatch ? t.data.n : t.batchSize, options: { ...base, ...cold } });
  const rows = await drawRows(r.posterior, 4000);
  r.posterior.dispose();
  if (r.sampled !== r.posterior) r.sampled.dispose();
  const got = sampleMoments(rows);
  // The tempered target p^(1/T) of a Gaussian posterior has the same mean and T times its covariance.
  const exactCov = t.cov.map((v) => v * temperature);
  const precision = t.precision.map((v) => v / temperature);
  const want = row.expect === "meanfield" ? meanFieldOptimum(t.mean, precision) : { mean: t.mean, cov: exactCov };
  const e = gaussianErrors(got.mean, row.expect === "mode" ? want.cov : got.cov, want.mean, want.cov);
  if (VERBOSE) console.error(`${m.name} on ${t.name} (T = ${temperature}): mean error ${e.meanErr.toFixed(3)} sd, covariance error ${e.covErr.toFixed(3)} (${rows.length} draws)`);
  return e;
}

test("every method of the table has a harness row", () => {
  const missing = METHODS.map((m) => m.name).filter((n) => !(n in HARNESS));
  assert.deepEqual(missing, [], `methods without a row in the harness (test/harness.test.ts): ${missing.join(", ")}`);
});

for (const m of METHODS) {
  const row = HARNESS[m.name];
  if (!row) continue;
  for (const t of TARGETS) {
    test(`${m.name} on ${t.name === "gaussian" ? "a correlated Gaussian posterior (full batches)" : "Bayesian linear regression (minibatches)"}: ${row.expect === "mode" ? "the posterior mode" : row.expect === "meanfield" ? "the mean-field optimum" : "the exact posterior"}`, async () => {
      const e = await check(m, row, t);
      assert.ok(e.meanErr < row.meanTol, `${m.name} on ${t.name}: mean error ${e.meanErr.toFixed(3)} sd (tolerance ${row.meanTol})`);
      assert.ok(e.covErr < row.covTol, `${m.name} on ${t.name}: covariance error ${e.covErr.toFixed(3)} of the largest variance (tolerance ${row.covTol})`);
    });
  }
  if ("temperature" in m.options) {
    test(`${m.name} at temperature 0.25 targets p^4: the same mean, a quarter of the covariance`, async () => {
      const e = await check(m, row, TARGETS[0], 0.25);
      assert.ok(e.meanErr < row.meanTol, `${m.name} at T = 0.25: mean error ${e.meanErr.toFixed(3)} sd (tolerance ${row.meanTol})`);
      assert.ok(e.covErr < row.covTol, `${m.name} at T = 0.25: covariance error ${e.covErr.toFixed(3)} (tolerance ${row.covTol})`);
    });
  }
}

// ---------------------------------------------------------------- saved posteriors rebuilt from their tensors

/** Short runs on the full-batch target (options only where the method takes them). */
const SHORT: Readonly<Record<string, OptionValue>> = { epochs: 2, samples: 4, chains: 2, members: 2, burnin: 40, thin: 5 };

for (const m of METHODS) {
  test(`saved posterior, ${m.name}: rebuilt from its tensors (a set of draws, or one of the method's kinds) it draws what the fit's posterior draws`, async () => {
    const t = TARGETS[0];
    const options = Object.fromEntries(Object.entries(SHORT).filter(([k]) => k in m.options));
    const r = await fit(key(5), m, t.model, t.data, { batchSize: t.data.n, options });
    const post = r.posterior;
    const tensors = await post.tensors();
    const template = t.model.init(key(0));
    let loaded;
    if (post.size !== undefined) {
      loaded = sampleSetFromTensors(template, tensors, post.size);
    } else {
      assert.ok((m.kinds ?? []).some((k) => k.kind === post.kind), `${m.name} returns a '${post.kind}' posterior but does not list that kind in its spec's kinds, so evaluate cannot load it`);
      loaded = posteriorKind(post.kind).load(template, post.options, tensors, t.model);
    }
    free(template);
    // The same key and count: a set returns its draws, a distribution draws the same eps through its
    // saved parameters (float32 on disk; the Gaussian of GSM and BaM refactors its covariance: 1e-4).
    const n = post.size === undefined ? Math.min(16, post.maxDraws ?? 16) : undefined;
    const want = await drawRows({ size: post.size, draws: (_k, _n) => post.draws(key(3), n) }, 16);
    const got = await drawRows({ size: loaded.size, draws: (_k, _n) => loaded.draws(key(3), n) }, 16);
    post.dispose();
    if (r.sampled !== post) r.sampled.dispose();
    loaded.dispose();
    assert.equal(got.length, want.length);
    const scale = Math.max(1, ...want.flat().map(Math.abs));
    const err = Math.max(...want.flatMap((row, i) => row.map((v, j) => Math.abs(v - got[i][j]))));
    assert.ok(err <= 1e-4 * scale, `${m.name}: rebuilt posterior's draws differ by ${err} (largest |value| ${scale})`);
  });
}

// ---------------------------------------------------------------- the CLI round trip on real data

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../src/cli/main.js");
const boston = resolve(here, "../../../shared/data/uci/bostonHousing");

/** Short runs of every method (each option only where the method takes it). */
const QUICK: Readonly<Record<string, string>> = { epochs: "3", samples: "4", chains: "2", members: "2", burnin: "40", thin: "5" };

for (const m of METHODS) {
  test(`CLI round trip, ${m.name}: fit --out on UCI boston, then evaluate reproduces the fit's metrics`, () => {
    const dir = mkdtempSync(join(tmpdir(), "bayesdl-harness-"));
    try {
      const out = join(dir, "post");
      const quick = Object.entries(QUICK).filter(([k]) => k in m.options).flatMap(([k, v]) => [`--${k}`, v]);
      const f = spawnSync(process.execPath, [cli, "fit", "--data", `uci:${boston}`, "--model", "mlp:8", "--method", m.name, "--batch-size", "64", "--quiet", "--out", out, ...quick], { encoding: "utf8" });
      assert.equal(f.status, 0, f.stderr);
      const e = spawnSync(process.execPath, [cli, "evaluate", "--posterior", out, "--json"], { encoding: "utf8" });
      assert.equal(e.status, 0, e.stderr);
      const ev = JSON.parse(e.stdout) as { method: string; metrics: Record<string, number> };
      assert.equal(ev.method, m.name);
      const rmse = Number(/RMSE\s+([0-9.]+)/.exec(f.stdout)?.[1]);
      assert.ok(Math.abs(ev.metrics.rmse - rmse) < 1e-4 * rmse, `evaluate RMSE ${ev.metrics.rmse} vs fit ${rmse}`);
      assert.ok(Number.isFinite(ev.metrics.ll), `test LL ${ev.metrics.ll}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
