/**
 * The Box-Muller normal generator of src/core/normal.ts against N(0, 1).
 *
 * Tolerances (n draws, all independent under the null):
 * - mean: sd 1/sqrt(n); variance: sd sqrt(2/n); fourth moment (3): sd sqrt(96/n); skewness: sd sqrt(6/n).
 *   Bounds are 5 sd, so a correct generator fails with probability < 1e-5 per check, while a wrong
 *   scale (e.g. variance off by 1%) or a biased angle fails.
 * - Kolmogorov-Smirnov: sup |F_n - Phi| <= 1.95 / sqrt(n), the 0.001 critical value of the
 *   Kolmogorov distribution (1.95); Phi from a erf approximation with error < 1.5e-7.
 * - Tail mass P(|z| > 3) = 0.0026998: binomial sd sqrt(p (1 - p) / n), bound 5 sd.
 * - Independence: sample correlations (of values, and of squares, which catches a shared radius or a
 *   non-uniform angle) have sd 1/sqrt(n) under independence; bound 5 / sqrt(n).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile, key, np, toHost, type JArray } from "../src/core/engine.js";
import { free } from "../src/core/tree.js";
import { normal, normals, normalTree } from "../src/core/normal.js";

const verbose = process.env.BAYESDL_TEST_VERBOSE === "1";

/** erf, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}
const Phi = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));

function moments(z: Float32Array) {
  let m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  for (const v of z) {
    m1 += v;
    m2 += v * v;
    m3 += v * v * v;
    m4 += v * v * v * v;
  }
  const n = z.length;
  return { mean: m1 / n, m2: m2 / n, m3: m3 / n, m4: m4 / n };
}

function ks(z: Float32Array): number {
  const s = Float64Array.from(z).sort();
  const n = s.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = Phi(s[i]);
    d = Math.max(d, Math.abs(f - i / n), Math.abs((i + 1) / n - f));
  }
  return d;
}

function corr(a: ArrayLike<number>, b: ArrayLike<number>, f: (v: number) => number = (v) => v): number {
  const n = Math.min(a.length, b.length);
  let sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (let i = 0; i < n; i++) {
    const x = f(a[i]), y = f(b[i]);
    sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y;
  }
  const ca = saa / n - (sa / n) ** 2, cb = sbb / n - (sb / n) ** 2;
  return (sab / n - (sa / n) * (sb / n)) / Math.sqrt(ca * cb);
}

test("normal: moments, KS statistic and tail mass match N(0, 1)", async () => {
  const n = 400_001; // odd: the last pair is cut
  const z = await toHost(normal(key(11), [n]));
  assert.equal(z.length, n);
  const m = moments(z);
  const d = ks(z);
  let tail = 0;
  for (const v of z) if (Math.abs(v) > 3) tail++;
  const pTail = 0.0026998;
  if (verbose) console.log({ ...m, ks: d, ksBound: 1.95 / Math.sqrt(n), tail: tail / n });
  assert.ok(Math.abs(m.mean) < 5 / Math.sqrt(n), `mean ${m.mean}`);
  assert.ok(Math.abs(m.m2 - 1) < 5 * Math.sqrt(2 / n), `variance ${m.m2}`);
  assert.ok(Math.abs(m.m3) < 5 * Math.sqrt(15 / n), `third moment ${m.m3}`);
  assert.ok(Math.abs(m.m4 - 3) < 5 * Math.sqrt(96 / n), `fourth moment ${m.m4}`);
  assert.ok(d < 1.95 / Math.sqrt(n), `KS ${d}`);
  assert.ok(Math.abs(tail / n - pTail) < 5 * Math.sqrt((pTail * (1 - pTail)) / n), `tail ${tail / n}`);
  assert.ok(z.every(Number.isFinite));
});

test("normal: the two outputs of a pair, different leaves and different keys are uncorrelated", async () => {
  const m = 100_000;
  const bound = 5 / Math.sqrt(m);
  // One leaf of 2m: entries i and m + i are the two outputs of pair i.
  const [pairs, other] = normals(key(3), [[2 * m], [m]]);
  const zp = await toHost(pairs);
  const zo = await toHost(other);
  const first = zp.subarray(0, m), second = zp.subarray(m);
  const zk = await toHost(normal(key(4), [m]));
  const checks: [string, number][] = [
    ["pair values", corr(first, second)],
    ["pair squares", corr(first, second, (v) => v * v)],
    ["pair |values|", corr(first, second, Math.abs)],
    ["leaf vs leaf", corr(first, zo)],
    ["leaf vs leaf squares", corr(second, zo, (v) => v * v)],
    ["key vs key", corr(zo, zk)],
    ["neighbours", corr(first.subarray(0, m - 1), first.subarray(1))],
  ];
  if (verbose) console.log(Object.fromEntries(checks), { bound });
  for (const [name, c] of checks) assert.ok(Math.abs(c) < bound, `${name}: correlation ${c}`);
  // Each leaf is itself N(0, 1).
  const mo = moments(zo);
  assert.ok(Math.abs(mo.m2 - 1) < 5 * Math.sqrt(2 / m), `second leaf variance ${mo.m2}`);
});

test("normal: deterministic from the key, the same eagerly and under jit, shaped like the tree", async () => {
  const shapes = [[3, 5], [7], [1], [2, 2, 2]];
  const a = normals(key(5), shapes);
  const b = normals(key(5), shapes);
  const jitted = compile((k: JArray) => normals(k, shapes));
  const c = jitted(key(5));
  const d = normals(key(6), shapes);
  for (let i = 0; i < shapes.length; i++) {
    assert.deepEqual(a[i].shape, shapes[i]);
    const [ha, hb, hc, hd] = await Promise.all([toHost(a[i]), toHost(b[i]), toHost(c[i]), toHost(d[i])]);
    assert.deepEqual(ha, hb);
    for (let j = 0; j < ha.length; j++) assert.ok(Math.abs(ha[j] - hc[j]) < 1e-5, `leaf ${i}[${j}]: eager ${ha[j]} vs jit ${hc[j]}`);
    assert.notDeepEqual(ha, hd);
  }
  jitted.dispose();
  const like = { w: np.zeros([4, 3]), b: [np.zeros([2])] };
  const t = normalTree(key(8), like);
  assert.deepEqual(t.w.shape, [4, 3]);
  assert.deepEqual(t.b[0].shape, [2]);
  free(like);
  free(t);
});
