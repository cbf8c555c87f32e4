/**
 * safetensors files on Node: the codec of io/safetensors.ts with atomic writes.
 */
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.js";
import { decodeSafetensors, encodeSafetensors, type DecodedSafetensors, type TensorInput } from "./safetensors.js";

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
 * @throws SafetensorsError naming `path` if the contents are malformed.
 */
export async function readSafetensors(path: string): Promise<DecodedSafetensors> {
  return decodeSafetensors(await readFile(path), path);
}
