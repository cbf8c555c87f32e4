#!/usr/bin/env node
/**
 * `npm run bench`: canonical step workloads (../shared/peers/WORKLOADS.md), one JSON line each
 * (`{"workload", "median_ms", "min_ms", "steps"}`), then the PyTorch peer run in the same session and
 * a table of ratios (bayesdl / peer; below 1 means bayesdl is faster).
 *
 * Flags: `--only a,b` restricts the workloads; `--no-peer` skips the peer; `--steps N` overrides the
 * counted steps. A step is timed from the call until its objective is on the host, which is what the
 * training loop waits for too.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compile, fromHost, key, np, random, scalar, split, type JArray, type Key } from "../core/engine.js";
import { fuseSteps } from "../core/fuse.js";
import type { Info } from "../core/method.js";
import { replicate } from "../core/replicate.js";
import { keep, stackTrees, type Tree } from "../core/tree.js";
import { create as createMap } from "../baselines/map.js";
import { create as createLaplace } from "../laplace/laplace.js";
import { selectBlocks, type Block } from "../laplace/curvature.js";
import { ggnProducts } from "../laplace/linearised.js";
import { sampledPosterior } from "../laplace/sampled.js";
import { categorical, gaussian } from "../models/likelihood.js";
import { logDensity, makeModel, type Batch, type LogDensityFn, type Model, type ModelMethod, type Params } from "../models/model.js";
import { create as createBbb } from "../vi/bbb.js";
import { networkFromSpec } from "../models/spec.js";
import { create as createSgld } from "../sgmcmc/sgld.js";
import { create as createSghmc } from "../sgmcmc/sghmc.js";
import { conditionExact } from "../gp/exact.js";
import { kernelBlock, type GpHypers } from "../gp/kernels.js";
import { makeSystem } from "../gp/pathwise.js";

/** One workload: builds its jitted step and returns a closure that runs one step to completion. */
interface Workload {
  readonly name: string;
  /** The peer workload it is compared with, and how the two steps differ. */
  readonly peer: string;
  readonly note: string;
  readonly warmup: number;
  readonly steps: number;
  /** Steps per call: the time of a call is divided by it. */
  readonly fuse: number;
  setup(): Promise<() => Promise<void>>;
}

/** How a workload's method is built from its log density. */
type MethodFactory = (ld: LogDensityFn, n: number, model: Model) => ModelMethod<Tree, Info>;

/**
 * A workload: model `spec` on inputs `inputShape`, `copies` independent copies (0: one, unreplicated)
 * stepped together, `fuse` steps per jitted call (the reported time is per step: call time / fuse).
 */
function workload(w: {
  name: string;
  peer: string;
  note: string;
  spec: string;
  inputShape: number[];
  classes: number;
  n: number;
  batch: number;
  method: MethodFactory;
  copies?: number;
  fuse?: number;
  warmup: number;
  steps: number;
}): Workload {
  return {
    name: w.name,
    peer: w.peer,
    note: w.note,
    warmup: w.warmup,
    steps: w.steps,
    fuse: w.fuse ?? 1,
    async setup() {
      const lik = w.classes > 1 ? categorical() : gaussian({ sigma: 1 });
      const model = makeModel(networkFromSpec(w.spec, w.inputShape, lik.outputDim(w.classes)), lik, { kind: "gaussian", scale: 1 });
      const inner = w.method(logDensity(model, { dataSize: w.n }), w.n, model);
      const copies = w.copies ?? 0;
      const [k0, k1, k2, k3] = split(key(0), 4);
      const method: ModelMethod<Tree, Info> = copies > 0 ? replicate(inner, copies, "auto", 10_000) : inner;
      const params = copies > 0 ? stackTrees(split(k1, copies).map((k) => model.init(k))) : model.init(k1);
      let state: Tree = method.init(k0, params);
      const u = w.fuse ?? 1;
      const lead = [...(u > 1 ? [u] : []), ...(copies > 0 ? [copies] : []), w.batch];
      const x = random.normal(k2, [...lead, ...w.inputShape]);
      const count = lead.reduce((a, b) => a * b, 1);
      const y = w.classes > 1 ? fromHost(Int32Array.from({ length: count }, (_, i) => i % w.classes), lead) : random.normal(key(9), lead);
      const b: Batch = { x, y };
      const one = (kk: Key, s: Tree, bb: Batch): [Tree, Info] => method.step(kk, s, bb);
      const stepFn = u > 1 ? fuseSteps(one, u) : one;
      const step = compile((kk: Key, s: Tree, bb: Batch) => {
        const [s2, info] = stepFn(kk, s, bb);
        return [s2, info.loss.mean()] as [Tree, JArray];
      }, { consume: [0, 1] });
      let k = k3;
      return async () => {
        const [ks, kn] = split(k, 2);
        k = kn;
        const [next, loss] = step(ks, state, b);
        state = next;
        await scalar(loss);
      };
    },
  };
}

const map: MethodFactory = (ld, n) => createMap(ld, { dataSize: n, learningRate: 1e-3 });
const sgld: MethodFactory = (ld, n) => createSgld(ld, { stepSize: 1e-4, dataSize: n });
const sghmc: MethodFactory = (ld, n) => createSghmc(ld, { stepSize: 1e-4, friction: 0.05, dataSize: n });
const bbb: MethodFactory = (_ld, n, model) => createBbb(model, { dataSize: n, learningRate: 1e-3 });
const bbbLrt: MethodFactory = (_ld, n, model) => createBbb(model, { dataSize: n, learningRate: 1e-3, estimator: "lrt" });
/** KFAC accumulation with the Monte Carlo Fisher (one label drawn per example), A with ones appended, at fixed weights. */
const kfac: MethodFactory = (_ld, n, model) =>
  createLaplace(model, n, { epochs: 0, lr: 1e-3, hessian: "kron", rank: 1, subset: "all", curvature: "mc", pred: "glm", link: "probit", temperature: 1, priorOpt: "none", priorStructure: "layer", priorMultiplier: 1, samples: 1 }) as unknown as ModelMethod<Tree, Info>;
/**
 * One sample-then-optimise step of sampled linearised Laplace as WORKLOADS.md defines it: K = 8 samples
 * from 0, fixed prior draws z0 ~ N(0, I) (A = 1), g_k = (N/B) J^T H J z_k + (z_k - z0_k), heavy ball
 * m <- 0.9 m + g, z <- z - 1e-4 m (no data-noise term, no preconditioner: the method's own solve adds those).
 */
const sampledLaplaceStep: MethodFactory = (_ld, n, model) => {
  const K = 8;
  let blocks: Block[] = [];
  type S = { params: Params; z: JArray[]; m: JArray[]; z0: JArray[] };
  const method: ModelMethod<S> = {
    init(k, params) {
      blocks = selectBlocks(params, "all");
      const keys = split(k, blocks.length);
      return { params, z: blocks.map((b) => np.zeros([K, ...b.shape])), m: blocks.map((b) => np.zeros([K, ...b.shape])), z0: blocks.map((b, i) => random.normal(keys[i], [K, ...b.shape])) };
    },
    step(k, s, batch) {
      k.dispose();
      batch.y.dispose();
      const scale = n / batch.x.shape[0];
      const r = ggnProducts(model, s.params.net, batch.x, blocks, s.z);
      const m = r.map((ri, i) => s.m[i].mul(0.9).add(ri.mul(scale).add(s.z[i].ref.sub(s.z0[i].ref))));
      const z = s.z.map((zi, i) => zi.sub(m[i].ref.mul(1e-4)));
      return [{ params: s.params, z, m, z0: s.z0 }, { loss: np.array(0) }];
    },
    posterior: (s) => sampledPosterior(model, keep(s.params), s.z.map((z) => z.ref), { blocks, link: "probit", samples: K, subset: "all", temperature: 1, emSteps: 0, solveEpochs: 0, priorScales: [] }),
  };
  return method as unknown as ModelMethod<Tree, Info>;
};
/** The GP workloads' data: X [n, d] and y [n] standard normal, drawn once from key 0, as host float64. */
async function gpWorkloadData(n: number, d: number): Promise<{ x: Float64Array; y: Float64Array; hypers: GpHypers; key: Key }> {
  const [kx, ky, k0] = split(key(0), 3);
  const x = Float64Array.from((await random.normal(kx, [n, d]).data()) as ArrayLike<number>);
  const y = Float64Array.from((await random.normal(ky, [n]).data()) as ArrayLike<number>);
  return { x, y, hypers: { kernel: "rbf", lengthscales: new Array<number>(d).fill(1), signal: 1, noise: 0.1 }, key: k0 };
}

/**
 * gp-sgd-step as WORKLOADS.md defines it: RBF with unit lengthscale and variance on n = 45,730 points
 * in 9 dimensions, 512 rows i.i.d. per step, r = K_b v - y_b, g = (n / 512) K_b^T r + 0.01 v, Nesterov
 * momentum in torch's form (m <- 0.9 m + g, v <- v - 1e-6 (g + 0.9 m)). The kernel block is the GP
 * solvers' own (gp/kernels.ts); as in the solvers, n is padded to a multiple of 8 with far points of zero
 * weight and d to 12 with zero columns (the arithmetic of the real points is unchanged; unpadded, jax-js
 * 0.1.25's matmul runs 2-10x slower on these shapes).
 */
function gpSgdWorkload(): Workload {
  return {
    name: "gp-sgd-step",
    peer: "gp-sgd-step",
    note: "one SGD step on GP representer weights: a 512 x 45,730 RBF block, K_b v, K_b^T r, Nesterov momentum",
    warmup: 3,
    steps: 30,
    fuse: 1,
    async setup() {
      const n = 45730;
      const { x, y, hypers, key: k0 } = await gpWorkloadData(n, 9);
      const sys = makeSystem(hypers, x, y, n);
      const nPad = sys.nPad;
      const stepFn = compile(
        (k: Key, v: JArray, m: JArray, z: JArray, zSq: JArray, yy: JArray): [JArray, JArray, JArray] => {
          const idx = random.randint(k, { minval: 0, maxval: n, shape: [512] });
          const kb = kernelBlock("rbf", 1, z.ref.slice(idx.ref), z, zSq);
          const r = np.matmul(v.ref, kb.ref.transpose()).sub(yy.slice(idx).reshape([1, 512]));
          const g = np.matmul(r.ref, kb).mul(n / 512).add(v.ref.mul(0.01));
          const m2 = m.mul(0.9).add(g.ref);
          const v2 = v.sub(g.add(m2.ref.mul(0.9)).mul(1e-6));
          return [v2, m2, np.mean(np.square(r))];
        },
        { consume: [0, 1, 2] },
      );
      let v = np.zeros([1, nPad]);
      let m = np.zeros([1, nPad]);
      let k = k0;
      return async () => {
        const [ks, kn] = split(k, 2);
        k = kn;
        const [v2, m2, loss] = stepFn(ks, v, m, sys.z, sys.zSq, sys.y);
        v = v2;
        m = m2;
        await scalar(loss);
      };
    },
  };
}

/**
 * gp-exact-4k: float64 exact GP on n = 4,096 points in 9 dimensions (RBF, unit lengthscale and
 * variance, noise 0.1): build K + 0.1 I, its Cholesky factor, two triangular solves and the log marginal
 * likelihood, nothing carried between steps. The exact solver's own host float64 code (gp/kernels.ts,
 * core/linalg.ts: row-oriented loops in plain JavaScript, one thread).
 */
function gpExactWorkload(): Workload {
  return {
    name: "gp-exact-4k",
    peer: "gp-exact-4k",
    note: "exact GP in float64 on the host: K (n^2 d), Cholesky (n^3 / 3), two solves, log marginal likelihood",
    warmup: 1,
    steps: 5,
    fuse: 1,
    async setup() {
      const n = 4096;
      const { x, y, hypers, key: k0 } = await gpWorkloadData(n, 9);
      k0.dispose();
      return async () => {
        const gp = conditionExact(hypers, x, y, n);
        if (!Number.isFinite(gp.logMarginal)) throw new Error("gp-exact-4k: the log marginal likelihood is not finite");
      };
    },
  };
}

const MNIST_MLP = { spec: "mlp:400,400", inputShape: [784], classes: 10, n: 60000, batch: 128 };
const MNIST_CNN = { spec: "cnn:32,64", inputShape: [1, 28, 28], classes: 10, n: 60000, batch: 64 };
const UCI_MLP = { spec: "mlp:50", inputShape: [13], classes: 1, n: 455, batch: 32 };

const WORKLOADS: Workload[] = [
  workload({ name: "sgld-mlp-mnist", peer: "sgld-mlp-mnist", note: "SGLD, step 1e-4, N(0,1) prior", ...MNIST_MLP, method: sgld, warmup: 10, steps: 200 }),
  workload({ name: "sghmc-mlp-uci", peer: "sghmc-mlp-uci", note: "SGHMC friction 0.05; 8 steps per jitted call, as the sampler loop runs small networks", ...UCI_MLP, method: sghmc, fuse: 8, warmup: 20, steps: 300 }),
  workload({ name: "sghmc-mlp-uci-unfused", peer: "sghmc-mlp-uci", note: "the same, one step per call", ...UCI_MLP, method: sghmc, warmup: 50, steps: 1000 }),
  workload({ name: "sgld-cnn-mnist", peer: "sgld-cnn-mnist", note: "SGLD on the im2col CNN", ...MNIST_CNN, method: sgld, warmup: 3, steps: 40 }),
  workload({ name: "ensemble10-mlp-uci", peer: "ensemble10-mlp-uci", note: "SGHMC on ten 13-50-1 members, vmapped, 8 steps per call; each member its own minibatch", ...UCI_MLP, method: sghmc, copies: 10, fuse: 8, warmup: 10, steps: 200 }),
  workload({ name: "ensemble10-mlp-uci-unfused", peer: "ensemble10-mlp-uci", note: "the same, one step per call", ...UCI_MLP, method: sghmc, copies: 10, warmup: 20, steps: 300 }),
  workload({ name: "bbb-mlp-mnist", peer: "bbb-mlp-mnist", note: "Bayes-by-backprop, one reparameterised draw, closed-form KL, Adam", ...MNIST_MLP, method: bbb, warmup: 5, steps: 100 }),
  workload({ name: "bbb-lrt-mlp-mnist", peer: "bbb-mlp-mnist", note: "the same ELBO step with local reparameterisation (noise on pre-activations, not weights)", ...MNIST_MLP, method: bbbLrt, warmup: 5, steps: 100 }),
  workload({ name: "map-mlp-mnist", peer: "sgld-mlp-mnist", note: "MAP step (grad + Adam) vs the peer's SGLD step (grad + noise)", ...MNIST_MLP, method: map, warmup: 10, steps: 200 }),
  workload({ name: "kfac-mlp-mnist", peer: "kfac-mlp-mnist", note: "KFAC factors A += [a,1]^T [a,1], G += g^T g with one sampled label per example (the laplace method's curvature step)", ...MNIST_MLP, method: kfac, warmup: 5, steps: 100 }),
  workload({ name: "sampled-laplace-mlp-mnist", peer: "sampled-laplace-mlp-mnist", note: "one sample-then-optimise step on K = 8 samples: J z (forward mode), H J z, J^T (reverse mode), heavy ball (the sampled-laplace method's solve step without its preconditioner)", ...MNIST_MLP, method: sampledLaplaceStep, warmup: 3, steps: 30 }),
  workload({ name: "map-cnn-mnist", peer: "sgld-cnn-mnist", note: "MAP step (grad + Adam) vs the peer's SGLD step (grad + noise)", ...MNIST_CNN, method: map, warmup: 3, steps: 40 }),
  gpSgdWorkload(),
  gpExactWorkload(),
];

interface Line {
  workload: string;
  median_ms: number;
  min_ms: number;
  steps: number;
  threads?: number;
}

async function measure(w: Workload, steps: number): Promise<Line> {
  const run = await w.setup();
  for (let i = 0; i < w.warmup; i++) await run();
  const ts: number[] = [];
  const calls = Math.max(1, Math.round(steps / w.fuse));
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await run();
    ts.push((performance.now() - t0) / w.fuse);
  }
  ts.sort((a, b) => a - b);
  const median = ts.length % 2 ? ts[ts.length >> 1] : (ts[ts.length / 2 - 1] + ts[ts.length / 2]) / 2;
  return { workload: w.name, median_ms: round(median), min_ms: round(ts[0]), steps };
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;

/** Run the PyTorch peer (1 thread) for the given workloads; `undefined` when it cannot run here. */
function runPeer(names: string[]): { lines: Line[]; error?: string } {
  const here = dirname(fileURLToPath(import.meta.url));
  const script = resolve(here, "../../../shared/peers/torch_peer.py");
  if (!existsSync(script)) return { lines: [], error: `peer script not found at ${script}` };
  const py = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const r = spawnSync(py, [script, "--threads", "1", "--only", names.join(",")], { encoding: "utf8", cwd: dirname(script) });
  if (r.status !== 0) {
    return { lines: [], error: `peer failed (${py} ${script}): ${(r.stderr || r.error?.message || "").trim().split("\n").slice(-1)[0]}` };
  }
  return { lines: r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const onlyArg = args.indexOf("--only");
  const only = onlyArg >= 0 ? new Set(args[onlyArg + 1].split(",")) : undefined;
  const stepsArg = args.indexOf("--steps");
  const stepsOverride = stepsArg >= 0 ? Number(args[stepsArg + 1]) : undefined;
  const chosen = WORKLOADS.filter((w) => !only || only.has(w.name));
  if (only) {
    const unknown = [...only].filter((n) => !WORKLOADS.some((w) => w.name === n));
    if (unknown.length) throw new Error(`--only: unknown workload(s) ${unknown.join(", ")}; available: ${WORKLOADS.map((w) => w.name).join(", ")}`);
  }
  const ours: Line[] = [];
  for (const w of chosen) {
    const line = await measure(w, stepsOverride ?? w.steps);
    ours.push(line);
    console.log(JSON.stringify(line));
  }
  if (args.includes("--no-peer")) return;
  const peer = runPeer([...new Set(chosen.map((w) => w.peer))]);
  for (const l of peer.lines) console.log(JSON.stringify({ ...l, peer: "pytorch" }));
  if (peer.error) {
    console.log(`# peer not measured: ${peer.error}`);
    return;
  }
  console.log("\n| bayesdl workload | median ms | peer workload (PyTorch, 1 thread) | median ms | ratio |\n|---|---|---|---|---|");
  for (const w of chosen) {
    const a = ours.find((l) => l.workload === w.name)!;
    const b = peer.lines.find((l) => l.workload === w.peer);
    console.log(`| ${w.name} | ${a.median_ms.toFixed(2)} | ${w.peer} | ${b ? b.median_ms.toFixed(2) : "n/a"} | ${b ? (a.median_ms / b.median_ms).toFixed(2) : "n/a"} |`);
  }
  for (const w of chosen) console.log(`# ${w.name}: ${w.note}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
