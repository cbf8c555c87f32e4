/**
 * IDX files (the MNIST distribution format): parse, load image/label pairs, write.
 *
 * Layout: magic `00 00 <dtype> <ndim>`, then `ndim` big-endian uint32 dimensions, then the values,
 * big-endian, row-major. Dtype codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
 * 0x0E float64. Files starting with the gzip magic `1f 8b` are decompressed first; byte offsets in
 * errors then refer to the decompressed stream.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { checkTestSize, emptyData, makeSplit, takeRows } from "./arrays.js";
import { readBytes } from "./files.js";
import { permutation } from "./prng.js";
import { DataFormatError, type ArrayData, type DataSplit } from "./types.js";

/** IDX element types by name. */
export type IdxDtype = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

/** Typed array holding IDX values. */
export type IdxValues = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A parsed IDX tensor. */
export interface IdxArray {
  readonly dtype: IdxDtype;
  /** Dimensions, outermost first (for MNIST images `[n, 28, 28]`, labels `[n]`). */
  readonly shape: readonly number[];
  /** Values in row-major order, in host byte order. */
  readonly data: IdxValues;
  /** Whether the bytes were gzipped (byte offsets in errors then refer to the decompressed stream). */
  readonly gzipped: boolean;
}

/** One IDX element type: its code, size, typed array, and big-endian DataView accessors. */
interface DtypeInfo {
  readonly code: number;
  readonly dtype: IdxDtype;
  readonly size: number;
  readonly array: new (n: number) => IdxValues;
  readonly get: (v: DataView, offset: number) => number;
  readonly set: (v: DataView, offset: number, value: number) => void;
}

const DTYPES: readonly DtypeInfo[] = [
  { code: 0x08, dtype: "uint8", size: 1, array: Uint8Array, get: (v, o) => v.getUint8(o), set: (v, o, x) => v.setUint8(o, x) },
  { code: 0x09, dtype: "int8", size: 1, array: Int8Array, get: (v, o) => v.getInt8(o), set: (v, o, x) => v.setInt8(o, x) },
  { code: 0x0b, dtype: "int16", size: 2, array: Int16Array, get: (v, o) => v.getInt16(o), set: (v, o, x) => v.setInt16(o, x) },
  { code: 0x0c, dtype: "int32", size: 4, array: Int32Array, get: (v, o) => v.getInt32(o), set: (v, o, x) => v.setInt32(o, x) },
  { code: 0x0d, dtype: "float32", size: 4, array: Float32Array, get: (v, o) => v.getFloat32(o), set: (v, o, x) => v.setFloat32(o, x) },
  { code: 0x0e, dtype: "float64", size: 8, array: Float64Array, get: (v, o) => v.getFloat64(o), set: (v, o, x) => v.setFloat64(o, x) },
];

/** Largest label accepted by {@link loadIdxArrays} (labels are class indices 0..MAX_IDX_LABEL). */
export const MAX_IDX_LABEL = 65535;

const hex = (b: number): string => b.toString(16).padStart(2, "0");
const hexBytes = (bytes: Uint8Array, from: number, count: number): string =>
  Array.from(bytes.subarray(from, from + count), hex).join(" ");

/** Dimensions as `60000x28x28`; past 8 dimensions (a header may claim 255) only the first 8 and the count. */
const dimsStr = (shape: readonly number[]): string =>
  shape.length <= 8 ? shape.join("x") : `${shape.slice(0, 8).join("x")}x... (${shape.length} dimensions)`;

/**
 * Parse IDX bytes (plain or gzipped). `file` is only used in error messages. Throws
 * {@link DataFormatError} for a corrupt gzip stream, wrong magic, unknown dtype, a truncated
 * header or body, or trailing bytes; each names the file and byte offset.
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  let buf = bytes;
  let note = "";
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new DataFormatError(file, "byte 0 (gzip stream)", "a valid gzip stream", `zlib error: ${(e as Error).message}`);
    }
    note = " (after gunzip)";
  }
  if (buf.length < 4) {
    throw new DataFormatError(file, `byte ${buf.length}${note}`, "a 4-byte IDX magic (truncated file)", `${buf.length} bytes`);
  }
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new DataFormatError(file, `byte 0${note}`, "IDX magic 00 00 <dtype> <ndim>", hexBytes(buf, 0, 4));
  }
  const info = DTYPES.find((t) => t.code === buf[2]);
  if (!info) {
    const codes = DTYPES.map((t) => `0x${hex(t.code)} (${t.dtype})`).join(", ");
    throw new DataFormatError(file, `byte 2${note}`, `an IDX dtype code, one of ${codes}`, `0x${hex(buf[2])}`);
  }
  const ndim = buf[3];
  if (ndim === 0) throw new DataFormatError(file, `byte 3${note}`, "ndim >= 1", "0");
  const headerLen = 4 + 4 * ndim;
  if (buf.length < headerLen) {
    throw new DataFormatError(
      file,
      `byte ${buf.length}${note}`,
      `a ${headerLen}-byte header for ${ndim} dimensions (truncated file)`,
      `${buf.length} bytes`,
    );
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const expectedLen = headerLen + count * info.size;
  if (buf.length !== expectedLen) {
    const what = buf.length < expectedLen ? "truncated file" : "trailing bytes after the data";
    throw new DataFormatError(
      file,
      `byte ${Math.min(buf.length, expectedLen)}${note}`,
      `${expectedLen} bytes (${headerLen}-byte header + ${dimsStr(shape)} ${info.dtype} values) (${what})`,
      `${buf.length} bytes`,
    );
  }
  const data = new info.array(count);
  if (info.dtype === "uint8") data.set(buf.subarray(headerLen, expectedLen));
  else for (let i = 0; i < count; i++) data[i] = info.get(view, headerLen + info.size * i);
  return { dtype: info.dtype, shape, data, gzipped: note !== "" };
}

/** Read and parse an IDX file (plain or gzipped); a missing file is a {@link DataFormatError}. */
export function readIdx(path: string): IdxArray {
  return parseIdx(readBytes(path, "an IDX file"), path);
}

function dtypeOf(data: IdxValues): DtypeInfo {
  return DTYPES.find((t) => data instanceof t.array)!;
}

/**
 * Encode a tensor as IDX bytes. The dtype follows the typed array (Uint8Array -> 0x08, ...,
 * Float64Array -> 0x0E); `shape` must have 1..255 non-negative integer dimensions whose product is
 * `data.length`. With `gzip: true` the result is gzipped (as the official `*-idx3-ubyte.gz` files are).
 */
export function writeIdx(data: IdxValues, shape: readonly number[], opts: { gzip?: boolean } = {}): Uint8Array {
  if (shape.length < 1 || shape.length > 255) throw new RangeError(`writeIdx: expected 1..255 dimensions, got ${shape.length}`);
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) throw new RangeError(`writeIdx: bad dimension ${s} in [${shape.join(", ")}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`writeIdx: shape [${shape.join(", ")}] holds ${count} values, data has ${data.length}`);
  const info = dtypeOf(data);
  const headerLen = 4 + 4 * shape.length;
  const out = new Uint8Array(headerLen + count * info.size);
  const view = new DataView(out.buffer);
  out[2] = info.code;
  out[3] = shape.length;
  shape.forEach((s, i) => view.setUint32(4 + 4 * i, s));
  if (info.dtype === "uint8") out.set(data, headerLen);
  else for (let i = 0; i < count; i++) info.set(view, headerLen + info.size * i, data[i]);
  return opts.gzip ? new Uint8Array(gzipSync(out)) : out;
}

/**
 * Load an IDX image file and label file as one classification set. Images: first dimension is the
 * example count; uint8 values are scaled by 1/255, other dtypes kept as they are; a 3-D file
 * `[n, h, w]` gets xShape `[1, h, w]` (one channel, like {@link loadEmbeddedMnist}), otherwise xShape is
 * the remaining dimensions; at least one image, every value finite once converted to float32 (NaN,
 * infinities and float64 values beyond float32 range are errors). Labels: a 1-D file of integers in
 * 0..{@link MAX_IDX_LABEL}, one per image; numClasses is max label + 1. Errors name the file and byte offset.
 */
export function loadIdxArrays(imagesPath: string, labelsPath: string): ArrayData & { numClasses: number } {
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  const gz = labels.gzipped ? " (after gunzip)" : "";
  if (labels.shape.length !== 1) {
    throw new DataFormatError(labelsPath, `byte 3${gz}`, "a 1-D label file (ndim 1)", `ndim ${labels.shape.length}`);
  }
  const n = images.shape[0];
  if (n === 0) throw new DataFormatError(imagesPath, `byte 4${images.gzipped ? " (after gunzip)" : ""}`, "at least one image", "0");
  if (labels.shape[0] !== n) {
    throw new DataFormatError(labelsPath, `byte 4${gz}`, `${n} labels (the image count in ${imagesPath})`, `${labels.shape[0]}`);
  }
  const size = dtypeOf(labels.data).size;
  const headerLen = 8;
  const y = new Int32Array(n);
  let maxLabel = -1;
  for (let i = 0; i < n; i++) {
    const v = labels.data[i];
    if (!Number.isInteger(v) || v < 0 || v > MAX_IDX_LABEL) {
      throw new DataFormatError(
        labelsPath,
        `byte ${headerLen + i * size}${gz} (label ${i})`,
        `an integer class label in 0..${MAX_IDX_LABEL}`,
        `${v}`,
      );
    }
    y[i] = v;
    if (v > maxLabel) maxLabel = v;
  }
  return { ...imageInputs(images, imagesPath), y, numClasses: maxLabel + 1 };
}

/** Model inputs of an IDX image array: uint8 scaled by 1/255, `[n, h, w]` as `[1, h, w]` per example. */
function imageInputs(images: IdxArray, imagesPath: string): { x: Float32Array; xShape: number[]; n: number } {
  const rest = images.shape.slice(1);
  const xShape = rest.length === 2 ? [1, ...rest] : rest.length === 0 ? [1] : rest;
  const src = images.data;
  const x = new Float32Array(src.length);
  if (images.dtype === "uint8") for (let i = 0; i < src.length; i++) x[i] = src[i] / 255;
  else {
    x.set(src);
    const i = x.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) {
      const at = 4 + 4 * images.shape.length + i * dtypeOf(src).size;
      const gzi = images.gzipped ? " (after gunzip)" : "";
      throw new DataFormatError(imagesPath, `byte ${at}${gzi} (value ${i})`, "a finite image value (within float32 range)", `${src[i]}`);
    }
  }
  return { x, xShape, n: images.shape[0] };
}

/** The images of an IDX file alone (no labels), as model inputs like {@link loadIdxArrays} makes them. */
export function loadIdxImages(imagesPath: string): { x: Float32Array; xShape: number[]; n: number } {
  return imageInputs(readIdx(imagesPath), imagesPath);
}

/**
 * Load an IDX image/label pair as a {@link DataSplit}. For role `fit` (default) the examples are
 * shuffled by `seed` (default 0) and the last `testSize` (default round(20% of n)) form the test set;
 * for role `evaluate` every example is in `test` and `train` is empty. `source` defaults to
 * `idx:<images>,<labels>`.
 */
export function loadIdx(
  imagesPath: string,
  labelsPath: string,
  opts: { seed?: number; testSize?: number; role?: "fit" | "evaluate"; source?: string } = {},
): DataSplit {
  const all = loadIdxArrays(imagesPath, labelsPath);
  const source = opts.source ?? `idx:${imagesPath},${labelsPath}`;
  const base = { task: "classification" as const, numClasses: all.numClasses, source };
  if (opts.role === "evaluate") {
    const test: ArrayData = { x: all.x, xShape: all.xShape, y: all.y, n: all.n };
    return makeSplit({ ...base, train: emptyData(all.xShape, true), test, splitInfo: { role: "evaluate" } });
  }
  const seed = opts.seed ?? 0;
  const testSize = checkTestSize(opts.testSize ?? Math.min(Math.max(1, Math.round(0.2 * all.n)), all.n - 1), all.n, imagesPath);
  const perm = permutation(all.n, seed);
  const nTrain = all.n - testSize;
  return makeSplit({
    ...base,
    train: takeRows(all, perm.subarray(0, nTrain)),
    test: takeRows(all, perm.subarray(nTrain)),
    splitInfo: { seed, testSize },
  });
}
