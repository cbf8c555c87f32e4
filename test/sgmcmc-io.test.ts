/**
 * A saved SG-MCMC posterior is a valid safetensors file that Python reads: the header is parsed here
 * independently of bayesdl's decoder, and (where python3 with numpy is available) by a Python
 * reader written to the safetensors specification.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runEvaluate, runFit } from "../src/jobs/fit.js";
import { runPredict } from "../src/jobs/predict.js";

test("sghmc on toy regression: 2 chains x 6 samples saved; header names, dtypes, shapes, offsets round-trip", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-sgmcmc-io-"));
  try {
    const out = join(dir, "post");
    const fit = await runFit({
      data: "toy:regression-gap", model: "mlp:16", method: "sghmc", seed: 5, options: { chains: 2, samples: 6, burnin: 200, thin: 10 },
      batchSize: 32, priorScale: 1, noise: "learned", sigma: 0.5, out,
    });
    assert.ok(Number.isFinite(fit.metrics.ll) && Number.isFinite(fit.metrics.rmse));
    for (const k of ["rhat: held-out log-lik", "essBulk: held-out log-lik", "essTail: held-out log-lik", "rhat: projection 1"]) {
      assert.ok(k in fit.metrics, `metrics lack ${k}`);
    }
    const meta = JSON.parse(readFileSync(join(out, "posterior.json"), "utf8"));
    assert.equal(meta.method, "sghmc");
    assert.equal(meta.numSamples, 12);
    assert.ok(Array.isArray(meta.extra.diagnostics) && meta.extra.diagnostics.length === 4);
    assert.equal(meta.extra.traces["held-out log-lik"].length, 2);
    assert.equal(meta.extra.traces["held-out log-lik"][0].length, 6);

    // Independent header parse: u64 LE length, JSON, contiguous offsets, sorted names.
    const bytes = readFileSync(join(out, "samples.safetensors"));
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
    const names = Object.keys(header).filter((k) => k !== "__metadata__");
    assert.deepEqual(names, ["lik.logSigma", "net.layers.0.b", "net.layers.0.w", "net.layers.1.b", "net.layers.1.w"]);
    const shapes: Record<string, number[]> = { "lik.logSigma": [12], "net.layers.0.b": [12, 16], "net.layers.0.w": [12, 1, 16], "net.layers.1.b": [12, 1], "net.layers.1.w": [12, 16, 1] };
    let offset = 0;
    for (const name of names) {
      assert.equal(header[name].dtype, "F32");
      assert.deepEqual(header[name].shape, shapes[name]);
      const size = shapes[name].reduce((a, b) => a * b, 1) * 4;
      assert.deepEqual(header[name].data_offsets, [offset, offset + size]);
      offset += size;
    }
    assert.equal(bytes.length, 8 + n + offset);
    assert.equal(JSON.parse(header.__metadata__.bayesdl).method, "sghmc");

    // Evaluate from disk reproduces the fit's metrics.
    const ev = await runEvaluate({ posterior: out });
    assert.equal(ev.metrics.ll, fit.metrics.ll);

    // Python, where available: a reader written from the safetensors spec (what safetensors.numpy does).
    const py = `
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
hdr = json.loads(raw[8:8 + n])
out = {}
for name, t in hdr.items():
    if name == "__metadata__":
        continue
    a, b = t["data_offsets"]
    arr = np.frombuffer(raw[8 + n + a: 8 + n + b], dtype={"F32": "<f4"}[t["dtype"]]).reshape(t["shape"])
    out[name] = [list(arr.shape), float(arr.astype(np.float64).sum())]
print(json.dumps(out))
`;
    writeFileSync(join(dir, "read.py"), py);
    const r = spawnSync("python3", [join(dir, "read.py"), join(out, "samples.safetensors")], { encoding: "utf8" });
    if (r.status === 0) {
      const got = JSON.parse(r.stdout) as Record<string, [number[], number]>;
      for (const name of names) {
        assert.deepEqual(got[name][0], shapes[name]);
        const [a, b] = header[name].data_offsets;
        const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8 + n + a, bytes.byteOffset + 8 + n + b));
        const sum = f.reduce((s, v) => s + v, 0);
        assert.ok(Math.abs(got[name][1] - sum) < 1e-3 * (1 + Math.abs(sum)), `${name}: python sum ${got[name][1]} vs ${sum}`);
      }
    } else {
      console.error(`python3 with numpy not available (${(r.stderr || String(r.error)).trim().split("\n").pop()}); the Python read was skipped`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("heteroscedastic noise end to end: a MAP fit learns sd 0.1 where x < 0 and 1 where x > 0, saves a 2-output network, and reloads", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-hetero-"));
  try {
    // y = x + e, e ~ N(0, 0.1^2) for x < 0 and N(0, 1) for x > 0; 600 rows from a fixed generator.
    let s = 12345;
    const u = () => ((s = (s * 1103515245 + 12345) % 2147483648) + 0.5) / 2147483648;
    const rows = ["x,y"];
    for (let i = 0; i < 600; i++) {
      const x = 4 * u() - 2;
      const e = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
      rows.push(`${x},${x + (x < 0 ? 0.1 : 1) * e}`);
    }
    writeFileSync(join(dir, "data.csv"), rows.join("\n") + "\n");
    writeFileSync(join(dir, "query.csv"), "x\n-1\n-0.5\n0.5\n1\n");
    const out = join(dir, "post");
    const fit = await runFit({
      data: `csv:${join(dir, "data.csv")}`, target: "y", model: "mlp:32", method: "map", seed: 1, options: { epochs: 300, lr: 0.01 },
      batchSize: 64, noise: "heteroscedastic", sigma: 1, out,
    });
    const meta = JSON.parse(readFileSync(join(out, "posterior.json"), "utf8"));
    assert.deepEqual(meta.likelihood, { kind: "gaussian", noise: "heteroscedastic", sigma: 1 });
    assert.equal(meta.outputDim, 2);
    const ev = await runEvaluate({ posterior: out });
    assert.equal(ev.metrics.ll, fit.metrics.ll);
    const pred = await runPredict({ posterior: out, data: `csv:${join(dir, "query.csv")}` });
    assert.equal(pred.summary.kind, "regression");
    if (pred.summary.kind !== "regression") return;
    // A point mass: the predictive sd is the learned noise sd, in the target's units (tolerance: 480 training rows).
    const sd = Array.from(pred.summary.sd);
    for (const i of [0, 1]) assert.ok(sd[i] > 0.06 && sd[i] < 0.16, `sd at x < 0: ${sd}`);
    for (const i of [2, 3]) assert.ok(sd[i] > 0.7 && sd[i] < 1.4, `sd at x > 0: ${sd}`);
    Array.from(pred.summary.mean).forEach((m, i) => assert.ok(Math.abs(m - [-1, -0.5, 0.5, 1][i]) < 0.2, `mean ${i}: ${m}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
