/**
 * Dense float64 linear algebra (src/core/linalg.ts) against exact answers: hand-computed eigensystems
 * and factors, and for seeded random matrices the defining identities (A = V diag(w) V^T with V
 * orthogonal, A = L L^T, L X = B, Q^T Q = I and Q Q^T A = A) with stated tolerances.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  cholesky,
  logDetCholesky,
  matmul,
  nystromEig,
  qrOrthonormal,
  invertLower,
  solveLower,
  solveLowerTranspose,
  symEig,
  symmetrise,
  transpose,
} from "../src/core/linalg.js";

/** A seeded uniform generator on [-1, 1) (mulberry32), so every input here is deterministic. */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

/** An m x n matrix of seeded uniforms on [-1, 1). */
function randomMatrix(m: number, n: number, seed: number): Float64Array {
  const rnd = uniform(seed);
  const a = new Float64Array(m * n);
  for (let i = 0; i < a.length; i++) a[i] = rnd();
  return a;
}

/** A seeded random symmetric n x n matrix. */
function randomSymmetric(n: number, seed: number): Float64Array {
  return symmetrise(randomMatrix(n, n, seed), n);
}

/** A seeded random symmetric positive definite n x n matrix, B B^T / n + I. */
function randomSpd(n: number, seed: number): Float64Array {
  const b = randomMatrix(n, n, seed);
  const a = matmul(b, transpose(b, n, n), n, n, n);
  for (let i = 0; i < n * n; i++) a[i] /= n;
  for (let i = 0; i < n; i++) a[i * n + i] += 1;
  return a;
}

/** Frobenius norm. */
function frob(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/** Frobenius norm of a - b. */
function frobDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** The n x n identity. */
function identity(n: number): Float64Array {
  const e = new Float64Array(n * n);
  for (let i = 0; i < n; i++) e[i * n + i] = 1;
  return e;
}

/** V diag(w) V^T for an n x n V (eigenvectors in columns). */
function reconstruct(values: Float64Array, vectors: Float64Array, n: number): Float64Array {
  const vd = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vd[i * n + j] = vectors[i * n + j] * values[j];
  return matmul(vd, transpose(vectors, n, n), n, n, n);
}

/** Asserts ||V diag(w) V^T - A|| / ||A|| < tol, ||V^T V - I|| < tol, and w ascending. */
function assertEigensystem(a: Float64Array, n: number, tol: number): { values: Float64Array; vectors: Float64Array } {
  const { values, vectors } = symEig(a, n);
  assert.equal(values.length, n);
  assert.equal(vectors.length, n * n);
  for (let j = 1; j < n; j++) assert.ok(values[j - 1] <= values[j], `eigenvalues not ascending at ${j}`);
  const rel = frobDiff(reconstruct(values, vectors, n), a) / frob(a);
  assert.ok(rel < tol, `reconstruction error ${rel} >= ${tol}`);
  const orth = frobDiff(matmul(transpose(vectors, n, n), vectors, n, n, n), identity(n));
  assert.ok(orth < tol, `orthogonality error ${orth} >= ${tol}`);
  return { values, vectors };
}

/** Asserts |x - y| <= tol. */
function close(x: number, y: number, tol: number, what = "value"): void {
  assert.ok(Math.abs(x - y) <= tol, `${what}: ${x} vs ${y} (tolerance ${tol})`);
}

/** Asserts column j of the n x n V equals +-v (unit v), to within tol. */
function assertColumnUpToSign(vectors: Float64Array, n: number, j: number, v: number[], tol: number): void {
  const col = Array.from({ length: n }, (_, i) => vectors[i * n + j]);
  const sign = col.reduce((s, c, i) => s + c * v[i], 0) >= 0 ? 1 : -1;
  for (let i = 0; i < n; i++) close(col[i], sign * v[i], tol, `eigenvector ${j}, entry ${i}`);
}

test("symEig: 2x2 [[2, 1], [1, 2]] has eigenvalues 1, 3 with eigenvectors (1, -1)/sqrt2, (1, 1)/sqrt2", () => {
  const { values, vectors } = symEig(new Float64Array([2, 1, 1, 2]), 2);
  close(values[0], 1, 1e-15, "w0");
  close(values[1], 3, 1e-15, "w1");
  const r = Math.SQRT1_2;
  assertColumnUpToSign(vectors, 2, 0, [r, -r], 1e-15);
  assertColumnUpToSign(vectors, 2, 1, [r, r], 1e-15);
});

test("symEig: 3x3 second-difference matrix has eigenvalues 2 - sqrt2, 2, 2 + sqrt2 and the known eigenvectors", () => {
  // tridiag(-1, 2, -1): eigenvalues 2 - 2 cos(k pi / 4), eigenvectors sin(j k pi / 4), k = 1, 2, 3;
  // computed to a few ulps of ||A|| = 4, hence the tolerance 1e-14.
  const a = new Float64Array([2, -1, 0, -1, 2, -1, 0, -1, 2]);
  const { values, vectors } = assertEigensystem(a, 3, 1e-14);
  close(values[0], 2 - Math.SQRT2, 1e-14, "w0");
  close(values[1], 2, 1e-14, "w1");
  close(values[2], 2 + Math.SQRT2, 1e-14, "w2");
  assertColumnUpToSign(vectors, 3, 0, [0.5, Math.SQRT1_2, 0.5], 1e-14);
  assertColumnUpToSign(vectors, 3, 1, [Math.SQRT1_2, 0, -Math.SQRT1_2], 1e-14);
  assertColumnUpToSign(vectors, 3, 2, [0.5, -Math.SQRT1_2, 0.5], 1e-14);
});

test("symEig: random symmetric n = 50 and n = 200 reconstruct to 1e-12 with orthonormal eigenvectors; the input is untouched", () => {
  for (const [n, seed] of [
    [50, 1],
    [200, 2],
  ]) {
    const a = randomSymmetric(n, seed);
    const copy = Float64Array.from(a);
    assertEigensystem(a, n, 1e-12);
    assert.deepEqual(a, copy);
  }
});

test("symEig: repeated eigenvalues (multiplicities 5, 10, 1, 34 at n = 50) are recovered to 1e-12", () => {
  const n = 50;
  const q = qrOrthonormal(randomMatrix(n, n, 3), n, n);
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = i < 5 ? -1 : i < 15 ? 2 : i < 16 ? 3 : 7;
  const a = symmetrise(reconstruct(w, q, n), n);
  const { values } = assertEigensystem(a, n, 1e-12);
  for (let i = 0; i < n; i++) close(values[i], w[i], 1e-12 * 7, `w${i}`);
});

test("symEig: a diagonal matrix gives its sorted diagonal and signed unit vectors", () => {
  const diag = [3, -1, 0, 7.5, 3, -2, 1e-3, 0];
  const n = diag.length;
  const a = new Float64Array(n * n);
  diag.forEach((v, i) => (a[i * n + i] = v));
  const { values, vectors } = assertEigensystem(a, n, 1e-15);
  assert.deepEqual(Array.from(values), [...diag].sort((x, y) => x - y));
  for (const v of vectors) assert.ok(v === 0 || Math.abs(v) === 1, `entry ${v} is not 0 or +-1`);
});

test("symEig: a rank-10 PSD matrix at n = 60 has 50 zero eigenvalues (to 1e-12 ||A||) and the nonzero ones of B^T B", () => {
  const n = 60;
  const r = 10;
  const b = randomMatrix(n, r, 4);
  const a = matmul(b, transpose(b, n, r), n, r, n);
  const { values } = assertEigensystem(a, n, 1e-12);
  const scale = frob(a);
  for (let i = 0; i < n - r; i++) assert.ok(Math.abs(values[i]) < 1e-12 * scale, `w${i} = ${values[i]}`);
  const small = symEig(matmul(transpose(b, n, r), b, r, n, r), r).values; // the same nonzero spectrum
  for (let i = 0; i < r; i++) close(values[n - r + i], small[i], 1e-12 * scale, `w${n - r + i}`);
});

test("symEig: reads only the lower triangle; sizes 0 and 1; huge and tiny scales; size and finiteness errors", () => {
  const n = 30;
  const a = randomSymmetric(n, 5);
  const lowerOnly = Float64Array.from(a);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) lowerOnly[i * n + j] = 1e300 * (i - j);
  assert.deepEqual(symEig(lowerOnly, n), symEig(a, n));

  assert.deepEqual(symEig(new Float64Array(0), 0), { values: new Float64Array(0), vectors: new Float64Array(0) });
  assert.deepEqual(symEig(new Float64Array([-4]), 1), { values: new Float64Array([-4]), vectors: new Float64Array([1]) });

  const base = symEig(a, n).values;
  for (const s of [2 ** 900, 2 ** -900]) {
    const scaled = symEig(a.map((v) => v * s), n).values;
    for (let i = 0; i < n; i++) close(scaled[i] / s, base[i], 1e-13 * frob(a), `scaled w${i}`);
  }

  assert.throws(() => symEig(new Float64Array(8), 3), { name: "RangeError", message: /symEig: a must have length n\*n = 9, got 8/ });
  assert.throws(() => symEig(new Float64Array(4), -2), { name: "RangeError", message: /symEig: n must be a non-negative integer/ });
  assert.throws(() => symEig(new Float64Array([1, NaN, NaN, 1]), 2), { name: "RangeError", message: /symEig: a must be finite, but entry \(1, 0\) is NaN/ });
  assert.doesNotThrow(() => symEig(new Float64Array([1, Infinity, 0, 1]), 2)); // the upper triangle is not read
});

test("cholesky: a known 3x3 factor exactly, random SPD n = 100 reconstructs to 1e-13 with zeros above the diagonal", () => {
  const a = new Float64Array([4, 12, -16, 12, 37, -43, -16, -43, 98]);
  assert.deepEqual(Array.from(cholesky(a, 3)), [2, 0, 0, 6, 1, 0, -8, 5, 3]);

  const n = 100;
  const spd = randomSpd(n, 6);
  const l = cholesky(spd, n);
  for (let i = 0; i < n; i++) {
    assert.ok(l[i * n + i] > 0);
    for (let j = i + 1; j < n; j++) assert.equal(l[i * n + j], 0);
  }
  const rel = frobDiff(matmul(l, transpose(l, n, n), n, n, n), spd) / frob(spd);
  assert.ok(rel < 1e-13, `L L^T error ${rel}`);
});

test("cholesky: not positive definite names the failing pivot; size errors name the argument", () => {
  assert.throws(() => cholesky(new Float64Array([1, 2, 2, 1]), 2), { name: "RangeError", message: /not positive definite: pivot 1 is -3/ });
  assert.throws(() => cholesky(new Float64Array([0, 0, 0, 1]), 2), { name: "RangeError", message: /pivot 0 is 0/ });
  const psd = new Float64Array([1, 1, 0, 1, 1, 0, 0, 0, 1]); // singular: pivot 1 is exactly 0
  assert.throws(() => cholesky(psd, 3), { name: "RangeError", message: /pivot 1 is 0/ });
  assert.throws(() => cholesky(new Float64Array([NaN]), 1), { name: "RangeError", message: /pivot 0 is NaN/ });
  assert.throws(() => cholesky(new Float64Array(5), 2), { name: "RangeError", message: /cholesky: a must have length n\*n = 4, got 5/ });
});

test("solveLower and solveLowerTranspose: a hand example, residuals below 1e-13 for n = 80 with k = 3, and b untouched", () => {
  const l3 = new Float64Array([2, 0, 0, 1, 4, 0, -1, 2, 5]);
  // L x = (2, 9, 8) has x = (1, 2, 1); L^T y = (2, 6, 5) has y = (1, 1, 1).
  assert.deepEqual(Array.from(solveLower(l3, 3, new Float64Array([2, 9, 8]), 1)), [1, 2, 1]);
  assert.deepEqual(Array.from(solveLowerTranspose(l3, 3, new Float64Array([2, 6, 5]), 1)), [1, 1, 1]);

  const n = 80;
  const k = 3;
  const l = cholesky(randomSpd(n, 7), n);
  const b = randomMatrix(n, k, 8);
  const copy = Float64Array.from(b);
  const x = solveLower(l, n, b, k);
  const y = solveLowerTranspose(l, n, b, k);
  assert.deepEqual(b, copy);
  const rx = frobDiff(matmul(l, x, n, n, k), b) / (frob(l) * frob(x));
  const ry = frobDiff(matmul(transpose(l, n, n), y, n, n, k), b) / (frob(l) * frob(y));
  assert.ok(rx < 1e-13, `L X - B residual ${rx}`);
  assert.ok(ry < 1e-13, `L^T Y - B residual ${ry}`);
});

test("invertLower: a hand example, equals solveLower with B = I (and is lower-triangular) for n = 60, and refuses a zero pivot", () => {
  const l3 = new Float64Array([2, 0, 0, 1, 4, 0, -1, 2, 5]);
  // L^-1 by hand: [[1/2, 0, 0], [-1/8, 1/4, 0], [3/20, -1/10, 1/5]].
  const inv3 = invertLower(l3, 3);
  [0.5, 0, 0, -0.125, 0.25, 0, 0.15, -0.1, 0.2].forEach((v, i) => assert.ok(Math.abs(inv3[i] - v) < 1e-15, `entry ${i}: ${inv3[i]} vs ${v}`));
  const n = 60;
  const l = cholesky(randomSpd(n, 11), n);
  const eye = new Float64Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  const ref = solveLower(l, n, eye, n);
  const inv = invertLower(l, n);
  assert.ok(frobDiff(inv, ref) / frob(ref) < 1e-14, `against solveLower: ${frobDiff(inv, ref) / frob(ref)}`);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(inv[i * n + j], 0);
  assert.throws(() => invertLower(new Float64Array([1, 0, 2, 0]), 2), /diagonal entry 1 is 0/);
});

test("solveLowerTranspose after solveLower solves A X = B for A = L L^T; size and singularity errors", () => {
  const n = 40;
  const a = randomSpd(n, 9);
  const l = cholesky(a, n);
  const b = randomMatrix(n, 2, 10);
  const x = solveLowerTranspose(l, n, solveLower(l, n, b, 2), 2);
  const res = frobDiff(matmul(a, x, n, n, 2), b) / (frob(a) * frob(x));
  assert.ok(res < 1e-13, `A X - B residual ${res}`);

  assert.throws(() => solveLower(l, n, new Float64Array(7), 2), { name: "RangeError", message: /solveLower: b must have length n\*k = 80, got 7/ });
  assert.throws(() => solveLowerTranspose(new Float64Array(3), 2, new Float64Array(2), 1), {
    name: "RangeError",
    message: /solveLowerTranspose: l must have length n\*n = 4, got 3/,
  });
  assert.throws(() => solveLower(new Float64Array([1, 0, 1, 0]), 2, new Float64Array(2), 1), { name: "RangeError", message: /diagonal entry 1 is 0/ });
});

test("logDetCholesky equals log 36 for the known 3x3 and the sum of log eigenvalues for random SPD n = 60", () => {
  const a3 = new Float64Array([4, 12, -16, 12, 37, -43, -16, -43, 98]);
  close(logDetCholesky(cholesky(a3, 3), 3), Math.log(36), 1e-15, "log det");

  const n = 60;
  const a = randomSpd(n, 11);
  const { values } = symEig(a, n);
  const fromEig = values.reduce((s, v) => s + Math.log(v), 0);
  close(logDetCholesky(cholesky(a, n), n), fromEig, 1e-12 * Math.abs(fromEig), "log det");
  assert.throws(() => logDetCholesky(new Float64Array(3), 2), { name: "RangeError", message: /logDetCholesky: l must have length n\*n = 4, got 3/ });
});

test("qrOrthonormal: a 1000 x 12 matrix gives Q^T Q = I and Q Q^T A = A to 1e-13", () => {
  const rows = 1000;
  const cols = 12;
  const a = randomMatrix(rows, cols, 12);
  const copy = Float64Array.from(a);
  const q = qrOrthonormal(a, rows, cols);
  assert.deepEqual(a, copy);
  assert.equal(q.length, rows * cols);
  const qt = transpose(q, rows, cols);
  const orth = frobDiff(matmul(qt, q, cols, rows, cols), identity(cols));
  assert.ok(orth < 1e-13, `Q^T Q - I = ${orth}`);
  const proj = matmul(q, matmul(qt, a, cols, rows, cols), rows, cols, cols);
  const rel = frobDiff(proj, a) / frob(a);
  assert.ok(rel < 1e-13, `Q Q^T A - A = ${rel}`);
});

test("qrOrthonormal: dependent and zero columns still give cols orthonormal columns spanning A; size errors", () => {
  const rows = 200;
  const cols = 6;
  const a = randomMatrix(rows, cols, 13);
  for (let t = 0; t < rows; t++) {
    a[t * cols + 2] = a[t * cols] + 2 * a[t * cols + 1]; // column 2 is in the span of columns 0 and 1
    a[t * cols + 4] = 0; // column 4 is zero
  }
  const q = qrOrthonormal(a, rows, cols);
  const qt = transpose(q, rows, cols);
  const orth = frobDiff(matmul(qt, q, cols, rows, cols), identity(cols));
  assert.ok(orth < 1e-13, `Q^T Q - I = ${orth}`);
  const proj = matmul(q, matmul(qt, a, cols, rows, cols), rows, cols, cols);
  assert.ok(frobDiff(proj, a) / frob(a) < 1e-13);

  assert.throws(() => qrOrthonormal(new Float64Array(6), 2, 3), { name: "RangeError", message: /qrOrthonormal: cols must be <= rows = 2, got 3/ });
  assert.throws(() => qrOrthonormal(new Float64Array(5), 3, 2), { name: "RangeError", message: /qrOrthonormal: a must have length rows\*cols = 6, got 5/ });
});

test("matmul, transpose and symmetrise: hand examples and size errors", () => {
  const a = new Float64Array([1, 2, 3, 4, 5, 6]); // 2 x 3
  const b = new Float64Array([7, 8, 9, 10, 11, 12]); // 3 x 2
  assert.deepEqual(Array.from(matmul(a, b, 2, 3, 2)), [58, 64, 139, 154]);
  assert.deepEqual(Array.from(transpose(a, 2, 3)), [1, 4, 2, 5, 3, 6]);
  const big = randomMatrix(37, 70, 14);
  const bt = transpose(big, 37, 70);
  for (let i = 0; i < 37; i++) for (let j = 0; j < 70; j++) assert.equal(bt[j * 37 + i], big[i * 70 + j]);
  assert.deepEqual(Array.from(symmetrise(new Float64Array([1, 2, 4, 3]), 2)), [1, 3, 3, 3]);

  assert.throws(() => matmul(a, b, 2, 3, 3), { name: "RangeError", message: /matmul: b must have length k\*n = 9, got 6/ });
  assert.throws(() => matmul(a, b, 3, 3, 2), { name: "RangeError", message: /matmul: a must have length m\*k = 9, got 6/ });
  assert.throws(() => transpose(a, 4, 2), { name: "RangeError", message: /transpose: a must have length m\*n = 8, got 6/ });
  assert.throws(() => symmetrise(a, 2), { name: "RangeError", message: /symmetrise: a must have length n\*n = 4, got 6/ });
  assert.throws(() => matmul(a, b, 2.5, 3, 2), { name: "RangeError", message: /matmul: m must be a non-negative integer, got 2.5/ });
});

/** A p x p PSD matrix V diag(values) V^T with seeded orthonormal V (p x r); returns it and V. */
function psdWithSpectrum(p: number, values: readonly number[], seed: number): { a: Float64Array; v: Float64Array } {
  const r = values.length;
  const v = qrOrthonormal(randomMatrix(p, r, seed), p, r);
  const a = new Float64Array(p * p);
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) for (let t = 0; t < r; t++) a[i * p + j] += v[i * r + t] * values[t] * v[j * r + t];
  return { a, v };
}

test("nystromEig: a rank-7 PSD matrix sketched by 12 orthonormal columns gives its top eigenpairs (1e-12; 1e-6 from a float32 sketch); a decaying spectrum is approximated from below", () => {
  const p = 60;
  const l = 12;
  const lam = [9, 5, 3, 2, 1, 0.5, 0.2];
  const { a, v } = psdWithSpectrum(p, lam, 21);
  const omega = qrOrthonormal(randomMatrix(p, l, 22), p, l); // p x l
  const y = matmul(a, omega, p, p, l);
  const e = nystromEig(transpose(omega, p, l), transpose(y, p, l), p, l, 5);
  for (let j = 0; j < 5; j++) {
    close(e.values[j], lam[j], 1e-12 * lam[0], `eigenvalue ${j}`);
    let d = 0;
    for (let t = 0; t < p; t++) d += e.vectors[j * p + t] * v[t * lam.length + j];
    close(Math.abs(d), 1, 1e-12, `eigenvector ${j} against the exact one`);
  }
  // The sketch summed in float32 (as the Laplace curvature pass does): within 1e-6 relative.
  const e32 = nystromEig(transpose(omega, p, l), transpose(y.map(Math.fround), p, l), p, l, 5);
  for (let j = 0; j < 5; j++) close(e32.values[j], lam[j], 1e-6 * lam[j], `eigenvalue ${j} from a float32 sketch`);
  // Full rank, lambda_i = 0.5^i: the sketch's approximation A_nys <= A, so no eigenvalue exceeds the exact one,
  // and the largest ones are close.
  const decay = Array.from({ length: p }, (_, i) => 0.5 ** i);
  const b = psdWithSpectrum(p, decay, 23).a;
  const e2 = nystromEig(transpose(omega, p, l), transpose(matmul(b, omega, p, p, l), p, l), p, l, 4);
  for (let j = 0; j < 4; j++) {
    assert.ok(e2.values[j] <= decay[j] * (1 + 1e-9), `eigenvalue ${j}: ${e2.values[j]} above ${decay[j]}`);
    assert.ok(e2.values[j] >= decay[j] * (1 - 1e-2), `eigenvalue ${j}: ${e2.values[j]} far below ${decay[j]}`);
  }
  assert.throws(() => nystromEig(omega, y, p, l, 13), { name: "RangeError", message: /k must be an integer in 1\.\.l = 12, got 13/ });
});
