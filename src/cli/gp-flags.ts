/**
 * The flags of `bayesdl gp fit` and `bayesdl bench gp` that set GP options: one table, read by the CLI
 * (cli/main.ts adds the parsers) and by the README generator (cli/reference.ts).
 */
import { AUTO_EXACT_MAX, GP_DEFAULTS, GP_SOLVERS, type GpFitOptions } from "../gp/solve.js";

/** One GP option flag. */
export interface GpFlag {
  readonly key: keyof GpFitOptions;
  readonly flag: string;
  readonly arg: string;
  readonly help: string;
}

export const GP_FLAGS: readonly GpFlag[] = [
  { key: "samples", flag: "--samples", arg: "s", help: "posterior function samples (pathwise solvers solve one system per sample besides the mean; exact draws them jointly)" },
  { key: "features", flag: "--features", arg: "l", help: "random Fourier features per prior function sample (cg, sgd, sdd)" },
  { key: "hyperSubset", flag: "--hyper-subset", arg: "m", help: "training points the hyperparameters are fitted on by the exact marginal likelihood (a random subset when the set is larger; 24 m^2 bytes and about m^3 flops per evaluation)" },
  { key: "hyperEvaluations", flag: "--hyper-evaluations", arg: "k", help: "marginal-likelihood evaluations of the hyperparameter fit (L-BFGS)" },
  { key: "noiseValidation", flag: "--noise-validation", arg: "v", help: "when the hyperparameters come from a subset: training rows outside it held out to choose the noise variance by their predictive log-likelihood given their 256 nearest training rows (0: keep the subset's noise)" },
  { key: "steps", flag: "--steps", arg: "t", help: "sgd, sdd: optimiser steps" },
  { key: "batchSize", flag: "--batch-size", arg: "b", help: "sgd, sdd: rows (sgd) or coordinates (sdd) per step" },
  { key: "lr", flag: "--lr", arg: "eta", help: "sgd, sdd: step size in units of 1 / lambda_max(K + sigma^2 I) (sdd) or 1 / lambda_max^2 (sgd), lambda_max estimated on 1,000 training points" },
  { key: "momentum", flag: "--momentum", arg: "rho", help: "sgd, sdd: Nesterov momentum" },
  { key: "averaging", flag: "--averaging", arg: "a", help: "sgd, sdd: geometric iterate averaging, weight a / steps on the newest iterate" },
  { key: "rank", flag: "--rank", arg: "r", help: "cg: rank of the pivoted-Cholesky preconditioner (0: none)" },
  { key: "tolerance", flag: "--tolerance", arg: "tol", help: "cg: stop when every right-hand side's relative residual is below this" },
  { key: "maxIterations", flag: "--max-iterations", arg: "k", help: "cg: iteration cap (CG also stops after 100 iterations without a new lowest residual)" },
];

/** The default of a GP option as help and README state it: the shared one, then any solver's own. */
export function gpDefaultText(key: keyof GpFitOptions): string {
  const own = GP_SOLVERS.filter((s) => s.defaults[key] !== undefined).map((s) => `${s.name} ${String(s.defaults[key])}`);
  return `${String(GP_DEFAULTS[key])}${own.length ? `; ${own.join(", ")}` : ""}`;
}

/** The README's GP tables: the solvers, then the flags with their defaults. */
export function gpReferenceTables(): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const solvers = GP_SOLVERS.map((s) => `| \`${s.name}\` | ${cell(s.summary)} | ${cell(s.paper)} |`);
  const flags = GP_FLAGS.map((f) => `| \`${f.flag} <${f.arg}>\` | ${cell(gpDefaultText(f.key))} | ${cell(f.help)} |`);
  return [
    "| solver | what | paper |",
    "|---|---|---|",
    ...solvers,
    "",
    "| flag | default | meaning |",
    "|---|---|---|",
    `| \`--kernel rbf\\|matern12\\|matern32\\|matern52\` | ${GP_DEFAULTS.kernel} | covariance function with ARD lengthscales |`,
    `| \`--solver auto\\|exact\\|cg\\|sgd\\|sdd\` | auto | how the posterior is computed; auto: exact up to ${AUTO_EXACT_MAX.toLocaleString("en")} training points, sdd above |`,
    ...flags,
  ].join("\n");
}
