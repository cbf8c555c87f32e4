/**
 * The table of inference methods the CLI (and any other front end) can run. Each entry turns a
 * model, training data and options into posterior samples stacked on a leading axis. Families add
 * entries here; nothing else in the job layer knows a method by name.
 */
import { free, split, type Key } from "../core/engine.js";
import { create as createEnsemble, initMembers, stackTrees } from "../baselines/ensemble.js";
import { create as createMap } from "../baselines/map.js";
import type { ArrayData } from "../data/types.js";
import { logDensity, type Model, type Params } from "../models/model.js";
import { fitEpochs, type Progress } from "../train/fit.js";

/** Options every method understands. */
export interface CommonFitOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly temperature: number;
  /** Ensemble members (ensemble only). */
  readonly members: number;
  readonly onProgress?: (p: Progress) => void;
}

/** A method entry: its defaults and how it produces samples. */
export interface MethodEntry {
  readonly summary: string;
  /** Default options that differ from the CLI's global defaults. */
  readonly defaults: Partial<Pick<CommonFitOptions, "epochs" | "batchSize" | "learningRate" | "members">>;
  /** The options recorded in posterior.json. */
  recordedOptions(o: CommonFitOptions): Record<string, unknown>;
  /** Fit and return stacked samples `[S, ...]` (S = 1 for MAP). */
  fit(k: Key, model: Model, train: ArrayData, o: CommonFitOptions): Promise<Params>;
}

export const METHODS = {
  map: {
    summary: "MAP point estimate (Adam; the Gaussian prior acts as weight decay)",
    defaults: {},
    recordedOptions: (o) => ({ optimizer: "adam", learningRate: o.learningRate, epochs: o.epochs, batchSize: o.batchSize, temperature: o.temperature }),
    async fit(k, model, train, o) {
      const m = createMap(logDensity(model, { dataSize: train.n, temperature: o.temperature }), { dataSize: train.n, learningRate: o.learningRate });
      const [k0, k1, k2] = split(k, 3);
      const { state } = await fitEpochs(k2, m, m.init(k0, model.init(k1)), train, { epochs: o.epochs, batchSize: o.batchSize, onProgress: o.onProgress });
      free(state.opt);
      free(state.step);
      return stackTrees([state.params]);
    },
  },
  ensemble: {
    summary: "deep ensemble: M MAP networks from independent inits and shuffles, stepped together with vmap",
    defaults: { members: 5 },
    recordedOptions: (o) => ({ optimizer: "adam", members: o.members, learningRate: o.learningRate, epochs: o.epochs, batchSize: o.batchSize, temperature: o.temperature }),
    async fit(k, model, train, o) {
      const m = createEnsemble(logDensity(model, { dataSize: train.n, temperature: o.temperature }), {
        dataSize: train.n,
        learningRate: o.learningRate,
        members: o.members,
      });
      const [k0, k1, k2] = split(k, 3);
      const { state } = await fitEpochs(k2, m, m.init(k0, initMembers(model, k1, o.members)), train, {
        epochs: o.epochs,
        batchSize: o.batchSize,
        lead: o.members,
        onProgress: o.onProgress,
      });
      return m.params(state);
    },
  },
} satisfies Record<string, MethodEntry>;

/** Method names, for help text and validation. */
export type MethodName = keyof typeof METHODS;
export const METHOD_NAMES = Object.keys(METHODS) as MethodName[];
