import { after, test } from "node:test";
import assert from "node:assert/strict";
import { splitFingerprint } from "../src/data/fingerprint.js";
import { throwsData } from "./helpers.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { loadIdx, loadIdxArrays, parseIdx, readIdx, writeIdx, type IdxValues } from "../src/data/idx.js";


const dir = mkdtempSync(join(tmpdir(), "bayesdl-idx-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, bytes: Uint8Array): string => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};


const samples: [string, IdxValues][] = [
  ["uint8", Uint8Array.from([0, 1, 127, 128, 255, 9])],
  ["int8", Int8Array.from([-128, -1, 0, 1, 127, 5])],
  ["int16", Int16Array.from([-32768, -2, 0, 300, 32767, 7])],
  ["int32", Int32Array.from([-(2 ** 31), -5, 0, 70000, 2 ** 31 - 1, 3])],
  ["float32", Float32Array.from([-1.5, 0, 0.25, 3.4e38, 1e-30, 2])],
  ["float64", Float64Array.from([-1.5, 0, Math.PI, 1e300, -1e-300, 2])],
];

test("IDX round trip for every dtype, plain and gzipped", () => {
  for (const [dtype, data] of samples) {
    for (const gzip of [false, true]) {
      const bytes = writeIdx(data, [2, 3], { gzip });
      assert.equal(bytes[0] === 0x1f && bytes[1] === 0x8b, gzip);
      const back = parseIdx(bytes, `${dtype}.idx`);
      assert.equal(back.dtype, dtype);
      assert.deepEqual(back.shape, [2, 3]);
      assert.equal(back.gzipped, gzip);
      assert.equal(back.data.constructor, data.constructor);
      assert.deepEqual(Array.from(back.data), Array.from(data));
    }
  }
});

test("writeIdx produces the standard big-endian header", () => {
  const bytes = writeIdx(new Uint8Array(2 * 28 * 28), [2, 28, 28]);
  assert.deepEqual(Array.from(bytes.subarray(0, 16)), [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]);
  assert.equal(bytes.length, 16 + 2 * 784);
  assert.deepEqual(Array.from(writeIdx(Int16Array.from([258]), [1]).subarray(8)), [1, 2]);
  assert.throws(() => writeIdx(new Uint8Array(5), [2, 3]), /holds 6 values, data has 5/);
  assert.throws(() => writeIdx(new Uint8Array(0), []), RangeError);
});

test("loadIdxArrays scales uint8 images to [0,1] and reads labels", () => {
  const pixels = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i * 37) % 256);
  const img = write("img.idx", writeIdx(pixels, [3, 4, 5]));
  const lbl = write("lbl.idx.gz", writeIdx(Uint8Array.from([2, 0, 7]), [3], { gzip: true }));
  const a = loadIdxArrays(img, lbl);
  assert.equal(a.n, 3);
  assert.deepEqual(a.xShape, [1, 4, 5]);
  assert.deepEqual(Array.from(a.y), [2, 0, 7]);
  assert.ok(a.y instanceof Int32Array);
  assert.equal(a.numClasses, 8);
  assert.equal(a.x[1], Math.fround(37 / 255));
  for (const v of a.x) assert.ok(v >= 0 && v <= 1);
  // Non-uint8 images keep their values; 2-D images keep their row shape.
  const f = write("feat.idx", writeIdx(Float32Array.from([1.5, -2, 3, 4]), [2, 2]));
  const l2 = write("l2.idx", writeIdx(Int32Array.from([1, 0]), [2]));
  const b = loadIdxArrays(f, l2);
  assert.deepEqual(b.xShape, [2]);
  assert.deepEqual(Array.from(b.x), [1.5, -2, 3, 4]);
});

test("loadIdx splits by seed; role evaluate puts everything in test", async () => {
  const n = 50;
  const img = write("s-img.idx", writeIdx(Uint8Array.from({ length: n * 4 }, (_, i) => i % 256), [n, 2, 2]));
  const lbl = write("s-lbl.idx", writeIdx(Uint8Array.from({ length: n }, (_, i) => i % 10), [n]));
  const a = loadIdx(img, lbl, { seed: 1 });
  assert.equal(a.train.n, 40);
  assert.equal(a.test.n, 10);
  assert.equal(a.source, `idx:${img},${lbl}`);
  assert.equal(a.numClasses, 10);
  assert.equal((splitFingerprint(loadIdx(img, lbl, { seed: 1 }))), (splitFingerprint(a)));
  assert.notEqual((splitFingerprint(loadIdx(img, lbl, { seed: 2 }))), (splitFingerprint(a)));
  assert.equal(loadIdx(img, lbl, { seed: 1, testSize: 5 }).test.n, 5);
  const e = loadIdx(img, lbl, { role: "evaluate" });
  assert.equal(e.train.n, 0);
  assert.equal(e.train.x.length, 0);
  assert.deepEqual(e.train.xShape, [1, 2, 2]);
  assert.equal(e.test.n, n);
  assert.deepEqual(Array.from(e.test.y), Array.from({ length: n }, (_, i) => i % 10));
});

test("IDX errors: wrong magic", () => {
  const p = write("magic.idx", Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]));
  throwsData(() => readIdx(p), p, "byte 0", "IDX magic", "50 4b 03 04");
});

test("IDX errors: unknown dtype code", () => {
  const p = write("dtype.idx", Uint8Array.from([0, 0, 0x07, 1, 0, 0, 0, 1, 5]));
  throwsData(() => readIdx(p), p, "byte 2", "dtype code", "got 0x07");
});

test("IDX errors: truncated body, truncated header, short file, trailing bytes, ndim 0", () => {
  const full = writeIdx(new Uint8Array(2 * 3 * 3), [2, 3, 3]);
  const cut = write("cut.idx", full.subarray(0, full.length - 5));
  throwsData(() => readIdx(cut), cut, `byte ${full.length - 5}`, `expected ${full.length} bytes`, `got ${full.length - 5} bytes`, "truncated");
  const head = write("head.idx", full.subarray(0, 10));
  throwsData(() => readIdx(head), head, "byte 10", "16-byte header", "got 10 bytes");
  const tiny = write("tiny.idx", Uint8Array.from([0, 0]));
  throwsData(() => readIdx(tiny), tiny, "byte 2", "truncated", "got 2 bytes");
  const extra = write("extra.idx", Uint8Array.from([...full, 1, 2]));
  throwsData(() => readIdx(extra), extra, `byte ${full.length}`, "trailing bytes", `got ${full.length + 2} bytes`);
  const zero = write("zero.idx", Uint8Array.from([0, 0, 8, 0]));
  throwsData(() => readIdx(zero), zero, "byte 3", "ndim >= 1");
  const int32 = writeIdx(new Int32Array(4), [4]);
  const cutGz = write("cut32.idx.gz", gzipSync(int32.subarray(0, int32.length - 1)));
  throwsData(() => readIdx(cutGz), cutGz, `byte ${int32.length - 1} (after gunzip)`, `expected ${int32.length} bytes`);
});

test("IDX errors: corrupted gzip", () => {
  const gz = writeIdx(Uint8Array.from({ length: 400 }, (_, i) => i % 7), [400], { gzip: true });
  const truncated = write("trunc.idx.gz", gz.subarray(0, gz.length - 12));
  throwsData(() => readIdx(truncated), truncated, "byte 0 (gzip stream)", "valid gzip stream", "zlib error");
  const garbled = Uint8Array.from(gz);
  for (let i = 10; i < garbled.length - 8; i++) garbled[i] ^= 0x5a;
  const bad = write("garbled.idx.gz", garbled);
  throwsData(() => readIdx(bad), bad, "gzip stream", "zlib error");
});

test("IDX errors: image/label count mismatch", () => {
  const img = write("m-img.idx", writeIdx(new Uint8Array(5 * 4), [5, 2, 2]));
  const lbl = write("m-lbl.idx", writeIdx(new Uint8Array(4), [4]));
  throwsData(() => loadIdxArrays(img, lbl), lbl, "byte 4", "expected 5 labels", img, "got 4");
});

test("IDX errors: labels out of range, non-integer, or not 1-D", () => {
  const img = write("r-img.idx", writeIdx(new Uint8Array(3 * 4), [3, 2, 2]));
  const neg = write("neg.idx", writeIdx(Int8Array.from([1, -3, 2]), [3]));
  throwsData(() => loadIdxArrays(img, neg), neg, "byte 9 (label 1)", "integer class label in 0..65535", "got -3");
  const big = write("big.idx", writeIdx(Int32Array.from([1, 2, 70000]), [3]));
  throwsData(() => loadIdxArrays(img, big), big, "byte 16 (label 2)", "got 70000");
  const frac = write("frac.idx.gz", writeIdx(Float32Array.from([1, 2.5, 0]), [3], { gzip: true }));
  throwsData(() => loadIdxArrays(img, frac), frac, "byte 12 (after gunzip) (label 1)", "got 2.5");
  const twoD = write("2d.idx", writeIdx(new Uint8Array(3), [3, 1]));
  throwsData(() => loadIdxArrays(img, twoD), twoD, "byte 3", "1-D label file", "ndim 2");
});

test("IDX errors: no images, or image values that are not finite in float32 (found by test/fuzz-idx.test.ts)", () => {
  const lbl0 = write("e-lbl.idx", writeIdx(new Uint8Array(0), [0]));
  const empty = write("e-img.idx", writeIdx(new Uint8Array(0), [0, 28, 28]));
  throwsData(() => loadIdxArrays(empty, lbl0), empty, "byte 4", "at least one image", "got 0");
  const lbl = write("f-lbl.idx", writeIdx(Uint8Array.from([0, 1]), [2]));
  const nan = write("nan.idx", writeIdx(Float32Array.from([0, 1, NaN, 2]), [2, 2]));
  throwsData(() => loadIdxArrays(nan, lbl), nan, "byte 20 (value 2)", "a finite image value", "got NaN");
  const inf = write("inf.idx.gz", writeIdx(Float64Array.from([0, -Infinity, 1, 2]), [2, 2], { gzip: true }));
  throwsData(() => loadIdxArrays(inf, lbl), inf, "byte 20 (after gunzip) (value 1)", "got -Infinity");
  const wide = write("wide.idx", writeIdx(Float64Array.from([0, 1, 2, -1e300]), [2, 2]));
  throwsData(() => loadIdxArrays(wide, lbl), wide, "byte 36 (value 3)", "within float32 range", "got -1e+300");
});

test("IDX errors: a header claiming 255 dimensions gives a short message", () => {
  const bytes = new Uint8Array(4 + 4 * 255);
  bytes[2] = 0x08;
  bytes[3] = 255;
  for (let i = 0; i < 255; i++) bytes[4 + 4 * i + 3] = 2; // every dimension 2: 2^255 values
  const p = write("dims255.idx", bytes);
  throwsData(() => readIdx(p), p, "byte 1024", "1024-byte header + 2x2x2x2x2x2x2x2x... (255 dimensions) uint8 values", "truncated");
  assert.throws(() => readIdx(p), (e: Error) => e.message.length < 300);
});

test("IDX errors: missing file is named", () => {
  const p = join(dir, "nope.idx");
  throwsData(() => readIdx(p), p, "open", "no such file");
});
