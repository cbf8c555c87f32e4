/**
 * Standard normal draws from explicit keys, cheaper than `random.normal` and exact in distribution up
 * to float32 resolution.
 *
 * Method: the Box-Muller transform (Box & Muller 1958, "A note on the generation of random normal
 * deviates"), using BOTH outputs of each pair. For a pair (u1, u2) of independent uniforms,
 *
 *   r = sqrt(-2 ln u1),  theta = 2 pi u2,  (z1, z2) = (r cos theta, r sin theta)
 *
 * are two independent N(0, 1) draws. The angle is built from the bits of u2 without evaluating a
 * trigonometric function of a large argument: 23 bits give phi uniform on (0, pi/4) and three more bits
 * choose the octant (swap cos/sin: theta -> pi/2 - theta; the signs of z1 and z2: theta -> pi - theta,
 * -theta). Every octant map is a reflection of the circle, so theta stays uniform on (0, 2 pi) and
 * (z1, z2) stays an exact Box-Muller pair. cos and sin on (0, pi/4) are their Taylor polynomials to
 * degree 8 and 9 (truncation error below 3e-8, under float32 rounding), and ln u1 uses its own
 * polynomial (error below 3e-8; jax-js's Wasm `log` is accurate only to ~1e-5).
 *
 * Resolution: u1 takes the 2^23 values (m + 1/2) 2^-23, so |z| is truncated at r = sqrt(48 ln 2) =
 * 5.77 (a tail mass of 2^-24 per pair, the same as any float32 uniform-based sampler); the angle has
 * 2^26 values.
 *
 * jax-js workaround (0.1.25, Wasm): `random.normal` draws two Threefry words per output and evaluates
 * Wasm `cos` and `log`, which dominate its cost (docs/engine-notes.md). This module draws one 32-bit
 * word per output, replaces `cos` by short polynomials on (0, pi/4) and `log` by its own, and draws the
 * bits of a whole pytree in one `random_bits` kernel: ~2x cheaper overall. The transform is elementwise on a `[2, m]`
 * view of each leaf (log and sqrt are evaluated for both outputs of a pair; materialising them per pair
 * was not tried), so it fuses into whatever consumes the noise (the sampler's update).
 */
import { lax, np, random, type JArray, type Key } from "./engine.js";
import { leaves, rebuildFrom } from "./tree.js";

const u32 = (v: number): JArray => np.array(v >>> 0, { dtype: np.uint32 });

/** Horner evaluation of sum_i cs[i] x^i (consumes x). */
function poly(x: JArray, cs: number[]): JArray {
  let acc = x.ref.mul(cs[cs.length - 1]).add(cs[cs.length - 2]);
  for (let i = cs.length - 3; i >= 0; i--) acc = acc.mul(x.ref).add(cs[i]);
  x.dispose();
  return acc;
}

/** Bits [shift, shift + 23) of uint32 `b` as the float (m + 1/2) 2^-23 in (0, 1), computed exactly (consumes b). */
function unit23(b: JArray, shift: number): JArray {
  const m = shift === 9 ? np.rightShift(b, u32(9)) : np.bitwiseAnd(shift === 0 ? b : np.rightShift(b, u32(shift)), u32(0x7fffff));
  // 1 + m 2^-23 is exact in [1, 2); subtracting 1 - 2^-24 (a float32) is exact by Sterbenz's lemma.
  return lax.bitcastConvertType(np.bitwiseOr(m, u32(0x3f800000)), np.float32).sub(1 - 2 ** -24);
}

const SQRT2 = Math.SQRT2;
/**
 * -2 ln u for u in (0, 1) (consumes u): u = f 2^e with f in [sqrt(1/2), sqrt(2)), ln f = 2 atanh(t),
 * t = (f - 1) / (f + 1), |t| < 0.172, series to t^9 (truncation < 3e-9).
 */
function minusTwoLog(u: JArray): JArray {
  const bits = lax.bitcastConvertType(u, np.uint32);
  const e0 = np.rightShift(bits.ref, u32(23)).astype(np.int32).sub(127);
  const f0 = lax.bitcastConvertType(np.bitwiseOr(np.bitwiseAnd(bits, u32(0x7fffff)), u32(0x3f800000)), np.float32);
  const big = f0.ref.greater(SQRT2);
  const f = np.where(big.ref, f0.ref.mul(0.5), f0);
  const e = np.where(big, e0.ref.add(1), e0).astype(np.float32);
  const t = f.ref.sub(1).div(f.add(1));
  const t2 = t.ref.mul(t.ref);
  const lnf = poly(t2, [2, 2 / 3, 2 / 5, 2 / 7, 2 / 9]).mul(t);
  return lnf.add(e.mul(Math.LN2)).mul(-2);
}

/**
 * The Box-Muller pairs of two rows of bits, as a `[2, m]` array: row 0 holds z1 and row 1 holds z2
 * of each pair (consumes b1, b2: uint32 `[1, m]`).
 */
function boxMuller(b1: JArray, b2: JArray): JArray {
  const r = np.sqrt(minusTwoLog(unit23(b1, 9)));
  const phi = unit23(b2.ref, 0).mul(Math.PI / 4);
  const p2 = phi.ref.mul(phi.ref);
  const s = poly(p2.ref, [1, -1 / 6, 1 / 120, -1 / 5040, 1 / 362880]).mul(phi);
  const c = poly(p2, [1, -1 / 2, 1 / 24, -1 / 720, 1 / 40320]);
  // Row index (0 or 1) broadcast over [2, m]: row 0 takes cos unless bit 29 swaps, row 1 the other one.
  const row = np.array(new Uint32Array([0, 1]), { dtype: np.uint32 }).reshape([2, 1]);
  const swap = np.rightShift(b2.ref, u32(29));
  const takeSin = np.bitwiseAnd(np.bitwiseXor(swap, row.ref), u32(1)).notEqual(u32(0));
  const mag = np.where(takeSin, s, c).mul(r);
  // Sign of row 0: bit 31; of row 1: bit 30 (shifted to bit 31 by `<< row`).
  const sign = np.bitwiseAnd(np.leftShift(b2, row), u32(0x80000000));
  return lax.bitcastConvertType(np.bitwiseXor(lax.bitcastConvertType(mag, np.uint32), sign), np.float32);
}

/**
 * Independent standard normal arrays of the given shapes from one key (consumes the key).
 *
 * All the uniform bits come from one `random.bits(key, [2, H])` draw (H = sum of ceil(size / 2));
 * leaf i uses columns [o_i, o_i + ceil(n_i / 2)) of both rows, so different leaves never share bits.
 * Deterministic: the same key and shapes give the same arrays. Works eagerly and inside `jit`.
 *
 * @example
 * const [a, b] = normals(key(0), [[784, 400], [400]]);
 */
export function normals(k: Key, shapes: readonly (readonly number[])[]): JArray[] {
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const halves = sizes.map((n) => Math.ceil(n / 2));
  const total = halves.reduce((a, b) => a + b, 0);
  if (total === 0) {
    k.dispose();
    return shapes.map((s) => np.zeros([...s]));
  }
  const bits = random.bits(k, [2, total]);
  const out: JArray[] = [];
  let off = 0;
  for (let i = 0; i < shapes.length; i++) {
    const m = halves[i];
    if (m === 0) {
      out.push(np.zeros([...shapes[i]]));
      continue;
    }
    const b1 = bits.ref.slice(0, [off, off + m]).reshape([1, m]);
    const b2 = bits.ref.slice(1, [off, off + m]).reshape([1, m]);
    off += m;
    let z = boxMuller(b1, b2).reshape([2 * m]);
    if (2 * m !== sizes[i]) z = z.slice([0, sizes[i]]);
    out.push(z.reshape([...shapes[i]]));
  }
  bits.dispose();
  return out;
}

/**
 * A standard normal array of shape `shape` (consumes the key); see {@link normals}.
 *
 * @example
 * const z = normal(key(0), [1000]);
 */
export function normal(k: Key, shape: readonly number[]): JArray {
  return normals(k, [shape])[0];
}

/**
 * Standard normal draws shaped like every leaf of `like`, with optional leading axes `lead` (borrows
 * `like`, consumes the key), all from one bits draw; see {@link normals}.
 *
 * @example
 * const xi = normalTree(key(0), params);
 */
export function normalTree<T>(k: Key, like: T, lead: readonly number[] = []): T {
  const draws = normals(k, leaves(like).map((a) => [...lead, ...a.shape]));
  return rebuildFrom(like, (_a, i) => draws[i]);
}
