/**
 * MCMC convergence diagnostics: rank-normalised split-R̂, bulk-ESS and tail-ESS.
 *
 * Everything here follows
 *
 *   A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner (2021),
 *   "Rank-normalization, folding, and localization: An improved R̂ for assessing convergence
 *   of MCMC", Bayesian Analysis 16(2), 667–718, https://doi.org/10.1214/20-BA1221
 *
 * with the same definitions as Stan, the R package `posterior` (`rhat`, `ess_bulk`, `ess_tail`,
 * `rhat_basic`, `ess_basic`) and ArviZ (`rhat(method="rank")`, `ess(method="bulk"|"tail")`).
 *
 * Input convention: `chains` is one array of draws per chain (`Float64Array[]` or `number[][]`),
 * all of the same length, at least 4 draws each. One chain is allowed: every diagnostic that
 * compares chains splits them in halves first, so one chain becomes two. Malformed input throws:
 * a non-array, no chains, chains of different lengths, fewer than 4 draws, or a non-finite draw
 * (the message names the chain and the index, e.g. `chains[2][17] is NaN`).
 *
 * Constant draws: when every draw is the same number (up to one ulp of its magnitude) variances
 * are zero and R̂ = √(var⁺/W) and ESS = S/τ̂ are 0/0, so R̂ and ESS are returned as NaN — the
 * behaviour of `posterior` (NA for constant draws; ArviZ 0.x instead reports ESS = S). Chains that
 * are each constant but at different values are not constant as a whole: there W = 0 < B, and
 * R̂ is +Infinity, which correctly flags non-convergence.
 *
 * Pure TypeScript on plain arrays; no randomness.
 *
 * @module
 */

/** Draws of one scalar quantity: one array per chain, all of the same length. */
export type Chains = ReadonlyArray<ArrayLike<number>>;

/** Options of {@link rhatBasic} and {@link essBasic}. */
export interface BasicOptions {
  /** Split every chain in halves before computing (default `true`, as in `posterior`). */
  readonly split?: boolean;
}

/** Result of {@link summarize}. */
export interface ConvergenceSummary {
  /** Rank-normalised split-R̂ (max of bulk and folded), see {@link rhat}. */
  readonly rhat: number;
  /** Bulk effective sample size, see {@link essBulk}. */
  readonly essBulk: number;
  /** Tail effective sample size, see {@link essTail}. */
  readonly essTail: number;
  /** Mean of all draws pooled. */
  readonly mean: number;
  /** Standard deviation of all draws pooled (denominator S - 1). */
  readonly sd: number;
}

/** Minimum number of draws per chain accepted by every function here. */
export const MIN_DRAWS = 4;

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/** Check the shape and values of `chains` and copy them into Float64Arrays. */
function validate(fn: string, chains: Chains): Float64Array[] {
  if (chains === null || typeof chains !== "object" || typeof (chains as { length?: unknown }).length !== "number") {
    throw new TypeError(`${fn}: chains must be an array with one array of draws per chain`);
  }
  const m = chains.length;
  if (m === 0) throw new RangeError(`${fn}: chains is empty; pass one array of draws per chain`);
  const out: Float64Array[] = [];
  let n = -1;
  for (let c = 0; c < m; c++) {
    const chain = chains[c] as ArrayLike<number> | null | undefined;
    if (chain === null || typeof chain !== "object" || typeof chain.length !== "number") {
      throw new TypeError(`${fn}: chains[${c}] is not an array of draws`);
    }
    if (c === 0) {
      n = chain.length;
      if (n < MIN_DRAWS) {
        throw new RangeError(`${fn}: chains need at least ${MIN_DRAWS} draws each, chains[0] has ${n}`);
      }
    } else if (chain.length !== n) {
      throw new RangeError(
        `${fn}: chains[${c}] has ${chain.length} draws but chains[0] has ${n}; all chains must have the same length`,
      );
    }
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = chain[i];
      if (typeof v !== "number" || !Number.isFinite(v)) {
        const what = typeof v !== "number" ? `not a number (${typeof v})` : Number.isNaN(v) ? "NaN" : String(v);
        throw new RangeError(`${fn}: chains[${c}][${i}] is ${what}; draws must be finite numbers`);
      }
      a[i] = v;
    }
    out.push(a);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small statistics helpers (on validated Float64Arrays)
// ---------------------------------------------------------------------------------------------

function pool(chains: readonly Float64Array[]): Float64Array {
  const n = chains[0].length;
  const all = new Float64Array(chains.length * n);
  chains.forEach((c, j) => all.set(c, j * n));
  return all;
}

/** True when all draws are equal up to one ulp of their magnitude (see the module notes). */
function isConstant(chains: readonly Float64Array[]): boolean {
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of chains) {
    for (let i = 0; i < c.length; i++) {
      if (c[i] < lo) lo = c[i];
      if (c[i] > hi) hi = c[i];
    }
  }
  return hi - lo <= Number.EPSILON * Math.max(Math.abs(lo), Math.abs(hi));
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

/** Unbiased sample variance (denominator n - 1), two-pass. */
function variance(a: ArrayLike<number>): number {
  const mu = mean(a);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - mu) * (a[i] - mu);
  return s / (a.length - 1);
}

/** Median (average of the two middle values for an even count), like numpy / R. */
function median(a: Float64Array): number {
  const s = Float64Array.from(a).sort();
  const k = s.length >> 1;
  return s.length % 2 === 1 ? s[k] : (s[k - 1] + s[k]) / 2;
}

/** Quantile of type 7 (R's default, numpy's "linear"): x₍⌊h⌋₎ + (h - ⌊h⌋)(x₍⌊h⌋₊₁₎ - x₍⌊h⌋₎), h = (N - 1)p. */
function quantile7(sorted: Float64Array, p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hiIdx = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hiIdx] - sorted[lo]);
}

// ---------------------------------------------------------------------------------------------
// Normal distribution
// ---------------------------------------------------------------------------------------------

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT2 = Math.SQRT2;
const SQRT_2PI = Math.sqrt(2 * Math.PI);

/**
 * e^{-x²/2} with an exact exponent: x = xₕ + xₗ with xₕ a multiple of 2⁻¹⁶ (so xₕ² is exact for
 * |x| < 2¹⁰), and e^{-x²/2} = e^{-xₕ²/2} · e^{-xₗ(x + xₕ)/2}. Plain `Math.exp(-x*x/2)` would lose
 * ≈ x²·1e-16 relative accuracy (≈ 1e-13 at x = 30) to the rounding of x².
 */
function expHalfSquare(x: number): number {
  const xh = Math.round(x * 65536) / 65536;
  const xl = x - xh;
  return Math.exp(-0.5 * xh * xh) * Math.exp(-0.5 * xl * (x + xh));
}

/**
 * Upper tail Q(t) = 1 - Φ(t) = Φ(-t) for t ≥ 0, to about 1e-15 relative accuracy.
 *
 * For t < 1.06 (z = t/√2 < 0.75): Q = ½(1 - erf z) with the all-positive series
 * erf(z) = (2/√π) e^{-z²} Σ_{k≥0} 2^k z^{2k+1} / (1·3·5···(2k+1)); the subtraction costs at most a
 * factor 1/(2Q(1.06)) ≈ 3.5 in relative terms.
 * For t ≥ 1.06: Laplace's continued fraction for the Mills ratio,
 * Q(t) = φ(t) / (t + 1/(t + 2/(t + 3/(t + …)))), φ(t) = e^{-t²/2}/√(2π), evaluated with the modified
 * Lentz method (≈ 340 terms at t = 1.06, 57 at t = 2.8, 33 at t = 4.2).
 */
function upperTail(t: number): number {
  if (t < 0.75 * SQRT2) {
    const z = t / SQRT2;
    const z2 = z * z;
    let term = z;
    let sum = z;
    for (let k = 1; k < 200; k++) {
      term *= (2 * z2) / (2 * k + 1);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return 0.5 - (1 / SQRT_PI) * Math.exp(-z2) * sum;
  }
  const tiny = 1e-300;
  let f = t;
  let C = f;
  let D = 0;
  for (let k = 1; k < 5000; k++) {
    D = t + k * D;
    if (Math.abs(D) < tiny) D = tiny;
    D = 1 / D;
    C = t + k / C;
    if (Math.abs(C) < tiny) C = tiny;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return expHalfSquare(t) / (SQRT_2PI * f);
}

/**
 * Standard normal CDF Φ(x) = ½ erfc(-x/√2).
 *
 * The lower tail (x < 0) is computed directly as Q(-x) (see the series / continued fraction
 * above), so it keeps full relative accuracy far out (Φ(-37) ≈ 5.7e-300); for x ≥ 0 it is
 * 1 - Q(x). Measured against 50-digit mpmath on 6,429 points evenly spread over [-37, 8]: max
 * relative error 3.2e-15 (SciPy's `ndtr` reaches 2.2e-13 there, from rounding x/√2).
 */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return upperTail(-x);
  return 1 - upperTail(x);
}

/**
 * Inverse standard normal CDF Φ⁻¹(p) (the probit / normal quantile function).
 *
 * Method: Peter J. Acklam's rational approximation (relative error < 1.15e-9 on (0, 1)), followed
 * by one Halley step on Φ(x) - p with the accurate {@link normalCdf}:
 * e = Φ(x) - p, u = e·√(2π)·e^{x²/2}, x ← x - u / (1 + x·u/2). Halley converges cubically, so one
 * step brings the error to the accuracy of Φ itself. Only the lower half is computed; for p > ½,
 * Φ⁻¹(p) = -Φ⁻¹(1 - p), and 1 - p is exact in floating point there (Sterbenz), so the upper tail
 * is as accurate as the lower. Measured against 60-digit mpmath on 10,911 points (p log-spaced in
 * [1e-300, 1) and evenly spaced in [½, 1)): max error 2.5e-15, absolute for |x| ≤ 1 and relative
 * beyond. (Acklam alone: 1.15e-9 relative.)
 *
 * Returns -Infinity at 0, +Infinity at 1 and NaN outside [0, 1].
 */
export function normalQuantile(p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p > 0.5) return -lowerQuantile(1 - p);
  return lowerQuantile(p);
}

// Acklam's coefficients.
const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
const P_LOW = 0.02425;

/** Φ⁻¹(p) for 0 < p ≤ ½. */
function lowerQuantile(p: number): number {
  let x: number;
  if (p < P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  } else {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q) / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
  }
  // One Halley refinement step. e^{x²/2} overflows only for |x| > 37.6, i.e. p < 1e-308, where
  // Acklam's 1e-9 relative accuracy is kept as it is.
  const e = normalCdf(x) - p;
  const u = e * SQRT_2PI * Math.exp((x * x) / 2);
  if (Number.isFinite(u)) x = x - u / (1 + (x * u) / 2);
  return x;
}

// ---------------------------------------------------------------------------------------------
// Splitting and rank normalisation
// ---------------------------------------------------------------------------------------------

function splitValidated(chains: readonly Float64Array[]): Float64Array[] {
  const n = chains[0].length;
  const half = n >> 1;
  const out: Float64Array[] = [];
  for (const c of chains) {
    out.push(c.slice(0, half));
    out.push(c.slice(n - half));
  }
  return out;
}

/**
 * Split every chain into its first and second half: M chains of N draws become 2M chains of
 * ⌊N/2⌋ draws, ordered `[chain0 first half, chain0 second half, chain1 first half, …]`. For odd N
 * the middle draw is dropped (as in Stan, `posterior` and ArviZ).
 *
 * Splitting lets R̂ see non-stationarity within a chain (the two halves disagree) and makes the
 * diagnostics defined for a single chain (Vehtari et al. 2021, Sec. 2; Gelman et al. BDA3 §11.4).
 */
export function splitChains(chains: Chains): Float64Array[] {
  return splitValidated(validate("splitChains", chains));
}

function rankNormalizeValidated(chains: readonly Float64Array[]): Float64Array[] {
  const all = pool(chains);
  const S = all.length;
  const order = new Uint32Array(S);
  for (let i = 0; i < S; i++) order[i] = i;
  order.sort((a, b) => all[a] - all[b]);
  const z = new Float64Array(S);
  let i = 0;
  while (i < S) {
    let j = i + 1;
    while (j < S && all[order[j]] === all[order[i]]) j++;
    // Sorted positions i..j-1 (0-based) share the average 1-based rank ((i+1) + j) / 2.
    const r = (i + 1 + j) / 2;
    const zr = normalQuantile((r - 0.375) / (S + 0.25));
    for (let k = i; k < j; k++) z[order[k]] = zr;
    i = j;
  }
  const n = chains[0].length;
  return chains.map((_, c) => z.slice(c * n, (c + 1) * n));
}

/**
 * Rank normalisation (Vehtari et al. 2021, eq. 14): pool all S draws of all chains, give each its
 * fractional rank r (1 = smallest, ties get the average of the ranks they span), and map
 *
 *   z = Φ⁻¹((r - 3/8) / (S + 1/4))
 *
 * (Blom's offset, c = 3/8 in (r - c)/(S - 2c + 1)). The output has the input's shape. The result
 * is invariant to any strictly increasing transform of the draws, and close to standard normal
 * whatever the marginal distribution, which makes R̂ and ESS well defined for heavy tails.
 * Φ⁻¹ is {@link normalQuantile}.
 */
export function rankNormalize(chains: Chains): Float64Array[] {
  return rankNormalizeValidated(validate("rankNormalize", chains));
}

// ---------------------------------------------------------------------------------------------
// R-hat
// ---------------------------------------------------------------------------------------------

/** Classic R̂ on the chains as given (no splitting); NaN for constant draws. */
function rhatCore(chains: readonly Float64Array[]): number {
  if (isConstant(chains)) return NaN;
  const n = chains[0].length;
  const means = chains.map(mean);
  const W = mean(chains.map(variance));
  const B = n * variance(means);
  const varPlus = ((n - 1) / n) * W + B / n;
  return Math.sqrt(varPlus / W); // W = 0 < varPlus gives +Infinity (see module notes)
}

/**
 * Classic (Gelman–Rubin, BDA3 §11.4) R̂, by default on split chains (`posterior::rhat_basic`).
 *
 * With M chains of N draws each (after splitting, if `split` is true), chain means θ̄ₘ,
 * chain variances sₘ² (denominator N - 1) and grand mean θ̄:
 *
 *   W = (1/M) Σₘ sₘ²,   B = N/(M - 1) Σₘ (θ̄ₘ - θ̄)²,
 *   var⁺ = (N - 1)/N · W + B/N,   R̂ = √(var⁺ / W).
 *
 * Values near 1 indicate agreement between chains; Vehtari et al. (2021) recommend R̂ < 1.01.
 * This version is not rank normalised, so it can miss differences in scale and it is unreliable
 * for heavy tails — prefer {@link rhat}. With `split: false` at least 2 chains are needed.
 * Returns NaN for constant draws and +Infinity when chains are constant at different values.
 */
export function rhatBasic(chains: Chains, options: BasicOptions = {}): number {
  const v = validate("rhatBasic", chains);
  const split = options.split ?? true;
  if (!split && v.length < 2) {
    throw new RangeError("rhatBasic: with split: false at least 2 chains are needed (got 1); use split: true for a single chain");
  }
  return rhatCore(split ? splitValidated(v) : v);
}

/**
 * The improved R̂ of Vehtari et al. (2021), eq. (15)–(17): the maximum of
 *
 *   - the bulk R̂: classic R̂ on the rank-normalised split chains, z = {@link rankNormalize}(split(x));
 *   - the tail R̂: classic R̂ on the rank-normalised *folded* split chains,
 *     {@link rankNormalize}(|split(x) - median(split(x))|), which detects chains that agree in
 *     location but differ in scale.
 *
 * Identical to Stan's / `posterior::rhat` / ArviZ `rhat(method="rank")`. One chain is allowed
 * (its two halves are compared). NaN for constant draws. If only the folded draws are constant
 * (e.g. draws taking two values symmetric about the median), the bulk R̂ is returned.
 */
export function rhat(chains: Chains): number {
  const split = splitValidated(validate("rhat", chains));
  if (isConstant(split)) return NaN;
  const bulk = rhatCore(rankNormalizeValidated(split));
  const med = median(pool(split));
  const folded = split.map((c) => c.map((x) => Math.abs(x - med)));
  const tail = isConstant(folded) ? NaN : rhatCore(rankNormalizeValidated(folded));
  return Number.isNaN(tail) ? bulk : Math.max(bulk, tail);
}

// ---------------------------------------------------------------------------------------------
// Autocovariance (FFT) and ESS
// ---------------------------------------------------------------------------------------------

/** In-place iterative radix-2 complex FFT (length a power of 2); `inverse` is unnormalised. */
function fft(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const N = re.length;
  for (let i = 1, j = 0; i < N; i++) {
    let bit = N >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      let t = re[i]; re[i] = re[j]; re[j] = t;
      t = im[i]; im[i] = im[j]; im[j] = t;
    }
  }
  // Twiddles computed directly (no recurrence) for accuracy.
  const cos = new Float64Array(N >> 1);
  const sin = new Float64Array(N >> 1);
  const sign = inverse ? 1 : -1;
  for (let k = 0; k < N >> 1; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / N);
    sin[k] = sign * Math.sin((2 * Math.PI * k) / N);
  }
  for (let len = 2; len <= N; len <<= 1) {
    const half = len >> 1;
    const step = N / len;
    for (let i = 0; i < N; i += len) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step];
        const wi = sin[k * step];
        const a = i + k;
        const b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

/**
 * Biased sample autocovariance of one chain at every lag, as recommended by Geyer (1992) and used
 * by Stan: γ̂ₜ = (1/N) Σ_{i=0}^{N-1-t} (xᵢ - x̄)(x_{i+t} - x̄), t = 0..N-1 (so γ̂₀ is the variance
 * with denominator N). Computed in O(N log N) by FFT of the centred chain zero-padded to a power
 * of two ≥ 2N (no circular wrap-around). Round-off is about 1e-15·γ̂₀.
 */
export function autocovariance(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  if (n === 0) return new Float64Array(0);
  let size = 1;
  while (size < 2 * n) size <<= 1;
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  const mu = mean(x);
  for (let i = 0; i < n; i++) re[i] = x[i] - mu;
  fft(re, im, false);
  for (let i = 0; i < size; i++) {
    re[i] = re[i] * re[i] + im[i] * im[i];
    im[i] = 0;
  }
  fft(re, im, true);
  const out = new Float64Array(n);
  for (let t = 0; t < n; t++) out[t] = re[t] / size / n;
  return out;
}

/** ESS on the chains as given (no splitting or normalisation); NaN for constant draws. */
function essCore(chains: readonly Float64Array[]): number {
  if (isConstant(chains)) return NaN;
  const m = chains.length;
  const n = chains[0].length;
  const S = m * n;
  // Mean over chains of the autocovariances γ̂ₜ,ₘ.
  const acov = new Float64Array(n);
  for (const c of chains) {
    const g = autocovariance(c);
    for (let t = 0; t < n; t++) acov[t] += g[t] / m;
  }
  const W = (acov[0] * n) / (n - 1); // mean of the unbiased chain variances
  let varPlus = (W * (n - 1)) / n;
  if (m > 1) varPlus += variance(chains.map(mean)); // + B/N
  const rhoAt = (t: number): number => 1 - (W - acov[t]) / varPlus;

  // Geyer's initial positive sequence on the pairs Pₖ = ρ̂₂ₖ + ρ̂₂ₖ₊₁.
  const rho = new Float64Array(n);
  let even = 1;
  let odd = rhoAt(1);
  rho[0] = even;
  rho[1] = odd;
  let t = 0;
  while (t < n - 5 && !Number.isNaN(even + odd) && even + odd > 0) {
    t += 2;
    even = rhoAt(t);
    odd = rhoAt(t + 1);
    if (even + odd >= 0) {
      rho[t] = even;
      rho[t + 1] = odd;
    }
  }
  const maxT = t;
  // Used by the improved (antithetic-friendly) truncation below.
  if (even > 0) rho[maxT] = even;
  // Geyer's initial monotone sequence: make the pair sums non-increasing.
  t = 0;
  while (t <= maxT - 4) {
    t += 2;
    if (rho[t] + rho[t + 1] > rho[t - 2] + rho[t - 1]) {
      rho[t] = (rho[t - 2] + rho[t - 1]) / 2;
      rho[t + 1] = rho[t];
    }
  }
  let tau: number;
  if (maxT === 0) {
    // Chains of ≤ 5 draws (or a first pair ≤ 0): no pair after the first can be examined, so use
    // Geyer's estimate truncated after the first pair, τ̂ = -1 + 2(ρ̂₀ + ρ̂₁). (Stan, posterior and
    // ArviZ differ from each other in this degenerate case.)
    tau = -1 + 2 * (rho[0] + rho[1]);
  } else {
    let sum = 0;
    for (let k = 0; k < maxT; k++) sum += rho[k];
    tau = -1 + 2 * sum + rho[maxT];
  }
  if (Number.isNaN(tau)) return NaN;
  tau = Math.max(tau, 1 / Math.log10(S));
  return S / tau;
}

/**
 * Effective sample size of the mean with the multi-chain autocorrelation estimate of Stan
 * (Vehtari et al. 2021, Sec. 3.2 and Appendix; `posterior::ess_basic`), by default on split chains.
 *
 * With M chains of N draws (after splitting), γ̂ₜ,ₘ the biased autocovariance of chain m at lag t
 * ({@link autocovariance}, so γ̂₀,ₘ = (N-1)/N · sₘ²), W and var⁺ as in {@link rhatBasic}:
 *
 *   ρ̂ₜ = 1 - (W - (1/M) Σₘ γ̂ₜ,ₘ) / var⁺.
 *
 * Geyer's initial positive sequence: with P̂ₖ = ρ̂₂ₖ + ρ̂₂ₖ₊₁, sum pairs while P̂ₖ > 0; then the
 * initial monotone sequence replaces every P̂ₖ larger than its predecessor by the predecessor.
 * With K the even lag of the last pair examined (the first non-positive pair, or the last pair
 * available, lags up to N - 4), and ρ̂_K set to that pair's even term when it is positive,
 *
 *   τ̂ = -1 + 2 Σ_{t=0}^{K-1} ρ̂ₜ + ρ̂_K,
 *
 * which is Stan's "improved" truncation: the average of truncating at lag K - 1 and at lag K,
 * reducing variance for antithetic chains (ρ̂₁ < 0). τ̂ is bounded below by 1/log₁₀(S), so ESS = S/τ̂ ≤ S·log₁₀(S),
 * where S = M·N. Returns NaN for constant draws. Autocovariances are computed by FFT, O(S log N).
 */
export function essBasic(chains: Chains, options: BasicOptions = {}): number {
  const v = validate("essBasic", chains);
  return essCore((options.split ?? true) ? splitValidated(v) : v);
}

/**
 * Bulk effective sample size (Vehtari et al. 2021, Sec. 4.3): {@link essBasic} on the
 * rank-normalised split chains, ESS_bulk = ESS(z), z = {@link rankNormalize}(split(x)). It measures
 * the efficiency of estimates in the bulk of the distribution (means, medians) and is defined
 * even when the mean or variance of x is not. Same as `posterior::ess_bulk` and ArviZ
 * `ess(method="bulk")`. NaN for constant draws.
 */
export function essBulk(chains: Chains): number {
  const split = splitValidated(validate("essBulk", chains));
  if (isConstant(split)) return NaN;
  return essCore(rankNormalizeValidated(split));
}

/**
 * Tail effective sample size (Vehtari et al. 2021, Sec. 4.3): the smaller ESS of the 5% and 95%
 * quantile estimates,
 *
 *   ESS_tail = min( ESS(split(I(x ≤ q₀.₀₅))), ESS(split(I(x ≥ q₀.₉₅))) ),
 *
 * where q_p are type-7 (R default / numpy "linear") quantiles of all draws pooled (before
 * splitting) and ESS is {@link essBasic} without further splitting. For draws without ties at
 * q₀.₉₅, I(x ≥ q₀.₉₅) = 1 - I(x ≤ q₀.₉₅), which has the same ESS, so this equals
 * `posterior::ess_tail` and ArviZ `ess(method="tail")`. NaN for constant draws, and NaN when
 * either indicator is constant over all split draws (heavy ties at an end, so the tail
 * quantile cannot be resolved).
 */
export function essTail(chains: Chains): number {
  const v = validate("essTail", chains);
  if (isConstant(v)) return NaN;
  const sorted = pool(v).sort();
  const q05 = quantile7(sorted, 0.05);
  const q95 = quantile7(sorted, 0.95);
  const lower = splitValidated(v.map((c) => c.map((x) => (x <= q05 ? 1 : 0))));
  const upper = splitValidated(v.map((c) => c.map((x) => (x >= q95 ? 1 : 0))));
  const a = essCore(lower);
  const b = essCore(upper);
  if (Number.isNaN(a) || Number.isNaN(b)) return NaN;
  return Math.min(a, b);
}

/**
 * All the recommended diagnostics of Vehtari et al. (2021) for one quantity, plus the pooled mean
 * and standard deviation: `{ rhat, essBulk, essTail, mean, sd }` (see {@link rhat},
 * {@link essBulk}, {@link essTail}). Their advice: use the draws when R̂ < 1.01 and both ESS > 100·M
 * (M chains). For constant draws R̂ and ESS are NaN, mean is the constant and sd is 0.
 */
export function summarize(chains: Chains): ConvergenceSummary {
  const v = validate("summarize", chains);
  const all = pool(v);
  return {
    rhat: rhat(v),
    essBulk: essBulk(v),
    essTail: essTail(v),
    mean: mean(all),
    sd: Math.sqrt(variance(all)),
  };
}
