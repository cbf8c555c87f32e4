/**
 * The Laplace approximation's log marginal likelihood (evidence) as a function of the prior precision
 * and the regression noise, with its gradient, and its maximisation (MacKay 1992; Immer et al. 2021,
 * "Scalable marginal likelihood estimation for model selection in deep learning").
 *
 * Around a mode theta* with prior precision tau_p = beta_g(p) c_p (c_p the prior's fixed pattern: fanIn
 * for a fan-in prior's weights, 1 for biases; beta_g = 1 / s_g^2 one per group of layers) and curvature
 * r C (C computed at unit noise; r = sigma^-2 for the GGN and Hessian, sigma^-4 for the empirical
 * Fisher of a Gaussian likelihood, 1 for classification):
 *
 *   log Z = log p(D | theta*, sigma) - 1/2 sum_p tau_p theta*_p^2 + 1/2 sum_p log tau_p - 1/2 log det(r C + T)
 *
 * (the 2 pi terms of prior and Laplace normaliser cancel). The structures enter only through the
 * eigenvalues of each block's curvature, which share the block's isotropic prior precision: a
 * diagonal's entries, a Kronecker block's products lambda_A,i lambda_G,j / R, or, for the full matrix,
 * the eigenvalues of C^-1/2 GGN C^-1/2 under one shared beta. Everything here is host arithmetic on
 * those eigenvalues (float64), so changing the prior never recomputes curvature. A prior that does not
 * share those eigenbases (per layer under the full structure, or per weight) is scored weight by
 * weight ({@link WeightwiseProblem}).
 */
import { cholesky, invertLower, logDetCholesky } from "../core/linalg.js";
import { goldenSectionMax } from "../core/math.js";

/** The eigenvalues of one block of the precision and the prior precision they share. */
export interface EigenGroup {
  /** Index of the beta this group's prior precision uses. */
  readonly beta: number;
  /** tau = beta * scale for every eigenvalue of the group. */
  readonly scale: number;
  /** Curvature eigenvalues at unit noise. */
  readonly lambda: Float64Array;
}

/** One block of parameters in the prior term. */
export interface PriorBlock {
  readonly beta: number;
  /** c: the prior precision pattern (tau = beta c). */
  readonly scale: number;
  /** Number of parameters. */
  readonly size: number;
  /** sum of theta*^2 over the block. */
  readonly sumSq: number;
}

/** The data term: a fixed log-likelihood (classification) or a Gaussian's from its residuals. */
export type DataTerm = { readonly kind: "fixed"; readonly logLik: number } | { readonly kind: "gaussian"; readonly n: number; readonly sse: number };

/** Everything the evidence depends on besides the hyperparameters. */
export interface EvidenceProblem {
  readonly groups: readonly EigenGroup[];
  readonly blocks: readonly PriorBlock[];
  readonly data: DataTerm;
  /** Number of betas. */
  readonly betas: number;
  /** r = sigma^-noisePower (2 for GGN and Hessian, 4 for the empirical Fisher); unused for classification. */
  readonly noisePower: number;
  /** A constant added to log det (the full structure's sum log c). */
  readonly logDetConst: number;
}

/** Hyperparameters: log beta per group, and log sigma for a Gaussian likelihood. */
export interface Hyper {
  readonly logBeta: readonly number[];
  readonly logSigma?: number;
}

/** log Z and its gradient in (log beta, log sigma). */
export function logEvidence(p: EvidenceProblem, h: Hyper): { value: number; dLogBeta: number[]; dLogSigma: number } {
  const beta = h.logBeta.map(Math.exp);
  const gaussian = p.data.kind === "gaussian";
  const sigma = gaussian ? Math.exp(h.logSigma ?? 0) : 1;
  const r = gaussian ? sigma ** -p.noisePower : 1;
  const dLogBeta = new Array<number>(p.betas).fill(0);
  let value = 0;
  let dLogSigma = 0;
  if (p.data.kind === "gaussian") {
    value += -0.5 * p.data.n * Math.log(2 * Math.PI * sigma * sigma) - p.data.sse / (2 * sigma * sigma);
    dLogSigma += -p.data.n + p.data.sse / (sigma * sigma);
  } else {
    value += p.data.logLik;
  }
  for (const b of p.blocks) {
    const tau = beta[b.beta] * b.scale;
    value += -0.5 * tau * b.sumSq + 0.5 * b.size * Math.log(tau);
    dLogBeta[b.beta] += -0.5 * tau * b.sumSq + 0.5 * b.size;
  }
  let logDet = p.logDetConst;
  for (const g of p.groups) {
    const tau = beta[g.beta] * g.scale;
    let ld = 0;
    let dTau = 0;
    let dR = 0;
    const lam = g.lambda;
    for (let i = 0; i < lam.length; i++) {
      const rl = r * Math.max(lam[i], 0);
      const prec = rl + tau;
      ld += Math.log(prec);
      dTau += tau / prec;
      dR += rl / prec;
    }
    logDet += ld;
    dLogBeta[g.beta] += -0.5 * dTau;
    // d(r lambda)/d log sigma = -noisePower r lambda.
    if (gaussian) dLogSigma += 0.5 * p.noisePower * dR;
  }
  value -= 0.5 * logDet;
  return { value, dLogBeta, dLogSigma };
}

/** Options of {@link maximiseEvidence}. */
export interface MaximiseOptions {
  /** Tune sigma too (Gaussian likelihoods with a learned noise). */
  readonly tuneSigma: boolean;
  readonly steps?: number;
  readonly lr?: number;
}

/**
 * Maximise log Z over log beta (and log sigma) by Adam on the exact gradient, from `start`; stops when
 * every gradient component is below 1e-6 of the evidence's scale or after `steps` steps. Each beta is
 * kept within [1e-8, 1e8] times its start. Returns the best point seen and its value.
 */
export function maximiseEvidence(p: EvidenceProblem, start: Hyper, o: MaximiseOptions): { hyper: Hyper; value: number; steps: number } {
  const steps = o.steps ?? 2000;
  const lr = o.lr ?? 0.05;
  const dim = p.betas + (o.tuneSigma ? 1 : 0);
  const x = [...start.logBeta, ...(o.tuneSigma ? [start.logSigma ?? 0] : [])];
  const lo = x.map((v, i) => (i < p.betas ? v - 18.4 : v - 10));
  const hi = x.map((v, i) => (i < p.betas ? v + 18.4 : v + 10));
  const m = new Array<number>(dim).fill(0);
  const v = new Array<number>(dim).fill(0);
  const at = (xs: number[]): Hyper => ({ logBeta: xs.slice(0, p.betas), logSigma: o.tuneSigma ? xs[p.betas] : start.logSigma });
  let best = { x: [...x], value: -Infinity };
  let t = 0;
  for (; t < steps; t++) {
    const e = logEvidence(p, at(x));
    if (e.value > best.value) best = { x: [...x], value: e.value };
    const g = [...e.dLogBeta, ...(o.tuneSigma ? [e.dLogSigma] : [])];
    const tol = 1e-6 * Math.max(1, Math.abs(e.value));
    if (g.every((gi) => Math.abs(gi) < tol)) break;
    for (let i = 0; i < dim; i++) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      const mh = m[i] / (1 - 0.9 ** (t + 1));
      const vh = v[i] / (1 - 0.999 ** (t + 1));
      x[i] = Math.min(hi[i], Math.max(lo[i], x[i] + (lr * mh) / (Math.sqrt(vh) + 1e-12)));
    }
  }
  const final = logEvidence(p, at(x));
  if (final.value > best.value) best = { x: [...x], value: final.value };
  return { hyper: at(best.x), value: best.value, steps: t };
}

/**
 * Maximise a smooth function of a few log hyperparameters without its gradient: rounds of golden-section
 * search along each coordinate in turn within [lo, hi] (to 1e-4 in the log), `rounds` rounds (one
 * suffices for one coordinate). For evidences whose gradient is not available in closed form (the
 * low-rank structure's log det, laplace/laplace.ts). Returns the best point and its value.
 */
export function maximiseByCoordinates(f: (x: number[]) => number, start: readonly number[], lo: readonly number[], hi: readonly number[], rounds = start.length > 1 ? 4 : 1): { x: number[]; value: number } {
  const x = [...start];
  let value = f(x);
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < x.length; i++) {
      const at = (v: number) => {
        const y = [...x];
        y[i] = v;
        return f(y);
      };
      const { x: v, value: fv } = goldenSectionMax(at, lo[i], hi[i], 1e-4);
      if (fv > value) {
        x[i] = v;
        value = fv;
      }
    }
  }
  return { x, value };
}

/**
 * The evidence weight by weight, for a prior precision that need not be one multiplier per group of a
 * shared eigenbasis: a precision per layer under the full structure, or one per weight (`--prior-structure
 * diagonal`). tau_p is each weight's prior precision, and the curvature enters as a diagonal (the diag
 * structure: weight p's own eigenvalue lambda_p) or the dense p x p matrix C (full):
 *
 *   log Z = data term - 1/2 sum_p tau_p theta*_p^2 + 1/2 sum_p log tau_p - 1/2 log det(r C + diag(tau)).
 */
export interface WeightwiseProblem {
  /** theta*_p^2 per tuned weight, in block order. */
  readonly theta2: Float64Array;
  /** c_p: under a per-layer prior tau_p = beta_g(p) c_p. */
  readonly pattern: Float64Array;
  /** The group (layer) of each weight, 0 .. groups - 1. */
  readonly group: Int32Array;
  readonly groups: number;
  /** Curvature at unit noise: its diagonal, or the dense row-major p x p matrix. */
  readonly curvature: { readonly kind: "diag"; readonly lambda: Float64Array } | { readonly kind: "dense"; readonly c: Float64Array };
  readonly data: DataTerm;
  /** As {@link EvidenceProblem.noisePower}. */
  readonly noisePower: number;
}

/** r = sigma^-noisePower for a Gaussian likelihood, 1 otherwise. */
function noiseFactor(p: { readonly data: DataTerm; readonly noisePower: number }, logSigma: number | undefined): number {
  return p.data.kind === "gaussian" ? Math.exp(-p.noisePower * (logSigma ?? 0)) : 1;
}

/**
 * log Z at per-weight precisions `tau` (and log sigma), with the posterior variances Sigma_pp and, for
 * the dense structure, L^-1 with L L^T = r C + diag(tau) (its transpose is the covariance's square root). O(p) for a
 * diagonal curvature; one Cholesky and one triangular inverse, O(p^3), for a dense one.
 */
export function weightwiseEvidence(p: WeightwiseProblem, tau: Float64Array, logSigma?: number): { value: number; variance: Float64Array; inverseFactor?: Float64Array } {
  const n = tau.length;
  const r = noiseFactor(p, logSigma);
  let value = 0;
  if (p.data.kind === "gaussian") {
    const s2 = Math.exp(2 * (logSigma ?? 0));
    value += -0.5 * p.data.n * Math.log(2 * Math.PI * s2) - p.data.sse / (2 * s2);
  } else value += p.data.logLik;
  for (let i = 0; i < n; i++) value += -0.5 * tau[i] * p.theta2[i] + 0.5 * Math.log(tau[i]);
  const variance = new Float64Array(n);
  if (p.curvature.kind === "diag") {
    const lam = p.curvature.lambda;
    for (let i = 0; i < n; i++) {
      const prec = r * Math.max(lam[i], 0) + tau[i];
      value -= 0.5 * Math.log(prec);
      variance[i] = 1 / prec;
    }
    return { value, variance };
  }
  const a = p.curvature.c.map((v) => r * v);
  for (let i = 0; i < n; i++) a[i * n + i] += tau[i];
  const chol = cholesky(a, n);
  value -= 0.5 * logDetCholesky(chol, n);
  // (r C + T)^-1_pp = sum_k (L^-1)_kp^2.
  const inv = invertLower(chol, n);
  for (let k = 0; k < n; k++) for (let i = 0; i <= k; i++) variance[i] += inv[k * n + i] ** 2;
  return { value, variance, inverseFactor: inv };
}

/** Options of {@link maximiseWeightwise}. */
export interface WeightwiseOptions {
  /** One precision multiplier per group (`layer`) or one precision per weight (`diagonal`). */
  readonly structure: "layer" | "diagonal";
  readonly tuneSigma: boolean;
  /** Fixed-point iterations at most (each one O(p^3) for a dense curvature). */
  readonly iterations?: number;
}

/**
 * Maximise {@link weightwiseEvidence} over the prior precisions (per group or per weight, each kept in
 * [1e-8, 1e8] times its start) and log sigma, by MacKay's (1992) fixed point: with Sigma = (r C + T)^-1 at
 * the current values and gamma_p = 1 - tau_p Sigma_pp (weight p's share of the effective number of
 * parameters), the stationarity conditions of log Z give
 *
 *   per group:   beta_g = sum_{p in g} gamma_p / sum_{p in g} c_p theta*_p^2,
 *   per weight:  tau_p = gamma_p / theta*_p^2, taken in the form that maximises log Z in tau_p alone
 *                (the others fixed): with q_p = Sigma_pp / (1 - tau_p Sigma_pp), weight p's posterior
 *                variance without its own prior term (by the matrix determinant lemma
 *                log det(A + tau_p e_p e_p^T) = log det A + log(1 + tau_p q_p)), the root of
 *                q tau^2 + tau - 1 / theta^2 = 0: tau_p = 2 / (theta*_p^2 (1 + sqrt(1 + 4 q_p / theta*_p^2))).
 *                For a diagonal curvature q_p = 1 / (r lambda_p) and one step is exact; for a dense one
 *                the coordinatewise optimum does not swing between the bounds as the plain form does
 *                for weights the data barely determine,
 *   noise:       sigma^2 = sse / (N - (noisePower / 2) sum_p gamma_p).
 *
 * Iterates until no log precision or log sigma moves by more than 1e-7, or log Z gains less than 1e-9
 * of itself over 5 iterations, or `iterations` (default 500), and returns the best point seen (the
 * fixed point need not increase log Z at every step), with its evaluation (variances and, dense, L^-1).
 */
export function maximiseWeightwise(
  p: WeightwiseProblem,
  start: { readonly tau: Float64Array; readonly logSigma?: number },
  o: WeightwiseOptions,
): { tau: Float64Array; logSigma?: number; value: number; evaluation: ReturnType<typeof weightwiseEvidence>; iterations: number } {
  const n = start.tau.length;
  const lo = start.tau.map((t) => t * 1e-8);
  const hi = start.tau.map((t) => t * 1e8);
  const clamp = (v: number, i: number) => Math.min(hi[i], Math.max(lo[i], Number.isFinite(v) ? v : hi[i]));
  const iterations = o.iterations ?? 500;
  let tau = Float64Array.from(start.tau);
  let logSigma = start.logSigma;
  let e = weightwiseEvidence(p, tau, logSigma);
  let best = { tau, logSigma, value: e.value, evaluation: e };
  const history: number[] = [];
  let it = 0;
  for (; it < iterations; it++) {
    const r = noiseFactor(p, logSigma);
    const next = new Float64Array(n);
    let gammaTotal = 0;
    for (let i = 0; i < n; i++) gammaTotal += 1 - tau[i] * e.variance[i];
    if (o.structure === "diagonal") {
      for (let i = 0; i < n; i++) {
        // q_p: weight p's posterior variance without its prior term, 1 / (r lambda_p) for a diagonal
        // curvature, Sigma_pp / (1 - tau_p Sigma_pp) for a dense one.
        const q = p.curvature.kind === "diag" ? 1 / (r * Math.max(p.curvature.lambda[i], 0)) : e.variance[i] / Math.max(1 - tau[i] * e.variance[i], 0);
        next[i] = clamp(2 / (p.theta2[i] * (1 + Math.sqrt(1 + (4 * q) / p.theta2[i]))), i);
      }
    } else {
      const gamma = new Float64Array(p.groups);
      const norm = new Float64Array(p.groups);
      for (let i = 0; i < n; i++) {
        gamma[p.group[i]] += 1 - tau[i] * e.variance[i];
        norm[p.group[i]] += p.pattern[i] * p.theta2[i];
      }
      for (let i = 0; i < n; i++) next[i] = clamp((gamma[p.group[i]] / norm[p.group[i]]) * p.pattern[i], i);
    }
    let nextSigma = logSigma;
    if (o.tuneSigma && p.data.kind === "gaussian") {
      const dof = p.data.n - 0.5 * p.noisePower * gammaTotal;
      if (dof > 0 && p.data.sse > 0) nextSigma = Math.min((start.logSigma ?? 0) + 10, Math.max((start.logSigma ?? 0) - 10, 0.5 * Math.log(p.data.sse / dof)));
    }
    let move = Math.abs((nextSigma ?? 0) - (logSigma ?? 0));
    for (let i = 0; i < n; i++) move = Math.max(move, Math.abs(Math.log(next[i] / tau[i])));
    tau = next;
    logSigma = nextSigma;
    try {
      e = weightwiseEvidence(p, tau, logSigma);
    } catch (err) {
      // r C + diag(tau) lost positive definiteness in float64 (precisions at their lower bound against a
      // curvature many orders larger): the best point so far stands.
      if (err instanceof RangeError) break;
      throw err;
    }
    if (e.value > best.value) best = { tau, logSigma, value: e.value, evaluation: e };
    history.push(best.value);
    // Converged: nothing moves, or log Z has gained less than 1e-9 of itself over 5 iterations (a weight
    // the data leave undetermined can keep moving without changing log Z).
    if (move < 1e-7 || (history.length > 5 && history[history.length - 1] - history[history.length - 6] < 1e-9 * Math.max(1, Math.abs(best.value)))) {
      it++;
      break;
    }
  }
  return { ...best, iterations: it };
}
