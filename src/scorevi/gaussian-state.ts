/**
 * What the closed-form score-based Gaussian VI methods (GSM, src/scorevi/gsm.ts; BaM,
 * src/scorevi/bam.ts) share: the full-covariance Gaussian state q = N(mean, cov), drawing from it
 * through its Cholesky factor, the batch of target scores, and the positive-definiteness check that
 * accepts or rejects a candidate update.
 *
 * Numerics: the state's mean, covariance and Cholesky factor are float64, and so is every d x d
 * operation of the updates. Both updates subtract a low-rank term from a larger matrix
 * (BaM: Sigma' = V - (V A) R (V A)^T; GSM: Sigma' = Sigma + delta delta^T - e e^T), and the result can
 * be many orders of magnitude smaller than the terms (BaM with a large lambda and a broad q_t shrinks
 * the covariance by ~1e-4 / lambda in one step); float32 (relative precision 6e-8) then returns
 * indefinite or garbage matrices, float64 (1e-16) does not. The target's scores are evaluated in
 * float32 (the models' dtype) and cast to float64.
 *
 * jax-js workaround: no float64 score option. `jit(grad(f))` returns wrong values for float64 inputs
 * (docs/engine-notes.md), so the scores are always taken in float32.
 *
 * jax-js facts this module relies on (0.1.25, Node 20, Wasm; timings in docs/engine-notes.md):
 * - `np.linalg.cholesky` and `np.linalg.eigh` work inside `jit` and on float64; cholesky of a
 *   non-positive-definite matrix returns NaN on the diagonal (no throw), which the check below uses.
 * - `lax.linalg.triangularSolve` throws inside `jit`; nothing here needs it.
 * - `eigh` is a cyclic Jacobi routine, too slow for a d x d eigendecomposition per step at d ~ 1000, so
 *   the BaM update only decomposes a (B+1) x (B+1) Gram matrix (src/scorevi/bam.ts). Every update here
 *   is O(B d^2) except the one Cholesky per step, whose factor is kept in the state and reused to draw
 *   the next batch.
 *
 * @example
 * const bam = createBam(logDensity, { batchSize: 10, initScale: 1 });   // src/scorevi/bam.ts
 * let state = bam.init(key(0), np.zeros([d]));
 * const step = compile(bam.step, { consume: [0, 1] });
 * for (let t = 0; t < 100; t++) {
 *   const [s, info] = step(key(t + 1), state, undefined); // consumes the key and the state
 *   state = s;
 *   await scalar(info.rejected); free(info);
 * }
 */
import { np, random, valueAndGradient, vmapped, type JArray, type Key } from "../core/engine.js";
import type { PosteriorKind } from "../core/method.js";
import { distribution, tensorsToTree, treeToTensors } from "../core/posterior.js";
import { free } from "../core/tree.js";
import type { Params } from "../models/model.js";
import { onTemplate, type FlatLogDensity } from "../vi/family.js";
import { unraveler } from "../core/ravel.js";

/**
 * A full-covariance Gaussian q = N(mean, cov) and its bookkeeping. `mean` `[d]`, `cov` `[d, d]`
 * and `chol` `[d, d]` (lower Cholesky factor of `cov`) are float64; the counters are float32
 * scalars (exact integers up to 2^24).
 */
export type GaussianState = {
  mean: JArray;
  cov: JArray;
  chol: JArray;
  /** Iterations taken (accepted or rejected). */
  step: JArray;
  /** Target score evaluations so far (B per iteration). */
  evaluations: JArray;
  /** Iterations whose candidate covariance was not positive definite (the state was kept). */
  rejections: JArray;
};

/** Per-iteration information (all scalars). */
export type ScoreViInfo = {
  /** -mean_b log p(z_b) / N at the iteration's draws (a free by-product of their scores). */
  loss: JArray;
  /** 1 when the candidate update failed the positive-definiteness check and the state was kept. */
  rejected: JArray;
  /** Rejected iterations so far. */
  rejections: JArray;
  /** Score evaluations so far, including this iteration's (float32). */
  evaluations: JArray;
  /** The regulariser lambda_t used (BaM; GSM reports 0). */
  lambda: JArray;
};

/** Default initial scale of q around the given parameters (GSM, BaM and their specs). */
export const DEFAULT_INIT_SCALE = 1e-2;

/** Options both closed-form methods take. */
export interface ScoreViOptions {
  /** B, samples (score evaluations) per iteration; a positive integer. */
  readonly batchSize: number;
  /** q starts at N(theta0, initScale^2 I) around the parameters given to `init` (default 1e-2). */
  readonly initScale?: number;
  /** N: only scales the reported `loss` to a per-datum value (default 1). */
  readonly dataSize?: number;
}

/** (A + A^T) / 2. Consumes `a`. */
export function symmetrize(a: JArray): JArray {
  return a.ref.add(a.transpose()).mul(0.5);
}

/** The initial state N(mean, scale^2 I) (consumes `mean`, a `[d]` vector). */
export function initState(mean: JArray, scale: number, who: string): GaussianState {
  if (mean.shape.length !== 1) {
    const got = mean.shape;
    mean.dispose();
    throw new RangeError(`${who}.init: the parameters must be a vector [d], got shape [${got}]`);
  }
  if (!(scale > 0) || !Number.isFinite(scale)) {
    mean.dispose();
    throw new RangeError(`${who}.init: initScale must be a finite number > 0, got ${scale}`);
  }
  const d = mean.shape[0];
  const cov = np.eye(d, undefined, { dtype: np.float64 }).mul(scale * scale);
  const chol = np.linalg.cholesky(cov.ref);
  return { mean: mean.astype(np.float64), cov, chol, step: np.array(0), evaluations: np.array(0), rejections: np.array(0) };
}

/** Check the options both methods share; returns B. */
export function checkBatchSize(opts: ScoreViOptions, who: string): number {
  const b = opts.batchSize;
  if (!Number.isInteger(b) || b < 1) throw new RangeError(`${who}: batchSize must be a positive integer, got ${b}`);
  return b;
}

/**
 * `n` draws z = mean + eps L^T, eps ~ N(0, I) `[n, d]`, in float64. Consumes all arguments.
 * (eps is drawn in float32, the engine's only normal dtype, and widened.)
 */
export function drawGaussian(k: Key, mean: JArray, chol: JArray, n: number): JArray {
  const d = mean.shape[0];
  const eps = random.normal(k, [n, d]).astype(np.float64);
  return np.matmul(eps, chol.transpose()).add(mean.reshape([1, d]));
}

/**
 * The batch score map z `[B, d]` (float64) -> [z', grad log p(z'_b), log p(z'_b)] (`[B, d]` float64,
 * `[B, d]` float64, `[B]` float32), with `vmap(valueAndGrad(logDensity))` over the rows in float32 and the
 * data batch shared. z' is z rounded to float32: the point the score was actually taken at. The updates
 * use z' so that every (z_b, g_b) pair is consistent (with float32 scores and the unrounded z, a nearly
 * singular batch covariance amplifies the 6e-8 mismatch; see docs/tuning.md). Consumes `z` and `batch`.
 */
export function batchScores<B>(logDensity: FlatLogDensity<B>): (z: JArray, batch: B) => [JArray, JArray, JArray] {
  return (z, batch) => {
    const zz = z.astype(np.float32);
    let out: [JArray, JArray];
    if (batch === undefined || batch === null) {
      // jax-js workaround: `grad` of a two-argument function fails on an `undefined` second argument
      // ("Invalid type for full: undefined"), so a data-free target is closed over its batch.
      out = vmapped(valueAndGradient((t: JArray) => logDensity(t, batch)))(zz.ref);
    } else {
      out = vmapped(valueAndGradient(logDensity), [0, null])(zz.ref, batch);
    }
    return [zz.astype(np.float64), out[1].astype(np.float64), out[0]];
  };
}

/**
 * Accept the candidate (mean, cov) when cov is positive definite, else keep `prev`'s Gaussian.
 *
 * The check: L = cholesky(sym(cov)) has a finite, strictly positive diagonal (jax-js returns NaN
 * there for an indefinite matrix) and the candidate mean is finite. The accepted state carries L,
 * so the next iteration draws with it at no extra cost. Traced selection (`np.where`), no host
 * branch. Consumes every argument; returns the new state and `rejected` (float32 0/1).
 */
export function acceptOrKeep(prev: GaussianState, mean: JArray, cov: JArray, added: number): [GaussianState, JArray] {
  const c = symmetrize(cov);
  const l = np.linalg.cholesky(c.ref);
  const diag = np.diagonal(l.ref);
  const ok = np.logicalAnd(
    np.logicalAnd(np.all(np.isfinite(diag.ref)), np.all(np.greater(diag, 0))),
    np.all(np.isfinite(mean.ref)),
  );
  const next: GaussianState = {
    mean: np.where(ok.ref, mean, prev.mean),
    cov: np.where(ok.ref, c, prev.cov),
    chol: np.where(ok.ref, l, prev.chol),
    step: prev.step.add(1),
    evaluations: prev.evaluations.add(added),
    rejections: prev.rejections,
  };
  const rejected = np.where(ok, 0, 1).astype(np.float32);
  next.rejections = next.rejections.add(rejected.ref);
  return [next, rejected];
}

/** Draws from q (float32 `[n, d]`); consumes `key`, borrows `state`. */
export function sampleState(k: Key, state: GaussianState, n: number): JArray {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`sample: n must be a positive integer, got ${n}`);
  return drawGaussian(k, state.mean.ref, state.chol.ref, n).astype(np.float32);
}

/** The Gaussian q of a state (borrowed): draws `[n, d]`, saved as float32 tensors `q.mean` and `q.cov`. */
export function gaussianPosterior(state: Pick<GaussianState, "mean" | "cov" | "chol">) {
  return distribution({
    kind: "gaussian",
    q: { mean: state.mean.ref, cov: state.cov.ref, chol: state.chol.ref },
    draw: (k, q, n) => drawGaussian(k, q.mean.ref, q.chol.ref, n).astype(np.float32),
    tensors: (q) => treeToTensors({ mean: q.mean.ref.astype(np.float32), cov: q.cov.ref.astype(np.float32) }, "q"),
  });
}

/**
 * Rebuilds saved Gaussian q's (`q.mean` `[d]`, `q.cov` `[d, d]`, float32) over a model's parameters;
 * draws through the float32 Cholesky factor of the saved covariance.
 */
export const gaussianKind: PosteriorKind<Params> = {
  kind: "gaussian",
  load(template, _options, tensors) {
    const unravel = unraveler(template);
    const d = unravel.size;
    const shapes = { mean: np.zeros([d]), cov: np.zeros([d, d]) };
    let saved: typeof shapes;
    try {
      saved = tensorsToTree(shapes, tensors, "q");
    } finally {
      free(shapes);
    }
    const q = { mean: saved.mean, chol: np.linalg.cholesky(saved.cov) };
    const flat = distribution({
      kind: "gaussian",
      q,
      draw: (k: Key, qq: typeof q, n: number) => np.matmul(random.normal(k, [n, d]), qq.chol.ref.transpose()).add(qq.mean.ref.reshape([1, d])),
      tensors: () => Promise.reject(new Error("a loaded gaussian posterior keeps only its Cholesky factor")),
    });
    return onTemplate(flat, unravel);
  },
};

