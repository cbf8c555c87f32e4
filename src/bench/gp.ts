/**
 * `bayesdl bench gp`: GP regression on the UCI splits with every requested solver. Per split the
 * hyperparameters are fitted once, by the exact marginal likelihood on a random subset of at most
 * `hyperSubset` training points (all of them on the small sets), and every solver conditions on the same
 * ones, so the solvers differ only in how they solve. Test RMSE and log-likelihood per point in original
 * units, wall time (the shared hyperparameter fit reported apart) and the process's peak RSS, beside
 * the published neural-network figures. The exact solver is skipped, with the memory it would need,
 * where 16 n^2 bytes exceed three quarters of this machine's memory.
 */
import { join, resolve } from "node:path";
import { key, split as splitKey } from "../core/engine.js";
import { exactBytes } from "../gp/exact.js";
import { fitGp, fitSubsetHypers, gpOptions, type GpFitOptions, type SolverName } from "../gp/solve.js";
import { writeFileAtomic, mkdirp } from "../io/atomic.js";
import { EXACT_MEMORY_BYTES, gpData, gpMetrics, type GpMetrics } from "../jobs/gp.js";
import { UCI_PUBLISHED } from "./published.js";
import { meanSe, nSplits } from "./uci.js";

/** One (data set, split, solver) result; `skipped` says why a solver did not run. */
export interface GpBenchResult {
  readonly dataset: string;
  readonly split: number;
  readonly solver: SolverName;
  readonly nTrain: number;
  readonly metrics?: GpMetrics;
  readonly solverSeconds?: number;
  readonly hyperSeconds: number;
  readonly peakRssMiB: number;
  readonly iterations?: number;
  readonly meanResidual?: number;
  readonly sampleResidualMedian?: number;
  readonly skipped?: string;
  readonly hypers: { lengthscales: readonly number[]; signal: number; noise: number };
  /** The subset marginal likelihood's noise variance, where the held-out choice replaced it. */
  readonly subsetNoise?: number;
}

/** Options of {@link runGpBench}. */
export interface GpBenchOptions {
  readonly dataDir: string;
  readonly datasets: string[];
  readonly solvers: SolverName[];
  readonly splits?: number[];
  readonly seed: number;
  /** Solver options shared by all solvers (each solver reads its own). */
  readonly options: Partial<GpFitOptions>;
  readonly memoryBytes?: number;
  readonly onResult?: (r: GpBenchResult) => void;
}

const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

/** Runs the benchmark; returns every (split, solver) result. */
export async function runGpBench(o: GpBenchOptions): Promise<GpBenchResult[]> {
  const out: GpBenchResult[] = [];
  const memory = o.memoryBytes ?? EXACT_MEMORY_BYTES;
  for (const ds of o.datasets) {
    if (!(ds in UCI_PUBLISHED)) throw new Error(`--dataset: unknown data set '${ds}'; expected one of ${Object.keys(UCI_PUBLISHED).join(", ")} or all`);
    const dir = resolve(o.dataDir, ds);
    const count = nSplits(join(o.dataDir, ds));
    const splits = o.splits ? o.splits.filter((s) => s < count) : Array.from({ length: count }, (_, i) => i);
    for (const split of splits) {
      const seed = o.seed + split;
      const data = gpData(`uci:${dir}`, { seed, split });
      const n = data.train.n;
      const d = data.train.xShape.reduce((a, b) => a * b, 1);
      const base = gpOptions("exact", o.options);
      const [kSub, kRest] = splitKey(key(seed), 2);
      const t0 = performance.now();
      const fit = fitSubsetHypers(kSub, data.train.x, data.train.y, n, d, base);
      const hyperSeconds = (performance.now() - t0) / 1000;
      const hypers = fit.hypers;
      const solverKeys = splitKey(kRest, o.solvers.length);
      for (let i = 0; i < o.solvers.length; i++) {
        const solver = o.solvers[i];
        const common = { dataset: ds, split, solver, nTrain: n, hyperSeconds, hypers: { lengthscales: hypers.lengthscales, signal: hypers.signal, noise: hypers.noise }, subsetNoise: fit.noise?.subsetNoise };
        if (solver === "exact" && exactBytes(n) > memory) {
          solverKeys[i].dispose();
          const r: GpBenchResult = { ...common, peakRssMiB: peakRssMiB(), skipped: `needs ${(exactBytes(n) / 2 ** 30).toFixed(1)} GiB (16 n^2 bytes) of the ${(memory / 2 ** 30).toFixed(1)} GiB allowed` };
          out.push(r);
          o.onResult?.(r);
          continue;
        }
        const opts = gpOptions(solver, { ...o.options, hypers });
        const { posterior, report } = await fitGp(solverKeys[i], data.train.x, data.train.y, n, d, opts, undefined, memory);
        const t1 = performance.now();
        const p = await posterior.predict(data.test.x, data.test.n);
        const predictSeconds = (performance.now() - t1) / 1000;
        posterior.dispose();
        const sampleRes = report.residuals ? [...report.residuals.slice(1)].sort((a, b) => a - b) : [];
        const r: GpBenchResult = {
          ...common,
          metrics: gpMetrics(data, p.mean, p.variance, hypers.noise),
          solverSeconds: report.solverSeconds + predictSeconds,
          peakRssMiB: peakRssMiB(),
          iterations: report.iterations,
          meanResidual: report.residuals?.[0],
          sampleResidualMedian: sampleRes.length ? sampleRes[Math.floor(sampleRes.length / 2)] : undefined,
        };
        out.push(r);
        o.onResult?.(r);
      }
    }
  }
  return out;
}

const fmt = (m: number, s: number, digits: number) => `${m.toFixed(digits)} ± ${s.toFixed(digits)}`;

/** The markdown table: per data set and solver, mean ± standard error over splits, beside MC dropout and ensembles. */
export function gpTable(results: GpBenchResult[]): string {
  const lines = [
    "| data | n train | solver | splits | RMSE | MC dropout | ensembles | test LL | MC dropout | ensembles | 90% coverage | solve s / split | hyper s / split | peak RSS MiB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  const datasets = [...new Set(results.map((r) => r.dataset))];
  for (const ds of datasets) {
    const p = UCI_PUBLISHED[ds];
    for (const solver of [...new Set(results.filter((r) => r.dataset === ds).map((r) => r.solver))]) {
      const rs = results.filter((r) => r.dataset === ds && r.solver === solver);
      const ran = rs.filter((r) => r.metrics);
      const n = rs[0].nTrain;
      if (ran.length === 0) {
        lines.push(`| ${p.label} | ${n} | ${solver} | 0 | skipped: ${rs[0].skipped} | | | | | | | | | |`);
        continue;
      }
      const [rm, rse] = meanSe(ran.map((r) => r.metrics!.rmse));
      const [lm, lse] = meanSe(ran.map((r) => r.metrics!.ll));
      const [cm] = meanSe(ran.map((r) => r.metrics!.coverage90));
      const digits = rm < 0.1 ? 4 : rm < 1 ? 3 : 2;
      const solve = ran.reduce((a, r) => a + r.solverSeconds!, 0) / ran.length;
      const hyper = ran.reduce((a, r) => a + r.hyperSeconds, 0) / ran.length;
      const rss = Math.max(...ran.map((r) => r.peakRssMiB));
      const pub = (f: readonly [number, number | undefined]) => (f[1] === undefined ? f[0].toFixed(2) : `${f[0].toFixed(2)} ± ${f[1].toFixed(2)}`);
      lines.push(
        `| ${p.label} | ${n} | ${solver} | ${ran.length} | ${fmt(rm, rse, digits)} | ${pub(p.rmse.dropout)} | ${pub(p.rmse.ensembles)} | ${fmt(lm, lse, 2)} | ${pub(p.ll.dropout)} | ${pub(p.ll.ensembles)} | ${cm.toFixed(2)} | ${solve.toFixed(1)} | ${hyper.toFixed(1)} | ${rss.toFixed(0)} |`,
      );
    }
  }
  return lines.join("\n");
}

/** Writes `uci-gp.md` and `uci-gp.json` into `outDir` (atomically). */
export async function writeGpResults(outDir: string, results: GpBenchResult[], meta: Record<string, unknown>): Promise<string[]> {
  await mkdirp(outDir);
  const md = join(outDir, "uci-gp.md");
  const js = join(outDir, "uci-gp.json");
  await writeFileAtomic(md, `# UCI regression, Gaussian processes\n\n${gpTable(results)}\n`);
  await writeFileAtomic(js, JSON.stringify({ ...meta, results }, null, 2) + "\n");
  return [md, js];
}
