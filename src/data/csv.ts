/**
 * Delimited text tables (CSV, semicolon- or tab-separated) as a seeded train/test split.
 */
import { makeSplit, parseNumber, standardiseColumns, standardiseTarget } from "./arrays.js";
import { readText } from "./files.js";
import { permutation } from "./prng.js";
import { DataFormatError, type DataSplit, type Task } from "./types.js";

/** One parsed record: its fields and the 1-based line it starts on. */
interface CsvRecord {
  readonly fields: string[];
  readonly line: number;
}

const DELIMITERS = [",", ";", "\t"] as const;

/**
 * Split text into records (RFC 4180 quoting: `"a, ""b"""`; quoted fields may span lines).
 * Unquoted fields are trimmed; blank lines are skipped. Stops after `maxRecords` records.
 */
function parseRecords(text: string, delim: string, file: string, maxRecords = Infinity): CsvRecord[] {
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false; // current field was quoted
  let quotedRecord = false; // some field of the current record was quoted (so it is not a blank line)
  let inQuotes = false;
  let afterQuote = false; // just closed a quoted field: skip spaces up to the delimiter
  let line = 1;
  let startLine = 1;
  let quoteLine = 1;
  const endField = (): void => {
    fields.push(quoted ? field : field.trim());
    field = "";
    quoted = false;
    afterQuote = false;
  };
  const endRecord = (): void => {
    endField();
    if (!(fields.length === 1 && fields[0] === "" && !quotedRecord)) records.push({ fields, line: startLine });
    fields = [];
    quotedRecord = false;
  };
  for (let i = 0; i < text.length && records.length < maxRecords; i++) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          inQuotes = false;
          afterQuote = true;
        }
      } else {
        if (ch === "\n") line++;
        field += ch;
      }
    } else if (ch === '"' && field.trim() === "") {
      inQuotes = true;
      quoted = true;
      quotedRecord = true;
      quoteLine = line;
      field = "";
    } else if (ch === delim) {
      endField();
    } else if (afterQuote && (ch === " " || ch === "\t" || ch === "\r")) {
      // padding after a closing quote
    } else if (ch === "\n") {
      endRecord();
      line++;
      startLine = line;
    } else if (ch !== "\r") {
      field += ch;
    }
  }
  if (inQuotes) throw new DataFormatError(file, `line ${quoteLine}`, "a closing quote for the field opened here", "end of file");
  if (records.length < maxRecords && (fields.length > 0 || field !== "" || quoted)) endRecord();
  return records;
}

/**
 * Pick the delimiter whose first records have a consistent field count > 1 (most fields wins).
 * A candidate that fails to parse (unterminated quote) is rethrown if no other gives 2+ columns.
 */
function detectDelimiter(text: string, file: string): string {
  let best: { delim: string; cols: number; consistent: boolean } | undefined;
  let failure: unknown;
  for (const delim of DELIMITERS) {
    let head: CsvRecord[];
    try {
      head = parseRecords(text, delim, file, 20);
    } catch (e) {
      failure ??= e;
      continue;
    }
    if (head.length === 0) continue;
    const cols = head[0].fields.length;
    const consistent = cols > 1 && head.every((r) => r.fields.length === cols);
    const better =
      !best || (consistent && !best.consistent) || (consistent === best.consistent && cols > best.cols);
    if (better) best = { delim, cols, consistent };
  }
  if ((best === undefined || best.cols < 2) && failure !== undefined) throw failure;
  return best?.delim ?? ",";
}

/** Whether the first record is a header: some cell is non-numeric where the next row is numeric, or all are non-numeric. */
function hasHeader(records: CsvRecord[]): boolean {
  const first = records[0].fields;
  const nonNumeric = first.map((t) => parseNumber(t) === undefined);
  if (!nonNumeric.some(Boolean)) return false;
  if (records.length === 1 || nonNumeric.every(Boolean)) return true;
  const second = records[1].fields;
  return nonNumeric.some((nn, c) => nn && c < second.length && parseNumber(second[c]) !== undefined);
}

/** Options for {@link loadCsv}. */
export interface CsvOptions {
  /** Target column: a header name, or a 0-based column index (a digit string also counts as an index when no header has that name). */
  target: string | number;
  /** Seed for the shuffle that decides the split. */
  seed: number;
  /** Fraction of rows in the test set (default 0.2), rounded; ignored when `testSize` is given. */
  testFraction?: number;
  /** Exact number of test rows (0..n-1). */
  testSize?: number;
  /** Default: regression if every target cell is a number, classification otherwise. */
  task?: Task;
  /** Source string recorded in the split (default `csv:<path>`). */
  source?: string;
}

/**
 * Load a delimited table as a seeded train/test split. Delimiter `,`, `;` or tab (detected),
 * RFC 4180 quotes, optional header (the first row is a header when it has non-numeric cells over
 * numeric ones). Every non-target column is an input, standardised with training mean/std
 * (std 0 -> 1). Regression targets are standardised likewise (`targetScale`); classification
 * targets are mapped to 0..K-1 in sorted order of the distinct labels (numeric order when all are
 * numbers), listed in `splitInfo.classes` as JSON. Throws {@link DataFormatError} for an empty file,
 * ragged rows, non-numeric cells and a missing target column.
 */
export function loadCsv(path: string, opts: CsvOptions): DataSplit {
  const text = readText(path, "a readable CSV file");
  const records = parseRecords(text, detectDelimiter(text, path), path);
  if (records.length === 0) throw new DataFormatError(path, "line 1", "at least one data row", "an empty file");
  const header = hasHeader(records);
  const nCols = records[0].fields.length;
  const names = header ? records[0].fields : undefined;
  const rows = header ? records.slice(1) : records;
  if (rows.length === 0) throw new DataFormatError(path, `line ${records[0].line + 1}`, "at least one data row after the header", "none");
  if (nCols < 2) throw new DataFormatError(path, `line ${records[0].line}`, "at least 2 columns (inputs and a target)", "1");
  const colName = (c: number): string => (names ? `column "${names[c]}" (index ${c})` : `column ${c + 1} (index ${c})`);

  const available = names ? names.map((s) => JSON.stringify(s)).join(", ") + ` (or an index 0..${nCols - 1})` : `a column index 0..${nCols - 1} (no header row)`;
  let target: number;
  if (typeof opts.target === "string" && names?.includes(opts.target)) {
    if (names.indexOf(opts.target) !== names.lastIndexOf(opts.target)) {
      throw new DataFormatError(path, `line ${records[0].line}`, `a unique target column name`, `"${opts.target}" ${names.filter((s) => s === opts.target).length} times`);
    }
    target = names.indexOf(opts.target);
  } else if (typeof opts.target === "number" || /^\d+$/.test(opts.target)) {
    target = Number(opts.target);
    if (!Number.isInteger(target) || target < 0 || target >= nCols) {
      throw new DataFormatError(path, `line ${records[0].line}`, `a target column, one of ${available}`, `${opts.target}`);
    }
  } else {
    throw new DataFormatError(path, `line ${records[0].line}`, `a target column, one of ${available}`, `"${opts.target}"`);
  }

  for (const r of rows) {
    if (r.fields.length !== nCols) throw new DataFormatError(path, `line ${r.line}`, `${nCols} columns`, `${r.fields.length}`);
  }
  const task: Task = opts.task ?? (rows.every((r) => parseNumber(r.fields[target]) !== undefined) ? "regression" : "classification");

  // Numeric table: inputs always; target too for regression, class index for classification.
  const n = rows.length;
  const table = new Float64Array(n * nCols);
  let classes: string[] | undefined;
  if (task === "classification") {
    const raw = rows.map((r) => r.fields[target]);
    const allNumeric = raw.every((t) => parseNumber(t) !== undefined);
    const keyOf = (t: string): string => (allNumeric ? String(parseNumber(t)) : t);
    const keys = [...new Set(raw.map(keyOf))];
    keys.sort(allNumeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
    classes = keys;
    const index = new Map(keys.map((k, i) => [k, i]));
    rows.forEach((r, i) => (table[i * nCols + target] = index.get(keyOf(r.fields[target]))!));
  }
  rows.forEach((r, i) => {
    for (let c = 0; c < nCols; c++) {
      if (c === target && task === "classification") continue;
      const v = parseNumber(r.fields[c]);
      if (v === undefined) throw new DataFormatError(path, `line ${r.line}, ${colName(c)}`, "a number", `"${r.fields[c]}"`);
      table[i * nCols + c] = v;
    }
  });

  let nTest: number;
  if (opts.testSize !== undefined) {
    if (!Number.isInteger(opts.testSize) || opts.testSize < 0 || opts.testSize > n - 1) {
      throw new RangeError(`testSize must be an integer in 0..${n - 1} for ${path} (${n} rows), got ${opts.testSize}`);
    }
    nTest = opts.testSize;
  } else {
    const frac = opts.testFraction ?? 0.2;
    if (!(frac >= 0 && frac < 1)) throw new RangeError(`testFraction must be in [0, 1), got ${frac}`);
    nTest = Math.min(Math.round(frac * n), n - 1);
  }
  const perm = permutation(n, opts.seed);
  const trainRows = perm.subarray(0, n - nTest);
  const testRows = perm.subarray(n - nTest);

  const cols = Array.from({ length: nCols }, (_, c) => c).filter((c) => c !== target);
  const x = standardiseColumns(table, nCols, cols, trainRows, testRows);
  const xShape = [cols.length];
  const splitInfo: Record<string, number | string> = { seed: opts.seed, testSize: nTest, target: names ? names[target] : target };
  const source = opts.source ?? `csv:${path}`;
  if (task === "classification") {
    const labels = (idx: Int32Array): Int32Array => Int32Array.from(idx, (r) => table[r * nCols + target]);
    return makeSplit({
      task,
      numClasses: classes!.length,
      train: { x: x.train, xShape, y: labels(trainRows), n: trainRows.length },
      test: { x: x.test, xShape, y: labels(testRows), n: testRows.length },
      source,
      splitInfo: { ...splitInfo, classes: JSON.stringify(classes) },
    });
  }
  const y = standardiseTarget(table, nCols, target, trainRows, testRows);
  return makeSplit({
    task,
    train: { x: x.train, xShape, y: y.train, n: trainRows.length },
    test: { x: x.test, xShape, y: y.test, n: testRows.length },
    targetScale: y.scale,
    source,
    splitInfo,
  });
}
