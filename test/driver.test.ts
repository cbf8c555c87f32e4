/**
 * The driver (src/run/driver.ts) and the loops (src/run/loop.ts): options resolved from the specs and
 * rejected when a method does not take them, given initial parameters, monitors on every kind of
 * method, determinism under a key, and `iterate` on a data-free target.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { key, np, split, toHost, type JArray } from "../src/core/engine.js";
import { OptionError } from "../src/core/options.js";
import { constant, linearWarmup } from "../src/core/schedule.js";
import { free, leaves, namedLeaves } from "../src/core/tree.js";
import { methodSpec } from "../src/methods.js";
import { gaussian } from "../src/models/likelihood.js";
import { makeModel, type Params } from "../src/models/model.js";
import { mlp } from "../src/models/mlp.js";
import { adam, applyUpdates } from "../src/optim/transform.js";
import { epochShuffles, hostPermutation } from "../src/run/batches.js";
import { fit } from "../src/run/driver.js";
import { iterate } from "../src/run/loop.js";
import { create as createGsm } from "../src/scorevi/gsm.js";
import { gaussianFrom, lcg } from "./exact.js";

const N = 40;
const data = (() => {
  const g = gaussianFrom(lcg(11));
  const x = Float32Array.from({ length: N * 2 }, () => g());
  const y = Float32Array.from({ length: N }, (_, i) => 0.5 * x[2 * i] - x[2 * i + 1] + 0.3 * g());
  return { x, y, n: N, xShape: [2] };
})();
const model = makeModel(mlp({ inputShape: [2], hidden: [4], outputDim: 1 }), gaussian({ sigma: 0.3 }), { kind: "gaussian", scale: 1 });

async function flat(p: Params): Promise<number[]> {
  const hs = await Promise.all(namedLeaves(p).map((l) => toHost(l.value.ref)));
  return hs.flatMap((h) => Array.from(h));
}

test("an option the method does not take is an error naming it; a bad value names what is expected", async () => {
  await assert.rejects(fit(key(0), methodSpec("map"), model, data, { options: { chains: 2 } }), (e: unknown) => e instanceof OptionError && e.key === "chains" && /does not apply to method map/.test(e.message));
  await assert.rejects(fit(key(0), methodSpec("sgld"), model, data, { options: { thin: 0 } }), (e: unknown) => e instanceof OptionError && /expects an integer >= 1/.test(e.message));
  await assert.rejects(fit(key(0), methodSpec("alpha"), model, data, { options: { objective: "kl" } }), /expects one of bb-alpha, vr/);
});

test("the resolved options record every default, computed from the data where the spec says so", async () => {
  const r = await fit(key(0), methodSpec("sghmc"), model, data, { batchSize: 8, options: { samples: 2, thin: 3, burnin: 4 } });
  r.posterior.dispose();
  // N = 40, batch 8, regression: the default step is 1e-3 / N, constant (the drop factor is recorded, unused);
  // two chains.
  assert.deepEqual(r.options, { temperature: 1, chains: 2, samples: 2, burnin: 4, thin: 3, lr: 1e-3 / N, schedule: "constant", dropFactor: 0.1, friction: 0.05 });
  assert.equal(r.steps, 10);
});

test("given initial parameters: zero epochs of MAP return them unchanged, for one copy and for an ensemble", async () => {
  const start = model.init(key(3));
  const want = await flat(start);
  const one = await fit(key(1), methodSpec("map"), model, data, { options: { epochs: 0 }, initParams: start });
  const got = one.posterior.draws(key(0));
  assert.deepEqual(await flat(got), want);
  free(got);
  one.posterior.dispose();
  const ens = await fit(key(1), methodSpec("ensemble"), model, data, { options: { epochs: 0, members: 2 }, initParams: start });
  const both = await flat(ens.posterior.draws(key(0)));
  ens.posterior.dispose();
  // Leaves are stacked [2, ...]: each leaf holds member 0 then member 1, both equal to the start.
  const sizes = namedLeaves(start).map((l) => l.value.size);
  free(start);
  let off = 0;
  const names = sizes.map((s) => {
    const leaf = both.slice(off, off + 2 * s);
    off += 2 * s;
    return [leaf.slice(0, s), leaf.slice(s)];
  });
  let w = 0;
  for (const [a, b] of names) {
    assert.deepEqual(a, want.slice(w, w + a.length));
    assert.deepEqual(b, want.slice(w, w + a.length));
    w += a.length;
  }
});

test("monitors see draws from every kind of run: a point (MAP), a flat q (full-rank ADVI), the chains of a sampler", async () => {
  for (const [name, samples, options] of [["map", 1, { epochs: 2 }], ["fullrank", 3, { epochs: 2 }], ["sghmc", 2, { chains: 2, burnin: 4, samples: 1, thin: 4 }]] as const) {
    const seen: { step: number; draws: number }[] = [];
    const r = await fit(key(2), methodSpec(name), model, data, {
      batchSize: 10,
      options,
      monitor: { every: 4, samples, fn: async (step, draws) => void seen.push({ step, draws: leaves(draws)[0].shape[0] }) },
    });
    r.posterior.dispose();
    if (r.sampled !== r.posterior) r.sampled.dispose();
    assert.deepEqual(seen, [{ step: 4, draws: samples }, { step: 8, draws: samples }], name);
  }
});

test("same key, same posterior; another key, another", async () => {
  const run = async (seed: number) => {
    const r = await fit(key(seed), methodSpec("bbb"), model, data, { batchSize: 10, options: { epochs: 3, samples: 2 } });
    const d = await flat(r.sampled.draws(key(0)));
    r.posterior.dispose();
    r.sampled.dispose();
    return d;
  };
  const a = await run(5);
  assert.deepEqual(await run(5), a);
  assert.notDeepEqual(await run(6), a);
});

test("iterate runs a method on a data-free target: GSM reaches N(m, I) exactly", async () => {
  const m = [1, -2, 0.5];
  const target = (theta: JArray) => {
    const r = theta.sub(np.array(m));
    return r.ref.mul(r).sum().mul(-0.5);
  };
  const gsm = createGsm(target, { batchSize: 4, initScale: 0.3 });
  const { state, losses } = await iterate(key(1), gsm, gsm.init(key(0), np.zeros([3])), 60);
  assert.equal(losses.length, 60);
  const mean = Array.from(await state.mean.ref.data(), Number);
  const cov = Array.from(await state.cov.ref.data(), Number);
  free(state);
  mean.forEach((v, i) => assert.ok(Math.abs(v - m[i]) < 1e-3, `mean ${mean}`));
  cov.forEach((v, i) => assert.ok(Math.abs(v - (i % 4 === 0 ? 1 : 0)) < 1e-3, `cov ${cov}`));
});

test("Adam with a learning-rate schedule: a constant schedule equals the number; a warm-up scales the first steps", async () => {
  const runAdam = async (lr: number | ReturnType<typeof constant>) => {
    const opt = adam(lr);
    let x: JArray = np.array([1, -2]);
    let s = opt.init(x.ref);
    for (let t = 0; t < 3; t++) {
      const [u, s2] = opt.update(x.ref, s, x.ref);
      s = s2;
      x = applyUpdates(x, u);
    }
    free(s);
    return Array.from(await toHost(x));
  };
  assert.deepEqual(await runAdam(constant(0.1)), await runAdam(0.1));
  // With lr_t = 0.1 min(1, (t + 1) / 3), the first Adam step (|u| = lr for a constant gradient sign) moves 0.1/3.
  const opt = adam(linearWarmup(0.1, 3));
  const x = np.array([1, -2]);
  const [u, s] = opt.update(x.ref, opt.init(x.ref), x.ref);
  free(s);
  const step = Array.from(await toHost(u));
  x.dispose();
  assert.ok(Math.abs(step[0] + 0.1 / 3) < 1e-6 && Math.abs(step[1] - 0.1 / 3) < 1e-6, `first step ${step}`);
});

test("epoch shuffles drawn in one jitted call are the eager ones: split the epochs' key, one key per copy, hostPermutation", () => {
  for (const copies of [0, 1, 3, 16]) {
    const shuffles = epochShuffles(copies, 25);
    let kJit = key(123);
    let kEager = key(123);
    for (let e = 0; e < 3; e++) {
      const [kNext, perms] = shuffles.next(kJit);
      kJit = kNext;
      const [kE, kRest] = split(kEager, 2);
      kEager = kRest;
      const want = copies > 0 ? split(kE, copies).map((kc) => hostPermutation(kc, 25)) : [hostPermutation(kE, 25)];
      assert.deepEqual(perms.map((p) => Array.from(p)), want.map((p) => Array.from(p)), `copies ${copies}, epoch ${e}`);
    }
    free([kJit, kEager]);
    shuffles.dispose();
  }
});
