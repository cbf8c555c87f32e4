/**
 * What the CLI says about the methods and their options, generated from the method table (methods.ts)
 * and the option catalogue (core/options.ts): commander flags and help text, the "does not apply"
 * errors, and the README's method and flag tables (`npm run docs` writes them; a test checks that the
 * README matches).
 */
import { gpReferenceTables } from "./gp-flags.js";
import { EVIDENCE_ROUNDS } from "../jobs/fit.js";
import { OPTIONS, type OptionDef } from "../core/options.js";
import type { OptionUse } from "../core/spec.js";
import { METHODS, methodsTaking, type Method } from "../methods.js";
import { DEFAULT_PRIOR_SCALE } from "../models/prior.js";
import { CV_GRID } from "../jobs/select.js";

/** The flag of an option key: `initStd` -> `--init-std`. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Every option some method takes, in catalogue order. */
export function methodOptionDefs(): OptionDef[] {
  return Object.values(OPTIONS).filter((d) => methodsTaking(d.key).length > 0);
}

/** The option use of `key` in `m` (its default and default text). */
function useOf(m: Method, key: string): OptionUse<never, unknown> {
  return (m.options as Record<string, OptionUse<never, unknown>>)[key];
}

/** Per-method defaults of an option, methods with the same default text grouped: `map, ensemble: 20; sgld: ...`. */
export function defaultsText(key: string, sep = "; "): string {
  const groups = new Map<string, string[]>();
  for (const m of methodsTaking(key)) {
    const text = useOf(m, key).text;
    groups.set(text, [...(groups.get(text) ?? []), m.name]);
  }
  return [...groups].map(([text, names]) => `${names.join(", ")}: ${text}`).join(sep);
}

/** Help text of a method option: its meaning and the methods' defaults. */
export function optionHelp(def: OptionDef): string {
  return `${def.meaning} [defaults ${defaultsText(def.key)}]`;
}

/** The message for an option given to a method that does not take it. */
export function notApplicable(key: string, method: string): string {
  const takers = methodsTaking(key).map((m) => m.name);
  return `${flagOf(key)} does not apply to --method ${method}; it applies to ${takers.join(", ")}`;
}

/** A flag of a command that is not a method option: its syntax, default and meaning (for the README). */
export interface JobFlag {
  readonly flag: string;
  readonly default: string;
  readonly meaning: string;
}

/** The flags of `bayesdl fit` besides the method options. */
export const FIT_JOB_FLAGS: readonly JobFlag[] = [
  { flag: "--data <source>", default: "`mnist`", meaning: "data source (see [Data](#data))" },
  { flag: "--model <spec>", default: "`mlp:400,400`", meaning: "`mlp:<widths>[:relu\\|tanh\\|gelu]`, e.g. `mlp:50`; `cnn:<channels>[:<dense widths>]`, e.g. `cnn:32,64` (3x3 conv + ReLU + 2x2 max-pool per block)" },
  { flag: "--method <name>", default: "`map`", meaning: "the inference method (see [Methods](#methods))" },
  { flag: "--batch-size <n>", default: "128", meaning: "minibatch size" },
  { flag: "--prior fan-in\\|iid", default: "`fan-in`", meaning: "prior on the network's parameters: `fan-in` puts N(0, s^2 / fan-in) on weights and N(0, s^2) on biases (see [Priors](#priors)); `iid` puts N(0, s^2) on every parameter" },
  { flag: "--prior-scale <s>", default: `fan-in: ${DEFAULT_PRIOR_SCALE}; iid: 1`, meaning: `the prior's scale s; one number, one per layer (\`1,0.5,0.1\`), or \`cv\`: chosen from ${CV_GRID.join(", ")} by the validation NLL of the method itself on the training part (costs ${CV_GRID.length} x \`--cv-folds\` extra fits; saved as \`prior.selected\`), or \`evidence\`: one scale per layer, by the Laplace evidence of the MAP, over ${EVIDENCE_ROUNDS} rounds of MAP training (20 + 3 x 10 epochs) and KFAC evidence maximisation, for any method (saved as \`prior.selected\`)` },
  { flag: "--cv-folds <k>", default: "1", meaning: "folds of `--prior-scale cv`; 1 is one random 20% of the training part" },
  { flag: "--noise fixed\\|learned\\|heteroscedastic", default: "`learned`", meaning: "regression: observation noise fixed, log sigma learned, or heteroscedastic: sigma(x) from a second network output (see [Regression noise](#regression-noise))" },
  { flag: "--sigma <s>", default: "1", meaning: "regression: (initial) noise std in standardised target units" },
  { flag: "--seed <s>", default: "0", meaning: "seeds every random choice: split, init, shuffles, noise" },
  { flag: "--split <k>", default: "0", meaning: "UCI split index" },
  { flag: "--target <column>", default: "", meaning: "CSV target column (header name or 0-based index)" },
  { flag: "--task regression\\|classification", default: "inferred when unambiguous", meaning: "CSV: what the target is; integer targets with at most 10 distinct values (0/1, digits) need it; the task used is printed" },
  { flag: "--test-size <n>", default: "mnist 2000; idx, csv 20%", meaning: "held-out examples (at least 1: fit always reports held-out metrics)" },
  { flag: "--out <dir>", default: "", meaning: "save the posterior (see [Saved posteriors](#saved-posteriors)), written whole; refused if the directory is not empty" },
  { flag: "--force", default: "", meaning: "replace a non-empty `--out` directory" },
  { flag: "--checkpoint-every <steps>", default: "", meaning: "write the run's full state to `<out>.checkpoint` every this many steps (see [Checkpoints](#checkpoints-and-resume))" },
  { flag: "--from <path>", default: "", meaning: "start from these weights instead of a fresh initialisation or the method's MAP warm start: a directory written by `fit --out` (its first draw, e.g. a MAP fit) or a `.safetensors` file with one tensor per parameter leaf named by its path (`net.layers.0.w`, ...); the model must match" },
  { flag: "--resume <dir>", default: "", meaning: "continue a checkpointed run (its `--out`) where it stopped, bit-identically; takes no other flags but `--quiet`" },
  { flag: "--quiet", default: "", meaning: "no progress output" },
];

const cell = (s: string) => s.replace(/\|/g, "\\|");

/** The README's method table: name, family, what it does, its default run's cost against MAP's, the paper. */
export function methodsTable(): string {
  const rows = METHODS.map((m) => `| \`${m.name}\` | ${m.family} | ${cell(m.summary)} | ${cell(m.cost)} | ${cell(m.paper)} |`);
  return ["| method | family | what | cost (default run, against MAP's) | paper |", "|---|---|---|---|---|", ...rows].join("\n");
}

/** The README's table of `bayesdl fit` flags: the job's, then every method option with its per-method defaults. */
export function fitFlagsTable(): string {
  const job = FIT_JOB_FLAGS.map((f) => `| \`${f.flag}\` | ${f.default} | ${f.meaning} |`);
  const opts = methodOptionDefs().map((d) => {
    const arg = d.choices ? d.choices.join("\\|") : `<${d.arg}>`;
    return `| \`${flagOf(d.key)} ${arg}\` | ${cell(defaultsText(d.key, "<br>"))} | ${cell(d.meaning)} |`;
  });
  return ["| flag | default | meaning |", "|---|---|---|", ...job, ...opts].join("\n");
}

/** Generated README sections, by marker name (`<!-- generated:NAME -->` ... `<!-- /generated:NAME -->`). */
export function generatedSections(): Record<string, string> {
  return { methods: methodsTable(), "fit-flags": fitFlagsTable(), gp: gpReferenceTables() };
}

/** `readme` with every generated section replaced by its current text. @throws when a marker is missing. */
export function regenerateReadme(readme: string): string {
  let out = readme;
  for (const [name, body] of Object.entries(generatedSections())) {
    const start = `<!-- generated:${name} -->`;
    const end = `<!-- /generated:${name} -->`;
    const a = out.indexOf(start);
    const b = out.indexOf(end);
    if (a < 0 || b < a) throw new Error(`README: missing the markers ${start} ... ${end}`);
    out = `${out.slice(0, a + start.length)}\n${body}\n${out.slice(b)}`;
  }
  return out;
}
