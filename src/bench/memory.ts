/**
 * Memory of long runs: a method is fitted through the driver ({@link fit}) for many steps on a small
 * network, and the process's resident set (RSS), V8 heap and the engine's WebAssembly memory (V8's
 * `external`) are sampled every `every` steps, so a leak of anything retained per step or per jitted
 * call shows as a rising curve. Used by
 * test/memory.test.ts (the bound) and scripts/memory-curve.mjs (the curves).
 *
 * The workload: `mlp:50` (151 parameters) on the toy 1-D regression set (160 points, batches of 32,
 * 5 steps per epoch), Gaussian likelihood of scale 0.3, N(0, 1) prior.
 * - sghmc: 2 chains, no burn-in, a sample every 1,000 steps (10 per chain over 10,000 steps), the
 *   held-out log-likelihood traced on the 241 test points at every sample; small nets run 8 steps per
 *   jitted call, so the loop's host code runs once per 8 steps.
 * - bbb: `steps / 5` epochs, one step per call; 2 draws from q at the end.
 *
 * Measuring: V8's `gc()` (node --expose-gc) is called 4 times before each reading and the smallest RSS
 * after them is kept. One `gc()` is not enough: the RSS read right after it is sometimes 40 MB above the
 * settled value (the collector's own transient memory), which would drown the signal.
 */
import { fromHost, key, type JArray } from "../core/engine.js";
import type { OptionValue } from "../core/options.js";
import { free } from "../core/tree.js";
import { toyRegressionGap } from "../data/toy.js";
import { methodSpec } from "../methods.js";
import { gaussian } from "../models/likelihood.js";
import { makeModel } from "../models/model.js";
import { networkFromSpec } from "../models/spec.js";
import { fit } from "../run/driver.js";

/** The methods the memory workload runs. */
export type MemoryMethod = "sghmc" | "bbb";

/** One reading: steps done, RSS, V8 heap in use and memory outside the heap (MiB), after forced collections. */
export interface MemoryPoint {
  readonly step: number;
  readonly rssMb: number;
  readonly heapMb: number;
  /**
   * V8's `external` memory: the engine's WebAssembly memory (which grows in 64 KiB pages when its
   * allocator runs out of free blocks and never shrinks) plus other buffers outside the heap.
   */
  readonly externalMb: number;
}

/** A measured run. */
export interface MemoryRun {
  readonly method: MemoryMethod;
  readonly steps: number;
  /** Readings at step 0 (after the model and data are built), then every `every` steps. */
  readonly points: MemoryPoint[];
  /** Wall time of the fit, readings included. */
  readonly seconds: number;
}

/** Options of {@link memoryCurve}. */
export interface MemoryCurveOptions {
  /** Steps per chain (default 10,000; a multiple of 1,000 for sghmc and of 5 for bbb). */
  readonly steps?: number;
  /** Steps between readings (default 1,000; for sghmc a multiple of 8 keeps readings on round steps). */
  readonly every?: number;
  readonly seed?: number;
  /**
   * A planted leak, to check the readings see one: after every jitted call, an engine array of this
   * many floats is created and kept until the fit ends (default 0: none).
   */
  readonly retainPerCall?: number;
}

const MB = 2 ** 20;

/** Read RSS and heap after forced collections (the smallest RSS of 4 collections; see the module comment). */
export function settledMemory(): { rssMb: number; heapMb: number; externalMb: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("memory readings need V8's gc(): run node with --expose-gc");
  let rss = Infinity;
  for (let i = 0; i < 4; i++) {
    gc();
    rss = Math.min(rss, process.memoryUsage.rss());
  }
  const m = process.memoryUsage();
  return { rssMb: rss / MB, heapMb: m.heapUsed / MB, externalMb: m.external / MB };
}

/** The method options of the workload for `steps` steps (see the module comment). */
export function memoryOptions(method: MemoryMethod, steps: number): Record<string, OptionValue> {
  if (method === "sghmc") {
    if (steps % 1000 !== 0) throw new RangeError(`sghmc memory run: steps must be a multiple of 1,000, got ${steps}`);
    // lr: the default 2e-3 / N (1.25e-5) diverges within 40 steps on this set.
    return { chains: 2, lr: 3e-6, burnin: 0, samples: steps / 1000, thin: 1000 };
  }
  if (steps % 5 !== 0) throw new RangeError(`bbb memory run: steps must be a multiple of 5 (one epoch), got ${steps}`);
  return { epochs: steps / 5, samples: 2 };
}

/**
 * Fit `method` for `steps` steps on the memory workload, reading memory at the start and every
 * `every` steps (at the first call that reaches each multiple). Needs node --expose-gc.
 */
export async function memoryCurve(method: MemoryMethod, o: MemoryCurveOptions = {}): Promise<MemoryRun> {
  const steps = o.steps ?? 10_000;
  const every = o.every ?? 1000;
  const data = toyRegressionGap({ seed: o.seed ?? 0 });
  const model = makeModel(networkFromSpec("mlp:50", [1], 1), gaussian({ sigma: 0.3 }), { kind: "gaussian", scale: 1 });
  const points: MemoryPoint[] = [{ step: 0, ...settledMemory() }];
  let next = every;
  const retained: JArray[] = [];
  const leak = o.retainPerCall ?? 0;
  const t0 = performance.now();
  const r = await fit(key(o.seed ?? 0), methodSpec(method), model, data.train, {
    batchSize: 32,
    options: memoryOptions(method, steps),
    heldOut: data.test,
    onProgress: (p) => {
      if (leak > 0) retained.push(fromHost(new Float32Array(leak).fill(1), [leak]));
      if (p.step < next) return;
      points.push({ step: p.step, ...settledMemory() });
      while (next <= p.step) next += every;
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  free(retained);
  if (r.sampled !== r.posterior) r.sampled.dispose();
  r.posterior.dispose();
  return { method, steps: r.steps, points, seconds };
}

/** A markdown table of runs side by side: step, then RSS, heap and engine memory (MiB) of each run. */
export function memoryTable(runs: readonly MemoryRun[]): string {
  const steps = [...new Set(runs.flatMap((r) => r.points.map((p) => p.step)))].sort((a, b) => a - b);
  const head = ["step", ...runs.flatMap((r) => [`${r.method} RSS MiB`, `${r.method} heap MiB`, `${r.method} engine MiB`])];
  const rows = steps.map((s) => [
    String(s),
    ...runs.flatMap((r) => {
      const p = r.points.find((q) => q.step === s);
      return p ? [p.rssMb.toFixed(1), p.heapMb.toFixed(1), p.externalMb.toFixed(3)] : ["", "", ""];
    }),
  ]);
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}
