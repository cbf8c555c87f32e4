import { after, test } from "node:test";
import assert from "node:assert/strict";
import { splitFingerprint } from "../src/data/fingerprint.js";
import { throwsData } from "./helpers.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCsv } from "../src/data/csv.js";
import type { ArrayData } from "../src/data/types.js";

const dir = mkdtempSync(join(tmpdir(), "bayesdl-csv-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let count = 0;
const csv = (text: string): string => {
  const p = join(dir, `t${count++}.csv`);
  writeFileSync(p, text);
  return p;
};


/** Rows `i, (7i mod 5), 3i + 1`. */
const rows = (n: number, delim = ","): string =>
  Array.from({ length: n }, (_, i) => [i, (i * 7) % 5, 3 * i + 1].join(delim)).join("\n");

/** Labels of `data` ordered by its first input (standardisation keeps the order). */
const labelsByFirstInput = (data: ArrayData): number[] => {
  const d = data.xShape[0];
  return Array.from({ length: data.n }, (_, i) => i)
    .sort((i, j) => data.x[i * d] - data.x[j * d])
    .map((i) => data.y[i]);
};

test("CSV with header: target by name, regression standardised on train", async () => {
  const p = csv(`a,b,y\n${rows(20)}\n`);
  const s = loadCsv(p, { target: "y", seed: 1 });
  assert.equal(s.task, "regression");
  assert.equal(s.train.n, 16);
  assert.equal(s.test.n, 4);
  assert.deepEqual(s.train.xShape, [2]);
  assert.ok(s.train.y instanceof Float32Array);
  let m = 0;
  for (let i = 0; i < s.train.n; i++) m += s.train.x[2 * i];
  assert.ok(Math.abs(m / s.train.n) < 1e-5);
  assert.ok(Math.abs(s.train.y.reduce((a, b) => a + b, 0) / s.train.n) < 1e-5);
  const ts = s.targetScale!;
  const original = new Set(Array.from({ length: 20 }, (_, i) => 3 * i + 1));
  for (const part of [s.train, s.test]) {
    for (const v of part.y) assert.ok(original.has(Math.round(ts.mean + ts.std * v)));
  }
  assert.equal((splitFingerprint(loadCsv(p, { target: "y", seed: 1 }))), (splitFingerprint(s)));
  assert.notEqual((splitFingerprint(loadCsv(p, { target: "y", seed: 2 }))), (splitFingerprint(s)));
  assert.deepEqual(s.splitInfo, { seed: 1, testSize: 4, target: "y", task: "regression" });
  assert.match(s.taskNote!, /^regression \(inferred: the target holds 20 distinct integers/);
  assert.equal(s.source, `csv:${p}`);
});

test("CSV without header: target by index (number or digit string), test size options", async () => {
  const p = csv(rows(10));
  const a = loadCsv(p, { target: 2, seed: 0, testFraction: 0.3, task: "regression" });
  assert.equal(a.train.n, 7);
  assert.equal(a.test.n, 3);
  assert.equal((splitFingerprint(loadCsv(p, { target: "2", seed: 0, testFraction: 0.3, task: "regression" }))), (splitFingerprint(a)));
  const c = loadCsv(p, { target: 0, seed: 0, testSize: 2, task: "regression" });
  assert.equal(c.test.n, 2);
  assert.deepEqual(c.train.xShape, [2]);
  assert.throws(() => loadCsv(p, { target: 0, seed: 0, testSize: 10, task: "regression" }), /--test-size must be an integer in 1\.\.9 for .* \(10 data rows\), got 10/);
  assert.throws(() => loadCsv(p, { target: 0, seed: 0, testFraction: 1, task: "regression" }), /testFraction/);
});

test("CSV quoted fields, CRLF, blank lines; text labels become sorted classes", () => {
  const p = csv('"first, name","say ""hi""",label\r\n"1",2,"x, y"\r\n3,"4",z\r\n\r\n5,6,"x, y"\r\n\r\n');
  const s = loadCsv(p, { target: "label", seed: 0, testSize: 0 });
  assert.equal(s.task, "classification");
  assert.equal(s.numClasses, 2);
  assert.equal(s.train.n, 3);
  assert.ok(s.train.y instanceof Int32Array);
  assert.deepEqual(labelsByFirstInput(s.train), [0, 1, 0]);
  assert.equal(s.splitInfo.classes, JSON.stringify(["x, y", "z"]));
  // Spaces around fields (and after closing quotes) are padding; spaces inside quotes are kept.
  const padded = loadCsv(csv('x , y\n "1" , " a"\n 2 ,b \n'), { target: "y", seed: 0, testSize: 0 });
  assert.equal(padded.splitInfo.classes, JSON.stringify([" a", "b"]));
  // The quoted header name with escaped quotes is usable as a target; the text column is then an input.
  throwsData(() => loadCsv(p, { target: 'say "hi"', seed: 0, task: "classification" }), p, 'line 2, column "label" (index 2)', 'got "x, y"');
});

test("CSV semicolon and tab delimiters", async () => {
  const semi = loadCsv(csv(`a;b;y\n${rows(10, ";")}`), { target: "y", seed: 3, task: "regression" });
  const comma = loadCsv(csv(`a,b,y\n${rows(10)}`), { target: "y", seed: 3, task: "regression" });
  const tab = loadCsv(csv(`a\tb\ty\n${rows(10, "\t")}`), { target: "y", seed: 3, task: "regression" });
  assert.equal((splitFingerprint(semi)), (splitFingerprint(comma)));
  assert.equal((splitFingerprint(tab)), (splitFingerprint(comma)));
});

test("CSV numeric class labels sort numerically; text labels without header need no header", () => {
  const p = csv("x,label\n0,10\n1,2\n2,9\n3,10\n");
  const s = loadCsv(p, { target: "label", seed: 0, testSize: 0, task: "classification" });
  assert.equal(s.numClasses, 3);
  assert.deepEqual(labelsByFirstInput(s.train), [2, 0, 1, 2]);
  assert.equal(s.splitInfo.classes, JSON.stringify(["2", "9", "10"]));
  const iris = loadCsv(csv("5.1,3.5,setosa\n4.9,3.0,versicolor\n4.7,3.2,setosa\n"), { target: 2, seed: 0, testSize: 0 });
  assert.equal(iris.train.n, 3); // the first row is data, not a header
  assert.equal(iris.task, "classification");
  assert.deepEqual(labelsByFirstInput(iris.train), [0, 1, 0]);
});

test("CSV errors: ragged rows report 1-based line numbers", () => {
  const p = csv("a,b,y\n1,2,3\n4,5,6\n7,8\n9,10,11\n");
  throwsData(() => loadCsv(p, { target: "y", seed: 0 }), p, "line 4", "expected 3 columns, got 2");
  const q = csv('1,2,3\n"multi\nline",5,6\n7,8,9,10\n');
  throwsData(() => loadCsv(q, { target: 2, seed: 0 }), q, "line 4", "expected 3 columns, got 4");
});

test("CSV errors: non-numeric cells name line, column and text", () => {
  const p = csv("a,b,y\n1,2,3\n4,oops,6\n");
  throwsData(() => loadCsv(p, { target: "y", seed: 0, task: "regression" }), p, 'line 3, column "b" (index 1)', 'expected a number, got "oops"');
  const q = csv("1,2,3\n4,5,6\n7,8,\n");
  throwsData(() => loadCsv(q, { target: 0, seed: 0, task: "regression" }), q, "line 3, column 3 (index 2)", 'got ""');
  const r = csv("a,y\n1,2\n3,many\n");
  throwsData(() => loadCsv(r, { target: "y", seed: 0, task: "regression" }), r, 'line 3, column "y"', 'got "many"');
});

test("CSV errors: missing target column lists the available columns", () => {
  const p = csv("alpha,beta,gamma\n1,2,3\n");
  throwsData(() => loadCsv(p, { target: "delta", seed: 0 }), p, "line 1", '"alpha", "beta", "gamma"', 'got "delta"');
  throwsData(() => loadCsv(p, { target: 3, seed: 0 }), p, "index 0..2", "got 3");
  const q = csv("1,2,3\n");
  throwsData(() => loadCsv(q, { target: "gamma", seed: 0 }), q, "column index 0..2 (no header row)", 'got "gamma"');
});

test("CSV errors: empty file, header only, single column, unterminated quote", () => {
  const e = csv("");
  throwsData(() => loadCsv(e, { target: 0, seed: 0 }), e, "line 1", "at least one data row", "an empty file");
  const blank = csv("\n  \n\n");
  throwsData(() => loadCsv(blank, { target: 0, seed: 0 }), blank, "an empty file");
  const h = csv("a,b,y\n");
  throwsData(() => loadCsv(h, { target: "y", seed: 0 }), h, "line 2", "at least one data row after the header");
  const one = csv("1\n2\n");
  throwsData(() => loadCsv(one, { target: 0, seed: 0 }), one, "line 1", "at least 2 columns");
  const open = csv('a,b\n1,"2\n3,4\n');
  throwsData(() => loadCsv(open, { target: "b", seed: 0 }), open, "line 2", "closing quote");
  const missing = join(dir, "nope.csv");
  throwsData(() => loadCsv(missing, { target: 0, seed: 0 }), missing, "open", "no such file");
});
