/**
 * The linearised network's products at a fixed mode theta*, with K tangents folded into the batch axis:
 * J z as the forward-mode derivative of the network in perturbations of the chosen layers'
 * pre-activations (rows dW + db, with each layer's input rows at theta*), J^T w as the layer gradients
 * rows^T delta of one backward pass, and the GGN product sum_i J_i^T H_i J_i z from both. Never a
 * Jacobian or a curvature matrix. Used by sampled Laplace (laplace/sampled.ts), the low-rank Laplace's
 * sketch (laplace/laplace.ts) and its predictive (laplace/posterior.ts).
 */
import { jvpOf, nn, np, vjpOf, type JArray } from "../core/engine.js";
import { keep, type Tree } from "../core/tree.js";
import type { Model } from "../models/model.js";
import { affine } from "../models/network.js";
import { blockLayers, type Block } from "./curvature.js";

/**
 * J(x) z_k for K parameter-shaped tangents `z` (per block `[K, ...shape]`, borrowed), from the chosen
 * layers' input rows at the mode (`rows`, borrowed, `blockLayers` order): the forward-mode derivative of
 * the network in perturbations rows dW + db of each chosen layer's pre-activations, with the K
 * tangents folded into the batch. Returns `[K, n, d]`. Traceable; borrows `net`, consumes `x`.
 */
export function sampleJvp(model: Model, net: Tree, x: JArray, rows: readonly JArray[], blocks: readonly Block[], z: readonly JArray[]): JArray {
  const network = model.network;
  const layers = blockLayers(blocks);
  const n = x.shape[0];
  const k = z[0].shape[0];
  const tangents = layers.map((l, j) => {
    const r = rows[j];
    const rCount = r.shape[0];
    let t: JArray | undefined;
    blocks.forEach((b, i) => {
      if (b.layer !== l) return;
      const zi = z[i].ref;
      const term =
        b.kind === "w"
          ? np.matmul(r.ref, zi.reshape([k, b.fanIn, b.fanOut]).transpose([1, 0, 2]).reshape([b.fanIn, k * b.fanOut])).reshape([rCount, k, b.fanOut]).transpose([1, 0, 2])
          : np.broadcastTo(zi.reshape([k, 1, b.fanOut]), [k, rCount, b.fanOut]);
      t = t ? t.add(term) : term;
    });
    return t!.reshape([k * rCount, t!.shape[2]]);
  });
  const [out, u] = jvpOf(perturbed(model, net, x, k, layers), tangents.map((t) => np.zeros(t.shape)), tangents);
  out.dispose();
  return u.reshape([k, n, network.outputDim]);
}

/**
 * The network at the mode on `x` repeated K times (folded into the batch, `[K n, ...]`) as a function of
 * perturbations `[K R_j, out_j]` added to the chosen layers' pre-activations. Consumes `x` when the
 * returned function is released by its caller's trace; borrows `net`.
 */
function perturbed(model: Model, net: Tree, x: JArray, k: number, layers: readonly number[]): (eps: JArray[]) => JArray {
  const n = x.shape[0];
  const folded = np.broadcastTo(x.reshape([1, ...x.shape]), [k, ...x.shape]).reshape([k * n, ...x.shape.slice(1)]);
  const index = new Map(layers.map((l, j) => [l, j]));
  let used = false;
  return (eps: JArray[]) => {
    if (used) throw new Error("perturbed: the function is traced once");
    used = true;
    return model.network.applyLinear!(keep(net), folded, (layer, r, i) => {
      const j = index.get(i);
      return j === undefined ? affine(layer, r) : affine(layer, r).add(eps[j]);
    });
  };
}

/**
 * J^T w_k for K output cotangents `w` `[K, n, d]` (consumed), as the chosen layers' pre-activation
 * gradients `[K, R_j, out_j]` of one backward pass with the K cotangents folded into the batch.
 * Traceable; borrows `net` and `rows` (only their shapes are read), consumes `x`.
 */
export function sampleVjp(model: Model, net: Tree, x: JArray, rows: readonly JArray[], blocks: readonly Block[], w: JArray): JArray[] {
  const layers = blockLayers(blocks);
  const [k, n, d] = w.shape;
  const outDims = layers.map((l) => blocks.find((b) => b.layer === l)!.fanOut);
  const [out, back] = vjpOf(perturbed(model, net, x, k, layers), layers.map((_, j) => np.zeros([k * rows[j].shape[0], outDims[j]])));
  out.dispose();
  const deltas = back(w.reshape([k * n, d]));
  back.dispose();
  return deltas.map((g, j) => g.reshape([k, rows[j].shape[0], outDims[j]]));
}

/** The input rows of the chosen layers at the mode and the outputs, from one forward pass. Consumes `x`; borrows `net`. */
export function forwardRows(model: Model, net: Tree, x: JArray, layers: readonly number[]): { out: JArray; rows: JArray[] } {
  const rows: JArray[] = new Array(layers.length);
  const index = new Map(layers.map((l, j) => [l, j]));
  const out = model.network.applyLinear!(keep(net), x, (layer, r, i) => {
    const j = index.get(i);
    if (j !== undefined) rows[j] = r.ref;
    return affine(layer, r);
  });
  return { out, rows };
}

/**
 * H_i u_i for output-space vectors `u` `[K, n, d]` (consumed), with H the likelihood's Hessian in the
 * outputs `out` `[n, d]` (consumed): softmax, diag(p) - p p^T; Gaussian, 1 / sigma^2. Traceable.
 */
export function hessianTimes(model: Model, out: JArray, u: JArray, sigma: number): JArray {
  if (model.likelihood.spec.kind !== "categorical") {
    out.dispose();
    return u.mul(1 / (sigma * sigma));
  }
  const p = nn.softmax(out, -1).reshape([1, ...out.shape]);
  return p.ref.mul(u.ref).sub(p.ref.mul(p.mul(u).sum(-1, { keepdims: true })));
}

/**
 * L_i eps_i with H = L L^T (softmax: L = diag(sqrt p) - p sqrt(p)^T; Gaussian: 1 / sigma), for `eps`
 * `[K, n, d]`; consumes both. Traceable.
 */
export function hessianSqrtTimes(model: Model, out: JArray, eps: JArray, sigma: number): JArray {
  if (model.likelihood.spec.kind !== "categorical") {
    out.dispose();
    return eps.mul(1 / sigma);
  }
  const p = nn.softmax(out, -1).reshape([1, ...out.shape]);
  const sq = np.sqrt(p.ref);
  return sq.ref.mul(eps.ref).sub(p.mul(sq.mul(eps).sum(-1, { keepdims: true })));
}

/**
 * One linearised pass over the batch `x` (consumed) for K tangents `z` (borrowed): the outputs at the
 * mode give the cotangents `cotangent(out, Jz)` `[K, n, d]` (both consumed), which are backpropagated.
 * Returns J z `[K, n, d]`, the chosen layers' input rows and their pre-activation cotangents
 * `[K, R, out]` (the caller owns all three). Traceable; borrows `net`.
 */
export function linearisedPass(model: Model, net: Tree, x: JArray, blocks: readonly Block[], z: readonly JArray[], cotangent: (out: JArray, u: JArray) => JArray): { u: JArray; rows: JArray[]; deltas: JArray[] } {
  const { out, rows } = forwardRows(model, net, x.ref, blockLayers(blocks));
  const u = sampleJvp(model, net, x.ref, rows, blocks, z);
  const deltas = sampleVjp(model, net, x, rows, blocks, cotangent(out, u.ref));
  return { u, rows, deltas };
}

/**
 * The data term of the sample objective's gradient, sum_i J_i^T H_i J_i z_k over the batch `x`
 * (consumed), per block `[K, ...shape]`, for K tangents `z` (borrowed). Classification (softmax H)
 * and Gaussian regression (H = 1 / sigma^2). Traceable; borrows `net`.
 */
export function ggnProducts(model: Model, net: Tree, x: JArray, blocks: readonly Block[], z: readonly JArray[], sigma = 1): JArray[] {
  const { u, rows, deltas } = linearisedPass(model, net, x, blocks, z, (out, ju) => hessianTimes(model, out, ju, sigma));
  u.dispose();
  const r = blockGrads(blocks, blockLayers(blocks), rows, deltas);
  rows.forEach((a) => a.dispose());
  deltas.forEach((a) => a.dispose());
  return r;
}

/** Per block `[K, ...shape]`: the gradients rows^T delta_k of weights and sum_R delta_k of biases. Borrows its arguments. */
export function blockGrads(blocks: readonly Block[], layers: readonly number[], rows: readonly JArray[], deltas: readonly JArray[]): JArray[] {
  return blocks.map((b) => {
    const j = layers.indexOf(b.layer);
    const delta = deltas[j].ref; // [K, R, out]
    const [k, rCount] = delta.shape;
    if (b.kind === "b") return delta.sum(1).reshape([k, ...b.shape]);
    return np.matmul(rows[j].ref.transpose(), delta.transpose([1, 0, 2]).reshape([rCount, k * b.fanOut])).reshape([b.fanIn, k, b.fanOut]).transpose([1, 0, 2]).reshape([k, ...b.shape]);
  });
}
