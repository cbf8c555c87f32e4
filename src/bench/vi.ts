/**
 * The variational-inference benches behind `bayesdl bench vi-gaussian` and `bayesdl bench
 * vi-mixture`: every method is run on targets with exact answers, and its error is recorded against
 * the number of score (or gradient) evaluations of the target it has used, which is the cost
 * measure of the score-based VI literature (Modi et al. 2023; Cai et al. 2024; Kim 2026).
 *
 * - vi-gaussian: forward KL(p || q) and relative errors of the mean and covariance, in closed form
 *   from q's moments.
 * - vi-mixture: Monte Carlo estimates of the reverse KL(q || p) = E_q[log q - log p] and, for families
 *   with a tractable density at any point, the forward KL(p || q) = E_p[log p - log q], with the
 *   target's exact normalised density and exact draws.
 *
 * Each bench writes a markdown table and an SVG plot (src/plot/svg.ts).
 */
import { join } from "node:path";
import { mkdirp, writeFileAtomic } from "../io/atomic.js";
import { lineChartSvg, type SeriesPoint } from "../plot/svg.js";

/** A running method on one target, as the bench drives it. */
export interface BenchRun {
  /** Advance by one iteration; returns the total number of target evaluations used so far. */
  step(): Promise<number>;
  /** The error measures at the current state (named, e.g. `{ forwardKl, meanErr, covErr }`). */
  errors(): Promise<Record<string, number>>;
  /** Number of updates that were rejected (closed-form methods keep the old state then). */
  rejected?(): number;
  dispose(): void;
}

/** One row of a convergence trace. */
export interface TracePoint {
  readonly target: string;
  readonly method: string;
  readonly evals: number;
  readonly seconds: number;
  readonly errors: Record<string, number>;
}

/** Evaluation counts at which a run is measured: about `perDecade` points per decade up to `budget`. */
export function checkpoints(budget: number, perDecade = 4): number[] {
  const out = new Set<number>();
  for (let e = 0; ; e++) {
    const v = Math.round(Math.pow(10, e / perDecade));
    if (v > budget) break;
    out.add(v);
  }
  out.add(budget);
  return [...out].sort((a, b) => a - b);
}

/**
 * Drive `run` until `budget` evaluations, recording its errors at the first state past every
 * checkpoint (and at the start). Stops early when an error becomes non-finite (the method diverged).
 */
export async function traceRun(target: string, method: string, run: BenchRun, budget: number): Promise<{ trace: TracePoint[]; rejected: number; diverged: boolean }> {
  const marks = checkpoints(budget);
  const trace: TracePoint[] = [];
  const t0 = performance.now();
  let evals = 0;
  let next = 0;
  let diverged = false;
  try {
    trace.push({ target, method, evals: 0, seconds: 0, errors: await run.errors() });
    while (evals < budget) {
      evals = await run.step();
      if (evals >= marks[next]) {
        while (next < marks.length && evals >= marks[next]) next++;
        const errors = await run.errors();
        trace.push({ target, method, evals, seconds: (performance.now() - t0) / 1000, errors });
        if (Object.values(errors).some((v) => !Number.isFinite(v))) {
          diverged = true;
          break;
        }
      }
    }
    return { trace, rejected: run.rejected?.() ?? 0, diverged };
  } finally {
    run.dispose();
  }
}

/** Evaluations a trace needed to bring `metric` to at most `threshold` (Infinity if never). */
export function evalsTo(trace: readonly TracePoint[], metric: string, threshold: number): number {
  const hit = trace.find((p) => p.errors[metric] <= threshold);
  return hit ? hit.evals : Infinity;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return v === Infinity ? "∞" : "n/a";
  if (v === 0) return "0";
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
  const a = Math.abs(v);
  return a >= 1000 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(3);
}

/**
 * Markdown table: for each target and method, the final value of every metric, the evaluations
 * needed to reach each threshold of `reach`, the wall time, and rejected updates.
 */
export function benchTable(
  results: { target: string; method: string; trace: TracePoint[]; rejected: number; diverged: boolean }[],
  metrics: string[],
  reach: { metric: string; threshold: number }[],
): string {
  const head = ["target", "method", ...metrics.map((m) => `final ${m}`), ...reach.map((r) => `evals to ${r.metric} <= ${r.threshold}`), "evals", "wall s", "rejected"];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of results) {
    const last = r.trace[r.trace.length - 1];
    const cells = [
      r.target,
      r.method + (r.diverged ? " (diverged)" : ""),
      ...metrics.map((m) => fmt(last.errors[m])),
      ...reach.map((x) => fmt(evalsTo(r.trace, x.metric, x.threshold))),
      String(last.evals),
      last.seconds.toFixed(1),
      String(r.rejected),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Write `<name>.md`, `<name>.json` and `<name>.svg` (the plot of `metric` against evaluations). */
export async function writeBench(
  outDir: string,
  name: string,
  title: string,
  table: string,
  results: { target: string; method: string; trace: TracePoint[] }[],
  metric: string,
  metricTitle: string,
  meta: Record<string, unknown>,
): Promise<string[]> {
  const points: SeriesPoint[] = results.flatMap((r) =>
    r.trace.filter((p) => p.evals > 0).map((p) => ({ series: r.method, panel: r.target, x: p.evals, y: p.errors[metric] })),
  );
  const svg = await lineChartSvg(points, { title, xTitle: "target evaluations (scores or gradients)", yTitle: metricTitle, logX: true, logY: true });
  await mkdirp(outDir);
  const files = [join(outDir, `${name}.md`), join(outDir, `${name}.json`), join(outDir, `${name}.svg`)];
  await writeFileAtomic(files[0], `# ${title}\n\n${table}\n\nPlot: ${name}.svg (${metricTitle} against evaluations).\n`);
  await writeFileAtomic(files[1], JSON.stringify({ ...meta, results }, null, 2) + "\n");
  await writeFileAtomic(files[2], svg);
  return files;
}

/** `name` as one of a bench's method names. @throws naming the unknown method and the known ones. */
export function benchMethod<M extends string>(name: string, known: readonly M[]): M {
  const m = known.find((k) => k === name);
  if (m === undefined) throw new RangeError(`--methods: unknown method '${name}'; choose from ${known.join(", ")}`);
  return m;
}
