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
export { DeltarankError, FormatError, ShapeError, UsageError } from './errors.js';
export { TOOL, SCHEMA_VERSION } from './version.js';

// Checkpoints and adapters
export {
  openCheckpoint,
  writeCheckpoint,
  writeSafetensors,
  writeDirAtomically,
  readAdapter,
  writeAdapter,
  loraScale,
  decodeBf16,
  encodeBf16,
  decodeF16,
  encodeF16,
  toFloat32,
  fromFloat32,
  DTYPE_SIZE,
  type Checkpoint,
  type TensorInfo,
  type TensorSpec,
  type TensorSource,
  type DType,
  type Adapter,
  type AdapterConfig,
  type LoraModule,
} from './io/index.js';

// Linear algebra
export {
  matmul,
  gemmEngine,
  truncatedSvd,
  adaptiveSvd,
  exactSvd,
  singularValues,
  energyCurve,
  rankAt,
  stableRank,
  effectiveRank,
  nuclearNorm,
  subspaceSimilarity,
  projectionNorm,
  amplificationFactor,
  randomOrthonormal,
  type Matrix,
  type Matrix64,
  type Svd,
  factoredSvd,
  type FactoredSvd,
} from './svd/index.js';

// Analysis, extraction, merging. Named one by one: what a layer's front door exports for the
// other layers (ΔW scratch memory, pairing, spectrum internals) is not the library's surface.
export {
  analyzeCheckpoints,
  analyzeDelta,
  analyzeAdapter,
  DEFAULT_THRESHOLDS,
  DEFAULT_TOP_K,
  exactRank,
  formatRankValue,
  type AnalyzeOptions,
  type RankValue,
  type AnalyzeProgress,
  type AnalyzeResult,
  type TensorSpectrum,
  type OtherTensor,
  type SkippedTensor,
  type SpectrumMethod,
  type ToolInfo,
} from './analyze/index.js';
export {
  extractAdapter,
  mergeAdapter,
  applyAdapter,
  resizeAdapter,
  allocateBudget,
  policyFromFlags,
  type ExtractOptions,
  type ExtractOutput,
  type ExtractionResult,
  type ExtractedModule,
  type RankPolicy,
  type MergeResult,
  type ResizeResult,
} from './extract/index.js';

// Synthetic pairs
export { writeSynthPair, SYNTH_SHAPES, type SynthOptions, type SynthManifest } from './synth/index.js';

// Reports
export {
  renderPage,
  renderAnalyzeReport,
  renderExtractReport,
  renderCompareReport,
  spectrumSections,
  extractionSections,
  comparisonSections,
  writeReport,
  checkReportPath,
  type ReportSection,
  type PlotSpec,
} from './report/index.js';

// Forward pass, verify and calibration (their own files, so the lines above stay as they are)
export { readModelArch, runDecoder, loadAdapter, SUPPORTED_MODEL_TYPES, type ModelArch, type DecoderRun, type ForwardVariant } from './model/index.js';
export { loadSequences, tokenizeText, type TokenInput, type TokenSequences } from './model/input.js';
export { verifyAdapter, type VerifyResult, type VerifyOptions, type LayerError } from './verify/index.js';
export { calibrateModules, type CalibrationOptions, type CalibrationResult, type CalibratedModule } from './extract/calibrate.js';
export { renderVerifyReport, verifySections } from './report/verify-sections.js';
