/**
 * The UCI regression benchmark folders (Hernandez-Lobato & Adams 2015 / Gal & Ghahramani 2016
 * layout): `data.txt` plus 0-based column and row index files, one train/test split per K.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { makeSplit, parseNumber, standardiseColumns, standardiseTarget } from "./arrays.js";
import { readText } from "./files.js";
import { DataFormatError, type DataSplit } from "./types.js";

const LAYOUT =
  "a UCI folder holds data.txt, index_features.txt, index_target.txt, n_splits.txt, index_train_K.txt, index_test_K.txt";

/** A whitespace-separated token with its 1-based line number. */
interface Token {
  readonly text: string;
  readonly line: number;
}

/** Read a UCI file, turning a missing file into an error that names it and lists the layout. */
function readUciText(file: string): string {
  return readText(file, `a readable file (${LAYOUT})`);
}

/** Whitespace-separated tokens of a file, each with its line number. */
function tokens(text: string): Token[] {
  const out: Token[] = [];
  text.split(/\r?\n/).forEach((l, i) => {
    for (const t of l.trim().split(/\s+/)) if (t !== "") out.push({ text: t, line: i + 1 });
  });
  return out;
}

/**
 * Integer indices from a file of whitespace-separated numbers ("12" or "12.0"), each checked to lie
 * in 0..limit-1. `what` describes an index in error messages.
 */
function readIndices(file: string, limit: number, what: string): { value: number; line: number }[] {
  return tokens(readUciText(file)).map(({ text, line }) => {
    const v = parseNumber(text);
    if (v === undefined || !Number.isInteger(v)) throw new DataFormatError(file, `line ${line}`, `an integer ${what}`, `"${text}"`);
    if (v < 0 || v >= limit) throw new DataFormatError(file, `line ${line}`, `a ${what} in 0..${limit - 1}`, `${v}`);
    return { value: v, line };
  });
}

/** Parse data.txt: whitespace-separated numbers, same column count on every line; trailing blank lines allowed. */
function readTable(file: string): { table: Float64Array; nRows: number; nCols: number } {
  const lines = readUciText(file).split(/\r?\n/);
  let last = lines.length - 1;
  while (last >= 0 && lines[last].trim() === "") last--;
  const nRows = last + 1;
  if (nRows === 0) throw new DataFormatError(file, "line 1", "at least one row of numbers", "an empty file");
  const nCols = lines[0].trim() === "" ? 0 : lines[0].trim().split(/\s+/).length;
  if (nCols === 0) throw new DataFormatError(file, "line 1", "a row of numbers", "a blank line");
  const table = new Float64Array(nRows * nCols);
  for (let r = 0; r < nRows; r++) {
    const trimmed = lines[r].trim();
    const cells = trimmed === "" ? [] : trimmed.split(/\s+/);
    if (cells.length !== nCols) throw new DataFormatError(file, `line ${r + 1}`, `${nCols} columns`, `${cells.length}`);
    for (let c = 0; c < nCols; c++) {
      const v = parseNumber(cells[c]);
      if (v === undefined) throw new DataFormatError(file, `line ${r + 1}, column ${c + 1} (index ${c})`, "a number", `"${cells[c]}"`);
      table[r * nCols + c] = v;
    }
  }
  return { table, nRows, nCols };
}

/** The folder holding data.txt: `folder` itself or its `data/` subfolder. */
function resolveDataDir(folder: string): string {
  if (existsSync(join(folder, "data.txt"))) return folder;
  if (existsSync(join(folder, "data", "data.txt"))) return join(folder, "data");
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new DataFormatError(folder, "open", `a UCI dataset folder (${LAYOUT}, possibly under data/)`, "no such directory");
  }
  throw new DataFormatError(join(folder, "data.txt"), "open", `data.txt here or in data/ (${LAYOUT})`, "no such file");
}

/**
 * Load split `split` of a UCI regression folder (the dataset folder or its `data/` subfolder).
 * Inputs and target are standardised with training-set mean and population std (std 0 -> 1);
 * `targetScale` maps standardised targets back. xShape `[d]`. Throws {@link DataFormatError} for a
 * missing file, ragged or non-numeric rows, out-of-range or non-integer indices, a split beyond
 * n_splits, and rows shared between the train and test index files.
 */
export function loadUci(folder: string, split: number, opts: { source?: string } = {}): DataSplit {
  const dir = resolveDataDir(folder);
  const f = (name: string): string => join(dir, name);

  const nSplitsFile = f("n_splits.txt");
  const nSplitsTok = tokens(readUciText(nSplitsFile));
  const nSplits = nSplitsTok.length === 1 ? parseNumber(nSplitsTok[0].text) : undefined;
  if (nSplits === undefined || !Number.isInteger(nSplits) || nSplits < 1) {
    throw new DataFormatError(nSplitsFile, "line 1", "one positive integer", nSplitsTok.map((t) => `"${t.text}"`).join(" ") || "nothing");
  }
  if (!Number.isInteger(split) || split < 0 || split >= nSplits) {
    throw new DataFormatError(nSplitsFile, `line ${nSplitsTok[0].line} (n_splits = ${nSplits})`, `a split number in 0..${nSplits - 1}`, `${split}`);
  }

  const dataFile = f("data.txt");
  const { table, nRows, nCols } = readTable(dataFile);

  const targetFile = f("index_target.txt");
  const target = readIndices(targetFile, nCols, `column index of ${basename(dataFile)}`);
  if (target.length !== 1) {
    throw new DataFormatError(targetFile, `line ${target[1]?.line ?? 1}`, "exactly one target column index", `${target.length} indices`);
  }
  const featuresFile = f("index_features.txt");
  const features = readIndices(featuresFile, nCols, `column index of ${basename(dataFile)}`);
  if (features.length === 0) throw new DataFormatError(featuresFile, "line 1", "at least one feature column index", "none");
  const seenCols = new Map<number, number>();
  for (const { value, line } of features) {
    if (value === target[0].value) {
      throw new DataFormatError(featuresFile, `line ${line}`, `a feature column other than the target (${basename(targetFile)})`, `${value}`);
    }
    const first = seenCols.get(value);
    if (first !== undefined) throw new DataFormatError(featuresFile, `line ${line}`, "each column index once", `${value} again (first at line ${first})`);
    seenCols.set(value, line);
  }

  const rowsOf = (name: string, other?: { name: string; lines: Map<number, number> }): { rows: Int32Array; lines: Map<number, number> } => {
    const file = f(name);
    const idx = readIndices(file, nRows, `row index of ${basename(dataFile)}`);
    if (idx.length === 0) throw new DataFormatError(file, "line 1", "at least one row index", "none");
    const lines = new Map<number, number>();
    for (const { value, line } of idx) {
      const first = lines.get(value);
      if (first !== undefined) throw new DataFormatError(file, `line ${line}`, "each row index once", `${value} again (first at line ${first})`);
      const clash = other?.lines.get(value);
      if (clash !== undefined) {
        throw new DataFormatError(file, `line ${line}`, `a row index not in ${other!.name}`, `${value} (also at line ${clash} of ${other!.name})`);
      }
      lines.set(value, line);
    }
    return { rows: Int32Array.from(idx, (t) => t.value), lines };
  };
  const trainName = `index_train_${split}.txt`;
  const train = rowsOf(trainName);
  const test = rowsOf(`index_test_${split}.txt`, { name: trainName, lines: train.lines });

  const cols = features.map((t) => t.value);
  const x = standardiseColumns(table, nCols, cols, train.rows, train.rows, test.rows);
  const y = standardiseTarget(table, nCols, target[0].value, train.rows, train.rows, test.rows);
  const xShape = [cols.length];
  const datasetDir = basename(dir) === "data" ? dirname(dir) : dir;
  return makeSplit({
    task: "regression",
    train: { x: x.train, xShape, y: y.train, n: train.rows.length },
    test: { x: x.test, xShape, y: y.test, n: test.rows.length },
    targetScale: y.scale,
    source: opts.source ?? `uci:${folder}`,
    splitInfo: { dataset: basename(datasetDir), split, nSplits },
    inputScale: { columns: cols.map(String), mean: x.stats.map((s) => s.mean), std: x.stats.map((s) => s.std) },
  });
}
