import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { DIGEST_KEY, loadPosterior, POSTERIOR_FORMAT_VERSION, PosteriorFormatError, savePosterior, type PosteriorLeafSamples, type PosteriorMeta } from "../src/io/posterior.js";
import { encodeSafetensors } from "../src/io/safetensors.js";
import { readSafetensors } from "../src/io/safetensors-file.js";

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bayesdl-post-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const S = 2;

function makeMeta(): PosteriorMeta {
  return {
    formatVersion: POSTERIOR_FORMAT_VERSION,
    bayesdlVersion: "0.1.0",
    model: "mlp:3",
    inputShape: [2],
    outputDim: 1,
    likelihood: { kind: "gaussian", noise: "learned" },
    prior: { kind: "gaussian", scale: 1, perLayer: [1, 0.5] },
    method: "sghmc",
    methodOptions: { lr: 1e-3, thin: 10, nested: { a: [1, 2] } },
    seed: 42,
    data: { source: "uci:boston", fingerprint: "ab12", split: { seed: 0, fold: 3 }, targetScale: { mean: 22.5, std: 9.2 } },
    metrics: { rmse: 3.1, ll: -2.5 },
    numSamples: S,
    leaves: [
      { name: "layers.0.w", shape: [2, 3] },
      { name: "layers.0.b", shape: [3] },
      { name: "lik.logSigma", shape: [] },
    ],
    createdAt: "2024-01-01T00:00:00.000Z",
    wallTimeSeconds: 12.5,
    extra: { note: "test" },
  };
}

function makeSamples(): PosteriorLeafSamples[] {
  const fill = (n: number, off: number) => Float32Array.from({ length: n }, (_, i) => off + i * 0.25);
  return [
    { name: "layers.0.w", shape: [2, 3], data: fill(S * 6, -1) },
    { name: "layers.0.b", shape: [3], data: fill(S * 3, 5) },
    { name: "lik.logSigma", shape: [], data: fill(S, -0.5) },
  ];
}

/**
 * Rewrite posterior.json with a modified meta, and re-stamp samples.safetensors with its digest (so the
 * loader's consistency checks below the digest are reached).
 */
async function patchMeta(dir: string, f: (m: PosteriorMeta) => void): Promise<void> {
  const m = makeMeta();
  f(m);
  const text = JSON.stringify(m);
  await writeFile(join(dir, "posterior.json"), text);
  const file = join(dir, "samples.safetensors");
  const st = await readSafetensors(file);
  const tensors = Object.fromEntries(Object.entries(st.tensors).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: t.data }]));
  await writeFile(file, encodeSafetensors(tensors as Parameters<typeof encodeSafetensors>[0], { bayesdl: text, [DIGEST_KEY]: createHash("sha256").update(text).digest("hex") }));
}

function rejectsWith(p: Promise<unknown>, file: string, re: RegExp): Promise<void> {
  return assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PosteriorFormatError, String(e));
    assert.ok(e.message.startsWith(`${file}: `), `message should name ${file}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test("round trip is identical; no .tmp files; metadata visible in safetensors", async () => {
  await withTmp(async (root) => {
    const dir = join(root, "nested", "post"); // created with mkdir -p
    const meta = makeMeta();
    const samples = makeSamples();
    await savePosterior(dir, meta, samples);
    assert.deepEqual((await readdir(dir)).sort(), ["posterior.json", "samples.safetensors"]);
    const loaded = await loadPosterior(dir);
    assert.deepEqual(loaded.meta, meta);
    assert.deepEqual(loaded.samples, samples);
    const st = await readSafetensors(join(dir, "samples.safetensors"));
    assert.deepEqual(JSON.parse(st.metadata.bayesdl), meta);
    assert.deepEqual(st.tensors["layers.0.w"].shape, [S, 2, 3]);
    assert.deepEqual(st.tensors["lik.logSigma"].shape, [S]);
    assert.equal(st.tensors["layers.0.b"].dtype, "F32");
    assert.deepEqual(JSON.parse(await readFile(join(dir, "posterior.json"), "utf8")), meta);
    // a second save into the non-empty directory is refused; with force it replaces it whole and
    // leaves no temporary or old directories beside it
    await assert.rejects(savePosterior(dir, meta, samples), /the directory is not empty \(2 entries, e\.g\. posterior\.json\); choose another directory or pass --force/);
    await writeFile(join(dir, "stale.safetensors"), "old run");
    await savePosterior(dir, meta, samples, undefined, { force: true });
    assert.deepEqual((await readdir(dir)).sort(), ["posterior.json", "samples.safetensors"]);
    assert.deepEqual(await readdir(join(root, "nested")), ["post"]);
  });
});

test("array files carry the digest of their posterior.json: a mix of two runs is refused", async () => {
  await withTmp(async (root) => {
    const a = join(root, "a");
    const b = join(root, "b");
    await savePosterior(a, makeMeta(), makeSamples());
    await savePosterior(b, { ...makeMeta(), seed: 2 }, makeSamples());
    // seed-1 metadata with seed-2 weights (what a crash between two writes used to leave)
    await writeFile(join(a, "samples.safetensors"), await readFile(join(b, "samples.safetensors")));
    await rejectsWith(loadPosterior(a), join(a, "samples.safetensors"), /written with another posterior\.json \(its posterior_json_sha256 is [0-9a-f]{12}\.\.\., the posterior\.json beside it hashes to [0-9a-f]{12}\.\.\.\): the directory mixes files of two runs/);
  });
});

test("missing directory and missing files", async () => {
  await withTmp(async (root) => {
    const missing = join(root, "nope");
    await rejectsWith(loadPosterior(missing), missing, /posterior directory does not exist/);
    const empty = join(root, "empty");
    await mkdir(empty);
    await rejectsWith(loadPosterior(empty), join(empty, "posterior.json"), /file does not exist/);
    const dir = join(root, "p");
    await savePosterior(dir, makeMeta(), makeSamples());
    await unlink(join(dir, "samples.safetensors"));
    await rejectsWith(loadPosterior(dir), join(dir, "samples.safetensors"), /file does not exist/);
    const file = join(dir, "posterior.json");
    await rejectsWith(loadPosterior(file), file, /is not a directory/);
  });
});

test("posterior.json: bad JSON and format version mismatch", async () => {
  await withTmp(async (dir) => {
    await savePosterior(dir, makeMeta(), makeSamples());
    const file = join(dir, "posterior.json");
    await writeFile(file, "{ not json");
    await rejectsWith(loadPosterior(dir), file, /not valid JSON/);
    await patchMeta(dir, (m) => (m.formatVersion = 2));
    await rejectsWith(loadPosterior(dir), file, /format version mismatch: found 2, this bayesdl reads 1/);
    await patchMeta(dir, (m) => delete (m as Partial<PosteriorMeta>).formatVersion);
    await rejectsWith(loadPosterior(dir), file, /found undefined, this bayesdl reads 1/);
  });
});

test("leaf missing, shape mismatch, sample count mismatch, unlisted tensor", async () => {
  await withTmp(async (dir) => {
    await savePosterior(dir, makeMeta(), makeSamples());
    const st = join(dir, "samples.safetensors");
    await patchMeta(dir, (m) => m.leaves.push({ name: "layers.1.w", shape: [3, 1] }));
    await rejectsWith(loadPosterior(dir), st, /leaf "layers.1.w" listed in posterior.json is missing from the tensors/);
    await patchMeta(dir, (m) => (m.leaves[0].shape = [3, 2]));
    await rejectsWith(loadPosterior(dir), st, /leaf "layers.0.w": expected per-sample shape \[3, 2\], got \[2, 3\]/);
    await patchMeta(dir, (m) => (m.numSamples = 3));
    await rejectsWith(loadPosterior(dir), st, /sample count mismatch: posterior.json says numSamples = 3, but leaf "layers.0.w" has 2 samples/);
    await patchMeta(dir, (m) => m.leaves.pop());
    await rejectsWith(loadPosterior(dir), st, /tensor "lik.logSigma" is not listed in posterior.json/);
  });
});

test("savePosterior validates before writing anything", async () => {
  await withTmp(async (root) => {
    const dir = join(root, "p");
    const bad = makeSamples();
    bad[1] = { ...bad[1], data: new Float32Array(5) };
    await assert.rejects(savePosterior(dir, makeMeta(), bad), /leaf "layers.0.b": data has 5 elements, expected numSamples \* prod\(shape\) = 2 \* 3 = 6/);
    const renamed = makeSamples();
    renamed[0] = { ...renamed[0], name: "w" };
    await assert.rejects(savePosterior(dir, makeMeta(), renamed), /meta.leaves\[0\] is "layers.0.w" \[2, 3\] but samples\[0\] is "w" \[2, 3\]/);
    await assert.rejects(savePosterior(dir, { ...makeMeta(), formatVersion: 0 }, makeSamples()), /writes format version 1/);
    await assert.rejects(savePosterior(dir, makeMeta(), makeSamples().slice(1)), /lists 3 leaves but 2 sample arrays/);
    assert.deepEqual(await readdir(root), []);
  });
});
