/**
 * One GP fit from standardised training data: hyperparameters by the exact marginal likelihood (on the
 * whole training set or a random subset of it), then the posterior by one of four solvers, each
 * described once in {@link GP_SOLVERS} (the CLI, its help and the README derive from it):
 *
 * - `exact`: Cholesky in float64 (exact.ts); posterior mean, variance and joint samples in closed form.
 * - `cg`: preconditioned conjugate gradients (cg.ts) for the mean and the pathwise samples.
 * - `sgd`: SGD on the primal objective with the noise in the regulariser (sgd.ts).
 * - `sdd`: stochastic dual descent (sdd.ts).
 *
 * The three iterative solvers return a {@link PathwiseGp}: representer weights of the mean and of S
 * pathwise samples plus the random-feature prior draws, which predict at any input.
 */
import { fromHost, np, random, scalar, split, toHost, type JArray, type Key } from "../core/engine.js";
import { CG_FLOAT64_CONDITION, solveCg } from "./cg.js";
import { conditionExact, exactBytes, fitHypers, predictExact, sampleExact, type ExactGp } from "./exact.js";
import { type GpHypers, type KernelName } from "./kernels.js";
import { drawPrior, KernelProduct, largestEigenvalue, makeSystem, scaledInputs, pathwiseTargets, predictPathwise, relativeResiduals, type GpSystem, type PriorDraws } from "./pathwise.js";
import { sdd, type GpStepMethod, type SolverState } from "./sdd.js";
import { sgd } from "./sgd.js";
import { calibrateNoise, NOISE_VALIDATION_POINTS, type NoiseCalibration } from "./noise.js";

/** The solvers by the names users type. */
export const SOLVER_NAMES = ["exact", "cg", "sgd", "sdd"] as const;
export type SolverName = (typeof SOLVER_NAMES)[number];

/** Every setting of a GP fit. */
export interface GpFitOptions {
  readonly kernel: KernelName;
  readonly solver: SolverName;
  /** Posterior function samples (pathwise solvers: right-hand sides besides the mean). */
  readonly samples: number;
  /** Random features per prior function sample. */
  readonly features: number;
  /** Training points the hyperparameters are fitted on (a random subset when n is larger). */
  readonly hyperSubset: number;
  /** Marginal-likelihood evaluations of the hyperparameter fit. */
  readonly hyperEvaluations: number;
  /**
   * When the hyperparameters are fitted on a subset: training rows outside it held out to choose the
   * noise variance by their predictive log-likelihood (gp/noise.ts); 0 keeps the subset's noise.
   */
  readonly noiseValidation: number;
  /** Stochastic solvers: steps, batch, step size (in units of 1 / lambda_max, SGD 1 / lambda_max^2), momentum. */
  readonly steps: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly momentum: number;
  /** Geometric averaging weight r = averaging / steps. */
  readonly averaging: number;
  /** CG: preconditioner rank, relative-residual tolerance, iteration cap. */
  readonly rank: number;
  readonly tolerance: number;
  readonly maxIterations: number;
  /** Fixed hyperparameters instead of fitting them. */
  readonly hypers?: GpHypers;
}

/** A row of the solver table: name, summary, paper and the defaults that differ between solvers. */
export interface GpSolverSpec {
  readonly name: SolverName;
  readonly summary: string;
  readonly paper: string;
  /** The options it reads besides kernel, samples and the hyperparameter fit. */
  readonly reads: readonly (keyof GpFitOptions)[];
  readonly defaults: Partial<GpFitOptions>;
}

/** Defaults every solver shares (chosen on training data, docs/gp.md). */
export const GP_DEFAULTS: GpFitOptions = {
  kernel: "matern32",
  solver: "exact",
  samples: 32,
  features: 2000,
  hyperSubset: 1000,
  hyperEvaluations: 100,
  noiseValidation: NOISE_VALIDATION_POINTS,
  steps: 3000,
  batchSize: 512,
  lr: 1,
  momentum: 0.9,
  averaging: 100,
  rank: 100,
  tolerance: 0.01,
  maxIterations: 1000,
};

export const GP_SOLVERS: readonly GpSolverSpec[] = [
  {
    name: "exact",
    summary: "Cholesky in float64: closed-form mean, variance and joint samples; n^3 / 3 flops, 16 n^2 bytes",
    paper: "Rasmussen & Williams 2006, Gaussian Processes for Machine Learning, Algorithm 2.1",
    reads: [],
    defaults: {},
  },
  {
    name: "cg",
    summary: "preconditioned conjugate gradients (pivoted-Cholesky preconditioner) for the mean and pathwise samples",
    paper: "Gardner et al. 2018, GPyTorch: blackbox matrix-matrix GP inference; Wang et al. 2019, Exact GPs on a million data points",
    reads: ["rank", "tolerance", "maxIterations", "features"],
    defaults: {},
  },
  {
    name: "sgd",
    summary: "SGD on the primal sample objective, noise in the regulariser, Nesterov momentum and iterate averaging",
    paper: "Lin, Antoran, Padhy, Janz, Hernandez-Lobato & Terenin 2023, Sampling from GP posteriors using SGD (NeurIPS)",
    reads: ["steps", "batchSize", "lr", "momentum", "averaging", "features"],
    defaults: { lr: 0.5 },
  },
  {
    name: "sdd",
    summary: "stochastic dual descent: random coordinates of the dual objective, Nesterov momentum, geometric averaging",
    paper: "Lin, Padhy, Antoran, Tripp, Terenin, Szepesvari, Hernandez-Lobato & Janz 2024, SGD for GPs done right (ICLR)",
    reads: ["steps", "batchSize", "lr", "momentum", "averaging", "features"],
    defaults: {},
  },
];

/** The solver's spec, or an error naming the choices. */
export function solverSpec(name: string): GpSolverSpec {
  const s = GP_SOLVERS.find((x) => x.name === name);
  if (!s) throw new RangeError(`unknown GP solver '${name}'; expected one of ${SOLVER_NAMES.join(", ")}`);
  return s;
}

/**
 * Largest training set the `auto` solver hands to the exact one: the factorisation then takes under
 * about 30 s here (n^3 / 3 flops at 1.5 GFLOP/s) and 0.4 GB; above it, `auto` means sdd.
 */
export const AUTO_EXACT_MAX = 5000;

/** `auto`: exact up to {@link AUTO_EXACT_MAX} training points (and within memory), sdd above. */
export function resolveSolver(solver: string, n: number, memoryBytes = Infinity): SolverName {
  if (solver !== "auto") return solverSpec(solver).name;
  return n <= AUTO_EXACT_MAX && exactBytes(n) <= memoryBytes ? "exact" : "sdd";
}

/** The full options of a solver: shared defaults, the solver's own, then `given`. */
export function gpOptions(solver: string, given: Partial<GpFitOptions> = {}): GpFitOptions {
  const spec = solverSpec(solver);
  const clean = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  return { ...GP_DEFAULTS, ...spec.defaults, ...clean, solver: spec.name };
}

/** A fitted GP posterior (standardised units). */
export interface GpPosterior {
  readonly kind: "gp-exact" | "gp-pathwise";
  readonly hypers: GpHypers;
  /** Latent mean and variance at m inputs (host, m x d); with `samples`, also S function samples m x S. */
  predict(xs: ArrayLike<number>, m: number, samples?: { key: Key; count: number }): Promise<{ mean: Float64Array; variance: Float64Array; samples?: Float32Array }>;
  /** The arrays that define it, for saving. */
  tensors(): Promise<Record<string, { data: Float32Array | Float64Array; shape: number[] }>>;
  dispose(): void;
}

/** What a fit reports besides its posterior. */
export interface GpFitReport {
  readonly hyperFit?: SubsetHyperFit;
  readonly solverSeconds: number;
  readonly hyperSeconds: number;
  /** Iterative solvers: iterations or steps run, and each column's final relative residual |b - A x| / |b| (mean column first). */
  readonly iterations?: number;
  readonly residuals?: readonly number[];
  readonly lambdaMax?: number;
  readonly loss?: number;
  /** CG: the precision of its kernel products. */
  readonly precision?: "float32" | "float64";
  /** What the user should know about the run (a condition number float32 cannot handle). */
  readonly warnings: readonly string[];
}

/** The first `count` rows of a key-derived permutation of n, split at `first` into two sorted sets (consumes the key). */
function permutedRows(k: Key, n: number, first: number, count: number): [Int32Array, Int32Array] {
  const perm = random.permutation(k, n);
  const rows = Int32Array.from(perm.dataSync() as ArrayLike<number>);
  return [Int32Array.from(rows.subarray(0, first)).sort(), Int32Array.from(rows.subarray(first, count)).sort()];
}

/** Training rows of the hyperparameter subset: the first m of a key-derived permutation (consumes the key). */
export function subsetRows(k: Key, n: number, m: number): Int32Array {
  if (m >= n) {
    k.dispose();
    return Int32Array.from({ length: n }, (_, i) => i);
  }
  return permutedRows(k, n, m, m)[0];
}

function gatherRows(x: ArrayLike<number>, d: number, rows: Int32Array): Float64Array {
  const out = new Float64Array(rows.length * d);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) out[i * d + j] = x[r * d + j];
  });
  return out;
}

/** What {@link fitSubsetHypers} did: the subset, its marginal likelihood, and the noise step if it ran. */
export interface SubsetHyperFit {
  readonly subset: number;
  readonly logMarginalPerPoint: number;
  readonly evaluations: number;
  /** The subset's own noise variance, and the held-out choice that replaced it. */
  readonly noise?: NoiseCalibration & { readonly subsetNoise: number };
}

/**
 * The hyperparameters every solver conditions on: the exact marginal likelihood on the first
 * `hyperSubset` rows of a key-derived permutation (all rows when n is smaller). When that is a subset,
 * the next `noiseValidation` rows of the permutation are held out and the noise variance is chosen by
 * their predictive log-likelihood given their nearest other training rows (gp/noise.ts): the subset
 * is too sparse to tell noise from a rough signal. Consumes the key.
 */
export function fitSubsetHypers(
  k: Key,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  d: number,
  o: Pick<GpFitOptions, "kernel" | "hyperSubset" | "hyperEvaluations" | "noiseValidation">,
): SubsetHyperFit & { hypers: GpHypers } {
  const m = Math.min(o.hyperSubset, n);
  const heldCount = m < n ? Math.min(o.noiseValidation, n - m) : 0;
  const [rows, held] = m >= n ? [subsetRows(k, n, m), new Int32Array(0)] : permutedRows(k, n, m, m + heldCount);
  const fit = fitHypers(o.kernel, gatherRows(x, d, rows), Float64Array.from(rows, (r) => y[r]), rows.length, d, { maxEvaluations: o.hyperEvaluations });
  const out = { hypers: fit.hypers, subset: rows.length, logMarginalPerPoint: fit.logMarginalPerPoint, evaluations: fit.evaluations };
  if (held.length === 0) return out;
  const noise = calibrateNoise(fit.hypers, x, y, n, held);
  return { ...out, hypers: { ...fit.hypers, noise: noise.noise }, noise: { ...noise, subsetNoise: fit.hypers.noise } };
}

/** Exact-solver posterior. */
export function exactPosterior(gp: ExactGp, x: ArrayLike<number>, y: ArrayLike<number>, d: number): GpPosterior {
  return {
    kind: "gp-exact",
    hypers: gp.hypers,
    async predict(xs, m, samples) {
      const p = predictExact(gp, xs, m);
      if (!samples) return p;
      const eps = Float64Array.from(await toHost(random.normal(samples.key, [m, samples.count])));
      return { ...p, samples: Float32Array.from(sampleExact(gp, xs, m, eps, samples.count)) };
    },
    async tensors() {
      return { x_train: { data: Float64Array.from(x), shape: [gp.n, d] }, y_train: { data: Float64Array.from(y), shape: [gp.n] }, alpha: { data: gp.alpha, shape: [gp.n] } };
    },
    dispose() {},
  };
}

/** A pathwise posterior: representer weights [S + 1, n] and the prior draws. */
export class PathwiseGp implements GpPosterior {
  readonly kind = "gp-pathwise";
  private readonly product: KernelProduct;
  constructor(
    readonly hypers: GpHypers,
    readonly system: GpSystem,
    readonly prior: PriorDraws,
    readonly weights: JArray,
    private readonly xTrain: ArrayLike<number>,
  ) {
    this.product = new KernelProduct(hypers.kernel, hypers.signal);
  }
  async predict(xs: ArrayLike<number>, m: number, samples?: { key: Key; count: number }) {
    samples?.key.dispose();
    const zs = scaledInputs(this.hypers, xs, m);
    try {
      const p = await predictPathwise(this.product, this.system, this.prior, this.weights, zs);
      return samples ? p : { mean: p.mean, variance: p.variance };
    } finally {
      zs.dispose();
    }
  }
  async tensors() {
    const n = this.system.n;
    const d = this.system.d;
    // Consumes its argument.
    const h = async (a: JArray) => {
      const shape = [...a.shape];
      return { data: await toHost(a), shape };
    };
    return {
      x_train: { data: Float32Array.from(this.xTrain), shape: [n, d] },
      // The real points' weights (padding's are 0 and is rebuilt on loading).
      weights: await h(this.weights.ref.slice([], [0, n])),
      feature_freqs: await h(this.prior.freqs.ref),
      feature_phases: await h(this.prior.phases.ref),
      feature_weights: await h(this.prior.weights.ref),
    };
  }
  dispose(): void {
    this.product.dispose();
    this.system.dispose();
    this.prior.dispose();
    this.weights.dispose();
  }
}

/** Largest n at which a fit reports its relative residuals (an n^2 kernel product; 41,157 points: about 30 s). */
export const RESIDUAL_CHECK_MAX = 50_000;

/** Progress of a fit: a phase name and a fraction done. */
export type GpProgress = (phase: string, done: number, total: number, note?: string) => void;

/**
 * A held-out check during a stochastic solve: every `every` steps, the posterior mean of the averaged
 * iterate at inputs `x` (m x d host, standardised) is handed to `report` with the step count.
 */
export interface GpMonitor {
  readonly every: number;
  readonly x: ArrayLike<number>;
  readonly m: number;
  report(step: number, mean: Float32Array): void;
}

/**
 * Fits a GP to standardised data x (n x d row-major), y (n). Consumes the key. Throws a RangeError naming
 * the memory needed when the exact solver would not fit in `memoryBytes`.
 */
export async function fitGp(k: Key, x: ArrayLike<number>, y: ArrayLike<number>, n: number, d: number, o: GpFitOptions, progress?: GpProgress, memoryBytes = Infinity, monitor?: GpMonitor): Promise<{ posterior: GpPosterior; report: GpFitReport }> {
  if (o.solver === "exact" && exactBytes(n) > memoryBytes) {
    k.dispose();
    throw new RangeError(
      `the exact solver needs ${(exactBytes(n) / 2 ** 30).toFixed(1)} GiB for n = ${n} training points (K and its Cholesky factor, 16 n^2 bytes) and about ${((n ** 3 / 3) / 1.5e9 / 60).toFixed(0)} minutes of factorisation here, ` +
        `more than the ${(memoryBytes / 2 ** 30).toFixed(1)} GiB allowed; use --solver sdd, sgd or cg`,
    );
  }
  const [kSub, kPrior, kNoise, kRun, kEig] = split(k, 5);
  const t0 = performance.now();
  let hypers = o.hypers;
  let hyperFit: GpFitReport["hyperFit"];
  if (hypers) {
    kSub.dispose();
  } else {
    progress?.("hyperparameters", 0, 1, `exact marginal likelihood on ${Math.min(n, o.hyperSubset)} points`);
    const { hypers: fitted, ...fit } = fitSubsetHypers(kSub, x, y, n, d, o);
    hypers = fitted;
    hyperFit = fit;
    progress?.("hyperparameters", 1, 1);
  }
  const hyperSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  if (o.solver === "exact") {
    [kPrior, kNoise, kRun, kEig].forEach((a) => a.dispose());
    progress?.("cholesky", 0, 1, `n = ${n}`);
    const gp = conditionExact(hypers, x, y, n);
    progress?.("cholesky", 1, 1);
    const warnings = gp.jitter > 0 ? [`K + sigma^2 I was not positive definite in float64; a jitter of ${gp.jitter.toPrecision(3)} (${(gp.jitter / hypers.signal).toExponential(0)} times the signal variance) was added to its diagonal`] : [];
    return { posterior: exactPosterior(gp, x, y, d), report: { hyperFit, hyperSeconds, solverSeconds: (performance.now() - t1) / 1000, warnings } };
  }
  const sys = makeSystem(hypers, x, y, n);
  const prior = drawPrior(kPrior, hypers.kernel, d, o.features, o.samples);
  const { targets, priorValues, noise } = await pathwiseTargets(kNoise, sys, prior);
  const product = new KernelProduct(hypers.kernel, hypers.signal);
  let weights: JArray;
  let iterations: number;
  let loss: number | undefined;
  let precision: "float32" | "float64" | undefined;
  const warnings: string[] = [];
  const lambdaMax = largestEigenvalue(hypers, x, n, subsetRows(kEig, n, 1000));
  const condition = lambdaMax / hypers.noise;
  try {
    if (o.solver === "cg") {
      kRun.dispose();
      precision = condition > CG_FLOAT64_CONDITION ? "float64" : "float32";
      const r = await solveCg(product, sys, x, targets, { rank: o.rank, tolerance: o.tolerance, maxIterations: o.maxIterations, precision }, (it, worst) =>
        progress?.("cg", it, o.maxIterations, `residual ${worst.toExponential(2)}`),
      );
      weights = r.solution;
      iterations = r.iterations;
    } else {
      if (condition > CG_FLOAT64_CONDITION) {
        warnings.push(
          `lambda_max(K + sigma^2 I) / sigma^2 is about ${condition.toExponential(1)}: ${o.solver} works in float32 and converges in about sqrt of that many steps, so its solution will be far from exact; ` +
            (exactBytes(n) < memoryBytes ? `--solver exact fits n = ${n} here` : "more --steps reduce the error; the held-out RMSE (--monitor-every) shows whether they still pay"),
        );
      }
      const opts = { batchSize: Math.min(o.batchSize, n), lr: o.lr, momentum: o.momentum, averaging: Math.min(1, o.averaging / o.steps) };
      let method: GpStepMethod;
      let extra: JArray[] = [];
      if (o.solver === "sgd") {
        // Noise-free targets and the noise as regulariser shifts: b = [y, y - f_s(X)], delta = [0, -eps_s / sigma^2].
        const np_ = sys.nPad;
        const b = np.concatenate([sys.y.ref.reshape([1, np_]), sys.y.ref.reshape([1, np_]).sub(priorValues.ref)], 0);
        const delta = np.concatenate([np.zeros([1, np_]), noise.ref.mul(-1 / hypers.noise)], 0);
        extra = [b, delta];
        method = sgd(sys, b, delta, lambdaMax, opts);
      } else {
        method = sdd(sys, targets, lambdaMax, opts);
      }
      let state: SolverState = method.init();
      let kk = kRun;
      const every = Math.max(1, Math.floor(o.steps / 50));
      for (let t = 1; t <= o.steps; t++) {
        const [ks, kn] = split(kk, 2);
        kk = kn;
        const [next, info] = method.step(ks, state);
        state = next;
        if (monitor && (t % monitor.every === 0 || t === o.steps)) {
          const zm = scaledInputs(hypers, monitor.x, monitor.m);
          const mean0 = state.average.ref.slice([0, 1]);
          monitor.report(t, await toHost(await product.apply(zm, sys.z, sys.zSq, mean0)));
          zm.dispose();
          mean0.dispose();
        }
        if (t % every === 0 || t === o.steps) {
          loss = await scalar(info.loss);
          if (!Number.isFinite(loss)) {
            [state.alpha, state.velocity, state.average, kk].forEach((a) => a.dispose());
            method.dispose();
            extra.forEach((a) => a.dispose());
            throw new Error(`gp ${o.solver}: the iterates diverged at step ${t} (batch residual ${loss}); lower --lr (now ${o.lr})`);
          }
          progress?.(o.solver, t, o.steps, `batch residual^2 ${loss.toExponential(2)}`);
        } else {
          // One step at a time: jax-js queues work lazily, and queued steps hold their B x n blocks.
          await info.loss.blockUntilReady();
          info.loss.dispose();
        }
      }
      kk.dispose();
      state.alpha.dispose();
      state.velocity.dispose();
      weights = state.average;
      iterations = o.steps;
      method.dispose();
      extra.forEach((a) => a.dispose());
    }
    // The check is one more product with the whole kernel matrix: skipped above RESIDUAL_CHECK_MAX points.
    const residuals = n <= RESIDUAL_CHECK_MAX ? Array.from(await relativeResiduals(product, sys, weights, targets)) : undefined;
    const report: GpFitReport = { hyperFit, hyperSeconds, solverSeconds: (performance.now() - t1) / 1000, iterations, residuals, lambdaMax, loss, precision, warnings };
    return { posterior: new PathwiseGp(hypers, sys, prior, weights, x), report };
  } finally {
    product.dispose();
    targets.dispose();
    priorValues.dispose();
    noise.dispose();
  }
}

/** Host arrays of a saved GP posterior by name (see io/gp-posterior.ts). */
export type GpHostTensors = Record<string, { data: Float32Array | Float64Array; shape: number[] }>;

/**
 * Rebuilds a saved posterior: an exact one refactors K_y from its training data (n^3 / 3 flops); a
 * pathwise one uploads its representer weights and prior features.
 */
export function restoreGp(kind: GpPosterior["kind"], hypers: GpHypers, t: GpHostTensors): GpPosterior {
  const [n, d] = t.x_train.shape;
  if (kind === "gp-exact") {
    const gp = conditionExact(hypers, t.x_train.data, t.y_train.data, n);
    return exactPosterior(gp, t.x_train.data, t.y_train.data, d);
  }
  const sys = makeSystem(hypers, t.x_train.data, new Float64Array(n), n);
  const up = (name: string) => fromHost(Float32Array.from(t[name].data), t[name].shape);
  const freqs = up("feature_freqs");
  const phases = up("feature_phases");
  const weights = up("feature_weights");
  const prior: PriorDraws = { freqs, phases, weights, dispose: () => [freqs, phases, weights].forEach((a) => a.dispose()) };
  const [c] = t.weights.shape;
  const w = new Float32Array(c * sys.nPad);
  for (let i = 0; i < c; i++) for (let j = 0; j < n; j++) w[i * sys.nPad + j] = t.weights.data[i * n + j];
  return new PathwiseGp(hypers, sys, prior, fromHost(w, [c, sys.nPad]), t.x_train.data);
}
