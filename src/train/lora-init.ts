/**
 * Initial LoRA factors as PEFT's `LoraLayer.update_layer` draws them, for every
 * `init_lora_weights` deltarank trains with:
 * - `true` (default): A Kaiming-uniform (a = √5, so bound 1/√in), B zero;
 * - `"gaussian"`: A ~ N(0, 1/r²), B zero;
 * - `"pissa"` (Meng et al. 2024): from the top-r singular triplets of W, B = U_r (Σ_r/s)^½,
 *   A = (Σ_r/s)^½ V_rᵀ, so s·B·A is W's best rank-r part and the residual W − s·B·A is the
 *   frozen base; `"pissa_niter_N"` takes the triplets from a randomized SVD with N subspace
 *   iterations (torch.svd_lowrank with q = r, as PEFT calls it);
 * - `"olora"` (Büyükakyüz 2024): W = Q·R, B = Q[:, :r], A = R[:r, :], residual W − s·B·A.
 * The SVD-based ones give min(r, out, in) factor rows: a matrix has no more directions.
 */
import { UsageError } from '../errors.js';
import { householderQr, type Matrix64, type Rng, type Svd64, smallSvd } from '../svd/index.js';

/** PEFT's `init_lora_weights` values that deltarank trains with. */
export type LoraInit = true | 'gaussian' | 'pissa' | `pissa_niter_${number}` | 'olora';

/** Whether `init` replaces the base weight by a residual (PiSSA, OLoRA): such adapters are exported converted to plain LoRA. */
export function mutatesBase(init: LoraInit): boolean {
  return init === 'olora' || (typeof init === 'string' && init.startsWith('pissa'));
}

/** "gaussian", "pissa", "pissa_niter_4", "olora", "true"/"default" → LoraInit; UsageError otherwise. */
export function parseLoraInit(text: string): LoraInit {
  if (text === 'true' || text === 'default' || text === 'kaiming') return true;
  if (text === 'gaussian' || text === 'pissa' || text === 'olora') return text;
  const m = /^pissa_niter_(\d+)$/.exec(text);
  if (m) return `pissa_niter_${Number(m[1])}`;
  throw new UsageError(`LoRA init must be default, gaussian, pissa, pissa_niter_N or olora; got "${text}"`);
}

export interface InitialFactors {
  /** [k, in] row-major. */
  a: Float32Array;
  /** [out, k] row-major. */
  b: Float32Array;
  /** Rows of A: r, or min(r, out, in) for SVD/QR inits. */
  rank: number;
}

/**
 * Draw the factors for a layer of weight `w` [out, in] (row-major f32), rank r, scale s.
 * `svdCache` keeps the exact SVD of W per module across calls with the same base (one per
 * trained rank): ≈ 1 s for 256×784 in plain TypeScript, paid once.
 * Cost: default/gaussian r·in draws; pissa one Jacobi SVD of W (≈ 3·max·min² flops per sweep);
 * pissa_niter_N (2 + 2N) products of W with an [in, r] block; olora one Householder QR.
 */
export function initialFactors(
  w: Float32Array,
  out: number,
  inFeatures: number,
  {
    rank,
    scale,
    init,
    rng,
    module,
    svdCache,
  }: { rank: number; scale: number; init: LoraInit; rng: Rng; module: string; svdCache?: Map<string, Svd64> },
): InitialFactors {
  if (init === true || init === 'gaussian') {
    const a = new Float32Array(rank * inFeatures);
    if (init === true) {
      const bound = 1 / Math.sqrt(inFeatures);
      for (let i = 0; i < a.length; i++) a[i] = rng.uniform(-bound, bound);
    } else {
      for (let i = 0; i < a.length; i++) a[i] = rng.normal() / rank;
    }
    return { a, b: new Float32Array(out * rank), rank };
  }
  const w64: Matrix64 = { rows: out, cols: inFeatures, data: Float64Array.from(w) };
  if (init === 'olora') return oloraFactors(w64, rank);
  let svd: { u: Matrix64; s: Float64Array; v: Matrix64 };
  if (init === 'pissa') {
    let full = svdCache?.get(module);
    if (!full) {
      full = smallSvd(w64);
      svdCache?.set(module, full);
    }
    svd = full;
  } else {
    const niter = Number(init.slice('pissa_niter_'.length));
    svd = svdLowRank(w64, Math.min(rank, out, inFeatures), niter, rng);
  }
  const k = Math.min(rank, svd.s.length);
  const a = new Float32Array(k * inFeatures);
  const b = new Float32Array(out * k);
  for (let c = 0; c < k; c++) {
    const root = Math.sqrt(svd.s[c]! / scale);
    for (let j = 0; j < inFeatures; j++) a[c * inFeatures + j] = root * svd.v.data[j * svd.v.cols + c]!;
    for (let i = 0; i < out; i++) b[i * k + c] = root * svd.u.data[i * svd.u.cols + c]!;
  }
  return { a, b, rank: k };
}

/** OLoRA: the first k = min(r, out, in) columns of Q and rows of R of W = Q·R (torch.linalg.qr, reduced). */
function oloraFactors(w: Matrix64, rank: number): InitialFactors {
  const { rows: m, cols: n } = w;
  const p = Math.min(m, n);
  // householderQr needs rows ≥ cols: a wide W factors through its first m columns, W = Q·[R₁, Qᵀ W₂].
  const lead: Matrix64 = m >= n ? w : { rows: m, cols: m, data: leadColumns(w, m) };
  const { q } = householderQr(lead);
  const k = Math.min(rank, p);
  const a = new Float32Array(k * n);
  const b = new Float32Array(m * k);
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < m; i++) b[i * k + c] = q.data[i * q.cols + c]!;
    // R[c, :] = Q[:, c]ᵀ W (exactly R for the leading block, Qᵀ W₂ beyond it); f64 sums.
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let i = 0; i < m; i++) acc += q.data[i * q.cols + c]! * w.data[i * n + j]!;
      a[c * n + j] = acc;
    }
  }
  return { a, b, rank: k };
}

function leadColumns(w: Matrix64, k: number): Float64Array {
  const out = new Float64Array(w.rows * k);
  for (let i = 0; i < w.rows; i++) out.set(w.data.subarray(i * w.cols, i * w.cols + k), i * k);
  return out;
}

/**
 * torch.svd_lowrank(W, q, niter) as PEFT's pissa_niter_N calls it (Halko et al. 2011, Alg. 4.4
 * without oversampling): Q = orth(W Ω), niter rounds of Q = orth(W orth(Wᵀ Q)), then the SVD of QᵀW.
 */
function svdLowRank(w: Matrix64, q: number, niter: number, rng: Rng): Svd64 {
  const { rows: m, cols: n } = w;
  const omega = new Float64Array(n * q);
  for (let i = 0; i < omega.length; i++) omega[i] = rng.normal();
  let basis = householderQr(product(w, { rows: n, cols: q, data: omega }, false)).q;
  for (let it = 0; it < niter; it++) {
    const z = householderQr(product(w, basis, true)).q;
    basis = householderQr(product(w, z, false)).q;
  }
  // B = Qᵀ W [q, n]; B = Ub S Vᵀ, U = Q Ub.
  const bt = product(w, basis, true); // Wᵀ Q = Bᵀ [n, q]
  const small = smallSvd(bt); // Bᵀ = V S Ubᵀ
  const u = new Float64Array(m * q);
  for (let i = 0; i < m; i++) {
    for (let c = 0; c < q; c++) {
      let acc = 0;
      for (let t = 0; t < q; t++) acc += basis.data[i * q + t]! * small.v.data[t * small.v.cols + c]!;
      u[i * q + c] = acc;
    }
  }
  return { u: { rows: m, cols: q, data: u }, s: small.s, v: small.u };
}

/** W·X ([m, n]·[n, q]) or Wᵀ·X ([n, m]·[m, q]) in f64. */
function product(w: Matrix64, x: Matrix64, transposeW: boolean): Matrix64 {
  const { rows: m, cols: n } = w;
  const q = x.cols;
  const outRows = transposeW ? n : m;
  const out = new Float64Array(outRows * q);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const wij = w.data[i * n + j]!;
      if (wij === 0) continue;
      if (transposeW) for (let c = 0; c < q; c++) out[j * q + c]! += wij * x.data[i * q + c]!;
      else for (let c = 0; c < q; c++) out[i * q + c]! += wij * x.data[j * q + c]!;
    }
  }
  return { rows: outRows, cols: q, data: out };
}
