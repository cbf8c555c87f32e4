/**
 * safetensors files on Node: the codec of io/safetensors.ts with atomic writes.
 */
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.js";
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type DecodedSafetensors, type TensorInput } from "./safetensors.js";

/**
 * Write tensors to a safetensors file atomically (temporary file + fsync + rename).
 *
 * Formula: `writeFileAtomic(path, encodeSafetensors(tensors, metadata))`.
 *
 * @param path destination file (its directory must exist).
 * @param tensors tensors by name (see {@link encodeSafetensors}).
 * @param metadata optional `__metadata__` string→string map.
 */
export async function writeSafetensors(path: string, tensors: Record<string, TensorInput>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * Read and validate a safetensors file.
 *
 * Formula: `decodeSafetensors(readFile(path), path)`.
 *
 * @param path file to read.
 * @throws SafetensorsError naming `path` if the file is missing, unreadable (a directory, no
 *   permission) or its contents are malformed.
 */
export async function readSafetensors(path: string): Promise<DecodedSafetensors> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SafetensorsError(path, code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : `cannot read it (${(e as Error).message})`);
  }
  return decodeSafetensors(bytes, path);
}
