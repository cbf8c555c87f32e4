/**
 * Cross-validated choice of the prior scale (src/jobs/select.ts): folds partition the training part,
 * the held-out part never enters, and on data whose weights are far from zero the scale that does not
 * shrink them wins by a clear margin.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { key } from "../src/core/engine.js";
import type { DataSplit } from "../src/data/types.js";
import { foldsOf, selectPriorScale } from "../src/jobs/select.js";
import { methodSpec } from "../src/methods.js";
import { gaussian } from "../src/models/likelihood.js";
import { makeModel } from "../src/models/model.js";
import { mlp } from "../src/models/mlp.js";
import { gaussianFrom, lcg } from "./exact.js";

test("foldsOf: K folds partition 0..n-1; one fold is a random 20%", () => {
  for (const [n, k] of [[10, 3], [101, 5], [7, 7]] as const) {
    const folds = foldsOf(n, k, 4);
    assert.equal(folds.length, k);
    const all = folds.flatMap((f) => Array.from(f)).sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: n }, (_, i) => i));
    assert.ok(folds.every((f) => Math.abs(f.length - n / k) < 1));
  }
  const one = foldsOf(50, 1, 4);
  assert.equal(one.length, 1);
  assert.equal(one[0].length, 10);
  assert.equal(new Set(one[0]).size, 10);
  assert.throws(() => foldsOf(3, 4, 0), /4 folds need at least 4 training examples, got 3/);
  assert.throws(() => foldsOf(10, 0, 0), /folds must be an integer >= 1, got 0/);
});

test("selectPriorScale: picks the scale that does not shrink large weights, from training folds only", async () => {
  // y = 3 x1 - 2 x2 + N(0, 0.5^2), 40 training points; a linear model (no hidden layer) with a fan-in
  // prior, MAP. At s = 0.01 the prior pins the weights near 0; at s = 10 it leaves them free.
  const g = gaussianFrom(lcg(9));
  const n = 40;
  const x = new Float32Array(n * 2);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[2 * i] = g();
    x[2 * i + 1] = g();
    y[i] = 3 * x[2 * i] - 2 * x[2 * i + 1] + 0.5 * g();
  }
  // The held-out part is poisoned: if it entered, every score would be NaN and no scale could be chosen.
  const test = { x: new Float32Array(10).fill(NaN), xShape: [2], y: new Float32Array(5).fill(NaN), n: 5 };
  const data: DataSplit = { task: "regression", train: { x, xShape: [2], y, n }, test, source: "test", splitInfo: {} };
  const model = makeModel(mlp({ inputShape: [2], hidden: [], outputDim: 1 }), gaussian({ sigma: 0.5, noise: "fixed" }), { kind: "gaussian", scale: 1, scaling: "fan-in" });
  const lines: string[] = [];
  const sel = await selectPriorScale(key(3), methodSpec("map"), model, data, { grid: [0.01, 0.1, 10], folds: 4, seed: 0, batchSize: 40, options: { epochs: 300, lr: 0.05 }, log: (l) => lines.push(l) });
  assert.equal(sel.chosen, 10);
  assert.equal(sel.folds, 4);
  assert.ok(sel.nll.every(Number.isFinite), `validation NLLs ${sel.nll}`);
  // Shrinking weights of size 3 to ~0 costs ~ (3^2 + 2^2) / (2 * 0.5^2) = 26 nats per point; s = 0.1 still shrinks them by half.
  assert.ok(sel.nll[0] > 15 && sel.nll[1] > sel.nll[2] + 1, `validation NLLs ${sel.nll}`);
  assert.equal(lines.length, 3);
  assert.match(lines[2], /^prior scale 10: validation NLL -?\d+\.\d{4} \(4 folds\)$/);
});
