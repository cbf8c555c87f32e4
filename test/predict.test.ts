/**
 * `bayesdl predict`: a saved posterior on new inputs. Its predictive mean on the test inputs equals
 * what `evaluate` scores; quantiles, entropy and mutual information against closed forms.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadData } from "../src/data/index.js";
import { createRng, permutation } from "../src/data/prng.js";
import { normalQuantile } from "../src/diagnostics/convergence.js";
import { mixtureQuantile, summarise } from "../src/eval/summary.js";

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../src/cli/main.js");

function bayesdl(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", cwd });
  return { code: r.status, out: r.stdout, err: r.stderr.trim() };
}

/** Parse the predictions CSV written by predict (a header row, then numbers or class names). */
function readTable(text: string): Record<string, string[]> {
  const [head, ...rows] = text.trim().split("\n");
  const names = head.split(",");
  const out: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const r of rows) r.split(",").forEach((v, j) => out[names[j]].push(v));
  return out;
}

test("predict on a CSV without its target column: the same predictive mean as evaluate, and its RMSE", () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-predict-"));
  try {
    const rng = createRng(4);
    const rows = Array.from({ length: 150 }, () => {
      const a = rng.normal() * 3 + 10;
      const b = rng.normal();
      return [a.toFixed(5), b.toFixed(5), (0.5 * a + Math.sin(2 * b) + 0.2 * rng.normal()).toFixed(5)];
    });
    writeFileSync(join(dir, "train.csv"), ["a,b,y", ...rows.map((r) => r.join(","))].join("\n") + "\n");
    const fit = bayesdl(dir, "fit", "--data", "csv:train.csv", "--target", "y", "--method", "ensemble", "--members", "3", "--model", "mlp:16", "--epochs", "40", "--batch-size", "32", "--quiet", "--out", "post");
    assert.equal(fit.code, 0, fit.err);
    const ev = JSON.parse(bayesdl(dir, "evaluate", "--posterior", "post", "--json").out) as { testSize: number; metrics: Record<string, number> };
    // The test rows, as loadCsv chose them (seed 0, 20% of 150 = 30), with the columns reordered
    // (b before a) and the target left out: predict matches columns by header name.
    const perm = permutation(150, 0);
    const test = Array.from(perm.subarray(150 - ev.testSize));
    writeFileSync(join(dir, "new.csv"), ["b,a", ...test.map((i) => `${rows[i][1]},${rows[i][0]}`)].join("\n") + "\n");
    const pr = bayesdl(dir, "predict", "--posterior", "post", "--data", "csv:new.csv", "--out", "preds.csv");
    assert.equal(pr.code, 0, pr.err);
    assert.match(pr.out, /ensemble posterior \(mlp:16\) on 30 inputs of csv:new\.csv: mean, sd \(epistemic, aleatoric\) and quantiles written to preds\.csv/);
    const t = readTable(readFileSync(join(dir, "preds.csv"), "utf8"));
    assert.deepEqual(Object.keys(t), ["mean", "sd", "epistemic_sd", "aleatoric_sd", "q5", "q25", "q50", "q75", "q95"]);
    const mean = t.mean.map(Number);
    const rmse = Math.sqrt(test.reduce((acc, row, i) => acc + (mean[i] - Number(rows[row][2])) ** 2, 0) / test.length);
    assert.ok(Math.abs(rmse - ev.metrics.rmse) <= 1e-5 * ev.metrics.rmse, `RMSE from predict ${rmse} vs evaluate ${ev.metrics.rmse}`);
    for (let i = 0; i < test.length; i++) {
      const sd = Number(t.sd[i]);
      assert.ok(Math.abs(sd ** 2 - Number(t.epistemic_sd[i]) ** 2 - Number(t.aleatoric_sd[i]) ** 2) <= 1e-9 * sd ** 2);
      assert.ok(Number(t.q5[i]) < Number(t.q50[i]) && Number(t.q50[i]) < Number(t.q95[i]));
    }
    // The same inputs with predict's JSON output give the same numbers.
    assert.equal(bayesdl(dir, "predict", "--posterior", "post", "--data", "csv:new.csv", "--out", "preds.json").code, 0);
    const js = JSON.parse(readFileSync(join(dir, "preds.json"), "utf8")) as { predictions: Record<string, number[]> };
    assert.deepEqual(js.predictions.mean, mean);
    // Nothing is overwritten without --force; a missing input column is named.
    assert.equal(bayesdl(dir, "predict", "--posterior", "post", "--data", "csv:new.csv", "--out", "preds.csv").err, "bayesdl: --out preds.csv: the file exists; choose another name or pass --force to replace it");
    writeFileSync(join(dir, "bad.csv"), "a,c\n1,2\n");
    assert.equal(
      bayesdl(dir, "predict", "--posterior", "post", "--data", "csv:bad.csv").err,
      'bayesdl: bad.csv: line 1: expected an input column named "b" (the posterior\'s inputs are "a", "b"), got columns "a", "c"',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("predict on digits: class probabilities whose accuracy is evaluate's; entropy = aleatoric + mutual information", () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-predict-"));
  try {
    assert.equal(bayesdl(dir, "fit", "--data", "mnist", "--model", "mlp:16", "--method", "ensemble", "--members", "2", "--epochs", "1", "--test-size", "300", "--quiet", "--out", "post").code, 0);
    const ev = JSON.parse(bayesdl(dir, "evaluate", "--posterior", "post", "--json").out) as { metrics: Record<string, number> };
    const pr = bayesdl(dir, "predict", "--posterior", "post", "--data", "mnist");
    assert.equal(pr.code, 0, pr.err);
    const t = readTable(pr.out);
    assert.equal(t.predicted.length, 300);
    assert.deepEqual(Object.keys(t), ["predicted", ...Array.from({ length: 10 }, (_, c) => `p_${c}`), "entropy", "aleatoric_entropy", "mutual_information"]);
    let mi = 0;
    for (let i = 0; i < 300; i++) {
      const p = Array.from({ length: 10 }, (_, c) => Number(t[`p_${c}`][i]));
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      const h = -p.reduce((a, q) => a + (q > 0 ? q * Math.log(q) : 0), 0);
      assert.ok(Math.abs(h - Number(t.entropy[i])) < 1e-6);
      const m = Number(t.mutual_information[i]);
      assert.ok(m >= 0 && Math.abs(Number(t.entropy[i]) - Number(t.aleatoric_entropy[i]) - m) < 1e-9 || m === 0);
      mi += m;
    }
    assert.ok(mi > 0, "two ensemble members disagree somewhere");
    // The digits predict sees are evaluate's test part: the predicted classes have evaluate's accuracy.
    const labels = loadData("mnist", { seed: 0, testSize: 300 }).test.y;
    const correct = t.predicted.filter((c, i) => Number(c) === labels[i]).length;
    assert.equal(correct / 300, ev.metrics.accuracy);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("summaries: mixture quantiles and the uncertainty split against closed forms", () => {
  // One Gaussian: quantiles are mu + sigma z_p.
  for (const p of [0.05, 0.5, 0.975]) assert.ok(Math.abs(mixtureQuantile([2], [3], p) - (2 + 3 * normalQuantile(p))) < 1e-8);
  // A symmetric two-component mixture: the median is the centre; the 0.9 quantile solves the CDF.
  assert.ok(Math.abs(mixtureQuantile([-1, 1], [0.5, 0.5], 0.5)) < 1e-9);
  // Regression: standardised means (0, 2), sds (1, 1), target scale (10, 2): mean 12, epistemic sd 2, aleatoric 2.
  const r = summarise({ kind: "gaussian", samples: 2, means: Float32Array.from([0, 2]), stds: Float32Array.from([1, 1]) }, 1, { mean: 10, std: 2 });
  assert.equal(r.kind, "regression");
  if (r.kind !== "regression") return;
  assert.equal(r.mean[0], 12);
  assert.equal(r.epistemicSd[0], 2);
  assert.equal(r.aleatoricSd[0], 2);
  assert.ok(Math.abs(r.sd[0] - Math.sqrt(8)) < 1e-12);
  // Classification: two samples (1, 0) and (0, 1) average to (0.5, 0.5): entropy ln 2, all of it mutual information.
  const c = summarise({ kind: "categorical", numClasses: 2, probs: Float32Array.from([0.5, 0.5]), meanEntropy: Float32Array.from([0]) }, 1);
  assert.equal(c.kind, "classification");
  if (c.kind !== "classification") return;
  assert.ok(Math.abs(c.entropy[0] - Math.LN2) < 1e-7);
  assert.ok(Math.abs(c.mutualInformation[0] - Math.LN2) < 1e-7);
});
