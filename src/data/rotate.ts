/**
 * Rotated images, for calibration under distribution shift (Ovadia et al. 2019, "Can you trust your
 * model's uncertainty? Evaluating predictive uncertainty under dataset shift", rotated MNIST).
 * Browser-safe.
 *
 * Each channel of an h x w image is rotated counter-clockwise by `degrees` about its centre
 * ((h - 1) / 2, (w - 1) / 2): output pixel (r, c) takes the bilinear interpolation of the input at the
 * point that the inverse rotation maps it to, and 0 where that point falls outside the image.
 */
import type { ArrayData } from "./types.js";

/** `data` with every image rotated by `degrees` (xShape `[channels, h, w]` or `[h, w]`; labels kept). */
export function rotateImages(data: ArrayData, degrees: number): ArrayData {
  if (!Number.isFinite(degrees)) throw new RangeError(`rotate: degrees must be a finite number, got ${degrees}`);
  const shape = data.xShape;
  if (shape.length < 2) throw new RangeError(`rotate: needs image inputs [channels, h, w] or [h, w], got [${shape.join(", ")}]`);
  const h = shape[shape.length - 2];
  const w = shape[shape.length - 1];
  const planes = (data.n * shape.reduce((a, b) => a * b, 1)) / (h * w);
  const t = (degrees * Math.PI) / 180;
  // Exact values at multiples of 90 degrees (Math.cos(pi / 2) is 6e-17, not 0).
  const quarter = Math.abs(degrees / 90 - Math.round(degrees / 90)) < 1e-12;
  const q = ((Math.round(degrees / 90) % 4) + 4) % 4;
  const cos = quarter ? [1, 0, -1, 0][q] : Math.cos(t);
  const sin = quarter ? [0, 1, 0, -1][q] : Math.sin(t);
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const x = new Float32Array(data.x.length);
  for (let p = 0; p < planes; p++) {
    const base = p * h * w;
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        // Inverse rotation of the output point (x right, y up) gives the input point.
        const dx = c - cx;
        const dy = cy - r;
        const sx = cos * dx + sin * dy;
        const sy = -sin * dx + cos * dy;
        const fc = sx + cx;
        const fr = cy - sy;
        const c0 = Math.floor(fc);
        const r0 = Math.floor(fr);
        const ac = fc - c0;
        const ar = fr - r0;
        let v = 0;
        for (const [rr, cc, wt] of [
          [r0, c0, (1 - ar) * (1 - ac)],
          [r0, c0 + 1, (1 - ar) * ac],
          [r0 + 1, c0, ar * (1 - ac)],
          [r0 + 1, c0 + 1, ar * ac],
        ] as const) {
          if (wt !== 0 && rr >= 0 && rr < h && cc >= 0 && cc < w) v += wt * data.x[base + rr * w + cc];
        }
        x[base + r * w + c] = v;
      }
    }
  }
  return { x, xShape: data.xShape, y: data.y, n: data.n };
}
