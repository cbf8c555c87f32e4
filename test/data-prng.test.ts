import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { createRng, permutation, seedToUint32, shuffleInPlace } from "../src/data/prng.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

test("createRng is deterministic and seeds give different streams", () => {
  const a = createRng(42);
  const b = createRng(42);
  const c = createRng(43);
  const sa = Array.from({ length: 8 }, () => a.nextUint32());
  const sb = Array.from({ length: 8 }, () => b.nextUint32());
  const sc = Array.from({ length: 8 }, () => c.nextUint32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  for (const v of sa) assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32);
});

test("next is in [0,1), nextInt is in range and roughly uniform, normal has unit variance", () => {
  const r = createRng(7);
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 60000; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    counts[r.nextInt(6)]++;
  }
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 500, `count ${c}`);
  let s = 0;
  let ss = 0;
  const m = 20000;
  for (let i = 0; i < m; i++) {
    const z = r.normal();
    s += z;
    ss += z * z;
  }
  assert.ok(Math.abs(s / m) < 0.05);
  assert.ok(Math.abs(ss / m - 1) < 0.05);
});

test("seeds must be safe integers; large and negative seeds fold to 32 bits", () => {
  assert.throws(() => createRng(1.5), RangeError);
  assert.throws(() => createRng(Number.NaN), RangeError);
  for (const s of [-1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
    const u = seedToUint32(s);
    assert.ok(Number.isInteger(u) && u >= 0 && u < 2 ** 32);
  }
  assert.equal(seedToUint32(12345), 12345);
  assert.notEqual(seedToUint32(-1), seedToUint32(0xffffffff));
  assert.notEqual(seedToUint32(2 ** 32), seedToUint32(0));
  assert.throws(() => createRng(0).nextInt(0), RangeError);
});

test("permutation is a deterministic permutation of 0..n-1", () => {
  const p = permutation(1000, 3);
  assert.deepEqual(Array.from(p).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(p, permutation(1000, 3));
  assert.notDeepEqual(p, permutation(1000, 4));
  assert.equal(permutation(0, 1).length, 0);
  const arr = ["a", "b", "c", "d"];
  shuffleInPlace(arr, createRng(1));
  assert.deepEqual([...arr].sort(), ["a", "b", "c", "d"]);
});

test("no Math.random calls in src/data", () => {
  const dir = resolve(repoRoot(), "src/data");
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
    assert.doesNotMatch(readFileSync(join(dir, f), "utf8"), /Math\.random\s*\(/, f);
  }
});
