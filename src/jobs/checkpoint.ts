/**
 * Checkpoints of a `bayesdl fit` on disk, so a long run killed at any point continues where it was.
 *
 * A checkpoint lives in a directory (`<out>.checkpoint`, beside the posterior's). Each one is written
 * whole into a fresh subdirectory `step-<n>` (io/posterior.ts `writeDirectory`: temporary directory,
 * fsync, rename), then the file `latest` is replaced atomically to name it, then older subdirectories
 * are deleted: a kill at any moment leaves `latest` naming a complete checkpoint. Each holds
 * - `run.json`: the fit job as started (data, model, method and every option, seed, output), the data
 *   fingerprint, the loop's position (steps done, epoch, objective so far) and the collected traces;
 * - `state.safetensors`: the method state (`state.<path>`, every leaf in its own dtype; uint32 leaves,
 *   i.e. PRNG keys, stored bit for bit as I32), the loop's two keys, the current epoch's shuffles
 *   (`loop.perm.<copy>`) and, for samplers, the draws so far (`samples.<leaf>`); its metadata carries
 *   the SHA-256 of `run.json`.
 * The checkpoint is removed once the posterior is saved.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { HostArray, HostDtype } from "../core/engine.js";
import type { SnapshotLeaf } from "../core/snapshot.js";
import { writeFileAtomic } from "../io/atomic.js";
import { writeDirectory } from "../io/posterior.js";
import type { TensorInput } from "../io/safetensors.js";
import { readSafetensors, writeSafetensors } from "../io/safetensors-file.js";
import type { FitCheckpoint } from "../run/driver.js";
import type { Stray } from "../run/loop.js";
import { VERSION } from "../version.js";

/** Version of the checkpoint layout written (and the only one read). */
export const CHECKPOINT_FORMAT_VERSION = 1;

const RUN_FILE = "run.json";
const LATEST_FILE = "latest";
const STATE_FILE = "state.safetensors";
const DIGEST_KEY = "run_json_sha256";

/** The checkpoint directory of a fit that saves to `out`. */
export function checkpointDirOf(out: string): string {
  return `${resolve(out)}.checkpoint`;
}

/** A checkpoint as read back: the job it belongs to (as saved), the data fingerprint, and the fit's checkpoint. */
export interface LoadedCheckpoint<J> {
  readonly job: J;
  readonly fingerprint: string;
  readonly checkpoint: FitCheckpoint;
}

interface RunJson<J> {
  kind: "bayesdl-checkpoint";
  formatVersion: number;
  bayesdlVersion: string;
  job: J;
  fingerprint: string;
  step: number;
  epoch: number;
  losses: number[];
  /** The runaway check's deviations, restarts used per chain and strays (run/loop.ts LoopPosition); absent when it is off. */
  runawayHistory?: number[];
  runawayUsed?: number[];
  strays?: Stray[];
  state: { name: string; dtype: HostDtype; shape: number[] }[];
  keys: Record<"kEpochs" | "kSteps", { dtype: HostDtype; shape: number[] }>;
  perms: number;
  trajectory?: { collected: number; traces: Record<string, number[][]>; buffers: number };
  createdAt: string;
}

/** A host array as a safetensors tensor (uint32 bit-cast to I32; the dtype is kept in run.json). */
function tensorOf(h: HostArray): TensorInput {
  const data = h.data instanceof Uint32Array ? new Int32Array(h.data.buffer, h.data.byteOffset, h.data.length) : h.data;
  return { dtype: data instanceof Float64Array ? "F64" : data instanceof Int32Array ? "I32" : "F32", shape: [...h.shape], data };
}

/** Write `c` (a checkpoint of the fit `job` on data with `fingerprint`) into `dir`, then make it the latest. */
export async function saveCheckpoint<J>(dir: string, job: J, fingerprint: string, c: FitCheckpoint): Promise<void> {
  const tensors: Record<string, TensorInput> = {};
  const put = (name: string, t: TensorInput) => Object.defineProperty(tensors, name, { value: t, enumerable: true });
  for (const l of c.state) put(`state.${l.name}`, tensorOf(l));
  put("loop.kEpochs", tensorOf(c.loop.kEpochs));
  put("loop.kSteps", tensorOf(c.loop.kSteps));
  c.loop.perms.forEach((p, i) => put(`loop.perm.${i}`, { dtype: "I32", shape: [p.length], data: p }));
  c.trajectory?.buffers.forEach((b, i) => put(`samples.${i}`, { dtype: "F32", shape: [b.length], data: b }));
  const run: RunJson<J> = {
    kind: "bayesdl-checkpoint",
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    bayesdlVersion: VERSION,
    job,
    fingerprint,
    step: c.loop.done,
    epoch: c.loop.epoch,
    losses: [...c.loop.losses],
    ...(c.loop.runawayHistory ? { runawayHistory: [...c.loop.runawayHistory] } : {}),
    ...(c.loop.runawayUsed ? { runawayUsed: [...c.loop.runawayUsed] } : {}),
    ...(c.loop.strays ? { strays: [...c.loop.strays] } : {}),
    state: c.state.map((l) => ({ name: l.name, dtype: l.dtype, shape: [...l.shape] })),
    keys: { kEpochs: { dtype: c.loop.kEpochs.dtype, shape: [...c.loop.kEpochs.shape] }, kSteps: { dtype: c.loop.kSteps.dtype, shape: [...c.loop.kSteps.shape] } },
    perms: c.loop.perms.length,
    ...(c.trajectory ? { trajectory: { collected: c.trajectory.collected, traces: c.trajectory.traces, buffers: c.trajectory.buffers.length } } : {}),
    createdAt: new Date().toISOString(),
  };
  const text = JSON.stringify(run) + "\n";
  const digest = createHash("sha256").update(text).digest("hex");
  const name = `step-${String(c.loop.done).padStart(9, "0")}`;
  await writeDirectory(join(dir, name), async (tmp) => {
    await writeSafetensors(join(tmp, STATE_FILE), tensors, { [DIGEST_KEY]: digest });
    await writeFileAtomic(join(tmp, RUN_FILE), text);
  });
  await writeFileAtomic(join(dir, LATEST_FILE), name + "\n");
  for (const entry of await readdir(dir)) {
    if (entry !== name && entry !== LATEST_FILE && !entry.startsWith(`${LATEST_FILE}.tmp-`)) await rm(join(dir, entry), { recursive: true, force: true });
  }
}

/** Remove a checkpoint directory (after the run it belongs to has finished). */
export async function removeCheckpoint(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * The latest checkpoint under `path`: the checkpoint directory itself, or the `--out` of the
 * interrupted run (then `<path>.checkpoint`). Returns the directory holding run.json.
 * @throws when neither holds a checkpoint.
 */
export async function findCheckpoint(path: string): Promise<string> {
  for (const dir of [resolve(path), checkpointDirOf(path)]) {
    const latest = await readFile(join(dir, LATEST_FILE), "utf8").catch(() => undefined);
    if (latest === undefined) continue;
    const sub = join(dir, latest.trim());
    if (!/^step-\d+$/.test(latest.trim()) || !(await stat(join(sub, RUN_FILE)).catch(() => undefined))?.isFile()) {
      throw new Error(`${join(dir, LATEST_FILE)}: names ${JSON.stringify(latest.trim())}, which holds no ${RUN_FILE}`);
    }
    return sub;
  }
  throw new Error(`--resume ${path}: no checkpoint there (looked in ${resolve(path)} and ${checkpointDirOf(path)}); a run writes one with --checkpoint-every`);
}

/** Read a checkpoint written by {@link saveCheckpoint}, checking that its two files belong together. */
export async function loadCheckpoint<J>(dir: string): Promise<LoadedCheckpoint<J>> {
  const runFile = join(dir, RUN_FILE);
  const stateFile = join(dir, STATE_FILE);
  const text = await readFile(runFile, "utf8");
  const fail = (file: string, problem: string): never => {
    throw new Error(`${file}: ${problem}`);
  };
  let run: RunJson<J>;
  try {
    run = JSON.parse(text) as RunJson<J>;
  } catch (e) {
    return fail(runFile, `not valid JSON (${(e as Error).message})`);
  }
  if (run?.kind !== "bayesdl-checkpoint" || run.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    fail(runFile, `not a bayesdl checkpoint of format ${CHECKPOINT_FORMAT_VERSION}`);
  }
  const { tensors, metadata } = await readSafetensors(stateFile);
  const digest = createHash("sha256").update(text).digest("hex");
  if (metadata[DIGEST_KEY] !== digest) fail(stateFile, `written with another ${RUN_FILE} (the directory mixes two checkpoints)`);
  const get = (name: string) => {
    const t = Object.prototype.hasOwnProperty.call(tensors, name) ? tensors[name] : undefined;
    return t ?? fail(stateFile, `tensor "${name}" listed in ${RUN_FILE} is missing`);
  };
  const host = (name: string, dtype: HostDtype, shape: number[]): HostArray => {
    const t = get(name);
    const d = t.data;
    const data = dtype === "uint32" && d instanceof Int32Array ? new Uint32Array(d.buffer, d.byteOffset, d.length) : d;
    const ok = (dtype === "float32" && data instanceof Float32Array) || (dtype === "float64" && data instanceof Float64Array) || (dtype === "int32" && data instanceof Int32Array) || (dtype === "uint32" && data instanceof Uint32Array);
    if (!ok || data.length !== shape.reduce((a, b) => a * b, 1)) fail(stateFile, `tensor "${name}" is ${t.dtype} [${t.shape.join(", ")}], ${RUN_FILE} says ${dtype} [${shape.join(", ")}]`);
    return { dtype, shape, data: data as HostArray["data"] };
  };
  const state: SnapshotLeaf[] = run.state.map((l) => ({ name: l.name, ...host(`state.${l.name}`, l.dtype, l.shape) }));
  const perm = (i: number): Int32Array => {
    const d = get(`loop.perm.${i}`).data;
    return d instanceof Int32Array ? d : fail(stateFile, `tensor "loop.perm.${i}" is not I32`);
  };
  const buffer = (i: number): Float32Array => {
    const d = get(`samples.${i}`).data;
    return d instanceof Float32Array ? d : fail(stateFile, `tensor "samples.${i}" is not F32`);
  };
  const checkpoint: FitCheckpoint = {
    loop: {
      done: run.step,
      epoch: run.epoch,
      kEpochs: host("loop.kEpochs", run.keys.kEpochs.dtype, run.keys.kEpochs.shape),
      kSteps: host("loop.kSteps", run.keys.kSteps.dtype, run.keys.kSteps.shape),
      perms: Array.from({ length: run.perms }, (_, i) => perm(i)),
      losses: run.losses,
      ...(run.runawayHistory ? { runawayHistory: run.runawayHistory } : {}),
      ...(run.runawayUsed ? { runawayUsed: run.runawayUsed } : {}),
      ...(run.strays ? { strays: run.strays } : {}),
    },
    state,
    ...(run.trajectory
      ? { trajectory: { collected: run.trajectory.collected, traces: run.trajectory.traces, buffers: Array.from({ length: run.trajectory.buffers }, (_, i) => buffer(i)) } }
      : {}),
  };
  return { job: run.job, fingerprint: run.fingerprint, checkpoint };
}
