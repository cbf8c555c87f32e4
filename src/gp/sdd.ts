/**
 * Stochastic dual descent (Lin, Padhy, Antoran, Tripp, Terenin, Szepesvari, Hernandez-Lobato & Janz
 * 2024, "Stochastic Gradient Descent for Gaussian Processes Done Right", ICLR): the representer weights
 * A = (K + sigma^2 I)^-1 B minimise the dual objective
 *
 *   L(a) = a^T (K + sigma^2 I) a / 2 - a^T b,   grad L(a) = (K + sigma^2 I) a - b,
 *
 * whose curvature is that of K + sigma^2 I (the primal objective's is its square). Each step draws B
 * random coordinates I (uniform, with replacement) and uses the unbiased gradient estimate
 * g = (n / B) sum_{i in I} e_i ((K_i + sigma^2 e_i)^T a' - b_i), one B x n kernel block, at the Nesterov
 * look-ahead point a' = a + rho v:
 *
 *   v <- rho v - beta g,   a <- a + v,   abar <- r a + (1 - r) abar     (geometric iterate averaging)
 *
 * and the averaged iterate abar is the solution. All S + 1 right-hand sides (the mean and the pathwise
 * samples) share each step's coordinates and kernel block. The step size is beta = lr / lambda_max(K +
 * sigma^2 I) (pathwise.ts estimates lambda_max on a subset), so `lr` means the same on every data set.
 */
import { compile, np, random, vjpOf, type Compiled, type JArray, type Key } from "../core/engine.js";
import { kernelBlock, type KernelName } from "./kernels.js";
import type { GpSystem } from "./pathwise.js";

/** An iterative solver's state: iterate, velocity and averaged iterate, each [C, n] (one row per right-hand side). */
export interface SolverState {
  readonly alpha: JArray;
  readonly velocity: JArray;
  readonly average: JArray;
}

/** One stochastic GP solver in the shape of every method: explicit keys, immutable states. */
export interface GpStepMethod {
  init(): SolverState;
  /** Consumes the key and the state; `loss` is the mean squared residual of the mean's batch rows. */
  step(key: Key, state: SolverState): [SolverState, { loss: JArray }];
  dispose(): void;
}

/** Options of the stochastic solvers. */
export interface StochasticOptions {
  /** Coordinates (SDD) or rows (SGD) per step. */
  readonly batchSize: number;
  /** Step size times lambda_max (SDD) or lambda_max^2 (SGD). */
  readonly lr: number;
  /** Nesterov momentum rho. */
  readonly momentum: number;
  /** Geometric averaging weight r of the newest iterate. */
  readonly averaging: number;
}

/** Zero iterate, velocity and average of shape [c, n]. */
export function zeroState(n: number, c: number): SolverState {
  return { alpha: np.zeros([c, n]), velocity: np.zeros([c, n]), average: np.zeros([c, n]) };
}

/**
 * Values r [C, B] at columns idx [B] scattered into [C, n] (duplicates summed). jax-js 0.1.25 exports no
 * scatter, but the transpose of a gather is one, and it runs under jit: the VJP of a -> a[:, idx] at
 * zeros, applied to r (5 ms for [5, 200,000]; a one-hot product costs C B n and needed a B x n array, 400
 * MB at n = 200,000). Traceable; consumes `idx` and `r`.
 */
export function scatterColumns(idx: JArray, r: JArray, n: number): JArray {
  const c = r.shape[0];
  const [, back] = vjpOf((a: JArray) => a.slice([], idx), np.zeros([c, n]));
  const g = back(r);
  back.dispose();
  return g;
}

/** Kernel entries per column chunk of a step's B x n block (100 MB of float32 per intermediate). */
export const CHUNK_ENTRIES = 25_000_000;

/**
 * Column ranges [start, end) covering n with at most CHUNK_ENTRIES / rows columns each, multiples of 8
 * (the matmul's fast path). One range up to n = 48,828 at 512 rows; 200,000 points take 5. jax-js's
 * fusion keeps several intermediates of the B x n block alive, and whole they passed wasm's 4 GiB at
 * n = 200,000.
 */
export function columnChunks(n: number, rows: number): [number, number][] {
  const size = Math.max(8, Math.floor(CHUNK_ENTRIES / rows / 8) * 8);
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}

/**
 * a k(zb, z)^T for a [C, n], zb [B, d], z [n, d], zSq [n], in column chunks of z: [C, B]. Traceable;
 * borrows everything.
 */
export function productWithBlock(kernel: KernelName, signal: number, a: JArray, zb: JArray, z: JArray, zSq: JArray): JArray {
  let out: JArray | undefined;
  for (const [s, e] of columnChunks(z.shape[0], zb.shape[0])) {
    const kb = kernelBlock(kernel, signal, zb.ref, z.ref.slice([s, e]), zSq.ref.slice([s, e]));
    const part = np.matmul(a.ref.slice([], [s, e]), kb.transpose());
    out = out ? out.add(part) : part;
  }
  return out!;
}

/**
 * SDD on the system `sys` with right-hand sides `targets` [C, n] (borrowed for the method's lifetime),
 * `lambdaMax` an estimate of the largest eigenvalue of K + sigma^2 I.
 */
export function sdd(sys: GpSystem, targets: JArray, lambdaMax: number, o: StochasticOptions): GpStepMethod {
  const { n, nPad } = sys;
  const { kernel, signal, noise } = sys.hypers;
  const bsz = o.batchSize;
  const beta = o.lr / lambdaMax;
  const rho = o.momentum;
  const r = o.averaging;
  const c = targets.shape[0];
  const stepFn: Compiled<[Key, JArray, JArray, JArray, JArray, JArray, JArray], [JArray, JArray, JArray, JArray]> = compile(
    (k: Key, alpha: JArray, vel: JArray, avg: JArray, z: JArray, zSq: JArray, t: JArray): [JArray, JArray, JArray, JArray] => {
      const idx = random.randint(k, { minval: 0, maxval: n, shape: [bsz] });
      const look = alpha.ref.add(vel.ref.mul(rho));
      const zb = z.ref.slice(idx.ref);
      // resid [C, B]: ((K_I + sigma^2 e_I)^T a' - b_I) for every right-hand side.
      const resid = productWithBlock(kernel, signal, look, zb, z, zSq).add(look.slice([], idx.ref).mul(noise)).sub(t.slice([], idx.ref));
      [zb, z, zSq].forEach((a) => a.dispose());
      const loss = np.mean(np.square(resid.ref.slice(0)));
      const g = scatterColumns(idx, resid, nPad).mul(n / bsz);
      const vel2 = vel.mul(rho).sub(g.mul(beta));
      const alpha2 = alpha.add(vel2.ref);
      const avg2 = alpha2.ref.mul(r).add(avg.mul(1 - r));
      return [alpha2, vel2, avg2, loss];
    },
    { consume: [0, 1, 2, 3] },
  );
  return {
    init: () => zeroState(nPad, c),
    step(k, s) {
      const [alpha, velocity, average, loss] = stepFn(k, s.alpha, s.velocity, s.average, sys.z, sys.zSq, targets);
      return [{ alpha, velocity, average }, { loss }];
    },
    dispose: () => stepFn.dispose(),
  };
}
