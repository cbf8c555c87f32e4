/**
 * bayesdl: Bayesian deep learning in TypeScript. Explicit named exports only.
 *
 * Layers: `core` (engine, keys, ownership) -> `models` (networks, likelihoods, priors, logDensity)
 * -> inference methods (`baselines/`, `sgmcmc/`, `vi/`, `scorevi/`) -> `eval` (predictive, metrics)
 * -> `io` (posterior directories) -> `jobs` (what the CLI runs).
 */

// core
export { compile, free, keep, key, split, sync, fromHost, toHost, scalar, namedLeaves, isArray, treeSize } from "./core/engine.js";
export type { Compiled, JArray, Key, Tree } from "./core/engine.js";

// models
export { mlp, type MlpOptions, type MlpParams } from "./models/mlp.js";
export { cnn, conv3x3, maxPool2, type CnnOptions, type CnnParams } from "./models/cnn.js";
export { networkFromSpec } from "./models/spec.js";
export { activate, dense, initDense, type Activation, type DenseParams, type Network } from "./models/network.js";
export { categorical, gaussian, type Likelihood, type LikelihoodSpec } from "./models/likelihood.js";
export { gaussianLogPrior, layerList, type PriorSpec } from "./models/prior.js";
export { logDensity, makeModel, type Batch, type LogDensityFn, type LogDensityOptions, type Model, type Params } from "./models/model.js";

export { fuseSteps, type StepFn } from "./core/fuse.js";
export { replicate, sliceTree, AUTO_VMAP_MAX_PARAMS, type Batching, type Replicated, type ReplicatedMethod, type StepMethod } from "./core/replicate.js";

// optimisers
export { adam, applyUpdates, chain, scale, scaleByAdam, sgd, type GradientTransformation } from "./optim/transform.js";

// baselines
export { create as createMap, type MapInfo, type MapMethod, type MapOptions, type MapState } from "./baselines/map.js";
export {
  create as createEnsemble,
  initMembers,
  stackTrees,
  unstackTree,
  type EnsembleMethod,
  type EnsembleOptions,
  type EnsembleState,
} from "./baselines/ensemble.js";

// SG-MCMC
export { create as createSgld, type SgldState } from "./sgmcmc/sgld.js";
export { create as createPsgld, type PsgldOptions, type PsgldState } from "./sgmcmc/psgld.js";
export { create as createSghmc, type SghmcOptions, type SghmcState } from "./sgmcmc/sghmc.js";
export { constant, cyclical, polynomial, type Schedule, type ScheduleSpec } from "./sgmcmc/schedule.js";
export { normalLike, type Sampler, type SamplerInfo, type SamplerOptions } from "./sgmcmc/common.js";
export { collectionSteps, diagnose, runChains, type ChainOptions, type ChainResult, type TraceDiagnostics } from "./sgmcmc/run.js";

// variational inference (src/vi): families over flat vectors, ADVI, mean-field BBB, alpha-divergences
export type { Family, FlatLogDensity } from "./vi/family.js";
export { ravel, unraveler, flatLogDensity, type FlatLeaf, type Unravel } from "./vi/flat.js";
export {
  fullRank,
  fullRankPrecision,
  lowRank,
  diagonal,
  fullRankScale,
  precisionFactor,
  lowerInverseSeries,
  triangularAdam,
  inverseSoftplus,
  SERIES_MAX_DIM,
  type FullRankOptions,
  type FullRankQ,
  type FullRankPrecisionQ,
  type LowRankQ,
  type DiagQ,
} from "./vi/gaussian.js";
export { realNvp, planar, stdNormalLogProb, type Flow, type FlowParams, type RealNvpOptions, type PlanarOptions } from "./vi/flows.js";
export { gaussianMixture, type MixtureFamily, type MixtureParams } from "./vi/mixture.js";
export { create as createAdvi, elboEstimate, type Advi, type AdviInfo, type AdviOptions, type AdviState, type EntropyMode } from "./vi/advi.js";
export {
  meanFieldInit,
  meanFieldSample,
  meanFieldSampleStacked,
  meanFieldLogProb,
  meanFieldEntropy,
  meanFieldKlToPrior,
  type MeanField,
} from "./vi/meanfield.js";
export { create as createBbb, klWeightSchedule, type BbbInfo, type BbbOptions, type BbbState, type Estimator, type KlWeight, type MeanFieldMethod, type ScaleMixturePrior, type VIPrior } from "./vi/bbb.js";
export { create as createAlpha, powerLogMeanExp, type AlphaInfo, type AlphaObjective, type AlphaOptions } from "./vi/alpha.js";

// score-based VI (src/scorevi): proximal score matching, GSM, BaM
export {
  create as createProximal,
  createFlat as createProximalFlat,
  scoreMatchingTerm,
  type FlatProximalOptions,
  type FlatProximalState,
  type FlatProximalVi,
  type LambdaSchedule,
  type ProximalInfo,
  type ProximalOptions,
  type ProximalState,
  type ProximalVi,
} from "./scorevi/proximal.js";
export { create as createGsm, gsmUpdate, type GsmOptions } from "./scorevi/gsm.js";
export { create as createBam, bamUpdate, type BamOptions, type BamSchedule } from "./scorevi/bam.js";
export { compileStep as compileScoreViStep, sampleState as sampleGaussianState, type GaussianState, type ScoreVi, type ScoreViInfo, type ScoreViOptions } from "./scorevi/gaussian-state.js";

// fast normals (Box-Muller over one bits draw per pytree)
export { normal, normals, normalTree } from "./core/normal.js";

// plots
export { lineChartSvg, type LineChartOptions, type SeriesPoint } from "./plot/svg.js";

// diagnostics
export { essBasic, essBulk, essTail, rankNormalize, rhat, rhatBasic, splitChains, summarize, type ConvergenceSummary } from "./diagnostics/convergence.js";

// training loop
export { fitEpochs, type FitOptions, type Progress, type Steppable } from "./train/fit.js";

// data
export {
  DATA_SOURCE_FORMS,
  DataFormatError,
  loadCsv,
  loadData,
  loadEmbeddedMnist,
  loadIdx,
  loadIdxArrays,
  loadUci,
  parseIdx,
  readIdx,
  toyRegressionGap,
  twoMoons,
  writeIdx,
  type ArrayData,
  type DataSplit,
  type LoadDataOptions,
  type Standardisation,
  type Task,
} from "./data/index.js";

// evaluation
export { predict, type Predictive } from "./eval/predict.js";
export {
  accuracy,
  auroc,
  brier,
  calibrationBins,
  classificationMetrics,
  ece,
  nll,
  oodAuroc,
  predictiveEntropy,
  regressionMetrics,
  type ClassificationMetrics,
  type RegressionMetrics,
} from "./eval/metrics.js";

// io
export { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from "./io/safetensors.js";
export { loadPosterior, savePosterior, POSTERIOR_FORMAT_VERSION, type PosteriorMeta, type PosteriorLeafSamples } from "./io/posterior.js";

// jobs and benchmarks
export { resolveOptions, runEvaluate, runFit, type EvaluateJobOptions, type FitJobOptions, type FitResult } from "./jobs/fit.js";
export { METHODS, METHOD_NAMES, type CommonFitOptions, type FitOutput, type MethodEntry, type MethodName } from "./jobs/methods.js";
export { runUciBench, uciDefaults, uciTable, type UciBenchOptions, type UciSplitResult } from "./bench/uci.js";
export { VERSION } from "./version.js";
