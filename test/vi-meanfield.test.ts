/**
 * Network-scale mean-field VI (src/vi/meanfield.ts, bbb.ts, alpha.ts) against exact answers, fixed keys.
 *
 * Tolerances are Monte Carlo errors stated per test: a mean of S draws is compared with its exact
 * value within 4 standard errors (estimated from the same draws), a variance within 4 standard errors
 * of the sample variance (sd of a sample variance of Gaussian draws is ~ sigma^2 sqrt(2 / S)).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile, fromHost, key, keep, np, split, toHost, tree, type JArray, type Key } from "../src/core/engine.js";
import { gaussian } from "../src/models/likelihood.js";
import { makeModel, type Batch, type Params } from "../src/models/model.js";
import { create as bbb, type BbbState } from "../src/vi/bbb.js";
import { mlp } from "../src/models/mlp.js";
import {
  meanFieldEntropy,
  meanFieldInit,
  meanFieldKlToPrior,
  meanFieldLogProb,
  meanFieldSample,
  meanFieldSampleStacked,
  meanFieldSigma,
  softplus,
  type MeanField,
} from "../src/vi/meanfield.js";

const VERBOSE = process.env.BAYESDL_TEST_VERBOSE === "1";
const log = (...a: unknown[]) => {
  if (VERBOSE) console.log(...a);
};

/** A small mean-field q over { net: { layers: [{w: [2,3], b: [3]}] }, lik: { logSigma } } with chosen mu, sigma. */
function smallQ(): { q: MeanField; mu: number[][]; sigma: number[][] } {
  const muW = [0.3, -0.2, 0.5, 1.0, 0.0, -0.7];
  const muB = [0.1, -0.1, 0.2];
  const muL = [0.4];
  const sW = [0.5, 0.8, 1.2, 0.3, 0.9, 0.6];
  const sB = [0.4, 0.7, 1.1];
  const sL = [0.25];
  const rho = (s: number[]) => s.map((v) => Math.log(Math.expm1(v)));
  const mk = (w: number[], b: number[], l: number[]): Params => ({
    net: { layers: [{ w: fromHost(w, [2, 3]), b: fromHost(b, [3]) }] },
    lik: { logSigma: fromHost(l, []) },
  });
  return { q: { mu: mk(muW, muB, muL), rho: mk(rho(sW), rho(sB), rho(sL)) }, mu: [muW, muB, muL], sigma: [sW, sB, sL] };
}

test("softplus is stable, and meanFieldInit/meanFieldSigma round-trip sigma0", async () => {
  const got = await toHost(softplus(fromHost([-30, -1, 0, 1, 30, 200], [6])));
  const want = [-30, -1, 0, 1, 30, 200].map((x) => (x > 30 ? x : Math.log1p(Math.exp(x))));
  want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= 1e-5 * Math.max(1, Math.abs(w)), `softplus(${i}): ${got[i]} vs ${w}`));
  const q = meanFieldInit({ net: { layers: [{ w: np.zeros([2, 2]), b: np.zeros([2]) }] } }, 0.05);
  const sig = meanFieldSigma(q.rho);
  for (const a of tree.leaves(sig) as JArray[]) for (const v of await toHost(a)) assert.ok(Math.abs(v - 0.05) < 1e-6, `sigma ${v}`);
  tree.dispose(q.mu);
});

test("meanFieldLogProb equals the hand-computed Gaussian log density (single and stacked)", async () => {
  const { q, mu, sigma } = smallQ();
  // theta = mu + 0.5 sigma (every z = 0.5) for the single case.
  const th: number[][] = mu.map((m, j) => m.map((v, i) => v + 0.5 * sigma[j][i]));
  const theta: Params = {
    net: { layers: [{ w: fromHost(th[0], [2, 3]), b: fromHost(th[1], [3]) }] },
    lik: { logSigma: fromHost(th[2], []) },
  };
  const want = sigma.flat().reduce((s, sg) => s - 0.125 - Math.log(sg) - 0.5 * Math.log(2 * Math.PI), 0);
  const got = (await toHost(meanFieldLogProb(keep(q), theta)))[0];
  log("logProb", got, want);
  assert.ok(Math.abs(got - want) < 1e-4, `${got} vs ${want}`);
  // Stacked: two draws, z = 0 and z = 1 everywhere.
  const st = (f: number) => mu.map((m, j) => [...m.map((v) => v), ...m.map((v, i) => v + f * sigma[j][i])]);
  const s2 = st(1);
  const thetaS: Params = {
    net: { layers: [{ w: fromHost(s2[0], [2, 2, 3]), b: fromHost(s2[1], [2, 3]) }] },
    lik: { logSigma: fromHost(s2[2], [2]) },
  };
  const gotS = await toHost(meanFieldLogProb(keep(q), thetaS));
  const base = sigma.flat().reduce((s, sg) => s - Math.log(sg) - 0.5 * Math.log(2 * Math.PI), 0);
  assert.equal(gotS.length, 2);
  assert.ok(Math.abs(gotS[0] - base) < 1e-4, `${gotS[0]} vs ${base}`);
  assert.ok(Math.abs(gotS[1] - (base - 0.5 * 10)) < 1e-4, `${gotS[1]} vs ${base - 5}`);
  // Entropy: -E log q = sum log sigma + d/2 (1 + log 2 pi).
  const h = (await toHost(meanFieldEntropy(q.rho)))[0];
  const hWant = -base + 0.5 * 10;
  assert.ok(Math.abs(h - hWant) < 1e-4, `entropy ${h} vs ${hWant}`);
  tree.dispose(q.mu);
});

test("analytic KL to the Gaussian prior (incl. perLayer and lik.logSigma) matches a hand formula and Monte Carlo", async () => {
  const { q, mu, sigma } = smallQ();
  const s0 = 0.8, m0 = Math.log(0.5);
  const klHand = (m: number, s: number, pm: number, ps: number) => Math.log(ps / s) + (s * s + (m - pm) ** 2) / (2 * ps * ps) - 0.5;
  let want = 0;
  for (let j = 0; j < 2; j++) mu[j].forEach((m, i) => (want += klHand(m, sigma[j][i], 0, s0)));
  want += klHand(mu[2][0], sigma[2][0], m0, 1);
  const prior = { kind: "gaussian" as const, scale: 3, perLayer: [s0] };
  const got = (await toHost(meanFieldKlToPrior(keep(q), prior, { logSigmaMean: m0 })))[0];
  log("KL analytic", got, "hand", want);
  assert.ok(Math.abs(got - want) < 1e-4 * Math.max(1, want), `${got} vs ${want}`);
  // Monte Carlo: KL = E_q[log q - log p] over S = 20000 draws; within 4 standard errors.
  const S = 20000;
  const draws = meanFieldSampleStacked(key(11), keep(q), S);
  const logq = await toHost(meanFieldLogProb(keep(q), keep(draws)));
  const [w, b, l] = await Promise.all([
    toHost((draws.net as { layers: { w: JArray; b: JArray }[] }).layers[0].w),
    toHost((draws.net as { layers: { w: JArray; b: JArray }[] }).layers[0].b),
    toHost((draws.lik as { logSigma: JArray }).logSigma),
  ]);
  const lnN = (x: number, m: number, s: number) => -0.5 * ((x - m) / s) ** 2 - Math.log(s) - 0.5 * Math.log(2 * Math.PI);
  let sum = 0, sum2 = 0;
  for (let t = 0; t < S; t++) {
    let lp = lnN(l[t], m0, 1);
    for (let i = 0; i < 6; i++) lp += lnN(w[t * 6 + i], 0, s0);
    for (let i = 0; i < 3; i++) lp += lnN(b[t * 3 + i], 0, s0);
    const d = logq[t] - lp;
    sum += d;
    sum2 += d * d;
  }
  const mean = sum / S;
  const se = Math.sqrt((sum2 / S - mean * mean) / S);
  log("KL Monte Carlo", mean, "+-", se);
  assert.ok(Math.abs(mean - got) < 4 * se, `MC ${mean} +- ${se} vs analytic ${got}`);
  // A single draw's moments: mean mu, sd sigma (checks meanFieldSample's leaf pairing).
  const one = tree.leaves(meanFieldSample(key(3), keep(q))) as JArray[];
  assert.deepEqual(one.map((a) => a.shape), (tree.leaves(q.mu) as JArray[]).map((a) => a.shape));
  tree.dispose(one);
  tree.dispose(q);
});


// ---------------------------------------------------------------------------------------------
// Bayes-by-backprop.

/** Tiny regression data: x in [-1, 1]^d, y = x . wTrue + 0.3 noise (host PRNG, deterministic). */
function regression(n: number, d: number, seed = 5) {
  let s = seed;
  const u = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const x = new Float32Array(n * d);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let a = 0.2;
    for (let j = 0; j < d; j++) {
      x[i * d + j] = u() * 2 - 1;
      a += x[i * d + j] * (j % 2 === 0 ? 0.8 : -0.5);
    }
    y[i] = a + 0.3 * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  }
  return { x, y };
}

/** Mean and standard error of a list. */
function meanSe(v: number[]): [number, number] {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const var_ = v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1);
  return [m, Math.sqrt(var_ / v.length)];
}

test("BBB objective is an unbiased estimate of the closed-form negative ELBO on a conjugate linear model (all estimators)", async () => {
  // Linear model f(x) = x w + b (mlp with no hidden layer), Gaussian likelihood with fixed sigma, N(0, s^2) prior.
  const N = 24, D = 3, SIG = 0.5, PS = 1.5;
  const { x, y } = regression(N, D);
  const model = makeModel(mlp({ inputShape: [D], hidden: [], outputDim: 1 }), gaussian({ sigma: SIG }), { kind: "gaussian", scale: PS });
  const muW = [0.5, -0.3, 0.7], muB = 0.1, sW = [0.2, 0.35, 0.15], sB = 0.25;
  // Closed form: E_q log p(y_n | x_n, theta) = -log(2 pi sigma^2)/2 - [(y_n - x_n mu_w - mu_b)^2 + x_n^2 . s_w^2 + s_b^2] / (2 sigma^2).
  let ell = 0;
  for (let i = 0; i < N; i++) {
    let m = muB, v = sB * sB;
    for (let j = 0; j < D; j++) {
      m += x[i * D + j] * muW[j];
      v += x[i * D + j] ** 2 * sW[j] ** 2;
    }
    ell += -0.5 * Math.log(2 * Math.PI * SIG * SIG) - ((y[i] - m) ** 2 + v) / (2 * SIG * SIG);
  }
  const klOne = (m: number, s: number) => Math.log(PS / s) + (s * s + m * m) / (2 * PS * PS) - 0.5;
  const kl = muW.reduce((a, m, j) => a + klOne(m, sW[j]), klOne(muB, sB));
  const want = (-ell + kl) / N; // -ELBO per datum
  const rho = (v: number) => Math.log(Math.expm1(v));
  const q: MeanField = {
    mu: { net: { layers: [{ w: fromHost(muW, [D, 1]), b: fromHost([muB], [1]) }] } },
    rho: { net: { layers: [{ w: fromHost(sW.map(rho), [D, 1]), b: fromHost([rho(sB)], [1]) }] } },
  };
  const batch = { x: fromHost(x, [N, D]), y: fromHost(y, [N]) };
  for (const estimator of ["reparam", "lrt", "flipout"] as const) {
    const vi = bbb(model, { dataSize: N, estimator, learningRate: 1e-3 });
    const s0 = vi.init(key(0), keep(q.mu));
    tree.dispose(s0.q);
    const state = { ...s0, q: keep(q) };
    const stepJ = compile((k: Key, st: BbbState, b: Batch) => vi.step(k, st, b)[1]);
    const losses: number[] = [];
    const kls: number[] = [];
    let ks = key(100);
    for (let i = 0; i < 400; i++) {
      const [k1, k2] = split(ks, 2);
      ks = k2;
      const info = stepJ(k1, state, batch);
      losses.push((await toHost(info.loss))[0]);
      kls.push((await toHost(info.kl))[0]);
      tree.dispose([info.nll, info.klWeight]);
    }
    ks.dispose();
    stepJ.dispose();
    tree.dispose(state);
    const [m, se] = meanSe(losses);
    log(`BBB ${estimator}: mean loss ${m.toFixed(5)} +- ${se.toFixed(5)}, closed form ${want.toFixed(5)}`);
    assert.ok(Math.abs(m - want) < 3.5 * se, `${estimator}: ${m} +- ${se} vs ${want}`);
    assert.ok(se > 0 && se < 0.05 * Math.abs(want), `${estimator}: se ${se}`);
    assert.ok(Math.abs(kls[0] - kl) < 1e-4 * Math.max(1, kl), `${estimator}: KL ${kls[0]} vs ${kl}`);
  }
  tree.dispose([q, batch]);
});
