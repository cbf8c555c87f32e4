import { test } from "node:test";
import assert from "node:assert/strict";
import { fromHost, grad, key, np, random, toHost, tree, type JArray } from "../src/core/engine.js";
import { conv3x3, maxPool2 } from "../src/models/cnn.js";
import { categorical, gaussian, HETEROSCEDASTIC_MIN_SIGMA } from "../src/models/likelihood.js";
import { logDensity, makeModel, type Params } from "../src/models/model.js";
import { fanIn, gaussianLogPrior, layerList, leafScales } from "../src/models/prior.js";
import { networkFromSpec } from "../src/models/spec.js";

/** Naive NHWC valid 3x3 convolution, for reference. */
function convRef(x: Float32Array, [n, h, w, c]: number[], k: Float32Array, b: Float32Array, co: number) {
  const ho = h - 2, wo = w - 2;
  const out = new Float64Array(n * ho * wo * co);
  for (let a = 0; a < n; a++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) for (let o = 0; o < co; o++) {
    let s = b[o];
    for (let di = 0; di < 3; di++) for (let dj = 0; dj < 3; dj++) for (let q = 0; q < c; q++) {
      s += x[((a * h + i + di) * w + j + dj) * c + q] * k[((di * 3 + dj) * c + q) * co + o];
    }
    out[((a * ho + i) * wo + j) * co + o] = s;
  }
  return out;
}

test("conv3x3 (im2col + matmul) equals the naive convolution", async () => {
  const shape = [2, 7, 6, 3];
  const x = random.normal(key(1), shape);
  const w = random.normal(key(2), [3, 3, 3, 4]);
  const b = random.normal(key(3), [4]);
  const [hx, hw, hb] = await Promise.all([toHost(x.ref), toHost(w.ref), toHost(b.ref)]);
  const got = await toHost(conv3x3(x, w, b));
  const want = convRef(hx, shape, hw, hb, 4);
  assert.equal(got.length, 2 * 5 * 4 * 4);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `index ${i}: ${got[i]} vs ${want[i]}`);
});

test("maxPool2 takes 2x2 maxima and drops an odd edge", async () => {
  // one image 3x5, one channel: values 0..14 row-major
  const x = fromHost(Float32Array.from({ length: 15 }, (_, i) => i), [1, 3, 5, 1]);
  const got = await toHost(maxPool2(x));
  assert.deepEqual(Array.from(got), [6, 8]); // max of rows 0-1 x cols 0-1 = 6, cols 2-3 = 8
});

test("MLP and CNN specs build networks with the documented shapes", async () => {
  const m = networkFromSpec("mlp:5,4:tanh", [3], 2);
  const p = m.init(key(0));
  assert.deepEqual((tree.leaves(p) as JArray[]).map((a) => a.shape), [[3, 5], [5], [5, 4], [4], [4, 2], [2]]);
  const out = m.apply(p, np.ones([7, 3]));
  assert.deepEqual(out.shape, [7, 2]);
  out.dispose();
  const c = networkFromSpec("cnn:4,6:8", [1, 28, 28], 10);
  const pc = c.init(key(0));
  const shapes = (tree.leaves(pc) as JArray[]).map((a) => a.shape);
  assert.deepEqual(shapes, [[3, 3, 1, 4], [4], [3, 3, 4, 6], [6], [150, 8], [8], [8, 10], [10]]);
  const oc = c.apply(pc, np.ones([2, 1, 28, 28]));
  assert.deepEqual(oc.shape, [2, 10]);
  oc.dispose();
  assert.throws(() => networkFromSpec("mlp:4,x", [3], 2), /mlp:4,x.*positive integers.*'x'/);
  assert.throws(() => networkFromSpec("rnn:4", [3], 2), /unknown model 'rnn'/);
  assert.throws(() => networkFromSpec("cnn:8", [13], 1), /needs image inputs/);
});

test("logDensity = log prior + N x mean log-likelihood, divided by T (hand-computed)", async () => {
  // A linear model f(x) = x w + b with w = [[0.5], [-1]], b = [0.25]; Gaussian likelihood sigma = 2;
  // prior scale 3 on all three weights; batch of two points; N = 10; T = 0.5.
  const net = networkFromSpec("mlp:", [2], 1);
  const model = makeModel(net, gaussian({ sigma: 2 }), { kind: "gaussian", scale: 3 });
  const params: Params = { net: { layers: [{ w: fromHost([0.5, -1], [2, 1]), b: fromHost([0.25], [1]) }] } };
  const x = [[1, 2], [-1, 0.5]];
  const y = [0, 1];
  const f = x.map(([a, c]) => 0.5 * a - c + 0.25); // [-1.25, -0.75]
  const ll = f.map((fi, i) => -0.5 * Math.log(2 * Math.PI * 4) - (y[i] - fi) ** 2 / 8);
  const lp = [0.5, -1, 0.25].reduce((s, v) => s - v * v / 18 - 0.5 * Math.log(2 * Math.PI * 9), 0);
  const want = (lp + 10 * (ll[0] + ll[1]) / 2) / 0.5;
  const ld = logDensity(model, { dataSize: 10, temperature: 0.5 });
  const got = await toHost(ld(params, { x: fromHost(x.flat(), [2, 2]), y: fromHost(y, [2], "float32") }));
  assert.ok(Math.abs(got[0] - want) < 1e-4 * Math.abs(want), `${got[0]} vs ${want}`);
});

test("categorical log-likelihood and its gradient match the softmax formulas", async () => {
  const lik = categorical();
  const logits = [[1, 2, 0.5], [0, 0, 0]];
  const labels = [1, 2];
  const got = await toHost(lik.logLik(fromHost(logits.flat(), [2, 3]), fromHost(labels, [2], "int32"), undefined));
  logits.forEach((l, i) => {
    const lse = Math.log(l.reduce((s, v) => s + Math.exp(v), 0));
    assert.ok(Math.abs(got[i] - (l[labels[i]] - lse)) < 1e-5);
  });
  // d/df log softmax(f)_y = onehot(y) - softmax(f)
  const g = await toHost(grad((f: JArray) => lik.logLik(f, fromHost([1], [1], "int32"), undefined).sum())(fromHost([1, 2, 0.5], [1, 3])));
  const z = [1, 2, 0.5].map(Math.exp);
  const zs = z[0] + z[1] + z[2];
  [0, 1, 0].forEach((o, j) => assert.ok(Math.abs(g[j] - (o - z[j] / zs)) < 1e-5));
});

test("learned Gaussian noise: log sigma is a parameter with its N(log sigma0, 1) prior", async () => {
  const model = makeModel(networkFromSpec("mlp:", [1], 1), gaussian({ sigma: 1, noise: "learned" }), { kind: "gaussian", scale: 1 });
  const p = model.init(key(0));
  assert.ok(p.lik);
  const ls = Math.log(0.5);
  const params: Params = { net: { layers: [{ w: fromHost([0], [1, 1]), b: fromHost([0], [1]) }] }, lik: { logSigma: fromHost([ls], []) } };
  const ld = logDensity(model, { dataSize: 1 });
  const got = (await toHost(ld(params, { x: fromHost([0], [1, 1]), y: fromHost([1], [1], "float32") })))[0];
  const want = -0.5 * Math.log(2 * Math.PI) * 2 /* w, b at 0 */ + (-0.5 * Math.log(2 * Math.PI * 0.25) - 1 / 0.5) + (-0.5 * ls * ls - 0.5 * Math.log(2 * Math.PI));
  assert.ok(Math.abs(got - want) < 1e-4, `${got} vs ${want}`);
  tree.dispose(p);
});

test("heteroscedastic Gaussian: sigma(x) = softplus(rho + softplus^-1(sigma0 - m)) + m from a second output (hand-computed)", async () => {
  const m = HETEROSCEDASTIC_MIN_SIGMA;
  const lik = gaussian({ sigma: 0.8, noise: "heteroscedastic" });
  assert.equal(lik.outputDim(), 2);
  assert.equal(lik.initParams(), undefined);
  const sp = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
  const shift = Math.log(Math.expm1(0.8 - m));
  // rho = 0 gives sigma0; very negative rho the floor m; a large rho stays finite (no exp overflow).
  const out = [[0.5, 0], [-1, -200], [2, 300], [0, 1.5]];
  const y = [1, -1, 0, 0.25];
  const sig = out.map(([, r]) => sp(r + shift) + m);
  assert.ok(Math.abs(sig[0] - 0.8) < 1e-12);
  const got = await toHost(lik.logLik(fromHost(out.flat(), [4, 2]), fromHost(y, [4], "float32"), undefined));
  out.forEach(([mu], i) => {
    const want = -0.5 * Math.log(2 * Math.PI) - Math.log(sig[i]) - (y[i] - mu) ** 2 / (2 * sig[i] ** 2);
    assert.ok(Math.abs(got[i] - want) < 1e-4 * Math.max(1, Math.abs(want)), `row ${i}: ${got[i]} vs ${want}`);
  });
  const [mu, sd] = lik.meanStd!(fromHost(out.flat(), [4, 2]), undefined);
  assert.deepEqual(Array.from(await toHost(mu)), [0.5, -1, 2, 0]);
  (await toHost(sd)).forEach((v, i) => assert.ok(Math.abs(v - sig[i]) < 1e-5 * sig[i], `sd ${i}: ${v} vs ${sig[i]}`));
  // The gradient is finite everywhere; in rho it is (z^2 - 1) sigmoid(rho + shift) / sigma (row 3 checked).
  const g = await toHost(grad((o: JArray) => lik.logLik(o, fromHost(y, [4], "float32"), undefined).sum())(fromHost(out.flat(), [4, 2])));
  assert.ok(g.every(Number.isFinite), `gradient ${Array.from(g)}`);
  const z2 = ((y[3] - 0) / sig[3]) ** 2;
  const dsig = 1 / (1 + Math.exp(-(1.5 + shift)));
  assert.ok(Math.abs(g[7] - (z2 - 1) * dsig / sig[3]) < 1e-4, `${g[7]} vs ${(z2 - 1) * dsig / sig[3]}`);
  assert.throws(() => gaussian({ sigma: m / 2, noise: "heteroscedastic" }), /heteroscedastic sigma must be >/);
});

test("per-layer prior scales", async () => {
  const p = { layers: [{ w: fromHost([1, 1], [2, 1]), b: fromHost([0], [1]) }, { w: fromHost([2], [1, 1]), b: fromHost([0], [1]) }] };
  const got = (await toHost(gaussianLogPrior({ kind: "gaussian", scale: 1, perLayer: [1, 0.5] }, p)))[0];
  const want = -(1 + 1) / 2 - 3 * 0.5 * Math.log(2 * Math.PI) - 4 / (2 * 0.25) - 2 * 0.5 * Math.log(2 * Math.PI * 0.25);
  assert.ok(Math.abs(got - want) < 1e-4, `${got} vs ${want}`);
  assert.throws(() => gaussianLogPrior({ kind: "gaussian", scale: 1, perLayer: [1] }, { layers: [] }), /perLayer has 1 scales but the network has 0 layers/);
});

test("fan-in prior: weights N(0, s_l^2 / fanIn), biases N(0, s_l^2) (hand-computed)", async () => {
  const params = () => ({ layers: [{ w: fromHost([1, 1], [2, 1]), b: fromHost([0], [1]) }, { w: fromHost([2], [1, 1]), b: fromHost([0], [1]) }] });
  const got = (await toHost(gaussianLogPrior({ kind: "gaussian", scale: 1, perLayer: [1, 0.5], scaling: "fan-in" }, params())))[0];
  const lnN = (x: number, v: number) => -(x * x) / (2 * v) - 0.5 * Math.log(2 * Math.PI * v);
  // Layer 0: two weights of fan-in 2 (variance 1 / 2), a bias of variance 1; layer 1: fan-in 1, variance 0.25.
  const want = 2 * lnN(1, 0.5) + lnN(0, 1) + lnN(2, 0.25) + lnN(0, 0.25);
  assert.ok(Math.abs(got - want) < 1e-4, `${got} vs ${want}`);
  assert.equal(fanIn([3, 3, 2, 4]), 18);
  assert.equal(fanIn([7]), 1);
  // Without scaling (the iid prior) the same parameters have variance s_l^2 throughout.
  const iid = (await toHost(gaussianLogPrior({ kind: "gaussian", scale: 1, perLayer: [1, 0.5] }, params())))[0];
  assert.ok(Math.abs(iid - (2 * lnN(1, 1) + lnN(0, 1) + lnN(2, 0.25) + lnN(0, 0.25))) < 1e-4);
});

test("fan-in prior on a CLI network: a draw from the prior keeps pre-activations O(1) (s = sqrt 2, ReLU)", async () => {
  // The scale argument of models/prior.ts: with s^2 = 2 and ReLU, every layer's pre-activations keep the
  // variance of the first (Var x ~ mean x^2 of the inputs, here 1), so the outputs are O(1), not O(sqrt(fanIn)).
  const net = networkFromSpec("mlp:400,400", [784], 10);
  const spec = { kind: "gaussian" as const, scale: Math.SQRT2, scaling: "fan-in" as const };
  const template = net.init(key(0));
  const scales = leafScales(spec, layerList(template));
  tree.dispose(template);
  const layers = scales.map((sc, l) => {
    const [fi, fo] = l === 0 ? [784, 400] : l === 1 ? [400, 400] : [400, 10];
    // leaves of a dense layer: w, then b.
    return { w: random.normal(key(20 + l), [fi, fo]).mul(sc[0]), b: random.normal(key(10 + l), [fo]).mul(sc[1]) };
  });
  assert.deepEqual(scales.map((s) => s.map((v) => +v.toFixed(5))), [[0.05051, 1.41421], [0.07071, 1.41421], [0.07071, 1.41421]]);
  const x = random.normal(key(30), [256, 784]);
  const out = await toHost(net.apply({ layers }, x));
  const v = out.reduce((a, b) => a + b * b, 0) / out.length;
  // Expected: Var h1 = 2 (weights) + 2 (bias) = 4, E relu(h1)^2 = 2, Var h2 = 2 * 2 + 2 = 6, Var out = 2 * 3 + 2 = 8
  // (one weight draw: within a factor 2); the iid N(0, 1) prior would give ~ 784 * 400 * 400 / 4.
  assert.ok(v > 4 && v < 16, `output variance ${v}`);
});
