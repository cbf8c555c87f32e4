/**
 * Curvature of the negative log-likelihood for the Laplace family, built from each layer's input rows
 * and output gradients, never from a per-example Jacobian of all weights.
 *
 * Every layer (dense, or a 3x3 convolution as im2col patches) computes `S = A W + b` on its input rows
 * A `[R, fanIn]` (R = n for dense layers, n times the output positions for convolutions;
 * Network.applyLinear). For a cotangent u on the network outputs, backpropagation to S gives
 * delta = dS `[R, fanOut]`, and u^T J_W = A^T delta. Writing the likelihood's output-space Hessian as
 * H_i = L_i L_i^T, the generalised Gauss-Newton matrix is GGN = sum_i sum_c (J_i^T L_ic)(J_i^T L_ic)^T,
 * so every structure comes from backpropagating the k columns of L (Martens & Grosse 2015, Dangel et
 * al. 2020 "BackPACK"):
 * - diag: diag(GGN)_W = sum_c sum_i (A_i^T delta_ic)^2, which for dense rows is (A o A)^T (sum_c delta_c o delta_c);
 * - kron (KFAC; KFAC-expand for convolutions, Eschenhagen et al. 2023): GGN_W ~ (A^T A) (x) (sum_c delta_c^T delta_c) / R_total,
 *   and the bias block sum_c delta_c^T delta_c;
 * - full: the per-example gradients J_i^T L_ic of the chosen weights as rows, GGN = V^T V.
 * Square roots L of H: softmax, column c = sqrt(p_c) (e_c - p) (since diag(p) - p p^T = L L^T when
 * sum p = 1); Gaussian, 1/sigma. The Monte Carlo Fisher uses one column grad_f log p(y~_i | f_i) with
 * y~_i drawn from the model's own predictive (its expectation is the GGN; one backward pass instead of
 * k); the empirical Fisher the same with the observed y_i.
 *
 * The exact Hessian (full structure, small models) is the Hessian of the flattened chosen weights.
 */
import { hessianOf, np, nn, random, vjp, type JArray, type Key } from "../core/engine.js";
import { free, keep, leaves, namedLeaves, rebuildByPath, type Tree } from "../core/tree.js";
import type { Batch, Model, Params } from "../models/model.js";
import { affine, type DenseParams } from "../models/network.js";
import { layerList } from "../models/prior.js";

/** Curvature structures. */
export type Structure = "diag" | "kron" | "full";

/** Curvatures. */
export type Curvature = "ggn" | "mc" | "ef" | "hessian";

/** One parameter leaf the Laplace approximation covers, as a `[fanIn, fanOut]` matrix (a bias: `[1, fanOut]`). */
export interface Block {
  /** Its path among the model's parameters, e.g. `net.layers.2.w`. */
  readonly path: string;
  /** Its layer's index in `layerList` order (models/prior.ts). */
  readonly layer: number;
  readonly kind: "w" | "b";
  readonly fanIn: number;
  readonly fanOut: number;
  /** The leaf's own shape. */
  readonly shape: readonly number[];
  /** Its number of parameters. */
  readonly size: number;
}

/**
 * The leaves the Laplace approximation covers: `all` network weights and biases, the `last-layer`,
 * or the leaves whose path (e.g. `net.layers.0.w`) matches the regular expression `subset`.
 * Borrows `params` (only shapes are read).
 * @throws when nothing matches, listing the paths.
 */
export function selectBlocks(params: Params, subset: string): Block[] {
  const layers = layerList(params.net);
  const byLeaf = new Map<JArray, number>();
  layers.forEach((layer, l) => leaves(layer).forEach((leaf) => byLeaf.set(leaf, l)));
  const named = namedLeaves(params.net, undefined, "net");
  const all: Block[] = [];
  for (const { path, value } of named) {
    const l = byLeaf.get(value);
    if (l === undefined) continue;
    const kind = path.endsWith(".b") ? "b" : "w";
    const fanOut = value.shape[value.ndim - 1];
    const size = value.shape.reduce((a, d) => a * d, 1);
    all.push({ path, layer: l, kind, fanIn: size / fanOut, fanOut, shape: [...value.shape], size });
  }
  all.sort((a, b) => a.layer - b.layer || (a.kind === b.kind ? 0 : a.kind === "w" ? -1 : 1));
  let chosen: Block[];
  if (subset === "all") chosen = all;
  else if (subset === "last-layer") chosen = all.filter((b) => b.layer === layers.length - 1);
  else {
    const re = new RegExp(subset);
    chosen = all.filter((b) => re.test(b.path));
  }
  if (chosen.length === 0) throw new RangeError(`--subset ${subset}: matches no weights; the network's are ${all.map((b) => b.path).join(", ")}`);
  return chosen;
}

/** The leaf at `path` (e.g. `net.layers.0.w`) of a parameter tree (borrowed). */
export function leafAt(params: Params, path: string): JArray {
  let t: unknown = params;
  for (const part of path.split(".")) t = (t as Record<string, unknown>)[part];
  return t as JArray;
}

/** The layers blocks belong to, ascending. */
export function blockLayers(blocks: readonly Block[]): number[] {
  return [...new Set(blocks.map((b) => b.layer))].sort((a, b) => a - b);
}

/** What one pass over a batch gives per chosen layer: input rows and output gradients. */
export interface LayerGrads {
  /** Network outputs `[n, d]` at the mode. */
  readonly out: JArray;
  /** Per chosen layer (in `blockLayers` order): input rows `[R, fanIn]`. */
  readonly rows: JArray[];
  /** Per chosen layer: backpropagated output cotangents `[D, R, fanOut]`, one per direction. */
  readonly deltas: JArray[];
}

/**
 * Input rows and output gradients of the chosen layers for a batch: `directions(out)` gives the D
 * output cotangents `[D, n, d]` from the outputs (it consumes them), each backpropagated to every
 * chosen layer's pre-activations. Traceable; consumes `net` and `x`.
 */
export function layerGrads(model: Model, net: Tree, x: JArray, layers: readonly number[], directions: (out: JArray) => JArray): LayerGrads {
  const network = model.network;
  if (!network.applyLinear) throw new Error(`Laplace: network ${network.spec} does not expose its layers (applyLinear)`);
  const n = x.shape[0];
  // Rows per example of each chosen layer (1 dense, the output positions of a convolution), from a
  // forward pass of one example; the widths from the parameters.
  const perExample = new Map<number, number>();
  network.applyLinear(keep(net), x.ref.slice([0, 1]), (layer, rows, i) => {
    perExample.set(i, rows.shape[0]);
    return affine(layer, rows);
  }).dispose();
  const all = layerList(net);
  const shapes = layers.map((l) => {
    const w = (all[l] as DenseParams).w;
    return [n * perExample.get(l)!, w.shape[w.ndim - 1]];
  });
  // Zero perturbations added to the chosen pre-activations: their cotangents are the deltas; the
  // layers' input rows come out of the same pass as auxiliary values.
  const zeros = shapes.map((sh) => np.zeros(sh));
  const index = new Map(layers.map((l, j) => [l, j]));
  const [out, back, rowsOut] = vjp(
    (eps: JArray[]) => {
      const rows: JArray[] = new Array(layers.length);
      const o = network.applyLinear!(keep(net), x.ref, (layer, r, i) => {
        const j = index.get(i);
        if (j === undefined) return affine(layer, r);
        rows[j] = r.ref;
        return affine(layer, r).add(eps[j]);
      });
      return [o, rows];
    },
    [zeros] as never,
    { hasAux: true },
  ) as unknown as [JArray, ((c: JArray) => JArray[][]) & { dispose(): void }, JArray[]];
  const dirs = directions(out.ref);
  const d = dirs.shape[0];
  const perDir = Array.from({ length: d }, (_, c) => back(dirs.ref.slice(c))[0]);
  dirs.dispose();
  back.dispose();
  free(net);
  x.dispose();
  const deltas = layers.map((_, j) => np.stack(perDir.map((g) => g[j])));
  return { out, rows: rowsOut, deltas };
}


/**
 * Output-space directions whose outer products sum to the curvature's output-space matrix, `[D, n, d]`
 * (consumes `out` and `y`): `ggn`, the columns of a square root of the likelihood's Hessian; `ef`, the
 * gradient of the log-likelihood itself (one direction).
 * @param sigma the Gaussian noise scale (regression).
 */
export function outputDirections(model: Model, curvature: "ggn" | "mc" | "ef", out: JArray, y: JArray, sigma: number, key?: Key): JArray {
  const spec = model.likelihood.spec;
  const [n, k] = out.shape;
  if (curvature === "mc" && !key) throw new Error("outputDirections: the Monte Carlo Fisher needs a key");
  if (spec.kind === "categorical") {
    if (curvature === "mc") {
      y.dispose();
      const drawn = random.categorical(key!, out.ref, { axis: -1 });
      return nn.oneHot(drawn, k).sub(nn.softmax(out, -1)).reshape([1, n, k]);
    }
    const p = nn.softmax(out, -1); // [n, k]
    if (curvature === "ef") return nn.oneHot(y, k).sub(p).reshape([1, n, k]);
    y.dispose();
    // Column c of L: sqrt(p_c) (e_c - p), as direction c: [k, n, k].
    const eye = np.eye(k).reshape([k, 1, k]);
    const sq = np.sqrt(p.ref).transpose().reshape([k, n, 1]);
    return eye.sub(p.reshape([1, n, k])).mul(sq);
  }
  if (spec.kind === "gaussian" && spec.noise !== "heteroscedastic") {
    if (curvature === "mc") {
      y.dispose();
      out.dispose();
      return random.normal(key!, [1, n, 1]).mul(1 / sigma);
    }
    if (curvature === "ef") return y.sub(out.reshape([n])).mul(1 / (sigma * sigma)).reshape([1, n, 1]);
    y.dispose();
    out.dispose();
    return np.full([1, n, 1], 1 / sigma);
  }
  out.dispose();
  y.dispose();
  throw new Error("Laplace: supports categorical and homoscedastic Gaussian likelihoods (not heteroscedastic noise)");
}

/** Per-example gradients `[D, n, fanIn, fanOut]` of a layer's weight from rows and deltas (consumes both). */
export function perExampleWeightGrads(rows: JArray, deltas: JArray, n: number): JArray {
  const [d, r, fanOut] = deltas.shape;
  const fanIn = rows.shape[1];
  const p = r / n;
  if (p === 1) return rows.reshape([1, n, fanIn, 1]).mul(deltas.reshape([d, n, 1, fanOut]));
  const a = rows.reshape([n, p, fanIn]).transpose([0, 2, 1]); // [n, fanIn, P]
  const per = Array.from({ length: d }, (_, c) => np.matmul(a.ref, deltas.ref.slice(c).reshape([n, p, fanOut])));
  a.dispose();
  deltas.dispose();
  return np.stack(per);
}

/** Per-example gradients `[D, n, fanOut]` of a layer's bias (sums over positions; consumes deltas). */
export function perExampleBiasGrads(deltas: JArray, n: number): JArray {
  const [d, r, fanOut] = deltas.shape;
  const p = r / n;
  return p === 1 ? deltas : deltas.reshape([d, n, p, fanOut]).sum(2);
}

/** One batch's curvature terms per block, in the structure's form (summed over the batch). */
export type BatchCurvature =
  | { readonly structure: "diag"; readonly diag: JArray[] }
  | { readonly structure: "kron"; readonly a: JArray[]; readonly g: JArray[]; readonly rows: number[] }
  | { readonly structure: "full"; readonly full: JArray };

/**
 * The batch's curvature (GGN or empirical Fisher) of the chosen blocks in the given structure, and the
 * summed log-likelihood at the mode. Traceable; consumes `params` and `batch`.
 *
 * - diag: one `[fanIn, fanOut]` (or `[fanOut]`) sum per block;
 * - kron: per chosen layer (in `blockLayers` order), A = [rows, 1]^T [rows, 1] `[fanIn + 1, fanIn + 1]` and
 *   G = sum_c delta_c^T delta_c `[fanOut, fanOut]`;
 * - full: V^T V over the blocks' concatenated per-example gradients.
 */
export function batchCurvature(model: Model, params: Params, batch: Batch, blocks: readonly Block[], structure: "diag" | "kron" | "full", curvature: "ggn" | "mc" | "ef", sigma: number, key?: Key): { curv: BatchCurvature; logLik: JArray } {
  const layers = blockLayers(blocks);
  const n = batch.x.shape[0];
  const y = batch.y;
  const g = layerGrads(model, params.net, batch.x, layers, (out) => outputDirections(model, curvature, out, y.ref, sigma, key));
  const logLik = model.likelihood.logLik(g.out, y, params.lik).sum();
  const at = (layer: number) => layers.indexOf(layer);
  if (structure === "kron") {
    const rows = g.rows.map((r) => r.shape[0]);
    // A of the input rows with a column of ones appended (the bias's row and column), assembled from
    // rows^T rows, the column sums and the row count: a product of the concatenated rows runs far
    // slower on the engine (its concatenation is lowered to padded views read inside the product).
    const a = g.rows.map((r) => {
      const [rr, d] = r.shape;
      const s = r.ref.sum(0).reshape([d, 1]);
      const top = np.concatenate([np.matmul(r.ref.transpose(), r), s.ref], 1);
      const bottom = np.concatenate([s.reshape([1, d]), np.full([1, 1], rr)], 1);
      return np.concatenate([top, bottom], 0);
    });
    const gs = g.deltas.map((dl) => {
      const [d, r, o] = dl.shape;
      const flat = dl.reshape([d * r, o]);
      return np.matmul(flat.ref.transpose(), flat);
    });
    return { curv: { structure, a, g: gs, rows }, logLik };
  }
  const perBlock = blocks.map((b) => {
    const j = at(b.layer);
    if (b.kind === "b") return perExampleBiasGrads(g.deltas[j].ref, n); // [D, n, fanOut]
    const rows = g.rows[j].ref;
    const deltas = g.deltas[j].ref;
    if (structure === "diag" && rows.shape[0] === n) {
      // Dense rows: sum_i sum_c (a_i delta_ic)^2 = (a o a)^T sum_c (delta_c o delta_c).
      const d2 = deltas.ref.mul(deltas).sum(0); // [n, fanOut]
      return np.matmul(rows.ref.mul(rows).transpose(), d2); // already summed: [fanIn, fanOut]
    }
    return perExampleWeightGrads(rows, deltas, n); // [D, n, fanIn, fanOut]
  });
  g.rows.forEach((r) => r.dispose());
  g.deltas.forEach((dl) => dl.dispose());
  if (structure === "diag") {
    const diag = perBlock.map((v, i) => {
      const b = blocks[i];
      if (b.kind === "b") return v.ref.mul(v).sum([0, 1]);
      if (v.ndim === 2) return v; // the dense fast path
      return v.ref.mul(v).sum([0, 1]).reshape([b.fanIn, b.fanOut]);
    });
    return { curv: { structure, diag }, logLik };
  }
  const rows = perBlock.map((v) => {
    const [d, nn_] = v.shape;
    return v.reshape([d * nn_, -1]);
  });
  const vmat = rows.length === 1 ? rows[0] : np.concatenate(rows, 1);
  return { curv: { structure, full: np.matmul(vmat.ref.transpose(), vmat) }, logLik };
}

/**
 * The exact Hessian of the batch's summed negative log-likelihood in the chosen blocks (flattened in
 * block order), `[P, P]`, and the summed log-likelihood. For small models only (P forward-over-reverse
 * passes). Traceable; consumes `params` and `batch`.
 */
export function batchHessian(model: Model, params: Params, batch: Batch, blocks: readonly Block[]): { full: JArray; logLik: JArray } {
  const vec = np.concatenate(blocks.map((b) => leafAt(params, b.path).ref.reshape([b.size])));
  const nll = (v: JArray): JArray => {
    const p = withBlocks(params, blocks, v);
    return model.logLik(p, { x: batch.x.ref, y: batch.y.ref }).sum().mul(-1);
  };
  const full = hessianOf(nll, vec.ref);
  const logLik = nll(vec).mul(-1);
  free(params);
  batch.x.dispose();
  batch.y.dispose();
  return { full, logLik };
}

/**
 * `params` (borrowed) with the chosen blocks' leaves read from the flat vector `v` (consumed) in block
 * order; other leaves are new references to the originals.
 */
export function withBlocks(params: Params, blocks: readonly Block[], v: JArray): Params {
  let offset = 0;
  const replaced = new Map<string, JArray>();
  for (const b of blocks) {
    replaced.set(b.path, v.ref.slice([offset, offset + b.size]).reshape([...b.shape]));
    offset += b.size;
  }
  v.dispose();
  return rebuildByPath(params, (path, like) => replaced.get(path) ?? like.ref);
}
