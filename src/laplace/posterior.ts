/**
 * The Laplace posterior N(theta*, Sigma) over the chosen weights, and its predictives.
 *
 * Each block's covariance is stored as Sigma_b = (Q_A (x) Q_G) diag(vec(sd o sd)) (Q_A (x) Q_G)^T: a
 * diagonal structure has no rotations, a Kronecker block the eigenvectors of its two factors, and the
 * full structure one square-root factor S (Sigma = S S^T) of all chosen weights together. The low-rank
 * structure is a diagonal D (each block's sd) with a rank-k correction,
 * Sigma = D (I + U diag(m) U^T) D, -1 < m_j <= 0, stored as W = D U per block (`w`, `[k, ...shape]`)
 * and m.
 *
 * Predictives (Immer, Korzepa & Bauer 2021, "Improving predictions of Bayesian neural nets via local
 * linearization"):
 * - `glm`: the network linearised at theta*, f_lin(x) = f(x; theta*) + J(x)(theta - theta*), whose
 *   outputs are Gaussian, N(f(x; theta*), J Sigma J^T). J Sigma J^T is computed per input from the
 *   layers' input rows and backpropagated output directions (laplace/curvature.ts), never from J.
 *   Classification turns the Gaussian logits into probabilities by the probit approximation (MacKay
 *   1992, in the pairwise form of Lu, Ie & Sha 2020 that sees only logit differences), the Laplace bridge (Hobbhahn, Kristiadi &
 *   Hennig 2022: a Dirichlet matched to the Gaussian after projecting out the softmax-invariant
 *   direction) or Monte Carlo; regression is the closed form N(f, J Sigma J^T + sigma^2).
 * - `nn`: the network at weight draws theta ~ N(theta*, Sigma) (`draws`).
 */
import { compile, fromHost, np, nn, random, split, type JArray, type Key } from "../core/engine.js";
import type { NamedTensor, OutputPredictive, Posterior, PosteriorKind } from "../core/method.js";
import { tensorsToTree, treeToTensors } from "../core/posterior.js";
import { free, keep, rebuildByPath } from "../core/tree.js";
import type { Model, Params } from "../models/model.js";
import { blockLayers, layerGrads, perExampleBiasGrads, perExampleWeightGrads, type Block } from "./curvature.js";
import { sampleJvp } from "./linearised.js";

/** How classification turns Gaussian logits into probabilities. */
export type Link = "probit" | "bridge" | "mc";

/** One block's covariance factors (engine arrays). */
export interface BlockFactors {
  /** `[fanIn, fanIn]` eigenvectors of the input factor (Kronecker weights only). */
  readonly qa?: JArray;
  /** `[fanOut, fanOut]` eigenvectors of the output factor (Kronecker blocks only). */
  readonly qg?: JArray;
  /** `[fanIn, fanOut]` (biases `[1, fanOut]`): standard deviations in the rotated basis. */
  readonly sd: JArray;
  /** `[k, ...shape]`: this block's rows of W = D U (low-rank structure only). */
  readonly w?: JArray;
}

/** The factors of a posterior: per block, or one square root of the full covariance. */
export type Factors = { readonly blocks: BlockFactors[]; readonly m?: JArray } | { readonly s: JArray };

/** Whether factors are one full square root. */
export function isFull(f: Factors): f is { readonly s: JArray } {
  return "s" in f;
}

/** What a Laplace posterior is besides its arrays (saved in posterior.json). */
export interface LaplaceOptions {
  readonly structure: "diag" | "kron" | "full" | "lowrank";
  readonly curvature: string;
  readonly subset: string;
  readonly blocks: readonly Block[];
  readonly pred: "glm" | "nn";
  readonly link: Link;
  /** Monte Carlo draws of the predictive (the mc link, and the aleatoric entropy of every link). */
  readonly samples: number;
  /** The Gaussian likelihood's noise scale the posterior predicts with (standardised units). */
  readonly sigma?: number;
  /** The tuned prior scale s_l per layer (`layerList` order; 1/s^2 the layer's beta), and what tuned it. */
  readonly priorScales: readonly number[];
  readonly priorOpt: string;
  /** The granularity the evidence tuned the prior at (`--prior-structure`; absent in posteriors saved before it existed). */
  readonly priorStructure?: string;
  /** Iterations of MacKay's fixed point, when the prior was tuned weight by weight (marglik.ts). */
  readonly fixedPointIterations?: number;
  /** T of the tempered posterior the factors describe. */
  readonly temperature: number;
  /** Eigenpairs kept by the low-rank structure. */
  readonly rank?: number;
  /** `--prior-opt grid`: the prior precision multipliers tried and their validation NLLs. */
  readonly grid?: { readonly multipliers: readonly number[]; readonly validationNll: readonly number[]; readonly validationSize: number };
  /** The Laplace log evidence at the tuned hyperparameters (nats), when computed. */
  readonly logEvidence?: number;
}

/**
 * Network outputs and the factors D_b `[n, k, w_b]` of the linearised output covariance at inputs `x`,
 * J Sigma J^T = sum_b D_b D_b^T - V V^T, with V `[n, k, r]` only for the low-rank structure
 * (V = J W diag(sqrt(-m))). Traceable; borrows `mode` and `f`, consumes `x`.
 */
export function outputFactors(model: Model, mode: Params, blocks: readonly Block[], f: Factors, x: JArray): { out: JArray; d: JArray[]; v?: JArray } {
  const layers = blockLayers(blocks);
  const n = x.shape[0];
  const k = model.network.outputDim;
  const lowRank = !isFull(f) && f.m !== undefined;
  const g = layerGrads(model, keep(mode.net), lowRank ? x.ref : x, layers, (out) => {
    out.dispose();
    return np.eye(k).reshape([k, 1, k]).mul(np.ones([1, n, 1]));
  });
  const rotate = (m: JArray, qa: JArray | undefined, qg: JArray | undefined): JArray => {
    // m [..., in, out] -> Q_A^T m Q_G.
    const shape = m.shape;
    const inDim = shape[shape.length - 2];
    const outDim = shape[shape.length - 1];
    let r = m;
    if (qg) r = np.matmul(r.reshape([-1, outDim]), qg.ref).reshape(shape);
    if (qa) {
      const lead = shape.slice(0, -2);
      const t = np.moveaxis(r, -1, -2).reshape([-1, inDim]);
      r = np.moveaxis(np.matmul(t, qa.ref).reshape([...lead, outDim, inDim]), -1, -2);
    }
    return r;
  };
  const d: JArray[] = [];
  if (isFull(f)) {
    const per = blocks.map((b) => {
      const j = layers.indexOf(b.layer);
      const v = b.kind === "b" ? perExampleBiasGrads(g.deltas[j].ref, n) : perExampleWeightGrads(g.rows[j].ref, g.deltas[j].ref, n);
      return v.reshape([k, n, b.size]);
    });
    const v = per.length === 1 ? per[0] : np.concatenate(per, 2);
    const p = v.shape[2];
    d.push(np.matmul(v.reshape([k * n, p]), f.s.ref).reshape([k, n, p]).transpose([1, 0, 2]));
  } else {
    blocks.forEach((b, i) => {
      const j = layers.indexOf(b.layer);
      const bf = f.blocks[i];
      const deltas = g.deltas[j].ref; // [k, R, out]
      if (b.kind === "b") {
        const db = rotate(perExampleBiasGrads(deltas, n).reshape([k, n, 1, b.fanOut]), undefined, bf.qg).reshape([k, n, b.fanOut]);
        d.push(db.mul(bf.sd.ref.reshape([1, 1, b.fanOut])).transpose([1, 0, 2]));
        return;
      }
      const rows = g.rows[j].ref;
      if (rows.shape[0] === n) {
        // Dense rows: cov_cc' = sum_o [(a_Q o a_Q) (sd o sd)]_o deltaQ_oc deltaQ_oc'.
        const aQ = bf.qa ? np.matmul(rows, bf.qa.ref) : rows;
        const dQ = bf.qg ? np.matmul(deltas.reshape([k * n, b.fanOut]), bf.qg.ref).reshape([k, n, b.fanOut]) : deltas;
        const v = np.matmul(aQ.ref.mul(aQ), bf.sd.ref.mul(bf.sd.ref)); // [n, out]
        d.push(dQ.mul(np.sqrt(v).reshape([1, n, b.fanOut])).transpose([1, 0, 2]));
        return;
      }
      const gq = rotate(perExampleWeightGrads(rows, deltas, n), bf.qa, bf.qg); // [k, n, in, out]
      d.push(gq.mul(bf.sd.ref.reshape([1, 1, b.fanIn, b.fanOut])).reshape([k, n, b.size]).transpose([1, 0, 2]));
    });
  }
  let v: JArray | undefined;
  if (!isFull(f) && f.m) {
    // J (D u_j) for the k columns of W at once (forward mode), scaled by sqrt(-m_j).
    const a = sampleJvp(model, mode.net, x, g.rows, blocks, f.blocks.map((bf) => bf.w!)); // [r, n, k]
    const r = a.shape[0];
    v = a.mul(np.sqrt(np.maximum(f.m.ref.mul(-1), 0)).reshape([r, 1, 1])).transpose([1, 2, 0]);
  }
  g.rows.forEach((r) => r.dispose());
  g.deltas.forEach((r) => r.dispose());
  return { out: g.out, d, ...(v ? { v } : {}) };
}

/** Lower Cholesky factors of a batch of small SPD matrices `[n, k, k]` (consumed), by columns; traceable. */
export function batchCholesky(a: JArray): JArray {
  const [n, k] = a.shape;
  const entry = (i: number, j: number) => a.ref.slice([], [i, i + 1], [j, j + 1]).reshape([n]);
  const l: JArray[][] = Array.from({ length: k }, () => []);
  for (let j = 0; j < k; j++) {
    let s = entry(j, j);
    for (let m = 0; m < j; m++) s = s.sub(l[j][m].ref.mul(l[j][m].ref));
    const ljj = np.sqrt(np.maximum(s, 1e-30));
    for (let i = j + 1; i < k; i++) {
      let t = entry(i, j);
      for (let m = 0; m < j; m++) t = t.sub(l[i][m].ref.mul(l[j][m].ref));
      l[i][j] = t.div(ljj.ref);
    }
    l[j][j] = ljj;
  }
  a.dispose();
  const zero = np.zeros([n]);
  const rows = l.map((row, i) => np.stack(Array.from({ length: k }, (_, j) => (j <= i ? row[j] : zero.ref)), -1));
  zero.dispose();
  return np.stack(rows, 1);
}

/**
 * The linearised predictive at `x` (consumed) from `mode` and `f` (borrowed), `s` Monte Carlo draws of
 * the logits for the mc link and the aleatoric entropy. Traceable.
 */
export function glmPredict(model: Model, mode: Params, blocks: readonly Block[], f: Factors, link: Link, s: number, sigma: number, k: Key, x: JArray): JArray[] {
  const { out, d, v: low } = outputFactors(model, mode, blocks, f, x);
  const n = out.shape[0];
  const kk = out.shape[1];
  let cov = d.map((db) => np.matmul(db.ref, db.transpose([0, 2, 1]))).reduce((a, b) => a.add(b));
  if (low) cov = cov.sub(np.matmul(low.ref, low.transpose([0, 2, 1])));
  if (model.likelihood.spec.kind === "gaussian") {
    k.dispose();
    // The low-rank correction subtracts from the diagonal part: rounding may leave a tiny negative.
    const v = np.maximum(cov.reshape([n]), 0);
    return [out.reshape([1, n]), np.sqrt(v.add(sigma * sigma)).reshape([1, n])];
  }
  const eye = np.eye(kk).reshape([1, kk, kk]);
  const variance = cov.ref.mul(eye.ref).sum(-1); // [n, k]
  // Jitter relative to the largest variance keeps the factorisation finite for near-singular covariances.
  const jitter = variance.ref.max(-1).mul(1e-6).add(1e-12).reshape([n, 1, 1]);
  const chol = batchCholesky(cov.ref.add(eye.mul(jitter)));
  const eps = random.normal(k, [n, kk, s]);
  const logits = np.matmul(chol, eps).add(out.ref.reshape([n, kk, 1])).transpose([2, 0, 1]); // [s, n, k]
  const lp = nn.logSoftmax(logits, -1);
  const pr = np.exp(lp.ref);
  const meanEntropy = pr.ref.mul(lp).sum(-1).mul(-1).mean(0);
  let probs: JArray;
  if (link === "mc") {
    probs = pr.mean(0);
    cov.dispose();
    variance.dispose();
    out.dispose();
  } else {
    pr.dispose();
    probs = gaussianLinkProbs(out, cov, variance, link);
  }
  return [probs, meanEntropy];
}

/**
 * Class probabilities from Gaussian logits N(out, cov) (`[n, k]`, `[n, k, k]`, with `variance` the
 * diagonal `[n, k]`; all consumed) by the probit approximation or the Laplace bridge. Traceable.
 */
export function gaussianLinkProbs(out: JArray, cov: JArray, variance: JArray, link: "probit" | "bridge"): JArray {
  const [n, kk] = out.shape;
  if (link === "probit") {
    // Pairwise probit (Lu, Ie & Sha 2020): p_c = 1 / sum_j exp(-(mu_c - mu_j) / sqrt(1 + pi/8 Var(f_c - f_j))).
    // Only differences of logits enter, which softmax sees; their variances do not include the common
    // shift of all logits, whose variance is the prior's (the data never determine it).
    const vd = variance.ref.reshape([n, kk, 1]).add(variance.reshape([n, 1, kk])).sub(cov.mul(2)); // Var(f_c - f_j)
    const md = out.ref.reshape([n, kk, 1]).sub(out.reshape([n, 1, kk])); // mu_c - mu_j
    const z = np.clip(md.mul(-1).div(np.sqrt(np.maximum(vd, 0).mul(Math.PI / 8).add(1))), -80, 80);
    const unnorm = np.reciprocal(np.exp(z).sum(-1)); // [n, k]
    return unnorm.ref.div(unnorm.sum(-1).reshape([n, 1]));
  }
  // Laplace bridge: project out the direction softmax ignores (mu and Sigma conditioned on sum f = const).
  const s1 = cov.sum(-1); // [n, k] = Sigma 1
  const tot = s1.ref.sum(-1).reshape([n, 1]); // 1^T Sigma 1
  const mu = out.ref.sub(s1.ref.mul(out.sum(-1).reshape([n, 1]).div(tot.ref)));
  const varC = np.maximum(variance.sub(s1.ref.mul(s1).div(tot)), 1e-12);
  const m = np.clip(mu, -40, 40);
  const sumExp = np.exp(m.ref.mul(-1)).sum(-1).reshape([n, 1]);
  const alpha = np.exp(m).mul(sumExp).mul(1 / (kk * kk)).add(1 - 2 / kk).div(varC);
  return alpha.ref.div(alpha.sum(-1).reshape([n, 1]));
}

/** Draws theta* + delta, delta ~ N(0, Sigma) on the chosen blocks, `[S, ...]` per leaf. Traceable; borrows. */
export function drawWeights(mode: Params, blocks: readonly Block[], f: Factors, k: Key, s: number, sigma: number | undefined): Params {
  const deltas = new Map<string, JArray>();
  if (isFull(f)) {
    const p = f.s.shape[0];
    const z = np.matmul(random.normal(k, [s, p]), f.s.ref.transpose());
    let off = 0;
    for (const b of blocks) {
      deltas.set(b.path, z.ref.slice([], [off, off + b.size]).reshape([s, ...b.shape]));
      off += b.size;
    }
    z.dispose();
  } else {
    const keys = split(k, blocks.length);
    const eps = blocks.map((b, i) => random.normal(keys[i], [s, b.kind === "b" ? 1 : b.fanIn, b.fanOut]));
    // Low rank: S eps = D (eps + U diag(sqrt(1 + m) - 1) U^T eps), with U^T eps = sum_b (W_b / sd_b)^T eps_b.
    let coef: JArray | undefined;
    if (f.m) {
      const r = f.m.shape[0];
      const ut = blocks.map((b, i) => np.matmul(eps[i].ref.reshape([s, b.size]), f.blocks[i].w!.ref.reshape([r, b.size]).div(f.blocks[i].sd.ref.reshape([1, b.size])).transpose())).reduce((a, c) => a.add(c)); // [s, r]
      coef = ut.mul(np.sqrt(f.m.ref.add(1)).sub(1).reshape([1, r]));
    }
    blocks.forEach((b, i) => {
      const bf = f.blocks[i];
      const rows = b.kind === "b" ? 1 : b.fanIn;
      let e = eps[i].mul(bf.sd.ref.reshape([1, rows, b.fanOut]));
      if (bf.qg) e = np.matmul(e.reshape([s * rows, b.fanOut]), bf.qg.ref.transpose()).reshape([s, rows, b.fanOut]);
      if (bf.qa) e = np.moveaxis(np.matmul(np.moveaxis(e, -1, -2).reshape([s * b.fanOut, rows]), bf.qa.ref.transpose()).reshape([s, b.fanOut, rows]), -1, -2);
      if (coef) e = e.reshape([s, b.size]).add(np.matmul(coef.ref, bf.w!.ref.reshape([-1, b.size])));
      deltas.set(b.path, e.reshape([s, ...b.shape]));
    });
    coef?.dispose();
  }
  return rebuildByPath(mode, (path, like) => {
    const base = like.ref.reshape([1, ...like.shape]).mul(np.ones([s, ...like.shape.map(() => 1)]));
    if (path === "lik.logSigma" && sigma !== undefined) {
      base.dispose();
      return np.full([s], Math.log(sigma));
    }
    const dl = deltas.get(path);
    return dl ? base.add(dl) : base;
  });
}

/** The mode with a Gaussian likelihood's learned noise set to `sigma` (borrows `mode`). */
export function withSigma(mode: Params, sigma: number | undefined): Params {
  return rebuildByPath(mode, (path, like) => (path === "lik.logSigma" && sigma !== undefined ? np.array(Math.log(sigma)) : like.ref));
}

/**
 * A Laplace posterior from its mode (consumed), factors (consumed) and options. With `pred: "glm"` it
 * predicts through {@link Posterior.predict}; `draws` always gives weight draws (the `nn` predictive).
 */
export function laplacePosterior(model: Model, mode: Params, factors: Factors, o: LaplaceOptions): Posterior<Params> {
  let held: { mode: Params; factors: Factors } | undefined = { mode: withSigma(mode, o.sigma), factors };
  free(mode);
  const live = () => {
    if (!held) throw new Error("posterior: used after dispose()");
    return held;
  };
  const sigma = o.sigma ?? 1;
  let draw: ReturnType<typeof compile<[Params, Factors, Key, number], Params>> | undefined;
  let pred: ReturnType<typeof compile<[Params, Factors, Key, JArray], JArray[]>> | undefined;
  const posterior: Posterior<Params> = {
    kind: `laplace-${o.structure}`,
    options: o as unknown as Record<string, unknown>,
    size: undefined,
    draws(k, n) {
      if (n === undefined || !Number.isInteger(n) || n < 1) {
        k.dispose();
        throw new RangeError(`a Laplace posterior draws a positive integer number of samples, got ${n}`);
      }
      draw ??= compile((m: Params, f: Factors, kk: Key, s: number) => drawWeights(m, o.blocks, f, kk, s, o.sigma), { consume: [2], static: [3] });
      return draw(live().mode, live().factors, k, n);
    },
    async tensors(): Promise<NamedTensor[]> {
      const h = live();
      const out = await treeToTensors(h.mode, "mode");
      if (isFull(h.factors)) out.push(...(await treeToTensors(h.factors.s, "full.s")));
      else {
        for (const [i, b] of o.blocks.entries()) {
          const bf = h.factors.blocks[i];
          out.push(...(await treeToTensors({ sd: bf.sd, ...(bf.qa ? { qa: bf.qa } : {}), ...(bf.qg ? { qg: bf.qg } : {}), ...(bf.w ? { w: bf.w } : {}) }, `factors.${b.path}`)));
        }
        if (h.factors.m) out.push(...(await treeToTensors(h.factors.m, "lowrank.m")));
      }
      return out;
    },
    dispose() {
      if (!held) return;
      free(held.mode);
      free(held.factors);
      held = undefined;
      draw?.dispose();
      pred?.dispose();
    },
  };
  if (o.pred === "glm") {
    posterior.predict = (k: Key, x: JArray): OutputPredictive => {
      pred ??= compile((m: Params, f: Factors, kk: Key, xx: JArray) => glmPredict(model, m, o.blocks, f, o.link, o.samples, sigma, kk, xx), { consume: [2, 3] });
      // Blocks of inputs small enough for the per-example convolution gradients (k of `[fanIn, fanOut]`
      // per input, a few copies of them inside the call) to stay well inside the engine's 4 GiB.
      // The low-rank structure also runs the network on each input once per kept eigenvector (its J W).
      const rank = o.rank ?? 0;
      const step = Math.max(1, Math.floor(predictBlock(o.blocks, model.network.outputDim) / Math.max(1, rank / 8)));
      return predictInBlocks(model, k, x, step, (kk, xb) => pred!(live().mode, live().factors, kk, xb));
    };
  }
  return posterior;
}

/**
 * A function-space predictive over `x` (consumed) in blocks of `step` inputs: `call(key, xBlock)`
 * returns `[probs, meanEntropy]` (classification) or `[means, stds]` (regression, `[S, m]`). Each
 * block's results go to the host before the next call: kept on the engine, many small results
 * fragment its 4 GiB (the all-weights CNN ran out after a few hundred blocks).
 */
export function predictInBlocks(model: Model, k: Key, x: JArray, step: number, call: (k: Key, x: JArray) => JArray[]): OutputPredictive {
  const n = x.shape[0];
  const gaussian = model.likelihood.spec.kind === "gaussian";
  const keys = split(k, Math.ceil(n / step));
  if (n <= step) {
    const [a, b] = call(keys[0], x);
    return gaussian ? { kind: "gaussian", means: a, stds: b } : { kind: "categorical", probs: a, meanEntropy: b };
  }
  const parts: { data: Float32Array; shape: number[] }[][] = [];
  for (let i = 0; i * step < n; i++) {
    const out = call(keys[i], x.ref.slice([i * step, Math.min(n, (i + 1) * step)]));
    parts.push(out.map((a) => ({ shape: [...a.shape], data: a.dataSync() as Float32Array })));
  }
  x.dispose();
  const cat = (j: number, axis: number) => {
    const shapes = parts.map((p) => p[j].shape);
    if (axis === 0) {
      const rows = shapes.reduce((a, sh) => a + sh[0], 0);
      const all = new Float32Array(parts.reduce((a, p) => a + p[j].data.length, 0));
      let off = 0;
      for (const p of parts) {
        all.set(p[j].data, off);
        off += p[j].data.length;
      }
      return fromHost(all, [rows, ...shapes[0].slice(1)]);
    }
    // Regression: [S, m] blocks side by side along the inputs.
    const s0 = shapes[0][0];
    const cols = shapes.reduce((a, sh) => a + sh[1], 0);
    const all = new Float32Array(s0 * cols);
    let c0 = 0;
    for (const p of parts) {
      const m = p[j].shape[1];
      for (let r = 0; r < s0; r++) all.set(p[j].data.subarray(r * m, (r + 1) * m), r * cols + c0);
      c0 += m;
    }
    return fromHost(all, [s0, cols]);
  };
  if (gaussian) return { kind: "gaussian", means: cat(0, 1), stds: cat(1, 1) };
  return { kind: "categorical", probs: cat(0, 0), meanEntropy: cat(1, 0) };
}

/** Inputs per call of the linearised predictive: at most 100, fewer when convolution blocks make each input heavy. */
export function predictBlock(blocks: readonly Block[], k: number): number {
  const perInput = blocks.reduce((a, b) => a + (b.kind === "w" && b.shape.length > 2 ? 3 * b.fanIn * b.fanOut : b.fanIn + b.fanOut) * k, 0);
  return Math.max(1, Math.min(100, Math.floor(3e6 / perInput)));
}

/** Upload host factors: per block `{ sd, qa?, qg? }` as float64 host arrays with their shapes. */
export function uploadBlockFactors(blocks: readonly Block[], host: readonly { sd: Float64Array; qa?: Float64Array; qg?: Float64Array }[]): Factors {
  return {
    blocks: blocks.map((b, i) => {
      const h = host[i];
      const rows = b.kind === "b" ? 1 : b.fanIn;
      return {
        sd: fromHost(Float32Array.from(h.sd), [rows, b.fanOut]),
        ...(h.qa ? { qa: fromHost(Float32Array.from(h.qa), [b.fanIn, b.fanIn]) } : {}),
        ...(h.qg ? { qg: fromHost(Float32Array.from(h.qg), [b.fanOut, b.fanOut]) } : {}),
      };
    }),
  };
}

function kindFor(structure: LaplaceOptions["structure"]): PosteriorKind<Params, Model> {
  return {
    kind: `laplace-${structure}`,
    load(template, options, tensors, model) {
      const o = options as unknown as LaplaceOptions;
      const mode = tensorsToTree(template, tensors, "mode");
      const byName = new Map(tensors.map((t) => [t.name, t]));
      const get = (name: string, shape: number[]): JArray => {
        const t = byName.get(name);
        if (!t) {
          free(mode);
          throw new Error(`Laplace posterior: no tensor '${name}'`);
        }
        if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new Error(`Laplace posterior: tensor '${name}' has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`);
        return fromHost(t.data, shape);
      };
      let factors: Factors;
      if (structure === "full") {
        const p = o.blocks.reduce((a, b) => a + b.size, 0);
        factors = { s: get("full.s", [p, p]) };
      } else {
        const r = structure === "lowrank" ? (o.rank ?? 0) : 0;
        factors = {
          ...(r > 0 ? { m: get("lowrank.m", [r]) } : {}),
          blocks: o.blocks.map((b) => {
            const rows = b.kind === "b" ? 1 : b.fanIn;
            const pre = `factors.${b.path}`;
            return {
              sd: get(`${pre}.sd`, [rows, b.fanOut]),
              ...(byName.has(`${pre}.qa`) ? { qa: get(`${pre}.qa`, [b.fanIn, b.fanIn]) } : {}),
              ...(byName.has(`${pre}.qg`) ? { qg: get(`${pre}.qg`, [b.fanOut, b.fanOut]) } : {}),
              ...(r > 0 ? { w: get(`${pre}.w`, [r, ...b.shape]) } : {}),
            };
          }),
        };
      }
      return laplacePosterior(model, mode, factors, o);
    },
  };
}

/** The saved kinds of Laplace posteriors. */
export const laplaceKinds: PosteriorKind<Params, Model>[] = (["diag", "kron", "full", "lowrank"] as const).map(kindFor);
