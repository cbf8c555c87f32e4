/**
 * The Laplace approximation around a mode (MacKay 1992; Ritter, Botev & Barber 2018 for KFAC; Daxberger,
 * Kristiadi, Immer, Eschenhagen, Bauer & Hennig 2021, "Laplace Redux"):
 *
 *   p(theta | D) ~ N(theta*, (r C + T)^-1),   C = sum_i J_i^T H_i J_i (GGN), or the empirical Fisher,
 *                                             or the exact Hessian of -log p(D | theta) at theta*,
 *
 * over the chosen weights (`--subset`; the rest stay at theta*), with T the Gaussian prior's precision
 * and the curvature in the chosen structure (laplace/curvature.ts; the low-rank structure, the top-k
 * eigenpairs of the prior-whitened curvature plus the rest of its diagonal, from a Nystrom sketch
 * C Omega of 2k + 8 directions, Tropp, Yurtsever, Udell & Cevher 2017). As a method of the contract:
 * `init` takes the mode (the driver fits the MAP first, or `--from` gives it), each `step` adds one
 * minibatch's curvature at the fixed mode, and `posterior` turns the sums into the posterior: it
 * eigendecomposes the Kronecker factors (or the full matrix), tunes the prior precision per layer (and
 * a learned regression noise) by the Laplace evidence (laplace/marglik.ts), and returns the posterior
 * with the linearised predictive (laplace/posterior.ts).
 *
 * The driver drops the last partial batch of the epoch; the sums are scaled by N / (examples seen).
 */
import { MAP_DEFAULTS } from "../baselines/map.js";
import { fromHost, np, random, type JArray, type Key } from "../core/engine.js";
import type { Posterior } from "../core/method.js";
import { matmul, nystromEig, qrOrthonormal, symEig, transpose } from "../core/linalg.js";
import { OPTIONS } from "../core/options.js";
import { use, type BuildContext, type DefaultContext, type OptionUses } from "../core/spec.js";
import { keep, leaves } from "../core/tree.js";
import type { Batch, Model, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { layerList, leafScales } from "../models/prior.js";
import { batchCurvature, batchHessian, blockLayers, leafAt, outputDirections, selectBlocks, type Block } from "./curvature.js";
import { blockGrads, linearisedPass } from "./linearised.js";
import { maximiseByCoordinates, maximiseEvidence, maximiseWeightwise, logEvidence, weightwiseEvidence, type EigenGroup, type EvidenceProblem, type Hyper, type PriorBlock, type WeightwiseProblem } from "./marglik.js";
import { laplaceKinds, laplacePosterior, uploadBlockFactors, type Factors, type LaplaceOptions, type Link } from "./posterior.js";

/** Options of the `laplace` method. */
export interface LaplaceMethodOptions {
  /** MAP epochs before the curvature pass (when the fit does not start from given weights). */
  epochs: number;
  /** The MAP's Adam learning rate. */
  lr: number;
  hessian: "diag" | "kron" | "full" | "lowrank";
  /** Eigenpairs kept by the low-rank structure. */
  rank: number;
  subset: string;
  curvature: "ggn" | "mc" | "ef" | "hessian";
  pred: "glm" | "nn";
  link: Link;
  /** T: the posterior is p(theta | D)^(1/T) (covariance times T); T < 1 a cold posterior. */
  temperature: number;
  priorOpt: "online" | "marglik" | "grid" | "none";
  /** What the evidence tunes: one multiplier for all weights, one per layer, or a precision per weight. */
  priorStructure: PriorStructure;
  /** Multiplies the prior precision after tuning (set by the grid's refit). */
  priorMultiplier: number;
  samples: number;
}

/** The granularity of the prior precision the evidence tunes (`--prior-structure`). */
export type PriorStructure = "scalar" | "layer" | "diagonal";

/**
 * Whether the evidence is maximised weight by weight (marglik.ts's {@link WeightwiseProblem}): a
 * per-weight prior, or a per-layer one under the full structure (whose single eigendecomposition
 * serves one shared multiplier only).
 */
export function weightwiseTuning(o: Pick<LaplaceMethodOptions, "hessian" | "priorStructure" | "priorOpt">): boolean {
  return (o.priorOpt === "marglik" || o.priorOpt === "online") && (o.priorStructure === "diagonal" || (o.priorStructure === "layer" && o.hessian === "full"));
}

/** The accumulated curvature sums (engine arrays). */
export type LaplaceState = { params: Params; acc: JArray[]; seen: JArray; logLik: JArray; sse: JArray; omega: JArray[] };

/** Parameters of a full structure above which it is refused (the float64 host matrix and its eigendecomposition). */
export const FULL_MAX_PARAMS = 3000;

/** Columns of the low-rank structure's sketch for rank k: 2k + 8 (oversampled, Tropp et al. 2017), at most the weights. */
export function sketchSize(rank: number, weights: number): number {
  return Math.min(weights, 2 * rank + 8);
}

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
export function create(model: Model, dataSize: number, o: LaplaceMethodOptions, validation?: Validation): ModelMethod<LaplaceState> {
  if (o.priorOpt === "grid" && o.pred !== "glm") throw new Error("--prior-opt grid: scores the linearised predictive, so it needs --pred glm");
  if (o.priorOpt === "grid" && !validation) throw new Error("--prior-opt grid: needs validation data (the driver holds out part of the training data when the plan asks for it)");
  if (model.likelihood.spec.kind === "gaussian" && model.likelihood.spec.noise === "heteroscedastic") {
    throw new Error("--method laplace: supports categorical and homoscedastic Gaussian likelihoods; use --noise learned or fixed");
  }
  if (o.hessian === "lowrank" && o.curvature === "hessian") throw new Error("--hessian lowrank: sketches the curvature by curvature-vector products of --curvature ggn, mc or ef, not the exact Hessian");
  if (o.hessian === "lowrank" && !model.network.applyLinear) throw new Error(`--hessian lowrank: network ${model.network.spec} does not expose its layers (applyLinear)`);
  const byEvidence = o.priorOpt === "marglik" || o.priorOpt === "online";
  if (byEvidence && o.priorStructure === "diagonal" && o.hessian !== "diag" && o.hessian !== "full") {
    throw new Error(`--prior-structure diagonal needs --hessian diag or full (a prior precision per weight does not share the eigenbasis of --hessian ${o.hessian}'s factors, so its log determinant would need the whole matrix), got --hessian ${o.hessian}`);
  }
  if (byEvidence && o.priorStructure === "layer" && o.hessian === "lowrank") {
    throw new Error("--prior-structure layer: --hessian lowrank tunes one scalar (its eigenpairs are of the curvature whitened by the whole prior, which a per-layer change would alter); use --prior-structure scalar, or --hessian diag, kron or full");
  }
  if (o.curvature === "hessian" && o.hessian !== "full") throw new Error(`--curvature hessian needs --hessian full (the exact Hessian is only formed as a full matrix), got --hessian ${o.hessian}`);
  const structure = o.hessian;
  let blocks: Block[] = [];
  // Kronecker layers' input rows per example (1 dense, the output positions of a convolution), set when the step is traced.
  let rowsPerExample: number[] = [];
  // Low rank: the sketch's directions are T0^-1/2 Omega, T0 each block's prior precision.
  let whiten: number[] = [];
  const lowRankStep = (k: Key, state: LaplaceState, batch: Batch, sse: JArray): [LaplaceState, { loss: JArray }] => {
    const n = batch.x.shape[0];
    const y = batch.y;
    const nb = blocks.length;
    const curv = o.curvature as "ggn" | "mc" | "ef";
    // The curvature's diagonal (for the remainder outside the kept eigenpairs), with the same labels for mc.
    const diag = batchCurvature(model, keep(state.params), { x: batch.x.ref, y: y.ref }, blocks, "diag", curv, 1, curv === "mc" ? k.ref : undefined);
    if (diag.curv.structure !== "diag") throw new Error("unreachable");
    const logLik = diag.logLik;
    const z = state.omega.map((w, i) => w.ref.mul(whiten[i]));
    const g = linearisedPass(model, state.params.net, batch.x, blocks, z, (out, u) => {
      const dirs = outputDirections(model, curv, out, y, 1, curv === "mc" ? k : undefined); // [D, n, d]
      // sum_D dir_D (dir_D . u): the curvature's output-space matrix times each sketch column's J z.
      const proj = dirs.ref.reshape([1, ...dirs.shape]).mul(u.reshape([u.shape[0], 1, n, u.shape[2]])).sum(-1); // [l, D, n]
      return proj.reshape([...proj.shape, 1]).mul(dirs.reshape([1, ...dirs.shape])).sum(1);
    });
    if (curv !== "mc") k.dispose();
    g.u.dispose();
    const r = blockGrads(blocks, blockLayers(blocks), g.rows, g.deltas);
    g.rows.forEach((a) => a.dispose());
    g.deltas.forEach((a) => a.dispose());
    z.forEach((a) => a.dispose());
    const dg = diag.curv.diag;
    const acc = state.acc.map((a, i) => a.add(i < nb ? r[i].mul(whiten[i]) : dg[i - nb]));
    return [{ params: state.params, acc, seen: state.seen.add(n), logLik: state.logLik.add(logLik.ref), sse, omega: state.omega }, { loss: logLik.mul(-1 / n) }];
  };
  const step = (k: Key, state: LaplaceState, batch: Batch): [LaplaceState, { loss: JArray }] => {
    const n = batch.x.shape[0];
    let sse = state.sse;
    if (model.likelihood.spec.kind === "gaussian") {
      const out = model.network.apply(keep(state.params.net), batch.x.ref).reshape([n]);
      const r = batch.y.ref.sub(out);
      sse = sse.add(r.ref.mul(r).sum());
    }
    if (structure === "lowrank") return lowRankStep(k, state, batch, sse);
    let terms: JArray[];
    let logLik: JArray;
    if (o.curvature === "hessian") {
      k.dispose();
      const h = batchHessian(model, keep(state.params), batch, blocks);
      terms = [h.full];
      logLik = h.logLik;
    } else {
      if (o.curvature !== "mc") k.dispose();
      const b = batchCurvature(model, keep(state.params), batch, blocks, structure as "diag" | "kron" | "full", o.curvature, 1, o.curvature === "mc" ? k : undefined);
      logLik = b.logLik;
      const c = b.curv;
      if (c.structure === "kron") rowsPerExample = c.a.map((_, j) => c.rows[j] / n);
      terms = c.structure === "diag" ? c.diag : c.structure === "kron" ? [...c.a, ...c.g] : [c.full];
    }
    const acc = state.acc.map((a, i) => a.add(terms[i]));
    return [{ params: state.params, acc, seen: state.seen.add(n), logLik: state.logLik.add(logLik.ref), sse, omega: state.omega }, { loss: logLik.mul(-1 / n) }];
  };
  return {
    init(k, params) {
      blocks = selectBlocks(params, o.subset);
      const p = blocks.reduce((a, b) => a + b.size, 0);
      if (structure === "full" && p > FULL_MAX_PARAMS) {
        k.dispose();
        const gb = ((p * p * 8 * 3) / 2 ** 30).toFixed(1);
        throw new Error(`--hessian full: the chosen weights number ${p}; a full precision needs ${gb} GiB of float64 host memory and a ${p}x${p} eigendecomposition (limit ${FULL_MAX_PARAMS} weights). Use --hessian lowrank, kron or diag, or --subset last-layer`);
      }
      if (structure === "lowrank" && o.rank > p) {
        k.dispose();
        throw new Error(`--rank: at most the number of chosen weights (${p}), got ${o.rank}`);
      }
      const need = curvatureBytes(params, blocks, o.rank);
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
      } else if (structure === "lowrank") acc = [...blocks.map((b) => np.zeros([sketchSize(o.rank, p), ...b.shape])), ...blocks.map((b) => np.zeros(b.kind === "b" ? [b.fanOut] : [b.fanIn, b.fanOut]))];
      else acc = [np.zeros([p, p])];
      let omega: JArray[] = [];
      if (structure === "lowrank") {
        whiten = blockPrecisions(model, params, blocks).map((t) => 1 / Math.sqrt(t));
        omega = sketchColumns(k, blocks, sketchSize(o.rank, p));
      } else k.dispose();
      return { params, acc, seen: np.array(0), logLik: np.array(0), sse: np.array(0), omega };
    },
    step,
    posterior(state) {
      const params = keep(state.params);
      if (o.priorOpt === "grid") return gridPosterior(model, dataSize, params, blocks, state, o, validation!, rowsPerExample);
      return buildPosterior(model, dataSize, params, blocks, state, o, rowsPerExample);
    },
  };
}

/**
 * The low-rank structure's sketch directions: l orthonormal columns of a Gaussian p x l matrix (QR on
 * the host, float64), per block `[l, ...shape]`. Consumes `k`.
 */
function sketchColumns(k: Key, blocks: readonly Block[], l: number): JArray[] {
  const p = blocks.reduce((a, b) => a + b.size, 0);
  const g = random.normal(k, [p, l]);
  const q = transpose(qrOrthonormal(Float64Array.from(g.dataSync() as Float32Array), p, l), p, l); // l x p
  let off = 0;
  return blocks.map((b) => {
    const out = new Float32Array(l * b.size);
    for (let j = 0; j < l; j++) out.set(q.subarray(j * p + off, j * p + off + b.size), j * b.size);
    off += b.size;
    return fromHost(out, [l, ...b.shape]);
  });
}

/**
 * The low-rank structure in the prior-whitened basis (c the prior's pattern): the curvature
 * K = c^-1/2 C c^-1/2 taken as U diag(kappa) U^T (k eigenpairs, `u` k x p) plus the diagonal
 * `rem` = diag(K) - diag(U kappa U^T) (clipped at 0), so that the posterior precision is
 * c^1/2 (r (U kappa U^T + diag(rem)) + beta I) c^1/2.
 */
export interface LowRank {
  readonly u: Float64Array;
  readonly kappa: Float64Array;
  readonly c: Float64Array;
  readonly p: number;
  readonly rem: Float64Array;
}

/**
 * The whitened precision P = D + U (r kappa) U^T, D = r rem + beta, as D^1/2 (I + B B^T) D^1/2 with
 * B = D^-1/2 U (r kappa)^1/2: returns D, the eigendecomposition B^T B = V diag(s2) V^T (k x k) and
 * log det P = sum log D + sum log(1 + s2). Cost: p k^2.
 */
export function lowRankPrecision(lr: LowRank, beta: number, r: number): { d: Float64Array; s2: Float64Array; v: Float64Array; logDet: number } {
  const { u, kappa, p, rem } = lr;
  const k = kappa.length;
  const d = rem.map((x) => r * x + beta);
  const inv = d.map((x) => 1 / x);
  const gram = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    const ui = u.subarray(i * p, (i + 1) * p);
    for (let j = 0; j <= i; j++) {
      const uj = u.subarray(j * p, (j + 1) * p);
      let acc = 0;
      for (let t = 0; t < p; t++) acc += ui[t] * inv[t] * uj[t];
      gram[i * k + j] = gram[j * k + i] = acc * r * Math.sqrt(Math.max(kappa[i], 0) * Math.max(kappa[j], 0));
    }
  }
  const e = symEig(gram, k);
  let logDet = 0;
  for (const x of d) logDet += Math.log(x);
  for (const s of e.values) logDet += Math.log1p(Math.max(s, 0));
  return { d, s2: e.values.map((s) => Math.max(s, 0)), v: e.vectors, logDet };
}

/** The most memory a structure's curvature may take: half of the engine's 4 GiB of Wasm memory. */
export const MAX_CURVATURE_BYTES = 2 * 2 ** 30;

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * Bytes each structure's curvature takes for these blocks: the float32 sums on the engine plus, for
 * kron and full, the float64 host copies and eigenvectors the posterior is built from.
 */
export function curvatureBytes(params: Params, blocks: readonly Block[], rank = 0): Record<"diag" | "kron" | "full" | "lowrank", number> {
  const p = blocks.reduce((a, b) => a + b.size, 0);
  const layers = blockLayers(blocks);
  const kron = layers.reduce((a, l) => {
    const d = fanInOf(params, l) + 1;
    const o = blocks.find((b) => b.layer === l)!.fanOut;
    return a + (d * d + o * o) * (4 + 16);
  }, 0);
  // Low rank: the float32 sketch and its directions on the engine, four float64 p x l host arrays.
  return { diag: p * 4 * 2, kron, full: p * p * (4 + 24), lowrank: p * sketchSize(rank, p) * (8 + 32) };
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
export function laplaceProblem(
  model: Model,
  dataSize: number,
  params: Params,
  blocks: readonly Block[],
  state: LaplaceState,
  o: Pick<LaplaceMethodOptions, "hessian" | "curvature" | "priorOpt" | "rank"> & Partial<Pick<LaplaceMethodOptions, "priorStructure">>,
  rowsPerExample: readonly number[] = [],
) {
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
  // One beta scales the whole prior: --prior-structure scalar, and always for full and lowrank (an
  // eigendecomposition of all chosen weights together; their other structures are tuned weight by weight).
  const full = o.hessian === "full" || o.hessian === "lowrank" || o.priorStructure === "scalar";
  const betaOf = (b: Block) => (full ? 0 : chosenLayers.indexOf(b.layer));
  const betaStart = full ? [beta0[blocks[0].layer]] : chosenLayers.map((l) => beta0[l]);
  const pattern = blocks.map((b, i) => tau0[i] / betaStart[betaOf(b)]);
  const pTotal = blocks.reduce((a, b) => a + b.size, 0);
  // Per weight (block order), for the weightwise evidence: theta*^2, the pattern under a per-layer prior, the layer.
  const theta2 = new Float64Array(pTotal);
  const layerPattern = new Float64Array(pTotal);
  const group = new Int32Array(pTotal);
  // Each weight's model prior precision, where the weightwise tuning starts.
  const tauStart = new Float64Array(pTotal);
  let at = 0;
  const priorBlocks: PriorBlock[] = blocks.map((b, i) => {
    const v = host(leafAt(params, b.path));
    let ss = 0;
    for (const x of v) ss += x * x;
    for (let t = 0; t < b.size; t++) theta2[at + t] = v[t] * v[t];
    layerPattern.fill(tau0[i] / beta0[b.layer], at, at + b.size);
    group.fill(chosenLayers.indexOf(b.layer), at, at + b.size);
    tauStart.fill(tau0[i], at, at + b.size);
    at += b.size;
    return { beta: betaOf(b), scale: pattern[i], size: b.size, sumSq: ss };
  });
  const gaussian = model.likelihood.spec.kind === "gaussian";
  const data = gaussian ? { kind: "gaussian" as const, n: dataSize, sse: Number(state.sse.ref.dataSync()[0]) * scale } : { kind: "fixed" as const, logLik: Number(state.logLik.ref.dataSync()[0]) * scale };
  const groups: EigenGroup[] = [];
  const hostFactors: { sd: Float64Array; qa?: Float64Array; qg?: Float64Array; lambda: Float64Array; group: number }[] = [];
  let full_: { q: Float64Array; kappa: Float64Array; c: Float64Array; p: number } | undefined;
  let lowRank: LowRank | undefined;
  // The curvature the weightwise evidence needs: the diagonal, or (full) the dense matrix at unit noise.
  let weightCurvature: WeightwiseProblem["curvature"] | undefined;
  let logDetConst = 0;
  if (o.hessian === "diag") {
    const all = new Float64Array(pTotal);
    let off = 0;
    blocks.forEach((b, i) => {
      const lam = host(state.acc[i]).map((v) => v * scale);
      groups.push({ beta: betaOf(b), scale: pattern[i], lambda: lam });
      hostFactors.push({ sd: new Float64Array(lam.length), lambda: lam, group: groups.length - 1 });
      all.set(lam, off);
      off += lam.length;
    });
    weightCurvature = { kind: "diag", lambda: all };
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
  } else if (o.hessian === "lowrank") {
    // The sketch Y = K' Omega of K' = T0^-1/2 C T0^-1/2 (T0 the model prior's precisions); the full
    // structure's K = c^-1/2 C c^-1/2 (c = T0 / beta_start) is beta_start K', with the same eigenvectors.
    const p = blocks.reduce((a, b) => a + b.size, 0);
    const l = state.omega[0].shape[0];
    const omT = new Float64Array(l * p);
    const yT = new Float64Array(l * p);
    let off = 0;
    blocks.forEach((b, i) => {
      const om = host(state.omega[i]);
      const y = host(state.acc[i]);
      for (let j = 0; j < l; j++) {
        omT.set(om.subarray(j * b.size, (j + 1) * b.size), j * p + off);
        const row = yT.subarray(j * p + off, j * p + off + b.size);
        row.set(y.subarray(j * b.size, (j + 1) * b.size));
        for (let t = 0; t < b.size; t++) row[t] *= scale;
      }
      off += b.size;
    });
    const e = nystromEig(omT, yT, p, l, o.rank);
    const kappa = e.values.map((v) => v * betaStart[0]);
    const c = new Float64Array(p);
    off = 0;
    blocks.forEach((b, i) => {
      c.fill(pattern[i], off, off + b.size);
      off += b.size;
    });
    for (const v of c) logDetConst += Math.log(v);
    // The remainder of K's diagonal outside the kept eigenpairs: diag(K) - diag(U kappa U^T), at least 0.
    const rem = new Float64Array(p);
    off = 0;
    blocks.forEach((b, i) => {
      const dg = host(state.acc[blocks.length + i]);
      for (let t = 0; t < b.size; t++) rem[off + t] = (dg[t] * scale) / c[off + t];
      off += b.size;
    });
    for (let j = 0; j < o.rank; j++) {
      const uj = e.vectors.subarray(j * p, (j + 1) * p);
      for (let t = 0; t < p; t++) rem[t] -= kappa[j] * uj[t] * uj[t];
    }
    for (let t = 0; t < p; t++) rem[t] = Math.max(rem[t], 0);
    // The evidence's log det is not a sum over one eigenbasis here: the group carries the prior's
    // beta I alone, and laplaceFactors swaps in lowRankPrecision's log det.
    groups.push({ beta: 0, scale: 1, lambda: new Float64Array(p) });
    lowRank = { u: e.vectors, kappa, c, p, rem };
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
    if (weightwiseTuning({ hessian: o.hessian, priorOpt: o.priorOpt, priorStructure: o.priorStructure ?? "scalar" })) {
      // The weightwise evidence's dense C = c^1/2 Q max(kappa, 0) Q^T c^1/2: float32 round-off leaves the
      // summed GGN slightly indefinite, which a precision near its lower bound would not cover.
      const qs = new Float64Array(p * p);
      for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) qs[i * p + j] = e.vectors[i * p + j] * Math.sqrt(Math.max(e.values[j], 0) * c[i]);
      weightCurvature = { kind: "dense", c: matmul(qs, transpose(qs, p, p), p, p, p) };
    }
    for (const v of c) logDetConst += Math.log(v);
    groups.push({ beta: 0, scale: 1, lambda: e.values });
    full_ = { q: e.vectors, kappa: e.values, c, p };
  }
  const noisePower = o.curvature === "ef" ? 4 : 2;
  const problem: EvidenceProblem = { groups, blocks: priorBlocks, data, betas: betaStart.length, noisePower, logDetConst };
  const weightwise: WeightwiseProblem | undefined = weightCurvature && { theta2, pattern: layerPattern, group, groups: chosenLayers.length, curvature: weightCurvature, data, noisePower };
  return { problem, betaStart, hostFactors, full: full_, lowRank, chosenLayers, beta0, weightwise, tauStart };
}

/** The validation NLL of held-out training examples, as the driver hands it to the method. */
export type Validation = NonNullable<BuildContext<Model, Params, Batch>["validation"]>;

/** The multipliers of the prior precision `--prior-opt grid` tries: 10^-4 to 10^4 in half decades. */
export const PRIOR_GRID: readonly number[] = Array.from({ length: 17 }, (_, i) => 10 ** (-4 + i / 2));

/** The fraction of the training examples `--prior-opt grid` holds out. */
export const GRID_VALIDATION = 0.2;

/**
 * `--prior-opt grid` (the alternative to the evidence in Daxberger et al. 2021): the posterior at each
 * prior precision multiplier of {@link PRIOR_GRID} (every tuned layer's beta times it, a learned noise
 * at the mode's), scored by its validation NLL; the lowest wins. The scores are saved with it.
 */
function gridPosterior(model: Model, dataSize: number, params: Params, blocks: readonly Block[], state: LaplaceState, o: LaplaceMethodOptions, val: Validation, rowsPerExample: readonly number[]): Posterior<Params> {
  const problem = laplaceProblem(model, dataSize, params, blocks, state, o, rowsPerExample);
  const sigma0 = modeSigma(model, params);
  const hyperOf = (rho: number): Hyper => ({ logBeta: problem.betaStart.map((b) => Math.log(b * rho)), ...(sigma0 !== undefined ? { logSigma: Math.log(sigma0) } : {}) });
  const scores = PRIOR_GRID.map((rho) => {
    const { factors, options } = laplaceFactors(model, dataSize, params, blocks, state, o, rowsPerExample, { problem, hyper: hyperOf(rho) });
    const post = laplacePosterior(model, keep(params), factors, options);
    const nll = val.nll(post);
    post.dispose();
    return nll;
  });
  let best = 0;
  scores.forEach((v, i) => {
    if (v < scores[best]) best = i;
  });
  const { factors, options } = laplaceFactors(model, dataSize, params, blocks, state, o, rowsPerExample, { problem, hyper: hyperOf(PRIOR_GRID[best]) });
  return laplacePosterior(model, params, factors, { ...options, grid: { multipliers: PRIOR_GRID, validationNll: scores, validationSize: val.n } });
}

function buildPosterior(model: Model, dataSize: number, params: Params, blocks: readonly Block[], state: LaplaceState, o: LaplaceMethodOptions, rowsPerExample: readonly number[]) {
  const { factors, options } = laplaceFactors(model, dataSize, params, blocks, state, o, rowsPerExample);
  return laplacePosterior(model, params, factors, options);
}

/**
 * The posterior's covariance factors and options from a finished curvature pass: the evidence problem,
 * the tuned hyperparameters, and per block the standard deviations in the eigenbasis. Borrows everything.
 */
export function laplaceFactors(model: Model, dataSize: number, params: Params, blocks: readonly Block[], state: LaplaceState, o: LaplaceMethodOptions, rowsPerExample: readonly number[] = [], at?: { readonly problem: ReturnType<typeof laplaceProblem>; readonly hyper: Hyper }): { factors: Factors; options: LaplaceOptions } {
  const pr = at?.problem ?? laplaceProblem(model, dataSize, params, blocks, state, o, rowsPerExample);
  const sigma0 = modeSigma(model, params);
  const tuneSigma = model.likelihood.spec.kind === "gaussian" && model.likelihood.spec.noise === "learned";
  const start: Hyper = { logBeta: pr.betaStart.map(Math.log), ...(sigma0 !== undefined ? { logSigma: Math.log(sigma0) } : {}) };
  const ww = !at && weightwiseTuning(o) ? pr.weightwise : undefined;
  if (ww) {
    const w = weightwiseFactors(ww, pr, blocks, o, { tau: pr.tauStart, ...(start.logSigma !== undefined ? { logSigma: start.logSigma } : {}) }, tuneSigma);
    return { factors: w.factors, options: { ...laplaceOptions(o, blocks, w.sigma, w.priorScales, w.evidence), fixedPointIterations: w.iterations } };
  }
  let hyper = start;
  let evidence: number;
  const lr = pr.lowRank;
  const lowRankValue = (h: Hyper) => {
    const rOf = h.logSigma === undefined ? 1 : Math.exp(h.logSigma) ** -pr.problem.noisePower;
    return logEvidence(pr.problem, h).value + 0.5 * lr!.p * h.logBeta[0] - 0.5 * lowRankPrecision(lr!, Math.exp(h.logBeta[0]), rOf).logDet;
  };
  if (at) {
    // Given hyperparameters (the validation grid): only the evidence there.
    hyper = at.hyper;
    evidence = lr ? lowRankValue(hyper) : logEvidence(pr.problem, hyper).value;
  } else if (o.priorOpt === "grid") {
    throw new Error("laplaceFactors: --prior-opt grid sets the hyperparameters by validation (gridPosterior)");
  } else if (lr) {
    // log Z with the low-rank structure's log det: the problem's (which has beta I alone) corrected.
    const value = lowRankValue;
    const hyperAt = (x: number[]): Hyper => ({ logBeta: [x[0]], ...(start.logSigma !== undefined ? { logSigma: tuneSigma ? x[1] : start.logSigma } : {}) });
    if (o.priorOpt !== "none") {
      const x0 = [start.logBeta[0], ...(tuneSigma ? [start.logSigma!] : [])];
      const m = maximiseByCoordinates((x) => value(hyperAt(x)), x0, x0.map((v, i) => v - (i === 0 ? 18.4 : 10)), x0.map((v, i) => v + (i === 0 ? 18.4 : 10)));
      hyper = hyperAt(m.x);
      evidence = m.value;
    } else evidence = value(start);
  } else if (o.priorOpt !== "none") {
    const r = maximiseEvidence(pr.problem, start, { tuneSigma });
    hyper = r.hyper;
    evidence = r.value;
  } else evidence = logEvidence(pr.problem, start).value;
  if (!at && o.priorMultiplier !== 1) {
    hyper = { ...hyper, logBeta: hyper.logBeta.map((b) => b + Math.log(o.priorMultiplier)) };
    evidence = lr ? lowRankValue(hyper) : logEvidence(pr.problem, hyper).value;
  }
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
  } else if (lr) {
    // Sigma = T c^-1/2 P^-1 c^-1/2 with P = D^1/2 (I + B B^T) D^1/2 (lowRankPrecision). With
    // B = Q diag(s) V^T (Q = B V diag(s)^-1, orthonormal), (I + B B^T)^-1 = I + Q diag(m) Q^T,
    // m_j = 1 / (1 + s_j^2) - 1, so Sigma = diag(d) (I + Q diag(m) Q^T) diag(d), d = sqrt(T / (c D)).
    const { u, kappa, c, p } = lr;
    const k = kappa.length;
    const pp = lowRankPrecision(lr, beta[0], r);
    const d = c.map((ci, t) => sqrtT / Math.sqrt(ci * pp.d[t]));
    const q = new Float64Array(k * p);
    const m = new Float32Array(k);
    for (let j = 0; j < k; j++) {
      const sj = pp.s2[j];
      m[j] = 1 / (1 + sj) - 1;
      if (!(sj > 0)) continue;
      const qj = q.subarray(j * p, (j + 1) * p);
      for (let i = 0; i < k; i++) {
        // B's column i is D^-1/2 u_i sqrt(r kappa_i).
        const w = (pp.v[i * k + j] * Math.sqrt(r * Math.max(kappa[i], 0))) / Math.sqrt(sj);
        if (w === 0) continue;
        const ui = u.subarray(i * p, (i + 1) * p);
        for (let t = 0; t < p; t++) qj[t] += (w * ui[t]) / Math.sqrt(pp.d[t]);
      }
    }
    let off = 0;
    factors = {
      m: fromHost(m, [k]),
      blocks: blocks.map((blk) => {
        const sd = Float32Array.from(d.subarray(off, off + blk.size));
        const w = new Float32Array(k * blk.size);
        for (let j = 0; j < k; j++) for (let t = 0; t < blk.size; t++) w[j * blk.size + t] = q[j * p + off + t] * d[off + t];
        off += blk.size;
        return { sd: fromHost(sd, [blk.kind === "b" ? 1 : blk.fanIn, blk.fanOut]), w: fromHost(w, [k, ...blk.shape]) };
      }),
    };
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
  const oneBeta = o.hessian === "full" || o.hessian === "lowrank" || o.priorStructure === "scalar";
  const priorScales = pr.beta0.map((b0, l) => {
    const j = oneBeta ? 0 : pr.chosenLayers.indexOf(l);
    if (j < 0 || (oneBeta && !pr.chosenLayers.includes(l))) return 1 / Math.sqrt(b0);
    // With one beta (scalar, full, lowrank) it scales every chosen layer's start by the same factor.
    return oneBeta ? 1 / Math.sqrt((b0 * beta[0]) / pr.betaStart[0]) : 1 / Math.sqrt(beta[j]);
  });
  return { factors, options: laplaceOptions(o, blocks, sigma, priorScales, evidence) };
}

function laplaceOptions(o: LaplaceMethodOptions, blocks: readonly Block[], sigma: number | undefined, priorScales: readonly number[], evidence: number): LaplaceOptions {
  return {
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
    priorStructure: o.priorStructure,
    temperature: o.temperature,
    ...(o.hessian === "lowrank" ? { rank: o.rank } : {}),
    logEvidence: evidence,
  };
}

/**
 * The posterior factors of a weightwise-tuned prior (per weight, or per layer under the full
 * structure): maximise the evidence ({@link maximiseWeightwise}), apply the multiplier, and take the
 * standard deviations (diag) or L^-T (full, P = L L^T = r C + diag(tau)) as the covariance's square root.
 * Each layer's reported prior scale is the geometric mean of s_p = (tau_p / c_p)^-1/2 over its weights
 * (the layer's own scale under a per-layer prior).
 */
function weightwiseFactors(
  ww: WeightwiseProblem,
  pr: ReturnType<typeof laplaceProblem>,
  blocks: readonly Block[],
  o: LaplaceMethodOptions,
  start: { tau: Float64Array; logSigma?: number },
  tuneSigma: boolean,
): { factors: Factors; sigma: number | undefined; priorScales: number[]; evidence: number; iterations: number } {
  const m = maximiseWeightwise(ww, start, { structure: o.priorStructure === "diagonal" ? "diagonal" : "layer", tuneSigma });
  const tau = m.tau.map((t) => t * o.priorMultiplier);
  // The maximiser's own evaluation unless the multiplier moves the precisions (one O(p^3) pass fewer under full).
  const e = o.priorMultiplier === 1 ? m.evaluation : weightwiseEvidence(ww, tau, m.logSigma);
  const sqrtT = Math.sqrt(o.temperature);
  let factors: Factors;
  if (e.inverseFactor) {
    const p = tau.length;
    factors = { s: fromHost(Float32Array.from(transpose(e.inverseFactor, p, p), (v) => v * sqrtT), [p, p]) };
  } else {
    let off = 0;
    const hf = blocks.map((b) => {
      const sd = e.variance.slice(off, off + b.size).map((v) => sqrtT * Math.sqrt(v));
      off += b.size;
      return { sd };
    });
    factors = uploadBlockFactors(blocks, hf);
  }
  const logSum = new Float64Array(pr.beta0.length);
  const count = new Float64Array(pr.beta0.length);
  tau.forEach((t, i) => {
    const l = pr.chosenLayers[ww.group[i]];
    logSum[l] += Math.log(t / ww.pattern[i]);
    count[l]++;
  });
  const priorScales = pr.beta0.map((b0, l) => (count[l] ? Math.exp(-0.5 * (logSum[l] / count[l])) : 1 / Math.sqrt(b0)));
  return { factors, sigma: m.logSigma === undefined ? undefined : Math.exp(m.logSigma), priorScales, evidence: e.value, iterations: m.iterations };
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
  summary: "Laplace approximation at the MAP: GGN/EF/Hessian curvature, diag/KFAC/full/low-rank plus diagonal, linearised predictive, evidence-tuned prior",
  paper: "MacKay 1992; Ritter, Botev & Barber 2018 (KFAC Laplace); Immer, Korzepa & Bauer 2021 (linearised predictive); Daxberger et al. 2021, Laplace Redux; Tropp, Yurtsever, Udell & Cevher 2017 (the low-rank structure's Nystrom sketch)",
  cost: "1.05x MAP (20 MAP epochs, then one curvature pass); with --prior-opt online (regression's default) 2.5x (20 + 3 x 10 epochs, a curvature pass after each); --hessian lowrank 6x (its pass runs 2k + 8 curvature-vector products per example: 300 s on embedded MNIST, mlp:400,400, k = 20)",
  options: {
    epochs: use(OPTIONS.epochs, 20, "20 (the MAP's; ignored with --from)"),
    lr: use(OPTIONS.lr, MAP_DEFAULTS.learningRate, `${MAP_DEFAULTS.learningRate} (the MAP's)`),
    hessian: use(
      OPTIONS.hessian,
      (c: DefaultContext) => (!c.classification && (c.paramCount ?? Infinity) <= FULL_MAX_PARAMS ? "full" : "kron"),
      `regression with at most ${FULL_MAX_PARAMS.toLocaleString("en-US")} weights full, otherwise kron (docs/laplace.md)`,
    ),
    rank: use(OPTIONS.rank, 20, "20 (--hessian lowrank; a sketch of 2k + 8 curvature-vector products per example)"),
    subset: use(OPTIONS.subset, (c: DefaultContext) => (c.classification ? "last-layer" : "all"), "classification last-layer, regression all"),
    curvature: use(OPTIONS.curvature, "ggn" as LaplaceMethodOptions["curvature"]),
    pred: use(OPTIONS.pred, "glm" as LaplaceMethodOptions["pred"]),
    link: use(OPTIONS.link, "probit" as Link),
    priorOpt: use(OPTIONS.priorOpt, (c: DefaultContext) => (c.classification ? "marglik" : "online"), "classification marglik, regression online (docs/laplace.md)"),
    priorStructure: use(
      OPTIONS.priorStructure,
      (_: DefaultContext, o: Readonly<Partial<LaplaceMethodOptions>>) => (o.hessian === "full" ? "diagonal" : o.hessian === "lowrank" ? "scalar" : "layer") as PriorStructure,
      "diagonal with --hessian full (on the UCI inner validation splits it gained up to 0.47 nats over one scalar and lost at most 0.007), layer with diag or kron (per weight under the diagonal curvature of all weights nearly doubled the digits' NLL), scalar with lowrank (its only one): docs/laplace.md",
    ),
    priorMultiplier: use(OPTIONS.priorMultiplier, 1, "1 (--prior-opt grid sets it by validation)"),
    temperature: use(
      OPTIONS.temperature,
      (c: DefaultContext, o: Readonly<Partial<LaplaceMethodOptions>>) =>
        c.classification && o.priorOpt !== "grid" ? (o.subset === "last-layer" ? LAPLACE_CLASSIFICATION_T.lastLayer : LAPLACE_CLASSIFICATION_T.other) : 1,
      `classification ${LAPLACE_CLASSIFICATION_T.lastLayer} with --subset last-layer, ${LAPLACE_CLASSIFICATION_T.other} otherwise (cold posteriors, chosen on training digits: docs/laplace.md); with --prior-opt grid (which sets the scale by validation) and regression 1`,
    ),
    samples: use(OPTIONS.samples, 100),
  } satisfies OptionUses<LaplaceMethodOptions>,
  kinds: laplaceKinds,
  plan: (o) => ({
    collect: "final",
    epochs: 1,
    warmStart: { epochs: o.epochs, lr: o.lr, ...(o.priorOpt === "online" ? { evidenceRounds: ONLINE_ROUNDS } : {}) },
    draws: o.pred === "nn" ? o.samples : 1,
    ...(o.priorOpt === "grid" ? { validation: GRID_VALIDATION } : {}),
  }),
  build: (ctx, o) => create(ctx.model, ctx.dataSize, o, ctx.validation),
  // The grid's choice on 80% of the training data, applied to the fit on all of it (the MAP and the curvature).
  refit: (po) => {
    const g = po.grid as { multipliers: number[]; validationNll: number[] };
    const best = g.multipliers[g.validationNll.indexOf(Math.min(...g.validationNll))];
    return { options: { priorOpt: "none", priorMultiplier: best, temperature: po.temperature as number }, saved: { priorMultiplier: best }, posterior: { priorOpt: "grid", grid: po.grid } };
  },
};
