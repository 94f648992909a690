/**
 * The report layer: plain result objects in, one self-contained HTML file out (plotly
 * inlined, no network request when opened). Imports result types and the error classes only.
 */

export { comparisonSections, renderCompareReport } from './comparison-sections.js';
export { extractionSections, renderExtractReport } from './extraction-sections.js';

export type { PlotSpec, ReportSection } from './page.js';
export { renderPage } from './page.js';
export { renderAnalyzeReport, spectrumSections } from './spectrum-sections.js';

export { checkReportPath, writeReport } from './write-report.js';
