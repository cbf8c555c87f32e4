/**
 * MAP training with its prior tuned by the Laplace evidence along the way (Immer, Bauer, Fortuin,
 * Ratsch & Khan 2021, "Scalable marginal likelihood estimation for model selection in deep learning":
 * online marglik), at the granularity of rounds: train the MAP, maximise the KFAC Laplace evidence over
 * the per-layer prior scales at its weights (laplace/marglik.ts), continue training from those weights
 * under the new prior, and so on. The evidence at a fixed mode is only consistent when the mode was
 * trained under the prior being scored; alternating the two moves both to a common fixed point, where
 * post-hoc tuning alone scores a mode trained under another prior.
 */
import { key as makeKey, split, type Key } from "../core/engine.js";
import { free, sliceTree } from "../core/tree.js";
import type { ArrayData } from "../data/types.js";
import { spec as laplaceSpec } from "../laplace/laplace.js";
import type { LaplaceOptions } from "../laplace/posterior.js";
import { makeModel, type Model, type Params } from "../models/model.js";
import type { PriorSpec } from "../models/prior.js";
import { spec as mapSpec } from "../baselines/map.js";
import type { Posterior } from "../core/method.js";
import type { OptionValue } from "../core/options.js";
import type { Method } from "../methods.js";

/** One round's outcome: the prior scales it chose and the evidence there. */
export interface EvidenceRound {
  readonly epochs: number;
  readonly priorScales: readonly number[];
  readonly logEvidence: number;
}

/** Options of {@link evidenceWarmStart}. */
export interface EvidenceOptions {
  /** MAP epochs of the first round; later rounds train half as long each. */
  readonly epochs: number;
  readonly lr?: number;
  /** Rounds of (train, tune); at least 1. */
  readonly rounds: number;
  readonly batchSize: number;
}

/** The driver's `fit`, as far as these rounds use it. */
type FitFn = (
  k: Key,
  spec: Method,
  model: Model,
  train: ArrayData,
  o: { batchSize?: number; initParams?: Params; options?: Readonly<Record<string, OptionValue | undefined>> },
) => Promise<{ posterior: Posterior<Params>; sampled: Posterior<Params> }>;

/**
 * Rounds of MAP training and evidence tuning (see the module comment). Returns the final weights, the
 * prior they were trained under, and each round's choice. `fit` is the driver's (passed in to keep the
 * modules acyclic). Consumes `k`.
 */
export async function evidenceWarmStart(fit: FitFn, k: Key, model: Model, train: ArrayData, o: EvidenceOptions): Promise<{ params: Params; prior: PriorSpec; rounds: EvidenceRound[] }> {
  if (!(o.rounds >= 1)) throw new RangeError(`evidence warm start: rounds must be >= 1, got ${o.rounds}`);
  const keys = split(k, 2 * o.rounds);
  let prior = model.prior;
  let params: Params | undefined;
  const rounds: EvidenceRound[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const m = makeModel(model.network, model.likelihood, prior);
    const epochs = r === 0 ? o.epochs : Math.max(1, Math.round(o.epochs / 2));
    const w = await fit(keys[2 * r], mapSpec, m, train, { batchSize: o.batchSize, initParams: params, options: { epochs, ...(o.lr !== undefined ? { lr: o.lr } : {}) } });
    free(params);
    const one = w.posterior.draws(makeKey(0));
    w.posterior.dispose();
    params = sliceTree(one, 0);
    free(one);
    const l = await fit(keys[2 * r + 1], laplaceSpec, m, train, { batchSize: o.batchSize, initParams: params, options: { hessian: "kron", subset: "all", curvature: "ggn", priorOpt: "marglik", pred: "nn", samples: 1 } });
    const lo = l.posterior.options as unknown as LaplaceOptions;
    l.posterior.dispose();
    if (l.sampled !== l.posterior) l.sampled.dispose();
    prior = { kind: "gaussian", scale: lo.priorScales[0], perLayer: [...lo.priorScales], scaling: model.prior.scaling };
    rounds.push({ epochs, priorScales: [...lo.priorScales], logEvidence: lo.logEvidence ?? NaN });
  }
  return { params: params!, prior, rounds };
}
