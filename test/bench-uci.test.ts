/**
 * The UCI protocol (src/bench/uci.ts): the settings each data set gets (its own noise model and
 * sampler step, chosen on its training parts), that flags override them, and that every split's
 * record says what it ran with.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runUciBench, UCI_BURNIN, UCI_LR_LOW_NOISE, UCI_LR_PER_DATUM, UCI_NOISE, UCI_LAPLACE_EPOCHS, UCI_PER_SET, uciDefaults } from "../src/bench/uci.js";
import { UCI_PUBLISHED } from "../src/bench/published.js";

const here = dirname(fileURLToPath(import.meta.url));
const uciDir = resolve(here, "../../../shared/data/uci");

test("uciDefaults: the protocol's settings, then each set's own: noise model and sampler step", () => {
  for (const set of Object.keys(UCI_PER_SET)) assert.ok(set in UCI_PUBLISHED, `${set} is one of the nine sets`);
  const wine = uciDefaults("sghmc", 1000, "wine-quality-red");
  assert.equal(wine.noise, UCI_NOISE);
  assert.deepEqual(wine.options, { chains: 4, samples: 50, thin: 20, burnin: UCI_BURNIN, lr: UCI_LR_PER_DATUM / 1000 });
  assert.equal(wine.batchSize, 128);
  assert.equal(uciDefaults("sghmc", 1000).noise, UCI_NOISE, "no set named: the protocol's own");
  for (const set of ["energy", "naval-propulsion-plant", "yacht"]) {
    const d = uciDefaults("sghmc", 400, set);
    assert.equal(d.options.lr, UCI_LR_LOW_NOISE / 400);
    assert.equal(d.noise, "learned");
  }
  for (const set of ["bostonHousing", "concrete", "kin8nm", "power-plant"]) {
    const d = uciDefaults("sghmc", 400, set);
    assert.equal(d.noise, "heteroscedastic");
    assert.equal(d.options.lr, UCI_LR_PER_DATUM / 400);
  }
  // Methods without a step size per datum keep theirs; the noise model is the set's for every method.
  const bbb = uciDefaults("bbb", 400, "yacht");
  assert.deepEqual(bbb.options, { epochs: 40, samples: 50 });
  assert.equal(bbb.batchSize, 32);
  assert.equal(uciDefaults("bbb", 400, "kin8nm").noise, "heteroscedastic");
  // The Laplace family: the learned homoscedastic noise everywhere, and its own MAP epochs where they were chosen.
  for (const method of ["laplace", "sampled-laplace"]) {
    for (const set of ["yacht", "bostonHousing", "kin8nm"]) {
      const d = uciDefaults(method, 400, set);
      assert.equal(d.noise, UCI_NOISE);
      assert.equal(d.options.epochs, UCI_LAPLACE_EPOCHS[set] ?? 40, `${method} on ${set}`);
    }
  }
  assert.equal(UCI_LAPLACE_EPOCHS.yacht, 400);
  assert.equal(UCI_LAPLACE_EPOCHS.bostonHousing, undefined);
});

test("runUciBench: each split records the noise and options it ran with; --noise and method flags override the set's", async () => {
  const quick = { epochs: 1 };
  const [own] = await runUciBench({ dataDir: uciDir, datasets: ["bostonHousing"], method: "map", splits: [0], seed: 0, overrides: quick });
  assert.equal(own.noise, "heteroscedastic");
  assert.deepEqual(own.options, { epochs: 1 });
  assert.ok(Number.isFinite(own.rmse) && Number.isFinite(own.ll), JSON.stringify(own));
  const [forced] = await runUciBench({ dataDir: uciDir, datasets: ["bostonHousing"], method: "map", splits: [0], seed: 0, overrides: quick, noise: "learned" });
  assert.equal(forced.noise, "learned");
  assert.notEqual(forced.ll, own.ll);
  await assert.rejects(runUciBench({ dataDir: uciDir, datasets: ["boston"], method: "map", seed: 0 }), /--dataset: unknown data set 'boston'/);
});
