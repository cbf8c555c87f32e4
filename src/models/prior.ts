/**
 * Priors over network weights.
 */
import { np, type JArray } from "../core/engine.js";
import { LOG_2PI } from "../core/math.js";
import { leaves, type Tree } from "../core/tree.js";


/** A prior's description as saved in posterior.json. */
export interface PriorSpec {
  readonly kind: "gaussian";
  /** Standard deviation of every weight, unless `perLayer` overrides it. */
  readonly scale: number;
  /** Optional standard deviation per top-level layer (in network layer order). */
  readonly perLayer?: readonly number[];
}

/**
 * Isotropic Gaussian prior: log p(theta) = sum_l sum_i [ -theta_li^2 / (2 s_l^2) - 1/2 log(2 pi s_l^2) ],
 * where `s_l` is `perLayer[l]` or `scale`. Layers are the elements of the network's layer lists
 * (`layers` for MLPs; `convs` then `dense` for CNNs). Consumes `netParams`.
 * Its MAP counterpart is weight decay with coefficient 1 / (2 s^2 N) on the mean loss.
 */
export function gaussianLogPrior(spec: PriorSpec, netParams: Tree): JArray {
  const layers = layerList(netParams);
  if (spec.perLayer && spec.perLayer.length !== layers.length) {
    throw new RangeError(`prior: perLayer has ${spec.perLayer.length} scales but the network has ${layers.length} layers`);
  }
  let total: JArray | undefined;
  layers.forEach((layer, l) => {
    const s = spec.perLayer ? spec.perLayer[l] : spec.scale;
    if (!(s > 0)) throw new RangeError(`prior: scale must be > 0, got ${s} for layer ${l}`);
    for (const leaf of leaves(layer)) {
      const size = leaf.shape.reduce((a, b) => a * b, 1);
      const term = leaf.ref.mul(leaf).sum().mul(-0.5 / (s * s)).sub(size * (0.5 * LOG_2PI + Math.log(s)));
      total = total ? total.add(term) : term;
    }
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
