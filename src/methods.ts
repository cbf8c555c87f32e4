/**
 * The method table: every inference method the CLI, the benchmarks and the browser page can run, one
 * row per method, each row the spec its own file exports (core/spec.ts). Nothing else in the library
 * knows a method by name: a new method is its file and one row here.
 */
import { spec as ensemble } from "./baselines/ensemble.js";
import { spec as map } from "./baselines/map.js";
import type { PosteriorKind } from "./core/method.js";
import { spec as laplace } from "./laplace/laplace.js";
import { spec as sampledLaplace } from "./laplace/sampled.js";
import type { AnyMethodSpec } from "./core/spec.js";
import type { Batch, Model, Params } from "./models/model.js";
import { spec as bam } from "./scorevi/bam.js";
import { spec as gsm } from "./scorevi/gsm.js";
import { spec as proximalSvi } from "./scorevi/proximal.js";
import { spec as proximalSviFullrank } from "./scorevi/proximal-fullrank.js";
import { spec as csghmc } from "./sgmcmc/csghmc.js";
import { spec as csgld } from "./sgmcmc/csgld.js";
import { spec as psgld } from "./sgmcmc/psgld.js";
import { spec as sghmc } from "./sgmcmc/sghmc.js";
import { spec as sgld } from "./sgmcmc/sgld.js";
import { spec as sgnht } from "./sgmcmc/sgnht.js";
import { spec as alpha } from "./vi/alpha.js";
import { spec as bbb } from "./vi/bbb.js";
import { spec as bbbLrt } from "./vi/bbb-lrt.js";
import { spec as flipout } from "./vi/flipout.js";
import { spec as flow } from "./vi/flow.js";
import { spec as fullrank } from "./vi/fullrank.js";

/** A method spec on the library's models. */
export type Method = AnyMethodSpec<Model, Params, Batch>;

/** Every method, in the order help and the README list them. */
export const METHODS: readonly Method[] = [map, ensemble, sgld, psgld, sghmc, sgnht, csgld, csghmc, bbb, bbbLrt, flipout, alpha, proximalSvi, proximalSviFullrank, fullrank, flow, gsm, bam, laplace, sampledLaplace];

/** Method names, for help text and validation. */
export const METHOD_NAMES: readonly string[] = METHODS.map((m) => m.name);

/** The spec of `name`. @throws naming the method and the known ones. */
export function methodSpec(name: string): Method {
  const m = METHODS.find((s) => s.name === name);
  if (!m) throw new RangeError(`unknown method '${name}'; known: ${METHOD_NAMES.join(", ")}`);
  return m;
}

/** The methods that take option `key` (for "does not apply" messages and help). */
export function methodsTaking(key: string): Method[] {
  return METHODS.filter((m) => key in m.options);
}

/** How each saved posterior kind is rebuilt, gathered from the specs' `kinds`. */
export const POSTERIOR_KINDS: Readonly<Record<string, PosteriorKind<Params, Model>>> = Object.fromEntries(METHODS.flatMap((m) => m.kinds ?? []).map((k) => [k.kind, k]));

/** The posterior kind `kind`. @throws naming the kind and the known ones. */
export function posteriorKind(kind: string): PosteriorKind<Params, Model> {
  const k = Object.prototype.hasOwnProperty.call(POSTERIOR_KINDS, kind) ? POSTERIOR_KINDS[kind] : undefined;
  if (!k) throw new RangeError(`unknown posterior kind '${kind}' (known: ${Object.keys(POSTERIOR_KINDS).join(", ")})`);
  return k;
}
