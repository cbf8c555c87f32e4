/**
 * Delimited text tables (CSV, semicolon- or tab-separated) as a seeded train/test split.
 */
import { makeSplit, parseNumber, standardiseColumns, standardiseTarget } from "./arrays.js";
import { readText } from "./files.js";
import { permutation } from "./prng.js";
import { DataFormatError, type DataSplit, type Standardisation, type Task } from "./types.js";

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
    } else if (ch === "\r") {
      // CRLF ends the line at its LF; a lone CR (old Mac files) ends it here.
      if (text[i + 1] !== "\n") {
        endRecord();
        line++;
        startLine = line;
      }
    } else {
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

/** How messages name column `c`: by its header name, or by position when the file has no header. */
function columnLabel(names: readonly string[] | undefined, c: number): string {
  return names ? `column "${names[c]}" (index ${c})` : `column ${c + 1} (index ${c})`;
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
  /** Exact number of test rows (0..n-1; `bayesdl fit` needs at least 1). */
  testSize?: number;
  /** The task; inferred from the target column only when unambiguous (see {@link decideTask}). */
  task?: Task;
  /**
   * `evaluate`: every row is a test row (train empty), standardised with statistics over all rows
   * (evaluation re-standardises with the posterior's own); default `fit`.
   */
  role?: "fit" | "evaluate";
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
  const colName = (c: number): string => columnLabel(names, c);

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
  const { task, note } = decideTask(rows, target, opts.task, path, colName(target));
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

  if (n < 2) throw new DataFormatError(path, `line ${rows[0].line}`, "at least 2 data rows (one to train on, one to test on)", `${n}`);
  let nTest: number;
  if (opts.role === "evaluate") {
    nTest = n;
  } else if (opts.testSize !== undefined) {
    if (!Number.isInteger(opts.testSize) || opts.testSize < 0 || opts.testSize > n - 1) {
      throw new RangeError(`--test-size must be an integer in 1..${n - 1} for ${path} (${n} data rows), got ${opts.testSize}`);
    }
    nTest = opts.testSize;
  } else {
    const frac = opts.testFraction ?? 0.2;
    if (!(frac > 0 && frac < 1)) throw new RangeError(`testFraction must be in (0, 1), got ${frac}`);
    nTest = Math.min(Math.max(1, Math.round(frac * n)), n - 1);
  }
  const perm = permutation(n, opts.seed);
  const trainRows = perm.subarray(0, n - nTest);
  const testRows = perm.subarray(n - nTest);

  const cols = Array.from({ length: nCols }, (_, c) => c).filter((c) => c !== target);
  const statRows = trainRows.length > 0 ? trainRows : testRows;
  const x = standardiseColumns(table, nCols, cols, statRows, trainRows, testRows);
  checkStandardised(path, rows, cols, names, trainRows, testRows, x);
  const xShape = [cols.length];
  const splitInfo: Record<string, number | string> = { seed: opts.seed, testSize: nTest, target: names ? names[target] : target, task };
  const inputScale = { columns: cols.map((c) => (names ? names[c] : String(c))), mean: x.stats.map((s) => s.mean), std: x.stats.map((s) => s.std) };
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
      inputScale,
      taskNote: note,
    });
  }
  const y = standardiseTarget(table, nCols, target, statRows, trainRows, testRows);
  checkStandardised(path, rows, [target], names, trainRows, testRows, y);
  return makeSplit({
    task,
    train: { x: x.train, xShape, y: y.train, n: trainRows.length },
    test: { x: x.test, xShape, y: y.test, n: testRows.length },
    targetScale: y.scale,
    source,
    splitInfo,
    inputScale,
    taskNote: note,
  });
}

/**
 * Every standardised value must be a finite float32: a cell of 1e39, or one far outside a column whose
 * training rows barely vary (spread 1e-100), is an error naming its line and column.
 */
function checkStandardised(
  path: string,
  rows: readonly CsvRecord[],
  cols: readonly number[],
  names: readonly string[] | undefined,
  trainRows: ArrayLike<number>,
  testRows: ArrayLike<number>,
  z: { train: Float32Array; test: Float32Array; stats?: readonly Standardisation[]; scale?: Standardisation },
): void {
  const d = cols.length;
  for (const [part, idx] of [[z.train, trainRows], [z.test, testRows]] as const) {
    const bad = part.findIndex((v) => !Number.isFinite(v));
    if (bad < 0) continue;
    const row = rows[idx[Math.floor(bad / d)]];
    const c = cols[bad % d];
    const st = z.stats ? z.stats[bad % d] : z.scale!;
    const column = columnLabel(names, c);
    throw new DataFormatError(
      path,
      `line ${row.line}, ${column}`,
      `a value within float32 range once standardised with the training mean ${st.mean.toPrecision(4)} and sd ${st.std.toPrecision(4)}`,
      `"${row.fields[c]}"`,
    );
  }
}

/** Integer-valued targets with at most this many distinct values could be class labels or counts. */
const AMBIGUOUS_MAX_DISTINCT = 10;

/**
 * The task of a CSV target column: `given` when set (a regression target must then be all numbers),
 * otherwise inferred only when unambiguous:
 * - every cell a number with a fractional part somewhere, or integers with more than
 *   {@link AMBIGUOUS_MAX_DISTINCT} distinct values: regression;
 * - no cell a number: classification (text labels);
 * - integers with few distinct values (0/1, digits): ambiguous, an error asking for `--task`;
 * - numbers mixed with other cells (`NaN`, `1.2.3`): an error naming the first cell that is not a number.
 * An empty target cell is always an error (a missing label). Returns the task and a sentence saying
 * how it was chosen.
 */
export function decideTask(rows: readonly { fields: string[]; line: number }[], target: number, given: Task | undefined, path: string, column: string): { task: Task; note: string } {
  const empty = rows.find((r) => r.fields[target] === "");
  if (empty) throw new DataFormatError(path, `line ${empty.line}, ${column}`, "a target value", "an empty cell");
  const values = rows.map((r) => parseNumber(r.fields[target]));
  const numeric = values.filter((v) => v !== undefined).length;
  if (given === "classification") return { task: given, note: "classification (--task)" };
  const firstText = rows.find((_, i) => values[i] === undefined);
  if (given === "regression") {
    if (firstText) throw new DataFormatError(path, `line ${firstText.line}, ${column}`, "a number (--task regression)", `"${firstText.fields[target]}"`);
    return { task: given, note: "regression (--task)" };
  }
  if (numeric === 0) return { task: "classification", note: "classification (inferred: the target column holds text labels; --task to override)" };
  if (firstText) {
    throw new DataFormatError(
      path,
      `line ${firstText.line}, ${column}`,
      `a number like the other ${numeric} target cells (or --task classification if these are labels)`,
      `"${firstText.fields[target]}"`,
    );
  }
  const distinct = new Set(values).size;
  if (values.every((v) => Number.isInteger(v)) && distinct <= AMBIGUOUS_MAX_DISTINCT) {
    throw new DataFormatError(
      path,
      column,
      "--task regression or --task classification: the target holds only integers",
      `${distinct} distinct values (${[...new Set(values)].sort((a, b) => a! - b!).slice(0, 10).join(", ")}), which could be class labels or counts`,
    );
  }
  const why = values.some((v) => !Number.isInteger(v)) ? "the target holds non-integer numbers" : `the target holds ${distinct} distinct integers`;
  return { task: "regression", note: `regression (inferred: ${why}; --task to override)` };
}

/** Input rows of a CSV file for prediction: raw values (not standardised), in the order asked for. */
export interface CsvInputs {
  /** Row-major `n x columns.length`. */
  readonly x: Float64Array;
  readonly n: number;
  /** The columns read, in order (header names, or 0-based indices as strings without a header). */
  readonly columns: readonly string[];
  /** Header columns present in the file but not used (e.g. a target column). */
  readonly ignored: readonly string[];
}

/**
 * Read the input columns of a CSV file that may lack the target: with a header row and named `columns`,
 * those columns by name in that order (others ignored); otherwise the file must have exactly
 * `columns.length` columns, taken in order. Every selected cell must be a number.
 * @throws DataFormatError naming the file, line and column.
 */
export function loadCsvInputs(path: string, columns: readonly string[]): CsvInputs {
  const text = readText(path, "a readable CSV file");
  const records = parseRecords(text, detectDelimiter(text, path), path);
  if (records.length === 0) throw new DataFormatError(path, "line 1", "at least one row of inputs", "an empty file");
  const header = hasHeader(records);
  const names = header ? records[0].fields : undefined;
  const rows = header ? records.slice(1) : records;
  if (rows.length === 0) throw new DataFormatError(path, `line ${records[0].line + 1}`, "at least one row of inputs after the header", "none");
  const nCols = records[0].fields.length;
  const byName = names !== undefined && columns.some((c) => !/^\d+$/.test(c));
  let pick: number[];
  if (byName) {
    pick = columns.map((c) => {
      const j = names!.indexOf(c);
      if (j < 0) throw new DataFormatError(path, `line ${records[0].line}`, `an input column named "${c}" (the posterior's inputs are ${columns.map((s) => JSON.stringify(s)).join(", ")})`, `columns ${names!.map((s) => JSON.stringify(s)).join(", ")}`);
      return j;
    });
  } else {
    if (nCols !== columns.length) throw new DataFormatError(path, `line ${records[0].line}`, `${columns.length} input columns (the posterior's inputs; or a header naming them)`, `${nCols}`);
    pick = columns.map((_, j) => j);
  }
  const x = new Float64Array(rows.length * pick.length);
  rows.forEach((r, i) => {
    if (r.fields.length !== nCols) throw new DataFormatError(path, `line ${r.line}`, `${nCols} columns`, `${r.fields.length}`);
    pick.forEach((c, j) => {
      const v = parseNumber(r.fields[c]);
      if (v === undefined) throw new DataFormatError(path, `line ${r.line}, ${columnLabel(names, c)}`, "a number", `"${r.fields[c]}"`);
      x[i * pick.length + j] = v;
    });
  });
  const ignored = names ? names.filter((_, j) => !pick.includes(j)) : [];
  return { x, n: rows.length, columns: pick.map((c) => (names ? names[c] : String(c))), ignored };
}
