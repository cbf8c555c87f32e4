/**
 * Rotated images (calibration under shift): exact at multiples of 90 degrees, mass-preserving on the
 * digits, and evaluation on rotated digits uses the posterior's held-out part.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadData, rotateImages } from "../src/data/index.js";
import { runEvaluate, runFit } from "../src/jobs/fit.js";

/** Two 3x4 single-channel images with distinct pixels. */
const two = { x: Float32Array.from({ length: 24 }, (_, i) => i + 1), xShape: [1, 3, 4], y: new Int32Array([0, 1]), n: 2 };

test("rotate: 0 and 360 degrees are the identity; 90 is numpy's rot90 (counter-clockwise) on square images", () => {
  assert.deepEqual(rotateImages(two, 0).x, two.x);
  assert.deepEqual(rotateImages(two, 360).x, two.x);
  const sq = { x: Float32Array.from({ length: 9 }, (_, i) => i + 1), xShape: [3, 3], y: new Int32Array([0]), n: 1 };
  // [[1,2,3],[4,5,6],[7,8,9]] rotated counter-clockwise is [[3,6,9],[2,5,8],[1,4,7]].
  assert.deepEqual(Array.from(rotateImages(sq, 90).x), [3, 6, 9, 2, 5, 8, 1, 4, 7]);
  assert.deepEqual(Array.from(rotateImages(sq, -90).x), [7, 4, 1, 8, 5, 2, 9, 6, 3]);
  assert.deepEqual(Array.from(rotateImages(sq, 180).x), [9, 8, 7, 6, 5, 4, 3, 2, 1]);
  // 45 degrees: the centre stays; the top-left corner comes from (row 1 - sqrt 2, column 1), between
  // the pixel "2" (weight 2 - sqrt 2) and a row above the image, which reads 0.
  const r45 = rotateImages(sq, 45).x;
  assert.equal(r45[4], 5);
  assert.ok(Math.abs(r45[0] - 2 * (2 - Math.SQRT2)) < 1e-6, `corner ${r45[0]}`);
  assert.deepEqual(rotateImages(two, 90).y, two.y);
  assert.throws(() => rotateImages({ x: new Float32Array(4), xShape: [4], y: new Int32Array(1), n: 1 }, 30), /needs image inputs/);
});

test("mnist:rotate=30: the same digits and split, each rotated, with the ink kept", () => {
  const plain = loadData("mnist", { seed: 3, testSize: 300 });
  const turned = loadData("mnist:rotate=30", { seed: 3, testSize: 300 });
  assert.deepEqual(turned.test.y, plain.test.y);
  assert.equal(turned.source, "mnist:rotate=30");
  assert.equal(turned.splitInfo.rotate, 30);
  const ink = (x: Float32Array) => x.reduce((a, b) => a + b, 0);
  const ratio = ink(turned.test.x) / ink(plain.test.x);
  assert.ok(ratio > 0.97 && ratio < 1.03, `ink ratio ${ratio}`); // bilinear resampling keeps the mass of centred digits
  assert.notDeepEqual(turned.test.x, plain.test.x);
  assert.throws(() => loadData("mnist:spin=30"), /mnist takes no argument but rotate=<degrees>/);
});

test("evaluate --data mnist:rotate=30 scores the posterior's own held-out digits, rotated; --ood mnist:rotate=90 too", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-rotate-"));
  try {
    const out = join(dir, "p");
    await runFit({ data: "mnist", model: "mlp:16", method: "map", seed: 1, testSize: 400, options: { epochs: 2 }, out });
    const plain = await runEvaluate({ posterior: out });
    const shifted = await runEvaluate({ posterior: out, data: "mnist:rotate=30", ood: "mnist:rotate=90" });
    assert.equal(shifted.data.test.n, 400);
    assert.deepEqual(shifted.data.test.y, plain.data.test.y);
    assert.ok(shifted.metrics.error > plain.metrics.error + 0.05, `error ${plain.metrics.error} -> ${shifted.metrics.error} under a 30 degree rotation`);
    assert.ok(shifted.metrics.oodAuroc > 0.5 && shifted.metrics.oodAuroc <= 1, `AUROC ${shifted.metrics.oodAuroc}`);
    await assert.rejects(runEvaluate({ posterior: out, data: "mnist:rotate=30", testSize: 2000 }), /--test-size 2000: the posterior was fitted on mnist with --test-size 400/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
