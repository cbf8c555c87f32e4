/**
 * Data sources by name: the one entry point the CLI uses (`--data <source>`), plus re-exports.
 */
import { isAbsolute, resolve } from "node:path";
import { loadCsv } from "./csv.js";
import { loadIdx } from "./idx.js";
import { loadEmbeddedMnist } from "./mnist.js";
import { rotateImages } from "./rotate.js";
import { toyRegressionGap, toySines, twoMoons } from "./toy.js";
import type { DataSplit, Task } from "./types.js";
import { loadUci } from "./uci.js";

export { fingerprint, sharedRows, splitFingerprint } from "./fingerprint.js";
export { loadCsv, loadCsvInputs, type CsvInputs, type CsvOptions } from "./csv.js";
export { loadIdx, loadIdxArrays, loadIdxImages, parseIdx, readIdx, writeIdx, MAX_IDX_LABEL, type IdxArray, type IdxDtype, type IdxValues } from "./idx.js";
export { embeddedMnistArrays, loadEmbeddedMnist } from "./mnist.js";
export { rotateImages } from "./rotate.js";
export { createRng, permutation, shuffleInPlace, type Rng } from "./prng.js";
export { gapFunction, sinesFunction, toyRegressionGap, toySines, twoMoons } from "./toy.js";
export { DataFormatError, type ArrayData, type DataSplit, type InputScale, type Standardisation, type Task } from "./types.js";
export { loadUci } from "./uci.js";

/** The accepted `--data` forms, for help text and errors. */
export const DATA_SOURCE_FORMS: readonly string[] = [
  "mnist (the 10,000 digits embedded in the mnist package)",
  "mnist:rotate=<degrees> (the same digits and split, each rotated: calibration under shift)",
  "idx:<images>,<labels> (IDX files, optionally gzipped)",
  "uci:<folder> (a UCI regression folder, or its data/ subfolder; the split is chosen by --split)",
  "csv:<file> (with --target: a column name or 0-based index)",
  "toy:regression-gap",
  "toy:two-moons",
  "toy:sines[=<n>] (4-input smooth regression, n training points, default 2000; noise std 0.1)",
];

/** Options for {@link loadData}; each source uses the ones that apply to it. */
export interface LoadDataOptions {
  /** Shuffle seed for mnist, idx, csv and toy sources (default 0). */
  seed?: number;
  /** UCI split number (default 0). */
  split?: number;
  /** CSV target column: name or 0-based index. */
  target?: string;
  /** CSV: the task, when the target column alone does not settle it (see csv.ts `decideTask`). */
  task?: Task;
  /** Number of test examples for mnist (default 2000), idx (default 20%) and csv (default 20%). */
  testSize?: number;
  /**
   * `fit` (default) splits train/test; `evaluate` with an idx or csv source puts every example in
   * `test` and leaves `train` empty. Other sources return their usual split either way.
   */
  role?: "fit" | "evaluate";
}

function unknown(source: string, why: string): Error {
  return new Error(`unknown data source "${source}" (${why}); expected one of:\n  ${DATA_SOURCE_FORMS.join("\n  ")}`);
}

/**
 * Load a dataset from a source string: `mnist`, `idx:<images>,<labels>`, `uci:<folder>`,
 * `csv:<file>`, `toy:regression-gap` or `toy:two-moons` (see {@link DATA_SOURCE_FORMS}).
 * Synchronous; the returned split records `source` exactly as given. Throws an Error listing the
 * accepted forms for an unknown source, {@link DataFormatError} for malformed files.
 */
export function loadData(source: string, opts: LoadDataOptions = {}): DataSplit {
  const seed = opts.seed ?? 0;
  const colon = source.indexOf(":");
  const scheme = colon < 0 ? source : source.slice(0, colon);
  const rest = colon < 0 ? "" : source.slice(colon + 1);
  switch (scheme) {
    case "mnist": {
      const split = loadEmbeddedMnist({ seed, testSize: opts.testSize });
      if (colon < 0) return split;
      const m = /^rotate=(-?\d+(?:\.\d+)?)$/.exec(rest);
      if (!m) throw unknown(source, "mnist takes no argument but rotate=<degrees>");
      const deg = Number(m[1]);
      return { ...split, train: rotateImages(split.train, deg), test: rotateImages(split.test, deg), source, splitInfo: { ...split.splitInfo, rotate: deg } };
    }
    case "idx": {
      const parts = rest.split(",");
      if (parts.length !== 2 || parts[0] === "" || parts[1] === "") throw unknown(source, "idx needs exactly two comma-separated files");
      return loadIdx(parts[0], parts[1], { seed, testSize: opts.testSize, role: opts.role, source });
    }
    case "uci":
      if (rest === "") throw unknown(source, "uci needs a folder");
      return loadUci(rest, opts.split ?? 0, { source });
    case "csv":
      if (rest === "") throw unknown(source, "csv needs a file");
      if (opts.target === undefined) throw new Error(`--data ${source}: a CSV source needs --target <column> (a header name or 0-based index)`);
      return loadCsv(rest, { target: opts.target, seed, testSize: opts.testSize, task: opts.task, role: opts.role, source });
    case "toy":
      if (rest === "regression-gap") return toyRegressionGap({ seed });
      if (rest === "two-moons") return twoMoons({ seed });
      if (rest === "sines") return toySines({ seed });
      if (rest.startsWith("sines=")) {
        const n = Number(rest.slice(6));
        if (!Number.isInteger(n) || n < 10) throw unknown(source, "toy:sines=<n> needs an integer n >= 10");
        return toySines({ seed, n });
      }
      throw unknown(source, `no toy dataset "${rest}"`);
    default:
      throw unknown(source, colon < 0 ? "no such source" : `no scheme "${scheme}"`);
  }
}

/**
 * `source` with every file path in it made absolute (against the current directory), so a posterior
 * that records it can be evaluated from anywhere: `csv:data.csv` -> `csv:/home/me/data.csv`.
 * Sources without paths (mnist, toy:...) are returned unchanged.
 */
export function absoluteSource(source: string): string {
  const colon = source.indexOf(":");
  if (colon < 0) return source;
  const scheme = source.slice(0, colon);
  const rest = source.slice(colon + 1);
  const abs = (p: string): string => (p === "" || isAbsolute(p) ? p : resolve(p));
  if (scheme === "idx") return `idx:${rest.split(",").map(abs).join(",")}`;
  if (scheme === "uci" || scheme === "csv") return `${scheme}:${abs(rest)}`;
  return source;
}

/**
 * The source a derived source is made from (`mnist:rotate=30` -> `mnist`): the same examples and split,
 * transformed. Other sources are their own base.
 */
export function baseSource(source: string): string {
  return /^mnist:rotate=/.test(source) ? "mnist" : source;
}
