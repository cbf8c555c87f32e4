/**
 * The Laplace family (src/laplace/) against exact answers, fixed keys.
 *
 * The exact curvature is built here from the full Jacobian J (jax-js `jacrev` of the network outputs in
 * the flattened chosen weights), GGN = sum_i J_i^T H_i J_i, which the library never forms. Tolerances
 * are float32 round-off on sums of a few hundred terms (relative 1e-4), unless stated.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile, fromHost, key, np, sync, toHost, vjpOf, type JArray } from "../src/core/engine.js";
import { cholesky, logDetCholesky, solveLower, solveLowerTranspose, symEig } from "../src/core/linalg.js";
import { free, keep } from "../src/core/tree.js";
import { categorical, gaussian } from "../src/models/likelihood.js";
import { makeModel, type Batch, type Model, type Params } from "../src/models/model.js";
import { mlp } from "../src/models/mlp.js";
import { cnn } from "../src/models/cnn.js";
import { fanInPrior } from "../src/models/prior.js";
import { selectBlocks, withBlocks, leafAt, type Block } from "../src/laplace/curvature.js";
import { blockPrecisions, create, laplaceFactors, laplaceProblem, modeSigma, type LaplaceMethodOptions, type LaplaceState } from "../src/laplace/laplace.js";
import { logEvidence, maximiseWeightwise, weightwiseEvidence } from "../src/laplace/marglik.js";
import { batchCholesky, glmPredict, laplaceKinds, laplacePosterior, outputFactors, uploadBlockFactors, type Factors } from "../src/laplace/posterior.js";
import { create as createSampled, sampledEpochs, type SampledLaplaceOptions, type SampledState } from "../src/laplace/sampled.js";
import { blrPosterior, gaussianErrors, lcg, gaussianFrom, sampleMoments } from "./exact.js";

const REL = 1e-4;

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

function data(n: number, shape: number[], k: number, seed: number): Batch {
  const u = lcg(seed);
  const g = gaussianFrom(u);
  const d = shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n * d }, () => g());
  const y = k > 1 ? Int32Array.from({ length: n }, () => Math.floor(u() * k)) : Float32Array.from({ length: n }, () => g());
  return { x: fromHost(x, [n, ...shape]), y: fromHost(y, [n]) };
}

/** Per-example Jacobians `[n, k, P]` of the outputs in the chosen blocks (flattened in block order). */
async function jacobians(model: Model, params: Params, blocks: readonly Block[], x: JArray): Promise<{ j: Float64Array; n: number; k: number; p: number; out: Float32Array }> {
  const vec = np.concatenate(blocks.map((b) => leafAt(params, b.path).ref.reshape([b.size])));
  const n = x.shape[0];
  const k = model.network.outputDim;
  const f = (v: JArray) => model.network.apply(withBlocks(params, blocks, v).net, x.ref).reshape([n * k]);
  const p = vec.shape[0];
  // One vector-Jacobian product per output: row (i, c) of J.
  const [out, back] = vjpOf(f, vec);
  const j = new Float64Array(n * k * p);
  for (let r = 0; r < n * k; r++) {
    const e = new Float32Array(n * k);
    e[r] = 1;
    j.set(await toHost(back(fromHost(e, [n * k]))), r * p);
  }
  back.dispose();
  x.dispose();
  return { j, n, k, p, out: await toHost(out) };
}

/** GGN = sum_i J_i^T H_i J_i (categorical H = diag(p) - p p^T; Gaussian H = 1). */
function exactGgn(model: Model, jac: { j: Float64Array; n: number; k: number; p: number; out: Float32Array }): Float64Array {
  const { j, n, k, p, out } = jac;
  const ggn = new Float64Array(p * p);
  for (let i = 0; i < n; i++) {
    const h = new Float64Array(k * k);
    if (model.likelihood.spec.kind === "categorical") {
      const z = Array.from({ length: k }, (_, c) => out[i * k + c]);
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b);
      const pr = e.map((v) => v / s);
      for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) h[a * k + b] = (a === b ? pr[a] : 0) - pr[a] * pr[b];
    } else h[0] = 1;
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) {
        const hab = h[a * k + b];
        if (hab === 0) continue;
        const ra = (i * k + a) * p;
        const rb = (i * k + b) * p;
        for (let r = 0; r < p; r++) {
          const v = hab * j[ra + r];
          if (v === 0) continue;
          for (let c = 0; c < p; c++) ggn[r * p + c] += v * j[rb + c];
        }
      }
    }
  }
  return ggn;
}

const OPTS: LaplaceMethodOptions = { epochs: 20, lr: 3e-3, hessian: "diag", rank: 4, subset: "all", curvature: "ggn", pred: "glm", link: "probit", temperature: 1, priorOpt: "none", priorStructure: "layer", priorMultiplier: 1, samples: 100 };

/** One curvature pass over `batch` (all of it as one step); returns the state and blocks. */
function pass(model: Model, params: Params, batch: Batch, o: Partial<LaplaceMethodOptions>): { state: LaplaceState; blocks: Block[] } {
  const m = create(model, batch.x.shape[0], { ...OPTS, ...o });
  const s0 = m.init(key(1), keep(params));
  const [s1, info] = m.step(key(2), s0, { x: batch.x.ref, y: batch.y.ref });
  info.loss.dispose();
  return { state: s1, blocks: selectBlocks(params, o.subset ?? "all") };
}

const tinyMlp = () => makeModel(mlp({ inputShape: [3], hidden: [4], outputDim: 3 }), categorical(), fanInPrior(2));
const tinyCnn = () => makeModel(cnn({ inputShape: [1, 6, 6], channels: [2], outputDim: 3 }), categorical(), fanInPrior(2));

for (const [name, makeM, shape] of [
  ["mlp 3-4-3", tinyMlp, [3]],
  ["cnn:2 on 6x6", tinyCnn, [1, 6, 6]],
] as const) {
  test(`laplace curvature (${name}): diag and full GGN equal the GGN built from the full Jacobian; EF equals sum of gradient outer products`, async () => {
    const model = makeM();
    const params = model.init(key(3));
    const batch = data(7, [...shape], 3, 11);
    const blocks = selectBlocks(params, "all");
    const jac = await jacobians(model, params, blocks, batch.x.ref);
    const ggn = exactGgn(model, jac);
    const p = jac.p;
    const full = pass(model, params, batch, { hessian: "full" });
    const got = Float64Array.from(await toHost(full.state.acc[0].ref));
    assert.ok(relErr(got, ggn) < REL, `full GGN rel err ${relErr(got, ggn)}`);
    const diag = pass(model, params, batch, { hessian: "diag" });
    const d = (await Promise.all(diag.state.acc.map((a) => toHost(a.ref)))).flatMap((a) => [...a]);
    const exactDiag = Array.from({ length: p }, (_, i) => ggn[i * p + i]);
    assert.ok(relErr(d, exactDiag) < REL, `diag GGN rel err ${relErr(d, exactDiag)}`);
    // Empirical Fisher: sum_i g_i g_i^T with g_i = J_i^T (onehot(y_i) - p_i).
    const ef = pass(model, params, batch, { hessian: "full", curvature: "ef" });
    const gotEf = Float64Array.from(await toHost(ef.state.acc[0].ref));
    const y = await toHost(batch.y.ref.astype(np.float32));
    const exactEf = new Float64Array(p * p);
    for (let i = 0; i < jac.n; i++) {
      const z = Array.from({ length: 3 }, (_, c) => jac.out[i * 3 + c]);
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const s = e.reduce((a, b) => a + b);
      const g = new Float64Array(p);
      for (let c = 0; c < 3; c++) {
        const r = (c === y[i] ? 1 : 0) - e[c] / s;
        for (let q = 0; q < p; q++) g[q] += r * jac.j[(i * 3 + c) * p + q];
      }
      for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) exactEf[a * p + b] += g[a] * g[b];
    }
    assert.ok(relErr(gotEf, exactEf) < REL, `EF rel err ${relErr(gotEf, exactEf)}`);
  });

  test(`laplace KFAC (${name}): the bias block's G is its exact GGN block, and with one example A (x) G / R is the exact weight block for dense layers`, async () => {
    const model = makeM();
    const params = model.init(key(4));
    for (const n of [1, 5]) {
      const batch = data(n, [...shape], 3, 20 + n);
      const blocks = selectBlocks(params, "all");
      const jac = await jacobians(model, params, blocks, batch.x.ref);
      const ggn = exactGgn(model, jac);
      const p = jac.p;
      const kr = pass(model, params, batch, { hessian: "kron" });
      const layers = [...new Set(blocks.map((b) => b.layer))];
      const m = layers.length;
      let off = 0;
      for (const b of blocks) {
        const j = layers.indexOf(b.layer);
        const g = Float64Array.from(await toHost(kr.state.acc[m + j].ref));
        const a = Float64Array.from(await toHost(kr.state.acc[j].ref));
        const block = (r: number, c: number) => ggn[(off + r) * p + off + c];
        if (b.kind === "b") {
          // KFAC-expand's bias block is sum over rows of delta delta^T: exact for dense layers.
          const dense = b.fanOut === 3 || name.startsWith("mlp");
          if (dense) {
            const exact = Float64Array.from({ length: b.fanOut * b.fanOut }, (_, i) => block(Math.floor(i / b.fanOut), i % b.fanOut));
            assert.ok(relErr(g, exact) < REL, `${b.path} bias block rel err ${relErr(g, exact)}`);
          }
        } else {
          // A carries the appended ones: its corner counts the rows (n times the output positions).
          const corner = a[(b.fanIn + 1) * (b.fanIn + 1) - 1];
          const positions = name.startsWith("mlp") || b.fanIn === 8 ? 1 : 16;
          assert.equal(corner, n * positions, `${b.path}: A's ones corner ${corner}`);
        }
        if (b.kind === "w" && n === 1 && (name.startsWith("mlp") || b.fanIn === 8)) {
          // One example, a dense layer: GGN_W = (a a^T) (x) (sum_c delta_c delta_c^T) exactly (R = 1).
          const kron = new Float64Array(b.size * b.size);
          for (let i1 = 0; i1 < b.fanIn; i1++)
            for (let o1 = 0; o1 < b.fanOut; o1++)
              for (let i2 = 0; i2 < b.fanIn; i2++)
                for (let o2 = 0; o2 < b.fanOut; o2++) kron[(i1 * b.fanOut + o1) * b.size + i2 * b.fanOut + o2] = a[i1 * (b.fanIn + 1) + i2] * g[o1 * b.fanOut + o2];
          const exact = Float64Array.from({ length: b.size * b.size }, (_, i) => block(Math.floor(i / b.size), i % b.size));
          assert.ok(relErr(kron, exact) < REL, `${b.path} one-example Kronecker block rel err ${relErr(kron, exact)}`);
        }
        off += b.size;
      }
    }
  });
}

for (const [name, makeM, shape] of [
  ["mlp 3-4-3", tinyMlp, [3]],
  ["cnn:2 on 6x6", tinyCnn, [1, 6, 6]],
] as const) {
  test(`laplace linearised predictive (${name}): the output covariance equals J Sigma J^T from the exact Jacobian, for diag, kron, full and lowrank`, async () => {
    const model = makeM();
    const params = model.init(key(6));
    const batch = data(9, [...shape], 3, 51);
    const x = data(4, [...shape], 3, 52).x;
    const blocks = selectBlocks(params, "all");
    const jac = await jacobians(model, params, blocks, x.ref);
    const p = jac.p;
    for (const hessian of ["diag", "kron", "full", "lowrank"] as const) {
      const { state } = pass(model, params, batch, { hessian });
      const { factors } = laplaceFactors(model, 9, params, blocks, state, { ...OPTS, hessian, priorOpt: "none" });
      // Sigma on the host from the factors.
      const sigma = await hostSigma(factors, blocks, p);
      const { d, v } = outputFactors(model, params, blocks, factors, x.ref);
      let covArr = d.map((m) => np.matmul(m.ref, m.transpose([0, 2, 1]))).reduce((a, b) => a.add(b));
      if (v) covArr = covArr.sub(np.matmul(v.ref, v.transpose([0, 2, 1])));
      const cov = await toHost(covArr);
      free(factors);
      const k = 3;
      const exact = new Float64Array(4 * k * k);
      for (let i = 0; i < 4; i++)
        for (let a = 0; a < k; a++)
          for (let b = 0; b < k; b++) {
            let v = 0;
            const ra = (i * k + a) * p;
            const rb = (i * k + b) * p;
            for (let r = 0; r < p; r++) for (let c = 0; c < p; c++) v += jac.j[ra + r] * sigma[r * p + c] * jac.j[rb + c];
            exact[(i * k + a) * k + b] = v;
          }
      assert.ok(relErr(cov, exact) < 1e-3, `${hessian}: output covariance rel err ${relErr(cov, exact)}`);
    }
  });
}

/** Sigma (p x p, float64) of Laplace factors over `blocks` (borrowed), from its definition. */
async function hostSigma(factors: Factors, blocks: readonly Block[], p: number): Promise<Float64Array> {
  const sigma = new Float64Array(p * p);
  if ("s" in factors) {
    const s = Float64Array.from(await toHost(factors.s.ref));
    for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) for (let c = 0; c < p; c++) sigma[a * p + b] += s[a * p + c] * s[b * p + c];
  } else {
    let off = 0;
    for (const [i, b] of blocks.entries()) {
      const f = factors.blocks[i];
      const rows = b.kind === "b" ? 1 : b.fanIn;
      const sd = await toHost(f.sd.ref);
      const qa = f.qa ? await toHost(f.qa.ref) : undefined;
      const qg = f.qg ? await toHost(f.qg.ref) : undefined;
      const q = (m: Float32Array | undefined, d: number, r: number, c: number) => (m ? m[r * d + c] : r === c ? 1 : 0);
      // Sigma_block[(i1,o1),(i2,o2)] = sum_{j,o} QA[i1,j] QG[o1,o] sd[j,o]^2 QA[i2,j] QG[o2,o].
      for (let i1 = 0; i1 < rows; i1++)
        for (let o1 = 0; o1 < b.fanOut; o1++)
          for (let i2 = 0; i2 < rows; i2++)
            for (let o2 = 0; o2 < b.fanOut; o2++) {
              let v = 0;
              for (let j = 0; j < rows; j++) for (let o = 0; o < b.fanOut; o++) v += q(qa, rows, i1, j) * q(qg, b.fanOut, o1, o) * sd[j * b.fanOut + o] ** 2 * q(qa, rows, i2, j) * q(qg, b.fanOut, o2, o);
              sigma[(off + i1 * b.fanOut + o1) * p + off + i2 * b.fanOut + o2] = v;
            }
      off += b.size;
    }
  }
  if (!("s" in factors) && factors.m) {
    // Low rank: Sigma = D^2 + W diag(m) W^T.
    const m = await toHost(factors.m.ref);
    const w = new Float64Array(m.length * p);
    let off = 0;
    for (const [i, b] of blocks.entries()) {
      const wb = await toHost(factors.blocks[i].w!.ref);
      for (let j = 0; j < m.length; j++) for (let t = 0; t < b.size; t++) w[j * p + off + t] = wb[j * b.size + t];
      off += b.size;
    }
    for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) for (let j = 0; j < m.length; j++) sigma[a * p + b] += m[j] * w[j * p + a] * w[j * p + b];
  }
  return sigma;
}

test("laplace lowrank (mlp 3-4-3, 3 examples): with the rank at least the GGN's, it equals full (evidence-tuned prior, log evidence, Sigma); its draws have that Sigma; saved and reloaded it predicts the same", async () => {
  // Softmax over 3 classes: each example's GGN has rank 2, so 3 examples give rank 6 <= k = 6 < p = 31,
  // and the sketch (2k + 8 = 20 columns) captures it exactly.
  const model = tinyMlp();
  const params = model.init(key(31));
  const batch = data(3, [3], 3, 32);
  const blocks = selectBlocks(params, "all");
  const p = blocks.reduce((a, b) => a + b.size, 0);
  const full = pass(model, params, batch, { hessian: "full" });
  const low = pass(model, params, batch, { hessian: "lowrank", rank: 6 });
  const ff = laplaceFactors(model, 3, params, blocks, full.state, { ...OPTS, hessian: "full", priorOpt: "marglik", priorStructure: "scalar" });
  const lf = laplaceFactors(model, 3, params, blocks, low.state, { ...OPTS, hessian: "lowrank", rank: 6, priorOpt: "marglik", priorStructure: "scalar" });
  const fe = ff.options.logEvidence!;
  const le = lf.options.logEvidence!;
  assert.ok(Math.abs(le - fe) < 1e-4 * Math.abs(fe), `log evidence: lowrank ${le} vs full ${fe}`);
  ff.options.priorScales.forEach((sc, l) => assert.ok(Math.abs(lf.options.priorScales[l] - sc) < 1e-4 * sc, `prior scale ${l}: ${lf.options.priorScales[l]} vs ${sc}`));
  const sf = await hostSigma(ff.factors, blocks, p);
  const sl = await hostSigma(lf.factors, blocks, p);
  assert.ok(relErr(sl, sf) < 1e-3, `Sigma: rel err ${relErr(sl, sf)}`);
  free(ff.factors);
  // Draws through the low-rank factor (S eps = D (eps + U diag(sqrt(1 + m) - 1) U^T eps)): covariance within Monte Carlo error.
  const post = laplacePosterior(model, keep(params), lf.factors, lf.options);
  const s = 20000;
  const draws = post.draws(key(33), s);
  const flat = await toHost(np.concatenate(blocks.map((b) => leafAt(draws, b.path).ref.reshape([s, b.size]).sub(leafAt(params, b.path).ref.reshape([1, b.size]))), 1));
  free(draws);
  // Saved and reloaded (the tensors of posterior.json's kind), it predicts what it predicted.
  const kind = laplaceKinds.find((kd) => kd.kind === "laplace-lowrank")!;
  const again = kind.load(model.init(key(0)), post.options, await post.tensors(), model);
  const xq = data(5, [3], 3, 36).x;
  const p1 = post.predict!(key(37), xq.ref);
  const p2 = again.predict!(key(37), xq);
  if (p1.kind !== "categorical" || p2.kind !== "categorical") throw new Error("expected a categorical predictive");
  assert.deepEqual(await toHost(p2.probs), await toHost(p1.probs));
  p1.meanEntropy.dispose();
  p2.meanEntropy.dispose();
  again.dispose();
  post.dispose();
  let worst = 0;
  for (let a = 0; a < p; a++)
    for (let b = 0; b <= a; b++) {
      let c = 0;
      for (let i = 0; i < s; i++) c += flat[i * p + a] * flat[i * p + b];
      c /= s;
      const se = Math.sqrt((sl[a * p + a] * sl[b * p + b] + sl[a * p + b] ** 2) / s);
      worst = Math.max(worst, Math.abs(c - sl[a * p + b]) / se);
    }
  assert.ok(worst < 5, `draws' covariance: worst entry ${worst.toFixed(2)} standard errors from Sigma`);
  free(full.state);
  free(low.state);
});

test("laplace lowrank (mlp 3-4-3, 9 examples, rank 6 of 18): Sigma and the log evidence equal their definitions, top-6 eigenpairs of the whitened GGN plus the rest of its diagonal", async () => {
  const model = tinyMlp();
  const params = model.init(key(34));
  const batch = data(9, [3], 3, 35);
  const blocks = selectBlocks(params, "all");
  const p = blocks.reduce((a, b) => a + b.size, 0);
  const k = 6;
  const full = pass(model, params, batch, { hessian: "full" });
  const low = pass(model, params, batch, { hessian: "lowrank", rank: k });
  const ff = laplaceFactors(model, 9, params, blocks, full.state, { ...OPTS, hessian: "full", priorOpt: "none" });
  const lf = laplaceFactors(model, 9, params, blocks, low.state, { ...OPTS, hessian: "lowrank", rank: k, priorOpt: "none" });
  // The definition on the host: K = c^-1/2 G c^-1/2 (c = tau0 / beta, beta = 1 / s^2 at the model's prior),
  // K_k its top-k part, precision c^1/2 (K_k + diag(max(diag K - diag K_k, 0)) + beta I) c^1/2.
  const g = Float64Array.from(await toHost(full.state.acc[0].ref));
  const beta = 1 / model.prior.scale ** 2;
  const c = new Float64Array(p);
  let off = 0;
  blockPrecisions(model, params, blocks).forEach((t, i) => {
    c.fill(t / beta, off, off + blocks[i].size);
    off += blocks[i].size;
  });
  const kmat = new Float64Array(p * p);
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) kmat[a * p + b] = (0.5 * (g[a * p + b] + g[b * p + a])) / Math.sqrt(c[a] * c[b]);
  const e = symEig(kmat, p);
  const prec = new Float64Array(p * p);
  for (let a = 0; a < p; a++)
    for (let b = 0; b < p; b++) {
      let v = 0;
      for (let j = p - k; j < p; j++) v += e.vectors[a * p + j] * e.values[j] * e.vectors[b * p + j];
      prec[a * p + b] = v;
    }
  for (let a = 0; a < p; a++) prec[a * p + a] += Math.max(kmat[a * p + a] - prec[a * p + a], 0) + beta;
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) prec[a * p + b] *= Math.sqrt(c[a] * c[b]);
  const l = cholesky(prec, p);
  const exact = new Float64Array(p * p);
  for (let j = 0; j < p; j++) {
    const ej = new Float64Array(p);
    ej[j] = 1;
    const col = solveLowerTranspose(l, p, solveLower(l, p, ej, 1), 1);
    for (let i = 0; i < p; i++) exact[i * p + j] = col[i];
  }
  const sl = await hostSigma(lf.factors, blocks, p);
  assert.ok(relErr(sl, exact) < 1e-3, `Sigma: rel err ${relErr(sl, exact)}`);
  // log Z differs from the full structure's only in -1/2 log det of the precision.
  const fullPrec = new Float64Array(p * p);
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) fullPrec[a * p + b] = 0.5 * (g[a * p + b] + g[b * p + a]) + (a === b ? beta * c[a] : 0);
  const want = ff.options.logEvidence! - 0.5 * (logDetCholesky(l, p) - logDetCholesky(cholesky(fullPrec, p), p));
  const got = lf.options.logEvidence!;
  assert.ok(Math.abs(got - want) < 1e-4 * Math.abs(want), `log evidence ${got} vs ${want}`);
  free(ff.factors);
  free(lf.factors);
  free(full.state);
  free(low.state);
});

test("laplace: for a linear model with a Gaussian likelihood the GGN equals the exact Hessian", async () => {
  const model = makeModel(mlp({ inputShape: [4], hidden: [], outputDim: 1 }), gaussian({ sigma: 1 }), fanInPrior(1));
  const params = model.init(key(5));
  const batch = data(9, [4], 1, 31);
  const g = pass(model, params, batch, { hessian: "full" });
  const h = pass(model, params, batch, { hessian: "full", curvature: "hessian" });
  const a = await toHost(g.state.acc[0].ref);
  const b = await toHost(h.state.acc[0].ref);
  assert.ok(relErr(a, b) < REL, `GGN vs Hessian rel err ${relErr(a, b)}`);
});

/** Bayesian linear regression through the method: features z, y = z w + b + noise. */
async function blr(sigma: number, s: number) {
  const n = 12;
  const d = 3;
  const u = gaussianFrom(lcg(7));
  const z = Array.from({ length: n }, () => Array.from({ length: d }, () => u()));
  const y = z.map((r) => 0.5 * r[0] - r[1] + 0.25 * r[2] + 0.3 + 0.4 * u());
  // Prior scaling `none`: every weight and the bias N(0, s^2), the closed form's prior.
  const model = makeModel(mlp({ inputShape: [d], hidden: [], outputDim: 1 }), gaussian({ sigma }), { kind: "gaussian", scale: s, scaling: "none" });
  const exact = blrPosterior(
    z.map((r) => [...r, 1]),
    y,
    sigma,
    s,
  );
  const x = fromHost(Float32Array.from(z.flat()), [n, d]);
  const yy = fromHost(Float32Array.from(y), [n]);
  // The mode is the posterior mean (w then b, the block order).
  const params: Params = { net: { layers: [{ w: fromHost(Float32Array.from(exact.mean.slice(0, d)), [d, 1]), b: fromHost(Float32Array.from(exact.mean.slice(d)), [1]) }] } };
  return { model, params, batch: { x, y: yy }, exact, n, d, z, y };
}

test("laplace full on Bayesian linear regression: the posterior covariance and the log evidence equal the closed forms", async () => {
  const sigma = 0.5;
  const s = 1.5;
  const { model, params, batch, exact, n, d, z, y } = await blr(sigma, s);
  const m = create(model, n, { ...OPTS, hessian: "full", priorOpt: "none" });
  const s0 = m.init(key(1), keep(params));
  const [s1, info] = m.step(key(2), s0, batch);
  info.loss.dispose();
  const post = m.posterior(s1);
  const sfac = (post.options as { logEvidence: number }).logEvidence;
  // Closed-form evidence: y ~ N(0, s^2 Z Z^T + sigma^2 I) with the bias column in Z.
  const zz = z.map((r) => [...r, 1]);
  const cov = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => s * s * zz[i].reduce((a, v, q) => a + v * zz[j][q], 0) + (i === j ? sigma * sigma : 0)));
  const { cholesky, logDetCholesky, solveLower } = await import("../src/core/linalg.js");
  const flat = Float64Array.from(cov.flat());
  const l = cholesky(flat, n);
  const alpha = solveLower(l, n, Float64Array.from(y), 1);
  const quad = alpha.reduce((a, v) => a + v * v, 0);
  const exactLogZ = -0.5 * quad - 0.5 * logDetCholesky(l, n) - 0.5 * n * Math.log(2 * Math.PI);
  assert.ok(Math.abs(sfac - exactLogZ) < 1e-3 * Math.abs(exactLogZ), `log evidence ${sfac} vs closed form ${exactLogZ}`);
  // Covariance from the posterior's draws' factor: draws of 40,000 weights, moments within Monte Carlo error.
  const draws = post.draws(key(9), 40000);
  const layer = (draws.net as { layers: { w: JArray; b: JArray }[] }).layers[0];
  const w = await toHost(np.concatenate([layer.w.reshape([40000, d]), layer.b.reshape([40000, 1])], 1));
  post.dispose();
  const p = d + 1;
  for (let a = 0; a < p; a++) {
    let m1 = 0;
    for (let i = 0; i < 40000; i++) m1 += w[i * p + a];
    m1 /= 40000;
    assert.ok(Math.abs(m1 - exact.mean[a]) < 5 * Math.sqrt(exact.cov[a * p + a] / 40000), `mean ${a}: ${m1} vs ${exact.mean[a]}`);
    for (let b = 0; b < p; b++) {
      let c = 0;
      for (let i = 0; i < 40000; i++) c += (w[i * p + a] - exact.mean[a]) * (w[i * p + b] - exact.mean[b]);
      c /= 40000;
      const se = Math.sqrt((exact.cov[a * p + a] * exact.cov[b * p + b] + exact.cov[a * p + b] ** 2) / 40000);
      assert.ok(Math.abs(c - exact.cov[a * p + b]) < 5 * se, `cov ${a},${b}: ${c} vs ${exact.cov[a * p + b]} (se ${se})`);
    }
  }
});

test("laplace evidence: the analytic gradient in log beta and log sigma matches central finite differences", async () => {
  for (const hessian of ["diag", "kron", "full"] as const) {
    const model = makeModel(mlp({ inputShape: [3], hidden: [5], outputDim: 1 }), gaussian({ sigma: 0.7, noise: "learned" }), fanInPrior(2));
    const params = model.init(key(12));
    const batch = data(15, [3], 1, 41);
    const { state, blocks } = pass(model, params, batch, { hessian });
    const pr = laplaceProblem(model, 15, params, blocks, state, { hessian, rank: 4, curvature: "ggn", priorOpt: "marglik" });
    const h = { logBeta: pr.betaStart.map((b, i) => Math.log(b) + 0.3 * (i + 1)), logSigma: -0.2 };
    const e = logEvidence(pr.problem, h);
    const eps = 1e-5;
    h.logBeta.forEach((_, i) => {
      const up = logEvidence(pr.problem, { ...h, logBeta: h.logBeta.map((v, j) => (j === i ? v + eps : v)) }).value;
      const dn = logEvidence(pr.problem, { ...h, logBeta: h.logBeta.map((v, j) => (j === i ? v - eps : v)) }).value;
      const fd = (up - dn) / (2 * eps);
      assert.ok(Math.abs(fd - e.dLogBeta[i]) < 1e-5 * Math.max(1, Math.abs(fd)), `${hessian} d/dlogbeta_${i}: ${e.dLogBeta[i]} vs fd ${fd}`);
    });
    const up = logEvidence(pr.problem, { ...h, logSigma: h.logSigma + eps }).value;
    const dn = logEvidence(pr.problem, { ...h, logSigma: h.logSigma - eps }).value;
    const fd = (up - dn) / (2 * eps);
    assert.ok(Math.abs(fd - e.dLogSigma) < 1e-5 * Math.max(1, Math.abs(fd)), `${hessian} d/dlogsigma: ${e.dLogSigma} vs fd ${fd}`);
  }
});

test("laplace links: probit and bridge against 100,000-draw Monte Carlo of the same Gaussian logits; mc link within Monte Carlo error", async () => {
  // Two inputs with known logit means and covariances, pushed through glmPredict's link code by a
  // posterior whose output factor is given directly: a last-layer-only model with identity features.
  const mu = [
    [1.0, -0.5, 0.2],
    [2.0, 0.0, -1.0],
  ];
  const sd = [0.5, 1.0];
  const n = 2;
  const k = 3;
  const u = gaussianFrom(lcg(99));
  const mc = mu.map((m, i) => {
    const acc = [0, 0, 0];
    const draws = 100000;
    for (let t = 0; t < draws; t++) {
      const f = m.map((v) => v + sd[i] * u());
      const mx = Math.max(...f);
      const e = f.map((v) => Math.exp(v - mx));
      const s = e.reduce((a, b) => a + b);
      e.forEach((v, c) => (acc[c] += v / s / draws));
    }
    return acc;
  });
  // A linear model 3 -> 3 at w = 0, b = mu_i is not per-input; instead a one-hot input per example and
  // w = mu rows: f(x_i) = x_i W with x_i = e_i, so J Sigma J^T = sd^2 I when W's posterior sd is sd_i on row i.
  const model = makeModel(mlp({ inputShape: [2], hidden: [], outputDim: k }), categorical(), fanInPrior(1));
  const params: Params = { net: { layers: [{ w: fromHost(Float32Array.from(mu.flat()), [2, k]), b: np.zeros([k]) }] } };
  const blocks = selectBlocks(params, "net\\.layers\\.0\\.w");
  const factors = uploadBlockFactors(blocks, [{ sd: Float64Array.from({ length: 2 * k }, (_, i) => sd[Math.floor(i / k)]) }]);
  const x = fromHost(Float32Array.from([1, 0, 0, 1]), [n, 2]);
  for (const [link, tol] of [
    ["probit", 0.03],
    ["bridge", 0.1],
    ["mc", 0.01],
  ] as const) {
    const [probs, ent] = glmPredict(model, params, blocks, factors, link, 20000, 1, key(5), x.ref);
    ent.dispose();
    const p = await toHost(probs);
    const err = Math.max(...mc.flat().map((v, i) => Math.abs(v - p[i])));
    assert.ok(err < tol, `${link}: max |p - MC| = ${err} (tolerance ${tol}); got ${[...p].map((v) => v.toFixed(3))} vs ${mc.flat().map((v) => v.toFixed(3))}`);
  }
  // The output covariance itself is sd_i^2 I.
  const { d } = outputFactors(model, params, blocks, factors, x.ref);
  const cov = await toHost(np.matmul(d[0].ref, d[0].transpose([0, 2, 1])));
  for (let i = 0; i < n; i++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) assert.ok(Math.abs(cov[(i * k + a) * k + b] - (a === b ? sd[i] ** 2 : 0)) < 1e-5);
});

test("laplace: batchCholesky factors a batch of SPD matrices", async () => {
  const a = fromHost(Float32Array.from([4, 2, 0.4, 2, 3, 0.5, 0.4, 0.5, 2, 1, 0, 0, 0, 1, 0, 0, 0, 1]), [2, 3, 3]);
  const l = batchCholesky(a.ref);
  const back = await toHost(np.matmul(l.ref, l.transpose([0, 2, 1])));
  const want = await toHost(a);
  assert.ok(relErr(back, want) < 1e-6);
});

test("laplace: the Monte Carlo Fisher (one drawn label per example) averages to the GGN", async () => {
  const model = tinyMlp();
  const params = model.init(key(8));
  const batch = data(6, [3], 3, 61);
  const exact = Float64Array.from(await toHost(pass(model, params, batch, { hessian: "full" }).state.acc[0].ref));
  const p = Math.round(Math.sqrt(exact.length));
  const reps = 400;
  const sum = new Float64Array(p * p);
  const sumSq = new Float64Array(p * p);
  const m = create(model, 6, { ...OPTS, hessian: "full", curvature: "mc" });
  for (let r = 0; r < reps; r++) {
    const s0 = m.init(key(1), keep(params));
    const [s1, info] = m.step(key(100 + r), s0, { x: batch.x.ref, y: batch.y.ref });
    info.loss.dispose();
    const v = await toHost(s1.acc[0].ref);
    v.forEach((x, i) => {
      sum[i] += x;
      sumSq[i] += x * x;
    });
  }
  // Every entry within 5 standard errors of its exact value (the draws are independent across repetitions).
  let worst = 0;
  for (let i = 0; i < p * p; i++) {
    const mean = sum[i] / reps;
    const se = Math.sqrt(Math.max(sumSq[i] / reps - mean * mean, 0) / reps) + 1e-7;
    worst = Math.max(worst, Math.abs(mean - exact[i]) / se);
  }
  assert.ok(worst < 5, `largest deviation ${worst.toFixed(2)} standard errors`);
});

test("laplace --from: starts from a saved MAP's weights (and a safetensors file of them), skipping the warm start", async () => {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { runFit } = await import("../src/jobs/fit.js");
  const { loadPosterior } = await import("../src/io/posterior.js");
  const { writeSafetensors } = await import("../src/io/safetensors-file.js");
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-laplace-"));
  try {
    const base = { data: "toy:two-moons", model: "mlp:8", seed: 3, quiet: true } as const;
    const map = await runFit({ ...base, method: "map", options: { epochs: 30 }, out: join(dir, "map") });
    const saved = await loadPosterior(join(dir, "map"));
    const lap = await runFit({ ...base, method: "laplace", options: { hessian: "full", subset: "all" }, from: join(dir, "map"), out: join(dir, "lap") });
    assert.equal(lap.meta.methodOptions.warmStart, undefined);
    assert.equal(lap.meta.methodOptions.from, join(dir, "map"));
    // The Laplace posterior's mode is the MAP's weights, bit for bit.
    const loaded = await loadPosterior(join(dir, "lap"));
    for (const leaf of saved.samples) {
      const t = loaded.variational!.find((v) => v.name === `mode.${leaf.name}`)!;
      assert.deepEqual([...t.data], [...leaf.data], leaf.name);
    }
    // The same from a safetensors file of the leaves.
    const file = join(dir, "weights.safetensors");
    await writeSafetensors(file, Object.fromEntries(saved.samples.map((l) => [l.name, { dtype: "F32", shape: [...l.shape], data: l.data }])));
    const lap2 = await runFit({ ...base, method: "laplace", options: { hessian: "full", subset: "all" }, from: file });
    assert.equal(lap2.metrics.nll, lap.metrics.nll);
    assert.ok(lap.metrics.accuracy >= map.metrics.accuracy - 1e-9, "the linearised predictive keeps the MAP's predictions' argmax here");
    await assert.rejects(runFit({ ...base, model: "mlp:9", method: "laplace", from: join(dir, "map") }), /holds a mlp:8 posterior, but the fit's model is mlp:9/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--prior-scale evidence: MAP rounds with the prior tuned per layer by the Laplace evidence, recorded with the posterior", async () => {
  const { runFit } = await import("../src/jobs/fit.js");
  const lines: string[] = [];
  const r = await runFit({ data: "toy:regression-gap", model: "mlp:8", method: "map", seed: 1, options: { epochs: 30 }, priorSelect: { by: "evidence", rounds: 3, epochs: 30 }, onSelect: (l) => lines.push(l) });
  const sel = r.meta.prior.selected;
  assert.ok(sel && sel.by === "evidence");
  assert.equal(sel.rounds.length, 3);
  assert.equal(lines.length, 3);
  // The prior the final fit used is the last round's choice, one finite positive scale per layer.
  assert.deepEqual(r.meta.prior.perLayer, [...sel.chosen]);
  assert.equal(sel.chosen.length, 2);
  for (const s of sel.chosen) assert.ok(Number.isFinite(s) && s > 0);
  // The evidence is tuned, so it does not fall from round to round by more than the MAP's own change moves it.
  assert.ok(sel.rounds.every((x) => Number.isFinite(x.logEvidence)));
});

test("laplace refuses a structure that would not fit in memory, saying how much it needs and what fits", () => {
  // 20,000 inputs: KFAC's input factor alone is 20,001^2 values.
  const model = makeModel(mlp({ inputShape: [20000], hidden: [2], outputDim: 2 }), categorical(), fanInPrior(1));
  const params = model.init(key(1));
  const m = create(model, 100, { ...OPTS, hessian: "kron", subset: "all" });
  assert.throws(() => m.init(key(2), keep(params)), /--hessian kron: the curvature of the chosen weights needs 7\.45 GiB .*--hessian diag needs 0\.00 GiB/);
  const f = create(model, 100, { ...OPTS, hessian: "full", subset: "all" });
  assert.throws(() => f.init(key(2), keep(params)), /--hessian full: the chosen weights number 40008; a full precision needs .* GiB .*limit 3000 weights/);
});

/** Runs sampled Laplace over `batch` (all of it per step) for the plan's steps; returns the final state. */
async function sampledRun(model: Model, params: Params, batch: Batch, o: Partial<SampledLaplaceOptions>): Promise<{ state: SampledState; method: ReturnType<typeof createSampled> }> {
  const opts: SampledLaplaceOptions = { epochs: 0, lr: 1e-3, subset: "all", samples: 500, emSteps: 0, solveEpochs: 300, link: "probit", temperature: 1, featureNorm: "none", priorStructure: "layer", ...o };
  const n = batch.x.shape[0];
  const method = createSampled(model, n, 1, opts);
  const step = compile((k: JArray, st: SampledState, b: Batch) => method.step(k, st, b), { consume: [0, 1, 2] });
  let state = method.init(key(1), keep(params));
  for (let i = 0; i < sampledEpochs(opts, 1); i++) {
    const [s2, info] = step(key(100 + i), state, { x: batch.x.ref, y: batch.y.ref });
    info.loss.dispose();
    state = s2;
    // Realise the lazy state now and then (a long chain of pending steps overflows the stack).
    if (i % 25 === 24) await sync(state as never);
  }
  step.dispose();
  return { state, method };
}

/** Host P = G + A (float64) on the tiny MLP at `params` over `x`, with A the model prior's precisions. */
async function exactPrecision(model: Model, params: Params, blocks: readonly Block[], x: JArray, rho: readonly number[] = []): Promise<{ prec: Float64Array; p: number; a: Float64Array; ggn: Float64Array }> {
  const jac = await jacobians(model, params, blocks, x);
  const ggn = exactGgn(model, jac);
  const p = jac.p;
  const tau = blockPrecisions(model, params, blocks);
  const layers = [...new Set(blocks.map((b) => b.layer))];
  const a = new Float64Array(p);
  let off = 0;
  blocks.forEach((b, i) => {
    a.fill(tau[i] * (rho[layers.indexOf(b.layer)] ?? 1), off, off + b.size);
    off += b.size;
  });
  const prec = Float64Array.from(ggn);
  for (let i = 0; i < p; i++) prec[i * p + i] += a[i];
  return { prec, p, a, ggn };
}

/** The state's `[K, ...]` block arrays as K host rows of the flattened chosen weights. */
async function sampleRows(xs: readonly JArray[], k: number): Promise<Float64Array[]> {
  const host = await Promise.all(xs.map((x) => toHost(x.ref)));
  const sizes = host.map((h) => h.length / k);
  return Array.from({ length: k }, (_, r) => {
    const row = new Float64Array(sizes.reduce((s, v) => s + v, 0));
    let off = 0;
    host.forEach((h, i) => {
      row.set(h.subarray(r * sizes[i], (r + 1) * sizes[i]), off);
      off += sizes[i];
    });
    return row;
  });
}

test("sampled Laplace (mlp 3-4-3): each sample is the exact minimiser P^-1 (A^1/2 eps0 + c), and the samples' mean and covariance match N(0, P^-1)", async () => {
  const model = tinyMlp();
  const params = model.init(key(6));
  const batch = data(12, [3], 3, 61);
  const blocks = selectBlocks(params, "all");
  const K = 2000;
  const { state } = await sampledRun(model, params, batch, { samples: K, solveEpochs: 400 });
  const { prec, p, a } = await exactPrecision(model, params, blocks, batch.x.ref);
  const l = cholesky(prec, p);
  const z = await sampleRows(state.zbar, K);
  const eps0 = await sampleRows(state.eps0, K);
  const c = await sampleRows(state.c, K);
  // The solver: every sample against the exact solve of its own right-hand side (S = 1 epoch step: c needs no rescaling).
  let worst = 0;
  for (let r = 0; r < K; r++) {
    const b = new Float64Array(p);
    for (let j = 0; j < p; j++) b[j] = Math.sqrt(a[j]) * eps0[r][j] + c[r][j];
    const exact = solveLowerTranspose(l, p, solveLower(l, p, b, 1), 1);
    worst = Math.max(worst, relErr(z[r], exact));
  }
  assert.ok(worst < 2e-3, `sampled Laplace: worst sample's relative error against the exact solve ${worst}`);
  // The distribution: mean 0 and covariance P^-1 within Monte Carlo error (K = 2,000: a covariance entry's
  // standard error is about sqrt(2 / K) = 3% of the largest variance; 5 standard errors allowed).
  const id = new Float64Array(p * p);
  for (let i = 0; i < p; i++) id[i * p + i] = 1;
  const cov = solveLowerTranspose(l, p, solveLower(l, p, id, p), p);
  const { meanErr, covErr } = gaussianErrors(sampleMoments(z).mean, sampleMoments(z).cov, new Float64Array(p), cov);
  assert.ok(meanErr < 5 / Math.sqrt(K), `sample mean error ${meanErr} sd`);
  assert.ok(covErr < 5 * Math.sqrt(2 / K), `sample covariance error ${covErr}`);
  free(state);
});

test("sampled Laplace EM (mlp 3-4-3): the per-layer prior precisions reach the exact maximiser of the linearised Laplace evidence", async () => {
  const model = tinyMlp();
  const params = model.init(key(7));
  const batch = data(12, [3], 3, 62);
  const blocks = selectBlocks(params, "all");
  const layers = [...new Set(blocks.map((b) => b.layer))];
  const tau = blockPrecisions(model, params, blocks);
  const w2 = await Promise.all(blocks.map(async (b) => (await toHost(leafAt(params, b.path).ref)).reduce((s, v) => s + v * v, 0)));
  const norms = layers.map((l) => blocks.reduce((s, b, i) => (b.layer === l ? s + tau[i] * w2[i] : s), 0));
  // log evidence in rho up to a constant: -1/2 sum_j a_j w_j^2 + 1/2 sum_j log a_j - 1/2 log det(G + A).
  const { ggn, p } = await exactPrecision(model, params, blocks, batch.x.ref);
  const layerOf = blocks.flatMap((b) => Array.from({ length: b.size }, () => layers.indexOf(b.layer)));
  const tauOf = blocks.flatMap((b, i) => Array.from({ length: b.size }, () => tau[i]));
  const evidence = (rho: number[]) => {
    const prec = Float64Array.from(ggn);
    let v = 0;
    for (let j = 0; j < p; j++) {
      const a = tauOf[j] * rho[layerOf[j]];
      prec[j * p + j] += a;
      v += 0.5 * Math.log(a);
    }
    layers.forEach((_, l) => (v -= 0.5 * rho[l] * norms[l]));
    return v - 0.5 * logDetCholesky(cholesky(prec, p), p);
  };
  // The exact maximiser by MacKay's fixed point rho_l = tr_l(P^-1 G) / sum_{w in l} tau w^2, iterated to convergence.
  let exact = layers.map(() => 1);
  for (let it = 0; it < 500; it++) {
    const prec = Float64Array.from(ggn);
    for (let j = 0; j < p; j++) prec[j * p + j] += tauOf[j] * exact[layerOf[j]];
    const l = cholesky(prec, p);
    const pg = solveLowerTranspose(l, p, solveLower(l, p, ggn, p), p);
    const gamma = layers.map(() => 0);
    for (let j = 0; j < p; j++) gamma[layerOf[j]] += pg[j * p + j];
    exact = gamma.map((g, l) => g / norms[l]);
  }
  // It is the maximiser: the evidence's derivative in each log rho_l vanishes, and it beats nearby points.
  for (const l of layers.keys()) {
    const h = 1e-4;
    const up = exact.map((r, i) => (i === l ? r * Math.exp(h) : r));
    const down = exact.map((r, i) => (i === l ? r * Math.exp(-h) : r));
    assert.ok(Math.abs((evidence(up) - evidence(down)) / (2 * h)) < 1e-5, `d evidence / d log rho_${l} at the fixed point`);
    assert.ok(evidence(exact) > evidence(exact.map((r, i) => (i === l ? r * 1.2 : r))));
  }
  const K = 1000;
  const { state } = await sampledRun(model, params, batch, { samples: K, emSteps: 8, solveEpochs: 60 });
  const rho = Array.from(await toHost(state.rho.ref));
  // Monte Carlo error: gamma_l from K = 1,000 samples over one step; 10% relative allowed.
  rho.forEach((r, l) => assert.ok(Math.abs(r - exact[l]) / exact[l] < 0.1, `layer ${l}: EM rho ${r} against the exact maximiser ${exact[l]} (all: ${rho} vs ${exact})`));
  free(state);
});

test("sampled Laplace EM with --prior-structure scalar (mlp 3-5-1, learned noise): one rho for every layer reaches the exact joint maximiser over one multiplier and sigma^2", async () => {
  const { model, params, batch, ggn, p, r2, a0, w } = await priorStructureCase();
  const exact = evidenceMaximiser(ggn, p, new Array<number>(p).fill(0), a0, w, { r2, n: 16, s2: 0.25 });
  const { state, method } = await sampledRun(model, params, batch, { samples: 1000, emSteps: 8, solveEpochs: 40, priorStructure: "scalar" });
  const rho = Array.from(await toHost(state.rho.ref));
  const s2 = (await toHost(state.sig2.ref))[0];
  // Monte Carlo error of sum_l gamma_l from K = 1,000 samples over one step; 10% relative allowed.
  assert.equal(rho[0], rho[1]);
  assert.ok(Math.abs(rho[0] - exact.rho[0]) / exact.rho[0] < 0.1, `EM rho ${rho[0]} against the exact maximiser ${exact.rho[0]}`);
  assert.ok(Math.abs(s2 - exact.s2) / exact.s2 < 0.1, `EM sigma^2 ${s2} against ${exact.s2}`);
  assert.throws(() => createSampled(model, 16, 1, { epochs: 0, lr: 1e-3, subset: "all", samples: 4, emSteps: 1, solveEpochs: 1, link: "probit", temperature: 1, featureNorm: "none", priorStructure: "diagonal" }), /--prior-structure diagonal is not supported/);
  const post = method.posterior(state);
  const sc = (post.options as { priorScales: number[] }).priorScales;
  assert.ok(Math.abs(sc[0] - sc[1]) < 1e-6 * sc[0], `one scale for both layers: ${sc}`);
  post.dispose();
  free(state);
});

/**
 * The maximiser of the linearised Laplace evidence at the mode over rho_l (A = diag(rho_l a0_w)) and, with
 * `noise` (residual sum of squares r2 over n outputs), the Gaussian noise variance s2:
 * log Z = -r2 / (2 s2) - n/2 log(2 pi s2) - 1/2 sum_w a_w w_w^2 + 1/2 sum_w log a_w - 1/2 log det(G / s2 + A),
 * with G the GGN at unit noise. Found by iterating the stationarity conditions (MacKay's fixed point:
 * rho_l = tr_l(P^-1 G / s2) / sum_{w in l} a0_w w^2, s2 = (r2 + tr(P^-1 G)) / n) to convergence in float64;
 * checked to be stationary by central differences.
 */
function evidenceMaximiser(ggn: Float64Array, p: number, layerOf: readonly number[], a0: readonly number[], w: readonly number[], noise?: { r2: number; n: number; s2: number }): { rho: number[]; s2: number } {
  const layers = Math.max(...layerOf) + 1;
  const norms = Array.from({ length: layers }, (_, l) => a0.reduce((acc, a, j) => (layerOf[j] === l ? acc + a * w[j] * w[j] : acc), 0));
  const evidence = (rho: number[], s2: number) => {
    const prec = ggn.map((g) => g / s2);
    let v = noise ? -noise.r2 / (2 * s2) - (noise.n / 2) * Math.log(2 * Math.PI * s2) : 0;
    for (let j = 0; j < p; j++) {
      const a = a0[j] * rho[layerOf[j]];
      prec[j * p + j] += a;
      v += 0.5 * Math.log(a) - 0.5 * a * w[j] * w[j];
    }
    return v - 0.5 * logDetCholesky(cholesky(prec, p), p);
  };
  let rho = Array.from({ length: layers }, () => 1);
  let s2 = noise?.s2 ?? 1;
  for (let it = 0; it < 2000; it++) {
    const prec = ggn.map((g) => g / s2);
    for (let j = 0; j < p; j++) prec[j * p + j] += a0[j] * rho[layerOf[j]];
    const l = cholesky(prec, p);
    const pg = solveLowerTranspose(l, p, solveLower(l, p, ggn, p), p); // P^-1 G
    const gamma = rho.map(() => 0);
    let tr = 0;
    for (let j = 0; j < p; j++) {
      gamma[layerOf[j]] += pg[j * p + j] / s2;
      tr += pg[j * p + j];
    }
    rho = gamma.map((g, l) => g / norms[l]);
    if (noise) s2 = (noise.r2 + tr) / noise.n;
  }
  const h = 1e-4;
  for (let l = 0; l < layers; l++) {
    const up = rho.map((r, i) => (i === l ? r * Math.exp(h) : r));
    const down = rho.map((r, i) => (i === l ? r * Math.exp(-h) : r));
    assert.ok(Math.abs((evidence(up, s2) - evidence(down, s2)) / (2 * h)) < 1e-5, `d evidence / d log rho_${l} at the fixed point`);
  }
  if (noise) assert.ok(Math.abs((evidence(rho, s2 * Math.exp(h)) - evidence(rho, s2 * Math.exp(-h))) / (2 * h)) < 1e-5, "d evidence / d log s2 at the fixed point");
  return { rho, s2 };
}

test("sampled Laplace EM with the g-prior (mlp 3-4-3): the first epoch's diag G matches the exact GGN's diagonal, and rho reaches the exact evidence maximiser under A = rho_l a0 with a0 the g-prior", async () => {
  const { G_PRIOR_FLOOR } = await import("../src/laplace/sampled.js");
  const model = tinyMlp();
  const params = model.init(key(8));
  const batch = data(12, [3], 3, 63);
  const blocks = selectBlocks(params, "all");
  const layers = [...new Set(blocks.map((b) => b.layer))];
  const K = 1000;
  const { state } = await sampledRun(model, params, batch, { samples: K, emSteps: 8, solveEpochs: 60, featureNorm: "g-prior" });
  const { ggn, p } = await exactPrecision(model, params, blocks, batch.x.ref);
  // diag G from K = 1,000 draws of J^T L eps per example (one step per epoch: no rescaling): Monte Carlo
  // error about sqrt(2 / K) = 4.5% of an entry; 15% of the largest allowed.
  const dg = Array.from((await Promise.all(state.dg.map((x) => toHost(x.ref)))).flatMap((h) => Array.from(h)));
  const exactDiag = Array.from({ length: p }, (_, j) => ggn[j * p + j]);
  assert.ok(relErr(dg, exactDiag) < 0.15, `diag G: ${relErr(dg, exactDiag)}`);
  // The g-prior's base precisions by their definition, from the run's own diag G estimate.
  const layerOf = blocks.flatMap((b) => Array.from({ length: b.size }, () => layers.indexOf(b.layer)));
  const tau = blockPrecisions(model, params, blocks);
  const tauOf = blocks.flatMap((b, i) => Array.from({ length: b.size }, () => tau[i]));
  // a0_w = c_l max(s_w, f sbar_l) with c_l = n_l / sum_{w in l} s_w / tau_w, so sum_w s_w / a0_w (unfloored) is the model prior's.
  const sum = (xs: number[], l: number) => xs.reduce((acc, v, j) => acc + (layerOf[j] === l ? v : 0), 0);
  const count = (l: number) => layerOf.filter((x) => x === l).length;
  const c = layers.map((_, l) => count(l) / sum(dg.map((g, j) => g / tauOf[j]), l));
  const a0 = dg.map((g, j) => c[layerOf[j]] * Math.max(g, (G_PRIOR_FLOOR * sum(dg, layerOf[j])) / count(layerOf[j])));
  const w = Array.from((await Promise.all(blocks.map((b) => toHost(leafAt(params, b.path).ref)))).flatMap((h) => Array.from(h)));
  const exact = evidenceMaximiser(ggn, p, layerOf, a0, w);
  const rho = Array.from(await toHost(state.rho.ref));
  // Monte Carlo error: gamma_l from K = 1,000 samples over one step; 10% relative allowed.
  rho.forEach((r, l) => assert.ok(Math.abs(r - exact.rho[l]) / exact.rho[l] < 0.1, `layer ${l}: EM rho ${r} against the exact maximiser ${exact.rho[l]} (all: ${rho} vs ${exact.rho})`));
  free(state);
});

test("sampled Laplace EM with a learned Gaussian noise (mlp 3-5-1): rho and sigma^2 reach the exact joint evidence maximiser; the posterior predicts with that sigma", async () => {
  const model = makeModel(mlp({ inputShape: [3], hidden: [5], outputDim: 1 }), gaussian({ sigma: 0.5, noise: "learned" }), fanInPrior(2));
  const params = model.init(key(9));
  const batch = data(16, [3], 1, 64);
  const blocks = selectBlocks(params, "all");
  const layers = [...new Set(blocks.map((b) => b.layer))];
  const K = 1000;
  const y = await toHost(batch.y.ref);
  const { state, method } = await sampledRun(model, params, batch, { samples: K, emSteps: 12, solveEpochs: 60 });
  const jac = await jacobians(model, params, blocks, batch.x.ref);
  const ggn = exactGgn(model, jac); // unit noise
  const p = jac.p;
  let r2 = 0;
  for (let i = 0; i < 16; i++) r2 += (y[i] - jac.out[i]) ** 2;
  const layerOf = blocks.flatMap((b) => Array.from({ length: b.size }, () => layers.indexOf(b.layer)));
  const tau = blockPrecisions(model, params, blocks);
  const a0 = blocks.flatMap((b, i) => Array.from({ length: b.size }, () => tau[i]));
  const w = Array.from((await Promise.all(blocks.map((b) => toHost(leafAt(params, b.path).ref)))).flatMap((h) => Array.from(h)));
  const exact = evidenceMaximiser(ggn, p, layerOf, a0, w, { r2, n: 16, s2: 0.25 });
  const rho = Array.from(await toHost(state.rho.ref));
  const s2 = (await toHost(state.sig2.ref))[0];
  // Monte Carlo error of gamma_l and of tr(J P^-1 J^T) from K = 1,000 samples over one step; 10% relative allowed.
  rho.forEach((r, l) => assert.ok(Math.abs(r - exact.rho[l]) / exact.rho[l] < 0.1, `layer ${l}: EM rho ${r} against the exact maximiser ${exact.rho[l]}`));
  assert.ok(Math.abs(s2 - exact.s2) / exact.s2 < 0.1, `EM sigma^2 ${s2} against the exact maximiser ${exact.s2}`);
  assert.ok(Math.abs(s2 - 0.25) / 0.25 > 0.2, `the noise moved from its start (0.25): ${s2}`);
  const post = method.posterior(state);
  const o = post.options as { sigma: number; sigmaHistory: number[] };
  assert.ok(Math.abs(o.sigma - Math.sqrt(s2)) < 1e-6 && o.sigmaHistory.length === 12 && Math.abs(o.sigmaHistory[11] - o.sigma) < 1e-6);
  post.dispose();
  free(state);
});

test("sampled Laplace EM keeps a layer's rho, and says so, when its gamma estimate is impossible (outside (0, n_l)): one-step solves from the prior draw on 200 examples", async () => {
  const model = makeModel(mlp({ inputShape: [3], hidden: [5], outputDim: 1 }), gaussian({ sigma: 0.5, noise: "fixed" }), fanInPrior(2));
  const params = model.init(key(10));
  const batch = data(200, [3], 1, 65);
  // The iterate of a one-step solve is the prior draw z ~ N(0, A^-1), where <z, G z> estimates
  // tr(G A^-1) (in the thousands here) instead of tr(P^-1 G) < 26.
  const { state, method } = await sampledRun(model, params, batch, { samples: 16, emSteps: 2, solveEpochs: 1 });
  const rho = Array.from(await toHost(state.rho.ref));
  const kept = Array.from(await toHost(state.emKept.ref));
  assert.deepEqual(kept, [2, 2], `EM steps kept per layer: ${kept}`);
  assert.deepEqual(rho, [1, 1]);
  const post = method.posterior(state);
  const w = (post.options as { warnings?: string[] }).warnings ?? [];
  assert.equal(w.length, 2);
  assert.match(w[0], /on layer 0, 2 of 2 steps estimated gamma = tr\(P\^-1 G\) outside \(0, 20\)/);
  post.dispose();
  free(state);
});

test("laplace --prior-opt grid: the validation NLL of each prior multiplier equals evaluate's NLL of that posterior on the held-out part, and the lowest wins; the driver holds out 20% of the training data", async () => {
  const { evaluatePosterior } = await import("../src/jobs/evaluate.js");
  const { fit, validationScorer } = await import("../src/run/driver.js");
  const { spec: laplaceSpec, PRIOR_GRID } = await import("../src/laplace/laplace.js");
  const hostData = async (b: Batch, shape: number[]) => ({ x: await toHost(b.x), xShape: shape, y: b.y.dtype === "int32" ? Int32Array.from(await toHost(b.y)) : await toHost(b.y), n: b.x.shape[0] });
  for (const task of ["classification", "regression"] as const) {
    const cls = task === "classification";
    const makeM = (scale: number) =>
      cls ? makeModel(mlp({ inputShape: [3], hidden: [4], outputDim: 3 }), categorical(), fanInPrior(scale)) : makeModel(mlp({ inputShape: [3], hidden: [5], outputDim: 1 }), gaussian({ sigma: 0.6, noise: "fixed" }), fanInPrior(scale));
    const model = makeM(2);
    const params = model.init(key(42));
    const train = data(24, [3], cls ? 3 : 1, 43);
    const val = await hostData(data(15, [3], cls ? 3 : 1, 44), [3]);
    const o = { ...OPTS, hessian: "full" as const, priorOpt: "grid" as const };
    const m = create(model, 24, o, validationScorer(model, val));
    const [s1, info] = m.step(key(45), m.init(key(46), keep(params)), { x: train.x.ref, y: train.y.ref });
    info.loss.dispose();
    const post = m.posterior(s1);
    const g = (post.options as { grid: { multipliers: number[]; validationNll: number[] } }).grid;
    assert.equal(g.validationNll.length, PRIOR_GRID.length);
    const best = g.validationNll.indexOf(Math.min(...g.validationNll));
    const split = { task, ...(cls ? { numClasses: 3 } : {}), train: val, test: val, source: "test", splitInfo: {} };
    // The kept posterior, and the posteriors of three multipliers rebuilt with the prior scaled (--prior-opt none), scored by evaluate.
    const kept = (await evaluatePosterior(model, post, split)).nll;
    assert.ok(Math.abs(kept - g.validationNll[best]) < 1e-5 * Math.max(1, Math.abs(kept)), `${task}: kept posterior NLL ${kept} vs grid ${g.validationNll[best]}`);
    post.dispose();
    for (const i of [0, best, PRIOR_GRID.length - 1]) {
      const scaled = makeM(2 / Math.sqrt(PRIOR_GRID[i]));
      const mi = create(scaled, 24, { ...o, priorOpt: "none" });
      const [si, inf] = mi.step(key(45), mi.init(key(46), keep(params)), { x: train.x.ref, y: train.y.ref });
      inf.loss.dispose();
      const pi = mi.posterior(si);
      free(si);
      const nll = (await evaluatePosterior(scaled, pi, split)).nll;
      pi.dispose();
      assert.ok(Math.abs(nll - g.validationNll[i]) < 1e-4 * Math.max(1, Math.abs(nll)), `${task}, multiplier ${PRIOR_GRID[i]}: ${nll} vs grid ${g.validationNll[i]}`);
    }
    free(s1);
    free(train);
    // Through the driver: 20% of 40 training examples held out, the grid on them, then the refit on all 40
    // at the chosen multiplier: the same posterior as --prior-opt none with the prior precision times it.
    const all = await hostData(data(40, [3], cls ? 3 : 1, 47), [3]);
    const r = await fit(key(48), laplaceSpec, model, all, { batchSize: 8, initParams: params, options: { hessian: "full", priorOpt: "grid", subset: "all" } });
    const ro = r.posterior.options as { grid: { validationSize: number; multipliers: number[]; validationNll: number[] }; priorOpt: string; priorScales: number[] };
    assert.equal(ro.grid.validationSize, 8);
    assert.equal(ro.priorOpt, "grid");
    const chosen = ro.grid.multipliers[ro.grid.validationNll.indexOf(Math.min(...ro.grid.validationNll))];
    assert.equal(r.options.priorMultiplier, chosen);
    assert.equal(r.options.priorOpt, "grid");
    const direct = await fit(key(49), laplaceSpec, model, all, { batchSize: 8, initParams: params, options: { hessian: "full", priorOpt: "none", priorMultiplier: chosen, subset: "all", temperature: 1 } });
    const xs = data(6, [3], cls ? 3 : 1, 50).x;
    const a1 = r.posterior.predict!(key(51), xs.ref);
    const a2 = direct.posterior.predict!(key(51), xs);
    // (the two fits shuffle their batches differently: the curvature sums agree to rounding)
    const e12 = relErr(await toHost(a1.kind === "categorical" ? a1.probs : a1.means), await toHost(a2.kind === "categorical" ? a2.probs : a2.means));
    assert.ok(e12 < 1e-5, `${task}: refit against the direct fit at the chosen multiplier: ${e12}`);
    free([a1.kind === "categorical" ? a1.meanEntropy : a1.stds, a2.kind === "categorical" ? a2.meanEntropy : a2.stds]);
    assert.ok(relErr(ro.priorScales, (direct.posterior.options as { priorScales: number[] }).priorScales) < 1e-9);
    direct.posterior.dispose();
    if (direct.sampled !== direct.posterior) direct.sampled.dispose();
    r.posterior.dispose();
    if (r.sampled !== r.posterior) r.sampled.dispose();
    free(params);
  }
});

/** A learned-noise regression net at its initial weights, one curvature pass per structure, and the exact GGN. */
async function priorStructureCase() {
  const model = makeModel(mlp({ inputShape: [3], hidden: [5], outputDim: 1 }), gaussian({ sigma: 0.5, noise: "learned" }), fanInPrior(2));
  const params = model.init(key(9));
  const batch = data(16, [3], 1, 64);
  const blocks = selectBlocks(params, "all");
  const layers = [...new Set(blocks.map((b) => b.layer))];
  const jac = await jacobians(model, params, blocks, batch.x.ref);
  const y = await toHost(batch.y.ref);
  let r2 = 0;
  for (let i = 0; i < 16; i++) r2 += (y[i] - jac.out[i]) ** 2;
  const tau = blockPrecisions(model, params, blocks);
  const a0 = blocks.flatMap((b, i) => Array.from({ length: b.size }, () => tau[i]));
  const w = Array.from((await Promise.all(blocks.map((b) => toHost(leafAt(params, b.path).ref)))).flatMap((h) => Array.from(h)));
  const layerOf = blocks.flatMap((b) => Array.from({ length: b.size }, () => layers.indexOf(b.layer)));
  return { model, params, batch, blocks, ggn: exactGgn(model, jac), p: jac.p, r2, a0, w, layerOf };
}

test("laplace --prior-structure scalar (diag, kron): one multiplier for every layer, stationary along it and in sigma, between the model prior's evidence and the per-layer optimum", async () => {
  const { model, params, batch, blocks } = await priorStructureCase();
  for (const hessian of ["diag", "kron"] as const) {
    const { state } = pass(model, params, batch, { hessian });
    const o = { ...OPTS, hessian, priorOpt: "marglik" as const };
    const scalar = laplaceFactors(model, 16, params, blocks, state, { ...o, priorStructure: "scalar" });
    const layer = laplaceFactors(model, 16, params, blocks, state, { ...o, priorStructure: "layer" });
    const none = laplaceFactors(model, 16, params, blocks, state, { ...o, priorOpt: "none" });
    const sc = scalar.options.priorScales;
    // fanInPrior(2): every layer starts at scale 2, so one multiplier keeps them equal; the per-layer optimum does not.
    assert.ok(Math.abs(sc[0] - sc[1]) < 1e-9 * sc[0], `${hessian}: scalar scales ${sc}`);
    assert.ok(Math.abs(layer.options.priorScales[0] - layer.options.priorScales[1]) > 1e-3, `${hessian}: per-layer scales ${layer.options.priorScales}`);
    const ls = scalar.options.logEvidence!;
    assert.ok(ls > none.options.logEvidence! && ls < layer.options.logEvidence!, `${hessian}: log Z start ${none.options.logEvidence} < scalar ${ls} < per layer ${layer.options.logEvidence}`);
    // Stationary: central differences of the per-layer problem along the tied direction and in log sigma.
    const pr = laplaceProblem(model, 16, params, blocks, state, { hessian, rank: 4, curvature: "ggn", priorOpt: "marglik", priorStructure: "layer" });
    const logSigma = Math.log(scalar.options.sigma!);
    const logBeta = sc.map((s) => -2 * Math.log(s));
    const at = (db: number, ds: number) => logEvidence(pr.problem, { logBeta: logBeta.map((b) => b + db), logSigma: logSigma + ds }).value;
    assert.ok(Math.abs(at(0, 0) - ls) < 1e-9 * Math.abs(ls), `${hessian}: the saved log Z ${ls} is the problem's ${at(0, 0)}`);
    const h = 1e-4;
    assert.ok(Math.abs((at(h, 0) - at(-h, 0)) / (2 * h)) < 1e-4, `${hessian}: d log Z / d log rho = ${(at(h, 0) - at(-h, 0)) / (2 * h)}`);
    assert.ok(Math.abs((at(0, h) - at(0, -h)) / (2 * h)) < 1e-4, `${hessian}: d log Z / d log sigma = ${(at(0, h) - at(0, -h)) / (2 * h)}`);
    [scalar, layer, none].forEach((f) => free(f.factors));
    free(state);
  }
});

test("laplace weightwise evidence: at per-layer precisions it equals the eigenvalue form (diag and full), and the full structure's log det is the exact GGN's", async () => {
  const { model, params, batch, blocks, ggn, p, r2, w } = await priorStructureCase();
  for (const hessian of ["diag", "full"] as const) {
    const { state } = pass(model, params, batch, { hessian });
    const pr = laplaceProblem(model, 16, params, blocks, state, { hessian, rank: 4, curvature: "ggn", priorOpt: "marglik", priorStructure: "diagonal" });
    const ww = pr.weightwise!;
    assert.equal(ww.curvature.kind, hessian === "diag" ? "diag" : "dense");
    // At tau = beta c (betas 1.7x and 0.6x the start, sigma 0.8) both forms give one number.
    const logBeta = hessian === "full" ? [Math.log(pr.betaStart[0] * 1.7)] : pr.betaStart.map((b, i) => Math.log(b * (i ? 0.6 : 1.7)));
    const tau = Float64Array.from(ww.group, (g, t) => Math.exp(logBeta[hessian === "full" ? 0 : g]) * (hessian === "full" ? pr.tauStart[t] / pr.betaStart[0] : ww.pattern[t]));
    const e1 = weightwiseEvidence(ww, tau, Math.log(0.8));
    const e2 = logEvidence(pr.problem, { logBeta, logSigma: Math.log(0.8) }).value;
    // The eigenvalue form clips round-off negative eigenvalues of the float32 curvature at 0: relative 1e-7.
    assert.ok(Math.abs(e1.value - e2) < 1e-7 * Math.abs(e2), `${hessian}: weightwise ${e1.value} vs eigenvalue form ${e2}`);
    if (hessian === "full") {
      // Against the exact GGN from the full Jacobian: -r2 / 2 s2 - n/2 log(2 pi s2) - 1/2 sum tau w^2 + 1/2 sum log tau - 1/2 log det(G / s2 + T).
      const prec = ggn.map((g) => g / 0.64);
      let v = -r2 / (2 * 0.64) - 8 * Math.log(2 * Math.PI * 0.64);
      for (let j = 0; j < p; j++) {
        prec[j * p + j] += tau[j];
        v += 0.5 * Math.log(tau[j]) - 0.5 * tau[j] * w[j] * w[j];
      }
      v -= 0.5 * logDetCholesky(cholesky(prec, p), p);
      assert.ok(Math.abs(e1.value - v) < REL * Math.abs(v), `full: ${e1.value} vs the exact GGN's ${v}`);
    }
    free(state);
  }
});

test("laplace --prior-structure diagonal and layer weight by weight: the tuned precisions are stationary points of the evidence (finite differences), full layer matches MacKay's fixed point on the exact GGN, and the factors are (r C + diag(tau))^-1", async () => {
  const { model, params, batch, blocks, ggn, p, r2, a0, w, layerOf } = await priorStructureCase();
  for (const [hessian, structure] of [["diag", "diagonal"], ["full", "diagonal"], ["full", "layer"]] as const) {
    const { state } = pass(model, params, batch, { hessian });
    const o = { ...OPTS, hessian, priorOpt: "marglik" as const, priorStructure: structure };
    const pr = laplaceProblem(model, 16, params, blocks, state, o);
    const ww = pr.weightwise!;
    const start = { tau: pr.tauStart, logSigma: Math.log(modeSigma(model, params)!) };
    const m = maximiseWeightwise(ww, start, { structure, tuneSigma: true });
    const at = (t: Float64Array, ls = m.logSigma!) => weightwiseEvidence(ww, t, ls).value;
    const h = 1e-4;
    if (structure === "diagonal") {
      // Each interior precision (not at its bound) is stationary.
      let interior = 0;
      for (let i = 0; i < p; i++) {
        const ratio = m.tau[i] / pr.tauStart[i];
        if (ratio < 1e-7 || ratio > 1e7) continue;
        interior++;
        const up = Float64Array.from(m.tau);
        const dn = Float64Array.from(m.tau);
        up[i] *= Math.exp(h);
        dn[i] *= Math.exp(-h);
        const d = (at(up) - at(dn)) / (2 * h);
        assert.ok(Math.abs(d) < 1e-4, `${hessian} ${structure}: d log Z / d log tau_${i} = ${d}`);
      }
      assert.ok(interior > p / 2, `${hessian}: ${interior} of ${p} precisions interior`);
    } else {
      // Against MacKay's fixed point on the exact GGN (evidenceMaximiser): rho_l = beta_l / beta0_l and sigma^2.
      const exact = evidenceMaximiser(ggn, p, layerOf, a0, w, { r2, n: 16, s2: 0.25 });
      for (let i = 0; i < p; i++) assert.ok(Math.abs(m.tau[i] / a0[i] - exact.rho[layerOf[i]]) < 1e-3 * exact.rho[layerOf[i]], `full layer: tau_${i} / a0 = ${m.tau[i] / a0[i]} vs rho ${exact.rho[layerOf[i]]}`);
      assert.ok(Math.abs(Math.exp(2 * m.logSigma!) - exact.s2) < 1e-3 * exact.s2, `full layer: sigma^2 ${Math.exp(2 * m.logSigma!)} vs ${exact.s2}`);
    }
    const ds = (at(m.tau, m.logSigma! + h) - at(m.tau, m.logSigma! - h)) / (2 * h);
    assert.ok(Math.abs(ds) < 1e-4, `${hessian} ${structure}: d log Z / d log sigma = ${ds}`);
    // It improves on the per-layer eigenvalue optimum's evidence (diagonal) or matches the exact one (layer).
    const lf = laplaceFactors(model, 16, params, blocks, state, o);
    assert.ok(Math.abs(lf.options.logEvidence! - m.value) < 1e-9 * Math.abs(m.value), `${hessian} ${structure}: saved log Z ${lf.options.logEvidence} vs ${m.value}`);
    assert.ok(Math.abs(lf.options.sigma! - Math.exp(m.logSigma!)) < 1e-9);
    if (structure === "diagonal") {
      const perLayer = laplaceFactors(model, 16, params, blocks, state, { ...o, priorStructure: "layer" });
      assert.ok(m.value >= perLayer.options.logEvidence! - 1e-6, `${hessian}: per weight ${m.value} >= per layer ${perLayer.options.logEvidence}`);
      free(perLayer.factors);
    }
    // Sigma from the saved factors = (G / sigma^2 + diag(tau))^-1 from the exact GGN (diag: its diagonal).
    const sigma = await hostSigma(lf.factors, blocks, p);
    const s2 = Math.exp(2 * m.logSigma!);
    const prec = ggn.map((g, t) => (hessian === "diag" && Math.floor(t / p) !== t % p ? 0 : g / s2));
    for (let i = 0; i < p; i++) prec[i * p + i] += m.tau[i];
    const l = cholesky(prec, p);
    const eye = new Float64Array(p * p);
    for (let i = 0; i < p; i++) eye[i * p + i] = 1;
    const exactSigma = solveLowerTranspose(l, p, solveLower(l, p, eye, p), p);
    assert.ok(relErr(sigma, exactSigma) < 1e-3, `${hessian} ${structure}: Sigma rel err ${relErr(sigma, exactSigma)}`);
    free(lf.factors);
    free(state);
  }
});

test("laplace --prior-structure: diagonal refuses kron and lowrank, layer refuses lowrank, when the evidence tunes the prior", () => {
  const model = tinyMlp();
  assert.throws(() => create(model, 10, { ...OPTS, hessian: "kron", priorOpt: "marglik", priorStructure: "diagonal" }), /--prior-structure diagonal needs --hessian diag or full/);
  assert.throws(() => create(model, 10, { ...OPTS, hessian: "lowrank", priorOpt: "online", priorStructure: "layer" }), /--hessian lowrank tunes one scalar/);
});
