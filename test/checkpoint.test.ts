/**
 * Checkpoint and resume: a run killed with SIGKILL at an arbitrary moment and resumed ends
 * bit-identical to the uninterrupted run (samples, metrics, traces); divergence is caught in the step
 * where it happens and the last good state is kept.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fromHost, key, np, toHost } from "../src/core/engine.js";
import type { InferenceMethod } from "../src/core/method.js";
import { pointMass } from "../src/core/posterior.js";
import { free } from "../src/core/tree.js";
import { loadPosterior } from "../src/io/posterior.js";
import { DivergenceError, runSteps, type LoopPosition } from "../src/run/loop.js";

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../src/cli/main.js");

function bayesdl(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", cwd });
  return { code: r.status, out: r.stdout, err: r.stderr.trim() };
}

/** Start a fit, SIGKILL it as soon as its first checkpoint is on disk; resolves with the signal it died of. */
function fitAndKill(cwd: string, args: string[], checkpointDir: string): Promise<string | null> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, stdio: "ignore" });
    const poll = setInterval(() => {
      if (existsSync(join(checkpointDir, "latest"))) {
        clearInterval(poll);
        child.kill("SIGKILL");
      }
    }, 5);
    child.on("exit", (code, signal) => {
      clearInterval(poll);
      if (signal === null) rej(new Error(`the run ended (code ${code}) before it could be killed; make it longer`));
      else res(signal);
    });
  });
}

async function assertSamePosterior(a: string, b: string): Promise<void> {
  const A = await loadPosterior(a);
  const B = await loadPosterior(b);
  assert.deepEqual(B.meta.leaves, A.meta.leaves);
  A.samples.forEach((leaf, i) => assert.ok(Buffer.from(leaf.data.buffer).equals(Buffer.from(B.samples[i].data.buffer)), `leaf ${leaf.name} differs`));
  assert.deepEqual(B.meta.metrics, A.meta.metrics);
  assert.deepEqual(B.meta.extra?.traces, A.meta.extra?.traces);
  assert.deepEqual(B.meta.extra?.lastInfo, A.meta.extra?.lastInfo);
}

const MNIST = ["--data", "mnist", "--model", "mlp:16", "--test-size", "9000"];
for (const [name, data, method] of [
  ["SGHMC with 2 chains on MNIST", MNIST, ["--method", "sghmc", "--chains", "2", "--burnin", "150", "--thin", "15", "--samples", "6"]],
  ["BBB on MNIST", MNIST, ["--method", "bbb", "--epochs", "4"]],
  // The state carries the running averages of the iterates.
  ["mean-field proximal score VI on MNIST", MNIST, ["--method", "proximal-svi", "--epochs", "4"]],
  // A float64 state (the precision factor, its inverse, the averaged mean and covariance).
  ["full-rank proximal score VI on two moons", ["--data", "toy:two-moons", "--model", "mlp:8"], ["--method", "proximal-svi-fullrank", "--epochs", "40"]],
] as const) {
  test(`kill -9 and --resume: ${name} ends bit-identical to the uninterrupted run`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "bayesdl-ckpt-"));
    try {
      const common = ["fit", ...data, "--batch-size", "16", "--quiet", ...method];
      const whole = bayesdl(dir, ...common, "--out", "whole");
      assert.equal(whole.code, 0, whole.err);
      const signal = await fitAndKill(dir, [...common, "--out", "cut", "--checkpoint-every", "10"], join(dir, "cut.checkpoint"));
      assert.equal(signal, "SIGKILL");
      assert.ok(!existsSync(join(dir, "cut")), "the killed run wrote no posterior");
      const step = readFileSync(join(dir, "cut.checkpoint", "latest"), "utf8").trim();
      const resumed = bayesdl(dir, "fit", "--resume", "cut", "--quiet");
      assert.equal(resumed.code, 0, resumed.err);
      assert.match(resumed.out, /\(resumed\)/);
      await assertSamePosterior(join(dir, "whole"), join(dir, "cut"));
      assert.ok(!existsSync(join(dir, "cut.checkpoint")), `the checkpoint (${step}) is removed once the posterior is saved`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("--resume refuses other settings, and says where it looked", () => {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-ckpt-"));
  try {
    const other = bayesdl(dir, "fit", "--resume", "x", "--lr", "0.1", "--seed", "3");
    assert.equal(other.code, 2);
    assert.equal(other.err, "bayesdl: --resume continues a run with the settings it started with; drop --seed, --lr");
    const none = bayesdl(dir, "fit", "--resume", "x");
    assert.equal(none.code, 1);
    assert.equal(none.err, `bayesdl: --resume x: no checkpoint there (looked in ${join(dir, "x")} and ${join(dir, "x")}.checkpoint); a run writes one with --checkpoint-every`);
    const noOut = bayesdl(dir, "fit", "--data", "toy:two-moons", "--checkpoint-every", "10");
    assert.equal(noOut.err, "bayesdl: --checkpoint-every needs --out: the checkpoint is written beside the posterior, in <out>.checkpoint");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A method whose state doubles every step: x_t = 2^t in float32 overflows to Infinity at step 128.
 * `lossOf` picks the objective it reports: the new state, or a constant (then only the state check sees it).
 */
function doubling(lossOf: "state" | "constant"): InferenceMethod<{ x: ReturnType<typeof fromHost> }> {
  return {
    init: (k) => {
      free(k);
      return { x: fromHost([1], [1]) };
    },
    step: (k, s, b) => {
      free([k, b]);
      const x = s.x.mul(2);
      return [{ x: lossOf === "state" ? x.ref : x }, { loss: lossOf === "state" ? x.sum() : np.zeros([]) }];
    },
    posterior: (s) => pointMass({ x: s.x.ref }),
  };
}

const tiny = { x: new Float32Array(4), xShape: [1], y: new Float32Array(4), n: 4 };

for (const [lossOf, fuse, step, lastGood] of [
  ["state", 1, 128, 127],
  ["state", 5, 128, 125], // fused calls of 5: steps 126-130 in one call; the objective pins step 128
  ["constant", 1, 128, 127], // a finite objective: the state check catches it
] as const) {
  test(`divergence: an objective or state that overflows at step 128 is reported there (${lossOf} objective, fuse ${fuse}); the last good state is kept`, async () => {
    const m = doubling(lossOf);
    const saved: { position: LoopPosition; x: number }[] = [];
    await assert.rejects(
      runSteps(key(0), m, m.init(key(1), {}), tiny, {
        batchSize: 4,
        steps: 200,
        fuse,
        checkpoint: { every: 1000, save: async (position, st) => void saved.push({ position, x: (await toHost(st.x.ref))[0] }) },
      }),
      (e: unknown) => {
        assert.ok(e instanceof DivergenceError, String(e));
        assert.equal(e.step, step);
        assert.equal(e.lastGoodStep, lastGood);
        assert.match(e.message, new RegExp(`^the run diverged at step ${step} of 200: the ${lossOf === "state" ? "objective \\(Infinity\\)" : "state \\(objective 0\\)"} is not finite; the last good state is the one after step ${lastGood}\\. Lower the learning rate / step size \\(--lr\\)$`));
        const good = e.lastGood as { x: ReturnType<typeof fromHost> };
        assert.equal(good.x.shape[0], 1);
        free(good);
        return true;
      },
    );
    // The last good state was written as a checkpoint: x = 2^lastGood, at that step.
    assert.equal(saved.length, 1);
    assert.equal(saved[0].position.done, lastGood);
    assert.equal(saved[0].x, 2 ** lastGood);
  });
}
