#!/usr/bin/env node
/**
 * The memory test's curves (test/memory.test.ts): RSS, V8 heap and the engine's memory every 1,000 steps of 10,000-step
 * SGHMC (2 chains) and BBB fits of mlp:50 on the toy regression set, each method in a fresh process,
 * printed as one markdown table. Run after `npm run build`:
 *
 *   node scripts/memory-curve.mjs [--steps N] [--every N] [--retain FLOATS] [sghmc|bbb ...]
 *
 * `--retain F` plants a leak (an engine array of F floats kept after every jitted call) to show what
 * the test's bounds catch. Needs the built library in dist/.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { steps: { type: "string", default: "10000" }, every: { type: "string", default: "1000" }, retain: { type: "string", default: "0" }, child: { type: "boolean", default: false } },
});
const o = { steps: Number(values.steps), every: Number(values.every), retainPerCall: Number(values.retain) };
const { memoryCurve, memoryTable } = await import(new URL("../dist/bench/memory.js", import.meta.url).href);

if (values.child) {
  // One method in this process; the run goes to stdout as JSON for the parent.
  process.stdout.write(JSON.stringify(await memoryCurve(positionals[0], o)) + "\n");
} else {
  const methods = positionals.length > 0 ? positionals : ["sghmc", "bbb"];
  const runs = methods.map((m) => {
    const args = ["--expose-gc", fileURLToPath(import.meta.url), "--child", "--steps", values.steps, "--every", values.every, "--retain", values.retain, m];
    const r = spawnSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    if (r.status !== 0) throw new Error(`memory run of ${m} failed (exit ${r.status})`);
    return JSON.parse(r.stdout.trim().split("\n").pop());
  });
  for (const r of runs) {
    const p = (s) => r.points.find((q) => q.step === s);
    const warm = p(2000) ?? r.points[1];
    const end = r.points[r.points.length - 1];
    console.log(`${r.method}: ${r.steps} steps in ${r.seconds.toFixed(1)} s; from step ${warm.step} to ${end.step}: RSS ${(end.rssMb - warm.rssMb).toFixed(1)} MiB, heap ${(end.heapMb - warm.heapMb).toFixed(1)} MiB, engine ${(end.externalMb - warm.externalMb).toFixed(3)} MiB`);
  }
  console.log();
  console.log(memoryTable(runs));
}
