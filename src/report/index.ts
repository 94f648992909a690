/**
 * The report layer: plain result objects in, one self-contained HTML file out (plotly
 * inlined, no network request when opened). Imports result types and the error classes only.
 */

export { comparisonSections, renderCompareReport } from './comparison-sections.js';
export { extractionSections, renderExtractReport, spectraAsAnalysis } from './extraction-sections.js';
export type { FixedRankPoint, FrontierPoint, GreedyFrontier, SpectrumLike } from './frontier.js';
export { fixedRankFrontier, greedyFrontier, matrixDims, rankGrid } from './frontier.js';
export { marchenkoPasturQuantiles, randomSpectrumBaseline } from './marchenko-pastur.js';
export type { PlotSpec, ReportSection } from './page.js';
export { escapeHtml, escapeScript, renderPage, serializeBlob } from './page.js';
export { renderAnalyzeReport, spectrumSections } from './spectrum-sections.js';
export type { TensorPlace } from './tensor-place.js';
export { MODULE_TYPE_ORDER, orderModuleTypes, tensorPlace } from './tensor-place.js';
export { KEEP_ALL, TAIL_POINTS, thinIndices } from './thin.js';
export { checkReportPath, writeReport } from './write-report.js';
