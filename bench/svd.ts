/**
 * SVD engine figures: GEMM throughput against a raw one-node onnxruntime session and torch's
 * matmul, fixed-rank randomized SVD against torch.svd_lowrank with the same settings, both peers
 * measured in the same run, and adaptive rank on a planted ΔW against its planted truth.
 */
import { availableParallelism } from 'node:os';
import { adaptiveSvd } from '../src/svd/adaptive-svd.js';
import { gemmEngine, matmul } from '../src/svd/gemm.js';
import type { Matrix } from '../src/svd/matrix.js';
import { productModel } from '../src/svd/onnx-model.js';
import { orthonormalizeRows } from '../src/svd/qr.js';
import { createRng, fillNormal, gaussianMatrix } from '../src/svd/random.js';
import { truncatedSvd } from '../src/svd/randomized-svd.js';
import { describe, runTorch } from './torch-peer.js';
import type { BenchRow } from './types.js';

const AREA = 'svd';
/** torch.svd_lowrank(q = 74, niter = 2) on this machine, quoted from docs/ARCHITECTURE.md for when torch is missing. */
const TORCH_4096 = 0.16;
const TORCH_11008 = 0.45;
/** Below this share of our GEMM rate, torch's BLAS is likely running a generic kernel. */
const SLOW_BLAS_SHARE = 0.5;
const GEMM_TARGET = 200;

/** Median wall time in seconds of `reps` runs after `warmups` untimed ones. */
async function medianSeconds(reps: number, f: () => Promise<unknown>, warmups = 1): Promise<number> {
  for (let i = 0; i < warmups; i++) await f();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await f();
    times.push((performance.now() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(reps / 2)]!;
}

/**
 * A [m, n] = U·diag(σ)·Vᵀ + noise, U and V with orthonormal columns (σ.length of them), noise
 * N(0, noiseStd²) per entry. Returns the matrix and the exact ‖noise‖_F² drawn.
 */
async function plantedMatrix(
  m: number,
  n: number,
  sigma: number[],
  noiseStd: number,
  seed: number,
): Promise<{ a: Matrix; noise2: number }> {
  const p = sigma.length;
  const ut = (await orthonormalizeRows(gaussianMatrix(p, m, seed))).qt;
  const vt = (await orthonormalizeRows(gaussianMatrix(p, n, seed + 1))).qt;
  for (let t = 0; t < p; t++) for (let i = 0; i < m; i++) ut.data[t * m + i]! *= sigma[t]!;
  const a = await matmul(ut, vt, { transA: true });
  const rng = createRng(seed + 2);
  const noise = new Float32Array(n);
  let noise2 = 0;
  for (let i = 0; i < m; i++) {
    fillNormal(noise, rng, noiseStd);
    for (let j = 0; j < n; j++) {
      a.data[i * n + j]! += noise[j]!;
      noise2 += noise[j]! * noise[j]!;
    }
  }
  return { a, noise2 };
}

async function gemmRow(): Promise<BenchRow> {
  const n = 4096;
  const a = gaussianMatrix(n, n, 1);
  const b = gaussianMatrix(n, n, 2);
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(productModel({ op: 'MatMul', transA: false, transB: false }), {
    intraOpNumThreads: availableParallelism(),
  });
  const feeds = { A: new ort.Tensor('float32', a.data, [n, n]), B: new ort.Tensor('float32', b.data, [n, n]) };
  // Interleaved, so that both see the same load from whatever else runs on the machine.
  const ours: number[] = [];
  const raw: number[] = [];
  await matmul(a, b);
  await session.run(feeds);
  for (let i = 0; i < 5; i++) {
    let t = performance.now();
    await matmul(a, b);
    ours.push(performance.now() - t);
    t = performance.now();
    await session.run(feeds);
    raw.push(performance.now() - t);
  }
  await session.release();
  const gflops = (ms: number[]): number => (2 * n ** 3) / ms.sort((x, y) => x - y)[Math.floor(ms.length / 2)]! / 1e6;
  const engine = await gemmEngine();
  const oursRate = gflops(ours);
  const torch = runTorch(['gemm', String(n)]);
  let torchPeer = '';
  if (torch) {
    const rate = torch['gflops'] as number;
    torchPeer = `; torch matmul ${rate.toFixed(0)} GFLOP/s (${describe(torch)})`;
    if ((torch['relativeError'] as number) > 1e-4)
      throw new Error(
        `torch's matmul is wrong on this machine (relative error ${torch['relativeError']}): its figures would mean nothing`,
      );
    if (rate < SLOW_BLAS_SHARE * oursRate) {
      process.stderr.write(
        `bench: torch's BLAS reached ${rate.toFixed(0)} GFLOP/s: it may run a generic kernel on this processor (OpenBLAS: try OPENBLAS_CORETYPE), which flatters every torch comparison\n`,
      );
    }
  }
  return {
    area: AREA,
    name: `GEMM 4096³ (${engine.name}, median of 5)`,
    figure: `${oursRate.toFixed(0)} GFLOP/s`,
    peer: `raw onnxruntime MatMul ${gflops(raw).toFixed(0)} GFLOP/s${torchPeer}`,
    target: `≥ ${GEMM_TARGET} GFLOP/s`,
    met: oursRate >= GEMM_TARGET,
  };
}

async function truncatedRow(m: number, n: number, quotedTorchSeconds: number): Promise<BenchRow> {
  // A ΔW-like spectrum: 256 decaying directions over a noise floor.
  const sigma = Array.from({ length: 256 }, (_, i) => 0.97 ** i);
  const { a } = await plantedMatrix(m, n, sigma, 1e-4, 7);
  let seed = 0;
  // Three warm-ups: V8 needs about that many calls to fully optimise the Jacobi and QR loops
  // (a first call takes ≈ 2×, a second ≈ 1.3× the steady time), and torch's figure is steady-state.
  const seconds = await medianSeconds(
    3,
    () => truncatedSvd(a, { rank: 64, oversample: 10, powerIters: 2, seed: seed++ }),
    3,
  );
  // The six products with A alone, same shapes: what QR, sketch and the small core add is the rest.
  const qt = gaussianMatrix(74, m, 1);
  const pt = gaussianMatrix(74, n, 2);
  const products = await medianSeconds(3, async () => {
    for (let i = 0; i < 3; i++) {
      await matmul(pt, a, { transB: true });
      await matmul(qt, a);
    }
  });
  const torch = runTorch(['lowrank', String(m), String(n)]);
  const torchSeconds = torch ? (torch['seconds'] as number) : quotedTorchSeconds;
  return {
    area: AREA,
    name: `top-64 SVD ${m}×${n} (oversample 10, 2 power iterations, median of 3 after 3 warm-ups)`,
    figure: `${seconds.toFixed(3)} s (its 6 products with A alone: ${products.toFixed(3)} s)`,
    peer: torch
      ? `torch.svd_lowrank(q = 74, niter = 2) ${torchSeconds.toFixed(3)} s (${describe(torch)}, same runs)`
      : `torch.svd_lowrank ${torchSeconds} s (quoted)`,
    target: '≤ torch',
    met: seconds <= torchSeconds,
  };
}

async function adaptiveRow(): Promise<BenchRow> {
  const n = 4096;
  const sigma = Array.from({ length: 400 }, (_, i) => 0.985 ** i);
  const { a, noise2 } = await plantedMatrix(n, n, sigma, 2e-5, 11);
  // Planted truth: the noise is spread over all 4096 directions, so at 90 % it only adds to the total.
  let total = noise2;
  for (const s of sigma) total += s * s;
  let truth = 0;
  for (let acc = 0; truth < sigma.length && acc < 0.9 * total; truth++) acc += sigma[truth]! ** 2;
  let found = 0;
  const seconds = await medianSeconds(3, async () => {
    found = (await adaptiveSvd(a, { energy: 0.9, maxRank: 1024 })).s.length;
  });
  return {
    area: AREA,
    name: 'adaptive rank at 90 % energy, 4096×4096 planted (median of 3)',
    figure: `rank ${found} in ${seconds.toFixed(2)} s`,
    peer: `planted truth ${truth}`,
    target: 'rank = planted truth',
    met: found === truth,
  };
}

export async function bench(): Promise<BenchRow[]> {
  return [
    await gemmRow(),
    await truncatedRow(4096, 4096, TORCH_4096),
    await truncatedRow(11008, 4096, TORCH_11008),
    await adaptiveRow(),
  ];
}
