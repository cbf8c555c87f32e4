import { test } from "node:test";
import assert from "node:assert/strict";
import { compile, fromHost, key, np, scalar, split, toHost, type JArray } from "../src/core/engine.js";
import { keep } from "../src/core/tree.js";
import { create as mapCreate, type MapState } from "../src/baselines/map.js";
import { categorical } from "../src/models/likelihood.js";
import { logDensity, makeModel, type Batch } from "../src/models/model.js";
import { networkFromSpec } from "../src/models/spec.js";
import { runSteps } from "../src/run/loop.js";
import { epochSteps, hostLeaves, maxAbsDiff, tinyClassification } from "./helpers.js";

test("split gives distinct keys and is deterministic", async () => {
  const a = split(key(7), 3);
  const b = split(key(7), 3);
  const ha = await Promise.all(a.map((k) => toHost(k.astype(np.float32))));
  const hb = await Promise.all(b.map((k) => toHost(k.astype(np.float32))));
  assert.deepEqual(ha, hb);
  assert.notDeepEqual(ha[0], ha[1]);
  assert.throws(() => key(-1), /seed must be an integer/);
});

test("compile borrows arguments unless told to consume them", async () => {
  const f = compile((x: JArray, y: JArray) => x.mul(y));
  const x = fromHost([1, 2, 3], [3]);
  const y = fromHost([2, 2, 2], [3]);
  const z = f(x, y);
  assert.deepEqual(Array.from(await toHost(z)), [2, 4, 6]);
  assert.deepEqual(Array.from(await toHost(keep(x))), [1, 2, 3]); // x still alive
  const g = compile((x: JArray) => x.add(1), { consume: [0] });
  const w = g(x);
  assert.equal(x.refCount, 0); // consumed
  assert.equal(y.refCount, 1); // borrowed by f, still ours
  y.dispose();
  w.dispose();
  f.dispose();
  g.dispose();
});

/**
 * Runs `steps` jitted MAP steps on a 16-128-128-3 MLP (19k parameters, ~76 kB per parameter copy)
 * and returns the RSS growth in MB between step `steps / 10` and the end. With `leak`, every step
 * keeps an extra reference to the parameters: the leak a forgotten `dispose` would cause.
 */
async function rssGrowth(steps: number, leak: boolean): Promise<number> {
  const model = makeModel(networkFromSpec("mlp:128,128", [16], 3), categorical(), { kind: "gaussian", scale: 1 });
  const method = mapCreate(logDensity(model, { dataSize: 64 }), { dataSize: 64, learningRate: 1e-3 });
  const [k0, k1, k2] = split(key(0), 3);
  let state: MapState = method.init(k0, model.init(k1));
  const data = tinyClassification(32, 16, 3);
  const batch: Batch = { x: fromHost(data.x, [32, 16]), y: fromHost(data.y, [32]) };
  const step = compile((k: JArray, s: MapState, b: Batch) => method.step(k, s, b), { consume: [0, 1] });
  let k = k2;
  let base = 0;
  for (let i = 1; i <= steps; i++) {
    const [ks, kn] = split(k, 2);
    k = kn;
    const [next, info] = step(ks, state, batch);
    if (leak) keep(next.params);
    state = next;
    await scalar(info.loss);
    if (i === steps / 10) {
      global.gc?.();
      base = process.memoryUsage().rss;
    }
  }
  global.gc?.();
  step.dispose();
  return (process.memoryUsage().rss - base) / 2 ** 20;
}

test("memory stays flat over 10,000 jitted training steps", async () => {
  // Allocator and V8 page noise reached ~39 MB once with another test run loading the machine; a
  // leak of one parameter copy per step would add 9,000 x 76 kB = 650 MB.
  const growth = await rssGrowth(10_000, false);
  assert.ok(growth < 64, `RSS grew by ${growth.toFixed(1)} MB between step 1,000 and 10,000`);
});

test("the memory check detects a leak of one parameter copy per step", async () => {
  // 1,800 leaked copies x 76 kB = 137 MB: the flat-memory test above would fail on such a leak.
  const growth = await rssGrowth(2_000, true);
  assert.ok(growth > 64, `a deliberate leak grew RSS by only ${growth.toFixed(1)} MB`);
});

test("same seed gives identical parameters; another seed does not", async () => {
  const data = tinyClassification(96, 5, 3);
  async function run(seed: number) {
    const model = makeModel(networkFromSpec("mlp:8,8", [5], 3), categorical(), { kind: "gaussian", scale: 1 });
    const method = mapCreate(logDensity(model, { dataSize: data.n }), { dataSize: data.n, learningRate: 1e-2 });
    const [k0, k1, k2] = split(key(seed), 3);
    const { state } = await runSteps(k2, method, method.init(k0, model.init(k1)), data, { steps: epochSteps(data.n, 32, 2), batchSize: 32 });
    return hostLeaves(state.params);
  }
  const a = await run(3);
  const b = await run(3);
  const c = await run(4);
  assert.equal(maxAbsDiff(a, b), 0);
  assert.ok(maxAbsDiff(a, c) > 1e-3);
});
