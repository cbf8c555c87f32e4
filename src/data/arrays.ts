/**
 * Helpers on plain-array data shared by the loaders and the training loop: split assembly, row
 * selection, standardisation and strict number parsing. Browser-safe (no Node modules).
 */
import type { ArrayData, DataSplit, InputScale, Standardisation, Task } from "./types.js";

/** Assemble a {@link DataSplit}. */
export function makeSplit(parts: {
  task: Task;
  numClasses?: number;
  train: ArrayData;
  test: ArrayData;
  targetScale?: Standardisation;
  source: string;
  splitInfo: Record<string, number | string>;
  inputScale?: InputScale;
  taskNote?: string;
}): DataSplit {
  const split: DataSplit = {
    task: parts.task,
    ...(parts.numClasses === undefined ? {} : { numClasses: parts.numClasses }),
    train: parts.train,
    test: parts.test,
    ...(parts.targetScale === undefined ? {} : { targetScale: parts.targetScale }),
    source: parts.source,
    splitInfo: parts.splitInfo,
    ...(parts.inputScale === undefined ? {} : { inputScale: parts.inputScale }),
    ...(parts.taskNote === undefined ? {} : { taskNote: parts.taskNote }),
  };
  return split;
}

/** Number of values per example for a per-example shape. */
export function rowSize(xShape: readonly number[]): number {
  return xShape.reduce((a, b) => a * b, 1);
}

/** Rows `idx` of `data` as a new {@link ArrayData} (same y type). */
export function takeRows(data: ArrayData, idx: ArrayLike<number>): ArrayData {
  const d = rowSize(data.xShape);
  const x = new Float32Array(idx.length * d);
  const y = data.y instanceof Int32Array ? new Int32Array(idx.length) : new Float32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    x.set(data.x.subarray(r * d, (r + 1) * d), i * d);
    y[i] = data.y[r];
  }
  return { x, xShape: data.xShape, y, n: idx.length };
}

/** An empty {@link ArrayData} with the given shape and target type. */
export function emptyData(xShape: readonly number[], classification: boolean): ArrayData {
  return { x: new Float32Array(0), xShape, y: classification ? new Int32Array(0) : new Float32Array(0), n: 0 };
}

/**
 * Check a test-set size against the `n` examples of `source`; expects an integer in 0..n-1 (a
 * non-empty training part). The messages name the flag and the source.
 */
export function checkTestSize(testSize: number, n: number, source: string): number {
  if (n < 2) throw new RangeError(`${source} has ${n} example${n === 1 ? "" : "s"}: too few to hold out a test set (at least 2 are needed)`);
  if (!Number.isInteger(testSize) || testSize < 0 || testSize > n - 1) {
    throw new RangeError(`--test-size must be an integer in 1..${n - 1} for ${source} (${n} examples), got ${testSize}`);
  }
  return testSize;
}

/**
 * Mean and population standard deviation (std 0 or non-finite becomes 1). Expects values.length > 0.
 * When the squared deviations overflow (values near 1e200), they are scaled by their largest
 * magnitude first: std = M sqrt(mean(((v - mean) / M)^2)), M = max |v - mean|.
 */
export function standardisation(values: ArrayLike<number>): Standardisation {
  const n = values.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i];
  mean /= n;
  if (!Number.isFinite(mean)) {
    mean = 0;
    for (let i = 0; i < n; i++) mean += values[i] / n;
  }
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  let std = Math.sqrt(ss / n);
  if (!Number.isFinite(std)) {
    let m = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(values[i] - mean));
    let scaled = 0;
    for (let i = 0; i < n; i++) scaled += ((values[i] - mean) / m) ** 2;
    std = m * Math.sqrt(scaled / n);
  }
  return { mean, std: std > 0 && Number.isFinite(std) ? std : 1 };
}

/**
 * Standardise a numeric table column-wise with statistics from the rows `statRows` (the training rows).
 * `table` is row-major `nRows x nCols` (float64), `cols` the columns to keep, `trainRows` and
 * `testRows` the row indices. Returns float32 inputs plus the per-column statistics.
 */
export function standardiseColumns(
  table: Float64Array,
  nCols: number,
  cols: readonly number[],
  statRows: ArrayLike<number>,
  trainRows: ArrayLike<number>,
  testRows: ArrayLike<number>,
): { train: Float32Array; test: Float32Array; stats: Standardisation[] } {
  const d = cols.length;
  const stats = cols.map((c) => {
    const v = new Float64Array(statRows.length);
    for (let i = 0; i < statRows.length; i++) v[i] = table[statRows[i] * nCols + c];
    return standardisation(v);
  });
  const apply = (rows: ArrayLike<number>): Float32Array => {
    const out = new Float32Array(rows.length * d);
    for (let i = 0; i < rows.length; i++) {
      for (let j = 0; j < d; j++) out[i * d + j] = (table[rows[i] * nCols + cols[j]] - stats[j].mean) / stats[j].std;
    }
    return out;
  };
  return { train: apply(trainRows), test: apply(testRows), stats };
}

/** Standardise one column of `table` (the target) with the statistics of `statRows`. */
export function standardiseTarget(
  table: Float64Array,
  nCols: number,
  col: number,
  statRows: ArrayLike<number>,
  trainRows: ArrayLike<number>,
  testRows: ArrayLike<number>,
): { train: Float32Array; test: Float32Array; scale: Standardisation } {
  const { train, test, stats } = standardiseColumns(table, nCols, [col], statRows, trainRows, testRows);
  return { train, test, scale: stats[0] };
}

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Parse a decimal number strictly (no hex, no empty string, no NaN/Infinity); undefined if not a number. */
export function parseNumber(text: string): number | undefined {
  if (!NUMBER_RE.test(text)) return undefined;
  const v = Number(text);
  return Number.isFinite(v) ? v : undefined;
}

