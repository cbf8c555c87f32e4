/**
 * Small synthetic datasets for demos and tests, deterministic in the seed.
 */
import { makeSplit } from "./arrays.js";
import { createRng, shuffleInPlace, type Rng } from "./prng.js";
import type { ArrayData, DataSplit } from "./types.js";

/** The regression-gap mean function: f(x) = sin(1.5 x). */
export function gapFunction(x: number): number {
  return Math.sin(1.5 * x);
}

function checkCount(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

function checkNoise(v: number): number {
  if (!(v >= 0 && Number.isFinite(v))) throw new RangeError(`noise must be a finite number >= 0, got ${v}`);
  return v;
}

/**
 * 1-D regression with a gap in the inputs. Training x: half the points uniform on [-4, -1], the
 * other half uniform on [1, 4] (nothing in (-1, 1)); y = sin(1.5 x) + noise * N(0, 1).
 * Test: `gridSize` evenly spaced x over [-6, 6] (the gap and beyond the data on both sides) with
 * targets drawn the same way. Defaults: n = 160, noise = 0.1, gridSize = 241 (step 0.05).
 * Targets are not standardised (`targetScale` is the identity). xShape `[1]`.
 */
export function toyRegressionGap(opts: { seed: number; n?: number; noise?: number; gridSize?: number }): DataSplit {
  const n = checkCount("n", opts.n ?? 160, 2);
  const noise = checkNoise(opts.noise ?? 0.1);
  const gridSize = checkCount("gridSize", opts.gridSize ?? 241, 2);
  const rng = createRng(opts.seed);
  const trainX = new Float32Array(n);
  const trainY = new Float32Array(n);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) {
    const u = 3 * rng.next();
    const x = i < half ? -4 + u : 1 + u;
    trainX[i] = x;
    trainY[i] = gapFunction(x) + noise * rng.normal();
  }
  const testX = new Float32Array(gridSize);
  const testY = new Float32Array(gridSize);
  for (let i = 0; i < gridSize; i++) {
    const x = -6 + (12 * i) / (gridSize - 1);
    testX[i] = x;
    testY[i] = gapFunction(x) + noise * rng.normal();
  }
  return makeSplit({
    task: "regression",
    train: { x: trainX, xShape: [1], y: trainY, n },
    test: { x: testX, xShape: [1], y: testY, n: gridSize },
    targetScale: { mean: 0, std: 1 },
    source: "toy:regression-gap",
    splitInfo: { seed: opts.seed, n, noise, gridSize },
  });
}

/** `count` two-moons points (class 0 the upper moon, class 1 the lower), classes balanced, order shuffled. */
function moons(rng: Rng, count: number, noise: number): ArrayData {
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = i < Math.floor(count / 2) ? 0 : 1;
  shuffleInPlace(labels, rng);
  const x = new Float32Array(2 * count);
  for (let i = 0; i < count; i++) {
    const t = Math.PI * rng.next();
    const [a, b] = labels[i] === 0 ? [Math.cos(t), Math.sin(t)] : [1 - Math.cos(t), 0.5 - Math.sin(t)];
    x[2 * i] = a + noise * rng.normal();
    x[2 * i + 1] = b + noise * rng.normal();
  }
  return { x, xShape: [2], y: labels, n: count };
}

/**
 * Two interleaved half-circles (as scikit-learn's `make_moons`, with angles drawn uniformly):
 * class 0 at (cos t, sin t), class 1 at (1 - cos t, 0.5 - sin t), t ~ U(0, pi), plus Gaussian noise of
 * std `noise`. `n` training points and `nTest` independent test points. Defaults: n = 200,
 * noise = 0.1, nTest = n. Classification, 2 classes, xShape `[2]`.
 */
export function twoMoons(opts: { seed: number; n?: number; noise?: number; nTest?: number }): DataSplit {
  const n = checkCount("n", opts.n ?? 200, 2);
  const noise = checkNoise(opts.noise ?? 0.1);
  const nTest = checkCount("nTest", opts.nTest ?? n, 0);
  const rng = createRng(opts.seed);
  const train = moons(rng, n, noise);
  const test = moons(rng, nTest, noise);
  return makeSplit({
    task: "classification",
    numClasses: 2,
    train,
    test,
    source: "toy:two-moons",
    splitInfo: { seed: opts.seed, n, noise, nTest },
  });
}

/** The `toy:sines` mean function of 4 inputs: smooth, with interactions, of unit-order variance. */
export function sinesFunction(x: ArrayLike<number>): number {
  return Math.sin(1.3 * x[0]) + 0.8 * Math.cos(0.9 * x[1] + 0.5 * x[2]) + 0.5 * Math.sin(0.7 * x[2] * x[3]) + 0.3 * x[3];
}

/**
 * Large-n GP regression: n training and n / 10 test inputs uniform on [-3, 3]^4, y = {@link
 * sinesFunction}(x) + noise N(0, 1) (default noise 0.1, so a perfect predictor's test RMSE is 0.1).
 * Inputs and targets are standardised on the training part like every tabular source. Default n = 2000;
 * `toy:sines=200000` gives the 200,000-point scale test.
 */
export function toySines(opts: { seed: number; n?: number; noise?: number }): DataSplit {
  const n = checkCount("n", opts.n ?? 2000, 10);
  const noise = checkNoise(opts.noise ?? 0.1);
  const nTest = Math.max(1, Math.floor(n / 10));
  const rng = createRng(opts.seed);
  const d = 4;
  const draw = (count: number) => {
    const x = new Float32Array(count * d);
    const y = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      for (let j = 0; j < d; j++) x[i * d + j] = -3 + 6 * rng.next();
      y[i] = sinesFunction(x.subarray(i * d, i * d + d)) + noise * rng.normal();
    }
    return { x, y };
  };
  const tr = draw(n);
  const te = draw(nTest);
  // Standardise inputs and targets on the training part.
  const mean = new Array<number>(d).fill(0);
  const std = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += tr.x[i * d + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j] += (tr.x[i * d + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]);
  let ym = 0;
  for (let i = 0; i < n; i++) ym += tr.y[i] / n;
  let ys = 0;
  for (let i = 0; i < n; i++) ys += (tr.y[i] - ym) ** 2 / n;
  ys = Math.sqrt(ys);
  const scale = (s: { x: Float32Array; y: Float32Array }, count: number) => {
    for (let i = 0; i < count; i++) {
      for (let j = 0; j < d; j++) s.x[i * d + j] = (s.x[i * d + j] - mean[j]) / std[j];
      s.y[i] = (s.y[i] - ym) / ys;
    }
  };
  scale(tr, n);
  scale(te, nTest);
  return makeSplit({
    task: "regression",
    train: { x: tr.x, xShape: [d], y: tr.y, n },
    test: { x: te.x, xShape: [d], y: te.y, n: nTest },
    targetScale: { mean: ym, std: ys },
    inputScale: { columns: ["x0", "x1", "x2", "x3"], mean, std },
    source: opts.n === undefined ? "toy:sines" : `toy:sines=${n}`,
    splitInfo: { seed: opts.seed, n, noise },
  });
}
