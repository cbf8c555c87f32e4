/**
 * The catalogue of method options: every option any method takes, each with one meaning, one
 * validation and one placeholder. Method specs (core/spec.ts) choose from it and give their defaults;
 * the CLI turns `key` into `--kebab-case` and the meaning into help text.
 */

/** Values options take. */
export type OptionValue = number | string;

/** A bad option value or an option that does not apply; `key` names the option, `problem` says what is wrong. */
export class OptionError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`option '${key}' ${problem}`);
    this.name = "OptionError";
  }
}

/** One option. */
export interface OptionDef<T extends OptionValue = OptionValue> {
  /** camelCase name (`initStd`); the CLI flag is its kebab-case form (`--init-std`). */
  readonly key: string;
  /** Placeholder of its value in help text, e.g. `rate`. */
  readonly arg: string;
  /** What it means, for every method that takes it. */
  readonly meaning: string;
  /** Allowed values of a choice option. */
  readonly choices?: readonly string[];
  /** Parse and validate a command-line value. @throws OptionError */
  parse(text: string): T;
  /** Validate a programmatic value. @throws OptionError */
  check(v: unknown): void;
}

function numberOption(key: string, arg: string, meaning: string, expects: string, ok: (v: number) => boolean, integer = false): OptionDef<number> {
  const check = (v: unknown): void => {
    if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || !ok(v)) throw new OptionError(key, `expects ${expects}, got ${JSON.stringify(v)}`);
  };
  return {
    key,
    arg,
    meaning,
    parse(text) {
      const v = Number(text);
      if (text.trim() === "" || (integer && !/^\s*-?\d+\s*$/.test(text))) throw new OptionError(key, `expects ${expects}, got '${text}'`);
      try {
        check(v);
      } catch {
        throw new OptionError(key, `expects ${expects}, got '${text}'`);
      }
      return v;
    },
    check,
  };
}

const int = (key: string, arg: string, meaning: string, min: number) => numberOption(key, arg, meaning, `an integer >= ${min}`, (v) => v >= min, true);
const positive = (key: string, arg: string, meaning: string) => numberOption(key, arg, meaning, "a positive number", (v) => v > 0);
const fraction = (key: string, arg: string, meaning: string) => numberOption(key, arg, meaning, "a number strictly between 0 and 1", (v) => v > 0 && v < 1);

function choice<C extends string>(key: string, meaning: string, choices: readonly C[]): OptionDef<C> {
  const check = (v: unknown): void => {
    if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) throw new OptionError(key, `expects one of ${choices.join(", ")}, got ${JSON.stringify(v)}`);
  };
  return {
    key,
    arg: choices.join("|"),
    meaning,
    choices,
    parse(text) {
      check(text);
      return text as C;
    },
    check,
  };
}

/** A free-text option: the value is kept as given after `validate` accepts it (it throws OptionError otherwise). */
function text(key: string, arg: string, meaning: string, expects: string, validate: (v: string) => void): OptionDef<string> {
  const check = (v: unknown): void => {
    if (typeof v !== "string" || v.trim() === "") throw new OptionError(key, `expects ${expects}, got ${JSON.stringify(v)}`);
    validate(v);
  };
  return {
    key,
    arg,
    meaning,
    parse(t) {
      check(t);
      return t;
    },
    check,
  };
}

/** Every method option (see the module comment). */
export const OPTIONS = {
  epochs: int("epochs", "n", "passes over the training data", 0),
  lr: positive(
    "lr",
    "rate",
    "step size of the method's update: the Adam learning rate of optimisers and gradient-based VI; the step eps (Langevin samplers) or eta (momentum samplers) on the tempered log density; the damping of proximal-svi's Newton steps",
  ),
  members: int("members", "m", "ensemble members, trained together from independent initialisations", 1),
  chains: int("chains", "k", "chains run together, from independent initialisations", 1),
  samples: int("samples", "s", "posterior draws kept: per chain for samplers, from q for variational methods; Laplace: Monte Carlo draws of its predictive (the mc link and the aleatoric entropy; weight draws with --pred nn); sampled Laplace: the samples solved for together", 1),
  burnin: int("burnin", "steps", "steps before the first sample is kept", 0),
  thin: int("thin", "steps", "steps between kept samples", 1),
  schedule: choice(
    "schedule",
    "step sizes constant, decaying as eps (1 + t/b)^-0.55 with b a tenth of the run, or dropping to eps r (--drop-factor): samplers when the burn-in ends, map and ensemble for the last quarter of the run",
    ["constant", "polynomial", "drop"] as const,
  ),
  dropFactor: numberOption("dropFactor", "r", "with --schedule drop: the step after the drop is r times the step before it", "a number in (0, 1]", (v) => v > 0 && v <= 1),
  cycles: int("cycles", "c", "cycles of the cyclical step size over the run", 1),
  explore: fraction("explore", "beta", "fraction of each cycle spent exploring: no noise and no samples there"),
  friction: fraction("friction", "alpha", "friction alpha of the momentum samplers: 1 - momentum, and the injected noise's scale 2 alpha eta"),
  temperature: positive("temperature", "t", "temperature T: the target is p(theta | D)^(1/T), T < 1 a cold posterior"),
  mc: int("mc", "k", "Monte Carlo draws from q per step", 1),
  initStd: positive("initStd", "s", "initial standard deviation of q around the initial weights"),
  alpha: numberOption("alpha", "a", "alpha of the alpha-divergence (bb-alpha: 0 is the ELBO; vr: 1 is the ELBO)", "a number", () => true),
  objective: choice("objective", "the alpha objective: black-box alpha (Li & Gal 2017 form) or the Renyi bound", ["bb-alpha", "vr"] as const),
  lambda: positive("lambda", "l", "proximal strength: weight of KL(q_t || q) against the score-matching term; larger means smaller steps"),
  innerSteps: int("innerSteps", "k", "inner optimisation steps per outer step", 1),
  flowLayers: int("flowLayers", "k", "coupling layers of the flow", 1),
  hessian: choice("hessian", "structure of the Laplace posterior precision: diagonal, Kronecker-factored per layer (KFAC), the full matrix (small models), or the top --rank eigenpairs of the prior-whitened curvature plus the rest of its diagonal (one sketch pass of curvature-vector products)", ["diag", "kron", "full", "lowrank"] as const),
  rank: int("rank", "k", "eigenpairs of the curvature kept by --hessian lowrank", 1),
  subset: text("subset", "which", "the weights the Laplace approximation covers (the rest stay at the mode): all, last-layer, or the parameter paths a regular expression matches (e.g. 'layers\\.2\\.')", "all, last-layer or a regular expression", (v) => {
    if (v === "all" || v === "last-layer") return;
    try {
      new RegExp(v);
    } catch (e) {
      throw new OptionError("subset", `expects all, last-layer or a regular expression, got '${v}' (${(e as Error).message})`);
    }
  }),
  curvature: choice("curvature", "the curvature of the negative log-likelihood: generalised Gauss-Newton, its Monte Carlo estimate (the Fisher with one label drawn per example: one backward pass instead of one per class), empirical Fisher, or the exact Hessian (full structure only)", ["ggn", "mc", "ef", "hessian"] as const),
  pred: choice("pred", "the Laplace predictive: the linearised network (glm) or the network at weight draws (nn)", ["glm", "nn"] as const),
  link: choice("link", "how the linearised classifier's Gaussian logits become probabilities: probit approximation, Laplace bridge (Dirichlet), or Monte Carlo", ["probit", "bridge", "mc"] as const),
  priorOpt: choice(
    "priorOpt",
    "how the Laplace prior precision (at --prior-structure's granularity) and a learned regression noise are tuned: online (rounds of MAP training and evidence maximisation, then post-hoc), marglik (maximise the Laplace evidence post hoc at the given mode), grid (hold out 20% of the training data, pick the prior precision multiplier, 1e-4 to 1e4, with the lowest validation NLL of the linearised predictive, then refit on all of it with that multiplier), or none",
    ["online", "marglik", "grid", "none"] as const,
  ),
  priorStructure: choice(
    "priorStructure",
    "the granularity of the prior precision the evidence tunes: one multiplier of the model prior for every weight (scalar), one per layer, or one precision per weight (diagonal: laplace with --hessian diag, in closed form, or full, by a fixed-point iteration on the exact log determinant); laplace tunes it post hoc with --prior-opt marglik or online (whose rounds of MAP training stay per layer), sampled-laplace by EM (scalar or layer); laplace keeps each precision within 1e-8 to 1e8 times the model prior's",
    ["scalar", "layer", "diagonal"] as const,
  ),
  priorMultiplier: positive("priorMultiplier", "m", "multiplies the Laplace prior precision after it is tuned (or the model prior's, with --prior-opt none); --prior-opt grid chooses it on held-out training data"),
  emSteps: int("emSteps", "e", "sample-based EM steps for the prior precision per layer and a learned regression noise (0 keeps both)", 0),
  featureNorm: choice(
    "featureNorm",
    "the prior sampled Laplace's EM tunes: none (the model prior's precision per weight, times a multiplier per layer) or g-prior (each weight's precision proportional to its feature's curvature over the training data, diag(sum_i J_i^T H_i J_i), so that rescaling a feature does not change the posterior or the evidence; times a multiplier per layer)",
    ["none", "g-prior"] as const,
  ),
  solveEpochs: int("solveEpochs", "e", "epochs of each sample-then-optimise solve (sampled Laplace: one solve per EM step, and a final one)", 1),
} as const;
