/**
 * Posterior predictive from parameter samples: the network is applied to each sample (jitted, in
 * chunks of the test set), then
 * - classification: p(y | x) = (1/S) sum_s softmax(f_s(x)), returned averaged, shape `[n * k]`, with
 *   the mean over samples of each sample's entropy, (1/S) sum_s H[softmax(f_s(x))] (the aleatoric part
 *   of the predictive entropy; the rest is the mutual information between y and the weights);
 * - regression: per-sample Gaussian means and standard deviations `[S * n]` (standardised units),
 *   i.e. an equal-weight Gaussian mixture that the metrics evaluate in original units.
 */
import { compile, fromHost, nn, toHost, type JArray } from "../core/engine.js";
import { free, leaves, sliceTree } from "../core/tree.js";
import type { ArrayData } from "../data/types.js";
import type { Model, Params } from "../models/model.js";

/** Predictive of a stacked set of samples (leading axis S on every leaf). */
export type Predictive =
  | { kind: "categorical"; numClasses: number; probs: Float32Array; meanEntropy: Float32Array }
  | { kind: "gaussian"; samples: number; means: Float32Array; stds: Float32Array };

/**
 * Predict on every row of `data` with every sample. Borrows `samples`.
 *
 * One jitted call per (sample, chunk): a `vmap` over samples would hit jax-js's slow batched-`dot`
 * layout (see core/replicate.ts), so samples are taken one at a time as leading-axis views.
 * @param chunk rows per jitted call.
 */
export async function predict(model: Model, samples: Params, data: ArrayData, chunk = 1000): Promise<Predictive> {
  const s = leaves(samples)[0].shape[0];
  const d = data.xShape.reduce((a, b) => a * b, 1);
  const gaussian = model.likelihood.spec.kind === "gaussian";
  const meanStd = model.likelihood.meanStd;
  if (gaussian && !meanStd) throw new Error("predict: a Gaussian likelihood must give its meanStd");
  const f = compile((p: Params, x: JArray): JArray[] => {
    const out = model.network.apply(p.net, x); // [m, d]
    if (!gaussian) {
      if (p.lik) free(p.lik);
      return [nn.softmax(out, -1)];
    }
    return meanStd!(out, p.lik);
  });
  const n = data.n;
  const k = model.network.outputDim;
  const probs = gaussian ? undefined : new Float32Array(n * k);
  const means = gaussian ? new Float32Array(s * n) : undefined;
  const stds = gaussian ? new Float32Array(s * n) : undefined;
  const sum = gaussian ? undefined : new Float64Array(n * k);
  const entropySum = gaussian ? undefined : new Float64Array(n);
  try {
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const x = fromHost(data.x.subarray(start * d, (start + m) * d), [m, ...data.xShape]);
      for (let j = 0; j < s; j++) {
        const pj = sliceTree(samples, j);
        const res = f(pj, x);
        free(pj);
        if (!gaussian) {
          const pr = await toHost(res[0]);
          const base = start * k;
          for (let i = 0; i < pr.length; i++) sum![base + i] += pr[i];
          for (let r = 0; r < m; r++) {
            let h = 0;
            for (let c = 0; c < k; c++) {
              const p = pr[r * k + c];
              if (p > 0) h -= p * Math.log(p);
            }
            entropySum![start + r] += h;
          }
        } else {
          means!.set(await toHost(res[0]), j * n + start);
          stds!.set(await toHost(res[1]), j * n + start);
        }
      }
      x.dispose();
    }
  } finally {
    f.dispose();
  }
  if (!gaussian) for (let i = 0; i < sum!.length; i++) probs![i] = sum![i] / s;
  if (gaussian) return { kind: "gaussian", samples: s, means: means!, stds: stds! };
  return { kind: "categorical", numClasses: k, probs: probs!, meanEntropy: Float32Array.from(entropySum!, (h) => h / s) };
}
