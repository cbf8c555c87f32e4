import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { enableThreads } from "../src/core/threads.js";

const run = promisify(execFile);

/**
 * A child process (so the shim is installed before jax-js is evaluated): a jitted matmul, a jitted
 * softmax cross-entropy gradient of a 784-64-10 MLP on batch 128, and `dataSync()` of a fresh
 * result. Prints the results and the thread status as JSON.
 */
const CHILD = `
import { enableThreads, threadStatus } from ${JSON.stringify(new URL("../src/core/threads.js", import.meta.url).href)};
if (process.env.BAYESDL_TEST_THREADS === "on") enableThreads(2);
const { jit, grad, np, nn, tree, fromHost } = await import(${JSON.stringify(new URL("../src/core/engine.js", import.meta.url).href)});
function data(n, seed) {
  let s = seed;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) { s = (s * 16807) % 2147483647; a[i] = s / 2147483647 - 0.5; }
  return a;
}
const host = async (a) => Array.from(await a.data());
const A = fromHost(data(128 * 784, 1), [128, 784]);
const B = fromHost(data(784 * 400, 2), [784, 400]);
const mm = jit((a, b) => np.matmul(a, b));
const product = await host(mm(A.ref, B.ref));
const productSync = Array.from(mm(A.ref, B.ref).dataSync());
const params = {
  l1: { w: fromHost(data(784 * 64, 3), [784, 64]), b: fromHost(data(64, 4), [64]) },
  l2: { w: fromHost(data(64 * 10, 5), [64, 10]), b: fromHost(data(10, 6), [10]) },
};
const labels = Int32Array.from({ length: 128 }, (_, i) => (i * 7) % 10);
const yoh = nn.oneHot(fromHost(labels, [128]), 10);
const loss = (p, x, y) => {
  const h = nn.relu(np.matmul(x, p.l1.w).add(p.l1.b));
  const logits = np.matmul(h, p.l2.w).add(p.l2.b);
  return nn.logSoftmax(logits).mul(y).sum().mul(-1 / 128);
};
const g = await jit(grad(loss))(params, A, yoh);
const gradient = [];
for (const leaf of tree.leaves(g)) gradient.push(...(await host(leaf)));
process.stdout.write(JSON.stringify({ product, productSync, gradient, status: threadStatus() }));
`;

interface ChildResult {
  product: number[];
  productSync: number[];
  gradient: number[];
  status: { threads: number; workers: number; threadsStarted: number; chunksToThreads: number; chunksInlined: number };
}

async function child(threads: "on" | "off"): Promise<ChildResult> {
  // A hang (e.g. a worker that never answers) fails on the timeout; the child must also exit by
  // itself once done, although its worker threads are still alive.
  const env: NodeJS.ProcessEnv = { ...process.env, BAYESDL_TEST_THREADS: threads };
  delete env.NODE_TEST_CONTEXT; // set by `node --test` for its own children; the child is not a test
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", CHILD], {
    env,
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as ChildResult;
}

function maxAbsDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test("threaded jax-js gives the single-thread results and exits by itself", async () => {
  const [on, off] = await Promise.all([child("on"), child("off")]);
  assert.deepEqual(off.status, { threads: 0, workers: 0, threadsStarted: 0, chunksToThreads: 0, chunksInlined: 0 });
  assert.equal(on.status.threads, 2);
  assert.equal(on.status.workers, 2); // jax-js built its pool through the shim
  assert.equal(on.status.threadsStarted, 1); // the pool's first worker is the main thread
  assert.ok(on.status.chunksToThreads > 0, "some kernel chunks ran on the worker thread");
  assert.equal(on.product.length, 128 * 400);
  assert.equal(on.gradient.length, 784 * 64 + 64 + 64 * 10 + 10);
  // Each output element is computed by the same kernel code whichever thread runs its chunk.
  assert.equal(maxAbsDiff(on.product, off.product), 0);
  assert.equal(maxAbsDiff(on.gradient, off.gradient), 0);
  assert.equal(maxAbsDiff(on.productSync, off.product), 0); // dataSync() still works (main thread)
  assert.ok(off.gradient.some((v) => v !== 0));
});

test("enableThreads validates n and treats 1 as single-threaded", () => {
  assert.throws(() => enableThreads(0), RangeError);
  assert.throws(() => enableThreads(1.5), RangeError);
  assert.throws(() => enableThreads(2, { inlineMs: -1 }), RangeError);
  enableThreads(1);
  assert.equal((globalThis as { Worker?: unknown }).Worker, undefined);
});
