/**
 * Reading data files on Node, with errors that name the file.
 */
import { readFileSync } from "node:fs";
import { DataFormatError } from "./types.js";

/** Read a whole file as bytes; a missing or unreadable file becomes a {@link DataFormatError} naming it. */
export function readBytes(file: string, expected = "a readable file"): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const got = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "a directory" : String((e as Error).message);
    throw new DataFormatError(file, "open", expected, got);
  }
}

/** Read a whole file as UTF-8 text (BOM stripped); errors as {@link readBytes}. */
export function readText(file: string, expected?: string): string {
  const text = new TextDecoder("utf-8").decode(readBytes(file, expected));
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
