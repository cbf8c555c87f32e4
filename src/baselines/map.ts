/**
 * Maximum a posteriori training: the point estimate every Bayesian method is compared with.
 *
 *   theta* = argmax_theta log p(theta) + sum_i log p(y_i | x_i, theta)
 *
 * minimised as the per-datum objective L(theta) = -logDensity(theta, batch) / N with Adam. With the
 * isotropic Gaussian prior of scale s this is the usual weight-decay training, decay 1 / (2 s^2 N).
 */
import { keep, np, valueAndGrad, type JArray, type Key, type Tree } from "../core/engine.js";
import type { Batch, LogDensityFn, Params } from "../models/model.js";
import { adam, applyUpdates, type GradientTransformation } from "../optim/transform.js";

/** MAP state: the parameters, the optimiser state and the step count. */
export type MapState = { params: Params; opt: Tree; step: JArray };

/** Per-step information. */
export type MapInfo = { loss: JArray };

/** Options of {@link create}. */
export interface MapOptions {
  /** N: the objective is divided by it so learning rates do not depend on the data size. */
  readonly dataSize: number;
  /** Adam learning rate (default 1e-3); ignored when `optimizer` is given. */
  readonly learningRate?: number;
  /** Any gradient transformation (default `adam(learningRate)`). */
  readonly optimizer?: GradientTransformation;
}

/** A MAP "inference method" in the shared `{init, step}` shape. */
export interface MapMethod {
  init(key: Key, params: Params): MapState;
  step(key: Key, state: MapState, batch: Batch): [MapState, MapInfo];
}

/**
 * Build MAP training for a log density.
 * @example
 * const m = create(logDensity(model, { dataSize: N }), { dataSize: N, learningRate: 1e-3 });
 * let state = m.init(key(0), model.init(key(1)));
 */
export function create(logDensity: LogDensityFn, opts: MapOptions): MapMethod {
  const n = opts.dataSize;
  const opt = opts.optimizer ?? adam(opts.learningRate ?? 1e-3);
  const objective = (params: Params, batch: Batch) => logDensity(params, batch).mul(-1 / n);
  return {
    init(k, params) {
      k.dispose();
      return { opt: opt.init(keep(params)), params, step: np.array(0, { dtype: np.int32 }) };
    },
    step(k, state, batch) {
      k.dispose();
      const [loss, g] = valueAndGrad(objective)(keep(state.params), batch);
      const [updates, optState] = opt.update(g, state.opt, keep(state.params));
      const params = applyUpdates(state.params, updates) as Params;
      return [{ params, opt: optState, step: state.step.add(1) }, { loss }];
    },
  };
}

