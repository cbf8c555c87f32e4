/**
 * Scalar functions and constants shared by the families: log(2 pi), a numerically stable softplus and
 * its inverse. Each is defined here once.
 */
import { np, type JArray } from "./engine.js";

/** log(2 pi). */
export const LOG_2PI = Math.log(2 * Math.PI);

/**
 * Numerically stable softplus, log(1 + exp(x)), with a finite gradient everywhere. Consumes `x`.
 *
 * jax-js workaround: `nn.softplus` is `log(exp(x) + 1)`, which overflows to inf for x > 88 in float32.
 * Here x > 20 returns x (the difference is below float32 resolution); the double `where` keeps the
 * unused branch's gradient finite.
 */
export function softplus(x: JArray): JArray {
  const big = x.ref.greater(20);
  const safe = np.where(big.ref, np.zerosLike(x.ref), x.ref);
  return np.where(big, x, np.log1p(np.exp(safe)));
}

/** The inverse of {@link softplus} for a host number s > 0: log(exp(s) - 1), computed without overflow. */
export function inverseSoftplus(s: number, what = "scale"): number {
  if (!(s > 0) || !Number.isFinite(s)) throw new RangeError(`${what} must be a finite number > 0, got ${s}`);
  // log(expm1(s)) loses nothing for small s; for large s, s + log(1 - exp(-s)).
  return s > 20 ? s + Math.log1p(-Math.exp(-s)) : Math.log(Math.expm1(s));
}

/**
 * The traced inverse of {@link softplus}: rho = sigma + log(1 - exp(-sigma)) = log(exp(sigma) - 1),
 * finite for every sigma > 0. Consumes `sigma`.
 */
export function inverseSoftplusArray(sigma: JArray): JArray {
  return sigma.ref.add(np.log(np.expm1(sigma.mul(-1)).mul(-1)));
}

/** log N(x; 0, 1) summed over the last axis of `eps` `[n, d]` -> `[n]`. Consumes `eps`. */
export function stdNormalLogProb(eps: JArray): JArray {
  const d = eps.shape[eps.ndim - 1];
  return eps.ref.mul(eps).sum(-1).mul(-0.5).sub(0.5 * d * LOG_2PI);
}

/**
 * Golden-section search for the maximum of a unimodal f on [a, b], until the bracket is narrower than
 * `tol`. Returns the better of the two interior points and its value (f is called about
 * log(tol / (b - a)) / log(0.618) + 2 times).
 */
export function goldenSectionMax(f: (x: number) => number, a: number, b: number, tol: number): { x: number; value: number } {
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > tol) {
    if (fc > fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  return fc > fd ? { x: c, value: fc } : { x: d, value: fd };
}
