/**
 * Bayes-by-backprop with the local reparameterisation trick (Kingma, Salimans & Welling 2015,
 * "Variational dropout and the local reparameterization trick"): the objective of src/vi/bbb.ts with
 * each dense layer's pre-activations drawn from their Gaussian under q, independently per example,
 *
 *   b_n ~ N(h_n mu_W + mu_b, h_n^2 sigma_W^2 + sigma_b^2),
 *
 * which has the same expectation as a weight draw and a lower variance.
 */
import { bbbSpec } from "./bbb.js";

/** `--method bbb-lrt`. */
export const spec = bbbSpec(
  "bbb-lrt",
  "lrt",
  "Bayes-by-backprop with local reparameterisation of dense layers",
  "Kingma, Salimans & Welling 2015, Variational dropout and the local reparameterization trick",
);
