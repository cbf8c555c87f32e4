/**
 * Saved GP posteriors: the same directory layout as every posterior (posterior.json + safetensors,
 * written whole through `writeDirectory`), with `family: "gp"` in the metadata and the arrays in
 * `gp.safetensors`:
 *
 * - `gp-exact`: the training inputs and targets (float64) and alpha = K_y^-1 y; loading refactors K_y
 *   (n^3 / 3 flops) instead of storing its n x n factor.
 * - `gp-pathwise`: the training inputs, the representer weights [S + 1, n] (mean first) and the random
 *   features of the S prior functions, which predict at any input without a solve.
 *
 * Everything is in the standardised units of the training split; posterior.json records the input and
 * target standardisation so new rows map the same way. Python: `safetensors.numpy.load_file`.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { checkOutputDir, POSTERIOR_FORMAT_VERSION, POSTERIOR_META_FILE, PosteriorFormatError, writeDirectory } from "./posterior.js";
import { readSafetensors, writeSafetensors } from "./safetensors-file.js";
import { writeFileAtomic } from "./atomic.js";
import type { GpHypers } from "../gp/kernels.js";
import type { InputScale, Standardisation } from "../data/types.js";

/** The arrays file of a GP posterior. */
export const GP_TENSORS_FILE = "gp.safetensors";

/** posterior.json of a GP posterior. */
export interface GpPosteriorMeta {
  readonly format: number;
  readonly family: "gp";
  readonly kind: "gp-exact" | "gp-pathwise";
  readonly solver: string;
  readonly hypers: GpHypers;
  readonly data: { readonly source: string; readonly split?: number; readonly seed: number; readonly target?: string; readonly testSize?: number };
  readonly seed: number;
  readonly targetScale: Standardisation;
  readonly inputScale?: InputScale;
  readonly options: Readonly<Record<string, unknown>>;
  readonly report: Readonly<Record<string, unknown>>;
  readonly createdAt: string;
}

/** Host tensors by name. */
export type GpTensors = Record<string, { data: Float32Array | Float64Array; shape: number[] }>;

/** Writes the directory whole (refusing a non-empty one unless `force`). */
export async function saveGpPosterior(dir: string, meta: GpPosteriorMeta, tensors: GpTensors, force = false): Promise<void> {
  await checkOutputDir(dir, force);
  await writeDirectory(dir, async (tmp) => {
    const enc = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { dtype: t.data instanceof Float64Array ? ("F64" as const) : ("F32" as const), shape: t.shape, data: t.data }]));
    await writeSafetensors(join(tmp, GP_TENSORS_FILE), enc);
    await writeFileAtomic(join(tmp, POSTERIOR_META_FILE), JSON.stringify(meta, null, 2) + "\n");
  });
}

/** Whether `dir` holds a GP posterior (its posterior.json says `family: "gp"`). */
export async function isGpPosterior(dir: string): Promise<boolean> {
  try {
    const meta = JSON.parse(await readFile(join(dir, POSTERIOR_META_FILE), "utf8")) as { family?: unknown };
    return meta.family === "gp";
  } catch {
    return false;
  }
}

const REQUIRED: Record<GpPosteriorMeta["kind"], string[]> = {
  "gp-exact": ["x_train", "y_train", "alpha"],
  "gp-pathwise": ["x_train", "weights", "feature_freqs", "feature_phases", "feature_weights"],
};

/** Loads and checks a GP posterior directory; errors name the file and what was expected. */
export async function loadGpPosterior(dir: string): Promise<{ meta: GpPosteriorMeta; tensors: GpTensors }> {
  const metaFile = join(dir, POSTERIOR_META_FILE);
  let meta: GpPosteriorMeta;
  try {
    meta = JSON.parse(await readFile(metaFile, "utf8")) as GpPosteriorMeta;
  } catch (e) {
    throw new PosteriorFormatError(metaFile, `expected readable JSON (${(e as Error).message})`);
  }
  if (meta.family !== "gp") throw new PosteriorFormatError(metaFile, `expected family "gp", got ${JSON.stringify(meta.family)}`);
  if (meta.format !== POSTERIOR_FORMAT_VERSION) throw new PosteriorFormatError(metaFile, `expected format ${POSTERIOR_FORMAT_VERSION}, got ${JSON.stringify(meta.format)}`);
  if (!(meta.kind in REQUIRED)) throw new PosteriorFormatError(metaFile, `expected kind gp-exact or gp-pathwise, got ${JSON.stringify(meta.kind)}`);
  const h = meta.hypers;
  if (!h || !Array.isArray(h.lengthscales) || ![h.signal, h.noise, ...h.lengthscales].every((v) => typeof v === "number" && v > 0 && Number.isFinite(v))) {
    throw new PosteriorFormatError(metaFile, "expected hypers with positive finite lengthscales, signal and noise");
  }
  const file = join(dir, GP_TENSORS_FILE);
  const st = await readSafetensors(file);
  const tensors: GpTensors = {};
  for (const name of REQUIRED[meta.kind]) {
    const t = st.tensors[name];
    if (!t) throw new PosteriorFormatError(file, `expected a tensor named ${name} (a ${meta.kind} posterior)`);
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) throw new PosteriorFormatError(file, `expected ${name} to be F32 or F64, got ${t.dtype}`);
    tensors[name] = { data: t.data, shape: [...t.shape] };
  }
  const d = h.lengthscales.length;
  const x = tensors.x_train;
  if (x.shape.length !== 2 || x.shape[1] !== d) throw new PosteriorFormatError(file, `expected x_train of shape [n, ${d}] (one column per lengthscale), got [${x.shape.join(", ")}]`);
  const n = x.shape[0];
  const want: Record<string, (s: number[]) => boolean> = {
    y_train: (s) => s.length === 1 && s[0] === n,
    alpha: (s) => s.length === 1 && s[0] === n,
    weights: (s) => s.length === 2 && s[1] === n && s[0] >= 1,
    feature_freqs: (s) => s.length === 2 && s[0] === d,
    feature_phases: (s) => s.length === 1 && s[0] === tensors.feature_freqs?.shape[1],
    feature_weights: (s) => s.length === 2 && s[0] === (tensors.weights?.shape[0] ?? 1) - 1 && s[1] === tensors.feature_freqs?.shape[1],
  };
  for (const [name, t] of Object.entries(tensors)) {
    if (want[name] && !want[name](t.shape)) throw new PosteriorFormatError(file, `${name} has shape [${t.shape.join(", ")}], which does not match x_train [${n}, ${d}] and the other tensors`);
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) throw new PosteriorFormatError(file, `${name} entry ${i} is ${t.data[i]} (expected finite values)`);
  }
  return { meta, tensors };
}
