/**
 * Flow and mixture variational families (src/vi/flows.ts, src/vi/mixture.ts) against exact answers.
 *
 * Flows are checked with random non-identity parameters (every leaf of a fresh q plus 0.3 N(0, 1)
 * noise): log-determinants against autodiff Jacobians, inverse(forward(x)) = x, logProb at a flow's
 * own samples against sampleAndLogProb, normalisation on a 2-D grid and grid moments against sample
 * moments. Mixtures: logProb against a host computation, stratified moments against the exact
 * mixture mean/covariance, the reparameterised gradient against its exact value. Last, two short fits
 * reading the reverse KL (exact up to Monte Carlo, as both targets are normalised): RealNVP on a 2-D
 * banana, and the mixture through src/vi/advi.ts on a bimodal target. All in float32; tolerances
 * are stated and justified per test.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { jacfwd, grad } from "@jax-js/jax";
import { compile, fromHost, key, nn, np, random, scalar, split, toHost, tree, valueAndGrad, type JArray, type Key } from "../src/core/engine.js";
import { keep, leaves, mapTree, type Tree } from "../src/core/tree.js";
import { planar, realNvp, type Flow, type FlowParams } from "../src/vi/flows.js";
import { gaussianMixture, type MixtureParams } from "../src/vi/mixture.js";
import { create as advi } from "../src/vi/advi.js";
import { adam, applyUpdates } from "../src/optim/transform.js";

const verbose = !!process.env.BAYESDL_TEST_VERBOSE;
const say = (s: string) => {
  if (verbose) console.error(s);
};

/** A fresh q with every leaf perturbed by `noise` N(0, 1): a generic, non-identity flow. */
function randomQ<L extends Tree>(fam: Flow<L>, seed: number, noise = 0.3): FlowParams<L> {
  const [k0, k1] = split(key(seed), 2);
  const q = fam.init(k0, np.zeros([fam.dim]), 1);
  const ks = split(k1, leaves(q).length);
  let i = 0;
  return mapTree((a: JArray) => a.add(random.normal(ks[i++], a.shape).mul(noise)), q);
}

/** Deterministic host points in [-1.5, 1.5]^d. */
function points(n: number, d: number, seed: number): number[][] {
  let s = seed;
  const u = () => ((s = (s * 48271) % 2147483647) / 2147483647);
  return Array.from({ length: n }, () => Array.from({ length: d }, () => 3 * u() - 1.5));
}

const FLOWS: { name: string; make: (d: number) => Flow<any> }[] = [
  { name: "realnvp", make: (d) => realNvp(d, { layers: 5, hidden: 8 }) },
  { name: "planar", make: (d) => planar(d, { layers: 5 }) },
];

for (const f of FLOWS) {
  test(`${f.name}: log|det| of forward and inverse equal slogdet of the autodiff Jacobian`, async () => {
    const d = 5;
    const fam = f.make(d);
    const q = randomQ(fam, 3);
    // One compiled check: slogdet of the autodiff Jacobians of forward (at eps) and inverse (at
    // theta = forward(eps)), and the flow's own log-dets there.
    const check = compile((qq: FlowParams<any>, e: JArray) => {
      const fwd = (x: JArray) => {
        const [y, ld] = fam.forward(keep(qq), x.reshape([1, d]));
        ld.dispose();
        return y.reshape([d]);
      };
      const inv = (t: JArray) => {
        const [x, ld] = fam.inverse(keep(qq), t.reshape([1, d]));
        ld.dispose();
        return x.reshape([d]);
      };
      const [sign, la] = np.linalg.slogdet(jacfwd(fwd)(e.ref));
      const [y, ld] = fam.forward(keep(qq), e.reshape([1, d]));
      const [signI, laI] = np.linalg.slogdet(jacfwd(inv)(y.ref.reshape([d])));
      const [x, ldI] = fam.inverse(qq, y);
      x.dispose();
      return np.stack([sign, la, ld.reshape([]), signI, laI, ldI.reshape([])]);
    });
    let worst = 0;
    for (const p of points(3, d, 17)) {
      const [sign, want, got, signI, wantI, gotI] = Array.from(await toHost(check(q, fromHost(p, [d]))));
      assert.equal(sign, 1, "forward Jacobian determinant should be positive");
      assert.equal(signI, 1, "inverse Jacobian determinant should be positive");
      const err = Math.max(Math.abs(got - want) / Math.max(1, Math.abs(want)), Math.abs(gotI - wantI) / Math.max(1, Math.abs(wantI)));
      worst = Math.max(worst, err);
      say(`${f.name} logdet: flow ${got.toFixed(6)} autodiff ${want.toFixed(6)}; inverse flow ${gotI.toFixed(6)} autodiff ${wantI.toFixed(6)}`);
      assert.ok(Math.abs(want) > 0.05, `test flow is too close to volume-preserving (log|det| = ${want}); perturb more`);
      // float32: Jacobian entries and 5x5 LU are accurate to ~1e-6 relative; 1e-4 leaves margin.
      assert.ok(err < 1e-4, `${f.name}: log-det error ${err.toExponential(2)} (flow ${got}, autodiff ${want}; inverse ${gotI} vs ${wantI})`);
    }
    say(`${f.name}: worst relative log-det error ${worst.toExponential(2)}`);
    check.dispose();
    tree.dispose(q);
  });

  test(`${f.name}: inverse(forward(x)) = x and logProb(sample) = sampleAndLogProb, d = 5 and d = 1000`, async () => {
    for (const d of [5, 1000]) {
      const fam = f.make(d);
      const q = randomQ(fam, 5, d === 5 ? 0.3 : 0.03);
      const roundTrip = compile((qq: FlowParams<any>, e: JArray) => {
        const [y, ldF] = fam.forward(keep(qq), e);
        const [x, ldI] = fam.inverse(qq, y);
        return [x, ldF, ldI];
      });
      const own = compile((k: Key, qq: FlowParams<any>) => {
        const [theta, lp] = fam.sampleAndLogProb(k, keep(qq), 8);
        return [lp, fam.logProb(qq, theta)];
      }, { consume: [0] });
      const eps = random.normal(key(6), [8, d]);
      const [x, ldF, ldI] = roundTrip(q, eps);
      const e = await toHost(eps);
      const xr = await toHost(x);
      const lf = await toHost(ldF);
      const li = await toHost(ldI);
      let errX = 0;
      let errL = 0;
      for (let i = 0; i < e.length; i++) errX = Math.max(errX, Math.abs(e[i] - xr[i]));
      for (let i = 0; i < lf.length; i++) errL = Math.max(errL, Math.abs(lf[i] + li[i]));
      const [lp, lpAgain] = own(key(7), q);
      const lp2 = await toHost(lpAgain);
      const lp1 = await toHost(lp);
      roundTrip.dispose();
      own.dispose();
      let errP = 0;
      let scale = 0;
      for (let i = 0; i < lp1.length; i++) {
        errP = Math.max(errP, Math.abs(lp1[i] - lp2[i]));
        scale = Math.max(scale, Math.abs(lp1[i]));
      }
      say(`${f.name} d=${d}: max |x - inv(fwd(x))| ${errX.toExponential(2)}, max |ld_f + ld_i| ${errL.toExponential(2)}, max |logProb - sampleAndLogProb| ${errP.toExponential(2)} (|log q| up to ${scale.toFixed(1)})`);
      // float32 round-off: inputs O(1) through 5 layers -> 1e-4 absolute on x; log densities are sums of
      // d terms, so 2e-6 relative to |log q| (plus 1e-4) on the log-dets and log densities.
      assert.ok(errX < 1e-4, `${f.name} d=${d}: inverse(forward(x)) off by ${errX}`);
      assert.ok(errL < 1e-4 + 2e-6 * scale, `${f.name} d=${d}: forward and inverse log-dets do not cancel (${errL})`);
      assert.ok(errP < 1e-4 + 2e-6 * scale, `${f.name} d=${d}: logProb at own samples differs by ${errP}`);
      tree.dispose(q);
    }
  });

  test(`${f.name}: the density integrates to one on a 2-D grid and its grid mean matches the sample mean`, async () => {
    const fam = f.make(2);
    const q = randomQ(fam, 9, 0.3);
    // Midpoint rule on [-L, L]^2, G x G cells.
    const L = 10, G = 400, h = (2 * L) / G;
    const grid = new Float32Array(G * G * 2);
    for (let i = 0; i < G; i++) for (let j = 0; j < G; j++) {
      grid[2 * (i * G + j)] = -L + (i + 0.5) * h;
      grid[2 * (i * G + j) + 1] = -L + (j + 0.5) * h;
    }
    const logProb = compile((qq: FlowParams<any>, t: JArray) => fam.logProb(qq, t));
    const lp = await toHost(logProb(q, fromHost(grid, [G * G, 2])));
    logProb.dispose();
    let mass = 0;
    const m = [0, 0];
    for (let r = 0; r < G * G; r++) {
      const p = Math.exp(lp[r]) * h * h;
      mass += p;
      m[0] += p * grid[2 * r];
      m[1] += p * grid[2 * r + 1];
    }
    const gm = m.map((v) => v / mass);
    const n = 20000;
    const sample = compile((k: Key, qq: FlowParams<any>) => fam.sample(k, qq, n), { consume: [0] });
    const s = await toHost(sample(key(10), q));
    sample.dispose();
    const sm = [0, 0], sv = [0, 0];
    for (let r = 0; r < n; r++) for (let a = 0; a < 2; a++) sm[a] += s[2 * r + a] / n;
    for (let r = 0; r < n; r++) for (let a = 0; a < 2; a++) sv[a] += (s[2 * r + a] - sm[a]) ** 2 / (n - 1);
    say(`${f.name} 2-D: grid mass ${mass.toFixed(5)}; grid mean ${gm.map((v) => v.toFixed(4))}, sample mean ${sm.map((v) => v.toFixed(4))} (sd ${sv.map((v) => Math.sqrt(v).toFixed(3))})`);
    // Midpoint rule with h = 0.05 on a smooth density: O(h^2) ~ 1e-3 error; tails beyond 10 are negligible.
    assert.ok(Math.abs(mass - 1) < 5e-3, `${f.name}: density integrates to ${mass}`);
    for (let a = 0; a < 2; a++) {
      const se = Math.sqrt(sv[a] / n);
      // 4.5 Monte Carlo standard errors (20,000 independent draws) plus the grid's 1e-3.
      assert.ok(Math.abs(gm[a] - sm[a]) < 4.5 * se + 1e-3, `${f.name}: grid mean[${a}] ${gm[a]} vs sample mean ${sm[a]} (se ${se})`);
    }
    tree.dispose(q);
  });
}

test("planar: grad of logProb in theta (via the differentiable Newton step) matches central differences", async () => {
  const d = 3;
  const fam = planar(d, { layers: 4 });
  const q = randomQ(fam, 21, 0.5);
  const pts = points(4, d, 23);
  const logProb = compile((qq: FlowParams<any>, t: JArray) => fam.logProb(qq, t).sum());
  const score = compile((qq: FlowParams<any>, t: JArray) => {
    const g = grad((tt: JArray) => fam.logProb(keep(qq), tt).sum())(t);
    tree.dispose(qq);
    return g;
  });
  const lpAt = async (p: number[]) => scalar(logProb(q, fromHost(p, [1, d])));
  let worst = 0;
  for (const p of pts) {
    const g = await toHost(score(q, fromHost(p, [1, d])));
    for (let a = 0; a < d; a++) {
      const e = 1e-2;
      const pp = p.slice(), pm = p.slice();
      pp[a] += e;
      pm[a] -= e;
      const fd = ((await lpAt(pp)) - (await lpAt(pm))) / (2 * e);
      worst = Math.max(worst, Math.abs(fd - g[a]));
      // Central differences: O(e^2) truncation (~1e-4 here) + float32 round-off 1e-6 / e ~ 1e-4.
      assert.ok(Math.abs(fd - g[a]) < 2e-3, `planar score[${a}] = ${g[a]}, central difference ${fd}`);
    }
  }
  say(`planar: worst |score - central difference| ${worst.toExponential(2)}`);
  logProb.dispose();
  score.dispose();
  tree.dispose(q);
});

test("planar: the inverse stays accurate near the invertibility boundary (w·û close to -1)", async () => {
  // One layer with w·u = -6, so c = w·û = softplus(-6 + ln(e - 1)) - 1 = -0.9859: at w·x + b = 0 the
  // layer's slope along w is 1 + c = 0.014, where Newton alone would overshoot and bisection must take over.
  const d = 3;
  const fam = planar(d, { layers: 1 });
  const w = [0.8, -0.4, 0.2];
  const ww = w.reduce((t, v) => t + v * v, 0);
  const q: FlowParams<any> = {
    base: { loc: np.zeros([d]), logScale: np.zeros([d]) },
    layers: [{ u: fromHost(w.map((v) => (-6 * v) / ww), [d]), w: fromHost(w, [d]), b: fromHost([0.3], []) }],
  };
  // Points a w/|w|^2 + [0, 0.3, -0.3], whose w·x + b sweeps [-1.68, 1.32], through the flat region at 0.
  const n = 61;
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = -1.5 + (3 * i) / (n - 1) - 0.3;
    xs.push(...w.map((v, j) => (a * v) / ww + [0, 0.3, -0.3][j]));
  }
  const roundTrip = compile((qq: FlowParams<any>, e: JArray) => {
    const [y, ldF] = fam.forward(keep(qq), e);
    const [x, ldI] = fam.inverse(qq, y);
    return [x, ldF.add(ldI)];
  });
  const [x, ldSum] = roundTrip(q, fromHost(xs, [n, d]));
  const xr = await toHost(x);
  const ls = await toHost(ldSum);
  let errX = 0, errL = 0;
  xs.forEach((v, i) => (errX = Math.max(errX, Math.abs(v - xr[i]))));
  ls.forEach((v) => (errL = Math.max(errL, Math.abs(v))));
  say(`planar near-singular: max |x - inv(fwd(x))| ${errX.toExponential(2)}, max |ld_f + ld_i| ${errL.toExponential(2)}`);
  // The inverse's slope along w reaches 1/0.014 ~ 70, amplifying float32 round-off (1e-7) to ~1e-5.
  // Measured: 9e-6 and 1.2e-4 with the default 24 iterations (and 16); 8 iterations give 1.8e-2 and 0.13.
  assert.ok(errX < 1e-4, `planar near-singular inverse off by ${errX}`);
  assert.ok(errL < 1e-3, `planar near-singular log-dets do not cancel: ${errL}`);
  roundTrip.dispose();
  tree.dispose(q);
});

test("a flow with 0 layers is the diagonal Gaussian N(m, s^2)", async () => {
  for (const fam of [realNvp(3, { layers: 0 }), planar(3, { layers: 0 })] as Flow<any>[]) {
    const q = fam.init(key(1), fromHost([1, -2, 0.5], [3]), 0.5);
    const lp = await toHost(fam.logProb(q, fromHost([1, -2, 0.5, 2, -2, 0], [2, 3])));
    // Hand: sum_i log N(x_i; m_i, 0.25).
    const hand = (x: number[]) => x.reduce((s, v, i) => s - 0.5 * ((v - [1, -2, 0.5][i]) / 0.5) ** 2 - Math.log(0.5) - 0.5 * Math.log(2 * Math.PI), 0);
    assert.ok(Math.abs(lp[0] - hand([1, -2, 0.5])) < 1e-5);
    assert.ok(Math.abs(lp[1] - hand([2, -2, 0])) < 1e-5);
  }
});

test("flows reject bad arguments with messages naming them", () => {
  assert.throws(() => realNvp(1), /argument 'd'/);
  assert.throws(() => planar(4, { layers: -1 }), /option 'layers'/);
  const fam = realNvp(4, { layers: 1 });
  const q = fam.init(key(0), np.zeros([4]), 1);
  assert.throws(() => fam.logProb(keep(q), np.zeros([2, 3])), /shape \[n, 4\], got \[2, 3\]/);
  assert.throws(() => fam.init(key(1), np.zeros([3]), 1), /argument 'mean' must have shape \[4\]/);
  tree.dispose(q);
});

// Mixture: K = 3 in d = 2 with hand-set parameters.
const MU = [[-2, 0], [1, 1], [0.5, -1.5]];
const SD = [[0.5, 1], [1, 0.3], [0.7, 0.7]];
const mixQ = (): MixtureParams => ({
  loc: fromHost(MU.flat(), [3, 2]),
  logScale: fromHost(SD.flat().map(Math.log), [3, 2]),
});

test("mixture: logProb equals the hand-computed (1/K) sum_k N(theta; mu_k, diag sigma_k^2)", async () => {
  const fam = gaussianMixture(2, 3);
  const pts = [[0, 0], [-2, 0.3], [1.2, 0.9], [5, -4]];
  const lp = await toHost(fam.logProb(mixQ(), fromHost(pts.flat(), [4, 2])));
  pts.forEach((x, i) => {
    let p = 0;
    for (let k = 0; k < 3; k++) {
      let l = 0;
      for (let a = 0; a < 2; a++) l += -0.5 * ((x[a] - MU[k][a]) / SD[k][a]) ** 2 - Math.log(SD[k][a]) - 0.5 * Math.log(2 * Math.PI);
      p += Math.exp(l) / 3;
    }
    const hand = Math.log(p);
    say(`mixture logProb at ${x}: ${lp[i].toFixed(6)}, hand ${hand.toFixed(6)}`);
    // float32 logsumexp: 1e-5 relative.
    assert.ok(Math.abs(lp[i] - hand) < 1e-5 * Math.max(1, Math.abs(hand)), `mixture logProb at ${x}: ${lp[i]} vs ${hand}`);
  });
});

test("mixture: stratified samples have the exact mixture mean and covariance; logProb at own samples agrees", async () => {
  const fam = gaussianMixture(2, 3);
  const n = 3 * 20000;
  const [theta, lp] = fam.sampleAndLogProb(key(31), mixQ(), n);
  const s = await toHost(theta.ref);
  const lp2 = await toHost(fam.logProb(mixQ(), theta));
  const lp1 = await toHost(lp);
  let errP = 0;
  for (let i = 0; i < n; i++) errP = Math.max(errP, Math.abs(lp1[i] - lp2[i]));
  assert.ok(errP < 1e-5, `logProb at own samples differs by ${errP}`);
  // Exact: mean = avg mu_k; cov = avg(diag sigma_k^2 + mu_k mu_k^T) - mean mean^T.
  const mean = [0, 1].map((a) => MU.reduce((t, m) => t + m[a], 0) / 3);
  const cov = [0, 1].map((a) => [0, 1].map((b) => MU.reduce((t, m, k) => t + m[a] * m[b] + (a === b ? SD[k][a] ** 2 : 0), 0) / 3 - mean[a] * mean[b]));
  const sm = [0, 0];
  for (let r = 0; r < n; r++) for (let a = 0; a < 2; a++) sm[a] += s[2 * r + a] / n;
  const sc = [[0, 0], [0, 0]];
  for (let r = 0; r < n; r++) for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) sc[a][b] += (s[2 * r + a] - sm[a]) * (s[2 * r + b] - sm[b]) / (n - 1);
  say(`mixture: sample mean ${sm.map((v) => v.toFixed(4))} exact ${mean.map((v) => v.toFixed(4))}; cov ${sc.flat().map((v) => v.toFixed(4))} exact ${cov.flat().map((v) => v.toFixed(4))}`);
  // Stratification removes the between-component variance from the mean estimate: its standard error
  // is sqrt(avg_k sigma_k^2 / n) <= 0.005; tolerance 0.02 (4 se). Covariance entries: relative MC
  // error ~ sqrt(2 / n) * (kurtosis factor <~ 2) ~ 1.2%; tolerance 5% of the largest variance.
  for (let a = 0; a < 2; a++) assert.ok(Math.abs(sm[a] - mean[a]) < 0.02, `mean[${a}] ${sm[a]} vs ${mean[a]}`);
  const big = Math.max(cov[0][0], cov[1][1]);
  for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) assert.ok(Math.abs(sc[a][b] - cov[a][b]) < 0.05 * big, `cov[${a}][${b}] ${sc[a][b]} vs ${cov[a][b]}`);
  // Row r comes from component r mod 3: per-component means.
  for (let k = 0; k < 3; k++) for (let a = 0; a < 2; a++) {
    let m = 0;
    for (let r = k; r < n; r += 3) m += s[2 * r + a] / (n / 3);
    assert.ok(Math.abs(m - MU[k][a]) < 4.5 * SD[k][a] / Math.sqrt(n / 3), `component ${k} mean[${a}] ${m} vs ${MU[k][a]}`);
  }
});

test("mixture: the stratified reparameterised gradient of E_q[theta_0^2] is unbiased (exact 2 mu_k0 / K)", async () => {
  const fam = gaussianMixture(2, 3);
  const n = 3 * 4000;
  const g = grad((q: MixtureParams) => {
    const t = fam.sample(key(41), q, n);
    const x0 = t.slice([], 0);
    return x0.ref.mul(x0).mean();
  })(mixQ()) as MixtureParams;
  const gl = await toHost(g.loc);
  const gs = await toHost(g.logScale);
  for (let k = 0; k < 3; k++) {
    // d/dmu_k0 = 2 mu_k0 / K; d/dlog sigma_k0 = 2 sigma_k0^2 / K. MC sd of each (per component, 4,000
    // draws): 2 sigma_k0 / K / sqrt(4000) and 2 sqrt(2) sigma_k0^2 / K / sqrt(4000); tolerance 4.5 sd.
    const sdMu = (2 * SD[k][0]) / 3 / Math.sqrt(4000);
    const sdLs = (2 * Math.SQRT2 * SD[k][0] ** 2) / 3 / Math.sqrt(4000);
    assert.ok(Math.abs(gl[2 * k] - (2 * MU[k][0]) / 3) < 4.5 * sdMu, `d/dmu_${k}0 = ${gl[2 * k]}, exact ${(2 * MU[k][0]) / 3}`);
    assert.ok(Math.abs(gl[2 * k + 1]) < 1e-6, "theta_1 does not enter");
    assert.ok(Math.abs(gs[2 * k] - (2 * SD[k][0] ** 2) / 3) < 4.5 * sdLs, `d/dlogsigma_${k}0 = ${gs[2 * k]}, exact ${(2 * SD[k][0] ** 2) / 3}`);
  }
});

test("mixture: n not a multiple of K is a clear error", () => {
  const fam = gaussianMixture(2, 3);
  assert.throws(() => fam.sample(key(0), mixQ(), 10), /multiple of the number of components 3/);
  assert.throws(() => fam.sampleAndLogProb(key(0), mixQ(), 4), /multiple of the number of components 3/);
});

// A normalised banana: theta_0 ~ N(0, 1), theta_1 | theta_0 ~ N(B (theta_0^2 - 1), SB^2).
const B = 1, SB = 0.5;
/** log p(theta) for theta `[n, 2]` -> `[n]`, or `[2]` -> scalar. */
const banana = (t: JArray): JArray => {
  const x0 = t.ndim === 2 ? t.ref.slice([], 0) : t.ref.slice(0);
  const x1 = t.ndim === 2 ? t.slice([], 1) : t.slice(1);
  const r = x1.sub(x0.ref.mul(x0.ref).sub(1).mul(B)).mul(1 / SB);
  return x0.ref.mul(x0).add(r.ref.mul(r)).mul(-0.5).sub(Math.log(2 * Math.PI) + Math.log(SB));
};

/** Fit `fam` by Adam on the reparameterised reverse KL (128 draws, vectorised); return the KL from 8,192 draws. */
async function fitBanana(fam: Flow<any>, steps: number): Promise<number> {
  const opt = adam(0.01);
  const loss = (q: Tree, k: Key) => {
    const [t, lq] = fam.sampleAndLogProb(k, q as never, 128);
    return lq.sub(banana(t)).mean();
  };
  const step = compile(
    (k: Key, q: Tree, s: Tree) => {
      const [l, g] = valueAndGrad(loss)(keep(q), k) as [JArray, Tree];
      const [u, s2] = opt.update(g, s);
      return [applyUpdates(q, u), s2, l] as [Tree, Tree, JArray];
    },
    { consume: [0, 1, 2] },
  );
  let q: Tree = fam.init(key(50), np.zeros([2]), 1);
  let s = opt.init(keep(q));
  let k = key(51);
  for (let i = 0; i < steps; i++) {
    const [ki, kn] = split(k, 2);
    k = kn;
    const [q2, s2, l]: [Tree, Tree, JArray] = step(ki, q, s);
    q = q2;
    s = s2;
    await scalar(l);
  }
  step.dispose();
  tree.dispose(s);
  k.dispose();
  const [t, lq] = fam.sampleAndLogProb(key(52), q as never, 8192);
  return scalar(lq.sub(banana(t)).mean());
}

// The fit loop is written here, vectorised over the 128 draws, rather than through src/vi/advi.ts:
// ADVI evaluates the target one draw at a time, and the same fit through it took ~40 ms per step
// (25 s for 600 steps at 16 draws, reaching KL 0.23) against this file's time budget. The ADVI test
// below checks that the families run through ADVI with no special case.
test("RealNVP fitted to a normalised 2-D banana: reverse KL falls well below the best diagonal Gaussian's", async () => {
  const klGauss = await fitBanana(realNvp(2, { layers: 0 }), 300);
  const klFlow = await fitBanana(realNvp(2, { layers: 6, hidden: 16 }), 500);
  say(`banana reverse KL: diagonal Gaussian ${klGauss.toFixed(4)}, RealNVP(6 x 16) ${klFlow.toFixed(4)}`);
  // The KL estimate from 8,192 draws has MC sd ~ sqrt(Var(log q - log p) / 8192) < 0.01 here.
  assert.ok(klGauss > 0.3, `diagonal Gaussian KL ${klGauss} (the banana is far from Gaussian; expected > 0.3)`);
  assert.ok(klFlow < 0.1, `RealNVP reverse KL ${klFlow}, expected < 0.1`);
});

// A normalised two-component target: (1/2) N((-2, 0), 0.5^2 I) + (1/2) N((2, 0), 0.5^2 I).
/** log p(theta) for theta `[2]` -> scalar (the ADVI target; the batch is unused) or `[n, 2]` -> `[n]`. */
const twoModes = (t: JArray, b: unknown): JArray => {
  tree.dispose(b as Tree);
  const single = t.ndim === 1;
  const mu = np.array([[-2, 0], [2, 0]]).reshape([1, 2, 2]);
  const z = t.reshape([-1, 1, 2]).sub(mu).mul(2);
  const lp = nn.logsumexp(z.ref.mul(z).sum(-1).mul(-0.5), 1).sub(Math.log(2) + Math.log(2 * Math.PI) + 2 * Math.log(0.5));
  return single ? lp.reshape([]) : lp;
};

test("ADVI (src/vi/advi.ts) fits the stratified 2-component mixture to a bimodal target: reverse KL near 0", async () => {
  const fam = gaussianMixture(2, 2);
  const vi = advi(twoModes, { family: fam, samples: 4, learningRate: 0.03, initScale: 2 });
  const step = compile(vi.step, { consume: [0, 1, 2] });
  // Components start at mean 0 + 2 z_k (z_k ~ N(0, I)), scale 2.
  let state = vi.init(key(61), np.zeros([2]));
  let k = key(62);
  for (let i = 0; i < 800; i++) {
    const [ki, kn] = split(k, 2);
    k = kn;
    const [s2, info] = step(ki, state, {});
    state = s2;
    info.loss.dispose();
    await scalar(info.elbo);
  }
  step.dispose();
  k.dispose();
  const kl = compile((kk: Key, q: MixtureParams) => {
    const [t, lq] = fam.sampleAndLogProb(kk, keep(q), 4096);
    tree.dispose(q);
    return lq.sub(twoModes(t, {})).mean();
  }, { consume: [0] });
  const klHat = await scalar(kl(key(63), state.q));
  kl.dispose();
  const locs = Array.from(await toHost(state.q.loc.ref)).map((v) => v.toFixed(3));
  tree.dispose(state);
  say(`ADVI mixture on two modes: reverse KL ${klHat.toFixed(4)}, component means ${locs}`);
  // Exact fit has KL 0 (measured 0.022 after 800 steps; MC sd of the 4,096-draw estimate ~0.005); a
  // single Gaussian cannot get far below log 2 = 0.69 on these well-separated modes.
  assert.ok(klHat < 0.05, `mixture reverse KL ${klHat}, expected < 0.05`);
});
