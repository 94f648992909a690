/**
 * The report layer: plain result objects in, one self-contained HTML file out (plotly
 * inlined, no network request when opened). Imports result types and the error classes only.
 */
export { renderPage, escapeHtml, escapeScript, serializeBlob } from './page.js';
export type { PlotSpec, ReportSection } from './page.js';
export { spectrumSections, renderAnalyzeReport } from './spectrum-sections.js';
export { writeReport, checkReportPath } from './write-report.js';
export { tensorPlace, orderModuleTypes, MODULE_TYPE_ORDER } from './tensor-place.js';
export type { TensorPlace } from './tensor-place.js';
export { marchenkoPasturQuantiles, randomSpectrumBaseline } from './marchenko-pastur.js';
export { fixedRankFrontier, greedyFrontier, matrixDims, rankGrid } from './frontier.js';
export type { FixedRankPoint, FrontierPoint, GreedyFrontier, SpectrumLike } from './frontier.js';
export { thinIndices, KEEP_ALL, TAIL_POINTS } from './thin.js';
export { extractionSections, renderExtractReport, spectraAsAnalysis } from './extraction-sections.js';
export { comparisonSections, renderCompareReport } from './comparison-sections.js';
