/**
 * Tests of the convergence warnings: exact strings for each kind of problem, the thresholds'
 * boundaries, NaN and infinite diagnostics, and bad arguments.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { convergenceWarnings, DEFAULT_CONVERGENCE_THRESHOLDS } from "../src/diagnostics/warnings.js";
import type { TraceDiagnostics } from "../src/run/driver.js";

const RHAT_ADVICE_CHAINS = "discard more of their start (--burnin) and run them longer (--samples, --thin)";
const ESS_FEW_DRAWS = (s: number) => `only ${s} draws per chain were kept; raise --samples to 100 or more, and --thin if they are correlated`;
const ESS_CORRELATED = "the draws are correlated; space them further apart (--thin) or keep more (--samples)";

test("no warning when every quantity passes, or when nothing was traced", () => {
  const ok: TraceDiagnostics[] = [
    { name: "held-out log-lik", rhat: 1.003, essBulk: 450, essTail: 420 },
    { name: "projection 1", rhat: 0.999, essBulk: 800, essTail: 700 },
  ];
  assert.deepEqual(convergenceWarnings(ok, 4, 200), []);
  assert.deepEqual(convergenceWarnings([], 1, 0), []);
});

test("several chains: one R-hat warning and one ESS warning, quantities worst first", () => {
  const d: TraceDiagnostics[] = [
    { name: "held-out log-lik", rhat: 2.314, essBulk: 48.2, essTail: 40 },
    { name: "projection 1", rhat: 1.85, essBulk: 300, essTail: 250 },
    { name: "projection 2", rhat: 1.005, essBulk: 500, essTail: 450 },
    { name: "projection 3", rhat: 1.012, essBulk: 37, essTail: 30 },
  ];
  assert.deepEqual(convergenceWarnings(d, 4, 20), [
    `R-hat is 2.31 (held-out log-lik), 1.85 (projection 1), 1.012 (projection 3) above 1.01: the 4 chains have not mixed; ${RHAT_ADVICE_CHAINS}`,
    `bulk ESS per chain is 9.2 (projection 3), 12 (held-out log-lik), 75 (projection 1) below 100: too few effective draws for reliable estimates; ${ESS_FEW_DRAWS(20)}`,
  ]);
});

test("one chain: the split R-hat warning speaks of the chain's halves; enough draws but correlated", () => {
  assert.deepEqual(convergenceWarnings([{ name: "projection 1", rhat: 1.3, essBulk: 60 }], 1, 200), [
    "split R-hat is 1.30 (projection 1) above 1.01: the two halves of the chain disagree, so it has not settled; discard more of its start (--burnin) and run it longer (--samples, --thin)",
    `bulk ESS per chain is 60 (projection 1) below 100: too few effective draws for reliable estimates; ${ESS_CORRELATED}`,
  ]);
});

test("the example of the TSDoc", () => {
  assert.deepEqual(convergenceWarnings([{ name: "projection 1", rhat: 1.2, essBulk: 30 }], 2, 20), [
    `R-hat is 1.20 (projection 1) above 1.01: the 2 chains have not mixed; ${RHAT_ADVICE_CHAINS}`,
    `bulk ESS per chain is 15 (projection 1) below 100: too few effective draws for reliable estimates; ${ESS_FEW_DRAWS(20)}`,
  ]);
});

test("fewer than 4 draws per chain: one warning saying why nothing could be computed", () => {
  const nan = (name: string) => ({ name, rhat: NaN, essBulk: NaN, essTail: NaN });
  assert.deepEqual(convergenceWarnings([nan("held-out log-lik"), nan("projection 1")], 2, 3), [
    "R-hat and ESS could not be computed: 3 draws per chain were kept and they need at least 4; raise --samples",
  ]);
  assert.deepEqual(convergenceWarnings([nan("projection 1")], 1, 1), [
    "R-hat and ESS could not be computed: 1 draw per chain was kept and they need at least 4; raise --samples",
  ]);
});

test("NaN with enough draws (non-finite or constant trace) is named; an infinite R-hat is reported as inf", () => {
  const d = [
    { name: "held-out log-lik", rhat: NaN, essBulk: NaN },
    { name: "projection 1", rhat: Infinity, essBulk: 2 },
  ];
  assert.deepEqual(convergenceWarnings(d, 2, 100), [
    "R-hat and ESS could not be computed for held-out log-lik: the trace has a non-finite value (the sampler diverged; lower the step size with --lr) or is constant (the chains did not move)",
    `R-hat is inf (projection 1) above 1.01: the 2 chains have not mixed; ${RHAT_ADVICE_CHAINS}`,
    `bulk ESS per chain is 1 (projection 1) below 100: too few effective draws for reliable estimates; ${ESS_CORRELATED}`,
  ]);
  assert.deepEqual(convergenceWarnings([{ name: "projection 2", rhat: NaN, essBulk: NaN }], 1, 50), [
    "R-hat and ESS could not be computed for projection 2: the trace has a non-finite value (the sampler diverged; lower the step size with --lr) or is constant (the chain did not move)",
  ]);
});

test("thresholds: strict at the defaults, values never print as the threshold, overrides apply", () => {
  assert.deepEqual(DEFAULT_CONVERGENCE_THRESHOLDS, { rhat: 1.01, essPerChain: 100 });
  assert.deepEqual(convergenceWarnings([{ name: "q", rhat: 1.01, essBulk: 200 }], 2, 100), []);
  const [rhatWarning, essWarning] = convergenceWarnings([{ name: "q", rhat: 1.0104, essBulk: 199.9 }], 2, 100);
  assert.ok(rhatWarning.startsWith("R-hat is 1.0104 (q) above 1.01:"), rhatWarning);
  assert.ok(essWarning.startsWith("bulk ESS per chain is 99 (q) below 100:"), essWarning);
  const d = [{ name: "q", rhat: 1.03, essBulk: 120 }];
  assert.deepEqual(convergenceWarnings(d, 2, 100, { rhat: 1.05, essPerChain: 50 }), []);
  assert.deepEqual(convergenceWarnings(d, 2, 40, { essPerChain: 80 }), [
    `R-hat is 1.03 (q) above 1.01: the 2 chains have not mixed; ${RHAT_ADVICE_CHAINS}`,
    "bulk ESS per chain is 60 (q) below 80: too few effective draws for reliable estimates; only 40 draws per chain were kept; raise --samples to 80 or more, and --thin if they are correlated",
  ]);
});

test("long lists are cut after six quantities", () => {
  const d = Array.from({ length: 8 }, (_, i) => ({ name: `projection ${i + 1}`, rhat: 1.1 + i / 10, essBulk: 1000 }));
  assert.deepEqual(convergenceWarnings(d, 2, 1000), [
    "R-hat is 1.80 (projection 8), 1.70 (projection 7), 1.60 (projection 6), 1.50 (projection 5), 1.40 (projection 4), 1.30 (projection 3) and 2 more above 1.01: " +
      `the 2 chains have not mixed; ${RHAT_ADVICE_CHAINS}`,
  ]);
});

test("bad arguments throw and name the argument", () => {
  const d = [{ name: "q", rhat: 1, essBulk: 500 }];
  assert.throws(() => convergenceWarnings(d, 0, 100), /chains must be an integer >= 1, got 0/);
  assert.throws(() => convergenceWarnings(d, 1.5, 100), /chains must be an integer >= 1, got 1.5/);
  assert.throws(() => convergenceWarnings(d, 2, -1), /samplesPerChain must be an integer >= 0, got -1/);
  assert.throws(() => convergenceWarnings(d, 2, 100, { rhat: NaN }), /thresholds must be finite numbers, got rhat NaN and essPerChain 100/);
});
