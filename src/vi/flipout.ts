/**
 * Bayes-by-backprop with flipout (Wen, Vicol, Ba, Tran & Grosse 2018, "Flipout: efficient
 * pseudo-independent weight perturbations on mini-batches"): the objective of src/vi/bbb.ts with one
 * shared perturbation dW = sigma_W * eps_W per minibatch, decorrelated across examples by random signs,
 *
 *   b_n = h_n mu_W + mu_b + ((h_n * s_n) dW + sigma_b eps_b) * r_n,   s_n, r_n uniform in {-1, +1},
 *
 * so every example's weights are exactly distributed as q.
 */
import { bbbSpec } from "./bbb.js";

/** `--method flipout`. */
export const spec = bbbSpec(
  "flipout",
  "flipout",
  "Bayes-by-backprop with flipout perturbations of dense layers",
  "Wen, Vicol, Ba, Tran & Grosse 2018, Flipout: efficient pseudo-independent weight perturbations on mini-batches",
);
