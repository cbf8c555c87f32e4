#!/usr/bin/env node
/**
 * The `bayesdl` command line: `fit` a posterior, `evaluate` a saved one.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { DATA_SOURCE_FORMS } from "../data/index.js";
import { runEvaluate, runFit } from "../jobs/fit.js";
import { METHODS, METHOD_NAMES, type MethodName } from "../jobs/methods.js";
import { VERSION } from "../version.js";
import { metricsTable } from "./format.js";
import { progressReporter } from "./progress.js";

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

/** Defaults used when neither the user nor the method's table entry sets an option. */
const DEFAULTS = { epochs: 20, batchSize: 128, learningRate: 1e-3, members: 5 };

const dataHelp = `data source, one of:\n${DATA_SOURCE_FORMS.map((f) => `  ${f}`).join("\n")}`;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("bayesdl")
    .description("Bayesian deep learning: fit and evaluate neural-network posteriors with calibrated uncertainty.")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (s, write) => write(s) });

  program
    .command("fit")
    .description("fit a posterior (or a baseline) to a data set, report held-out metrics, optionally save it")
    .addOption(new Option("--data <source>", dataHelp).default("mnist"))
    .addOption(new Option("--model <spec>", "network spec: mlp:<widths>[:relu|tanh|gelu] or cnn:<channels>[:<dense widths>]").default("mlp:400,400"))
    .addOption(new Option("--method <name>", `inference method: ${METHOD_NAMES.map((m) => `${m} (${METHODS[m].summary})`).join("; ")}`).choices(METHOD_NAMES).default("map"))
    .option("--epochs <n>", `passes over the training data (default ${DEFAULTS.epochs})`, int("--epochs", 0))
    .option("--batch-size <n>", `minibatch size (default ${DEFAULTS.batchSize})`, int("--batch-size", 1))
    .option("--lr <rate>", `learning rate (default ${DEFAULTS.learningRate})`, positive("--lr"))
    .option("--members <m>", `ensemble members (default ${DEFAULTS.members})`, int("--members", 1))
    .option("--prior-scale <s>", "standard deviation of the isotropic Gaussian prior on weights", positive("--prior-scale"), 1)
    .option("--temperature <t>", "posterior temperature T (log density divided by T; T < 1 is a cold posterior)", positive("--temperature"), 1)
    .addOption(new Option("--noise <kind>", "regression: observation noise fixed or learned").choices(["fixed", "learned"]).default("learned"))
    .option("--sigma <s>", "regression: (initial) noise standard deviation in standardised target units", positive("--sigma"), 0.5)
    .option("--seed <s>", "seed of every random choice (split, init, shuffles, noise)", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--split <k>", "UCI split index", int("--split", 0))
    .option("--target <column>", "CSV target column (name or 0-based index)")
    .option("--test-size <n>", "held-out examples for mnist (default 2000), idx and csv (default 20%)", int("--test-size", 1))
    .option("--out <dir>", "save the posterior to this directory (posterior.json + samples.safetensors)")
    .option("--quiet", "no progress output")
    .action(async (opts) => {
      const method = opts.method as MethodName;
      const md = METHODS[method].defaults as Partial<typeof DEFAULTS>;
      if (opts.members !== undefined && method !== "ensemble") throw new InvalidArgumentError(`--members applies to --method ensemble only (got --method ${method})`);
      const progress = progressReporter(`fit ${method}`, Boolean(opts.quiet));
      const result = await runFit({
        data: opts.data,
        model: opts.model,
        method,
        seed: opts.seed,
        epochs: opts.epochs ?? md.epochs ?? DEFAULTS.epochs,
        batchSize: opts.batchSize ?? md.batchSize ?? DEFAULTS.batchSize,
        learningRate: opts.lr ?? md.learningRate ?? DEFAULTS.learningRate,
        members: opts.members ?? md.members ?? DEFAULTS.members,
        priorScale: opts.priorScale,
        temperature: opts.temperature,
        noise: opts.noise,
        sigma: opts.sigma,
        split: opts.split,
        target: opts.target,
        testSize: opts.testSize,
        out: opts.out,
        onProgress: (p) => progress.update(p),
      }).finally(() => progress.stop());
      const d = result.data;
      console.log(`${method} on ${opts.data} (${d.train.n} train / ${d.test.n} test), model ${opts.model}, seed ${opts.seed}`);
      console.log(metricsTable(result.metrics, [["wall time", `${result.wallTimeSeconds.toFixed(1)} s`]]));
      if (opts.out) console.log(`saved to ${opts.out}`);
    });

  program
    .command("evaluate")
    .description("evaluate a saved posterior on the test part of a data source")
    .requiredOption("--posterior <dir>", "a directory written by `bayesdl fit --out`")
    .option("--data <source>", `${dataHelp}\n(default: the source the posterior was fitted on; an idx pair is used whole as the test set)`)
    .option("--seed <s>", "split seed for shuffled sources (default: the posterior's)", int("--seed", 0, 2 ** 32 - 1))
    .option("--split <k>", "UCI split index (default: the posterior's)", int("--split", 0))
    .option("--target <column>", "CSV target column")
    .option("--test-size <n>", "held-out examples for mnist and csv", int("--test-size", 1))
    .option("--ood <source>", "out-of-distribution inputs: adds the AUROC of predictive entropy (classification)")
    .option("--json", "print the metrics as JSON")
    .action(async (opts) => {
      const t0 = performance.now();
      const { meta, metrics, data, sameData } = await runEvaluate({
        posterior: opts.posterior,
        data: opts.data,
        seed: opts.seed,
        split: opts.split,
        target: opts.target,
        testSize: opts.testSize,
        ood: opts.ood,
      });
      const wall = (performance.now() - t0) / 1000;
      if (opts.json) {
        console.log(JSON.stringify({ posterior: opts.posterior, method: meta.method, model: meta.model, data: data.source, testSize: data.test.n, metrics, wallTimeSeconds: wall }));
        return;
      }
      console.log(`${meta.method} posterior (${meta.numSamples} sample${meta.numSamples === 1 ? "" : "s"}, ${meta.model}) on ${data.source}: ${data.test.n} test examples${sameData ? " (the held-out part of the data it was fitted on)" : ""}`);
      console.log(metricsTable(metrics, [["wall time", `${wall.toFixed(1)} s`]]));
    });
  return program;
}

async function main(argv: string[]): Promise<void> {
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
    process.exitCode = 1;
  }
}

await main(process.argv);
