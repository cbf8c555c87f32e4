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
import { compile, np, random, type Compiled, type JArray, type Key } from "../core/engine.js";
import { kernelBlock } from "./kernels.js";
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
 * Values r [C, B] at columns idx [B] scattered into [C, n] (duplicates summed): r onehot(idx), with
 * onehot [B, n]. jax-js 0.1.25 has no jittable scatter; the one-hot product costs C B n. Traceable.
 */
export function scatterColumns(idx: JArray, r: JArray, n: number): JArray {
  const b = idx.shape[0];
  const onehot = np.equal(idx.reshape([b, 1]), np.arange(n).reshape([1, n])).astype(np.float32);
  return np.matmul(r, onehot);
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
      const kb = kernelBlock(kernel, signal, z.ref.slice(idx.ref), z, zSq);
      // resid [C, B]: ((K_I + sigma^2 e_I)^T a' - b_I) for every right-hand side.
      const resid = np.matmul(look.ref, kb.transpose()).add(look.slice([], idx.ref).mul(noise)).sub(t.slice([], idx.ref));
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
