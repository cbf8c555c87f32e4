/**
 * The safetensors format (https://github.com/huggingface/safetensors), readable from Python with
 * `safetensors.numpy.load_file` / `safe_open`:
 *
 * ```
 * [8 bytes]  N, little-endian u64
 * [N bytes]  UTF-8 JSON header, padded with spaces to a multiple of 8 bytes:
 *            {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
 * [rest]     byte buffer; offsets are relative to its start; tensors contiguous, no gaps
 * ```
 *
 * Tensor data is little-endian, C (row-major) order. Writers here lay tensors out sorted by name.
 * This module is the codec on bytes (browser-safe); io/safetensors-file.ts reads and writes files.
 */

/** Element types supported by bayesdl's reader and writer. */
export type SafetensorsDtype = "F32" | "F64" | "I32" | "U8" | "I64";

/** Typed array holding a tensor's elements (`I64` uses `BigInt64Array`). */
export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;

/** One tensor to write. `dtype` defaults to the one matching `data`'s array type. */
export interface TensorInput {
  dtype?: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** One decoded tensor (data copied out of the file, so it is aligned and owned). */
export interface Tensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** Result of {@link decodeSafetensors}. */
export interface DecodedSafetensors {
  /** Tensors by name, in file (offset) order. */
  tensors: Record<string, Tensor>;
  /** The `__metadata__` string map (empty if absent). */
  metadata: Record<string, string>;
}

/** Malformed safetensors input; the message names the file (or `<bytes>`) and the problem. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: invalid safetensors file: ${problem}`);
    this.name = "SafetensorsError";
  }
}

const DTYPES: Record<SafetensorsDtype, { size: number; make: (buf: ArrayBuffer) => TensorData }> = {
  F32: { size: 4, make: (b) => new Float32Array(b) },
  F64: { size: 8, make: (b) => new Float64Array(b) },
  I32: { size: 4, make: (b) => new Int32Array(b) },
  U8: { size: 1, make: (b) => new Uint8Array(b) },
  I64: { size: 8, make: (b) => new BigInt64Array(b) },
};

const KNOWN_BUT_UNSUPPORTED = new Set(["BOOL", "F16", "BF16", "I8", "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2"]);

/** Whether this host stores multi-byte numbers little-endian (otherwise data is byte-swapped). */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

function dtypeOfData(data: TensorData): SafetensorsDtype | undefined {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof Float64Array) return "F64";
  if (data instanceof Int32Array) return "I32";
  if (data instanceof Uint8Array) return "U8";
  if (data instanceof BigInt64Array) return "I64";
  return undefined;
}

/** Reverse the bytes of each `size`-byte element in place. */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let o = 0; o < bytes.length; o += size) {
    for (let a = o, b = o + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** At most `max` characters of `s` (error messages stay short whatever the header holds). */
function clip(s: string, max = 120): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/**
 * A header value as short JSON for an error message. Never throws: JSON.stringify overflows the
 * stack on values nested thousands of levels deep, which JSON.parse accepts.
 */
export function show(v: unknown): string {
  try {
    return clip(JSON.stringify(v) ?? String(v));
  } catch {
    return `${Array.isArray(v) ? "an array" : typeof v} nested too deeply to print`;
  }
}

/**
 * Serialise tensors (and optional string metadata) to safetensors bytes.
 *
 * Layout: `u64le(N) ‖ header(N bytes, space-padded, N % 8 = 0) ‖ data`, tensors sorted by name,
 * `data_offsets` contiguous from 0, elements little-endian.
 *
 * @param tensors tensors by name; `prod(shape)` must equal `data.length`; `dtype` (if given) must
 *   match `data`'s array type.
 * @param metadata optional `__metadata__` string→string map.
 */
export function encodeSafetensors(tensors: Record<string, TensorInput>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [key, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new TypeError(`encodeSafetensors: metadata["${key}"] must be a string, got ${typeof v}`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  const layout: { bytes: Uint8Array; size: number; begin: number }[] = [];
  for (const name of names) {
    if (name === "__metadata__") throw new Error(`encodeSafetensors: "__metadata__" is reserved and cannot name a tensor`);
    const t = tensors[name];
    const inferred = dtypeOfData(t.data);
    if (inferred === undefined) throw new TypeError(`encodeSafetensors: tensor "${name}": unsupported data array type`);
    const dtype = t.dtype ?? inferred;
    if (!isDtype(dtype)) throw new Error(`encodeSafetensors: tensor "${name}": unknown dtype "${String(dtype)}"`);
    if (dtype !== inferred) {
      throw new TypeError(`encodeSafetensors: tensor "${name}": dtype ${dtype} does not match its data (${t.data.constructor.name}, i.e. ${inferred})`);
    }
    if (!isShape(t.shape)) throw new Error(`encodeSafetensors: tensor "${name}": shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    if (numel(t.shape) !== t.data.length) {
      throw new Error(`encodeSafetensors: tensor "${name}": shape ${shapeStr(t.shape)} has ${numel(t.shape)} elements but data has ${t.data.length}`);
    }
    const size = DTYPES[dtype].size;
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] })}`);
    layout.push({ bytes, size, begin: offset });
    offset += bytes.length;
  }
  const headerRaw = new TextEncoder().encode(`{${parts.join(",")}}`);
  const n = Math.ceil(headerRaw.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(headerRaw, 8);
  out.fill(0x20, 8 + headerRaw.length, 8 + n);
  const base = 8 + n;
  for (const { bytes, size, begin } of layout) {
    out.set(bytes, base + begin);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes(out.subarray(base + begin, base + begin + bytes.length), size);
  }
  return out;
}

/**
 * Parse and validate safetensors bytes.
 *
 * Checks: the 8-byte length fits, the header is UTF-8 JSON object, every entry has a supported
 * dtype, an integer shape and `data_offsets` within the buffer with `end - begin =
 * prod(shape) * itemsize`, and the tensors tile the buffer contiguously from 0 with no gaps.
 *
 * @param bytes file contents.
 * @param file name used in error messages (default `<bytes>`).
 * @throws SafetensorsError naming `file` and what is wrong.
 */
export function decodeSafetensors(bytes: Uint8Array, file = "<bytes>"): DecodedSafetensors {
  function fail(problem: string): never {
    throw new SafetensorsError(file, problem);
  }
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) fail(`header length ${n64} is beyond the end of the file (${bytes.length - 8} bytes after the length field)`);
  const n = Number(n64);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) fail("header JSON is not an object");
  const h = header as Record<string, unknown>;
  const bufLen = bytes.length - 8 - n;
  const base = 8 + n;

  const metadata: Record<string, string> = {};
  if (Object.prototype.hasOwnProperty.call(h, "__metadata__")) {
    const m = h.__metadata__;
    if (m === null || typeof m !== "object" || Array.isArray(m)) fail(`"__metadata__" is not an object`);
    for (const [key, v] of Object.entries(m as object)) {
      if (typeof v !== "string") fail(`"__metadata__"[${show(key)}] is not a string`);
      define(metadata, key, v as string);
    }
  }

  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const name of Object.keys(h)) {
    if (name === "__metadata__") continue;
    const e = h[name] as Record<string, unknown> | null;
    if (e === null || typeof e !== "object" || Array.isArray(e)) fail(`tensor ${show(name)}: entry is not an object`);
    const dtype = e.dtype;
    if (!isDtype(dtype)) {
      const known = typeof dtype === "string" && KNOWN_BUT_UNSUPPORTED.has(dtype);
      fail(`tensor ${show(name)}: ${known ? "unsupported" : "unknown"} dtype ${show(dtype)} (supported: ${Object.keys(DTYPES).join(", ")})`);
    }
    const shape = e.shape;
    if (!isShape(shape)) fail(`tensor ${show(name)}: shape ${show(shape)} is not a list of non-negative integers`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      fail(`tensor ${show(name)}: data_offsets ${show(off)} is not a pair of non-negative integers`);
    }
    const [begin, end] = off as [number, number];
    if (end < begin) fail(`tensor ${show(name)}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > bufLen) fail(`tensor ${show(name)}: data_offsets [${begin}, ${end}] out of range (data buffer is ${bufLen} bytes)`);
    const size = DTYPES[dtype as SafetensorsDtype].size;
    const want = numel(shape as number[]) * size;
    if (end - begin !== want) {
      fail(`tensor ${show(name)}: shape ${clip(shapeStr(shape as number[]))} with dtype ${dtype} needs ${want} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) {
      fail(
        e.begin > pos
          ? `data_offsets not contiguous: gap of ${e.begin - pos} bytes before tensor ${show(e.name)} (starts at ${e.begin}, expected ${pos})`
          : `data_offsets not contiguous: tensor ${show(e.name)} [${e.begin}, ${e.end}] overlaps the previous tensor (expected to start at ${pos})`,
      );
    }
    pos = e.end;
  }
  if (pos !== bufLen) fail(`data_offsets not contiguous: tensors cover ${pos} bytes but the data buffer is ${bufLen} bytes`);

  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    const { size, make } = DTYPES[e.dtype];
    // Copy (not a view: Buffer#slice shares memory), so the typed array is aligned and owned.
    const copy = new Uint8Array(e.end - e.begin);
    copy.set(bytes.subarray(base + e.begin, base + e.end));
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes(copy, size);
    define(tensors, e.name, { dtype: e.dtype, shape: e.shape, data: make(copy.buffer) });
  }
  return { tensors, metadata };
}

/** Set an own enumerable property (safe for names like `__proto__`). */
function define<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
