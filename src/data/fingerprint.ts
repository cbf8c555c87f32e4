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
