/**
 * Convergence warnings for a sampler run: R̂ and bulk-ESS of the traced quantities checked against
 * the thresholds of
 *
 *   A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner (2021),
 *   "Rank-normalization, folding, and localization: An improved R̂ for assessing convergence
 *   of MCMC", Bayesian Analysis 16(2), 667–718, https://doi.org/10.1214/20-BA1221
 *
 * which recommends using the draws only if R̂ < 1.01, and relying on R̂ and ESS only when the
 * rank-normalised ESS is at least 50 per split chain: a total ESS of at least 400 for their minimum
 * of four chains, i.e. 100 per chain. (rstan's documentation of `ess_bulk` says the same: bulk- and
 * tail-ESS of at least 100 per chain.) With one chain, R̂ is the split R̂ (the chain's two
 * halves compared), so a single chain is checked too. Only bulk-ESS is checked; tail-ESS is left to
 * whoever reads the full diagnostics.
 *
 * Pure: strings in, strings out; the caller decides where they are printed.
 *
 * @module
 */
import { MIN_DRAWS } from "./convergence.js";

/** The R̂ and bulk-ESS of one traced quantity (a driver's `TraceDiagnostics` fits). */
export interface QuantityDiagnostics {
  /** What was traced, e.g. `held-out log-lik` or `projection 1`. */
  readonly name: string;
  /** Rank-normalised split R̂ over all chains; NaN when it could not be computed. */
  readonly rhat: number;
  /** Bulk ESS summed over all chains; NaN when it could not be computed. */
  readonly essBulk: number;
}

/** Thresholds of {@link convergenceWarnings}. */
export interface ConvergenceThresholds {
  /** Warn when R̂ is above this (default 1.01). */
  readonly rhat: number;
  /** Warn when bulk ESS divided by the number of chains is below this (default 100). */
  readonly essPerChain: number;
}

/** R̂ < 1.01 and bulk ESS >= 100 per chain (Vehtari et al. 2021, see the module comment). */
export const DEFAULT_CONVERGENCE_THRESHOLDS: ConvergenceThresholds = { rhat: 1.01, essPerChain: 100 };

/** Quantities listed by name in one warning; the rest are counted. */
const MAX_LISTED = 6;

/** `2.31`, with more decimals when two would not show the value is above `threshold`. */
function fmtRhat(v: number, threshold: number): string {
  if (!Number.isFinite(v)) return "inf";
  let digits = 2;
  while (digits < 6 && Number(v.toFixed(digits)) <= threshold) digits++;
  return v.toFixed(digits);
}

/** Rounded down, so a value below the threshold never prints as the threshold: `99`, `4.5`. */
function fmtEss(v: number): string {
  return v >= 10 ? String(Math.floor(v)) : String(Math.floor(v * 10) / 10);
}

function listed(items: readonly string[]): string {
  if (items.length <= MAX_LISTED) return items.join(", ");
  return `${items.slice(0, MAX_LISTED).join(", ")} and ${items.length - MAX_LISTED} more`;
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`convergenceWarnings: ${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * Human-readable warnings about a sampler run's convergence, one per kind of problem (the
 * quantities with that problem listed worst first), each saying which options to change; empty
 * when every quantity passes.
 *
 * - R̂ above `thresholds.rhat` (default 1.01) on some quantity: the chains have not mixed, or (one
 *   chain) its two halves disagree. Advice: a longer burn-in (`--burnin`) and a longer run
 *   (`--samples`, `--thin`).
 * - Bulk ESS per chain (`essBulk / chains`) below `thresholds.essPerChain` (default 100): too few
 *   effective draws for reliable estimates, R̂ included. Advice: `--samples` to at least the
 *   threshold when fewer draws were kept, else `--thin` or `--samples`.
 * - R̂ or ESS NaN: not computed. With fewer than 4 draws per chain that is the reason (advice:
 *   `--samples`); otherwise the trace had a non-finite value (a diverged sampler: `--lr`) or was
 *   constant. Such quantities are left out of the other two checks.
 *
 * @param diagnostics one entry per traced quantity (the driver's `FitResult.diagnostics`)
 * @param chains number of chains, >= 1
 * @param samplesPerChain draws kept per chain, >= 0
 * @param thresholds overrides of {@link DEFAULT_CONVERGENCE_THRESHOLDS}
 * @throws RangeError when `chains` or `samplesPerChain` is not a count, or a threshold is not finite
 *
 * @example
 * convergenceWarnings([{ name: "projection 1", rhat: 1.2, essBulk: 30 }], 2, 20);
 * // ["R-hat is 1.20 (projection 1) above 1.01: the 2 chains have not mixed; ...",
 * //  "bulk ESS per chain is 15 (projection 1) below 100: ..."]
 *
 * See Vehtari et al. (2021), cited in the module comment, for the thresholds.
 */
export function convergenceWarnings(
  diagnostics: readonly QuantityDiagnostics[],
  chains: number,
  samplesPerChain: number,
  thresholds: Partial<ConvergenceThresholds> = {},
): string[] {
  checkCount("chains", chains, 1);
  checkCount("samplesPerChain", samplesPerChain, 0);
  const { rhat: rhatMax, essPerChain: essMin } = { ...DEFAULT_CONVERGENCE_THRESHOLDS, ...thresholds };
  if (!Number.isFinite(rhatMax) || !Number.isFinite(essMin)) {
    throw new RangeError(`convergenceWarnings: thresholds must be finite numbers, got rhat ${rhatMax} and essPerChain ${essMin}`);
  }
  if (diagnostics.length === 0) return [];
  const out: string[] = [];

  if (samplesPerChain < MIN_DRAWS) {
    const kept = samplesPerChain === 1 ? "1 draw per chain was" : `${samplesPerChain} draws per chain were`;
    return [`R-hat and ESS could not be computed: ${kept} kept and they need at least ${MIN_DRAWS}; raise --samples`];
  }

  const notComputed = diagnostics.filter((d) => Number.isNaN(d.rhat) || Number.isNaN(d.essBulk));
  if (notComputed.length > 0) {
    out.push(
      `R-hat and ESS could not be computed for ${listed(notComputed.map((d) => d.name))}: the trace has a non-finite value ` +
        `(the sampler diverged; lower the step size with --lr) or is constant (the ${chains === 1 ? "chain" : "chains"} did not move)`,
    );
  }
  const computed = diagnostics.filter((d) => !notComputed.includes(d));

  const highRhat = computed.filter((d) => d.rhat > rhatMax).sort((a, b) => b.rhat - a.rhat);
  if (highRhat.length > 0) {
    const values = listed(highRhat.map((d) => `${fmtRhat(d.rhat, rhatMax)} (${d.name})`));
    out.push(
      chains === 1
        ? `split R-hat is ${values} above ${rhatMax}: the two halves of the chain disagree, so it has not settled; ` +
            `discard more of its start (--burnin) and run it longer (--samples, --thin)`
        : `R-hat is ${values} above ${rhatMax}: the ${chains} chains have not mixed; ` +
            `discard more of their start (--burnin) and run them longer (--samples, --thin)`,
    );
  }

  const lowEss = computed.filter((d) => d.essBulk / chains < essMin).sort((a, b) => a.essBulk - b.essBulk);
  if (lowEss.length > 0) {
    const values = listed(lowEss.map((d) => `${fmtEss(d.essBulk / chains)} (${d.name})`));
    const advice =
      samplesPerChain < essMin
        ? `only ${samplesPerChain} draws per chain were kept; raise --samples to ${essMin} or more, and --thin if they are correlated`
        : `the draws are correlated; space them further apart (--thin) or keep more (--samples)`;
    out.push(`bulk ESS per chain is ${values} below ${essMin}: too few effective draws for reliable estimates; ${advice}`);
  }
  return out;
}
