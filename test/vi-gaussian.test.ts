/**
 * Gaussian variational families (src/vi/gaussian.ts), flat views of pytrees (src/core/ravel.ts) and
 * ADVI (src/vi/advi.ts) against exact answers, with fixed keys.
 *
 * Exact answers are computed on the host in float64 (src/bench/hostlinalg.ts) from the same
 * variational parameters. Tolerances, each stated where it is used:
 * - closed forms (logProb, moments, entropy, KL) against host float64: float32 round-off, 1e-4
 *   relative to the magnitude compared (values of order 1-10 in d = 4).
 * - Monte Carlo checks (entropy and KL by sampling, sample moments, ELBO estimator): within 4
 *   standard errors of the Monte Carlo mean computed from the same draws (two-sided, false-failure
 *   probability ~6e-5 per check; the draws are fixed by keys, so the tests are deterministic).
 * - ADVI optima: after a large-step phase and a small-step phase, mean within 0.1 target sd and
 *   every covariance entry within 10% of the largest target variance (the stationary jitter of Adam
 *   at step 2e-3 with 8 draws per step is a few times smaller than that).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile, fromHost, grad, jit, key, np, scalar, split, toHost, tree, vmap, type JArray, type Key } from "../src/core/engine.js";
import { keep, type Tree } from "../src/core/tree.js";
import { cholesky, gaussianKl, logDetFromChol, spdInverse } from "../src/bench/hostlinalg.js";
import { gaussianLogDensity, gaussianTarget } from "../src/bench/vi-targets.js";
import { createRng } from "../src/data/prng.js";
import { ravel, unraveler, flatLogDensity } from "../src/core/ravel.js";
import { diagonal, fullRank, fullRankPrecision, lowRank, type DiagQ, type FullRankQ, type LowRankQ } from "../src/vi/gaussian.js";
import { create as advi, elboEstimate, type AdviState, type EntropyMode } from "../src/vi/advi.js";
import type { Family, FlatLogDensity } from "../src/vi/family.js";
import type { Batch, Params } from "../src/models/model.js";
import { blrPosterior, gaussianErrors, meanFieldOptimum, meanSe } from "./exact.js";

const VERBOSE = !!process.env.BAYESDL_TEST_VERBOSE;
const log = (...a: unknown[]) => VERBOSE && console.log(...a);
const LOG_2PI = Math.log(2 * Math.PI);
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

// ---------------------------------------------------------------- host helpers (float64, row-major)

/** log N(x; m, S). */
function hostLogPdf(x: number[], m: Float64Array, s: Float64Array, d: number): number {
  const l = cholesky(s, d);
  const z = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let t = x[i] - m[i];
    for (let k = 0; k < i; k++) t -= l[i * d + k] * z[k];
    z[i] = t / l[i * d + i];
  }
  const quad = z.reduce((a, v) => a + v * v, 0);
  return -0.5 * quad - 0.5 * logDetFromChol(l, d) - 0.5 * d * LOG_2PI;
}

const hostEntropy = (s: Float64Array, d: number) => 0.5 * d * (1 + LOG_2PI) + 0.5 * logDetFromChol(cholesky(s, d), d);

// ---------------------------------------------------------------- families with fixed parameters

const D = 4;
const RANK = 2;

interface Case {
  name: string;
  family: Family<any>;
  /** Variational parameters as host arrays, and their covariance computed independently on the host. */
  make(seed: number): { q: () => Tree; mean: Float64Array; cov: Float64Array };
}

function hostNormals(seed: number, n: number, scale = 1): number[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => scale * rng.normal());
}

const CASES: Case[] = [
  {
    name: "fullRank",
    family: fullRank(D),
    make(seed) {
      const mean = Float64Array.from(hostNormals(seed, D));
      const raw = hostNormals(seed + 100, D * D, 0.6);
      const l = new Float64Array(D * D);
      for (let i = 0; i < D; i++) for (let j = 0; j <= i; j++) l[i * D + j] = i === j ? softplus(raw[i * D + j]) : raw[i * D + j];
      const cov = new Float64Array(D * D);
      for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) for (let k = 0; k < D; k++) cov[i * D + j] += l[i * D + k] * l[j * D + k];
      return { q: (): FullRankQ => ({ mean: fromHost(mean, [D]), chol: fromHost(raw, [D, D]) }), mean, cov };
    },
  },
  {
    name: "lowRank",
    family: lowRank(D, RANK),
    make(seed) {
      const mean = Float64Array.from(hostNormals(seed, D));
      const rho = hostNormals(seed + 100, D, 0.5);
      const b = hostNormals(seed + 200, D * RANK, 0.7);
      const cov = new Float64Array(D * D);
      for (let i = 0; i < D; i++) {
        cov[i * D + i] += softplus(rho[i]) ** 2;
        for (let j = 0; j < D; j++) for (let k = 0; k < RANK; k++) cov[i * D + j] += b[i * RANK + k] * b[j * RANK + k];
      }
      return { q: (): LowRankQ => ({ mean: fromHost(mean, [D]), rho: fromHost(rho, [D]), factor: fromHost(b, [D, RANK]) }), mean, cov };
    },
  },
  {
    name: "diagonal",
    family: diagonal(D),
    make(seed) {
      const mean = Float64Array.from(hostNormals(seed, D));
      const rho = hostNormals(seed + 100, D, 0.5);
      const cov = new Float64Array(D * D);
      for (let i = 0; i < D; i++) cov[i * D + i] = softplus(rho[i]) ** 2;
      return { q: (): DiagQ => ({ mean: fromHost(mean, [D]), rho: fromHost(rho, [D]) }), mean, cov };
    },
  },
];

const MC = 20000;

for (const c of CASES) {
  test(`${c.name}: logProb, moments, entropy and KL in closed form match the host Gaussian`, async () => {
    const fam = c.family;
    const a = c.make(1);
    const b = c.make(2);
    // logProb at 5 points against log N(x; m, S) (tolerance 1e-4 x (1 + |value|): float32 round-off).
    const pts = Array.from({ length: 5 }, (_, i) => hostNormals(50 + i, D, 1.5));
    const lp = await toHost(fam.logProb(a.q(), fromHost(pts.flat(), [5, D])));
    pts.forEach((x, i) => {
      const exact = hostLogPdf(x, a.mean, a.cov, D);
      log(`${c.name} logProb[${i}] ${lp[i].toFixed(5)} exact ${exact.toFixed(5)}`);
      assert.ok(Math.abs(lp[i] - exact) < 1e-4 * (1 + Math.abs(exact)), `${c.name} logProb[${i}] ${lp[i]} vs ${exact}`);
    });
    // moments (1e-5 x largest variance).
    const [m, s] = fam.moments!(a.q());
    const mh = await toHost(m);
    const sh = await toHost(s);
    const big = Math.max(...Array.from({ length: D }, (_, i) => a.cov[i * D + i]));
    for (let i = 0; i < D; i++) assert.ok(Math.abs(mh[i] - a.mean[i]) < 1e-6, `${c.name} mean[${i}]`);
    for (let i = 0; i < D * D; i++) assert.ok(Math.abs(sh[i] - a.cov[i]) < 1e-5 * big, `${c.name} cov[${i}] ${sh[i]} vs ${a.cov[i]}`);
    // entropy and KL closed forms against host float64.
    const h = await scalar(fam.entropy!(a.q()));
    const hExact = hostEntropy(a.cov, D);
    const kl = await scalar(fam.kl!(a.q(), b.q()));
    const klExact = gaussianKl(a.mean, a.cov, b.mean, b.cov, D);
    log(`${c.name} entropy ${h} exact ${hExact}; KL ${kl} exact ${klExact}`);
    assert.ok(Math.abs(h - hExact) < 1e-4 * (1 + Math.abs(hExact)), `${c.name} entropy ${h} vs ${hExact}`);
    assert.ok(Math.abs(kl - klExact) < 1e-4 * (1 + Math.abs(klExact)), `${c.name} KL ${kl} vs ${klExact}`);
    assert.ok(klExact > 0.5, "the two q's differ (KL check is not vacuous)");
  });

  test(`${c.name}: entropy, KL and moments against Monte Carlo (${MC} draws, 4 standard errors)`, async () => {
    const fam = c.family;
    const a = c.make(1);
    const b = c.make(2);
    // Draws with their log density in one pass must agree with logProb of the same draws.
    const [theta, lq] = fam.sampleAndLogProb(key(11), a.q(), MC);
    const lqAgain = await toHost(fam.logProb(a.q(), theta.ref));
    const lqa = await toHost(lq);
    let worst = 0;
    for (let i = 0; i < MC; i++) worst = Math.max(worst, Math.abs(lqa[i] - lqAgain[i]) / (1 + Math.abs(lqa[i])));
    assert.ok(worst < 1e-4, `${c.name} sampleAndLogProb vs logProb: relative gap ${worst}`);
    // Entropy: -E log q.
    const h = meanSe(lqa.map((v) => -v));
    const hExact = hostEntropy(a.cov, D);
    // KL(a || b) = E_a[log a - log b].
    const lpb = await toHost(fam.logProb(b.q(), theta.ref));
    const kl = meanSe(lqa.map((v, i) => v - lpb[i]));
    const klExact = gaussianKl(a.mean, a.cov, b.mean, b.cov, D);
    log(`${c.name} MC entropy ${h.mean.toFixed(4)} +- ${h.se.toFixed(4)} exact ${hExact.toFixed(4)}; MC KL ${kl.mean.toFixed(4)} +- ${kl.se.toFixed(4)} exact ${klExact.toFixed(4)}`);
    assert.ok(Math.abs(h.mean - hExact) < 4 * h.se, `${c.name} MC entropy ${h.mean} +- ${h.se} vs ${hExact}`);
    assert.ok(Math.abs(kl.mean - klExact) < 4 * kl.se, `${c.name} MC KL ${kl.mean} +- ${kl.se} vs ${klExact}`);
    // Sample moments of `sample` (a separate key) against the closed-form moments.
    const xs = await toHost(fam.sample(key(12), a.q(), MC));
    theta.dispose();
    const m = new Float64Array(D);
    for (let i = 0; i < MC; i++) for (let j = 0; j < D; j++) m[j] += xs[i * D + j] / MC;
    for (let j = 0; j < D; j++) {
      const se = Math.sqrt(a.cov[j * D + j] / MC);
      assert.ok(Math.abs(m[j] - a.mean[j]) < 4 * se, `${c.name} sample mean[${j}] ${m[j]} vs ${a.mean[j]} (se ${se})`);
    }
    let worstZ = 0;
    for (let j = 0; j < D; j++) {
      for (let k = 0; k < D; k++) {
        let s = 0;
        for (let i = 0; i < MC; i++) s += (xs[i * D + j] - m[j]) * (xs[i * D + k] - m[k]);
        s /= MC - 1;
        // Var of a Gaussian sample covariance: (S_jj S_kk + S_jk^2) / n.
        const se = Math.sqrt((a.cov[j * D + j] * a.cov[k * D + k] + a.cov[j * D + k] ** 2) / MC);
        worstZ = Math.max(worstZ, Math.abs(s - a.cov[j * D + k]) / se);
        assert.ok(Math.abs(s - a.cov[j * D + k]) < 4 * se, `${c.name} sample cov[${j},${k}] ${s} vs ${a.cov[j * D + k]} (se ${se})`);
      }
    }
    log(`${c.name} sample covariance worst |z| ${worstZ.toFixed(2)}`);
  });
}

test("families are traceable: jit and vmap of logProb match eager evaluation", async () => {
  for (const c of CASES) {
    const a = c.make(1);
    const b = c.make(2);
    const x = fromHost(hostNormals(7, 3 * D), [3, D]);
    const eager = await toHost(c.family.logProb(a.q(), x.ref));
    const jitted = jit((q: Tree, t: JArray) => c.family.logProb(q, t));
    const viaJit = await toHost(jitted(a.q(), x.ref));
    jitted.dispose();
    // vmap over a stack of two q's (the two cases) and their own points.
    const stacked = tree.map(((u: JArray, v: JArray) => np.stack([u, v])) as never, a.q() as never, b.q() as never) as Tree;
    const viaVmap = await toHost(vmap((q: Tree, t: JArray) => c.family.logProb(q, t))(stacked, np.stack([x.ref, x.ref])));
    const eagerB = await toHost(c.family.logProb(b.q(), x));
    for (let i = 0; i < 3; i++) {
      assert.ok(Math.abs(viaJit[i] - eager[i]) < 1e-4 * (1 + Math.abs(eager[i])), `${c.name} jit logProb[${i}]`);
      assert.ok(Math.abs(viaVmap[i] - eager[i]) < 1e-4 * (1 + Math.abs(eager[i])), `${c.name} vmap logProb[0, ${i}]`);
      assert.ok(Math.abs(viaVmap[3 + i] - eagerB[i]) < 1e-4 * (1 + Math.abs(eagerB[i])), `${c.name} vmap logProb[1, ${i}]`);
    }
  }
});

test("full-rank series inverse: logProb and KL match float64 and the routine solve at d = 50; jit(grad) of logProb runs", async () => {
  const d = 50;
  // L with diagonal spread 0.1..3 (condition of L L^T ~ 900) and unit-scale off-diagonal entries / sqrt(d).
  const raw = hostNormals(21, d * d, 1 / Math.sqrt(d));
  const diagS = Array.from({ length: d }, (_, i) => 0.1 * Math.pow(30, i / (d - 1)));
  for (let i = 0; i < d; i++) raw[i * d + i] = Math.log(Math.expm1(diagS[i])); // inverse softplus
  const mean = hostNormals(22, d);
  const theta = hostNormals(23, 4 * d, 2);
  const q = () => ({ mean: fromHost(mean, [d]), chol: fromHost(raw, [d, d]) });
  // Host float64: Sigma = L L^T from the same (float32-rounded) parameters.
  const l32 = Float32Array.from(raw), m32 = Float32Array.from(mean);
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) L[i * d + j] = i === j ? softplus(l32[i * d + i]) : l32[i * d + j];
  const S = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) { let t = 0; for (let k = 0; k < d; k++) t += L[i * d + k] * L[j * d + k]; S[i * d + j] = t; }
  const want = Array.from({ length: 4 }, (_, r) => hostLogPdf(Array.from(Float32Array.from(theta.slice(r * d, (r + 1) * d))), Float64Array.from(m32), S, d));
  const series = fullRank(d, { solve: "series" }), routine = fullRank(d, { solve: "routine" });
  const gotS = await toHost(series.logProb(q(), fromHost(theta, [4, d])));
  const gotR = await toHost(routine.logProb(q(), fromHost(theta, [4, d])));
  // The quadratic forms reach ~1e4 here; float32 round-off: 1e-4 relative.
  for (let r = 0; r < 4; r++) {
    const tol = 1e-4 * Math.abs(want[r]);
    assert.ok(Math.abs(gotS[r] - want[r]) < tol, `series logProb[${r}] ${gotS[r]} vs ${want[r]}`);
    assert.ok(Math.abs(gotR[r] - want[r]) < tol, `routine logProb[${r}] ${gotR[r]} vs ${want[r]}`);
  }
  // KL between this q and N(0, I): closed form on the host.
  const hostKl = 0.5 * (S.reduce((a, v, i) => a + (i % (d + 1) === 0 ? v : 0), 0) + m32.reduce((a, v) => a + v * v, 0) - d - logDetFromChol(cholesky(S, d), d));
  const std = () => ({ mean: np.zeros([d]), chol: np.eye(d).mul(Math.log(Math.expm1(1))) });
  const klS = await scalar(series.kl(q(), std()));
  const klR = await scalar(routine.kl(q(), std()));
  assert.ok(Math.abs(klS - hostKl) < 1e-4 * Math.abs(hostKl), `series KL ${klS} vs ${hostKl}`);
  assert.ok(Math.abs(klR - hostKl) < 1e-4 * Math.abs(hostKl), `routine KL ${klR} vs ${hostKl}`);
  // jit(grad) through logProb (what the score-based flat methods need): equal to the eager gradient.
  const f = (qq: FullRankQ, t: JArray) => series.logProb(qq, t).sum();
  const gJit = jit(grad(f as never) as never) as unknown as (qq: FullRankQ, t: JArray) => FullRankQ;
  const a = gJit(q(), fromHost(theta, [4, d]));
  const b = (grad(f as never) as unknown as (qq: FullRankQ, t: JArray) => FullRankQ)(q(), fromHost(theta, [4, d]));
  const am = await toHost(a.mean), bm = await toHost(b.mean), ac = await toHost(a.chol), bc = await toHost(b.chol);
  const scale = Math.max(...Array.from(bc, Math.abs));
  for (let i = 0; i < d; i++) assert.ok(Math.abs(am[i] - bm[i]) < 1e-3 * (1 + Math.abs(bm[i])), `jit(grad) mean[${i}]`);
  for (let i = 0; i < d * d; i++) assert.ok(Math.abs(ac[i] - bc[i]) < 1e-4 * scale, `jit(grad) chol[${i}]`);
  (gJit as unknown as { dispose(): void }).dispose?.();
});

test("full-rank precision form: logProb, entropy, KL, moments and samples match float64 (d = 8)", async () => {
  const d = 8;
  const raw = hostNormals(31, d * d, 0.4);
  for (let i = 0; i < d; i++) raw[i * d + i] = 0.3 * (i - 4); // U_ii = exp(raw_ii), 0.3 .. 1.8
  const mean = hostNormals(32, d);
  const r32 = Float32Array.from(raw);
  // Host float64: U, Lambda = U U^T, Sigma = Lambda^-1.
  const U = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) U[i * d + j] = i === j ? Math.exp(r32[i * d + i]) : r32[i * d + j];
  const lam = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) { let t = 0; for (let k = 0; k < d; k++) t += U[i * d + k] * U[j * d + k]; lam[i * d + j] = t; }
  const S = spdInverse(lam, d);
  const m32 = Float64Array.from(Float32Array.from(mean));
  const fam = fullRankPrecision(d);
  const q = () => ({ mean: fromHost(mean, [d]), prec: fromHost(raw, [d, d]) });
  const theta = hostNormals(33, 3 * d, 1.5);
  const got = await toHost(fam.logProb(q(), fromHost(theta, [3, d])));
  for (let r = 0; r < 3; r++) {
    const want = hostLogPdf(Array.from(Float32Array.from(theta.slice(r * d, (r + 1) * d))), m32, S, d);
    assert.ok(Math.abs(got[r] - want) < 1e-4 * (1 + Math.abs(want)), `logProb[${r}] ${got[r]} vs ${want}`);
  }
  const ent = await scalar(fam.entropy(q()));
  assert.ok(Math.abs(ent - hostEntropy(S, d)) < 1e-4 * (1 + Math.abs(ent)), `entropy ${ent} vs ${hostEntropy(S, d)}`);
  // KL(q || N(0, I)) and KL(N(0, I) || q) against the host closed form (q and the standard normal in precision form).
  const std = () => ({ mean: np.zeros([d]), prec: np.zeros([d, d]) });
  const eye = Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0));
  const kl1 = await scalar(fam.kl(q(), std()));
  const kl2 = await scalar(fam.kl(std(), q()));
  const want1 = gaussianKl(m32, S, new Float64Array(d), eye, d), want2 = gaussianKl(new Float64Array(d), eye, m32, S, d);
  assert.ok(Math.abs(kl1 - want1) < 1e-4 * (1 + want1), `KL(q || N(0, I)) ${kl1} vs ${want1}`);
  assert.ok(Math.abs(kl2 - want2) < 1e-4 * (1 + want2), `KL(N(0, I) || q) ${kl2} vs ${want2}`);
  const [mm, cc] = fam.moments(q());
  const mh = await toHost(mm), ch = await toHost(cc);
  const big = Math.max(...Array.from(S, Math.abs));
  for (let i = 0; i < d * d; i++) assert.ok(Math.abs(ch[i] - S[i]) < 1e-4 * big, `moments cov[${i}]`);
  for (let i = 0; i < d; i++) assert.ok(Math.abs(mh[i] - m32[i]) < 1e-6, `moments mean[${i}]`);
  // Sample covariance of 20000 draws: each entry within 4 standard errors (se of a sample covariance
  // entry ~ sqrt((S_ii S_jj + S_ij^2) / n)).
  const n = 20000;
  const xs = await toHost(fam.sample(key(34), q(), n));
  for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) {
    let c = 0;
    for (let r = 0; r < n; r++) c += (xs[r * d + i] - m32[i]) * (xs[r * d + j] - m32[j]);
    c /= n;
    const se = Math.sqrt((S[i * d + i] * S[j * d + j] + S[i * d + j] ** 2) / n);
    assert.ok(Math.abs(c - S[i * d + j]) < 4 * se, `sample cov[${i},${j}] ${c} vs ${S[i * d + j]} (se ${se})`);
  }
});

// ---------------------------------------------------------------- ravel / unravel

test("ravel/unravel: deterministic leaf order, exact round trip, traceable unravel", async () => {
  const mk = () => ({
    net: { w: fromHost([1, 2, 3, 4, 5, 6], [2, 3]), b: fromHost([7, 8, 9], [3]) },
    lik: { logSigma: np.array(10) },
  });
  const { vec, unravel } = ravel(mk());
  assert.equal(unravel.size, 10);
  assert.deepEqual(unravel.leaves.map((l) => l.path), ["lik.logSigma", "net.b", "net.w"]);
  const v = await toHost(vec.ref);
  assert.deepEqual(Array.from(v), [10, 7, 8, 9, 1, 2, 3, 4, 5, 6]);
  const back = unravel(vec) as ReturnType<typeof mk>;
  assert.deepEqual(back.net.w.shape, [2, 3]);
  assert.deepEqual(back.lik.logSigma.shape, []);
  assert.deepEqual(Array.from(await toHost(back.net.w)), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(await toHost(back.net.b)), [7, 8, 9]);
  assert.equal(await scalar(back.lik.logSigma), 10);
  // Under jit and grad: d/dtheta of sum(w * w) + b_0 through unravel.
  const f = (theta: JArray) => {
    const p = unravel(theta) as ReturnType<typeof mk>;
    tree.dispose(p.lik);
    // (b * [1, 0, 0]).sum() rather than b.slice(0): jit(grad) of a slice whose cotangent is a broadcast
    // scalar returns ones everywhere in jax-js 0.1.25 (see src/core/ravel.ts).
    return p.net.w.ref.mul(p.net.w).sum().add(p.net.b.mul(np.array([1, 0, 0])).sum());
  };
  const t = fromHost([0, 1, 1, 1, 1, 2, 3, 4, 5, 6], [10]);
  const g = await toHost(jit((x: JArray) => grad(f)(x))(t));
  assert.deepEqual(Array.from(g), [0, 1, 0, 0, 2, 4, 6, 8, 10, 12]);
  // The order does not depend on key insertion order.
  const u2 = unraveler({ lik: { logSigma: np.array(0) }, net: { b: np.zeros([3]), w: np.zeros([2, 3]) } });
  assert.deepEqual(u2.leaves.map((l) => l.path), ["lik.logSigma", "net.b", "net.w"]);
  assert.throws(() => unravel(np.zeros([9])), /shape \[10\]/);
});

// ---------------------------------------------------------------- Bayesian linear regression

/** y = X w + e, e ~ N(0, SIG^2), w ~ N(0, PRIOR^2 I); X [N, P], flat row-major in `x` and as rows in `rows`. */
const N = 30, P = 3, SIG = 0.5, PRIOR = 1;
const BLR = (() => {
  const rng = createRng(3);
  const x: number[] = [];
  const rows: number[][] = [];
  const y: number[] = [];
  const wTrue = [0.8, -1.1, 0.4];
  for (let i = 0; i < N; i++) {
    const row = Array.from({ length: P }, () => rng.normal());
    x.push(...row);
    rows.push(row);
    y.push(row.reduce((s, v, j) => s + v * wTrue[j], 0) + SIG * rng.normal());
  }
  return { x, rows, y };
})();

/** Normalised log p(y, w) = sum_i log N(y_i; x_i w, SIG^2) + log N(w; 0, PRIOR^2 I). */
const blrDensity: FlatLogDensity<Batch> = (w, batch) => {
  const n = batch.y.shape[0];
  const f = np.matmul(batch.x, w.ref.reshape([P, 1])).reshape([n]);
  const r = batch.y.sub(f);
  const ll = r.ref.mul(r).sum().mul(-0.5 / SIG ** 2).sub(0.5 * n * Math.log(2 * Math.PI * SIG ** 2));
  const lp = w.ref.mul(w).sum().mul(-0.5 / PRIOR ** 2).sub(0.5 * P * Math.log(2 * Math.PI * PRIOR ** 2));
  return ll.add(lp);
};
const blrBatch = (): Batch => ({ x: fromHost(BLR.x, [N, P]), y: fromHost(BLR.y, [N]) });

/** Closed-form ELBO of q = N(m, S) for the regression: E_q log lik + E_q log prior + H[q]. */
function blrElbo(m: Float32Array, s: Float32Array): number {
  let ell = -0.5 * N * Math.log(2 * Math.PI * SIG ** 2);
  for (let i = 0; i < N; i++) {
    let f = 0;
    for (let j = 0; j < P; j++) f += BLR.x[i * P + j] * m[j];
    let xsx = 0;
    for (let j = 0; j < P; j++) for (let k = 0; k < P; k++) xsx += BLR.x[i * P + j] * s[j * P + k] * BLR.x[i * P + k];
    ell -= ((BLR.y[i] - f) ** 2 + xsx) / (2 * SIG ** 2);
  }
  let mm = 0, tr = 0;
  for (let j = 0; j < P; j++) {
    mm += m[j] ** 2;
    tr += s[j * P + j];
  }
  const elp = -0.5 * P * Math.log(2 * Math.PI * PRIOR ** 2) - (mm + tr) / (2 * PRIOR ** 2);
  return ell + elp + hostEntropy(Float64Array.from(s), P);
}

test("elboEstimate is unbiased for the closed-form ELBO of Bayesian linear regression (all families, both entropy estimators)", async () => {
  const fams: [string, Family<any>][] = [["fullRank", fullRank(P)], ["lowRank", lowRank(P, 1)], ["diagonal", diagonal(P)]];
  const R = 200, S = 2;
  for (const [name, fam] of fams) {
    // A q away from the posterior: mean 0.3 from it, scale 0.3 (the posterior sd is ~0.1).
    const post = blrPosterior(BLR.rows, BLR.y, SIG, PRIOR);
    const q0 = fam.init(key(5), fromHost(Array.from(post.mean, (v, i) => v + (i % 2 ? 0.3 : -0.3)), [P]), 0.3);
    const [mq, sq] = fam.moments!(keep(q0));
    const exact = blrElbo(await toHost(mq), await toHost(sq));
    for (const mode of ["closed", "sampled"] as EntropyMode[]) {
      const est = compile((k: Key, q: Tree, b: Batch) => elboEstimate(k, blrDensity, fam, q, b, S, mode));
      const batch = blrBatch();
      const vals: number[] = [];
      let k = key(100);
      for (let r = 0; r < R; r++) {
        const [k1, k2] = split(k, 2);
        k = k2;
        vals.push(await scalar(est(k1, q0, batch)));
      }
      k.dispose();
      est.dispose();
      tree.dispose(batch);
      const { mean, se } = meanSe(vals);
      log(`${name}/${mode} ELBO MC ${mean.toFixed(3)} +- ${se.toFixed(3)} exact ${exact.toFixed(3)} (z ${((mean - exact) / se).toFixed(2)})`);
      assert.ok(Math.abs(mean - exact) < 4 * se, `${name}/${mode}: ELBO estimate ${mean} +- ${se} vs exact ${exact}`);
      assert.ok(se < 0.05 * Math.abs(exact), `${name}/${mode}: standard error ${se} too large to test anything`);
    }
    tree.dispose(q0);
  }
});

// ---------------------------------------------------------------- ADVI runs

/** Run ADVI: `phases` of [learning rate, steps]; `u` steps per jitted call; returns the final state. */
async function runAdvi<Q extends Tree, B extends Tree>(
  target: FlatLogDensity<B>,
  family: Family<Q>,
  init: { key: Key; mean: JArray; scale: number },
  batch: B,
  phases: [number, number][],
  samples: number,
  seed: number,
  u = 20,
): Promise<AdviState<Q>> {
  let state: AdviState<Q> | undefined;
  let k = key(seed);
  for (const [lr, steps] of phases) {
    const a = advi(target, { family, samples, learningRate: lr, initScale: init.scale });
    if (!state) {
      const [k0, k1] = split(k, 2);
      k0.dispose();
      k = k1;
      state = a.init(init.key, init.mean);
    }
    const many = compile(
      (kk: Key, s: AdviState<Q>, b: B) => {
        const keys = split(kk, u);
        let loss: JArray | undefined;
        for (let i = 0; i < u; i++) {
          const [s2, info] = a.step(keys[i], s, keep(b));
          s = s2;
          info.elbo.dispose();
          loss = loss === undefined ? info.loss : loss.add(info.loss);
        }
        tree.dispose(b);
        return [s, loss!.mul(1 / u)] as [AdviState<Q>, JArray];
      },
      { consume: [0, 1] },
    );
    for (let t = 0; t < steps; t += u) {
      const [ks, kn] = split(k, 2);
      k = kn;
      const t0 = Date.now();
      const [s, loss]: [AdviState<Q>, JArray] = many(ks, state!, batch);
      state = s;
      if (process.env.PROFILE) console.log("call", t, Date.now() - t0);
      const l = await scalar(loss);
      assert.ok(Number.isFinite(l), `ADVI loss is not finite at step ${t}`);
    }
    many.dispose();
  }
  k.dispose();
  return state!;
}

/** Compare q's moments with an exact mean/covariance: returns worst |dm|/sd and worst |dS|/max var. */
async function momentErrors(family: Family<any>, q: Tree, mean: Float64Array, cov: Float64Array) {
  const [m, s] = family.moments!(keep(q));
  const mh = await toHost(m);
  const sh = await toHost(s);
  const { meanErr, covErr } = gaussianErrors(mh, sh, mean, cov);
  return { mErr: meanErr, cErr: covErr };
}

test("full-rank ADVI recovers a correlated Gaussian target (d = 5, condition number 30)", async () => {
  const t = gaussianTarget("d5", 5, 30, 1, 17);
  const { logDensity, dispose } = gaussianLogDensity(t);
  const fam = fullRank(5);
  const state = await runAdvi(logDensity, fam, { key: key(1), mean: np.zeros([5]), scale: 1 }, {} as Tree, [[0.05, 600], [0.005, 400]], 8, 21);
  const { mErr, cErr } = await momentErrors(fam, state.q, t.mean, t.cov);
  log(`fullRank Gaussian: mean err ${mErr.toFixed(4)} sd, cov err ${cErr.toFixed(4)} of max var`);
  assert.ok(mErr < 0.1, `mean error ${mErr} sd (tolerance 0.1)`);
  assert.ok(cErr < 0.1, `covariance error ${cErr} of the largest variance (tolerance 0.1)`);
  tree.dispose(state);
  dispose();
});

test("diagonal ADVI reaches the mean-field optimum: mean = target mean, precision = diag of the target precision", async () => {
  const t = gaussianTarget("d5", 5, 30, 1, 17);
  const { logDensity, dispose } = gaussianLogDensity(t);
  const fam = diagonal(5);
  const state = await runAdvi(logDensity, fam, { key: key(1), mean: np.zeros([5]), scale: 1 }, {} as Tree, [[0.05, 600], [0.005, 400]], 8, 22);
  // KL(q || p)-optimal mean field: sigma_i^2 = 1 / Lambda_ii (Bishop 2006, sec. 10.1.2).
  const opt = meanFieldOptimum(t.mean, t.prec);
  const { mErr, cErr } = await momentErrors(fam, state.q, opt.mean, opt.cov);
  log(`diagonal Gaussian: mean err ${mErr.toFixed(4)} sd, var err ${cErr.toFixed(4)} of max var`);
  assert.ok(mErr < 0.1, `mean error ${mErr} (in optimal q sd; tolerance 0.1)`);
  assert.ok(cErr < 0.1, `variance error ${cErr} of the largest optimal variance (tolerance 0.1)`);
  tree.dispose(state);
  dispose();
});

test("low-rank ADVI recovers a target whose covariance is diagonal + rank 2 (d = 6)", async () => {
  const d = 6, r = 2;
  const rng = createRng(31);
  const bt = Array.from({ length: d * r }, () => rng.normal());
  const dg = Array.from({ length: d }, () => 0.2 + 0.3 * rng.next());
  const cov = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    cov[i * d + i] += dg[i];
    for (let j = 0; j < d; j++) for (let k = 0; k < r; k++) cov[i * d + j] += bt[i * r + k] * bt[j * r + k];
  }
  const mean = Float64Array.from({ length: d }, () => rng.normal());
  const prec = fromHost(Float32Array.from(spdInverse(cov, d)), [d, d]);
  const mu = fromHost(Float32Array.from(mean), [d]);
  const target: FlatLogDensity = (theta) => {
    const diff = theta.sub(mu.ref);
    return diff.ref.mul(np.matmul(prec.ref, diff.reshape([d, 1])).reshape([d])).sum().mul(-0.5);
  };
  const fam = lowRank(d, r);
  const state = await runAdvi(target, fam, { key: key(2), mean: np.zeros([d]), scale: 1 }, {} as Tree, [[0.05, 800], [0.005, 400]], 8, 23);
  const { mErr, cErr } = await momentErrors(fam, state.q, mean, cov);
  log(`lowRank Gaussian: mean err ${mErr.toFixed(4)} sd, cov err ${cErr.toFixed(4)} of max var`);
  assert.ok(mErr < 0.1, `mean error ${mErr} sd (tolerance 0.1)`);
  assert.ok(cErr < 0.1, `covariance error ${cErr} of the largest variance (tolerance 0.1)`);
  tree.dispose(state);
  prec.dispose();
  mu.dispose();
});

test("full-rank ADVI through flatLogDensity recovers the Bayesian linear regression posterior (pytree params {w, b})", async () => {
  // Pytree model f = x w + b; flat order (sorted keys): [b, w0, w1, w2]. Exact posterior: regression
  // on the design [1, x].
  const pytreeDensity = (params: Params, batch: Batch): JArray => {
    const { w, b } = params.net as { w: JArray; b: JArray };
    const n = batch.y.shape[0];
    const f = np.matmul(batch.x, w.ref.reshape([P, 1])).reshape([n]).add(b.ref);
    const r = batch.y.sub(f);
    const ll = r.ref.mul(r).sum().mul(-0.5 / SIG ** 2);
    const lp = w.ref.mul(w).sum().add(b.ref.mul(b).sum()).mul(-0.5 / PRIOR ** 2);
    return ll.add(lp);
  };
  const template: Params = { net: { w: np.zeros([P]), b: np.zeros([1]) } };
  const flat = flatLogDensity(pytreeDensity, template);
  tree.dispose(template);
  assert.deepEqual(flat.unravel.leaves.map((l) => l.path), ["net.b", "net.w"]);
  const design = BLR.rows.map((row) => [1, ...row]);
  const yShift = BLR.y.map((v) => v + 0.7); // an intercept of 0.7
  const post = blrPosterior(design, yShift, SIG, PRIOR);
  const fam = fullRank(P + 1);
  const batch: Batch = { x: fromHost(BLR.x, [N, P]), y: fromHost(yShift, [N]) };
  const state = await runAdvi(flat, fam, { key: key(3), mean: np.zeros([P + 1]), scale: 0.3 }, batch, [[0.02, 600], [0.002, 400]], 8, 24);
  tree.dispose(batch);
  const { mErr, cErr } = await momentErrors(fam, state.q, post.mean, post.cov);
  log(`fullRank BLR: mean err ${mErr.toFixed(4)} sd, cov err ${cErr.toFixed(4)} of max var`);
  assert.ok(mErr < 0.1, `mean error ${mErr} sd (tolerance 0.1)`);
  assert.ok(cErr < 0.1, `covariance error ${cErr} of the largest variance (tolerance 0.1)`);
  tree.dispose(state);
});
