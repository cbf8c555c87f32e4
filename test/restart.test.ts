/**
 * Diverging chains (src/run/loop.ts `restart`, src/core/replicate.ts copyTotals/mergeCopies): a chain
 * whose objective goes non-finite is put back to its state before the call while the other chains go
 * on untouched; a chain that keeps diverging stops the run once its restarts are used up.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { key, np, random, toHost, type JArray, type Key } from "../src/core/engine.js";
import { copyTotals, mergeCopies, type Replicated } from "../src/core/replicate.js";
import { free } from "../src/core/tree.js";
import type { Batch } from "../src/models/model.js";
import { DivergenceError, runSteps } from "../src/run/loop.js";

type S = Replicated<{ x: JArray }>;
const data = { x: new Float32Array(8), xShape: [1], y: new Float32Array(8), n: 8 };

/**
 * Two chains: x += 1 + u, u ~ U(0, 1) per chain and step. Chain 1 "diverges" (its new x is NaN) when
 * `fails(u, x)`; chain 0 never does.
 */
function walk(fails: (u: JArray, x: JArray) => JArray) {
  return {
    step(k: Key, s: S, b: Batch): [S, { loss: JArray }] {
      free([b.x, b.y]);
      const x = (s as { stacked: { x: JArray } }).stacked.x;
      const u = random.uniform(k, [2]);
      const stepped = x.ref.add(1).add(u.ref);
      const bad = fails(u, x).mul(np.array([0, 1]));
      const next = np.where(bad.greater(0), np.full([2], NaN), stepped);
      return [{ stacked: { x: next.ref } }, { loss: next }];
    },
  };
}
const restart = { maxPerCopy: 3, copyTotals: (s: S) => copyTotals(s, 2), merge: (n: S, b: S, bad: readonly number[]) => mergeCopies(n, b, bad, 2) };
const start = (): S => ({ stacked: { x: np.zeros([2]) } });
const xs = async (s: S) => Array.from(await toHost((s as { stacked: { x: JArray } }).stacked.x.ref));

test("a diverging chain restarts from its last good state; the other chain's path is unchanged", async () => {
  // Chain 1 fails whenever u > 0.8 (about one step in five).
  const flaky = walk((u, x) => (x.dispose(), u.greater(0.8).astype(np.float32)));
  const steady = walk((u, x) => (x.dispose(), u.mul(0)));
  const a = await runSteps(key(4), flaky, start(), data, { batchSize: 4, steps: 40, copies: 2, restart: { ...restart, maxPerCopy: 100 } });
  const b = await runSteps(key(4), steady, start(), data, { batchSize: 4, steps: 40, copies: 2 });
  const [xa, xb] = [await xs(a.state), await xs(b.state)];
  assert.ok(a.restarts.length >= 3, `restarts ${JSON.stringify(a.restarts)}`);
  assert.ok(a.restarts.every((r) => r.copy === 1 && r.step >= 1 && r.step <= 40));
  assert.equal(xa[0], xb[0], "chain 0 is untouched by chain 1's restarts");
  // Chain 1 lost one step per restart: it moved 1 + u on every step that was kept.
  assert.ok(Number.isFinite(xa[1]) && xa[1] < xb[1] && xa[1] > 40 - a.restarts.length, `chain 1 at ${xa[1]}`);
  assert.ok(a.losses.every(Number.isFinite), "the objective reported is the chains' that stayed finite");
  assert.equal(b.restarts.length, 0);
  free([a.state, b.state]);
});

test("a chain that keeps diverging stops the run after its restarts, naming the step", async () => {
  // Chain 1 fails every time it would pass x = 5: restarted 3 times, then the run stops.
  const stuck = walk((u, x) => x.add(1).add(u).greater(5).astype(np.float32));
  await assert.rejects(runSteps(key(5), stuck, start(), data, { batchSize: 4, steps: 40, copies: 2, restart }), (e: unknown) => {
    assert.ok(e instanceof DivergenceError);
    assert.match(e.message, /^the run diverged at step \d+ of 40: the objective \(NaN\) is not finite/);
    free(e.lastGood);
    return true;
  });
  // Without `restart` the first divergence stops it.
  await assert.rejects(runSteps(key(5), stuck, start(), data, { batchSize: 4, steps: 40, copies: 2 }), (e: unknown) => {
    assert.ok(e instanceof DivergenceError);
    free(e.lastGood);
    return true;
  });
});

test("copyTotals and mergeCopies work on both layouts (stacked and a list of copies)", async () => {
  const stacked: S = { stacked: { x: np.array([[1, 2], [NaN, 4], [5, 6]]) } };
  assert.deepEqual(Array.from(await toHost(copyTotals(stacked, 3))).map(String), ["3", "NaN", "11"]);
  const before: S = { stacked: { x: np.array([[0, 0], [7, 8], [0, 0]]) } };
  const merged = mergeCopies(stacked, before, [1], 3);
  assert.deepEqual(Array.from(await toHost((merged as { stacked: { x: JArray } }).stacked.x.ref)), [1, 2, 7, 8, 5, 6]);
  const list: S = { copies: [{ x: np.array([1, 1]) }, { x: np.array([NaN, 1]) }] };
  assert.deepEqual(Array.from(await toHost(copyTotals(list, 2))).map(String), ["2", "NaN"]);
  const listBefore: S = { copies: [{ x: np.array([0, 0]) }, { x: np.array([3, 3]) }] };
  const m2 = mergeCopies(list, listBefore, [1], 2) as { copies: { x: JArray }[] };
  assert.deepEqual([...(await toHost(m2.copies[0].x)), ...(await toHost(m2.copies[1].x))], [1, 1, 3, 3]);
  free([merged, before, listBefore]);
});
