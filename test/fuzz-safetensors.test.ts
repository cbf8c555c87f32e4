/**
 * Fuzz test of the safetensors decoder: 10,000 generated inputs, mostly malformed (edited bytes,
 * a wrong header length, edited header JSON, garbage). Each must give a SafetensorsError naming
 * the file, or decode to tensors that are exactly the bytes the header describes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type DecodedSafetensors, type SafetensorsDtype, type TensorInput } from "../src/io/safetensors.js";
import {
  applyBytes,
  applyJson,
  applyText,
  byteMutation,
  concat,
  expectNamedError,
  fuzzSync,
  jsonMutation,
  jsonText,
  textMutation,
  type ByteMutation,
  type JsonMutation,
  type Outcome,
  type TextMutation,
} from "./fuzz.js";

const FILE = "/fuzz/model.safetensors";
const SIZES: Record<SafetensorsDtype, number> = { F32: 4, F64: 8, I32: 4, U8: 1, I64: 8 };
const DTYPES = Object.keys(SIZES) as SafetensorsDtype[];

function makeData(dtype: SafetensorsDtype, n: number, fill: number): TensorInput["data"] {
  switch (dtype) {
    case "F32":
      return Float32Array.from({ length: n }, (_, i) => fill + i / 4);
    case "F64":
      return Float64Array.from({ length: n }, (_, i) => fill - i / 8);
    case "I32":
      return Int32Array.from({ length: n }, (_, i) => fill * 7 + i);
    case "U8":
      return Uint8Array.from({ length: n }, (_, i) => (fill + i) & 255);
    case "I64":
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(fill) * 3n - BigInt(i));
  }
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** A valid file: 0..4 tensors (scalars and zero-size ones included) and optional metadata. */
const validFile = fc
  .record({
    tensors: fc.uniqueArray(
      fc.record({
        name: fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.constantFrom("__proto__", "constructor", "toString", "w", "layers.0.b")),
        dtype: fc.constantFrom(...DTYPES),
        shape: fc.array(fc.nat({ max: 3 }), { maxLength: 3 }),
        fill: fc.integer({ min: -100, max: 100 }),
      }),
      { maxLength: 4, selector: (t) => t.name },
    ),
    metadata: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }), { nil: undefined }),
  })
  .map(({ tensors, metadata }) => {
    const obj: Record<string, TensorInput> = {};
    for (const t of tensors.filter((t) => t.name !== "__metadata__")) {
      Object.defineProperty(obj, t.name, { value: { dtype: t.dtype, shape: t.shape, data: makeData(t.dtype, numel(t.shape), t.fill) }, enumerable: true });
    }
    return encodeSafetensors(obj, metadata);
  });

/** Split a (valid) file into its header JSON text and data buffer. */
function parts(bytes: Uint8Array): { header: string; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: new TextDecoder().decode(bytes.subarray(8, 8 + n)), data: bytes.subarray(8 + n) };
}

/** Assemble `u64le(length) ‖ header ‖ data`, with the true header length unless `length` is given. */
function assemble(header: string | Uint8Array, data: Uint8Array, length?: bigint): Uint8Array {
  const h = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  return concat(prefix, h, data);
}

type Edit =
  | { kind: "none" }
  | { kind: "bytes"; muts: ByteMutation[] }
  | { kind: "length"; length: bigint }
  | { kind: "json"; muts: JsonMutation[]; pad: number; data: ByteMutation[] }
  | { kind: "text"; muts: TextMutation[] }
  | { kind: "garbage"; bytes: Uint8Array; length: bigint | undefined };

const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.constantFrom(0n, 1n, 2n, 7n, 8n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 200n }),
);

const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("bytes" as const), muts: fc.array(byteMutation(64), { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("length" as const), length: u64 }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("json" as const),
      muts: fc.array(jsonMutation({ deep: true, keys: ["__metadata__", "dtype", "shape", "data_offsets"] }), { minLength: 1, maxLength: 3 }),
      pad: fc.nat({ max: 9 }),
      data: fc.array(byteMutation(8), { maxLength: 1 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("text" as const),
      muts: fc.array(textMutation(fc.constantFrom('"', ",", ":", "{", "}", "[", "]", "-", "1e400", "\\u0000", "\\", "\ud800", "null")), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ maxLength: 96 }), length: fc.option(u64, { nil: undefined }) }) },
);

function applyEdit(file: Uint8Array, e: Edit): Uint8Array {
  switch (e.kind) {
    case "none":
      return file;
    case "bytes":
      return applyBytes(file, e.muts);
    case "length": {
      const out = Uint8Array.from(file);
      new DataView(out.buffer).setBigUint64(0, e.length, true);
      return out;
    }
    case "json": {
      const { header, data } = parts(file);
      return assemble(jsonText(applyJson(JSON.parse(header), e.muts)) + " ".repeat(e.pad), applyBytes(data, e.data));
    }
    case "text": {
      const { header, data } = parts(file);
      return assemble(applyText(header, e.muts), data);
    }
    case "garbage":
      return e.length === undefined ? e.bytes : assemble(e.bytes, new Uint8Array(0), e.length);
  }
}

/** A successful decode must be exactly what the header describes: every tensor, its bytes, no more. */
function checkDecoded(bytes: Uint8Array, out: DecodedSafetensors): void {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: SafetensorsDtype; shape: number[]; data_offsets: [number, number] }>;
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  assert.deepEqual(Object.keys(out.tensors).sort(), names.sort());
  let total = 0;
  for (const name of names) {
    const want = header[name];
    const got = out.tensors[name];
    assert.equal(got.dtype, want.dtype);
    assert.deepEqual(got.shape, want.shape);
    assert.ok(got.data.length === numel(want.shape), `${got.data.length} elements for shape [${want.shape}]`); // === : a dim may be -0
    const [begin, end] = want.data_offsets;
    assert.deepEqual(new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength), bytes.subarray(8 + n + begin, 8 + n + end));
    total += end - begin;
  }
  assert.equal(total, bytes.length - 8 - n, "tensors must cover the data buffer");
  const meta = (header.__metadata__ ?? {}) as unknown as Record<string, string>;
  assert.deepEqual({ ...out.metadata }, { ...meta });
}

test("fuzz: decodeSafetensors rejects 10,000 malformed files with a SafetensorsError naming the file", { timeout: 120_000 }, (t) => {
  fuzzSync(t, "safetensors", 0x5afe, fc.tuple(validFile, edit), ([file, e]): Outcome => {
    const bytes = applyEdit(file, e);
    let out: DecodedSafetensors;
    try {
      out = decodeSafetensors(bytes, FILE);
    } catch (err) {
      const outcome = expectNamedError(err, [FILE]);
      assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError, got ${outcome}: ${(err as Error).message}`);
      assert.equal(err.file, FILE);
      assert.ok(err.message.length < 2_000, `message of ${err.message.length} characters`);
      return outcome;
    }
    if (e.kind === "none") assert.deepEqual(out, decodeSafetensors(file));
    checkDecoded(bytes, out);
    return "loaded";
  });
});
