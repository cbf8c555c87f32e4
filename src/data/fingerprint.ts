/**
 * Fingerprints of data splits: a posterior records the one it was fitted on, and evaluation says
 * whether it sees the same data. Node-only (streamed through node:crypto, no copy of the data).
 */
import { createHash } from "node:crypto";
import type { ArrayData, DataSplit } from "./types.js";

/** Raw bytes of a typed array (a view, no copy). */
function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Hex SHA-256 over the raw bytes of train x, train y, test x, test y (in that order, platform byte
 * order, which is little-endian on every platform Node supports).
 */
export function fingerprint(train: ArrayData, test: ArrayData): string {
  const h = createHash("sha256");
  for (const a of [train.x, train.y, test.x, test.y]) h.update(bytesOf(a));
  return h.digest("hex");
}

/** The {@link fingerprint} of a split. */
export function splitFingerprint(split: DataSplit): string {
  return fingerprint(split.train, split.test);
}

/**
 * How many rows of `test` have exactly the inputs of some row of `train` (byte-equal x, SHA-1 per
 * row). Meaningful for sources whose inputs are not standardised per split (mnist, idx), where the
 * same example has the same bytes in every split.
 */
export function sharedRows(train: ArrayData, test: ArrayData): number {
  const d = train.xShape.reduce((a, b) => a * b, 1);
  if (test.xShape.reduce((a, b) => a * b, 1) !== d) return 0;
  const rowKey = (a: ArrayData, i: number): string => createHash("sha1").update(bytesOf(a.x.subarray(i * d, (i + 1) * d))).digest("base64");
  const seen = new Set<string>();
  for (let i = 0; i < train.n; i++) seen.add(rowKey(train, i));
  let shared = 0;
  for (let i = 0; i < test.n; i++) if (seen.has(rowKey(test, i))) shared++;
  return shared;
}
