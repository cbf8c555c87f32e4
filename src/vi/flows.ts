/**
 * Normalizing-flow variational families over flat vectors (implementations of {@link Family}).
 *
 * A flow pushes a standard normal eps ~ N(0, I_d) through K invertible layers and then through a
 * learned elementwise affine map:
 *
 *   x_0 = eps,   x_k = f_k(x_{k-1}) (k = 1..K),   theta = m + s ⊙ x_K,   s = exp(logScale),
 *
 *   log q(theta) = log N(eps; 0, I) - sum_k log|det df_k/dx| - sum_i log s_i.
 *
 * With K = 0 this is exactly the diagonal Gaussian N(m, diag(s^2)). The affine map is applied last
 * (rather than first) so the layers always work on standardised coordinates of order one, whatever
 * the posterior's location and scale: the conditioners' tanh units never saturate just because the
 * posterior mean is far from zero or its scale is tiny. Every layer is initialised to the identity,
 * so a fresh flow equals N(mean, scale^2 I).
 *
 * Two layer types:
 * - {@link realNvp}: affine coupling layers (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation
 *   using Real NVP"). Analytically invertible; `logProb` at any theta is exact.
 * - {@link planar}: planar flows (Rezende & Mohamed 2015, "Variational inference with normalizing
 *   flows"), f(x) = x + û tanh(w·x + b). We chose planar over IAF (Kingma et al. 2016) because
 *   both costs stay O(d) per layer: IAF's inverse needs d sequential network passes (O(d^2 hidden)
 *   per layer, hopeless for last-layer posteriors with d in the thousands), whereas the planar
 *   inverse reduces to one monotone scalar equation per sample and layer (see {@link planar}),
 *   which we solve to float precision by safeguarded Newton. So `logProb` at arbitrary theta, and
 *   its gradient in theta (the score proximal score-VI needs), is available for both flows.
 *
 * Cost per layer is O(n d hidden) for coupling layers and O(n d) for planar layers, so d up to a
 * few thousand is fine.
 */
import { lax, nn, np, random, split, type JArray, type Key } from "../core/engine.js";
import { stdNormalLogProb } from "../core/math.js";
import type { Tree } from "../core/tree.js";
import type { Family } from "./family.js";

/** The learned elementwise affine map theta = loc + exp(logScale) ⊙ x. Both `[d]`. */
export type AffineParams = { loc: JArray; logScale: JArray };

/** Variational parameters of a flow: the final affine map and K layers (applied in order). */
export type FlowParams<L extends Tree> = { base: AffineParams; layers: L[] };

/**
 * One affine coupling layer's conditioner, a one-hidden-layer tanh MLP:
 * h = tanh(x_c W1 + b1), raw log-scale = h Ws + bs, shift = h Wt + bt.
 * Shapes: w1 `[d, hidden]`, b1 `[hidden]`, ws/wt `[hidden, d]`, bs/bt `[d]`.
 */
export type CouplingLayer = { w1: JArray; b1: JArray; ws: JArray; bs: JArray; wt: JArray; bt: JArray };

/** One planar layer: u `[d]`, w `[d]`, b scalar `[]`. */
export type PlanarLayer = { u: JArray; w: JArray; b: JArray };

/** A normalizing-flow family: a {@link Family} that also exposes the flow map and its inverse. */
export interface Flow<L extends Tree> extends Family<FlowParams<L>> {
  /** Number of flow layers K (not counting the affine map). */
  readonly layers: number;
  /**
   * theta = T(eps) and log|det dT/deps| for eps `[n, d]`: returns `[theta [n, d], logDet [n]]`.
   * Consumes both arguments.
   */
  forward(q: FlowParams<L>, eps: JArray): [JArray, JArray];
  /**
   * eps = T^{-1}(theta) and log|det dT^{-1}/dtheta| for theta `[n, d]`: returns `[eps, logDet [n]]`.
   * Consumes both arguments.
   */
  inverse(q: FlowParams<L>, theta: JArray): [JArray, JArray];
}


/** What a layer type provides to {@link makeFlow}. Functions consume their array arguments. */
interface LayerKind<L extends Tree> {
  init(key: Key, index: number): L;
  forward(p: L, x: JArray, index: number): [JArray, JArray];
  inverse(p: L, y: JArray, index: number): [JArray, JArray];
}

function checkTheta(op: string, name: string, d: number, theta: JArray): void {
  if (theta.ndim !== 2 || theta.shape[1] !== d) {
    const shape = `[${theta.shape.join(", ")}]`;
    theta.dispose();
    throw new Error(`${name}.${op}: argument 'theta' must have shape [n, ${d}], got ${shape}`);
  }
}

function checkCount(op: string, name: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name}.${op}: argument 'n' must be a positive integer, got ${n}`);
}

function checkInit(name: string, d: number, mean: JArray, scale: number): void {
  if (mean.ndim !== 1 || mean.shape[0] !== d) {
    const shape = `[${mean.shape.join(", ")}]`;
    mean.dispose();
    throw new Error(`${name}.init: argument 'mean' must have shape [${d}], got ${shape}`);
  }
  if (!(scale > 0) || !Number.isFinite(scale)) {
    mean.dispose();
    throw new RangeError(`${name}.init: argument 'scale' must be a positive finite number, got ${scale}`);
  }
}

/** Assemble a {@link Flow} from a layer kind (shared by every flow here). */
function makeFlow<L extends Tree>(name: string, d: number, nLayers: number, kind: LayerKind<L>, options: Readonly<Record<string, number>>): Flow<L> {
  const forward = (q: FlowParams<L>, eps: JArray): [JArray, JArray] => {
    const n = eps.shape[0];
    let x = eps;
    let ld = np.zeros([n]).add(q.base.logScale.ref.sum());
    q.layers.forEach((p, i) => {
      const [y, l] = kind.forward(p, x, i);
      x = y;
      ld = ld.add(l);
    });
    const theta = x.mul(np.exp(q.base.logScale).reshape([1, d])).add(q.base.loc.reshape([1, d]));
    return [theta, ld];
  };
  const inverse = (q: FlowParams<L>, theta: JArray): [JArray, JArray] => {
    const n = theta.shape[0];
    let ld = np.zeros([n]).sub(q.base.logScale.ref.sum());
    let x = theta.sub(q.base.loc.reshape([1, d])).mul(np.exp(q.base.logScale.neg()).reshape([1, d]));
    for (let i = q.layers.length - 1; i >= 0; i--) {
      const [y, l] = kind.inverse(q.layers[i], x, i);
      x = y;
      ld = ld.add(l);
    }
    return [x, ld];
  };
  return {
    name,
    dim: d,
    options,
    layers: nLayers,
    init(key, mean, scale) {
      try {
        checkInit(name, d, mean, scale);
      } catch (e) {
        key.dispose();
        throw e;
      }
      const layers: L[] = [];
      if (nLayers === 0) key.dispose();
      else split(key, nLayers).forEach((k, i) => layers.push(kind.init(k, i)));
      return { base: { loc: mean.astype(np.float32), logScale: np.full([d], Math.log(scale)) }, layers };
    },
    forward,
    inverse,
    sample(key, q, n) {
      checkCount("sample", name, n);
      const [theta, ld] = forward(q, random.normal(key, [n, d]));
      ld.dispose();
      return theta;
    },
    sampleAndLogProb(key, q, n) {
      checkCount("sampleAndLogProb", name, n);
      const eps = random.normal(key, [n, d]);
      const base = stdNormalLogProb(eps.ref);
      const [theta, ld] = forward(q, eps);
      return [theta, base.sub(ld)];
    },
    logProb(q, theta) {
      checkTheta("logProb", name, d, theta);
      const [eps, ld] = inverse(q, theta);
      return stdNormalLogProb(eps).add(ld);
    },
  };
}

/** Options of {@link realNvp}. */
export interface RealNvpOptions {
  /** Number of coupling layers K (default 4). */
  layers?: number;
  /** Hidden units of each conditioner MLP (default 32). */
  hidden?: number;
  /** Bound c of each layer's log scale, soft-clamped as c tanh(raw / c) (default 2). */
  scaleBound?: number;
}

/**
 * Coupling masks, cycling every four layers: even indices / odd indices / first half / second
 * half are the conditioning (unchanged) coordinates (1 in the mask). Alternating parity and halves
 * lets every coordinate condition on every other within four layers without permutations.
 */
function keptMask(d: number, index: number): Float32Array {
  const kept = new Float32Array(d);
  const half = Math.floor(d / 2);
  const pattern = index % 4;
  for (let i = 0; i < d; i++) {
    kept[i] = pattern === 0 ? +(i % 2 === 0) : pattern === 1 ? +(i % 2 === 1) : pattern === 2 ? +(i < half) : +(i >= half);
  }
  return kept;
}

/** `[kept, changed]` masks of layer `index` as float32 `[1, d]` constants. */
function couplingMasks(d: number, index: number): [JArray, JArray] {
  const kept = keptMask(d, index);
  const changed = kept.map((v) => 1 - v);
  return [np.array(kept).reshape([1, d]), np.array(changed).reshape([1, d])];
}

/**
 * A RealNVP flow family: K affine coupling layers (Dinh et al. 2017) on a learned diagonal
 * Gaussian base.
 *
 * Layer k with a binary mask b (1 = conditioning coordinate) maps
 *
 *   y = x ⊙ exp(s(b ⊙ x)) + t(b ⊙ x),   s, t zero on the conditioning coordinates,
 *   log|det dy/dx| = sum_i s_i(b ⊙ x),
 *
 * where [s_raw, t] come from a tanh MLP of b ⊙ x and s = c tanh(s_raw / c) keeps each log scale in
 * (-c, c). The inverse is x = (y - t(b ⊙ y)) ⊙ exp(-s(b ⊙ y)) (b ⊙ y = b ⊙ x), so `logProb` is exact.
 * Masks alternate parity and halves (see the module docs). The conditioners' output weights start at
 * zero, so a fresh flow is its base N(mean, scale^2 I). Per-layer cost O(n d hidden).
 *
 * @param d dimension (at least 2).
 * @example
 * const fam = realNvp(2, { layers: 6, hidden: 32 });
 * let q = fam.init(key(0), np.zeros([2]), 1);
 * const [theta, logq] = fam.sampleAndLogProb(key(1), q, 256); // [256, 2], [256]
 */
export function realNvp(d: number, opts: RealNvpOptions = {}): Flow<CouplingLayer> {
  const layers = opts.layers ?? 4;
  const hidden = opts.hidden ?? 32;
  const bound = opts.scaleBound ?? 2;
  if (!Number.isInteger(d) || d < 2) throw new RangeError(`realNvp: argument 'd' must be an integer >= 2 (a coupling layer needs two parts), got ${d}`);
  if (!Number.isInteger(layers) || layers < 0) throw new RangeError(`realNvp: option 'layers' must be a non-negative integer, got ${layers}`);
  if (!Number.isInteger(hidden) || hidden < 1) throw new RangeError(`realNvp: option 'hidden' must be a positive integer, got ${hidden}`);
  if (!(bound > 0)) throw new RangeError(`realNvp: option 'scaleBound' must be positive, got ${bound}`);

  // Conditioner: [s, t] for the masked input xm `[n, d]`; consumes p, xm and changed.
  const conditioner = (p: CouplingLayer, xm: JArray, changed: JArray): [JArray, JArray] => {
    const h = np.tanh(np.matmul(xm, p.w1).add(p.b1));
    const raw = np.matmul(h.ref, p.ws).add(p.bs);
    const s = np.tanh(raw.mul(1 / bound)).mul(bound).mul(changed.ref);
    const t = np.matmul(h, p.wt).add(p.bt).mul(changed);
    return [s, t];
  };
  return makeFlow<CouplingLayer>("realnvp", d, layers, {
    init(k, index) {
      const nIn = Math.max(1, keptMask(d, index).reduce((a, v) => a + v, 0));
      return {
        w1: random.normal(k, [d, hidden]).mul(1 / Math.sqrt(nIn)),
        b1: np.zeros([hidden]),
        ws: np.zeros([hidden, d]),
        bs: np.zeros([d]),
        wt: np.zeros([hidden, d]),
        bt: np.zeros([d]),
      };
    },
    forward(p, x, index) {
      const [kept, changed] = couplingMasks(d, index);
      const [s, t] = conditioner(p, x.ref.mul(kept), changed);
      const y = x.mul(np.exp(s.ref)).add(t);
      return [y, s.sum(-1)];
    },
    inverse(p, y, index) {
      const [kept, changed] = couplingMasks(d, index);
      const [s, t] = conditioner(p, y.ref.mul(kept), changed);
      const x = y.sub(t).mul(np.exp(s.ref.neg()));
      return [x, s.sum(-1).neg()];
    },
  }, { layers, hidden, scaleBound: bound });
}

/** Options of {@link planar}. */
export interface PlanarOptions {
  /** Number of planar layers K (default 8). */
  layers?: number;
  /**
   * Safeguarded-Newton iterations of the inverse (default 24; see {@link planar}). 24 halvings of the
   * bracket [a' - |c|, a' + |c|] reach float32 resolution even where Newton makes no progress (c near
   * -1); measured near w·û = -0.986: 16 and 24 iterations give round-off-level errors, 8 gives 2e-2.
   */
  inverseIterations?: number;
}

/** ln(e - 1): softplus(x + ln(e - 1)) - 1 vanishes at x = 0. */
const SHIFT = Math.log(Math.E - 1);

/**
 * û = u + (m(w·u) - w·u) w / |w|^2 and c = w·û = m(w·u), with m(x) = softplus(x + ln(e-1)) - 1.
 * Consumes u and w (returns the w it was given back as the third element).
 */
function planarUhat(u: JArray, w: JArray): [JArray, JArray, JArray] {
  const wu = w.ref.mul(u.ref).sum();
  const c = nn.softplus(wu.ref.add(SHIFT)).sub(1);
  const ww = w.ref.mul(w.ref).sum();
  const uh = u.add(w.ref.mul(c.ref.sub(wu).div(ww)));
  return [uh, c, w];
}

/**
 * A planar flow family: K planar layers (Rezende & Mohamed 2015) on a learned diagonal Gaussian base.
 *
 *   f(x) = x + û tanh(w·x + b),   log|det df/dx| = log(1 + (1 - tanh^2(w·x + b)) w·û),
 *
 * with û = u + (m(w·u) - w·u) w/|w|^2 so that w·û = m(w·u) > -1, which makes f invertible
 * (Rezende & Mohamed 2015, appendix A). We use m(x) = softplus(x + ln(e-1)) - 1, the paper's
 * m(x) = -1 + log(1 + e^x) shifted so m(0) = 0: then u = 0 gives û = 0 and a fresh layer is the
 * identity (w starts at N(0, 1/d), b at 0).
 *
 * Inverse (not analytic, but one scalar equation): with a = w·x and a' = w·y, a' = a + c tanh(a + b),
 * c = w·û > -1, is strictly increasing in a, and its root lies in [a' - |c|, a' + |c|]. We solve it
 * by Newton's method safeguarded by bisection on that bracket (`inverseIterations` steps, under
 * stop-gradient), then take one more, differentiable Newton step: at the root it has exactly the
 * implicit-function derivative in theta and in q, so `grad` of `logProb` is exact. Then
 * x = y - û tanh(a + b). Inverse accuracy is float32 round-off (checked in test/vi-flows.test.ts).
 *
 * @param d dimension (at least 1).
 * @example
 * const fam = planar(1000, { layers: 8 });
 * const q = fam.init(key(0), np.zeros([1000]), 0.1);
 * const lp = fam.logProb(keep(q), fam.sample(key(1), q, 16)); // [16]
 */
export function planar(d: number, opts: PlanarOptions = {}): Flow<PlanarLayer> {
  const layers = opts.layers ?? 8;
  const iters = opts.inverseIterations ?? 24;
  if (!Number.isInteger(d) || d < 1) throw new RangeError(`planar: argument 'd' must be a positive integer, got ${d}`);
  if (!Number.isInteger(layers) || layers < 0) throw new RangeError(`planar: option 'layers' must be a non-negative integer, got ${layers}`);
  if (!Number.isInteger(iters) || iters < 0) throw new RangeError(`planar: option 'inverseIterations' must be a non-negative integer, got ${iters}`);

  return makeFlow<PlanarLayer>("planar", d, layers, {
    init(k) {
      return { u: np.zeros([d]), w: random.normal(k, [d]).mul(1 / Math.sqrt(d)), b: np.zeros([]) };
    },
    forward(p, x) {
      const n = x.shape[0];
      const [uh, c, w] = planarUhat(p.u, p.w);
      const h = np.tanh(np.matmul(x.ref, w.reshape([d, 1])).reshape([n]).add(p.b));
      const y = x.add(h.ref.reshape([n, 1]).mul(uh.reshape([1, d])));
      const ld = np.log(h.ref.mul(h).neg().add(1).mul(c).add(1));
      return [y, ld];
    },
    inverse(p, y) {
      const n = y.shape[0];
      const [uh, c, w] = planarUhat(p.u, p.w);
      const ap = np.matmul(y.ref, w.reshape([d, 1])).reshape([n]);
      // Root of g(a) = a + c tanh(a + b) - a' by safeguarded Newton, without gradients.
      const apS = lax.stopGradient(ap.ref);
      const cS = lax.stopGradient(c.ref);
      const bS = lax.stopGradient(p.b.ref);
      const width = np.abs(cS.ref);
      let lo = apS.ref.sub(width.ref);
      let hi = apS.ref.add(width);
      let a = apS.ref;
      for (let i = 0; i < iters; i++) {
        const th = np.tanh(a.ref.add(bS.ref));
        const g = a.ref.add(th.ref.mul(cS.ref)).sub(apS.ref);
        const gp = th.ref.mul(th).neg().add(1).mul(cS.ref).add(1);
        const neg = g.ref.less(0);
        lo = np.where(neg.ref, a.ref, lo);
        hi = np.where(neg, hi, a.ref);
        const an = a.sub(g.div(gp));
        const inside = np.logicalAnd(an.ref.greater(lo.ref), an.ref.less(hi.ref));
        a = np.where(inside, an, lo.ref.add(hi.ref).mul(0.5));
      }
      lo.dispose();
      hi.dispose();
      apS.dispose();
      cS.dispose();
      bS.dispose();
      // One differentiable Newton step from the (stopped) root: exact implicit derivatives there.
      const a0 = lax.stopGradient(a);
      const th0 = np.tanh(a0.ref.add(p.b.ref));
      const g0 = a0.ref.add(th0.ref.mul(c.ref)).sub(ap);
      const gp0 = th0.ref.mul(th0).neg().add(1).mul(c.ref).add(1);
      const root = a0.sub(g0.div(gp0));
      const h = np.tanh(root.add(p.b));
      const x = y.sub(h.ref.reshape([n, 1]).mul(uh.reshape([1, d])));
      const ld = np.log(h.ref.mul(h).neg().add(1).mul(c).add(1)).neg();
      return [x, ld];
    },
  }, { layers, inverseIterations: iters });
}
