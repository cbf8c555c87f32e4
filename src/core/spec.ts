/**
 * Method specs: each method file describes itself once (name, family, paper, the options it takes with
 * their defaults, how a run is laid out, and how to build the method), and the CLI, its help, the
 * "option does not apply" errors, the options recorded with a saved posterior, the bench method lists
 * and the README's tables are all derived from these descriptions.
 *
 * Options are drawn from one catalogue (core/options.ts), so an option has one meaning across methods;
 * a spec only says which options it takes and their defaults.
 */
import type { JArray } from "./engine.js";
import type { Info, InferenceMethod, Posterior, PosteriorKind } from "./method.js";
import { OptionError, type OptionDef, type OptionValue } from "./options.js";
import type { Tree } from "./tree.js";

/** What a default may depend on: the training data's size and the batching. */
export interface DefaultContext {
  /** N, training examples. */
  readonly n: number;
  readonly batchSize: number;
  /** floor(N / batch size), at least 1 (the last partial batch is dropped). */
  readonly stepsPerEpoch: number;
  /** Whether the likelihood is categorical (defaults validated separately for classification). */
  readonly classification?: boolean;
  /** Parameters of one copy of the model, when known. */
  readonly paramCount?: number;
}

/** An option a method takes, with its default for that method. */
export interface OptionUse<T extends OptionValue, O> {
  readonly def: OptionDef<T>;
  /**
   * A value, a function of the data and of the options declared before this one, or `undefined` when
   * the method's own rule applies unless the option is given (`text` says which).
   */
  readonly value: T | undefined | ((c: DefaultContext, o: Readonly<Partial<O>>) => T);
  /** The default as the help and the README state it, e.g. `2e-3 T / N`. */
  readonly text: string;
}

/** The options of a method with options type `O`. */
export type OptionUses<O> = { readonly [K in keyof O]-?: NonNullable<O[K]> extends OptionValue ? OptionUse<NonNullable<O[K]>, O> : never };

/** Take option `def` with a default (`text` defaults to the value itself). */
export function use<T extends OptionValue, O = never>(def: OptionDef<T>, value: T | undefined | ((c: DefaultContext, o: Readonly<Partial<O>>) => T), text?: string): OptionUse<T, O> {
  if ((typeof value === "function" || value === undefined) && text === undefined) throw new TypeError(`option ${def.key}: a computed or absent default needs its text`);
  return { def, value, text: text ?? String(value) };
}

/**
 * How the driver runs a method:
 * - `final`: `epochs` passes of minibatch steps; the posterior is the final state's (VI draws `draws`
 *   samples from it for the reported metrics). With `copies`, that many independent copies from
 *   independent initialisations (ensemble members). With `warmStart`, the parameters start from a MAP
 *   fit of that many epochs (at rate `lr`); with `evidenceRounds`, that many rounds of MAP training and
 *   prior tuning by the Laplace evidence (run/evidence.ts), and the method runs under the tuned prior.
 *   With `validation`, that fraction of the training examples (a seeded random part) is held out:
 *   the warm start and the steps see the rest, and the method is built with the held-out part
 *   (`BuildContext.validation`); then the spec's `refit` gives the options of a second fit on all
 *   the training data, whose result is returned.
 * - `trajectory`: `steps` steps of `copies` chains; the posterior is the union of the chains' states
 *   after each step in `collectAt` (1-based counts of completed steps). `runawayCheck`: whether a
 *   chain far above the others has run away and restarts (run/loop.ts); false where the schedule
 *   sends chains there by design (a cyclical schedule's exploring phases).
 */
export type RunPlan =
  | { readonly collect: "final"; readonly epochs: number; readonly copies?: number; readonly draws?: number; readonly warmStart?: { readonly epochs: number; readonly lr?: number; readonly evidenceRounds?: number }; readonly validation?: number }
  | { readonly collect: "trajectory"; readonly steps: number; readonly collectAt: readonly number[]; readonly copies: number; readonly runawayCheck: boolean };

/**
 * What a method is built from. Its log density is the model's at the run's temperature T:
 * log p_T(theta | batch) = (1/T) [log p(theta) + N mean_batch log p(y | x, theta)] (models/model.ts).
 */
export interface BuildContext<M, P, B> {
  readonly model: M;
  /** N, training examples. */
  readonly dataSize: number;
  /** The tempered minibatch log density (consumes its arguments). */
  readonly logDensity: (params: P, batch: B) => JArray;
  /** T (1 for methods without a temperature option). */
  readonly temperature: number;
  /** A parameter tree of the model's shapes (borrowed; for flat adapters). */
  readonly template: P;
  /** Parameters of one copy. */
  readonly paramCount: number;
  readonly batchSize: number;
  readonly stepsPerEpoch: number;
  /**
   * When the plan asks for `validation`: the NLL of a posterior's function-space predictive on the
   * held-out training examples (borrows the posterior), and how many they are.
   */
  readonly validation?: { readonly nll: (posterior: Posterior<P>) => number; readonly n: number };
}

/** A method's self-description (see the module comment). */
export interface MethodSpec<O, M = unknown, P = Tree, B = unknown> {
  /** The name users type: `--method <name>`. */
  readonly name: string;
  /** Its family folder: `baselines`, `sgmcmc`, `vi`, `scorevi`, ... */
  readonly family: string;
  /** One line for `--help` and the README. */
  readonly summary: string;
  /** The paper it implements (authors, year, title). */
  readonly paper: string;
  /**
   * What its default run costs against MAP's default run (20 epochs), in minibatch gradient (or score)
   * evaluations on embedded MNIST: one line for `--help` and the README.
   */
  readonly cost: string;
  /** The options it takes, in resolution order (a default may read the options before it). */
  readonly options: OptionUses<O>;
  /** Posterior kinds its fits save beyond a set of draws, so that evaluation can rebuild them. */
  readonly kinds?: readonly PosteriorKind<P, M>[];
  /** How the driver runs it. */
  plan(o: O, c: DefaultContext): RunPlan;
  /** The method itself. */
  build(ctx: BuildContext<M, P, B>, o: O): InferenceMethod<Tree, Info, P, B>;
  /**
   * For a plan with `validation`: from the options of the posterior fitted with the held-out part,
   * the options of the refit on all the training data, what the saved options record of the choice,
   * and what is added to the refit posterior's options.
   */
  refit?(posteriorOptions: Readonly<Record<string, unknown>>): { options: Record<string, OptionValue>; saved: Record<string, OptionValue>; posterior: Record<string, unknown> };
}

/** A spec of any options type (the method table's element type). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMethodSpec<M = unknown, P = Tree, B = unknown> = MethodSpec<any, M, P, B>;

/**
 * Every option of `spec` with its value: the given one (validated) or the method's default, resolved in
 * declaration order. Values of options the method does not take are an error naming the option.
 */
export function resolveOptions<O, M, P, B>(spec: MethodSpec<O, M, P, B>, given: Readonly<Record<string, OptionValue | undefined>>, c: DefaultContext): O {
  const uses = Object.entries(spec.options) as [string, OptionUse<OptionValue, O>][];
  for (const [k, v] of Object.entries(given)) {
    if (v !== undefined && !uses.some(([name]) => name === k)) throw new OptionError(k, `does not apply to method ${spec.name}`);
  }
  const out: Record<string, OptionValue> = {};
  for (const [k, u] of uses) {
    const v = given[k];
    if (v !== undefined) {
      u.def.check(v);
      out[k] = v;
    } else {
      const v = typeof u.value === "function" ? u.value(c, out as Partial<O>) : u.value;
      if (v !== undefined) out[k] = v;
    }
  }
  return out as O;
}
