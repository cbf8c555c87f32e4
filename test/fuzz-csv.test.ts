/**
 * Fuzz test of the CSV loader: 10,000 generated files, mostly malformed (ragged rows, stray and
 * unterminated quotes, bad numbers, NaN cells, blank and garbage lines, BOMs, CRLF mixes, invalid
 * UTF-8, huge fields, missing or duplicated targets) and edits of valid tables. Each must give an
 * Error naming the file (a DataFormatError also names the line), or a split whose arrays are all
 * finite and whose sizes add up; an unedited table must load with every row.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { loadCsv, type CsvOptions } from "../src/data/csv.js";
import { DataFormatError, type DataSplit } from "../src/data/types.js";
import { applyBytes, applyText, byteMutation, expectNamedError, fuzzSync, ScratchFiles, textMutation, type ByteMutation, type Outcome, type TextMutation } from "./fuzz.js";

const dir = mkdtempSync(join(tmpdir(), "bayesdl-fuzz-csv-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const files = new ScratchFiles(dir);

/**
 * Numbers as people write them. Nonzero magnitudes mostly stay within [1e-6, 1e30]; the cells that
 * cannot be standardised within float32 (near its limit, or beside a tiny training spread) have their
 * own test at the end of this file.
 */
const numberCell = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String) },
  { weight: 3, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((v) => String(Math.abs(v) < 1e-6 ? 0 : v)) },
  { weight: 1, arbitrary: fc.constantFrom("0", "-0", "+1", ".5", "5.", "1e3", "1E-3", "-2.5e+2", "007", "1e30", "-1e-300", "0." + "0".repeat(400) + "1") },
);

/** Class labels: all alphabetic, so the header heuristic cannot mistake the first row for a header. */
const labelCell = fc.constantFrom("a", "b", "cat", "dog", "setosa", "Iris-virginica", "yes", "no");

const letters = [..."abcdefghijklmnopqrstuvwxyz"];
const identifier = fc
  .tuple(fc.constantFrom(...letters), fc.string({ unit: fc.constantFrom(...letters, ..."0123456789_"), maxLength: 5 }))
  .map(([a, b]) => a + b);

/** Column names for 0..5 columns: unique identifiers (quoted when they hold a delimiter). Built once: arbitraries are costly to build per case. */
const names: fc.Arbitrary<string[]>[] = Array.from({ length: 6 }, (_, n) =>
  fc.uniqueArray(fc.oneof(fc.constantFrom("x", "y", "target", "price", "a b", "a,b", 'say "hi"', "col;1", "é"), identifier), { minLength: n, maxLength: n }),
);

/** Cells that are not numbers (or not finite ones), for edits. */
const badCell = fc.oneof(
  fc.constantFrom("", " ", "NaN", "nan", "Infinity", "-Infinity", "inf", "0x1F", "1e400", "-1e999", "1,5", "1.2.3", "1e", "e5", "+-1", "--1", "1_000", "½", "١٢", "\u00a0", "null", "true", "1 2", '"', '""', '"1"', "'1'"),
  fc.string({ maxLength: 6 }),
  fc.string({ maxLength: 4, unit: "binary" }),
  fc.integer({ min: 400, max: 2_000 }).map((n) => "9".repeat(n)),
  fc.integer({ min: 1_000, max: 50_000 }).map((n) => "x".repeat(n)),
);

/** A table before serialisation. */
interface Table {
  header: string[] | undefined;
  rows: string[][];
  target: number;
  labels: boolean;
}

const table: fc.Arbitrary<Table> = fc
  .record({ nCols: fc.integer({ min: 2, max: 5 }), nRows: fc.integer({ min: 1, max: 12 }), labels: fc.boolean(), header: fc.boolean() })
  .chain(({ nCols, nRows, labels, header }) =>
    fc.record({
      header: labels || header ? names[nCols] : fc.constant(undefined),
      target: fc.nat({ max: nCols - 1 }),
      rows: fc.array(fc.array(numberCell, { minLength: nCols, maxLength: nCols }), { minLength: nRows, maxLength: nRows }),
      labelCells: fc.array(labelCell, { minLength: nRows, maxLength: nRows }),
      labels: fc.constant(labels),
    }),
  )
  .map(({ header, target, rows, labelCells, labels }) => ({
    header,
    target,
    labels,
    rows: labels ? rows.map((r, i) => r.map((c, j) => (j === target ? labelCells[i] : c))) : rows,
  }));

/** Edits of the cell grid (positions modulo the table size). */
type CellEdit =
  | { op: "set"; row: number; col: number; cell: string }
  | { op: "dropCell"; row: number }
  | { op: "addCell"; row: number; cell: string }
  | { op: "dropRow"; row: number }
  | { op: "dupRow"; row: number }
  | { op: "rawLine"; row: number; line: string }
  | { op: "dupName"; col: number };

const cellEdit: fc.Arbitrary<CellEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("set" as const), row: fc.nat(), col: fc.nat(), cell: badCell }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("dropCell" as const), row: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("addCell" as const), row: fc.nat(), cell: fc.oneof(numberCell, badCell) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("dropRow" as const), row: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("dupRow" as const), row: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("rawLine" as const), row: fc.nat(), line: fc.oneof(fc.constantFrom("", " ", ",", ",,,", '"', "#comment", "1;2;3", "1\t2", "\ufeffa,b"), fc.string({ maxLength: 10 })) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("dupName" as const), col: fc.nat() }) },
);

/** How the table becomes text and bytes. */
interface Layout {
  delim: string;
  eol: string;
  trailingEol: boolean;
  bom: boolean;
  quoteAll: boolean;
}

const layout: fc.Arbitrary<Layout> = fc.record({
  delim: fc.constantFrom(",", ";", "\t"),
  eol: fc.oneof({ weight: 4, arbitrary: fc.constant("\n") }, { weight: 2, arbitrary: fc.constant("\r\n") }, { weight: 1, arbitrary: fc.constant("\n\n") }),
  trailingEol: fc.boolean(),
  bom: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  quoteAll: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

/** A rawLine edit puts a line in verbatim; every other row is a list of cells. */
type Row = string[] | { raw: string };

function editTable(t: Table, edits: readonly CellEdit[]): { header: string[] | undefined; rows: Row[] } {
  const header = t.header?.slice();
  const rows: Row[] = t.rows.map((r) => r.slice());
  for (const e of edits) {
    if (e.op === "dupName") {
      if (header && header.length > 1) header[(e.col % (header.length - 1)) + 1] = header[0];
      continue;
    }
    if (e.op === "rawLine") {
      rows.splice(e.row % (rows.length + 1), 0, { raw: e.line });
      continue;
    }
    if (rows.length === 0) continue;
    const i = e.row % rows.length;
    const row = rows[i];
    if (e.op === "dropRow") rows.splice(i, 1);
    else if (e.op === "dupRow") rows.splice(i, 0, Array.isArray(row) ? row.slice() : row);
    else if (!Array.isArray(row)) continue;
    else if (e.op === "set") row[e.col % row.length] = e.cell;
    else if (e.op === "dropCell") row.pop();
    else if (e.op === "addCell") row.push(e.cell);
  }
  return { header, rows };
}

function serialise(header: string[] | undefined, rows: readonly Row[], l: Layout): string {
  const quote = (c: string): string =>
    l.quoteAll || c.includes(l.delim) || c.includes('"') || c.includes("\n") || c.includes("\r") || c !== c.trim() ? `"${c.replaceAll('"', '""')}"` : c;
  const lines = [...(header ? [header] : []), ...rows].map((r) => (Array.isArray(r) ? r.map(quote).join(l.delim) : r.raw));
  return (l.bom ? "\ufeff" : "") + lines.join(l.eol) + (l.trailingEol ? l.eol : "");
}

/** Text and byte edits after serialisation, or a file of garbage. */
type Raw = { kind: "none" } | { kind: "text"; muts: TextMutation[] } | { kind: "bytes"; muts: ByteMutation[] } | { kind: "garbage"; bytes: Uint8Array };

const raw: fc.Arbitrary<Raw> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: "none" as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("text" as const),
      muts: fc.array(textMutation(fc.constantFrom('"', ",", ";", "\t", "\n", "\r", "\r\n", "NaN", "1e400", "\u0000", "\ufeff", ",,", '""', " ", "e")), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("bytes" as const), muts: fc.array(byteMutation(32), { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ maxLength: 200 }) }) },
);

function fileBytes(text: string, r: Raw): Uint8Array {
  const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
  switch (r.kind) {
    case "none":
      return utf8(text);
    case "text":
      return utf8(applyText(text, r.muts));
    case "bytes":
      return applyBytes(utf8(text), r.muts);
    case "garbage":
      return r.bytes;
  }
}

/** Which target to ask for: the generated one (by name or index) or a wrong one. */
type TargetChoice = { kind: "right"; byIndex: boolean } | { kind: "other"; target: string | number };

const targetChoice: fc.Arbitrary<TargetChoice> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("right" as const), byIndex: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("other" as const), target: fc.oneof(fc.constantFrom("missing", "", "1.5", " 1", "-1", "07", "__proto__"), fc.constantFrom(-1, 1.5, 5, 99, NaN)) }) },
);

const options = fc.record({
  target: targetChoice,
  seed: fc.integer({ min: -1000, max: 1000 }),
  testSize: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: -1, max: 14 }) }),
  task: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom("regression" as const, "classification" as const) }),
});

const csvCase = fc.record({
  table,
  edits: fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: fc.array(cellEdit, { minLength: 1, maxLength: 3 }) }),
  layout,
  raw,
  options,
});

const allFinite = (s: DataSplit): boolean => [s.train.x, s.test.x, s.train.y, s.test.y].every((a) => a.every((v) => Number.isFinite(v)));

function checkSplit(s: DataSplit, opts: CsvOptions): void {
  const n = s.train.n + s.test.n;
  assert.ok(s.train.n >= 1, `train.n ${s.train.n}`);
  if (opts.task) assert.equal(s.task, opts.task);
  if (opts.testSize !== undefined) assert.equal(s.test.n, opts.testSize);
  assert.equal(s.train.xShape.length, 1);
  const d = s.train.xShape[0];
  assert.ok(d >= 1);
  for (const part of [s.train, s.test]) {
    assert.deepEqual(part.xShape, [d]);
    assert.equal(part.x.length, part.n * d);
    assert.equal(part.y.length, part.n);
    for (let i = 0; i < part.x.length; i++) assert.ok(Number.isFinite(part.x[i]), `input ${part.x[i]} at ${i}`);
  }
  if (s.task === "classification") {
    const k = s.numClasses!;
    assert.equal(JSON.parse(String(s.splitInfo.classes)).length, k);
    for (const part of [s.train, s.test]) {
      assert.ok(part.y instanceof Int32Array);
      for (const y of part.y) assert.ok(y >= 0 && y < k, `label ${y} of ${k}`);
    }
  } else {
    assert.equal(s.task, "regression");
    for (const part of [s.train, s.test]) {
      assert.ok(part.y instanceof Float32Array);
      for (const y of part.y) assert.ok(Number.isFinite(y), `target ${y}`);
    }
    assert.ok(Number.isFinite(s.targetScale!.mean) && Number.isFinite(s.targetScale!.std) && s.targetScale!.std > 0, JSON.stringify(s.targetScale));
  }
  assert.ok(n >= 1);
}

test("fuzz: loadCsv rejects 10,000 malformed tables with an error naming the file", { timeout: 120_000 }, (t) => {
  fuzzSync(t, "CSV loadCsv", 0xc5, csvCase, (c): Outcome => {
    const { header, rows } = editTable(c.table, c.edits);
    const bytes = fileBytes(serialise(header, rows, c.layout), c.raw);
    const [FILE] = files.next("table.csv");
    writeFileSync(FILE, bytes);
    const o = c.options;
    const target = o.target.kind === "other" ? o.target.target : o.target.byIndex || !c.table.header ? c.table.target : c.table.header[c.table.target];
    const opts: CsvOptions = { target, seed: o.seed, testSize: o.testSize, task: o.task };
    // A table of one row is refused too: fit needs a row to train on and one to test on.
    const clean = c.edits.length === 0 && c.raw.kind === "none" && o.target.kind === "right" && o.testSize === undefined && o.task === undefined && c.table.rows.length >= 2;
    let s: DataSplit;
    try {
      s = loadCsv(FILE, opts);
    } catch (err) {
      const outcome = expectNamedError(err, [FILE]);
      if (err instanceof DataFormatError) assert.match(err.where, /^(line \d+|open|column )/, err.message);
      // A valid table is refused only when its integer target could be labels or counts (--task decides).
      assert.ok(!clean || /which could be class labels or counts$/.test((err as Error).message), `a valid table was rejected: ${(err as Error).message}`);
      return outcome;
    }
    assert.ok(allFinite(s), "loaded non-finite inputs or targets");
    checkSplit(s, opts);
    if (clean) {
      assert.equal(s.train.n + s.test.n, c.table.rows.length);
      assert.equal(s.task, c.table.labels ? "classification" : "regression");
    }
    return "loaded";
  });
});

test(
  "CSV cells that would standardise beyond float32 range are refused (or standardised finitely)",
  () => {
    // [text, seed, testSize]: sum of squares overflows float64 (1e200); a value beyond float32 in a
    // column constant on the training rows (1e39, x and y); a training spread of 1e-100 that blows
    // up a test value of 1.
    const cases: [string, number, number][] = [
      ["a,y\n1e200,1\n0,2\n", 0, 0],
      ["a,y\n0,1\n0,2\n1e39,3\n", 2, 1],
      ["a,y\n1,0\n2,0\n3,1e39\n", 2, 1],
      ["a,y\n0,1\n1e-100,2\n1,3\n", 2, 1],
    ];
    for (const [text, seed, testSize] of cases) {
      const [FILE] = files.next("overflow.csv");
      writeFileSync(FILE, text);
      let s: DataSplit;
      try {
        s = loadCsv(FILE, { target: "y", seed, testSize, task: "regression" });
      } catch (e) {
        expectNamedError(e, [FILE]);
        assert.match(String(e), /expected a value within float32 range once standardised with the training mean/);
        continue;
      }
      for (const v of [...s.train.x, ...s.test.x, ...s.train.y, ...s.test.y]) assert.ok(Number.isFinite(v), `${JSON.stringify(text)} gave ${v}`);
    }
  },
);

test(
  "a lone CR (old Mac line ends) ends a row",
  () => {
    const [FILE] = files.next("cr.csv");
    writeFileSync(FILE, "1,2\r3,4\r5,6\r7,8\n");
    const s = loadCsv(FILE, { target: 1, seed: 0, task: "regression" });
    assert.equal(s.train.n + s.test.n, 4, `loaded ${s.train.n + s.test.n} row(s) of ${s.train.xShape[0]} inputs`);
  },
);
