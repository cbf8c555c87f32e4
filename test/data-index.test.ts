import { test } from "node:test";
import assert from "node:assert/strict";
import { splitFingerprint } from "../src/data/fingerprint.js";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DATA_SOURCE_FORMS, fingerprint, loadData, toyRegressionGap, twoMoons, writeIdx } from "../src/data/index.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

test("toy regression gap: deterministic, no training inputs in the gap, grid over [-6, 6]", async () => {
  const a = toyRegressionGap({ seed: 3 });
  assert.equal((splitFingerprint(a)), (splitFingerprint(toyRegressionGap({ seed: 3 }))));
  assert.notEqual((splitFingerprint(a)), (splitFingerprint(toyRegressionGap({ seed: 4 }))));
  assert.equal(a.task, "regression");
  assert.deepEqual(a.train.xShape, [1]);
  assert.equal(a.train.n, 160);
  let left = 0;
  for (const x of a.train.x) {
    assert.ok((x >= -4 && x <= -1) || (x >= 1 && x <= 4), `x = ${x}`);
    if (x < 0) left++;
  }
  assert.equal(left, 80);
  assert.equal(a.test.n, 241);
  assert.equal(a.test.x[0], -6);
  assert.equal(a.test.x[240], 6);
  assert.ok(Array.from(a.test.x).some((x) => Math.abs(x) < 0.5));
  for (let i = 0; i < a.train.n; i++) assert.ok(Math.abs(a.train.y[i] - Math.sin(1.5 * a.train.x[i])) < 0.6);
  assert.deepEqual(a.targetScale, { mean: 0, std: 1 });
  const b = toyRegressionGap({ seed: 0, n: 11, noise: 0, gridSize: 5 });
  assert.equal(b.train.n, 11);
  assert.deepEqual(Array.from(b.test.x), [-6, -3, 0, 3, 6]);
  assert.ok(Math.abs(b.test.y[1] - Math.sin(-4.5)) < 1e-6);
});

test("two moons: deterministic, balanced, two classes, right geometry", async () => {
  const s = twoMoons({ seed: 1, n: 101, noise: 0 });
  assert.equal((splitFingerprint(s)), (splitFingerprint(twoMoons({ seed: 1, n: 101, noise: 0 }))));
  assert.notEqual((splitFingerprint(s)), (splitFingerprint(twoMoons({ seed: 2, n: 101, noise: 0 }))));
  assert.equal(s.numClasses, 2);
  assert.deepEqual(s.train.xShape, [2]);
  assert.equal(s.test.n, 101);
  const ones = Array.from(s.train.y).filter((v) => v === 1).length;
  assert.equal(ones, 51);
  for (let i = 0; i < s.train.n; i++) {
    const [x, y] = [s.train.x[2 * i], s.train.x[2 * i + 1]];
    const [cx, cy] = s.train.y[i] === 0 ? [0, 0] : [1, 0.5];
    assert.ok(Math.abs(Math.hypot(x - cx, y - cy) - 1) < 1e-5);
  }
  assert.equal(twoMoons({ seed: 1, noise: 0.2 }).train.n, 200);
});

test("loadData dispatches every source form", async (t) => {
  const m = loadData("mnist", { seed: 2, testSize: 1000 });
  assert.equal(m.test.n, 1000);
  assert.equal(m.source, "mnist");
  const uciRel = relative(process.cwd(), resolve(repoRoot(), "../shared/data/uci/yacht"));
  const u = loadData(`uci:${uciRel}`, { split: 3 });
  assert.equal(u.source, `uci:${uciRel}`);
  assert.equal(u.splitInfo.split, 3);
  assert.equal((splitFingerprint(loadData("toy:regression-gap", { seed: 5 }))), (splitFingerprint(toyRegressionGap({ seed: 5 }))));
  assert.equal((splitFingerprint(loadData("toy:two-moons"))), (splitFingerprint(twoMoons({ seed: 0 }))));

  const dir = mkdtempSync(join(tmpdir(), "bayesdl-src-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const csvPath = join(dir, "d.csv");
  writeFileSync(csvPath, "a,b\n1,2\n3,4\n5,6\n7,9\n8,1\n");
  const c = loadData(`csv:${csvPath}`, { target: "b", task: "regression", seed: 1, testSize: 1 });
  assert.equal(c.test.n, 1);
  assert.equal(c.source, `csv:${csvPath}`);
  assert.throws(() => loadData(`csv:${csvPath}`), /needs --target <column>/);

  const img = join(dir, "i.idx");
  const lbl = join(dir, "l.idx.gz");
  writeFileSync(img, writeIdx(new Uint8Array(10 * 4), [10, 2, 2]));
  writeFileSync(lbl, writeIdx(Uint8Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]), [10], { gzip: true }));
  const fit = loadData(`idx:${img},${lbl}`, { seed: 0 });
  assert.equal(fit.train.n, 8);
  assert.equal(fit.test.n, 2);
  assert.equal(fit.numClasses, 3);
  const ev = loadData(`idx:${img},${lbl}`, { role: "evaluate" });
  assert.equal(ev.train.n, 0);
  assert.equal(ev.test.n, 10);
  assert.equal(ev.source, `idx:${img},${lbl}`);
});

test("loadData rejects unknown sources and lists the accepted forms", () => {
  for (const bad of ["foo:bar", "cifar", "toy:spirals", "mnist:extra", "idx:onlyone", "uci:", "csv:"]) {
    assert.throws(
      () => loadData(bad),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.ok(e.message.includes(`"${bad}"`), e.message);
        for (const form of DATA_SOURCE_FORMS) assert.ok(e.message.includes(form), e.message);
        return true;
      },
    );
  }
});

test("fingerprint covers train and test, inputs and targets", async () => {
  const base = { xShape: [2], n: 2 };
  const a = { ...base, x: Float32Array.from([1, 2, 3, 4]), y: Int32Array.from([0, 1]) };
  const b = { ...base, x: Float32Array.from([5, 6, 7, 8]), y: Int32Array.from([1, 1]) };
  const f = fingerprint(a, b);
  assert.match(f, /^[0-9a-f]{64}$/);
  assert.equal(f, fingerprint({ ...a }, { ...b }));
  assert.notEqual(f, fingerprint(b, a));
  assert.notEqual(f, fingerprint(a, { ...b, y: Int32Array.from([1, 0]) }));
  assert.notEqual(f, fingerprint({ ...a, x: Float32Array.from([1, 2, 3, 5]) }, b));
});
