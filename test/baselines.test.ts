import { test } from "node:test";
import assert from "node:assert/strict";
import { fromHost, key, split, toHost, type JArray } from "../src/core/engine.js";
import { create as ensembleCreate, spec as ensembleSpec } from "../src/baselines/ensemble.js";
import { stackTrees } from "../src/core/tree.js";
import { create as mapCreate, mapSchedule, spec as mapSpec } from "../src/baselines/map.js";
import { scheduleValues, type Schedule } from "../src/core/schedule.js";
import { categorical, gaussian } from "../src/models/likelihood.js";
import { initMembers, logDensity, makeModel, type Batch, type Params } from "../src/models/model.js";
import { networkFromSpec } from "../src/models/spec.js";
import { adam, applyUpdates } from "../src/optim/transform.js";
import { runSteps } from "../src/run/loop.js";
import { epochSteps, hostLeaves, maxAbsDiff, tinyClassification } from "./helpers.js";

test("adam matches the hand-computed first two steps", async () => {
  // f(x) = sum x^2 / 2, g = x. Step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2, u = -lr g/(|g|+eps).
  const lr = 0.1;
  const opt = adam(lr);
  let x: JArray = fromHost([1, -2], [2]);
  let state = opt.init(x.ref);
  const xs: number[][] = [];
  const hand: number[][] = [];
  let m = [0, 0], v = [0, 0], h = [1, -2];
  for (let t = 1; t <= 2; t++) {
    const [u, s] = opt.update(x.ref, state, x.ref);
    state = s;
    x = applyUpdates(x, u);
    xs.push(Array.from(await toHost(x.ref)));
    const g = h;
    m = m.map((mi, i) => 0.9 * mi + 0.1 * g[i]);
    v = v.map((vi, i) => 0.999 * vi + 0.001 * g[i] * g[i]);
    h = h.map((hi, i) => hi - lr * (m[i] / (1 - 0.9 ** t)) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8));
    hand.push(h);
  }
  assert.ok(maxAbsDiff(xs, hand) < 1e-6, `${JSON.stringify(xs)} vs ${JSON.stringify(hand)}`);
});

test("MAP recovers least squares on a linear model with a flat-ish prior", async () => {
  // y = 2 x - 1 exactly; MAP with prior scale 100 and tiny N-normalised decay must find w ~ 2, b ~ -1.
  const n = 64;
  const x = Float32Array.from({ length: n }, (_, i) => -1 + (2 * i) / (n - 1));
  const y = x.map((xi) => 2 * xi - 1);
  const model = makeModel(networkFromSpec("mlp:", [1], 1), gaussian({ sigma: 0.1 }), { kind: "gaussian", scale: 100 });
  const m = mapCreate(logDensity(model, { dataSize: n }), { dataSize: n, learningRate: 0.05 });
  const [k0, k1, k2] = split(key(0), 3);
  const { state } = await runSteps(k2, m, m.init(k0, model.init(k1)), { x, y, n, xShape: [1] }, { steps: epochSteps(n, 16, 150), batchSize: 16 });
  const layer = (state.params.net as { layers: { w: JArray; b: JArray }[] }).layers[0];
  const [w, b] = [await toHost(layer.w.ref), await toHost(layer.b.ref)];
  assert.ok(Math.abs(w[0] - 2) < 1e-2 && Math.abs(b[0] + 1) < 1e-2, `w=${w[0]}, b=${b[0]}`);
});

for (const batching of ["unroll", "vmap"] as const) test(`ensemble (${batching}): one joint step equals each member's own MAP step`, async () => {
  const data = tinyClassification(32, 6, 3);
  const model = makeModel(networkFromSpec("mlp:8", [6], 3), categorical(), { kind: "gaussian", scale: 1 });
  const ld = logDensity(model, { dataSize: 32 });
  const members = 3;
  const ens = ensembleCreate(ld, { dataSize: 32, learningRate: 0.01, members, batching });
  const single = mapCreate(ld, { dataSize: 32, learningRate: 0.01 });
  const inits = split(key(5), members).map((k) => model.init(k));
  const perMember = inits.map((p) => p);
  // Members' own batches: rows i*8 .. i*8+7 for member i.
  const batches = Array.from({ length: members }, (_, i) => ({
    x: data.x.subarray(i * 8 * 6, (i + 1) * 8 * 6),
    y: data.y.subarray(i * 8, (i + 1) * 8),
  }));
  const stacked: Batch = {
    x: fromHost(Float32Array.from(batches.flatMap((b) => Array.from(b.x))), [members, 8, 6]),
    y: fromHost(Int32Array.from(batches.flatMap((b) => Array.from(b.y))), [members, 8]),
  };
  const stackedParams = stackTrees(perMember.map((p) => ({ net: (p.net as never) })) as Params[]);
  let state = ens.init(key(0), stackedParams);
  let info;
  for (let t = 0; t < 3; t++) [state, info] = ens.step(key(t), state, { x: stacked.x.ref, y: stacked.y.ref });
  const got = await hostLeaves(ens.posterior(state).draws(key(0)));
  // Same members, one at a time.
  const again = split(key(5), members).map((k) => model.init(k));
  const wants: Float32Array[][] = [];
  for (let i = 0; i < members; i++) {
    let s = single.init(key(0), again[i]);
    for (let t = 0; t < 3; t++) {
      [s] = single.step(key(t), s, { x: fromHost(batches[i].x, [8, 6]), y: fromHost(batches[i].y, [8]) });
    }
    wants.push(await hostLeaves(s.params));
  }
  // got[leaf] is [members, ...]; compare member slices.
  got.forEach((leaf, li) => {
    const per = leaf.length / members;
    for (let i = 0; i < members; i++) {
      const diff = maxAbsDiff([leaf.subarray(i * per, (i + 1) * per)], [wants[i][li]]);
      assert.ok(diff < 1e-5, `leaf ${li} member ${i}: max diff ${diff}`);
    }
  });
  assert.ok(info);
});

test("ensemble members start from different initialisations", async () => {
  const model = makeModel(networkFromSpec("mlp:4", [2], 2), categorical(), { kind: "gaussian", scale: 1 });
  const p = initMembers(model, key(1), 2);
  const w = await toHost((p.net as { layers: { w: JArray }[] }).layers[0].w.ref);
  const half = w.length / 2;
  assert.ok(maxAbsDiff([w.subarray(0, half)], [w.subarray(half)]) > 1e-3);
});

test("MAP's learning rate: with the default drop, lr for the first three quarters of the run and r lr after", async () => {
  assert.equal(mapSpec.options.schedule.value, "drop");
  assert.equal(ensembleSpec.options.schedule.value, "drop");
  const o = { epochs: 4, lr: 0.01, dropFactor: 0.1 };
  const v = await scheduleValues(mapSchedule({ ...o, schedule: "drop" }, 5) as Schedule, 20); // 20 steps: the drop at 15
  v.forEach((x, t) => assert.ok(Math.abs(x - (t < 15 ? 0.01 : 0.001)) < 1e-9, `step ${t}: ${x}`));
  assert.equal(mapSchedule({ ...o, schedule: "constant" }, 5), 0.01);
  const p = await scheduleValues(mapSchedule({ ...o, schedule: "polynomial" }, 5) as Schedule, 20);
  p.forEach((x, t) => assert.ok(Math.abs(x - 0.01 * (1 + t / 2) ** -0.55) < 1e-8, `step ${t}: ${x}`));
});
