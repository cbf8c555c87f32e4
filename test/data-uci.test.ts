import { after, test } from "node:test";
import assert from "node:assert/strict";
import { splitFingerprint } from "../src/data/fingerprint.js";
import { throwsData } from "./helpers.js";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadUci } from "../src/data/uci.js";


function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}
const uciRoot = resolve(repoRoot(), "../shared/data/uci");
const yacht = join(uciRoot, "yacht");


const meanStd = (v: ArrayLike<number>): [number, number] => {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i];
  m /= v.length;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - m) ** 2;
  return [m, Math.sqrt(s / v.length)];
};
const column = (x: Float32Array, d: number, j: number): number[] => Array.from({ length: x.length / d }, (_, i) => x[i * d + j]);
const lines = (file: string): string[] => readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");

test("UCI yacht split 0: counts match the index files, standardised on train", async () => {
  const s = loadUci(yacht, 0);
  const data = join(yacht, "data");
  const trainIdx = lines(join(data, "index_train_0.txt")).map(Number);
  const testIdx = lines(join(data, "index_test_0.txt")).map(Number);
  assert.equal(s.task, "regression");
  assert.equal(s.train.n, trainIdx.length);
  assert.equal(s.test.n, testIdx.length);
  assert.equal(s.train.n + s.test.n, lines(join(data, "data.txt")).length);
  assert.deepEqual(s.train.xShape, [6]);
  assert.equal(s.train.x.length, s.train.n * 6);
  assert.equal(s.test.x.length, s.test.n * 6);
  assert.ok(s.train.y instanceof Float32Array);
  for (let j = 0; j < 6; j++) {
    const [m, sd] = meanStd(column(s.train.x, 6, j));
    assert.ok(Math.abs(m) < 1e-5, `feature ${j} train mean ${m}`);
    assert.ok(Math.abs(sd - 1) < 1e-4, `feature ${j} train std ${sd}`);
  }
  const [ym, ysd] = meanStd(s.train.y);
  assert.ok(Math.abs(ym) < 1e-5);
  assert.ok(Math.abs(ysd - 1) < 1e-4);
  // targetScale maps standardised targets back to the raw data rows, in index-file order.
  const rows = lines(join(data, "data.txt")).map((l) => l.trim().split(/\s+/).map(Number));
  const ts = s.targetScale!;
  assert.ok(Math.abs(ts.mean + ts.std * s.test.y[0] - rows[testIdx[0]][6]) < 1e-4);
  assert.ok(Math.abs(ts.mean + ts.std * s.train.y[5] - rows[trainIdx[5]][6]) < 1e-4);
  assert.deepEqual(s.splitInfo, { dataset: "yacht", split: 0, nSplits: 20 });
  assert.equal(s.source, `uci:${yacht}`);
  // The data/ subfolder works too and gives the same split.
  assert.equal((splitFingerprint(loadUci(data, 0))), (splitFingerprint(s)));
  assert.notEqual((splitFingerprint(loadUci(yacht, 1))), (splitFingerprint(s)));
});

/** A small valid UCI folder: 10 rows x 3 columns, features 0 1, target 2, 2 splits. */
const fixtures: string[] = [];
after(() => fixtures.forEach((d) => rmSync(d, { recursive: true, force: true })));

function fixture(overrides: Record<string, string | null> = {}): string {
  const root = mkdtempSync(join(tmpdir(), "bayesdl-uci-"));
  fixtures.push(root);
  const dir = join(root, "data");
  mkdirSync(dir);
  const files: Record<string, string> = {
    "data.txt": Array.from({ length: 10 }, (_, i) => ` ${i}\t${(i * i) % 7}   ${2 * i + 1}`).join("\n") + "\n\n\n",
    "index_features.txt": "0\n1\n",
    "index_target.txt": "2\n",
    "n_splits.txt": "2\n",
    "index_train_0.txt": "0\n1\n2\n3\n4\n5\n6\n",
    "index_test_0.txt": "7\n8\n9\n",
    "index_train_1.txt": "3.0\n4.0\n5.0\n6.0\n7.0\n8.0\n9.0\n",
    "index_test_1.txt": "0.0\n1.0\n2.0\n",
  };
  for (const [name, text] of Object.entries({ ...files, ...overrides })) {
    if (text !== null) writeFileSync(join(dir, name), text);
  }
  return root;
}

test("UCI fixture: float-formatted indices and trailing blank lines are accepted", () => {
  const root = fixture();
  const s = loadUci(root, 1);
  assert.equal(s.train.n, 7);
  assert.equal(s.test.n, 3);
  assert.deepEqual(s.train.xShape, [2]);
  const ts = s.targetScale!;
  assert.ok(Math.abs(ts.mean + ts.std * s.test.y[1] - 3) < 1e-5); // row 1: target 2*1+1
  assert.deepEqual(s.splitInfo, { dataset: basename(root), split: 1, nSplits: 2 });
});

test("UCI errors: missing file names it and lists the layout", () => {
  const root = fixture({ "index_test_1.txt": null });
  const f = join(root, "data", "index_test_1.txt");
  throwsData(() => loadUci(root, 1), f, "open", "no such file", "index_train_K.txt", "index_test_K.txt", "n_splits.txt");
  const empty = mkdtempSync(join(tmpdir(), "bayesdl-uci-empty-"));
  throwsData(() => loadUci(empty, 0), join(empty, "data.txt"), "data.txt here or in data/", "no such file");
  const gone = join(empty, "missing-folder");
  throwsData(() => loadUci(gone, 0), gone, "UCI dataset folder", "no such directory");
  rmSync(empty, { recursive: true });
});

test("UCI errors: ragged row, blank line inside the data", () => {
  const root = fixture({ "data.txt": "1 2 3\n4 5 6\n7 8 9\n1 2\n5 5 5\n" });
  throwsData(() => loadUci(root, 0), join(root, "data", "data.txt"), "line 4", "expected 3 columns, got 2");
  const blank = fixture({ "data.txt": "1 2 3\n4 5 6\n\n7 8 9\n" });
  throwsData(() => loadUci(blank, 0), join(blank, "data", "data.txt"), "line 3", "expected 3 columns, got 0");
});

test("UCI errors: non-numeric cell", () => {
  const rows = Array.from({ length: 10 }, (_, i) => `${i} ${i} ${i}`);
  rows[4] = "4 abc 4";
  const root = fixture({ "data.txt": rows.join("\n") });
  throwsData(() => loadUci(root, 0), join(root, "data", "data.txt"), "line 5, column 2 (index 1)", 'expected a number, got "abc"');
});

test("UCI errors: split index out of range or not an integer", () => {
  const root = fixture({ "index_train_0.txt": "0\n1\n10\n" });
  throwsData(() => loadUci(root, 0), join(root, "data", "index_train_0.txt"), "line 3", "row index of data.txt in 0..9", "got 10");
  const neg = fixture({ "index_test_0.txt": "7\n-1\n" });
  throwsData(() => loadUci(neg, 0), join(neg, "data", "index_test_0.txt"), "line 2", "in 0..9", "got -1");
  const frac = fixture({ "index_test_0.txt": "7\n8.5\n" });
  throwsData(() => loadUci(frac, 0), join(frac, "data", "index_test_0.txt"), "line 2", "an integer row index", 'got "8.5"');
  const col = fixture({ "index_features.txt": "0\n3\n" });
  throwsData(() => loadUci(col, 0), join(col, "data", "index_features.txt"), "line 2", "column index of data.txt in 0..2", "got 3");
});

test("UCI errors: split K beyond n_splits", () => {
  const root = fixture();
  throwsData(() => loadUci(root, 2), join(root, "data", "n_splits.txt"), "line 1 (n_splits = 2)", "split number in 0..1", "got 2");
  throwsData(() => loadUci(root, -1), join(root, "data", "n_splits.txt"), "got -1");
  const bad = fixture({ "n_splits.txt": "two\n" });
  throwsData(() => loadUci(bad, 0), join(bad, "data", "n_splits.txt"), "one positive integer", '"two"');
});

test("UCI errors: overlapping train/test indices, duplicates, target among features", () => {
  const root = fixture({ "index_test_0.txt": "7\n8\n3\n" });
  throwsData(() => loadUci(root, 0), join(root, "data", "index_test_0.txt"), "line 3", "not in index_train_0.txt", "got 3 (also at line 4 of index_train_0.txt)");
  const dup = fixture({ "index_train_0.txt": "0\n1\n2\n1\n" });
  throwsData(() => loadUci(dup, 0), join(dup, "data", "index_train_0.txt"), "line 4", "each row index once", "got 1 again (first at line 2)");
  const leak = fixture({ "index_features.txt": "0\n2\n" });
  throwsData(() => loadUci(leak, 0), join(leak, "data", "index_features.txt"), "line 2", "other than the target", "got 2");
  const two = fixture({ "index_target.txt": "1\n2\n" });
  throwsData(() => loadUci(two, 0), join(two, "data", "index_target.txt"), "line 2", "exactly one target column index", "got 2 indices");
});
