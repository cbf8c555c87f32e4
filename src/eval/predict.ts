/**
 * Posterior predictive from parameter samples: the network is applied to each sample (jitted, in
 * chunks of the test set), then
 * - classification: p(y | x) = (1/S) sum_s softmax(f_s(x)), returned averaged, shape `[n * k]`, with
 *   the mean over samples of each sample's entropy, (1/S) sum_s H[softmax(f_s(x))] (the aleatoric part
 *   of the predictive entropy; the rest is the mutual information between y and the weights);
 * - regression: per-sample Gaussian means and standard deviations `[S * n]` (standardised units),
 *   i.e. an equal-weight Gaussian mixture that the metrics evaluate in original units.
 */
import { compile, fromHost, nn, split, toHost, type JArray, type Key } from "../core/engine.js";
import type { Posterior } from "../core/method.js";
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

/**
 * The predictive of a posterior on every row of `data`: its own function-space predictive in chunks
 * when it has one (linearised Laplace; each chunk with its own key), else {@link predict} of its draws
 * (a set's stored draws, or `samples` fresh ones from a distribution). Borrows the posterior; consumes
 * the key.
 */
export async function predictPosterior(model: Model, posterior: Posterior<Params>, data: ArrayData, k: Key, samples?: number, chunk = 500): Promise<Predictive> {
  if (!posterior.predict) {
    const draws = posterior.draws(k, posterior.size === undefined ? samples : undefined);
    try {
      return await predict(model, draws, data);
    } finally {
      free(draws);
    }
  }
  const n = data.n;
  const d = data.xShape.reduce((a, b) => a * b, 1);
  const chunks = Math.max(1, Math.ceil(n / chunk));
  const keys = split(k, chunks);
  let probs: Float32Array | undefined;
  let meanEntropy: Float32Array | undefined;
  let means: Float32Array | undefined;
  let stds: Float32Array | undefined;
  let s = 0;
  for (let c = 0; c < chunks; c++) {
    const start = c * chunk;
    const m = Math.min(chunk, n - start);
    const x = fromHost(data.x.subarray(start * d, (start + m) * d), [m, ...data.xShape]);
    const out = posterior.predict(keys[c], x);
    if (out.kind === "categorical") {
      const kk = out.probs.shape[1];
      probs ??= new Float32Array(n * kk);
      meanEntropy ??= new Float32Array(n);
      probs.set(await toHost(out.probs), start * kk);
      meanEntropy.set(await toHost(out.meanEntropy), start);
    } else {
      s = out.means.shape[0];
      means ??= new Float32Array(s * n);
      stds ??= new Float32Array(s * n);
      const mu = await toHost(out.means);
      const sd = await toHost(out.stds);
      for (let j = 0; j < s; j++) {
        means.set(mu.subarray(j * m, (j + 1) * m), j * n + start);
        stds.set(sd.subarray(j * m, (j + 1) * m), j * n + start);
      }
    }
  }
  if (probs) return { kind: "categorical", numClasses: model.network.outputDim, probs, meanEntropy: meanEntropy! };
  return { kind: "gaussian", samples: s, means: means!, stds: stds! };
}
