import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { key } from "../src/core/engine.js";
import { embeddedMnistArrays, writeIdx, loadData } from "../src/data/index.js";
import { predict } from "../src/eval/predict.js";
import { loadPosterior } from "../src/io/posterior.js";
import { runEvaluate, runFit } from "../src/jobs/fit.js";
import { drawsToLeaves, modelFromMeta, savedDraws } from "../src/jobs/posterior.js";
import { METHOD_NAMES, methodSpec, methodsTaking } from "../src/methods.js";
import { fit as fitMethod } from "../src/run/driver.js";

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../src/cli/main.js");

function bayesdl(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("fit --out then evaluate: the saved posterior reproduces the fit's predictions exactly", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-cli-"));
  try {
    const out = join(dir, "post");
    const fit = await runFit({
      data: "toy:two-moons", model: "mlp:16,16", method: "ensemble", seed: 3, batchSize: 32,
      options: { epochs: 15, lr: 0.01, members: 3 }, priorScale: 1, noise: "learned", sigma: 0.5, out,
    });
    assert.ok(fit.metrics.accuracy > 0.85, `two-moons accuracy ${fit.metrics.accuracy}`);
    const ev = await runEvaluate({ posterior: out });
    assert.deepEqual(ev.metrics, fit.metrics);
    assert.ok(ev.sameData);
    // Predictions of the loaded samples equal those of the in-memory ones, bit for bit.
    const { meta, samples } = await loadPosterior(out);
    const model = modelFromMeta(meta);
    const data = loadData("toy:two-moons", { seed: 3 });
    const fitted = await fitMethod(key(1), methodSpec("ensemble"), model, data.train, { options: { epochs: 2, members: 3 } });
    const a = await predict(model, fitted.posterior.draws(key(0)), data.test);
    const leaves = await drawsToLeaves(fitted.posterior);
    const { savePosterior } = await import("../src/io/posterior.js");
    await savePosterior(join(dir, "again"), { ...meta, leaves: leaves.map((l) => ({ name: l.name, shape: l.shape })), numSamples: 3 }, leaves);
    const back = await loadPosterior(join(dir, "again"));
    const b = await predict(model, savedDraws(model, back.samples, 3).draws(key(0)), data.test);
    assert.equal(a.kind, "categorical");
    assert.deepEqual(b, a);
    assert.ok(samples.length > 0);
    assert.deepEqual(readdirSync(out).sort(), ["posterior.json", "samples.safetensors"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("evaluate works on a standard MNIST IDX pair (written by the test, gzipped images)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-cli-"));
  try {
    // Training set: 1,500 embedded digits written as IDX; test set: the next 500 as a separate pair.
    const all = embeddedMnistArrays();
    const pick = (from: number, n: number) => {
      // the package groups digits by class; take a strided sample so every class appears
      const idx = Array.from({ length: n }, (_, i) => (from + i * 5) % all.n);
      const img = new Uint8Array(n * 784);
      const lbl = new Uint8Array(n);
      idx.forEach((r, i) => {
        for (let j = 0; j < 784; j++) img[i * 784 + j] = Math.round(all.x[r * 784 + j] * 255);
        lbl[i] = all.y[r];
      });
      return { img, lbl };
    };
    const tr = pick(0, 1500);
    const te = pick(1, 500);
    writeFileSync(join(dir, "train-images.idx3-ubyte.gz"), writeIdx(tr.img, [1500, 28, 28], { gzip: true }));
    writeFileSync(join(dir, "train-labels.idx1-ubyte"), writeIdx(tr.lbl, [1500]));
    writeFileSync(join(dir, "t10k-images.idx3-ubyte.gz"), writeIdx(te.img, [500, 28, 28], { gzip: true }));
    writeFileSync(join(dir, "t10k-labels.idx1-ubyte"), writeIdx(te.lbl, [500]));
    const post = join(dir, "post");
    const f = bayesdl("fit", "--data", `idx:${join(dir, "train-images.idx3-ubyte.gz")},${join(dir, "train-labels.idx1-ubyte")}`,
      "--model", "mlp:64", "--method", "map", "--epochs", "8", "--seed", "1", "--out", post);
    assert.equal(f.code, 0, f.err);
    const e = bayesdl("evaluate", "--posterior", post, "--data", `idx:${join(dir, "t10k-images.idx3-ubyte.gz")},${join(dir, "t10k-labels.idx1-ubyte")}`, "--json");
    assert.equal(e.code, 0, e.err);
    const r = JSON.parse(e.out);
    assert.equal(r.testSize, 500);
    assert.ok(r.metrics.accuracy > 0.8, `accuracy ${r.metrics.accuracy}`);
    for (const k of ["nll", "ece", "brier", "error"]) assert.equal(typeof r.metrics[k], "number");
    const table = bayesdl("evaluate", "--posterior", post, "--data", `idx:${join(dir, "t10k-images.idx3-ubyte.gz")},${join(dir, "t10k-labels.idx1-ubyte")}`);
    assert.match(table.out, /500 test examples[\s\S]*error[\s\S]*NLL[\s\S]*ECE/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the CLI rejects bad flags and values, naming the flag and what is allowed", () => {
  const unknown = bayesdl("fit", "--bogus");
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /unknown option '--bogus'/);
  const badInt = bayesdl("fit", "--epochs", "two");
  assert.equal(badInt.code, 1);
  assert.match(badInt.err, /--epochs expects an integer >= 0, got 'two'/);
  const badMethod = bayesdl("fit", "--method", "hmc");
  assert.ok(badMethod.err.includes(`'hmc' is invalid. Allowed choices are ${METHOD_NAMES.join(", ")}.`), badMethod.err);
  const wrongFlag = bayesdl("fit", "--method", "map", "--chains", "2");
  assert.equal(wrongFlag.code, 2);
  assert.ok(wrongFlag.err.includes(`--chains does not apply to --method map; it applies to ${methodsTaking("chains").map((m) => m.name).join(", ")}`), wrongFlag.err);
  assert.deepEqual(methodsTaking("chains").map((m) => m.family), methodsTaking("chains").map(() => "sgmcmc"));
  const cold = bayesdl("fit", "--method", "map", "--temperature", "0.5");
  assert.match(cold.err, /--temperature does not apply to --method map; it applies to sgld, /);
  const badSpec = bayesdl("fit", "--model", "mlp:10,a", "--epochs", "0");
  assert.equal(badSpec.code, 1);
  assert.match(badSpec.err, /model spec 'mlp:10,a'.*'a'/);
  const missing = bayesdl("evaluate", "--posterior", "/nonexistent/posterior-dir");
  assert.equal(missing.code, 1);
  assert.match(missing.err, /\/nonexistent\/posterior-dir/);
  const help = bayesdl("--help");
  assert.equal(help.code, 0);
  assert.match(help.out, /fit[\s\S]*evaluate/);
  for (const cmd of ["fit", "evaluate"]) assert.equal(bayesdl(cmd, "--help").code, 0);
  assert.ok(!existsSync("/nonexistent/posterior-dir"));
});
