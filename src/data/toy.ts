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
