/**
 * bayesdl/node: everything of the browser-safe entry point (`bayesdl`) plus what needs Node: data
 * loaders that read files, posterior directories on disk, safetensors files, plots rendered to SVG,
 * the fit / evaluate / predict jobs the CLI runs, checkpoints, and the benchmarks.
 */
export * from "./index.js";

// data sources from files and the embedded MNIST digits
export {
  DATA_SOURCE_FORMS,
  embeddedMnistArrays,
  fingerprint,
  absoluteSource,
  loadCsv,
  loadCsvInputs,
  loadData,
  loadEmbeddedMnist,
  loadIdx,
  loadIdxArrays,
  loadIdxImages,
  loadUci,
  parseIdx,
  readIdx,
  splitFingerprint,
  writeIdx,
  type LoadDataOptions,
} from "./data/index.js";

// files: safetensors, posterior directories
export { readSafetensors, writeSafetensors } from "./io/safetensors-file.js";
export { checkOutputDir, loadPosterior, POSTERIOR_FORMAT_VERSION, PosteriorFormatError, savePosterior, writeDirectory, type LoadedPosterior, type PosteriorLeafSamples, type PosteriorMeta, type VariationalMeta } from "./io/posterior.js";

// jobs (what the CLI runs) and benchmarks
export { evaluationData, runEvaluate, runFit, type EvaluateJobOptions, type FitJobOptions, type FitJobResult } from "./jobs/fit.js";
export { predictionInputs, predictionsCsv, predictionsJson, runPredict, type PredictJobOptions, type PredictJobResult } from "./jobs/predict.js";
export { checkpointDirOf, findCheckpoint, loadCheckpoint, saveCheckpoint, CHECKPOINT_FORMAT_VERSION } from "./jobs/checkpoint.js";
export { gpData, gpMetrics, runGpEvaluate, runGpFit, type GpFitJob, type GpFitResult, type GpMetrics } from "./jobs/gp.js";
export { isGpPosterior, loadGpPosterior, saveGpPosterior, type GpPosteriorMeta } from "./io/gp-posterior.js";
export { gpTable, runGpBench, writeGpResults, type GpBenchResult } from "./bench/gp.js";
export { checkCompatible, evaluatePosterior, evaluateSamples, type Metrics } from "./jobs/evaluate.js";
export { drawsToLeaves, inPosteriorUnits, modelFromMeta, savedDistribution, savedDraws } from "./jobs/posterior.js";
export { runUciBench, uciDefaults, uciTable, type UciBenchOptions, type UciSplitResult } from "./bench/uci.js";

// plots
export { lineChartSvg, type LineChartOptions, type SeriesPoint } from "./plot/svg.js";
