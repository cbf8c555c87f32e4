import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from "../src/io/safetensors.js";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors-file.js";

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bayesdl-st-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Float32 little-endian bytes of `values`, built independently of the encoder. */
function f32le(values: number[]): number[] {
  const dv = new DataView(new ArrayBuffer(values.length * 4));
  values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
  return [...new Uint8Array(dv.buffer)];
}

/** Assemble a raw file: u64le(header length) + header + data (for malformed cases). */
function rawFile(header: string, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test("written file is byte-for-byte the safetensors layout", async () => {
  await withTmp(async (dir) => {
    const path = join(dir, "t.safetensors");
    // "b" is given first; tensors are laid out sorted by name, so "a" comes first.
    await writeSafetensors(
      path,
      {
        b: { dtype: "F32", shape: [3], data: new Float32Array([1.5, -2, 0.1]) },
        a: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      },
      { k: "v" },
    );
    const bytes = new Uint8Array(await readFile(path));
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    const json =
      '{"__metadata__":{"k":"v"},' +
      '"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
      '"b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}}';
    // exact header text, padded with spaces to a multiple of 8
    assert.equal(headerText, json + " ".repeat(n - json.length));
    assert.ok(n - json.length < 8);
    assert.deepEqual(JSON.parse(headerText), {
      __metadata__: { k: "v" },
      a: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
      b: { dtype: "F32", shape: [3], data_offsets: [16, 28] },
    });
    // first 8 bytes = header length as little-endian u64
    assert.deepEqual([...bytes.subarray(0, 8)], [n & 0xff, (n >> 8) & 0xff, 0, 0, 0, 0, 0, 0]);
    assert.equal(bytes.length, 8 + n + 28);
    const base = 8 + n;
    assert.deepEqual([...bytes.subarray(base + 0, base + 16)], f32le([1, 2, 3, 4]));
    assert.deepEqual([...bytes.subarray(base + 16, base + 28)], f32le([1.5, -2, 0.1]));
    // no temporary file left behind
    assert.deepEqual(await readdir(dir), ["t.safetensors"]);
  });
});

test("round trip: all dtypes, scalars, empty tensors, metadata", async () => {
  await withTmp(async (dir) => {
    const path = join(dir, "r.safetensors");
    const tensors = {
      "layers.0.w": { shape: [2, 3], data: new Float32Array([1, -2, 3.25, 4, 5, 6e-8]) },
      f64: { shape: [2], data: new Float64Array([Math.PI, -1e300]) },
      i32: { shape: [3], data: new Int32Array([-1, 0, 2147483647]) },
      u8: { shape: [1, 4], data: new Uint8Array([0, 1, 254, 255]) },
      i64: { shape: [2], data: new BigInt64Array([-(2n ** 62n), 123n]) },
      scalar: { shape: [], data: new Float32Array([7]) },
      empty: { shape: [0, 5], data: new Float32Array(0) },
    };
    await writeSafetensors(path, tensors, { bayesdl: '{"x":1}', other: "é" });
    const { tensors: got, metadata } = await readSafetensors(path);
    assert.deepEqual(metadata, { bayesdl: '{"x":1}', other: "é" });
    assert.deepEqual(Object.keys(got).sort(), Object.keys(tensors).sort());
    const dtypes: Record<string, string> = { "layers.0.w": "F32", f64: "F64", i32: "I32", u8: "U8", i64: "I64", scalar: "F32", empty: "F32" };
    for (const [name, t] of Object.entries(tensors)) {
      assert.equal(got[name].dtype, dtypes[name]);
      assert.deepEqual(got[name].shape, t.shape);
      assert.deepEqual(got[name].data, t.data);
    }
  });
});

test("decoded data is a copy from a subarray with a non-zero offset", () => {
  const enc = encodeSafetensors({ x: { shape: [2], data: new Float64Array([1, 2]) } });
  const padded = new Uint8Array(enc.length + 3);
  padded.set(enc, 3);
  const { tensors } = decodeSafetensors(padded.subarray(3));
  assert.deepEqual([...tensors.x.data], [1, 2]);
  assert.equal(tensors.x.data.byteOffset, 0);
});

test("no metadata -> no __metadata__ key; decoder returns {}", () => {
  const enc = encodeSafetensors({ x: { shape: [1], data: new Float32Array([1]) } });
  const n = Number(new DataView(enc.buffer).getBigUint64(0, true));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(enc.subarray(8, 8 + n))), {
    x: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
  });
  assert.deepEqual(decodeSafetensors(enc).metadata, {});
});

test("encoder rejects inconsistent input", () => {
  assert.throws(() => encodeSafetensors({ x: { shape: [3], data: new Float32Array(2) } }), /shape \[3\] has 3 elements but data has 2/);
  assert.throws(() => encodeSafetensors({ x: { dtype: "F64", shape: [2], data: new Float32Array(2) } }), /dtype F64 does not match/);
  assert.throws(() => encodeSafetensors({ x: { shape: [-1], data: new Float32Array(0) } }), /not a list of non-negative integers/);
  assert.throws(() => encodeSafetensors({ __metadata__: { shape: [0], data: new Float32Array(0) } }), /reserved/);
});

test("malformed files: each gives its error naming the file", async () => {
  const F = "bad.safetensors";
  const data8 = new Uint8Array(f32le([1, 2]));
  const cases: [string, Uint8Array, RegExp][] = [
    ["too short", new Uint8Array(5), /too short for the 8-byte header length/],
    ["header length beyond file", rawFile("{}", new Uint8Array(0), 100n), /header length 100 is beyond the end of the file \(2 bytes/],
    ["huge header length", rawFile("{}", new Uint8Array(0), 2n ** 63n), /beyond the end of the file/],
    ["bad JSON", rawFile('{"x": {', new Uint8Array(0)), /header is not valid UTF-8 JSON/],
    ["bad UTF-8", new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]), /header is not valid UTF-8 JSON/],
    ["header not an object", rawFile("[1, 2]", new Uint8Array(0)), /header JSON is not an object/],
    ["entry not an object", rawFile('{"x": 3}', new Uint8Array(0)), /tensor "x": entry is not an object/],
    ["unknown dtype", rawFile('{"x":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}', data8), /tensor "x": unknown dtype "Q7"/],
    ["unsupported dtype", rawFile('{"x":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}', data8), /tensor "x": unsupported dtype "F16"/],
    ["bad shape", rawFile('{"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', data8), /shape \[2.5\] is not a list/],
    ["bad offsets", rawFile('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', data8), /data_offsets \[0\] is not a pair/],
    ["offsets reversed", rawFile('{"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', data8), /end before they begin/],
    ["offsets out of range", rawFile('{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', data8), /data_offsets \[0, 16\] out of range \(data buffer is 8 bytes\)/],
    ["shape/size mismatch", rawFile('{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', data8), /shape \[3\] with dtype F32 needs 12 bytes but data_offsets \[0, 8\] span 8/],
    ["gap at start", rawFile('{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8), /not contiguous: gap of 4 bytes before tensor "x"/],
    [
      "gap between",
      rawFile('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8),
      /not contiguous: gap of 3 bytes before tensor "y"/,
    ],
    [
      "overlap",
      rawFile('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8),
      /not contiguous: tensor "y" \[4, 8\] overlaps/,
    ],
    ["trailing bytes", rawFile('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', data8), /tensors cover 4 bytes but the data buffer is 8 bytes/],
    ["metadata not strings", rawFile('{"__metadata__":{"a":1}}', new Uint8Array(0)), /"__metadata__"\["a"\] is not a string/],
    // found by test/fuzz-safetensors.test.ts: printing these values overflowed the stack or the message
    ["deeply nested shape", rawFile(`{"x":{"dtype":"F32","shape":${"[".repeat(5000)}${"]".repeat(5000)},"data_offsets":[0,0]}}`, new Uint8Array(0)), /shape an array nested too deeply to print is not a list/],
    ["deeply nested dtype", rawFile(`{"x":{"dtype":${'{"a":'.repeat(5000)}0${"}".repeat(5000)},"shape":[],"data_offsets":[0,0]}}`, new Uint8Array(0)), /unknown dtype object nested too deeply to print/],
    ["huge offsets value", rawFile(`{"x":{"dtype":"F32","shape":[],"data_offsets":[${"0,".repeat(10000)}0]}}`, new Uint8Array(0)), /data_offsets \[0,0,0,.*\.\.\. is not a pair/],
  ];
  for (const [what, bytes, re] of cases) {
    assert.throws(
      () => decodeSafetensors(bytes, F),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, what);
        assert.ok(e.message.startsWith(`${F}: `), `${what}: ${e.message}`);
        assert.match(e.message, re, what);
        assert.ok(e.message.length < 300, `${what}: message of ${e.message.length} characters`);
        return true;
      },
    );
  }
  // readSafetensors names the path
  await withTmp(async (dir) => {
    const p = join(dir, "broken.safetensors");
    await writeFile(p, rawFile("not json", new Uint8Array(0)));
    await assert.rejects(readSafetensors(p), (e: Error) => e.message.startsWith(`${p}: `) && /not valid UTF-8 JSON/.test(e.message));
    // found by test/fuzz-posterior.test.ts: a directory in the file's place gave a bare EISDIR error
    await assert.rejects(readSafetensors(dir), (e: Error) => e instanceof SafetensorsError && e.message === `${dir}: invalid safetensors file: is a directory`);
    const missing = join(dir, "missing.safetensors");
    await assert.rejects(readSafetensors(missing), (e: Error) => e instanceof SafetensorsError && e.message.startsWith(`${missing}: `) && /no such file/.test(e.message));
  });
});
