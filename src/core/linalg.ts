/**
 * Dense float64 linear algebra on the host, for posterior precisions and sketches of modest size
 * (a few hundred to a few thousand dimensions): symmetric eigendecomposition, Cholesky factorisation,
 * triangular solves, a log-determinant, an orthonormal basis of a column space, and matrix products.
 *
 * Conventions: every matrix is a row-major `Float64Array`; an m x n matrix has entry (i, j) at
 * `i * n + j`. No function modifies its inputs; each returns a new array. Every function checks its
 * sizes and throws a `RangeError` naming the argument and the size it expected.
 *
 * The inner loops run along contiguous rows (row-major dot products and axpys), which is what makes
 * plain JavaScript loops fast here; where an algorithm naturally walks columns, it works on the
 * transposed layout instead.
 */

/** Unit roundoff of float64 (2^-52, the spacing of doubles at 1). */
const EPS = 2 ** -52;

/** Largest number of implicit QL iterations spent on one eigenvalue before giving up. */
const MAX_QL_ITERATIONS = 60;

/** Rows of the eigenvector matrix built together while accumulating the Householder reflectors. */
const ACCUMULATE_ROWS = 16;

/** Throws unless `v` is a non-negative safe integer (a dimension). */
function checkDim(fn: string, name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${fn}: ${name} must be a non-negative integer, got ${v}`);
}

/** Throws unless `arr` has exactly `expected` entries; `shape` describes them (e.g. "n*n"). */
function checkLength(fn: string, name: string, arr: ArrayLike<number>, expected: number, shape: string): void {
  if (arr.length !== expected) {
    throw new RangeError(`${fn}: ${name} must have length ${shape} = ${expected}, got ${arr.length}`);
  }
}

/** Throws unless every entry of `arr` is finite (a NaN or infinity would poison every result). */
function checkFinite(fn: string, name: string, arr: ArrayLike<number>): void {
  for (let i = 0; i < arr.length; i++) {
    if (!Number.isFinite(arr[i])) throw new RangeError(`${fn}: ${name} must be finite, but entry ${i} is ${arr[i]}`);
  }
}

/** sqrt(x^2 + y^2) without overflow or harmful underflow (a two-argument `Math.hypot`, cheaper). */
function hypot2(x: number, y: number): number {
  const ax = Math.abs(x);
  const ay = Math.abs(y);
  const big = ax > ay ? ax : ay;
  if (big === 0) return 0;
  if (big > 1e150 || big < 1e-150) {
    const rx = ax / big;
    const ry = ay / big;
    return big * Math.sqrt(rx * rx + ry * ry);
  }
  return Math.sqrt(ax * ax + ay * ay);
}

/** x 2^e, exact barring underflow, for |e| up to about 2000 (2^e itself may not be representable). */
function timesPow2(x: number, e: number): number {
  const half = Math.trunc(e / 2);
  return x * 2 ** half * 2 ** (e - half);
}

/** The rows of a row-major count x len matrix (len = count when omitted) as views (no copy). */
function rowViews(m: Float64Array, count: number, len = count): Float64Array[] {
  const rows = new Array<Float64Array>(count);
  for (let j = 0; j < count; j++) rows[j] = m.subarray(j * len, j * len + len);
  return rows;
}

/** sum_{k < len} x[k] y[k], in four partial sums so that the additions do not wait on one another. */
function dot(x: Float64Array, y: Float64Array, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < len; k += 4) {
    s0 += x[k] * y[k];
    s1 += x[k + 1] * y[k + 1];
    s2 += x[k + 2] * y[k + 2];
    s3 += x[k + 3] * y[k + 3];
  }
  for (; k < len; k++) s0 += x[k] * y[k];
  return s0 + s1 + (s2 + s3);
}

/** y[k] += alpha x[k] for k < len. */
function axpy(alpha: number, x: Float64Array, y: Float64Array, len: number): void {
  for (let k = 0; k < len; k++) y[k] += alpha * x[k];
}

/**
 * The Householder reflector of row i of the tridiagonalisation: with x = row[0..i), finds u and
 * H = |u|^2 / 2 such that (I - u u^T / H) x = beta e_{i-1}, writes u over row[0..i) and beta to
 * e[i-1], and returns H (0 when x is already a multiple of e_{i-1}, and then row is left as is).
 * x is scaled by its 1-norm first, so that |x|^2 neither overflows nor underflows.
 */
function householder(row: Float64Array, i: number, e: Float64Array): number {
  const l = i - 1;
  let scale = 0;
  for (let k = 0; k < l; k++) scale += Math.abs(row[k]);
  if (scale === 0) {
    e[l] = row[l];
    return 0;
  }
  scale += Math.abs(row[l]);
  let hh = 0;
  for (let k = 0; k <= l; k++) {
    const v = row[k] / scale;
    row[k] = v;
    hh += v * v;
  }
  const f = row[l];
  const g = f >= 0 ? -Math.sqrt(hh) : Math.sqrt(hh);
  e[l] = scale * g;
  row[l] = f - g;
  return hh - f * g;
}

/**
 * Row j's share of p = A u for a symmetric A held in its lower triangle: adds sum_{k<=j} A[j][k] u_k
 * to p_j and A[j][k] u_j to p_k for every k < j.
 */
function symMatVecRow(a: Float64Array, j: number, u: Float64Array, p: Float64Array): void {
  const uj = u[j];
  let s0 = 0;
  let s1 = 0;
  let k = 0;
  for (; k + 1 < j; k += 2) {
    const a0 = a[k];
    const a1 = a[k + 1];
    s0 += a0 * u[k];
    s1 += a1 * u[k + 1];
    p[k] += a0 * uj;
    p[k + 1] += a1 * uj;
  }
  for (; k < j; k++) {
    const a0 = a[k];
    s0 += a0 * u[k];
    p[k] += a0 * uj;
  }
  p[j] += s0 + s1 + a[j] * uj;
}

/** Row j of the rank-2 update A <- A - q u^T - u q^T on the lower triangle: a[k] for k <= j. */
function rank2Row(a: Float64Array, j: number, q: Float64Array, u: Float64Array): void {
  const qj = q[j];
  const uj = u[j];
  for (let k = 0; k <= j; k++) a[k] -= qj * u[k] + uj * q[k];
}

/**
 * {@link rank2Row} followed by {@link symMatVecRow} for the next reflector un, in one pass over the
 * row: row j is read and written once for both.
 */
function rank2MatVecRow(a: Float64Array, j: number, q: Float64Array, u: Float64Array, un: Float64Array, pn: Float64Array): void {
  const qj = q[j];
  const uj = u[j];
  const unj = un[j];
  let s0 = 0;
  let s1 = 0;
  let k = 0;
  for (; k + 1 < j; k += 2) {
    const v0 = a[k] - (qj * u[k] + uj * q[k]);
    const v1 = a[k + 1] - (qj * u[k + 1] + uj * q[k + 1]);
    a[k] = v0;
    a[k + 1] = v1;
    s0 += v0 * un[k];
    s1 += v1 * un[k + 1];
    pn[k] += v0 * unj;
    pn[k + 1] += v1 * unj;
  }
  for (; k < j; k++) {
    const v0 = a[k] - (qj * u[k] + uj * q[k]);
    a[k] = v0;
    s0 += v0 * un[k];
    pn[k] += v0 * unj;
  }
  const diag = a[j] - 2 * qj * uj;
  a[j] = diag;
  pn[j] += s0 + s1 + diag * unj;
}

/**
 * Householder reduction of the symmetric matrix held in the lower triangle of `w` (n x n, overwritten)
 * to tridiagonal form T = Q^T A Q: fills d (diagonal), e (e[i] couples i and i+1; e[n-1] = 0), and
 * hs[i], the H of reflector i, whose vector u is left in row i of `w`, entries 0..i-1 (hs[i] = 0: no
 * reflection). Step i's rank-2 update of row j is fused with row j's share of step i-1's product
 * A u, so each step reads the shrinking lower triangle once.
 */
function tridiagonalise(w: Float64Array, n: number, d: Float64Array, e: Float64Array, hs: Float64Array): void {
  const rows = rowViews(w, n);
  let p = new Float64Array(n); // A u of the current step, then q = p/H - (u.p / 2H^2) u
  let pNext = new Float64Array(n);
  let h = 0; // H of the current step i (none for the virtual step i = n)
  for (let i = n; ; i--) {
    const l = i - 1;
    if (h !== 0) {
      // Finish step i: q = p / H - K u with K = u.p / (2 H^2), then update row l.
      const u = rows[i];
      const inv = 1 / h;
      for (let k = 0; k < i; k++) p[k] *= inv;
      const kk = dot(u, p, i) / (2 * h);
      axpy(-kk, u, p, i);
      rank2Row(rows[l], l, p, u);
    }
    d[l] = rows[l][l];
    if (l === 0) break;
    // Step l's reflector comes from row l (final now); rows j < l get step i's update and step l's A u.
    const hNext = householder(rows[l], l, e);
    hs[l] = hNext;
    const un = rows[l];
    if (hNext !== 0) pNext.fill(0, 0, l);
    if (h !== 0) {
      const u = rows[i];
      if (hNext !== 0) for (let j = 0; j < l; j++) rank2MatVecRow(rows[j], j, p, u, un, pNext);
      else for (let j = 0; j < l; j++) rank2Row(rows[j], j, p, u);
    } else if (hNext !== 0) {
      for (let j = 0; j < l; j++) symMatVecRow(rows[j], j, un, pNext);
    }
    const t = p;
    p = pNext;
    pNext = t;
    h = hNext;
  }
  e[n - 1] = 0;
}

/**
 * z <- z P_i P_{i+1} on z[0..i] for reflectors P = I - u u^T / H with u1 = u_i (entries 0..i-1) and
 * u2 = u_{i+1} (entries 0..i), in two passes over z instead of four: with a1 = (z.u1) / h1, the
 * second dot product is (z - a1 u1).u2 = z.u2 - a1 (u1.u2), and u1.u2 = g12 is shared by all rows.
 */
function reflectPair(z: Float64Array, u1: Float64Array, h1: number, u2: Float64Array, h2: number, g12: number, i: number): void {
  let s1 = 0;
  let s2 = 0;
  let t1 = 0;
  let t2 = 0;
  let k = 0;
  for (; k + 1 < i; k += 2) {
    const z0 = z[k];
    const z1 = z[k + 1];
    s1 += z0 * u1[k];
    s2 += z0 * u2[k];
    t1 += z1 * u1[k + 1];
    t2 += z1 * u2[k + 1];
  }
  for (; k < i; k++) {
    s1 += z[k] * u1[k];
    s2 += z[k] * u2[k];
  }
  s2 += z[i] * u2[i];
  const a1 = (s1 + t1) / h1;
  const a2 = (s2 + t2 - a1 * g12) / h2;
  for (k = 0; k < i; k++) z[k] -= a1 * u1[k] + a2 * u2[k];
  z[i] -= a2 * u2[i];
}

/**
 * Z = Q^T = P_1 P_2 ... P_{n-1} from the reflectors left by {@link tridiagonalise} (P_i = I where
 * hs[i] = 0, always so for i = 1). Row r of Z is
 * e_r^T P_{r+1} ... P_{n-1} (P_i fixes e_r when i <= r), so rows are independent; they are built
 * ACCUMULATE_ROWS at a time, each reflector u_i being read once per block while the block stays in
 * cache. Reflectors are applied two at a time ({@link reflectPair}); a lone one is a dot product and
 * an axpy over the row's first i entries.
 */
function accumulate(w: Float64Array, n: number, hs: Float64Array): Float64Array {
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) z[i * n + i] = 1;
  const rows = rowViews(w, n);
  const zr = rowViews(z, n);
  const single = (r: number, i: number): void => {
    const s = dot(zr[r], rows[i], i);
    if (s !== 0) axpy(-s / hs[i], rows[i], zr[r], i);
  };
  for (let r0 = 0; r0 < n; r0 += ACCUMULATE_ROWS) {
    const r1 = Math.min(r0 + ACCUMULATE_ROWS, n);
    let i = r0 + 1;
    while (i < n) {
      const h1 = hs[i];
      if (h1 === 0) {
        i++;
        continue;
      }
      const h2 = i + 1 < n ? hs[i + 1] : 0;
      const rEnd = Math.min(r1, i);
      if (h2 === 0) {
        for (let r = r0; r < rEnd; r++) single(r, i);
        i++;
        continue;
      }
      const u1 = rows[i];
      const u2 = rows[i + 1];
      const g12 = dot(u1, u2, i);
      for (let r = r0; r < rEnd; r++) reflectPair(zr[r], u1, h1, u2, h2, g12, i);
      if (i < r1) single(i, i + 1); // row i is fixed by P_i but not by P_{i+1}
      i += 2;
    }
  }
  return z;
}

/** Rows (r0, r1) <- (c r0 - s r1, s r0 + c r1): one Givens rotation. */
function rotate1(r0: Float64Array, r1: Float64Array, c: number, s: number, n: number): void {
  for (let j = 0; j < n; j++) {
    const x = r0[j];
    const y = r1[j];
    r0[j] = c * x - s * y;
    r1[j] = s * x + c * y;
  }
}

/** Rotation (ca, sa) on rows (r1, r2), then (cb, sb) on rows (r0, r1), in one pass. */
function rotate2(r0: Float64Array, r1: Float64Array, r2: Float64Array, ca: number, sa: number, cb: number, sb: number, n: number): void {
  for (let j = 0; j < n; j++) {
    const x = r1[j];
    const y = r2[j];
    const t = ca * x - sa * y;
    r2[j] = sa * x + ca * y;
    const x0 = r0[j];
    r0[j] = cb * x0 - sb * t;
    r1[j] = sb * x0 + cb * t;
  }
}

/** Rotations on rows (r3, r4), (r2, r3), (r1, r2), (r0, r1) in that order, in one pass (coefficients c, s at off..off+3). */
function rotate4(
  r0: Float64Array, r1: Float64Array, r2: Float64Array, r3: Float64Array, r4: Float64Array,
  c: Float64Array, s: Float64Array, off: number, n: number,
): void {
  const ca = c[off], sa = s[off], cb = c[off + 1], sb = s[off + 1];
  const cc = c[off + 2], sc = s[off + 2], cd = c[off + 3], sd = s[off + 3];
  for (let j = 0; j < n; j++) {
    let x = r3[j];
    let y = r4[j];
    let t = ca * x - sa * y;
    r4[j] = sa * x + ca * y;
    x = r2[j];
    y = t;
    t = cb * x - sb * y;
    r3[j] = sb * x + cb * y;
    x = r1[j];
    y = t;
    t = cc * x - sc * y;
    r2[j] = sc * x + cc * y;
    x = r0[j];
    y = t;
    r0[j] = cd * x - sd * y;
    r1[j] = sd * x + cd * y;
  }
}

/**
 * Applies one QL sweep's rotations to the rows of Z: rotation t (c[t], s[t]) acts on rows k = m-1-t
 * and k+1, for t = 0 .. m-l-1 in order. Consecutive rotations share a row, so they are applied four
 * (then two) at a time, each row being loaded and stored once per group.
 */
function applySweep(zr: Float64Array[], n: number, l: number, m: number, c: Float64Array, s: Float64Array): void {
  const len = m - l;
  let t = 0;
  for (; t + 3 < len; t += 4) {
    const k = m - 1 - t;
    rotate4(zr[k - 3], zr[k - 2], zr[k - 1], zr[k], zr[k + 1], c, s, t, n);
  }
  for (; t + 1 < len; t += 2) {
    const k = m - 1 - t;
    rotate2(zr[k - 1], zr[k], zr[k + 1], c[t], s[t], c[t + 1], s[t + 1], n);
  }
  for (; t < len; t++) {
    const k = m - 1 - t;
    rotate1(zr[k], zr[k + 1], c[t], s[t], n);
  }
}

/**
 * Implicit QL with Wilkinson shifts on the tridiagonal (d, e) (overwritten: d becomes the eigenvalues,
 * unsorted), applying every rotation to the rows of z as well.
 */
function tridiagonalQL(d: Float64Array, e: Float64Array, z: Float64Array, n: number): void {
  const zr = rowViews(z, n);
  const rotC = new Float64Array(n);
  const rotS = new Float64Array(n);
  let tnorm = 0;
  for (let i = 0; i < n; i++) {
    const rowSum = Math.abs(d[i]) + Math.abs(e[i]) + (i > 0 ? Math.abs(e[i - 1]) : 0);
    if (rowSum > tnorm) tnorm = rowSum;
  }
  const tol = EPS * tnorm;
  for (let l = 0; l < n; l++) {
    let iterations = 0;
    for (;;) {
      let m = l;
      while (m < n - 1 && Math.abs(e[m]) > tol) m++;
      if (m === l) break;
      if (++iterations > MAX_QL_ITERATIONS) {
        throw new Error(`symEig: the QL iteration did not converge for eigenvalue ${l} after ${MAX_QL_ITERATIONS} steps`);
      }
      // Wilkinson shift: the eigenvalue of [[d_l, e_l], [e_l, d_{l+1}]] nearer d_l.
      const el = e[l];
      const g = (d[l + 1] - d[l]) / (2 * el);
      const rg = hypot2(g, 1);
      const shift = d[l] - el / (g >= 0 ? g + rg : g - rg);

      // Chase from the bottom: the rotation in plane (k, k+1) maps (y, x) to (0, r).
      let x = d[m] - shift;
      let y = e[m - 1];
      for (let k = m - 1; k >= l; k--) {
        const r = hypot2(x, y);
        let c = 1;
        let s = 0;
        if (r !== 0) {
          c = x / r;
          s = y / r;
        }
        if (k < m - 1) e[k + 1] = r;
        const dk = d[k];
        const dk1 = d[k + 1];
        const ek = e[k];
        const cs = c * s;
        const cc = c * c;
        const ss = s * s;
        const twoCsE = 2 * cs * ek;
        d[k] = cc * dk - twoCsE + ss * dk1;
        d[k + 1] = ss * dk + twoCsE + cc * dk1;
        const ekNew = cs * (dk - dk1) + (cc - ss) * ek;
        e[k] = ekNew;
        if (k > l) {
          // The coupling of k-1 to (k, k+1) becomes (c e_{k-1}, s e_{k-1}): a bulge at (k-1, k+1).
          const ekm1 = e[k - 1];
          x = ekNew;
          y = s * ekm1;
          e[k - 1] = c * ekm1;
        }
        rotC[m - 1 - k] = c;
        rotS[m - 1 - k] = s;
      }
      applySweep(zr, n, l, m, rotC, rotS);
    }
    e[l] = 0;
  }
}

/**
 * Eigendecomposition of a symmetric n x n matrix: A = V diag(w) V^T with V orthogonal.
 *
 * Only the lower triangle of `a` (entries (i, j) with j <= i) is read; the upper triangle is taken to
 * mirror it (use {@link symmetrise} first if `a` is only approximately symmetric). `a` is not modified.
 *
 * Returns `values` (w, ascending) and `vectors` (V, row-major n x n, eigenvector j in column j, unit
 * norm). Eigenvectors of a repeated eigenvalue are an orthonormal basis of its eigenspace.
 * Cost: about 9 n^3 flops (4/3 n^3 to reduce, 4/3 n^3 to accumulate the reduction, about 6 n^3 for
 * the rotations), O(n^2) memory.
 *
 * Method (the classical two-phase scheme):
 *
 * 1. Householder tridiagonalisation. For i = n-1 down to 2, a reflector P_i = I - u u^T / H (acting on
 *    coordinates 0..i-1) maps row i's part left of the diagonal onto a multiple of e_{i-1}, and the
 *    leading i x i block is updated as P A P = A - q u^T - u q^T with p = A u / H,
 *    q = p - (u^T p / 2H) u. The block is kept in its lower triangle, so both the product A u and the
 *    rank-2 update walk rows. T = Q^T A Q with Q = P_{n-1} ... P_2, and Q^T is then accumulated into
 *    the rows of a work matrix Z.
 * 2. Implicit QL with Wilkinson shifts on T (off-diagonal e_i couples i and i+1). For the unreduced
 *    block l..m, the shift s is the eigenvalue of T's leading 2 x 2 block [[d_l, e_l], [e_l, d_{l+1}]]
 *    nearer d_l. One step applies T <- G T G^T for Givens rotations G in the planes (k, k+1),
 *    k = m-1 down to l: the first annihilates e_{m-1} against d_m - s (the last column of T - sI, as
 *    in the first rotation of its QL factorisation), each later one chases the bulge at (k, k+2) up
 *    the band. The steps drive e_l to zero (cubically for a simple eigenvalue); e_i is taken as zero
 *    once |e_i| <= eps ||T||_1. Each G is also applied to rows k, k+1 of Z, so that Z = V^T at the end
 *    and every rotation is a contiguous update of two rows.
 *
 * Throws a `RangeError` for wrong sizes or non-finite entries, and an `Error` if the QL iteration does
 * not converge (not expected for finite input).
 */
export function symEig(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const fn = "symEig";
  checkDim(fn, "n", n);
  checkLength(fn, "a", a, n * n, "n*n");
  if (n === 0) return { values: new Float64Array(0), vectors: new Float64Array(0) };

  // Entries far from 1 are scaled by a power of two (exactly) so that no square or norm of T overflows
  // or underflows; the eigenvalues are scaled back at the end.
  let maxAbs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = a[i * n + j];
      if (!Number.isFinite(v)) throw new RangeError(`symEig: a must be finite, but entry (${i}, ${j}) is ${v}`);
      maxAbs = Math.max(maxAbs, Math.abs(v));
    }
  }
  const w = Float64Array.from(a);
  const exponent = maxAbs > 2 ** 500 || (maxAbs > 0 && maxAbs < 2 ** -500) ? -Math.round(Math.log2(maxAbs)) : 0;
  if (exponent !== 0) for (let i = 0; i < w.length; i++) w[i] = timesPow2(w[i], exponent);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const hs = new Float64Array(n);
  tridiagonalise(w, n, d, e, hs);
  const z = accumulate(w, n, hs);
  tridiagonalQL(d, e, z, n);

  // Sort ascending; row order[j] of z is eigenvector j, written to column j of V.
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[i] - d[j]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const src = order[j];
    values[j] = exponent === 0 ? d[src] : timesPow2(d[src], -exponent);
    const rs = src * n;
    for (let r = 0; r < n; r++) vectors[r * n + j] = z[rs + r];
  }
  return { values, vectors };
}

/**
 * Cholesky factor of a symmetric positive definite n x n matrix: the lower-triangular L (row-major
 * n x n, zeros above the diagonal) with A = L L^T and a positive diagonal.
 *
 * Only the lower triangle of `a` is read. Cost: n^3 / 3 flops. Method: the row-by-row
 * (Cholesky-Banachiewicz) recurrence L[i][j] = (A[i][j] - sum_{k<j} L[i][k] L[j][k]) / L[j][j],
 * L[i][i] = sqrt(A[i][i] - sum_{k<i} L[i][k]^2), whose sums are dot products of two contiguous rows.
 *
 * Throws a `RangeError` naming the pivot when A is not (numerically) positive definite, i.e. when a
 * pivot A[i][i] - sum_k L[i][k]^2 is not a finite number > 0.
 */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const fn = "cholesky";
  checkDim(fn, "n", n);
  checkLength(fn, "a", a, n * n, "n*n");
  const l = new Float64Array(n * n);
  const rows = rowViews(l, n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const li = rows[i];
    for (let j = 0; j < i; j++) li[j] = (a[ri + j] - dot(li, rows[j], j)) / rows[j][j];
    const s = a[ri + i] - dot(li, li, i);
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new RangeError(`cholesky: a is not positive definite: pivot ${i} is ${s} (must be a finite number > 0)`);
    }
    l[ri + i] = Math.sqrt(s);
  }
  return l;
}

/** Checks the arguments of a triangular solve and that L's diagonal has no zero. */
function checkTriangular(fn: string, l: Float64Array, n: number, b: Float64Array, k: number): void {
  checkDim(fn, "n", n);
  checkDim(fn, "k", k);
  checkLength(fn, "l", l, n * n, "n*n");
  checkLength(fn, "b", b, n * k, "n*k");
  for (let i = 0; i < n; i++) {
    if (l[i * n + i] === 0) throw new RangeError(`${fn}: l is singular: diagonal entry ${i} is 0`);
  }
}

/**
 * Solves L X = B for X, with L lower-triangular n x n (only its lower triangle is read) and B
 * row-major n x k (k right-hand sides). Returns X, n x k.
 *
 * Cost: n^2 k flops. Method: forward substitution by rows, X[i] = (B[i] - sum_{j<i} L[i][j] X[j]) /
 * L[i][i], each term an axpy over a contiguous row of k entries.
 */
export function solveLower(l: Float64Array, n: number, b: Float64Array, k: number): Float64Array {
  checkTriangular("solveLower", l, n, b, k);
  const x = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const xi = i * k;
    for (let j = 0; j < i; j++) {
      const lij = l[ri + j];
      if (lij === 0) continue;
      const xj = j * k;
      for (let c = 0; c < k; c++) x[xi + c] -= lij * x[xj + c];
    }
    const inv = 1 / l[ri + i];
    for (let c = 0; c < k; c++) x[xi + c] *= inv;
  }
  return x;
}

/**
 * Solves L^T X = B for X, with L lower-triangular n x n (only its lower triangle is read; L^T is never
 * formed) and B row-major n x k. Returns X, n x k. With L the Cholesky factor of a precision
 * P = L L^T and B standard normal draws, X is a draw from N(0, P^-1).
 *
 * Cost: n^2 k flops. Method: back substitution in column form: for i = n-1 down to 0,
 * X[i] /= L[i][i], then X[j] -= L[i][j] X[i] for every j < i, so L is read by contiguous rows.
 */
export function solveLowerTranspose(l: Float64Array, n: number, b: Float64Array, k: number): Float64Array {
  checkTriangular("solveLowerTranspose", l, n, b, k);
  const x = Float64Array.from(b);
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n;
    const xi = i * k;
    const inv = 1 / l[ri + i];
    for (let c = 0; c < k; c++) x[xi + c] *= inv;
    for (let j = 0; j < i; j++) {
      const lij = l[ri + j];
      if (lij === 0) continue;
      const xj = j * k;
      for (let c = 0; c < k; c++) x[xj + c] -= lij * x[xi + c];
    }
  }
  return x;
}

/**
 * The inverse of a lower-triangular n x n L (only its lower triangle is read), itself lower-triangular,
 * row-major. With L the Cholesky factor of a precision P, the variances (P^-1)_jj are the squared
 * norms of its columns.
 *
 * Cost: n^3 / 6 multiply-adds, half of {@link solveLower} with B = I, which does not know that row j of
 * the solution is zero right of column j. Method: forward substitution by rows,
 * X[i] = (e_i - sum_{j<i} L[i][j] X[j]) / L[i][i], each term an axpy over columns 0..j.
 */
export function invertLower(l: Float64Array, n: number): Float64Array {
  const fn = "invertLower";
  checkDim(fn, "n", n);
  checkLength(fn, "l", l, n * n, "n*n");
  const x = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    if (l[ri + i] === 0) throw new RangeError(`invertLower: l is singular: diagonal entry ${i} is 0`);
    const xi = x.subarray(ri, ri + i + 1);
    xi[i] = 1;
    for (let j = 0; j < i; j++) {
      const lij = l[ri + j];
      if (lij === 0) continue;
      const xj = x.subarray(j * n, j * n + j + 1);
      for (let c = 0; c <= j; c++) xi[c] -= lij * xj[c];
    }
    const inv = 1 / l[ri + i];
    for (let c = 0; c <= i; c++) xi[c] *= inv;
  }
  return x;
}

/**
 * log det(A) = 2 sum_i log L[i][i] for A = L L^T, given the Cholesky factor L (n x n) from
 * {@link cholesky}. Cost: n logs. Summing logs (not taking the log of a product) cannot overflow.
 */
export function logDetCholesky(l: Float64Array, n: number): number {
  const fn = "logDetCholesky";
  checkDim(fn, "n", n);
  checkLength(fn, "l", l, n * n, "n*n");
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(l[i * n + i]);
  return 2 * s;
}

/**
 * An orthonormal basis of the column space of the rows x cols matrix A (row-major), as a rows x cols
 * row-major Q with Q^T Q = I and Q Q^T A = A; requires cols <= rows. Column j of Q spans the part of
 * column j of A orthogonal to the earlier columns, as in a thin QR factorisation A = Q R.
 *
 * Cost: about 4 rows cols^2 flops, plus two transpositions. Method: modified Gram-Schmidt with one
 * re-orthogonalisation pass ("twice is enough"): each column is orthogonalised against every earlier
 * column of Q in turn, twice, then normalised. The work runs on the transposed (column-contiguous)
 * layout, and the update against q_i is fused with the dot product against q_{i+1}, so each pass over
 * a column streams three contiguous vectors once.
 *
 * A column that is (numerically) in the span of the earlier ones, which shows as a second pass that
 * removes more than half of what the first left, is replaced by a coordinate vector e_t (t = 0, 1, ...
 * in turn, skipping any that is itself too close to the span) orthogonalised the same way, so Q always
 * has cols orthonormal columns.
 */
export function qrOrthonormal(a: Float64Array, rows: number, cols: number): Float64Array {
  const fn = "qrOrthonormal";
  checkDim(fn, "rows", rows);
  checkDim(fn, "cols", cols);
  if (cols > rows) throw new RangeError(`qrOrthonormal: cols must be <= rows = ${rows}, got ${cols}`);
  checkLength(fn, "a", a, rows * cols, "rows*cols");
  checkFinite(fn, "a", a);
  const qt = transpose(a, rows, cols); // cols x rows: column j of A is the contiguous row j of qt
  const q = rowViews(qt, cols, rows);
  const minNorm = 0.5 / Math.sqrt(rows);
  let nextCoordinate = 0;
  for (let j = 0; j < cols; j++) {
    const v = q[j];
    let norm1 = orthogonalise(q, j, rows);
    let norm2 = norm1 === 0 ? 0 : orthogonalise(q, j, rows);
    let isCoordinate = false;
    while (!(norm2 > 0.5 * norm1) || (isCoordinate && norm2 < minNorm)) {
      if (nextCoordinate >= rows) throw new Error(`qrOrthonormal: could not complete the basis at column ${j}`);
      v.fill(0);
      v[nextCoordinate++] = 1;
      isCoordinate = true;
      norm1 = orthogonalise(q, j, rows);
      norm2 = orthogonalise(q, j, rows);
    }
    const inv = 1 / norm2;
    for (let t = 0; t < rows; t++) v[t] *= inv;
  }
  return transpose(qt, cols, rows);
}

/**
 * One modified Gram-Schmidt pass over q[j] against the orthonormal q[0..j-1] (each of length `len`):
 * for i = 0..j-1, v <- v - (q_i . v) q_i, the dot product for q_{i+1} being accumulated in the same
 * loop as the update for q_i (and the squared norm of the result in the last one). Returns |v|.
 */
function orthogonalise(q: Float64Array[], j: number, len: number): number {
  const v = q[j];
  if (j === 0) return Math.sqrt(dot(v, v, len));
  let r = dot(q[0], v, len);
  for (let i = 0; i < j; i++) {
    const qi = q[i];
    const qn = i + 1 < j ? q[i + 1] : v; // the last pass accumulates |v|^2
    let s0 = 0;
    let s1 = 0;
    let t = 0;
    for (; t + 1 < len; t += 2) {
      const v0 = v[t] - r * qi[t];
      const v1 = v[t + 1] - r * qi[t + 1];
      v[t] = v0;
      v[t + 1] = v1;
      s0 += qn[t] * v0;
      s1 += qn[t + 1] * v1;
    }
    if (t < len) {
      const v0 = v[t] - r * qi[t];
      v[t] = v0;
      s0 += qn[t] * v0;
    }
    r = s0 + s1;
  }
  return Math.sqrt(r);
}

/**
 * The product C = A B of an m x k matrix A and a k x n matrix B (both row-major); returns C, m x n.
 *
 * Cost: 2 m k n flops. Method: the i-k-j loop order, so that each step is an axpy of a contiguous
 * row of B into a contiguous row of C.
 */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const fn = "matmul";
  checkDim(fn, "m", m);
  checkDim(fn, "k", k);
  checkDim(fn, "n", n);
  checkLength(fn, "a", a, m * k, "m*k");
  checkLength(fn, "b", b, k * n, "k*n");
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    const ai = i * k;
    for (let p = 0; p < k; p++) {
      const aip = a[ai + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
    }
  }
  return c;
}

/**
 * The transpose of an m x n matrix A (row-major): returns A^T, n x m row-major. Cost: m n copies,
 * in 32 x 32 tiles so that both the reads and the writes stay in cache.
 */
export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const fn = "transpose";
  checkDim(fn, "m", m);
  checkDim(fn, "n", n);
  checkLength(fn, "a", a, m * n, "m*n");
  const t = new Float64Array(m * n);
  const B = 32;
  for (let i0 = 0; i0 < m; i0 += B) {
    const i1 = Math.min(i0 + B, m);
    for (let j0 = 0; j0 < n; j0 += B) {
      const j1 = Math.min(j0 + B, n);
      for (let i = i0; i < i1; i++) {
        const ai = i * n;
        for (let j = j0; j < j1; j++) t[j * m + i] = a[ai + j];
      }
    }
  }
  return t;
}

/** The symmetric part (A + A^T) / 2 of an n x n matrix A (row-major); returns a new n x n array. Cost: n^2. */
export function symmetrise(a: Float64Array, n: number): Float64Array {
  const fn = "symmetrise";
  checkDim(fn, "n", n);
  checkLength(fn, "a", a, n * n, "n*n");
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    s[i * n + i] = a[i * n + i];
    for (let j = 0; j < i; j++) {
      const v = 0.5 * (a[i * n + j] + a[j * n + i]);
      s[i * n + j] = v;
      s[j * n + i] = v;
    }
  }
  return s;
}

/**
 * The rank-k eigendecomposition of a positive semi-definite p x p matrix A from one sketch Y = A Omega
 * (single-pass Nystrom approximation; Tropp, Yurtsever, Udell & Cevher 2017, "Fixed-rank approximation
 * of a positive-semidefinite matrix from streaming data", NeurIPS):
 *
 *   A_nys = Y (Omega^T Y)^+ Y^T,
 *
 * with the pseudo-inverse dropping the core's directions below l u (u = 2^-23, the float32 unit
 * roundoff the sketch was summed in) of its largest eigenvalue. A_nys = A when rank(A) <= l (to the
 * sketch's roundoff), and A_nys <= A otherwise. Returns its k largest eigenvalues (descending, clipped
 * at 0) and their eigenvectors. (Tropp et al. shift A by nu I for stability instead; here that shift
 * cost 1e-5 to 1e-4 relative accuracy on exactly low-rank matrices, the truncation 1e-7.)
 *
 * Layout: `omegaT` and `yT` are l x p row-major (column j of Omega and Y is the contiguous row j), and
 * Omega's columns must be orthonormal (qrOrthonormal). The returned `vectors` are k x p (eigenvector j
 * in row j; zero rows past the rank found). Cost: about 4 p l^2 flops plus two l x l
 * eigendecompositions; memory p l doubles besides the inputs. Method: with
 * Omega^T Y = W diag(theta) W^T (symmetrised), B = Y W diag(theta)^-1/2 over the kept directions gives
 * A_nys = B B^T, and the eigendecomposition of the small B^T B = V diag(s) V^T gives the eigenvectors
 * B V diag(s)^-1/2 with eigenvalues s.
 */
export function nystromEig(omegaT: Float64Array, yT: Float64Array, p: number, l: number, k: number): { values: Float64Array; vectors: Float64Array } {
  const fn = "nystromEig";
  checkDim(fn, "p", p);
  checkDim(fn, "l", l);
  if (k < 1 || k > l || !Number.isInteger(k)) throw new RangeError(`nystromEig: k must be an integer in 1..l = ${l}, got ${k}`);
  checkLength(fn, "omegaT", omegaT, l * p, "l*p");
  checkLength(fn, "yT", yT, l * p, "l*p");
  checkFinite(fn, "yT", yT);
  const om = rowViews(omegaT, l, p);
  const y = rowViews(yT, l, p);
  const core = new Float64Array(l * l);
  for (let i = 0; i < l; i++) for (let j = 0; j <= i; j++) core[i * l + j] = core[j * l + i] = 0.5 * (dot(om[i], y[j], p) + dot(om[j], y[i], p));
  const c = symEig(core, l);
  const top = c.values[l - 1];
  const keepIdx: number[] = [];
  for (let j = l - 1; j >= 0; j--) if (c.values[j] > l * 2 ** -23 * top) keepIdx.push(j);
  const m = keepIdx.length;
  // B = Y W theta^-1/2, as m rows of length p.
  const b = Array.from({ length: m }, () => new Float64Array(p));
  keepIdx.forEach((col, r) => {
    const s = 1 / Math.sqrt(c.values[col]);
    const br = b[r];
    for (let j = 0; j < l; j++) {
      const w = c.vectors[j * l + col] * s;
      if (w === 0) continue;
      const yj = y[j];
      for (let t = 0; t < p; t++) br[t] += w * yj[t];
    }
  });
  const gram = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j <= i; j++) gram[i * m + j] = gram[j * m + i] = dot(b[i], b[j], p);
  const g = m > 0 ? symEig(gram, m) : { values: new Float64Array(0), vectors: new Float64Array(0) };
  const values = new Float64Array(k);
  const vectors = new Float64Array(k * p);
  for (let r = 0; r < Math.min(k, m); r++) {
    const col = m - 1 - r;
    const s = g.values[col];
    if (!(s > 0)) continue;
    values[r] = s;
    const out = vectors.subarray(r * p, (r + 1) * p);
    for (let i = 0; i < m; i++) {
      const w = g.vectors[i * m + col] / Math.sqrt(s);
      const bi = b[i];
      for (let t = 0; t < p; t++) out[t] += w * bi[t];
    }
  }
  return { values, vectors };
}
