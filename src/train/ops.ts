/**
 * Matrix products whose forward and backward passes use only untransposed GEMMs.
 * The wasm backend runs a product with transposeA/transposeB ≈ 10× slower than an
 * explicit tf.transpose followed by a plain product (28 ms vs 2.6 ms for
 * [128, 784]·[784, 256] measured here), and tfjs's own matMul gradient asks for exactly
 * those transposed products. An operand marked constant gets a zero gradient without
 * the product that would compute it (frozen weights under LoRA, one-hot inputs).
 */
import * as tf from '@tensorflow/tfjs';

/** Swap the last two axes. */
function swapLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  perm[perm.length - 2] = perm.length - 1;
  perm[perm.length - 1] = perm.length - 2;
  return tf.transpose(t, perm);
}

type Product = (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
const products = new Map<string, Product>();

function product(transposeB: boolean, constA: boolean, constB: boolean): Product {
  const key = `${transposeB}/${constA}/${constB}`;
  let f = products.get(key);
  if (!f) {
    f = tf.customGrad((a, b, save) => {
      const ta = a as tf.Tensor;
      const tb = b as tf.Tensor;
      (save as unknown as (saved: tf.Tensor[]) => void)([ta, tb]);
      return {
        value: tf.matMul(ta, transposeB ? swapLast(tb) : tb),
        gradFunc: (dy, [sa, sb]) => {
          const g = dy as tf.Tensor;
          // y = a·b: da = dy·bᵀ, db = aᵀ·dy.  y = a·bᵀ: da = dy·b, db = dyᵀ·a.
          const da = constA ? tf.zerosLike(sa!) : tf.matMul(g, transposeB ? sb! : swapLast(sb!));
          const db = constB
            ? tf.zerosLike(sb!)
            : transposeB
              ? tf.matMul(swapLast(g), sa!)
              : tf.matMul(swapLast(sa!), g);
          return [da, db];
        },
      };
    }) as Product;
    products.set(key, f);
  }
  return f;
}

export interface ProductOptions {
  /** No gradient flows to `a` (it is data, or frozen). */
  constA?: boolean;
  /** No gradient flows to `b`. */
  constB?: boolean;
}

/** a·b: [..., m, k]·[..., k, n] → [..., m, n]. */
export function matMulNN<T extends tf.Tensor>(
  a: T,
  b: tf.Tensor,
  { constA = false, constB = false }: ProductOptions = {},
): T {
  return product(false, constA, constB)(a, b) as T;
}

/** a·bᵀ: [..., m, k]·[..., n, k] → [..., m, n]; a Linear layer is `matMulNT(x, weight)` with weight [out, in]. */
export function matMulNT<T extends tf.Tensor>(
  a: T,
  b: tf.Tensor,
  { constA = false, constB = false }: ProductOptions = {},
): T {
  return product(true, constA, constB)(a, b) as T;
}
