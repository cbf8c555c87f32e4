/**
 * From saved metadata back to a model and its posterior, and from a fit's draws to the leaves
 * `samples.safetensors` holds.
 */
import { key } from "../core/engine.js";
import type { Posterior } from "../core/method.js";
import { sampleSetFromTensors, treeToTensors } from "../core/posterior.js";
import { free } from "../core/tree.js";
import type { NamedTensor, PosteriorLeafSamples, PosteriorMeta } from "../io/posterior.js";
import { posteriorKind } from "../methods.js";
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

/** The saved draws of a posterior as a set of draws (every leaf the model needs, with its shape). */
export function savedDraws(model: Model, leaves: readonly PosteriorLeafSamples[], numSamples: number): Posterior<Params> {
  const template = model.init(key(0));
  try {
    return sampleSetFromTensors(template, leaves.map((l) => ({ name: l.name, shape: [numSamples, ...l.shape], data: l.data })), numSamples);
  } catch (e) {
    throw new Error(`posterior does not fit model ${model.network.spec}: ${(e as Error).message}`);
  } finally {
    free(template);
  }
}

/** A saved variational posterior q, rebuilt by its kind (the `variational` entry of posterior.json). */
export function savedDistribution(model: Model, v: NonNullable<PosteriorMeta["variational"]>, tensors: readonly NamedTensor[]): Posterior<Params> {
  const template = model.init(key(0));
  try {
    return posteriorKind(v.family).load(template, v.options, tensors);
  } finally {
    free(template);
  }
}

/** Host copies of a set of draws, one entry per leaf named by its path, with per-sample shapes. */
export async function drawsToLeaves(draws: Posterior<Params>): Promise<PosteriorLeafSamples[]> {
  const stacked = draws.draws(key(0));
  try {
    return (await treeToTensors(stacked)).map((t) => ({ name: t.name, shape: t.shape.slice(1), data: t.data }));
  } finally {
    free(stacked);
  }
}
