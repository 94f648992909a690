/**
 * The library's surface, pinned: the names `deltarank` and `deltarank/compare` export. A name
 * appearing here or leaving is a decision (README's Library API and CHANGELOG change with it),
 * never the side effect of a layer's index exporting something for another layer.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const VALUES = [
  // errors and versions
  'DeltarankError',
  'FormatError',
  'ShapeError',
  'UsageError',
  'TOOL',
  'SCHEMA_VERSION',
  // checkpoints and adapters
  'openCheckpoint',
  'writeCheckpoint',
  'writeSafetensors',
  'writeDirAtomically',
  'readAdapter',
  'writeAdapter',
  'loraScale',
  'decodeBf16',
  'encodeBf16',
  'decodeF16',
  'encodeF16',
  'toFloat32',
  'fromFloat32',
  'DTYPE_SIZE',
  // linear algebra
  'matmul',
  'gemmEngine',
  'truncatedSvd',
  'adaptiveSvd',
  'exactSvd',
  'singularValues',
  'energyCurve',
  'rankAt',
  'stableRank',
  'effectiveRank',
  'nuclearNorm',
  'subspaceSimilarity',
  'projectionNorm',
  'amplificationFactor',
  'randomOrthonormal',
  // analysis, extraction, merging
  'analyzeCheckpoints',
  'analyzeDelta',
  'analyzeAdapter',
  'DEFAULT_THRESHOLDS',
  'DEFAULT_TOP_K',
  'exactRank',
  'formatRankValue',
  'extractAdapter',
  'mergeAdapter',
  'applyAdapter',
  'resizeAdapter',
  'factoredSvd',
  'allocateBudget',
  'policyFromFlags',
  // synthetic pairs
  'writeSynthPair',
  'SYNTH_SHAPES',
  // reports
  'renderPage',
  'renderAnalyzeReport',
  'renderExtractReport',
  'renderCompareReport',
  'spectrumSections',
  'extractionSections',
  'comparisonSections',
  'writeReport',
  'checkReportPath',
  // forward pass, verify and calibration
  'readModelArch',
  'runDecoder',
  'loadAdapter',
  'SUPPORTED_MODEL_TYPES',
  'loadSequences',
  'tokenizeText',
  'verifyAdapter',
  'calibrateModules',
  'renderVerifyReport',
  'verifySections',
];

const TYPES = [
  'Checkpoint',
  'TensorInfo',
  'TensorSpec',
  'TensorSource',
  'DType',
  'Adapter',
  'AdapterConfig',
  'LoraModule',
  'Matrix',
  'Matrix64',
  'Svd',
  'AnalyzeOptions',
  'AnalyzeProgress',
  'AnalyzeResult',
  'TensorSpectrum',
  'OtherTensor',
  'SkippedTensor',
  'SpectrumMethod',
  'RankValue',
  'ToolInfo',
  'ExtractOptions',
  'ExtractOutput',
  'ExtractionResult',
  'FactoredSvd',
  'ExtractedModule',
  'RankPolicy',
  'MergeResult',
  'ResizeResult',
  'SynthOptions',
  'SynthManifest',
  'ReportSection',
  'PlotSpec',
  'ModelArch',
  'DecoderRun',
  'ForwardVariant',
  'TokenInput',
  'TokenSequences',
  'VerifyResult',
  'VerifyOptions',
  'LayerError',
  'CalibrationOptions',
  'CalibrationResult',
  'CalibratedModule',
];

const sorted = (xs: Iterable<string>) => [...xs].sort();

describe("the library's public surface", () => {
  it("'deltarank' exports exactly these values", async () => {
    const api = await import('../src/index.js');
    assert.deepEqual(sorted(Object.keys(api)), sorted(VALUES));
  });

  it("'deltarank' exports exactly these types", () => {
    // Every export of src/index.ts is named (no `export *`), so its text lists the types.
    const source = readFileSync(new URL('../src/index.ts', import.meta.url), 'utf8');
    assert.doesNotMatch(source, /export \*|export type \*/, 'src/index.ts names each export');
    const types = [...source.matchAll(/\btype\s+([A-Z]\w*)\s*[,}\n]/g)].map((m) => m[1]!);
    assert.deepEqual(sorted(types), sorted(TYPES));
  });

  it("'deltarank/compare' exports compareRun and its types only", async () => {
    assert.deepEqual(Object.keys(await import('../src/compare/index.js')), ['compareRun']);
  });

  it('the notebooks, which use only the public API, find every name they import', async () => {
    const entries: Record<string, Record<string, unknown>> = {
      deltarank: await import('../src/index.js'),
      'deltarank/compare': await import('../src/compare/index.js'),
    };
    const dir = new URL('../notebooks/', import.meta.url);
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(new URL(file, dir), 'utf8');
      for (const m of text.matchAll(/import \{([^}]+)\} from '(deltarank(?:\/\w+)?)'/g)) {
        if (!(m[2]! in entries)) continue; // deltarank/train loads tfjs: its test is its own
        for (const name of m[1]!
          .split(',')
          .map((n) => n.trim().replace(/^type\s+/, ''))
          .filter(Boolean)) {
          assert.ok(name in entries[m[2]!]! || TYPES.includes(name), `${file}: ${name} from '${m[2]}'`);
        }
      }
    }
  });
});
