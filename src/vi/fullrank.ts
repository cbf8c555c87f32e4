/**
 * Full-rank Gaussian ADVI over every parameter of a small model (Kucukelbir, Tran, Ranganath, Gelman &
 * Blei 2017, "Automatic differentiation variational inference", JMLR 18): q = N(m, L L^T) over the
 * raveled parameters (src/vi/gaussian.ts `fullRank`), the reparameterised ELBO of src/vi/advi.ts with
 * its closed-form entropy, and Adam with damped steps on L's off-diagonal entries (`triangularAdam`).
 *
 * q starts around a MAP fit of the same number of epochs (a choice: from a random initialisation a
 * dense q over a network spends its budget on the mean).
 */
import { onParams } from "../core/ravel.js";
import type { ModelMethodSpec } from "../models/model.js";
import { create } from "./advi.js";
import { meanFieldRunOptions, type BbbSpecOptions } from "./bbb.js";
import { flatKind, flatTarget } from "./family.js";
import { fullRank, triangularAdam } from "./gaussian.js";

/** `--method fullrank`. */
export const spec: ModelMethodSpec<BbbSpecOptions> = {
  name: "fullrank",
  family: "vi",
  summary: "full-rank Gaussian ADVI over all parameters of a small model (at most 3,000), from a MAP warm start",
  cost: "2x MAP (a 20-epoch MAP warm start, then 20 epochs of one draw per step) plus O(d^2) per step (small models only)",
  paper: "Kucukelbir, Tran, Ranganath, Gelman & Blei 2017, Automatic differentiation variational inference",
  options: meanFieldRunOptions(1),
  kinds: [flatKind("fullrank", (d) => fullRank(d))],
  plan: (o) => ({ collect: "final", epochs: o.epochs, draws: o.samples, warmStart: { epochs: o.epochs } }),
  build(ctx, o) {
    const { logDensity, unravel, d } = flatTarget("fullrank", ctx);
    const family = fullRank(d);
    return onParams(create(logDensity, { family, samples: o.mc, optimizer: triangularAdam(o.lr, o.initStd, d, "chol"), initScale: o.initStd, dataSize: ctx.dataSize }), unravel);
  },
};
