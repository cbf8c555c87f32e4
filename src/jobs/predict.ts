/**
 * The predict job behind `bayesdl predict`: a saved posterior applied to new inputs, with no targets
 * needed. Per input it gives the predictive mean and standard deviation (regression, in the target's
 * original units, split into epistemic and aleatoric parts, with quantiles) or the class probabilities,
 * entropy and mutual information (classification); see eval/summary.ts.
 *
 * Inputs are put in the posterior's units: a CSV file's columns are chosen by the names the posterior
 * was fitted on and standardised with the training mean and standard deviation saved in
 * posterior.json; IDX images are scaled like the IDX loader scales them; any other source is loaded as
 * `evaluate` loads it and its test part is used.
 */
import { stat } from "node:fs/promises";
import { key } from "../core/engine.js";
import { loadCsvInputs, loadIdxImages } from "../data/index.js";
import type { ArrayData } from "../data/types.js";
import { predictPosterior } from "../eval/predict.js";
import { DEFAULT_QUANTILES, summarise, type PredictiveSummary } from "../eval/summary.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadPosterior, type PosteriorMeta } from "../io/posterior.js";
import { checkFinite, checkInputs } from "./evaluate.js";
import { evaluationData } from "./fit.js";
import { modelFromMeta, savedPosterior } from "./posterior.js";

/** Options of {@link runPredict}. */
export interface PredictJobOptions {
  readonly posterior: string;
  /** `csv:<file>` (inputs only; a target column may be present and is ignored), `idx:<images>[,<labels>]`, or any source. */
  readonly data: string;
  /** Write the predictions here: `.csv` or `.json` (by extension); nothing is written when omitted. */
  readonly out?: string;
  /** Replace an existing `out`. */
  readonly force?: boolean;
  /** Variational posteriors: draw this many fresh samples from q (keyed by `seed`). */
  readonly samples?: number;
  readonly seed?: number;
  /** Quantile levels of regression predictives (default 0.05, 0.25, 0.5, 0.75, 0.95). */
  readonly quantiles?: readonly number[];
}

/** What a prediction produced. */
export interface PredictJobResult {
  readonly meta: PosteriorMeta;
  readonly n: number;
  readonly summary: PredictiveSummary;
  /** Class names in output order (classification). */
  readonly classes?: readonly string[];
  /** Header columns of a CSV source that were not used as inputs. */
  readonly ignored: readonly string[];
}

/** The inputs of `source` in the posterior's units (see the module comment). */
export function predictionInputs(meta: PosteriorMeta, source: string, seed?: number): { data: ArrayData; ignored: readonly string[] } {
  const colon = source.indexOf(":");
  const scheme = colon < 0 ? source : source.slice(0, colon);
  const rest = colon < 0 ? "" : source.slice(colon + 1);
  const size = meta.inputShape.reduce((a, b) => a * b, 1);
  if (scheme === "csv") {
    if (rest === "") throw new Error(`--data ${source}: a CSV source needs a file`);
    const scale = meta.data.inputScale;
    const columns = scale ? scale.columns : Array.from({ length: size }, (_, j) => String(j));
    const t = loadCsvInputs(rest, columns);
    const d = columns.length;
    const x = new Float32Array(t.n * d);
    for (let i = 0; i < t.n; i++) {
      for (let j = 0; j < d; j++) x[i * d + j] = scale ? (t.x[i * d + j] - scale.mean[j]) / scale.std[j] : t.x[i * d + j];
    }
    return { data: { x, xShape: scale ? [d] : meta.inputShape, y: new Float32Array(t.n), n: t.n }, ignored: t.ignored };
  }
  if (scheme === "idx") {
    const images = rest.split(",")[0];
    if (images === "") throw new Error(`--data ${source}: an idx source needs an image file`);
    const im = loadIdxImages(images);
    return { data: { x: im.x, xShape: im.xShape, y: new Float32Array(im.n), n: im.n }, ignored: [] };
  }
  return { data: evaluationData(meta, { data: source, seed }).data.test, ignored: [] };
}

/** Apply a saved posterior to the inputs of `o.data` and summarise its predictive per input; write it when `o.out` is set. */
export async function runPredict(o: PredictJobOptions): Promise<PredictJobResult> {
  const out = o.out;
  const format = out === undefined ? undefined : out.endsWith(".csv") ? "csv" : out.endsWith(".json") ? "json" : undefined;
  if (out !== undefined && format === undefined) throw new Error(`--out ${out}: expected a file name ending in .csv or .json`);
  if (out !== undefined && !o.force && (await stat(out).catch(() => undefined)) !== undefined) throw new Error(`--out ${out}: the file exists; choose another name or pass --force to replace it`);
  const loaded = await loadPosterior(o.posterior);
  const meta = loaded.meta;
  const model = modelFromMeta(meta);
  const { data, ignored } = predictionInputs(meta, o.data, o.seed);
  if (data.n === 0) throw new Error(`--data ${o.data}: no inputs to predict`);
  checkInputs(model, data, `--data ${o.data}`);
  const posterior = savedPosterior(model, loaded, o.samples, o.posterior);
  let summary: PredictiveSummary;
  try {
    const p = await predictPosterior(model, posterior, data, key(o.seed ?? meta.seed), o.samples);
    checkFinite(p);
    summary = summarise(p, data.n, meta.data.targetScale ?? { mean: 0, std: 1 }, o.quantiles ?? DEFAULT_QUANTILES);
  } finally {
    posterior.dispose();
  }
  const classes =
    summary.kind === "classification"
      ? typeof meta.data.split?.classes === "string"
        ? (JSON.parse(meta.data.split.classes) as string[])
        : Array.from({ length: summary.numClasses }, (_, c) => String(c))
      : undefined;
  const result: PredictJobResult = { meta, n: data.n, summary, ...(classes ? { classes } : {}), ignored };
  if (out !== undefined) await writeFileAtomic(out, format === "csv" ? predictionsCsv(result) : predictionsJson(result, o));
  return result;
}

/** Column names and per-row values of a prediction table. */
function table(r: PredictJobResult): { header: string[]; columns: ArrayLike<number>[] } {
  const s = r.summary;
  if (s.kind === "regression") {
    const q = s.quantiles.map((x) => ({ name: `q${String(Math.round(x.level * 1000) / 10).replace(".", "_")}`, values: x.values }));
    return { header: ["mean", "sd", "epistemic_sd", "aleatoric_sd", ...q.map((x) => x.name)], columns: [s.mean, s.sd, s.epistemicSd, s.aleatoricSd, ...q.map((x) => x.values)] };
  }
  const k = s.numClasses;
  const probs = Array.from({ length: k }, (_, c) => Float64Array.from({ length: r.n }, (_, i) => s.probs[i * k + c]));
  return {
    header: ["predicted", ...r.classes!.map((c) => `p_${c}`), "entropy", "aleatoric_entropy", "mutual_information"],
    columns: [s.predicted, ...probs, s.entropy, s.aleatoricEntropy, s.mutualInformation],
  };
}

/** CSV cell of a header name (quoted when it holds a delimiter, quote or line break). */
function cell(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The predictions as CSV: one row per input, in input order; numbers at full precision. */
export function predictionsCsv(r: PredictJobResult): string {
  const { header, columns } = table(r);
  const lines = [header.map(cell).join(",")];
  const predicted = r.summary.kind === "classification" ? r.classes! : undefined;
  for (let i = 0; i < r.n; i++) lines.push(columns.map((c, j) => (j === 0 && predicted ? cell(predicted[c[i]]) : String(c[i]))).join(","));
  return lines.join("\n") + "\n";
}

/** The predictions as JSON: what was predicted with, and one array per column. */
export function predictionsJson(r: PredictJobResult, o: PredictJobOptions): string {
  const { header, columns } = table(r);
  const body: Record<string, unknown> = {
    posterior: o.posterior,
    method: r.meta.method,
    model: r.meta.model,
    data: o.data,
    n: r.n,
    task: r.summary.kind,
    ...(r.classes ? { classes: r.classes } : {}),
    predictions: Object.fromEntries(header.map((h, j) => [h, j === 0 && r.classes ? Array.from(columns[0], (c) => r.classes![c]) : Array.from(columns[j])])),
  };
  return JSON.stringify(body) + "\n";
}
