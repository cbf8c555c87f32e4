/**
 * Posterior predictive from parameter samples: the network is applied to each sample (`vmap` over a
 * leading sample axis, jitted, in chunks of the test set), then
 * - classification: p(y | x) = (1/S) sum_s softmax(f_s(x)), returned averaged, shape `[n * k]`;
 * - regression: per-sample Gaussian means and standard deviations `[S * n]` (standardised units),
 *   i.e. an equal-weight Gaussian mixture that the metrics evaluate in original units.
 */
import { compile, fromHost, nn, np, toHost, vmap, type JArray } from "../core/engine.js";
import type { ArrayData } from "../data/types.js";
import type { Model, Params } from "../models/model.js";

/** Predictive of a stacked set of samples (leading axis S on every leaf). */
export type Predictive =
  | { kind: "categorical"; numClasses: number; probs: Float32Array }
  | { kind: "gaussian"; samples: number; means: Float32Array; stds: Float32Array };

/** Number of samples in a stacked parameter tree. */
export function numSamples(samples: Params): number {
  const leaf = findLeaf(samples.net);
  return leaf.shape[0];
}

function findLeaf(t: unknown): JArray {
  if (t && typeof t === "object" && "shape" in t) return t as JArray;
  const v = Array.isArray(t) ? t[0] : Object.values(t as object)[0];
  return findLeaf(v);
}

/**
 * Predict on every row of `data` with every sample. Borrows `samples`.
 * @param chunk rows per jitted call (memory: S * chunk * width floats).
 */
export async function predict(model: Model, samples: Params, data: ArrayData, chunk = 500): Promise<Predictive> {
  const s = numSamples(samples);
  const d = data.xShape.reduce((a, b) => a * b, 1);
  const gaussian = model.likelihood.spec.kind === "gaussian";
  const sigma0 = model.likelihood.spec.kind === "gaussian" ? model.likelihood.spec.sigma : 1;
  const outs = vmap((p: Params, x: JArray) => model.network.apply(p.net, x) as never, [0, null]) as unknown as (p: Params, x: JArray) => JArray;
  const f = compile((p: Params, x: JArray): JArray[] => {
    const out = outs({ net: p.net }, x); // [S, m, d]
    if (!gaussian) return [nn.softmax(out, -1).mean(0)];
    const m = out.shape[1];
    const means = out.reshape([s, m]);
    const stds = p.lik
      ? np.exp((p.lik as { logSigma: JArray }).logSigma).reshape([s, 1]).mul(np.ones([s, m]))
      : np.full([s, m], sigma0);
    return [means, stds];
  });
  const n = data.n;
  const k = model.network.outputDim;
  const probs = gaussian ? undefined : new Float32Array(n * k);
  const means = gaussian ? new Float32Array(s * n) : undefined;
  const stds = gaussian ? new Float32Array(s * n) : undefined;
  try {
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const x = fromHost(data.x.subarray(start * d, (start + m) * d), [m, ...data.xShape]);
      const res = f(samples, x);
      x.dispose();
      if (!gaussian) {
        probs!.set(await toHost(res[0]), start * k);
      } else {
        const mu = await toHost(res[0]);
        const sd = await toHost(res[1]);
        for (let j = 0; j < s; j++) {
          means!.set(mu.subarray(j * m, (j + 1) * m), j * n + start);
          stds!.set(sd.subarray(j * m, (j + 1) * m), j * n + start);
        }
      }
    }
  } finally {
    f.dispose();
  }
  return gaussian ? { kind: "gaussian", samples: s, means: means!, stds: stds! } : { kind: "categorical", numClasses: k, probs: probs! };
}
