#!/usr/bin/env node
/**
 * The `bayesdl` command line: `fit` a posterior, `evaluate` a saved one.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { DATA_SOURCE_FORMS } from "../data/index.js";
import { runEvaluate, runFit } from "../jobs/fit.js";
import { METHODS, METHOD_NAMES, type MethodEntry, type MethodName } from "../jobs/methods.js";
import { VERSION } from "../version.js";
import { metricsTable } from "./format.js";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runUciBench, uciDatasets, uciTable, writeUciResults } from "../bench/uci.js";
import { UCI_PUBLISHED } from "../bench/published.js";
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

function priorScales(v: string): number[] {
  const parts = v.split(",").map((p) => Number(p));
  if (parts.some((p) => !Number.isFinite(p) || p <= 0)) throw new InvalidArgumentError(`--prior-scale expects positive numbers separated by commas, got '${v}'.`);
  return parts;
}

/** A flag combination that parses but makes no sense; reported as `bayesdl: <message>`, exit code 2. */
class UsageError extends Error {}

function nonNegative(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} expects a number >= 0, got '${v}'.`);
    return n;
  };
}

function fraction(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !(n > 0 && n < 1)) throw new InvalidArgumentError(`${flag} expects a number strictly between 0 and 1, got '${v}'.`);
    return n;
  };
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

  program
    .command("fit")
    .description("fit a posterior (or a baseline) to a data set, report held-out metrics, optionally save it")
    .addOption(new Option("--data <source>", dataHelp).default("mnist"))
    .addOption(new Option("--model <spec>", "network spec: mlp:<widths>[:relu|tanh|gelu] or cnn:<channels>[:<dense widths>]").default("mlp:400,400"))
    .addOption(new Option("--method <name>", `inference method: ${METHOD_NAMES.map((m) => `${m} (${METHODS[m].summary})`).join("; ")}`).choices(METHOD_NAMES).default("map"))
    .option("--epochs <n>", "optimisers: passes over the training data (default 20)", int("--epochs", 0))
    .option("--batch-size <n>", "minibatch size (default 128)", int("--batch-size", 1))
    .option("--lr <rate>", "optimisers: Adam learning rate (default 0.001); samplers: step size eps (sgld, psgld) or eta (sghmc) on the N-scaled log density (default: the method's, divided by N)", positive("--lr"))
    .option("--members <m>", "ensemble: members (default 5)", int("--members", 1))
    .option("--chains <k>", "samplers: chains run together (default 1)", int("--chains", 1))
    .option("--samples <s>", "samplers: samples kept per chain (default 20; cyclical 12)", int("--samples", 1))
    .option("--burnin <steps>", "samplers: steps before the first sample (default 10 epochs of steps; cyclical: the rest of a 30-epoch budget)", int("--burnin", 0))
    .option("--thin <steps>", "samplers: steps between samples (default 1 epoch of steps; cyclical half an epoch)", int("--thin", 1))
    .option("--cycles <c>", "cyclical samplers: number of cycles (default 4)", int("--cycles", 1))
    .option("--explore <beta>", "cyclical samplers: exploration fraction of each cycle, no noise (default 0.8)", fraction("--explore"))
    .option("--friction <alpha>", "sghmc, csghmc: friction alpha = 1 - momentum (default 0.05)", fraction("--friction"))
    .addOption(new Option("--schedule <kind>", "sgld, psgld, sghmc: step sizes constant, or polynomial decay eps (1 + t/b)^-0.55 with b = a tenth of the run (default constant)").choices(["constant", "polynomial"]))
    .option("--prior-scale <s>", "standard deviation of the Gaussian prior on weights: one number, or one per layer separated by commas (e.g. 1,0.5,0.1)", priorScales, [1])
    .option("--temperature <t>", "samplers: temperature of the injected noise (1: the posterior; < 1: cold; 0: no noise); variational methods: the tempered target (KL weight T)", nonNegative("--temperature"), 1)
    .addOption(new Option("--noise <kind>", "regression: observation noise fixed or learned").choices(["fixed", "learned"]).default("learned"))
    .option("--sigma <s>", "regression: (initial) noise standard deviation in standardised target units", positive("--sigma"), 1)
    .option("--seed <s>", "seed of every random choice (split, init, shuffles, noise)", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--split <k>", "UCI split index", int("--split", 0))
    .option("--target <column>", "CSV target column (name or 0-based index)")
    .option("--test-size <n>", "held-out examples for mnist (default 2000), idx and csv (default 20%)", int("--test-size", 1))
    .option("--mc <k>", "variational: Monte Carlo draws per step (bbb, bbb-lrt, flipout, fullrank, flow 1; alpha 5; proximal-svi 2, antithetic; gsm, bam: batch of 8 scores)", int("--mc", 1))
    .option("--init-std <s>", "variational: initial standard deviation of q around the initial weights (default 0.01; proximal-svi 0.001)", positive("--init-std"))
    .option("--alpha <a>", "alpha: the divergence's alpha (default 0.5; bb-alpha 0 = the ELBO, vr 1 = the ELBO)", (v: string) => {
      const n = Number(v);
      if (v.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`--alpha expects a number, got '${v}'.`);
      return n;
    })
    .addOption(new Option("--objective <kind>", "alpha: black-box alpha (Li & Gal 2017 form) or the Renyi bound (default bb-alpha)").choices(["bb-alpha", "vr"]))
    .option("--lambda <l>", "proximal-svi: proximal strength (default 50); bam: constant regulariser (default: the decay B d / (t + 1))", positive("--lambda"))
    .option("--inner-steps <k>", "proximal-svi: inner Newton steps per outer step (default 2)", int("--inner-steps", 1))
    .option("--flow-layers <k>", "flow: RealNVP coupling layers (default 4)", int("--flow-layers", 1))
    .option("--out <dir>", "save the posterior to this directory (posterior.json + samples.safetensors)")
    .option("--quiet", "no progress output")
    .action(async (opts) => {
      const method = opts.method as MethodName;
      const entry: MethodEntry = METHODS[method];
      const only = (flags: string[], ok: boolean, what: string) => {
        for (const f of flags) {
          const prop = f.replace(/^--/, "").replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
          if (opts[prop] !== undefined && !ok) throw new UsageError(`${f} applies to ${what} only (got --method ${method})`);
        }
      };
      only(["--members"], method === "ensemble", "--method ensemble");
      only(["--chains", "--burnin", "--thin"], entry.kind === "sampler", "the samplers (sgld, psgld, sghmc, csgld, csghmc)");
      only(["--samples"], entry.kind !== "optimiser", "the samplers and the variational methods");
      only(["--mc", "--init-std"], entry.kind === "variational", "the variational methods");
      only(["--alpha", "--objective"], method === "alpha", "--method alpha");
      only(["--lambda"], method === "proximal-svi" || method === "bam", "proximal-svi and bam");
      only(["--inner-steps"], method === "proximal-svi", "--method proximal-svi");
      only(["--flow-layers"], method === "flow", "--method flow");
      only(["--cycles", "--explore"], entry.cyclical === true, "the cyclical samplers (csgld, csghmc)");
      only(["--friction"], method === "sghmc" || method === "csghmc", "sghmc and csghmc");
      only(["--schedule"], entry.kind === "sampler" && !entry.cyclical, "sgld, psgld and sghmc (the cyclical samplers have their own schedule)");
      only(["--epochs"], entry.kind !== "sampler", "map, ensemble and the variational methods (samplers count steps: --burnin, --samples, --thin)");
      if (method === "alpha" && opts.temperature !== 1) throw new UsageError("--temperature does not apply to --method alpha (its divergence parameter --alpha plays that part)");
      if (entry.kind === "variational" && !(opts.temperature > 0)) throw new UsageError(`--temperature must be > 0 for ${method} (it tempers the likelihood and prior of the target q approximates)`);
      if (entry.kind === "optimiser" && opts.temperature !== 1) {
        throw new UsageError(`--temperature applies to the samplers only: it does not change where ${method} converges`);
      }
      const progress = progressReporter(`fit ${method}`, Boolean(opts.quiet));
      const result = await runFit({
        data: opts.data,
        model: opts.model,
        method,
        seed: opts.seed,
        epochs: opts.epochs,
        batchSize: opts.batchSize,
        learningRate: opts.lr,
        members: opts.members,
        chains: opts.chains,
        samples: opts.samples,
        burnin: opts.burnin,
        thin: opts.thin,
        cycles: opts.cycles,
        explore: opts.explore,
        friction: opts.friction,
        schedule: opts.schedule,
        mc: opts.mc,
        initStd: opts.initStd,
        alpha: opts.alpha,
        objective: opts.objective,
        lambda: opts.lambda,
        innerSteps: opts.innerSteps,
        flowLayers: opts.flowLayers,
        priorScale: opts.priorScale[0],
        priorPerLayer: opts.priorScale.length > 1 ? opts.priorScale : undefined,
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
    .option("--samples <s>", "variational posteriors: draw this many fresh samples from q (keyed by --seed) instead of using the saved draws", int("--samples", 1))
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
  const bench = program.command("bench").description("benchmarks against published results");
  bench
    .command("uci")
    .description("the standard UCI regression protocol: every split, 50 hidden units (100 for protein); writes a markdown table beside the published figures and a JSON file of every split")
    .option("--dataset <names>", `data set folder names, comma separated (${uciNames()}), or all`, "all")
    .addOption(new Option("--method <name>", "inference method").choices(METHOD_NAMES).default("sghmc"))
    .option("--splits <range>", "split indices, e.g. 0-19 or 0,3,5 (default: every split of each set)", splitRange)
    .option("--data-dir <dir>", "folder holding the UCI data sets", defaultUciDir())
    .option("--out <dir>", "where to write uci-<method>.md and .json", "runs/bench")
    .option("--seed <s>", "base seed (split k uses seed + k)", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--lr <rate>", "override the method's step size / learning rate", positive("--lr"))
    .option("--epochs <n>", "optimisers and variational methods: override the 40 epochs", int("--epochs", 0))
    .option("--chains <k>", "samplers: override the 4 chains", int("--chains", 1))
    .option("--samples <s>", "samplers: override the 50 samples per chain (variational: the 50 draws from q)", int("--samples", 1))
    .option("--burnin <steps>", "samplers: override the burn-in, max(2000, 20 epochs) steps", int("--burnin", 0))
    .option("--thin <steps>", "samplers: override the thinning, max(20, half an epoch) steps", int("--thin", 1))
    .option("--friction <alpha>", "sghmc, csghmc: friction", fraction("--friction"))
    .option("--batch-size <n>", "override the minibatch size of 32", int("--batch-size", 1))
    .option("--temperature <t>", "samplers: temperature (default 1)", nonNegative("--temperature"))
    .option("--quiet", "no per-split lines")
    .action(async (opts) => {
      const t0 = performance.now();
      const datasets = opts.dataset === "all" ? uciDatasets(opts.dataDir) : String(opts.dataset).split(",");
      const overrides = Object.fromEntries(
        Object.entries({ learningRate: opts.lr, epochs: opts.epochs, chains: opts.chains, samples: opts.samples, burnin: opts.burnin, thin: opts.thin, friction: opts.friction, batchSize: opts.batchSize, temperature: opts.temperature }).filter(([, v]) => v !== undefined),
      );
      const results = await runUciBench({
        dataDir: opts.dataDir,
        datasets,
        method: opts.method,
        splits: opts.splits,
        seed: opts.seed,
        overrides,
        onSplit: (r, done, total) => {
          if (!opts.quiet) console.error(`[${done}/${total}] ${r.dataset} split ${r.split}: RMSE ${r.rmse.toFixed(4)} LL ${r.ll.toFixed(3)} (${r.wallTimeSeconds.toFixed(1)} s)`);
        },
      });
      const wall = (performance.now() - t0) / 1000;
      const files = await writeUciResults(opts.out, opts.method, results, { overrides, seed: opts.seed, wallTimeSeconds: wall, createdAt: new Date().toISOString() });
      console.log(uciTable(results, opts.method));
      console.log(`\ntotal wall time ${wall.toFixed(0)} s; wrote ${files.join(", ")}`);
    });
  const list = (v: string) => v.split(",").map((x) => x.trim()).filter((x) => x !== "");
  /** `bench vi-gaussian` and `bench vi-mixture`: the same flags over a target list and a method list. */
  type TargetBench = (out: string, o: { budget: number; seed: number; targets?: string[]; methods?: never; onRun: (t: string, m: string, last: { errors: Record<string, number>; seconds: number }) => void }) => Promise<{ table: string; files: string[] }>;
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
          methods: methods as never,
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
      return { run: m.viGaussianBench as unknown as TargetBench, methods: m.VI_GAUSSIAN_METHODS };
    },
    "proximal-svi, advi, gsm, bam",
  );
  targetBench(
    "vi-mixture",
    "mixture and flow VI (ADVI) and proximal score VI with a flow on Gaussian-mixture targets: KL estimates against evaluations",
    "k2-d2, k5-d2, k2-d30, k5-d30",
    async () => {
      const m = await import("../bench/vi-mixture.js");
      return { run: m.viMixtureBench as unknown as TargetBench, methods: m.VI_MIXTURE_METHODS };
    },
    "advi-mixture, advi-realnvp, proximal-realnvp",
  );
  bench
    .command("vi-mnist")
    .description("variational methods on the embedded MNIST digits with held-out learning curves (error, NLL, ECE against steps and wall time)")
    .option("--methods <names>", "comma-separated variational methods", "bbb,proximal-svi")
    .option("--epochs <n>", "passes over the 8,000 training digits", int("--epochs", 1), 20)
    .option("--every <steps>", "steps between curve points", int("--every", 1), 125)
    .option("--eval-samples <s>", "draws from q per curve point", int("--eval-samples", 1), 10)
    .option("--model <spec>", "network", "mlp:400,400")
    .option("--temperature <t>", "tempered target for every method (KL weight T)", positive("--temperature"), 1)
    .option("--seed <s>", "split and run seed", int("--seed", 0, 2 ** 32 - 1), 0)
    .option("--out <dir>", "where to write vi-mnist.md, .json and .svg", "runs/bench")
    .action(async (opts) => {
      const { viMnistBench } = await import("../bench/vi-mnist.js");
      const methods = list(opts.methods);
      for (const m of methods) if (!METHOD_NAMES.includes(m as MethodName) || METHODS[m as MethodName].kind !== "variational") throw new UsageError(`--methods: '${m}' is not a variational method`);
      const overrides = Object.fromEntries(methods.map((m) => [m, { temperature: opts.temperature }]));
      const { table, files } = await viMnistBench(opts.out, {
        methods: methods as MethodName[],
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
