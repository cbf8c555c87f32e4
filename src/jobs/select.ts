/**
 * Choosing the prior's scale s from the training part alone, by K-fold cross-validation: for each
 * candidate s on a grid, the method is fitted on K - 1 folds of the training examples and scored by
 * the predictive negative log-likelihood on the remaining fold; the s with the lowest mean NLL over
 * the folds is returned, and the caller refits on the whole training part with it. The held-out part
 * never enters. With one fold, a single random 20% of the training part is the validation set.
 *
 * It works for every method, since it only fits and evaluates; its cost is (grid size) x K fits of
 * (K - 1)/K of the data.
 */
import { split, type Key } from "../core/engine.js";
import type { OptionValue } from "../core/options.js";
import { free } from "../core/tree.js";
import { takeRows } from "../data/arrays.js";
import { permutation } from "../data/prng.js";
import type { DataSplit } from "../data/types.js";
import type { Method } from "../methods.js";
import { makeModel, type Model } from "../models/model.js";
import type { PriorSelection } from "../models/prior.js";
import { fit } from "../run/driver.js";
import { DivergenceError } from "../run/loop.js";
import { evaluatePosterior } from "./evaluate.js";

/** The default grid of s for `--prior-scale cv` (fan-in priors: s^2 / fanIn is a weight's variance). */
export const CV_GRID: readonly number[] = [1, 2, 4, 8, 16, 32];

/** Options of {@link selectPriorScale}. */
export interface SelectOptions {
  readonly grid?: readonly number[];
  /** K (default 1: one 20% validation part). */
  readonly folds?: number;
  readonly batchSize?: number;
  readonly options?: Readonly<Record<string, OptionValue | undefined>>;
  /** Seed of the fold assignment. */
  readonly seed: number;
  /** Called after each fit with a line of text (progress). */
  readonly log?: (line: string) => void;
}

/** The validation parts of K-fold cross-validation of n examples (one 20% part when K = 1). */
export function foldsOf(n: number, folds: number, seed: number): Int32Array[] {
  if (!Number.isInteger(folds) || folds < 1) throw new RangeError(`cross-validation: folds must be an integer >= 1, got ${folds}`);
  const p = permutation(n, seed);
  if (folds === 1) {
    const v = Math.max(1, Math.round(0.2 * n));
    if (v >= n) throw new RangeError(`cross-validation: ${n} training examples are too few for a validation part`);
    return [p.slice(0, v)];
  }
  if (folds > n) throw new RangeError(`cross-validation: ${folds} folds need at least ${folds} training examples, got ${n}`);
  return Array.from({ length: folds }, (_, f) => p.slice(Math.floor((f * n) / folds), Math.floor(((f + 1) * n) / folds)));
}

/**
 * Cross-validate the prior scale of `model` (its network and likelihood kept, its prior's `scale`
 * replaced by each grid value; per-layer scales are not searched) for `method` on `data.train`.
 * Consumes `k`.
 */
export async function selectPriorScale(k: Key, method: Method, model: Model, data: DataSplit, o: SelectOptions): Promise<Extract<PriorSelection, { by: "cv" }>> {
  if (model.prior.perLayer) throw new RangeError("cross-validation of the prior scale searches one s for all layers; drop the per-layer scales");
  const grid = [...(o.grid ?? CV_GRID)];
  const folds = foldsOf(data.train.n, o.folds ?? 1, o.seed);
  const keys = split(k, grid.length * folds.length);
  // Each fold's fitting and validation parts, made once for the whole grid.
  const parts = folds.map((val) => {
    const inVal = new Uint8Array(data.train.n);
    for (const i of val) inVal[i] = 1;
    const rest = new Int32Array(data.train.n - val.length);
    let r = 0;
    for (let i = 0; i < data.train.n; i++) if (!inVal[i]) rest[r++] = i;
    const fitPart = takeRows(data.train, rest);
    const valSplit: DataSplit = { ...data, train: fitPart, test: takeRows(data.train, val) };
    return { fitPart, valSplit };
  });
  const nll: number[] = [];
  for (const [g, s] of grid.entries()) {
    const m = makeModel(model.network, model.likelihood, { ...model.prior, scale: s });
    let total = 0;
    for (const [f, { fitPart, valSplit }] of parts.entries()) {
      let result;
      try {
        result = await fit(keys[g * parts.length + f], method, m, fitPart, { batchSize: o.batchSize, options: o.options });
      } catch (e) {
        // A scale at which the method diverges scores as the worst possible; its other folds are skipped.
        if (!(e instanceof DivergenceError)) throw e;
        free(e.lastGood);
        free(keys.slice(g * parts.length + f + 1, (g + 1) * parts.length));
        total = Infinity;
        break;
      }
      try {
        const metrics = await evaluatePosterior(m, result.posterior.predict ? result.posterior : result.sampled, valSplit);
        total += metrics.nll;
      } finally {
        result.posterior.dispose();
        if (result.sampled !== result.posterior) result.sampled.dispose();
      }
    }
    nll.push(total / parts.length);
    o.log?.(`prior scale ${s}: validation NLL ${nll[g].toFixed(4)} (${parts.length === 1 ? "one 20% part" : `${parts.length} folds`})`);
  }
  const best = nll.reduce((b, v, i) => (v < nll[b] ? i : b), 0);
  if (!Number.isFinite(nll[best])) throw new Error(`cross-validation of the prior scale: the method diverged at every scale of the grid (${grid.join(", ")})`);
  return { by: "cv", folds: o.folds ?? 1, grid, nll, chosen: grid[best] };
}
