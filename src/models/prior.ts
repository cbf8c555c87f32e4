/**
 * Priors over network weights.
 *
 * The default prior (what `bayesdl fit` uses) is a per-layer Gaussian scaled by fan-in:
 *
 *   W_l[i, j] ~ N(0, s_l^2 / fanIn_l),   b_l[j] ~ N(0, s_l^2),
 *
 * where fanIn_l is the number of inputs of a unit of layer l (the product of all but the last
 * dimension of the weight: d_in for a dense layer, k * k * c_in for a convolution in im2col form).
 * This is the scale at which a network drawn from the prior keeps its pre-activations O(1) through
 * depth (LeCun et al. 1998; He et al. 2015 for ReLU, where s^2 = 2 keeps the variance exactly), and the
 * scale of Neal's (1996) infinite-width limit; an N(0, 1) prior on every weight of a 784-400-400-10
 * network instead puts outputs at the scale sqrt(784 * 400 * 400) and dominates the likelihood's
 * geometry. Fortuin et al. (2022), "Bayesian neural network priors revisited", study this family
 * (and heavier tails) on MNIST MLPs. The constant c = s^2 is chosen on training data (docs/priors.md).
 *
 * `scaling: "none"` is the iid prior N(0, s_l^2) on every parameter (the form earlier posteriors were
 * saved with; a saved prior without `scaling` means it).
 */
import { np, type JArray } from "../core/engine.js";
import { LOG_2PI } from "../core/math.js";
import { leaves, type Tree } from "../core/tree.js";

/** How a layer's scale s_l becomes each parameter's prior standard deviation. */
export type PriorScaling = "fan-in" | "none";

/** A prior's description as saved in posterior.json. */
export interface PriorSpec {
  readonly kind: "gaussian";
  /** s: the scale of every layer, unless `perLayer` overrides it. */
  readonly scale: number;
  /** Optional s_l per top-level layer (in network layer order). */
  readonly perLayer?: readonly number[];
  /** `fan-in`: weights N(0, s_l^2 / fanIn), biases N(0, s_l^2); `none` (the default when absent): N(0, s_l^2) for all. */
  readonly scaling?: PriorScaling;
}

/**
 * How the prior's scale was chosen, as saved in posterior.json (`prior.selected`): by cross-validation
 * of one s (what it saw), or per layer by the Laplace evidence (each round's choice; run/evidence.ts).
 */
export type PriorSelection =
  | {
      readonly by: "cv";
      readonly folds: number;
      readonly grid: readonly number[];
      /** Mean validation NLL per grid value (nats per example, in the units metrics are reported in). */
      readonly nll: readonly number[];
      readonly chosen: number;
    }
  | {
      readonly by: "evidence";
      /** Per round: MAP epochs, the per-layer scales chosen after them, and the log evidence there. */
      readonly rounds: readonly { readonly epochs: number; readonly priorScales: readonly number[]; readonly logEvidence: number }[];
      readonly chosen: readonly number[];
    };

/** The fan-in prior with scale `s` (one number or one per layer): the default of the CLI. */
export function fanInPrior(scale: number | readonly number[] = DEFAULT_PRIOR_SCALE): PriorSpec {
  return typeof scale === "number"
    ? { kind: "gaussian", scale, scaling: "fan-in" }
    : { kind: "gaussian", scale: scale[0], perLayer: [...scale], scaling: "fan-in" };
}

/** s of the default fan-in prior (s^2 = c in variance c / fanIn); docs/priors.md says how it was chosen. */
export const DEFAULT_PRIOR_SCALE = 8;

/** A parameter leaf's fan-in: 1 for vectors (biases), else the product of all but the last dimension. */
export function fanIn(shape: readonly number[]): number {
  return shape.length < 2 ? 1 : shape.slice(0, -1).reduce((a, b) => a * b, 1);
}

/**
 * The prior standard deviation of every leaf of every layer, in `layerList` and `leaves` order,
 * checked (the layer count against `perLayer`, every scale positive).
 */
export function leafScales(spec: PriorSpec, layers: readonly Tree[]): number[][] {
  if (spec.perLayer && spec.perLayer.length !== layers.length) {
    throw new RangeError(`prior: perLayer has ${spec.perLayer.length} scales but the network has ${layers.length} layers`);
  }
  return layers.map((layer, l) => {
    const s = spec.perLayer ? spec.perLayer[l] : spec.scale;
    if (!(s > 0) || !Number.isFinite(s)) throw new RangeError(`prior: scale must be a finite number > 0, got ${s} for layer ${l}`);
    return leaves(layer).map((leaf) => (spec.scaling === "fan-in" ? s / Math.sqrt(fanIn(leaf.shape)) : s));
  });
}

/**
 * Every parameter leaf's prior standard deviation, in `leaves(params)` order: a network leaf's from
 * {@link leafScales}, 1 for a likelihood leaf (the learned log noise scale's N(log sigma0, 1) prior).
 * Borrows `params` (traced or concrete; only the tree's structure and shapes are read).
 */
export function paramPriorScales(spec: PriorSpec, params: { net: Tree; lik?: Tree }): number[] {
  const layers = layerList(params.net);
  const scales = leafScales(spec, layers);
  const byLeaf = new Map<JArray, number>();
  layers.forEach((layer, l) => leaves(layer).forEach((leaf, i) => byLeaf.set(leaf, scales[l][i])));
  return leaves(params).map((leaf) => byLeaf.get(leaf) ?? 1);
}

/**
 * Gaussian prior: log p(theta) = sum_leaves sum_i [ -theta_i^2 / (2 s^2) - 1/2 log(2 pi s^2) ], with s
 * each leaf's standard deviation from {@link leafScales}. Layers are the elements of the network's
 * layer lists (`layers` for MLPs; `convs` then `dense` for CNNs). Consumes `netParams`.
 * Its MAP counterpart is weight decay with coefficient 1 / (2 s^2 N) on the mean loss.
 */
export function gaussianLogPrior(spec: PriorSpec, netParams: Tree): JArray {
  const layers = layerList(netParams);
  const scales = leafScales(spec, layers);
  let total: JArray | undefined;
  layers.forEach((layer, l) => {
    leaves(layer).forEach((leaf, i) => {
      const s = scales[l][i];
      const size = leaf.shape.reduce((a, b) => a * b, 1);
      const term = leaf.ref.mul(leaf).sum().mul(-0.5 / (s * s)).sub(size * (0.5 * LOG_2PI + Math.log(s)));
      total = total ? total.add(term) : term;
    });
  });
  return total ?? np.array(0);
}

/** The network's layers in order: `layers`, or `convs` followed by `dense`. */
export function layerList(netParams: Tree): Tree[] {
  const p = netParams as Record<string, Tree[]>;
  if (Array.isArray(p.layers)) return p.layers;
  if (Array.isArray(p.convs) && Array.isArray(p.dense)) return [...p.convs, ...p.dense];
  throw new TypeError("prior: unknown parameter layout (expected 'layers' or 'convs' + 'dense')");
}
