/**
 * Diverging chains (src/run/loop.ts `restart`, src/core/replicate.ts copyTotals/mergeCopies): a chain
 * whose objective goes non-finite is put back to its state before the call while the other chains go
 * on untouched; a chain that keeps diverging stops the run once its restarts are used up. A chain that
 * runs away while staying finite (its objective far above the other chains') restarts from an
 * earlier snapshot.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { key, np, random, toHost, type JArray, type Key } from "../src/core/engine.js";
import { copyTotals, mergeCopies, type Replicated } from "../src/core/replicate.js";
import { free, keep } from "../src/core/tree.js";
import type { Batch } from "../src/models/model.js";
import { restartWarnings } from "../src/jobs/fit.js";
import { keptDraws } from "../src/run/driver.js";
import { DivergenceError, RUNAWAY_MIN_HISTORY, runawayScores, runSteps, type LoopPosition } from "../src/run/loop.js";

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

test("runawayScores: deviations from the copies' median in robust sd, exactly; a runaway's own deviations are not recorded", () => {
  // History: 64 deviations of +-1, so the robust sd is 1.4826 * median(|d|) = 1.4826.
  const history = Array.from({ length: RUNAWAY_MIN_HISTORY }, (_, i) => (i % 2 === 0 ? 1 : -1));
  // One step, three copies: objectives 2, 3, 2 + 29.652 = 31.652 (median 3).
  const { z, excess } = runawayScores([2, 3, 31.652], 1, 3, history, 10);
  assert.deepEqual(excess.map((e) => +e.toFixed(6)), [-1, 0, 28.652]);
  assert.deepEqual(z.map((v) => +v.toFixed(4)), [-0.6745, 0, 19.3255]);
  // Copies 0 and 1 were recorded, copy 2 (z = 19.3 > 10) was not.
  assert.equal(history.length, RUNAWAY_MIN_HISTORY + 2);
  assert.deepEqual(history.slice(-2).map((d) => +d.toFixed(6)), [-1, 0]);
  // Before RUNAWAY_MIN_HISTORY deviations nothing scores.
  const short: number[] = [];
  assert.deepEqual(runawayScores([0, 0, 1e9], 1, 3, short, 10).z, [0, 0, 0]);
});

/**
 * Three chains: x += 0.01 u, objective x + 0.1 u (u ~ U(0, 1) per chain and step); after step 30,
 * chain 2 jumps by +1000 when its u > 0.95 and stays there: finite, but far above the others.
 */
function jumpy(nanAbove = Infinity): { step(k: Key, s: S, b: Batch): [S, { loss: JArray }] } {
  return {
    step(k, s, b) {
      free([b.x, b.y]);
      const st = (s as { stacked: { x: JArray; t: JArray } }).stacked;
      const u = random.uniform(k, [3]);
      const jump = u.ref.greater(0.95).astype(np.float32).mul(st.t.ref.greater(30).astype(np.float32)).mul(np.array([0, 0, 1000]));
      const moved = st.x.add(u.ref.mul(0.01)).add(jump);
      // With `nanAbove`, a chain past it goes NaN.
      const x = np.where(moved.ref.greater(nanAbove), np.full([3], NaN), moved);
      return [{ stacked: { x: x.ref, t: st.t.add(1) } }, { loss: x.add(u.mul(0.1)) }];
    },
  };
}
const start3 = (): S => ({ stacked: { x: np.zeros([3]), t: np.zeros([3]) } } as unknown as S);
const restart3 = (runaway?: { z: number; minExcess: number; maxPerCopy: number }) => ({
  maxPerCopy: 3,
  copyTotals: (s: S) => copyTotals(s, 3),
  merge: (n: S, b: S, bad: readonly number[]) => mergeCopies(n, b, bad, 3),
  ...(runaway ? { runaway } : {}),
});

test("a chain that runs away (finite, far above the others) restarts from an earlier snapshot; the others' paths are unchanged", async () => {
  const opts = { batchSize: 4, steps: 300, copies: 3 };
  const off = await runSteps(key(6), jumpy(), start3(), data, { ...opts, restart: restart3() });
  const on = await runSteps(key(6), jumpy(), start3(), data, { ...opts, restart: restart3({ z: 20, minExcess: 1, maxPerCopy: 100 }) });
  const [xOff, xOn] = [await xs(off.state), await xs(on.state)];
  assert.ok(xOff[2] >= 1000, `without the check chain 2 ran away (x = ${xOff[2]})`);
  assert.equal(off.restarts.length, 0);
  assert.ok(on.restarts.length >= 1 && on.restarts.every((r) => r.copy === 2 && r.reason === "runaway" && r.z > 20), JSON.stringify(on.restarts));
  assert.ok(xOn[2] < 10, `with it chain 2 stays near the others (x = ${xOn[2]})`);
  assert.deepEqual(xOn.slice(0, 2), xOff.slice(0, 2), "chains 0 and 1 are untouched");
  assert.deepEqual(on.strays, []);
  free([off.state, on.state]);
});

test("a chain that runs away again with its restarts used up goes on as a stray: each call it ends as a runaway is recorded", async () => {
  const opts = { batchSize: 4, steps: 300, copies: 3 };
  const many = await runSteps(key(6), jumpy(), start3(), data, { ...opts, restart: restart3({ z: 20, minExcess: 1, maxPerCopy: 100 }) });
  const once = await runSteps(key(6), jumpy(), start3(), data, { ...opts, restart: restart3({ z: 20, minExcess: 1, maxPerCopy: 1 }) });
  assert.equal(once.restarts.length, 1);
  assert.deepEqual(once.restarts[0], many.restarts[0], "the same first runaway");
  assert.ok(once.strays.length >= 1 && once.strays.every((r) => r.copy === 2 && r.step > once.restarts[0].step && r.step <= 300), JSON.stringify(once.strays));
  // Left as it is, chain 2 stays up there: every call after its second runaway ends with it above the limit.
  const from = once.strays[0].step;
  assert.deepEqual(once.strays.map((r) => r.step), Array.from({ length: 300 - from + 1 }, (_, i) => from + i));
  assert.ok((await xs(once.state))[2] >= 1000);
  // With no restarts at all, the first runaway is already a stray.
  const none = await runSteps(key(6), jumpy(), start3(), data, { ...opts, restart: restart3({ z: 20, minExcess: 1, maxPerCopy: 0 }) });
  assert.equal(none.restarts.length, 0);
  assert.equal(none.strays[0].step, many.restarts[0].step);
  assert.deepEqual(many.strays, []);
  free([many.state, once.state, none.state]);
});

test("restartWarnings: one line per divergence, one per chain for its runaways with their count, steps and worst score", () => {
  const w = restartWarnings([
    { copy: 0, step: 12, reason: "non-finite" },
    { copy: 2, step: 300, reason: "runaway", z: 25, excess: 3.21 },
    { copy: 2, step: 410, reason: "runaway", z: 250, excess: 24.7 },
    { copy: 1, step: 500, reason: "runaway", z: 21, excess: 1.5 },
  ], { at: [{ copy: 2, step: 640 }, { copy: 2, step: 648 }, { copy: 0, step: 700 }], leftOut: [1, 0, 0] });
  assert.deepEqual(w, [
    "chain 1 diverged (objective or state not finite) at step 12 and was restarted from its last good state; lower --lr if this recurs",
    "chain 2 ran away at step 500, its objective up to 1.50 per datum above the chains' median (21 robust sd), and was restarted from an earlier state; lower --lr if this recurs",
    "chain 3 ran away 2 times (steps 300 to 410), its objective up to 24.7 per datum above the chains' median (250 robust sd), and was restarted from an earlier state each time; lower --lr if this recurs",
    "chain 1 ran away again with its restarts used up, at step 700; 1 of its draws was taken then and is not in the posterior; lower --lr",
    "chain 3 ran away again with its restarts used up, 2 times (steps 640 to 648); 0 of its draws were taken then and are not in the posterior; lower --lr",
  ]);
});

test("keptDraws: the draws flagged to keep, in order", () => {
  // 4 draws of 2 floats: draw i holds 10 i, 10 i + 1.
  const buf = Float32Array.from({ length: 8 }, (_, i) => 10 * Math.floor(i / 2) + (i % 2));
  assert.deepEqual(Array.from(keptDraws(buf, 2, [true, false, true, false])), [0, 1, 20, 21]);
  assert.equal(keptDraws(buf, 2, [true, true, true, true]), buf);
});

test("a run with the runaway check resumes from a checkpoint exactly: the same restarts and the same final state", async () => {
  const saved: { pos: LoopPosition; state: S }[] = [];
  const opts = { batchSize: 4, steps: 300, copies: 3, restart: restart3({ z: 20, minExcess: 1, maxPerCopy: 100 }) };
  const full = await runSteps(key(6), jumpy(), start3(), data, {
    ...opts,
    checkpoint: { every: 100, save: async (pos, st) => void saved.push({ pos, state: keep(st) }) },
  });
  assert.equal(saved[0].pos.done, 100);
  assert.ok((saved[0].pos.runawayHistory ?? []).length >= RUNAWAY_MIN_HISTORY, "the checkpoint carries the check's history");
  const after = full.restarts.filter((r) => r.step > 100);
  assert.ok(after.length >= 1, `runaways after the checkpoint: ${JSON.stringify(full.restarts)}`);
  // Resumed as the CLI resumes: with the same checkpoint interval (each checkpoint resets the snapshot).
  const again: S[] = [];
  const resumed = await runSteps(key(99), jumpy(), saved[0].state, data, {
    ...opts,
    resume: saved[0].pos,
    checkpoint: { every: 100, save: async (_pos, st) => void again.push(keep(st)) },
  });
  assert.deepEqual(resumed.restarts, after);
  assert.deepEqual(await xs(resumed.state), await xs(full.state));
  free([full.state, resumed.state, ...saved.slice(1).map((s) => s.state), ...again]);
});

test("a resumed run keeps the restarts used and the strays recorded before its checkpoint", async () => {
  const saved: { pos: LoopPosition; state: S }[] = [];
  const opts = { batchSize: 4, steps: 300, copies: 3, restart: restart3({ z: 20, minExcess: 1, maxPerCopy: 1 }) };
  const full = await runSteps(key(6), jumpy(), start3(), data, { ...opts, checkpoint: { every: 50, save: async (pos, st) => void saved.push({ pos, state: keep(st) }) } });
  const at = saved.find((c) => (c.pos.strays ?? []).length > 0 && c.pos.done < 300);
  assert.ok(at, `a checkpoint after the first stray (${JSON.stringify(full.strays.slice(0, 3))})`);
  assert.deepEqual(at.pos.runawayUsed, [0, 0, 1]);
  const resumed = await runSteps(key(99), jumpy(), keep(at.state), data, { ...opts, resume: at.pos, checkpoint: { every: 50, save: async () => {} } });
  assert.deepEqual(resumed.strays, full.strays);
  assert.deepEqual(resumed.restarts, [], "no restart after the checkpoint: chain 2's one restart was used before it");
  assert.deepEqual(resumed.losses, full.losses);
  free([full.state, resumed.state, ...saved.map((s) => s.state)]);
});
