/**
 * A posterior on disk: a directory holding
 * - `posterior.json`: {@link PosteriorMeta} (model spec, likelihood, prior, method, data, ...);
 * - `samples.safetensors`: one F32 tensor per parameter leaf, named by its pytree path
 *   (e.g. `layers.0.w`), with a leading sample axis S: shape `[S, ...leafShape]`. The metadata is
 *   also copied, as a JSON string, into the safetensors `__metadata__` under key `bayesdl`, so a
 *   Python user of `safetensors` sees it;
 * - every safetensors file also carries, under `posterior_json_sha256`, the SHA-256 of the exact
 *   bytes of `posterior.json` it was written with; loading checks it, so arrays from one run are never
 *   read with another run's metadata;
 * - for variational posteriors, `variational.safetensors`: the variational parameters themselves
 *   (F32, no sample axis, named as listed in `posterior.json` under `variational.tensors`, e.g.
 *   `mu.net.layers.0.w` and `rho.net.layers.0.w` for a mean-field Gaussian), from which
 *   `bayesdl evaluate --samples S` draws fresh samples. `samples.safetensors` then holds draws from q.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fsyncDir, mkdirp, writeFileAtomic } from "./atomic.js";
import { show, type TensorInput } from "./safetensors.js";
import { readSafetensors, writeSafetensors } from "./safetensors-file.js";
import type { NamedTensor } from "../core/method.js";
import type { GaussianNoise } from "../models/likelihood.js";
import type { PriorSelection } from "../models/prior.js";

/** Version of the on-disk posterior layout written (and the only one read) by this bayesdl. */
export const POSTERIOR_FORMAT_VERSION = 1;

/** File name of the metadata inside a posterior directory. */
export const POSTERIOR_META_FILE = "posterior.json";

/** File name of the samples inside a posterior directory. */
export const POSTERIOR_SAMPLES_FILE = "samples.safetensors";

/** File name of the variational parameters inside a variational posterior's directory. */
export const POSTERIOR_VARIATIONAL_FILE = "variational.safetensors";

/** How a variational posterior's parameters are laid out (`posterior.json` under `variational`). */
export interface VariationalMeta {
  /** Family name, e.g. `"meanfield"`, `"fullrank"`, `"realnvp"`. */
  family: string;
  /** What it takes to rebuild the family (rank, layers, hidden width, ...). */
  options: Record<string, unknown>;
  /** The tensors of `variational.safetensors`, in order. */
  tensors: { name: string; shape: number[] }[];
}

export type { NamedTensor };

/** Metadata of a saved posterior (`posterior.json`). */
export interface PosteriorMeta {
  formatVersion: number;
  bayesdlVersion: string;
  /** Model spec string, e.g. `"mlp:400,400"`. */
  model: string;
  inputShape: number[];
  outputDim: number;
  likelihood: { kind: "categorical" } | { kind: "gaussian"; noise: GaussianNoise; sigma?: number };
  /** `scaling` absent (posteriors saved before fan-in priors) means `none`. */
  prior: { kind: "gaussian"; scale: number; perLayer?: number[]; scaling?: "fan-in" | "none"; selected?: PriorSelection };
  method: string;
  methodOptions: Record<string, unknown>;
  seed: number;
  /**
   * The data it was fitted on: `source` with absolute paths (what `evaluate` and `predict` load by
   * default), `given` as the user wrote it, the split, and the standardisation of targets and (tabular
   * sources) inputs.
   */
  data: {
    source: string;
    given?: string;
    fingerprint: string;
    split?: Record<string, number | string>;
    targetScale?: { mean: number; std: number };
    inputScale?: { columns: string[]; mean: number[]; std: number[] };
  };
  metrics?: Record<string, number>;
  numSamples: number;
  /** Per-sample leaf shapes, in pytree flatten order. */
  leaves: { name: string; shape: number[] }[];
  createdAt: string;
  wallTimeSeconds?: number;
  /** Present for variational posteriors (see {@link POSTERIOR_VARIATIONAL_FILE}). */
  variational?: VariationalMeta;
  extra?: Record<string, unknown>;
}

/** Samples of one parameter leaf: `data` is `[S, ...shape]` row-major, length `S * prod(shape)`. */
export interface PosteriorLeafSamples {
  name: string;
  /** Per-sample shape (without the leading sample axis). */
  shape: number[];
  data: Float32Array;
}

/** A loaded posterior. */
export interface LoadedPosterior {
  meta: PosteriorMeta;
  /** Leaves in the order of `meta.leaves`. */
  samples: PosteriorLeafSamples[];
  /** Variational parameters in the order of `meta.variational.tensors`, when the posterior has them. */
  variational?: NamedTensor[];
}

/** A missing or inconsistent posterior file; the message names the file and the problem. */
export class PosteriorFormatError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = "PosteriorFormatError";
  }
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/**
 * Save a posterior to a directory, whole: every file is written into a fresh sibling directory
 * (`.<name>.tmp-<pid>-<time>`), fsynced, and the directory is renamed into place. A crash leaves
 * either no new directory or the complete one. Replacing an existing directory (`force`) moves it
 * aside first (`.<name>.old-<pid>-<time>`), renames the new one in, then deletes the old one: a
 * crash in between leaves the old posterior whole under that name, never a mix of two runs.
 *
 * Formula: tensor `name` = `data` reshaped to `[S, ...shape]`, `S = meta.numSamples`; safetensors
 * `__metadata__ = { bayesdl: JSON.stringify(meta), posterior_json_sha256: sha256(posterior.json) }`.
 *
 * @param dir posterior directory; must not exist or be empty unless `opts.force`.
 * @param meta metadata; `formatVersion` must be {@link POSTERIOR_FORMAT_VERSION} and `leaves` /
 *   `numSamples` must describe `samples` exactly (same names, order and shapes).
 * @param samples per-leaf samples, `data.length = numSamples * prod(shape)`.
 * @param variational the variational parameters, exactly as `meta.variational.tensors` lists them
 *   (required when `meta.variational` is set).
 * @param opts `force`: replace a non-empty `dir`.
 */
export async function savePosterior(dir: string, meta: PosteriorMeta, samples: PosteriorLeafSamples[], variational?: NamedTensor[], opts: { force?: boolean } = {}): Promise<void> {
  const fn = "savePosterior";
  if (meta.formatVersion !== POSTERIOR_FORMAT_VERSION) {
    throw new Error(`${fn}: meta.formatVersion is ${meta.formatVersion}, but this bayesdl writes format version ${POSTERIOR_FORMAT_VERSION}`);
  }
  const S = meta.numSamples;
  if (!Number.isSafeInteger(S) || S < 1) throw new Error(`${fn}: meta.numSamples must be a positive integer, got ${S}`);
  if (meta.leaves.length !== samples.length) {
    throw new Error(`${fn}: meta.leaves lists ${meta.leaves.length} leaves but ${samples.length} sample arrays were given`);
  }
  const tensors: Record<string, TensorInput> = {};
  const seen = new Set<string>();
  samples.forEach((leaf, i) => {
    const want = meta.leaves[i];
    if (want.name !== leaf.name || !sameShape(want.shape, leaf.shape)) {
      throw new Error(`${fn}: meta.leaves[${i}] is "${want.name}" ${shapeStr(want.shape)} but samples[${i}] is "${leaf.name}" ${shapeStr(leaf.shape)}`);
    }
    if (seen.has(leaf.name)) throw new Error(`${fn}: duplicate leaf name "${leaf.name}"`);
    seen.add(leaf.name);
    if (!isShape(leaf.shape)) throw new Error(`${fn}: leaf "${leaf.name}": shape ${JSON.stringify(leaf.shape)} is not a list of non-negative integers`);
    if (!(leaf.data instanceof Float32Array)) throw new TypeError(`${fn}: leaf "${leaf.name}": data must be a Float32Array`);
    const expected = S * numel(leaf.shape);
    if (leaf.data.length !== expected) {
      throw new Error(`${fn}: leaf "${leaf.name}": data has ${leaf.data.length} elements, expected numSamples * prod(shape) = ${S} * ${numel(leaf.shape)} = ${expected}`);
    }
    Object.defineProperty(tensors, leaf.name, {
      value: { dtype: "F32", shape: [S, ...leaf.shape], data: leaf.data } satisfies TensorInput,
      enumerable: true,
    });
  });
  const vtensors = variationalTensors(fn, meta, variational);
  const json = JSON.stringify(meta, null, 2) + "\n";
  const digest = sha256(json);
  await checkOutputDir(dir, opts.force ?? false);
  await writeDirectory(dir, async (tmp) => {
    if (vtensors) await writeSafetensors(join(tmp, POSTERIOR_VARIATIONAL_FILE), vtensors, { bayesdl: JSON.stringify(meta.variational), [DIGEST_KEY]: digest });
    await writeSafetensors(join(tmp, POSTERIOR_SAMPLES_FILE), tensors, { bayesdl: JSON.stringify(meta), [DIGEST_KEY]: digest });
    await writeFileAtomic(join(tmp, POSTERIOR_META_FILE), json);
  });
}

/** safetensors `__metadata__` key holding the SHA-256 of the posterior.json the file belongs to. */
export const DIGEST_KEY = "posterior_json_sha256";

function sha256(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Refuse to write into `dir` when it exists and is not empty, unless `force`; also refuse a path that
 * is a file. Called before a long fit, so nothing is computed for an output that cannot be written.
 */
export async function checkOutputDir(dir: string, force: boolean): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined) return;
  if (!st.isDirectory()) throw new Error(`--out ${dir}: exists and is not a directory`);
  if (force) return;
  const entries = await readdir(dir);
  if (entries.length > 0) {
    throw new Error(`--out ${dir}: the directory is not empty (${entries.length} entr${entries.length === 1 ? "y" : "ies"}, e.g. ${entries[0]}); choose another directory or pass --force to replace it`);
  }
}

/**
 * Write a directory whole: `fill` writes every file into a fresh sibling temporary directory, which is
 * then fsynced and renamed to `dir` (an existing `dir` is moved aside first and deleted after).
 */
export async function writeDirectory(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  await mkdirp(parent);
  const tag = `${process.pid}-${Date.now()}`;
  const tmp = join(parent, `.${basename(target)}.tmp-${tag}`);
  await mkdirp(tmp);
  let aside: string | undefined;
  try {
    await fill(tmp);
    await fsyncDir(tmp);
    if (await stat(target).catch(() => undefined)) {
      aside = join(parent, `.${basename(target)}.old-${tag}`);
      await rename(target, aside);
    }
    await rename(tmp, target);
    await fsyncDir(parent);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    // The new directory did not make it: put the old one back where it was.
    if (aside && !(await stat(target).catch(() => undefined))) await rename(aside, target).catch(() => undefined);
    throw e;
  }
  if (aside) await rm(aside, { recursive: true, force: true });
}

/**
 * Load a posterior saved by {@link savePosterior}, checking that `posterior.json` and
 * `samples.safetensors` agree.
 *
 * Formula: for each leaf `l` in `meta.leaves`: tensor `l.name` must be F32 with shape
 * `[meta.numSamples, ...l.shape]`; no other tensors may be present.
 *
 * @param dir posterior directory.
 * @throws PosteriorFormatError naming the file for: missing directory or file, unreadable JSON,
 *   format version mismatch, a leaf missing or with a different shape, sample count mismatch.
 */
export async function loadPosterior(dir: string): Promise<LoadedPosterior> {
  const metaFile = join(dir, POSTERIOR_META_FILE);
  const samplesFile = join(dir, POSTERIOR_SAMPLES_FILE);
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined) {
    // A save with --force killed between its two renames leaves the previous posterior whole, aside.
    const aside = (await readdir(dirname(resolve(dir))).catch(() => [] as string[])).filter((e) => e.startsWith(`.${basename(resolve(dir))}.old-`));
    const hint = aside.length > 0 ? ` (a save that replaced it was interrupted; the previous posterior is whole in ${join(dirname(resolve(dir)), aside[0])})` : "";
    throw new PosteriorFormatError(dir, `posterior directory does not exist${hint}`);
  }
  if (!st.isDirectory()) throw new PosteriorFormatError(dir, "is not a directory (a posterior is a directory with posterior.json and samples.safetensors)");

  let text: string;
  try {
    text = await readFile(metaFile, "utf8");
  } catch (e) {
    throw new PosteriorFormatError(metaFile, missingOrUnreadable(e));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new PosteriorFormatError(metaFile, `not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new PosteriorFormatError(metaFile, "not a JSON object");
  const meta = parsed as PosteriorMeta;
  if (meta.formatVersion !== POSTERIOR_FORMAT_VERSION) {
    throw new PosteriorFormatError(
      metaFile,
      `format version mismatch: found ${show(meta.formatVersion)}, this bayesdl reads ${POSTERIOR_FORMAT_VERSION}`,
    );
  }
  const S = meta.numSamples;
  if (!Number.isSafeInteger(S) || S < 1) throw new PosteriorFormatError(metaFile, `numSamples must be a positive integer, found ${show(S)}`);
  if (!Array.isArray(meta.leaves)) throw new PosteriorFormatError(metaFile, `"leaves" must be an array of {name, shape}`);
  const leafNames = new Set<string>();
  meta.leaves.forEach((l, i) => {
    if (l === null || typeof l !== "object" || typeof l.name !== "string" || !isShape(l.shape)) {
      throw new PosteriorFormatError(metaFile, `leaves[${i}] must be {name: string, shape: non-negative integers}, found ${show(l)}`);
    }
    if (leafNames.has(l.name)) throw new PosteriorFormatError(metaFile, `leaves[${i}]: leaf ${show(l.name)} is listed twice`);
    leafNames.add(l.name);
  });

  const st2 = await stat(samplesFile).catch(() => undefined);
  if (st2 === undefined) throw new PosteriorFormatError(samplesFile, "file does not exist");
  const { tensors, metadata } = await readSafetensors(samplesFile);
  const digest = sha256(text);
  checkDigest(samplesFile, metadata, digest, () => JSON.stringify(meta));

  const samples: PosteriorLeafSamples[] = [];
  const listed = new Set<string>();
  for (const leaf of meta.leaves) {
    listed.add(leaf.name);
    const t = Object.prototype.hasOwnProperty.call(tensors, leaf.name) ? tensors[leaf.name] : undefined;
    if (t === undefined) {
      throw new PosteriorFormatError(samplesFile, `leaf ${show(leaf.name)} listed in ${POSTERIOR_META_FILE} is missing from the tensors`);
    }
    if (t.dtype !== "F32") throw new PosteriorFormatError(samplesFile, `leaf ${show(leaf.name)}: expected dtype F32, got ${t.dtype}`);
    if (t.shape.length === 0) {
      throw new PosteriorFormatError(samplesFile, `leaf ${show(leaf.name)}: tensor is a scalar, expected a leading sample axis [${S}, ...${shapeStr(leaf.shape)}]`);
    }
    if (t.shape[0] !== S) {
      throw new PosteriorFormatError(
        samplesFile,
        `sample count mismatch: ${POSTERIOR_META_FILE} says numSamples = ${S}, but leaf ${show(leaf.name)} has ${t.shape[0]} samples (shape ${shapeStr(t.shape)})`,
      );
    }
    const per = t.shape.slice(1);
    if (!sameShape(per, leaf.shape)) {
      throw new PosteriorFormatError(samplesFile, `leaf ${show(leaf.name)}: expected per-sample shape ${shapeStr(leaf.shape)}, got ${shapeStr(per)}`);
    }
    samples.push({ name: leaf.name, shape: per, data: t.data as Float32Array });
  }
  for (const name of Object.keys(tensors)) {
    if (!listed.has(name)) throw new PosteriorFormatError(samplesFile, `tensor ${show(name)} is not listed in ${POSTERIOR_META_FILE} leaves`);
  }
  if (meta.variational === undefined) return { meta, samples };
  return { meta, samples, variational: await loadVariational(dir, metaFile, meta.variational, digest) };
}

/**
 * Check that an array file was written with this posterior.json: by its digest, or, in files written
 * before the digest existed, by the metadata copy under `bayesdl` (`copy`, the JSON it should equal).
 */
function checkDigest(file: string, metadata: Record<string, string>, digest: string, copy: () => string): void {
  const got = metadata[DIGEST_KEY];
  if (got === undefined) {
    let same: boolean;
    try {
      same = metadata.bayesdl === undefined || metadata.bayesdl === copy();
    } catch {
      same = false; // nested too deeply to serialise: not what bayesdl wrote
    }
    if (!same) {
      throw new PosteriorFormatError(file, `its metadata copy differs from the ${POSTERIOR_META_FILE} beside it: the directory mixes files of two runs; fit again`);
    }
    return;
  }
  if (got !== digest) {
    throw new PosteriorFormatError(
      file,
      `written with another ${POSTERIOR_META_FILE} (its ${DIGEST_KEY} is ${got.slice(0, 12)}..., the ${POSTERIOR_META_FILE} beside it hashes to ${digest.slice(0, 12)}...): the directory mixes files of two runs; fit again`,
    );
  }
}

function variationalTensors(fn: string, meta: PosteriorMeta, variational: NamedTensor[] | undefined): Record<string, TensorInput> | undefined {
  if (meta.variational === undefined) {
    if (variational !== undefined) throw new Error(`${fn}: variational tensors given but meta.variational is not set`);
    return undefined;
  }
  const listed = meta.variational.tensors;
  if (variational === undefined || variational.length !== listed.length) {
    throw new Error(`${fn}: meta.variational lists ${listed.length} tensors but ${variational?.length ?? 0} were given`);
  }
  const out: Record<string, TensorInput> = {};
  variational.forEach((t, i) => {
    if (t.name !== listed[i].name || !sameShape(t.shape, listed[i].shape)) {
      throw new Error(`${fn}: meta.variational.tensors[${i}] is "${listed[i].name}" ${shapeStr(listed[i].shape)} but the tensor given is "${t.name}" ${shapeStr(t.shape)}`);
    }
    if (t.data.length !== numel(t.shape)) throw new Error(`${fn}: variational tensor "${t.name}" has ${t.data.length} elements, expected ${numel(t.shape)}`);
    if (Object.prototype.hasOwnProperty.call(out, t.name)) throw new Error(`${fn}: duplicate variational tensor "${t.name}"`);
    Object.defineProperty(out, t.name, { value: { dtype: "F32", shape: [...t.shape], data: t.data } satisfies TensorInput, enumerable: true });
  });
  return out;
}

async function loadVariational(dir: string, metaFile: string, v: VariationalMeta, digest: string): Promise<NamedTensor[]> {
  if (v === null || typeof v !== "object" || typeof v.family !== "string" || !Array.isArray(v.tensors)) {
    throw new PosteriorFormatError(metaFile, `"variational" must be {family: string, options: object, tensors: [{name, shape}]}`);
  }
  const file = join(dir, POSTERIOR_VARIATIONAL_FILE);
  if ((await stat(file).catch(() => undefined)) === undefined) throw new PosteriorFormatError(file, "file does not exist (posterior.json describes a variational posterior)");
  const { tensors, metadata } = await readSafetensors(file);
  checkDigest(file, metadata, digest, () => JSON.stringify(v));
  const seen = new Set<string>();
  const out = v.tensors.map((want, i) => {
    if (want === null || typeof want !== "object" || typeof want.name !== "string" || !isShape(want.shape)) {
      throw new PosteriorFormatError(metaFile, `variational.tensors[${i}] must be {name: string, shape: non-negative integers}, found ${show(want)}`);
    }
    if (seen.has(want.name)) throw new PosteriorFormatError(metaFile, `variational.tensors[${i}]: tensor ${show(want.name)} is listed twice`);
    seen.add(want.name);
    const t = Object.prototype.hasOwnProperty.call(tensors, want.name) ? tensors[want.name] : undefined;
    if (t === undefined) throw new PosteriorFormatError(file, `variational tensor ${show(want.name)} listed in ${POSTERIOR_META_FILE} is missing`);
    if (t.dtype !== "F32") throw new PosteriorFormatError(file, `variational tensor ${show(want.name)}: expected dtype F32, got ${t.dtype}`);
    if (!sameShape(t.shape, want.shape)) throw new PosteriorFormatError(file, `variational tensor ${show(want.name)}: expected shape ${shapeStr(want.shape)}, got ${shapeStr(t.shape)}`);
    return { name: want.name, shape: [...t.shape], data: t.data as Float32Array };
  });
  const listed = new Set(v.tensors.map((t) => t.name));
  for (const name of Object.keys(tensors)) {
    if (!listed.has(name)) throw new PosteriorFormatError(file, `tensor ${show(name)} is not listed in ${POSTERIOR_META_FILE} under variational.tensors`);
  }
  return out;
}

function missingOrUnreadable(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" ? "file does not exist" : `cannot read (${(e as Error).message})`;
}
