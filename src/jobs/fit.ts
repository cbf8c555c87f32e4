/**
 * The fit and evaluate jobs behind `bayesdl fit` and `bayesdl evaluate`: a data source in, a posterior
 * and its metrics out, saved when asked. Front ends call these and only format what they return.
 */
import { key, split } from "../core/engine.js";
import { free, rebuildFrom, sliceTree } from "../core/tree.js";
import type { OptionValue } from "../core/options.js";
import { sharedRows, splitFingerprint } from "../data/fingerprint.js";
import { absoluteSource, baseSource, loadData, type LoadDataOptions } from "../data/index.js";
import type { ArrayData, DataSplit, Task } from "../data/types.js";
import { checkOutputDir, loadPosterior, POSTERIOR_FORMAT_VERSION, savePosterior, type PosteriorMeta } from "../io/posterior.js";
import { methodSpec } from "../methods.js";
import { categorical, gaussian, type GaussianNoise } from "../models/likelihood.js";
import { makeModel } from "../models/model.js";
import { DEFAULT_PRIOR_SCALE, type PriorScaling, type PriorSelection, type PriorSpec } from "../models/prior.js";
import { networkFromSpec } from "../models/spec.js";
import { DEFAULT_BATCH_SIZE, fit, type FitResult, type Monitor } from "../run/driver.js";
import { evidenceWarmStart } from "../run/evidence.js";
import { DivergenceError, type Progress, type Restart } from "../run/loop.js";
import { resolve } from "node:path";
import { checkpointDirOf, findCheckpoint, loadCheckpoint, removeCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { convergenceWarnings } from "../diagnostics/warnings.js";
import { selectPriorScale } from "./select.js";
import { VERSION } from "../version.js";
import { checkCompatible, checkInputs, evaluatePosterior, type Metrics } from "./evaluate.js";
import { drawsToLeaves, inPosteriorUnits, modelFromMeta, savedDraws, savedPosterior } from "./posterior.js";
import { readSafetensors } from "../io/safetensors-file.js";
import { tensorsToTree } from "../core/posterior.js";
import type { Model, Params } from "../models/model.js";

/** Everything `bayesdl fit` needs. */
export interface FitJobOptions {
  readonly data: string;
  readonly model: string;
  /** A method of the table (methods.ts). */
  readonly method: string;
  readonly seed: number;
  /** The method's options by key (core/options.ts, e.g. `{ epochs: 30, lr: 1e-3 }`); absent ones take its defaults. */
  readonly options?: Readonly<Record<string, OptionValue | undefined>>;
  /** Minibatch size (default {@link DEFAULT_BATCH_SIZE}, 128). */
  readonly batchSize?: number;
  /** The prior's layer scale s (default {@link DEFAULT_PRIOR_SCALE} with fan-in scaling, 1 without). */
  readonly priorScale?: number;
  /** Optional s_l per layer (overrides priorScale). */
  readonly priorPerLayer?: number[];
  /**
   * Choose the prior scale s by cross-validation on the training part (jobs/select.ts) before the fit;
   * `priorScale` is then ignored and the choice is saved in posterior.json (`prior.selected`).
   */
  readonly priorSelect?: { readonly by?: "cv"; readonly folds?: number; readonly grid?: readonly number[] } | { readonly by: "evidence"; readonly rounds?: number; readonly epochs?: number };
  /** Set by the job itself after a `priorSelect` run: what cross-validation chose (saved with the posterior). */
  readonly priorSelected?: PriorSelection;
  /** Progress lines of a `priorSelect` run. */
  readonly onSelect?: (line: string) => void;
  /** `fan-in` (default): weights N(0, s^2 / fanIn), biases N(0, s^2); `none`: N(0, s^2) on every parameter. See models/prior.ts. */
  readonly priorScaling?: PriorScaling;
  /** Regression only: fixed, learned or heteroscedastic observation noise (models/likelihood.ts), and its (initial) scale in standardised units. */
  readonly noise?: GaussianNoise;
  readonly sigma?: number;
  readonly split?: number;
  readonly target?: string;
  /** CSV: the task, when the target column does not settle it. */
  readonly task?: Task;
  readonly testSize?: number;
  /**
   * Start from these weights instead of the model's initialiser or the method's MAP warm start: a
   * directory written by `fit --out` (its first draw: the mode of a MAP fit) or a safetensors file
   * with one tensor per parameter leaf named by its path (`net.layers.0.w`, ...).
   */
  readonly from?: string;
  /** Learning-curve callback (run/driver.ts). */
  readonly monitor?: Monitor;
  /** Output directory; nothing is written when omitted. It must not exist or be empty unless `force`. */
  readonly out?: string;
  /** Replace a non-empty `out`. */
  readonly force?: boolean;
  /** Write a checkpoint (`<out>.checkpoint`) every this many steps; needs `out`. */
  readonly checkpointEvery?: number;
  /**
   * Continue the run checkpointed in this directory (or in `<this>.checkpoint`): every other option is
   * taken from the checkpoint, except the callbacks.
   */
  readonly resume?: string;
  readonly onProgress?: (p: Progress) => void;
}

/** What a fit produced. */
export interface FitJobResult {
  readonly meta: PosteriorMeta;
  readonly metrics: Metrics;
  readonly wallTimeSeconds: number;
  readonly data: DataSplit;
  /** Where the posterior was saved, if it was. */
  readonly out?: string;
  /** Convergence warnings of a sampler run (diagnostics/warnings.ts), empty when there are none. */
  readonly warnings: readonly string[];
}

/** The part of a fit job a checkpoint records (plain values; paths absolute). */
type SavedJob = Omit<FitJobOptions, "monitor" | "onProgress" | "onSelect" | "resume">;

/**
 * The warnings of a run's chain restarts (run/loop.ts): one per divergence (at most 3 per chain), one
 * per chain for its runaways, with their count, steps and largest score, and one per chain that went
 * on running away with its restarts used up, with how many of its draws were left out.
 */
export function restartWarnings(restarts: readonly Restart[], strays?: FitResult["strays"]): string[] {
  const out: string[] = [];
  for (const r of restarts) {
    if (r.reason === "non-finite") out.push(`chain ${r.copy + 1} diverged (objective or state not finite) at step ${r.step} and was restarted from its last good state; lower --lr if this recurs`);
  }
  const chains = [...new Set(restarts.filter((r) => r.reason === "runaway").map((r) => r.copy))].sort((a, b) => a - b);
  for (const c of chains) {
    const rs = restarts.filter((r): r is Extract<Restart, { reason: "runaway" }> => r.reason === "runaway" && r.copy === c);
    const worst = rs.reduce((a, b) => (b.z > a.z ? b : a));
    const when = rs.length === 1 ? `at step ${rs[0].step}` : `${rs.length} times (steps ${rs[0].step} to ${rs[rs.length - 1].step})`;
    out.push(
      `chain ${c + 1} ran away ${when}, its objective up to ${worst.excess.toPrecision(3)} per datum above the chains' median (${worst.z.toFixed(0)} robust sd), and was restarted from an earlier state${rs.length > 1 ? " each time" : ""}; lower --lr if this recurs`,
    );
  }
  const strayChains = [...new Set((strays?.at ?? []).map((r) => r.copy))].sort((a, b) => a - b);
  for (const c of strayChains) {
    const at = strays!.at.filter((r) => r.copy === c);
    const n = strays!.leftOut[c] ?? 0;
    out.push(
      `chain ${c + 1} ran away again with its restarts used up, ${at.length === 1 ? `at step ${at[0].step}` : `${at.length} times (steps ${at[0].step} to ${at[at.length - 1].step})`}; ${n} of its draws ${n === 1 ? "was" : "were"} taken then and ${n === 1 ? "is" : "are"} not in the posterior; lower --lr`,
    );
  }
  return out;
}

/**
 * The weights `--from` names (see {@link FitJobOptions.from}), checked against the model.
 * @throws naming the path and what does not match.
 */
export async function startingWeights(model: Model, from: string, modelSpec: string): Promise<Params> {
  const template = model.init(key(0));
  try {
    if (from.endsWith(".safetensors")) {
      const { tensors } = await readSafetensors(from);
      const named = Object.entries(tensors).map(([name, t]) => {
        if (t.dtype !== "F32" && t.dtype !== "F64") throw new Error(`--from ${from}: tensor '${name}' is ${t.dtype}; expected F32 or F64 weights`);
        const size = t.shape.reduce((a, d) => a * d, 1);
        // A leading axis of one (a single draw) is dropped.
        const shape = t.shape.length > 0 && t.shape[0] === 1 && t.data.length === size ? t.shape.slice(1) : t.shape;
        return { name, shape, data: Float32Array.from(t.data as ArrayLike<number>) };
      });
      try {
        return tensorsToTree(template, named);
      } catch (e) {
        throw new Error(`--from ${from}: ${(e as Error).message}`);
      }
    }
    const loaded = await loadPosterior(from);
    if (loaded.meta.model !== modelSpec) throw new Error(`--from ${from}: holds a ${loaded.meta.model} posterior, but the fit's model is ${modelSpec}`);
    const draws = savedDraws(model, loaded.samples, loaded.meta.numSamples);
    const all = draws.draws(key(0));
    draws.dispose();
    const first = sliceTree(all, 0);
    const own = rebuildFrom(first, (a) => a.ref.mul(1));
    free(first);
    free(all);
    return own;
  } finally {
    free(template);
  }
}

/** MAP epochs of the first round of `--prior-scale evidence` (later rounds half as many each). */
export const EVIDENCE_EPOCHS = 20;
/** Rounds of `--prior-scale evidence`. */
export const EVIDENCE_ROUNDS = 4;

/** The prior a fit job's options ask for. */
export function priorOf(o: Pick<FitJobOptions, "priorScale" | "priorPerLayer" | "priorScaling">): PriorSpec {
  const scaling = o.priorScaling ?? "fan-in";
  const scale = o.priorScale ?? (scaling === "fan-in" ? DEFAULT_PRIOR_SCALE : 1);
  return { kind: "gaussian", scale, ...(o.priorPerLayer ? { perLayer: [...o.priorPerLayer] } : {}), scaling };
}

/**
 * Fit a posterior, evaluate it on the held-out split, and save it when `out` is given; with
 * `checkpointEvery`, checkpoint the run beside `out`; with `resume`, continue a checkpointed run.
 */
export async function runFit(given: FitJobOptions): Promise<FitJobResult> {
  const t0 = performance.now();
  let o: FitJobOptions = given;
  let resumed: Awaited<ReturnType<typeof loadCheckpoint<SavedJob>>> | undefined;
  if (given.resume !== undefined) {
    resumed = await loadCheckpoint<SavedJob>(await findCheckpoint(given.resume));
    o = { ...resumed.job, monitor: given.monitor, onProgress: given.onProgress };
  }
  const spec = methodSpec(o.method);
  if (o.checkpointEvery !== undefined && !o.out) throw new Error("--checkpoint-every needs --out: the checkpoint is written beside the posterior, in <out>.checkpoint");
  if (o.out) await checkOutputDir(o.out, o.force ?? false);
  const data = loadData(o.data, { seed: o.seed, split: o.split, target: o.target, task: o.task, testSize: o.testSize, role: "fit" });
  const fingerprint = splitFingerprint(data);
  if (resumed && resumed.fingerprint !== fingerprint) {
    throw new Error(`--resume ${given.resume}: the data ${o.data} are not those the run started on (their fingerprint changed); a run can only continue on the same data`);
  }
  if (data.train.n === 0) throw new Error(`--data ${o.data}: the training part is empty`);
  if (data.test.n === 0) {
    throw new Error(`--data ${o.data}: no held-out examples (${data.train.n} in all); fit needs a test part to report metrics on (--test-size at least 1, and more data than that)`);
  }
  const classification = data.task === "classification";
  const likelihood = classification ? categorical() : gaussian({ sigma: o.sigma ?? 1, noise: o.noise ?? "learned" });
  const outputDim = likelihood.outputDim(data.numClasses);
  const network = networkFromSpec(o.model, data.train.xShape, outputDim);
  let model = makeModel(network, likelihood, priorOf(o));
  checkCompatible(model, data.train, `--data ${o.data}`);
  const [kFit, kSelect] = split(key(o.seed), 2);
  if (o.priorSelect?.by === "evidence" && !resumed) {
    // MAP rounds with the prior tuned per layer by the Laplace evidence (run/evidence.ts).
    const ps = o.priorSelect;
    const batchSize = Math.min(o.batchSize ?? DEFAULT_BATCH_SIZE, data.train.n);
    const e = await evidenceWarmStart(fit, kSelect, model, data.train, { epochs: ps.epochs ?? EVIDENCE_EPOCHS, rounds: ps.rounds ?? EVIDENCE_ROUNDS, batchSize });
    free(e.params);
    for (const r of e.rounds) o.onSelect?.(`evidence round: ${r.epochs} MAP epochs -> prior scales ${r.priorScales.map((v) => v.toPrecision(3)).join(", ")} (log evidence ${r.logEvidence.toFixed(1)})`);
    const chosen = [...(e.prior.perLayer ?? [e.prior.scale])];
    o = { ...o, priorScale: chosen[0], priorPerLayer: chosen, priorSelect: undefined, priorSelected: { by: "evidence", rounds: e.rounds, chosen } };
    model = makeModel(network, likelihood, priorOf(o));
  } else if (o.priorSelect && !resumed) {
    const selected = await selectPriorScale(kSelect, spec, model, data, { ...o.priorSelect, seed: o.seed, batchSize: o.batchSize, options: o.options, log: o.onSelect });
    // From here on (and in a checkpoint of this run) the job is the fit at the chosen scale.
    o = { ...o, priorScale: selected.chosen, priorSelect: undefined, priorSelected: selected };
    model = makeModel(network, likelihood, priorOf(o));
  } else {
    free(kSelect);
  }
  const prior = model.prior;
  const ckDir = o.out && o.checkpointEvery !== undefined ? checkpointDirOf(o.out) : undefined;
  const { monitor: _monitor, onProgress: _onProgress, onSelect: _onSelect, resume: _resume, ...settings } = o;
  const job: SavedJob = { ...settings, data: absoluteSource(o.data), out: o.out === undefined ? undefined : resolve(o.out) };
  const initParams = o.from !== undefined && !resumed ? await startingWeights(model, o.from, o.model) : undefined;
  let result: FitResult;
  try {
    result = await fit(kFit, spec, model, data.train, {
      initParams,
      batchSize: o.batchSize,
      options: o.options,
      heldOut: data.test,
      onProgress: o.onProgress,
      monitor: o.monitor,
      resume: resumed?.checkpoint,
      checkpoint: ckDir ? { every: o.checkpointEvery!, save: (c) => saveCheckpoint(ckDir, job, fingerprint, c) } : undefined,
    });
  } catch (e) {
    free(initParams);
    if (!(e instanceof DivergenceError)) throw e;
    free(e.lastGood);
    throw new Error(`${e.message}.${ckDir ? ` The last good state is saved in ${ckDir}.` : ""}`);
  }
  free(initParams);
  try {
    // A posterior with its own function-space predictive (Laplace) is scored by it; others by their draws.
    const metrics: Metrics = await evaluatePosterior(model, result.posterior.predict ? result.posterior : result.sampled, data, undefined, { key: key(o.seed) });
    for (const d of result.diagnostics ?? []) {
      metrics[`rhat: ${d.name}`] = d.rhat;
      metrics[`essBulk: ${d.name}`] = d.essBulk;
      metrics[`essTail: ${d.name}`] = d.essTail;
    }
    const leaves = await drawsToLeaves(result.sampled);
    const q = result.posterior.size === undefined ? await result.posterior.tensors() : undefined;
    const numSamples = result.sampled.size!;
    const chains = typeof result.options.chains === "number" ? result.options.chains : 1;
    const own = result.posterior.options?.warnings;
    const warnings = [
      ...restartWarnings(result.restarts ?? [], result.strays),
      // A method's own (sampled Laplace's EM).
      ...(Array.isArray(own) ? own.map(String) : []),
      // Per chain as run: draws left out of the posterior (strays) are still in the traces.
      ...(result.diagnostics ? convergenceWarnings(result.diagnostics, chains, (numSamples + (result.strays?.leftOut ?? []).reduce((a, b) => a + b, 0)) / chains) : []),
    ];
    const wallTimeSeconds = (performance.now() - t0) / 1000;
    const extra = {
      lastInfo: result.lastInfo,
      ...(result.traces ? { traces: result.traces, stepsPerChain: result.steps } : {}),
      ...(result.diagnostics ? { diagnostics: result.diagnostics } : {}),
      ...(warnings.length > 0 ? { warnings } : {}),
    };
    const meta: PosteriorMeta = {
      formatVersion: POSTERIOR_FORMAT_VERSION,
      bayesdlVersion: VERSION,
      model: o.model,
      inputShape: [...data.train.xShape],
      outputDim,
      likelihood: likelihood.spec,
      prior: {
        kind: prior.kind,
        scale: prior.scale,
        ...(prior.perLayer ? { perLayer: [...prior.perLayer] } : {}),
        scaling: prior.scaling,
        ...(o.priorSelected ? { selected: o.priorSelected } : {}),
      },
      method: o.method,
      methodOptions: { ...result.options, batchSize: Math.min(o.batchSize ?? DEFAULT_BATCH_SIZE, data.train.n), ...(result.warmStart ? { warmStart: result.warmStart } : {}), ...(o.from !== undefined ? { from: resolve(o.from) } : {}) },
      seed: o.seed,
      data: {
        source: absoluteSource(o.data),
        given: o.data,
        fingerprint,
        split: data.splitInfo,
        ...(data.targetScale ? { targetScale: data.targetScale } : {}),
        ...(data.inputScale ? { inputScale: { columns: [...data.inputScale.columns], mean: [...data.inputScale.mean], std: [...data.inputScale.std] } } : {}),
      },
      metrics,
      numSamples,
      leaves: leaves.map((l) => ({ name: l.name, shape: l.shape })),
      createdAt: new Date().toISOString(),
      wallTimeSeconds,
      ...(q ? { variational: { family: result.posterior.kind, options: { ...result.posterior.options }, tensors: q.map((t) => ({ name: t.name, shape: [...t.shape] })) } } : {}),
      extra,
    };
    if (o.out) await savePosterior(o.out, meta, leaves, q, { force: o.force });
    if (ckDir) await removeCheckpoint(ckDir);
    return { meta, metrics, wallTimeSeconds, data, out: o.out, warnings };
  } finally {
    if (result.sampled !== result.posterior) result.sampled.dispose();
    result.posterior.dispose();
  }
}

/** Options of {@link runEvaluate}. */
export interface EvaluateJobOptions {
  readonly posterior: string;
  /** Data source; defaults to the one the posterior was fitted on (then its own split is used). */
  readonly data?: string;
  /** Key of fresh draws (`samples`) and split seed of another shuffled source; defaults to the posterior's seed. */
  readonly seed?: number;
  readonly split?: number;
  readonly target?: string;
  readonly task?: Task;
  readonly testSize?: number;
  /** Optional out-of-distribution inputs for the entropy AUROC (classification posteriors). */
  readonly ood?: string;
  /**
   * Variational posteriors: draw this many fresh samples from q (keyed by `seed`) instead of using
   * the draws saved at fit time.
   */
  readonly samples?: number;
}

/**
 * The test data a saved posterior is evaluated on, never its training data. On the source it was
 * fitted on (the default), or one derived from it (`mnist:rotate=30`), the posterior's own split: seed,
 * test size, UCI split, CSV target and task come from posterior.json, and flags that would move training
 * examples into the test part are refused. On another source: idx and csv files are used whole; tabular data are put in the
 * posterior's units (inPosteriorUnits); for image sources, a test example whose pixels equal a
 * training example's is refused.
 */
export function evaluationData(meta: PosteriorMeta, o: Omit<EvaluateJobOptions, "posterior" | "ood" | "samples">): { data: DataSplit; sameData: boolean } {
  const fitted = meta.data.source;
  const s = meta.data.split ?? {};
  const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
  const str = (v: unknown): string | undefined => (v === undefined ? undefined : String(v));
  const task = (v: unknown): Task | undefined => (v === "regression" || v === "classification" ? v : undefined);
  const own: LoadDataOptions = { seed: num(s.seed) ?? meta.seed, split: num(s.split), target: str(s.target), task: task(s.task), testSize: num(s.testSize), role: "fit" };
  const source = o.data ?? fitted;
  const same = absoluteSource(source) === absoluteSource(fitted);
  if (same || derivedFrom(source, fitted)) {
    const refuse = (flag: string, given: unknown, saved: unknown) => {
      if (given !== undefined && saved !== undefined && String(given) !== String(saved)) {
        throw new Error(`${flag} ${given}: the posterior was fitted on ${meta.data.given ?? fitted} with ${flag} ${saved}; another value would put training examples in the test part. Omit ${flag} (the posterior's own held-out part is used), or evaluate on other data (--data)`);
      }
    };
    refuse("--test-size", o.testSize, own.testSize);
    refuse("--split", o.split, own.split);
    refuse("--target", o.target, own.target);
    refuse("--task", o.task, own.task);
    // A source derived from the fitted one (mnist:rotate=30 of mnist) keeps its split: the held-out
    // examples, transformed.
    return { data: loadData(same ? fitted : source, own), sameData: same };
  }
  const csv = source.startsWith("csv:");
  const data = loadData(source, { seed: o.seed ?? meta.seed, split: o.split, target: o.target ?? (csv ? own.target : undefined), task: o.task ?? (csv ? own.task : undefined), testSize: o.testSize, role: "evaluate" });
  const what = `--data ${source}`;
  const adapted = inPosteriorUnits(data, meta, what);
  if (!data.inputScale && !meta.data.inputScale) {
    let train: ArrayData | undefined;
    try {
      train = loadData(fitted, own).train;
    } catch {
      train = undefined; // the training data are no longer where they were: nothing to compare with
    }
    const shared = train ? sharedRows(train, adapted.test) : 0;
    if (shared > 0) {
      throw new Error(`${what}: ${shared} of its ${adapted.test.n} examples have exactly the inputs of examples this posterior was trained on (${meta.data.given ?? fitted}); evaluate on data it has not seen`);
    }
  }
  return { data: adapted, sameData: false };
}

/** Whether `source` is another transform of the examples `fitted` names (same base, not the same source). */
function derivedFrom(source: string, fitted: string): boolean {
  const a = absoluteSource(source);
  const b = absoluteSource(fitted);
  return a !== b && baseSource(a) === baseSource(b);
}

/** Load a saved posterior and compute its metrics on the test part of a data source. */
export async function runEvaluate(o: EvaluateJobOptions): Promise<{ meta: PosteriorMeta; metrics: Metrics; data: DataSplit; sameData: boolean }> {
  const loaded = await loadPosterior(o.posterior);
  const meta = loaded.meta;
  const model = modelFromMeta(meta);
  if (o.ood !== undefined && meta.likelihood.kind !== "categorical") {
    throw new Error(`--ood: the out-of-distribution AUROC ranks inputs by predictive entropy over classes; ${o.posterior} is a regression posterior (${meta.likelihood.kind} likelihood)`);
  }
  const seed = o.seed ?? meta.seed;
  const { data, sameData } = evaluationData(meta, o);
  let ood: ArrayData | undefined;
  if (o.ood) {
    // OOD inputs made from the training source (mnist:rotate=90) come from its held-out part too.
    const od = derivedFrom(o.ood, meta.data.source) ? evaluationData(meta, { data: o.ood }).data : loadData(o.ood, { seed, role: "evaluate" });
    ood = od.test.n > 0 ? od.test : od.train;
    checkInputs(model, ood, `--ood ${o.ood}`);
  }
  const posterior = savedPosterior(model, loaded, o.samples, o.posterior);
  try {
    const metrics = await evaluatePosterior(model, posterior, data, ood, { key: key(seed), samples: o.samples });
    return { meta, metrics, data, sameData };
  } finally {
    posterior.dispose();
  }
}
