/**
 * Memory: 10,000 steps of SGHMC (2 chains) and of BBB through the driver on a small network
 * (src/bench/memory.ts: mlp:50 on the toy regression set) keep a flat RSS and V8 heap.
 *
 * Readings are taken after forced collections (node --expose-gc). The first 2,000 steps are warm-up:
 * programs compile, the engine's allocator and V8's code caches fill; SGHMC's RSS climbs 1-5 MiB in its
 * second thousand steps, then stays flat (measured to 60,000 steps). Growth is measured from the
 * reading at step 2,000 to the one at 10,000.
 *
 * Bounds, from measurement (12 runs, 6 per method, load average ~5 on 2 cores): RSS growth over those
 * 8,000 steps was -1.6 to +1.8 MiB, heap growth -0.5 to +1.0 MiB. The bounds are 6 MiB of RSS and 2 MiB
 * of heap.
 *
 * What they catch. One small engine array retained per step costs ~2 KB of RSS (its JS object, ~0.85
 * KB of heap, plus its Wasm buffer): with the planted leak of memoryCurve's `retainPerCall` (151
 * floats, `node scripts/memory-curve.mjs --retain 151 bbb`), BBB, one step per call, grew by 16-18 MiB
 * of RSS and ~7 MiB of heap over the 8,000 steps, 3x both bounds. So the bounds catch any per-step
 * leak above ~790 B of RSS or ~260 B of heap. SGHMC runs 8 steps per jitted call, so the loop's host
 * code runs 1,000 times in the window: there the bounds catch per-call leaks above ~6.3 KB of RSS or
 * ~2.1 KB of heap (about 3 small arrays retained per call); one small array retained per call (302
 * floats: +2.1 MiB RSS, +1.2 MiB heap, measured) stays below them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryCurve, memoryTable, type MemoryMethod, type MemoryRun } from "../src/bench/memory.js";

const STEPS = 10_000;
const WARMUP = 2000;
/** Largest RSS growth (MiB) from step WARMUP to the end. */
const RSS_BOUND_MB = 6;
/** Largest V8 heap growth (MiB) from step WARMUP to the end. */
const HEAP_BOUND_MB = 2;

function growth(r: MemoryRun): { rss: number; heap: number } {
  const warm = r.points.find((p) => p.step === WARMUP);
  const end = r.points[r.points.length - 1];
  assert.ok(warm, `no reading at step ${WARMUP}: ${r.points.map((p) => p.step).join(", ")}`);
  assert.equal(end.step, STEPS);
  return { rss: end.rssMb - warm.rssMb, heap: end.heapMb - warm.heapMb };
}

for (const method of ["sghmc", "bbb"] as MemoryMethod[]) {
  test(`${method}: ${STEPS} steps keep RSS within ${RSS_BOUND_MB} MiB and the heap within ${HEAP_BOUND_MB} MiB of their level after ${WARMUP} steps`, async (t) => {
    const r = await memoryCurve(method, { steps: STEPS, every: 1000 });
    t.diagnostic(`${method}: ${r.seconds.toFixed(1)} s`);
    for (const line of memoryTable([r]).split("\n")) t.diagnostic(line);
    assert.equal(r.steps, STEPS);
    const g = growth(r);
    assert.ok(g.rss < RSS_BOUND_MB, `${method}: RSS grew by ${g.rss.toFixed(1)} MiB from step ${WARMUP} to ${STEPS} (bound ${RSS_BOUND_MB})\n${memoryTable([r])}`);
    assert.ok(g.heap < HEAP_BOUND_MB, `${method}: heap grew by ${g.heap.toFixed(1)} MiB from step ${WARMUP} to ${STEPS} (bound ${HEAP_BOUND_MB})\n${memoryTable([r])}`);
  });
}
