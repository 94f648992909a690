/**
 * Rank-r factors that minimise the output error ‖(ΔW − B·A)·X‖_F on calibration inputs X
 * rather than the weight error ‖ΔW − B·A‖_F.
 *
 * With G = XᵀX + δ·I = S·Sᵀ (δ a small damping), the minimiser over rank-r products is
 * B·A = [ΔW·S]_r·S⁻¹ (the truncated SVD of ΔW·S mapped back; the weighted Eckart–Young
 * theorem). Writing ΔW·S = U Σ Vᵀ, V_rᵀ S⁻¹ = Σ_r⁻¹ U_rᵀ ΔW, so
 *   B = U_r Σ_r^{1/2},  A = Σ_r^{1/2} V_rᵀ S⁻¹ = Σ_r^{−1/2} U_rᵀ ΔW,
 * and B·A = U_r U_rᵀ ΔW: ΔW projected on the leading left singular vectors of ΔW·S. Those
 * are the leading eigenvectors of H = ΔW·G·ΔWᵀ = (ΔW·S)(ΔW·S)ᵀ, so S itself (a Cholesky
 * factor or G^{1/2}) is never formed: no factorisation of G, whose conditioning therefore does
 * not matter; σ_i² are the eigenvalues of H. This is the whitening of SVD-LLM (Wang et al.
 * 2024) and the weighted low-rank problem of ASVD, computed without S⁻¹.
 */
import {
  choleskyLower,
  exactIsCheaper,
  exactSvd,
  type Matrix,
  type Matrix64,
  matmul,
  solveCholesky,
  truncatedSvd,
} from '../svd/index.js';

/** Damping δ = DEFAULT_DAMPING · mean(diag G) unless told: GPTQ's 1 %, enough to make G definite on few tokens. */
export const DEFAULT_DAMPING = 0.01;

/** Input statistics of one linear module: G = Σ_tokens x·xᵀ [in, in], f32, and the token count. */
export interface InputStats {
  gram: Matrix;
  tokens: number;
}

/** The output-weighted spectrum of one ΔW: σ_i² of ΔW·S, descending, and ‖ΔW·S‖_F². */
export interface OutputSpectrum {
  /** Eigenvalues of H = ΔW·G_δ·ΔWᵀ (σ_i² of ΔW·S), descending, as many as computed. */
  energies: Float64Array;
  /** tr H = ‖ΔW·S‖_F². */
  total: number;
  /** Leading eigenvectors of H [out, k], when asked for. */
  u?: Matrix;
  /** ΔW·G (undamped) [out, in], formed on the way to H. */
  deltaG: Matrix;
  damping: number;
}

/**
 * The output-weighted spectrum of ΔW [out, in] under G: the top `rank` eigenpairs of
 * H = ΔW·(G + δI)·ΔWᵀ. Cost 2·out·in² (ΔW·G) + 2·out²·in (H) flops in the GEMM engine, plus a
 * rank-`rank` SVD of H [out, out] (exact one-sided Jacobi where that is cheaper, full precision).
 */
export async function outputSpectrum(
  delta: Matrix,
  stats: InputStats,
  {
    rank,
    damping = DEFAULT_DAMPING,
    vectors = true,
    seed = 0,
  }: { rank: number; damping?: number; vectors?: boolean; seed?: number },
): Promise<OutputSpectrum> {
  const n = delta.cols;
  const g = stats.gram;
  const delta_ = absoluteDamping(g, damping);
  const deltaG = await matmul(delta, g);
  // K = ΔW·G + δ·ΔW, then H = K·ΔWᵀ (symmetric PSD up to rounding).
  const k = new Float32Array(deltaG.data);
  for (let i = 0; i < k.length; i++) k[i]! += delta_ * delta.data[i]!;
  const h = await matmul({ rows: delta.rows, cols: n, data: k }, delta, { transB: true });
  const m = h.rows;
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) {
      const s = 0.5 * (h.data[i * m + j]! + h.data[j * m + i]!);
      h.data[i * m + j] = s;
      h.data[j * m + i] = s;
    }
  }
  let total = 0;
  for (let i = 0; i < m; i++) total += h.data[i * m + i]!;
  const r = Math.min(rank, m);
  const exact = exactIsCheaper(m, m, r, { vectors });
  const svd = exact ? await exactSvd(h, { vectors }) : await truncatedSvd(h, { rank: r, seed, powerIters: 2 });
  return {
    energies: svd.s.slice(0, exact ? Math.min(svd.s.length, m) : r),
    total: Math.max(total, 0),
    u: svd.u,
    deltaG,
    damping: delta_,
  };
}

/**
 * B = U_r Σ_r^{1/2} [out, r], A = Σ_r^{−1/2} U_rᵀ ΔW [r, in] from the spectrum (B·A = U_r U_rᵀ ΔW).
 * Ranks whose σ is zero to working precision give zero factors. Cost 2·r·out·in.
 */
export async function calibratedFactors(
  delta: Matrix,
  spectrum: OutputSpectrum,
  r: number,
): Promise<{ a: Float32Array; b: Float32Array }> {
  const u = spectrum.u!;
  const m = delta.rows;
  const ur = new Float32Array(m * r);
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) ur[i * r + j] = u.data[i * u.cols + j]!;
  const top = spectrum.energies[0] ?? 0;
  const root = Array.from({ length: r }, (_, j) => {
    const e = spectrum.energies[j] ?? 0;
    return e > top * 1e-12 && e > 0 ? Math.sqrt(Math.sqrt(e)) : 0;
  });
  // A = diag(σ^{-1/2}) U_rᵀ ΔW, B = U_r diag(σ^{1/2}).
  const a = (await matmul({ rows: m, cols: r, data: ur }, delta, { transA: true })).data;
  const n = delta.cols;
  for (let j = 0; j < r; j++) {
    const f = root[j]! > 0 ? 1 / root[j]! : 0;
    for (let k = 0; k < n; k++) a[j * n + k]! *= f;
  }
  const b = ur;
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) b[i * r + j]! *= root[j]!;
  return { a, b };
}

/**
 * The error-correcting update of one module whose inputs come through the extracted model:
 * M* = (C + δ·ΔW)·(G + δI)⁻¹ [out, in], the minimiser of ‖Y − M·X_a‖_F² + δ‖M − ΔW‖_F² where
 * Y = W_t·X_t − W_b·X_a is what the base leaves of the fine-tune's output on the inputs X_a the
 * adapter will meet (X_t: the fine-tune's own inputs), C = Y·X_aᵀ and G = X_a·X_aᵀ. Written
 * M* = ΔW + W_t·(X_t − X_a)·X_aᵀ·(G + δI)⁻¹: ΔW plus the regression, on the inputs, of what the
 * earlier layers' adapters left. As that objective equals ‖(M − M*)·S‖_F² + const with
 * S·Sᵀ = G + δI, its rank-r minimiser is `calibratedFactors` of M* (reduced-rank regression;
 * Izenman 1975), so M* replaces ΔW in outputSpectrum. The Cholesky factor of G + δI is computed
 * once per Gram matrix (q/k/v, gate/up share one). Cost in³/3 + 2·out·in² flops, f64.
 */
export async function correctingUpdate(
  delta: Matrix,
  cross: Matrix,
  stats: InputStats,
  damping: number,
): Promise<Matrix> {
  const n = delta.cols;
  let l = factors.get(stats.gram);
  if (!l || l.damping !== damping) {
    const g = Float64Array.from(stats.gram.data);
    for (let i = 0; i < n; i++) g[i * n + i]! += damping;
    l = { damping, l: await choleskyLower({ rows: n, cols: n, data: g }) };
    factors.set(stats.gram, l);
  }
  const r: Matrix64 = { rows: delta.rows, cols: n, data: new Float64Array(delta.data.length) };
  for (let i = 0; i < r.data.length; i++) r.data[i] = cross.data[i]! + damping * delta.data[i]!;
  const m = await solveCholesky(r, l.l);
  return { rows: delta.rows, cols: n, data: Float32Array.from(m.data) };
}

const factors = new WeakMap<Matrix, { damping: number; l: Matrix64 }>();

/** δ = damping · mean(diag G): the absolute damping outputSpectrum and correctingUpdate add. */
export function absoluteDamping(gram: Matrix, damping: number): number {
  const n = gram.cols;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += gram.data[i * n + i]!;
  return (damping * trace) / n;
}

/**
 * Output error ‖Y − X·(B·A)ᵀ‖_F² of factors on the inputs X [tokens, in], for target outputs
 * Y [tokens, out], and ‖Y‖_F²: the residual formed token by token, (X·Aᵀ)·Bᵀ in the GEMM engine,
 * squares summed in f64. Expanding ‖Y‖² − 2⟨C, B·A⟩ + ⟨B·A·G, B·A⟩ instead would cancel to
 * ≈ √ε_f32 relative where the error is small (2.4e-4 at full rank against a true 5e-8).
 * Cost 2·tokens·r·(in + out) flops.
 */
export async function outputErrorSquares(
  x: Matrix,
  y: Matrix,
  a: Float32Array,
  b: Float32Array,
  r: number,
): Promise<{ errSq: number; normSq: number }> {
  let normSq = 0;
  for (const v of y.data) normSq += v * v;
  if (r === 0) return { errSq: normSq, normSq };
  const xa = await matmul(x, { rows: r, cols: x.cols, data: a }, { transB: true }); // [tokens, r]
  const fit = (await matmul(xa, { rows: y.cols, cols: r, data: b }, { transB: true })).data; // [tokens, out]
  let errSq = 0;
  for (let i = 0; i < fit.length; i++) errSq += (y.data[i]! - fit[i]!) ** 2;
  return { errSq, normSq };
}
