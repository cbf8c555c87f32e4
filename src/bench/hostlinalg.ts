/**
 * Small dense float64 linear algebra on the host, for bench targets and their exact answers
 * (d up to a few hundred). Matrices are row-major `Float64Array`s of `d * d`.
 */

/** C = A B for square d x d matrices. */
export function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const c = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = a[i * d + k];
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) c[i * d + j] += aik * b[k * d + j];
    }
  }
  return c;
}

/** A^T. */
export function transpose(a: Float64Array, d: number): Float64Array {
  const t = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) t[j * d + i] = a[i * d + j];
  return t;
}

/** Lower Cholesky factor L of a symmetric positive definite A (A = L L^T); throws if A is not PD. */
export function cholesky(a: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let s = a[j * d + j];
    for (let k = 0; k < j; k++) s -= l[j * d + k] * l[j * d + k];
    if (!(s > 0)) throw new RangeError(`cholesky: matrix is not positive definite (pivot ${j} is ${s})`);
    const ljj = Math.sqrt(s);
    l[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = a[i * d + j];
      for (let k = 0; k < j; k++) t -= l[i * d + k] * l[j * d + k];
      l[i * d + j] = t / ljj;
    }
  }
  return l;
}

/** log det A from its Cholesky factor. */
export function logDetFromChol(l: Float64Array, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += 2 * Math.log(l[i * d + i]);
  return s;
}

/** Solve A X = B for X (B is d x m, row-major) given the Cholesky factor of A. */
export function cholSolve(l: Float64Array, b: Float64Array, d: number, m: number): Float64Array {
  const y = Float64Array.from(b);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < d; i++) {
      let s = y[i * m + c];
      for (let k = 0; k < i; k++) s -= l[i * d + k] * y[k * m + c];
      y[i * m + c] = s / l[i * d + i];
    }
    for (let i = d - 1; i >= 0; i--) {
      let s = y[i * m + c];
      for (let k = i + 1; k < d; k++) s -= l[k * d + i] * y[k * m + c];
      y[i * m + c] = s / l[i * d + i];
    }
  }
  return y;
}

/** Inverse of a symmetric positive definite matrix. */
export function spdInverse(a: Float64Array, d: number): Float64Array {
  const eye = new Float64Array(d * d);
  for (let i = 0; i < d; i++) eye[i * d + i] = 1;
  return cholSolve(cholesky(a, d), eye, d, d);
}

/** A random orthogonal matrix: Gram-Schmidt on standard normal columns drawn from `normal`. */
export function randomOrthogonal(d: number, normal: () => number): Float64Array {
  const q = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    const v = new Float64Array(d);
    for (let i = 0; i < d; i++) v[i] = normal();
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += v[i] * q[i * d + k];
        for (let i = 0; i < d; i++) v[i] -= dot * q[i * d + k];
      }
    }
    let n = 0;
    for (let i = 0; i < d; i++) n += v[i] * v[i];
    n = Math.sqrt(n);
    for (let i = 0; i < d; i++) q[i * d + j] = v[i] / n;
  }
  return q;
}

/**
 * KL(N(m1, S1) || N(m2, S2)) = 1/2 [ tr(S2^-1 S1) + (m2 - m1)^T S2^-1 (m2 - m1) - d + log det S2 - log det S1 ].
 * Returns Infinity when S2 is not positive definite.
 */
export function gaussianKl(m1: Float64Array, s1: Float64Array, m2: Float64Array, s2: Float64Array, d: number): number {
  let l2: Float64Array;
  try {
    l2 = cholesky(s2, d);
  } catch {
    return Infinity;
  }
  const l1 = cholesky(s1, d);
  const x = cholSolve(l2, s1, d, d);
  let tr = 0;
  for (let i = 0; i < d; i++) tr += x[i * d + i];
  const diff = new Float64Array(d);
  for (let i = 0; i < d; i++) diff[i] = m2[i] - m1[i];
  const y = cholSolve(l2, diff, d, 1);
  let quad = 0;
  for (let i = 0; i < d; i++) quad += diff[i] * y[i];
  return 0.5 * (tr + quad - d + logDetFromChol(l2, d) - logDetFromChol(l1, d));
}

/** Frobenius norm of A - B divided by that of B. */
export function relFrobenius(a: Float64Array, b: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
