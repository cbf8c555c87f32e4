/**
 * Sampled linearised Laplace (Antorán, Padhy, Barbano, Nalisnick, Janz & Hernández-Lobato 2023,
 * "Sampling-based inference for large linear models, with application to linearised Laplace", ICLR).
 *
 * The linearised network f_lin(x; theta) = f(x; theta*) + J(x)(theta - theta*) with the prior
 * N(0, A^-1) has the Gaussian posterior N(theta*, P^-1), P = G + A, G = sum_i J_i^T H_i J_i (the GGN).
 * A zero-mean draw zeta ~ N(0, P^-1) is the minimiser of the sample objective
 *
 *   L(z) = 1/2 sum_i ||J_i z||^2_{H_i} + 1/2 ||z - z0||^2_A,   z0 = A^-1 (A^1/2 eps0 + sum_i J_i^T L_i eps_i),
 *
 * (H_i = L_i L_i^T, eps ~ N(0, I)): its minimiser P^-1 (A^1/2 eps0 + sum_i J_i^T L_i eps_i) has covariance
 * P^-1 (A + G) P^-1 = P^-1. All the noise sits in the regulariser, so the minibatch gradient
 * (N/n) sum_{i in batch} J_i^T H_i J_i z + A (z - z0) only carries the sampling error of the GGN term.
 * Only Jacobian-vector and vector-Jacobian products are used: J z as the forward-mode derivative of
 * the network in perturbations of each layer's pre-activations (rows dW + db, with the layer's input
 * rows at theta*), J^T w as the layer gradients rows^T delta of one backward pass; never a Jacobian
 * or a curvature matrix. K samples run together, folded into the batch axis.
 *
 * A run of S + POWER_STEPS + solveEpochs (emSteps + 1) S steps at the fixed mode (S steps per epoch;
 * the driver runs whole epochs, and the steps past that continue the last solve):
 * 1. one pass for the data part of z0, c = sum_i J_i^T L_i eps_i, and the diagonal of G (the squared
 *    per-example gradients of the same directions, E[(J^T L eps)(J^T L eps)^T] = G: the preconditioner);
 * 2. the next POWER_STEPS steps: power iteration on D^-1/2 P D^-1/2 (D = diag(G) + A) for its
 *    largest eigenvalue lambda, which sets the solves' step (STEP_FRACTION / lambda);
 * 3. solves: z starts at the prior draw A^-1/2 eps0 (the minimiser wherever the data carry no
 *    curvature), then heavy-ball SGD preconditioned by D, m <- beta m + D^-1 g, z <- z - 0.1 m / lambda,
 *    with the average of the iterates over the second half of each solve as the sample;
 * 4. sample-based EM (MacKay's update with sampled traces): in the last epoch of each solve, per layer l
 *    gamma_l = (1/K) sum_k <zeta_k,l, (G zeta_k)_l> estimates tr_l(P^-1 G), the layer's effective number
 *    of parameters, and the prior precision multiplier becomes rho_l = gamma_l / sum_{w in l} a0_w w*^2
 *    (A = rho_l a0 on layer l, w* the mode; the stationarity condition of the Laplace evidence in rho_l);
 *    with `--prior-structure scalar` one rho = sum_l gamma_l / sum_w a0_w w*^2 for every layer.
 *    a0 is the model prior's precision tau_w, or with `--feature-norm g-prior` the g-prior's, proportional
 *    to diag(G) (see gPriorBase). A learned Gaussian noise is updated with it,
 *    sigma^2 = (sum_i ||y_i - f(x_i; theta*)||^2 + (1/K) sum_k ||J zeta_k||^2) / (N d), the expected
 *    squared residual of the linearised model under the posterior (the stationarity condition of the
 *    evidence in sigma^2, since E ||J zeta||^2 = tr(J P^-1 J^T)); the products are computed at unit noise
 *    and scaled by 1 / sigma^2. Each EM step is followed by a solve under the new prior and noise (warm-started).
 *
 * The posterior predicts with the linearised network at the samples: logits f(x; theta*) + J(x) zeta_k,
 * through the probit or bridge link on their sample covariance, or averaged softmaxes (mc).
 * A tempered posterior (T) has the same samples times sqrt(T).
 */
import { MAP_DEFAULTS } from "../baselines/map.js";
import { compile, fromHost, nn, np, random, split, type JArray, type Key } from "../core/engine.js";
import type { NamedTensor, OutputPredictive, Posterior, PosteriorKind } from "../core/method.js";
import { OPTIONS } from "../core/options.js";
import { tensorsToTree, treeToTensors } from "../core/posterior.js";
import { use, type DefaultContext, type OptionUses } from "../core/spec.js";
import { free, keep, rebuildByPath } from "../core/tree.js";
import type { Batch, Model, ModelMethod, ModelMethodSpec, Params } from "../models/model.js";
import { layerList } from "../models/prior.js";
import { blockLayers, leafAt, selectBlocks, type Block } from "./curvature.js";
import { blockPrecisions, modeSigma, type PriorStructure } from "./laplace.js";
import { blockGrads, forwardRows, hessianSqrtTimes, hessianTimes, linearisedPass, sampleJvp } from "./linearised.js";
import { gaussianLinkProbs, predictInBlocks, withSigma, type Link } from "./posterior.js";

/** Options of `sampled-laplace`. */
export interface SampledLaplaceOptions {
  /** MAP epochs before the solves (when the fit does not start from given weights). */
  epochs: number;
  /** The MAP's Adam learning rate. */
  lr: number;
  subset: string;
  /** K, posterior samples solved for together. */
  samples: number;
  emSteps: number;
  solveEpochs: number;
  link: Link;
  /** T: the samples are scaled by sqrt(T). */
  temperature: number;
  /** The prior EM tunes: the model prior's per-layer precisions, or the g-prior (precisions proportional to the curvature's diagonal). */
  featureNorm: FeatureNorm;
  /** One EM multiplier for every layer (`scalar`) or one per layer; `diagonal` is refused. */
  priorStructure: PriorStructure;
}

/** `none`: the model prior's precisions tau_w times rho_l; `g-prior`: the g-prior's (Antorán et al. 2022) times rho_l. */
export type FeatureNorm = "none" | "g-prior";

/** The run's state: the fixed mode and, per chosen block, `[K, ...leaf shape]` arrays (diag: leaf-shaped). */
export type SampledState = {
  params: Params;
  /** The iterates: the power vectors during the power phase, the samples during the solves. */
  z: JArray[];
  /** Heavy-ball momentum. */
  m: JArray[];
  /** The averaged iterates (the samples the posterior keeps). */
  zbar: JArray[];
  /** sum_i J_i^T L_i eps_i over the first epoch. */
  c: JArray[];
  /** The prior noise eps0. */
  eps0: JArray[];
  /** Sum over the first epoch of the squared per-example gradients (diag G, up to N / seen). */
  dg: JArray[];
  /** Per chosen layer: the prior precision multiplier rho_l; EM's gamma sums and their count. */
  rho: JArray;
  /** `[max(1, emSteps), layers]`: rho after each EM step. */
  hist: JArray;
  /** Per chosen layer: EM steps whose gamma estimate fell outside (0, n_l) and kept rho. */
  emKept: JArray;
  gam: JArray;
  gcount: JArray;
  /** The Gaussian likelihood's noise variance sigma^2 (1 for classification), tuned by EM when the noise is learned. */
  sig2: JArray;
  /** `[max(1, emSteps)]`: sigma^2 after each EM step. */
  sigHist: JArray;
  /** Regression: sum over the first epoch of the squared residuals ||y_i - f(x_i; theta*)||^2; the EM sums of (1/K) sum_k ||J zeta_k||^2. */
  r2: JArray;
  ju: JArray;
  /** Sum and count of the power iteration's eigenvalue estimates. */
  lam: JArray;
  lcount: JArray;
  /** Steps taken. */
  t: JArray;
};

/** Heavy-ball momentum of the solves. */
export const MOMENTUM = 0.9;
/**
 * The solves' step as a fraction of 1 / lambda. Heavy ball on one fixed quadratic is stable up to
 * 2 (1 + beta) / lambda, but minibatches switch the quadratic every step: on embedded MNIST
 * (`mlp:400,400`, batch 128) 1 / lambda diverged within two epochs, 0.1 / lambda and 0.01 / lambda did
 * not, and 0.1 reached the lower objective.
 */
export const STEP_FRACTION = 0.1;
/** Power-iteration steps after the first epoch; the solves start after them. */
export const POWER_STEPS = 20;

/**
 * The g-prior's floor: a weight's base precision is at least this fraction of its layer's mean. A weight
 * whose Jacobian feature is zero on every training example (a border pixel of the digits, a dead
 * unit) would otherwise get a flat prior, and an input that moves it (a shifted digit) an unbounded
 * predictive variance.
 */
export const G_PRIOR_FLOOR = 0.01;

/**
 * The g-prior's base precisions per block (before rho_l): a0_w = c_l max(s_w, f sbar_l), with
 * s = diag(sum_i J_i^T H_i J_i) at unit noise (the first epoch's estimate `dg` times `seenScale`),
 * sbar_l its mean over layer l and f {@link G_PRIOR_FLOOR}: Zellner's prior covariance proportional to
 * (X^T X)^-1 with the feature Gram matrix cut to its diagonal (Antorán, Janz, Allingham, Daxberger,
 * Barbano, Nalisnick & Hernández-Lobato 2022, "Adapting the linearised Laplace model evidence for
 * modern deep learning"). Scaling a weight's feature by c scales s_w by c^2 and its prior sd by 1 / c,
 * so the linearised model's prior over functions, its posterior and its evidence stay the same. The
 * scale c_l = n_l / sum_{w in l} s_w / tau_w makes the prior's expected data-fit curvature
 * E_prior[z_l^T G_ll z_l] = sum_w s_w / a0_w (unfloored) the model prior's (tau), so EM starts where the
 * model prior does in function space. `counts` are the layers' weight counts. Borrows `dg`. Traceable.
 */
function gPriorBase(blocks: readonly Block[], layers: readonly number[], counts: readonly number[], dg: readonly JArray[], seenScale: number, tau0: readonly number[]): JArray[] {
  const inLayer = (l: number, f: (b: Block, i: number) => JArray) => blocks.reduce((acc: JArray, b, i) => (b.layer === l ? acc.add(f(b, i)) : acc), np.array(0));
  const means = layers.map((l, j) => inLayer(l, (_, i) => dg[i].ref.sum().mul(seenScale / counts[j])));
  const scales = layers.map((l, j) => np.reciprocal(np.maximum(inLayer(l, (_, i) => dg[i].ref.sum().mul(seenScale / tau0[i])), 1e-30)).mul(counts[j]));
  const out = blocks.map((b, i) => {
    const j = layers.indexOf(b.layer);
    return np.maximum(np.maximum(dg[i].ref.mul(seenScale), means[j].ref.mul(G_PRIOR_FLOOR)), 1e-30).mul(scales[j].ref);
  });
  [...means, ...scales].forEach((x) => x.dispose());
  return out;
}

/**
 * Build sampled linearised Laplace for a model with N training examples and `stepsPerEpoch` minibatches per epoch.
 * @example
 * const m = create(model, 8000, 62, { epochs: 20, lr: 3e-3, subset: "all", samples: 8, emSteps: 3, solveEpochs: 2, link: "probit", temperature: 0.003, featureNorm: "none" });
 * let state = m.init(key(0), mapParams);
 * for (const batch of epochs) [state] = m.step(key(i), state, batch);   // sampledEpochs(o, 62) = 10 epochs
 * const posterior = m.posterior(state);
 */
export function create(model: Model, dataSize: number, stepsPerEpoch: number, o: SampledLaplaceOptions): ModelMethod<SampledState> {
  const spec = model.likelihood.spec;
  if (spec.kind === "gaussian" && spec.noise === "heteroscedastic") throw new Error("--method sampled-laplace: supports categorical and homoscedastic Gaussian likelihoods; use --noise learned or fixed");
  if (!model.network.applyLinear) throw new Error(`--method sampled-laplace: network ${model.network.spec} does not expose its layers (applyLinear)`);
  if (o.priorStructure === "diagonal") {
    throw new Error("--method sampled-laplace: --prior-structure diagonal is not supported (EM's per-weight trace <zeta_w, (G zeta)_w> from K samples is too noisy to set a precision per weight); use scalar or layer, or --method laplace --hessian diag or full");
  }
  const K = o.samples;
  const S = stepsPerEpoch;
  const NP = POWER_STEPS;
  const roundLen = o.solveEpochs * S;
  let blocks: Block[] = [];
  let layers: number[] = [];
  let tau0: number[] = [];
  // The minibatch size the steps were traced with (the g-prior's scale of the first epoch's sums).
  let batchN = 1;
  let layerSizes: number[] = [];
  const gaussianLik = spec.kind === "gaussian";
  const tuneNoise = gaussianLik && spec.noise === "learned" && o.emSteps > 0;
  const gPrior = o.featureNorm === "g-prior";
  const scalarPrior = o.priorStructure === "scalar";
  const step = (key: Key, s: SampledState, batch: Batch): [SampledState, { loss: JArray }] => {
    const n = batch.x.shape[0];
    const dataScale = dataSize / n;
    const seenScale = dataSize / (S * n);
    batchN = n;
    const t = s.t;
    const noise = np.less(t.ref, S);
    const powerFirst = np.equal(t.ref, S);
    const power = np.logicalAnd(np.greaterEqual(t.ref, S), np.less(t.ref, S + NP));
    const first = np.equal(t.ref, S + NP);
    const solving = np.greaterEqual(t.ref, S + NP);
    // The likelihood Hessian's scale: the products below are computed at unit noise and scaled by 1 / sigma^2.
    const h = np.reciprocal(s.sig2.ref);
    // The prior precision before rho: tau (a number per block) or the g-prior's per-weight base (from the first epoch's diag G).
    const base: JArray[] = gPrior ? gPriorBase(blocks, layers, layerSizes, s.dg, seenScale, tau0) : blocks.map((_, i) => np.array(tau0[i]));
    const rhoOf = (i: number) => s.rho.ref.slice(layers.indexOf(blocks[i].layer));
    const a = blocks.map((_, i) => rhoOf(i).mul(base[i].ref));
    const d = blocks.map((_, i) => s.dg[i].ref.mul(h.ref.mul(seenScale)).add(a[i].ref));
    const sqrtD = d.map((x) => np.sqrt(x.ref));
    // The iterate this step works on: eps0 as the first power vector, the prior draw when the solves start, or z.
    const zCur = blocks.map((_, i) => np.where(powerFirst.ref, s.eps0[i].ref, np.where(first.ref, s.eps0[i].ref.div(np.sqrt(a[i].ref)), s.z[i].ref)));
    const tan = blocks.map((_, i) => np.where(power.ref, zCur[i].ref.div(sqrtD[i].ref), zCur[i].ref));
    // The cotangents at unit noise: eps (first epoch; softmax: L eps) or H J z, per sample. Regression also
    // keeps the outputs at the mode for the residuals.
    const eps = random.normal(key, [K, n, model.network.outputDim]);
    let out0: JArray | undefined;
    const g = linearisedPass(model, s.params.net, batch.x, blocks, tan, (out, u) => {
      if (gaussianLik) out0 = out.ref;
      return np.where(noise.ref, hessianSqrtTimes(model, out.ref, eps, 1), hessianTimes(model, out, u, 1));
    });
    // J^T w per block `[K, ...shape]`, and the squared per-example gradients averaged over the samples
    // (per row for convolutions: a positive approximation, used only to precondition).
    const r = blockGrads(blocks, layers, g.rows, g.deltas);
    const sq = blocks.map((b) => {
      const j = layers.indexOf(b.layer);
      const d2 = g.deltas[j].ref.mul(g.deltas[j].ref).mean(0); // [R, out]
      if (b.kind === "b") return d2.sum(0).reshape([...b.shape]);
      return np.matmul(g.rows[j].ref.mul(g.rows[j].ref).transpose(), d2).reshape([...b.shape]);
    });
    g.rows.forEach((x) => x.dispose());
    g.deltas.forEach((x) => x.dispose());
    const perSample = (xs: JArray[]) => xs.map((x) => x.reshape([K, -1]).sum(1)).reduce((p, q) => p.add(q)); // [K]
    // 1. The noise pass (at unit noise: c and dg scale by 1 / sigma and 1 / sigma^2 where used), and the residuals.
    const c = blocks.map((_, i) => np.where(noise.ref, s.c[i].ref.add(r[i].ref), s.c[i].ref));
    const dg = blocks.map((_, i) => np.where(noise.ref, s.dg[i].ref.add(sq[i]), s.dg[i].ref));
    let r2 = s.r2.ref;
    if (out0) {
      const res = batch.y.sub(out0.reshape([n]));
      r2 = np.where(noise.ref, r2.ref.add(res.ref.mul(res).sum()), r2);
    } else batch.y.dispose();
    // 2. Power iteration: y = D^-1/2 P D^-1/2 v (v = zCur), lambda_k = |y_k| / |v_k|.
    const gdata = r.map((x) => x.mul(h.ref.mul(dataScale)));
    const y = blocks.map((_, i) => gdata[i].ref.add(a[i].ref.mul(tan[i].ref)).div(sqrtD[i].ref));
    const yNorm = np.sqrt(perSample(y.map((v) => v.ref.mul(v.ref))));
    const vNorm = np.sqrt(perSample(zCur.map((v) => v.ref.mul(v.ref))));
    const lamK = yNorm.ref.div(vNorm).max();
    const counting = np.logicalAnd(power.ref, np.greaterEqual(t.ref, S + Math.floor(NP / 2)));
    const lam = s.lam.ref.add(np.where(counting.ref, lamK, 0));
    const lcount = s.lcount.ref.add(counting.astype(np.float32));
    const yUnit = y.map((v) => v.div(yNorm.ref.reshape([K, ...v.shape.slice(1).map(() => 1)])));
    yNorm.dispose();
    // 3. The solve: g = (N/n) J^T H J z + A (z - z0), heavy ball preconditioned by D, step 1 / lambda.
    const lr = np.maximum(lcount.ref, 1).div(np.maximum(lam.ref, 1e-30)).mul(STEP_FRACTION);
    const cScale = np.sqrt(h.ref.mul(seenScale));
    const z0 = blocks.map((_, i) => s.eps0[i].ref.div(np.sqrt(a[i].ref)).add(c[i].ref.mul(cScale.ref).div(a[i].ref)));
    cScale.dispose();
    const resid = blocks.map((_, i) => zCur[i].ref.sub(z0[i]));
    const grad = blocks.map((_, i) => gdata[i].ref.add(a[i].ref.mul(resid[i].ref)));
    const mNew = blocks.map((_, i) => np.where(first.ref, 0, s.m[i].ref).mul(MOMENTUM).add(grad[i].div(d[i].ref)));
    const zSolve = blocks.map((_, i) => zCur[i].ref.sub(mNew[i].ref.mul(lr.ref)));
    // Solve r runs while floor(since / roundLen) = r; the last one also takes the steps past its end.
    const since = t.ref.sub(S + NP);
    const round = np.minimum(np.floor(np.maximum(since.ref, 0).div(roundLen)), o.emSteps);
    const pos = since.ref.sub(round.ref.mul(roundLen));
    // The sample: the average of the iterates over the second half of each solve (Polyak averaging;
    // minibatch noise keeps the iterates jittering around the minimiser).
    const half = Math.floor(roundLen / 2);
    const averaging = np.logicalAnd(solving.ref, np.greaterEqual(pos.ref, half));
    const weight = np.reciprocal(np.maximum(pos.ref.sub(half - 1), 1));
    const zbar = blocks.map((_, i) => np.where(averaging.ref, s.zbar[i].ref.add(zSolve[i].ref.sub(s.zbar[i].ref).mul(weight.ref)), s.zbar[i].ref));
    averaging.dispose();
    weight.dispose();
    const z = blocks.map((_, i) => np.where(noise.ref, s.z[i].ref, np.where(power.ref, yUnit[i], zSolve[i])));
    const m = blocks.map((_, i) => np.where(solving.ref, mNew[i], s.m[i].ref));
    // 4. EM from the last epoch of each solve, at its end: rho_l = gamma_l / sum_{w in l} a0_w w*^2 with
    //    gamma_l = (1/K) sum_k <zeta_k, G zeta_k>_l, and (learned noise) sigma^2 = (sum_i ||y_i - f(x_i)||^2
    //    + (1/K) sum_k ||J zeta_k||^2) / (N d).
    const inLast = np.logicalAnd(solving.ref, np.greaterEqual(pos.ref, roundLen - S));
    const gl = np.stack(layers.map((l) => blocks.reduce((acc: JArray, b, i) => (b.layer === l ? acc.add(perSample([zCur[i].ref.mul(gdata[i].ref)]).mean()) : acc), np.array(0))));
    let gam = s.gam.ref.add(np.where(inLast.ref, gl, 0));
    let gcount = s.gcount.ref.add(inLast.ref.astype(np.float32));
    let ju = s.ju.ref.add(np.where(inLast.ref, g.u.ref.mul(g.u.ref).sum().mul(dataScale / K), 0));
    const roundEnd = np.logicalAnd(np.logicalAnd(solving.ref, np.equal(pos, roundLen - 1)), np.logicalAnd(np.less(round.ref, o.emSteps), np.greater(gcount.ref, 0)));
    // EM's denominator per layer: sum_{w in l} a0_w w*^2.
    const norms = np.maximum(np.stack(layers.map((l) => blocks.reduce((acc: JArray, b, i) => (b.layer === l ? acc.add(base[i].ref.mul(np.square(leafAt(s.params, b.path).ref)).sum()) : acc), np.array(0)))), 1e-30);
    // gamma_l = tr_l(P^-1 G) lies in (0, n_l) exactly (n_l the layer's weights). An estimate outside comes
    // from iterates that are not yet posterior samples (an ill-conditioned problem the solves have not
    // converged on: far-off directions of large curvature inflate <z, G z>), and keeps the layer's rho.
    // One multiplier for all layers: the sums over layers, the same in every entry.
    const everyLayer = (x: JArray) => (scalarPrior ? np.ones([layers.length]).mul(x.sum()) : x);
    const gammaHat = everyLayer(gam.ref.div(np.maximum(gcount.ref, 1)));
    const valid = np.logicalAnd(np.greater(gammaHat.ref, 0), np.less(gammaHat.ref, np.array(scalarPrior ? layers.map(() => layerSizes.reduce((a, b) => a + b, 0)) : layerSizes)));
    const rhoNew = np.where(valid.ref, np.maximum(gammaHat.div(everyLayer(norms)), 1e-8), s.rho.ref);
    const emKept = s.emKept.ref.add(np.logicalAnd(roundEnd.ref, np.logicalNot(valid)).astype(np.float32));
    const rho = np.where(roundEnd.ref, rhoNew, s.rho.ref);
    const sig2 = tuneNoise ? np.where(roundEnd.ref, np.maximum(r2.ref.mul(seenScale).add(ju.ref.div(np.maximum(gcount.ref, 1))).div(dataSize * model.network.outputDim), 1e-12), s.sig2.ref) : s.sig2.ref;
    // The EM history: row e holds rho (and sigma^2) after EM step e + 1.
    const rows = s.hist.shape[0];
    since.dispose();
    const hit = np.logicalAnd(roundEnd.ref.reshape([1, 1]), np.equal(np.arange(rows).astype(np.float32).reshape([rows, 1]), round.reshape([1, 1])));
    const hist = np.where(hit.ref, rho.ref.reshape([1, layers.length]), s.hist.ref);
    const sigHist = np.where(hit.reshape([rows]), sig2.ref.reshape([1]), s.sigHist.ref);
    gam = np.where(roundEnd.ref, 0, gam);
    ju = np.where(roundEnd.ref, 0, ju);
    gcount = np.where(roundEnd, 0, gcount);
    // The sample objective per training example (0 before the solves).
    const objective = perSample(blocks.map((_, i) => zCur[i].ref.mul(gdata[i].ref).mul(0.5).add(a[i].ref.mul(resid[i].ref.mul(resid[i].ref)).mul(0.5)))).mean();
    const loss = np.where(solving.ref, objective, 0).mul(1 / dataSize);
    [noise, powerFirst, power, first, solving, inLast, lr, h].forEach((x) => x.dispose());
    [base, a, d, sqrtD, zCur, tan, gdata, resid].forEach((xs) => xs.forEach((x) => x.dispose()));
    g.u.dispose();
    const next: SampledState = { params: s.params, z, m, zbar, c, eps0: s.eps0, dg, rho, hist, emKept, gam, gcount, sig2, sigHist, r2, ju, lam, lcount, t: t.add(1) };
    for (const xs of [s.z, s.m, s.zbar, s.c, s.dg]) xs.forEach((x) => x.dispose());
    [s.rho, s.hist, s.emKept, s.gam, s.gcount, s.sig2, s.sigHist, s.r2, s.ju, s.lam, s.lcount].forEach((x) => x.dispose());
    return [next, { loss }];
  };
  return {
    init(k, params) {
      blocks = selectBlocks(params, o.subset);
      layers = blockLayers(blocks);
      tau0 = blockPrecisions(model, params, blocks);
      layerSizes = layers.map((l) => blocks.reduce((acc, b) => acc + (b.layer === l ? b.size : 0), 0));
      const sigma = modeSigma(model, params) ?? 1;
      const keys = split(k, blocks.length);
      const zeros = () => blocks.map((b) => np.zeros([K, ...b.shape]));
      return {
        params,
        z: zeros(),
        m: zeros(),
        zbar: zeros(),
        c: zeros(),
        eps0: blocks.map((b, i) => random.normal(keys[i], [K, ...b.shape])),
        dg: blocks.map((b) => np.zeros([...b.shape])),
        rho: np.ones([layers.length]),
        hist: np.ones([Math.max(1, o.emSteps), layers.length]),
        emKept: np.zeros([layers.length]),
        gam: np.zeros([layers.length]),
        gcount: np.array(0),
        sig2: np.array(gaussianLik ? sigma * sigma : 1),
        sigHist: np.full([Math.max(1, o.emSteps)], gaussianLik ? sigma * sigma : 1),
        r2: np.array(0),
        ju: np.array(0),
        lam: np.array(0),
        lcount: np.array(0),
        t: np.array(0),
      };
    },
    step,
    posterior(state) {
      const rho = Array.from(state.rho.ref.dataSync() as Float32Array);
      const sig2 = Number(state.sig2.ref.dataSync()[0]);
      const kept = Array.from(state.emKept.ref.dataSync() as Float32Array);
      // The g-prior's mean base precision per layer (its prior scale is reported at that precision).
      const baseMeans = gPrior
        ? (() => {
            const base = gPriorBase(blocks, layers, layerSizes, state.dg, dataSize / (S * batchN), tau0);
            const m = layers.map((l, j) => base.reduce((acc, x, i) => acc + (blocks[i].layer === l ? Number(x.ref.sum().dataSync()[0]) : 0), 0) / layerSizes[j]);
            base.forEach((x) => x.dispose());
            return m;
          })()
        : [];
      const total = layerSizes.reduce((a, b) => a + b, 0);
      const unconverged = "so the solves had not converged on this ill-conditioned problem";
      const advice = "More --solve-epochs may help; for a model small enough, --method laplace --hessian full is exact.";
      const warnings = scalarPrior
        ? kept[0] > 0
          ? [`sampled Laplace EM: ${kept[0]} of ${o.emSteps} steps estimated gamma = tr(P^-1 G) outside (0, ${total}), ${unconverged}; the prior kept its previous precision. ${advice}`]
          : []
        : layers.flatMap((l, j) =>
            kept[j] > 0 ? [`sampled Laplace EM: on layer ${l}, ${kept[j]} of ${o.emSteps} steps estimated gamma = tr(P^-1 G) outside (0, ${layerSizes[j]}), ${unconverged}; the layer kept its previous prior precision. ${advice}`] : [],
          );
      const layerCount = layerList(state.params.net).length;
      const beta0 = model.prior.perLayer ?? Array.from({ length: layerCount }, () => model.prior.scale);
      const sqrtT = Math.sqrt(o.temperature);
      const samples = state.zbar.map((x) => x.ref.mul(sqrtT));
      return sampledPosterior(model, keep(state.params), samples, {
        blocks,
        link: o.link,
        samples: K,
        subset: o.subset,
        temperature: o.temperature,
        emSteps: o.emSteps,
        solveEpochs: o.solveEpochs,
        featureNorm: o.featureNorm,
        priorStructure: o.priorStructure,
        ...(warnings.length > 0 ? { warnings } : {}),
        ...(gaussianLik ? { sigma: Math.sqrt(sig2) } : {}),
        // The prior scale each layer ends with: s_l / sqrt(rho_l) (untouched layers keep theirs); with
        // the g-prior, the scale of a weight with the layer's mean precision.
        priorScales: beta0.map((s0, l) => {
          const j = layers.indexOf(l);
          if (j < 0) return s0;
          return gPrior ? 1 / Math.sqrt(baseMeans[j] * rho[j]) : s0 / Math.sqrt(rho[j]);
        }),
        emHistory: o.emSteps > 0 ? Array.from({ length: o.emSteps }, (_, e) => Array.from(state.hist.ref.slice(e).dataSync() as Float32Array)) : [],
        ...(tuneNoise ? { sigmaHistory: Array.from(state.sigHist.ref.dataSync() as Float32Array, (v) => Math.sqrt(v)) } : {}),
        lambda: (() => {
          const lc = Number(state.lcount.ref.dataSync()[0]);
          return lc > 0 ? Number(state.lam.ref.dataSync()[0]) / lc : undefined;
        })(),
      });
    },
  };
}

/** What a sampled Laplace posterior is besides its arrays (saved in posterior.json). */
export interface SampledPosteriorOptions {
  readonly blocks: readonly Block[];
  readonly link: Link;
  /** K, the stored samples. */
  readonly samples: number;
  readonly subset: string;
  readonly temperature: number;
  readonly emSteps: number;
  readonly solveEpochs: number;
  /** The Gaussian likelihood's noise scale (standardised units). */
  readonly sigma?: number;
  /** The prior scale per layer (`layerList` order) after EM. */
  readonly priorScales: readonly number[];
  /** The prior precision multiplier of each chosen layer after each EM step. */
  readonly emHistory?: readonly (readonly number[])[];
  /** The prior EM tuned (absent in posteriors saved before the option existed: none). */
  readonly featureNorm?: FeatureNorm;
  /** `--prior-structure`: one EM multiplier for every layer or one per layer (absent in posteriors saved before it existed). */
  readonly priorStructure?: string;
  /** EM steps that kept a layer's rho because its gamma estimate was impossible (the fit prints them). */
  readonly warnings?: readonly string[];
  /** A learned regression noise: sigma after each EM step (standardised units). */
  readonly sigmaHistory?: readonly number[];
  /** The power iteration's estimate of the preconditioned problem's largest eigenvalue (the solves stepped STEP_FRACTION / lambda). */
  readonly lambda?: number;
}

/**
 * The linearised predictive at `x` (consumed) from the mode and K zero-mean samples (borrowed):
 * logits f(x; theta*) + J(x) zeta_k. Classification: `[probs, meanEntropy]`; regression `[means, stds]`
 * (`[1, m]`). Traceable.
 */
export function sampledPredict(model: Model, mode: Params, blocks: readonly Block[], samples: readonly JArray[], link: Link, sigma: number, x: JArray): JArray[] {
  const layers = blockLayers(blocks);
  const { out, rows } = forwardRows(model, mode.net, x.ref, layers);
  const u = sampleJvp(model, mode.net, x, rows, blocks, samples); // [K, n, d]
  rows.forEach((r) => r.dispose());
  const [k, n, d] = u.shape;
  if (model.likelihood.spec.kind === "gaussian") {
    const v = u.ref.mul(u).mean(0).reshape([1, n]);
    return [out.reshape([1, n]), np.sqrt(v.add(sigma * sigma))];
  }
  const lp = nn.logSoftmax(u.ref.add(out.ref.reshape([1, n, d])), -1);
  const pr = np.exp(lp.ref);
  const meanEntropy = pr.ref.mul(lp).sum(-1).mul(-1).mean(0);
  if (link === "mc") {
    u.dispose();
    out.dispose();
    return [pr.mean(0), meanEntropy];
  }
  pr.dispose();
  const ut = u.transpose([1, 0, 2]); // [n, K, d]
  const cov = np.matmul(ut.ref.transpose([0, 2, 1]), ut.ref).mul(1 / k);
  const variance = ut.ref.mul(ut).mean(1);
  return [gaussianLinkProbs(out, cov, variance, link), meanEntropy];
}

/** Inputs per predictive call: the K samples fold into the batch, and convolutions' im2col rows are heavy. */
function sampledBlock(blocks: readonly Block[], k: number): number {
  const conv = blocks.some((b) => b.shape.length > 2);
  return Math.max(1, Math.floor((conv ? 256 : 4096) / k));
}

/**
 * A sampled Laplace posterior from its mode and samples `[K, ...shape]` per block (both consumed).
 * `draws(key, n)` gives theta* + zeta_k for the first n <= K samples (the `nn` predictive's draws);
 * `predict` is the linearised predictive.
 */
export function sampledPosterior(model: Model, mode: Params, samples: JArray[], o: SampledPosteriorOptions): Posterior<Params> {
  // A tuned noise replaces the mode's, so weight draws (the nn predictive) use it too.
  let held: { mode: Params; samples: JArray[] } | undefined = { mode: withSigma(mode, o.sigma), samples };
  free(mode);
  const live = () => {
    if (!held) throw new Error("posterior: used after dispose()");
    return held;
  };
  let pred: ReturnType<typeof compile<[Params, JArray[], JArray], JArray[]>> | undefined;
  return {
    kind: "laplace-sampled",
    options: o as unknown as Record<string, unknown>,
    size: undefined,
    maxDraws: o.samples,
    draws(k, n) {
      k.dispose();
      if (n === undefined || !Number.isInteger(n) || n < 1 || n > o.samples) throw new RangeError(`a sampled Laplace posterior holds ${o.samples} samples; asked for ${n}`);
      const h = live();
      const byPath = new Map(o.blocks.map((b, i) => [b.path, h.samples[i]]));
      return rebuildByPath(h.mode, (path, like) => {
        const base = like.ref.reshape([1, ...like.shape]).mul(np.ones([n, ...like.shape.map(() => 1)]));
        const z = byPath.get(path);
        return z ? base.add(z.ref.slice([0, n])) : base;
      });
    },
    async tensors(): Promise<NamedTensor[]> {
      const h = live();
      const out = await treeToTensors(h.mode, "mode");
      for (const [i, b] of o.blocks.entries()) out.push(...(await treeToTensors(h.samples[i], `samples.${b.path}`)));
      return out;
    },
    predict(k: Key, x: JArray): OutputPredictive {
      pred ??= compile((m: Params, z: JArray[], xx: JArray) => sampledPredict(model, m, o.blocks, z, o.link, o.sigma ?? 1, xx), { consume: [2] });
      // The predictive is deterministic given the samples; the block keys are unused.
      return predictInBlocks(model, k, x, sampledBlock(o.blocks, o.samples), (kk, xb) => {
        kk.dispose();
        return pred!(live().mode, live().samples, xb);
      });
    },
    dispose() {
      if (!held) return;
      free(held.mode);
      free(held.samples);
      held = undefined;
      pred?.dispose();
    },
  };
}

/** The saved kind `laplace-sampled`. */
export const sampledKind: PosteriorKind<Params, Model> = {
  kind: "laplace-sampled",
  load(template, options, tensors, model) {
    const o = options as unknown as SampledPosteriorOptions;
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const samples = o.blocks.map((b) => {
      const name = `samples.${b.path}`;
      const t = byName.get(name);
      const shape = [o.samples, ...b.shape];
      if (!t) throw new Error(`sampled Laplace posterior: no tensor '${name}'`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new Error(`sampled Laplace posterior: tensor '${name}' has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`);
      return fromHost(t.data, shape);
    });
    return sampledPosterior(model, tensorsToTree(template, tensors, "mode"), samples, o);
  },
};

/**
 * The default temperature for classification. On 6,000 / 2,000 of the training digits (two splits,
 * `mlp:400,400`) the T = 1 samples were far less confident than the data warrant (NLL 1.17 against the
 * MAP's 0.13, ECE 0.63); T = 0.003 was the one of 1, 0.1, 0.03, 0.01, 0.003, 0.001 that beat the MAP's
 * NLL on both splits, with ECE below the MAP's on one and level on the other (docs/laplace.md). It is
 * also the all-weights `laplace` default.
 */
export const SAMPLED_CLASSIFICATION_T = 0.003;

/** The fewest steps a default solve takes (on small data sets an epoch is a step or two). */
export const MIN_SOLVE_STEPS = 100;

/** Epochs of a sampled Laplace run: the noise pass, the power steps, and the solves. */
export function sampledEpochs(o: Pick<SampledLaplaceOptions, "solveEpochs" | "emSteps">, stepsPerEpoch: number): number {
  return 1 + Math.ceil(POWER_STEPS / stepsPerEpoch) + o.solveEpochs * (o.emSteps + 1);
}

/** `--method sampled-laplace`. */
export const spec: ModelMethodSpec<SampledLaplaceOptions> = {
  name: "sampled-laplace",
  family: "laplace",
  summary: "sampled linearised Laplace: posterior samples of the linearised network by sample-then-optimise (JVPs and VJPs only), prior precision by sample-based EM",
  paper: "Antoran, Padhy, Barbano, Nalisnick, Janz & Hernandez-Lobato 2023, Sampling-based inference for large linear models, with application to linearised Laplace",
  cost: "11x MAP: the 20-epoch MAP, then 10 epochs (a noise pass, 20 power steps, 4 solves of 2 epochs) of K = 8 samples at ~2.6 MAP steps per sample-step (embedded MNIST, mlp:400,400)",
  options: {
    epochs: use(OPTIONS.epochs, 20, "20 (the MAP's; ignored with --from)"),
    lr: use(OPTIONS.lr, MAP_DEFAULTS.learningRate, `${MAP_DEFAULTS.learningRate} (the MAP's)`),
    subset: use(OPTIONS.subset, "all"),
    samples: use(OPTIONS.samples, 8, "8 (16 was no better on training digits: docs/laplace.md)"),
    emSteps: use(OPTIONS.emSteps, 3),
    solveEpochs: use(OPTIONS.solveEpochs, (c: DefaultContext) => Math.max(2, Math.ceil(MIN_SOLVE_STEPS / c.stepsPerEpoch)), `2, and at least ${MIN_SOLVE_STEPS} steps (small data sets)`),
    link: use(OPTIONS.link, "probit" as Link),
    priorStructure: use(OPTIONS.priorStructure, "layer" as PriorStructure, "layer (scalar: one EM multiplier for every layer; diagonal is not supported)"),
    featureNorm: use(OPTIONS.featureNorm, "none" as FeatureNorm, "none (under the g-prior the solves did not converge on the digits' MLP: docs/laplace.md)"),
    temperature: use(OPTIONS.temperature, (c: DefaultContext) => (c.classification ? SAMPLED_CLASSIFICATION_T : 1), `classification ${SAMPLED_CLASSIFICATION_T} (a cold posterior, chosen on training digits: docs/laplace.md), regression 1`),
  } satisfies OptionUses<SampledLaplaceOptions>,
  kinds: [sampledKind],
  plan: (o, c) => ({ collect: "final", epochs: sampledEpochs(o, c.stepsPerEpoch), warmStart: { epochs: o.epochs, lr: o.lr }, draws: 1 }),
  build: (ctx, o) => create(ctx.model, ctx.dataSize, ctx.stepsPerEpoch, o),
};
