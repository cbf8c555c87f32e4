/**
 * Maximum a posteriori training: the point estimate every Bayesian method is compared with.
 *
 *   theta* = argmax_theta log p(theta) + sum_i log p(y_i | x_i, theta)
 *
 * minimised as the per-datum objective L(theta) = -logDensity(theta, batch) / N with Adam, whose rate
 * the `map` spec drops to a tenth for the last quarter of the run ({@link mapSchedule}). With the
 * isotropic Gaussian prior of scale s this is the usual weight-decay training, decay 1 / (2 s^2 N).
 * Its posterior is the point mass at the current parameters.
 */
import { np, valueAndGradient, type JArray } from "../core/engine.js";
import { namedSchedule, type Schedule } from "../core/schedule.js";
import { OPTIONS } from "../core/options.js";
import { pointMass } from "../core/posterior.js";
import { use, type OptionUses } from "../core/spec.js";
import { keep, type Tree } from "../core/tree.js";
import type { Batch, LogDensityFn, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { adam, applyUpdates, type GradientTransformation } from "../optim/transform.js";

/** MAP state: the parameters, the optimiser state and the step count. */
export type MapState = { params: Params; opt: Tree; step: JArray };

/** Per-step information: the objective -logDensity / N. */
export type MapInfo = { loss: JArray };

/** Options of {@link create}. */
export interface MapOptions {
  /** N: the objective is divided by it so learning rates do not depend on the data size. */
  readonly dataSize: number;
  /** Adam learning rate (default 1e-3); ignored when `optimizer` is given. */
  readonly learningRate?: number | Schedule;
  /** Any gradient transformation (default `adam(learningRate)`). */
  readonly optimizer?: GradientTransformation;
}

/**
 * Defaults of {@link create}, which the `map` and `ensemble` specs take too. Adam's 3e-3 with the drop
 * for the last quarter gave the best validation NLL on training digits (docs/priors.md; 1e-3 before).
 */
export const MAP_DEFAULTS = { learningRate: 3e-3 } as const;

/**
 * Build MAP training for a log density.
 * @example
 * const m = create(logDensity(model, { dataSize: N }), { dataSize: N, learningRate: 3e-3 });
 * let state = m.init(key(0), model.init(key(1)));
 */
export function create(logDensity: LogDensityFn, opts: MapOptions): ModelMethod<MapState, MapInfo> {
  const n = opts.dataSize;
  const opt = opts.optimizer ?? adam(opts.learningRate ?? MAP_DEFAULTS.learningRate);
  const objective = (params: Params, batch: Batch) => logDensity(params, batch).mul(-1 / n);
  return {
    init(k, params) {
      k.dispose();
      return { opt: opt.init(keep(params)), params, step: np.array(0, { dtype: np.int32 }) };
    },
    step(k, state, batch) {
      k.dispose();
      const [loss, g] = valueAndGradient(objective)(keep(state.params), batch);
      const [updates, optState] = opt.update(g, state.opt, keep(state.params));
      const params = applyUpdates(state.params, updates);
      return [{ params, opt: optState, step: state.step.add(1) }, { loss }];
    },
    posterior: (state) => pointMass(state.params),
  };
}

/** Options of the `map` method. */
export interface MapMethodOptions {
  epochs: number;
  lr: number;
  schedule: "constant" | "polynomial" | "drop";
  dropFactor: number;
}

/** Where `--schedule drop` lowers MAP's learning rate: after this fraction of the run. */
export const MAP_DROP_AT = 0.75;

/** The help text of MAP's (and the ensemble's) default schedule. */
export const MAP_SCHEDULE_TEXT = "drop: lr r for the last quarter of the run (chosen on training digits: docs/priors.md)";

/**
 * MAP's learning rate over a run of `epochs` epochs: constant, decaying as lr (1 + t/b)^-0.55 with b a
 * tenth of the run, or dropping to `dropFactor` lr for the last quarter.
 */
export function mapSchedule(o: Readonly<MapMethodOptions>, stepsPerEpoch: number): number | Schedule {
  const total = o.epochs * stepsPerEpoch;
  return namedSchedule(o.schedule, o.lr, total, Math.floor(MAP_DROP_AT * total), o.dropFactor);
}

/** The options MAP's spec takes, which the ensemble's takes too. */
export const MAP_OPTIONS: OptionUses<MapMethodOptions> = {
  epochs: use(OPTIONS.epochs, 20),
  lr: use(OPTIONS.lr, MAP_DEFAULTS.learningRate),
  schedule: use(OPTIONS.schedule, "drop" as MapMethodOptions["schedule"], MAP_SCHEDULE_TEXT),
  dropFactor: use(OPTIONS.dropFactor, 0.1),
};

/** `--method map`. */
export const spec: ModelMethodSpec<MapMethodOptions> = {
  name: "map",
  family: "baselines",
  summary: "MAP point estimate (Adam; the Gaussian prior acts as weight decay)",
  cost: "the reference: 20 epochs",
  paper: "the maximum a posteriori baseline",
  options: MAP_OPTIONS,
  plan: (o) => ({ collect: "final", epochs: o.epochs }),
  build: (ctx, o) => create(ctx.logDensity, { dataSize: ctx.dataSize, learningRate: mapSchedule(o, ctx.stepsPerEpoch) }),
};
