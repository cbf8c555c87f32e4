/**
 * bayesdl: Bayesian deep learning in TypeScript. This entry point is browser-safe (no Node modules):
 * the array engine boundary, models, every inference method and its spec, the driver, posteriors,
 * evaluation metrics, diagnostics and in-memory data helpers. `bayesdl/node` adds file loaders, saved
 * posterior directories, plots and the CLI's jobs.
 *
 * Layers: `core` (engine, trees, keys, the InferenceMethod / Posterior / MethodSpec contract) ->
 * `models` (networks, likelihoods, priors, logDensity) -> method families (`baselines/`, `sgmcmc/`,
 * `vi/`, `scorevi/`, `laplace/`) -> `methods` (the table) -> `run` (the driver) -> `eval`, `diagnostics`.
 */

// core: engine boundary, trees, math, the contract
export {
  compile,
  fromHost,
  grad,
  gradient,
  gradientWithAux,
  jit,
  key,
  lax,
  nn,
  np,
  random,
  scalar,
  split,
  sync,
  toHost,
  valueAndGrad,
  valueAndGradient,
  vmap,
  vmapped,
} from "./core/engine.js";
export type { Compiled, JArray, Key } from "./core/engine.js";
export {
  concatTrees,
  flattenTree,
  free,
  isArray,
  keep,
  leaves,
  mapTree,
  namedLeaves,
  rebuildByPath,
  sliceTree,
  stackTrees,
  sumAll,
  treeSize,
  unstackTree,
  zerosLike,
  type NamedLeaf,
  type Tree,
} from "./core/tree.js";
export { inverseSoftplus, LOG_2PI, softplus, stdNormalLogProb } from "./core/math.js";
export { normal, normals, normalTree } from "./core/normal.js";
export type { Info, InferenceMethod, NamedTensor, Posterior, PosteriorKind } from "./core/method.js";
export { distribution, mapDraws, pointMass, sampleSet, sampleSetFromTensors, tensorsToTree, treeToTensors, union } from "./core/posterior.js";
export { flatLogDensity, onParams, ravel, unraveler, unravelRows, type FlatLeaf, type FlatLogDensity, type Unravel } from "./core/ravel.js";
export { AUTO_VMAP_MAX_PARAMS, replicate, type Batching, type Replicated, type ReplicatedMethod } from "./core/replicate.js";
export { fuseSteps } from "./core/fuse.js";
export {
  asSchedule,
  constant,
  customSchedule,
  cyclicalCosine,
  cyclicalGate,
  gateOpen,
  halvingCycle,
  linearWarmup,
  polynomial,
  inverseTime,
  scheduleValues,
  type Schedule,
  type ScheduleSpec,
} from "./core/schedule.js";
export { OPTIONS, OptionError, type OptionDef, type OptionValue } from "./core/options.js";
export { resolveOptions, use, type AnyMethodSpec, type BuildContext, type DefaultContext, type MethodSpec, type OptionUse, type OptionUses, type RunPlan } from "./core/spec.js";

// models
export { mlp, type MlpOptions, type MlpParams } from "./models/mlp.js";
export { cnn, conv3x3, maxPool2, type CnnOptions, type CnnParams } from "./models/cnn.js";
export { networkFromSpec } from "./models/spec.js";
export { activate, dense, initDense, type Activation, type DenseParams, type Network } from "./models/network.js";
export { categorical, gaussian, type Likelihood, type LikelihoodSpec } from "./models/likelihood.js";
export { DEFAULT_PRIOR_SCALE, fanIn, fanInPrior, gaussianLogPrior, layerList, leafScales, type PriorScaling, type PriorSpec } from "./models/prior.js";
export { initMembers, logDensity, makeModel, type Batch, type LogDensityFn, type LogDensityOptions, type Model, type ModelMethod, type ModelMethodSpec, type Params } from "./models/model.js";

// optimisers
export { adam, applyUpdates, chain, scale, scaleByAdam, sgd, type GradientTransformation } from "./optim/transform.js";

// the method table
export { METHOD_NAMES, METHODS, methodSpec, methodsTaking, POSTERIOR_KINDS, posteriorKind, type Method } from "./methods.js";

// baselines
export { create as createMap, type MapInfo, type MapOptions, type MapState } from "./baselines/map.js";
export { create as createEnsemble, type EnsembleOptions } from "./baselines/ensemble.js";

// SG-MCMC
export { create as createSgld, type SgldState } from "./sgmcmc/sgld.js";
export { create as createPsgld, type PsgldOptions, type PsgldState } from "./sgmcmc/psgld.js";
export { create as createSghmc, type SghmcOptions, type SghmcState } from "./sgmcmc/sghmc.js";
export { addNoise, collectionSteps, type SamplerInfo, type SamplerOptions } from "./sgmcmc/common.js";

// variational inference: families over flat vectors, ADVI, mean-field BBB, alpha-divergences
export { familyPosterior, flatKind, FLAT_MAX_DIM, type Family } from "./vi/family.js";
export {
  diagonal,
  fullRank,
  fullRankPrecision,
  fullRankScale,
  lowerInverseSeries,
  lowRank,
  precisionFactor,
  SERIES_MAX_DIM,
  triangularAdam,
  type DiagQ,
  type FullRankOptions,
  type FullRankPrecisionQ,
  type FullRankQ,
  type LowRankQ,
} from "./vi/gaussian.js";
export { planar, realNvp, type Flow, type FlowParams, type PlanarOptions, type RealNvpOptions } from "./vi/flows.js";
export { gaussianMixture, type MixtureFamily, type MixtureParams } from "./vi/mixture.js";
export { create as createAdvi, elboEstimate, type AdviInfo, type AdviOptions, type AdviState, type EntropyMode } from "./vi/advi.js";
export {
  meanFieldEntropy,
  meanFieldInit,
  meanFieldKind,
  meanFieldKlToPrior,
  meanFieldLogProb,
  meanFieldPosterior,
  meanFieldSample,
  meanFieldSampleStacked,
  type MeanField,
} from "./vi/meanfield.js";
export { create as createBbb, type BbbInfo, type BbbOptions, type BbbState, type Estimator, type ScaleMixturePrior, type VIPrior } from "./vi/bbb.js";
export { create as createAlpha, powerLogMeanExp, type AlphaInfo, type AlphaObjective, type AlphaOptions } from "./vi/alpha.js";

// score-based VI: proximal score matching, GSM, BaM
export {
  create as createProximal,
  createFlat as createProximalFlat,
  scoreMatchingTerm,
  type FlatProximalInfo,
  type FlatProximalOptions,
  type FlatProximalState,
  type ProximalInfo,
  type ProximalOptions,
  type ProximalState,
} from "./scorevi/proximal.js";
export { createFullRank as createProximalFullRank, type FullRankProximalInfo, type FullRankProximalOptions, type FullRankProximalState } from "./scorevi/proximal-fullrank.js";
export { create as createGsm, gsmUpdate, type GsmOptions } from "./scorevi/gsm.js";
export { create as createBam, bamUpdate, type BamOptions } from "./scorevi/bam.js";
export { gaussianKind, gaussianPosterior, sampleState as sampleGaussianState, type GaussianState, type ScoreViInfo, type ScoreViOptions } from "./scorevi/gaussian-state.js";

// Laplace: curvature, evidence, linearised predictive
export { create as createLaplace, curvatureBytes, FULL_MAX_PARAMS, laplaceFactors, lowRankPrecision, PRIOR_GRID, type LaplaceMethodOptions, type LaplaceState, type LowRank } from "./laplace/laplace.js";
export { batchCurvature, layerGrads, outputDirections, selectBlocks, type Block, type BatchCurvature, type Curvature, type Structure } from "./laplace/curvature.js";
export { logEvidence, maximiseByCoordinates, maximiseEvidence, type EigenGroup, type EvidenceProblem, type Hyper } from "./laplace/marglik.js";
export { glmPredict, laplaceKinds, laplacePosterior, outputFactors, type Factors, type LaplaceOptions, type Link } from "./laplace/posterior.js";
export { create as createSampledLaplace, sampledKind, sampledPosterior, sampledPredict, type SampledLaplaceOptions, type SampledPosteriorOptions, type SampledState } from "./laplace/sampled.js";
export { ggnProducts, sampleJvp, sampleVjp } from "./laplace/linearised.js";
export { symEig, cholesky, solveLower, solveLowerTranspose, logDetCholesky, qrOrthonormal, nystromEig } from "./core/linalg.js";
export { evidenceWarmStart, type EvidenceRound } from "./run/evidence.js";

// the driver
export { DEFAULT_BATCH_SIZE, diagnose, fit, type FitCheckpoint, type FitOptions, type FitResult, type Monitor, type TraceDiagnostics } from "./run/driver.js";
export { DivergenceError, iterate, runSteps, type LoopOptions, type LoopPosition, type LoopResult, type Progress } from "./run/loop.js";
export { restoreTree, snapshotTree, type SnapshotLeaf } from "./core/snapshot.js";
export { DEFAULT_QUANTILES, mixtureQuantile, summarise, type ClassificationSummary, type PredictiveSummary, type RegressionSummary } from "./eval/summary.js";
export { epochShuffles, hostPermutation, hostSeed, stepsPerEpoch } from "./run/batches.js";

// Gaussian processes: kernels, exact inference, CG, SGD and SDD pathwise samplers
export { checkKernel, crossKernel, drawFeatures, featureMap, gramMatrix, kernelBlock, KERNELS, scaleInputs, type GpHypers, type KernelName } from "./gp/kernels.js";
export { conditionExact, defaultHypers, fitHypers, logMarginal, MIN_NOISE, predictExact, sampleExact, type ExactGp, type HyperFit } from "./gp/exact.js";
export { pivotedCholesky, solveCg, type CgOptions, type CgResult } from "./gp/cg.js";
export { sdd as gpSdd, type GpStepMethod, type SolverState, type StochasticOptions } from "./gp/sdd.js";
export { sgd as gpSgd, SGD_REGULARISER_FEATURES } from "./gp/sgd.js";
export { drawPrior, KernelProduct, makeSystem, pathwiseTargets, predictPathwise, type GpSystem, type PriorDraws } from "./gp/pathwise.js";
export { fitGp, GP_DEFAULTS, GP_SOLVERS, gpOptions, restoreGp, SOLVER_NAMES, type GpFitOptions, type GpFitReport, type GpPosterior, type SolverName } from "./gp/solve.js";

// evaluation and diagnostics
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
export { essBasic, essBulk, essTail, rankNormalize, rhat, rhatBasic, splitChains, summarize, type ConvergenceSummary } from "./diagnostics/convergence.js";
export { convergenceWarnings, DEFAULT_CONVERGENCE_THRESHOLDS, type ConvergenceThresholds, type QuantityDiagnostics } from "./diagnostics/warnings.js";

// in-memory data
export { makeSplit, standardisation, takeRows } from "./data/arrays.js";
export { createRng, permutation, shuffleInPlace, type Rng } from "./data/prng.js";
export { gapFunction, sinesFunction, toyRegressionGap, toySines, twoMoons } from "./data/toy.js";
export { rotateImages } from "./data/rotate.js";
export { DataFormatError, type ArrayData, type DataSplit, type Standardisation, type Task } from "./data/types.js";

// safetensors bytes (files: bayesdl/node)
export { decodeSafetensors, encodeSafetensors, SafetensorsError, type DecodedSafetensors, type TensorInput } from "./io/safetensors.js";

export { VERSION } from "./version.js";
