/**
 * The variational entries of the method table (src/jobs/methods.ts): each fits a q with minibatch
 * steps for `epochs` passes over the data, draws `samples` parameter sets from it for the saved
 * predictive, and returns q's own parameters for `variational.safetensors`.
 *
 * - Network-scale mean-field q over the parameter pytree: `bbb`, `bbb-lrt`, `flipout` (src/vi/bbb.ts),
 *   `alpha` (src/vi/alpha.ts), `proximal-svi` (src/scorevi/proximal.ts).
 * - Flat families over the raveled parameters of a small model (at most {@link FLAT_MAX_DIM}
 *   parameters, e.g. the 751 of a UCI 13-50-1 network): `fullrank` (ADVI, src/vi/advi.ts with
 *   src/vi/gaussian.ts), `flow` (ADVI with a RealNVP flow, src/vi/flows.ts), `gsm` and `bam`
 *   (src/scorevi/). Their minibatch log density is the model's, through `flatLogDensity`.
 */
import { key, np, random, split, tree, vmap, type JArray, type Key, type Tree } from "../core/engine.js";
import type { ArrayData } from "../data/types.js";
import type { NamedTensor, VariationalMeta } from "../io/posterior.js";
import { logDensity, type Batch, type Model, type Params } from "../models/model.js";
import { create as createBam } from "../scorevi/bam.js";
import { sampleState, type GaussianState, type ScoreVi } from "../scorevi/gaussian-state.js";
import { create as createGsm } from "../scorevi/gsm.js";
import { create as createProximal } from "../scorevi/proximal.js";
import { fitEpochs, type Steppable } from "../train/fit.js";
import { create as createAdvi } from "../vi/advi.js";
import { create as createAlpha } from "../vi/alpha.js";
import { create as createBbb, type Estimator } from "../vi/bbb.js";
import type { Family, FlatLogDensity } from "../vi/family.js";
import { flatLogDensity, ravel, unraveler, type Unravel } from "../vi/flat.js";
import { realNvp } from "../vi/flows.js";
import { fullRank, triangularAdam } from "../vi/gaussian.js";
import { create as createMap } from "../baselines/map.js";
import { meanFieldSampleStacked, type MeanField } from "../vi/meanfield.js";
import { samplesToHost } from "./posterior.js";
import { tensorsToTree, treeToTensors, type VariationalKind } from "./variational.js";
import type { CommonFitOptions, FitOutput, MethodEntry } from "./methods.js";

/** Largest parameter count the flat (full-covariance or flow) families accept. */
export const FLAT_MAX_DIM = 3000;

/** `s` draws `[s, d]` mapped to stacked parameter pytrees (leading axis s on every leaf). */
function unravelRows(unravel: Unravel<Params>, rows: JArray): Params {
  return vmap((r: JArray) => unravel(r) as never)(rows) as unknown as Params;
}

/** Saved-q kinds, by family name: how `bayesdl evaluate --samples S` rebuilds and samples them. */
export const VARIATIONAL_KINDS: Record<string, VariationalKind> = {
  meanfield: {
    load(model, _meta, tensors) {
      const mu = tensorsToTree(model.init(key(0)), tensors, "mu");
      const rho = tensorsToTree(model.init(key(0)), tensors, "rho");
      return { mu, rho } as unknown as Tree;
    },
    sample: (k, _model, _meta, q, s) => meanFieldSampleStacked(k, q as unknown as MeanField, s),
  },
  gaussian: {
    load(_model, _meta, tensors) {
      const cov = tensors.find((t) => t.name === "q.cov");
      if (!cov) throw new Error("variational posterior (gaussian) has no tensor 'q.cov'");
      const d = cov.shape[0];
      return tensorsToTree({ mean: np.zeros([d]), cov: np.zeros([d, d]) }, tensors, "q");
    },
    sample(k, model, _meta, q, s) {
      const { mean, cov } = q as { mean: JArray; cov: JArray };
      const d = mean.shape[0];
      const chol = np.linalg.cholesky(cov);
      const rows = np.matmul(random.normal(k, [s, d]), chol.transpose()).add(mean.reshape([1, d]));
      return unravelRows(templateUnravel(model), rows);
    },
  },
  fullrank: flatKind((d) => fullRank(d) as unknown as Family<Tree>),
  realnvp: flatKind((d, o) => realNvp(d, { layers: Number(o.layers), hidden: Number(o.hidden) }) as unknown as Family<Tree>),
};

/** Draw `s` parameter samples from a saved q (consumes `key`); `evaluate --samples S` uses this. */
export function sampleSaved(k: Key, model: Model, meta: VariationalMeta, tensors: readonly NamedTensor[], s: number): Params {
  const kind = Object.prototype.hasOwnProperty.call(VARIATIONAL_KINDS, meta.family) ? VARIATIONAL_KINDS[meta.family] : undefined;
  if (!kind) throw new Error(`unknown variational family '${meta.family}' (known: ${Object.keys(VARIATIONAL_KINDS).join(", ")})`);
  return kind.sample(k, model, meta, kind.load(model, meta, tensors), s);
}

function templateUnravel(model: Model): Unravel<Params> {
  const t = model.init(key(0));
  const u = unraveler(t);
  tree.dispose(t);
  return u;
}

function flatKind(make: (d: number, options: Record<string, unknown>) => Family<Tree>): VariationalKind {
  return {
    load(model, meta, tensors) {
      const u = templateUnravel(model);
      const fam = make(u.size, meta.options);
      return tensorsToTree(fam.init(key(0), np.zeros([u.size]), 1), tensors, "q");
    },
    sample(k, model, meta, q, s) {
      const u = templateUnravel(model);
      return unravelRows(u, make(u.size, meta.options).sample(k, q, s));
    },
  };
}

/** Draws and saved tensors of a fitted q. */
async function output(samples: Params, q: Tree, prefixes: string[], meta: Omit<VariationalMeta, "tensors">, numSamples: number, extra?: Record<string, unknown>): Promise<FitOutput> {
  const leaves = await samplesToHost(samples);
  tree.dispose(samples);
  const parts = await Promise.all(prefixes.map((p) => treeToTensors((q as Record<string, Tree>)[p] ?? q, p)));
  const tensors = parts.flat();
  return { leaves, numSamples, variational: { meta: { ...meta, tensors: tensors.map((t) => ({ name: t.name, shape: t.shape })) }, tensors }, extra };
}

type MfMethod = {
  init(k: Key, p: Params): { q: MeanField } & Tree;
  step(k: Key, s: never, b: Batch): [never, { loss: JArray }];
  sample(k: Key, s: never, n: number): Params;
};

/** The shared body of the pytree (mean-field) entries. */
async function fitMeanField(k: Key, model: Model, train: ArrayData, o: CommonFitOptions, m: MfMethod): Promise<FitOutput> {
  const [k0, k1, k2, k3, k4] = split(k, 5);
  let kMon = k4;
  const mon = o.monitor;
  const afterStep = mon
    ? async (step: number, state: Tree) => {
        if (step % mon.every !== 0) return;
        const [ka, kb] = split(kMon, 2);
        kMon = kb;
        const draws = m.sample(ka, state as never, mon.samples);
        try {
          await mon.fn(step, draws);
        } finally {
          tree.dispose(draws);
        }
      }
    : undefined;
  const { state } = await fitEpochs(k2, m as unknown as Steppable<Tree>, m.init(k0, model.init(k1)) as Tree, train, { epochs: o.epochs, batchSize: o.batchSize, onProgress: o.onProgress, afterStep });
  kMon.dispose();
  const samples = m.sample(k3, state as never, o.samples);
  const q = (state as { q: MeanField }).q as unknown as Tree;
  const out = await output(samples, { mu: (q as MeanField).mu, rho: (q as MeanField).rho } as unknown as Tree, ["mu", "rho"], { family: "meanfield", options: {} }, o.samples);
  tree.dispose(state);
  return out;
}

function checkFlat(method: string, d: number): void {
  if (d > FLAT_MAX_DIM) {
    throw new RangeError(
      `--method ${method} keeps a dense or flow q over all ${d} parameters of this model, more than the ${FLAT_MAX_DIM} it allows; use a smaller model (e.g. --model mlp:50 on UCI data) or a mean-field method (bbb, bbb-lrt, flipout, alpha, proximal-svi)`,
    );
  }
}

const viOptions = (o: CommonFitOptions, extra: Record<string, unknown>) => ({ epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate, samples: o.samples, temperature: o.temperature, initStd: o.initStd, ...extra });

function meanFieldEntry(summary: string, estimator: Estimator): MethodEntry {
  return {
    summary,
    kind: "variational",
    defaultLearningRate: () => 1e-3,
    recordedOptions: (o) => viOptions(o, { estimator, mcSamples: o.mc ?? 1 }),
    fit: (k, model, train, o) =>
      fitMeanField(k, model, train, o, createBbb(model, { dataSize: train.n, estimator, samples: o.mc ?? 1, learningRate: o.learningRate, temperature: o.temperature, sigma0: o.initStd }) as unknown as MfMethod),
  };
}

/** Flat-family entries: ADVI with a family, or a closed-form score method. */
function flatEntry(
  summary: string,
  family: string,
  defaultLr: number,
  options: (o: CommonFitOptions) => Record<string, unknown>,
  make: (ld: FlatLogDensity<Batch>, d: number, o: CommonFitOptions, n: number) => { kind: "advi"; method: ReturnType<typeof createAdvi>; family: Family<Tree> } | { kind: "closed"; method: ScoreVi<Batch> },
): MethodEntry {
  return {
    summary,
    kind: "variational",
    defaultLearningRate: () => defaultLr,
    recordedOptions: (o) => viOptions(o, { ...options(o), warmStart: `map, ${o.epochs} epochs` }),
    async fit(k, model, train, o) {
      const [k0, k1, k2, k3] = split(k, 4);
      const ld = logDensity(model, { dataSize: train.n, temperature: o.temperature === 0 ? 1 : o.temperature });
      const init = await mapWarmStart(k1, model, train, o);
      const flat = flatLogDensity(ld, init);
      const { vec } = ravel(init);
      const d = flat.unravel.size;
      checkFlat(family, d);
      const made = make(flat, d, o, train.n);
      const initStd = o.initStd ?? 1e-2;
      let output0: FitOutput;
      if (made.kind === "advi") {
        const [ka, kb] = split(k0, 2);
        const state0 = made.method.init(ka, made.family.init(kb, vec, initStd) as never);
        const { state } = await fitEpochs(k2, made.method as unknown as Steppable<Tree>, state0 as unknown as Tree, train, { epochs: o.epochs, batchSize: o.batchSize, onProgress: o.onProgress });
        const rows = made.method.sample(k3, state as never, o.samples);
        const q = (state as unknown as { q: Tree }).q;
        output0 = await output(unravelRows(flat.unravel, rows), { q } as unknown as Tree, ["q"], { family, options: options(o) }, o.samples);
        tree.dispose(state);
      } else {
        const method = made.method;
        // The closed-form methods report no objective; the loop shows -logDensity / N at q's mean.
        const stepper: Steppable<GaussianState> = {
          step(kk, s, b) {
            const mean32 = s.mean.ref.astype(np.float32);
            const [s2, info] = method.step(kk, s, tree.ref(b) as Batch);
            const loss = flat(mean32, b).mul(-1 / train.n);
            tree.dispose([info.evaluations, info.lambda]);
            return [s2, { loss: loss.add(info.rejected.mul(0)) }];
          },
        };
        const state0 = method.init(k0, { mean: vec.astype(np.float64), scale: initStd });
        const { state } = await fitEpochs(k2, stepper as unknown as Steppable<Tree>, state0 as unknown as Tree, train, { epochs: o.epochs, batchSize: o.batchSize, onProgress: o.onProgress });
        const st = state as unknown as GaussianState;
        const rows = sampleState(k3, st, o.samples);
        const rejections = Number((await st.rejections.ref.data())[0]);
        output0 = await output(
          unravelRows(flat.unravel, rows),
          { q: { mean: st.mean.ref.astype(np.float32), cov: st.cov.ref.astype(np.float32) } } as unknown as Tree,
          ["q"],
          { family: "gaussian", options: options(o) },
          o.samples,
          { rejectedUpdates: rejections },
        );
        tree.dispose(state);
      }
      return output0;
    },
  };
}

/**
 * MAP warm start of the flat families: `o.epochs` epochs of Adam (rate 1e-3, the `map` method) from
 * the model's init, and q starts around the result. A choice: from a random init, a dense Gaussian or
 * flow q over a network spends its budget on the mean and the Gaussian closed-form updates (GSM, BaM)
 * match scores far from any mode (measured on UCI boston, mlp:50, 40 epochs from the random init: RMSE
 * fullrank 52, gsm 203, bam 25.6, against MAP 3.25). Consumes `k`.
 */
async function mapWarmStart(k: Key, model: Model, train: ArrayData, o: CommonFitOptions): Promise<Params> {
  const [k0, k1, k2] = split(k, 3);
  const m = createMap(logDensity(model, { dataSize: train.n }), { dataSize: train.n, learningRate: 1e-3 });
  const { state } = await fitEpochs(k2, m, m.init(k0, model.init(k1)), train, { epochs: o.epochs, batchSize: o.batchSize });
  tree.dispose([state.opt, state.step]);
  return state.params;
}

/** The variational method entries (merged into METHODS). */
export const VI_METHODS = {
  bbb: meanFieldEntry("Bayes-by-backprop, mean-field Gaussian, reparameterised weights (Blundell et al. 2015)", "reparam"),
  "bbb-lrt": meanFieldEntry("Bayes-by-backprop with local reparameterisation of dense layers (Kingma et al. 2015)", "lrt"),
  flipout: meanFieldEntry("Bayes-by-backprop with flipout perturbations of dense layers (Wen et al. 2018)", "flipout"),
  alpha: {
    summary: "mean-field alpha-divergence VI: black-box alpha (Hernandez-Lobato et al. 2016, Li & Gal 2017) or the Renyi bound (Li & Turner 2016)",
    kind: "variational",
    defaultLearningRate: () => 1e-3,
    recordedOptions: (o) => viOptions(o, { alpha: o.alpha ?? 0.5, objective: o.objective ?? "bb-alpha", mcSamples: o.mc ?? 5 }),
    fit: (k, model, train, o) =>
      fitMeanField(k, model, train, o, createAlpha(model, { dataSize: train.n, alpha: o.alpha ?? 0.5, objective: o.objective ?? "bb-alpha", samples: o.mc ?? 5, learningRate: o.learningRate, sigma0: o.initStd }) as unknown as MfMethod),
  },
  "proximal-svi": {
    summary: "proximal score-matching VI, mean-field Gaussian (in the spirit of Kim 2026)",
    kind: "variational",
    defaultLearningRate: () => 1,
    recordedOptions: (o) => viOptions(o, { lambda: o.lambda ?? 50, innerSteps: o.innerSteps ?? 2, mcSamples: o.mc ?? 2, damping: o.learningRate }),
    fit: (k, model, train, o) =>
      fitMeanField(
        k,
        model,
        train,
        o,
        createProximal(logDensity(model, { dataSize: train.n, temperature: o.temperature === 0 ? 1 : o.temperature }), {
          dataSize: train.n,
          lambda: o.lambda ?? 50,
          innerSteps: o.innerSteps ?? 2,
          samplesPerStep: o.mc ?? 2,
          learningRate: o.learningRate,
          sigma0: o.initStd,
          // The tempered target's prior sd is s0 sqrt(T).
          maxSigma: Math.max(model.prior.scale, ...(model.prior.perLayer ?? [])) * Math.sqrt(o.temperature === 0 ? 1 : o.temperature),
        }) as unknown as MfMethod,
      ),
  },
  fullrank: flatEntry("full-rank Gaussian ADVI over all parameters of a small model (Kucukelbir et al. 2017)", "fullrank", 1e-3, (o) => ({ mcSamples: o.mc ?? 1 }), (ld, d, o) => {
    const family = fullRank(d) as unknown as Family<Tree>;
    return { kind: "advi", family, method: createAdvi(ld, { family, samples: o.mc ?? 1, optimizer: triangularAdam(o.learningRate, o.initStd ?? 1e-2, d, "chol") }) };
  }),
  flow: flatEntry("RealNVP normalizing-flow VI over all parameters of a small model (Dinh et al. 2017)", "realnvp", 1e-3, (o) => ({ layers: o.flowLayers ?? 4, hidden: 32, mcSamples: o.mc ?? 1 }), (ld, d, o) => {
    const family = realNvp(d, { layers: o.flowLayers ?? 4, hidden: 32 }) as unknown as Family<Tree>;
    return { kind: "advi", family, method: createAdvi(ld, { family, samples: o.mc ?? 1, learningRate: o.learningRate }) };
  }),
  gsm: flatEntry("Gaussian score matching, batch closed-form updates (Modi et al. 2023)", "gaussian", 1, (o) => ({ method: "gsm", batchSize: o.mc ?? 8 }), (ld, _d, o) => ({
    kind: "closed",
    method: createGsm(ld as never, { batchSize: o.mc ?? 8 }) as ScoreVi<Batch>,
  })),
  bam: flatEntry("batch-and-match closed-form Gaussian VI (Cai et al. 2024)", "gaussian", 1, (o) => ({ method: "bam", batchSize: o.mc ?? 8, lambda: o.lambda ?? "decay" }), (ld, _d, o) => ({
    kind: "closed",
    method: createBam(ld as never, { batchSize: o.mc ?? 8, schedule: o.lambda }) as ScoreVi<Batch>,
  })),
} satisfies Record<string, MethodEntry>;

