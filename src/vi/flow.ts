/**
 * Normalizing-flow VI over every parameter of a small model: a RealNVP flow (Dinh, Sohl-Dickstein &
 * Bengio 2017, "Density estimation using Real NVP"; src/vi/flows.ts) fitted by ADVI's reparameterised
 * ELBO with the flow's log-determinant (src/vi/advi.ts), from a MAP warm start of the same number of
 * epochs.
 */
import { OPTIONS } from "../core/options.js";
import { onParams } from "../core/ravel.js";
import { use } from "../core/spec.js";
import type { ModelMethodSpec } from "../models/model.js";
import { create } from "./advi.js";
import { meanFieldRunOptions, type BbbSpecOptions } from "./bbb.js";
import { flatKind, flatTarget } from "./family.js";
import { realNvp } from "./flows.js";

/** Hidden units of each coupling layer's conditioner. */
const HIDDEN = 32;

/** Options of `--method flow`. */
export interface FlowSpecOptions extends BbbSpecOptions {
  flowLayers: number;
}

/** `--method flow`. */
export const spec: ModelMethodSpec<FlowSpecOptions> = {
  name: "flow",
  family: "vi",
  summary: "RealNVP normalizing-flow VI over all parameters of a small model (at most 3,000), from a MAP warm start",
  cost: "2x MAP (a 20-epoch MAP warm start, then 20 epochs of one draw per step) plus the flow's layers (small models only)",
  paper: "Dinh, Sohl-Dickstein & Bengio 2017, Density estimation using Real NVP (fitted by ADVI, Kucukelbir et al. 2017)",
  options: { ...meanFieldRunOptions(1), flowLayers: use(OPTIONS.flowLayers, 4) },
  kinds: [flatKind("realnvp", (d, o) => realNvp(d, { layers: Number(o.layers), hidden: Number(o.hidden) }))],
  plan: (o) => ({ collect: "final", epochs: o.epochs, draws: o.samples, warmStart: { epochs: o.epochs } }),
  build(ctx, o) {
    const { logDensity, unravel, d } = flatTarget("flow", ctx);
    const family = realNvp(d, { layers: o.flowLayers, hidden: HIDDEN });
    return onParams(create(logDensity, { family, samples: o.mc, learningRate: o.lr, initScale: o.initStd, dataSize: ctx.dataSize }), unravel);
  },
};
