/**
 * `bayesdl bench vi-mixture`: Gaussian-mixture targets (2 and 5 components, dims 2 and 30) fitted
 * with non-Gaussian families, traced against target evaluations:
 * - `advi-mixture`: ADVI (reparameterised ELBO) with an equal-weight Gaussian mixture q of as many
 *   components as the target, stratified sampling (src/vi/mixture.ts);
 * - `advi-realnvp`: ADVI with a RealNVP flow (src/vi/flows.ts);
 * - `proximal-realnvp`: proximal score-matching VI with the same flow (src/scorevi/proximal.ts).
 *
 * Errors, by Monte Carlo with the target's exact normalised density: reverse KL(q || p) =
 * E_q[log q - log p] from draws of q, and forward KL(p || q) = E_p[log p - log q] from exact draws of p.
 * Both are estimated with 2,000 draws (the same p-draws at every checkpoint).
 */
import { compile, fromHost, key, np, scalar, split, type JArray, type Key } from "../core/engine.js";
import { free, type Tree } from "../core/tree.js";
import { createFlat as createProximal } from "../scorevi/proximal.js";
import { create as createAdvi } from "../vi/advi.js";
import type { Family } from "../vi/family.js";
import { realNvp } from "../vi/flows.js";
import { gaussianMixture } from "../vi/mixture.js";
import { benchMethod, benchTable, traceRun, writeBench, type BenchRun, type TracePoint } from "./vi.js";
import { mixtureLogDensity, sampleMixture, standardMixtureTargets, type MixtureTarget } from "./vi-targets.js";

export const VI_MIXTURE_METHODS = ["advi-mixture", "advi-realnvp", "proximal-realnvp"] as const;
export type ViMixtureMethod = (typeof VI_MIXTURE_METHODS)[number];

/** Per-method settings. */
export const VI_MIXTURE_SETTINGS = {
  "advi-mixture": { samplesPerComponent: 2, learningRate: 2e-2 },
  "advi-realnvp": { layers: 6, hidden: 32, samples: 8, learningRate: 5e-3 },
  "proximal-realnvp": { layers: 6, hidden: 32, samplesPerStep: 8, innerSteps: 4, learningRate: 5e-3, lambda: 1 },
} as const;

const EVAL_DRAWS = 2000;

function familyFor(t: MixtureTarget, method: ViMixtureMethod): { family: Family<Tree>; perStep: number } {
  if (method === "advi-mixture") {
    const s = VI_MIXTURE_SETTINGS[method];
    return { family: gaussianMixture(t.d, t.k), perStep: s.samplesPerComponent * t.k };
  }
  const s = VI_MIXTURE_SETTINGS[method];
  return { family: realNvp(t.d, { layers: s.layers, hidden: s.hidden }), perStep: method === "advi-realnvp" ? VI_MIXTURE_SETTINGS["advi-realnvp"].samples : VI_MIXTURE_SETTINGS["proximal-realnvp"].samplesPerStep };
}

/** A method's state advanced by a compiled step that also returns a probe scalar. */
interface Stepper {
  step(k: Key): JArray;
  /** The current q (borrowed). */
  q(): Tree;
  dispose(): void;
}

function makeStepper<S extends { q: Tree }>(state0: S, step: (k: Key, s: S) => [S, JArray]): Stepper {
  const c = compile(step, { consume: [0, 1] });
  let state = state0;
  return {
    step(k) {
      const [s, probe] = c(k, state);
      state = s;
      return probe;
    },
    q: () => state.q,
    dispose() {
      c.dispose();
      free(state);
    },
  };
}

/** A running method on a mixture target. */
export function startMixtureRun(t: MixtureTarget, method: ViMixtureMethod, k: Key, seed: number): BenchRun {
  const target = mixtureLogDensity(t);
  const ld = target.logDensity;
  const { family, perStep } = familyFor(t, method);
  const [kInit, kRun, kEval] = split(k, 3);
  // Families start at N(0, 3^2 I) (wider than every target's components' spread of means and scales).
  let stepper: Stepper;
  if (method === "proximal-realnvp") {
    const s = VI_MIXTURE_SETTINGS[method];
    const prox = createProximal(ld, { family, samplesPerStep: s.samplesPerStep, innerSteps: s.innerSteps, learningRate: s.learningRate, lambda: s.lambda, initScale: 3 });
    stepper = makeStepper(prox.init(kInit, np.zeros([t.d])), (kk, st) => {
      const [s2, info] = prox.step(kk, st, undefined);
      return [s2, info.kl];
    });
  } else {
    const lr = VI_MIXTURE_SETTINGS[method].learningRate;
    const advi = createAdvi(ld, { family, samples: perStep, learningRate: lr, initScale: 3 });
    // The family's initial weights come from the second half of the init key (as in earlier versions).
    const [k0, k1] = split(kInit, 2);
    k0.dispose();
    stepper = makeStepper(advi.init(k1, np.zeros([t.d])), (kk, st) => {
      const [s2, info] = advi.step(kk, st, undefined);
      return [s2, info.loss];
    });
  }
  const pDraws = fromHost(sampleMixture(t, EVAL_DRAWS, seed + 101), [EVAL_DRAWS, t.d]);
  const reverse = compile((kk: Key, q: Tree) => {
    const [theta, lq] = family.sampleAndLogProb(kk, q, EVAL_DRAWS);
    return lq.sub(ld(theta, undefined)).mean();
  }, { consume: [0] });
  const forward = compile((q: Tree, x: JArray) => ld(x.ref, undefined).sub(family.logProb(q, x)).mean());
  let kk = kRun;
  let ke = kEval;
  let evals = 0;
  return {
    async step() {
      const [k1, k2] = split(kk, 2);
      kk = k2;
      await scalar(stepper.step(k1));
      evals += perStep;
      return evals;
    },
    async errors() {
      const [k1, k2] = split(ke, 2);
      ke = k2;
      return { reverseKl: await scalar(reverse(k1, stepper.q())), forwardKl: await scalar(forward(stepper.q(), pDraws)) };
    },
    dispose() {
      stepper.dispose();
      reverse.dispose();
      forward.dispose();
      kk.dispose();
      ke.dispose();
      pDraws.dispose();
      target.dispose();
    },
  };
}

/** Options of {@link viMixtureBench}. */
export interface ViMixtureOptions {
  readonly budget: number;
  readonly seed: number;
  readonly targets?: string[];
  /** Method names of this bench (default: all). */
  readonly methods?: readonly string[];
  readonly onRun?: (target: string, method: string, last: TracePoint) => void;
}

/** Run every method on every mixture target and write `vi-mixture.md`, `.json` and `.svg`. */
export async function viMixtureBench(outDir: string, o: ViMixtureOptions): Promise<{ table: string; files: string[] }> {
  const t0 = performance.now();
  const all = standardMixtureTargets(o.seed);
  if (o.targets) {
    const unknown = o.targets.filter((n) => !all.some((t) => t.name === n));
    if (unknown.length) throw new Error(`--targets: unknown target(s) ${unknown.join(", ")}; known: ${all.map((t) => t.name).join(", ")}`);
  }
  const targets = o.targets ? all.filter((t) => o.targets!.includes(t.name)) : all;
  const results: { target: string; method: string; trace: TracePoint[]; rejected: number; diverged: boolean }[] = [];
  for (const t of targets) {
    for (const m of (o.methods ?? VI_MIXTURE_METHODS).map((name) => benchMethod(name, VI_MIXTURE_METHODS))) {
      const r = await traceRun(t.name, m, startMixtureRun(t, m, key(o.seed), o.seed), o.budget);
      results.push({ target: t.name, method: m, ...r });
      o.onRun?.(t.name, m, r.trace[r.trace.length - 1]);
    }
  }
  const table = benchTable(results, ["reverseKl", "forwardKl"], [
    { metric: "reverseKl", threshold: 0.1 },
    { metric: "forwardKl", threshold: 0.1 },
  ]);
  const files = await writeBench(outDir, "vi-mixture", "Gaussian-mixture targets: reverse KL(q || p) against target evaluations", table, results, "reverseKl", "reverse KL(q || p), Monte Carlo", {
    budget: o.budget,
    seed: o.seed,
    settings: VI_MIXTURE_SETTINGS,
    evalDraws: EVAL_DRAWS,
    wallTimeSeconds: (performance.now() - t0) / 1000,
  });
  return { table, files };
}
