/**
 * Multi-layer perceptron: inputs are flattened, then `hidden` dense layers with an activation, then
 * a linear output layer.
 */
import { np, split, type JArray, type Key } from "../core/engine.js";
import type { Tree } from "../core/tree.js";
import { activate, dense, initDense, type Activation, type DenseFn, type DenseParams, type Network } from "./network.js";

/** MLP parameters: one `{w, b}` per layer, input to output. */
export type MlpParams = { layers: DenseParams[] };

/** Options of {@link mlp}. */
export interface MlpOptions {
  readonly inputShape: readonly number[];
  readonly hidden: readonly number[];
  readonly outputDim: number;
  readonly activation?: Activation;
  /** Spec string to record; built from the options when omitted. */
  readonly spec?: string;
}

/**
 * Build an MLP. Hidden layers use He-normal init (relu, gelu) or LeCun-normal (tanh); the output layer
 * LeCun-normal; biases start at 0.
 */
export function mlp(opts: MlpOptions): Network {
  const act = opts.activation ?? "relu";
  const inDim = opts.inputShape.reduce((a, b) => a * b, 1);
  const sizes = [inDim, ...opts.hidden, opts.outputDim];
  const gain = act === "tanh" ? 1 : 2;
  for (const h of opts.hidden) {
    if (!Number.isInteger(h) || h <= 0) throw new RangeError(`mlp: hidden widths must be positive integers, got ${h}`);
  }
  function run(params: Tree, x: JArray, denseFn: DenseFn): JArray {
    const { layers } = params as MlpParams;
    let h = x.ndim === 2 && x.shape[1] === inDim ? x : np.reshape(x, [x.shape[0], inDim]);
    layers.forEach((layer, i) => {
      h = denseFn(layer, h, i);
      if (i < layers.length - 1) h = activate(h, act);
    });
    return h;
  }
  return {
    spec: opts.spec ?? `mlp:${opts.hidden.join(",")}${act === "relu" ? "" : `:${act}`}`,
    inputShape: [...opts.inputShape],
    outputDim: opts.outputDim,
    init(key: Key): Tree {
      const keys = split(key, sizes.length - 1);
      const layers = keys.map((k, i) => initDense(k, sizes[i], sizes[i + 1], i === sizes.length - 2 ? 1 : gain));
      return { layers } satisfies MlpParams;
    },
    apply(params: Tree, x: JArray): JArray {
      return run(params, x, (layer, h) => dense(layer as DenseParams, h));
    },
    applyWith: run,
    applyLinear: (params, x, linearFn) => run(params, x, linearFn),
  };
}
