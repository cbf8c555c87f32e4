/**
 * Plain-array datasets: the boundary between file formats and the array engine.
 * Loaders produce these; nothing here knows about jax-js.
 */

/** What the targets mean. */
export type Task = "classification" | "regression";

/** One set of examples, row-major. */
export interface ArrayData {
  /** Inputs, `n * prod(xShape)` values, row-major. */
  readonly x: Float32Array;
  /** Per-example input shape, e.g. `[784]` for flat MNIST, `[1, 28, 28]` for images, `[13]` for UCI. */
  readonly xShape: readonly number[];
  /** Targets: class indices (classification) or real values (regression). */
  readonly y: Int32Array | Float32Array;
  /** Number of examples. */
  readonly n: number;
}

/** Affine map between standardised and original units: original = mean + std * standardised. */
export interface Standardisation {
  readonly mean: number;
  readonly std: number;
}

/** A train/test split ready for fitting and evaluation. */
export interface DataSplit {
  readonly task: Task;
  /** Number of classes (classification only). */
  readonly numClasses?: number;
  readonly train: ArrayData;
  readonly test: ArrayData;
  /**
   * Regression only: how the (standardised) targets map back to original units. Metrics are
   * reported in original units.
   */
  readonly targetScale?: Standardisation;
  /** The source string as the user wrote it, e.g. `mnist`, `uci:../shared/data/uci/yacht`. */
  readonly source: string;
  /** Split description, e.g. `{ seed: 0, split: 3 }`. */
  readonly splitInfo: Record<string, number | string>;
  /**
   * Tabular sources (CSV, UCI): the input columns in model order and the training mean and std each
   * was standardised with (x_model = (x - mean) / std), so new rows can be mapped the same way.
   */
  readonly inputScale?: InputScale;
  /** How the task was chosen, when a loader inferred it (CSV), e.g. "regression (inferred: ...)". */
  readonly taskNote?: string;
}

/** Per-column input standardisation of a tabular source. */
export interface InputScale {
  readonly columns: readonly string[];
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** Errors raised for malformed input: always name the file and where in it. */
export class DataFormatError extends Error {
  constructor(
    readonly file: string,
    readonly where: string,
    readonly expected: string,
    readonly got?: string,
  ) {
    super(`${file}: ${clipText(where, 200)}: expected ${clipText(expected, 400)}${got === undefined ? "" : `, got ${clipText(got)}`}`);
    this.name = "DataFormatError";
  }
}

/** At most `max` characters of text a user's file supplied (a 50,000-character cell stays readable). */
export function clipText(s: string, max = 120): string {
  return s.length > max ? `${s.slice(0, max - 3)}... (${s.length} characters)` : s;
}
