/**
 * Pieces shared by the SG-MCMC samplers: their options, the injected noise, the run layout (chains,
 * burn-in, thinning, the cyclical collection rule) and the option defaults of their specs.
 *
 * Temperature: a sampler steps on the tempered log density log p_T = log p / T it is built with (the
 * one definition of models/model.ts), so its noise is never rescaled: at stationarity it samples
 * p_T ∝ p^(1/T). Default T: 1 for regression, {@link COLD_CLASSIFICATION_T} for classification
 * (chosen on training digits). Default steps are c / N, not scaled by T: the drift on log p then
 * grows as 1/T, which at a cold T is what reaches the data's fit within the default budget (a
 * T-scaled step crawls at T = 0.02; docs/priors.md). For classification the non-cyclical samplers
 * keep that step for the burn-in and take their samples at a tenth of it ({@link DEFAULT_DROP_FACTOR}).
 */
import { np, type JArray, type Key } from "../core/engine.js";
import { normalTree } from "../core/normal.js";
import { OPTIONS } from "../core/options.js";
import { asSchedule, cyclicalCosine, cyclicalGate, gateOpen, namedSchedule, type Schedule } from "../core/schedule.js";
import { use, type DefaultContext, type OptionUses, type RunPlan } from "../core/spec.js";
import { mapTree } from "../core/tree.js";

/** Options of every sampler's `create`. */
export interface SamplerOptions {
  /** Step size eps_t: a number (constant) or a schedule. */
  readonly stepSize: number | Schedule;
  /** Noise gate n_t in [0, 1] (a cyclical schedule's exploration stages are 0); default 1 at every step. */
  readonly noiseGate?: Schedule;
  /** N, used only to report the objective per training point. */
  readonly dataSize: number;
}

/** Per-step information: the objective -log p_T / N at the step's parameters, and the step size used. */
export type SamplerInfo = { loss: JArray; lr: JArray };

/** The step-size schedule and the optional gate of {@link SamplerOptions}, checked. */
export function samplerSchedules(who: string, o: SamplerOptions): { stepSize: Schedule; gate: Schedule | undefined } {
  if (!(o.dataSize > 0)) throw new RangeError(`${who}: dataSize must be > 0, got ${o.dataSize}`);
  if (typeof o.stepSize === "number" && !(o.stepSize > 0)) throw new RangeError(`${who}: stepSize must be > 0, got ${o.stepSize}`);
  return { stepSize: asSchedule(o.stepSize, `${who}: stepSize`), gate: o.noiseGate };
}

/**
 * Add the injected noise of a step: `x + sqrt(variance) n_t xi` leafwise, xi ~ N(0, I) and n_t the
 * gate at step t (none: 1). Consumes `k`, `x`, `variance` (a scalar, or a tree like `x` for
 * per-coordinate variances) and `t`.
 */
export function addNoise<T>(k: Key, x: T, variance: JArray | T, gate: Schedule | undefined, t: JArray): T {
  const xi = normalTree(k, x);
  const on = gate ? gate(t) : (t.dispose(), undefined);
  if (isArrayLike(variance)) {
    const scale = on ? np.sqrt(variance).mul(on) : np.sqrt(variance);
    const out = mapTree((a, z) => a.add(z.mul(scale.ref)), x, xi);
    scale.dispose();
    return out;
  }
  const out = mapTree((a, z, v) => a.add(on ? z.mul(np.sqrt(v)).mul(on.ref) : z.mul(np.sqrt(v))), x, xi, variance);
  on?.dispose();
  return out;
}

function isArrayLike(v: unknown): v is JArray {
  return !Array.isArray(v) && typeof v === "object" && v !== null && "shape" in v;
}

/**
 * The samplers' default temperature for classification. On 6,000 / 2,000 of the training digits the T = 1
 * predictive of an MLP's fan-in posterior was worse than MAP's for every step tried, and T = 0.02 gave
 * the best validation NLL (docs/priors.md); regression keeps T = 1 (UCI).
 */
export const COLD_CLASSIFICATION_T = 0.02;

/**
 * A default step c / N with c depending on the task: `classification` at the cold default T, `regression`
 * at T = 1 (the UCI tuning). Not scaled by T: at a cold T a T-scaled step barely moves (docs/priors.md).
 */
export function taskStep(classification: number, regression: number): [(c: DefaultContext) => number, string] {
  return [(c) => (c.classification ? classification : regression) / c.n, `classification ${classification} / N; regression ${regression} / N`];
}

/**
 * Chains a sampler runs by default, for both tasks: two, the fewest from which R-hat can say whether
 * chains mixed (one chain's R-hat only compares its halves). For classification a second chain also
 * lowered the validation NLL on 6,000 / 2,000 of the training digits in 9 of 10 runs (sghmc, sgnht,
 * psgld and csghmc on two seeds, csgld on one; sgld's one run was worse; docs/priors.md): the union of
 * two chains predicts like a small ensemble. The UCI protocol runs 4.
 */
export const DEFAULT_CHAINS = 2;

/** Options every sampler spec takes. */
export interface SamplerRunOptions {
  temperature: number;
  chains: number;
  samples: number;
  burnin: number;
  thin: number;
}

/**
 * The run options of the constant-or-decaying samplers: the task's T, {@link DEFAULT_CHAINS} chains, 20
 * samples each one epoch (at least 20 steps) apart after a burn-in of 10 epochs (at least 1,000 steps).
 */
export function samplerRunOptions(): OptionUses<SamplerRunOptions> {
  return {
    temperature: use(OPTIONS.temperature, (c: DefaultContext) => (c.classification ? COLD_CLASSIFICATION_T : 1), `classification ${COLD_CLASSIFICATION_T} (a cold posterior, chosen on training digits: docs/priors.md); regression 1`),
    chains: use(OPTIONS.chains, DEFAULT_CHAINS),
    samples: use(OPTIONS.samples, 20),
    burnin: use(OPTIONS.burnin, (c: DefaultContext) => Math.max(10 * c.stepsPerEpoch, 1000), "10 epochs (>= 1,000 steps)"),
    thin: use(OPTIONS.thin, (c: DefaultContext) => Math.max(c.stepsPerEpoch, 20), "1 epoch (>= 20 steps)"),
  };
}

/** The cost (core/spec.ts `cost`) of a {@link samplerRunOptions} run on embedded MNIST: 2,240 steps per chain against MAP's 1,240. */
export const SAMPLER_RUN_COST = "3.6x MAP (2 chains, each a burn-in of 10 epochs, at least 1,000 steps, then 20 epochs of samples: 1.8x MAP per chain)";

/** Options of the samplers with a constant, polynomially decaying or dropping step size. */
export interface StepSamplerOptions extends SamplerRunOptions {
  lr: number;
  schedule: "constant" | "polynomial" | "drop";
  dropFactor: number;
}

/**
 * The step's factor after burn-in with `--schedule drop`, the classification default: a tenth. At the
 * burn-in's step the minibatch gradient noise, not the injected noise, sets the spread of the samples
 * (at T = 0.02 it is the larger by far), and their predictive was under-confident (ECE 0.03 on
 * training digits); a tenth of the step while sampling cut the ECE to 0.009 at almost the same NLL
 * (docs/priors.md).
 */
export const DEFAULT_DROP_FACTOR = 0.1;

/**
 * The options of a sampler with a constant or decaying step size: the run's, the step size (default
 * `lr(c, o)`, described by `text`) and its schedule (classification: the step drops to a tenth when the
 * burn-in ends; regression: constant).
 */
export function stepSamplerOptions(lr: (c: DefaultContext, o: Readonly<Partial<SamplerRunOptions>>) => number, text: string): OptionUses<StepSamplerOptions> {
  return {
    ...samplerRunOptions(),
    lr: use(OPTIONS.lr, lr, text),
    schedule: use(OPTIONS.schedule, (c: DefaultContext) => (c.classification ? "drop" : "constant"), "classification drop (chosen on training digits: docs/priors.md); regression constant"),
    dropFactor: use(OPTIONS.dropFactor, DEFAULT_DROP_FACTOR),
  };
}

/** The cost of a {@link cyclicalRunOptions} run on embedded MNIST: 2,000 steps per chain against MAP's 1,240. */
export const CYCLICAL_RUN_COST = "3.2x MAP (2 chains of 30 epochs, at least 2,000 steps each: 1.6x MAP per chain)";

/** Options of the cyclical samplers' runs. */
export interface CyclicalRunOptions extends SamplerRunOptions {
  cycles: number;
  explore: number;
}

/**
 * The run options of the cyclical samplers ({@link DEFAULT_CHAINS} chains): a budget of 30 epochs (at least 2,000 steps) in 4 cycles,
 * exploring for the first 80% of each, 12 samples taken at the ends of the cycles at most half an
 * epoch apart and all inside the sampling stages; the burn-in is what the budget leaves.
 */
export function cyclicalRunOptions(): OptionUses<CyclicalRunOptions> {
  const budget = (c: DefaultContext) => Math.max(30 * c.stepsPerEpoch, 2000);
  return {
    temperature: use(OPTIONS.temperature, (c: DefaultContext) => (c.classification ? COLD_CLASSIFICATION_T : 1), `classification ${COLD_CLASSIFICATION_T} (a cold posterior, chosen on training digits: docs/priors.md); regression 1`),
    chains: use(OPTIONS.chains, DEFAULT_CHAINS),
    samples: use(OPTIONS.samples, 12),
    cycles: use(OPTIONS.cycles, 4),
    explore: use(OPTIONS.explore, 0.8),
    thin: use(
      OPTIONS.thin,
      (c: DefaultContext, o: Readonly<Partial<CyclicalRunOptions>>) => {
        const len = Math.ceil(budget(c) / o.cycles!);
        const perCycle = Math.ceil(o.samples! / o.cycles!);
        return Math.max(1, Math.min(Math.floor(c.stepsPerEpoch / 2), Math.floor(((1 - o.explore!) * len) / perCycle)));
      },
      "<= 1/2 epoch, inside the sampling stages",
    ),
    burnin: use(OPTIONS.burnin, (c: DefaultContext, o: Readonly<Partial<CyclicalRunOptions>>) => Math.max(0, budget(c) - o.samples! * o.thin!), "the rest of a 30-epoch (>= 2,000-step) budget"),
  };
}

/** Steps per chain of a sampler run: burn-in + samples x thin. */
export function totalSteps(o: SamplerRunOptions): number {
  return o.burnin + o.samples * o.thin;
}

/**
 * The step size of the non-cyclical samplers: constant, polynomially decaying (b = a tenth of the run),
 * or dropping to `dropFactor` times itself after the burn-in.
 */
export function stepSchedule(o: StepSamplerOptions): number | Schedule {
  return namedSchedule(o.schedule, o.lr, totalSteps(o), o.burnin, o.dropFactor);
}

/** The cyclical step size and noise gate of a cyclical sampler run (Zhang et al. 2020). */
export function cyclicalSchedules(o: CyclicalRunOptions & { lr: number }): { stepSize: Schedule; noiseGate: Schedule } {
  const total = totalSteps(o);
  return { stepSize: cyclicalCosine(o.lr, o.cycles, total), noiseGate: cyclicalGate(o.cycles, total, o.explore) };
}

/**
 * The steps (1-based counts of completed steps) after which a sample is collected, for a budget of
 * T = burnin + samples x thin steps per chain:
 * - without a gate: after `burnin` steps, every `thin`-th step;
 * - with a cyclical gate (C cycles of L = ceil(T / C) steps): ceil(S / C) samples at the end of every
 *   cycle, `thin` steps apart, all of which must fall in the cycle's sampling stage.
 */
export function collectionSteps(o: SamplerRunOptions, gate?: Schedule): number[] {
  const { burnin, samples, thin } = o;
  for (const [k, v, min] of [["burnin", burnin, 0], ["samples", samples, 1], ["thin", thin, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${k} must be an integer >= ${min}, got ${v}`);
  }
  const total = totalSteps(o);
  if (!gate || gate.spec.kind !== "cyclicalGate") return Array.from({ length: samples }, (_, i) => burnin + (i + 1) * thin);
  const c = gate.spec.cycles;
  if (gate.spec.totalSteps !== total) throw new Error(`cyclical schedule built for ${gate.spec.totalSteps} steps, but the run has ${total}`);
  const perCycle = Math.ceil(samples / c);
  const len = Math.ceil(total / c);
  const out: number[] = [];
  for (let cyc = 0; cyc < c && out.length < samples; cyc++) {
    const end = Math.min((cyc + 1) * len, total);
    for (let j = perCycle - 1; j >= 0 && out.length < samples; j--) {
      const t = end - j * thin; // completed steps; the step index just taken is t - 1
      const g = gateOpen(gate, t - 1);
      if (!g.open || g.cycle !== cyc) {
        throw new RangeError(
          `cyclical collection: ${perCycle} samples per cycle every ${thin} steps do not fit in the sampling stage of cycles of ${len} steps ` +
            `(exploration fraction ${gate.spec.explore}); lower thin or samples, or lengthen the run with burnin`,
        );
      }
      out.push(t);
    }
  }
  return out.sort((a, b) => a - b);
}

/** The run of a sampler: `chains` chains for the whole budget, samples collected along the way. */
export function samplerPlan(o: SamplerRunOptions, gate?: Schedule): RunPlan {
  // A gated (cyclical) run's exploring phases, large steps without noise, send chains far above the
  // others by design: there a runaway check restarted csgld's chains on a Gaussian target (0.34 sd off).
  return { collect: "trajectory", steps: totalSteps(o), collectAt: collectionSteps(o, gate), copies: o.chains, runawayCheck: gate === undefined };
}
