/**
 * The silently-wrong results a new user found (evaluation on training data, lax CSV targets, empty
 * test parts, unsafe output directories, ignored or crashing --ood, relative data paths, internal
 * names in messages), each checked through the CLI as a user runs it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRng } from "../src/data/prng.js";
import { embeddedMnistArrays, loadData, writeIdx } from "../src/data/index.js";
import type { PosteriorMeta } from "../src/io/posterior.js";

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, "../src/cli/main.js");

function bayesdl(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", cwd });
  return { code: r.status, out: r.stdout, err: r.stderr.trim() };
}

function withDir(f: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "bayesdl-findings-"));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A regression table y = sin(3a) + b + noise with real-valued targets, header a,b,y. */
function regressionCsv(n: number, seed = 1): string {
  const rng = createRng(seed);
  const lines = ["a,b,y"];
  for (let i = 0; i < n; i++) {
    const a = rng.normal();
    const b = rng.normal();
    lines.push(`${a.toFixed(4)},${b.toFixed(4)},${(Math.sin(3 * a) + b + 0.1 * rng.normal()).toFixed(4)}`);
  }
  return lines.join("\n") + "\n";
}

const quick = ["--model", "mlp:8", "--epochs", "1", "--quiet"];

test("finding 1: evaluate takes the test part from the posterior and refuses to test on training examples", () => {
  withDir((dir) => {
    const fit = bayesdl(dir, "fit", "--data", "mnist", ...quick, "--test-size", "500", "--out", "r");
    assert.equal(fit.code, 0, fit.err);
    const ev = bayesdl(dir, "evaluate", "--posterior", "r", "--json");
    assert.equal(ev.code, 0, ev.err);
    assert.equal(JSON.parse(ev.out).testSize, 500);
    const moved = bayesdl(dir, "evaluate", "--posterior", "r", "--test-size", "2000");
    assert.equal(moved.code, 1);
    assert.equal(
      moved.err,
      "bayesdl: --test-size 2000: the posterior was fitted on mnist with --test-size 500; another value would put training examples in the test part. Omit --test-size (the posterior's own held-out part is used), or evaluate on other data (--data)",
    );
    // The same digits in IDX files are other data by name, but their pixels give them away.
    const all = embeddedMnistArrays();
    const bytes = Uint8Array.from(all.x.subarray(0, 100 * 784), (v) => Math.round(v * 255));
    writeFileSync(join(dir, "img.idx"), writeIdx(bytes, [100, 28, 28]));
    writeFileSync(join(dir, "lbl.idx"), writeIdx(Uint8Array.from(all.y.subarray(0, 100)), [100]));
    const idx = bayesdl(dir, "evaluate", "--posterior", "r", "--data", "idx:img.idx,lbl.idx");
    assert.equal(idx.code, 1);
    assert.match(idx.err, /^bayesdl: --data idx:img\.idx,lbl\.idx: \d+ of its 100 examples have exactly the inputs of examples this posterior was trained on \(mnist\); evaluate on data it has not seen$/);
    // A CSV posterior evaluates with its own target column, from another directory.
    writeFileSync(join(dir, "reg.csv"), regressionCsv(120));
    assert.equal(bayesdl(dir, "fit", "--data", "csv:reg.csv", "--target", "y", ...quick, "--out", "c").code, 0);
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere);
    const c = bayesdl(elsewhere, "evaluate", "--posterior", "../c", "--json");
    assert.equal(c.code, 0, c.err);
    assert.equal(JSON.parse(c.out).testSize, 24);
  });
});

test("finding 2: a CSV target with one bad cell is an error naming it; integer labels need --task; the task is stated", () => {
  withDir((dir) => {
    const rows = regressionCsv(200).split("\n");
    for (const bad of ["NaN", "", "1.2.3"]) {
      const copy = [...rows];
      copy[49] = `0.1,0.2,${bad}`;
      writeFileSync(join(dir, "bad.csv"), copy.join("\n"));
      const r = bayesdl(dir, "fit", "--data", "csv:bad.csv", "--target", "y", ...quick);
      assert.equal(r.code, 1, `${bad}: ${r.out}`);
      const want =
        bad === ""
          ? 'bayesdl: bad.csv: line 50, column "y" (index 2): expected a target value, got an empty cell'
          : `bayesdl: bad.csv: line 50, column "y" (index 2): expected a number like the other 199 target cells (or --task classification if these are labels), got "${bad}"`;
      assert.equal(r.err, want);
    }
    const rng = createRng(2);
    const binary = ["x,label", ...Array.from({ length: 60 }, (_, i) => `${rng.normal().toFixed(3)},${i % 2}`)].join("\n");
    writeFileSync(join(dir, "bin.csv"), binary);
    const amb = bayesdl(dir, "fit", "--data", "csv:bin.csv", "--target", "label", ...quick);
    assert.equal(amb.code, 1);
    assert.equal(amb.err, 'bayesdl: bin.csv: column "label" (index 1): expected --task regression or --task classification: the target holds only integers, got 2 distinct values (0, 1), which could be class labels or counts');
    const cls = bayesdl(dir, "fit", "--data", "csv:bin.csv", "--target", "label", "--task", "classification", ...quick);
    assert.equal(cls.code, 0, cls.err);
    assert.match(cls.out, /task: classification \(--task\)/);
    assert.match(cls.out, /accuracy/);
    writeFileSync(join(dir, "reg.csv"), regressionCsv(50));
    const reg = bayesdl(dir, "fit", "--data", "csv:reg.csv", "--target", "y", ...quick);
    assert.match(reg.out, /task: regression \(inferred: the target holds non-integer numbers; --task to override\)/);
  });
});

test("finding 3: data too small to hold out a test part is refused before fitting", () => {
  withDir((dir) => {
    writeFileSync(join(dir, "one.csv"), "a,y\n1,0.5\n");
    const one = bayesdl(dir, "fit", "--data", "csv:one.csv", "--target", "y", ...quick, "--out", "p");
    assert.equal(one.code, 1);
    assert.equal(one.err, "bayesdl: one.csv: line 2: expected at least 2 data rows (one to train on, one to test on), got 1");
    writeFileSync(join(dir, "three.csv"), "a,y\n1,0.5\n2,1.5\n3,0.25\n");
    const big = bayesdl(dir, "fit", "--data", "csv:three.csv", "--target", "y", "--test-size", "3", ...quick, "--out", "p");
    assert.equal(big.code, 1);
    assert.equal(big.err, "bayesdl: --test-size must be an integer in 1..2 for three.csv (3 data rows), got 3");
    const ok = bayesdl(dir, "fit", "--data", "csv:three.csv", "--target", "y", ...quick, "--out", "p");
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /\(2 train \/ 1 test; task: regression/);
    assert.equal(bayesdl(dir, "evaluate", "--posterior", "p").code, 0);
    assert.equal(readdirSync(dir).filter((f) => f.startsWith(".")).length, 0);
  });
});

test("finding 4: --out refuses a non-empty directory unless --force, which replaces it whole", () => {
  withDir((dir) => {
    const out = join(dir, "post");
    mkdirSync(out);
    writeFileSync(join(out, "variational.safetensors"), "stale");
    const refused = bayesdl(dir, "fit", "--data", "toy:two-moons", ...quick, "--out", "post");
    assert.equal(refused.code, 1);
    assert.equal(refused.err, "bayesdl: --out post: the directory is not empty (1 entry, e.g. variational.safetensors); choose another directory or pass --force to replace it");
    assert.deepEqual(readdirSync(out), ["variational.safetensors"]);
    const forced = bayesdl(dir, "fit", "--data", "toy:two-moons", ...quick, "--out", "post", "--force");
    assert.equal(forced.code, 0, forced.err);
    assert.deepEqual(readdirSync(out).sort(), ["posterior.json", "samples.safetensors"]);
    assert.deepEqual(readdirSync(dir), ["post"]);
  });
});

test("finding 5: --ood on a regression posterior and OOD inputs of the wrong shape are clear errors", () => {
  withDir((dir) => {
    assert.equal(bayesdl(dir, "fit", "--data", "toy:regression-gap", ...quick, "--out", "reg").code, 0);
    const reg = bayesdl(dir, "evaluate", "--posterior", "reg", "--ood", "mnist");
    assert.equal(reg.code, 1);
    assert.equal(reg.err, `bayesdl: --ood: the out-of-distribution AUROC ranks inputs by predictive entropy over classes; reg is a regression posterior (gaussian likelihood)`);
    assert.equal(bayesdl(dir, "fit", "--data", "toy:two-moons", ...quick, "--out", "moons").code, 0);
    const shape = bayesdl(dir, "evaluate", "--posterior", "moons", "--ood", "mnist");
    assert.equal(shape.code, 1);
    assert.equal(shape.err, "bayesdl: --ood mnist: the data have inputs of shape [1, 28, 28] (784 values) but the model mlp:8 takes [2] (2 values)");
  });
});

test("finding 7: the posterior records absolute data paths and the input standardisation", () => {
  withDir((dir) => {
    writeFileSync(join(dir, "reg.csv"), regressionCsv(100));
    assert.equal(bayesdl(dir, "fit", "--data", "csv:reg.csv", "--target", "y", ...quick, "--out", "p").code, 0);
    const meta = JSON.parse(readFileSync(join(dir, "p", "posterior.json"), "utf8")) as PosteriorMeta;
    assert.equal(meta.data.source, `csv:${join(dir, "reg.csv")}`);
    assert.equal(meta.data.given, "csv:reg.csv");
    const split = loadData(`csv:${join(dir, "reg.csv")}`, { target: "y", seed: 0 });
    assert.deepEqual(meta.data.inputScale, { columns: ["a", "b"], mean: [...split.inputScale!.mean], std: [...split.inputScale!.std] });
    const ev = bayesdl(tmpdir(), "evaluate", "--posterior", join(dir, "p"));
    assert.equal(ev.code, 0, ev.err);
  });
});

test("finding 8: messages name flags, not internals", () => {
  withDir((dir) => {
    writeFileSync(join(dir, "reg.csv"), regressionCsv(200));
    const r = bayesdl(dir, "fit", "--data", "csv:reg.csv", "--target", "y", "--test-size", "500", ...quick);
    assert.equal(r.err, "bayesdl: --test-size must be an integer in 1..199 for reg.csv (200 data rows), got 500");
    const m = bayesdl(dir, "fit", "--data", "mnist", "--test-size", "10000", ...quick);
    assert.equal(m.err, "bayesdl: --test-size must be an integer in 1..9999 for mnist (10000 examples), got 10000");
    // A posterior whose weights are not finite: the message says what is wrong, not which function failed.
    assert.equal(bayesdl(dir, "fit", "--data", "csv:reg.csv", "--target", "y", ...quick, "--out", "p").code, 0);
    const metaText = readFileSync(join(dir, "p", "posterior.json"), "utf8");
    const samples = readFileSync(join(dir, "p", "samples.safetensors"));
    const headerLen = Number(samples.readBigUInt64LE(0));
    samples.fill(0xff, 8 + headerLen); // every float becomes NaN
    writeFileSync(join(dir, "p", "samples.safetensors"), samples);
    writeFileSync(join(dir, "p", "posterior.json"), metaText);
    const nan = bayesdl(dir, "evaluate", "--posterior", "p");
    assert.equal(nan.code, 1);
    assert.match(nan.err, /^bayesdl: the posterior's predictions are not finite \(\d+ NaN or infinite values\): its parameters have diverged or are corrupted; fit again with a smaller learning rate \/ step size$/);
    for (const out of [r.err, m.err, nan.err]) assert.doesNotMatch(out, /testSize|regressionMetrics|classificationMetrics|Invalid reshape/);
  });
});

/** Whether `version` (x.y.z) satisfies an npm `engines` range of the forms dependencies use here. */
function satisfies(version: string, range: string): boolean {
  const v = version.split(".").map(Number);
  const cmp = (a: number[], b: number[]): number => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  const parse = (s: string): number[] => s.replace(/\.\*$/, "").split(".").map(Number);
  return range.split("||").some((clause) =>
    clause
      .trim()
      .replace(/(>=|<=|>|<|\^|~)\s+/g, "$1")
      .split(/\s+/)
      .every((c) => {
        const m = /^(>=|<=|>|<|\^|~)?(.+)$/.exec(c)!;
        const b = parse(m[2]);
        switch (m[1]) {
          case ">=":
            return cmp(v, b) >= 0;
          case ">":
            return cmp(v, b) > 0;
          case "<=":
            return cmp(v, b) <= 0;
          case "<":
            return cmp(v, b) < 0;
          case "^":
            return v[0] === b[0] && cmp(v, b) >= 0;
          case "~":
            return v[0] === b[0] && v[1] === (b[1] ?? v[1]) && cmp(v, b) >= 0;
          default:
            return m[2].endsWith(".*") ? b.every((x, i) => v[i] === x) : cmp(v, b) === 0;
        }
      }),
  );
}

test("finding 9: the lowest Node our engines field admits satisfies every dependency's engines", () => {
  const root = resolve(here, "../..");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { engines: { node: string } };
  const m = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node);
  assert.ok(m, `engines.node is a lower bound x.y, got ${pkg.engines.node}`);
  const lowest = `${m[1]}.${m[2]}.0`;
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { engines?: { node?: string } }> };
  const refusing = Object.entries(lock.packages)
    .filter(([, p]) => typeof p.engines?.node === "string" && !satisfies(lowest, p.engines.node))
    .map(([name, p]) => `${name} (${p.engines!.node})`);
  assert.deepEqual(refusing, [], `dependencies that do not run on Node ${lowest}`);
  assert.ok(satisfies(lowest, "^20.19.0 || ^22.12.0 || >=23") && !satisfies("20.18.0", "^20.19.0 || ^22.12.0 || >=23") && !satisfies(lowest, ">=22"));
  const readme = readFileSync(join(root, "README.md"), "utf8");
  assert.match(readme, new RegExp(`Node ${m[1]}\\.${m[2]} or newer`));
});

test("finding 10: a sampler run whose chains have not mixed ends with a warning naming what to change", () => {
  withDir((dir) => {
    const r = bayesdl(dir, "fit", "--data", "toy:regression-gap", "--model", "mlp:8", "--method", "sghmc", "--chains", "2", "--burnin", "0", "--samples", "6", "--thin", "2", "--lr", "1e-6", "--quiet");
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /^warning: R-hat is [\d.]+ \([^)]+\)(, [\d.]+ \([^)]+\))* above 1\.01: the 2 chains have not mixed; discard more of their start \(--burnin\) and run them longer \(--samples, --thin\)$/m);
    assert.match(r.err, /^warning: bulk ESS per chain is .* below 100: too few effective draws for reliable estimates; only 6 draws per chain were kept; raise --samples to 100 or more, and --thin if they are correlated$/m);
  });
});
