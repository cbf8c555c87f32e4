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
 * those eigenvalues (float64), so changing the prior never recomputes curvature.
 */

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
  const g = (Math.sqrt(5) - 1) / 2;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < x.length; i++) {
      const at = (v: number) => {
        const y = [...x];
        y[i] = v;
        return f(y);
      };
      let a = lo[i];
      let b = hi[i];
      let c = b - g * (b - a);
      let d = a + g * (b - a);
      let fc = at(c);
      let fd = at(d);
      while (b - a > 1e-4) {
        if (fc > fd) {
          b = d;
          d = c;
          fd = fc;
          c = b - g * (b - a);
          fc = at(c);
        } else {
          a = c;
          c = d;
          fc = fd;
          d = a + g * (b - a);
          fd = at(d);
        }
      }
      const v = fc > fd ? c : d;
      const fv = Math.max(fc, fd);
      if (fv > value) {
        x[i] = v;
        value = fv;
      }
    }
  }
  return { x, value };
}
