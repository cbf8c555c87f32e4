/**
 * Networks: deterministic functions `apply(params, x)` with an `init(key)` that makes their parameter
 * pytree. A network is named by a spec string (`mlp:400,400`, `cnn:32,64`) that is saved with every
 * posterior, so a saved posterior can always rebuild its network.
 */
import { np, nn, random, type JArray, type Key } from "../core/engine.js";
import type { Tree } from "../core/tree.js";

/** Activation functions available to MLPs. */
export type Activation = "relu" | "tanh" | "gelu";

/** A deterministic network. `apply` consumes its arguments (jax-js move semantics). */
export interface Network {
  /** The spec string this network was built from. */
  readonly spec: string;
  /** Per-example input shape. */
  readonly inputShape: readonly number[];
  /** Number of outputs per example. */
  readonly outputDim: number;
  /** Fresh parameters from a key (consumes the key). */
  init(key: Key): Tree;
  /** Outputs `[n, outputDim]` for inputs `[n, ...inputShape]`. */
  apply(params: Tree, x: JArray): JArray;
  /**
   * `apply` with every dense layer replaced by `denseFn` (optional hook for methods that work on
   * layers: local reparameterisation and flipout in src/vi/bbb.ts). `denseFn(layer, h, i)` receives
   * the dense layer's slot of `params` untouched (so it may hold anything, e.g. a layer's
   * variational parameters), the layer input `h` `[n, fanIn]` and the layer's index among the dense
   * layers; it returns the pre-activations `[n, fanOut]`. Other layers (convolutions) read `params`
   * as in `apply`. Consumes its arguments.
   */
  applyWith?(params: Tree, x: JArray, denseFn: DenseFn): JArray;
  /**
   * `apply` with every layer's affine map, dense or convolutional, written as one matrix product
   * `rows W + b` and done by `linearFn` (for methods that need each layer's inputs and output
   * gradients: Laplace curvature, KFAC). `linearFn(layer, rows, i)` receives the layer's slot of
   * `params` (`w` of shape `[..., fanOut]`, `b` `[fanOut]`), the layer's input rows `[R, fanIn]` (R = n
   * for dense layers, n times the output positions for convolutions, as im2col patches) and the
   * layer's index in `layerList` order (models/prior.ts); it returns the pre-activations `[R, fanOut]`.
   * Consumes its arguments.
   */
  applyLinear?(params: Tree, x: JArray, linearFn: LinearFn): JArray;
}

/** A layer's affine map on its input rows (see {@link Network.applyLinear}). Consumes `layer` and `rows`. */
export type LinearFn = (layer: Tree, rows: JArray, index: number) => JArray;

/** `rows W + b` with `W` reshaped to `[fanIn, fanOut]`: the plain {@link LinearFn}. */
export function affine(layer: Tree, rows: JArray): JArray {
  const { w, b } = layer as DenseParams;
  const out = w.shape[w.ndim - 1];
  return np.matmul(rows, w.reshape([-1, out])).add(b);
}

/** A replacement for a dense layer `h W + b` (see {@link Network.applyWith}). Consumes `layer` and `h`. */
export type DenseFn = (layer: Tree, h: JArray, index: number) => JArray;

/** Apply an activation by name (consumes `x`). */
export function activate(x: JArray, act: Activation): JArray {
  switch (act) {
    case "relu":
      return nn.relu(x);
    case "tanh":
      return np.tanh(x);
    case "gelu":
      return nn.gelu(x);
  }
}

/** Parameter tree of a dense layer. */
export type DenseParams = { w: JArray; b: JArray };

/**
 * Initialise a dense layer: w ~ N(0, gain / fanIn) (He for relu/gelu with gain 2, LeCun for tanh and
 * for the output layer with gain 1), b = 0.
 */
export function initDense(k: Key, fanIn: number, fanOut: number, gain: number): DenseParams {
  const w = random.normal(k, [fanIn, fanOut]).mul(Math.sqrt(gain / fanIn));
  return { w, b: np.zeros([fanOut]) };
}

/** Dense layer `x W + b` on `[n, fanIn]` (consumes both). */
export function dense(p: DenseParams, x: JArray): JArray {
  return np.matmul(x, p.w).add(p.b);
}

