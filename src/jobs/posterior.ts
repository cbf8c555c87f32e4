/**
 * From saved metadata back to a model and its posterior, from a fit's draws to the leaves
 * `samples.safetensors` holds, and other data into a posterior's units.
 */
import { key } from "../core/engine.js";
import type { Posterior } from "../core/method.js";
import { sampleSetFromTensors, treeToTensors } from "../core/posterior.js";
import { free } from "../core/tree.js";
import type { ArrayData, DataSplit } from "../data/types.js";
import type { LoadedPosterior, NamedTensor, PosteriorLeafSamples, PosteriorMeta } from "../io/posterior.js";
import { posteriorKind } from "../methods.js";
import { categorical, gaussian, type Likelihood, type LikelihoodSpec } from "../models/likelihood.js";
import { makeModel, type Model, type Params } from "../models/model.js";
import type { PriorSpec } from "../models/prior.js";
import { networkFromSpec } from "../models/spec.js";

/** Build a likelihood from its saved description. */
export function likelihoodFromSpec(spec: LikelihoodSpec | PosteriorMeta["likelihood"]): Likelihood {
  if (spec.kind === "categorical") return categorical();
  return gaussian({ sigma: spec.sigma ?? 1, noise: spec.noise });
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
    return posteriorKind(v.family).load(template, v.options, tensors, model);
  } finally {
    free(template);
  }
}

/**
 * The posterior a loaded directory holds: its saved draws, or, with `samples`, the saved variational q
 * to draw that many fresh samples from. A saved distribution that predicts in function space (Laplace)
 * is always rebuilt: its own predictive is the posterior's. `where` names the directory in the error
 * for a posterior that has no q.
 */
export function savedPosterior(model: Model, loaded: LoadedPosterior, samples: number | undefined, where: string): Posterior<Params> {
  const { meta, variational } = loaded;
  if (samples === undefined && meta.variational !== undefined && variational !== undefined) {
    const q = savedDistribution(model, meta.variational, variational);
    if (q.predict) return q;
    q.dispose();
  }
  if (samples === undefined) return savedDraws(model, loaded.samples, meta.numSamples);
  if (meta.variational === undefined || variational === undefined) {
    throw new Error(`--samples: ${where} holds ${meta.numSamples} saved samples of a ${meta.method} posterior, not a variational one to draw from`);
  }
  return savedDistribution(model, meta.variational, variational);
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

/**
 * Data from a source other than the one a posterior was fitted on, put in the posterior's units:
 * inputs of tabular sources re-standardised from the split's own statistics to the posterior's
 * (x_post = (x_own * std_own + mean_own - mean_post) / std_post, per column, matched by name when
 * both have named columns), regression targets likewise, and class labels mapped to the posterior's
 * class order. Splits without tabular statistics (images) are returned unchanged.
 * @throws naming `what` when columns or classes do not match.
 */
export function inPosteriorUnits(split: DataSplit, meta: PosteriorMeta, what: string): DataSplit {
  const want = meta.data.inputScale;
  const own = split.inputScale;
  let x = (a: ArrayData): ArrayData => a;
  if (want && own) {
    const named = (cols: readonly string[]) => cols.some((c) => !/^\d+$/.test(c));
    let order: number[];
    if (named(want.columns) && named(own.columns)) {
      order = want.columns.map((c) => {
        const j = own.columns.indexOf(c);
        if (j < 0) throw new Error(`${what}: has no input column "${c}" (the posterior was fitted on columns ${want.columns.map((s) => JSON.stringify(s)).join(", ")})`);
        return j;
      });
    } else {
      if (own.columns.length !== want.columns.length) throw new Error(`${what}: has ${own.columns.length} input columns, the posterior was fitted on ${want.columns.length}`);
      order = want.columns.map((_, j) => j);
    }
    const d = want.columns.length;
    const dOwn = own.columns.length;
    x = (a) => {
      const out = new Float32Array(a.n * d);
      for (let i = 0; i < a.n; i++) {
        for (let j = 0; j < d; j++) {
          const k = order[j];
          const raw = a.x[i * dOwn + k] * own.std[k] + own.mean[k];
          out[i * d + j] = (raw - want.mean[j]) / want.std[j];
        }
      }
      return { x: out, xShape: [d], y: a.y, n: a.n };
    };
  }
  let y = (a: ArrayData): ArrayData => a;
  if (split.task === "regression" && split.targetScale && meta.data.targetScale) {
    const from = split.targetScale;
    const to = meta.data.targetScale;
    y = (a) => ({ ...a, y: Float32Array.from(a.y, (v) => (v * from.std + from.mean - to.mean) / to.std) });
  }
  const ownClasses = typeof split.splitInfo.classes === "string" ? (JSON.parse(split.splitInfo.classes) as string[]) : undefined;
  const wantClasses = typeof meta.data.split?.classes === "string" ? (JSON.parse(meta.data.split.classes) as string[]) : undefined;
  if (split.task === "classification" && ownClasses && wantClasses) {
    const map = ownClasses.map((c) => {
      const j = wantClasses.indexOf(c);
      if (j < 0) throw new Error(`${what}: has class "${c}", which the posterior was not fitted on (its classes: ${wantClasses.join(", ")})`);
      return j;
    });
    const prev = y;
    y = (a) => prev({ ...a, y: Int32Array.from(a.y, (v) => map[v]) });
  }
  const both = (a: ArrayData): ArrayData => y(x(a));
  return { ...split, train: both(split.train), test: both(split.test), ...(meta.data.targetScale ? { targetScale: meta.data.targetScale } : {}), ...(want ? { inputScale: want } : {}) };
}
