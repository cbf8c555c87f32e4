/**
 * Evaluation: the posterior predictive of stacked samples on a test set, and its metrics.
 */
import type { ArrayData, DataSplit } from "../data/types.js";
import { classificationMetrics, oodAuroc, regressionMetrics } from "../eval/metrics.js";
import { predictPosterior, type Predictive } from "../eval/predict.js";
import { key as makeKey, split as split_, type Key } from "../core/engine.js";
import type { Posterior } from "../core/method.js";
import type { Model, Params } from "../models/model.js";

/** Metrics of one evaluation, all numbers; names as printed and saved. */
export type Metrics = Record<string, number>;

/** Check that inputs fit the model (as many values per example as it takes). */
export function checkInputs(model: Model, data: ArrayData, what: string): void {
  const want = model.network.inputShape;
  const got = data.xShape;
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  if (size(want) !== size(got)) {
    throw new Error(`${what}: the data have inputs of shape [${got.join(", ")}] (${size(got)} values) but the model ${model.network.spec} takes [${want.join(", ")}] (${size(want)} values)`);
  }
}

/** Check that data fit the model before predicting (input shape and task). */
export function checkCompatible(model: Model, data: ArrayData, what: string): void {
  checkInputs(model, data, what);
  const classification = data.y instanceof Int32Array;
  if (classification !== (model.likelihood.spec.kind === "categorical")) {
    throw new Error(
      `${what}: the data are a ${classification ? "classification" : "regression"} set but the model has a ${model.likelihood.spec.kind} likelihood`,
    );
  }
  if (classification) {
    const k = model.network.outputDim;
    for (let i = 0; i < data.n; i++) {
      const y = (data.y as Int32Array)[i];
      if (y < 0 || y >= k) throw new Error(`${what}: example ${i} has label ${y}, but the model predicts ${k} classes (0..${k - 1})`);
    }
  }
}

/**
 * Predictive metrics of a posterior on `split.test`: accuracy, error, NLL, Brier and ECE for
 * classification; RMSE and test log-likelihood per point, in original units, for regression. With
 * `ood`, also the AUROC of predictive entropy separating `ood` inputs (positive) from the test set.
 * The predictive is the posterior's own (eval/predict.ts `predictPosterior`): its stored draws, `samples`
 * fresh draws of a distribution, or a function-space predictive. Borrows the posterior; consumes `k`.
 */
export async function evaluateSamples(model: Model, posterior: Posterior<Params>, split: DataSplit, ood?: ArrayData, k: Key = makeKey(0), samples?: number): Promise<{ metrics: Metrics; predictive: Predictive }> {
  checkCompatible(model, split.test, "evaluate");
  const [kTest, kOod] = split_(k);
  const predictive = await predictPosterior(model, posterior, split.test, kTest, samples);
  checkFinite(predictive);
  if (predictive.kind === "categorical") {
    const m = classificationMetrics(predictive.probs, split.test.y as Int32Array, predictive.numClasses);
    const metrics: Metrics = { ...m };
    if (ood) {
      const po = await predictPosterior(model, posterior, ood, kOod, samples);
      if (po.kind !== "categorical") throw new Error("unreachable: OOD predictive of a categorical model");
      metrics.oodAuroc = oodAuroc(predictive.probs, po.probs, predictive.numClasses);
    } else {
      kOod.dispose();
    }
    return { metrics, predictive };
  }
  kOod.dispose();
  const scale = split.targetScale ?? { mean: 0, std: 1 };
  const yOrig = Float64Array.from(split.test.y, (z) => scale.mean + scale.std * z);
  return { metrics: { ...regressionMetrics(predictive.means, predictive.stds, yOrig, scale) }, predictive };
}

/** A predictive with non-finite values (a diverged or corrupted posterior) cannot be scored. */
export function checkFinite(p: Predictive): void {
  const values = p.kind === "categorical" ? [p.probs] : [p.means, p.stds];
  let bad = 0;
  for (const v of values) for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) bad++;
  if (bad > 0) {
    throw new Error(`the posterior's predictions are not finite (${bad} NaN or infinite values): its parameters have diverged or are corrupted; fit again with a smaller learning rate / step size`);
  }
}

/**
 * {@link evaluateSamples} of a posterior: a set's stored draws, `samples` fresh draws from a
 * distribution, or its function-space predictive (keyed by `key`, consumed). Borrows the posterior.
 */
export async function evaluatePosterior(model: Model, posterior: Posterior<Params>, split: DataSplit, ood?: ArrayData, draw: { key?: Key; samples?: number } = {}): Promise<Metrics> {
  return (await evaluateSamples(model, posterior, split, ood, draw.key ?? makeKey(0), draw.samples)).metrics;
}
