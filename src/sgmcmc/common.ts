/**
 * Pieces shared by the SG-MCMC samplers: the sampler state, Gaussian noise shaped like a pytree,
 * and the options every sampler takes.
 */
import { np, tree, valueAndGrad, type JArray, type Key, type Tree } from "../core/engine.js";
import { normalTree } from "../core/normal.js";
import type { Batch, LogDensityFn, Params } from "../models/model.js";
import { constant, type Schedule } from "./schedule.js";

/** Options common to every SG-MCMC sampler. */
export interface SamplerOptions {
  /** Step-size schedule; a number means a constant step size. */
  readonly schedule: Schedule | number;
  /** Temperature T of the injected noise (T = 1: the posterior; T = 0: no noise, an optimiser). */
  readonly temperature?: number;
  /** N, used only to report the objective per training point. */
  readonly dataSize: number;
}

/** Per-step information: the objective -logDensity / N and the step size used. */
export type SamplerInfo = { loss: JArray; lr: JArray };

/** A sampler in the shared `{init, step}` shape. */
export interface Sampler<S> {
  init(key: Key, params: Params): S;
  step(key: Key, state: S, batch: Batch): [S, SamplerInfo];
}

export function resolveSchedule(s: Schedule | number): Schedule {
  return typeof s === "number" ? constant(s) : s;
}

export function checkTemperature(t: number | undefined): number {
  const temp = t ?? 1;
  if (!(temp >= 0) || !Number.isFinite(temp)) throw new RangeError(`sampler: temperature must be a finite number >= 0, got ${t}`);
  return temp;
}

/**
 * Standard normal draws shaped like every leaf of `like` (borrows `like`, consumes the key): one
 * uniform-bits draw for the whole tree and a two-output Box-Muller transform (`core/normal.ts`),
 * ~2x cheaper than one `random.normal` per leaf in jax-js 0.1.25.
 */
export function normalLike<T extends Tree>(k: Key, like: T): T {
  return normalTree(k, like);
}

/**
 * Add the injected noise of a step: `x + sqrt(variance * T) * n_t * xi` leafwise, xi ~ N(0, I) and
 * n_t the schedule's noise switch at step t. At T = 0 nothing is drawn and `x` is returned as is.
 * Consumes `k`, `x`, `variance` (a scalar, or a tree like `x` for per-coordinate variances) and `t`.
 */
export function addNoise<T extends Tree>(k: Key, x: T, variance: JArray | T, schedule: Schedule, t: JArray, temp: number): T {
  if (temp === 0) {
    k.dispose();
    tree.dispose(variance as Tree);
    t.dispose();
    return x;
  }
  const on = schedule.noise(t).mul(Math.sqrt(temp));
  const xi = normalLike(k, x);
  if (!Array.isArray(variance) && typeof variance === "object" && "shape" in (variance as object)) {
    const scale = np.sqrt(variance as JArray).mul(on);
    const out = mapLeaves((a, z) => a.add(z.mul(scale.ref)), x, xi);
    scale.dispose();
    return out;
  }
  const out = mapLeaves((a, z, v) => a.add(z.mul(np.sqrt(v)).mul(on.ref)), x, xi, variance as T);
  on.dispose();
  return out;
}

/** log density and its gradient at `params` (consumes both arguments). */
export function densityAndGrad(logDensity: LogDensityFn, params: Params, batch: Batch): [JArray, Params] {
  return valueAndGrad(logDensity)(params, batch) as [JArray, Params];
}

/** Leafwise map over several trees of the same structure. */
export function mapLeaves<T extends Tree>(f: (...xs: JArray[]) => JArray, t: T, ...rest: Tree[]): T {
  return tree.map(f as never, t as never, ...(rest as never[])) as T;
}

