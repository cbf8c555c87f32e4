/**
 * Crash-safe file writing: readers see either the old file or the complete new one, never a
 * partially written file.
 */
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

let counter = 0;

/**
 * Create a directory and any missing parents (like `mkdir -p`); no error if it already exists.
 *
 * Formula: `mkdir(path, { recursive: true })`.
 *
 * @param path directory to create.
 */
export async function mkdirp(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
}

/**
 * Write a file atomically: write to a temporary sibling `${path}.tmp-<pid>-<counter>` in the same
 * directory, fsync it, rename it over `path`, then fsync the directory (best effort). On failure
 * the temporary file is removed and the error rethrown.
 *
 * Formula: `write(tmp); fsync(tmp); rename(tmp, path); fsync(dir)`.
 *
 * @param path destination file; its directory must exist (see {@link mkdirp}).
 * @param data bytes, or a string written as UTF-8.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `${basename(path)}.tmp-${process.pid}-${counter++}`);
  let renamed = false;
  try {
    const fh = await open(tmp, "wx");
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
}

/** fsync a directory so that a rename in it is durable; ignored where unsupported (e.g. Windows). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    // Not supported on every platform / file system; the rename itself has already happened.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
