/**
 * The Laplace approximation around a mode (MacKay 1992; Ritter, Botev & Barber 2018 for KFAC; Daxberger,
 * Kristiadi, Immer, Eschenhagen, Bauer & Hennig 2021, "Laplace Redux"):
 *
 *   p(theta | D) ~ N(theta*, (r C + T)^-1),   C = sum_i J_i^T H_i J_i (GGN), or the empirical Fisher,
 *                                             or the exact Hessian of -log p(D | theta) at theta*,
 *
 * over the chosen weights (`--subset`; the rest stay at theta*), with T the Gaussian prior's precision
 * and the curvature in the chosen structure (laplace/curvature.ts). As a method of the contract:
 * `init` takes the mode (the driver fits the MAP first, or `--from` gives it), each `step` adds one
 * minibatch's curvature at the fixed mode, and `posterior` turns the sums into the posterior: it
 * eigendecomposes the Kronecker factors (or the full matrix), tunes the prior precision per layer (and
 * a learned regression noise) by the Laplace evidence (laplace/marglik.ts), and returns the posterior
 * with the linearised predictive (laplace/posterior.ts).
 *
 * The driver drops the last partial batch of the epoch; the sums are scaled by N / (examples seen).
 */
import { MAP_DEFAULTS } from "../baselines/map.js";
import { np, type JArray, type Key } from "../core/engine.js";
import { symEig } from "../core/linalg.js";
import { OPTIONS } from "../core/options.js";
import { use, type DefaultContext, type OptionUses } from "../core/spec.js";
import { keep, leaves } from "../core/tree.js";
import type { Batch, Model, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { layerList, leafScales } from "../models/prior.js";
import { batchCurvature, batchHessian, blockLayers, leafAt, selectBlocks, type Block } from "./curvature.js";
import { maximiseEvidence, logEvidence, type EigenGroup, type EvidenceProblem, type Hyper, type PriorBlock } from "./marglik.js";
import { laplaceKinds, laplacePosterior, uploadBlockFactors, type Factors, type LaplaceOptions, type Link } from "./posterior.js";

/** Options of the `laplace` method. */
export interface LaplaceMethodOptions {
  /** MAP epochs before the curvature pass (when the fit does not start from given weights). */
  epochs: number;
  /** The MAP's Adam learning rate. */
  lr: number;
  hessian: "diag" | "kron" | "full";
  subset: string;
  curvature: "ggn" | "mc" | "ef" | "hessian";
  pred: "glm" | "nn";
  link: Link;
  /** T: the posterior is p(theta | D)^(1/T) (covariance times T); T < 1 a cold posterior. */
  temperature: number;
  priorOpt: "online" | "marglik" | "none";
  samples: number;
}

/** The accumulated curvature sums (engine arrays). */
export type LaplaceState = { params: Params; acc: JArray[]; seen: JArray; logLik: JArray; sse: JArray };

/** Parameters of a full structure above which it is refused (the float64 host matrix and its eigendecomposition). */
export const FULL_MAX_PARAMS = 3000;

/** The Gaussian likelihood's noise scale at the mode (undefined for classification). */
export function modeSigma(model: Model, params: Params): number | undefined {
  const spec = model.likelihood.spec;
  if (spec.kind !== "gaussian") return undefined;
  if (spec.noise === "learned") return Math.exp(Number((params.lik as { logSigma: JArray }).logSigma.ref.dataSync()[0]));
  return spec.sigma;
}

/**
 * Build the Laplace method for a model with N training examples.
 * @example
 * const m = create(model, 8000, { epochs: 20, lr: 3e-3, hessian: "kron", subset: "last-layer", curvature: "ggn", pred: "glm", link: "probit", temperature: 0.1, priorOpt: "marglik", samples: 100 });
 * let state = m.init(key(0), mapParams);                  // the mode
 * for (const batch of epoch) [state] = m.step(key(i), state, batch);
 * const posterior = m.posterior(state);                    // eigendecomposition, evidence, factors
 */
export function create(model: Model, dataSize: number, o: LaplaceMethodOptions): ModelMethod<LaplaceState> {
  if (model.likelihood.spec.kind === "gaussian" && model.likelihood.spec.noise === "heteroscedastic") {
    throw new Error("--method laplace: supports categorical and homoscedastic Gaussian likelihoods; use --noise learned or fixed");
  }
  if (o.curvature === "hessian" && o.hessian !== "full") throw new Error(`--curvature hessian needs --hessian full (the exact Hessian is only formed as a full matrix), got --hessian ${o.hessian}`);
  const structure = o.hessian;
  let blocks: Block[] = [];
  // Kronecker layers' input rows per example (1 dense, the output positions of a convolution), set when the step is traced.
  let rowsPerExample: number[] = [];
  const step = (k: Key, state: LaplaceState, batch: Batch): [LaplaceState, { loss: JArray }] => {
    const n = batch.x.shape[0];
    let sse = state.sse;
    if (model.likelihood.spec.kind === "gaussian") {
      const out = model.network.apply(keep(state.params.net), batch.x.ref).reshape([n]);
      const r = batch.y.ref.sub(out);
      sse = sse.add(r.ref.mul(r).sum());
    }
    let terms: JArray[];
    let logLik: JArray;
    if (o.curvature === "hessian") {
      k.dispose();
      const h = batchHessian(model, keep(state.params), batch, blocks);
      terms = [h.full];
      logLik = h.logLik;
    } else {
      if (o.curvature !== "mc") k.dispose();
      const b = batchCurvature(model, keep(state.params), batch, blocks, structure, o.curvature, 1, o.curvature === "mc" ? k : undefined);
      logLik = b.logLik;
      const c = b.curv;
      if (c.structure === "kron") rowsPerExample = c.a.map((_, j) => c.rows[j] / n);
      terms = c.structure === "diag" ? c.diag : c.structure === "kron" ? [...c.a, ...c.g] : [c.full];
    }
    const acc = state.acc.map((a, i) => a.add(terms[i]));
    return [{ params: state.params, acc, seen: state.seen.add(n), logLik: state.logLik.add(logLik.ref), sse }, { loss: logLik.mul(-1 / n) }];
  };
  return {
    init(k, params) {
      k.dispose();
      blocks = selectBlocks(params, o.subset);
      const p = blocks.reduce((a, b) => a + b.size, 0);
      if (structure === "full" && p > FULL_MAX_PARAMS) {
        const gb = ((p * p * 8 * 3) / 2 ** 30).toFixed(1);
        throw new Error(`--hessian full: the chosen weights number ${p}; a full precision needs ${gb} GiB of float64 host memory and a ${p}x${p} eigendecomposition (limit ${FULL_MAX_PARAMS} weights). Use --hessian kron or diag, or --subset last-layer`);
      }
      const need = curvatureBytes(params, blocks);
      if (need[structure] > MAX_CURVATURE_BYTES) {
        const fits = (["kron", "diag"] as const).filter((s2) => need[s2] <= MAX_CURVATURE_BYTES);
        throw new Error(
          `--hessian ${structure}: the curvature of the chosen weights needs ${gib(need[structure])} (float32 sums on the engine, float64 copies on the host), over the ${gib(MAX_CURVATURE_BYTES)} this allows (the engine's Wasm memory is 4 GiB). ${fits.length ? `--hessian ${fits[0]} needs ${gib(need[fits[0]])}` : "Choose fewer weights with --subset (e.g. last-layer)"}`,
        );
      }
      let acc: JArray[];
      if (structure === "diag") acc = blocks.map((b) => np.zeros(b.kind === "b" ? [b.fanOut] : [b.fanIn, b.fanOut]));
      else if (structure === "kron") {
        const layers = blockLayers(blocks);
        const fan = (l: number) => blocks.find((b) => b.layer === l && b.kind === "w") ?? blocks.find((b) => b.layer === l)!;
        acc = [...layers.map((l) => np.zeros([fanInOf(params, l) + 1, fanInOf(params, l) + 1])), ...layers.map((l) => np.zeros([fan(l).fanOut, fan(l).fanOut]))];
      } else acc = [np.zeros([p, p])];
      return { params, acc, seen: np.array(0), logLik: np.array(0), sse: np.array(0) };
    },
    step,
    posterior(state) {
      return buildPosterior(model, dataSize, keep(state.params), blocks, state, o, rowsPerExample);
    },
  };
}

/** The most memory a structure's curvature may take: half of the engine's 4 GiB of Wasm memory. */
export const MAX_CURVATURE_BYTES = 2 * 2 ** 30;

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * Bytes each structure's curvature takes for these blocks: the float32 sums on the engine plus, for
 * kron and full, the float64 host copies and eigenvectors the posterior is built from.
 */
export function curvatureBytes(params: Params, blocks: readonly Block[]): Record<"diag" | "kron" | "full", number> {
  const p = blocks.reduce((a, b) => a + b.size, 0);
  const layers = blockLayers(blocks);
  const kron = layers.reduce((a, l) => {
    const d = fanInOf(params, l) + 1;
    const o = blocks.find((b) => b.layer === l)!.fanOut;
    return a + (d * d + o * o) * (4 + 16);
  }, 0);
  return { diag: p * 4 * 2, kron, full: p * p * (4 + 24) };
}

function fanInOf(params: Params, layer: number): number {
  const w = (layerList(params.net)[layer] as { w: JArray }).w;
  return w.shape.slice(0, -1).reduce((a, d) => a * d, 1);
}

/** Each block's prior precision 1 / s_leaf^2 under the model's prior (borrows `params`; shapes only). */
export function blockPrecisions(model: Model, params: Params, blocks: readonly Block[]): number[] {
  const layers = layerList(params.net);
  const scales = leafScales(model.prior, layers);
  return blocks.map((b) => 1 / scales[b.layer][leaves(layers[b.layer]).indexOf(leafAt(params, b.path))] ** 2);
}

const host = (a: JArray): Float64Array => Float64Array.from(a.ref.dataSync() as Float32Array);

/** The evidence problem and the host factors of a finished curvature pass (see the module comment). */
export function laplaceProblem(model: Model, dataSize: number, params: Params, blocks: readonly Block[], state: LaplaceState, o: Pick<LaplaceMethodOptions, "hessian" | "curvature" | "priorOpt">, rowsPerExample: readonly number[] = []) {
  const seen = Number(state.seen.ref.dataSync()[0]);
  const scale = dataSize / seen;
  const layers = layerList(params.net);
  // Each layer's beta = 1 / s_l^2 and each leaf's pattern c = tau_leaf / beta.
  const beta0 = layers.map((_, l) => {
    const s = model.prior.perLayer ? model.prior.perLayer[l] : model.prior.scale;
    return 1 / (s * s);
  });
  const tau0 = blockPrecisions(model, params, blocks);
  const chosenLayers = blockLayers(blocks);
  const full = o.hessian === "full";
  const betaOf = (b: Block) => (full ? 0 : chosenLayers.indexOf(b.layer));
  const betaStart = full ? [beta0[blocks[0].layer]] : chosenLayers.map((l) => beta0[l]);
  const pattern = blocks.map((b, i) => tau0[i] / betaStart[betaOf(b)]);
  const priorBlocks: PriorBlock[] = blocks.map((b, i) => {
    const v = host(leafAt(params, b.path));
    let ss = 0;
    for (const x of v) ss += x * x;
    return { beta: betaOf(b), scale: pattern[i], size: b.size, sumSq: ss };
  });
  const gaussian = model.likelihood.spec.kind === "gaussian";
  const data = gaussian ? { kind: "gaussian" as const, n: dataSize, sse: Number(state.sse.ref.dataSync()[0]) * scale } : { kind: "fixed" as const, logLik: Number(state.logLik.ref.dataSync()[0]) * scale };
  const groups: EigenGroup[] = [];
  const hostFactors: { sd: Float64Array; qa?: Float64Array; qg?: Float64Array; lambda: Float64Array; group: number }[] = [];
  let full_: { q: Float64Array; kappa: Float64Array; c: Float64Array; p: number } | undefined;
  let logDetConst = 0;
  if (o.hessian === "diag") {
    blocks.forEach((b, i) => {
      const lam = host(state.acc[i]).map((v) => v * scale);
      groups.push({ beta: betaOf(b), scale: pattern[i], lambda: lam });
      hostFactors.push({ sd: new Float64Array(lam.length), lambda: lam, group: groups.length - 1 });
    });
  } else if (o.hessian === "kron") {
    const m = chosenLayers.length;
    const eig = chosenLayers.map((_, j) => {
      // The weights' factor is A without the appended ones (biases are their own blocks, with the prior's own precision).
      const a = state.acc[j];
      const d = a.shape[0] - 1;
      const aug = host(a);
      const aw = new Float64Array(d * d);
      for (let r = 0; r < d; r++) aw.set(aug.subarray(r * (d + 1), r * (d + 1) + d), r * d);
      const g = state.acc[m + j];
      const ea = symEig(aw, d);
      const eg = symEig(host(g), g.shape[0]);
      return { ea, eg };
    });
    blocks.forEach((b, i) => {
      const j = chosenLayers.indexOf(b.layer);
      const { ea, eg } = eig[j];
      // Rows per example: 1 for dense layers, the output positions of a convolution.
      const rowsTotal = seen * (rowsPerExample[j] ?? 1);
      let lam: Float64Array;
      if (b.kind === "b") lam = eg.values.map((v) => Math.max(v, 0) * scale);
      else {
        lam = new Float64Array(b.fanIn * b.fanOut);
        for (let r = 0; r < b.fanIn; r++) for (let c = 0; c < b.fanOut; c++) lam[r * b.fanOut + c] = (Math.max(ea.values[r], 0) * Math.max(eg.values[c], 0) * scale) / rowsTotal;
      }
      groups.push({ beta: betaOf(b), scale: pattern[i], lambda: lam });
      hostFactors.push({ sd: new Float64Array(lam.length), ...(b.kind === "w" ? { qa: ea.vectors } : {}), qg: eg.vectors, lambda: lam, group: groups.length - 1 });
    });
  } else {
    const p = blocks.reduce((a, b) => a + b.size, 0);
    const f = host(state.acc[0]);
    const c = new Float64Array(p);
    let off = 0;
    blocks.forEach((b, i) => {
      c.fill(pattern[i], off, off + b.size);
      off += b.size;
    });
    const k = new Float64Array(p * p);
    for (let r = 0; r < p; r++) for (let q = 0; q < p; q++) k[r * p + q] = (0.5 * (f[r * p + q] + f[q * p + r]) * scale) / Math.sqrt(c[r] * c[q]);
    const e = symEig(k, p);
    if (o.curvature === "hessian" && e.values[0] < 0) {
      // The exact Hessian need not be PSD away from a strict minimum; its negative directions are clipped to 0 (as the GGN's would be).
      for (let i = 0; i < p; i++) e.values[i] = Math.max(e.values[i], 0);
    }
    for (const v of c) logDetConst += Math.log(v);
    groups.push({ beta: 0, scale: 1, lambda: e.values });
    full_ = { q: e.vectors, kappa: e.values, c, p };
  }
  const problem: EvidenceProblem = { groups, blocks: priorBlocks, data, betas: betaStart.length, noisePower: o.curvature === "ef" ? 4 : 2, logDetConst };
  return { problem, betaStart, hostFactors, full: full_, chosenLayers, beta0 };
}

function buildPosterior(model: Model, dataSize: number, params: Params, blocks: readonly Block[], state: LaplaceState, o: LaplaceMethodOptions, rowsPerExample: readonly number[]) {
  const { factors, options } = laplaceFactors(model, dataSize, params, blocks, state, o, rowsPerExample);
  return laplacePosterior(model, params, factors, options);
}

/**
 * The posterior's covariance factors and options from a finished curvature pass: the evidence problem,
 * the tuned hyperparameters, and per block the standard deviations in the eigenbasis. Borrows everything.
 */
export function laplaceFactors(model: Model, dataSize: number, params: Params, blocks: readonly Block[], state: LaplaceState, o: LaplaceMethodOptions, rowsPerExample: readonly number[] = []): { factors: Factors; options: LaplaceOptions } {
  const pr = laplaceProblem(model, dataSize, params, blocks, state, o, rowsPerExample);
  const sigma0 = modeSigma(model, params);
  const tuneSigma = model.likelihood.spec.kind === "gaussian" && model.likelihood.spec.noise === "learned";
  const start: Hyper = { logBeta: pr.betaStart.map(Math.log), ...(sigma0 !== undefined ? { logSigma: Math.log(sigma0) } : {}) };
  let hyper = start;
  let evidence: number;
  if (o.priorOpt !== "none") {
    const r = maximiseEvidence(pr.problem, start, { tuneSigma });
    hyper = r.hyper;
    evidence = r.value;
  } else evidence = logEvidence(pr.problem, start).value;
  const beta = hyper.logBeta.map(Math.exp);
  const sigma = hyper.logSigma === undefined ? undefined : Math.exp(hyper.logSigma);
  const r = sigma === undefined ? 1 : sigma ** -pr.problem.noisePower;
  // The tempered posterior p^(1/T) of a Gaussian: the same mean, T times the covariance.
  const sqrtT = Math.sqrt(o.temperature);
  let factors: Factors;
  if (pr.full) {
    const { q, kappa, c, p } = pr.full;
    const s = new Float32Array(p * p);
    for (let i = 0; i < p; i++) {
      const ci = 1 / Math.sqrt(c[i]);
      for (let j = 0; j < p; j++) s[i * p + j] = (sqrtT * ci * q[i * p + j]) / Math.sqrt(r * Math.max(kappa[j], 0) + beta[0]);
    }
    factors = { s: np.array(s).reshape([p, p]) };
  } else {
    const hf = pr.hostFactors.map((h) => {
      const g = pr.problem.groups[h.group];
      const tau = beta[g.beta] * g.scale;
      const sd = h.lambda.map((l) => sqrtT / Math.sqrt(r * Math.max(l, 0) + tau));
      return { sd, ...(h.qa ? { qa: h.qa } : {}), ...(h.qg ? { qg: h.qg } : {}) };
    });
    factors = uploadBlockFactors(blocks, hf);
  }
  // The tuned prior scale of each layer (untouched layers keep theirs).
  const priorScales = pr.beta0.map((b0, l) => {
    const j = o.hessian === "full" ? 0 : pr.chosenLayers.indexOf(l);
    if (j < 0 || (o.hessian === "full" && !pr.chosenLayers.includes(l))) return 1 / Math.sqrt(b0);
    // For full, one beta scales every chosen layer's start by the same factor.
    return o.hessian === "full" ? 1 / Math.sqrt((b0 * beta[0]) / pr.betaStart[0]) : 1 / Math.sqrt(beta[j]);
  });
  const options: LaplaceOptions = {
    structure: o.hessian,
    curvature: o.curvature,
    subset: o.subset,
    blocks,
    pred: o.pred,
    link: o.link,
    samples: o.samples,
    ...(sigma !== undefined ? { sigma } : {}),
    priorScales,
    priorOpt: o.priorOpt,
    temperature: o.temperature,
    logEvidence: evidence,
  };
  return { factors, options };
}

/**
 * The default temperatures for classification, by subset: on 6,000 / 2,000 of the training digits
 * (two splits) the T = 1 linearised predictive was less confident than the MAP's (last-layer KFAC:
 * ECE 0.021 against 0.009; all-weights KFAC: NLL 0.59 against 0.13), and these were the largest T that
 * beat the MAP's NLL and ECE on both splits (docs/laplace.md).
 */
export const LAPLACE_CLASSIFICATION_T = { lastLayer: 0.1, other: 0.003 } as const;

/** Rounds of MAP training and evidence tuning of `--prior-opt online` (run/evidence.ts): 20 + 3 x 10 epochs at the defaults. */
export const ONLINE_ROUNDS = 4;

/** `--method laplace`. */
export const spec: ModelMethodSpec<LaplaceMethodOptions> = {
  name: "laplace",
  family: "laplace",
  summary: "Laplace approximation at the MAP: GGN/EF/Hessian curvature, diag/KFAC/full, linearised predictive, evidence-tuned prior",
  paper: "MacKay 1992; Ritter, Botev & Barber 2018 (KFAC Laplace); Immer, Korzepa & Bauer 2021 (linearised predictive); Daxberger et al. 2021, Laplace Redux",
  cost: "1.05x MAP (20 MAP epochs, then one curvature pass); with --prior-opt online (regression's default) 2.5x (20 + 3 x 10 epochs, a curvature pass after each)",
  options: {
    epochs: use(OPTIONS.epochs, 20, "20 (the MAP's; ignored with --from)"),
    lr: use(OPTIONS.lr, MAP_DEFAULTS.learningRate, `${MAP_DEFAULTS.learningRate} (the MAP's)`),
    hessian: use(
      OPTIONS.hessian,
      (c: DefaultContext) => (!c.classification && (c.paramCount ?? Infinity) <= FULL_MAX_PARAMS ? "full" : "kron"),
      `regression with at most ${FULL_MAX_PARAMS.toLocaleString("en-US")} weights full, otherwise kron (docs/laplace.md)`,
    ),
    subset: use(OPTIONS.subset, (c: DefaultContext) => (c.classification ? "last-layer" : "all"), "classification last-layer, regression all"),
    curvature: use(OPTIONS.curvature, "ggn" as LaplaceMethodOptions["curvature"]),
    pred: use(OPTIONS.pred, "glm" as LaplaceMethodOptions["pred"]),
    link: use(OPTIONS.link, "probit" as Link),
    temperature: use(
      OPTIONS.temperature,
      (c: DefaultContext, o: Readonly<Partial<LaplaceMethodOptions>>) => (c.classification ? (o.subset === "last-layer" ? LAPLACE_CLASSIFICATION_T.lastLayer : LAPLACE_CLASSIFICATION_T.other) : 1),
      `classification ${LAPLACE_CLASSIFICATION_T.lastLayer} with --subset last-layer, ${LAPLACE_CLASSIFICATION_T.other} otherwise (cold posteriors, chosen on training digits: docs/laplace.md); regression 1`,
    ),
    priorOpt: use(OPTIONS.priorOpt, (c: DefaultContext) => (c.classification ? "marglik" : "online"), "classification marglik, regression online (docs/laplace.md)"),
    samples: use(OPTIONS.samples, 100),
  } satisfies OptionUses<LaplaceMethodOptions>,
  kinds: laplaceKinds,
  plan: (o) => ({ collect: "final", epochs: 1, warmStart: { epochs: o.epochs, lr: o.lr, ...(o.priorOpt === "online" ? { evidenceRounds: ONLINE_ROUNDS } : {}) }, draws: o.pred === "nn" ? o.samples : 1 }),
  build: (ctx, o) => create(ctx.model, ctx.dataSize, o),
};
