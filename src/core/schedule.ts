/**
 * Schedules: the one type for every quantity that changes with the step counter (step sizes, the
 * noise gate of cyclical samplers, KL weights, proximal strengths).
 *
 * A schedule is a traced function of the step counter t (a float32 array, t = 0 for the first step):
 * every formula is elementwise, so the same function gives one step's value inside `jit` and a whole
 * run's values on the host ({@link scheduleValues}). States carry their counter, so a state alone
 * determines its next update. `spec` describes the schedule in JSON (saved with a run's options).
 *
 *   constant(c):                 c
 *   polynomial(c, b, gamma):     c (1 + t / b)^(-gamma)             (Welling & Teh 2011's a (b + t)^-gamma,
 *                                                                   a = c b^gamma, so that the value at t = 0 is c)
 *   cyclicalCosine(c, C, T):     (c / 2) (cos(pi m_t / L) + 1)       (Zhang et al. 2020, eq. 1)
 *   cyclicalGate(C, T, beta):    1 if m_t >= ceil(beta L) else 0    (their sampling stage)
 *   linearWarmup(c, W):          c min(1, (t + 1) / W)
 *   halvingCycle(M):             M 2^-i / (1 - 2^-M),  i = t mod M + 1   (Blundell et al. 2015, eq. 9)
 *   inverseTime(c):              c / (t + 1)                        (BaM's lambda_t, Cai et al. 2024)
 *   stepDrop(c, t0, r):          c for t < t0, r c after            (a sampler's burn-in, then its sampling stage)
 *
 * with L = ceil(T / C) the cycle length of a run of T steps in C cycles and m_t = t mod L.
 */
import { np, type JArray } from "./engine.js";

/** A schedule's JSON description. */
export type ScheduleSpec =
  | { readonly kind: "constant"; readonly value: number }
  | { readonly kind: "polynomial"; readonly value: number; readonly b: number; readonly gamma: number }
  | { readonly kind: "cyclicalCosine"; readonly value: number; readonly cycles: number; readonly totalSteps: number }
  | { readonly kind: "cyclicalGate"; readonly cycles: number; readonly totalSteps: number; readonly explore: number }
  | { readonly kind: "linearWarmup"; readonly value: number; readonly warmupSteps: number }
  | { readonly kind: "halvingCycle"; readonly batchesPerEpoch: number }
  | { readonly kind: "inverseTime"; readonly value: number }
  | { readonly kind: "stepDrop"; readonly value: number; readonly at: number; readonly factor: number }
  | { readonly kind: "custom"; readonly description: string };

/** A value as a traced function of the step counter (consumes `t`); elementwise in `t`. */
export interface Schedule {
  (t: JArray): JArray;
  readonly spec: ScheduleSpec;
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new RangeError(`schedule: ${msg}`);
}

function make(spec: ScheduleSpec, f: (t: JArray) => JArray): Schedule {
  return Object.assign(f, { spec });
}

/** A number as a constant schedule; a schedule as itself. */
export function asSchedule(v: number | Schedule, what = "value"): Schedule {
  if (typeof v === "function") return v;
  if (typeof v !== "number") throw new TypeError(`${what} must be a number or a schedule (core/schedule.ts), got ${JSON.stringify(v)}`);
  check(Number.isFinite(v), `${what} must be a finite number, got ${v}`);
  return constant(v);
}

/** The constant c. */
export function constant(c: number): Schedule {
  check(Number.isFinite(c), `a constant must be finite, got ${c}`);
  return make({ kind: "constant", value: c }, (t) => np.zerosLike(t).add(c));
}

/** c (1 + t/b)^-gamma: a Robbins-Monro decay for gamma in (0.5, 1]. */
export function polynomial(c: number, b = 1000, gamma = 0.55): Schedule {
  check(c > 0, `polynomial: the initial value must be > 0, got ${c}`);
  check(b > 0, `polynomial: b must be > 0, got ${b}`);
  check(gamma > 0 && gamma <= 1, `polynomial: gamma must be in (0, 1], got ${gamma}`);
  return make({ kind: "polynomial", value: c, b, gamma }, (t) => np.exp(np.log1p(t.mul(1 / b)).mul(-gamma)).mul(c));
}

/** Cycle length and the traced position m_t = t mod L within the cycle (exact in float32 for t < 2^24). */
function cyclePosition(cycles: number, totalSteps: number): { len: number; m: (t: JArray) => JArray } {
  check(Number.isInteger(cycles) && cycles >= 1, `cycles must be a positive integer, got ${cycles}`);
  check(Number.isInteger(totalSteps) && totalSteps >= cycles, `totalSteps (${totalSteps}) must be an integer >= cycles (${cycles})`);
  const len = Math.ceil(totalSteps / cycles);
  // The +0.5 keeps floor() away from rounding at multiples of L.
  return { len, m: (t) => t.ref.sub(np.floor(t.add(0.5).mul(1 / len)).mul(len)) };
}

/** Steps of a cycle of `len` steps spent exploring (the gate's traced and host forms both use it). */
function exploreSteps(explore: number, len: number): number {
  return Math.ceil(explore * len - 1e-9);
}

/** (c / 2) (cos(pi m_t / L) + 1): restarts at c at the start of each of `cycles` cycles of a `totalSteps` run. */
export function cyclicalCosine(c: number, cycles: number, totalSteps: number): Schedule {
  check(c > 0, `cyclicalCosine: the initial value must be > 0, got ${c}`);
  const { len, m } = cyclePosition(cycles, totalSteps);
  return make({ kind: "cyclicalCosine", value: c, cycles, totalSteps }, (t) => np.cos(m(t).mul(Math.PI / len)).add(1).mul(c / 2));
}

/**
 * 0 in the first fraction `explore` of each cycle (the exploration stage), 1 after it (the sampling
 * stage). The threshold is the integer ceil(explore L), so {@link gateOpen} can mirror it exactly.
 */
export function cyclicalGate(cycles: number, totalSteps: number, explore: number): Schedule {
  check(explore >= 0 && explore < 1, `cyclicalGate: the exploration fraction must be in [0, 1), got ${explore}`);
  const { len, m } = cyclePosition(cycles, totalSteps);
  const m0 = exploreSteps(explore, len);
  return make({ kind: "cyclicalGate", cycles, totalSteps, explore }, (t) => np.greaterEqual(m(t), m0 - 0.5).astype(np.float32));
}

/**
 * Host mirror of a {@link cyclicalGate} (any other schedule is open at every step): whether step t is in
 * a sampling stage, and the cycle it belongs to. Integer arithmetic, exact for every t.
 */
export function gateOpen(s: Schedule, t: number): { open: boolean; cycle: number } {
  if (s.spec.kind !== "cyclicalGate") return { open: true, cycle: 0 };
  const len = Math.ceil(s.spec.totalSteps / s.spec.cycles);
  const m0 = exploreSteps(s.spec.explore, len);
  return { open: t % len >= m0, cycle: Math.floor(t / len) };
}

/** c min(1, (t + 1) / W): a linear warm-up to c over W steps. */
export function linearWarmup(c: number, warmupSteps: number): Schedule {
  check(Number.isInteger(warmupSteps) && warmupSteps >= 1, `linearWarmup: warmupSteps must be a positive integer, got ${warmupSteps}`);
  return make({ kind: "linearWarmup", value: c, warmupSteps }, (t) => np.minimum(t.add(1).mul(1 / warmupSteps), 1).mul(c));
}

/**
 * Blundell et al.'s minibatch weights pi_i = 2^(M-i) / (2^M - 1), scaled by M so that they average to 1
 * over an epoch of M minibatches: M 2^-i / (1 - 2^-M), i = (t mod M) + 1 (written to avoid 2^M).
 */
export function halvingCycle(batchesPerEpoch: number): Schedule {
  const m = batchesPerEpoch;
  check(Number.isInteger(m) && m >= 1, `halvingCycle: batchesPerEpoch must be a positive integer, got ${m}`);
  const denom = -Math.expm1(-m * Math.LN2);
  return make({ kind: "halvingCycle", batchesPerEpoch: m }, (t) => {
    const i = t.ref.sub(np.floor(t.mul(1 / m)).mul(m)).add(1);
    return np.exp(i.mul(-Math.LN2)).mul(m / denom);
  });
}

/** c / (t + 1). */
export function inverseTime(c: number): Schedule {
  check(c > 0, `inverseTime: c must be > 0, got ${c}`);
  return make({ kind: "inverseTime", value: c }, (t) => np.zerosLike(t.ref).add(c).div(t.add(1)));
}

/** c for the first `at` steps (t < at), then r c: one drop, e.g. at the end of a sampler's burn-in. */
export function stepDrop(c: number, at: number, factor: number): Schedule {
  check(c > 0, `stepDrop: the initial value must be > 0, got ${c}`);
  check(Number.isInteger(at) && at >= 0, `stepDrop: the drop step must be an integer >= 0, got ${at}`);
  check(factor > 0 && factor <= 1, `stepDrop: the factor must be in (0, 1], got ${factor}`);
  // The -0.5 keeps the comparison away from rounding at t = at.
  return make({ kind: "stepDrop", value: c, at, factor }, (t) => np.less(t, at - 0.5).astype(np.float32).mul(c * (1 - factor)).add(c * factor));
}

/**
 * The step-size schedule an option `--schedule` names, over a run of `totalSteps`: the constant `c`,
 * c (1 + t/b)^-0.55 with b a tenth of the run, or c until step `dropAt` and `factor` c after it.
 */
export function namedSchedule(kind: "constant" | "polynomial" | "drop", c: number, totalSteps: number, dropAt: number, factor: number): number | Schedule {
  if (kind === "polynomial") return polynomial(c, Math.max(1, totalSteps / 10), 0.55);
  if (kind === "drop") return stepDrop(c, dropAt, factor);
  return c;
}

/**
 * A schedule from any elementwise traced function of the step counter, described in words (saved with a
 * run's options).
 * @example
 * const lambda = customSchedule("20 + 0.2 t", (t) => t.mul(0.2).add(20));
 */
export function customSchedule(description: string, f: (t: JArray) => JArray): Schedule {
  return make({ kind: "custom", description }, f);
}

/** The schedule's values at steps 0..steps-1 on the host (one eager evaluation of the same formula). */
export async function scheduleValues(s: Schedule, steps: number): Promise<Float32Array> {
  const t = np.arange(steps).astype(np.float32);
  const v = await s(t).data();
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}
