/**
 * Fuzz test of loadPosterior: 10,000 posterior directories made from two valid ones (plain and
 * variational) by editing posterior.json (fields replaced by odd JSON values, deleted, added,
 * duplicated; text edits; garbage) and the safetensors files (byte edits, tensors dropped, renamed,
 * reshaped or retyped, missing files, garbage, a directory in a file's place). Each must give an
 * Error naming a file of the posterior, or a posterior whose samples are exactly what posterior.json
 * lists.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  loadPosterior,
  POSTERIOR_FORMAT_VERSION,
  POSTERIOR_META_FILE,
  POSTERIOR_SAMPLES_FILE,
  POSTERIOR_VARIATIONAL_FILE,
  savePosterior,
  type LoadedPosterior,
  type PosteriorLeafSamples,
  type PosteriorMeta,
} from "../src/io/posterior.js";
import { decodeSafetensors, encodeSafetensors, type SafetensorsDtype, type TensorInput } from "../src/io/safetensors.js";
import {
  applyBytes,
  applyJson,
  applyText,
  byteMutation,
  deeplyNested,
  expectNamedError,
  fuzzAsync,
  jsonMutation,
  jsonText,
  textMutation,
  type ByteMutation,
  type JsonMutation,
  type Outcome,
  type TextMutation,
} from "./fuzz.js";

const root = mkdtempSync(join(tmpdir(), "bayesdl-fuzz-posterior-"));
after(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, "post");
const files = { meta: join(dir, POSTERIOR_META_FILE), samples: join(dir, POSTERIOR_SAMPLES_FILE), variational: join(dir, POSTERIOR_VARIATIONAL_FILE) };

const S = 2;

function makeMeta(variational: boolean): PosteriorMeta {
  return {
    formatVersion: POSTERIOR_FORMAT_VERSION,
    bayesdlVersion: "0.1.0",
    model: "mlp:3",
    inputShape: [2],
    outputDim: 1,
    likelihood: { kind: "gaussian", noise: "learned" },
    prior: { kind: "gaussian", scale: 1 },
    method: variational ? "meanfield" : "sghmc",
    methodOptions: { lr: 1e-3 },
    seed: 42,
    data: { source: "toy:sine", fingerprint: "ab12", split: { seed: 0 } },
    numSamples: S,
    leaves: [
      { name: "layers.0.w", shape: [2, 3] },
      { name: "layers.0.b", shape: [3] },
      { name: "lik.logSigma", shape: [] },
    ],
    createdAt: "2024-01-01T00:00:00.000Z",
    ...(variational
      ? {
          variational: {
            family: "meanfield",
            options: {},
            tensors: [
              { name: "mu.w", shape: [2] },
              { name: "rho.w", shape: [2] },
            ],
          },
        }
      : {}),
  };
}

function makeSamples(meta: PosteriorMeta): PosteriorLeafSamples[] {
  return meta.leaves.map((l, k) => {
    const n = S * l.shape.reduce((a, b) => a * b, 1);
    return { name: l.name, shape: l.shape, data: Float32Array.from({ length: n }, (_, i) => k + i / 4) };
  });
}

/** The files of a valid posterior, as bytes. */
interface Base {
  /** posterior.json exactly as written (a digest of it may be checked) and parsed. */
  metaText: string;
  meta: unknown;
  samples: Uint8Array;
  variational: Uint8Array | undefined;
}

const bases: Base[] = [];

before(async () => {
  for (const variational of [false, true]) {
    const d = join(root, variational ? "base-variational" : "base");
    const meta = makeMeta(variational);
    const vt = variational ? meta.variational!.tensors.map((t) => ({ name: t.name, shape: t.shape, data: Float32Array.from({ length: 2 }, (_, i) => i - 0.5) })) : undefined;
    await savePosterior(d, meta, makeSamples(meta), vt);
    const metaText = readFileSync(join(d, POSTERIOR_META_FILE), "utf8");
    bases.push({
      metaText,
      meta: JSON.parse(metaText),
      samples: readFileSync(join(d, POSTERIOR_SAMPLES_FILE)),
      variational: variational ? readFileSync(join(d, POSTERIOR_VARIATIONAL_FILE)) : undefined,
    });
  }
});

/** Edits of posterior.json: structural, textual, or replacing it. */
type MetaEdit =
  | { kind: "none" }
  | { kind: "json"; muts: JsonMutation[] }
  | { kind: "text"; muts: TextMutation[] }
  | { kind: "garbage"; text: string }
  | { kind: "missing" }
  | { kind: "directory" };

const META_KEYS = ["formatVersion", "numSamples", "leaves", "variational", "name", "shape", "tensors", "family", "__proto__", "constructor"];

const metaEdit: fc.Arbitrary<MetaEdit> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("json" as const), muts: fc.array(jsonMutation({ deep: true, keys: META_KEYS }), { minLength: 1, maxLength: 3 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("text" as const),
      muts: fc.array(textMutation(fc.constantFrom('"', ",", ":", "{", "}", "[", "]", "-", "1e400", "\\", "\ufeff", "null", "2")), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("garbage" as const), text: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("", "null", "[]", "1", '"x"', "{}", "\ufeff{}")) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "missing" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "directory" as const }) },
);

/** One edit of the tensor list of a safetensors file (indices modulo the list length). */
type TensorEdit =
  | { op: "drop"; i: number }
  | { op: "rename"; i: number; name: string }
  | { op: "reshape"; i: number; shape: number[] }
  | { op: "retype"; i: number; dtype: SafetensorsDtype }
  | { op: "add"; name: string; shape: number[] };

const tensorName = fc.oneof(fc.constantFrom("layers.0.w", "layers.0.b", "lik.logSigma", "mu.w", "rho.w", "__proto__", "extra"), fc.string({ maxLength: 6 }));
const smallShape = fc.array(fc.nat({ max: 4 }), { maxLength: 3 });

const tensorEdit: fc.Arbitrary<TensorEdit> = fc.oneof(
  fc.record({ op: fc.constant("drop" as const), i: fc.nat() }),
  fc.record({ op: fc.constant("rename" as const), i: fc.nat(), name: tensorName }),
  fc.record({ op: fc.constant("reshape" as const), i: fc.nat(), shape: smallShape }),
  fc.record({ op: fc.constant("retype" as const), i: fc.nat(), dtype: fc.constantFrom("F64", "I32", "U8", "I64") as fc.Arbitrary<SafetensorsDtype> }),
  fc.record({ op: fc.constant("add" as const), name: tensorName, shape: smallShape }),
);

/** Edits of a safetensors file. */
type FileEdit =
  | { kind: "none" }
  | { kind: "bytes"; muts: ByteMutation[] }
  | { kind: "tensors"; edits: TensorEdit[] }
  | { kind: "garbage"; bytes: Uint8Array }
  | { kind: "missing" }
  | { kind: "directory" };

const fileEdit: fc.Arbitrary<FileEdit> = fc.oneof(
  { weight: 10, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("bytes" as const), muts: fc.array(byteMutation(300), { minLength: 1, maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("tensors" as const), edits: fc.array(tensorEdit, { minLength: 1, maxLength: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ maxLength: 64 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "missing" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "directory" as const }) },
);

function zeros(dtype: SafetensorsDtype, n: number): TensorInput["data"] {
  return dtype === "F32" ? new Float32Array(n) : dtype === "F64" ? new Float64Array(n) : dtype === "I32" ? new Int32Array(n) : dtype === "U8" ? new Uint8Array(n) : new BigInt64Array(n);
}

/** Re-encode a safetensors file with its tensor list edited (metadata kept). */
function editTensors(bytes: Uint8Array, edits: readonly TensorEdit[]): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const list: { name: string; dtype: SafetensorsDtype; shape: number[]; data: TensorInput["data"] }[] = Object.entries(tensors).map(([name, t]) => ({ name, ...t }));
  for (const e of edits) {
    if (e.op === "add") {
      list.push({ name: e.name, dtype: "F32", shape: e.shape, data: zeros("F32", e.shape.reduce((a, b) => a * b, 1)) });
      continue;
    }
    if (list.length === 0) continue;
    const i = e.i % list.length;
    const t = list[i];
    if (e.op === "drop") list.splice(i, 1);
    else if (e.op === "rename") t.name = e.name;
    else if (e.op === "reshape") {
      t.shape = e.shape;
      t.data = zeros(t.dtype, e.shape.reduce((a, b) => a * b, 1));
    } else {
      t.dtype = e.dtype;
      t.data = zeros(e.dtype, t.data.length);
    }
  }
  const out: Record<string, TensorInput> = {};
  for (const t of list) {
    if (t.name === "__metadata__") continue;
    Object.defineProperty(out, t.name, { value: { dtype: t.dtype, shape: t.shape, data: t.data }, enumerable: true, configurable: true });
  }
  return encodeSafetensors(out, metadata);
}

/** Put `bytes` at `path` as a fresh file (or a directory, or nothing): never truncate in place, which makes ext4 flush. */
function place(path: string, content: Uint8Array | string | "directory" | undefined): void {
  rmSync(path, { recursive: true, force: true });
  if (content === "directory") mkdirSync(path);
  else if (content !== undefined) writeFileSync(path, content);
}

function fileContent(base: Uint8Array | undefined, e: FileEdit): Uint8Array | "directory" | undefined {
  if (base === undefined) return e.kind === "garbage" ? e.bytes : undefined; // a stray variational.safetensors next to a plain posterior
  switch (e.kind) {
    case "none":
      return base;
    case "bytes":
      return applyBytes(base, e.muts);
    case "tensors":
      return editTensors(base, e.edits);
    case "garbage":
      return e.bytes;
    case "missing":
      return undefined;
    case "directory":
      return "directory";
  }
}

function metaContent(base: Base, e: MetaEdit): string | "directory" | undefined {
  switch (e.kind) {
    case "none":
      return base.metaText;
    case "json":
      return jsonText(applyJson(base.meta, e.muts));
    case "text":
      return applyText(base.metaText, e.muts);
    case "garbage":
      return e.text;
    case "missing":
      return undefined;
    case "directory":
      return "directory";
  }
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * A loaded posterior must be exactly what posterior.json lists, with the file's tensor data.
 * Returns the outcome `loaded`.
 */
function checkLoaded(out: LoadedPosterior, metaText: string, samples: Uint8Array, variational: Uint8Array | undefined): Outcome {
  const meta = JSON.parse(metaText) as PosteriorMeta;
  // Keys only: a field may be nested thousands of levels deep, beyond a recursive deepEqual.
  assert.deepEqual(Object.keys(out.meta), Object.keys(meta));
  const tensors = decodeSafetensors(samples).tensors;
  assert.equal(out.samples.length, meta.leaves.length);
  assert.equal(new Set(meta.leaves.map((l) => l.name)).size, meta.leaves.length, "no leaf is listed twice");
  assert.equal(Object.keys(tensors).length, meta.leaves.length, "every tensor is a leaf");
  out.samples.forEach((s, i) => {
    const l = meta.leaves[i];
    assert.equal(s.name, l.name);
    assert.ok(sameShape(s.shape, l.shape), `leaf ${l.name}: shape [${s.shape}] vs [${l.shape}]`);
    assert.ok(s.data instanceof Float32Array);
    assert.equal(s.data.length, meta.numSamples * l.shape.reduce((a, b) => a * b, 1));
    assert.deepEqual(s.data, tensors[l.name].data);
  });
  const outcome = "loaded";
  if (meta.variational === undefined) {
    assert.equal(out.variational, undefined);
    return outcome;
  }
  assert.ok(variational !== undefined && out.variational !== undefined);
  const vt = decodeSafetensors(variational).tensors;
  assert.equal(out.variational.length, meta.variational.tensors.length);
  out.variational.forEach((t, i) => {
    const want = meta.variational!.tensors[i];
    assert.equal(t.name, want.name);
    assert.ok(sameShape(t.shape, want.shape));
    assert.deepEqual(t.data, vt[want.name].data);
  });
  return outcome;
}

/**
 * A stack overflow in loadPosterior's own JSON.stringify of a deeply nested field (formatVersion,
 * numSamples, a leaf, a variational tensor entry), which its messages now print with a clipped printer.
 */
function knownDeepNestingOverflow(e: unknown): boolean {
  return e instanceof RangeError && /Maximum call stack/.test(e.message) && /JSON\.stringify/.test(e.stack ?? "") && /posterior\.js/.test(e.stack ?? "");
}

const posteriorCase = fc.record({
  kind: fc.constantFrom(0, 1),
  meta: metaEdit,
  samples: fileEdit,
  variational: fileEdit,
});

test("fuzz: loadPosterior rejects 10,000 malformed posterior directories with an error naming a file", { timeout: 180_000 }, async (t) => {
  mkdirSync(dir, { recursive: true });
  await fuzzAsync(t, "posterior loadPosterior", 0x9057, posteriorCase, async (c): Promise<Outcome> => {
    const base = bases[c.kind];
    const metaText = metaContent(base, c.meta);
    const samples = fileContent(base.samples, c.samples);
    const variational = fileContent(base.variational, c.variational);
    place(files.meta, metaText);
    place(files.samples, samples);
    place(files.variational, variational);
    let out: LoadedPosterior;
    try {
      out = await loadPosterior(dir);
    } catch (err) {
      assert.ok(!knownDeepNestingOverflow(err), `stack overflow in a message: ${String(err)}`);
      return expectNamedError(err, [files.meta, files.samples, files.variational]);
    }
    assert.ok(typeof metaText === "string" && samples instanceof Uint8Array, "loaded without posterior.json or samples.safetensors");
    return checkLoaded(out, metaText, samples, variational instanceof Uint8Array ? variational : undefined);
  });
});

test(
  "posterior.json fields nested thousands of levels deep give a clear error, not a stack overflow in the message",
  async () => {
    mkdirSync(dir, { recursive: true });
    const deep = deeplyNested(10_000, "array");
    const cases: [string, (m: Record<string, unknown>) => void][] = [
      ["formatVersion", (m) => (m.formatVersion = deep)],
      ["numSamples", (m) => (m.numSamples = deep)],
      ["leaves[0]", (m) => ((m.leaves as unknown[])[0] = deep)],
      ["variational.tensors[0]", (m) => ((m.variational as { tensors: unknown[] }).tensors[0] = deep)],
    ];
    for (const [what, edit] of cases) {
      const base = bases[1];
      const meta = structuredClone(base.meta) as Record<string, unknown>;
      edit(meta);
      place(files.meta, jsonText(meta));
      place(files.samples, base.samples);
      place(files.variational, base.variational);
      await assert.rejects(loadPosterior(dir), (e: unknown) => {
        assert.ok(!knownDeepNestingOverflow(e), `${what}: ${String(e)}`);
        // The variational entry is read after the samples file, whose digest no longer matches.
        expectNamedError(e, what.startsWith("variational") ? [files.meta, files.samples] : [files.meta]);
        return true;
      });
    }
  },
);

test(
  "a leaf listed twice in posterior.json is refused (savePosterior never writes one)",
  async () => {
    mkdirSync(dir, { recursive: true });
    const base = bases[0];
    const meta = structuredClone(base.meta) as PosteriorMeta;
    meta.leaves.push(meta.leaves[0]);
    place(files.meta, JSON.stringify(meta));
    place(files.samples, base.samples);
    place(files.variational, undefined);
    await assert.rejects(loadPosterior(dir), (e: unknown) => {
      expectNamedError(e, [files.meta]);
      assert.match(String(e), /leaves\[\d+\]: leaf "[^"]+" is listed twice/);
      return true;
    });
  },
);
