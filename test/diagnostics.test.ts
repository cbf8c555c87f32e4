/**
 * Tests of the MCMC convergence diagnostics (Vehtari et al. 2021): R̂, bulk/tail ESS, rank
 * normalisation, the normal CDF and quantile. Every random input comes from a fixed seed, so
 * each test is deterministic; each tolerance is stated with the reason for its size.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  autocovariance,
  essBasic,
  essBulk,
  essTail,
  normalCdf,
  normalQuantile,
  rankNormalize,
  rhat,
  rhatBasic,
  splitChains,
  summarize,
} from "../src/diagnostics/convergence.js";
import { createRng, type Rng } from "../src/data/prng.js";

/** M chains of a stationary AR(1): x₀ ~ N(0,1), x_t = φ x_{t-1} + √(1-φ²) ε_t, so Var x = 1. */
function ar1(rng: Rng, phi: number, m: number, n: number): Float64Array[] {
  const s = Math.sqrt(1 - phi * phi);
  return Array.from({ length: m }, () => {
    const a = new Float64Array(n);
    let x = rng.normal();
    for (let i = 0; i < n; i++) {
      if (i > 0) x = phi * x + s * rng.normal();
      a[i] = x;
    }
    return a;
  });
}

/** |a/b - 1| */
const relErr = (a: number, b: number): number => Math.abs(a / b - 1);

// ---------------------------------------------------------------------------------------------
// 1. ESS of an AR(1) process against its known value
// ---------------------------------------------------------------------------------------------
// For AR(1) the autocorrelation is ρ_t = φ^t, so τ = 1 + 2 Σ φ^t = (1+φ)/(1-φ) and the true
// ESS of the mean is S(1-φ)/(1+φ). Rank normalisation of a Gaussian AR(1) is nearly the identity
// map, so bulk-ESS has the same target.
//
// Tolerance ±15%, checked against the sampling variability of the estimator: over 300 seeds of
// 4 chains × 5,000 draws (measured once with this implementation), ESS/true had
//   φ = 0.5: mean 1.001, sd 0.036, range [0.866, 1.087]  → ±15% is ≈ 4 sd (and beyond the worst of 300);
//   φ = 0.9: mean 0.995, sd 0.087, range [0.719, 1.243]  → ±15% would be only 1.7 sd for ONE run.
// So for φ = 0.9 the assertion is on the mean ratio over 8 independent 4 × 5,000 sets, whose sd
// is 0.087/√8 ≈ 0.031 (measured over 100 groups of 8: sd 0.029, range [0.951, 1.077]), making
// ±15% ≈ 5 sd; each single set is also required to be within ±35% (≈ 4 sd).

test("essBulk and essBasic recover the known ESS of AR(1) with φ = 0.5 (4 × 5,000, ±15%)", (t) => {
  const phi = 0.5;
  const chains = ar1(createRng(20210501), phi, 4, 5000);
  const truth = (20000 * (1 - phi)) / (1 + phi); // 6666.7
  const bulk = essBulk(chains);
  const basic = essBasic(chains);
  t.diagnostic(`true ESS ${truth.toFixed(1)}: essBulk ${bulk.toFixed(1)} (ratio ${(bulk / truth).toFixed(4)}), essBasic ${basic.toFixed(1)} (ratio ${(basic / truth).toFixed(4)})`);
  assert.ok(relErr(bulk, truth) < 0.15, `essBulk ${bulk} vs true ${truth}`);
  assert.ok(relErr(basic, truth) < 0.15, `essBasic ${basic} vs true ${truth}`);
  // Stationary chains from the same process: R-hat must not flag them (sd over seeds 3e-4).
  assert.ok(rhat(chains) < 1.01);
});

test("essBulk and essBasic recover the known ESS of AR(1) with φ = 0.9 (8 sets of 4 × 5,000, mean within ±15%)", (t) => {
  const phi = 0.9;
  const truth = (20000 * (1 - phi)) / (1 + phi); // 1052.6
  const rng = createRng(19920901);
  const bulkRatios: number[] = [];
  const basicRatios: number[] = [];
  for (let r = 0; r < 8; r++) {
    const chains = ar1(rng, phi, 4, 5000);
    bulkRatios.push(essBulk(chains) / truth);
    basicRatios.push(essBasic(chains) / truth);
  }
  const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  t.diagnostic(`true ESS ${truth.toFixed(1)}; essBulk/true per set ${bulkRatios.map((x) => x.toFixed(3)).join(" ")} mean ${avg(bulkRatios).toFixed(4)}`);
  t.diagnostic(`essBasic/true per set ${basicRatios.map((x) => x.toFixed(3)).join(" ")} mean ${avg(basicRatios).toFixed(4)}`);
  assert.ok(Math.abs(avg(bulkRatios) - 1) < 0.15, `mean essBulk/true ${avg(bulkRatios)}`);
  assert.ok(Math.abs(avg(basicRatios) - 1) < 0.15, `mean essBasic/true ${avg(basicRatios)}`);
  for (const x of [...bulkRatios, ...basicRatios]) assert.ok(Math.abs(x - 1) < 0.35, `single-set ratio ${x}`);
});

// ---------------------------------------------------------------------------------------------
// 2. iid normal draws
// ---------------------------------------------------------------------------------------------

test("iid normal draws: ESS ≈ S within 15% and R-hat < 1.01", (t) => {
  // Over 300 seeds of 4 × 5,000 iid draws: essBulk/S mean 0.989, sd 0.022, range [0.893, 1.035];
  // essTail/S mean 0.980, sd 0.021; rhat max 1.0008. So ±15% is ≈ 7 sd and 1.01 is far above
  // anything observed.
  const rng = createRng(42);
  const chains = Array.from({ length: 4 }, () => Float64Array.from({ length: 5000 }, () => rng.normal()));
  const S = 20000;
  const s = summarize(chains);
  const basic = essBasic(chains);
  t.diagnostic(`essBulk/S ${(s.essBulk / S).toFixed(4)}, essBasic/S ${(basic / S).toFixed(4)}, essTail/S ${(s.essTail / S).toFixed(4)}, rhat ${s.rhat.toFixed(5)}`);
  assert.ok(relErr(s.essBulk, S) < 0.15, `essBulk ${s.essBulk}`);
  assert.ok(relErr(basic, S) < 0.15, `essBasic ${basic}`);
  assert.ok(relErr(s.essTail, S) < 0.15, `essTail ${s.essTail}`);
  assert.ok(s.rhat < 1.01, `rhat ${s.rhat}`);
  assert.ok(rhatBasic(chains) < 1.01);
  // Pooled moments of N(0,1): mean has sd 1/√S = 0.007, so 0.03 is > 4 sd; sd of sd ≈ 0.005.
  assert.ok(Math.abs(s.mean) < 0.03);
  assert.ok(Math.abs(s.sd - 1) < 0.03);
  // Upper bound S·log10(S) is never exceeded (antithetic guard).
  assert.ok(s.essBulk <= S * Math.log10(S));
});

// ---------------------------------------------------------------------------------------------
// 3. Non-convergence is detected
// ---------------------------------------------------------------------------------------------

test("chains stuck in different modes of a bimodal target give R-hat far above 1", (t) => {
  // 2 chains ~ N(-3, 1) and 2 ~ N(+3, 1) never cross. Between-chain variance ≈ 9 versus within
  // ≈ 1 gives classic R-hat ≈ √10 ≈ 3.2. Rank normalisation compresses the gap: each mode's
  // z-scores form a half-normal (means ±0.80, variance 1 - 2/π ≈ 0.36), so the bulk R-hat is
  // ≈ √(1/0.36) ≈ 1.66, and the folded one a little more (measured 1.73). 1.5 is far above 1 and
  // below those values by many times the sampling noise (sd ~ 0.01 at this size).
  const rng = createRng(7);
  const chains = [-3, -3, 3, 3].map((mu) => Float64Array.from({ length: 1000 }, () => mu + rng.normal()));
  const r = rhat(chains);
  const rb = rhatBasic(chains);
  t.diagnostic(`rhat ${r.toFixed(3)}, rhatBasic ${rb.toFixed(3)}, essBulk ${essBulk(chains).toFixed(1)} of 4000`);
  assert.ok(r > 1.5, `rhat ${r}`);
  assert.ok(rb > 1.5, `rhatBasic ${rb}`);
  // ESS collapses too: the chains' means are all the information there is about the mixture.
  assert.ok(essBulk(chains) < 100);
});

test("chains that differ only in scale are caught by the folded part of rhat", (t) => {
  // Same location, sd 1 vs sd 3: the bulk R-hat sees no difference (≈ 1), the folded one does
  // (measured 1.17: the |x - median| distributions differ threefold in scale). 1.05 is well below
  // that and far above the ≈ 1.001 (sd ~ 0.001) of converged chains of this size.
  const rng = createRng(11);
  const chains = [1, 1, 3, 3].map((s) => Float64Array.from({ length: 2000 }, () => s * rng.normal()));
  const bulkOnly = rhatBasic(rankNormalize(splitChains(chains)), { split: false });
  t.diagnostic(`rhat ${rhat(chains).toFixed(3)}, bulk part only ${bulkOnly.toFixed(4)}`);
  assert.ok(rhat(chains) > 1.05, `rhat ${rhat(chains)}`);
  assert.ok(bulkOnly < 1.01, `bulk part ${bulkOnly}`);
});

test("a within-chain drift gives split R-hat > 1.1, even with a single chain", (t) => {
  // x_i = 3 i/N + N(0,1): the two halves' means differ by 1.5 against a within-half sd ≈ 1.1,
  // so split R-hat ≈ √((W + 1.5²/2)/W) ≈ 1.4 (sampling sd ~ 0.01). 1.1 is the usual
  // "definitely not converged" line.
  const n = 2000;
  const rng = createRng(3);
  const drift = () => Float64Array.from({ length: n }, (_, i) => (3 * i) / n + rng.normal());
  const one = [drift()];
  const r1 = rhat(one);
  const rb1 = rhatBasic(one);
  t.diagnostic(`1 chain: rhat ${r1.toFixed(3)}, rhatBasic ${rb1.toFixed(3)}`);
  assert.ok(r1 > 1.1, `rhat ${r1}`);
  assert.ok(rb1 > 1.1, `rhatBasic ${rb1}`);
  // Four chains drifting identically agree with each other, so unsplit R-hat misses it (≈ 1);
  // splitting is what catches it.
  const four = [drift(), drift(), drift(), drift()];
  const unsplit = rhatBasic(four, { split: false });
  t.diagnostic(`4 identical drifting chains: unsplit ${unsplit.toFixed(4)}, split ${rhatBasic(four).toFixed(3)}, rhat ${rhat(four).toFixed(3)}`);
  assert.ok(unsplit < 1.01, `unsplit ${unsplit}`);
  assert.ok(rhatBasic(four) > 1.1);
  assert.ok(rhat(four) > 1.1);
});

// ---------------------------------------------------------------------------------------------
// 4. Hand-checkable cases
// ---------------------------------------------------------------------------------------------

test("splitChains halves each chain and drops the middle draw of odd chains", () => {
  assert.deepEqual(splitChains([[1, 2, 3, 4], [5, 6, 7, 8]]).map((c) => Array.from(c)), [[1, 2], [3, 4], [5, 6], [7, 8]]);
  assert.deepEqual(splitChains([[1, 2, 3, 4, 5]]).map((c) => Array.from(c)), [[1, 2], [4, 5]]);
});

test("rankNormalize: average ranks for ties and z = Φ⁻¹((r - 3/8)/(S + 1/4))", () => {
  // Pooled draws 1 3 3 7 | 2 3 0 9 (S = 8). Sorted: 0 1 2 3 3 3 7 9, so the ranks are
  // 0→1, 1→2, 2→3, the three 3s share (4+5+6)/3 = 5, 7→7, 9→8.
  const chains = [[1, 3, 3, 7], [2, 3, 0, 9]];
  const handRanks = [[2, 5, 5, 7], [3, 5, 1, 8]];
  const z = rankNormalize(chains);
  assert.equal(z.length, 2);
  for (let c = 0; c < 2; c++) {
    assert.equal(z[c].length, 4);
    for (let i = 0; i < 4; i++) {
      const expected = normalQuantile((handRanks[c][i] - 3 / 8) / (8 + 1 / 4));
      // Same arithmetic path, so equal to rounding.
      assert.ok(Math.abs(z[c][i] - expected) < 1e-15, `z[${c}][${i}]`);
      // And back: r = Φ(z)(S + 1/4) + 3/8 recovers the hand rank; Φ and Φ⁻¹ are each good to
      // ~3e-15, so 1e-12 on a rank of size ≤ 8 is generous.
      const r = normalCdf(z[c][i]) * 8.25 + 0.375;
      assert.ok(Math.abs(r - handRanks[c][i]) < 1e-12, `rank of [${c}][${i}] = ${r}, expected ${handRanks[c][i]}`);
    }
  }
  // Ranks 1 and 8 are mirror images: (1 - 3/8)/8.25 and (8 - 3/8)/8.25 sum to 1, so z is antisymmetric.
  assert.ok(Math.abs(z[1][2] + z[1][3]) < 1e-14);
  // Tied values share one z.
  assert.equal(z[0][1], z[0][2]);
  assert.equal(z[0][1], z[1][1]);
});

test("normalQuantile and normalCdf at known values (to 1e-9; measured error ~3e-15)", () => {
  // Reference values to 20 digits (60-digit mpmath; the first three are the familiar 1.959963984540054).
  const cases: Array<[number, number]> = [
    [0.025, -1.9599639845400542118],
    [0.5, 0],
    [0.975, 1.9599639845400538556], // 0.975 in binary is not exactly 1 - 0.025, hence the last digits
    [1e-10, -6.3613409024040561991],
  ];
  for (const [p, x] of cases) {
    const q = normalQuantile(p);
    assert.ok(Math.abs(q - x) < 1e-9, `Φ⁻¹(${p}) = ${q}, expected ${x}`);
  }
  // Φ(-1.96) = 0.024997895148220434, Φ(1) = 0.84134474606854294859 (standard table values);
  // relative 1e-12 is far looser than the ~3e-15 measured, but tight enough to catch any real bug.
  assert.ok(relErr(normalCdf(-1.96), 0.024997895148220434137) < 1e-12);
  assert.ok(relErr(normalCdf(1), 0.84134474606854294859) < 1e-12);
  assert.ok(relErr(normalCdf(-6.361340902404056), 1.0000000000000013329e-10) < 1e-12);
  assert.equal(normalCdf(0), 0.5);
  assert.equal(normalQuantile(0), -Infinity);
  assert.equal(normalQuantile(1), Infinity);
  assert.ok(Number.isNaN(normalQuantile(1.5)));
  // Round trip deep in the tail, where a naive 1 - Φ or exp(-x²/2) would lose digits.
  for (const p of [1e-300, 1e-50, 1e-5, 0.3]) assert.ok(relErr(normalCdf(normalQuantile(p)), p) < 1e-13, `round trip at ${p}`);
});

test("rhatBasic on a tiny 2-chain example, by hand", () => {
  const chains = [[1, 2, 3, 4], [3, 4, 5, 6]];
  // Unsplit, M = 2, N = 4. Means 2.5, 4.5; each chain's squared deviations sum to
  // 2.25 + 0.25 + 0.25 + 2.25 = 5, so s² = 5/3 and W = 5/3. Grand mean 3.5, so
  // B = N/(M-1) Σ(θ̄ₘ - θ̄)² = 4·(1 + 1) = 8. var⁺ = (3/4)(5/3) + 8/4 = 3.25,
  // R̂ = √(3.25 / (5/3)) = √1.95.
  const W = 5 / 3;
  const B = 8;
  const unsplitHand = Math.sqrt(((3 / 4) * W + B / 4) / W);
  assert.ok(Math.abs(unsplitHand - Math.sqrt(1.95)) < 1e-15);
  // Only a handful of floating-point operations: agreement to 1e-14 relative.
  assert.ok(relErr(rhatBasic(chains, { split: false }), unsplitHand) < 1e-14);
  // Split (default): chains [1,2] [3,4] [3,4] [5,6], M = 4, N = 2. Means 1.5 3.5 3.5 5.5, each
  // s² = 0.5 so W = 0.5; grand mean 3.5, Σ(θ̄ₘ - θ̄)² = 4 + 0 + 0 + 4 = 8, B = 2/3 · 8 = 16/3.
  // var⁺ = (1/2)(0.5) + (16/3)/2 = 35/12, R̂ = √(35/6).
  const splitHand = Math.sqrt(((1 / 2) * 0.5 + 16 / 3 / 2) / 0.5);
  assert.ok(Math.abs(splitHand - Math.sqrt(35 / 6)) < 1e-15);
  assert.ok(relErr(rhatBasic(chains), splitHand) < 1e-14);
});

test("autocovariance (FFT) equals the direct O(n²) sum", () => {
  // γ̂_t = (1/N) Σ_{i<N-t} (x_i - x̄)(x_{i+t} - x̄). FFT round-off is ~1e-15·γ̂₀; 1e-12 absolute on
  // unit-variance data leaves room for the O(n) accumulation in the direct sum.
  const rng = createRng(5);
  for (const n of [4, 7, 64, 333]) {
    const x = Float64Array.from({ length: n }, () => rng.normal());
    const mu = x.reduce((a, b) => a + b, 0) / n;
    const g = autocovariance(x);
    for (let lag = 0; lag < n; lag++) {
      let s = 0;
      for (let i = 0; i + lag < n; i++) s += (x[i] - mu) * (x[i + lag] - mu);
      assert.ok(Math.abs(g[lag] - s / n) < 1e-12, `n=${n} lag=${lag}`);
    }
  }
});

test("fixed small input against an independent NumPy/SciPy transcription of posterior's algorithm", () => {
  // These reference numbers are NOT from ArviZ itself (not installable here). They were computed
  // once with a separate Python script: scipy.stats.rankdata(method="average"),
  // scipy.stats.norm.ppf, a direct O(n²) autocovariance, and a line-by-line port of the R package
  // posterior's .ess / .rhat (split, rank-normalise, fold at the median, Geyer's initial
  // positive + monotone sequences, the improved final term, the S·log10(S) cap). Both
  // implementations agree to ~1e-15, so 1e-12 relative only allows for summation order.
  const chains = [
    [0.3, -1.2, 2.5, 0.7, 1.1, -0.4, 0.9, 3.0, 1.4, 0.8, -0.9, 2.1, 0.5, 1.9],
    [1.8, 2.2, -0.6, 2.9, 1.5, 4.1, 0.2, 2.6, 3.3, 1.0, 2.4, 2.4, -0.1, 3.7],
  ];
  assert.ok(relErr(rhat(chains), 1.0576159263980305) < 1e-12);
  assert.ok(relErr(rhatBasic(chains), 1.0606862434910194) < 1e-12);
  assert.ok(relErr(essBasic(chains), 36.75642035557928) < 1e-12);
  assert.ok(relErr(essBulk(chains), 35.26685090034925) < 1e-12);
  assert.ok(relErr(essTail(chains), 39.595959595959584) < 1e-12);
  const s = summarize(chains);
  assert.ok(Math.abs(s.mean - 40.1 / 28) < 1e-14); // chain sums 12.7 and 27.4
});

test("rank-based diagnostics are invariant to strictly increasing transforms", () => {
  // Ranks of exp(x) equal ranks of x, so bulk-ESS is bit-for-bit equal, and so are the quantile
  // indicators behind tail-ESS. (R-hat's folded part is not invariant: |x - median| reorders under
  // exp, so R-hat is not compared.)
  const rng = createRng(99);
  const chains = ar1(rng, 0.7, 3, 500);
  const expd = chains.map((c) => c.map(Math.exp));
  assert.equal(essBulk(expd), essBulk(chains));
  assert.equal(essTail(expd), essTail(chains));
});

test("constant draws give NaN R-hat and ESS; chains constant at different values give R-hat = Infinity", () => {
  const constant = [[2, 2, 2, 2, 2], [2, 2, 2, 2, 2]];
  assert.ok(Number.isNaN(rhat(constant)));
  assert.ok(Number.isNaN(rhatBasic(constant)));
  assert.ok(Number.isNaN(essBasic(constant)));
  assert.ok(Number.isNaN(essBulk(constant)));
  assert.ok(Number.isNaN(essTail(constant)));
  const s = summarize(constant);
  assert.equal(s.mean, 2);
  assert.equal(s.sd, 0);
  assert.ok(Number.isNaN(s.rhat) && Number.isNaN(s.essBulk) && Number.isNaN(s.essTail));
  // W = 0 < B: maximally non-converged.
  assert.equal(rhatBasic([[0, 0, 0, 0], [1, 1, 1, 1]], { split: false }), Infinity);
  assert.equal(rhat([[0, 0, 0, 0], [1, 1, 1, 1]]), Infinity);
});

// ---------------------------------------------------------------------------------------------
// 5. Errors
// ---------------------------------------------------------------------------------------------

test("malformed input throws clear errors naming the argument", () => {
  assert.throws(() => rhat([[1, 2, 3, 4], [1, 2, 3]]), /rhat: chains\[1\] has 3 draws but chains\[0\] has 4/);
  assert.throws(() => essBulk([new Float64Array(5), new Float64Array(6)]), /essBulk: chains\[1\] has 6 draws but chains\[0\] has 5/);
  assert.throws(() => essTail([[1, 2, 3]]), /essTail: chains need at least 4 draws each, chains\[0\] has 3/);
  assert.throws(() => rhatBasic([[1, 2, 3]]), /at least 4 draws/);
  assert.throws(() => summarize([[1, 2, 3, 4], [1, 2, NaN, 4]]), /summarize: chains\[1\]\[2\] is NaN/);
  assert.throws(() => essBasic([[1, 2, Infinity, 4]]), /essBasic: chains\[0\]\[2\] is Infinity/);
  assert.throws(() => rankNormalize([]), /rankNormalize: chains is empty/);
  assert.throws(() => rhat(null as unknown as number[][]), /rhat: chains must be an array/);
  assert.throws(() => rhat([5 as unknown as number[]]), /rhat: chains\[0\] is not an array of draws/);
  assert.throws(() => rhatBasic([[1, 2, 3, 4]], { split: false }), /at least 2 chains/);
});

test("a single chain is split and diagnosed", (t) => {
  // One stationary AR(1) chain, φ = 0.5, 4,000 draws: true ESS 4000/3 ≈ 1333. The relative sd of
  // the estimate scales like 1/√S: 0.036·√(20000/4000) ≈ 0.08, so ±30% is ≈ 3.7 sd. R-hat of two
  // stationary halves of 2,000 draws has sd ~ 0.003, so < 1.05 is safe.
  const chain = ar1(createRng(8), 0.5, 1, 4000);
  t.diagnostic(`essBulk ${essBulk(chain).toFixed(1)} vs true ${(4000 / 3).toFixed(1)}, rhat ${rhat(chain).toFixed(4)}`);
  assert.ok(relErr(essBulk(chain), 4000 / 3) < 0.3, `essBulk ${essBulk(chain)}`);
  assert.ok(rhat(chain) < 1.05, `rhat ${rhat(chain)}`);
});
