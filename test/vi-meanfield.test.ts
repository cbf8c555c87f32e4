/**
 * Network-scale mean-field VI (src/vi/meanfield.ts, bbb.ts, alpha.ts) against exact answers, fixed keys.
 *
 * Tolerances are Monte Carlo errors stated per test: a mean of S draws is compared with its exact
 * value within 4 standard errors (estimated from the same draws), a variance within 4 standard errors
 * of the sample variance (sd of a sample variance of Gaussian draws is ~ sigma^2 sqrt(2 / S)).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile, fromHost, key, np, random, split, toHost, tree, vmap, type JArray, type Key } from "../src/core/engine.js";
import { softplus } from "../src/core/math.js";
import { halvingCycle, linearWarmup } from "../src/core/schedule.js";
import { keep } from "../src/core/tree.js";
import { gaussian } from "../src/models/likelihood.js";
import { makeModel, type Batch, type Params } from "../src/models/model.js";
import { create as bbb, sampledOutputs, type BbbState } from "../src/vi/bbb.js";
import { create as alphaVI } from "../src/vi/alpha.js";
import { mlp } from "../src/models/mlp.js";
import { meanSe } from "./exact.js";
import { cnn } from "../src/models/cnn.js";
import {
  MAX_DRAW_VALUES,
  meanFieldDraws,
  meanFieldEntropy,
  meanFieldInit,
  meanFieldKlToPrior,
  meanFieldLogProb,
  meanFieldSample,
  meanFieldSampleStacked,
  meanFieldSigma,
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

/** The conjugate linear model of the ELBO tests, a fixed mean-field q, and the closed-form -ELBO / N. */
function conjugate() {
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
  const rho = (v: number) => Math.log(Math.expm1(v));
  const q: MeanField = {
    mu: { net: { layers: [{ w: fromHost(muW, [D, 1]), b: fromHost([muB], [1]) }] } },
    rho: { net: { layers: [{ w: fromHost(sW.map(rho), [D, 1]), b: fromHost([rho(sB)], [1]) }] } },
  };
  const batch = { x: fromHost(x, [N, D]), y: fromHost(y, [N]) };
  return { model, q, batch, N, kl, want: (-ell + kl) / N };
}

type Method = { init(k: Key, p: Params): BbbState; step(k: Key, s: BbbState, b: Batch): [BbbState, { loss: JArray; kl: JArray }] };

/** `calls` evaluations of a method's objective (info.loss, info.kl) at q (borrowed), keys from `seed`. */
async function objectiveDraws(method: Method, q: MeanField, batch: Batch, calls: number, seed: number): Promise<{ loss: number[]; kl: number[] }> {
  const s0 = method.init(key(0), keep(q.mu));
  tree.dispose(s0.q);
  const state = { ...s0, q: keep(q) };
  const stepJ = compile((k: Key, st: BbbState, b: Batch) => {
    const info = method.step(k, st, b)[1];
    return [info.loss, info.kl];
  });
  const loss: number[] = [];
  const kl: number[] = [];
  let ks = key(seed);
  for (let i = 0; i < calls; i++) {
    const [k1, k2] = split(ks, 2);
    ks = k2;
    const [l, k] = stepJ(k1, state, batch);
    loss.push((await toHost(l))[0]);
    kl.push((await toHost(k))[0]);
  }
  ks.dispose();
  stepJ.dispose();
  tree.dispose(state);
  return { loss, kl };
}

test("BBB objective is an unbiased estimate of the closed-form negative ELBO on a conjugate linear model (all estimators)", async () => {
  const { model, q, batch, N, kl, want } = conjugate();
  const ses: Record<string, number> = {};
  for (const estimator of ["reparam", "lrt", "flipout"] as const) {
    const d = await objectiveDraws(bbb(model, { dataSize: N, estimator, learningRate: 1e-3 }), q, batch, 200, 100);
    const { mean: m, se } = meanSe(d.loss);
    ses[estimator] = se;
    log(`BBB ${estimator}: mean loss ${m.toFixed(5)} +- ${se.toFixed(5)}, closed form ${want.toFixed(5)}`);
    // Within 3.5 standard errors of the exact expectation (200 independent draws).
    assert.ok(Math.abs(m - want) < 3.5 * se, `${estimator}: ${m} +- ${se} vs ${want}`);
    assert.ok(se > 0 && se < 0.05 * Math.abs(want), `${estimator}: se ${se}`);
    assert.ok(Math.abs(d.kl[0] - kl) < 1e-4 * Math.max(1, kl), `${estimator}: KL ${d.kl[0]} vs ${kl}`);
  }
  tree.dispose([q, batch]);
});

test("alpha limits: BB-alpha at alpha = 0 is the K-sample ELBO, alpha = 1e-4 is close; VR at alpha -> 1 is the ELBO", async () => {
  const { model, q, batch, N, want } = conjugate();
  const K = 5;
  // Same key => same K weight draws in BBB (samples = K) and BB-alpha: the objectives must agree.
  const elbo = await objectiveDraws(bbb(model, { dataSize: N, samples: K, learningRate: 1e-3 }), q, batch, 20, 7);
  const a0 = await objectiveDraws(alphaVI(model, { dataSize: N, objective: "bb-alpha", alpha: 0, samples: K }), q, batch, 20, 7);
  const aSmall = await objectiveDraws(alphaVI(model, { dataSize: N, objective: "bb-alpha", alpha: 1e-4, samples: K }), q, batch, 20, 7);
  const aHalf = await objectiveDraws(alphaVI(model, { dataSize: N, objective: "bb-alpha", alpha: 0.5, samples: K }), q, batch, 20, 7);
  let d0 = 0, dSmall = 0;
  for (let i = 0; i < 20; i++) {
    d0 = Math.max(d0, Math.abs(a0.loss[i] - elbo.loss[i]));
    dSmall = Math.max(dSmall, Math.abs(aSmall.loss[i] - elbo.loss[i]));
    // Jensen: (1/alpha) log mean p^alpha >= mean log p, so BB-alpha's objective is below the ELBO one.
    assert.ok(aHalf.loss[i] <= elbo.loss[i] + 1e-5, `alpha = 0.5 above the ELBO at draw ${i}: ${aHalf.loss[i]} vs ${elbo.loss[i]}`);
  }
  log(`BB-alpha: |alpha=0 - ELBO| max ${d0}, |alpha=1e-4 - ELBO| max ${dSmall}`);
  // float32 rounding of the same computation (values ~1): 1e-5; alpha = 1e-4 differs by ~alpha/2 var_k(log p) ~ 1e-5.
  assert.ok(d0 < 1e-5, `alpha = 0 vs ELBO: ${d0}`);
  assert.ok(dSmall < 2e-4, `alpha = 1e-4 vs ELBO: ${dSmall}`);
  // VR: alpha = 1 and alpha = 1 - 1e-4 with the same key agree; alpha = 1 is an unbiased -ELBO / N (its KL is Monte Carlo).
  const vr1 = await objectiveDraws(alphaVI(model, { dataSize: N, objective: "vr", alpha: 1, samples: K }), q, batch, 200, 9);
  const vrNear = await objectiveDraws(alphaVI(model, { dataSize: N, objective: "vr", alpha: 1 - 1e-6, samples: K }), q, batch, 20, 9);
  let dv = 0;
  for (let i = 0; i < 20; i++) dv = Math.max(dv, Math.abs(vrNear.loss[i] - vr1.loss[i]));
  const { mean: m, se } = meanSe(vr1.loss);
  log(`VR alpha=1: ${m.toFixed(5)} +- ${se.toFixed(5)} vs closed form ${want.toFixed(5)}; |alpha=1-1e-6 - alpha=1| max ${dv}`);
  // 1 - alpha = 1e-6 moves the bound by ~(1 - alpha)/2 var_k(log w) / N ~ 1e-6 here (var ~ 50); float32 noise is smaller.
  assert.ok(dv < 2e-5, `VR near alpha = 1: ${dv}`);
  assert.ok(Math.abs(m - want) < 3.5 * se, `VR alpha = 1: ${m} +- ${se} vs ${want}`);
  tree.dispose([q, batch]);
});

test("local reparameterisation and flipout give the per-example output mean and variance of plain reparameterisation", async () => {
  // (a) one dense layer: exact mean x mu_W + mu_b and variance x^2 sigma_W^2 + sigma_b^2;
  // (b) a 3-4-2 tanh MLP: LRT and flipout moments against plain reparameterisation's (two-sample).
  const { q: qLin, batch: bLin } = conjugate();
  const xs = await toHost(bLin.x.ref.slice([0, 3]));
  const lin = makeModel(mlp({ inputShape: [3], hidden: [], outputDim: 1 }), gaussian({ sigma: 0.5 }), { kind: "gaussian", scale: 1 });
  const deep = makeModel(mlp({ inputShape: [3], hidden: [4], outputDim: 2, activation: "tanh" }), gaussian({ sigma: 0.5 }), { kind: "gaussian", scale: 1 });
  const qDeep = meanFieldInit(deep.init(key(21)), 0.3);
  const R = 3000; // independent draws per estimator
  const draws = async (model: typeof lin, q: MeanField, x: JArray, est: "reparam" | "lrt" | "flipout", seed: number) => {
    // R independent draws in one call: vmap over R keys (q and x shared).
    const f = compile((k: Key, qq: MeanField, xx: JArray) =>
      vmap((kk: Key, q2: MeanField, x2: JArray) => sampledOutputs(model, est, kk, q2, x2)[0], [0, null, null])(random.split(k, R), qq, xx),
    );
    const all = await toHost(f(key(seed), q, x));
    f.dispose();
    const per = all.length / R;
    const rows = Array.from({ length: R }, (_, i) => all.subarray(i * per, (i + 1) * per));
    const d = rows[0].length;
    const mean = new Float64Array(d), vr = new Float64Array(d), seM = new Float64Array(d), seV = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (const r of rows) s += r[j];
      mean[j] = s / R;
      let s2 = 0, s4 = 0;
      for (const r of rows) {
        const c = (r[j] - mean[j]) ** 2;
        s2 += c;
        s4 += c * c;
      }
      vr[j] = s2 / (R - 1);
      seM[j] = Math.sqrt(vr[j] / R);
      seV[j] = Math.sqrt(Math.max(0, s4 / R - (s2 / R) ** 2) / R); // sd of a sample variance, from the 4th moment
    }
    return { mean, vr, seM, seV };
  };
  const x3 = fromHost(xs, [3, 3]);
  const muW = [0.5, -0.3, 0.7], sW = [0.2, 0.35, 0.15];
  let worst = 0;
  for (const est of ["reparam", "lrt", "flipout"] as const) {
    const m = await draws(lin, qLin, x3, est, 40);
    for (let i = 0; i < 3; i++) {
      let em = 0.1, ev = 0.25 ** 2;
      for (let j = 0; j < 3; j++) {
        em += xs[i * 3 + j] * muW[j];
        ev += xs[i * 3 + j] ** 2 * sW[j] ** 2;
      }
      const zm = Math.abs(m.mean[i] - em) / m.seM[i], zv = Math.abs(m.vr[i] - ev) / m.seV[i];
      worst = Math.max(worst, zm, zv);
      if (VERBOSE) console.log("z", est, zm.toFixed(3), zv.toFixed(3));
      assert.ok(zm < 4 && zv < 4, `${est} example ${i}: mean ${m.mean[i]} vs ${em} (z ${zm}), var ${m.vr[i]} vs ${ev} (z ${zv})`);
    }
  }
  const ref = await draws(deep, qDeep, x3, "reparam", 50);
  for (const est of ["lrt", "flipout"] as const) {
    const m = await draws(deep, qDeep, x3, est, 60);
    for (let j = 0; j < 6; j++) {
      const zm = Math.abs(m.mean[j] - ref.mean[j]) / Math.hypot(m.seM[j], ref.seM[j]);
      const zv = Math.abs(m.vr[j] - ref.vr[j]) / Math.hypot(m.seV[j], ref.seV[j]);
      worst = Math.max(worst, zm, zv);
      if (VERBOSE) console.log("z", est, zm.toFixed(3), zv.toFixed(3));
      assert.ok(zm < 4 && zv < 4, `${est} output ${j}: mean ${m.mean[j]} vs ${ref.mean[j]} (z ${zm}), var ${m.vr[j]} vs ${ref.vr[j]} (z ${zv})`);
    }
  }
  // (c) a tiny CNN (one 3x3 conv block on 1x6x6 inputs, then a dense output layer): its convolution
  // weights are plain reparameterised draws, its dense layer goes through LRT / flipout.
  const cnnModel = makeModel(cnn({ inputShape: [1, 6, 6], channels: [2], outputDim: 2 }), gaussian({ sigma: 0.5 }), { kind: "gaussian", scale: 1 });
  const qCnn = meanFieldInit(cnnModel.init(key(22)), 0.3);
  const img = random.normal(key(23), [2, 1, 6, 6]);
  const refC = await draws(cnnModel, qCnn, img, "reparam", 70);
  for (const est of ["lrt", "flipout"] as const) {
    const m = await draws(cnnModel, qCnn, img, est, 80);
    for (let j = 0; j < 4; j++) {
      const zm = Math.abs(m.mean[j] - refC.mean[j]) / Math.hypot(m.seM[j], refC.seM[j]);
      const zv = Math.abs(m.vr[j] - refC.vr[j]) / Math.hypot(m.seV[j], refC.seV[j]);
      worst = Math.max(worst, zm, zv);
      if (VERBOSE) console.log("z", est, zm.toFixed(3), zv.toFixed(3));
      assert.ok(zm < 4 && zv < 4, `CNN ${est} output ${j}: mean ${m.mean[j]} vs ${refC.mean[j]} (z ${zm}), var ${m.vr[j]} vs ${refC.vr[j]} (z ${zv})`);
    }
  }
  log(`LRT / flipout moments: largest |z| ${worst.toFixed(2)} (tolerance 4)`);
  tree.dispose([qLin, bLin, qDeep, x3, qCnn, img]);
});

test("a short BBB fit improves the ELBO, stays finite, and is deterministic under a fixed key", async () => {
  const N = 64, D = 2;
  const { x, y } = regression(N, D, 9);
  const model = makeModel(mlp({ inputShape: [D], hidden: [8], outputDim: 1, activation: "tanh" }), gaussian({ sigma: 0.3, noise: "learned" }), { kind: "gaussian", scale: 1 });
  const batch = { x: fromHost(x, [N, D]), y: fromHost(y, [N]) };
  const run = async (opts: Parameters<typeof bbb>[1], steps: number) => {
    const vi = bbb(model, opts);
    // -ELBO / N = nll + KL / N (the objective itself differs under KL weights and temperature).
    const stepJ = compile((k: Key, s: BbbState, b: Batch): [BbbState, JArray] => {
      const [s2, info] = vi.step(k, s, b);
      tree.dispose([info.loss, info.klWeight]);
      return [s2, info.nll.add(info.kl.mul(1 / N))];
    }, { consume: [0, 1] });
    let state = vi.init(key(1), model.init(key(2)));
    let ks = key(3);
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const [k1, k2] = split(ks, 2);
      ks = k2;
      const [s2, l] = stepJ(k1, state, batch);
      state = s2;
      losses.push((await toHost(l))[0]);
    }
    ks.dispose();
    stepJ.dispose();
    const leaves = await Promise.all((tree.leaves(state.q) as JArray[]).map((a) => toHost(a.ref)));
    tree.dispose(state);
    return { losses, leaves };
  };
  const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  for (const [name, opts] of [
    ["reparam", { dataSize: N, learningRate: 0.02, samples: 2 }],
    ["lrt, linear KL warm-up", { dataSize: N, estimator: "lrt", learningRate: 0.02, klWeight: linearWarmup(1, 20) }],
    ["flipout, scale mixture", { dataSize: N, estimator: "flipout", learningRate: 0.02, prior: { kind: "scaleMixture", pi: 0.5, sigma1: 1, sigma2: 0.05 } }],
    ["reparam, Blundell weights, T = 0.5", { dataSize: N, learningRate: 0.02, klWeight: halvingCycle(4), temperature: 0.5 }],
  ] as const) {
    const { losses } = await run(opts as Parameters<typeof bbb>[1], 80);
    const first = avg(losses.slice(0, 10)), last = avg(losses.slice(-10));
    log(`fit ${name}: -ELBO/N ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assert.ok(losses.every(Number.isFinite), `${name}: non-finite ELBO`);
    // The noise of a 10-step average is ~0.05 here; these fits drop it by > 1 (from ~2.8), so 0.3 is a safe margin.
    assert.ok(last < first - 0.3, `${name}: ${first} -> ${last}`);
  }
  const a = await run({ dataSize: N, estimator: "flipout", learningRate: 0.02 }, 15);
  const b = await run({ dataSize: N, estimator: "flipout", learningRate: 0.02 }, 15);
  assert.deepEqual(a.losses, b.losses);
  a.leaves.forEach((l, i) => assert.deepEqual(Array.from(l), Array.from(b.leaves[i])));
  tree.dispose(batch);
});

test("analytic KL to a fan-in prior: weights against N(0, s^2 / fanIn), biases against N(0, s^2)", async () => {
  const { q, mu, sigma } = smallQ();
  const s0 = 0.8, m0 = Math.log(0.5);
  const klHand = (m: number, s: number, pm: number, ps: number) => Math.log(ps / s) + (s * s + (m - pm) ** 2) / (2 * ps * ps) - 0.5;
  let want = 0;
  mu[0].forEach((m, i) => (want += klHand(m, sigma[0][i], 0, s0 / Math.SQRT2))); // w is [2, 3]: fan-in 2
  mu[1].forEach((m, i) => (want += klHand(m, sigma[1][i], 0, s0)));
  want += klHand(mu[2][0], sigma[2][0], m0, 1);
  const got = (await toHost(meanFieldKlToPrior(q, { kind: "gaussian", scale: s0, scaling: "fan-in" }, { logSigmaMean: m0 })))[0];
  assert.ok(Math.abs(got - want) < 1e-4 * Math.max(1, want), `${got} vs ${want}`);
});

test("many mean-field draws of a large leaf come in calls that fit in Wasm memory, with the right law", async () => {
  // A leaf of 3 million values: MAX_DRAW_VALUES (8.4 million) fits 2 draws per call, so 5 draws take
  // 3 calls (2 + 2 + 1), each moved to the host before the next; 2 draws take one call with the key itself.
  const size = 3_000_000;
  const mu = 0.25;
  const sigma = 0.5;
  const q = (): MeanField => ({ mu: { net: { w: np.full([size], mu) } }, rho: { net: { w: np.full([size], Math.log(Math.expm1(sigma))) } } });
  assert.equal(Math.floor(MAX_DRAW_VALUES / size), 2);
  const leaf = (p: Params): JArray => (p.net as { w: JArray }).w;
  const qa = q();
  const chunked = leaf(meanFieldDraws(key(3), qa, 5));
  assert.deepEqual(chunked.shape, [5, size]);
  const v = await toHost(chunked);
  // Per draw: mean within 4 standard errors (sigma / sqrt(size)), sd within 4 of its own (sigma / sqrt(2 size)).
  const rows: number[][] = [];
  for (let d = 0; d < 5; d++) {
    let s = 0;
    let ss = 0;
    for (let i = d * size; i < (d + 1) * size; i++) {
      s += v[i];
      ss += v[i] * v[i];
    }
    const m = s / size;
    const sd = Math.sqrt(ss / size - m * m);
    assert.ok(Math.abs(m - mu) < (4 * sigma) / Math.sqrt(size), `draw ${d}: mean ${m}`);
    assert.ok(Math.abs(sd - sigma) < (4 * sigma) / Math.sqrt(2 * size), `draw ${d}: sd ${sd}`);
    rows.push([v[d * size], v[d * size + 1]]);
  }
  // The calls use different keys: no two draws repeat.
  for (let a = 0; a < 5; a++) for (let b = a + 1; b < 5; b++) assert.notDeepEqual(rows[a], rows[b], `draws ${a} and ${b}`);
  // Within one call's limit the draws are exactly meanFieldSampleStacked's with the same key.
  const qb = q();
  const one = await toHost(leaf(meanFieldDraws(key(4), qb, 2)));
  const direct = await toHost(leaf(meanFieldSampleStacked(key(4), qb, 2)));
  assert.deepEqual(Array.from(one.subarray(0, 8)), Array.from(direct.subarray(0, 8)));
  assert.deepEqual(Array.from(one.subarray(one.length - 8)), Array.from(direct.subarray(direct.length - 8)));
  tree.dispose([qa.mu, qa.rho]);
});
