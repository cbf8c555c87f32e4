/**
 * Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017, "Simple and scalable predictive
 * uncertainty estimation using deep ensembles"): M networks from independent initialisations, each
 * trained to a MAP estimate on its own shuffle of the data; the posterior is the set of the M members
 * and the predictive averages theirs.
 *
 * All members advance in one jitted call: the MAP step replicated over a leading member axis
 * (core/replicate.ts; `batching` picks side-by-side tracing or `vmap`). Minibatches arrive stacked as
 * `[M, n, ...]`, one shuffle per member.
 */
import { OPTIONS } from "../core/options.js";
import { replicate, type Batching, type ReplicatedMethod } from "../core/replicate.js";
import { use } from "../core/spec.js";
import type { Batch, LogDensityFn, ModelMethodSpec, Params } from "../models/model.js";
import { create as createMap, MAP_OPTIONS, mapSchedule, type MapInfo, type MapMethodOptions, type MapOptions, type MapState } from "./map.js";

/** Options of {@link create}: MAP's, plus the number of members and the batching. */
export interface EnsembleOptions extends MapOptions {
  readonly members: number;
  /** Default `"auto"`: `vmap` for small networks, side-by-side tracing for large ones. */
  readonly batching?: Batching;
  /** Parameters per member (for `"auto"`). */
  readonly paramCount?: number;
}

/**
 * A deep-ensemble trainer: `members` MAP runs stepped together. `init` takes parameters stacked on a
 * leading member axis (models/model.ts `initMembers`), `step` minibatches `[M, n, ...]`.
 */
export function create(logDensity: LogDensityFn, opts: EnsembleOptions): ReplicatedMethod<MapState, MapInfo, Params, Batch> {
  return replicate(createMap(logDensity, opts), opts.members, opts.batching ?? "auto", opts.paramCount ?? Infinity);
}

/** Options of `--method ensemble`. */
export interface EnsembleSpecOptions extends MapMethodOptions {
  members: number;
}

/** `--method ensemble`: MAP replicated by the driver over `members` copies. */
export const spec: ModelMethodSpec<EnsembleSpecOptions> = {
  name: "ensemble",
  family: "baselines",
  summary: "deep ensemble: M MAP networks from independent inits and shuffles, stepped together",
  cost: "5x MAP (5 members of 20 epochs)",
  paper: "Lakshminarayanan, Pritzel & Blundell 2017, Simple and scalable predictive uncertainty estimation using deep ensembles",
  options: {
    ...MAP_OPTIONS,
    members: use(OPTIONS.members, 5),
  },
  plan: (o) => ({ collect: "final", epochs: o.epochs, copies: o.members }),
  build: (ctx, o) => createMap(ctx.logDensity, { dataSize: ctx.dataSize, learningRate: mapSchedule(o, ctx.stepsPerEpoch) }),
};
