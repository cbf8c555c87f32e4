/**
 * What the iterative GP solvers share: the linear system on the engine, pathwise conditioning, and
 * predictions from its solutions.
 *
 * Pathwise conditioning (Wilson et al. 2020, "Efficiently sampling functions from Gaussian process
 * posteriors"): with f ~ GP(0, k) a prior function and eps ~ N(0, sigma^2 I),
 *
 *   f_post(.) = f(.) + k(., X) (K + sigma^2 I)^-1 (y - f(X) - eps)
 *
 * is a draw from the posterior. So the mean and S samples are S + 1 solves with one matrix,
 * (K + sigma^2 I) A = [y, y - f_1(X) - eps_1, ..., y - f_S(X) - eps_S], and every solver here works on
 * all columns at once. Prior functions are random-feature draws f_s(x) = phi(x)^T w_s, w_s ~ N(0, I_L)
 * (kernels.ts), which can be evaluated anywhere, so a fitted posterior predicts at new inputs from the
 * representer weights A and the feature weights alone.
 *
 * Kernel products k(Z_rows, Z) A are evaluated a block of rows at a time (never the n x n matrix), so
 * memory is O(n (d + S)) plus one block. Right-hand sides and solutions are stored with one row per
 * column of the system, [C, n]: jax-js 0.1.25's matmul is 10x slower on [B, n] x [n, 33] than on
 * [B, n] x [33, n]^T (measured: 0.5 against 6.8 GFLOP/s), so every product takes that layout.
 *
 * The same matmul is 10-30x slower again when the contracted length is not a multiple of 4 (measured
 * [33, 927] x [927, 512]: 1.1 GFLOP/s; 928: 13 GFLOP/s), so the system is padded to a multiple of
 * {@link PAD} points. Padding points sit far from every input and from each other (kernel exactly 0
 * in float32), carry zero targets and are never sampled, so their weights stay 0 and they change
 * nothing; `mask` is 1 on real points and 0 on padding. For the same reason the inputs get zero
 * columns up to a multiple of 4 (protein, d = 9 -> 12: the B x n kernel block of a solver step fell from
 * 545 to 320 ms); zero columns change no distance.
 */
import { compile, fromHost, np, random, split, toHost, type Compiled, type JArray, type Key } from "../core/engine.js";
import { crossKernel, drawFeatures, featureMap, kernelBlock, scaleInputs, type GpHypers, type KernelName } from "./kernels.js";

/** Kernel entries per block of a blocked kernel product (32 MB of float32). */
export const BLOCK_ENTRIES = 8_000_000;

/** Training systems are padded to a multiple of this many points (see the module comment). */
export const PAD = 8;

/** The training system on the engine: n real points padded to nPad. */
export interface GpSystem {
  readonly hypers: GpHypers;
  /** Real training points (sampled by the stochastic solvers). */
  readonly n: number;
  /** Points including padding: the length of every system array. */
  readonly nPad: number;
  readonly d: number;
  /** Input columns including zero padding (a multiple of 4). */
  readonly dPad: number;
  /** Training inputs divided by the lengthscales [nPad, dPad]. */
  readonly z: JArray;
  /** Their squared row norms [nPad]. */
  readonly zSq: JArray;
  /** Training targets [nPad] (0 on padding). */
  readonly y: JArray;
  /** 1 on real points, 0 on padding [nPad]. */
  readonly mask: JArray;
  dispose(): void;
}

/** Uploads standardised training data (host x n x d, y n) scaled by the lengthscales, padded. */
export function makeSystem(h: GpHypers, x: ArrayLike<number>, y: ArrayLike<number>, n: number): GpSystem {
  const d = h.lengthscales.length;
  const nPad = Math.ceil(n / PAD) * PAD;
  const dPad = paddedWidth(d);
  const zh = scaleInputs(x, n, h.lengthscales);
  const zp = new Float32Array(nPad * dPad);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) zp[i * dPad + j] = zh[i * d + j];
  // Padding point j at (max|z| + 1e3) (j + 1) on the first axis: at least 1e3 from everything else.
  let far = 0;
  for (let i = 0; i < n * d; i++) far = Math.max(far, Math.abs(zh[i]));
  for (let j = 0; j < nPad - n; j++) zp[(n + j) * dPad] = (far + 1e3) * (j + 1);
  const sq = new Float32Array(nPad);
  for (let i = 0; i < nPad; i++) for (let j = 0; j < dPad; j++) sq[i] += zp[i * dPad + j] ** 2;
  const yp = new Float32Array(nPad);
  for (let i = 0; i < n; i++) yp[i] = y[i];
  const mk = new Float32Array(nPad);
  mk.fill(1, 0, n);
  const z = fromHost(zp, [nPad, dPad]);
  const zSq = fromHost(sq, [nPad]);
  const yy = fromHost(yp, [nPad]);
  const mask = fromHost(mk, [nPad]);
  return { hypers: h, n, nPad, d, dPad, z, zSq, y: yy, mask, dispose: () => [z, zSq, yy, mask].forEach((a) => a.dispose()) };
}

/** Input columns after zero padding: d rounded up to a multiple of 4. */
export function paddedWidth(d: number): number {
  return Math.ceil(d / 4) * 4;
}

/** Host inputs (m x d) divided by the lengthscales and zero-padded to {@link paddedWidth} columns, on the engine. */
export function scaledInputs(h: GpHypers, x: ArrayLike<number>, m: number): JArray {
  const d = h.lengthscales.length;
  const dPad = paddedWidth(d);
  const z = scaleInputs(x, m, h.lengthscales);
  const out = new Float32Array(m * dPad);
  for (let i = 0; i < m; i++) for (let j = 0; j < d; j++) out[i * dPad + j] = z[i * d + j];
  return fromHost(out, [m, dPad]);
}

/** Rows per block for products against `cols` columns of the kernel. */
export function blockRows(cols: number, rows: number): number {
  return Math.max(1, Math.min(rows, Math.floor(BLOCK_ENTRIES / Math.max(cols, 1))));
}

/** A blocked kernel product: k(zr, zc) a, jitted once per block shape. */
export class KernelProduct {
  private readonly block: Compiled<[JArray, JArray, JArray, JArray], JArray>;
  constructor(
    readonly kernel: KernelName,
    readonly signal: number,
  ) {
    this.block = compile((zb: JArray, zc: JArray, zcSq: JArray, a: JArray) => np.matmul(kernelBlock(kernel, signal, zb, zc, zcSq), a.transpose()));
  }
  /**
   * k(zr, zc) a^T for zr [m, d], zc [n, d], zcSq [n], a [C, n]; borrows all four. Returns [m, C]. Each
   * block is finished before the next is dispatched: jax-js queues work lazily, and 50 queued blocks of
   * 40 x 200,000 held 3 GB of wasm memory at once.
   */
  async apply(zr: JArray, zc: JArray, zcSq: JArray, a: JArray): Promise<JArray> {
    const m = zr.shape[0];
    const b = blockRows(zc.shape[0], m);
    if (b >= m) return this.block(zr, zc, zcSq, a);
    const parts: JArray[] = [];
    for (let s = 0; s < m; s += b) {
      const rows = zr.ref.slice([s, Math.min(m, s + b)]);
      const part = this.block(rows, zc, zcSq, a);
      await part.blockUntilReady();
      parts.push(part);
      rows.dispose();
    }
    return np.concatenate(parts, 0);
  }
  dispose(): void {
    this.block.dispose();
  }
}

/** Prior function draws: random features and their weights. */
export interface PriorDraws {
  /** Frequencies [d, L] and phases [L] of the features. */
  readonly freqs: JArray;
  readonly phases: JArray;
  /** Feature weights [S, L], one row per sample. */
  readonly weights: JArray;
  dispose(): void;
}

/** S prior functions with L random features each (consumes the key). */
export function drawPrior(k: Key, kernel: KernelName, d: number, features: number, samples: number): PriorDraws {
  const [kf, kw] = split(k, 2);
  const { freqs, phases } = drawFeatures(kf, kernel, d, features);
  const weights = random.normal(kw, [samples, features]);
  return { freqs, phases, weights, dispose: () => [freqs, phases, weights].forEach((a) => a.dispose()) };
}

/** One block of {@link priorAt}: weights [S, L] times phi(z)^T, jitted (eagerly, 50 blocks at n = 200,000 ran wasm out of its 4 GiB). */
const priorBlock = new Map<number, Compiled<[JArray, JArray, JArray, JArray], JArray>>();

/** The prior functions at inputs z [m, dPad] (scaled, zero-padded), [S, m]; borrows everything. Blocks finish one at a time. */
export async function priorAt(p: PriorDraws, z: JArray, signal: number): Promise<JArray> {
  const m = z.shape[0];
  const [d, count] = p.freqs.shape;
  const extra = z.shape[1] - d;
  // Zero rows of the frequencies meet the zero columns of the inputs.
  const freqs = extra > 0 ? np.concatenate([p.freqs.ref, np.zeros([extra, count])], 0) : p.freqs.ref;
  let block = priorBlock.get(signal);
  if (!block) {
    block = compile((zb: JArray, f: JArray, ph: JArray, w: JArray) => np.matmul(w, featureMap(zb, f, ph, signal).transpose()), { consume: [0] });
    priorBlock.set(signal, block);
  }
  const b = blockRows(count, m);
  const parts: JArray[] = [];
  for (let s = 0; s < m; s += b) {
    const part = block(z.ref.slice([s, Math.min(m, s + b)]), freqs, p.phases, p.weights);
    await part.blockUntilReady();
    parts.push(part);
  }
  freqs.dispose();
  return parts.length === 1 ? parts[0] : np.concatenate(parts, 1);
}

/**
 * The right-hand sides of pathwise conditioning, [S + 1, nPad]: y, then y - f_s(X) - eps_s with
 * eps_s ~ N(0, sigma^2 I) drawn from `k` (consumed), zero on padding. Also returns the prior values
 * f_s(X) and noise eps (masked the same way) for solvers that place them differently (SGD moves the
 * noise into its regulariser).
 */
export async function pathwiseTargets(k: Key, sys: GpSystem, prior: PriorDraws): Promise<{ targets: JArray; priorValues: JArray; noise: JArray }> {
  const s = prior.weights.shape[0];
  const mask = sys.mask.ref.reshape([1, sys.nPad]);
  const fx = (await priorAt(prior, sys.z, sys.hypers.signal)).mul(mask.ref);
  const eps = random.normal(k, [s, sys.nPad]).mul(Math.sqrt(sys.hypers.noise)).mul(mask);
  const samples = sys.y.ref.reshape([1, sys.nPad]).sub(fx.ref).sub(eps.ref);
  const targets = np.concatenate([sys.y.ref.reshape([1, sys.nPad]), samples], 0);
  return { targets, priorValues: fx, noise: eps };
}

/**
 * lambda_max(K + sigma^2 I) estimated from a subset of m <= 1000 training points (host float64): the
 * top eigenvalue of the subset's kernel matrix by 50 power iterations, times n / m (the Nystrom scaling
 * of the operator's spectrum), plus sigma^2. Sets the step sizes of the stochastic solvers, whose
 * stability depends on it. `rows` picks the subset (indices into x).
 */
export function largestEigenvalue(h: GpHypers, x: ArrayLike<number>, n: number, rows: Int32Array): number {
  const d = h.lengthscales.length;
  const m = rows.length;
  const sub = new Float64Array(m * d);
  for (let i = 0; i < m; i++) for (let j = 0; j < d; j++) sub[i * d + j] = x[rows[i] * d + j];
  const z = scaleInputs(sub, m, h.lengthscales);
  const k = crossKernel(h, z, m, z, m);
  let v = new Float64Array(m).fill(1 / Math.sqrt(m));
  let lambda = 0;
  for (let it = 0; it < 50; it++) {
    const w = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += k[i * m + j] * v[j];
      w[i] = s;
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += w[i] * w[i];
    norm = Math.sqrt(norm);
    lambda = norm;
    v = w.map((t) => t / norm);
  }
  return (lambda * n) / m + h.noise;
}

/** Predictive of a pathwise posterior at inputs. */
export interface PathwisePrediction {
  /** Posterior mean, m (from the first column of A). */
  readonly mean: Float64Array;
  /** Latent variance, m: the samples' mean squared deviation from the mean. */
  readonly variance: Float64Array;
  /** The S posterior function samples, m x S row-major. */
  readonly samples: Float32Array;
}

/**
 * Mean, variance and samples at scaled test inputs zs [m, d] (borrowed) from representer weights
 * a [S + 1, nPad] (borrowed): mean = k(zs, X) a_0, sample s = f_s(zs) + k(zs, X) a_s. The variance is
 * the samples' mean squared deviation from the mean (unbiased for the posterior variance when the solves
 * are exact, since the mean is the samples' expectation).
 */
export async function predictPathwise(product: KernelProduct, sys: GpSystem, prior: PriorDraws, a: JArray, zs: JArray): Promise<PathwisePrediction> {
  const m = zs.shape[0];
  const c = a.shape[0];
  const s = c - 1;
  const ka = await toHost(await product.apply(zs, sys.z, sys.zSq, a));
  const fs = s > 0 ? await toHost(await priorAt(prior, zs, sys.hypers.signal)) : new Float32Array(0);
  const mean = new Float64Array(m);
  const variance = new Float64Array(m);
  const samples = new Float32Array(m * s);
  for (let i = 0; i < m; i++) {
    mean[i] = ka[i * c];
    let v = 0;
    for (let j = 0; j < s; j++) {
      const f = fs[j * m + i] + ka[i * c + 1 + j];
      samples[i * s + j] = f;
      v += (f - mean[i]) ** 2;
    }
    variance[i] = s > 0 ? v / s : 0;
  }
  return { mean, variance, samples };
}

/** (K + sigma^2 I) a, [C, nPad], for a [C, nPad] (borrowed). */
export async function systemProduct(product: KernelProduct, sys: GpSystem, a: JArray): Promise<JArray> {
  return (await product.apply(sys.z, sys.z, sys.zSq, a)).transpose().add(a.ref.mul(sys.hypers.noise));
}

/** Relative residuals |b_c - (K + sigma^2 I) a_c| / |b_c| per column (host), borrowing both. */
export async function relativeResiduals(product: KernelProduct, sys: GpSystem, a: JArray, b: JArray): Promise<Float64Array> {
  const r = b.ref.sub(await systemProduct(product, sys, a));
  const num = await toHost(np.sum(np.square(r), 1));
  const den = await toHost(np.sum(np.square(b.ref), 1));
  return Float64Array.from(num, (v, i) => Math.sqrt(v / Math.max(den[i], 1e-30)));
}
