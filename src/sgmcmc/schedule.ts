/**
 * Step-size schedules for SG-MCMC, evaluated inside the jitted step from the state's step counter t
 * (t = 0 for the first step), so a state alone determines its next update.
 *
 * - constant:     eps_t = eps0
 * - polynomial:   eps_t = eps0 (1 + t / b)^(-gamma)   (Welling & Teh 2011's a (b + t)^-gamma, with
 *                 a = eps0 b^gamma so that eps_0 = eps0; gamma in (0.5, 1] satisfies Robbins-Monro)
 * - cyclical:     with cycle length L = ceil(totalSteps / cycles) and r_t = (t mod L) / L,
 *                 eps_t = (eps0 / 2) (cos(pi r_t) + 1)   (Zhang et al. 2020, "Cyclical stochastic
 *                 gradient MCMC for Bayesian deep learning", eq. 1). Steps with r_t < beta are the
 *                 exploration stage: the sampler adds no noise there (an optimiser step); steps with
 *                 r_t >= beta are the sampling stage, where samples are collected.
 */
import { np, type JArray } from "../core/engine.js";

/** A schedule's description, as saved in posterior.json. */
export type ScheduleSpec =
  | { kind: "constant"; lr: number }
  | { kind: "polynomial"; lr: number; b: number; gamma: number }
  | { kind: "cyclical"; lr: number; cycles: number; totalSteps: number; explore: number };

/** A schedule: in-graph step size and noise switch, and the host-side view of the same stages. */
export interface Schedule {
  readonly spec: ScheduleSpec;
  /** Step size at step `t` (a float32 scalar array; consumed). */
  lr(t: JArray): JArray;
  /** 1 where noise is added at step `t`, 0 in an exploration stage (consumes `t`). */
  noise(t: JArray): JArray;
  /** Host mirror of `noise`: is step `t` in a sampling stage? */
  sampling(t: number): boolean;
  /** Host: cycle index of step t (0 for non-cyclical schedules). */
  cycle(t: number): number;
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new RangeError(`schedule: ${msg}`);
}

/** Constant step size eps0. */
export function constant(lr: number): Schedule {
  check(lr > 0, `lr must be > 0, got ${lr}`);
  return {
    spec: { kind: "constant", lr },
    lr: (t) => np.zerosLike(t).add(lr),
    noise: (t) => np.onesLike(t),
    sampling: () => true,
    cycle: () => 0,
  };
}

/** Polynomially decaying eps0 (1 + t/b)^-gamma. */
export function polynomial(lr: number, b = 1000, gamma = 0.55): Schedule {
  check(lr > 0, `lr must be > 0, got ${lr}`);
  check(b > 0, `b must be > 0, got ${b}`);
  check(gamma > 0 && gamma <= 1, `gamma must be in (0, 1], got ${gamma}`);
  return {
    spec: { kind: "polynomial", lr, b, gamma },
    lr: (t) => np.exp(np.log1p(t.mul(1 / b)).mul(-gamma)).mul(lr),
    noise: (t) => np.onesLike(t),
    sampling: () => true,
    cycle: () => 0,
  };
}

/** Cyclical cosine schedule with `cycles` cycles over `totalSteps`; exploration for r < explore. */
export function cyclical(lr: number, cycles: number, totalSteps: number, explore = 0.5): Schedule {
  check(lr > 0, `lr must be > 0, got ${lr}`);
  check(Number.isInteger(cycles) && cycles >= 1, `cycles must be a positive integer, got ${cycles}`);
  check(Number.isInteger(totalSteps) && totalSteps >= cycles, `totalSteps (${totalSteps}) must be an integer >= cycles (${cycles})`);
  check(explore >= 0 && explore < 1, `explore (the exploration fraction beta) must be in [0, 1), got ${explore}`);
  const len = Math.ceil(totalSteps / cycles);
  // Position within the cycle, m = t mod L, exact in float32 for t < 2^24; the +0.5 keeps floor()
  // away from rounding at multiples of L. Sampling starts at the integer m0 = ceil(beta L), the same
  // threshold on the host and in the graph.
  const m = (t: JArray) => t.ref.sub(np.floor(t.add(0.5).mul(1 / len)).mul(len));
  const m0 = Math.ceil(explore * len - 1e-9);
  return {
    spec: { kind: "cyclical", lr, cycles, totalSteps, explore },
    lr: (t) => np.cos(m(t).mul(Math.PI / len)).add(1).mul(lr / 2),
    noise: (t) => np.greaterEqual(m(t), m0 - 0.5).astype(np.float32),
    sampling: (t) => t % len >= m0,
    cycle: (t) => Math.floor(t / len),
  };
}
