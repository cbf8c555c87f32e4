/**
 * SGD for GP posterior samples (Lin, Antoran, Padhy, Janz, Hernandez-Lobato & Terenin 2023, "Sampling
 * from Gaussian Process Posteriors using Stochastic Gradient Descent", NeurIPS). The representer weights
 * of a pathwise sample, (K + sigma^2 I)^-1 (y - f(X) - eps), minimise the primal objective with the noise
 * moved into the regulariser:
 *
 *   L(v) = |b - K v|^2 / 2 + (sigma^2 / 2) (v - delta)^T K (v - delta),   b = y - f(X),  delta = -eps / sigma^2
 *
 * (grad L = K ((K + sigma^2 I) v - b - sigma^2 delta), zero at the pathwise solve; the mean is the column
 * with f = 0 and delta = 0). Each step estimates the data term from B random rows (uniform, with
 * replacement), (n / B) K_b^T (K_b v - b_b), one B x n kernel block, and the regulariser from L fresh
 * random features Phi of the kernel, sigma^2 Phi Phi^T (v - delta): an estimate whose noise does not
 * scale with the target noise, which is why the noise moves there. Nesterov momentum (look-ahead form)
 * and geometric iterate averaging as in SDD (sdd.ts). The objective's curvature is K (K + sigma^2 I), so
 * the step size is lr / lambda_max^2: the primal problem is the square of the dual's condition number,
 * the reason SDD replaced it.
 */
import { compile, np, random, split, type Compiled, type JArray, type Key } from "../core/engine.js";
import { drawFeatures, featureMap, kernelBlock } from "./kernels.js";
import type { GpSystem } from "./pathwise.js";
import { columnChunks, productWithBlock, zeroState, type GpStepMethod, type StochasticOptions } from "./sdd.js";

/** Random features of SGD's regulariser estimate per step. */
export const SGD_REGULARISER_FEATURES = 100;

/**
 * SGD on `sys` for targets b [C, n] (noise-free: y, y - f_s(X)) and regulariser shifts delta [C, n]
 * (0, -eps_s / sigma^2), both borrowed for the method's lifetime.
 */
export function sgd(sys: GpSystem, targets: JArray, delta: JArray, lambdaMax: number, o: StochasticOptions): GpStepMethod {
  const { n, nPad, dPad } = sys;
  const { kernel, signal, noise } = sys.hypers;
  const bsz = o.batchSize;
  const lr = o.lr / (lambdaMax * lambdaMax);
  const rho = o.momentum;
  const r = o.averaging;
  const c = targets.shape[0];
  const stepFn: Compiled<[Key, JArray, JArray, JArray, JArray, JArray, JArray, JArray, JArray], [JArray, JArray, JArray, JArray]> = compile(
    (k: Key, v: JArray, vel: JArray, avg: JArray, z: JArray, zSq: JArray, b: JArray, dl: JArray, mask: JArray): [JArray, JArray, JArray, JArray] => {
      const [kIdx, kFeat] = split(k, 2);
      const idx = random.randint(kIdx, { minval: 0, maxval: n, shape: [bsz] });
      const look = v.ref.add(vel.ref.mul(rho));
      const zb = z.ref.slice(idx.ref);
      // resid [C, B] = K_b v' - b_b per right-hand side; the data term (n / B) K_b^T resid as [C, n],
      // both by column chunks (sdd.ts); with more than one chunk the block is evaluated twice.
      const resid = productWithBlock(kernel, signal, look, zb, z, zSq).sub(b.slice([], idx));
      const loss = np.mean(np.square(resid.ref.slice(0)));
      const parts = columnChunks(nPad, bsz).map(([s, e]) => np.matmul(resid.ref, kernelBlock(kernel, signal, zb.ref, z.ref.slice([s, e]), zSq.ref.slice([s, e]))));
      const data = (parts.length === 1 ? parts[0] : np.concatenate(parts, 1)).mul(n / bsz);
      [resid, zb, zSq].forEach((a) => a.dispose());
      const { freqs, phases } = drawFeatures(kFeat, kernel, dPad, SGD_REGULARISER_FEATURES);
      // [nPad, L], zero on padding so that padding weights neither feel nor exert the regulariser.
      const phi = featureMap(z, freqs, phases, signal).mul(mask.reshape([nPad, 1]));
      const reg = np.matmul(np.matmul(look.sub(dl), phi.ref), phi.transpose()).mul(noise);
      const vel2 = vel.mul(rho).sub(data.add(reg).mul(lr));
      const v2 = v.add(vel2.ref);
      const avg2 = v2.ref.mul(r).add(avg.mul(1 - r));
      return [v2, vel2, avg2, loss];
    },
    { consume: [0, 1, 2, 3] },
  );
  return {
    init: () => zeroState(nPad, c),
    step(k, s) {
      const [alpha, velocity, average, loss] = stepFn(k, s.alpha, s.velocity, s.average, sys.z, sys.zSq, targets, delta, sys.mask);
      return [{ alpha, velocity, average }, { loss }];
    },
    dispose: () => stepFn.dispose(),
  };
}
