#!/usr/bin/env node
/**
 * `npm run bench`: canonical step workloads (../shared/peers/WORKLOADS.md), one JSON line each
 * (`{"workload", "median_ms", "min_ms", "steps"}`), then the PyTorch peer run in the same session and
 * a table of ratios (bayesdl / peer; below 1 means bayesdl is faster).
 *
 * Flags: `--only a,b` restricts the workloads; `--no-peer` skips the peer; `--steps N` overrides the
 * counted steps. A step is timed from the call until its objective is on the host, which is what the
 * training loop waits for too.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compile, fromHost, key, random, scalar, split, type Key } from "../core/engine.js";
import { create as mapCreate, type MapState } from "../baselines/map.js";
import { categorical } from "../models/likelihood.js";
import { logDensity, makeModel, type Batch } from "../models/model.js";
import { networkFromSpec } from "../models/spec.js";

/** One workload: builds its jitted step and returns a closure that runs one step to completion. */
interface Workload {
  readonly name: string;
  /** The peer workload it is compared with, and how the two steps differ. */
  readonly peer: string;
  readonly note: string;
  readonly warmup: number;
  readonly steps: number;
  setup(): Promise<() => Promise<void>>;
}

function mapWorkload(name: string, spec: string, inputShape: number[], batch: number, peer: string, warmup: number, steps: number): Workload {
  return {
    name,
    peer,
    note: "MAP step (grad of -logDensity/N + Adam) vs the peer's SGLD step (grad + Gaussian noise)",
    warmup,
    steps,
    async setup() {
      const n = 60000;
      const model = makeModel(networkFromSpec(spec, inputShape, 10), categorical(), { kind: "gaussian", scale: 1 });
      const method = mapCreate(logDensity(model, { dataSize: n }), { dataSize: n, learningRate: 1e-3 });
      const [k0, k1, k2, k3] = split(key(0), 4);
      let state: MapState = method.init(k0, model.init(k1));
      const x = random.normal(k2, [batch, ...inputShape]);
      const y = fromHost(Int32Array.from({ length: batch }, (_, i) => i % 10), [batch]);
      const b: Batch = { x, y };
      const step = compile((kk: Key, s: MapState, bb: Batch) => method.step(kk, s, bb), { consume: [0, 1] });
      let k = k3;
      return async () => {
        const [ks, kn] = split(k, 2);
        k = kn;
        const [next, info] = step(ks, state, b);
        state = next;
        await scalar(info.loss);
      };
    },
  };
}

const WORKLOADS: Workload[] = [
  mapWorkload("map-mlp-mnist", "mlp:400,400", [784], 128, "sgld-mlp-mnist", 10, 200),
  mapWorkload("map-cnn-mnist", "cnn:32,64", [1, 28, 28], 64, "sgld-cnn-mnist", 3, 40),
];

interface Line {
  workload: string;
  median_ms: number;
  min_ms: number;
  steps: number;
  threads?: number;
}

async function measure(w: Workload, steps: number): Promise<Line> {
  const run = await w.setup();
  for (let i = 0; i < w.warmup; i++) await run();
  const ts: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await run();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  const median = ts.length % 2 ? ts[ts.length >> 1] : (ts[ts.length / 2 - 1] + ts[ts.length / 2]) / 2;
  return { workload: w.name, median_ms: round(median), min_ms: round(ts[0]), steps };
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;

/** Run the PyTorch peer (1 thread) for the given workloads; `undefined` when it cannot run here. */
function runPeer(names: string[]): { lines: Line[]; error?: string } {
  const here = dirname(fileURLToPath(import.meta.url));
  const script = resolve(here, "../../../shared/peers/torch_peer.py");
  if (!existsSync(script)) return { lines: [], error: `peer script not found at ${script}` };
  const py = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const r = spawnSync(py, [script, "--threads", "1", "--only", names.join(",")], { encoding: "utf8", cwd: dirname(script) });
  if (r.status !== 0) {
    return { lines: [], error: `peer failed (${py} ${script}): ${(r.stderr || r.error?.message || "").trim().split("\n").slice(-1)[0]}` };
  }
  return { lines: r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const onlyArg = args.indexOf("--only");
  const only = onlyArg >= 0 ? new Set(args[onlyArg + 1].split(",")) : undefined;
  const stepsArg = args.indexOf("--steps");
  const stepsOverride = stepsArg >= 0 ? Number(args[stepsArg + 1]) : undefined;
  const chosen = WORKLOADS.filter((w) => !only || only.has(w.name));
  if (only) {
    const unknown = [...only].filter((n) => !WORKLOADS.some((w) => w.name === n));
    if (unknown.length) throw new Error(`--only: unknown workload(s) ${unknown.join(", ")}; available: ${WORKLOADS.map((w) => w.name).join(", ")}`);
  }
  const ours: Line[] = [];
  for (const w of chosen) {
    const line = await measure(w, stepsOverride ?? w.steps);
    ours.push(line);
    console.log(JSON.stringify(line));
  }
  if (args.includes("--no-peer")) return;
  const peer = runPeer([...new Set(chosen.map((w) => w.peer))]);
  for (const l of peer.lines) console.log(JSON.stringify({ ...l, peer: "pytorch" }));
  if (peer.error) {
    console.log(`# peer not measured: ${peer.error}`);
    return;
  }
  console.log("\n| bayesdl workload | median ms | peer workload (PyTorch, 1 thread) | median ms | ratio |\n|---|---|---|---|---|");
  for (const w of chosen) {
    const a = ours.find((l) => l.workload === w.name)!;
    const b = peer.lines.find((l) => l.workload === w.peer);
    console.log(`| ${w.name} | ${a.median_ms.toFixed(2)} | ${w.peer} | ${b ? b.median_ms.toFixed(2) : "n/a"} | ${b ? (a.median_ms / b.median_ms).toFixed(2) : "n/a"} |`);
  }
  for (const w of chosen) console.log(`# ${w.name}: ${w.note}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
