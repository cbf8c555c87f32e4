/**
 * Shared machinery of the loader fuzz tests (test/fuzz-*.test.ts): a timed runner over fast-check
 * with fixed seeds, and mutation generators for bytes, text and JSON documents.
 *
 * Every loader gets {@link FUZZ_RUNS} generated inputs, mostly malformed: mutations of a valid
 * encoding plus pure garbage. The oracle is the same everywhere: the loader either throws an Error
 * that names the file, or returns a result that is complete and consistent with its input.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import fc from "fast-check";

/** Generated inputs per loader (the issue asks for at least 10,000). */
export const FUZZ_RUNS = 10_000;

/** One case slower than this counts as a hang (the whole suite runs ~10,000 cases in seconds). */
export const HANG_MS = 2_000;

/** What one case did: `"loaded"`, or the name of the error class it was rejected with. */
export type Outcome = string;

/** Longest error message seen by {@link expectNamedError} since the current fuzz run started. */
let longestMessage = 0;

/** Counts of one fuzz run, for the diagnostic line. */
class Tally {
  runs = 0;
  loaded = 0;
  maxMs = 0;
  readonly rejected = new Map<string, number>();
  private readonly t0 = performance.now();

  constructor() {
    longestMessage = 0;
  }

  record(outcome: Outcome, ms: number): void {
    this.runs++;
    this.maxMs = Math.max(this.maxMs, ms);
    if (outcome === "loaded") this.loaded++;
    else this.rejected.set(outcome, (this.rejected.get(outcome) ?? 0) + 1);
  }

  report(t: TestContext, name: string): void {
    const seconds = (performance.now() - this.t0) / 1000;
    const rejected = [...this.rejected].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
    t.diagnostic(
      `${name}: ${this.runs} inputs in ${seconds.toFixed(2)} s; loaded ${this.loaded}; rejected ${rejected || "none"}; slowest case ${this.maxMs.toFixed(1)} ms; longest message ${longestMessage} characters`,
    );
    assert.ok(this.runs >= FUZZ_RUNS, `${name}: only ${this.runs} inputs ran`);
    assert.ok(this.loaded > 0, `${name}: no input loaded, so the success oracle was never exercised`);
    assert.ok(this.maxMs < HANG_MS, `${name}: a case took ${this.maxMs.toFixed(0)} ms`);
  }
}

/**
 * Run `check` on {@link FUZZ_RUNS} inputs drawn from `arb` with a fixed seed, timing each case;
 * `check` returns the outcome or throws an assertion error (fast-check then shrinks and reports
 * the smallest failing input). Prints counts and seconds as a test diagnostic.
 */
export function fuzzSync<T>(t: TestContext, name: string, seed: number, arb: fc.Arbitrary<T>, check: (input: T) => Outcome): void {
  const tally = new Tally();
  fc.assert(
    fc.property(arb, (input) => {
      const t0 = performance.now();
      const outcome = check(input);
      tally.record(outcome, performance.now() - t0);
    }),
    { seed, numRuns: FUZZ_RUNS, includeErrorInReport: true },
  );
  tally.report(t, name);
}

/** {@link fuzzSync} for loaders that return promises. */
export async function fuzzAsync<T>(t: TestContext, name: string, seed: number, arb: fc.Arbitrary<T>, check: (input: T) => Promise<Outcome>): Promise<void> {
  const tally = new Tally();
  await fc.assert(
    fc.asyncProperty(arb, async (input) => {
      const t0 = performance.now();
      const outcome = await check(input);
      tally.record(outcome, performance.now() - t0);
    }),
    { seed, numRuns: FUZZ_RUNS, includeErrorInReport: true },
  );
  tally.report(t, name);
}

/**
 * Check what a loader threw: an Error (not a TypeError, ReferenceError, stack overflow or other
 * engine limit from inside the loader) whose message names one of `files`. Returns the error's
 * class name as the case's outcome.
 */
export function expectNamedError(e: unknown, files: readonly string[]): Outcome {
  assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
  longestMessage = Math.max(longestMessage, e.message.length);
  const where = `${e.name}: ${e.message.slice(0, 300)}\n${e.stack?.split("\n").slice(1, 4).join("\n")}`;
  assert.ok(!(e instanceof TypeError) && !(e instanceof ReferenceError), `internal error: ${where}`);
  assert.ok(!/Maximum call stack|Invalid array length|Invalid typed array length|out of memory/i.test(e.message), `engine limit hit: ${where}`);
  assert.ok(files.some((f) => e.message.includes(f)), `message names none of ${files.join(", ")}: ${where}`);
  return e.name;
}

/**
 * A fresh file name per case (`<dir>/<i>-<name>`), removing the previous case's files first.
 * Overwriting one file would be ~30 times slower on ext4, which flushes a file truncated and
 * rewritten in place (auto_da_alloc): 2 ms against 0.1 ms per case.
 */
export class ScratchFiles {
  private count = 0;
  private live: string[] = [];

  constructor(private readonly dir: string) {}

  /** Paths for this case, one per name; the previous case's files are deleted. */
  next(...names: string[]): string[] {
    for (const p of this.live) rmSync(p, { force: true, recursive: true });
    const i = this.count++;
    this.live = names.map((n) => join(this.dir, `${i}-${n}`));
    return this.live;
  }
}

// ---------------------------------------------------------------------------------------------
// Bytes

/** One edit of a byte buffer; positions are taken modulo the buffer length (+1 where it can append). */
export type ByteMutation =
  | { op: "set"; at: number; value: number }
  | { op: "flip"; at: number; bit: number }
  | { op: "truncate"; at: number }
  | { op: "delete"; at: number; len: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "duplicate"; at: number; len: number };

/** Bytes that matter to the formats here: zero, sign and high bits, JSON and CSV punctuation. */
const byteValue = fc.oneof(
  fc.integer({ min: 0, max: 255 }),
  fc.constantFrom(0x00, 0x01, 0x08, 0x0d, 0x0e, 0x1f, 0x8b, 0x7f, 0x80, 0xff, 0x22, 0x2c, 0x5b, 0x5d, 0x7b, 0x7d, 0x3a, 0x20, 0x0a),
);

/** A position, biased to the first `hot` bytes (the header) half of the time. */
const position = (hot: number): fc.Arbitrary<number> => fc.oneof(fc.nat({ max: Math.max(0, hot - 1) }), fc.nat());

/** One byte edit; `hot` is the length of the region worth hitting most (the header). */
export function byteMutation(hot = 16): fc.Arbitrary<ByteMutation> {
  const at = position(hot);
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ op: fc.constant("set" as const), at, value: byteValue }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("flip" as const), at, bit: fc.nat({ max: 7 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("truncate" as const), at }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), at, len: fc.integer({ min: 1, max: 16 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("insert" as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("duplicate" as const), at, len: fc.integer({ min: 1, max: 32 }) }) },
  );
}

/** Apply byte edits in order to a copy of `bytes`. */
export function applyBytes(bytes: Uint8Array, muts: readonly ByteMutation[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(bytes);
  for (const m of muts) {
    const pos = m.at % (b.length + 1);
    switch (m.op) {
      case "set":
        if (pos < b.length) b[pos] = m.value;
        break;
      case "flip":
        if (pos < b.length) b[pos] ^= 1 << m.bit;
        break;
      case "truncate":
        b = b.slice(0, pos);
        break;
      case "delete":
        b = concat(b.subarray(0, pos), b.subarray(pos + m.len));
        break;
      case "insert":
        b = concat(b.subarray(0, pos), m.bytes, b.subarray(pos));
        break;
      case "duplicate":
        b = concat(b.subarray(0, pos + m.len), b.subarray(pos));
        break;
    }
  }
  return b;
}

/** Concatenate byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Text

/** One edit of a string; positions are taken modulo the length (+1). */
export type TextMutation =
  | { op: "insert"; at: number; text: string }
  | { op: "delete"; at: number; len: number }
  | { op: "truncate"; at: number }
  | { op: "duplicate"; at: number; len: number };

/** One text edit; `fragments` are snippets worth inserting (delimiters, quotes, numbers, ...). */
export function textMutation(fragments: fc.Arbitrary<string>): fc.Arbitrary<TextMutation> {
  const at = fc.nat();
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ op: fc.constant("insert" as const), at, text: fc.oneof(fragments, fc.string({ maxLength: 4, unit: "binary" })) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), at, len: fc.integer({ min: 1, max: 8 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), at }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("duplicate" as const), at, len: fc.integer({ min: 1, max: 40 }) }) },
  );
}

/** Apply text edits in order. */
export function applyText(text: string, muts: readonly TextMutation[]): string {
  let s = text;
  for (const m of muts) {
    const pos = m.at % (s.length + 1);
    if (m.op === "insert") s = s.slice(0, pos) + m.text + s.slice(pos);
    else if (m.op === "delete") s = s.slice(0, pos) + s.slice(pos + m.len);
    else if (m.op === "truncate") s = s.slice(0, pos);
    else s = s.slice(0, pos + m.len) + s.slice(pos);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// JSON documents

/** JSON text spliced in verbatim by {@link jsonText} (numbers like `1e400`, deeply nested values). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** Serialise a JSON value in which {@link RawJson} pieces appear verbatim. */
export function jsonText(v: unknown): string {
  if (v instanceof RawJson) return v.text;
  if (Array.isArray(v)) return `[${v.map(jsonText).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${jsonText(x)}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** `[[[...]]]` or `{"a":{"a":...}}` nested `depth` levels (JSON.parse takes it; recursive printers may not). */
export function deeplyNested(depth: number, kind: "array" | "object"): RawJson {
  return kind === "array" ? new RawJson("[".repeat(depth) + "]".repeat(depth)) : new RawJson('{"a":'.repeat(depth) + "0" + "}".repeat(depth));
}

/**
 * JSON values that break loaders: wrong types, edge numbers, shapes that are almost right, long
 * strings, and (if `deep`) values nested thousands of levels.
 */
export function oddJson(opts: { deep: boolean }): fc.Arbitrary<unknown> {
  const arbs: fc.Arbitrary<unknown>[] = [
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom<unknown>(null, true, false, 0, -1, 1, 2, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, 1e308, -1e308, "", "1", "F32", "F64", "I64", "U8", "BOOL", [], {}),
    fc.constantFrom<unknown>([-1], [1.5], ["1"], [null], [[1]], [2 ** 53], [0, 0], [1, 0], [0, 2 ** 53], [2 ** 32, 2 ** 32, 2 ** 32], [0, 2 ** 60]),
    fc.constantFrom(new RawJson("1e400"), new RawJson("-1e400"), new RawJson("-0"), new RawJson("1.0"), new RawJson("1e1"), new RawJson("[1e400]"), new RawJson("[-0]")),
    fc.array(fc.integer({ min: -3, max: 2 ** 40 }), { maxLength: 5 }),
    fc.string({ maxLength: 12 }),
    fc.integer({ min: 1_000, max: 20_000 }).map((n) => "x".repeat(n)),
    fc.integer({ min: 100, max: 5_000 }).map((n) => Array.from({ length: n }, (_, i) => i % 3)),
  ];
  if (opts.deep) arbs.push(fc.tuple(fc.integer({ min: 5_000, max: 20_000 }), fc.constantFrom("array" as const, "object" as const)).map(([d, k]) => deeplyNested(d, k)));
  return fc.oneof(...arbs);
}

/** One structural edit of a JSON document; `node` picks a node (modulo the node count, in document order). */
export type JsonMutation =
  | { op: "replace"; node: number; value: unknown }
  | { op: "delete"; node: number }
  | { op: "add"; node: number; key: string; value: unknown }
  | { op: "duplicate"; node: number };

/** One JSON edit with replacement values from {@link oddJson}. */
export function jsonMutation(opts: { deep: boolean; keys?: readonly string[] }): fc.Arbitrary<JsonMutation> {
  const node = fc.nat();
  const value = oddJson(opts);
  const key = opts.keys ? fc.oneof(fc.constantFrom(...opts.keys), fc.string({ maxLength: 6 })) : fc.string({ maxLength: 6 });
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant("replace" as const), node, value }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), node }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("add" as const), node, key, value }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("duplicate" as const), node }) },
  );
}

/** Every node of a JSON document below the root, with its parent and key, in document order. */
function nodesOf(root: unknown): { parent: Record<string, unknown> | unknown[]; key: string | number }[] {
  const out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const visit = (v: unknown): void => {
    if (v instanceof RawJson || v === null || typeof v !== "object") return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push({ parent: v, key: i });
        visit(x);
      });
    } else {
      for (const [k, x] of Object.entries(v)) {
        out.push({ parent: v as Record<string, unknown>, key: k });
        visit(x);
      }
    }
  };
  visit(root);
  return out;
}

/** Deep copy of a JSON value that keeps {@link RawJson} pieces (structuredClone would drop their class). */
function clone(v: unknown): unknown {
  if (v instanceof RawJson || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(clone);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: clone(x), enumerable: true, writable: true, configurable: true });
  return out;
}

/** Apply JSON edits to a deep copy of `doc` (`replace` of the last node index + 1 replaces the whole document). */
export function applyJson(doc: unknown, muts: readonly JsonMutation[]): unknown {
  let root = clone(doc);
  for (const m of muts) {
    const nodes = nodesOf(root);
    if (m.op === "replace" && m.node % (nodes.length + 1) === nodes.length) {
      root = clone(m.value);
      continue;
    }
    if (nodes.length === 0) continue;
    const { parent, key } = nodes[m.node % nodes.length];
    const isArray = Array.isArray(parent);
    const get = (): unknown => (parent as Record<string | number, unknown>)[key];
    const set = (v: unknown): void => {
      if (isArray) (parent as unknown[])[key as number] = v;
      else Object.defineProperty(parent, key, { value: v, enumerable: true, writable: true, configurable: true });
    };
    switch (m.op) {
      case "replace":
        set(clone(m.value));
        break;
      case "delete":
        if (isArray) (parent as unknown[]).splice(key as number, 1);
        else delete (parent as Record<string, unknown>)[key as string];
        break;
      case "add": {
        const target = get();
        const value = clone(m.value);
        if (Array.isArray(target)) target.push(value);
        else if (target !== null && typeof target === "object" && !(target instanceof RawJson)) {
          Object.defineProperty(target, m.key, { value, enumerable: true, writable: true, configurable: true });
        } else set(value);
        break;
      }
      case "duplicate":
        if (isArray) (parent as unknown[]).splice(key as number, 0, clone(get()));
        else set([get(), get()]);
        break;
    }
  }
  return root;
}
