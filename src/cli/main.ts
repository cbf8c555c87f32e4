#!/usr/bin/env node
/**
 * The `bayesdl` command line: `fit` a posterior, `evaluate` a saved one, `predict` with it on new inputs.
 */
import { EVIDENCE_ROUNDS } from "../jobs/fit.js";
import { Command, InvalidArgumentError, Option } from "commander";
import { OptionError, type OptionDef, type OptionValue } from "../core/options.js";
import { DATA_SOURCE_FORMS } from "../data/index.js";
import { runEvaluate, runFit } from "../jobs/fit.js";
import { CV_GRID } from "../jobs/select.js";
import { predictionsCsv, runPredict } from "../jobs/predict.js";
import { DEFAULT_QUANTILES } from "../eval/summary.js";
import { METHODS, METHOD_NAMES, methodSpec } from "../methods.js";
import { DEFAULT_PRIOR_SCALE } from "../models/prior.js";
import { VERSION } from "../version.js";
import { metricsTable } from "./format.js";
import { flagOf, methodOptionDefs, notApplicable, optionHelp } from "./reference.js";
import type { TracePoint } from "../bench/vi.js";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runUciBench, uciDatasets, uciTable, writeUciResults } from "../bench/uci.js";
import { UCI_PUBLISHED } from "../bench/published.js";
import { progressReporter } from "./progress.js";
import { AUTO_EXACT_MAX, GP_DEFAULTS, GP_SOLVERS, SOLVER_NAMES, type GpFitOptions, type SolverName } from "../gp/solve.js";
import { GP_FLAGS, gpDefaultText } from "./gp-flags.js";
import { KERNELS } from "../gp/kernels.js";
import { runGpEvaluate, runGpFit } from "../jobs/gp.js";
import { isGpPosterior } from "../io/gp-posterior.js";
import { gpTable, runGpBench, writeGpResults } from "../bench/gp.js";

function int(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*-?\d+\s*$/.test(v) || n < min || n > max) {
      throw new InvalidArgumentError(`${flag} expects an integer${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` in [${min}, ${max}]`}, got '${v}'.`);
    }
    return n;
  };
}

function positive(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} expects a positive number, got '${v}'.`);
    return n;
  };
}

function priorScales(v: string): number[] | "cv" | "evidence" {
  if (v.trim() === "cv") return "cv";
  if (v.trim() === "evidence") return "evidence";
  const parts = v.split(",").map((p) => Number(p));
  if (parts.some((p) => !Number.isFinite(p) || p <= 0)) throw new InvalidArgumentError(`--prior-scale expects positive numbers separated by commas, cv or evidence, got '${v}'.`);
  return parts;
}

/** The variational methods (families vi and scorevi), for the vi-mnist bench. */
const VARIATIONAL = METHODS.filter((m) => m.family === "vi" || m.family === "scorevi");

/** A flag combination that parses but makes no sense; reported as `bayesdl: <message>`, exit code 2. */
class UsageError extends Error {}

/** Commander's parser for a method option: the catalogue's own parsing, its message prefixed by the flag. */
function optionParser(def: OptionDef) {
  return (v: string): OptionValue => {
    try {
      return def.parse(v);
    } catch (e) {
      throw new InvalidArgumentError(e instanceof OptionError ? `${flagOf(def.key)} ${e.problem}.` : String(e));
    }
  };
}

/** Add every method option of the table to `cmd` (generated: flags, help with per-method defaults, parsing). */
function addMethodOptions(cmd: Command, defs: readonly OptionDef[] = methodOptionDefs()): Command {
  for (const def of defs) {
    const o = new Option(`${flagOf(def.key)} <${def.arg}>`, optionHelp(def)).argParser(optionParser(def));
    cmd.addOption(def.choices ? o.choices(def.choices) : o);
  }
  return cmd;
}

/** The method options given on the command line, checked against the method: a key -> value record. */
function givenMethodOptions(opts: Record<string, unknown>, method: string, defs: readonly OptionDef[] = methodOptionDefs()): Record<string, OptionValue> {
  const spec = methodSpec(method);
  const out: Record<string, OptionValue> = {};
  for (const def of defs) {
    const v = opts[def.key];
    if (v === undefined) continue;
    if (!(def.key in spec.options)) throw new UsageError(notApplicable(def.key, method));
    out[def.key] = v as OptionValue;
  }
  return out;
}

const dataHelp = `data source, one of:\n${DATA_SOURCE_FORMS.map((f) => `  ${f}`).join("\n")}`;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("bayesdl")
    .description("Bayesian deep learning: fit and evaluate neural-network posteriors with calibrated uncertainty.")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (s, write) => write(s) });

  const fit = program
    .command("fit")
    .description("fit a posterior (or a baseline) to a data set, report held-out metrics, optionally save it")
    .addOption(new Option("--data <source>", dataHelp).default("mnist"))
    .addOption(new Option("--model <spec>", "network spec: mlp:<widths>[:relu|tanh|gelu] or cnn:<channels>[:<dense widths>]").default("mlp:400,400"))
    .addOption(new Option("--method <name>", `inference method: ${METHODS.map((m) => `${m.name} (${m.summary}; cost: ${m.cost})`).join("; ")}`).choices(METHOD_NAMES).default("map"))
    .option("--batch-size <n>", "minibatch size (default 128)", int("--batch-size", 1))
    .addOption(new Option("--prior <kind>", "prior on the network's parameters: fan-in (weights N(0, s^2 / fan-in), biases N(0, s^2)) or iid (N(0, s^2) on every parameter)").choices(["fan-in", "iid"]).default("fan-in"))
    .option("--prior-scale <s>", `the prior's scale s: one number, one per layer separated by commas (e.g. 1,0.5,0.1), cv (chosen by cross-validation on the training part from ${CV_GRID.join(", ")}), or evidence (per layer, by the Laplace evidence over ${EVIDENCE_ROUNDS} rounds of MAP training; any method) (default ${DEFAULT_PRIOR_SCALE} with --prior fan-in, 1 with iid)`, priorScales)
    .option("--cv-folds <k>", "folds of --prior-scale cv (1: one random 20% of the training part)", int("--cv-folds", 1), 1)
    .addOption(new Option("--noise <kind>", "regression: observation noise fixed, learned (one scale) or heteroscedastic (a second network output)").choices(["fixed", "learned", "heteroscedastic"]).default("learned"))
    .option("--sigma <s>", "regression: (initial) noise standard deviation in standardised target units", positive("--sigma"), 1)
    .option("--seed <s>", "seed of every random choice (split, init, shuffles, noise)", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--split <k>", "UCI split index", int("--split", 0))
    .option("--target <column>", "CSV target column (name or 0-based index)")
    .addOption(new Option("--task <task>", "CSV: regression or classification (inferred from the target column only when unambiguous)").choices(["regression", "classification"]))
    .option("--test-size <n>", "held-out examples for mnist (default 2000), idx and csv (default 20%)", int("--test-size", 1))
    .option("--out <dir>", "save the posterior to this directory (posterior.json + samples.safetensors), written whole; it must not exist or be empty")
    .option("--force", "replace a non-empty --out directory")
    .option("--checkpoint-every <steps>", "write the run's full state to <out>.checkpoint every this many steps (atomically; removed when the posterior is saved)", int("--checkpoint-every", 1))
    .option("--resume <dir>", "continue a checkpointed run (its --out, or the .checkpoint directory) exactly where it stopped; every other setting comes from the checkpoint")
    .option("--from <path>", "start from these weights instead of a fresh initialisation or MAP warm start: a directory written by fit --out (its first draw, e.g. a MAP fit) or a .safetensors file with one tensor per leaf (net.layers.0.w, ...)")
    .option("--quiet", "no progress output");
  addMethodOptions(fit).action(async (opts, cmd: Command) => {
    if (opts.resume !== undefined) {
      const others = cmd.options.map((o) => o.attributeName()).filter((k) => k !== "resume" && k !== "quiet" && cmd.getOptionValueSource(k) === "cli");
      if (others.length > 0) {
        throw new UsageError(`--resume continues a run with the settings it started with; drop ${others.map((k) => cmd.options.find((o) => o.attributeName() === k)!.long).join(", ")}`);
      }
    }
    const method = opts.method as string;
    const options = opts.resume === undefined ? givenMethodOptions(opts, method) : {};
    const progress = progressReporter(opts.resume === undefined ? `fit ${method}` : "fit (resumed)", Boolean(opts.quiet));
    const result = await runFit({
      resume: opts.resume,
      from: opts.from,
      checkpointEvery: opts.checkpointEvery,
      data: opts.data,
      model: opts.model,
      method,
      seed: opts.seed,
      options,
      batchSize: opts.batchSize,
      priorScale: Array.isArray(opts.priorScale) ? opts.priorScale[0] : undefined,
      priorPerLayer: Array.isArray(opts.priorScale) && opts.priorScale.length > 1 ? opts.priorScale : undefined,
      priorSelect: opts.priorScale === "cv" ? { folds: opts.cvFolds } : opts.priorScale === "evidence" ? { by: "evidence" } : undefined,
      onSelect: opts.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`),
      priorScaling: opts.prior === "iid" ? "none" : "fan-in",
      noise: opts.noise,
      sigma: opts.sigma,
      split: opts.split,
      target: opts.target,
      task: opts.task,
      testSize: opts.testSize,
      out: opts.out,
      force: Boolean(opts.force),
      onProgress: (p) => progress.update(p),
    }).finally(() => progress.stop());
    const d = result.data;
    const m = result.meta;
    console.log(`${m.method} on ${m.data.given ?? m.data.source} (${d.train.n} train / ${d.test.n} test${d.taskNote ? `; task: ${d.taskNote}` : ""}), model ${m.model}, seed ${m.seed}${opts.resume === undefined ? "" : " (resumed)"}`);
    console.log(metricsTable(result.metrics, [["wall time", `${result.wallTimeSeconds.toFixed(1)} s`]]));
    if (result.out) console.log(`saved to ${result.out}`);
    for (const w of result.warnings) console.error(`warning: ${w}`);
  });

  program
    .command("evaluate")
    .description("evaluate a saved posterior on the test part of a data source")
    .requiredOption("--posterior <dir>", "a directory written by `bayesdl fit --out`")
    .option("--data <source>", `${dataHelp}\n(default: the source the posterior was fitted on, with its own train/test split; another idx or csv source is used whole as the test set)`)
    .option("--seed <s>", "key of fresh draws (--samples), and split seed of another shuffled source (default: the posterior's seed)", int("--seed", 0, 2 ** 32 - 1))
    .option("--split <k>", "UCI split index of another UCI folder (default: the posterior's)", int("--split", 0))
    .option("--target <column>", "CSV target column (default: the posterior's)")
    .addOption(new Option("--task <task>", "CSV: regression or classification (default: the posterior's)").choices(["regression", "classification"]))
    .option("--test-size <n>", "held-out examples of another mnist source (the posterior's own source always uses its own split)", int("--test-size", 1))
    .option("--ood <source>", "out-of-distribution inputs: adds the AUROC of predictive entropy (classification posteriors)")
    .option("--samples <s>", "variational posteriors: draw this many fresh samples from q (keyed by --seed) instead of using the saved draws", int("--samples", 1))
    .option("--json", "print the metrics as JSON")
    .action(async (opts) => {
      const t0 = performance.now();
      if (await isGpPosterior(opts.posterior)) {
        const r = await runGpEvaluate(opts.posterior, { data: opts.data, split: opts.split, seed: opts.seed, target: opts.target, testSize: opts.testSize });
        const wall = (performance.now() - t0) / 1000;
        if (opts.json) {
          console.log(JSON.stringify({ posterior: opts.posterior, method: `gp-${r.meta.solver}`, kernel: r.meta.hypers.kernel, data: r.data.source, testSize: r.data.test.n, metrics: r.metrics, wallTimeSeconds: wall }));
          return;
        }
        console.log(`GP posterior (${r.meta.solver}, ${r.meta.hypers.kernel}) on ${r.data.source}: ${r.data.test.n} test examples${r.sameData ? " (the held-out part of the data it was fitted on)" : ""}`);
        console.log(metricsTable(r.metrics, [["wall time", `${wall.toFixed(1)} s`]]));
        return;
      }
      const { meta, metrics, data, sameData } = await runEvaluate({
        posterior: opts.posterior,
        data: opts.data,
        seed: opts.seed,
        split: opts.split,
        target: opts.target,
        task: opts.task,
        testSize: opts.testSize,
        ood: opts.ood,
        samples: opts.samples,
      });
      const wall = (performance.now() - t0) / 1000;
      if (opts.json) {
        console.log(JSON.stringify({ posterior: opts.posterior, method: meta.method, model: meta.model, data: data.source, testSize: data.test.n, metrics, wallTimeSeconds: wall }));
        return;
      }
      const used = opts.samples ?? meta.numSamples;
      console.log(`${meta.method} posterior (${used} sample${used === 1 ? "" : "s"}${opts.samples ? " drawn from q" : ""}, ${meta.model}) on ${data.source}: ${data.test.n} test examples${sameData ? " (the held-out part of the data it was fitted on)" : ""}`);
      console.log(metricsTable(metrics, [["wall time", `${wall.toFixed(1)} s`]]));
    });
  program
    .command("predict")
    .description("apply a saved posterior to new inputs (no targets needed): per input the predictive mean, sd and quantiles (regression) or class probabilities, entropy and mutual information (classification)")
    .requiredOption("--posterior <dir>", "a directory written by `bayesdl fit --out`")
    .requiredOption(
      "--data <source>",
      "inputs: csv:<file> (the posterior's input columns, by header name when it has one; a target column is ignored), idx:<images>[,<labels>], or any --data source (its test part)",
    )
    .option("--out <file>", "write the predictions to a .csv or .json file (default: CSV on stdout)")
    .option("--force", "replace an existing --out file")
    .option("--samples <s>", "variational posteriors: draw this many fresh samples from q instead of the saved draws", int("--samples", 1))
    .option("--seed <s>", "key of fresh draws (default: the posterior's seed)", int("--seed", 0, 2 ** 32 - 1))
    .option("--quantiles <levels>", "regression: quantile levels in (0, 1), comma separated", quantileLevels, [...DEFAULT_QUANTILES])
    .action(async (opts) => {
      const r = await runPredict({ posterior: opts.posterior, data: opts.data, out: opts.out, force: Boolean(opts.force), samples: opts.samples, seed: opts.seed, quantiles: opts.quantiles });
      if (opts.out === undefined) {
        process.stdout.write(predictionsCsv(r));
        return;
      }
      const what = r.summary.kind === "regression" ? "mean, sd (epistemic, aleatoric) and quantiles" : "class probabilities, entropy and mutual information";
      console.log(`${r.meta.method} posterior (${r.meta.model}) on ${r.n} inputs of ${opts.data}: ${what} written to ${opts.out}`);
      if (r.ignored.length > 0) console.log(`columns not used as inputs: ${r.ignored.join(", ")}`);
    });
  const gp = program.command("gp").description("Gaussian-process regression: exact (float64 Cholesky), conjugate gradients, SGD and stochastic dual descent posterior samples");
  const gpFit = gp
    .command("fit")
    .description(`fit a GP posterior on a regression source and score its test part; solvers:\n${GP_SOLVERS.map((s) => `  ${s.name}: ${s.summary} (${s.paper})`).join("\n")}`)
    .requiredOption("--data <source>", dataHelp)
    .option("--split <k>", "UCI split index", int("--split", 0))
    .option("--target <column>", "CSV target column (name or 0-based index)")
    .option("--test-size <n>", "held-out examples of csv and idx sources (default 20%)", int("--test-size", 1))
    .option("--seed <s>", "seed of every random choice (split, hyperparameter subset, prior draws, minibatches)", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--out <dir>", "save the posterior to this directory (posterior.json + gp.safetensors), written whole; it must not exist or be empty")
    .option("--force", "replace a non-empty --out directory")
    .option("--monitor-every <steps>", "sgd, sdd: every this many steps, print the test RMSE of the averaged iterate's mean on the first 2,000 test points (the time to a held-out tolerance)", int("--monitor-every", 1))
    .option("--json", "print the result as JSON")
    .option("--quiet", "no progress output");
  addGpOptions(gpFit).action(async (opts) => {
    const progress = opts.quiet ? undefined : gpProgress();
    const r = await runGpFit({
      data: opts.data,
      split: opts.split,
      seed: opts.seed,
      target: opts.target,
      testSize: opts.testSize,
      options: gpGiven(opts),
      out: opts.out,
      force: Boolean(opts.force),
      progress,
      monitorEvery: opts.monitorEvery,
      onMonitor: (step, rmse, seconds) => console.error(`monitor: step ${step} test RMSE ${rmse.toPrecision(5)} (${seconds.toFixed(1)} s, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB)`),
    });
    if (opts.json) {
      console.log(JSON.stringify({ data: r.data.source, solver: r.options.solver, kernel: r.options.kernel, nTrain: r.nTrain, nTest: r.nTest, hypers: r.hypers, metrics: r.metrics, report: r.report, wallTimeSeconds: r.wallTimeSeconds }));
      return;
    }
    const h = r.hypers;
    console.log(`GP ${r.options.solver} (${h.kernel}) on ${r.data.source} (${r.nTrain} train / ${r.nTest} test, ${r.d} inputs), seed ${opts.seed}`);
    console.log(`hyperparameters${r.report.hyperFit ? ` (exact marginal likelihood on ${r.report.hyperFit.subset} training points, ${r.report.hyperFit.logMarginalPerPoint.toFixed(3)} per point${r.report.hyperFit.noise ? `; noise variance ${r.report.hyperFit.noise.subsetNoise.toPrecision(3)} there, replaced by the held-out choice on ${r.report.hyperFit.noise.points} other rows, log-likelihood ${r.report.hyperFit.noise.givenLl.toFixed(3)} -> ${r.report.hyperFit.noise.validationLl.toFixed(3)} per point` : ""})` : ""}: lengthscales ${h.lengthscales.map((v) => v.toPrecision(3)).join(", ")}; signal variance ${h.signal.toPrecision(3)}; noise variance ${h.noise.toPrecision(3)}`);
    const extra: [string, string][] = [["wall time", `${r.wallTimeSeconds.toFixed(1)} s (hyperparameters ${r.report.hyperSeconds.toFixed(1)} s, solve ${r.report.solverSeconds.toFixed(1)} s)`]];
    if (r.report.residuals) extra.push(["relative residual", `mean ${r.report.residuals[0].toExponential(2)}, samples median ${[...r.report.residuals.slice(1)].sort((a, b) => a - b)[Math.floor((r.report.residuals.length - 1) / 2)]?.toExponential(2) ?? "-"} after ${r.report.iterations} ${r.options.solver === "cg" ? "iterations" : "steps"}`]);
    console.log(metricsTable(r.metrics, extra));
    if (r.out) console.log(`saved to ${r.out}`);
    for (const w of r.report.warnings) console.error(`warning: ${w}`);
  });
  const bench = program.command("bench").description("benchmarks against published results");
  const uci = bench
    .command("uci")
    .description("the standard UCI regression protocol: every split, 50 hidden units (100 for protein); writes a markdown table beside the published figures and a JSON file of every split; method options override the protocol's")
    .option("--dataset <names>", `data set folder names, comma separated (${uciNames()}), or all`, "all")
    .addOption(new Option("--method <name>", "inference method").choices(METHOD_NAMES).default("sghmc"))
    .option("--splits <range>", "split indices, e.g. 0-19 or 0,3,5 (default: every split of each set)", splitRange)
    .option("--data-dir <dir>", "folder holding the UCI data sets", defaultUciDir())
    .option("--out <dir>", "where to write uci-<method>.md and .json", "runs/bench")
    .option("--seed <s>", "base seed (split k uses seed + k)", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--batch-size <n>", "override the protocol's minibatch size (samplers 128, others 32)", int("--batch-size", 1))
    .addOption(new Option("--noise <kind>", "observation noise on every set: learned (one scale) or heteroscedastic (a second network output) (default: each set's, chosen on its training parts: heteroscedastic on boston, concrete, kin8nm and power, learned on the others)").choices(["fixed", "learned", "heteroscedastic"]))
    .option("--quiet", "no per-split lines");
  const benchGp = bench
    .command("gp")
    .description("GP regression on the UCI splits with each solver, hyperparameters fitted once per split by the exact marginal likelihood on a subset; writes uci-gp.md and uci-gp.json")
    .option("--dataset <names>", `data set folder names, comma separated (${uciNames()}), or all`, "all")
    .option("--solver <names>", `solvers, comma separated (${SOLVER_NAMES.join(", ")}); exact is skipped where it needs more than three quarters of the memory`, SOLVER_NAMES.join(","))
    .option("--splits <range>", "split indices, e.g. 0-19 or 0,3,5 (default: every split of each set)", splitRange)
    .option("--data-dir <dir>", "folder holding the UCI data sets", defaultUciDir())
    .option("--out <dir>", "where to write uci-gp.md and .json", "runs/bench")
    .option("--seed <s>", "base seed (split k uses seed + k)", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--quiet", "no per-run lines");
  addGpOptions(benchGp, false).action(async (opts) => {
    const t0 = performance.now();
    const datasets = opts.dataset === "all" ? uciDatasets(opts.dataDir) : String(opts.dataset).split(",");
    const solvers = String(opts.solver).split(",").map((s) => s.trim());
    for (const s of solvers) if (!(SOLVER_NAMES as readonly string[]).includes(s)) throw new UsageError(`--solver: unknown solver '${s}'; expected ${SOLVER_NAMES.join(", ")}`);
    const options = gpGiven(opts);
    const results = await runGpBench({
      dataDir: opts.dataDir,
      datasets,
      solvers: solvers as SolverName[],
      splits: opts.splits,
      seed: opts.seed,
      options,
      onResult: (r) => {
        if (opts.quiet) return;
        if (r.skipped) console.error(`${r.dataset} split ${r.split} ${r.solver}: skipped (${r.skipped})`);
        else console.error(`${r.dataset} split ${r.split} ${r.solver}: RMSE ${r.metrics!.rmse.toFixed(4)} LL ${r.metrics!.ll.toFixed(3)} (${r.solverSeconds!.toFixed(1)} s; hyperparameters ${r.hyperSeconds.toFixed(1)} s; peak RSS ${r.peakRssMiB.toFixed(0)} MiB)`);
      },
    });
    const wall = (performance.now() - t0) / 1000;
    const files = await writeGpResults(opts.out, results, { options, solvers, seed: opts.seed, wallTimeSeconds: wall, createdAt: new Date().toISOString() });
    console.log(gpTable(results));
    console.log(`\ntotal wall time ${wall.toFixed(0)} s; wrote ${files.join(", ")}`);
  });
  addMethodOptions(uci).action(async (opts) => {
    const t0 = performance.now();
    const datasets = opts.dataset === "all" ? uciDatasets(opts.dataDir) : String(opts.dataset).split(",");
    const overrides = givenMethodOptions(opts, opts.method);
    const results = await runUciBench({
      dataDir: opts.dataDir,
      datasets,
      method: opts.method,
      splits: opts.splits,
      seed: opts.seed,
      overrides,
      batchSize: opts.batchSize,
      noise: opts.noise,
      onSplit: (r, done, total) => {
        const restarts = (r.warnings ?? []).filter((w) => w.startsWith("chain ")).length;
        if (!opts.quiet) console.error(`[${done}/${total}] ${r.dataset} split ${r.split}: RMSE ${r.rmse.toFixed(4)} LL ${r.ll.toFixed(3)} (${r.wallTimeSeconds.toFixed(1)} s${restarts ? `; ${restarts} chain restart warning${restarts > 1 ? "s" : ""}` : ""})`);
      },
    });
    const wall = (performance.now() - t0) / 1000;
    const files = await writeUciResults(opts.out, opts.method, results, { overrides, batchSize: opts.batchSize, noise: opts.noise ?? "per set", seed: opts.seed, wallTimeSeconds: wall, createdAt: new Date().toISOString() });
    console.log(uciTable(results, opts.method));
    console.log(`\ntotal wall time ${wall.toFixed(0)} s; wrote ${files.join(", ")}`);
  });
  const list = (v: string) => v.split(",").map((x) => x.trim()).filter((x) => x !== "");
  /** `bench vi-gaussian` and `bench vi-mixture`: the same flags over a target list and a method list. */
  type TargetBench = (out: string, o: { budget: number; seed: number; targets?: string[]; methods?: readonly string[]; onRun: (t: string, m: string, last: TracePoint) => void }) => Promise<{ table: string; files: string[] }>;
  const targetBench = (name: string, description: string, targets: string, load: () => Promise<{ run: TargetBench; methods: readonly string[] }>, methodNames: string) =>
    bench
      .command(name)
      .description(description)
      .option("--budget <evals>", "target evaluations per run", int("--budget", 1), 20000)
      .option("--targets <names>", `comma-separated subset of ${targets}`)
      .option("--methods <names>", `comma-separated subset of ${methodNames}`)
      .option("--seed <s>", "seed of the targets and the runs", int("--seed", 0, 2 ** 32 - 1), 0)
      .option("--out <dir>", `where to write ${name}.md, .json and .svg`, "runs/bench")
      .action(async (opts) => {
        const { run, methods: known } = await load();
        const methods = opts.methods ? list(opts.methods) : undefined;
        for (const m of methods ?? []) if (!known.includes(m)) throw new UsageError(`--methods: unknown method '${m}'; choose from ${known.join(", ")}`);
        const { table, files } = await run(opts.out, {
          budget: opts.budget,
          seed: opts.seed,
          targets: opts.targets ? list(opts.targets) : undefined,
          methods,
          onRun: (t, m, last) => console.error(`${t} ${m}: ${Object.entries(last.errors).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(", ")} (${last.seconds.toFixed(1)} s)`),
        });
        console.log(table);
        console.log(`wrote ${files.join(", ")}`);
      });
  targetBench(
    "vi-gaussian",
    "proximal score VI, full-rank ADVI, GSM and BaM on Gaussian targets: forward KL and parameter errors against score evaluations",
    "d10, d50, d100, d50-illcond, d50-tinyinit",
    async () => {
      const m = await import("../bench/vi-gaussian.js");
      return { run: m.viGaussianBench, methods: m.VI_GAUSSIAN_METHODS };
    },
    "proximal-svi, advi, gsm, bam",
  );
  targetBench(
    "vi-mixture",
    "mixture and flow VI (ADVI) and proximal score VI with a flow on Gaussian-mixture targets: KL estimates against evaluations",
    "k2-d2, k5-d2, k2-d30, k5-d30",
    async () => {
      const m = await import("../bench/vi-mixture.js");
      return { run: m.viMixtureBench, methods: m.VI_MIXTURE_METHODS };
    },
    "advi-mixture, advi-realnvp, proximal-realnvp",
  );
  bench
    .command("vi-mnist")
    .description("variational methods on the embedded MNIST digits with held-out learning curves (error, NLL, ECE against steps and wall time)")
    .option("--methods <names>", `comma-separated variational methods (${VARIATIONAL.map((m) => m.name).join(", ")})`, "bbb,proximal-svi")
    .option("--epochs <n>", "passes over the 8,000 training digits", int("--epochs", 1), 20)
    .option("--every <steps>", "steps between curve points", int("--every", 1), 125)
    .option("--eval-samples <s>", "draws from q per curve point", int("--eval-samples", 1), 10)
    .option("--model <spec>", "network", "mlp:400,400")
    .option("--temperature <t>", "temperature T of every method that takes one (the target p^(1/T))", positive("--temperature"), 1)
    .option("--seed <s>", "split and run seed", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--out <dir>", "where to write vi-mnist.md, .json and .svg", "runs/bench")
    .action(async (opts) => {
      const { viMnistBench } = await import("../bench/vi-mnist.js");
      const methods = list(opts.methods);
      for (const m of methods) if (!VARIATIONAL.some((v) => v.name === m)) throw new UsageError(`--methods: '${m}' is not a variational method (${VARIATIONAL.map((v) => v.name).join(", ")})`);
      const overrides: Record<string, Record<string, OptionValue>> = {};
      for (const m of methods) overrides[m] = "temperature" in methodSpec(m).options ? { temperature: opts.temperature as number } : {};
      const { table, files } = await viMnistBench(opts.out, {
        methods,
        epochs: opts.epochs,
        seed: opts.seed,
        every: opts.every,
        evalSamples: opts.evalSamples,
        model: opts.model,
        overrides,
        onPoint: (p) => console.error(`${p.method} step ${p.step}: error ${(100 * p.error).toFixed(2)}% NLL ${p.nll.toFixed(4)} ECE ${p.ece.toFixed(4)} (${p.seconds.toFixed(1)} s)`),
      });
      console.log(table);
      console.log(`wrote ${files.join(", ")}`);
    });
  return program;
}


/** Parsers of the GP option flags (the table itself is cli/gp-flags.ts, shared with the README generator). */
const GP_PARSERS: Record<string, (v: string) => number | string> = {
  samples: int("--samples", 1),
  features: int("--features", 1),
  hyperSubset: int("--hyper-subset", 2),
  hyperEvaluations: int("--hyper-evaluations", 1),
  noiseValidation: int("--noise-validation", 0),
  steps: int("--steps", 1),
  batchSize: int("--batch-size", 1),
  lr: positive("--lr"),
  momentum: (v) => {
    const n = Number(v);
    if (v.trim() === "" || !(n >= 0 && n < 1)) throw new InvalidArgumentError(`--momentum expects a number in [0, 1), got '${v}'.`);
    return n;
  },
  averaging: positive("--averaging"),
  rank: int("--rank", 0),
  tolerance: positive("--tolerance"),
  maxIterations: int("--max-iterations", 1),
};

/** Adds --kernel, --solver (when `solver`) and every GP option flag, with defaults in the help. */
function addGpOptions(cmd: Command, solver = true): Command {
  cmd.addOption(new Option("--kernel <name>", `covariance function with ARD lengthscales (default ${GP_DEFAULTS.kernel})`).choices([...KERNELS]));
  if (solver) cmd.addOption(new Option("--solver <name>", `how the posterior is computed; auto: exact up to ${AUTO_EXACT_MAX.toLocaleString("en")} training points, sdd above (default auto)`).choices(["auto", ...SOLVER_NAMES]));
  for (const f of GP_FLAGS) cmd.addOption(new Option(`${f.flag} <${f.arg}>`, `${f.help} (default ${gpDefaultText(f.key)})`).argParser(GP_PARSERS[f.key]));
  return cmd;
}

/** The GP options given on the command line. */
function gpGiven(opts: Record<string, unknown>): Partial<GpFitOptions> & { solver: string } {
  const out: Record<string, unknown> = { solver: opts.solver ?? "auto" };
  if (opts.kernel !== undefined) out.kernel = opts.kernel;
  for (const f of GP_FLAGS) if (opts[f.key] !== undefined) out[f.key] = opts[f.key];
  return out as Partial<GpFitOptions> & { solver: string };
}

/** Progress of a GP fit on stderr: one line per phase change, and the solver's progress every tenth. */
function gpProgress() {
  let last = "";
  let lastTenth = -1;
  return (phase: string, done: number, total: number, note?: string) => {
    const tenth = Math.floor((10 * done) / Math.max(total, 1));
    if (phase !== last || tenth !== lastTenth) {
      console.error(`${phase}: ${done}/${total}${note ? ` (${note})` : ""}`);
      last = phase;
      lastTenth = tenth;
    }
  };
}

function quantileLevels(v: string): number[] {
  const parts = v.split(",").map((p) => Number(p));
  if (parts.length === 0 || parts.some((p) => !(p > 0 && p < 1))) throw new InvalidArgumentError(`--quantiles expects levels in (0, 1) separated by commas, got '${v}'.`);
  return parts;
}

function splitRange(v: string): number[] {
  const out: number[] = [];
  for (const part of v.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(part);
    if (!m) throw new InvalidArgumentError(`--splits expects ranges like 0-19 or 0,3,5, got '${v}'.`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new InvalidArgumentError(`--splits: range '${part}' runs backwards.`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

/** ../shared/data/uci beside the repository (where CI and this workplace keep it). */
function defaultUciDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../../shared/data/uci");
}

function uciNames(): string {
  return Object.keys(UCI_PUBLISHED).join(", ");
}

async function main(argv: string[]): Promise<void> {
  // `bayesdl predict ... | head`: a closed pipe ends the output quietly.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code?.startsWith("commander.")) {
      process.exitCode = err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : (err.exitCode ?? 1);
      return;
    }
    console.error(`bayesdl: ${err.message ?? String(e)}`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
}

await main(process.argv);
