/**
 * deltarank's library API: how low-rank a fine-tune's ΔW = W_tuned − W_base is, LoRA
 * adapters from full fine-tunes and back, and self-contained HTML reports.
 *
 * Training and `compare` load tfjs, so they live behind their own entry points:
 * `deltarank/train` and `deltarank/compare`.
 *
 * The names exported here are the library's surface, pinned by test/index.test.ts: adding or
 * removing one is a decision (and a CHANGELOG line), not a side effect of a layer's index.
 *
 * @example
 * import { analyzeCheckpoints, renderAnalyzeReport, writeReport } from 'deltarank';
 * const result = await analyzeCheckpoints('llama/base', 'llama/tuned');
 * await writeReport('report.html', renderAnalyzeReport(result));
 */

// Analysis, extraction, merging. Named one by one: what a layer's front door exports for the
// other layers (ΔW scratch memory, pairing, spectrum internals) is not the library's surface.
export {
  type AnalyzeOptions,
  type AnalyzeProgress,
  type AnalyzeResult,
  analyzeAdapter,
  analyzeCheckpoints,
  analyzeDelta,
  DEFAULT_THRESHOLDS,
  DEFAULT_TOP_K,
  exactRank,
  formatRankValue,
  type OtherTensor,
  type RankValue,
  type SkippedTensor,
  type SpectrumMethod,
  type TensorSpectrum,
  type ToolInfo,
} from './analyze/index.js';
export { DeltarankError, FormatError, ShapeError, UsageError } from './errors.js';
export {
  type CalibratedModule,
  type CalibrationOptions,
  type CalibrationResult,
  calibrateModules,
} from './extract/calibrate.js';
export {
  allocateBudget,
  applyAdapter,
  type ExtractedModule,
  type ExtractionResult,
  type ExtractOptions,
  type ExtractOutput,
  extractAdapter,
  type MergeResult,
  mergeAdapter,
  policyFromFlags,
  type RankPolicy,
  type ResizeResult,
  resizeAdapter,
} from './extract/index.js';
// Checkpoints and adapters
export {
  type Adapter,
  type AdapterConfig,
  type Checkpoint,
  DTYPE_SIZE,
  type DType,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  fromFloat32,
  type LoraModule,
  loraScale,
  openCheckpoint,
  readAdapter,
  type TensorInfo,
  type TensorSource,
  type TensorSpec,
  toFloat32,
  writeAdapter,
  writeCheckpoint,
  writeDirAtomically,
  writeSafetensors,
} from './io/index.js';
// Forward pass, verify and calibration (their own files, so the lines above stay as they are)
export {
  type DecoderRun,
  type ForwardVariant,
  loadAdapter,
  type ModelArch,
  readModelArch,
  runDecoder,
  SUPPORTED_MODEL_TYPES,
} from './model/index.js';
export { loadSequences, type TokenInput, type TokenSequences, tokenizeText } from './model/input.js';

// Reports
export {
  checkReportPath,
  comparisonSections,
  extractionSections,
  type PlotSpec,
  type ReportSection,
  renderAnalyzeReport,
  renderCompareReport,
  renderExtractReport,
  renderPage,
  spectrumSections,
  writeReport,
} from './report/index.js';
export { renderVerifyReport, verifySections } from './report/verify-sections.js';
// Linear algebra
export {
  adaptiveSvd,
  amplificationFactor,
  effectiveRank,
  energyCurve,
  exactSvd,
  type FactoredSvd,
  factoredSvd,
  gemmEngine,
  type Matrix,
  type Matrix64,
  matmul,
  nuclearNorm,
  projectionNorm,
  randomOrthonormal,
  rankAt,
  type Svd,
  singularValues,
  stableRank,
  subspaceSimilarity,
  truncatedSvd,
} from './svd/index.js';
// Synthetic pairs
export { SYNTH_SHAPES, type SynthManifest, type SynthOptions, writeSynthPair } from './synth/index.js';
export { type LayerError, type VerifyOptions, type VerifyResult, verifyAdapter } from './verify/index.js';
export { SCHEMA_VERSION, TOOL } from './version.js';
