#!/usr/bin/env node
/**
 * The T = 1 evidence lower bound of a saved mean-field posterior of an MLP, on the training part of the
 * data it was fitted to (docs/priors.md, "proximal-svi at T = 1"):
 *
 *   ELBO(q) = E_q[sum_i log p(y_i | x_i, theta)] - KL(q || p),
 *
 * the expectation by Monte Carlo over `--draws` weight draws (4 by default; its standard error is
 * printed), the KL in closed form against the posterior's Gaussian prior (fan-in or iid scaling).
 * Also prints, per hidden layer, the share of units whose bias mean is below 0 (ReLU units that a
 * pruned q has switched off). Run after `npm run build`:
 *
 *   node scripts/meanfield-elbo.mjs <posterior dir> [--draws K]
 *
 * Plain JavaScript arithmetic, no engine (the tensors are read with the project's safetensors reader):
 * a check independent of the code that fitted q.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { draws: { type: "string", default: "4" } } });
if (positionals.length !== 1) throw new Error("usage: node scripts/meanfield-elbo.mjs <posterior dir> [--draws K]");
const dir = positionals[0];
const K = Number(values.draws);
if (!Number.isInteger(K) || K < 2) throw new Error(`--draws expects an integer >= 2, got '${values.draws}'`);
const { loadData } = await import(new URL("../dist/data/index.js", import.meta.url).href);
const { readSafetensors } = await import(new URL("../dist/io/safetensors-file.js", import.meta.url).href);

const meta = JSON.parse(readFileSync(join(dir, "posterior.json"), "utf8"));
if (meta.variational?.family !== "meanfield") throw new Error(`${dir}: not a mean-field posterior (variational family ${meta.variational?.family})`);
if (!/^mlp(:|$)/.test(meta.model) || meta.likelihood.kind !== "categorical") throw new Error(`${dir}: only MLP classifiers are handled, got ${meta.model} with a ${meta.likelihood.kind} likelihood`);
if (meta.prior.kind !== "gaussian" || (meta.prior.perLayer ?? null) !== null) throw new Error(`${dir}: only a Gaussian prior with one scale is handled`);

const { tensors } = await readSafetensors(join(dir, "variational.safetensors"));
const tensor = (name) => {
  const t = tensors[name];
  if (!t || t.dtype !== "F32") throw new Error(`${dir}: no float32 tensor ${name}`);
  return { shape: t.shape, v: t.data };
};
const layers = [];
for (let l = 0; tensors[`mu.net.layers.${l}.w`]; l++) {
  layers.push({ mw: tensor(`mu.net.layers.${l}.w`), rw: tensor(`rho.net.layers.${l}.w`), mb: tensor(`mu.net.layers.${l}.b`), rb: tensor(`rho.net.layers.${l}.b`) });
}
const softplus = (r) => (r > 20 ? r : Math.log1p(Math.exp(r)));

// KL(q || p) per coordinate: log(s_p / s_q) + (s_q^2 + mu^2) / (2 s_p^2) - 1/2.
const s = meta.prior.scale;
let kl = 0;
const pruned = [];
for (const [i, l] of layers.entries()) {
  const fanIn = l.mw.shape[0];
  const sw = meta.prior.scaling === "fan-in" ? s / Math.sqrt(fanIn) : s;
  const klOf = (mu, rho, sp) => {
    let t = 0;
    for (let j = 0; j < mu.length; j++) {
      const sq = softplus(rho[j]);
      t += Math.log(sp / sq) + (sq * sq + mu[j] * mu[j]) / (2 * sp * sp) - 0.5;
    }
    return t;
  };
  kl += klOf(l.mw.v, l.rw.v, sw) + klOf(l.mb.v, l.rb.v, s);
  if (i < layers.length - 1) pruned.push(l.mb.v.filter((b) => b < 0).length / l.mb.v.length);
}

// E_q[log-likelihood] of the training part, K draws of all weights (a fixed-seed generator: reproducible).
const split = loadData(meta.data.source, { seed: meta.data.split.seed, testSize: meta.data.split.testSize });
const train = split.train;
const inDim = train.x.length / train.n;
let state = 12345;
const uniform = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return (state + 0.5) / 4294967296;
};
const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
const perDraw = [];
for (let k = 0; k < K; k++) {
  const net = layers.map((l) => ({
    w: l.mw.v.map((m, j) => m + softplus(l.rw.v[j]) * normal()),
    b: l.mb.v.map((m, j) => m + softplus(l.rb.v[j]) * normal()),
    din: l.mw.shape[0],
    dout: l.mw.shape[1],
  }));
  let total = 0;
  for (let i = 0; i < train.n; i++) {
    let a = train.x.subarray(i * inDim, (i + 1) * inDim);
    for (const [li, { w, b, din, dout }] of net.entries()) {
      const o = Float64Array.from(b);
      for (let p = 0; p < din; p++) {
        const ap = a[p];
        if (ap === 0) continue;
        for (let q = 0; q < dout; q++) o[q] += ap * w[p * dout + q];
      }
      if (li < net.length - 1) for (let q = 0; q < dout; q++) o[q] = Math.max(0, o[q]);
      a = o;
    }
    const m = Math.max(...a);
    let z = 0;
    for (const v of a) z += Math.exp(v - m);
    total += a[train.y[i]] - m - Math.log(z);
  }
  perDraw.push(total);
}
const ell = perDraw.reduce((x, y) => x + y, 0) / K;
const se = Math.sqrt(perDraw.reduce((x, y) => x + (y - ell) ** 2, 0) / (K - 1) / K);
const f = (x) => x.toFixed(1);
console.log(`${dir} (${meta.method}, T = ${meta.methodOptions.temperature}, ${train.n} training examples)`);
console.log(`  E_q log-lik  ${f(ell)} +- ${f(se)}`);
console.log(`  KL(q || p)   ${f(kl)}`);
console.log(`  ELBO (T = 1) ${f(ell - kl)}`);
console.log(`  hidden units with bias mean < 0: ${pruned.map((p) => `${(100 * p).toFixed(0)}%`).join(", ")}`);
