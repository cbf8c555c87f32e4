/**
 * Gaussian processes (src/gp) against exact answers: a two-point case by hand, float64 closed forms by
 * an independent route (eigendecomposition), marginal-likelihood gradients against central finite
 * differences, CG against the Cholesky mean, SGD and SDD sample means and variances against the exact
 * posterior (tolerances include the Monte Carlo error of S samples), random-feature prior samples
 * against the kernel's covariance, and the saved posterior's round trip through the CLI.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { key, toHost } from "../src/core/engine.js";
import { symEig } from "../src/core/linalg.js";
import { conditionExact, fitHypers, fromLog, logMarginal, predictExact, toLog } from "../src/gp/exact.js";
import { crossKernel, KERNELS, scaleInputs, type GpHypers } from "../src/gp/kernels.js";
import { drawPrior, priorAt, scaledInputs } from "../src/gp/pathwise.js";
import { fitGp, gpOptions } from "../src/gp/solve.js";
import { calibrateNoise } from "../src/gp/noise.js";
import { createRng } from "../src/data/prng.js";

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../src/cli/main.js");

/** n points in d dimensions, y = sin(2 x_0) + cos(x_1) / 2 + noise, from a seeded host generator. */
function dataset(n: number, d: number, seed: number, noise = 0.1): { x: Float64Array; y: Float64Array } {
  const rng = createRng(seed);
  const x = Float64Array.from({ length: n * d }, () => rng.normal());
  const y = Float64Array.from({ length: n }, (_, i) => Math.sin(2 * x[i * d]) + (d > 1 ? 0.5 * Math.cos(x[i * d + 1]) : 0) + noise * rng.normal());
  return { x, y };
}

test("exact GP: two points by hand (RBF, unit lengthscale): mean, variance and log marginal likelihood", () => {
  const s2 = 0.1;
  const h: GpHypers = { kernel: "rbf", lengthscales: [1], signal: 1, noise: s2 };
  const x = [0, 1];
  const y = [1, 2];
  const gp = conditionExact(h, x, y, 2);
  const e = Math.exp(-0.5);
  const det = (1 + s2) ** 2 - e * e;
  const a1 = ((1 + s2) * 1 - e * 2) / det;
  const a2 = (-e * 1 + (1 + s2) * 2) / det;
  assert.ok(Math.abs(gp.alpha[0] - a1) < 1e-14 && Math.abs(gp.alpha[1] - a2) < 1e-14);
  const p = predictExact(gp, [0.5], 1);
  const k = Math.exp(-1 / 8);
  assert.ok(Math.abs(p.mean[0] - k * (a1 + a2)) < 1e-14, `mean ${p.mean[0]} vs ${k * (a1 + a2)}`);
  const v = 1 - (2 * k * k) / (1 + s2 + e);
  assert.ok(Math.abs(p.variance[0] - v) < 1e-14, `variance ${p.variance[0]} vs ${v}`);
  const lml = -0.5 * (y[0] * a1 + y[1] * a2) - 0.5 * Math.log(det) - Math.log(2 * Math.PI);
  assert.ok(Math.abs(gp.logMarginal - lml) < 1e-13, `log marginal ${gp.logMarginal} vs ${lml}`);
});

test("exact GP: mean, covariance and log marginal likelihood equal their float64 closed forms computed by eigendecomposition (n = 40, all kernels)", () => {
  const n = 40;
  const m = 7;
  const d = 3;
  const { x, y } = dataset(n, d, 1);
  const xs = dataset(m, d, 2).x;
  for (const kernel of KERNELS) {
    const h: GpHypers = { kernel, lengthscales: [0.8, 1.3, 2], signal: 1.5, noise: 0.05 };
    const gp = conditionExact(h, x, y, n);
    const p = predictExact(gp, xs, m, true);
    // K_y^-1 = V diag(1 / w) V^T.
    const z = scaleInputs(x, n, h.lengthscales);
    const zs = scaleInputs(xs, m, h.lengthscales);
    const ky = crossKernel(h, z, n, z, n);
    for (let i = 0; i < n; i++) ky[i * n + i] += h.noise;
    const { values, vectors } = symEig(ky, n);
    const inv = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let q = 0; q < n; q++) inv[i * n + j] += (vectors[i * n + q] * vectors[j * n + q]) / values[q];
    const kxs = crossKernel(h, zs, m, z, n); // m x n
    const kss = crossKernel(h, zs, m, zs, m);
    const w = new Float64Array(m * n); // k(xs, X) K_y^-1
    for (let a = 0; a < m; a++) for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) w[a * n + j] += kxs[a * n + i] * inv[i * n + j];
    for (let a = 0; a < m; a++) {
      let mean = 0;
      for (let j = 0; j < n; j++) mean += w[a * n + j] * y[j];
      assert.ok(Math.abs(p.mean[a] - mean) < 1e-9, `${kernel}: mean ${a}: ${p.mean[a]} vs ${mean}`);
      for (let b = 0; b < m; b++) {
        let c = kss[a * m + b];
        for (let j = 0; j < n; j++) c -= w[a * n + j] * kxs[b * n + j];
        assert.ok(Math.abs(p.covariance![a * m + b] - c) < 1e-9, `${kernel}: covariance (${a}, ${b}): ${p.covariance![a * m + b]} vs ${c}`);
      }
    }
    let quad = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) quad += y[i] * inv[i * n + j] * y[j];
    const lml = -0.5 * quad - 0.5 * values.reduce((s, v) => s + Math.log(v), 0) - 0.5 * n * Math.log(2 * Math.PI);
    assert.ok(Math.abs(gp.logMarginal - lml) < 1e-9 * Math.abs(lml), `${kernel}: log marginal ${gp.logMarginal} vs ${lml}`);
  }
});

test("log marginal likelihood gradients equal central finite differences (every kernel, every log hyperparameter)", () => {
  const n = 50;
  const d = 2;
  const { x, y } = dataset(n, d, 3);
  for (const kernel of KERNELS) {
    const h: GpHypers = { kernel, lengthscales: [0.7, 1.3], signal: 0.8, noise: 0.05 };
    const theta = toLog(h);
    const g = logMarginal(h, x, y, n).gradient!;
    for (let j = 0; j < theta.length; j++) {
      const eps = 1e-5;
      const up = Float64Array.from(theta);
      const dn = Float64Array.from(theta);
      up[j] += eps;
      dn[j] -= eps;
      const fd = (logMarginal(fromLog(kernel, up), x, y, n, false).value - logMarginal(fromLog(kernel, dn), x, y, n, false).value) / (2 * eps);
      assert.ok(Math.abs(g[j] - fd) <= 1e-6 * (1 + Math.abs(fd)), `${kernel} theta_${j}: analytic ${g[j]} vs finite difference ${fd}`);
    }
  }
});

test("the hyperparameter fit reaches a stationary point of the log marginal likelihood above its start", () => {
  const n = 80;
  const d = 2;
  const { x, y } = dataset(n, d, 4);
  const start: GpHypers = { kernel: "matern52", lengthscales: [Math.SQRT2, Math.SQRT2], signal: 1, noise: 0.1 };
  const fit = fitHypers("matern52", x, y, n, d, { maxEvaluations: 200 });
  const g = logMarginal(fit.hypers, x, y, n).gradient!;
  assert.ok(fit.logMarginalPerPoint > logMarginal(start, x, y, n, false).value / n + 0.1, `fit ${fit.logMarginalPerPoint}`);
  for (let j = 0; j < g.length; j++) assert.ok(Math.abs(g[j]) / n < 1e-4, `gradient ${j} per point ${g[j] / n}`);
  // The irrelevant input gets a far longer lengthscale than the informative one.
  assert.ok(fit.hypers.lengthscales[1] > fit.hypers.lengthscales[0]);
});

/**
 * Exact mean and latent variance at test inputs: by default a problem with moderate conditioning
 * (lambda_max(K_y) / sigma^2 near 1e3).
 */
function referenceProblem(hypers: GpHypers = { kernel: "matern52", lengthscales: [0.6, 0.8], signal: 1, noise: 0.09 }) {
  const n = 400;
  const d = 2;
  const m = 60;
  const { x, y } = dataset(n, d, 5, 0.3);
  const xs = dataset(m, d, 6).x;
  const exact = predictExact(conditionExact(hypers, x, y, n), xs, m);
  return { n, d, m, x, y, xs, hypers, exact };
}

test("noise step: with every other row as a neighbour, the held-out log-likelihood equals the exact GP's (1e-12)", () => {
  const n = 60;
  const d = 2;
  const { x, y } = dataset(n, d, 3);
  const held = Int32Array.from([3, 7, 11, 20, 33, 41, 50, 59]);
  const h: GpHypers = { kernel: "matern52", lengthscales: [0.8, 1.3], signal: 0.7, noise: 0.05 };
  const c = calibrateNoise(h, x, y, n, held, 1000);
  assert.equal(c.neighbours, n - held.length);
  const pool = [...Array(n).keys()].filter((i) => !held.includes(i));
  const gp = conditionExact(h, Float64Array.from(pool.flatMap((i) => [x[i * d], x[i * d + 1]])), Float64Array.from(pool, (i) => y[i]), pool.length);
  let ll = 0;
  for (const v of held) {
    const p = predictExact(gp, [x[v * d], x[v * d + 1]], 1);
    const s = p.variance[0] + h.noise;
    ll += -0.5 * Math.log(2 * Math.PI * s) - (y[v] - p.mean[0]) ** 2 / (2 * s);
  }
  assert.ok(Math.abs(ll / held.length - c.givenLl) < 1e-12, `exact ${ll / held.length} vs local ${c.givenLl}`);
  assert.ok(c.validationLl >= c.givenLl);
});

test("noise step: from a noise variance at the floor it recovers the true one (0.04) within 10% and returns the maximiser (n = 3,000, 300 held out)", () => {
  const n = 3000;
  const { x, y } = dataset(n, 2, 5, 0.2);
  const held = Int32Array.from({ length: 300 }, (_, i) => i * 10);
  const h: GpHypers = { kernel: "matern32", lengthscales: [1, 1.5], signal: 0.5, noise: 1e-4 };
  const c = calibrateNoise(h, x, y, n, held);
  // The estimate pools 300 squared residuals: relative sd about sqrt(2 / 300) = 8%; measured ratio 1.001.
  assert.ok(Math.abs(c.noise / 0.04 - 1) < 0.1, `noise ${c.noise}`);
  assert.ok(c.validationLl > c.givenLl + 100, `held-out LL ${c.givenLl} -> ${c.validationLl}`);
  for (const f of [0.8, 1.25]) {
    const other = calibrateNoise({ ...h, noise: c.noise * f }, x, y, n, held);
    assert.ok(other.givenLl < c.validationLl, `LL at ${f} x the choice ${other.givenLl} >= ${c.validationLl}`);
    assert.ok(Math.abs(other.noise / c.noise - 1) < 1e-6, "the choice does not depend on the starting noise");
  }
});

test("CG with the pivoted-Cholesky preconditioner gives the Cholesky mean to 1e-4 of the prior sd", async () => {
  const p = referenceProblem();
  for (const rank of [0, 50]) {
    const { posterior, report } = await fitGp(key(7), p.x, p.y, p.n, p.d, gpOptions("cg", { hypers: p.hypers, samples: 4, tolerance: 1e-5, rank }));
    const pred = await posterior.predict(p.xs, p.m);
    posterior.dispose();
    for (let i = 0; i < p.m; i++) assert.ok(Math.abs(pred.mean[i] - p.exact.mean[i]) < 1e-4, `rank ${rank}: mean ${i}: ${pred.mean[i]} vs ${p.exact.mean[i]}`);
    assert.ok(report.residuals![0] < 1e-5, `rank ${rank}: residual ${report.residuals![0]}`);
  }
});

/**
 * Pathwise samples of an iterative solver against the exact posterior: the mean within `meanTol` (the
 * targets' sd is about 0.8), and each point's sample variance within the Monte Carlo error of S = 64
 * samples: the ratio to the exact variance has sd sqrt(2 / 64) = 0.18 per point, so the mean ratio over
 * 60 points must lie within 0.85-1.15 and every ratio within 0.4-1.8.
 */
async function checkSampler(solver: "sgd" | "sdd", steps: number, meanTol: number, hypers?: GpHypers) {
  const p = referenceProblem(hypers);
  const { posterior } = await fitGp(key(8), p.x, p.y, p.n, p.d, gpOptions(solver, { hypers: p.hypers, samples: 64, steps }));
  const pred = await posterior.predict(p.xs, p.m);
  posterior.dispose();
  let ratio = 0;
  for (let i = 0; i < p.m; i++) {
    assert.ok(Math.abs(pred.mean[i] - p.exact.mean[i]) < meanTol, `${solver}: mean ${i}: ${pred.mean[i]} vs ${p.exact.mean[i]}`);
    const r = pred.variance[i] / p.exact.variance[i];
    assert.ok(r > 0.4 && r < 1.8, `${solver}: variance ${i}: ${pred.variance[i]} vs exact ${p.exact.variance[i]}`);
    ratio += r / p.m;
  }
  assert.ok(ratio > 0.85 && ratio < 1.15, `${solver}: mean variance ratio ${ratio}`);
}

test("SDD: the posterior mean (to 0.02) and the pathwise samples' variances match the exact posterior (n = 400, 64 samples, 1,500 steps)", async () => {
  await checkSampler("sdd", 1500, 0.02);
});

/*
 * SGD's gradient noise is additive (it does not vanish at the solution), so its iterates settle in a
 * ball around it instead of converging: on the problem above its mean stays 0.24 away after 3,000 and
 * after 10,000 steps (docs/gp.md). On a better conditioned problem (short lengthscales, noise 0.5) it
 * comes within 0.03; the test holds it to 0.06 there.
 */
test("SGD: the posterior mean (to 0.06) and the pathwise samples' variances match the exact posterior on a well-conditioned problem (n = 400, 64 samples, 3,000 steps)", async () => {
  await checkSampler("sgd", 3000, 0.06, { kernel: "matern52", lengthscales: [0.3, 0.4], signal: 1, noise: 0.5 });
});

test("random-feature prior samples have the kernel's covariance (every kernel; 4,000 features, 4,000 functions)", async () => {
  const d = 2;
  const pts = [0, 0, 0.3, -0.2, 1, 0.5, -0.8, 1.2];
  const m = 4;
  for (const kernel of KERNELS) {
    const h: GpHypers = { kernel, lengthscales: [0.7, 1.1], signal: 1.3, noise: 0.1 };
    const s = 4000;
    const prior = drawPrior(key(9), kernel, d, 4000, s);
    const zs = scaledInputs(h, pts, m);
    const f = await toHost(await priorAt(prior, zs, h.signal)); // [S, m]
    zs.dispose();
    prior.dispose();
    const z = scaleInputs(pts, m, h.lengthscales);
    const k = crossKernel(h, z, m, z, m);
    for (let a = 0; a < m; a++) {
      for (let b = 0; b < m; b++) {
        let c = 0;
        for (let j = 0; j < s; j++) c += f[j * m + a] * f[j * m + b];
        c /= s;
        // sd of the estimate: about s^2 sqrt(2 / 4000) = 0.03 from the weights plus 0.02 from the features.
        assert.ok(Math.abs(c - k[a * m + b]) < 0.15, `${kernel} (${a}, ${b}): ${c} vs ${k[a * m + b]}`);
      }
    }
  }
});

test("the exact solver refuses a training set whose K_y would not fit, naming the memory it needs", async () => {
  const { x, y } = dataset(100, 2, 10);
  await assert.rejects(fitGp(key(1), x, y, 100, 2, gpOptions("exact", { hypers: { kernel: "rbf", lengthscales: [1, 1], signal: 1, noise: 0.1 } }), undefined, 1000), /needs 0\.0 GiB for n = 100 .*16 n\^2 bytes.*--solver sdd/);
});

test("CLI: gp fit --out saves a posterior that bayesdl evaluate scores the same (exact and sdd); bad input is refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-gp-"));
  try {
    for (const solver of ["exact", "sdd"]) {
      const out = join(dir, solver);
      const fit = spawnSync(process.execPath, [cli, "gp", "fit", "--data", "toy:sines=300", "--solver", solver, "--steps", "300", "--samples", "8", "--hyper-evaluations", "30", "--out", out, "--json", "--quiet"], { encoding: "utf8" });
      assert.equal(fit.status, 0, fit.stderr);
      const fitted = JSON.parse(fit.stdout);
      const ev = spawnSync(process.execPath, [cli, "evaluate", "--posterior", out, "--json"], { encoding: "utf8" });
      assert.equal(ev.status, 0, ev.stderr);
      const evaluated = JSON.parse(ev.stdout);
      assert.ok(Math.abs(evaluated.metrics.rmse - fitted.metrics.rmse) < 1e-6 * fitted.metrics.rmse, `${solver}: rmse ${evaluated.metrics.rmse} vs ${fitted.metrics.rmse}`);
      assert.ok(Math.abs(evaluated.metrics.ll - fitted.metrics.ll) < 1e-5, `${solver}: ll ${evaluated.metrics.ll} vs ${fitted.metrics.ll}`);
      // toy:sines has noise sd 0.1 on targets of sd about 1: a GP on 300 points does far better than the mean.
      assert.ok(fitted.metrics.rmse < 0.5, `${solver}: rmse ${fitted.metrics.rmse}`);
    }
    const cls = spawnSync(process.execPath, [cli, "gp", "fit", "--data", "toy:two-moons", "--quiet"], { encoding: "utf8" });
    assert.notEqual(cls.status, 0);
    assert.match(cls.stderr, /GP regression needs real-valued targets, but this is a classification set/);
    const kern = spawnSync(process.execPath, [cli, "gp", "fit", "--data", "toy:sines=50", "--kernel", "cubic"], { encoding: "utf8" });
    assert.notEqual(kern.status, 0);
    assert.match(kern.stderr, /--kernel.*cubic.*rbf, matern12, matern32, matern52/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bench gp: one split of boston with exact and cg shares the hyperparameters, records metrics, time and RSS, and skips exact when it would not fit", async () => {
  const { runGpBench, gpTable } = await import("../src/bench/gp.js");
  const dataDir = resolve(here, "../../../shared/data/uci");
  const results = await runGpBench({ dataDir, datasets: ["bostonHousing"], solvers: ["exact", "cg"], splits: [0], seed: 0, options: { hyperEvaluations: 20 } });
  assert.equal(results.length, 2);
  const [ex, cg] = results;
  assert.deepEqual(ex.hypers, cg.hypers);
  // CG solves the exact system to a relative residual of 0.01: the test RMSE agrees to 1%.
  assert.ok(Math.abs(ex.metrics!.rmse - cg.metrics!.rmse) < 0.01 * ex.metrics!.rmse, `${ex.metrics!.rmse} vs ${cg.metrics!.rmse}`);
  assert.ok(ex.metrics!.rmse < 4.5 && ex.metrics!.ll > -3, JSON.stringify(ex.metrics));
  assert.ok(ex.peakRssMiB > 0 && cg.solverSeconds! >= 0);
  assert.match(gpTable(results), /\| boston \| 455 \| exact \| 1 \|/);
  const skipped = await runGpBench({ dataDir, datasets: ["bostonHousing"], solvers: ["exact"], splits: [0], seed: 0, options: { hyperEvaluations: 5 }, memoryBytes: 1e6 });
  assert.match(skipped[0].skipped ?? "", /needs 0\.0 GiB \(16 n\^2 bytes\)/);
});
