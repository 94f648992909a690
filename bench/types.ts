/** One line of the `npm run bench` table. */
export interface BenchRow {
  /** io, svd, analyze, extract, train … */
  area: string;
  /** What was measured, with its size: "GEMM 4096³". */
  name: string;
  /** The measured figure with its unit: "231 GFLOP/s", "0.12 s". */
  figure: string;
  /** The peer's figure, measured in the same run where possible, else marked "(quoted)". */
  peer?: string;
  /** The target, in words: "≥ 200 GFLOP/s", "≤ torch". */
  target?: string;
  /** Whether the target was met; undefined when there is no target. */
  met?: boolean;
}
