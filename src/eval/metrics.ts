/**
 * Evaluation metrics on plain typed arrays (no array engine).
 *
 * Classification metrics take predictive probabilities `probs` (row-major `[n, k]`, already
 * averaged over posterior samples) and integer `labels` (`[n]`). Regression metrics evaluate the
 * equal-weight Gaussian mixture given by per-sample means and standard deviations.
 *
 * All functions validate their inputs and throw an `Error` naming the function and the offending
 * argument (empty inputs, length mismatches, NaN / infinite values, out-of-range labels).
 */
import { LOG_2PI } from "../core/math.js";

/** Probability-like input: a row-major `[n, k]` (or flat) floating-point array. */
export type FloatArray = Float32Array | Float64Array;

/** Probabilities below this are clamped before taking logs in {@link nll}: `-log(1e-12) ≈ 27.63`. */
export const PROB_FLOOR = 1e-12;

/** Default number of equal-width confidence bins for {@link ece}. */
export const DEFAULT_ECE_BINS = 15;

/** Tolerance for a row of `probs` to sum to 1: `|sum_c p_c - 1| <= ROW_SUM_TOL`. */
const ROW_SUM_TOL = 1e-3;



// ---------------------------------------------------------------------------------------------
// validation helpers

function checkPositiveInt(fn: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${fn}: ${name} must be a positive integer, got ${v}`);
}

function checkFinite(fn: string, name: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (!Number.isFinite(v)) throw new Error(`${fn}: ${name} contains ${v} at index ${i}`);
  }
}

/** Validate `probs` as `[n, k]` probabilities; returns n. */
function checkProbs(fn: string, name: string, probs: FloatArray, k: number): number {
  checkPositiveInt(fn, "k", k);
  if (probs.length % k !== 0) {
    throw new Error(`${fn}: ${name}.length (${probs.length}) is not a multiple of k (${k})`);
  }
  const n = probs.length / k;
  if (n === 0) throw new Error(`${fn}: ${name} is empty (n = 0 examples); metrics are undefined`);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const p = probs[i * k + c];
      if (Number.isNaN(p)) throw new Error(`${fn}: ${name} contains NaN at index ${i * k + c} (row ${i}, class ${c})`);
      if (!(p >= 0 && p <= 1 + ROW_SUM_TOL)) {
        throw new Error(`${fn}: ${name}[${i * k + c}] = ${p} (row ${i}, class ${c}) is not a probability in [0, 1]`);
      }
      sum += p;
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOL) {
      throw new Error(`${fn}: row ${i} of ${name} sums to ${sum}, expected 1 (are these logits rather than probabilities?)`);
    }
  }
  return n;
}

/** Validate `labels` against n rows and k classes. */
function checkLabels(fn: string, labels: Int32Array, n: number, k: number): void {
  if (labels.length !== n) {
    throw new Error(`${fn}: labels.length (${labels.length}) does not match the number of rows of probs (${n})`);
  }
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (y < 0 || y >= k) throw new Error(`${fn}: labels[${i}] = ${y} is outside [0, ${k})`);
  }
}

function checkClassification(fn: string, probs: FloatArray, labels: Int32Array, k: number): number {
  const n = checkProbs(fn, "probs", probs, k);
  checkLabels(fn, labels, n, k);
  return n;
}

/** Index of the largest entry of row i (first index on ties). */
function argmaxRow(probs: FloatArray, i: number, k: number): number {
  let best = 0;
  let bv = probs[i * k];
  for (let c = 1; c < k; c++) {
    const v = probs[i * k + c];
    if (v > bv) {
      bv = v;
      best = c;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// classification

/**
 * Top-1 accuracy.
 *
 * Formula: `(1/n) sum_i 1[argmax_c p_ic = y_i]`; ties in the argmax go to the lowest class index.
 *
 * @param probs predictive probabilities, row-major `[n, k]`.
 * @param labels true classes in `[0, k)`, length n.
 * @param k number of classes (>= 1).
 */
export function accuracy(probs: FloatArray, labels: Int32Array, k: number): number {
  const n = checkClassification("accuracy", probs, labels, k);
  let correct = 0;
  for (let i = 0; i < n; i++) if (argmaxRow(probs, i, k) === labels[i]) correct++;
  return correct / n;
}

/**
 * Mean negative log-likelihood (cross-entropy) of the true labels, in nats.
 *
 * Formula: `(1/n) sum_i -log max(p_{i,y_i}, 1e-12)`. The clamp at {@link PROB_FLOOR} = 1e-12 caps
 * each example's contribution at `-log(1e-12) ≈ 27.63` nats so that a single zero probability
 * (e.g. float32 underflow of a softmax) gives a finite, comparable number instead of `Infinity`.
 *
 * @param probs predictive probabilities, row-major `[n, k]`.
 * @param labels true classes in `[0, k)`, length n.
 * @param k number of classes (>= 1).
 */
export function nll(probs: FloatArray, labels: Int32Array, k: number): number {
  const n = checkClassification("nll", probs, labels, k);
  let total = 0;
  for (let i = 0; i < n; i++) total -= Math.log(Math.max(probs[i * k + labels[i]], PROB_FLOOR));
  return total / n;
}

/**
 * Multi-class Brier score (Brier 1950; the form used by Ovadia et al. 2019, "Can you trust your
 * model's uncertainty?"): squared error between the probability vector and the one-hot label,
 * summed over classes and averaged over examples. Range `[0, 2]`; lower is better.
 *
 * Formula: `(1/n) sum_i sum_c (p_ic - 1[c = y_i])^2`.
 *
 * @param probs predictive probabilities, row-major `[n, k]`.
 * @param labels true classes in `[0, k)`, length n.
 * @param k number of classes (>= 1).
 */
export function brier(probs: FloatArray, labels: Int32Array, k: number): number {
  const n = checkClassification("brier", probs, labels, k);
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      const d = probs[i * k + c] - (c === labels[i] ? 1 : 0);
      total += d * d;
    }
  }
  return total / n;
}

/** Per-bin contents of a reliability diagram (see {@link calibrationBins}). */
export interface CalibrationBins {
  /** Number of examples whose confidence falls in each bin. */
  count: Int32Array;
  /** Mean accuracy of each bin (NaN for empty bins). */
  accuracy: Float64Array;
  /** Mean confidence of each bin (NaN for empty bins). */
  confidence: Float64Array;
}

/** Bin of a confidence in `[0, 1]`: bin i covers `(i/B, (i+1)/B]`, and confidence 0 goes to bin 0. */
function binOf(conf: number, bins: number): number {
  let b = Math.ceil(conf * bins) - 1;
  // Make the result consistent with the edges as computed (i/B), whatever rounding conf*B did.
  if (b > 0 && conf <= b / bins) b--;
  if (b < bins - 1 && conf > (b + 1) / bins) b++;
  return Math.min(Math.max(b, 0), bins - 1);
}

/**
 * Reliability-diagram bins: examples grouped by confidence `max_c p_ic` into `bins` equal-width
 * bins over `[0, 1]`, bin i covering `(i/B, (i+1)/B]` (confidence exactly 0 goes to bin 0).
 *
 * Formula: `acc_b = (1/|B_b|) sum_{i in B_b} 1[argmax_c p_ic = y_i]`,
 * `conf_b = (1/|B_b|) sum_{i in B_b} max_c p_ic`.
 *
 * @param probs predictive probabilities, row-major `[n, k]`.
 * @param labels true classes in `[0, k)`, length n.
 * @param k number of classes (>= 1).
 * @param bins number of bins B (default 15).
 */
export function calibrationBins(probs: FloatArray, labels: Int32Array, k: number, bins = DEFAULT_ECE_BINS): CalibrationBins {
  const n = checkClassification("calibrationBins", probs, labels, k);
  checkPositiveInt("calibrationBins", "bins", bins);
  const count = new Int32Array(bins);
  const accuracy = new Float64Array(bins);
  const confidence = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const pred = argmaxRow(probs, i, k);
    const conf = Math.min(probs[i * k + pred], 1);
    const b = binOf(conf, bins);
    count[b]++;
    if (pred === labels[i]) accuracy[b]++;
    confidence[b] += conf;
  }
  for (let b = 0; b < bins; b++) {
    accuracy[b] = count[b] > 0 ? accuracy[b] / count[b] : NaN;
    confidence[b] = count[b] > 0 ? confidence[b] / count[b] : NaN;
  }
  return { count, accuracy, confidence };
}

/**
 * Expected calibration error (Guo et al. 2017) with equal-width confidence bins.
 *
 * Formula: `ECE = sum_b (|B_b| / n) |acc_b - conf_b|`, with confidence `max_c p_ic`, B equal-width
 * bins over `[0, 1]`, bin i covering `(i/B, (i+1)/B]` and confidence exactly 0 in bin 0
 * (see {@link calibrationBins}).
 *
 * @param probs predictive probabilities, row-major `[n, k]`.
 * @param labels true classes in `[0, k)`, length n.
 * @param k number of classes (>= 1).
 * @param bins number of bins B (default 15).
 */
export function ece(probs: FloatArray, labels: Int32Array, k: number, bins = DEFAULT_ECE_BINS): number {
  const n = checkClassification("ece", probs, labels, k);
  checkPositiveInt("ece", "bins", bins);
  const { count, accuracy, confidence } = calibrationBins(probs, labels, k, bins);
  let total = 0;
  for (let b = 0; b < bins; b++) {
    if (count[b] > 0) total += (count[b] / n) * Math.abs(accuracy[b] - confidence[b]);
  }
  return total;
}

/**
 * Entropy of each predictive distribution, in nats.
 *
 * Formula: `H_i = -sum_c p_ic log p_ic`, with `0 log 0 = 0`.
 *
 * @param probs predictive probabilities, row-major `[n, k]`.
 * @param k number of classes (>= 1).
 * @returns `Float64Array` of length n.
 */
export function predictiveEntropy(probs: FloatArray, k: number): Float64Array {
  const n = checkProbs("predictiveEntropy", "probs", probs, k);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let h = 0;
    for (let c = 0; c < k; c++) {
      const p = probs[i * k + c];
      if (p > 0) h -= p * Math.log(p);
    }
    out[i] = h;
  }
  return out;
}

/**
 * Area under the ROC curve via the Mann–Whitney U statistic: the probability that a random
 * positive scores higher than a random negative, ties counted 1/2. O(n log n) (sorting).
 *
 * Formula: `AUROC = (1 / (P N)) sum_{i in pos} sum_{j in neg} (1[s_i > s_j] + 1/2 1[s_i = s_j])`.
 *
 * @param scoresPositive scores of the positive class (P >= 1, finite).
 * @param scoresNegative scores of the negative class (N >= 1, finite).
 */
export function auroc(scoresPositive: ArrayLike<number>, scoresNegative: ArrayLike<number>): number {
  const np = scoresPositive.length;
  const nn = scoresNegative.length;
  if (np === 0) throw new Error("auroc: scoresPositive is empty; AUROC needs at least one positive");
  if (nn === 0) throw new Error("auroc: scoresNegative is empty; AUROC needs at least one negative");
  checkFinite("auroc", "scoresPositive", scoresPositive);
  checkFinite("auroc", "scoresNegative", scoresNegative);
  const pos = Float64Array.from(scoresPositive).sort();
  const neg = Float64Array.from(scoresNegative).sort();
  // Two pointers over the sorted negatives: lt = #neg < s, le = #neg <= s.
  let lt = 0;
  let le = 0;
  let u2 = 0; // 2U, kept integral (exact up to 2^53)
  for (let i = 0; i < np; i++) {
    const s = pos[i];
    while (lt < nn && neg[lt] < s) lt++;
    if (le < lt) le = lt;
    while (le < nn && neg[le] <= s) le++;
    u2 += lt + le;
  }
  return u2 / 2 / (np * nn);
}

/**
 * Out-of-distribution detection AUROC using predictive entropy as the score, OOD as the positive
 * class (higher entropy should mean "more likely OOD").
 *
 * Formula: `auroc(H(probsOut), H(probsIn))` with `H` = {@link predictiveEntropy}.
 *
 * @param probsIn in-distribution predictive probabilities, `[n_in, k]`.
 * @param probsOut out-of-distribution predictive probabilities, `[n_out, k]`.
 * @param k number of classes (>= 1).
 */
export function oodAuroc(probsIn: FloatArray, probsOut: FloatArray, k: number): number {
  checkProbs("oodAuroc", "probsIn", probsIn, k);
  checkProbs("oodAuroc", "probsOut", probsOut, k);
  return auroc(predictiveEntropy(probsOut, k), predictiveEntropy(probsIn, k));
}

/** Summary classification metrics (see {@link classificationMetrics}). */
export interface ClassificationMetrics {
  accuracy: number;
  /** `1 - accuracy`. */
  error: number;
  nll: number;
  brier: number;
  /** ECE with 15 equal-width bins. */
  ece: number;
}

/**
 * All summary classification metrics at once.
 *
 * Formula: {@link accuracy}, `error = 1 - accuracy`, {@link nll}, {@link brier}, {@link ece} (15 bins).
 *
 * @param probs predictive probabilities, row-major `[n, k]`.
 * @param labels true classes in `[0, k)`, length n.
 * @param k number of classes (>= 1).
 */
export function classificationMetrics(probs: FloatArray, labels: Int32Array, k: number): ClassificationMetrics {
  const acc = accuracy(probs, labels, k);
  return { accuracy: acc, error: 1 - acc, nll: nll(probs, labels, k), brier: brier(probs, labels, k), ece: ece(probs, labels, k) };
}

// ---------------------------------------------------------------------------------------------
// averaging over posterior samples

/**
 * Average per-sample predictive probabilities (Bayesian model averaging with equal weights).
 *
 * Formula: `p_ic = (1/S) sum_s p^(s)_ic`.
 *
 * @param samples either an array of S per-sample arrays (each `[n * k]`, all the same length), or
 *   one stacked array `[S * n * k]` together with `numSamples` = S.
 * @param numSamples S; required (and only allowed) when `samples` is a single stacked array.
 * @returns `Float64Array` of length `n * k`.
 */
export function averageProbs(samples: readonly FloatArray[]): Float64Array;
export function averageProbs(samples: FloatArray, numSamples: number): Float64Array;
export function averageProbs(samples: readonly FloatArray[] | FloatArray, numSamples?: number): Float64Array {
  const fn = "averageProbs";
  let parts: FloatArray[];
  if (Array.isArray(samples)) {
    if (numSamples !== undefined && numSamples !== samples.length) {
      throw new Error(`${fn}: numSamples (${numSamples}) does not match the number of arrays (${samples.length})`);
    }
    parts = samples as FloatArray[];
  } else {
    const stacked = samples as FloatArray;
    if (numSamples === undefined) throw new Error(`${fn}: numSamples is required with a single stacked array`);
    checkPositiveInt(fn, "numSamples", numSamples);
    if (stacked.length % numSamples !== 0) {
      throw new Error(`${fn}: stacked length ${stacked.length} is not a multiple of numSamples (${numSamples})`);
    }
    const m = stacked.length / numSamples;
    parts = [];
    for (let s = 0; s < numSamples; s++) parts.push(stacked.subarray(s * m, (s + 1) * m));
  }
  if (parts.length === 0) throw new Error(`${fn}: no samples (S = 0)`);
  const m = parts[0].length;
  if (m === 0) throw new Error(`${fn}: samples are empty (n * k = 0)`);
  const out = new Float64Array(m);
  for (let s = 0; s < parts.length; s++) {
    const p = parts[s];
    if (p.length !== m) throw new Error(`${fn}: sample ${s} has length ${p.length}, sample 0 has ${m}`);
    for (let j = 0; j < m; j++) {
      const v = p[j];
      if (Number.isNaN(v)) throw new Error(`${fn}: sample ${s} contains NaN at index ${j}`);
      out[j] += v;
    }
  }
  const inv = 1 / parts.length;
  for (let j = 0; j < m; j++) out[j] *= inv;
  return out;
}

/**
 * Numerically stable log of the mean of exponentials.
 *
 * Formula: `logMeanExp(x) = m + log((1/S) sum_s exp(x_s - m))`, `m = max_s x_s`
 * (`-Infinity` if every `x_s = -Infinity`).
 *
 * @param values the S values `x_s` (S >= 1, no NaN, no `+Infinity`).
 */
export function logMeanExp(values: ArrayLike<number>): number {
  const s = values.length;
  if (s === 0) throw new Error("logMeanExp: values is empty");
  let m = -Infinity;
  for (let i = 0; i < s; i++) {
    const v = values[i];
    if (Number.isNaN(v) || v === Infinity) throw new Error(`logMeanExp: values contains ${v} at index ${i}`);
    if (v > m) m = v;
  }
  if (m === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < s; i++) sum += Math.exp(values[i] - m);
  return m + Math.log(sum / s);
}

function checkLogProbShape(fn: string, logp: FloatArray, S: number, n: number, k: number): void {
  checkPositiveInt(fn, "S", S);
  checkPositiveInt(fn, "n", n);
  checkPositiveInt(fn, "k", k);
  if (logp.length !== S * n * k) {
    throw new Error(`${fn}: logp.length (${logp.length}) != S * n * k (${S} * ${n} * ${k} = ${S * n * k})`);
  }
}

/**
 * Log of the sample-averaged predictive from per-sample log-probabilities, via log-mean-exp.
 *
 * Formula: `log p_ic = logMeanExp_s logp[s, i, c] = log (1/S) sum_s exp(logp[s, i, c])`.
 *
 * @param logp per-sample log-probabilities (e.g. `log_softmax` outputs), row-major `[S, n, k]`.
 * @param S number of posterior samples.
 * @param n number of examples.
 * @param k number of classes.
 * @returns `Float64Array` of length `n * k` holding `log p_ic`.
 */
export function logPredictiveFromLogProbs(logp: FloatArray, S: number, n: number, k: number): Float64Array {
  const fn = "logPredictiveFromLogProbs";
  checkLogProbShape(fn, logp, S, n, k);
  const m = n * k;
  const out = new Float64Array(m);
  const max = new Float64Array(m).fill(-Infinity);
  for (let s = 0; s < S; s++) {
    for (let j = 0; j < m; j++) {
      const v = logp[s * m + j];
      if (Number.isNaN(v) || v === Infinity) throw new Error(`${fn}: logp contains ${v} at index ${s * m + j}`);
      if (v > max[j]) max[j] = v;
    }
  }
  for (let s = 0; s < S; s++) {
    for (let j = 0; j < m; j++) if (max[j] > -Infinity) out[j] += Math.exp(logp[s * m + j] - max[j]);
  }
  const logS = Math.log(S);
  for (let j = 0; j < m; j++) out[j] = max[j] === -Infinity ? -Infinity : max[j] + Math.log(out[j]) - logS;
  return out;
}

/**
 * Sample-averaged predictive probabilities from per-sample log-probabilities, computed stably
 * with log-mean-exp (no underflow of individual `exp(logp)` before averaging).
 *
 * Formula: `p_ic = exp(logMeanExp_s logp[s, i, c])`.
 *
 * @param logp per-sample log-probabilities, row-major `[S, n, k]`.
 * @param S number of posterior samples.
 * @param n number of examples.
 * @param k number of classes.
 * @returns `Float64Array` of length `n * k`.
 */
export function predictiveFromLogProbs(logp: FloatArray, S: number, n: number, k: number): Float64Array {
  const out = logPredictiveFromLogProbs(logp, S, n, k);
  for (let j = 0; j < out.length; j++) out[j] = Math.exp(out[j]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// regression

/** Affine map from standardised to original target units: `original = mean + std * z`. */
export interface TargetScale {
  mean: number;
  std: number;
}

/** Regression metrics in original units (see {@link regressionMetrics}). */
export interface RegressionMetrics {
  /** Root mean squared error of the mixture mean. */
  rmse: number;
  /** Mean per-point test log-likelihood (nats). */
  ll: number;
  /** `-ll`. */
  nll: number;
}

/**
 * Regression metrics of the equal-weight Gaussian mixture predictive over S posterior samples,
 * reported in ORIGINAL target units.
 *
 * Formula, with `a = scale.mean`, `b = scale.std`:
 * - mixture mean `m_i = a + b (1/S) sum_s mu_si`; `rmse = sqrt((1/n) sum_i (y_i - m_i)^2)`;
 * - `ll = (1/n) sum_i log (1/S) sum_s N(y_i; a + b mu_si, (b sigma_si)^2)`, evaluated with
 *   log-sum-exp over s; `nll = -ll`.
 *
 * @param means per-sample predictive means in standardised units, row-major `[S, n]`.
 * @param stds per-sample predictive standard deviations in standardised units, `[S, n]`, all > 0.
 * @param y targets in original units, length n (S is inferred as `means.length / n`).
 * @param scale standardisation `{mean, std}` with `original = mean + std * z`, std > 0.
 */
export function regressionMetrics(means: FloatArray, stds: FloatArray, y: ArrayLike<number>, scale: TargetScale): RegressionMetrics {
  const fn = "regressionMetrics";
  const n = y.length;
  if (n === 0) throw new Error(`${fn}: y is empty (n = 0 targets); metrics are undefined`);
  if (means.length === 0 || means.length % n !== 0) {
    throw new Error(`${fn}: means.length (${means.length}) is not a positive multiple of y.length (${n})`);
  }
  const S = means.length / n;
  if (stds.length !== means.length) {
    throw new Error(`${fn}: stds.length (${stds.length}) != means.length (${means.length})`);
  }
  if (!Number.isFinite(scale.mean)) throw new Error(`${fn}: scale.mean must be finite, got ${scale.mean}`);
  if (!(Number.isFinite(scale.std) && scale.std > 0)) throw new Error(`${fn}: scale.std must be finite and > 0, got ${scale.std}`);
  checkFinite(fn, "means", means);
  checkFinite(fn, "stds", stds);
  checkFinite(fn, "y", y);
  for (let j = 0; j < stds.length; j++) {
    if (!(stds[j] > 0)) throw new Error(`${fn}: stds[${j}] = ${stds[j]} is not > 0`);
  }
  const { mean: a, std: b } = scale;
  const logS = Math.log(S);
  const terms = new Float64Array(S);
  let se = 0;
  let ll = 0;
  for (let i = 0; i < n; i++) {
    let mu = 0;
    let mx = -Infinity;
    for (let s = 0; s < S; s++) {
      const m = a + b * means[s * n + i];
      const sd = b * stds[s * n + i];
      mu += means[s * n + i];
      const z = (y[i] - m) / sd;
      const t = -0.5 * LOG_2PI - Math.log(sd) - 0.5 * z * z;
      terms[s] = t;
      if (t > mx) mx = t;
    }
    const mixMean = a + (b * mu) / S;
    se += (y[i] - mixMean) ** 2;
    let sum = 0;
    for (let s = 0; s < S; s++) sum += Math.exp(terms[s] - mx);
    ll += mx + Math.log(sum) - logS;
  }
  const meanLl = ll / n;
  return { rmse: Math.sqrt(se / n), ll: meanLl, nll: -meanLl };
}
