/**
 * Between engine parameter samples (a pytree with a leading sample axis) and saved posteriors
 * (named host tensors), and from saved metadata back to a model.
 */
import { fromHost, isArray, key, namedLeaves, rebuild, toHost, tree } from "../core/engine.js";
import type { PosteriorLeafSamples, PosteriorMeta } from "../io/posterior.js";
import { categorical, gaussian, type Likelihood, type LikelihoodSpec } from "../models/likelihood.js";
import { makeModel, type Model, type Params } from "../models/model.js";
import type { PriorSpec } from "../models/prior.js";
import { networkFromSpec } from "../models/spec.js";

/** Build a likelihood from its saved description. */
export function likelihoodFromSpec(spec: LikelihoodSpec | PosteriorMeta["likelihood"]): Likelihood {
  if (spec.kind === "categorical") return categorical();
  return gaussian({ sigma: spec.sigma ?? 1, learned: spec.noise === "learned" });
}

/** Rebuild the model a posterior was fitted with. */
export function modelFromMeta(meta: PosteriorMeta): Model {
  const net = networkFromSpec(meta.model, meta.inputShape, meta.outputDim);
  return makeModel(net, likelihoodFromSpec(meta.likelihood), meta.prior as PriorSpec);
}

/** Host copies of stacked samples, one entry per leaf, named by pytree path (borrows `samples`). */
export async function samplesToHost(samples: Params): Promise<PosteriorLeafSamples[]> {
  const leaves = namedLeaves(samples, isArray);
  return Promise.all(
    leaves.map(async ({ path, value }) => ({ name: path, shape: value.shape.slice(1), data: await toHost(value.ref) })),
  );
}

/**
 * Engine parameters with a leading sample axis from saved leaves. The model's own parameter tree
 * (from `init`) is the template: every template leaf must be present with the saved shape.
 */
export function samplesFromHost(model: Model, leaves: PosteriorLeafSamples[], numSamples: number): Params {
  const byName = new Map(leaves.map((l) => [l.name, l]));
  const template = model.init(key(0));
  const out = rebuild(template, isArray, (path) => {
    const leaf = byName.get(path);
    if (!leaf) throw new Error(`posterior has no tensor '${path}' (model ${model.network.spec} needs it); found: ${[...byName.keys()].join(", ")}`);
    return fromHost(leaf.data, [numSamples, ...leaf.shape]);
  }) as Params;
  const tleaves = namedLeaves(template, isArray);
  for (const { path, value } of tleaves) {
    const want = value.shape.join("x");
    const got = byName.get(path)!.shape.join("x");
    if (want !== got) {
      tree.dispose(out);
      tree.dispose(template);
      throw new Error(`posterior tensor '${path}' has per-sample shape [${got.replace(/x/g, ", ")}] but model ${model.network.spec} expects [${want.replace(/x/g, ", ")}]`);
    }
  }
  tree.dispose(template);
  return out;
}

