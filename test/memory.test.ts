/**
 * Memory: 10,000 steps of SGHMC (2 chains) and of BBB through the driver on a small network
 * (src/bench/memory.ts: mlp:50 on the toy regression set) keep the engine's memory, the V8 heap and
 * the RSS flat.
 *
 * Readings are taken after forced collections (node --expose-gc). The first 2,000 steps are warm-up:
 * programs compile, the engine's allocator and V8's code caches fill. Growth is measured from the
 * reading at step 2,000 to the one at 10,000.
 *
 * Three readings, from exact to coarse. Measured without a leak: 30 runs (15 per method, on 2 cores
 * with another job on the second), `node scripts/memory-curve.mjs` in a loop.
 * - The engine's memory (V8's `external`, which holds its WebAssembly memory): the allocator reuses
 *   freed blocks, so without a leak it does not move after warm-up (0.000 MiB in all 30 runs, and to
 *   30,000 steps). Any engine array retained per step or per call grows it: the planted leak of
 *   memoryCurve's `retainPerCall` (151 floats, `node scripts/memory-curve.mjs --retain 151 bbb`) grew
 *   it by 7.8 MiB in BBB's 8,000 steps and by 0.9 MiB in SGHMC's (1,000 calls of 8 steps). Bound:
 *   0.25 MiB (four WebAssembly pages).
 * - The V8 heap: -0.3 to +1.1 MiB in the 30 runs; the planted leak adds ~0.85 KB per retained array
 *   (~7 MiB for BBB). Bound: 2 MiB.
 * - RSS, for a leak outside both (native memory, compiled code): the kernel's page accounting makes it
 *   drift with heap and engine memory flat: -0.2 to +7.8 MiB in the 30 runs, +8.3 MiB for SGHMC once
 *   on the CI machine, and it keeps creeping by a few MiB to 80,000 steps without a per-step slope.
 *   Bound: 16 MiB, a gross leak only (2 KB per step).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryCurve, memoryTable, type MemoryMethod, type MemoryRun } from "../src/bench/memory.js";

const STEPS = 10_000;
const WARMUP = 2000;
/** Largest growth (MiB) of the engine's memory (V8 `external`) from step WARMUP to the end. */
const ENGINE_BOUND_MB = 0.25;
/** Largest RSS growth (MiB) from step WARMUP to the end. */
const RSS_BOUND_MB = 16;
/** Largest V8 heap growth (MiB) from step WARMUP to the end. */
const HEAP_BOUND_MB = 2;

function growth(r: MemoryRun): { engine: number; rss: number; heap: number } {
  const warm = r.points.find((p) => p.step === WARMUP);
  const end = r.points[r.points.length - 1];
  assert.ok(warm, `no reading at step ${WARMUP}: ${r.points.map((p) => p.step).join(", ")}`);
  assert.equal(end.step, STEPS);
  return { engine: end.externalMb - warm.externalMb, rss: end.rssMb - warm.rssMb, heap: end.heapMb - warm.heapMb };
}

for (const method of ["sghmc", "bbb"] as MemoryMethod[]) {
  test(`${method}: ${STEPS} steps keep the engine's memory within ${ENGINE_BOUND_MB} MiB, the heap within ${HEAP_BOUND_MB} MiB and RSS within ${RSS_BOUND_MB} MiB of their level after ${WARMUP} steps`, async (t) => {
    const r = await memoryCurve(method, { steps: STEPS, every: 1000 });
    t.diagnostic(`${method}: ${r.seconds.toFixed(1)} s`);
    for (const line of memoryTable([r]).split("\n")) t.diagnostic(line);
    assert.equal(r.steps, STEPS);
    const g = growth(r);
    assert.ok(g.engine < ENGINE_BOUND_MB, `${method}: the engine's memory grew by ${g.engine.toFixed(3)} MiB from step ${WARMUP} to ${STEPS} (bound ${ENGINE_BOUND_MB})\n${memoryTable([r])}`);
    assert.ok(g.rss < RSS_BOUND_MB, `${method}: RSS grew by ${g.rss.toFixed(1)} MiB from step ${WARMUP} to ${STEPS} (bound ${RSS_BOUND_MB})\n${memoryTable([r])}`);
    assert.ok(g.heap < HEAP_BOUND_MB, `${method}: heap grew by ${g.heap.toFixed(1)} MiB from step ${WARMUP} to ${STEPS} (bound ${HEAP_BOUND_MB})\n${memoryTable([r])}`);
  });
}
