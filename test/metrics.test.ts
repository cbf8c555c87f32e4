import { test } from "node:test";
import assert from "node:assert/strict";
import {
  accuracy,
  auroc,
  averageProbs,
  brier,
  calibrationBins,
  classificationMetrics,
  ece,
  logMeanExp,
  logPredictiveFromLogProbs,
  nll,
  oodAuroc,
  predictiveEntropy,
  predictiveFromLogProbs,
  regressionMetrics,
} from "../src/eval/metrics.js";

function close(actual: number, expected: number, tol = 1e-9, what = ""): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected}, got ${actual}`);
}

// 4 examples, 3 classes.
//   row 0: [0.70, 0.20, 0.10]  y=0  argmax 0 -> correct, conf 0.7
//   row 1: [0.10, 0.60, 0.30]  y=2  argmax 1 -> wrong,   conf 0.6
//   row 2: [0.25, 0.25, 0.50]  y=2  argmax 2 -> correct, conf 0.5
//   row 3: [0.10, 0.80, 0.10]  y=1  argmax 1 -> correct, conf 0.8
const P4 = new Float64Array([0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.25, 0.25, 0.5, 0.1, 0.8, 0.1]);
const Y4 = new Int32Array([0, 2, 2, 1]);

test("accuracy: 3 of 4 correct", () => {
  assert.equal(accuracy(P4, Y4, 3), 0.75);
  assert.equal(accuracy(new Float32Array(P4), Y4, 3), 0.75);
});

test("accuracy: argmax ties go to the lowest class index", () => {
  // [0.4, 0.4, 0.2]: argmax = 0, so label 0 is correct and label 1 is not.
  const p = new Float64Array([0.4, 0.4, 0.2]);
  assert.equal(accuracy(p, new Int32Array([0]), 3), 1);
  assert.equal(accuracy(p, new Int32Array([1]), 3), 0);
});

test("nll: mean -log p(y)", () => {
  // p(y) = 0.7, 0.3, 0.5, 0.8
  // -ln: 0.356675 + 1.203973 + 0.693147 + 0.223144 = 2.476939 ; / 4 = 0.619235
  close(nll(P4, Y4, 3), 0.6192346200347059, 1e-12);
  close(nll(P4, Y4, 3), -(Math.log(0.7) + Math.log(0.3) + Math.log(0.5) + Math.log(0.8)) / 4, 1e-15);
});

test("nll: probability 0 is clamped at 1e-12", () => {
  // p(y) = 0 -> -ln(1e-12) = 27.631021
  const v = nll(new Float64Array([1, 0]), new Int32Array([1]), 2);
  close(v, -Math.log(1e-12), 1e-12);
  close(v, 27.631021115928547, 1e-9);
});

test("brier: mean over examples of sum_k (p_k - onehot_k)^2", () => {
  // row 0: (0.7-1)^2 + 0.2^2 + 0.1^2       = 0.09 + 0.04 + 0.01       = 0.14
  // row 1: 0.1^2 + 0.6^2 + (0.3-1)^2       = 0.01 + 0.36 + 0.49       = 0.86
  // row 2: 0.25^2 + 0.25^2 + (0.5-1)^2     = 0.0625 + 0.0625 + 0.25   = 0.375
  // row 3: 0.1^2 + (0.8-1)^2 + 0.1^2       = 0.01 + 0.04 + 0.01       = 0.06
  // mean = (0.14 + 0.86 + 0.375 + 0.06) / 4 = 1.435 / 4 = 0.35875
  close(brier(P4, Y4, 3), 0.35875, 1e-12);
  // perfect one-hot -> 0; confidently wrong -> 2
  assert.equal(brier(new Float64Array([0, 1]), new Int32Array([1]), 2), 0);
  assert.equal(brier(new Float64Array([1, 0]), new Int32Array([1]), 2), 2);
});

test("ece (15 bins): 4-example case, confidences on bin edges 9/15 and 12/15", () => {
  // conf 0.7 -> 0.7*15 = 10.5 -> bin 10 = (10/15, 11/15]
  // conf 0.6 = 9/15 exactly (same double) -> upper edge of bin 8 = (8/15, 9/15]
  // conf 0.5 -> 7.5 -> bin 7 = (7/15, 8/15]
  // conf 0.8 = 12/15 exactly -> upper edge of bin 11 = (11/15, 12/15]
  const bins = calibrationBins(P4, Y4, 3);
  const nonEmpty = [...bins.count].flatMap((c, i) => (c > 0 ? [i] : []));
  assert.deepEqual(nonEmpty, [7, 8, 10, 11]);
  assert.equal(bins.accuracy[8], 0);
  assert.equal(bins.confidence[8], 0.6);
  assert.ok(Number.isNaN(bins.accuracy[0]));
  // Every bin holds one example: ECE = (1/4)(|1-0.7| + |0-0.6| + |1-0.5| + |1-0.8|)
  //                                  = (0.3 + 0.6 + 0.5 + 0.2) / 4 = 1.6 / 4 = 0.4
  close(ece(P4, Y4, 3), 0.4, 1e-12);
});

test("ece (4 bins): constructed bins with edges", () => {
  // bins: b0 = [0, 0.25], b1 = (0.25, 0.5], b2 = (0.5, 0.75], b3 = (0.75, 1]
  //   r0 [0.5,   0.5  ] y=0: pred 0 (tie -> first) correct, conf 0.5   -> b1 (upper edge)
  //   r1 [0.25,  0.75 ] y=1: correct,                       conf 0.75  -> b2 (upper edge)
  //   r2 [0.75,  0.25 ] y=1: wrong,                         conf 0.75  -> b2
  //   r3 [0.375, 0.625] y=0: wrong,                         conf 0.625 -> b2
  //   r4 [0,     1    ] y=1: correct,                       conf 1     -> b3 (upper edge)
  //   r5 [0.875, 0.125] y=0: correct,                       conf 0.875 -> b3
  // b1: n=1, acc 1,   conf 0.5                          -> (1/6) |1 - 0.5|          = 0.5/6
  // b2: n=3, acc 1/3, conf (0.75+0.75+0.625)/3 = 2.125/3 -> (3/6) |1/3 - 2.125/3| = 1.125/6
  // b3: n=2, acc 1,   conf (1+0.875)/2 = 0.9375          -> (2/6) |1 - 0.9375|     = 0.125/6
  // ECE = (0.5 + 1.125 + 0.125) / 6 = 1.75 / 6 = 0.291666...
  const p = new Float32Array([0.5, 0.5, 0.25, 0.75, 0.75, 0.25, 0.375, 0.625, 0, 1, 0.875, 0.125]);
  const y = new Int32Array([0, 1, 1, 0, 1, 0]);
  const b = calibrationBins(p, y, 2, 4);
  assert.deepEqual([...b.count], [0, 1, 3, 2]);
  close(b.accuracy[2], 1 / 3, 1e-15);
  close(b.confidence[2], 2.125 / 3, 1e-15);
  close(b.confidence[3], 0.9375, 1e-15);
  close(ece(p, y, 2, 4), 1.75 / 6, 1e-12);
});

test("ece: confidence exactly 1/3 lands in bin 4 = (4/15, 5/15]", () => {
  const t = 1 / 3;
  const b = calibrationBins(new Float64Array([t, t, t]), new Int32Array([0]), 3);
  assert.equal(b.count[4], 1);
  // single example, correct, conf 1/3 -> ECE = |1 - 1/3| = 2/3
  close(ece(new Float64Array([t, t, t]), new Int32Array([0]), 3), 2 / 3, 1e-12);
});

test("predictiveEntropy: hand values", () => {
  // [1,0,0] -> 0 ; [0.5,0.5,0] -> ln 2 (0 log 0 = 0) ; uniform -> ln 3
  const t = 1 / 3;
  const h = predictiveEntropy(new Float64Array([1, 0, 0, 0.5, 0.5, 0, t, t, t]), 3);
  assert.ok(h instanceof Float64Array);
  assert.equal(h.length, 3);
  assert.equal(h[0], 0);
  close(h[1], Math.LN2, 1e-15);
  close(h[2], Math.log(3), 1e-15);
});

test("auroc: perfect, reversed, all tied", () => {
  assert.equal(auroc([3, 4], [1, 2]), 1);
  assert.equal(auroc([1, 2], [3, 4]), 0);
  assert.equal(auroc([5, 5], [5, 5, 5]), 0.5);
});

test("auroc: ties count 1/2", () => {
  // pos [1, 2, 3], neg [2, 2, 0]; pairs (pos vs each neg):
  //   1: <2, <2, >0          -> 0 + 0 + 1     = 1
  //   2: =2, =2, >0          -> 0.5 + 0.5 + 1 = 2
  //   3: >2, >2, >0          -> 3
  // U = 6, AUROC = 6 / (3*3) = 2/3
  close(auroc(new Float64Array([1, 2, 3]), new Float32Array([2, 2, 0])), 2 / 3, 1e-15);
  // order of inputs does not matter
  close(auroc([3, 1, 2], [0, 2, 2]), 2 / 3, 1e-15);
});

test("auroc: matches O(P N) brute force on a pseudo-random set with many ties", () => {
  let state = 12345;
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return Math.floor((state / 2147483648) * 20) / 4; // coarse grid -> many ties
  };
  const pos = Array.from({ length: 57 }, next);
  const neg = Array.from({ length: 43 }, next);
  let u = 0;
  for (const a of pos) for (const b of neg) u += a > b ? 1 : a === b ? 0.5 : 0;
  close(auroc(pos, neg), u / (pos.length * neg.length), 1e-12);
});

test("oodAuroc: entropy as score, OOD positive", () => {
  // in:  [1, 0] -> H = 0 ;  [0.9, 0.1] -> H = 0.325083
  // out: [0.5, 0.5] -> H = ln 2 = 0.693147 ; [0.9, 0.1] -> H = 0.325083 (tie with in-row 1)
  // pairs (out vs in): 0.693>0 (1), 0.693>0.325 (1), 0.325>0 (1), 0.325=0.325 (0.5) -> 3.5 / 4
  const pin = new Float64Array([1, 0, 0.9, 0.1]);
  const pout = new Float64Array([0.5, 0.5, 0.9, 0.1]);
  assert.equal(oodAuroc(pin, pout, 2), 0.875);
  assert.equal(oodAuroc(pout, pin, 2), 0.125);
});

test("classificationMetrics bundles the others", () => {
  const m = classificationMetrics(P4, Y4, 3);
  assert.equal(m.accuracy, 0.75);
  assert.equal(m.error, 0.25);
  close(m.nll, 0.6192346200347059, 1e-12);
  close(m.brier, 0.35875, 1e-12);
  close(m.ece, 0.4, 1e-12);
});

test("k = 1 is degenerate but defined", () => {
  const m = classificationMetrics(new Float32Array([1, 1, 1]), new Int32Array([0, 0, 0]), 1);
  assert.deepEqual(m, { accuracy: 1, error: 0, nll: 0, brier: 0, ece: 0 });
  assert.deepEqual([...predictiveEntropy(new Float32Array([1, 1]), 1)], [0, 0]);
});

test("averageProbs: list of samples and stacked array", () => {
  // sample 0: [0.2, 0.8, 1.0, 0.0]; sample 1: [0.6, 0.4, 0.5, 0.5]
  // mean: [(0.2+0.6)/2, (0.8+0.4)/2, (1+0.5)/2, (0+0.5)/2] = [0.4, 0.6, 0.75, 0.25]
  const a = new Float64Array([0.2, 0.8, 1, 0]);
  const b = new Float64Array([0.6, 0.4, 0.5, 0.5]);
  const expected = [0.4, 0.6, 0.75, 0.25];
  const r1 = averageProbs([a, b]);
  const r2 = averageProbs(new Float64Array([...a, ...b]), 2);
  expected.forEach((v, i) => {
    close(r1[i], v, 1e-15);
    close(r2[i], v, 1e-15);
  });
  assert.throws(() => averageProbs([a, new Float64Array(3)]), /sample 1 has length 3/);
  assert.throws(() => averageProbs([]), /S = 0/);
  assert.throws(() => averageProbs(new Float64Array(5), 2), /not a multiple of numSamples/);
  assert.throws(() => averageProbs([a, new Float64Array([NaN, 0, 0, 0])]), /NaN/);
});

test("logMeanExp and predictiveFromLogProbs", () => {
  // log((e^0 + e^{ln 3}) / 2) = log(4/2) = ln 2
  close(logMeanExp([0, Math.log(3)]), Math.LN2, 1e-15);
  assert.equal(logMeanExp([-Infinity, -Infinity]), -Infinity);
  // same average as averageProbs when given log of the probabilities
  const logp = new Float64Array([0.2, 0.8, 0.6, 0.4].map(Math.log)); // S=2, n=1, k=2
  const p = predictiveFromLogProbs(logp, 2, 1, 2);
  close(p[0], 0.4, 1e-15);
  close(p[1], 0.6, 1e-15);
});

test("logPredictiveFromLogProbs: no underflow", () => {
  // S=2, n=1, k=2; class 0 log-probs -1000 and -1001 (exp underflows to 0 in float64):
  // log((e^-1000 + e^-1001)/2) = -1000 + log((1 + e^-1)/2) = -1000 + log(0.683940) = -1000.379885
  const lp = logPredictiveFromLogProbs(new Float64Array([-1000, 0, -1001, 0]), 2, 1, 2);
  close(lp[0], -1000 + Math.log((1 + Math.exp(-1)) / 2), 1e-9);
  close(lp[0], -1000.3798854930417, 1e-9);
  close(lp[1], 0, 1e-15);
  assert.throws(() => predictiveFromLogProbs(new Float32Array(3), 2, 1, 2), /logp.length \(3\) != S \* n \* k/);
});

test("regressionMetrics: S = 2 mixture by hand", () => {
  // scale: original = 10 + 2 z.  S = 2, n = 2, arrays are [S, n].
  // means (z): s0 = [0, 1],   s1 = [1, -1]  -> original s0 = [10, 12], s1 = [12, 8]
  // stds  (z): s0 = [1, 0.5], s1 = [1, 0.5] -> original s0 = [2, 1],   s1 = [2, 1]
  // y = [12, 9]
  // mixture means: [(10+12)/2, (12+8)/2] = [11, 10]; errors [1, -1] -> rmse = sqrt((1+1)/2) = 1
  // point 0 (y=12): N(12; 10, 2^2) = e^{-1/2} / (2 sqrt(2 pi)), N(12; 12, 2^2) = 1 / (2 sqrt(2 pi))
  //   ll0 = -ln 2 - 0.5 ln(2 pi) + ln((1 + e^{-0.5}) / 2)
  //       = -0.693147 - 0.918939 + ln(0.803265) = -0.693147 - 0.918939 - 0.219069 = -1.831156
  // point 1 (y=9): N(9; 12, 1) = e^{-4.5}/sqrt(2 pi), N(9; 8, 1) = e^{-0.5}/sqrt(2 pi)
  //   ll1 = -0.918939 + ln((0.011109 + 0.606531) / 2) = -0.918939 - 1.174997 = -2.093936
  // ll = (-1.831156 - 2.093936) / 2 = -1.962546
  const means = new Float32Array([0, 1, 1, -1]);
  const stds = new Float32Array([1, 0.5, 1, 0.5]);
  const r = regressionMetrics(means, stds, [12, 9], { mean: 10, std: 2 });
  close(r.rmse, 1, 1e-12);
  const ll0 = -Math.LN2 - 0.5 * Math.log(2 * Math.PI) + Math.log((1 + Math.exp(-0.5)) / 2);
  const ll1 = -0.5 * Math.log(2 * Math.PI) + Math.log((Math.exp(-4.5) + Math.exp(-0.5)) / 2);
  close(r.ll, (ll0 + ll1) / 2, 1e-12);
  close(r.ll, -1.9625458479956324, 1e-9);
  assert.equal(r.nll, -r.ll);
});

test("regressionMetrics: far-out target stays finite (log-sum-exp)", () => {
  // one sample, z = 100 standard deviations: ll = -0.5 ln(2 pi) - ln(1) - 0.5 * 100^2 = -5000.918939
  const r = regressionMetrics(new Float64Array([0]), new Float64Array([1]), [100], { mean: 0, std: 1 });
  close(r.ll, -0.5 * Math.log(2 * Math.PI) - 5000, 1e-9);
});

test("errors: empty inputs", () => {
  const empty = new Float64Array(0);
  const noLabels = new Int32Array(0);
  assert.throws(() => accuracy(empty, noLabels, 3), /accuracy: probs is empty \(n = 0/);
  assert.throws(() => nll(empty, noLabels, 3), /n = 0/);
  assert.throws(() => brier(empty, noLabels, 3), /n = 0/);
  assert.throws(() => ece(empty, noLabels, 3), /n = 0/);
  assert.throws(() => classificationMetrics(empty, noLabels, 3), /n = 0/);
  assert.throws(() => predictiveEntropy(empty, 3), /n = 0/);
  assert.throws(() => auroc([], [1]), /scoresPositive is empty/);
  assert.throws(() => auroc([1], []), /scoresNegative is empty/);
  assert.throws(() => oodAuroc(new Float64Array([1, 0]), empty, 2), /probsOut is empty/);
  assert.throws(() => regressionMetrics(empty, empty, [], { mean: 0, std: 1 }), /y is empty/);
});

test("errors: NaN names the argument", () => {
  const p = new Float64Array([0.5, NaN, 0.2, 0.8]);
  assert.throws(() => accuracy(p, new Int32Array([0, 1]), 2), /accuracy: probs contains NaN at index 1/);
  assert.throws(() => nll(p, new Int32Array([0, 1]), 2), /nll: probs contains NaN/);
  assert.throws(() => oodAuroc(new Float64Array([1, 0]), p, 2), /oodAuroc: probsOut contains NaN/);
  assert.throws(() => auroc([1, NaN], [0]), /auroc: scoresPositive contains NaN at index 1/);
  assert.throws(() => auroc([1], [NaN]), /scoresNegative contains NaN/);
  const ok = new Float64Array([0, 0]);
  const one = new Float64Array([1, 1]);
  const sc = { mean: 0, std: 1 };
  assert.throws(() => regressionMetrics(new Float64Array([0, NaN]), one, [0, 0], sc), /regressionMetrics: means contains NaN/);
  assert.throws(() => regressionMetrics(ok, new Float64Array([1, NaN]), [0, 0], sc), /stds contains NaN/);
  assert.throws(() => regressionMetrics(ok, one, [0, NaN], sc), /y contains NaN/);
  assert.throws(() => logMeanExp([0, NaN]), /values contains NaN/);
});

test("errors: shapes, labels, invalid probabilities, bad k", () => {
  assert.throws(() => accuracy(new Float64Array(5), new Int32Array(2), 2), /not a multiple of k/);
  assert.throws(() => accuracy(new Float64Array([1, 0]), new Int32Array(2), 2), /labels.length \(2\) does not match/);
  assert.throws(() => accuracy(new Float64Array([1, 0]), new Int32Array([2]), 2), /labels\[0\] = 2 is outside \[0, 2\)/);
  assert.throws(() => accuracy(new Float64Array([1, 0]), new Int32Array([-1]), 2), /outside/);
  assert.throws(() => nll(new Float64Array([2, -1]), new Int32Array([0]), 2), /is not a probability/);
  assert.throws(() => nll(new Float64Array([0.3, 0.3]), new Int32Array([0]), 2), /row 0 of probs sums to 0.6/);
  assert.throws(() => accuracy(new Float64Array([1]), new Int32Array([0]), 0), /k must be a positive integer/);
  assert.throws(() => ece(new Float64Array([1, 0]), new Int32Array([0]), 2, 0), /bins must be a positive integer/);
  assert.throws(() => regressionMetrics(new Float64Array(3), new Float64Array(3), [0, 0], { mean: 0, std: 1 }), /not a positive multiple/);
  assert.throws(() => regressionMetrics(new Float64Array(2), new Float64Array(4), [0, 0], { mean: 0, std: 1 }), /stds.length/);
  assert.throws(() => regressionMetrics(new Float64Array(2), new Float64Array([1, 0]), [0, 0], { mean: 0, std: 1 }), /stds\[1\] = 0 is not > 0/);
  assert.throws(() => regressionMetrics(new Float64Array(2), new Float64Array([1, 1]), [0, 0], { mean: 0, std: 0 }), /scale.std/);
});
