/**
 * Gradient transformations in the optax style: an optimiser is `{ init, update }` over an immutable
 * state, and larger optimisers are chains of small blocks:
 *
 *   adam(lr) = chain(scaleByAdam(b1, b2, eps), scale(-lr))
 *
 * Everything here is traceable (use it inside `jit`/`vmap`) and consumes its array arguments.
 * Updates are *added* to parameters: `params <- params + update`.
 */
import { np, type JArray } from "../core/engine.js";
import type { Schedule } from "../core/schedule.js";
import { free, keep, leaves, mapTree as map, type Tree } from "../core/tree.js";

/**
 * An optimiser block over parameter trees of any shape `T`. `update(grads, state, params)` returns
 * `[updates, newState]`; its state is a pytree of arrays.
 */
export interface GradientTransformation {
  init<T extends Tree>(params: T): Tree;
  update<T extends Tree>(grads: T, state: Tree, params?: T): [T, Tree];
}

/** Multiply updates by a constant: u <- s u. */
export function scale(s: number): GradientTransformation {
  return {
    init: (params) => {
      free(params);
      return [];
    },
    update: (grads, state, params) => {
      if (params) free(params);
      return [map((g) => g.mul(s), grads), state];
    },
  };
}

/**
 * Adam's rescaling (Kingma & Ba 2015):
 *   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,   t <- t + 1,
 *   u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 */
export function scaleByAdam(b1 = 0.9, b2 = 0.999, eps = 1e-8): GradientTransformation {
  return {
    init: (params) => ({
      mu: map((p) => np.zerosLike(p), keep(params)),
      nu: map((p) => np.zerosLike(p), params),
      count: np.array(0),
    }),
    update: (grads, state, params) => {
      if (params) free(params);
      const s = state as { mu: typeof grads; nu: typeof grads; count: JArray };
      const count = s.count.add(1);
      const mu = map((m, g) => m.mul(b1).add(g.mul(1 - b1)), s.mu, keep(grads));
      const nu = map((v, g) => v.mul(b2).add(g.ref.mul(g).mul(1 - b2)), s.nu, grads);
      // Bias corrections 1 - b^t, computed in-graph from the step count.
      const c1 = np.exp(count.ref.mul(Math.log(b1))).mul(-1).add(1);
      const c2 = np.exp(count.ref.mul(Math.log(b2))).mul(-1).add(1);
      const c1n = leaves(mu).length;
      const c1s = Array.from({ length: c1n }, () => c1.ref);
      const c2s = Array.from({ length: c1n }, () => c2.ref);
      c1.dispose();
      c2.dispose();
      let i = 0;
      const updates = map(
        (m, v) => {
          const j = i++;
          return m.div(c1s[j]).div(np.sqrt(v.div(c2s[j])).add(eps));
        },
        keep(mu),
        keep(nu),
      );
      return [updates, { mu, nu, count }];
    },
  };
}

/** Compose blocks left to right; the chain's state is the list of its blocks' states. */
export function chain(...blocks: GradientTransformation[]): GradientTransformation {
  return {
    init: (params) => {
      const states = blocks.map((b) => b.init(keep(params)));
      free(params);
      return states;
    },
    update: (grads, state, params) => {
      const states = state as Tree[];
      const out: Tree[] = [];
      let u = grads;
      blocks.forEach((b, i) => {
        const [u2, s2] = b.update(u, states[i], params ? keep(params) : undefined);
        u = u2;
        out.push(s2);
      });
      if (params) free(params);
      return [u, out];
    },
  };
}

/**
 * Multiply updates by a schedule of the number of updates so far: u <- s(t) u, t = 0 for the first
 * update (core/schedule.ts). Its state is the counter t.
 */
export function scaleBySchedule(s: Schedule, sign = 1): GradientTransformation {
  return {
    init: (params) => {
      free(params);
      return { count: np.array(0) };
    },
    update: (grads, state, params) => {
      if (params) free(params);
      const { count } = state as { count: JArray };
      const f = s(count.ref).mul(sign);
      const n = leaves(grads).length;
      const fs = Array.from({ length: n }, () => f.ref);
      f.dispose();
      let i = 0;
      return [map((g) => g.mul(fs[i++]), grads), { count: count.add(1) }];
    },
  };
}

/** The last block of an optimiser: a constant learning rate, or a schedule of the update count. */
function stepBlock(who: string, learningRate: number | Schedule): GradientTransformation {
  if (typeof learningRate === "function") return scaleBySchedule(learningRate, -1);
  if (!(learningRate > 0)) throw new RangeError(`${who}: learningRate must be > 0, got ${learningRate}`);
  return scale(-learningRate);
}

/** Adam: `chain(scaleByAdam(...), scale(-lr))`, or with a learning-rate schedule `scaleBySchedule(lr, -1)`. */
export function adam(learningRate: number | Schedule, b1 = 0.9, b2 = 0.999, eps = 1e-8): GradientTransformation {
  const last = stepBlock("adam", learningRate);
  return chain(scaleByAdam(b1, b2, eps), last);
}

/** Plain SGD: `scale(-lr)`, or `scaleBySchedule(lr, -1)`. */
export function sgd(learningRate: number | Schedule): GradientTransformation {
  return stepBlock("sgd", learningRate);
}

/** params + updates, leafwise (consumes both). */
export function applyUpdates<T extends Tree>(params: T, updates: T): T {
  return map((p, u) => p.add(u), params, updates);
}
